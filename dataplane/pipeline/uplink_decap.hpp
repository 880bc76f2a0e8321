// Uplink stage (access -> core): GRE-encapsulated frame from a CPE in, the inner packet in a
// fresh Ethernet header toward the core next hop out.
//
// Per packet: parse Ethernet and the outer IPv4/IPv6 header (protocol 47, or for a NATed path
// IPv4 / UDP to port 5437 with the GRE header as its payload, or 4 / 41 for IP in IP, whose
// session is found by its inner source; not a fragment), the
// GRE header (RFC 2784 / 2890: checksum, key and sequence optional; version 0; reserved bits
// zero; checksum verified when present), find the session by key (or by outer source when the
// tunnel has no key), then anti-spoofing: the outer source must be one of the session's
// care-of addresses (and, on a NATed path, the UDP source port its observed port), the inner source
// must be inside one of its prefixes. ECN per RFC 6040 §4.2: an outer CE marks an ECN-capable inner
// packet CE (a not-ECT one is dropped), an outer ECT(1) turns an inner ECT(0) into ECT(1).
#pragma once

#include <rte_mbuf.h>

#include <array>
#include <cstdint>

#include "pipeline/stage.hpp"
#include "policy/policy_table.hpp"
#include "tables/next_hop_table.hpp"
#include "tables/session_table.hpp"

namespace hag::dp {

#define HAG_UPLINK_DROPS(X)                                                                       \
    X(kMalformed, "malformed", "frame too short, or an IP header's lengths are inconsistent")     \
    X(kNotGre, "not_gre", "the outer packet is not GRE (IP protocol 47)")                         \
    X(kOuterFragment, "outer_fragment", "the outer IPv4 packet is a fragment")                    \
    X(kGreMalformed, "gre_malformed", "GRE header truncated, non-zero version or reserved bits")  \
    X(kGreChecksum, "gre_checksum", "the GRE checksum is wrong")                                  \
    X(kGreProtocol, "gre_protocol", "GRE payload is neither IPv4 nor IPv6")                       \
    X(kUnknownKey, "unknown_key", "no session has this GRE key")                                  \
    X(kUnknownTunnel, "unknown_tunnel", "keyless GRE from an address that is no care-of address") \
    X(kSpoofedOuter, "spoofed_outer_source",                                                      \
      "outer source is not a care-of address of the session")                                     \
    X(kSpoofedInner, "spoofed_inner_source", "inner source is outside the session's prefixes")    \
    X(kInnerMalformed, "inner_malformed", "the inner IP header is invalid")                       \
    X(kNoHeadroom, "no_headroom", "the mbuf has no room for the core-side Ethernet header")       \
    X(kEcnNotEct, "ecn_ce_not_ect",                                                               \
      "outer ECN is CE but the inner packet is not ECN-capable (RFC 6040 §4.2)")                  \
    X(kNoNextHop, "no_next_hop", "the core next hop is not resolved (yet); resolution asked")     \
    X(kPolicyForbidden, "policy_forbidden_path",                                                  \
      "the flow policy does not allow this path for the packet (drop_forbidden_uplink)")          \
    X(kUdpMalformed, "udp_malformed",                                                             \
      "UDP to the data port 5437: header truncated or length wrong")                              \
    X(kUdpChecksum, "udp_checksum", "UDP to the data port 5437: the UDP checksum is wrong")       \
    X(kIpInIpUnknown, "ip_in_ip_unknown",                                                         \
      "IP in IP whose inner source is inside no session's prefixes")                              \
    X(kRelaySpoofedOuter, "relay_spoofed_outer_source",                                           \
      "GRE with a remote anchor's key (or keyless to its prefix) from another address than the "  \
      "anchor's, to another than the local one, or in UDP")                                       \
    X(kRelaySpoofedInner, "relay_spoofed_inner_destination",                                      \
      "from a remote anchor, but the inner destination is outside the prefix it anchors")         \
    X(kRelayNoNextHop, "relay_no_next_hop",                                                       \
      "the next hop toward a remote anchor is not resolved (yet); resolution asked")              \
    X(kRelayTooBig, "relay_too_big",                                                              \
      "the packet re-encapsulated toward a remote anchor would exceed the access MTU")            \
    X(kRelayFull, "relay_full", "no room in the burst's relay list (or mbuf headroom) to relay")

HAG_DECLARE_DROPS(UplinkDrop, HAG_UPLINK_DROPS)

// What the stage did besides decapsulating and dropping (per worker, like the drops).
#define HAG_UPLINK_EVENTS(X)                                                                     \
    X(kUdpDecapsulated, "udp_decapsulated",                                                      \
      "packets that came GRE-in-UDP (NATed paths) and were decapsulated")                        \
    X(kNatKeepalive, "nat_keepalive",                                                            \
      "UDP to the data port 5437 shorter than a GRE header: a NAT keepalive, consumed")          \
    X(kNatPortLearned, "nat_port_learned",                                                       \
      "a NATed path's data came from another UDP port: the downlink follows it")                 \
    X(kRelayUplink, "relay_uplink_packets",                                                      \
      "packets relayed from a subscriber to the remote anchor of their source prefix")           \
    X(kRelayDownlink, "relay_downlink_packets",                                                  \
      "packets decapsulated from a remote anchor, handed to the downlink toward the subscriber") \
    X(kFastForm, "fast_form",                                                                    \
      "packets decapsulated by the fast uplink form (the session's uplink record only)")

HAG_DECLARE_DROPS(UplinkEvent, HAG_UPLINK_EVENTS)

struct alignas(64) UplinkCtx {
    const SessionTable* sessions = nullptr;
    SessionTable* sessions_rw = nullptr;
    std::uint16_t core_port = 0;
    MacAddr core_src_mac{};
    MacAddr core_next_hop_mac{};  // static core next hop; zero = resolved by family below
    const NextHopTable* next_hops = nullptr;
    NextHopTable::Index core_next_hop_v4 = NextHopTable::kNone;  // for inner IPv4
    NextHopTable::Index core_next_hop_v6 = NextHopTable::kNone;  // for inner IPv6
    const PolicyTable* policies = nullptr;  // flow policy profiles; null = no policy
    // NAT rebinding: follow a NATed path's data to another UDP source port
    // (tables/nat_port.hpp; the data plane's `nat_port_learning`, default true).
    bool nat_port_learning = true;
    // false: every packet takes the general path, also those of sessions with the fast uplink
    // form (UplinkWords, session_table.hpp). Both give the same verdicts and write the same
    // octets and counters; tests compare them, and the benchmark measures the difference
    // (hag-dp-bench --no-fast-path). The event fast_form counts the packets it took.
    bool fast_path = true;
    Counter decapsulated;
    // Uplink packets on a path their rule does not allow, forwarded (profiles without
    // drop_forbidden_uplink; the dropped ones are the policy_forbidden_path drop reason).
    Counter policy_forbidden_forwarded;
    UplinkDropCounters drops{};
    UplinkEventCounters events{};
    StageCycles cycles;

    // Distributed anchoring (pipeline/relay.hpp). Packets relayed toward a remote anchor stay
    // in the returned burst, encapsulated, with mbuf->port an access port (the others have
    // core_port). Packets from remote anchors, decapsulated by the last call, wait in
    // relay_downlink (in an Ethernet header) for the worker to give them to the downlink stage;
    // the stage empties the list when it starts.
    static constexpr std::uint16_t kRelayMax = 64;
    std::uint16_t access_mtu = 1500;  // largest outer IP packet toward a remote anchor
    std::uint8_t outer_hop_limit = 64;
    std::array<rte_mbuf*, kRelayMax> relay_downlink{};
    std::uint16_t n_relay_downlink = 0;
};

// What uplink_decap tells the reorder stage (multipath/reorder.hpp) about each packet it keeps.
struct UplinkMeta {
    static constexpr std::uint8_t kHasSeq = 1;      // the GRE header had a sequence number
    static constexpr std::uint8_t kRelayed = 0x40;  // inside uplink_decap only: in a relay list
    static constexpr std::uint8_t kKept = 0x80;     // inside uplink_decap only: forwarded
    std::uint32_t session = 0;
    std::uint32_t seq = 0;
    std::uint32_t incarnation = 0;  // SessionState::incarnation when decapsulated
    std::uint32_t timeout_us = 0;   // the session's reorder timeout; 0 = the worker's
    std::uint8_t path = 0;          // index of the arrival path in the session's config
    std::uint8_t live_mask = 0;     // bit i: path i is live
    std::uint8_t flags = 0;
    ReorderMode mode = ReorderMode::kDefault;
};

// When `meta` is given, meta[i] describes the i-th kept packet, for the reorder stage.
uint16_t uplink_decap(UplinkCtx& ctx, rte_mbuf** pkts, uint16_t n,
                      UplinkMeta* meta = nullptr) noexcept;

}  // namespace hag::dp
