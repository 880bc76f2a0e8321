// The cluster binding store's value format (cluster_record.hpp): round trip, hostile values
// from etcd (every truncation, every bit flip, bad names, trailing octets), and the per-node
// GRE key range a cluster needs.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "core/allocators.hpp"
#include "core/cluster_record.hpp"
#include "core/store_format.hpp"
#include "hag/net/address.hpp"

using namespace hag::control;
using namespace hag::control::store;

namespace {

Session make_session() {
    Session s;
    s.nai = "cpe7@hag.example";
    s.home_prefixes.push_back(Prefix{*hag::net::parse_ipv6_address("2001:db8:100:7::"), 64});
    s.uplink_gre_key = 1000007;
    s.last_sequence = 4242;
    s.last_timestamp = 0x0123456789abcdefull;
    Path p;
    p.bid = 1;
    p.mag_id = "mag-7";
    p.coa = CareOfAddress{*hag::net::parse_ipv6_address("2001:db8:a::7")};
    p.local = CareOfAddress{*hag::net::parse_ipv6_address("2001:db8::1")};
    p.downlink_gre_key = 77;
    p.last_sequence = 4242;
    p.expires_at = 100;
    s.paths = {p};
    return s;
}

std::vector<std::uint8_t> value_of(const Session& s) {
    std::vector<std::uint8_t> v;
    encode_value("node-b", "node-a", s, 1'700'000'000, v);
    return v;
}

}  // namespace

TEST_CASE("a binding value round-trips with its serving node and anchor") {
    const Session s = make_session();
    const auto v = value_of(s);
    auto r = decode_value(v);
    REQUIRE(r);
    CHECK(r->node == "node-b");
    CHECK(r->anchor == "node-a");
    Session want = s;
    want.paths[0].expires_at += 1'700'000'000;  // stored in wall-clock seconds
    CHECK(r->session == want);
    // The header and a record encoded separately make the same value (what EtcdStore does).
    std::vector<std::uint8_t> split;
    encode_value_header("node-b", "node-a", split);
    encode_put(s, 1'700'000'000, split);
    CHECK(split == v);
}

TEST_CASE("every truncation of a binding value is refused") {
    const auto v = value_of(make_session());
    for (std::size_t n = 0; n < v.size(); ++n) {
        INFO("length " << n);
        CHECK_FALSE(decode_value(std::span<const std::uint8_t>(v.data(), n)));
    }
}

TEST_CASE("a flipped bit anywhere never yields another binding") {
    const auto v = value_of(make_session());
    const auto good = decode_value(v);
    REQUIRE(good);
    for (std::size_t i = 0; i < v.size(); ++i) {
        for (int b = 0; b < 8; ++b) {
            auto w = v;
            w[i] ^= static_cast<std::uint8_t>(1u << b);
            auto r = decode_value(w);
            if (r) {
                // Only a name may change (names are not under the CRC), to another valid one.
                INFO("octet " << i << " bit " << b);
                CHECK(r->session == good->session);
                CHECK(valid_node_name(r->node));
                CHECK(valid_node_name(r->anchor));
            }
        }
    }
}

TEST_CASE("hostile binding values") {
    auto v = value_of(make_session());
    SECTION("trailing octets") {
        v.push_back(0);
        CHECK_FALSE(decode_value(v));
    }
    SECTION("wrong magic or version") {
        v[0] = 'X';
        CHECK_FALSE(decode_value(v));
    }
    SECTION("version 2") {
        v[4] = 2;
        CHECK_FALSE(decode_value(v));
    }
    SECTION("node name longer than the value") {
        v[5] = 250;
        CHECK_FALSE(decode_value(v));
    }
    SECTION("empty node name") {
        std::vector<std::uint8_t> w;
        encode_value_header("", "a", w);
        encode_put(make_session(), 0, w);
        CHECK_FALSE(decode_value(w));
    }
    SECTION("a name with a control character") {
        std::vector<std::uint8_t> w;
        encode_value_header("a\nb", "a", w);
        encode_put(make_session(), 0, w);
        CHECK_FALSE(decode_value(w));
    }
    SECTION("a DELETE record instead of a PUT") {
        std::vector<std::uint8_t> w;
        encode_value_header("a", "a", w);
        encode_delete("cpe7@hag.example", w);
        CHECK_FALSE(decode_value(w));
    }
    SECTION("nothing after the names") {
        std::vector<std::uint8_t> w;
        encode_value_header("a", "b", w);
        CHECK_FALSE(decode_value(w));
    }
}

TEST_CASE("node names") {
    CHECK(valid_node_name("hag-a"));
    CHECK(valid_node_name(std::string(64, 'x')));
    CHECK_FALSE(valid_node_name(std::string(65, 'x')));
    CHECK_FALSE(valid_node_name(""));
    CHECK_FALSE(valid_node_name("a b"));
    CHECK_FALSE(valid_node_name("a\x7f"));
    CHECK(binding_key("/hag/", "cpe@x") == "/hag/b/cpe@x");
    CHECK(node_key("/hag/", "a") == "/hag/n/a");
}

TEST_CASE("a node allocates GRE keys from its range and may claim others") {
    GreKeyAllocator k(100, 102);
    CHECK(*k.allocate() == 100);
    CHECK(*k.allocate() == 101);
    CHECK(*k.allocate() == 102);
    CHECK_FALSE(k.allocate());  // range exhausted
    CHECK(k.claim(5000));       // a binding taken over from another node
    CHECK_FALSE(k.claim(5000));
    CHECK(k.release(101));
    CHECK(*k.allocate() == 101);
}

namespace {

Session with_remote_anchor() {
    Session s = make_session();
    s.home_prefixes.push_back(Prefix{*hag::net::parse_ipv6_address("2001:db8:200:7::"), 64});
    RemoteAnchor a;
    a.prefix = s.home_prefixes[0];
    a.node = "node-a";
    a.anchor = CareOfAddress{*hag::net::parse_ipv6_address("2001:db8::a")};
    a.local = CareOfAddress{*hag::net::parse_ipv6_address("2001:db8::b")};
    a.uplink_key = 7;
    a.downlink_key = 1000008;
    s.remote_anchors = {a};
    return s;
}

// A PUT payload (after the framing) of the plain session, then `ext` appended.
std::vector<std::uint8_t> payload_with(const std::vector<std::uint8_t>& ext) {
    std::vector<std::uint8_t> rec;
    encode_put(make_session(), 0, rec);
    std::vector<std::uint8_t> p(rec.begin() + kRecordHeaderSize, rec.end());
    p.insert(p.end(), ext.begin(), ext.end());
    return p;
}

std::vector<std::uint8_t> anchor_entry(std::uint8_t prefix_len, std::uint8_t name_len,
                                       std::size_t name_octets) {
    std::vector<std::uint8_t> e(16, 0x20);
    e.push_back(prefix_len);
    e.insert(e.end(), 16 + 16 + 4 + 4, 0);
    e.push_back(name_len);
    e.insert(e.end(), name_octets, 'n');
    return e;
}

std::vector<std::uint8_t> ext5(const std::vector<std::uint8_t>& body) {
    std::vector<std::uint8_t> e(3 + body.size());
    e[0] = 5;
    e[1] = static_cast<std::uint8_t>(body.size());
    e[2] = static_cast<std::uint8_t>(body.size() >> 8);
    std::copy(body.begin(), body.end(), e.begin() + 3);
    return e;
}

}  // namespace

TEST_CASE("remote anchors (extension 5) round-trip; truncations and bit flips are safe") {
    const Session s = with_remote_anchor();
    std::vector<std::uint8_t> v;
    encode_value("node-b", "node-b", s, 1'700'000'000, v);
    auto r = decode_value(v);
    REQUIRE(r);
    Session want = s;
    want.paths[0].expires_at += 1'700'000'000;
    CHECK(r->session == want);
    for (std::size_t n = 0; n < v.size(); ++n) {
        CHECK_FALSE(decode_value(std::span<const std::uint8_t>(v.data(), n)));
    }
    for (std::size_t i = 0; i < v.size(); ++i) {
        for (int b = 0; b < 8; ++b) {
            auto w = v;
            w[i] ^= static_cast<std::uint8_t>(1u << b);
            if (auto x = decode_value(w)) {
                CHECK(x->session == r->session);
            }
        }
    }
    // A session without remote anchors writes no extension 5 (records as before).
    std::vector<std::uint8_t> plain, anchored;
    encode_put(make_session(), 0, plain);
    Session one = make_session();
    one.remote_anchors = with_remote_anchor().remote_anchors;
    encode_put(one, 0, anchored);
    CHECK(anchored.size() > plain.size());
}

TEST_CASE("hostile remote anchor extensions") {
    const auto good = anchor_entry(64, 6, 6);
    REQUIRE(decode_payload(payload_with(ext5(good))));
    CHECK(decode_payload(payload_with(ext5(good)))->session.remote_anchors.at(0).node == "nnnnnn");
    CHECK_FALSE(decode_payload(payload_with(ext5({}))));                        // empty
    CHECK_FALSE(decode_payload(payload_with(ext5(anchor_entry(129, 6, 6)))));   // prefix length
    CHECK_FALSE(decode_payload(payload_with(ext5(anchor_entry(64, 0, 0)))));    // no name
    CHECK_FALSE(decode_payload(payload_with(ext5(anchor_entry(64, 65, 65)))));  // name too long
    CHECK_FALSE(decode_payload(payload_with(ext5(anchor_entry(64, 9, 6)))));    // name beyond
    auto half = good;
    half.resize(20);
    CHECK_FALSE(decode_payload(payload_with(ext5(half))));  // entry cut short
    std::vector<std::uint8_t> nine;
    for (int i = 0; i < 9; ++i) {
        nine.insert(nine.end(), good.begin(), good.end());
    }
    CHECK_FALSE(decode_payload(payload_with(ext5(nine))));  // more than 8 entries
    auto twice = ext5(good);
    const auto again = ext5(good);
    twice.insert(twice.end(), again.begin(), again.end());
    CHECK_FALSE(decode_payload(payload_with(twice)));  // repeated
    auto beyond = ext5(good);
    beyond[1] = static_cast<std::uint8_t>(beyond[1] + 10);  // length past the record
    CHECK_FALSE(decode_payload(payload_with(beyond)));
}
