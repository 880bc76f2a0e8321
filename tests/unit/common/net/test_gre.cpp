#include <catch2/catch.hpp>

#include <vector>

#include "hag/net/builders.hpp"
#include "hag/net/gre.hpp"
#include "hag/net/ipv4.hpp"
#include "hag/net/ipv6.hpp"

using namespace hag::net;
using Bytes = std::vector<std::uint8_t>;

namespace {
// Inner IPv6 2001:db8:1::10 -> 2001:db8:2::20, no next header, empty.
const Bytes kInner{0x60, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3b, 0x40, 0x20, 0x01,
                   0x0d, 0xb8, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                   0x00, 0x00, 0x00, 0x10, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x02,
                   0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20};
// scapy: IPv6(2001:db8::1 -> ::2)/GRE(K, S, key 0x01020304, seq 7)/inner
const Bytes kGre6Head{0x60, 0x00, 0x00, 0x00, 0x00, 0x34, 0x2f, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00,
                      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x01,
                      0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                      0x02, 0x30, 0x00, 0x86, 0xdd, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x07};
// scapy: IP(192.0.2.1 -> 198.51.100.2, DF)/GRE(K, key 10)/inner
const Bytes kGre4Head{0x45, 0x00, 0x00, 0x44, 0x00, 0x00, 0x40, 0x00, 0x40, 0x2f,
                      0x4e, 0x54, 0xc0, 0x00, 0x02, 0x01, 0xc6, 0x33, 0x64, 0x02,
                      0x20, 0x00, 0x86, 0xdd, 0x00, 0x00, 0x00, 0x0a};
// scapy: GRE(C, proto 0x0800)/"\x45abc"
const Bytes kGreChecksum{0x80, 0x00, 0x08, 0x00, 0xd0, 0x3a, 0x00, 0x00, 0x45, 0x61, 0x62, 0x63};

Bytes cat(const Bytes& a, const Bytes& b) {
    Bytes r = a;
    r.insert(r.end(), b.begin(), b.end());
    return r;
}
}  // namespace

TEST_CASE("GRE over IPv6 and IPv4: golden bytes", "[net][gre]") {
    const auto s6 = *parse_ipv6_address("2001:db8::1");
    const auto d6 = *parse_ipv6_address("2001:db8::2");
    CHECK(build_gre_ipv6(s6, d6, 0x01020304, 7, kInner) == cat(kGre6Head, kInner));
    CHECK(build_gre_ipv4({192, 0, 2, 1}, {198, 51, 100, 2}, 10, std::nullopt, kInner) ==
          cat(kGre4Head, kInner));

    const auto pkt = cat(kGre6Head, kInner);
    auto ip = parse_ipv6(pkt);
    REQUIRE(ip);
    auto gre = parse_gre(ip->payload);
    REQUIRE(gre);
    CHECK(gre->header.protocol_type == kEtherTypeIpv6);
    CHECK(gre->header.key == 0x01020304u);
    CHECK(gre->header.sequence == 7u);
    CHECK_FALSE(gre->header.checksum_present);
    CHECK(gre->header.length() == 12);
    CHECK(Bytes(gre->payload.begin(), gre->payload.end()) == kInner);
}

TEST_CASE("GRE checksum (C bit) is computed and verified", "[net][gre]") {
    auto g = parse_gre(kGreChecksum);
    REQUIRE(g);
    CHECK(g->header.checksum_present);
    CHECK(g->header.checksum == 0xd03a);
    CHECK(g->payload.size() == 4);

    Bytes mine;
    GreHeader h;
    h.checksum_present = true;
    h.protocol_type = kEtherTypeIpv4;
    encode(h, mine);
    mine.insert(mine.end(), {0x45, 0x61, 0x62, 0x63});
    REQUIRE(fill_gre_checksum(mine));
    CHECK(mine == kGreChecksum);

    Bytes bad = kGreChecksum;
    bad[11] ^= 1;  // payload changed: the checksum covers it
    CHECK(parse_gre(bad).error() == ParseError::bad_checksum);
    CHECK_FALSE(fill_gre_checksum(std::span(mine).first(4)));
}

TEST_CASE("GRE hostile inputs", "[net][gre]") {
    CHECK(parse_gre({}).error() == ParseError::truncated);
    CHECK(parse_gre(std::span(kGreChecksum).first(3)).error() == ParseError::truncated);
    // C set but the checksum word is missing
    CHECK(parse_gre(std::span(kGreChecksum).first(6)).error() == ParseError::truncated);
    // K and S set, only the key present
    Bytes ks{0x30, 0x00, 0x86, 0xdd, 0, 0, 0, 1};
    CHECK(parse_gre(ks).error() == ParseError::truncated);
    ks.insert(ks.end(), {0, 0, 0, 2});
    CHECK(parse_gre(ks));
    for (std::uint8_t version = 1; version < 8; ++version) {
        Bytes v{0x00, version, 0x86, 0xdd};
        CHECK(parse_gre(v).error() == ParseError::bad_version);
    }
    for (std::uint8_t bit : {0x40, 0x08, 0x04}) {  // R, s, Recur of RFC 1701
        Bytes r{bit, 0x00, 0x86, 0xdd};
        CHECK(parse_gre(r).error() == ParseError::reserved_bits_set);
    }
    // Bits 6-12 are ignored on receipt but kept, so the header re-encodes to its bytes.
    Bytes ignored{0x03, 0xf8, 0x86, 0xdd};
    auto g = parse_gre(ignored);
    REQUIRE(g);
    CHECK(g->header.reserved0 == 0x03f8);
    Bytes back;
    encode(g->header, back);
    CHECK(back == ignored);
}
