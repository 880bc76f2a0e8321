// linkemu's scheduling, without I/O: when a frame that arrived now leaves (delay, jitter,
// optional reordering), whether it is lost, and a bounded queue of frames waiting to leave.
// A test tool (docs/linkemu.md): rate limiting is left to the kernel's tbf / htb.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <queue>
#include <random>
#include <span>
#include <vector>

namespace hag::linkemu {

using Clock = std::chrono::steady_clock;

struct DirectionConfig {
    std::chrono::microseconds delay{0};
    std::chrono::microseconds jitter{0};  // uniform in [-jitter, +jitter], delay never below 0
    double loss = 0.0;                    // probability a frame is dropped, 0..1
    double reorder = 0.0;  // probability a frame skips the delay and overtakes the queue, 0..1
    std::size_t queue_limit = 10000;  // frames waiting; more are dropped (queue_full)
};

struct DirectionCounters {
    std::uint64_t received = 0;
    std::uint64_t forwarded = 0;
    std::uint64_t lost = 0;        // random loss
    std::uint64_t queue_full = 0;  // dropped at the queue limit
    std::uint64_t reordered = 0;   // sent ahead of earlier frames on purpose
    std::uint64_t send_errors = 0;
};

// One direction of the link. Without `reorder` frames leave in arrival order: a frame's
// departure is never before the previous frame's (jitter stretches gaps, it does not swap).
class Direction {
  public:
    Direction(DirectionConfig cfg, std::uint64_t seed) : cfg_(cfg), rng_(seed) {}

    // A frame arrived at `now`: queued with its departure time, or dropped (lost / queue full).
    // Returns false when dropped.
    bool arrive(std::span<const std::uint8_t> frame, Clock::time_point now);
    // The earliest departure waiting, if any.
    [[nodiscard]] std::optional<Clock::time_point> next_departure() const;
    // Calls send(frame) for every frame due at `now`, in departure order; send returns false on
    // an error (counted).
    template <typename Send>
    void depart(Clock::time_point now, Send&& send);

    [[nodiscard]] const DirectionCounters& counters() const { return c_; }
    [[nodiscard]] std::size_t queued() const { return queue_.size(); }

  private:
    struct Frame {
        Clock::time_point departure;
        std::uint64_t order = 0;  // arrival order: ties leave first-come
        std::vector<std::uint8_t> bytes;
        bool operator>(const Frame& o) const {
            return departure != o.departure ? departure > o.departure : order > o.order;
        }
    };
    DirectionConfig cfg_;
    std::mt19937_64 rng_;
    std::priority_queue<Frame, std::vector<Frame>, std::greater<>> queue_;
    Clock::time_point last_departure_{};  // of in-order frames
    std::uint64_t order_ = 0;
    DirectionCounters c_;
};

template <typename Send>
void Direction::depart(Clock::time_point now, Send&& send) {
    while (!queue_.empty() && queue_.top().departure <= now) {
        // priority_queue::top is const; the frame is copied out only by reference here.
        const Frame& f = queue_.top();
        if (send(std::span<const std::uint8_t>(f.bytes))) {
            ++c_.forwarded;
        } else {
            ++c_.send_errors;
        }
        queue_.pop();
    }
}

}  // namespace hag::linkemu
