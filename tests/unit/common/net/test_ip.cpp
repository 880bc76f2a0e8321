#include <catch2/catch.hpp>

#include <vector>

#include "hag/net/builders.hpp"
#include "hag/net/ipv4.hpp"
#include "hag/net/ipv6.hpp"
#include "hag/net/udp.hpp"

using namespace hag::net;
using Bytes = std::vector<std::uint8_t>;

namespace {
// IPv4 + UDP 5436 -> 5436 carrying "hag", DF, TTL 64: bytes from scapy (an independent encoder).
const Bytes kUdp4{0x45, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x4e,
                  0x97, 0xc0, 0x00, 0x02, 0x01, 0xc6, 0x33, 0x64, 0x02, 0x15, 0x3c,
                  0x15, 0x3c, 0x00, 0x0b, 0x19, 0xc7, 0x68, 0x61, 0x67};
const Bytes kUdp6{0x60, 0x00, 0x00, 0x00, 0x00, 0x0b, 0x11, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00,
                  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x01,
                  0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                  0x02, 0x15, 0x3c, 0x15, 0x3c, 0x00, 0x0b, 0xaa, 0x89, 0x68, 0x61, 0x67};
const Ipv4Address kSrc4{192, 0, 2, 1};
const Ipv4Address kDst4{198, 51, 100, 2};
const Ipv6Address kSrc6 = *parse_ipv6_address("2001:db8::1");
const Ipv6Address kDst6 = *parse_ipv6_address("2001:db8::2");
const Bytes kHag{'h', 'a', 'g'};
}  // namespace

TEST_CASE("IPv4 + UDP: golden bytes both ways", "[net][ipv4][udp]") {
    CHECK(build_udp_ipv4(kSrc4, kDst4, 5436, 5436, kHag) == kUdp4);
    auto ip = parse_ipv4(kUdp4);
    REQUIRE(ip);
    CHECK(ip->header.protocol == kIpProtoUdp);
    CHECK(ip->header.flags == 0x2);
    CHECK(ip->header.ttl == 64);
    CHECK(ip->header.src == kSrc4);
    CHECK(ip->header.dst == kDst4);
    CHECK(ip->header.checksum == 0x4e97);
    CHECK(compute_checksum(ip->header) == 0x4e97);
    auto udp = parse_udp(ip->payload, kSrc4, kDst4);
    REQUIRE(udp);
    CHECK(udp->header == UdpHeader{5436, 5436, 11, 0x19c7});
    CHECK(Bytes(udp->payload.begin(), udp->payload.end()) == kHag);
    Bytes again;
    encode(ip->header, again);
    CHECK(Bytes(kUdp4.begin(), kUdp4.begin() + 20) == again);
}

TEST_CASE("IPv6 + UDP: golden bytes both ways", "[net][ipv6][udp]") {
    CHECK(build_udp_ipv6(kSrc6, kDst6, 5436, 5436, kHag) == kUdp6);
    auto ip = parse_ipv6(kUdp6);
    REQUIRE(ip);
    CHECK(ip->header.next_header == kIpProtoUdp);
    CHECK(ip->header.payload_length == 11);
    auto ul = find_upper_layer(ip->header.next_header, ip->payload);
    REQUIRE(ul);
    CHECK(ul->protocol == kIpProtoUdp);
    CHECK(ul->offset == 0);
    auto udp = parse_udp(ul->data, kSrc6, kDst6);
    REQUIRE(udp);
    CHECK(udp->header.checksum == 0xaa89);
}

TEST_CASE("IPv4 hostile inputs", "[net][ipv4]") {
    Bytes p = kUdp4;
    CHECK(parse_ipv4(std::span(p).first(19)).error() == ParseError::truncated);
    CHECK(parse_ipv4({}).error() == ParseError::truncated);
    p[0] = 0x65;
    CHECK(parse_ipv4(p).error() == ParseError::bad_version);
    p[0] = 0x44;  // IHL 4 < 5
    CHECK(parse_ipv4(p).error() == ParseError::bad_header_length);
    p[0] = 0x4f;  // IHL 15 = 60 octets > 31 available
    CHECK(parse_ipv4(p).error() == ParseError::bad_header_length);
    p = kUdp4;
    p[3] = 0x20;  // total length 32 > 31 octets
    CHECK(parse_ipv4(p).error() == ParseError::bad_total_length);
    p[2] = 0;
    p[3] = 0x10;  // total length 16 < 20
    CHECK(parse_ipv4(p).error() == ParseError::bad_total_length);
    p = kUdp4;
    p[8] = 63;  // TTL changed without fixing the checksum
    CHECK(parse_ipv4(p).error() == ParseError::bad_checksum);
    // Link padding after total length is not payload.
    p = kUdp4;
    p.insert(p.end(), {0, 0, 0});
    auto ok = parse_ipv4(p);
    REQUIRE(ok);
    CHECK(ok->payload.size() == 11);
}

TEST_CASE("IPv4 options round-trip through IHL", "[net][ipv4]") {
    Ipv4Header h;
    h.src = kSrc4;
    h.dst = kDst4;
    h.protocol = 253;
    h.options_length = 4;
    h.options[0] = 1;  // NOP x3, EOL
    h.options[1] = 1;
    h.options[2] = 1;
    h.total_length = 24;
    h.checksum = compute_checksum(h);
    Bytes b;
    encode(h, b);
    REQUIRE(b.size() == 24);
    CHECK(b[0] == 0x46);
    auto back = parse_ipv4(b);
    REQUIRE(back);
    CHECK(back->header == h);
    CHECK(back->payload.empty());
}

TEST_CASE("UDP hostile inputs", "[net][udp]") {
    Bytes u(kUdp4.begin() + 20, kUdp4.end());
    CHECK(parse_udp(std::span(u).first(7)).error() == ParseError::truncated);
    u[5] = 12;  // length past the end
    CHECK(parse_udp(u).error() == ParseError::bad_total_length);
    u[5] = 7;  // length below the header
    CHECK(parse_udp(u).error() == ParseError::bad_total_length);
    u[5] = 11;
    u[8] = 'H';
    CHECK(parse_udp(u, kSrc4, kDst4).error() == ParseError::bad_checksum);
    u[6] = u[7] = 0;  // no checksum: allowed over IPv4, not over IPv6
    CHECK(parse_udp(u, kSrc4, kDst4));
    CHECK(parse_udp(u, kSrc6, kDst6).error() == ParseError::bad_checksum);
}

TEST_CASE("IPv6 hostile inputs", "[net][ipv6]") {
    Bytes p = kUdp6;
    CHECK(parse_ipv6(std::span(p).first(39)).error() == ParseError::truncated);
    p[0] = 0x40;
    CHECK(parse_ipv6(p).error() == ParseError::bad_version);
    p = kUdp6;
    p[5] = 12;  // payload length lies
    CHECK(parse_ipv6(p).error() == ParseError::truncated);
}

TEST_CASE("IPv6 extension header walk", "[net][ipv6]") {
    // Hop-by-Hop (8) -> Destination Options (16) -> Fragment (first) -> UDP
    Bytes ext{kIpProtoDestOpts,
              0,
              1,
              4,
              0,
              0,
              0,
              0,  // HbH, PadN
              kIpProtoFragment,
              1,
              1,
              12,
              0,
              0,
              0,
              0,
              0,
              0,
              0,
              0,
              0,
              0,
              0,
              0,  // DestOpts
              kIpProtoUdp,
              0,
              0,
              1,
              0,
              0,
              0,
              42,  // Fragment, M=1
              0x15,
              0x3c};
    auto ul = find_upper_layer(kIpProtoHopByHop, ext);
    REQUIRE(ul);
    CHECK(ul->protocol == kIpProtoUdp);
    CHECK(ul->offset == 32);
    CHECK(ul->data.size() == 2);

    // Mobility Header and No Next Header stop the walk.
    CHECK(find_upper_layer(kIpProtoMobility, ext)->protocol == kIpProtoMobility);
    Bytes none;
    CHECK(find_upper_layer(kIpProtoNoNext, none)->data.empty());

    SECTION("non-first fragment") {
        ext[26] = 0x01;  // offset 32 octets
        CHECK(find_upper_layer(kIpProtoHopByHop, ext).error() == ParseError::non_first_fragment);
    }
    SECTION("header length past the end") {
        ext[9] = 9;
        CHECK(find_upper_layer(kIpProtoHopByHop, ext).error() == ParseError::bad_header_length);
    }
    SECTION("truncated inside the chain") {
        CHECK(find_upper_layer(kIpProtoHopByHop, std::span(ext).first(25)).error() ==
              ParseError::truncated);
        CHECK(find_upper_layer(kIpProtoDestOpts, std::span(ext).first(1)).error() ==
              ParseError::truncated);
    }
    SECTION("hop-by-hop not first") {
        ext[0] = kIpProtoHopByHop;
        CHECK(find_upper_layer(kIpProtoHopByHop, ext).error() == ParseError::misplaced_hop_by_hop);
    }
    SECTION("a long chain (each header pointing to another) is bounded") {
        Bytes loop;
        for (int i = 0; i < 64; ++i) {
            loop.insert(loop.end(), {kIpProtoDestOpts, 0, 1, 4, 0, 0, 0, 0});
        }
        CHECK(find_upper_layer(kIpProtoDestOpts, loop).error() ==
              ParseError::extension_chain_too_long);
        CHECK(find_upper_layer(kIpProtoDestOpts, std::span(loop).first(8 * 9)).error() ==
              ParseError::extension_chain_too_long);
        CHECK(find_upper_layer(kIpProtoDestOpts, loop, 64).error() == ParseError::truncated);
    }
    SECTION("AH length in 4-octet units") {
        Bytes ah{kIpProtoUdp, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x15};  // (1+2)*4 = 12
        auto r = find_upper_layer(kIpProtoAh, ah);
        REQUIRE(r);
        CHECK(r->offset == 12);
    }
}
