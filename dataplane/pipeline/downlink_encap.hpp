// Downlink stage (core -> access): Ethernet frame from the core side in, GRE-encapsulated
// frame toward the subscriber's care-of address out (RFC 2784 / 2890, key per RFC 5845).
//
// Per packet: parse Ethernet (up to two VLAN tags) and the inner IPv4/IPv6 header, find the
// subscriber by inner destination (longest prefix), pick a live path (the only one, or by the
// session's striping mode: multipath/scheduler.hpp, with the burst's TSC as the clock; or the
// path the session's flow policy pins the packet to, policy/classify.hpp), check and decrement
// the inner TTL / hop limit (expired: ICMP Time Exceeded), check the MTU (too big: ICMP Packet
// Too Big / Fragmentation Needed, or outer fragments, by mtu_action), prepend Ethernet + outer
// IPv6 or IPv4 (DSCP copied or mapped, ECN copied: RFC 6040 normal mode) + GRE with key and
// sequence number, and set mbuf->port to the access port.
//
// Besides the burst it returns, the stage leaves packets it made in the context: ICMP errors
// toward the core (to_core, built in the mbuf of the packet they answer, sent back the way it
// came) and the second and later outer fragments (more_access). The worker sends both after the
// burst; the stage empties both lists when it starts.
#pragma once

#include <rte_mbuf.h>

#include <array>
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
    X(kFragmentNoMbuf, "fragment_no_mbuf",                                                      \
      "no mbuf, or no room in the burst, for an outer fragment")                                \
    X(kPolicyDrop, "policy_drop", "the flow policy drops the packet (DROP, no listed path live)")

HAG_DECLARE_DROPS(DownlinkDrop, HAG_DOWNLINK_DROPS)

// What the stage did besides encapsulating and dropping (counted per worker like the drops).
#define HAG_DOWNLINK_EVENTS(X)                                                                 \
    X(kFragmented, "fragmented", "packets sent as outer fragments (mtu_action FRAGMENT)")      \
    X(kFragments, "fragments", "outer fragments sent")                                         \
    X(kPacketTooBigSent, "packet_too_big_sent", "ICMPv6 Packet Too Big sent to the sender")    \
    X(kFragNeededSent, "frag_needed_sent", "ICMPv4 Fragmentation Needed sent to the sender")   \
    X(kTimeExceededSent, "time_exceeded_sent", "ICMP / ICMPv6 Time Exceeded sent")             \
    X(kFastForm, "fast_form",                                                                  \
      "packets encapsulated by their session's fast downlink form (prebuilt outer headers)")   \
    X(kIcmpRateLimited, "icmp_rate_limited", "ICMP error not sent: icmp_errors_per_second")    \
    X(kIcmpSuppressed, "icmp_suppressed",                                                      \
      "ICMP error not sent: about an ICMP error, a non-first fragment or a multicast source, " \
      "or no gateway address of the family")

HAG_DECLARE_DROPS(DownlinkEvent, HAG_DOWNLINK_EVENTS)

enum class MtuAction : std::uint8_t {
    kPacketTooBig,  // drop, ICMP Packet Too Big / Fragmentation Needed to the sender
    kFragment,      // fragment the outer packet (IPv4 inner with DF: as kPacketTooBig)
};

// Outer DSCP by inner DSCP: identity (copy) unless configured (fixed value or map).
using DscpMap = std::array<std::uint8_t, 64>;
constexpr DscpMap dscp_identity() noexcept {
    DscpMap m{};
    for (std::size_t i = 0; i < m.size(); ++i)
        m[i] = static_cast<std::uint8_t>(i);
    return m;
}

struct alignas(64) DownlinkCtx {
    const SessionTable* sessions = nullptr;
    SessionTable* sessions_rw = nullptr;  // for per-session state (sequence, counters)
    std::uint16_t access_mtu = 1500;      // largest outer IP packet on the access side
    std::uint8_t outer_hop_limit = 64;
    // Next hops of paths without a static next-hop MAC.
    const NextHopTable* next_hops = nullptr;
    // TSC cycles per second, the clock of overflow striping's token buckets; 0 = rte_get_tsc_hz().
    std::uint64_t tsc_hz = 0;
    MtuAction mtu_action = MtuAction::kPacketTooBig;
    rte_mempool* pool = nullptr;  // where outer fragments 2..n come from (kFragment)
    DscpMap dscp = dscp_identity();
    // Source addresses of ICMP errors (the gateway's, on the core side); family kNone: no ICMP
    // error of that family is sent (counted as icmp_suppressed).
    IpAddr icmp_src_v4, icmp_src_v6;
    // ICMP errors per second and at most this many at once (a GCRA bucket); 0 = none sent.
    std::uint32_t icmp_per_second = 100;
    std::uint64_t icmp_tat = 0;     // the bucket's theoretical arrival time (TSC)
    std::uint32_t fragment_id = 0;  // next outer fragment identification

    // Packets made by the last call (see above); the worker sends them, then they are gone.
    static constexpr std::uint16_t kSideMax = 64;
    std::array<rte_mbuf*, kSideMax> to_core{};  // ICMP errors (mbuf->port unchanged)
    std::uint16_t n_to_core = 0;
    std::array<rte_mbuf*, kSideMax> more_access{};  // outer fragments after the first
    std::uint16_t n_more_access = 0;

    // false: every packet takes the general path, also those of sessions with the fast
    // downlink form (FastDownlink, session_table.hpp). The two write the same octets; tests
    // compare them, and the benchmark measures the difference (hag-dp-bench --no-fast-path).
    // The event fast_form counts the packets it took.
    bool fast_path = true;
    // Flow policy profiles (policy/policy_table.hpp); null = no policy for anyone.
    const PolicyTable* policies = nullptr;
    // Per-worker counters (one writer: this context's worker).
    Counter encapsulated;
    DownlinkDropCounters drops{};
    DownlinkEventCounters events{};
    StageCycles cycles;
};

uint16_t downlink_encap(DownlinkCtx& ctx, rte_mbuf** pkts, uint16_t n) noexcept;

}  // namespace hag::dp
