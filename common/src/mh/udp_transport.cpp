#include "hag/mh/udp_transport.hpp"

#include <cstring>

#include "hag/mh/codec.hpp"

namespace hag::mh {

namespace {
constexpr std::size_t kIpv6HeaderLen = 40;
constexpr std::uint8_t kNextHeaderMh = 135;
constexpr std::size_t kMinMh = 6;  // payload proto, length, type, reserved, checksum
}  // namespace

std::string_view to_string(UdpFramingError e) noexcept {
    switch (e) {
        case UdpFramingError::kTooShort:
            return "too short";
        case UdpFramingError::kNotMobility:
            return "inner IPv6 next header is not 135 (mobility header)";
        case UdpFramingError::kLengthMismatch:
            return "inner IPv6 payload length disagrees with the datagram";
        case UdpFramingError::kBadChecksum:
            return "bad mobility header checksum";
    }
    return "?";
}

Result<UdpSignalling, UdpFramingError> parse_udp_signalling(std::span<const std::uint8_t> payload,
                                                            const net::Ipv6Address& outer_src,
                                                            const net::Ipv6Address& outer_dst) {
    UdpSignalling r;
    if (payload.empty()) {
        return unexpected(UdpFramingError::kTooShort);
    }
    if ((payload[0] >> 4) == 6) {
        if (payload.size() < kIpv6HeaderLen + kMinMh) {
            return unexpected(UdpFramingError::kTooShort);
        }
        if (payload[6] != kNextHeaderMh) {
            return unexpected(UdpFramingError::kNotMobility);
        }
        const std::size_t plen = (std::size_t{payload[4]} << 8) | payload[5];
        if (plen != payload.size() - kIpv6HeaderLen) {
            return unexpected(UdpFramingError::kLengthMismatch);
        }
        std::memcpy(r.inner_src.data(), payload.data() + 8, 16);
        std::memcpy(r.inner_dst.data(), payload.data() + 24, 16);
        r.mh = payload.subspan(kIpv6HeaderLen);
    } else {
        // A mobility header starts with Payload Proto (59 when nothing follows): never 0x6_.
        if (payload.size() < kMinMh) {
            return unexpected(UdpFramingError::kTooShort);
        }
        r.bare = true;
        r.inner_src = outer_src;
        r.inner_dst = outer_dst;
        r.mh = payload;
    }
    if (!checksum_ok(r.mh, r.inner_src, r.inner_dst)) {
        return unexpected(UdpFramingError::kBadChecksum);
    }
    return r;
}

std::vector<std::uint8_t> build_udp_signalling(std::vector<std::uint8_t> mh, bool bare,
                                               const net::Ipv6Address& src,
                                               const net::Ipv6Address& dst) {
    set_checksum(mh, src, dst);
    if (bare) {
        return mh;
    }
    std::vector<std::uint8_t> out(kIpv6HeaderLen + mh.size());
    out[0] = 0x60;
    out[4] = static_cast<std::uint8_t>(mh.size() >> 8);
    out[5] = static_cast<std::uint8_t>(mh.size());
    out[6] = kNextHeaderMh;
    out[7] = 255;
    std::memcpy(out.data() + 8, src.data(), 16);
    std::memcpy(out.data() + 24, dst.data(), 16);
    std::memcpy(out.data() + kIpv6HeaderLen, mh.data(), mh.size());
    return out;
}

}  // namespace hag::mh
