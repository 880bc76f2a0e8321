// Distributed anchoring's relay (issue 14, docs/scale-out.md, docs/dataplane.md#remote-anchors):
// a session prefix anchored at another node (SessionConfig::anchors) is relayed between the
// subscriber's tunnels and a GRE tunnel to that anchor. Part of the uplink stage (uplink_decap
// calls these for packets it has matched to a session):
//   - relay_to_anchor: an uplink packet (decapsulated, anti-spoofing passed) whose inner source
//     lies in a remote-anchored prefix leaves re-encapsulated in GRE from the anchor's `local`
//     to `anchor` (key uplink_key, no sequence number), out of the access port toward it;
//   - relay_from_anchor: GRE from `anchor` to `local` with the anchor's downlink_key (or keyless,
//     found by inner destination: anchor_keyless) is decapsulated; its inner packet, destination
//     in the prefix, goes to the downlink stage in an Ethernet header as if from the core.
// relay_to_anchor leaves the packet in the burst (mbuf->port the access port toward the
// anchor; it passes the reorder like the session's other uplink packets), relay_from_anchor in
// UplinkCtx::relay_downlink for the worker; on a drop the mbuf is left for the caller to free.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>

#include "pipeline/packet.hpp"
#include "pipeline/parse.hpp"
#include "tables/session_table.hpp"

namespace hag::dp {

struct UplinkCtx;
enum class UplinkDrop : std::uint8_t;

// For a GRE packet m being decapsulated (gre: its parse; inner: its inner header), by the
// uplink stage and by relay_from_anchor. ECN (RFC 6040 §4.2): the outer field's congestion
// marks reach the inner packet; false when it must be dropped (outer CE over a not-ECT inner
// packet).
inline bool gre_ecn_to_inner(rte_mbuf* m, const GreInIp& gre, const L3Info& inner) noexcept {
    return ecn_decapsulate(rte_pktmbuf_mtod_offset(m, const std::uint8_t*, gre.l2.l3_offset),
                           gre.outer.family == Family::kIpv6,
                           rte_pktmbuf_mtod_offset(m, std::uint8_t*, gre.inner_off),
                           inner.family == Family::kIpv6);
}

// Strips everything before the inner packet and anything after it, and prepends 14 octets for
// an Ethernet header: where they start, or nullptr when the mbuf has no headroom.
inline std::uint8_t* gre_inner_to_ethernet(rte_mbuf* m, const GreInIp& gre,
                                           const L3Info& inner) noexcept {
    rte_pktmbuf_adj(m, gre.inner_off);
    if (rte_pktmbuf_pkt_len(m) > inner.total_len) {
        rte_pktmbuf_trim(m, static_cast<std::uint16_t>(rte_pktmbuf_pkt_len(m) - inner.total_len));
    }
    return reinterpret_cast<std::uint8_t*>(rte_pktmbuf_prepend(m, 14));
}

// The remote anchor whose prefix holds `src` (an uplink inner source), or -1.
inline int anchor_of_source(const SessionConfig& cfg, const IpAddr& src) noexcept {
    for (unsigned i = 0; i < cfg.n_anchors; ++i) {
        if (cfg.anchors[i].prefix.contains(src)) {
            return static_cast<int>(i);
        }
    }
    return -1;
}

// The remote anchor whose downlink key is `key`, or -1.
inline int anchor_of_key(const SessionConfig& cfg, std::uint32_t key) noexcept {
    for (unsigned i = 0; i < cfg.n_anchors; ++i) {
        if (cfg.anchors[i].downlink_key == key && key != 0) {
            return static_cast<int>(i);
        }
    }
    return -1;
}

// Keyless GRE whose outer source is no care-of address: the session whose prefix holds the
// inner destination, when that prefix has a keyless remote anchor at the outer source. Sets id
// and anchor and returns true, else false.
bool anchor_keyless(const UplinkCtx& ctx, const std::uint8_t* frame, std::uint16_t len,
                    const GreInIp& gre, std::uint32_t& id, int& anchor) noexcept;

// kCount: m is the GRE packet toward the anchor, by its access port; else the drop reason.
UplinkDrop relay_to_anchor(UplinkCtx& ctx, rte_mbuf* m, const SessionConfig& cfg, std::uint32_t id,
                           unsigned anchor, std::uint16_t inner_off, const L3Info& inner) noexcept;

// kCount: decapsulated (m is in ctx.relay_downlink); else the drop reason (m untouched).
UplinkDrop relay_from_anchor(UplinkCtx& ctx, rte_mbuf* m, const GreInIp& gre,
                             const SessionConfig& cfg, std::uint32_t id, unsigned anchor) noexcept;

}  // namespace hag::dp
