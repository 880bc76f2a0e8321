#include "exception/punt.hpp"

#include <rte_cycles.h>

#include <cstring>

namespace hag::dp {

namespace {

inline void hand_over(PuntCtx& ctx, rte_mbuf** punt, unsigned np) noexcept {
    const unsigned q =
        rte_ring_enqueue_burst(ctx.to_kernel, reinterpret_cast<void**>(punt), np, nullptr);
    if (q < np) {
        ctx.ring_full += np - q;
        rte_pktmbuf_free_bulk(punt + q, np - q);
    }
}

// Removes an outer 802.1Q tag carrying `vlan` (priority bits ignored).
inline void strip_port_vlan(rte_mbuf* m, std::uint16_t vlan) noexcept {
    auto* e = rte_pktmbuf_mtod(m, std::uint8_t*);
    if (rte_pktmbuf_data_len(m) < 18 || e[12] != 0x81 || e[13] != 0x00 ||
        ((e[14] << 8 | e[15]) & 0x0fff) != vlan) {
        return;
    }
    std::memmove(e + 4, e, 12);
    rte_pktmbuf_adj(m, 4);
}

}  // namespace

uint16_t exception_punt(PuntCtx& ctx, rte_mbuf** pkts, uint16_t n) noexcept {
    if (!ctx.enabled() || n == 0) {
        return n;
    }
    const std::uint64_t t0 = rte_rdtsc();
    constexpr unsigned kChunk = 64;
    rte_mbuf* punt[kChunk];
    uint16_t kept = 0;
    unsigned np = 0;
    for (uint16_t i = 0; i < n; ++i) {
        rte_mbuf* m = pkts[i];
        // Headers are read from the first segment only (as everywhere in the fast path).
        const exc::Punt why = exc::classify_frame(rte_pktmbuf_mtod(m, const std::uint8_t*),
                                                  rte_pktmbuf_data_len(m), *ctx.own);
        if (why == exc::Punt::kNone) {
            pkts[kept++] = m;
        } else {
            ++ctx.punted[static_cast<std::size_t>(why)];
            if (ctx.vlan != 0) {
                strip_port_vlan(m, ctx.vlan);
            }
            punt[np++] = m;
            if (np == kChunk) {
                hand_over(ctx, punt, np);
                np = 0;
            }
        }
    }
    if (np > 0) {
        hand_over(ctx, punt, np);
    }
    ctx.cycles.cycles += rte_rdtsc() - t0;
    ctx.cycles.packets += n;
    ++ctx.cycles.bursts;
    return kept;
}

}  // namespace hag::dp
