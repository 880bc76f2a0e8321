#include "udp_framing.hpp"

#include <cstring>

#include "hag/mh/codec.hpp"
#include "hag/mh/constants.hpp"

namespace hag::magsim {

mh::Ipv6 ipv4_mapped(const mh::Ipv4& a) noexcept {
    mh::Ipv6 out{};
    out[10] = out[11] = 0xff;
    std::memcpy(out.data() + 12, a.data(), 4);
    return out;
}

std::vector<std::uint8_t> build_udp_payload(std::vector<std::uint8_t> mh, const mh::Ipv6& src,
                                            const mh::Ipv6& dst) {
    mh::set_checksum(mh, src, dst);
    std::vector<std::uint8_t> out(kInnerIpv6HeaderLen + mh.size());
    out[0] = 0x60;  // version 6, traffic class 0, flow label 0
    out[4] = static_cast<std::uint8_t>(mh.size() >> 8);
    out[5] = static_cast<std::uint8_t>(mh.size());
    out[6] = mh::kIpProtoMh;
    out[7] = 255;
    std::memcpy(out.data() + 8, src.data(), 16);
    std::memcpy(out.data() + 24, dst.data(), 16);
    std::memcpy(out.data() + kInnerIpv6HeaderLen, mh.data(), mh.size());
    return out;
}

std::string_view to_string(UdpFramingError e) noexcept {
    switch (e) {
        case UdpFramingError::kTooShort:
            return "too short for an IPv6 header and a mobility header";
        case UdpFramingError::kNotIpv6:
            return "inner header is not IPv6";
        case UdpFramingError::kNotMobility:
            return "inner next header is not 135 (mobility header)";
        case UdpFramingError::kLengthMismatch:
            return "inner payload length disagrees with the datagram";
        case UdpFramingError::kBadChecksum:
            return "bad mobility header checksum";
    }
    return "?";
}

Result<UdpMh, UdpFramingError> parse_udp_payload(std::span<const std::uint8_t> payload) {
    // An MH has at least Payload Proto, Header Len, MH Type, Reserved and the checksum.
    if (payload.size() < kInnerIpv6HeaderLen + 6) {
        return unexpected(UdpFramingError::kTooShort);
    }
    if ((payload[0] >> 4) != 6) {
        return unexpected(UdpFramingError::kNotIpv6);
    }
    if (payload[6] != mh::kIpProtoMh) {
        return unexpected(UdpFramingError::kNotMobility);
    }
    const std::size_t plen = (std::size_t{payload[4]} << 8) | payload[5];
    if (plen != payload.size() - kInnerIpv6HeaderLen) {
        return unexpected(UdpFramingError::kLengthMismatch);
    }
    UdpMh r;
    std::memcpy(r.inner_src.data(), payload.data() + 8, 16);
    std::memcpy(r.inner_dst.data(), payload.data() + 24, 16);
    r.mh = payload.subspan(kInnerIpv6HeaderLen);
    if (!mh::checksum_ok(r.mh, r.inner_src, r.inner_dst)) {
        return unexpected(UdpFramingError::kBadChecksum);
    }
    return r;
}

}  // namespace hag::magsim
