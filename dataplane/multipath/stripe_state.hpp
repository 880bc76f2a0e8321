// Downlink striping: the per-session mode and the scheduler's per-session state. Kept free of
// other data-plane headers so that tables/session_table.hpp can hold it next to SessionState.
//
// Threading rule: a session's StripeState has ONE writer, the worker that serves the session's
// downlink. hag-dataplane runs one worker today; with several, RSS on real NICs hashes the inner
// destination (the subscriber's address), so all downlink packets of a subscriber reach the same
// worker queue and the rule holds. The state is plain memory (no atomics): the main lcore never
// writes it; a config swap is noticed by the worker through SessionConfig::version.
#pragma once

#include <array>
#include <cstdint>

namespace hag::dp {

inline constexpr unsigned kMaxStripePaths = 8;  // == kMaxPaths (checked in session_table.hpp)

enum class StripingMode : std::uint8_t {
    // Deficit round robin by bytes over the live paths, each path's share in proportion to its
    // weight (weight_kbps); all weights zero = equal shares.
    kWeighted = 0,
    // Primary-first overflow: fill the live paths in preference order, each up to its rate
    // (token bucket); what exceeds every bucket goes to the last live path.
    kOverflow = 1,
};

struct StripeState {
    // SessionConfig::version the state was set up for; 0 = never (versions start at 1).
    std::uint32_t version = 0;
    std::uint8_t cursor = 0;  // weighted: position in SessionConfig::order being served
    // Weighted: deficit of each path (bytes x the largest share). Overflow: tokens of each
    // path (bytes x TSC hz). Indexed by path index.
    std::array<std::int64_t, kMaxStripePaths> credit{};
    std::uint64_t last_tsc = 0;  // overflow: when the buckets were last refilled
};

}  // namespace hag::dp

namespace hag::dp {

// What the scheduler needs of a session's config, derived from its paths by plan_striping()
// (multipath/scheduler.hpp) when the session is upserted, so the per-packet work reads it as is.
struct StripePlan {
    std::uint32_t version = 0;  // unique per published config (SessionTable numbers them)
    std::uint8_t n_live = 0;    // live paths
    std::uint8_t n_order = 0;   // paths the scheduler uses (<= n_live)
    // Path indices in scheduling order: weighted = path order; overflow = preference, then path
    // order.
    std::array<std::uint8_t, kMaxStripePaths> order{};
    // Weighted: each path's share (its weight; 1 when every live weight is 0) and the largest.
    std::array<std::uint32_t, kMaxStripePaths> share{};
    std::uint32_t share_max = 0;
    // Overflow: each path's rate in bytes per second (0 = not limited) and bucket depth in bytes.
    std::array<std::uint64_t, kMaxStripePaths> rate_bytes{};
    std::array<std::uint32_t, kMaxStripePaths> burst_bytes{};
};

}  // namespace hag::dp
