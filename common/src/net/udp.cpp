#include "hag/net/udp.hpp"

#include "bytes.hpp"
#include "hag/net/checksum.hpp"
#include "hag/net/ipv4.hpp"

namespace hag::net {

using detail::get16;
using detail::put16;

void encode(const UdpHeader& h, std::vector<std::uint8_t>& out) {
    put16(out, h.src_port);
    put16(out, h.dst_port);
    put16(out, h.length);
    put16(out, h.checksum);
}

Result<UdpDatagram, ParseError> parse_udp(std::span<const std::uint8_t> data) noexcept {
    if (data.size() < kUdpHeaderLength) {
        return unexpected(ParseError::truncated);
    }
    UdpDatagram d;
    d.header = UdpHeader{get16(data, 0), get16(data, 2), get16(data, 4), get16(data, 6)};
    if (d.header.length < kUdpHeaderLength || d.header.length > data.size()) {
        return unexpected(ParseError::bad_total_length);
    }
    d.payload = data.subspan(kUdpHeaderLength, d.header.length - kUdpHeaderLength);
    return d;
}

namespace {

std::uint32_t ipv4_pseudo_sum(const Ipv4Address& src, const Ipv4Address& dst,
                              std::size_t length) noexcept {
    std::uint32_t sum = ones_sum(src);
    sum = ones_sum(dst, sum);
    return sum + kIpProtoUdp + static_cast<std::uint32_t>(length);
}

}  // namespace

std::uint16_t udp_checksum(const Ipv4Address& src, const Ipv4Address& dst,
                           std::span<const std::uint8_t> datagram) noexcept {
    const auto c = fold_complement(ones_sum(datagram, ipv4_pseudo_sum(src, dst, datagram.size())));
    return c == 0 ? 0xffff : c;
}

std::uint16_t udp_checksum(const Ipv6Address& src, const Ipv6Address& dst,
                           std::span<const std::uint8_t> datagram) noexcept {
    const auto c = ipv6_upper_layer_checksum(src, dst, kIpProtoUdp, datagram);
    return c == 0 ? 0xffff : c;
}

Result<UdpDatagram, ParseError> parse_udp(std::span<const std::uint8_t> data,
                                          const Ipv4Address& src, const Ipv4Address& dst) noexcept {
    auto d = parse_udp(data);
    if (!d) {
        return d;
    }
    const auto bytes = data.first(d->header.length);
    if (d->header.checksum != 0 &&
        fold_complement(ones_sum(bytes, ipv4_pseudo_sum(src, dst, bytes.size()))) != 0) {
        return unexpected(ParseError::bad_checksum);
    }
    return d;
}

Result<UdpDatagram, ParseError> parse_udp(std::span<const std::uint8_t> data,
                                          const Ipv6Address& src, const Ipv6Address& dst) noexcept {
    auto d = parse_udp(data);
    if (!d) {
        return d;
    }
    if (d->header.checksum == 0 ||
        ipv6_upper_layer_checksum(src, dst, kIpProtoUdp, data.first(d->header.length)) != 0) {
        return unexpected(ParseError::bad_checksum);
    }
    return d;
}

}  // namespace hag::net
