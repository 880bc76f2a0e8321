#include "pipeline/relay.hpp"

#include <rte_ip.h>

#include "pipeline/packet.hpp"
#include "pipeline/uplink_decap.hpp"

namespace hag::dp {

bool anchor_keyless(const UplinkCtx& ctx, const std::uint8_t* frame, std::uint16_t len,
                    const GreInIp& gre, std::uint32_t& id, int& anchor) noexcept {
    if (gre.ipip || gre.udp || gre.has_key) {
        return false;
    }
    const L3Info inner = parse_gre_inner(frame, len, gre);
    SessionTable::SessionId sid = 0;
    if (!inner.ok || !ctx.sessions->lookup_destination(inner.dst, sid)) {
        return false;
    }
    const SessionConfig* cfg = ctx.sessions->config(sid);
    if (cfg == nullptr) {
        return false;
    }
    for (unsigned i = 0; i < cfg->n_anchors; ++i) {
        const RemoteAnchorConfig& a = cfg->anchors[i];
        if (a.downlink_key == 0 && a.anchor == gre.outer.src && a.prefix.contains(inner.dst)) {
            id = sid;
            anchor = static_cast<int>(i);
            return true;
        }
    }
    return false;
}

UplinkDrop relay_to_anchor(UplinkCtx& ctx, rte_mbuf* m, const SessionConfig& cfg, std::uint32_t id,
                           unsigned anchor, std::uint16_t inner_off, const L3Info& inner) noexcept {
    const RemoteAnchorConfig& a = cfg.anchors[anchor];
    MacAddr next_hop_mac = a.next_hop_mac;  // a static MAC overrides resolution
    if (mac_zero(next_hop_mac)) {
        if (ctx.next_hops == nullptr || a.next_hop >= ctx.next_hops->capacity()) {
            return UplinkDrop::kRelayNoNextHop;
        }
        if (!ctx.next_hops->mac(a.next_hop, next_hop_mac)) {
            ctx.next_hops->want(a.next_hop);
            return UplinkDrop::kRelayNoNextHop;
        }
    }
    const bool v6_outer = a.anchor.family == Family::kIpv6;
    const bool v4_inner = inner.family == Family::kIpv4;
    const std::uint16_t outer_ip_len = v6_outer ? 40 : 20;
    const std::uint16_t gre_len = a.uplink_key != 0 ? 8 : 4;
    const std::uint32_t outer_total = std::uint32_t{outer_ip_len} + gre_len + inner.total_len;
    if (outer_total > ctx.access_mtu) {
        return UplinkDrop::kRelayTooBig;
    }
    // The inner packet's traffic class goes outward (DSCP copied, ECN copied: RFC 6040 normal
    // mode).
    const auto* ip = rte_pktmbuf_mtod_offset(m, const std::uint8_t*, inner_off);
    const auto tc = static_cast<std::uint8_t>(v4_inner ? ip[1] : (ip[0] & 0x0f) << 4 | ip[1] >> 4);
    const std::uint16_t hdr = static_cast<std::uint16_t>(14 + outer_ip_len + gre_len);
    if (inner_off + rte_pktmbuf_headroom(m) < hdr) {
        return UplinkDrop::kRelayFull;
    }
    rte_pktmbuf_adj(m, inner_off);
    if (rte_pktmbuf_pkt_len(m) > inner.total_len) {
        rte_pktmbuf_trim(m, static_cast<std::uint16_t>(rte_pktmbuf_pkt_len(m) - inner.total_len));
    }
    auto* h = reinterpret_cast<std::uint8_t*>(rte_pktmbuf_prepend(m, hdr));  // room checked
    std::memcpy(h, next_hop_mac.data(), 6);
    std::memcpy(h + 6, a.src_mac.data(), 6);
    put16(h + 12, v6_outer ? kEtherIpv6 : kEtherIpv4);
    std::uint8_t* o = h + 14;
    if (v6_outer) {
        put32(o, 6u << 28 | std::uint32_t{tc} << 20);
        put16(o + 4, static_cast<std::uint16_t>(gre_len + inner.total_len));
        o[6] = kIpProtoGre;
        o[7] = ctx.outer_hop_limit;
        std::memcpy(o + 8, a.local.bytes.data(), 16);
        std::memcpy(o + 24, a.anchor.bytes.data(), 16);
    } else {
        o[0] = 0x45;
        o[1] = tc;
        put16(o + 2, static_cast<std::uint16_t>(outer_total));
        put16(o + 4, 0);
        put16(o + 6, 0x4000);  // DF
        o[8] = ctx.outer_hop_limit;
        o[9] = kIpProtoGre;
        put16(o + 10, 0);
        std::memcpy(o + 12, a.local.bytes.data(), 4);
        std::memcpy(o + 16, a.anchor.bytes.data(), 4);
        const std::uint16_t csum = rte_ipv4_cksum(reinterpret_cast<const rte_ipv4_hdr*>(o));
        std::memcpy(o + 10, &csum, sizeof csum);
    }
    std::uint8_t* g = o + outer_ip_len;
    put16(g, a.uplink_key != 0 ? kGreK : 0);
    put16(g + 2, v4_inner ? kEtherIpv4 : kEtherIpv6);
    if (a.uplink_key != 0) {
        put32(g + 4, a.uplink_key);
    }
    m->port = a.port;
    set_l2_l3_len(m, 14, outer_ip_len);
    SessionState& st = ctx.sessions_rw->state(id);
    st.relay_uplink_packets.fetch_add(1, std::memory_order_relaxed);
    st.relay_uplink_bytes.fetch_add(inner.total_len, std::memory_order_relaxed);
    ++ctx.events[static_cast<std::size_t>(UplinkEvent::kRelayUplink)];
    return UplinkDrop::kCount;
}

UplinkDrop relay_from_anchor(UplinkCtx& ctx, rte_mbuf* m, const GreInIp& gre,
                             const SessionConfig& cfg, std::uint32_t id, unsigned anchor) noexcept {
    const RemoteAnchorConfig& a = cfg.anchors[anchor];
    if (gre.udp || gre.ipip || gre.outer.src != a.anchor || gre.outer.dst != a.local) {
        return UplinkDrop::kRelaySpoofedOuter;
    }
    const auto* frame = rte_pktmbuf_mtod(m, const std::uint8_t*);
    const L3Info inner = parse_gre_inner(frame, rte_pktmbuf_data_len(m), gre);
    if (!inner.ok) {
        return UplinkDrop::kInnerMalformed;
    }
    if (!a.prefix.contains(inner.dst)) {
        return UplinkDrop::kRelaySpoofedInner;
    }
    if (ctx.n_relay_downlink == UplinkCtx::kRelayMax) {
        return UplinkDrop::kRelayFull;
    }
    // ECN, as the uplink decapsulates.
    if (!gre_ecn_to_inner(m, gre, inner)) {
        return UplinkDrop::kEcnNotEct;
    }
    // The inner packet in an Ethernet header as the core side would have sent it.
    std::uint8_t* e = gre_inner_to_ethernet(m, gre, inner);
    if (e == nullptr) {
        return UplinkDrop::kNoHeadroom;  // not reached: the GRE header came off
    }
    std::memcpy(e, ctx.core_src_mac.data(), 6);
    std::memcpy(e + 6, ctx.core_src_mac.data(), 6);
    put16(e + 12, inner.family == Family::kIpv4 ? kEtherIpv4 : kEtherIpv6);
    m->port = ctx.core_port;
    set_l2_l3_len(m, 14, inner.header_len);
    ctx.relay_downlink[ctx.n_relay_downlink++] = m;
    SessionState& st = ctx.sessions_rw->state(id);
    st.relay_downlink_packets.fetch_add(1, std::memory_order_relaxed);
    st.relay_downlink_bytes.fetch_add(inner.total_len, std::memory_order_relaxed);
    ++ctx.events[static_cast<std::size_t>(UplinkEvent::kRelayDownlink)];
    return UplinkDrop::kCount;
}

}  // namespace hag::dp
