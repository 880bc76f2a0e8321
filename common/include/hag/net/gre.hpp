// GRE header, RFC 2784 with the key and sequence number extensions of RFC 2890.
//
//  0                   1                   2                   3
// |C| |K|S| Reserved0       | Ver |         Protocol Type         |
// |      Checksum (optional)      |       Reserved1 (optional)    |
// |                         Key (optional)                        |
// |                 Sequence Number (optional)                    |
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "hag/net/parse_error.hpp"
#include "hag/result.hpp"

namespace hag::net {

inline constexpr std::uint16_t kGreFlagChecksum = 0x8000;
inline constexpr std::uint16_t kGreFlagKey = 0x2000;
inline constexpr std::uint16_t kGreFlagSequence = 0x1000;
// RFC 2784 §2.5: bits 1-5 non-zero must be discarded unless RFC 1701 is implemented; RFC 2890
// gives bits 2 and 3 (K, S) a meaning, so bits 1, 4 and 5 stay forbidden.
inline constexpr std::uint16_t kGreForbiddenBits = 0x4000 | 0x0800 | 0x0400;
// Bits 6-12: sent as zero, ignored on receipt (kept here so a header re-encodes to its bytes).
inline constexpr std::uint16_t kGreIgnoredBits = 0x03f8;
inline constexpr std::uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr std::uint16_t kEtherTypeIpv6 = 0x86dd;

struct GreHeader {
    bool checksum_present = false;
    std::uint16_t reserved0 = 0;  // bits 6-12 only (kGreIgnoredBits)
    std::uint16_t protocol_type = 0;
    std::uint16_t checksum = 0;   // when checksum_present
    std::uint16_t reserved1 = 0;  // when checksum_present; ignored on receipt
    std::optional<std::uint32_t> key;
    std::optional<std::uint32_t> sequence;

    [[nodiscard]] std::size_t length() const noexcept {
        return 4 + (checksum_present ? 4 : 0) + (key ? 4 : 0) + (sequence ? 4 : 0);
    }
    friend bool operator==(const GreHeader&, const GreHeader&) = default;
};

struct GrePacket {
    GreHeader header;
    std::span<const std::uint8_t> payload;  // everything after the GRE header
};

// Appends the header as is (checksum verbatim; see fill_gre_checksum).
void encode(const GreHeader& h, std::vector<std::uint8_t>& out);
// Computes and stores the checksum of a GRE packet (header with C set + payload) in place.
// Returns false if the buffer is not a GRE header with C set.
bool fill_gre_checksum(std::span<std::uint8_t> gre_packet) noexcept;

// Rejects version != 0, forbidden reserved bits, truncation, and a bad checksum when C is set
// (RFC 2784 §2.5: the checksum covers the GRE header and the payload).
Result<GrePacket, ParseError> parse_gre(std::span<const std::uint8_t> data) noexcept;

}  // namespace hag::net
