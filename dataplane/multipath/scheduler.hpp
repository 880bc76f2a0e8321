// Downlink striping scheduler (issue #7): which live path of a session carries the next packet.
//
// Two modes, per session (SessionConfig::striping):
//  - weighted: deficit round robin by bytes. Each path in turn gets a quantum of
//    kStripeQuantumBytes x share and sends packets while its deficit covers them; a packet of L
//    bytes costs L x share_max. Integer arithmetic, so the byte shares match the weights exactly
//    over time (within one quantum per path). Paths of weight 0 are not used while another live
//    path has a weight; when no live path has one, every live path gets an equal share.
//  - overflow: token buckets in preference order. A path's bucket fills at its rate (rate_kbps,
//    else weight_kbps; 0 = not limited) up to its burst; the packet goes to the first path whose
//    bucket holds it, else to the last path in the order (the overflow link takes the excess).
//
// Time is the caller's: `now` in TSC cycles and `hz` cycles per second, so tests drive a fake
// clock. One live (or usable) path costs nothing: stripe_pick returns it without touching the
// state. The state resets itself when the session's config version changes (a path went down or
// came back, weights changed): the new config takes effect on the next packet.
//
// No allocation, no locks, no virtual calls; bounded loops (see stripe_pick_weighted).
#pragma once

#include <algorithm>
#include <cstdint>

#include "multipath/stripe_state.hpp"
#include "tables/session_table.hpp"

namespace hag::dp {

inline constexpr std::uint32_t kStripeQuantumBytes = 1536;
inline constexpr std::uint32_t kMaxOverflowBurstBytes = 16u << 20;  // 16 MiB
inline constexpr std::uint32_t kMinOverflowBurstBytes = 3028;       // two 1514-byte frames
inline constexpr unsigned kOverflowDefaultBurstMs = 10;  // default bucket: 10 ms at the rate

// Fills cfg.plan (all but version) from the mode and the paths. Called by SessionTable::upsert.
void plan_striping(SessionConfig& cfg) noexcept;

// Resets `st` for the plan (called on a version change).
inline void stripe_reset(const StripePlan& plan, StripeState& st, std::uint64_t now,
                         std::uint64_t hz, StripingMode mode) noexcept {
    st.version = plan.version;
    st.cursor = 0;
    st.credit.fill(0);
    st.last_tsc = now;
    if (mode == StripingMode::kWeighted) {
        const unsigned first = plan.order[0];
        st.credit[first] = std::int64_t{kStripeQuantumBytes} * plan.share[first];
    } else {
        for (unsigned k = 0; k < plan.n_order; ++k) {
            const unsigned i = plan.order[k];
            st.credit[i] = static_cast<std::int64_t>(plan.burst_bytes[i] * hz);  // full
        }
    }
}

// Deficit round robin. Loop bound: each round adds kStripeQuantumBytes x share_max to the
// heaviest path, so a packet of L bytes needs at most ceil(L / kStripeQuantumBytes) rounds of
// n_order steps.
inline unsigned stripe_pick_weighted(const StripePlan& plan, StripeState& st,
                                     std::uint32_t bytes) noexcept {
    const std::int64_t cost = std::int64_t{bytes} * plan.share_max;
    unsigned k = st.cursor;
    for (;;) {
        const unsigned i = plan.order[k];
        if (st.credit[i] >= cost) {
            st.credit[i] -= cost;
            st.cursor = static_cast<std::uint8_t>(k);
            return i;
        }
        k = k + 1 == plan.n_order ? 0 : k + 1;
        const unsigned next = plan.order[k];
        st.credit[next] += std::int64_t{kStripeQuantumBytes} * plan.share[next];
    }
}

inline unsigned stripe_pick_overflow(const StripePlan& plan, StripeState& st, std::uint32_t bytes,
                                     std::uint64_t now, std::uint64_t hz) noexcept {
    if (now > st.last_tsc) {
        const std::uint64_t dt = now - st.last_tsc;
        st.last_tsc = now;
        for (unsigned k = 0; k < plan.n_order; ++k) {
            const unsigned i = plan.order[k];
            const auto cap = static_cast<std::int64_t>(plan.burst_bytes[i] * hz);
            std::uint64_t add = 0;
            if (__builtin_mul_overflow(dt, plan.rate_bytes[i], &add) ||
                add >= static_cast<std::uint64_t>(cap - std::min(st.credit[i], cap))) {
                st.credit[i] = cap;
            } else {
                st.credit[i] += static_cast<std::int64_t>(add);
            }
        }
    }
    const auto cost = static_cast<std::int64_t>(std::uint64_t{bytes} * hz);
    for (unsigned k = 0; k < plan.n_order; ++k) {
        const unsigned i = plan.order[k];
        if (plan.rate_bytes[i] == 0) {
            return i;  // not limited: nothing overflows past this path
        }
        if (st.credit[i] >= cost) {
            st.credit[i] -= cost;
            return i;
        }
    }
    return plan.order[plan.n_order - 1];  // every bucket is empty: the overflow link takes it
}

// The path index for a packet of `bytes` (inner IP bytes). Requires cfg.plan.n_order >= 1.
inline unsigned stripe_pick(const SessionConfig& cfg, StripeState& st, std::uint32_t bytes,
                            std::uint64_t now, std::uint64_t hz) noexcept {
    const StripePlan& plan = cfg.plan;
    if (plan.n_order == 1) {
        return plan.order[0];
    }
    if (st.version != plan.version) {
        stripe_reset(plan, st, now, hz, cfg.striping);
    }
    return cfg.striping == StripingMode::kWeighted ? stripe_pick_weighted(plan, st, bytes)
                                                   : stripe_pick_overflow(plan, st, bytes, now, hz);
}

}  // namespace hag::dp
