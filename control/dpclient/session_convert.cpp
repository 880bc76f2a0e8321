#include "dpclient/session_convert.hpp"

#include <fmt/format.h>

#include <algorithm>

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

v1::DpSession to_dp_session(const Session& s, std::uint32_t id, const PolicySnapshot* policy) {
    v1::DpSession out;
    out.set_id(id);
    out.set_nai(s.nai);
    if (policy != nullptr) {
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
    }
    return out;
}

}  // namespace hag::control::dpclient
