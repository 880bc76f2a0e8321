// IPv4 header (RFC 791): encode and bounds-checked parse.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "hag/net/address.hpp"
#include "hag/net/parse_error.hpp"
#include "hag/result.hpp"

namespace hag::net {

inline constexpr std::uint8_t kIpProtoUdp = 17;
inline constexpr std::uint8_t kIpProtoIpv6 = 41;
inline constexpr std::uint8_t kIpProtoGre = 47;
inline constexpr std::size_t kIpv4MinHeaderLength = 20;

struct Ipv4Header {
    std::uint8_t tos = 0;  // DSCP + ECN
    std::uint16_t total_length = 0;
    std::uint16_t identification = 0;
    std::uint8_t flags = 0;             // 3 bits: reserved, DF (0x2), MF (0x1)
    std::uint16_t fragment_offset = 0;  // 13 bits, 8-octet units
    std::uint8_t ttl = 64;
    std::uint8_t protocol = 0;
    std::uint16_t checksum = 0;
    Ipv4Address src{};
    Ipv4Address dst{};
    std::array<std::uint8_t, 40> options{};
    std::uint8_t options_length = 0;  // multiple of 4, <= 40

    [[nodiscard]] std::size_t header_length() const noexcept {
        return kIpv4MinHeaderLength + options_length;
    }
    friend bool operator==(const Ipv4Header&, const Ipv4Header&) = default;
};

struct Ipv4Packet {
    Ipv4Header header;
    std::span<const std::uint8_t> payload;  // [IHL*4, total length) of the input
};

// Appends the header as is (checksum field verbatim).
void encode(const Ipv4Header& h, std::vector<std::uint8_t>& out);
// The header checksum the header should carry (its checksum field is ignored).
std::uint16_t compute_checksum(const Ipv4Header& h);

// Checks version 4, IHL >= 5 and within the buffer, total length within [IHL*4, buffer size],
// the header checksum. Octets after total length (link padding) are ignored.
Result<Ipv4Packet, ParseError> parse_ipv4(std::span<const std::uint8_t> data) noexcept;

}  // namespace hag::net
