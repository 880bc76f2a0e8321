// PMIPv6 signalling over IPv4 transport: UDP port 5436 (RFC 5844 §4). The UDP payload is the
// framing hag-control uses: a 40-octet IPv6 header (next header 135, hop limit 255, IPv4-mapped
// source and destination) followed by the mobility header, whose checksum covers the IPv6
// pseudo-header of those inner addresses. No kernel help on UDP: magsim fills and checks it.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "hag/mh/options.hpp"
#include "hag/result.hpp"

namespace hag::magsim {

inline constexpr std::uint16_t kPmipUdpPort = 5436;
inline constexpr std::size_t kInnerIpv6HeaderLen = 40;

// ::ffff:a.b.c.d (RFC 4291 §2.5.5.2).
mh::Ipv6 ipv4_mapped(const mh::Ipv4& a) noexcept;

// Wraps an encoded MH (its checksum field is overwritten) in the inner IPv6 header.
std::vector<std::uint8_t> build_udp_payload(std::vector<std::uint8_t> mh, const mh::Ipv6& src,
                                            const mh::Ipv6& dst);

enum class UdpFramingError : std::uint8_t {
    kTooShort,        // shorter than the inner IPv6 header plus an MH header
    kNotIpv6,         // inner version is not 6
    kNotMobility,     // inner next header is not 135
    kLengthMismatch,  // inner payload length disagrees with the datagram
    kBadChecksum,     // MH checksum wrong for the inner addresses
};
std::string_view to_string(UdpFramingError e) noexcept;

struct UdpMh {
    mh::Ipv6 inner_src{};
    mh::Ipv6 inner_dst{};
    std::span<const std::uint8_t> mh;  // points into the datagram
};
// Checks the framing and the MH checksum; the MH itself is left to mh::decode.
Result<UdpMh, UdpFramingError> parse_udp_payload(std::span<const std::uint8_t> payload);

}  // namespace hag::magsim
