// hag-magsim's IPv4 transport (UDP 5436 framing), Binding Revocation Acknowledgement and
// heartbeat bookkeeping. Hostile inputs for the framing parser are tagged [hostile].
#include <catch2/catch.hpp>

#include "hag/mh/mh.hpp"
#include "heartbeat.hpp"
#include "pbu.hpp"
#include "udp_framing.hpp"

using namespace hag;

namespace {

const mh::Ipv6 kMag = magsim::ipv4_mapped({192, 0, 2, 2});
const mh::Ipv6 kLma = magsim::ipv4_mapped({192, 0, 2, 1});

std::vector<std::uint8_t> framed_heartbeat(std::uint32_t seq) {
    mh::Heartbeat hb;
    hb.sequence = seq;
    return magsim::build_udp_payload(mh::encode(mh::Message{hb}), kMag, kLma);
}

}  // namespace

TEST_CASE("ipv4_mapped gives ::ffff:a.b.c.d") {
    const mh::Ipv6 want{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 2};
    CHECK(kMag == want);
}

TEST_CASE("build_udp_payload: IPv6 header, then the MH with its checksum") {
    const auto mh_bytes = mh::encode(mh::Message{mh::Heartbeat{false, false, 7, {}}});
    const auto p = magsim::build_udp_payload(mh_bytes, kMag, kLma);
    REQUIRE(p.size() == 40 + mh_bytes.size());
    CHECK(p[0] == 0x60);
    CHECK(p[1] == 0);
    CHECK(p[2] == 0);
    CHECK(p[3] == 0);
    CHECK(((p[4] << 8) | p[5]) == static_cast<int>(mh_bytes.size()));
    CHECK(p[6] == 135);
    CHECK(p[7] == 255);
    CHECK(std::equal(kMag.begin(), kMag.end(), p.begin() + 8));
    CHECK(std::equal(kLma.begin(), kLma.end(), p.begin() + 24));
    const std::span<const std::uint8_t> inner(p.data() + 40, p.size() - 40);
    CHECK(mh::checksum_ok(inner, kMag, kLma));
    CHECK_FALSE(mh::checksum_ok(inner, kMag, kMag));  // other pseudo-header addresses
    // Only the checksum field differs from the encoded MH.
    CHECK(std::equal(mh_bytes.begin(), mh_bytes.begin() + 4, inner.begin()));
    CHECK(std::equal(mh_bytes.begin() + 6, mh_bytes.end(), inner.begin() + 6));
}

TEST_CASE("parse_udp_payload round-trips build_udp_payload") {
    const auto p = framed_heartbeat(0x01020304);
    auto r = magsim::parse_udp_payload(p);
    REQUIRE(r);
    CHECK(r->inner_src == kMag);
    CHECK(r->inner_dst == kLma);
    CHECK(r->mh.data() == p.data() + 40);
    auto m = mh::decode(r->mh);
    REQUIRE(m);
    const auto* hb = std::get_if<mh::Heartbeat>(&m->body);
    REQUIRE(hb != nullptr);
    CHECK(hb->sequence == 0x01020304);
}

TEST_CASE("parse_udp_payload refuses hostile datagrams", "[hostile]") {
    using E = magsim::UdpFramingError;
    const auto good = framed_heartbeat(1);
    auto err = [](std::span<const std::uint8_t> d) {
        auto r = magsim::parse_udp_payload(d);
        REQUIRE_FALSE(r);
        return r.error();
    };
    SECTION("too short") {
        CHECK(err({}) == E::kTooShort);
        CHECK(err({good.data(), 1}) == E::kTooShort);
        CHECK(err({good.data(), 40}) == E::kTooShort);  // header only
        CHECK(err({good.data(), 45}) == E::kTooShort);  // MH cut before its checksum
        const std::vector<std::uint8_t> bare(good.begin() + 40, good.end());
        CHECK(err(bare) == E::kTooShort);  // bare MH (RFC 5844 form without the IPv6 header)
    }
    SECTION("wrong version") {
        for (std::uint8_t v : {0x40, 0x00, 0x70, 0xf0}) {
            auto d = good;
            d[0] = v;
            CHECK(err(d) == E::kNotIpv6);
        }
    }
    SECTION("wrong next header") {
        for (std::uint8_t nh : {0, 17, 59, 60, 134, 136, 255}) {
            auto d = good;
            d[6] = nh;
            CHECK(err(d) == E::kNotMobility);
        }
    }
    SECTION("length mismatch") {
        auto d = good;
        d[5] = static_cast<std::uint8_t>(d[5] + 8);  // claims more than present
        CHECK(err(d) == E::kLengthMismatch);
        d = good;
        d[5] = static_cast<std::uint8_t>(d[5] - 8);  // claims less: trailing octets
        CHECK(err(d) == E::kLengthMismatch);
        d = good;
        d[4] = 0xff;
        d[5] = 0xff;
        CHECK(err(d) == E::kLengthMismatch);
        d = good;
        d.push_back(0);
        CHECK(err(d) == E::kLengthMismatch);
    }
    SECTION("bad checksum") {
        auto d = good;
        d[44] ^= 0x01;  // the checksum itself
        CHECK(err(d) == E::kBadChecksum);
        d = good;
        d.back() ^= 0x80;  // the message body
        CHECK(err(d) == E::kBadChecksum);
        d = good;
        d[8 + 15] ^= 0x01;  // inner source address: the pseudo-header no longer matches
        CHECK(err(d) == E::kBadChecksum);
        d = good;
        d[24 + 15] ^= 0x01;  // inner destination address
        CHECK(err(d) == E::kBadChecksum);
    }
    for (auto e :
         {E::kTooShort, E::kNotIpv6, E::kNotMobility, E::kLengthMismatch, E::kBadChecksum}) {
        CHECK_FALSE(magsim::to_string(e).empty());
    }
}

TEST_CASE("parse_udp_payload survives every truncation and single-octet change", "[hostile]") {
    const auto good = framed_heartbeat(9);
    for (std::size_t n = 0; n < good.size(); ++n) {
        CHECK_FALSE(magsim::parse_udp_payload({good.data(), n}));
    }
    for (std::size_t i = 0; i < good.size(); ++i) {
        for (int bit = 0; bit < 8; ++bit) {
            auto d = good;
            d[i] ^= static_cast<std::uint8_t>(1u << bit);
            auto r = magsim::parse_udp_payload(d);
            // Traffic class, flow label and hop limit are not checked; everything else is.
            const bool unchecked = (i == 0 && bit < 4) || (i >= 1 && i <= 3) || i == 7;
            CHECK(static_cast<bool>(r) == unchecked);
        }
    }
}

TEST_CASE("parse_access: IPv4 CoA, KIND4 suffix for an interface's IPv4 address") {
    auto a = magsim::parse_access("lte:192.0.2.2:2");
    REQUIRE(a);
    CHECK(a->ipv4);
    CHECK(a->kind == "lte");
    CHECK(a->iface_or_coa == "192.0.2.2");
    CHECK(a->bid == 2);
    auto b = magsim::parse_access("lte4:veth-lte:2");
    REQUIRE(b);
    CHECK(b->ipv4);
    CHECK(b->kind == "lte");
    CHECK(b->iface_or_coa == "veth-lte");
    auto c = magsim::parse_access("dsl4:198.51.100.2:1");
    REQUIRE(c);
    CHECK(c->ipv4);
    CHECK(c->kind == "dsl");
    auto d = magsim::parse_access("lte:veth-lte:2");
    REQUIRE(d);
    CHECK_FALSE(d->ipv4);
    CHECK_FALSE(magsim::parse_access("dsl:2001:db8::1:1")->ipv4);
    CHECK_FALSE(magsim::parse_access("lte4:2001:db8::2:2"));  // IPv4 transport, IPv6 CoA
    CHECK(magsim::parse_access("4:eth0:1")->kind == "4");     // a lone "4" is a kind
}

TEST_CASE("a PBU over IPv4 carries the IPv4 Care-of Address option") {
    magsim::PbuParams p;
    p.nai = "cpe1@example.net";
    p.mag_id = "mag1@example.net";
    p.access = *magsim::parse_access("lte:192.0.2.2:2");
    p.coa4 = mh::Ipv4{192, 0, 2, 2};
    auto m = mh::decode(mh::encode(magsim::build_pbu(p)));
    REQUIRE(m);
    const auto* c = mh::find_option<mh::Ipv4CareOfAddress>(m->options());
    REQUIRE(c != nullptr);
    CHECK(c->address == mh::Ipv4{192, 0, 2, 2});
    p.coa4.reset();
    auto m6 = mh::decode(mh::encode(magsim::build_pbu(p)));
    REQUIRE(m6);
    CHECK(mh::find_option<mh::Ipv4CareOfAddress>(m6->options()) == nullptr);
}

TEST_CASE("build_bra answers a BRI: same sequence, status, flags, MN-ID echoed") {
    mh::BindingRevocation bri;
    bri.br_type = mh::kBrTypeIndication;
    bri.trigger_or_status = 1;
    bri.sequence = 0xbeef;
    bri.proxy = true;
    const std::string nai = "cpe1@example.net";
    bri.options.push_back(mh::MobileNodeIdentifier{mh::kMnIdSubtypeNai, {nai.begin(), nai.end()}});
    mh::BindingIdentifier b;
    b.bid = 2;
    bri.options.push_back(b);
    auto m = mh::decode(mh::encode(magsim::build_bra(bri)));
    REQUIRE(m);
    const auto* bra = std::get_if<mh::BindingRevocation>(&m->body);
    REQUIRE(bra != nullptr);
    CHECK(bra->br_type == mh::kBrTypeAcknowledgement);
    CHECK(bra->trigger_or_status == 0);
    CHECK(bra->sequence == 0xbeef);
    CHECK(bra->proxy);
    CHECK_FALSE(bra->global);
    const auto* id = mh::find_option<mh::MobileNodeIdentifier>(bra->options);
    REQUIRE(id != nullptr);
    CHECK(std::string(id->identifier.begin(), id->identifier.end()) == nai);
    CHECK(bra->options.size() == 1);

    mh::BindingRevocation bare;
    bare.sequence = 3;
    bare.global = true;
    auto m2 = mh::decode(mh::encode(magsim::build_bra(bare, 128)));
    REQUIRE(m2);
    const auto& bra2 = std::get<mh::BindingRevocation>(m2->body);
    CHECK(bra2.trigger_or_status == 128);
    CHECK(bra2.global);
    CHECK(bra2.options.empty());
}

TEST_CASE("HeartbeatTracker: unreachable after 3 missed, once; reachable on the next response") {
    using Ev = magsim::HeartbeatTracker::Event;
    magsim::HeartbeatTracker t;
    CHECK(t.on_response(1) == Ev::kNone);  // nothing sent yet
    CHECK(t.on_request_sent(1) == Ev::kNone);
    CHECK(t.on_response(1) == Ev::kNone);  // answered: all well
    CHECK(t.missed() == 0);
    CHECK(t.on_request_sent(2) == Ev::kNone);
    CHECK(t.on_request_sent(3) == Ev::kNone);  // request 2 missed
    CHECK(t.on_request_sent(4) == Ev::kNone);  // request 3 missed
    CHECK(t.missed() == 2);
    CHECK(t.on_request_sent(5) == Ev::kUnreachable);  // request 4 missed: the third
    CHECK(t.missed() == 3);
    CHECK(t.unreachable());
    CHECK(t.on_request_sent(6) == Ev::kNone);  // printed once only
    CHECK(t.on_response(99) == Ev::kNone);     // never sent
    CHECK(t.on_response(1) == Ev::kNone);      // already answered before
    CHECK(t.unreachable());
    CHECK(t.on_response(5) == Ev::kReachableAgain);  // a late answer still proves liveness
    CHECK_FALSE(t.unreachable());
    CHECK(t.missed() == 0);
    CHECK(t.on_response(6) == Ev::kNone);  // nothing outstanding any more
    CHECK(t.on_request_sent(7) == Ev::kNone);
    CHECK(t.on_response(7) == Ev::kNone);
}
