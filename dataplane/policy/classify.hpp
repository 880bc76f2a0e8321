// Per-packet flow policy (issue #8): the classifier key of an inner IP packet, and the path its
// rule gives with the session's paths as they are now. Used by the downlink stage (which path
// carries the packet) and the uplink stage (did the packet arrive on a path its rule allows).
//
// Bounds-checked against the IP packet's length (the stages pass L3Info, whose lengths were
// checked against the mbuf); a packet too short for its L4 header is classified without ports.
// No allocation, no locks, bounded loops.
#pragma once

#include <cstdint>
#include <cstring>

#include "pipeline/packet.hpp"
#include "policy/policy_table.hpp"
#include "tables/session_table.hpp"

namespace hag::dp {

inline constexpr std::uint8_t kProtoTcp = 6;
inline constexpr std::uint8_t kProtoUdp = 17;
inline constexpr std::uint8_t kProtoEsp = 50;
inline constexpr std::uint8_t kProtoAh = 51;
inline constexpr std::uint8_t kProtoSctp = 132;
inline constexpr std::uint8_t kProtoUdpLite = 136;

// `ip` points at the IP header of `l3`. `downlink`: the subscriber is the destination.
inline void policy_key(const std::uint8_t* ip, const L3Info& l3, bool downlink,
                       PolicyKey& k) noexcept {
    k = PolicyKey{};
    std::uint8_t* local = k.local;
    std::uint8_t* remote = k.remote;
    const std::uint8_t* src = l3.src.bytes.data();
    const std::uint8_t* dst = l3.dst.bytes.data();
    std::uint16_t off = l3.header_len;
    std::uint8_t proto = l3.proto;
    bool l4 = true;
    if (l3.family == Family::kIpv4) {
        // IPv4-mapped, as the policy model holds IPv4 addresses.
        local[10] = local[11] = remote[10] = remote[11] = 0xff;
        std::memcpy(local + 12, downlink ? dst : src, 4);
        std::memcpy(remote + 12, downlink ? src : dst, 4);
        k.dscp = rte_cpu_to_be_32(ip[1] >> 2);
        l4 = (get16(ip + 6) & 0x1fff) == 0;  // not a later fragment
    } else {
        std::memcpy(local, downlink ? dst : src, 16);
        std::memcpy(remote, downlink ? src : dst, 16);
        k.dscp = rte_cpu_to_be_32(static_cast<std::uint32_t>(((ip[0] & 0x0f) << 2) | (ip[1] >> 6)));
        // Hop-by-hop, routing, destination options and fragment headers (at most four).
        for (int n = 0; n < 4; ++n) {
            if (proto == 0 || proto == 43 || proto == 60) {
                if (off + 8 > l3.total_len) {
                    l4 = false;
                    break;
                }
                proto = ip[off];
                off = static_cast<std::uint16_t>(off + (ip[off + 1] + 1) * 8);
            } else if (proto == 44) {
                if (off + 8 > l3.total_len) {
                    l4 = false;
                    break;
                }
                l4 = (get16(ip + off + 2) & 0xfff8) == 0;  // first fragment only
                proto = ip[off];
                off = static_cast<std::uint16_t>(off + 8);
            } else {
                break;
            }
        }
    }
    k.proto = proto;
    if (!l4) {
        return;
    }
    switch (proto) {
        case kProtoTcp:
        case kProtoUdp:
        case kProtoSctp:
        case kProtoUdpLite:
            if (off + 4 <= l3.total_len) {
                std::uint16_t sp = 0, dp = 0;
                std::memcpy(&sp, ip + off, 2);  // kept in network order, as rte_acl reads them
                std::memcpy(&dp, ip + off + 2, 2);
                k.local_port = downlink ? dp : sp;
                k.remote_port = downlink ? sp : dp;
            }
            break;
        case kProtoEsp:
            if (off + 4 <= l3.total_len) {
                std::memcpy(&k.spi, ip + off, 4);
            }
            break;
        case kProtoAh:
            if (off + 8 <= l3.total_len) {
                std::memcpy(&k.spi, ip + off + 4, 4);
            }
            break;
        default:
            break;
    }
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
