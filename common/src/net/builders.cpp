#include "hag/net/builders.hpp"

#include <algorithm>

#include "bytes.hpp"
#include "hag/net/checksum.hpp"
#include "hag/net/gre.hpp"
#include "hag/net/ipv4.hpp"
#include "hag/net/ipv6.hpp"
#include "hag/net/udp.hpp"

namespace hag::net {
namespace {

std::uint16_t gre_protocol_for(std::span<const std::uint8_t> inner) noexcept {
    if (!inner.empty() && inner[0] >> 4 == 6)
        return kEtherTypeIpv6;
    if (!inner.empty() && inner[0] >> 4 == 4)
        return kEtherTypeIpv4;
    return 0x6558;
}

void append_gre(std::vector<std::uint8_t>& out, std::optional<std::uint32_t> key,
                std::optional<std::uint32_t> seq, std::span<const std::uint8_t> inner) {
    GreHeader g;
    g.protocol_type = gre_protocol_for(inner);
    g.key = key;
    g.sequence = seq;
    encode(g, out);
    out.insert(out.end(), inner.begin(), inner.end());
}

std::vector<std::uint8_t> ipv6_packet(const Ipv6Address& src, const Ipv6Address& dst,
                                      std::uint8_t next_header, std::size_t payload_length,
                                      std::uint8_t hop_limit) {
    Ipv6Header h;
    h.src = src;
    h.dst = dst;
    h.next_header = next_header;
    h.hop_limit = hop_limit;
    h.payload_length = static_cast<std::uint16_t>(payload_length);
    std::vector<std::uint8_t> out;
    out.reserve(kIpv6HeaderLength + payload_length);
    encode(h, out);
    return out;
}

std::vector<std::uint8_t> ipv4_packet(const Ipv4Address& src, const Ipv4Address& dst,
                                      std::uint8_t protocol, std::size_t payload_length,
                                      std::uint8_t ttl) {
    Ipv4Header h;
    h.src = src;
    h.dst = dst;
    h.protocol = protocol;
    h.ttl = ttl;
    h.flags = 0x2;  // DF
    h.total_length = static_cast<std::uint16_t>(kIpv4MinHeaderLength + payload_length);
    h.checksum = compute_checksum(h);
    std::vector<std::uint8_t> out;
    out.reserve(h.total_length);
    encode(h, out);
    return out;
}

std::size_t gre_length(std::optional<std::uint32_t> key, std::optional<std::uint32_t> seq) {
    return 4 + (key ? 4 : 0) + (seq ? 4 : 0);
}

}  // namespace

std::vector<std::uint8_t> build_ipv6_packet(const Ipv6Address& src, const Ipv6Address& dst,
                                            std::uint8_t next_header,
                                            std::span<const std::uint8_t> payload,
                                            std::uint8_t hop_limit) {
    const auto n = std::min<std::size_t>(payload.size(), 0xffff);
    auto out = ipv6_packet(src, dst, next_header, n, hop_limit);
    out.insert(out.end(), payload.begin(), payload.begin() + static_cast<std::ptrdiff_t>(n));
    return out;
}

std::vector<std::uint8_t> build_gre_ipv6(const Ipv6Address& outer_src, const Ipv6Address& outer_dst,
                                         std::optional<std::uint32_t> key,
                                         std::optional<std::uint32_t> seq,
                                         std::span<const std::uint8_t> inner,
                                         std::uint8_t hop_limit) {
    auto out = ipv6_packet(outer_src, outer_dst, kIpProtoGre, gre_length(key, seq) + inner.size(),
                           hop_limit);
    append_gre(out, key, seq, inner);
    return out;
}

std::vector<std::uint8_t> build_gre_ipv4(const Ipv4Address& outer_src, const Ipv4Address& outer_dst,
                                         std::optional<std::uint32_t> key,
                                         std::optional<std::uint32_t> seq,
                                         std::span<const std::uint8_t> inner, std::uint8_t ttl) {
    auto out =
        ipv4_packet(outer_src, outer_dst, kIpProtoGre, gre_length(key, seq) + inner.size(), ttl);
    append_gre(out, key, seq, inner);
    return out;
}

std::vector<std::uint8_t> build_ipv6_mh(const Ipv6Address& src, const Ipv6Address& dst,
                                        std::span<const std::uint8_t> mh_bytes,
                                        std::uint8_t hop_limit) {
    auto out = ipv6_packet(src, dst, kIpProtoMobility, mh_bytes.size(), hop_limit);
    out.insert(out.end(), mh_bytes.begin(), mh_bytes.end());
    if (mh_bytes.size() >= 6) {
        auto mh = std::span<std::uint8_t>(out).subspan(kIpv6HeaderLength);
        detail::set16(mh, 4, 0);
        detail::set16(mh, 4, ipv6_upper_layer_checksum(src, dst, kIpProtoMobility, mh));
    }
    return out;
}

std::vector<std::uint8_t> build_udp_ipv6(const Ipv6Address& src, const Ipv6Address& dst,
                                         std::uint16_t src_port, std::uint16_t dst_port,
                                         std::span<const std::uint8_t> payload) {
    const std::size_t len = kUdpHeaderLength + payload.size();
    auto out = ipv6_packet(src, dst, kIpProtoUdp, len, 64);
    encode(UdpHeader{src_port, dst_port, static_cast<std::uint16_t>(len), 0}, out);
    out.insert(out.end(), payload.begin(), payload.end());
    auto udp = std::span<std::uint8_t>(out).subspan(kIpv6HeaderLength);
    detail::set16(udp, 6, udp_checksum(src, dst, udp));
    return out;
}

std::vector<std::uint8_t> build_udp_ipv4(const Ipv4Address& src, const Ipv4Address& dst,
                                         std::uint16_t src_port, std::uint16_t dst_port,
                                         std::span<const std::uint8_t> payload) {
    const std::size_t len = kUdpHeaderLength + payload.size();
    auto out = ipv4_packet(src, dst, kIpProtoUdp, len, 64);
    encode(UdpHeader{src_port, dst_port, static_cast<std::uint16_t>(len), 0}, out);
    out.insert(out.end(), payload.begin(), payload.end());
    auto udp = std::span<std::uint8_t>(out).subspan(kIpv4MinHeaderLength);
    detail::set16(udp, 6, udp_checksum(src, dst, udp));
    return out;
}

}  // namespace hag::net
