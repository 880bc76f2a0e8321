// IPv6 header (RFC 8200) and the extension-header walk to the upper-layer protocol.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "hag/net/address.hpp"
#include "hag/net/parse_error.hpp"
#include "hag/result.hpp"

namespace hag::net {

inline constexpr std::size_t kIpv6HeaderLength = 40;
inline constexpr std::uint8_t kIpProtoHopByHop = 0;
inline constexpr std::uint8_t kIpProtoRouting = 43;
inline constexpr std::uint8_t kIpProtoFragment = 44;
inline constexpr std::uint8_t kIpProtoEsp = 50;
inline constexpr std::uint8_t kIpProtoAh = 51;
inline constexpr std::uint8_t kIpProtoNoNext = 59;
inline constexpr std::uint8_t kIpProtoDestOpts = 60;
inline constexpr std::uint8_t kIpProtoMobility = 135;  // RFC 6275: the walk stops here

struct Ipv6Header {
    std::uint8_t traffic_class = 0;
    std::uint32_t flow_label = 0;  // 20 bits
    std::uint16_t payload_length = 0;
    std::uint8_t next_header = 0;
    std::uint8_t hop_limit = 64;
    Ipv6Address src{};
    Ipv6Address dst{};
    friend bool operator==(const Ipv6Header&, const Ipv6Header&) = default;
};

struct Ipv6Packet {
    Ipv6Header header;
    std::span<const std::uint8_t> payload;  // payload_length octets after the fixed header
};

void encode(const Ipv6Header& h, std::vector<std::uint8_t>& out);

// Version 6, 40 octets present, payload length within the buffer (jumbograms are not supported:
// a zero payload length is an empty payload). Octets after the payload are ignored.
Result<Ipv6Packet, ParseError> parse_ipv6(std::span<const std::uint8_t> data) noexcept;

struct UpperLayer {
    std::uint8_t protocol = 0;           // e.g. 17, 47, 135, 59 (no next header), 50 (ESP)
    std::size_t offset = 0;              // from the start of the IPv6 payload
    std::span<const std::uint8_t> data;  // the upper-layer header and what follows
};

inline constexpr std::size_t kMaxExtensionHeaders = 8;

// Walks Hop-by-Hop, Routing, Fragment, Destination Options and AH headers (at most
// `max_headers`) from `next_header` over `payload`. A non-first fragment has no upper layer.
Result<UpperLayer, ParseError> find_upper_layer(
    std::uint8_t next_header, std::span<const std::uint8_t> payload,
    std::size_t max_headers = kMaxExtensionHeaders) noexcept;

}  // namespace hag::net
