#include "hag/net/ipv6.hpp"

#include <algorithm>

#include "bytes.hpp"

namespace hag::net {

using detail::get16;
using detail::get32;
using detail::put16;
using detail::put32;
using detail::put8;

void encode(const Ipv6Header& h, std::vector<std::uint8_t>& out) {
    put32(out,
          6u << 28 | static_cast<std::uint32_t>(h.traffic_class) << 20 | (h.flow_label & 0xfffffu));
    put16(out, h.payload_length);
    put8(out, h.next_header);
    put8(out, h.hop_limit);
    out.insert(out.end(), h.src.begin(), h.src.end());
    out.insert(out.end(), h.dst.begin(), h.dst.end());
}

Result<Ipv6Packet, ParseError> parse_ipv6(std::span<const std::uint8_t> data) noexcept {
    if (data.size() < kIpv6HeaderLength) {
        return unexpected(ParseError::truncated);
    }
    const std::uint32_t first = get32(data, 0);
    if (first >> 28 != 6) {
        return unexpected(ParseError::bad_version);
    }
    Ipv6Packet p;
    Ipv6Header& h = p.header;
    h.traffic_class = static_cast<std::uint8_t>(first >> 20);
    h.flow_label = first & 0xfffffu;
    h.payload_length = get16(data, 4);
    h.next_header = data[6];
    h.hop_limit = data[7];
    std::copy_n(data.begin() + 8, 16, h.src.begin());
    std::copy_n(data.begin() + 24, 16, h.dst.begin());
    if (h.payload_length > data.size() - kIpv6HeaderLength) {
        return unexpected(ParseError::truncated);
    }
    p.payload = data.subspan(kIpv6HeaderLength, h.payload_length);
    return p;
}

Result<UpperLayer, ParseError> find_upper_layer(std::uint8_t next_header,
                                                std::span<const std::uint8_t> payload,
                                                std::size_t max_headers) noexcept {
    std::size_t offset = 0;
    for (std::size_t count = 0;; ++count) {
        std::size_t length = 0;
        switch (next_header) {
            case kIpProtoHopByHop:
                if (count != 0) {
                    return unexpected(ParseError::misplaced_hop_by_hop);  // RFC 8200 §4.1
                }
                [[fallthrough]];
            case kIpProtoRouting:
            case kIpProtoDestOpts:
                if (payload.size() - offset < 2) {
                    return unexpected(ParseError::truncated);
                }
                length = (static_cast<std::size_t>(payload[offset + 1]) + 1) * 8;
                break;
            case kIpProtoFragment:
                if (payload.size() - offset < 8) {
                    return unexpected(ParseError::truncated);
                }
                if ((get16(payload, offset + 2) & 0xfff8u) != 0) {
                    return unexpected(ParseError::non_first_fragment);
                }
                length = 8;
                break;
            case kIpProtoAh:  // RFC 4302 §2.2: length in 4-octet units minus 2
                if (payload.size() - offset < 2) {
                    return unexpected(ParseError::truncated);
                }
                length = (static_cast<std::size_t>(payload[offset + 1]) + 2) * 4;
                break;
            default:
                return UpperLayer{next_header, offset, payload.subspan(offset)};
        }
        if (count >= max_headers) {
            return unexpected(ParseError::extension_chain_too_long);
        }
        if (length > payload.size() - offset) {
            return unexpected(ParseError::bad_header_length);
        }
        next_header = payload[offset];
        offset += length;
    }
}

}  // namespace hag::net
