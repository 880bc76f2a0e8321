// Per-packet flow policy (issue #8): the classifier key of an inner IP packet (flow_key.hpp), and
// the path its rule gives with the session's paths as they are now. Used by the downlink stage
// (which path carries the packet) and the uplink stage (did the packet arrive on a path its rule
// allows).
//
// No allocation, no locks, bounded loops.
#pragma once

#include <cstdint>
#include <cstring>

#include "pipeline/packet.hpp"
#include "policy/policy_table.hpp"
#include "tables/session_table.hpp"

namespace hag::dp {

// The key of the IP packet `l3` (parsed by pipeline/packet.hpp) whose header `ip` points at.
inline void policy_key(const std::uint8_t* ip, const L3Info& l3, bool downlink,
                       PolicyKey& k) noexcept {
    policy_key_from(ip, l3.total_len, l3.family == Family::kIpv6, l3.header_len, downlink, k);
}

inline bool policy_step_carries(const PolicyStep& s, const PathConfig& p) noexcept {
    return (!s.has_if_label || s.if_label == p.if_label) &&
           (!s.has_access_technology || s.access_technology == p.access_technology);
}

enum class PolicyVerdict : std::uint8_t {
    kPath,    // `path`: the pinned path (never striped)
    kStripe,  // the session's striping (or its one live path)
    kDrop,
};

// What rule `r` gives with the session's paths now: the first step with a live path (the lowest
// BID among several), else the terminal.
inline PolicyVerdict policy_resolve(const PolicyRule& r, const SessionConfig& cfg,
                                    unsigned& path) noexcept {
    for (unsigned s = 0; s < r.n_steps; ++s) {
        unsigned best = kMaxPaths;
        for (unsigned i = 0; i < cfg.n_paths; ++i) {
            const PathConfig& p = cfg.paths[i];
            if (p.live && policy_step_carries(r.steps[s], p) &&
                (best == kMaxPaths || p.bid < cfg.paths[best].bid)) {
                best = i;
            }
        }
        if (best != kMaxPaths) {
            path = best;
            return PolicyVerdict::kPath;
        }
    }
    return r.terminal == PolicyTerminal::kDrop ? PolicyVerdict::kDrop : PolicyVerdict::kStripe;
}

// Uplink: the rule allows a packet on `path` when the path carries one of its labels or the
// rule ends in STRIPE (any path may carry striped traffic).
inline bool policy_allows(const PolicyRule& r, const PathConfig& path) noexcept {
    if (r.terminal == PolicyTerminal::kStripe) {
        return true;
    }
    for (unsigned s = 0; s < r.n_steps; ++s) {
        if (policy_step_carries(r.steps[s], path)) {
            return true;
        }
    }
    return false;
}

}  // namespace hag::dp
