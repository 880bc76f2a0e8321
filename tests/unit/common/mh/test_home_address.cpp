// MIPv6 home registration around the mobility header (RFC 6275 §6.3-6.6): the Home Address
// destination option, the Type 2 Routing Header, Home Agent Address Discovery; and the
// Delegated Mobile Network Prefix option (RFC 7148 §3.1) golden bytes and hostile input.
#include <catch2/catch.hpp>

#include <random>

#include "hag/mh/home_address.hpp"
#include "hag/mh/mh.hpp"
#include "hag/net/address.hpp"

using namespace hag;
using namespace hag::mh;

namespace {

Ipv6 ip(const char* s) {
    return *net::parse_ipv6_address(s);
}

// A BU as a mobile node sends it after its Destination Options header.
std::vector<std::uint8_t> bu_bytes() {
    BindingUpdate bu;
    bu.sequence = 7;
    bu.ack = true;
    bu.home_registration = true;
    bu.lifetime = 25;
    return encode(Message{bu});
}

}  // namespace

TEST_CASE("Home Address option: golden layout and round trip", "[home-agent]") {
    const auto hoa = ip("2001:db8:100:1::5");
    auto h = build_home_address_header(hoa, kIpProtoMobility);
    // RFC 6275 §6.3: type 201, length 16, at 8n+6 (PadN of 4 before it); 24 octets in all.
    const std::vector<std::uint8_t> golden{135,  2,    1,    2,    0,    0,    201,  16,
                                           0x20, 0x01, 0x0d, 0xb8, 0x01, 0x00, 0x00, 0x01,
                                           0,    0,    0,    0,    0,    0,    0,    5};
    CHECK(h == golden);
    const auto mh = bu_bytes();
    h.insert(h.end(), mh.begin(), mh.end());
    auto p = parse_home_address_header(h);
    REQUIRE(p);
    CHECK(p->home_address == hoa);
    CHECK(p->next_header == kIpProtoMobility);
    CHECK(std::vector<std::uint8_t>(p->payload.begin(), p->payload.end()) == mh);
    CHECK(decode(p->payload));
    // Pad1 and PadN around it, and an unknown skippable option (type 0x1e: high bits 00).
    std::vector<std::uint8_t> padded{135, 3, 0, 0, 0x1e, 1, 9, 1, 0, 201, 16};
    padded.insert(padded.end(), hoa.begin(), hoa.end());
    padded.resize(32, 0);
    auto q = parse_home_address_header(padded);
    REQUIRE(q);
    CHECK(q->home_address == hoa);
    CHECK(q->payload.empty());
}

TEST_CASE("Home Address option: hostile input is refused, never read past",
          "[home-agent][hostile]") {
    const auto hoa = ip("2001:db8:100:1::5");
    const auto good = build_home_address_header(hoa, kIpProtoMobility);
    // Every truncation of the header.
    for (std::size_t n = 0; n < good.size(); ++n) {
        CHECK_FALSE(parse_home_address_header(std::span(good).first(n)));
    }
    auto bad = good;
    bad[7] = 15;  // option length 15: the next "option" runs past
    CHECK_FALSE(parse_home_address_header(bad));
    bad = good;
    bad[7] = 17;  // past the header
    CHECK_FALSE(parse_home_address_header(bad));
    bad = good;
    bad[6] = 0xc8;  // an unknown option whose type says discard
    CHECK_FALSE(parse_home_address_header(bad));
    bad = good;
    bad[6] = 0x1e;  // skippable unknown option, but then no Home Address option
    CHECK_FALSE(parse_home_address_header(bad));
    bad = good;
    bad[1] = 200;  // header length past the data
    CHECK_FALSE(parse_home_address_header(bad));
    // Two Home Address options.
    std::vector<std::uint8_t> two{135, 4, 201, 16};
    two.insert(two.end(), hoa.begin(), hoa.end());
    two.push_back(201);
    two.push_back(16);
    two.insert(two.end(), hoa.begin(), hoa.end());
    two.resize(40, 0);
    CHECK_FALSE(parse_home_address_header(two));
    // Random bytes: refused or parsed within bounds.
    std::mt19937 rng(7);
    for (int i = 0; i < 20000; ++i) {
        std::vector<std::uint8_t> b(rng() % 64);
        for (auto& x : b) {
            x = static_cast<std::uint8_t>(rng());
        }
        if (b.size() > 6 && i % 2 == 0) {
            b[1] = static_cast<std::uint8_t>(rng() % 8);
        }
        if (auto p = parse_home_address_header(b)) {
            CHECK(p->payload.data() >= b.data());
            CHECK(p->payload.data() + p->payload.size() == b.data() + b.size());
        }
    }
}

TEST_CASE("Type 2 Routing Header: golden layout, round trip, hostile input", "[home-agent]") {
    const auto hoa = ip("2001:db8:100:1::5");
    auto rh = build_type2_routing_header(hoa, kIpProtoMobility);
    REQUIRE(rh.size() == 24);
    CHECK(std::vector<std::uint8_t>(rh.begin(), rh.begin() + 8) ==
          std::vector<std::uint8_t>{135, 2, 2, 1, 0, 0, 0, 0});
    auto p = parse_type2_routing_header(rh);
    REQUIRE(p);
    CHECK(p->home_address == hoa);
    CHECK(p->segments_left == 1);
    for (std::size_t n = 0; n < rh.size(); ++n) {
        CHECK_FALSE(parse_type2_routing_header(std::span(rh).first(n)));
    }
    auto bad = rh;
    bad[2] = 0;  // routing type 0
    CHECK_FALSE(parse_type2_routing_header(bad));
    bad = rh;
    bad[1] = 4;
    CHECK_FALSE(parse_type2_routing_header(bad));
    bad = rh;
    bad[3] = 2;
    CHECK_FALSE(parse_type2_routing_header(bad));
}

TEST_CASE("Home Agent Address Discovery request and reply", "[home-agent]") {
    auto req = build_haad_request(0x1234);
    auto r = parse_haad_request(req);
    REQUIRE(r);
    CHECK(r->identifier == 0x1234);
    CHECK_FALSE(parse_haad_request(std::span(req).first(7)));
    req[0] = 128;  // echo request
    CHECK_FALSE(parse_haad_request(req));
    const std::vector<Ipv6> has{ip("2001:db8:ff::1"), ip("2001:db8:ff::2")};
    auto reply = build_haad_reply(0x1234, has);
    CHECK(reply.size() == 8 + 32);
    std::uint16_t id = 0;
    auto back = parse_haad_reply(reply, id);
    REQUIRE(back);
    CHECK(*back == has);
    CHECK(id == 0x1234);
    CHECK_FALSE(parse_haad_reply(std::span(reply).first(20), id));
}

TEST_CASE("Delegated Mobile Network Prefix option: golden bytes and hostile lengths",
          "[codec][dmnp]") {
    // RFC 7148 §3.1: type 55, length 18 (IPv6) or 6 (IPv4), V flag, reserved, prefix length.
    BindingUpdate bu;
    bu.sequence = 1;
    bu.options.push_back(DelegatedMobileNetworkPrefix{
        false, 56, Bytes{0x20, 1, 0xd, 0xb8, 0xd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}});
    bu.options.push_back(DelegatedMobileNetworkPrefix{true, 28, Bytes{192, 0, 2, 128}});
    auto wire = encode(Message{bu});
    // 12 octets of BU, then PadN to 8n+4, the options.
    const std::vector<std::uint8_t> v6{55, 18, 0, 56, 0x20, 1, 0xd, 0xb8, 0xd, 0};
    const std::vector<std::uint8_t> v4{55, 6, 0x80, 28, 192, 0, 2, 128};
    auto at = [&](const std::vector<std::uint8_t>& needle) {
        return std::search(wire.begin(), wire.end(), needle.begin(), needle.end()) != wire.end();
    };
    CHECK(at(v6));
    CHECK(at(v4));
    auto back = decode(wire);
    REQUIRE(back);
    CHECK(*back == Message{bu});
    // Hostile: every length from 0 to 20 other than 6 (V set) and 18 (V clear) is refused.
    auto with = [](std::vector<std::uint8_t> opt) {
        std::vector<std::uint8_t> m{59, 0, 5, 0, 0, 0, 0, 1, 0, 0, 0, 0};
        m.insert(m.end(), opt.begin(), opt.end());
        while (m.size() % 8 != 0) {
            m.push_back(0);  // Pad1
        }
        m[1] = static_cast<std::uint8_t>(m.size() / 8 - 1);
        return decode(m);
    };
    for (std::uint8_t len = 0; len <= 20; ++len) {
        for (const std::uint8_t v : {std::uint8_t{0}, std::uint8_t{0x80}}) {
            std::vector<std::uint8_t> opt{55, len};
            if (len > 0) {
                opt.push_back(v);
            }
            if (len > 1) {
                opt.push_back(8);
            }
            opt.resize(2 + len, 0);
            const bool valid = (v == 0x80 && len == 6) || (v == 0 && len == 18);
            CHECK(with(opt).ok() == valid);
        }
    }
    // Prefix length beyond the family.
    CHECK_FALSE(with({55, 6, 0x80, 33, 192, 0, 2, 0}));
    std::vector<std::uint8_t> long6{55, 18, 0, 129};
    long6.resize(20, 0);
    CHECK_FALSE(with(long6));
    // The option's length runs past the message.
    CHECK_FALSE(with({55, 30, 0, 56, 0x20, 1}));
}
