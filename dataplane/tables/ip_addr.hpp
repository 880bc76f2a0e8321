// The data plane's address type (no DPDK): tables, the fast path's header parsers and their
// fuzz target share it.
#pragma once

#include <array>
#include <cstdint>

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
    bool operator==(const IpAddr&) const = default;
};

}  // namespace hag::dp
