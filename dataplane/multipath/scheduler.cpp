#include "multipath/scheduler.hpp"

#include <algorithm>

namespace hag::dp {

static_assert(kMaxStripePaths == kMaxPaths);

void plan_striping(SessionConfig& cfg) noexcept {
    StripePlan& plan = cfg.plan;
    const std::uint32_t version = plan.version;
    plan = StripePlan{};
    plan.version = version;
    std::array<std::uint8_t, kMaxPaths> live{};
    for (unsigned i = 0; i < cfg.n_paths && i < kMaxPaths; ++i) {
        if (cfg.paths[i].live) {
            live[plan.n_live++] = static_cast<std::uint8_t>(i);
        }
    }
    if (plan.n_live == 0) {
        return;
    }
    if (cfg.striping == StripingMode::kWeighted) {
        bool any_weight = false;
        for (unsigned k = 0; k < plan.n_live; ++k) {
            any_weight = any_weight || cfg.paths[live[k]].weight != 0;
        }
        for (unsigned k = 0; k < plan.n_live; ++k) {
            const unsigned i = live[k];
            const std::uint32_t share = any_weight ? cfg.paths[i].weight : 1;
            if (share == 0) {
                continue;  // weight unknown while others have one: not used
            }
            plan.share[i] = share;
            plan.share_max = std::max(plan.share_max, share);
            plan.order[plan.n_order++] = static_cast<std::uint8_t>(i);
        }
        return;
    }
    // Overflow: preference, then path (BID) order.
    std::stable_sort(live.begin(), live.begin() + plan.n_live, [&cfg](auto a, auto b) {
        return cfg.paths[a].preference < cfg.paths[b].preference;
    });
    for (unsigned k = 0; k < plan.n_live; ++k) {
        const unsigned i = live[k];
        const PathConfig& p = cfg.paths[i];
        const std::uint64_t kbps = p.rate_kbps != 0 ? p.rate_kbps : p.weight;
        plan.order[plan.n_order++] = static_cast<std::uint8_t>(i);
        plan.rate_bytes[i] = kbps * 125;  // kbit/s -> bytes/s
        if (kbps == 0) {
            continue;
        }
        std::uint64_t burst = cfg.overflow_burst_bytes;
        if (burst == 0) {
            burst = std::max<std::uint64_t>(plan.rate_bytes[i] * kOverflowDefaultBurstMs / 1000,
                                            kMinOverflowBurstBytes);
        }
        plan.burst_bytes[i] = static_cast<std::uint32_t>(std::min<std::uint64_t>(
            std::max<std::uint64_t>(burst, kMinOverflowBurstBytes), kMaxOverflowBurstBytes));
    }
}

}  // namespace hag::dp
