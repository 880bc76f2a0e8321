// The data plane's address type (no DPDK): tables, the fast path's header parsers and their
// fuzz target share it.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>

namespace hag::dp {

enum class Family : std::uint8_t { kNone = 0, kIpv4 = 4, kIpv6 = 6 };

// An IPv4 or IPv6 address; IPv4 in the first four octets.
struct IpAddr {
    Family family = Family::kNone;
    std::array<std::uint8_t, 16> bytes{};
    static IpAddr v6(const std::array<std::uint8_t, 16>& a) { return {Family::kIpv6, a}; }
    static IpAddr v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
        return {Family::kIpv4, {a, b, c, d}};
    }
    // Two 64-bit compares: the defaulted operator called memcmp (~1 % of the uplink worker,
    // which compares every packet's outer source with its session's care-of addresses).
    bool operator==(const IpAddr& o) const noexcept {
        std::uint64_t x[2], y[2];
        std::memcpy(x, bytes.data(), 16);
        std::memcpy(y, o.bytes.data(), 16);
        return family == o.family && ((x[0] ^ y[0]) | (x[1] ^ y[1])) == 0;
    }
};

}  // namespace hag::dp
