// Encoding and decoding of Mobility Header messages. Decoding starts at the Payload Proto octet
// (what an IPPROTO_MH raw socket delivers), checks every length against the data present and
// reports why it refuses a message. Encoding places each option at its alignment with Pad1 /
// PadN and pads the message to a multiple of 8 octets; the checksum is left zero.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "hag/mh/errors.hpp"
#include "hag/mh/messages.hpp"
#include "hag/net/checksum.hpp"
#include "hag/result.hpp"

namespace hag::mh {

Result<Message, DecodeError> decode(std::span<const std::uint8_t> mh);
std::vector<std::uint8_t> encode(const Message& m);

// Fills the MH checksum (RFC 6275 §6.1.1: pseudo-header with upper-layer protocol 135).
void set_checksum(std::span<std::uint8_t> mh, const net::Ipv6Address& src,
                  const net::Ipv6Address& dst) noexcept;
bool checksum_ok(std::span<const std::uint8_t> mh, const net::Ipv6Address& src,
                 const net::Ipv6Address& dst) noexcept;

// Readable multi-line descriptions for logs and tools.
std::string describe(const Message& m);
std::string describe(const Option& o);
std::string_view mh_type_name(MhType t) noexcept;

}  // namespace hag::mh
