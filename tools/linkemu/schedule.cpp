#include "schedule.hpp"

#include <algorithm>

namespace hag::linkemu {

bool Direction::arrive(std::span<const std::uint8_t> frame, Clock::time_point now) {
    ++c_.received;
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    if (cfg_.loss > 0.0 && unit(rng_) < cfg_.loss) {
        ++c_.lost;
        return false;
    }
    if (queue_.size() >= cfg_.queue_limit) {
        ++c_.queue_full;
        return false;
    }
    Clock::time_point departure;
    if (cfg_.reorder > 0.0 && unit(rng_) < cfg_.reorder) {
        departure = now;  // overtakes whatever waits
        if (!queue_.empty()) {
            ++c_.reordered;
        }
    } else {
        auto d = cfg_.delay;
        if (cfg_.jitter.count() > 0) {
            std::uniform_int_distribution<std::int64_t> j(-cfg_.jitter.count(),
                                                          cfg_.jitter.count());
            d = std::max(std::chrono::microseconds(0), d + std::chrono::microseconds(j(rng_)));
        }
        departure = std::max(now + d, last_departure_);
        last_departure_ = departure;
    }
    queue_.push(Frame{departure, order_++, std::vector<std::uint8_t>(frame.begin(), frame.end())});
    return true;
}

std::optional<Clock::time_point> Direction::next_departure() const {
    if (queue_.empty()) {
        return std::nullopt;
    }
    return queue_.top().departure;
}

}  // namespace hag::linkemu
