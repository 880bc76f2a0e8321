// Downlink stage (core -> access): Ethernet frame from the core side in, GRE-encapsulated
// frame toward the subscriber's care-of address out (RFC 2784 / 2890, key per RFC 5845).
//
// Per packet: parse Ethernet (up to two VLAN tags) and the inner IPv4/IPv6 header, find the
// subscriber by inner destination (longest prefix), pick a live path (the only one, or by the
// session's striping mode: multipath/scheduler.hpp, with the burst's TSC as the clock; or the
// path the session's flow policy pins the packet to, policy/classify.hpp), decrement
// the inner TTL / hop limit, prepend Ethernet + outer IPv6 or IPv4 (DSCP copied from the inner
// header) + GRE with key and sequence number, and set mbuf->port to the access port.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>

#include "pipeline/stage.hpp"
#include "policy/policy_table.hpp"
#include "tables/next_hop_table.hpp"
#include "tables/session_table.hpp"

namespace hag::dp {

#define HAG_DOWNLINK_DROPS(X)                                                                   \
    X(kMalformed, "malformed", "frame too short, or its IP header lengths are inconsistent")    \
    X(kNotIp, "not_ip", "neither IPv4 nor IPv6 (or more than two VLAN tags)")                   \
    X(kNoSubscriber, "no_subscriber", "no subscriber prefix matches the inner destination")     \
    X(kNoLivePath, "no_live_path", "the subscriber has no live path")                           \
    X(kTtlExpired, "ttl_expired", "inner TTL / hop limit would reach zero")                     \
    X(kTooBig, "too_big", "the encapsulated packet exceeds the access MTU")                     \
    X(kNoHeadroom, "no_headroom", "the mbuf has no headroom for the outer headers")             \
    X(kNoNextHop, "no_next_hop", "the path's next hop is not resolved (yet); resolution asked") \
    X(kPolicyDrop, "policy_drop", "the flow policy drops the packet (DROP, no listed path live)")

HAG_DECLARE_DROPS(DownlinkDrop, HAG_DOWNLINK_DROPS)

struct alignas(64) DownlinkCtx {
    const SessionTable* sessions = nullptr;
    SessionTable* sessions_rw = nullptr;  // for per-session state (sequence, counters)
    std::uint16_t access_mtu = 1500;      // largest outer IP packet on the access side
    std::uint8_t outer_hop_limit = 64;
    // Next hops of paths without a static next-hop MAC.
    const NextHopTable* next_hops = nullptr;
    // TSC cycles per second, the clock of overflow striping's token buckets; 0 = rte_get_tsc_hz().
    std::uint64_t tsc_hz = 0;
    // Flow policy profiles (policy/policy_table.hpp); null = no policy for anyone.
    const PolicyTable* policies = nullptr;
    // Per-worker counters (one writer: this context's worker).
    Counter encapsulated;
    DownlinkDropCounters drops{};
    StageCycles cycles;
};

uint16_t downlink_encap(DownlinkCtx& ctx, rte_mbuf** pkts, uint16_t n) noexcept;

}  // namespace hag::dp
