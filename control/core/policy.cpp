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

std::vector<policy::Access> accesses_of(const Session& s) {
    std::vector<policy::Access> out;
    out.reserve(s.paths.size());
    for (const Path& p : s.paths) {
        out.push_back({p.bid, p.if_label, p.access_technology, p.live});
    }
    return out;
}

}  // namespace hag::control
