// The IPv6 pieces of MIPv6 home registration (RFC 6275) around the mobility header:
//   - the Destination Options header with the Home Address option (§6.3, option type 201) that a
//     mobile node's Binding Update carries (the BU leaves from the care-of address);
//   - the Type 2 Routing Header (§6.4) that carries the home address in the home agent's Binding
//     Acknowledgement to the care-of address;
//   - ICMPv6 Home Agent Address Discovery Request / Reply (§6.5, §6.6, types 144 / 145).
// Parsers take the bytes a raw socket of that protocol delivers (the extension header first),
// check every length against the data present and never read past it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "hag/mh/options.hpp"
#include "hag/result.hpp"

namespace hag::mh {

inline constexpr std::uint8_t kIpProtoRouting = 43;
inline constexpr std::uint8_t kIpProtoEsp = 50;
inline constexpr std::uint8_t kIpProtoDstOpts = 60;
inline constexpr std::uint8_t kIpProtoMobility = 135;
inline constexpr std::uint8_t kHomeAddressOptionType = 201;  // RFC 6275 §6.3 (0xC9)
inline constexpr std::uint8_t kIcmpHaadRequest = 144;        // RFC 6275 §6.5
inline constexpr std::uint8_t kIcmpHaadReply = 145;          // RFC 6275 §6.6

// A Destination Options header holding exactly one Home Address option, and what follows it.
struct HomeAddressHeader {
    Ipv6 home_address{};
    std::uint8_t next_header = 0;           // of what follows: 135 MH, 50 ESP, ...
    std::span<const std::uint8_t> payload;  // the bytes after the Destination Options header
};
// Refused: fewer than 2 octets, a header length past the data, an option running past the
// header, a Home Address option whose length is not 16, two Home Address options or none, an
// unknown option whose type says "discard" (its two high bits not 00, RFC 8200 §4.2).
Result<HomeAddressHeader, std::string> parse_home_address_header(
    std::span<const std::uint8_t> data);
// The header (24 octets: PadN to put the option at 8n+6, as §6.3 asks), then nothing else.
std::vector<std::uint8_t> build_home_address_header(const Ipv6& home_address,
                                                    std::uint8_t next_header);

// A Type 2 Routing Header and what follows it.
struct Type2RoutingHeader {
    Ipv6 home_address{};
    std::uint8_t next_header = 0;
    std::uint8_t segments_left = 0;
    std::span<const std::uint8_t> payload;
};
// Refused: not routing type 2, Hdr Ext Len not 2, segments left above 1, truncated.
Result<Type2RoutingHeader, std::string> parse_type2_routing_header(
    std::span<const std::uint8_t> data);
// 24 octets, segments left 1 (§6.4).
std::vector<std::uint8_t> build_type2_routing_header(const Ipv6& home_address,
                                                     std::uint8_t next_header);

// ICMPv6 Home Agent Address Discovery (checksum left zero: a raw ICMPv6 socket fills it).
struct HaadRequest {
    std::uint16_t identifier = 0;
};
Result<HaadRequest, std::string> parse_haad_request(std::span<const std::uint8_t> icmp);
std::vector<std::uint8_t> build_haad_request(std::uint16_t identifier);
std::vector<std::uint8_t> build_haad_reply(std::uint16_t identifier,
                                           const std::vector<Ipv6>& home_agents);
// The addresses of a reply (refused: wrong type or code, a length not 8 + 16n).
Result<std::vector<Ipv6>, std::string> parse_haad_reply(std::span<const std::uint8_t> icmp,
                                                        std::uint16_t& identifier);

// An IPv6 header (40 octets) for packets sent whole on a raw IPPROTO_RAW socket.
std::vector<std::uint8_t> build_ipv6_header(const Ipv6& src, const Ipv6& dst,
                                            std::uint8_t next_header, std::size_t payload_length,
                                            std::uint8_t hop_limit = 64);

}  // namespace hag::mh
