#include <catch2/catch.hpp>

#include <vector>

#include "hag/net/builders.hpp"
#include "hag/net/checksum.hpp"
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
