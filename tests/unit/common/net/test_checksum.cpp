#include <catch2/catch.hpp>

#include <vector>

#include "hag/net/checksum.hpp"

using hag::net::internet_checksum;

TEST_CASE("RFC 1071 checksum of a known IPv4 header", "[net][checksum]") {
    // 20-octet IPv4 header with checksum zeroed; the expected checksum 0xb861 is the classic
    // worked example (45 00 00 73 00 00 40 00 40 11 .. .. c0 a8 00 01 c0 a8 00 c7).
    std::vector<std::uint8_t> hdr{0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                                  0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
    CHECK(internet_checksum(hdr) == 0xb861);
    hdr[10] = 0xb8;
    hdr[11] = 0x61;
    CHECK(internet_checksum(hdr) == 0);  // a correct header verifies to zero
}

TEST_CASE("odd length and empty buffers", "[net][checksum]") {
    std::vector<std::uint8_t> odd{0x01};
    CHECK(internet_checksum(odd) == static_cast<std::uint16_t>(~0x0100 & 0xffff));
    CHECK(internet_checksum({}) == 0xffff);
}

TEST_CASE("IPv6 pseudo-header checksum verifies to zero once filled in", "[net][checksum]") {
    hag::net::Ipv6Address src{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    hag::net::Ipv6Address dst{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
    // A Mobility Header with checksum field (octets 4-5) zero.
    std::vector<std::uint8_t> mh{59, 1, 5, 0, 0, 0, 0x12, 0x34, 0x02, 0x00, 0x00, 0x10, 1, 2, 0, 0};
    auto c = hag::net::ipv6_upper_layer_checksum(src, dst, 135, mh);
    CHECK(c != 0);
    mh[4] = static_cast<std::uint8_t>(c >> 8);
    mh[5] = static_cast<std::uint8_t>(c);
    CHECK(hag::net::ipv6_upper_layer_checksum(src, dst, 135, mh) == 0);
    // A different next header gives a different sum.
    CHECK(hag::net::ipv6_upper_layer_checksum(src, dst, 17, mh) != 0);
}
