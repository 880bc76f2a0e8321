// Internet checksum (RFC 1071) and the IPv6 upper-layer pseudo-header sum (RFC 8200 §8.1),
// used for the Mobility Header (RFC 6275 §6.1.1, upper-layer protocol 135), UDP and ICMPv6.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace hag::net {

using Ipv6Address = std::array<std::uint8_t, 16>;

// One's-complement sum of 16-bit big-endian words, not folded and not complemented, so sums of
// several pieces can be added. An odd trailing octet is padded with zero.
std::uint32_t ones_sum(std::span<const std::uint8_t> data, std::uint32_t initial = 0) noexcept;

// Folds a 32-bit one's-complement sum to 16 bits and complements it.
std::uint16_t fold_complement(std::uint32_t sum) noexcept;

// RFC 1071 checksum of a buffer (e.g. an IPv4 header with its checksum field zero).
std::uint16_t internet_checksum(std::span<const std::uint8_t> data) noexcept;

// Checksum of an IPv6 upper-layer packet: pseudo-header (src, dst, upper-layer length, next
// header) plus the payload, whose checksum field must be zero when computing and is included as
// is when verifying (a correct packet then yields 0).
std::uint16_t ipv6_upper_layer_checksum(const Ipv6Address& src, const Ipv6Address& dst,
                                        std::uint8_t next_header,
                                        std::span<const std::uint8_t> payload) noexcept;

}  // namespace hag::net
