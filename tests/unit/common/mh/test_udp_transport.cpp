// UDP 5436 framing of PMIPv6 signalling (hag/mh/udp_transport.hpp): both forms round-trip and
// every malformed datagram is refused with the reason, never read past its end.
#include <catch2/catch.hpp>

#include <vector>

#include "hag/mh/mh.hpp"
#include "hag/mh/udp_transport.hpp"

using namespace hag::mh;
using Bytes = std::vector<std::uint8_t>;

namespace {

hag::net::Ipv6Address mapped(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
    return {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d};
}

Bytes heartbeat_mh() {
    Heartbeat hb;
    hb.sequence = 7;
    hb.options.push_back(RestartCounter{42});
    return encode(Message{hb});
}

const auto kMag = mapped(192, 0, 2, 2);
const auto kLma = mapped(192, 0, 2, 1);

}  // namespace

TEST_CASE("UDP framing with an inner IPv6 header round-trips") {
    const Bytes mh = heartbeat_mh();
    const Bytes payload = build_udp_signalling(mh, false, kMag, kLma);
    REQUIRE(payload.size() == 40 + mh.size());
    CHECK(payload[0] == 0x60);
    CHECK(payload[6] == 135);
    CHECK(((payload[4] << 8) | payload[5]) == static_cast<int>(mh.size()));
    auto p = parse_udp_signalling(payload, mapped(203, 0, 113, 9), mapped(203, 0, 113, 10));
    REQUIRE(p.ok());
    CHECK_FALSE(p->bare);
    CHECK(p->inner_src == kMag);  // the inner header's addresses, not the outer ones
    CHECK(p->inner_dst == kLma);
    auto m = decode(p->mh);
    REQUIRE(m.ok());
    REQUIRE(std::holds_alternative<Heartbeat>(m->body));
    CHECK(std::get<Heartbeat>(m->body).sequence == 7);
}

TEST_CASE("UDP framing: the bare mobility header is checked over the outer addresses") {
    const Bytes payload = build_udp_signalling(heartbeat_mh(), true, kMag, kLma);
    CHECK(payload[0] == 59);  // Payload Proto: no IPv6 header in front
    auto p = parse_udp_signalling(payload, kMag, kLma);
    REQUIRE(p.ok());
    CHECK(p->bare);
    CHECK(decode(p->mh).ok());
    // The same bytes from another source fail the checksum: the pseudo-header binds them.
    auto other = parse_udp_signalling(payload, mapped(192, 0, 2, 3), kLma);
    REQUIRE_FALSE(other.ok());
    CHECK(other.error() == UdpFramingError::kBadChecksum);
}

TEST_CASE("UDP framing refuses hostile datagrams", "[hostile]") {
    const Bytes good = build_udp_signalling(heartbeat_mh(), false, kMag, kLma);
    auto parse = [](const Bytes& b) { return parse_udp_signalling(b, kMag, kLma); };

    CHECK(parse({}).error() == UdpFramingError::kTooShort);
    CHECK(parse(Bytes{59, 0, 13}).error() == UdpFramingError::kTooShort);
    for (std::size_t n = 1; n < 46; ++n) {  // every truncation of the IPv6 header (+ MH start)
        Bytes cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
        CHECK_FALSE(parse(cut).ok());
    }
    Bytes short_by_one(good.begin(), good.end() - 1);
    CHECK(parse(short_by_one).error() == UdpFramingError::kLengthMismatch);
    Bytes trailing = good;
    trailing.push_back(0);
    CHECK(parse(trailing).error() == UdpFramingError::kLengthMismatch);
    Bytes huge_len = good;
    huge_len[4] = 0xff;
    huge_len[5] = 0xff;
    CHECK(parse(huge_len).error() == UdpFramingError::kLengthMismatch);
    Bytes not_mh = good;
    not_mh[6] = 17;  // UDP inside: not signalling
    CHECK(parse(not_mh).error() == UdpFramingError::kNotMobility);
    Bytes ext = good;
    ext[6] = 0;  // hop-by-hop options: extension headers are not accepted here
    CHECK(parse(ext).error() == UdpFramingError::kNotMobility);
    Bytes flipped = good;
    flipped.back() ^= 0x01;
    CHECK(parse(flipped).error() == UdpFramingError::kBadChecksum);
    Bytes src_changed = good;
    src_changed[23] ^= 0x01;  // inner source address: part of the pseudo-header
    CHECK(parse(src_changed).error() == UdpFramingError::kBadChecksum);
    for (auto e : {UdpFramingError::kTooShort, UdpFramingError::kNotMobility,
                   UdpFramingError::kLengthMismatch, UdpFramingError::kBadChecksum}) {
        CHECK_FALSE(to_string(e).empty());
    }
}

TEST_CASE("UDP framing: the built header, and only the checksum differs from the MH") {
    const Bytes mh = heartbeat_mh();
    const Bytes p = build_udp_signalling(mh, false, kMag, kLma);
    CHECK(p[1] == 0);
    CHECK(p[2] == 0);
    CHECK(p[3] == 0);
    CHECK(p[7] == 255);  // hop limit
    CHECK(std::equal(kMag.begin(), kMag.end(), p.begin() + 8));
    CHECK(std::equal(kLma.begin(), kLma.end(), p.begin() + 24));
    const std::span<const std::uint8_t> inner(p.data() + 40, p.size() - 40);
    CHECK(checksum_ok(inner, kMag, kLma));
    CHECK_FALSE(checksum_ok(inner, kMag, kMag));
    CHECK(std::equal(mh.begin(), mh.begin() + 4, inner.begin()));
    CHECK(std::equal(mh.begin() + 6, mh.end(), inner.begin() + 6));
}

TEST_CASE("UDP framing survives every truncation and single-bit change", "[hostile]") {
    const Bytes good = build_udp_signalling(heartbeat_mh(), false, kMag, kLma);
    for (std::size_t n = 0; n < good.size(); ++n) {
        CHECK_FALSE(parse_udp_signalling({good.data(), n}, kMag, kLma).ok());
    }
    for (std::size_t i = 0; i < good.size(); ++i) {
        for (int bit = 0; bit < 8; ++bit) {
            Bytes d = good;
            d[i] ^= static_cast<std::uint8_t>(1u << bit);
            auto r = parse_udp_signalling(d, kMag, kLma);
            // Traffic class, flow label and hop limit are not checked; everything else is (a
            // changed version nibble makes it a bare MH whose checksum then fails).
            const bool unchecked = (i == 0 && bit < 4) || (i >= 1 && i <= 3) || i == 7;
            CHECK(r.ok() == unchecked);
            if (r.ok()) {
                CHECK(r->mh.data() == d.data() + 40);
                CHECK(r->mh.size() == d.size() - 40);
            }
        }
    }
}
