// hag-linkemu's scheduling (tools/linkemu/schedule.hpp): delay, jitter without reordering,
// loss ratio, reordering on request, the queue limit. Virtual time: no clock is read.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "schedule.hpp"

using namespace hag::linkemu;
using namespace std::chrono_literals;
using Bytes = std::vector<std::uint8_t>;

namespace {

Bytes frame(std::uint32_t n) {
    return Bytes{static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
                 static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
}

std::uint32_t number(std::span<const std::uint8_t> f) {
    return static_cast<std::uint32_t>(f[0]) << 24 | f[1] << 16 | f[2] << 8 | f[3];
}

// Frames 0..n-1 arriving every `gap`; returns (number, departure - arrival) in departure order.
std::vector<std::pair<std::uint32_t, Clock::duration>> run(Direction& d, int n,
                                                           Clock::duration gap) {
    const auto t0 = Clock::time_point{} + 1s;
    std::vector<std::pair<std::uint32_t, Clock::duration>> out;
    std::vector<Clock::time_point> arrived;
    auto now = t0;
    auto send = [&](std::span<const std::uint8_t> f) {
        const auto k = number(f);
        out.emplace_back(k, now - arrived.at(k));
        return true;
    };
    for (int i = 0; i < n; ++i) {
        const auto at = t0 + i * gap;
        // Departures due before this arrival, each at its own time.
        for (auto t = d.next_departure(); t && *t <= at; t = d.next_departure()) {
            now = *t;
            d.depart(now, send);
        }
        now = at;
        arrived.push_back(now);
        d.arrive(frame(static_cast<std::uint32_t>(i)), now);
    }
    // Step through the remaining departures exactly.
    while (auto t = d.next_departure()) {
        now = std::max(now, *t);
        d.depart(now, send);
    }
    return out;
}

}  // namespace

TEST_CASE("a frame leaves after the configured delay, in order") {
    Direction d(DirectionConfig{20ms, 0ms, 0.0, 0.0, 100}, 1);
    const auto out = run(d, 50, 1ms);
    REQUIRE(out.size() == 50);
    for (std::size_t i = 0; i < out.size(); ++i) {
        CHECK(out[i].first == i);
        CHECK(out[i].second == 20ms);
    }
    CHECK(d.counters().forwarded == 50);
    CHECK(d.queued() == 0);
}

TEST_CASE("jitter spreads the delay within bounds and never reorders") {
    // Frames further apart than the jitter's span: each gets its own delay.
    Direction d(DirectionConfig{20ms, 5ms, 0.0, 0.0, 10000}, 2);
    const auto out = run(d, 500, 11ms);
    REQUIRE(out.size() == 500);
    Clock::duration lo = 1h, hi = 0s;
    for (std::size_t i = 0; i < out.size(); ++i) {
        CHECK(out[i].first == i);
        lo = std::min(lo, out[i].second);
        hi = std::max(hi, out[i].second);
    }
    CHECK(lo >= 15ms);
    CHECK(lo <= 16ms);
    CHECK(hi >= 24ms);
    CHECK(hi <= 25ms);
    // Frames closer together: order is kept by holding a frame behind the one before it, so
    // delays stay within [delay - jitter, delay + jitter] and the order never changes.
    Direction fast(DirectionConfig{20ms, 5ms, 0.0, 0.0, 10000}, 3);
    const auto out2 = run(fast, 2000, 100us);
    REQUIRE(out2.size() == 2000);
    for (std::size_t i = 0; i < out2.size(); ++i) {
        CHECK(out2[i].first == i);
        CHECK(out2[i].second >= 15ms);
        CHECK(out2[i].second <= 25ms);
    }
    CHECK(fast.counters().reordered == 0);
}

TEST_CASE("random loss drops about the configured share") {
    Direction d(DirectionConfig{0ms, 0ms, 0.1, 0.0, 100000}, 3);
    const auto out = run(d, 20000, 10us);
    const auto& c = d.counters();
    CHECK(c.received == 20000);
    CHECK(c.lost + c.forwarded == 20000);
    CHECK(out.size() == c.forwarded);
    CHECK(c.lost > 1700);  // 10 % of 20000 = 2000, sigma ~42
    CHECK(c.lost < 2300);
}

TEST_CASE("reordering on request: some frames overtake the delayed queue") {
    Direction d(DirectionConfig{10ms, 0ms, 0.0, 0.25, 10000}, 4);
    const auto out = run(d, 1000, 1ms);
    REQUIRE(out.size() == 1000);
    int swapped = 0;
    for (std::size_t i = 1; i < out.size(); ++i) {
        swapped += out[i].first < out[i - 1].first ? 1 : 0;
    }
    CHECK(swapped > 100);
    CHECK(d.counters().reordered > 150);
    CHECK(d.counters().reordered < 350);
}

TEST_CASE("the queue limit bounds memory; the excess is counted") {
    Direction d(DirectionConfig{1s, 0ms, 0.0, 0.0, 10}, 5);
    const auto t = Clock::time_point{} + 1s;
    for (int i = 0; i < 25; ++i) {
        d.arrive(frame(static_cast<std::uint32_t>(i)), t);
    }
    CHECK(d.queued() == 10);
    CHECK(d.counters().queue_full == 15);
    int sent = 0;
    d.depart(t + 999ms, [&](auto) { return ++sent, true; });
    CHECK(sent == 0);
    d.depart(t + 1s, [&](auto) { return ++sent, false; });
    CHECK(sent == 10);
    CHECK(d.counters().send_errors == 10);
    CHECK(d.queued() == 0);
}
