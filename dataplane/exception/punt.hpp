// Worker side of the exception path: a stage that takes the frames classify_frame() punts out of
// a received burst and hands them to the main lcore through a ring, and the dequeue of what the
// kernel wrote to the port's TAP (sent by the worker on the port's own TX queue).
//
// Workers never block: a full ring drops the frame and counts it (`ring_full`).
#pragma once

#include <rte_mbuf.h>
#include <rte_ring.h>

#include <array>
#include <cstdint>

#include "exception/classify.hpp"
#include "pipeline/stage.hpp"

namespace hag::dp {

// One worker's view of one port's exception path (counters belong to the worker).
struct PuntCtx {
    const exc::OwnAddresses* own = nullptr;
    rte_ring* to_kernel = nullptr;    // worker(s) -> main lcore (multi-producer)
    rte_ring* from_kernel = nullptr;  // main lcore -> the worker that owns TX queue 0
    std::array<std::uint64_t, static_cast<std::size_t>(exc::Punt::kCount)> punted{};
    std::uint64_t ring_full = 0;  // punted frames dropped: the ring to the main lcore was full
    std::uint64_t from_kernel_frames = 0;  // frames from the TAP handed to the port
    // The port's VLAN (ports.vlan_id; 0 = none): punted frames with this (outer) tag reach the
    // TAP without it, as the worker adds it to what the kernel sends.
    std::uint16_t vlan = 0;
    StageCycles cycles;
    [[nodiscard]] bool enabled() const noexcept { return to_kernel != nullptr; }
};

// Classifies frame by frame; punted frames go to ctx.to_kernel (or are freed and counted when it
// is full), the rest stay, in order, at the front of pkts. Returns how many stay.
uint16_t exception_punt(PuntCtx& ctx, rte_mbuf** pkts, uint16_t n) noexcept;

// Takes up to `max` frames the kernel wrote to the port's TAP; the caller transmits them.
inline uint16_t exception_from_kernel(PuntCtx& ctx, rte_mbuf** pkts, uint16_t max) noexcept {
    if (ctx.from_kernel == nullptr) {
        return 0;
    }
    const auto n = static_cast<uint16_t>(
        rte_ring_dequeue_burst(ctx.from_kernel, reinterpret_cast<void**>(pkts), max, nullptr));
    ctx.from_kernel_frames += n;
    return n;
}

}  // namespace hag::dp
