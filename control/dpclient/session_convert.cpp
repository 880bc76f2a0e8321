#include "dpclient/session_convert.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "hag/mh/flow_binding.hpp"
#include "hag/v1/policy_dp.hpp"

namespace hag::control::dpclient {

std::string prefix_text(const Prefix& p) {
    CareOfAddress a{p.addr};
    if (a.is_ipv4() && p.length >= 96) {
        return fmt::format("{}/{}", to_string(a), p.length - 96);
    }
    return to_string(p);
}

std::vector<v1::DpPolicyProfile> policy_profiles(const PolicySnapshot* policy) {
    std::vector<v1::DpPolicyProfile> out;
    if (policy != nullptr) {
        for (const policy::Profile& p : policy->policy.profiles) {
            out.push_back(policy::to_dp_profile(policy->policy, p, policy->drop_forbidden_uplink));
        }
    }
    return out;
}

std::string flow_profile_name(std::uint32_t id) {
    return fmt::format("flows/{}", id);
}

std::optional<v1::DpPolicyProfile> flow_profile(const Session& s, std::uint32_t id,
                                                const PolicySnapshot* policy) {
    if (s.flows.empty()) {
        return std::nullopt;
    }
    // The flow bindings as a model of their own: one application and rule per binding, one
    // label per referenced path.
    policy::Policy fp;
    policy::Profile prof;
    prof.name = flow_profile_name(id);
    for (const FlowBindingEntry& f : s.flows) {
        auto ts = mh::decode_traffic_selector(f.selector);
        if (!ts.ok()) {
            continue;  // checked when signalled
        }
        auto cs = mh::classifiers_of(*ts);
        if (!cs) {
            continue;
        }
        policy::Rule r;
        r.application = fp.applications.size();
        fp.applications.push_back({fmt::format("flow {}", f.fid), std::move(*cs)});
        for (const std::uint16_t bid : f.bids) {
            const Path* p = s.find_path(bid);
            if (p == nullptr) {
                continue;  // the path went away: the next BID, or DROP
            }
            policy::Step st{policy::Step::Kind::kAccess, fp.labels.size()};
            fp.labels.push_back({fmt::format("bid {}", bid), p->if_label, p->access_technology});
            r.preference.push_back(st);
        }
        r.preference.push_back({policy::Step::Kind::kDrop, 0});
        prof.rules.push_back(std::move(r));
    }
    const bool drop_forbidden = policy != nullptr && policy->drop_forbidden_uplink;
    v1::DpPolicyProfile flows = policy::to_dp_profile(fp, prof, drop_forbidden);
    const policy::Profile* base = policy != nullptr ? policy->profile_for(s.nai) : nullptr;
    if (base == nullptr) {
        return flows;
    }
    v1::DpPolicyProfile b = policy::to_dp_profile(policy->policy, *base, drop_forbidden);
    v1::DpPolicyProfile out;
    out.set_name(flows.name());
    out.set_drop_forbidden_uplink(drop_forbidden);
    for (const auto& r : b.rules()) {
        if (r.priority() > 0) {
            *out.add_rules() = r;
        }
    }
    for (const auto& r : flows.rules()) {
        *out.add_rules() = r;
    }
    for (const auto& r : b.rules()) {
        if (r.priority() <= 0) {
            *out.add_rules() = r;
        }
    }
    return out;
}

v1::DpSession to_dp_session(const Session& s, std::uint32_t id, const PolicySnapshot* policy) {
    v1::DpSession out;
    out.set_id(id);
    out.set_nai(s.nai);
    if (!s.flows.empty()) {
        out.set_policy_profile(flow_profile_name(id));
    } else if (policy != nullptr) {
        if (const policy::Profile* prof = policy->profile_for(s.nai); prof != nullptr) {
            out.set_policy_profile(prof->name);
        }
    }
    out.set_uplink_key(s.uplink_gre_key);
    out.set_gre_sequence(true);
    out.set_striping(s.striping == 1 ? v1::STRIPING_OVERFLOW : v1::STRIPING_WEIGHTED);
    out.set_overflow_burst_bytes(s.overflow_burst_bytes);
    for (const Prefix& p : s.home_prefixes) {
        out.add_prefixes(prefix_text(p));
    }
    // Delegated prefixes (RFC 7148) are routed like the home prefixes: the data plane's
    // longest-prefix match sends every address of the prefix to this session.
    for (const Prefix& p : s.delegated_prefixes) {
        out.add_prefixes(prefix_text(p));
    }
    std::vector<const Path*> paths;
    paths.reserve(s.paths.size());
    for (const Path& p : s.paths) {
        paths.push_back(&p);
    }
    std::sort(paths.begin(), paths.end(),
              [](const Path* a, const Path* b) { return a->bid < b->bid; });
    for (const Path* p : paths) {
        v1::DpPath* d = out.add_paths();
        d->set_bid(p->bid);
        d->set_live(p->live);
        d->set_if_label(p->if_label);
        d->set_access_technology(p->access_technology);
        d->set_downlink_key(p->downlink_gre_key);
        d->set_weight_kbps(p->weight_kbps);
        // Overflow striping fills the primary access technology's paths first.
        if (s.primary_access_technology != 0 &&
            p->access_technology != s.primary_access_technology) {
            d->set_preference(1);
        }
        d->set_local(to_string(p->local));
        d->set_care_of(to_string(p->coa));
        // A NATed path (docs/control.md "NAT detection"): user data in UDP to the NAT's
        // observed port, as the PBA's NAT Detection option told the MAG.
        if (p->nat && p->nat_port != 0 && p->coa.is_ipv4()) {
            d->set_udp_port(p->nat_port);
        }
        // A MIPv6 home registration (its paths' "MAG" is the mobile node's NAI) that signalled
        // no GRE key, with home_agent.tunnel IP_IN_IP: RFC 6275's IPv6-in-IPv6 tunnel.
        if (policy != nullptr && policy->home_ip_in_ip && p->mag_id == s.nai &&
            s.uplink_gre_key == 0 && p->downlink_gre_key == 0 && !p->nat) {
            d->set_tunnel(v1::TUNNEL_IP_IN_IP);
        }
        // The path's tunnel MTU from path_mtus (by access technology / If-Label); 0 = the data
        // plane's access port MTU.
        if (policy != nullptr) {
            d->set_mtu(policy->path_mtu_for(*p));
        }
    }
    // Distributed anchoring (docs/scale-out.md): prefixes relayed to the node anchoring them.
    for (const auto& a : s.remote_anchors) {
        auto* r = out.add_remote_anchors();
        r->set_prefix(prefix_text(a.prefix));
        r->set_local(to_string(a.local));
        r->set_anchor(to_string(a.anchor));
        r->set_uplink_key(a.uplink_key);
        r->set_downlink_key(a.downlink_key);
    }
    return out;
}

}  // namespace hag::control::dpclient
