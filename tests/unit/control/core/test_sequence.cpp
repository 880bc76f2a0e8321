// PBU replay checks: RFC 6275 §9.5.1 sequence window, RFC 5213 §5.5 timestamps.
#include <catch2/catch.hpp>

#include "core/sequence.hpp"

using namespace hag::control;

TEST_CASE("sequence numbers compare modulo 2^16 (RFC 6275 9.5.1)") {
    REQUIRE(sequence_is_newer(1, 0));
    REQUIRE_FALSE(sequence_is_newer(5, 5));  // equal is not newer
    REQUIRE_FALSE(sequence_is_newer(4, 5));  // older
    REQUIRE(sequence_is_newer(0, 0xffff));   // wrap-around
    REQUIRE(sequence_is_newer(10, 0xfff0));
    REQUIRE(sequence_is_newer(0x7fff, 0));        // 32767 ahead: newer
    REQUIRE_FALSE(sequence_is_newer(0x8000, 0));  // last and the 32768 before: not newer
    REQUIRE_FALSE(sequence_is_newer(0xffff, 0));
    REQUIRE_FALSE(sequence_is_newer(0x0000, 0x8000));
    REQUIRE(sequence_is_newer(0x0001, 0x8002));
}

TEST_CASE("timestamps: validity window and last accepted (RFC 5213 5.5)") {
    const std::uint64_t now = (std::uint64_t{1'700'000'000} << 16);
    const std::uint64_t ms100 = (std::uint64_t{100} << 16) / 1000;
    REQUIRE(check_timestamp(now, now, 0, 300) == TimestampCheck::kOk);
    REQUIRE(check_timestamp(now - 2 * ms100, now, 0, 300) == TimestampCheck::kOk);
    REQUIRE(check_timestamp(now + 2 * ms100, now, 0, 300) == TimestampCheck::kOk);
    REQUIRE(check_timestamp(now - 4 * ms100, now, 0, 300) == TimestampCheck::kOutsideWindow);
    REQUIRE(check_timestamp(now + (std::uint64_t{1} << 16), now, 0, 300) ==
            TimestampCheck::kOutsideWindow);
    REQUIRE(check_timestamp(now, now, now + 1, 300) == TimestampCheck::kLowerThanPrevious);
    REQUIRE(check_timestamp(now, now, now, 300) == TimestampCheck::kOk);
    REQUIRE(check_timestamp(0, now, 0, 300) == TimestampCheck::kOutsideWindow);  // no underflow
}
