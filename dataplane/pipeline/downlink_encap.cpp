#include "pipeline/downlink_encap.hpp"

#include <rte_cycles.h>
#include <rte_ether.h>
#include <rte_ip.h>

#include "multipath/scheduler.hpp"
#include "pipeline/packet.hpp"

namespace hag::dp {

namespace {

constexpr std::uint16_t kGreFlagKey = 0x2000;
constexpr std::uint16_t kGreFlagSeq = 0x1000;

inline bool mac_zero(const MacAddr& m) noexcept {
    return (m[0] | m[1] | m[2] | m[3] | m[4] | m[5]) == 0;
}

// Returns the drop reason, or kCount when the packet was encapsulated.
inline DownlinkDrop encap_one(DownlinkCtx& ctx, rte_mbuf* m, std::uint64_t now,
                              std::uint64_t hz) noexcept {
    const L2Info l2 = parse_l2(m);
    if (l2.l3_offset == 0) {
        return rte_pktmbuf_data_len(m) < 14 ? DownlinkDrop::kMalformed : DownlinkDrop::kNotIp;
    }
    if (l2.ether_type != kEtherIpv4 && l2.ether_type != kEtherIpv6) {
        return DownlinkDrop::kNotIp;
    }
    const L3Info l3 = parse_l3(m, l2.l3_offset, l2.ether_type);
    if (!l3.ok) {
        return DownlinkDrop::kMalformed;
    }
    SessionTable::SessionId id = 0;
    if (!ctx.sessions->lookup_destination(l3.dst, id)) {
        return DownlinkDrop::kNoSubscriber;
    }
    const SessionConfig* cfg = ctx.sessions->config(id);
    if (cfg == nullptr) {
        return DownlinkDrop::kNoSubscriber;  // removed between lookup and read
    }
    if (cfg->plan.n_order == 0) {
        return DownlinkDrop::kNoLivePath;
    }
    // One usable path: no scheduler work. Several: striping (multipath/scheduler.hpp), whose
    // state has one writer, this worker (RSS keeps a subscriber's downlink on one worker).
    SessionState& st = ctx.sessions_rw->state(id);
    const unsigned pi = cfg->plan.n_order == 1
                            ? cfg->plan.order[0]
                            : stripe_pick(*cfg, st.stripe, l3.total_len, now, hz);
    const PathConfig* path = &cfg->paths[pi];
    MacAddr next_hop_mac = path->next_hop_mac;  // a static MAC overrides resolution
    if (mac_zero(next_hop_mac)) {
        if (ctx.next_hops == nullptr || path->next_hop >= ctx.next_hops->capacity()) {
            return DownlinkDrop::kNoNextHop;
        }
        if (!ctx.next_hops->mac(path->next_hop, next_hop_mac)) {
            ctx.next_hops->want(path->next_hop);
            return DownlinkDrop::kNoNextHop;
        }
    }

    // Inner TTL / hop limit: hag routes the packet into the tunnel.
    auto* ip = rte_pktmbuf_mtod_offset(m, std::uint8_t*, l2.l3_offset);
    std::uint8_t dscp = 0;
    if (l3.family == Family::kIpv4) {
        if (ip[8] <= 1) {
            return DownlinkDrop::kTtlExpired;
        }
        ip[8] = static_cast<std::uint8_t>(ip[8] - 1);
        // RFC 1624 incremental update: TTL is the high byte of its 16-bit word.
        std::uint32_t sum = static_cast<std::uint32_t>(get16(ip + 10)) + 0x0100;
        sum = (sum & 0xffff) + (sum >> 16);
        put16(ip + 10, static_cast<std::uint16_t>(sum));
        dscp = static_cast<std::uint8_t>(ip[1] >> 2);
    } else {
        if (ip[7] <= 1) {
            return DownlinkDrop::kTtlExpired;
        }
        ip[7] = static_cast<std::uint8_t>(ip[7] - 1);
        dscp = static_cast<std::uint8_t>(((ip[0] & 0x0f) << 2) | (ip[1] >> 6));
    }

    const bool v6_outer = path->coa.family == Family::kIpv6;
    const std::uint16_t gre_len = cfg->gre_sequence ? 12 : 8;
    const std::uint16_t outer_ip_len = v6_outer ? 40 : 20;
    const std::uint16_t outer_total =
        static_cast<std::uint16_t>(outer_ip_len + gre_len + l3.total_len);
    if (static_cast<std::uint32_t>(outer_ip_len) + gre_len + l3.total_len > ctx.access_mtu) {
        return DownlinkDrop::kTooBig;
    }
    // Drop the core-side L2 header and any Ethernet padding after the IP packet.
    rte_pktmbuf_adj(m, l2.l3_offset);
    if (rte_pktmbuf_pkt_len(m) > l3.total_len) {
        rte_pktmbuf_trim(m, static_cast<std::uint16_t>(rte_pktmbuf_pkt_len(m) - l3.total_len));
    }
    auto* h = reinterpret_cast<std::uint8_t*>(
        rte_pktmbuf_prepend(m, static_cast<std::uint16_t>(14 + outer_ip_len + gre_len)));
    if (h == nullptr) {
        return DownlinkDrop::kNoHeadroom;
    }
    // Ethernet.
    std::memcpy(h, next_hop_mac.data(), 6);
    std::memcpy(h + 6, path->src_mac.data(), 6);
    put16(h + 12, v6_outer ? kEtherIpv6 : kEtherIpv4);
    std::uint8_t* o = h + 14;
    if (v6_outer) {
        put32(o, 6u << 28 | std::uint32_t{dscp} << 22);
        put16(o + 4, static_cast<std::uint16_t>(gre_len + l3.total_len));
        o[6] = kIpProtoGre;
        o[7] = ctx.outer_hop_limit;
        std::memcpy(o + 8, path->local.bytes.data(), 16);
        std::memcpy(o + 24, path->coa.bytes.data(), 16);
    } else {
        o[0] = 0x45;
        o[1] = static_cast<std::uint8_t>(dscp << 2);
        put16(o + 2, outer_total);
        put16(o + 4, 0);       // identification: DF set, never fragmented here
        put16(o + 6, 0x4000);  // DF
        o[8] = ctx.outer_hop_limit;
        o[9] = kIpProtoGre;
        put16(o + 10, 0);
        std::memcpy(o + 12, path->local.bytes.data(), 4);
        std::memcpy(o + 16, path->coa.bytes.data(), 4);
        // rte_ipv4_cksum returns the checksum ready to store as is (network byte order).
        const std::uint16_t csum = rte_ipv4_cksum(reinterpret_cast<const rte_ipv4_hdr*>(o));
        std::memcpy(o + 10, &csum, sizeof csum);
    }
    // GRE (RFC 2890): K always, S when the session uses sequence numbers.
    std::uint8_t* g = o + outer_ip_len;
    put16(g, static_cast<std::uint16_t>(kGreFlagKey | (cfg->gre_sequence ? kGreFlagSeq : 0)));
    put16(g + 2, l3.family == Family::kIpv4 ? kEtherIpv4 : kEtherIpv6);
    put32(g + 4, path->downlink_key);
    if (cfg->gre_sequence) {
        // One sequence space per session across all its paths (the far end reorders by it).
        put32(g + 8, st.next_downlink_seq.fetch_add(1, std::memory_order_relaxed));
    }
    m->port = path->port;
    m->l2_len = 14;
    m->l3_len = outer_ip_len;
    st.downlink_packets.fetch_add(1, std::memory_order_relaxed);
    st.downlink_bytes.fetch_add(l3.total_len, std::memory_order_relaxed);
    st.path_downlink_packets[pi].fetch_add(1, std::memory_order_relaxed);
    st.path_downlink_bytes[pi].fetch_add(l3.total_len, std::memory_order_relaxed);
    return DownlinkDrop::kCount;
}

}  // namespace

uint16_t downlink_encap(DownlinkCtx& ctx, rte_mbuf** pkts, uint16_t n) noexcept {
    const std::uint64_t t0 = rte_rdtsc();
    const std::uint64_t hz = ctx.tsc_hz != 0 ? ctx.tsc_hz : rte_get_tsc_hz();
    uint16_t kept = 0;
    for (uint16_t i = 0; i < n; ++i) {
        if (i + 1 < n) {
            rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void*));
        }
        const DownlinkDrop why = encap_one(ctx, pkts[i], t0, hz);
        if (why == DownlinkDrop::kCount) {
            pkts[kept++] = pkts[i];
        } else {
            ++ctx.drops[static_cast<std::size_t>(why)];
            rte_pktmbuf_free(pkts[i]);
        }
    }
    ctx.encapsulated += kept;
    ctx.cycles.cycles += rte_rdtsc() - t0;
    ctx.cycles.packets += n;
    ++ctx.cycles.bursts;
    return kept;
}

}  // namespace hag::dp
