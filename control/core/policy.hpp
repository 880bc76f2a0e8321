// The flow policy as hag-control holds it: compiled from the configuration at start-up and on
// every reload, with the profile each subscriber uses. Immutable once built; shared between the
// core's thread and the management API's threads as a shared_ptr<const>.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/binding_cache.hpp"
#include "hag/policy/policy.hpp"
#include "hag/v1/config.pb.h"

namespace hag::control {

struct PolicySnapshot {
    policy::Policy policy;
    std::string default_profile;  // profile of subscribers that name none; empty = no policy
    std::unordered_map<std::string, std::string> by_nai;  // listed subscribers' own profiles
    // policy.forbidden_uplink: the data plane drops uplink packets on a path their rule does
    // not allow (else forwards them; counted either way).
    bool drop_forbidden_uplink = false;
    // Not the flow policy, but programmed with it: home_agent.tunnel IP_IN_IP — the paths of a
    // home registration (MIPv6) without GRE keys go to the data plane as IP-in-IP tunnels.
    bool home_ip_in_ip = false;
    // Also programmed with it: path_mtus (DpPath.mtu), in configuration order.
    struct PathMtu {
        std::uint8_t access_technology = 0;  // 0 = any
        std::uint8_t if_label = 0;           // 0 = any
        std::uint16_t mtu = 0;
    };
    std::vector<PathMtu> path_mtus;
    // Run-time edits (core/policy_edit.hpp): the policy version (+1 for each edit and reload),
    // the edits in force as text, and the profiles they added or changed.
    std::uint64_t version = 0;
    std::vector<std::string> runtime_edits;
    std::set<std::string> runtime_profiles;

    // From a configuration that passed validation (nullptr only if the policy does not
    // compile, which validation prevents).
    static std::shared_ptr<PolicySnapshot> build(const v1::ControlConfig& cfg);
    // The profile `nai` uses; nullptr when no policy applies (everything is striped).
    [[nodiscard]] const policy::Profile* profile_for(const std::string& nai) const;
    // The tunnel MTU of a path: the first path_mtus entry that matches it, else 0 (the data
    // plane's access port MTU).
    [[nodiscard]] std::uint16_t path_mtu_for(const Path& p) const;
};

// A session's paths as the policy sees them.
std::vector<policy::Access> accesses_of(const Session& s);

}  // namespace hag::control
