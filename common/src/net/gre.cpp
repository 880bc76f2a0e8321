#include "hag/net/gre.hpp"

#include "bytes.hpp"
#include "hag/net/checksum.hpp"

namespace hag::net {

using detail::get16;
using detail::get32;
using detail::put16;
using detail::put32;

void encode(const GreHeader& h, std::vector<std::uint8_t>& out) {
    std::uint32_t flags = h.reserved0 & kGreIgnoredBits;
    if (h.checksum_present)
        flags |= kGreFlagChecksum;
    if (h.key)
        flags |= kGreFlagKey;
    if (h.sequence)
        flags |= kGreFlagSequence;
    put16(out, flags);  // version 0
    put16(out, h.protocol_type);
    if (h.checksum_present) {
        put16(out, h.checksum);
        put16(out, h.reserved1);
    }
    if (h.key)
        put32(out, *h.key);
    if (h.sequence)
        put32(out, *h.sequence);
}

bool fill_gre_checksum(std::span<std::uint8_t> gre_packet) noexcept {
    if (gre_packet.size() < 8 || (gre_packet[0] & 0x80u) == 0) {
        return false;
    }
    detail::set16(gre_packet, 4, 0);
    detail::set16(gre_packet, 4, internet_checksum(gre_packet));
    return true;
}

Result<GrePacket, ParseError> parse_gre(std::span<const std::uint8_t> data) noexcept {
    if (data.size() < 4) {
        return unexpected(ParseError::truncated);
    }
    const std::uint16_t flags = get16(data, 0);
    if ((flags & 0x7u) != 0) {
        return unexpected(ParseError::bad_version);  // RFC 2784 §2.3.1: version 0
    }
    if ((flags & kGreForbiddenBits) != 0) {
        return unexpected(ParseError::reserved_bits_set);
    }
    GrePacket p;
    GreHeader& h = p.header;
    h.checksum_present = (flags & kGreFlagChecksum) != 0;
    h.reserved0 = flags & kGreIgnoredBits;
    h.protocol_type = get16(data, 2);
    std::size_t at = 4;
    const std::size_t need = 4 + (h.checksum_present ? 4u : 0u) +
                             ((flags & kGreFlagKey) ? 4u : 0u) +
                             ((flags & kGreFlagSequence) ? 4u : 0u);
    if (data.size() < need) {
        return unexpected(ParseError::truncated);
    }
    if (h.checksum_present) {
        h.checksum = get16(data, 4);
        h.reserved1 = get16(data, 6);
        at += 4;
        if (internet_checksum(data) != 0) {
            return unexpected(ParseError::bad_checksum);
        }
    }
    if (flags & kGreFlagKey) {
        h.key = get32(data, at);
        at += 4;
    }
    if (flags & kGreFlagSequence) {
        h.sequence = get32(data, at);
        at += 4;
    }
    p.payload = data.subspan(at);
    return p;
}

}  // namespace hag::net
