#include "hag/net/ipv4.hpp"

#include <algorithm>

#include "bytes.hpp"
#include "hag/net/checksum.hpp"

namespace hag::net {

using detail::get16;
using detail::put16;
using detail::put8;

void encode(const Ipv4Header& h, std::vector<std::uint8_t>& out) {
    put8(out, 0x40u | (h.header_length() / 4));
    put8(out, h.tos);
    put16(out, h.total_length);
    put16(out, h.identification);
    put16(out, static_cast<std::uint32_t>(h.flags & 0x7u) << 13 | (h.fragment_offset & 0x1fffu));
    put8(out, h.ttl);
    put8(out, h.protocol);
    put16(out, h.checksum);
    out.insert(out.end(), h.src.begin(), h.src.end());
    out.insert(out.end(), h.dst.begin(), h.dst.end());
    out.insert(out.end(), h.options.begin(), h.options.begin() + h.options_length);
}

std::uint16_t compute_checksum(const Ipv4Header& h) {
    Ipv4Header z = h;
    z.checksum = 0;
    std::vector<std::uint8_t> bytes;
    encode(z, bytes);
    return internet_checksum(bytes);
}

Result<Ipv4Packet, ParseError> parse_ipv4(std::span<const std::uint8_t> data) noexcept {
    if (data.size() < kIpv4MinHeaderLength) {
        return unexpected(ParseError::truncated);
    }
    if (data[0] >> 4 != 4) {
        return unexpected(ParseError::bad_version);
    }
    const std::size_t ihl = (data[0] & 0x0fu) * 4u;
    if (ihl < kIpv4MinHeaderLength || ihl > data.size()) {
        return unexpected(ParseError::bad_header_length);
    }
    const std::size_t total = get16(data, 2);
    if (total < ihl || total > data.size()) {
        return unexpected(ParseError::bad_total_length);
    }
    if (internet_checksum(data.first(ihl)) != 0) {
        return unexpected(ParseError::bad_checksum);
    }
    Ipv4Packet p;
    Ipv4Header& h = p.header;
    h.tos = data[1];
    h.total_length = static_cast<std::uint16_t>(total);
    h.identification = get16(data, 4);
    h.flags = static_cast<std::uint8_t>(data[6] >> 5);
    h.fragment_offset = static_cast<std::uint16_t>(get16(data, 6) & 0x1fffu);
    h.ttl = data[8];
    h.protocol = data[9];
    h.checksum = get16(data, 10);
    std::copy_n(data.begin() + 12, 4, h.src.begin());
    std::copy_n(data.begin() + 16, 4, h.dst.begin());
    h.options_length = static_cast<std::uint8_t>(ihl - kIpv4MinHeaderLength);
    std::copy_n(data.begin() + kIpv4MinHeaderLength, h.options_length, h.options.begin());
    p.payload = data.subspan(ihl, total - ihl);
    return p;
}

}  // namespace hag::net
