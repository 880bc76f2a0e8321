// LMA: IPv4 home address assignment (RFC 5844) — pool, static address, requested address,
// exhaustion, refusals with the Reply option's status, the default router, kept across
// re-registrations and paths, released with the session, restored, reload.
// Messages go through the real codec (encode -> receive).
#include <catch2/catch.hpp>

#include "core/config.hpp"
#include "core/dmnp.hpp"
#include "core/lma.hpp"
#include "core/store_format.hpp"
#include "dpclient/session_convert.hpp"
#include "hag/mh/mh.hpp"
#include "hag/net/address.hpp"

using namespace hag;
using namespace hag::control;
using mh::BaStatus;

namespace {

const char* kConfig = R"(
lma_addresses: "2001:db8::1"
lma_addresses: "192.0.2.1"
hnp_pools { name: "main" prefix: "2001:db8:100::/56" assign_length: 64 }
ipv4_pools { name: "v4" prefix: "198.51.100.0/29" }
ipv4_pools { name: "v4nets" prefix: "203.0.113.0/24" assign_length: 29 default_router: "203.0.113.254" }
subscribers { nai: "cpe1@example.net" }
subscribers { nai: "cpe2@example.net" }
subscribers { nai: "cpe3@example.net" }
subscribers { nai: "cpe4@example.net" }
subscribers { nai: "cpe5@example.net" }
subscribers { nai: "cpe6@example.net" }
subscribers { nai: "static@example.net" ipv4_home_address: "192.0.2.77" }
subscribers { nai: "nets@example.net" profile { ipv4_pool: "v4nets" } }
subscribers { nai: "fixed@example.net" profile { allow_requested_prefix: false } }
allow_unknown_mags: true
heartbeat_interval_seconds: 0
)";

v1::ControlConfig make_config(const std::string& text = kConfig) {
    auto r = parse_control_config(text, "test.conf");
    if (!r) {
        FAIL(r.error().front().str());
    }
    return *r;
}

std::array<std::uint8_t, 4> v4(const char* s) {
    auto a = net::parse_ipv4_address(s);
    REQUIRE(a);
    return *a;
}

std::string text(const std::array<std::uint8_t, 4>& a) {
    return net::format(net::Ipv4Address{a});
}

struct Pbu {
    std::string nai = "cpe1@example.net";
    std::uint16_t seq = 1;
    std::uint16_t lifetime_units = 100;
    int bid = 1;
    bool hnp = true;
    std::optional<mh::Ipv4HomeAddressRequest> v4req = mh::Ipv4HomeAddressRequest{};
    std::optional<mh::Ipv4> coa4;                        // IPv4 Care-of Address option
    std::vector<mh::DelegatedMobileNetworkPrefix> dmnp;  // RFC 7148 requests

    std::vector<std::uint8_t> bytes() const {
        mh::BindingUpdate bu;
        bu.sequence = seq;
        bu.ack = true;
        bu.home_registration = true;
        bu.proxy = true;
        bu.lifetime = lifetime_units;
        bu.options.push_back(mh::MobileNodeIdentifier{1, mh::Bytes(nai.begin(), nai.end())});
        if (hnp) {
            bu.options.push_back(mh::HomeNetworkPrefix{});
        }
        bu.options.push_back(mh::HandoffIndicatorOption{1});
        bu.options.push_back(mh::AccessTechnologyTypeOption{8});
        if (v4req) {
            bu.options.push_back(*v4req);
        }
        if (coa4) {
            bu.options.push_back(mh::Ipv4CareOfAddress{*coa4});
        }
        for (const auto& d : dmnp) {
            bu.options.push_back(d);
        }
        mh::MagMultipathBinding m;
        m.if_att = 8;
        m.binding_id = static_cast<std::uint8_t>(bid);
        bu.options.push_back(m);
        const std::string mag = "mag" + std::to_string(bid);
        bu.options.push_back(mh::MagIdentifier{1, mh::Bytes(mag.begin(), mag.end())});
        return mh::encode(mh::Message{bu});
    }
};

struct Fixture {
    BindingCache cache{1000};
    Lma lma;
    LmaTime t{1000, 1'000'000, std::uint64_t{1'700'000'000} << 16};
    explicit Fixture(const char* text = kConfig) : lma(make_config(text), cache, 7) {}

    mh::BindingAcknowledgement send(const Pbu& p, std::uint16_t port = 5436) {
        Peer from;
        from.udp = true;
        from.local = CareOfAddress::from_ipv4(v4("192.0.2.1")).addr;
        from.remote = CareOfAddress::from_ipv4(v4("192.0.2.50")).addr;
        from.remote_port = port;
        auto out = lma.receive(p.bytes(), from, t);
        REQUIRE(out.size() == 1);
        CHECK(out[0].to == from);  // answered where it came from (the NAT's address and port)
        auto again = mh::decode(mh::encode(out[0].message));
        REQUIRE(again);
        auto* ba = std::get_if<mh::BindingAcknowledgement>(&again->body);
        REQUIRE(ba != nullptr);
        return *ba;
    }
    std::uint64_t counter(const std::string& name) const {
        for (const auto& [k, v] : lma.counters()) {
            if (k == name) {
                return v;
            }
        }
        return 0;
    }
};

constexpr std::uint8_t S(BaStatus s) {
    return static_cast<std::uint8_t>(s);
}

std::vector<std::string> prefixes(const Session& s) {
    std::vector<std::string> out;
    for (const auto& p : s.home_prefixes) {
        out.push_back(to_string(p));
    }
    return out;
}

}  // namespace

TEST_CASE("an IPv4 Home Address Request gets an address from the pool and a default router",
          "[lma][ipv4]") {
    Fixture f;
    auto ba = f.send(Pbu{});
    REQUIRE(ba.status == S(BaStatus::kAccepted));
    const auto* r = mh::find_option<mh::Ipv4HomeAddressReply>(ba.options);
    REQUIRE(r != nullptr);
    CHECK(r->status == 0);
    CHECK(r->prefix_length == 32);
    // .0 is the network address, .1 the default router: the first address handed out is .2.
    CHECK(text(r->address) == "198.51.100.2");
    const auto* dr = mh::find_option<mh::Ipv4DefaultRouterAddress>(ba.options);
    REQUIRE(dr != nullptr);
    CHECK(text(dr->address) == "198.51.100.1");
    // The IPv6 prefix is there too, and only IPv6 prefixes go into HNP options.
    const auto hnps = mh::find_options<mh::HomeNetworkPrefix>(ba.options);
    REQUIRE(hnps.size() == 1);
    CHECK(net::format(hnps[0]->prefix) == "2001:db8:100::");

    const Session* s = f.cache.find("cpe1@example.net");
    REQUIRE(s != nullptr);
    CHECK(prefixes(*s) == std::vector<std::string>{"2001:db8:100::/64", "198.51.100.2/32"});
    CHECK(f.counter("pbu.ipv4.assigned") == 1);

    // Re-registration (and a second path) keeps the address; asking for it by value is fine.
    Pbu again;
    again.seq = 2;
    again.v4req = mh::Ipv4HomeAddressRequest{32, v4("198.51.100.2")};
    ba = f.send(again);
    REQUIRE(ba.status == S(BaStatus::kAccepted));
    CHECK(text(mh::find_option<mh::Ipv4HomeAddressReply>(ba.options)->address) == "198.51.100.2");
    Pbu second;
    second.bid = 2;
    second.v4req.reset();  // a path that does not ask: the session keeps its address, no reply
    ba = f.send(second);
    REQUIRE(ba.status == S(BaStatus::kAccepted));
    CHECK(mh::find_option<mh::Ipv4HomeAddressReply>(ba.options) == nullptr);
    s = f.cache.find("cpe1@example.net");
    CHECK(s->paths.size() == 2);
    CHECK(prefixes(*s).back() == "198.51.100.2/32");

    // A different address for an existing binding: 171, reply status 130.
    Pbu other;
    other.seq = 3;
    other.v4req = mh::Ipv4HomeAddressRequest{32, v4("198.51.100.3")};
    ba = f.send(other);
    CHECK(ba.status == S(BaStatus::kNotAuthorizedForIpv4HomeAddress));
    r = mh::find_option<mh::Ipv4HomeAddressReply>(ba.options);
    REQUIRE(r != nullptr);
    CHECK(r->status == 130);
    CHECK(text(r->address) == "198.51.100.3");
}

TEST_CASE("the IPv4 pool runs out: 130 with reply status 132; addresses return with sessions",
          "[lma][ipv4]") {
    Fixture f;
    // 198.51.100.0/29: .0 network, .1 router, .7 broadcast: .2-.6 are five addresses.
    for (int i = 1; i <= 5; ++i) {
        Pbu p;
        p.nai = "cpe" + std::to_string(i) + "@example.net";
        p.bid = i;
        REQUIRE(f.send(p).status == S(BaStatus::kAccepted));
    }
    Pbu sixth;
    sixth.nai = "cpe6@example.net";
    sixth.bid = 6;
    auto ba = f.send(sixth);
    CHECK(ba.status == S(BaStatus::kInsufficientResources));
    const auto* r = mh::find_option<mh::Ipv4HomeAddressReply>(ba.options);
    REQUIRE(r != nullptr);
    CHECK(r->status == 132);
    CHECK(f.cache.find("cpe6@example.net") == nullptr);
    // The refused PBU's IPv6 prefix went back to its pool: only five are in use.
    CHECK(f.counter("pool.main.in_use") == 5);

    // De-registering one frees its address for the next.
    Pbu bye;
    bye.nai = "cpe3@example.net";
    bye.bid = 3;
    bye.seq = 2;
    bye.lifetime_units = 0;
    REQUIRE(f.send(bye).status == S(BaStatus::kAccepted));
    sixth.seq = 2;
    ba = f.send(sixth);
    REQUIRE(ba.status == S(BaStatus::kAccepted));
    CHECK(text(mh::find_option<mh::Ipv4HomeAddressReply>(ba.options)->address) == "198.51.100.4");
}

TEST_CASE("static, requested and refused IPv4 home addresses", "[lma][ipv4]") {
    Fixture f;
    SECTION("static address, no default router outside any pool") {
        Pbu p;
        p.nai = "static@example.net";
        auto ba = f.send(p);
        REQUIRE(ba.status == S(BaStatus::kAccepted));
        CHECK(text(mh::find_option<mh::Ipv4HomeAddressReply>(ba.options)->address) == "192.0.2.77");
        CHECK(mh::find_option<mh::Ipv4DefaultRouterAddress>(ba.options) == nullptr);
        Pbu wrong = p;
        wrong.nai = "static@example.net";
        wrong.bid = 2;
        wrong.v4req = mh::Ipv4HomeAddressRequest{32, v4("192.0.2.78")};
        CHECK(f.send(wrong).status == S(BaStatus::kNotAuthorizedForIpv4HomeAddress));
    }
    SECTION("a prefix pool: a /29 and the pool's router") {
        Pbu p;
        p.nai = "nets@example.net";
        auto ba = f.send(p);
        REQUIRE(ba.status == S(BaStatus::kAccepted));
        const auto* r = mh::find_option<mh::Ipv4HomeAddressReply>(ba.options);
        CHECK(r->prefix_length == 29);
        CHECK(text(r->address) == "203.0.113.0");
        CHECK(text(mh::find_option<mh::Ipv4DefaultRouterAddress>(ba.options)->address) ==
              "203.0.113.254");
    }
    SECTION("a requested address inside the pool is honoured; outside or taken it is not") {
        Pbu p;
        p.v4req = mh::Ipv4HomeAddressRequest{0, v4("198.51.100.5")};  // length 0: a /32
        auto ba = f.send(p);
        REQUIRE(ba.status == S(BaStatus::kAccepted));
        CHECK(text(mh::find_option<mh::Ipv4HomeAddressReply>(ba.options)->address) ==
              "198.51.100.5");
        Pbu taken;
        taken.nai = "cpe2@example.net";
        taken.bid = 2;
        taken.v4req = mh::Ipv4HomeAddressRequest{32, v4("198.51.100.5")};
        ba = f.send(taken);
        CHECK(ba.status == S(BaStatus::kNotAuthorizedForIpv4HomeAddress));
        CHECK(mh::find_option<mh::Ipv4HomeAddressReply>(ba.options)->status == 130);
        taken.v4req = mh::Ipv4HomeAddressRequest{32, v4("198.51.100.1")};  // the router
        CHECK(f.send(taken).status == S(BaStatus::kNotAuthorizedForIpv4HomeAddress));
        taken.v4req = mh::Ipv4HomeAddressRequest{32, v4("10.0.0.1")};  // outside
        CHECK(f.send(taken).status == S(BaStatus::kNotAuthorizedForIpv4HomeAddress));
        CHECK(f.cache.find("cpe2@example.net") == nullptr);
    }
    SECTION("invalid requests: host bits, prefix length beyond 32") {
        Pbu p;
        p.v4req = mh::Ipv4HomeAddressRequest{24, v4("198.51.100.5")};
        auto ba = f.send(p);
        CHECK(ba.status == S(BaStatus::kNotAuthorizedForIpv4HomeAddress));
        CHECK(mh::find_option<mh::Ipv4HomeAddressReply>(ba.options)->status == 131);
        p.v4req = mh::Ipv4HomeAddressRequest{63, v4("198.51.100.5")};
        ba = f.send(p);
        CHECK(mh::find_option<mh::Ipv4HomeAddressReply>(ba.options)->status == 131);
        CHECK(f.cache.size() == 0);
        CHECK(f.counter("pool.main.in_use") == 0);
    }
    SECTION("requests not honoured for the profile") {
        Pbu p;
        p.nai = "fixed@example.net";
        p.v4req = mh::Ipv4HomeAddressRequest{32, v4("198.51.100.5")};
        auto ba = f.send(p);
        CHECK(ba.status == S(BaStatus::kNotAuthorizedForIpv4HomeAddress));
        CHECK(mh::find_option<mh::Ipv4HomeAddressReply>(ba.options)->status == 129);
    }
    SECTION("IPv4-only: no HNP option, only the IPv4 request") {
        Pbu p;
        p.hnp = false;
        auto ba = f.send(p);
        REQUIRE(ba.status == S(BaStatus::kAccepted));
        CHECK(mh::find_option<mh::HomeNetworkPrefix>(ba.options) == nullptr);
        CHECK(prefixes(*f.cache.find("cpe1@example.net")) ==
              std::vector<std::string>{"198.51.100.2/32"});
        p.v4req.reset();  // neither: still 158
        p.nai = "cpe2@example.net";
        CHECK(f.send(p).status == S(BaStatus::kMissingHomeNetworkPrefixOption));
    }
}

TEST_CASE("no IPv4 pool: 170 NOT_AUTHORIZED_FOR_IPV4_MOBILITY_SERVICE", "[lma][ipv4]") {
    const std::string text = R"(
lma_addresses: "2001:db8::1"
hnp_pools { name: "main" prefix: "2001:db8:100::/56" assign_length: 64 }
subscribers { nai: "cpe1@example.net" }
allow_unknown_mags: true
)";
    Fixture f(text.c_str());
    auto ba = f.send(Pbu{});
    CHECK(ba.status == S(BaStatus::kNotAuthorizedForIpv4MobilityService));
    CHECK(mh::find_option<mh::Ipv4HomeAddressReply>(ba.options)->status == 129);
    CHECK(f.counter("pool.main.in_use") == 0);
    Pbu v6only;
    v6only.v4req.reset();
    CHECK(f.send(v6only).status == S(BaStatus::kAccepted));
}

TEST_CASE("IPv4 home addresses are re-claimed on restore and survive a reload", "[lma][ipv4]") {
    Fixture f;
    REQUIRE(f.send(Pbu{}).status == S(BaStatus::kAccepted));
    const Session saved = *f.cache.find("cpe1@example.net");

    BindingCache cache2{1000};
    Lma lma2(make_config(), cache2, 8);
    REQUIRE(lma2.restore(saved, f.t));
    // The restored address is taken: a new subscriber gets the next one.
    Peer from;
    from.udp = true;
    from.local = CareOfAddress::from_ipv4(v4("192.0.2.1")).addr;
    from.remote = CareOfAddress::from_ipv4(v4("192.0.2.50")).addr;
    Pbu p;
    p.nai = "cpe2@example.net";
    p.bid = 2;
    auto out = lma2.receive(p.bytes(), from, f.t);
    REQUIRE(out.size() == 1);
    const auto* ba = std::get_if<mh::BindingAcknowledgement>(&out[0].message.body);
    REQUIRE(ba->status == 0);
    CHECK(text(mh::find_option<mh::Ipv4HomeAddressReply>(ba->options)->address) == "198.51.100.3");

    // A reload keeping the IPv4 pool keeps both sessions; dropping it revokes them.
    auto bris = lma2.reload(make_config(), f.t);
    CHECK(bris.empty());
    CHECK(cache2.size() == 2);
    const std::string no_v4 = R"(
lma_addresses: "2001:db8::1"
hnp_pools { name: "main" prefix: "2001:db8:100::/56" assign_length: 64 }
subscribers { nai: "cpe1@example.net" }
subscribers { nai: "cpe2@example.net" }
allow_unknown_mags: true
heartbeat_interval_seconds: 0
)";
    bris = lma2.reload(make_config(no_v4), f.t);
    CHECK(cache2.size() == 0);
}

TEST_CASE("IPv4 pool configuration is checked", "[lma][ipv4][config]") {
    auto bad = [](const std::string& extra) {
        auto r = parse_control_config(
            std::string("lma_addresses: \"2001:db8::1\"\n"
                        "hnp_pools { name: \"main\" prefix: \"2001:db8:100::/56\" "
                        "assign_length: 64 }\n") +
                extra,
            "t.conf");
        REQUIRE(!r);
        return r.error().front().str();
    };
    CHECK_THAT(bad("ipv4_pools { name: \"a\" prefix: \"198.51.100.0/33\" }"),
               Catch::Contains("ipv4_pools.prefix"));
    CHECK_THAT(bad("ipv4_pools { name: \"a\" prefix: \"198.51.100.1/24\" }"),
               Catch::Contains("bits set past"));
    CHECK_THAT(bad("ipv4_pools { name: \"a\" prefix: \"198.51.100.0/24\" assign_length: 24 }"),
               Catch::Contains("ipv4_pools.assign_length"));
    CHECK_THAT(bad("ipv4_pools { name: \"main\" prefix: \"198.51.100.0/24\" }"),
               Catch::Contains("also a hnp_pools name"));
    CHECK_THAT(bad("ipv4_pools { name: \"a\" prefix: \"198.51.100.0/24\" }\n"
                   "ipv4_pools { name: \"b\" prefix: \"198.51.100.128/25\" }"),
               Catch::Contains("overlaps"));
    CHECK_THAT(bad("ipv4_pools { name: \"a\" prefix: \"198.51.100.0/24\" default_router: \"x\" }"),
               Catch::Contains("default_router"));
    CHECK_THAT(bad("default_profile { ipv4_pool: \"nope\" }"),
               Catch::Contains("no IPv4 pool named 'nope'"));
    CHECK_THAT(bad("subscribers { nai: \"a\" ipv4_home_address: \"2001:db8::1\" }"),
               Catch::Contains("ipv4_home_address"));
    CHECK_THAT(bad("hnp_pools { name: \"m\" prefix: \"::ffff:0:0/96\" assign_length: 128 }"),
               Catch::Contains("IPv4-mapped"));
}

TEST_CASE("NAT detection: the PBU's source differs from its IPv4 Care-of Address option",
          "[lma][nat]") {
    Fixture f;
    Pbu behind;
    behind.coa4 = v4("198.51.100.66");  // the MAG's own (private) address; the PBU came from .50
    auto ba = f.send(behind, 40123);
    REQUIRE(ba.status == S(BaStatus::kAccepted));
    const auto* n = mh::find_option<mh::NatDetection>(ba.options);
    REQUIRE(n != nullptr);
    CHECK_FALSE(n->udp_encapsulation_required);
    CHECK(n->refresh_time == 30);
    const Session* s = f.cache.find("cpe1@example.net");
    REQUIRE(s != nullptr);
    const Path& p = s->paths.at(0);
    CHECK(p.nat);
    CHECK(to_string(p.coa) == "192.0.2.50");  // the observed address
    CHECK(p.nat_port == 40123);
    CHECK(to_string(p.mag_coa) == "198.51.100.66");
    CHECK(f.counter("pbu.nat_detected") == 1);

    // The NAT's mapping changes port: the path follows.
    behind.seq = 2;
    ba = f.send(behind, 40999);
    REQUIRE(ba.status == S(BaStatus::kAccepted));
    CHECK(f.cache.find("cpe1@example.net")->paths.at(0).nat_port == 40999);

    // No NAT: the option agrees with the source (or is absent).
    Pbu direct;
    direct.nai = "cpe2@example.net";
    direct.bid = 2;
    direct.coa4 = v4("192.0.2.50");
    ba = f.send(direct);
    REQUIRE(ba.status == S(BaStatus::kAccepted));
    CHECK(mh::find_option<mh::NatDetection>(ba.options) == nullptr);
    CHECK_FALSE(f.cache.find("cpe2@example.net")->paths.at(0).nat);
}

TEST_CASE("NAT detection can be turned off, and its refresh time set", "[lma][nat]") {
    Fixture off((std::string(kConfig) + "nat_detection: false\n").c_str());
    Pbu behind;
    behind.coa4 = v4("198.51.100.66");
    auto ba = off.send(behind, 40123);
    REQUIRE(ba.status == S(BaStatus::kAccepted));
    CHECK(mh::find_option<mh::NatDetection>(ba.options) == nullptr);
    CHECK_FALSE(off.cache.find("cpe1@example.net")->paths.at(0).nat);

    Fixture fast((std::string(kConfig) + "nat_refresh_seconds: 7\n").c_str());
    ba = fast.send(behind, 40123);
    REQUIRE(mh::find_option<mh::NatDetection>(ba.options) != nullptr);
    CHECK(mh::find_option<mh::NatDetection>(ba.options)->refresh_time == 7);
    CHECK_FALSE(parse_control_config(std::string(kConfig) + "nat_refresh_seconds: 0\n", "t").ok());
}

TEST_CASE("an IPv4 home address, NAT detection and delegated prefixes in one session",
          "[lma][ipv4][nat][dmnp]") {
    const std::string conf = std::string(kConfig) + R"(
dmnp_pools { name: "lan6" prefix: "2001:db8:d00::/54" assign_length: 56 }
dmnp_pools { name: "lan4" prefix: "192.0.2.128/27" assign_length: 28 }
default_profile { dmnp_pool: "lan6" dmnp_pool_ipv4: "lan4" }
)";
    Fixture f(conf.c_str());
    const mh::DelegatedMobileNetworkPrefix any6{false, 0, mh::Bytes(16, 0)};
    const mh::DelegatedMobileNetworkPrefix any4{true, 0, mh::Bytes(4, 0)};
    Pbu p;
    p.coa4 = v4("198.51.100.66");  // behind a NAT: the PBU comes from 192.0.2.50
    p.dmnp = {any6, any4};
    auto ba = f.send(p, 40123);
    REQUIRE(ba.status == S(BaStatus::kAccepted));
    const auto* r = mh::find_option<mh::Ipv4HomeAddressReply>(ba.options);
    REQUIRE(r != nullptr);
    CHECK(text(r->address) == "198.51.100.2");
    CHECK(mh::find_option<mh::Ipv4DefaultRouterAddress>(ba.options) != nullptr);
    CHECK(mh::find_option<mh::NatDetection>(ba.options) != nullptr);
    std::vector<std::string> granted;
    for (const auto* d : mh::find_options<mh::DelegatedMobileNetworkPrefix>(ba.options)) {
        auto req = dmnp_requests(mh::Options{*d});
        REQUIRE(req);
        REQUIRE(req->size() == 1);
        REQUIRE((*req)[0].specific);
        granted.push_back(prefix_text_any(*(*req)[0].specific));
    }
    CHECK(granted == std::vector<std::string>{"2001:db8:d00::/56", "192.0.2.128/28"});

    const Session* s = f.cache.find("cpe1@example.net");
    REQUIRE(s != nullptr);
    CHECK(prefixes(*s) == std::vector<std::string>{"2001:db8:100::/64", "198.51.100.2/32"});
    REQUIRE(s->delegated_prefixes.size() == 2);
    REQUIRE(s->paths.size() == 1);
    CHECK(s->paths[0].nat);
    // The data plane gets all four prefixes (its limit): HNP, IPv4 home address, delegated.
    const auto dp = dpclient::to_dp_session(*s, 1, nullptr);
    CHECK(dp.prefixes_size() == 4);
    // The store keeps both extensions (NAT, delegated prefixes).
    std::vector<std::uint8_t> rec;
    store::encode_put(*s, 0, rec);
    auto back = store::decode_payload(std::span(rec).subspan(store::kRecordHeaderSize));
    REQUIRE(back);
    CHECK(back->session == *s);

    // A PBU refused for its delegated prefix (held by cpe1) gives back the IPv4 home address
    // it had claimed.
    const auto in_use = f.counter("pool.v4.in_use");
    Pbu other;
    other.nai = "cpe2@example.net";
    other.bid = 2;
    other.dmnp = {to_option(*parse_prefix_any("2001:db8:d00::/56"))};
    ba = f.send(other);
    CHECK(ba.status == 178);  // REQUESTED_DMNP_IN_USE
    CHECK(f.counter("pool.v4.in_use") == in_use);
    CHECK(f.cache.find("cpe2@example.net") == nullptr);

    // De-registration returns everything to the pools.
    p.seq = 2;
    p.lifetime_units = 0;
    p.dmnp.clear();
    ba = f.send(p, 40123);
    REQUIRE(ba.status == S(BaStatus::kAccepted));
    CHECK(f.cache.find("cpe1@example.net") == nullptr);
    CHECK(f.counter("pool.v4.in_use") == in_use - 1);
    CHECK(f.counter("dmnp_pool.lan6.in_use") == 0);
    CHECK(f.counter("dmnp_pool.lan4.in_use") == 0);
}

TEST_CASE("delegated prefix pools may not overlap IPv4 home address pools", "[lma][dmnp][config]") {
    const std::string conf =
        std::string(kConfig) +
        R"(dmnp_pools { name: "lan4" prefix: "203.0.113.128/25" assign_length: 28 })";
    auto r = parse_control_config(conf, "t.conf");
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().front().str(), Catch::Contains("overlaps pool 'v4nets'"));
}
