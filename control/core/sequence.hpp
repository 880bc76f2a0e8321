// Replay checks of a Proxy Binding Update, pure functions (no state, no clock).
//
// Sequence numbers, RFC 6275 §9.5.1: "the sequence number comparison MUST be performed modulo
// 2**16 ... A Sequence Number in a received Binding Update is considered less than or equal to
// the last received number if its value lies in the range of the last received number and the
// preceding 32768 values, inclusive." -> reject with SEQUENCE_NUMBER_OUT_OF_WINDOW (135).
//
// Timestamps, RFC 5213 §5.5 (Timestamp option, §8.8: 64-bit, 48 bits of seconds since
// 1970-01-01 UTC and 16 bits of 1/65536 s): outside TimestampValidityWindow (default 300 ms) of
// the LMA's clock -> TIMESTAMP_MISMATCH; older than the last accepted one of the session ->
// TIMESTAMP_LOWER_THAN_PREV_ACCEPTED. The status values come from hag/mh/constants.hpp.
// NOTE: the timestamp rule is written from the RFC as remembered; the search corpus held no copy
// of RFC 5213 §5.5 to re-check the wording (the sequence rule above is quoted from RFC 6275).
#pragma once

#include <cstdint>

namespace hag::control {

// True when `received` is newer than `last` in the modulo-2^16 window of RFC 6275 §9.5.1.
[[nodiscard]] constexpr bool sequence_is_newer(std::uint16_t received,
                                               std::uint16_t last) noexcept {
    auto diff = static_cast<std::uint16_t>(received - last);
    return diff != 0 && diff < 0x8000;
}

enum class TimestampCheck : std::uint8_t { kOk, kOutsideWindow, kLowerThanPrevious };

// |a - b| in 1/65536 s units of the RFC 5213 §8.8 timestamp format.
[[nodiscard]] constexpr std::uint64_t timestamp_distance(std::uint64_t a,
                                                         std::uint64_t b) noexcept {
    return a > b ? a - b : b - a;
}

// window_ms: TimestampValidityWindow; last_accepted 0 = no PBU accepted yet for the session.
[[nodiscard]] constexpr TimestampCheck check_timestamp(std::uint64_t received, std::uint64_t now,
                                                       std::uint64_t last_accepted,
                                                       std::uint32_t window_ms) noexcept {
    const std::uint64_t window = (static_cast<std::uint64_t>(window_ms) << 16) / 1000;
    if (timestamp_distance(received, now) > window)
        return TimestampCheck::kOutsideWindow;
    if (last_accepted != 0 && received < last_accepted)
        return TimestampCheck::kLowerThanPrevious;
    return TimestampCheck::kOk;
}

}  // namespace hag::control
