// Whole packets for tests, tools and the MAG simulator (not for the data-plane fast path).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "hag/net/address.hpp"

namespace hag::net {

// IPv6 header (payload length from the payload, the given next header) + payload. A payload longer
// than 65535 octets is truncated to 65535 (no jumbograms).
std::vector<std::uint8_t> build_ipv6_packet(const Ipv6Address& src, const Ipv6Address& dst,
                                            std::uint8_t next_header,
                                            std::span<const std::uint8_t> payload,
                                            std::uint8_t hop_limit = 64);

// IPv6 (next header 47) + GRE (K and S when given, protocol from the inner IP version: 0x86DD or
// 0x0800; anything else is sent as 0x6558 transparent Ethernet bridging) + inner bytes.
std::vector<std::uint8_t> build_gre_ipv6(const Ipv6Address& outer_src, const Ipv6Address& outer_dst,
                                         std::optional<std::uint32_t> key,
                                         std::optional<std::uint32_t> seq,
                                         std::span<const std::uint8_t> inner,
                                         std::uint8_t hop_limit = 64);
// The same with an IPv4 outer header (protocol 47, DF set, header checksum filled).
std::vector<std::uint8_t> build_gre_ipv4(const Ipv4Address& outer_src, const Ipv4Address& outer_dst,
                                         std::optional<std::uint32_t> key,
                                         std::optional<std::uint32_t> seq,
                                         std::span<const std::uint8_t> inner,
                                         std::uint8_t ttl = 64);
// build_gre: the outer header family follows the address type.
inline std::vector<std::uint8_t> build_gre(const Ipv6Address& outer_src,
                                           const Ipv6Address& outer_dst,
                                           std::optional<std::uint32_t> key,
                                           std::optional<std::uint32_t> seq,
                                           std::span<const std::uint8_t> inner) {
    return build_gre_ipv6(outer_src, outer_dst, key, seq, inner);
}
inline std::vector<std::uint8_t> build_gre(const Ipv4Address& outer_src,
                                           const Ipv4Address& outer_dst,
                                           std::optional<std::uint32_t> key,
                                           std::optional<std::uint32_t> seq,
                                           std::span<const std::uint8_t> inner) {
    return build_gre_ipv4(outer_src, outer_dst, key, seq, inner);
}
// IPv6 (next header 135) + the Mobility Header, its checksum (octets 4-5) filled over the
// pseudo-header (RFC 6275 §6.1.1). An MH shorter than 6 octets is copied unchanged.
std::vector<std::uint8_t> build_ipv6_mh(const Ipv6Address& src, const Ipv6Address& dst,
                                        std::span<const std::uint8_t> mh_bytes,
                                        std::uint8_t hop_limit = 64);
// IPv6 / IPv4 + UDP with the checksum filled (e.g. PMIPv6 over UDP 5436).
std::vector<std::uint8_t> build_udp_ipv6(const Ipv6Address& src, const Ipv6Address& dst,
                                         std::uint16_t src_port, std::uint16_t dst_port,
                                         std::span<const std::uint8_t> payload);
std::vector<std::uint8_t> build_udp_ipv4(const Ipv4Address& src, const Ipv4Address& dst,
                                         std::uint16_t src_port, std::uint16_t dst_port,
                                         std::span<const std::uint8_t> payload);

}  // namespace hag::net
