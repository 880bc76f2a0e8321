// PMIPv6 signalling over IPv4 (RFC 5844): the mobility header travels in UDP to port 5436.
// hag puts an IPv6 header (next header 135, payload length = MH length) in front of the MH in the
// UDP payload, and also accepts the bare MH from peers that send that; the MH checksum is then
// computed over the inner IPv6 header's addresses, or over the IPv4-mapped outer addresses for
// the bare form (docs/control.md, "IPv4 transport"). Bounds-checked; fuzzed in tests/fuzz/mh.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "hag/net/checksum.hpp"
#include "hag/result.hpp"

namespace hag::mh {

inline constexpr std::uint16_t kPmipUdpPort = 5436;

// The UDP 5436 payload, parsed. `mh` points into the datagram.
struct UdpSignalling {
    bool bare = false;             // no inner IPv6 header
    net::Ipv6Address inner_src{};  // pseudo-header addresses of the MH checksum
    net::Ipv6Address inner_dst{};
    std::span<const std::uint8_t> mh;
};

enum class UdpFramingError {
    kTooShort,        // fewer octets than an MH header (or than the IPv6 header it starts with)
    kNotMobility,     // inner next header is not 135 (extension headers are not accepted)
    kLengthMismatch,  // inner payload length disagrees with the datagram
    kBadChecksum,
};
std::string_view to_string(UdpFramingError e) noexcept;

// outer_src/outer_dst: IPv4-mapped addresses of the datagram (used for the bare form).
Result<UdpSignalling, UdpFramingError> parse_udp_signalling(std::span<const std::uint8_t> payload,
                                                            const net::Ipv6Address& outer_src,
                                                            const net::Ipv6Address& outer_dst);
// Builds a UDP 5436 payload around an encoded MH (its checksum is filled here).
std::vector<std::uint8_t> build_udp_signalling(std::vector<std::uint8_t> mh, bool bare,
                                               const net::Ipv6Address& src,
                                               const net::Ipv6Address& dst);

}  // namespace hag::mh
