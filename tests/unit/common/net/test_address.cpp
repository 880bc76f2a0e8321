#include <catch2/catch.hpp>

#include "hag/net/address.hpp"

using namespace hag::net;

TEST_CASE("IPv4 text: strict dotted quad", "[net][address]") {
    auto a = parse_ipv4_address("192.0.2.1");
    REQUIRE(a);
    CHECK(*a == Ipv4Address{192, 0, 2, 1});
    CHECK(format(*a) == "192.0.2.1");
    CHECK(parse_ipv4_address("0.0.0.0"));
    CHECK(parse_ipv4_address("255.255.255.255"));
    for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.0.0.1", "01.2.3.4", "1..3.4", "1.2.3.4 ",
                            " 1.2.3.4", "1.2.3.-4", "1.2.3.4.", "a.b.c.d", "1.2.3.1000"}) {
        INFO(bad);
        CHECK_FALSE(parse_ipv4_address(bad));
    }
}

TEST_CASE("IPv6 text: RFC 4291 forms and RFC 5952 output", "[net][address]") {
    auto a = parse_ipv6_address("2001:DB8:0:0:0:0:0:1");
    REQUIRE(a);
    CHECK(format(*a) == "2001:db8::1");
    CHECK(format(*parse_ipv6_address("::")) == "::");
    CHECK(format(*parse_ipv6_address("::1")) == "::1");
    CHECK(format(*parse_ipv6_address("1::")) == "1::");
    CHECK(format(*parse_ipv6_address("2001:db8:0:1:0:0:0:1")) == "2001:db8:0:1::1");
    // longest run wins, first on a tie; a single zero group is not compressed
    CHECK(format(*parse_ipv6_address("2001:0:0:1:0:0:0:1")) == "2001:0:0:1::1");
    CHECK(format(*parse_ipv6_address("2001:db8:0:0:1:0:0:1")) == "2001:db8::1:0:0:1");
    CHECK(format(*parse_ipv6_address("2001:db8:1:1:1:1:0:1")) == "2001:db8:1:1:1:1:0:1");
    auto m = parse_ipv6_address("::ffff:192.0.2.1");
    REQUIRE(m);
    CHECK((*m)[10] == 0xff);
    CHECK((*m)[12] == 192);
    CHECK((*m)[15] == 1);
    CHECK(format(*m) == "::ffff:192.0.2.1");  // RFC 5952 §5
    CHECK(format(*parse_ipv6_address("::ffff:0:0:1")) == "::ffff:0:0:1");
    for (const char* bad :
         {"", ":", ":::", "1:::2", "1::2::3", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7",
          "12345::", "g::", "1:2:3:4:5:6:7:8::", "::1:", ":1::", "1::2:", "::1.2.3",
          "1:2:3:4:5:6:7:1.2.3.4", "::256.1.1.1", "2001:db8::/64"}) {
        INFO(bad);
        CHECK_FALSE(parse_ipv6_address(bad));
    }
}

TEST_CASE("prefixes: parse, canonical form, containment", "[net][address]") {
    auto p = parse_ipv6_prefix("2001:db8:1::/64");
    REQUIRE(p);
    CHECK(p->length == 64);
    CHECK(is_canonical(*p));
    CHECK(format(*p) == "2001:db8:1::/64");
    CHECK(contains(*p, *parse_ipv6_address("2001:db8:1::42")));
    CHECK_FALSE(contains(*p, *parse_ipv6_address("2001:db8:2::42")));
    CHECK(contains(*parse_ipv6_prefix("2001:db8::/32"), *p));
    CHECK_FALSE(contains(*p, *parse_ipv6_prefix("2001:db8::/32")));
    CHECK(contains(*parse_ipv6_prefix("::/0"), *parse_ipv6_address("2001:db8::1")));

    auto host = parse_ipv6_prefix("2001:db8:1::1/47");
    REQUIRE(host);
    CHECK_FALSE(is_canonical(*host));
    CHECK(format(canonical(*host)) == "2001:db8::/47");

    auto v4 = parse_ipv4_prefix("198.51.100.77/25");
    REQUIRE(v4);
    CHECK(format(canonical(*v4)) == "198.51.100.0/25");
    CHECK(contains(*v4, *parse_ipv4_address("198.51.100.1")));
    CHECK_FALSE(contains(*v4, *parse_ipv4_address("198.51.100.128")));
    CHECK(contains(*parse_ipv4_prefix("0.0.0.0/0"), *parse_ipv4_address("203.0.113.9")));
    CHECK(format(canonical(*parse_ipv4_prefix("203.0.113.9/32"))) == "203.0.113.9/32");

    for (const char* bad : {"2001:db8::/129", "2001:db8::/064", "2001:db8::", "2001:db8::/", "/64",
                            "2001:db8::/6 4", "2001:db8::/-1"}) {
        INFO(bad);
        CHECK_FALSE(parse_ipv6_prefix(bad));
    }
    CHECK_FALSE(parse_ipv4_prefix("192.0.2.0/33"));
    CHECK_FALSE(parse_ipv4_prefix("192.0.2.0"));
}

TEST_CASE("IPv4-mapped addresses", "[net][address]") {
    const Ipv6Address m = ipv4_mapped({192, 0, 2, 1});
    CHECK(m == Ipv6Address{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1});
    CHECK(is_ipv4_mapped(m));
    CHECK(mapped_ipv4(m) == Ipv4Address{192, 0, 2, 1});
    CHECK_FALSE(is_ipv4_mapped(*parse_ipv6_address("2001:db8::1")));
    CHECK_FALSE(is_ipv4_mapped(*parse_ipv6_address("::192.0.2.1")));  // IPv4-compatible, not mapped
    CHECK_FALSE(is_ipv4_mapped(*parse_ipv6_address("::fffe:c000:201")));
}
