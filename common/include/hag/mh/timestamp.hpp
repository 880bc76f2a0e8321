// The Timestamp option's clock (RFC 5213 §8.8): a 64-bit fixed-point count of seconds since
// 1970-01-01 00:00 UTC, 48 bits of seconds and 16 bits of 1/65536 s. (Not the NTP format.)
#pragma once

#include <chrono>
#include <cstdint>

namespace hag::mh {

[[nodiscard]] inline std::uint64_t timestamp_from(
    std::chrono::system_clock::time_point t) noexcept {
    using namespace std::chrono;
    const auto ns = duration_cast<nanoseconds>(t.time_since_epoch()).count();
    if (ns <= 0) {
        return 0;
    }
    const auto u = static_cast<std::uint64_t>(ns);
    const std::uint64_t secs = u / 1'000'000'000ULL;
    const std::uint64_t frac = ((u % 1'000'000'000ULL) << 16) / 1'000'000'000ULL;
    return (secs << 16) | frac;
}

[[nodiscard]] inline std::uint64_t timestamp_now() noexcept {
    return timestamp_from(std::chrono::system_clock::now());
}

}  // namespace hag::mh
