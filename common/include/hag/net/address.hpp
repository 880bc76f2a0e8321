// IPv4 / IPv6 addresses and prefixes: strict text parsing (inet_pton-like), canonical
// formatting (RFC 5952 for IPv6), prefix containment.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "hag/net/checksum.hpp"  // Ipv6Address

namespace hag::net {

using Ipv4Address = std::array<std::uint8_t, 4>;

// Dotted quad, exactly four decimal parts 0..255, no leading zeros ("010.0.0.1" is rejected, as
// inet_pton does), no spaces.
std::optional<Ipv4Address> parse_ipv4_address(std::string_view text) noexcept;
// RFC 4291 §2.2 text forms: eight groups of 1-4 hex digits, one "::", optional dotted-quad tail.
std::optional<Ipv6Address> parse_ipv6_address(std::string_view text) noexcept;

std::string format(const Ipv4Address& a);

// IPv4-mapped IPv6 addresses, ::ffff:a.b.c.d (RFC 4291 §2.5.5.2): how hag holds IPv4 care-of
// and LMA addresses next to IPv6 ones, and the pseudo-header addresses of UDP 5436 signalling.
Ipv6Address ipv4_mapped(const Ipv4Address& a) noexcept;
bool is_ipv4_mapped(const Ipv6Address& a) noexcept;
Ipv4Address mapped_ipv4(const Ipv6Address& a) noexcept;  // the last four octets
// RFC 5952: lower case, no leading zeros, longest run (>= 2) of zero groups as "::".
std::string format(const Ipv6Address& a);

struct Ipv4Prefix {
    Ipv4Address address{};
    std::uint8_t length = 0;  // 0..32
    friend bool operator==(const Ipv4Prefix&, const Ipv4Prefix&) = default;
};

struct Ipv6Prefix {
    Ipv6Address address{};
    std::uint8_t length = 0;  // 0..128
    friend bool operator==(const Ipv6Prefix&, const Ipv6Prefix&) = default;
};

// "address/length"; the length is decimal without leading zeros. Host bits may be set: use
// canonical() to clear them, is_canonical() to require them clear.
std::optional<Ipv4Prefix> parse_ipv4_prefix(std::string_view text) noexcept;
std::optional<Ipv6Prefix> parse_ipv6_prefix(std::string_view text) noexcept;

Ipv4Prefix canonical(const Ipv4Prefix& p) noexcept;
Ipv6Prefix canonical(const Ipv6Prefix& p) noexcept;
bool is_canonical(const Ipv4Prefix& p) noexcept;
bool is_canonical(const Ipv6Prefix& p) noexcept;

bool contains(const Ipv4Prefix& p, const Ipv4Address& a) noexcept;
bool contains(const Ipv6Prefix& p, const Ipv6Address& a) noexcept;
// True when every address of `inner` is in `outer`.
bool contains(const Ipv4Prefix& outer, const Ipv4Prefix& inner) noexcept;
bool contains(const Ipv6Prefix& outer, const Ipv6Prefix& inner) noexcept;

// "address/length" of the prefix as stored (call canonical() first for the canonical form).
std::string format(const Ipv4Prefix& p);
std::string format(const Ipv6Prefix& p);

}  // namespace hag::net
