#include "core/policy.hpp"

#include "hag/v1/policy_config.hpp"

namespace hag::control {

std::shared_ptr<PolicySnapshot> PolicySnapshot::build(const v1::ControlConfig& cfg) {
    config::Errors errors;
    auto compiled =
        policy::compile_policy(cfg.policy(), nullptr, config::Reporter("config", errors));
    if (!compiled) {
        return nullptr;
    }
    auto snap = std::make_shared<PolicySnapshot>();
    snap->policy = std::move(*compiled);
    snap->drop_forbidden_uplink =
        cfg.policy().forbidden_uplink() == v1::PolicyConfig::FORBIDDEN_UPLINK_DROP;
    snap->home_ip_in_ip = cfg.home_agent().tunnel() == v1::HOME_TUNNEL_IP_IN_IP;
    for (const v1::PathMtu& m : cfg.path_mtus()) {  // validated: 0-255, 1280-9216
        snap->path_mtus.push_back({static_cast<std::uint8_t>(m.access_technology()),
                                   static_cast<std::uint8_t>(m.if_label()),
                                   static_cast<std::uint16_t>(m.mtu())});
    }
    if (!cfg.default_profile().policy_profile().empty()) {
        snap->default_profile = cfg.default_profile().policy_profile();
    } else if (snap->policy.default_profile) {
        snap->default_profile = snap->policy.profiles[*snap->policy.default_profile].name;
    }
    for (const v1::Subscriber& sub : cfg.subscribers()) {
        if (!sub.profile().policy_profile().empty()) {
            snap->by_nai.emplace(sub.nai(), sub.profile().policy_profile());
        }
    }
    return snap;
}

const policy::Profile* PolicySnapshot::profile_for(const std::string& nai) const {
    const auto it = by_nai.find(nai);
    const std::string& name = it != by_nai.end() ? it->second : default_profile;
    return name.empty() ? nullptr : policy.find_profile(name);
}

std::uint16_t PolicySnapshot::path_mtu_for(const Path& p) const {
    for (const PathMtu& m : path_mtus) {
        if ((m.access_technology == 0 || m.access_technology == p.access_technology) &&
            (m.if_label == 0 || m.if_label == p.if_label)) {
            return m.mtu;
        }
    }
    return 0;
}

std::vector<policy::Access> accesses_of(const Session& s) {
    std::vector<policy::Access> out;
    out.reserve(s.paths.size());
    for (const Path& p : s.paths) {
        out.push_back({p.bid, p.if_label, p.access_technology, p.live});
    }
    return out;
}

}  // namespace hag::control
