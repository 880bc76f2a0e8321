// hag-magsim's IPv4 transport (access syntax, IPv4 CoA option), Binding Revocation
// Acknowledgement and heartbeat bookkeeping. The UDP 5436 framing is common's, tested in
// tests/unit/common/mh/test_udp_transport.cpp.
#include <catch2/catch.hpp>

#include "hag/mh/mh.hpp"
#include "hag/net/address.hpp"
#include "heartbeat.hpp"
#include "pbu.hpp"

using namespace hag;

namespace {

const mh::Ipv6 kMag = net::ipv4_mapped({192, 0, 2, 2});
const mh::Ipv6 kLma = net::ipv4_mapped({192, 0, 2, 1});

}  // namespace

TEST_CASE("ipv4_mapped gives ::ffff:a.b.c.d") {
    const mh::Ipv6 want{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 2};
    CHECK(kMag == want);
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
