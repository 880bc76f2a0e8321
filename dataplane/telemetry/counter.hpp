// Per-worker counters that another thread may read while the worker runs.
//
// A Counter has exactly one writer (the worker whose context holds it). The writer adds with a
// relaxed load and a relaxed store, which on x86-64 is a plain `add` to memory: no lock prefix,
// no fence. Readers (telemetry, the Prometheus endpoint, the periodic log) load it relaxed and
// sum the counters of all workers; a read may miss the last few increments, never tears.
// Counters of different workers live in different cache lines (contexts are cache-line aligned),
// so workers never write a shared line.
#pragma once

#include <atomic>
#include <cstdint>

namespace hag::dp {

class Counter {
  public:
    Counter() = default;
    Counter(const Counter&) = delete;
    Counter& operator=(const Counter&) = delete;

    // Writer side (the owning worker only).
    void add(std::uint64_t n) noexcept {
        v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    Counter& operator+=(std::uint64_t n) noexcept {
        add(n);
        return *this;
    }
    Counter& operator++() noexcept {
        add(1);
        return *this;
    }
    // Tests and single-threaded setup only.
    void reset(std::uint64_t v = 0) noexcept { v_.store(v, std::memory_order_relaxed); }

    // Reader side (any thread).
    [[nodiscard]] std::uint64_t read() const noexcept { return v_.load(std::memory_order_relaxed); }
    operator std::uint64_t() const noexcept { return read(); }  // NOLINT: reads like a number

  private:
    static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
    std::atomic<std::uint64_t> v_{0};
};

}  // namespace hag::dp
