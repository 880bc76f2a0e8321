#include <catch2/catch.hpp>

#include <vector>

#include "hag/net/checksum.hpp"
#include "hag/net/headers.hpp"
#include "hag/net/ipv6.hpp"

using namespace hag::net;
using Bytes = std::vector<std::uint8_t>;

TEST_CASE("build_ipv6_mh fills the MH checksum over the pseudo-header", "[net][builders]") {
    const auto src = *parse_ipv6_address("2001:db8::1");
    const auto dst = *parse_ipv6_address("2001:db8::2");
    // BU, seq 0x1234, A|P, lifetime 16, PadN; checksum field garbage on input.
    const Bytes mh{59, 1, 5, 0, 0xaa, 0xbb, 0x12, 0x34, 0x82, 0x00, 0x00, 0x10, 1, 2, 0, 0};
    auto pkt = build_ipv6_mh(src, dst, mh);
    REQUIRE(pkt.size() == 56);
    auto ip = parse_ipv6(pkt);
    REQUIRE(ip);
    CHECK(ip->header.next_header == 135);
    CHECK(ip->header.payload_length == 16);
    CHECK(ip->header.hop_limit == 64);
    CHECK(ip->payload[4] == 0xce);  // 0xceab, computed by scapy's in6_chksum
    CHECK(ip->payload[5] == 0xab);
    CHECK(ipv6_upper_layer_checksum(src, dst, 135, ip->payload) == 0);

    const Bytes tiny{59, 0, 5};
    auto t = build_ipv6_mh(src, dst, tiny);
    CHECK(Bytes(t.begin() + 40, t.end()) == tiny);
}

TEST_CASE("build_ipv6_packet: header fields and payload", "[net][builders]") {
    const auto src = *parse_ipv6_address("2001:db8::a");
    const auto dst = *parse_ipv6_address("2001:db8::b");
    const Bytes payload{1, 2, 3, 4, 5};
    auto pkt = build_ipv6_packet(src, dst, 59, payload, 7);
    // Golden header: version 6, no TC/flow, payload length 5, next header 59, hop limit 7.
    const Bytes head{0x60, 0, 0, 0, 0, 5, 59, 7};
    REQUIRE(pkt.size() == 45);
    CHECK(Bytes(pkt.begin(), pkt.begin() + 8) == head);
    CHECK(Bytes(pkt.begin() + 40, pkt.end()) == payload);
    auto ip = parse_ipv6(pkt);
    REQUIRE(ip);
    CHECK(ip->header.src == src);
    CHECK(ip->header.dst == dst);

    const Bytes huge(70000, 0xee);
    auto big = build_ipv6_packet(src, dst, 59, huge);
    CHECK(big.size() == 40 + 0xffff);
    CHECK(big[4] == 0xff);
    CHECK(big[5] == 0xff);
}

TEST_CASE("build_gre picks the outer family from the address type", "[net][builders]") {
    const Bytes inner{0x60, 0, 0, 0};
    auto v6 = build_gre(*parse_ipv6_address("2001:db8::1"), *parse_ipv6_address("2001:db8::2"),
                        0x01020304u, std::nullopt, inner);
    CHECK(v6[0] >> 4 == 6);
    CHECK(v6[6] == 47);
    // GRE: K set, version 0, protocol 0x86DD, key.
    CHECK(Bytes(v6.begin() + 40, v6.begin() + 48) == Bytes{0x20, 0, 0x86, 0xdd, 1, 2, 3, 4});
    auto v4 = build_gre(*parse_ipv4_address("192.0.2.1"), *parse_ipv4_address("192.0.2.2"),
                        std::nullopt, 9u, inner);
    CHECK(v4[0] == 0x45);
    CHECK(v4[9] == 47);
    CHECK(Bytes(v4.begin() + 20, v4.begin() + 28) == Bytes{0x10, 0, 0x86, 0xdd, 0, 0, 0, 9});
}
