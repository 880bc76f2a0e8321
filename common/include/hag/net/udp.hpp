// UDP header (RFC 768) with the IPv4 and IPv6 (RFC 8200 §8.1) checksums.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "hag/net/address.hpp"
#include "hag/net/parse_error.hpp"
#include "hag/result.hpp"

namespace hag::net {

inline constexpr std::size_t kUdpHeaderLength = 8;

struct UdpHeader {
    std::uint16_t src_port = 0;
    std::uint16_t dst_port = 0;
    std::uint16_t length = 0;  // header + payload
    std::uint16_t checksum = 0;
    friend bool operator==(const UdpHeader&, const UdpHeader&) = default;
};

struct UdpDatagram {
    UdpHeader header;
    std::span<const std::uint8_t> payload;  // length - 8 octets
};

void encode(const UdpHeader& h, std::vector<std::uint8_t>& out);

// Length in [8, buffer size]; the checksum is not looked at (see the verifying variants).
Result<UdpDatagram, ParseError> parse_udp(std::span<const std::uint8_t> data) noexcept;
// Also verifies the checksum; zero means "none" over IPv4 (RFC 768).
Result<UdpDatagram, ParseError> parse_udp(std::span<const std::uint8_t> data,
                                          const Ipv4Address& src, const Ipv4Address& dst) noexcept;
// Also verifies the checksum, which is mandatory over IPv6 (RFC 8200 §8.1).
Result<UdpDatagram, ParseError> parse_udp(std::span<const std::uint8_t> data,
                                          const Ipv6Address& src, const Ipv6Address& dst) noexcept;

// Checksum to put in a datagram (header with checksum zero + payload); 0 is sent as 0xffff.
std::uint16_t udp_checksum(const Ipv4Address& src, const Ipv4Address& dst,
                           std::span<const std::uint8_t> datagram) noexcept;
std::uint16_t udp_checksum(const Ipv6Address& src, const Ipv6Address& dst,
                           std::span<const std::uint8_t> datagram) noexcept;

}  // namespace hag::net
