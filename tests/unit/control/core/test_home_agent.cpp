// MIPv6 home agent (RFC 6275 §10.3, RFC 5648) in the LMA: BUs that came with a Home Address
// option, every BA status the home agent produces, multiple care-of addresses, de-registration,
// and the BA's way back (the home address for the Type 2 Routing Header).
#include <catch2/catch.hpp>

#include "core/config.hpp"
#include "core/lma.hpp"
#include "hag/mh/mh.hpp"
#include "hag/net/address.hpp"

using namespace hag;
using namespace hag::control;
using mh::BaStatus;

namespace {

const char* kConfig = R"(
lma_addresses: "2001:db8:ff::1"
hnp_pools { name: "main" prefix: "2001:db8:100::/56" assign_length: 64 }
subscribers { nai: "mn1@example.net" home_prefixes: "2001:db8:500:1::/64" }
subscribers { nai: "mr1@example.net" home_prefixes: "2001:db8:500:2::/64" profile { gre_key_required: true } }
subscribers { nai: "single@example.net" home_prefixes: "2001:db8:500:3::/64" profile { multipath: false } }
subscribers { nai: "cpe1@example.net" home_prefixes: "2001:db8:500:4::/64" }
mags { mag_id: "mag1@example.net" }
home_agent { enabled: true }
)";

v1::ControlConfig config(bool enabled = true) {
    std::string text = kConfig;
    if (!enabled) {
        text.replace(text.find("enabled: true"), 13, "enabled: false");
    }
    auto r = parse_control_config(text, "test.conf");
    if (!r) {
        FAIL(r.error().front().str());
    }
    return *r;
}

Ipv6Address ip(const char* s) {
    return *net::parse_ipv6_address(s);
}

struct Bu {
    std::uint16_t seq = 1;
    std::uint16_t lifetime_units = 100;
    bool home = true, ack = true, proxy = false, mr = false;
    std::string nai;  // MN-ID option when not empty
    std::vector<mh::BindingIdentifier> bids;
    std::optional<std::uint32_t> gre;
    std::optional<Ipv6Address> alt_coa;

    std::vector<std::uint8_t> bytes() const {
        mh::BindingUpdate bu;
        bu.sequence = seq;
        bu.ack = ack;
        bu.home_registration = home;
        bu.proxy = proxy;
        bu.mobile_router = mr;
        bu.lifetime = lifetime_units;
        if (!nai.empty()) {
            bu.options.push_back(mh::MobileNodeIdentifier{1, mh::Bytes(nai.begin(), nai.end())});
        }
        if (alt_coa) {
            bu.options.push_back(mh::AlternateCareOfAddress{*alt_coa});
        }
        for (const auto& b : bids) {
            bu.options.push_back(b);
        }
        if (gre) {
            bu.options.push_back(mh::GreKey{*gre});
        }
        return mh::encode(mh::Message{bu});
    }
};

mh::BindingIdentifier bid(std::uint16_t id, std::optional<const char*> coa = std::nullopt) {
    mh::BindingIdentifier b;
    b.bid = id;
    if (coa) {
        b.coa6 = ip(*coa);
    }
    return b;
}

struct Fixture {
    BindingCache cache{1000};
    Lma lma;
    LmaTime t{1000, 1'000'000, std::uint64_t{1'700'000'000} << 16};
    explicit Fixture(bool enabled = true) : lma(config(enabled), cache, 7) {}

    std::vector<Outbound> raw(const Bu& b, const char* hoa, const char* coa) {
        Peer p;
        p.local = ip("2001:db8:ff::1");
        p.remote = ip(coa);
        p.home_address = ip(hoa);
        return lma.receive(b.bytes(), p, t);
    }
    mh::BindingAcknowledgement send(const Bu& b, const char* hoa = "2001:db8:500:1::5",
                                    const char* coa = "2001:db8:aaaa::1") {
        auto out = raw(b, hoa, coa);
        REQUIRE(out.size() == 1);
        // The BA goes back to the care-of address, with the home address for the Type 2
        // Routing Header, from the address the BU was sent to.
        CHECK(out[0].to.remote == ip(coa));
        REQUIRE(out[0].to.home_address);
        CHECK(*out[0].to.home_address == ip(hoa));
        CHECK(out[0].to.local == ip("2001:db8:ff::1"));
        auto again = mh::decode(mh::encode(out[0].message));
        REQUIRE(again);
        auto* ba = std::get_if<mh::BindingAcknowledgement>(&again->body);
        REQUIRE(ba != nullptr);
        CHECK_FALSE(ba->proxy);
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

}  // namespace

TEST_CASE("home registration: found by home address, GRE keys, one binding", "[home-agent]") {
    Fixture f;
    Bu b;
    b.gre = 0x77;
    auto ba = f.send(b);
    REQUIRE(ba.status == S(BaStatus::kAccepted));
    CHECK(ba.sequence == 1);
    CHECK(ba.lifetime == 100);
    const auto* k = mh::find_option<mh::GreKey>(ba.options);
    REQUIRE(k != nullptr);
    const Session* s = f.cache.find("mn1@example.net");
    REQUIRE(s != nullptr);
    CHECK(s->uplink_gre_key == k->key);
    REQUIRE(s->paths.size() == 1);
    CHECK(s->paths[0].bid == 0);
    CHECK(s->paths[0].mag_id == "mn1@example.net");
    CHECK(to_string(s->paths[0].coa) == "2001:db8:aaaa::1");
    CHECK(to_string(s->paths[0].local) == "2001:db8:ff::1");
    CHECK(s->paths[0].downlink_gre_key == 0x77);
    REQUIRE(s->home_prefixes.size() == 1);
    CHECK(to_string(s->home_prefixes[0]) == "2001:db8:500:1::/64");
    CHECK(f.counter("ba.status.000") == 1);
    // A re-registration from another care-of address moves the binding (no BID: one binding).
    b.seq = 2;
    CHECK(f.send(b, "2001:db8:500:1::5", "2001:db8:bbbb::1").status == 0);
    s = f.cache.find("mn1@example.net");
    REQUIRE(s->paths.size() == 1);
    CHECK(to_string(s->paths[0].coa) == "2001:db8:bbbb::1");
    // The sequence number protects against replays.
    auto ba2 = f.send(b);
    CHECK(ba2.status == S(BaStatus::kSequenceNumberOutOfWindow));
    CHECK(ba2.sequence == 2);
    // De-registration without a BID removes everything.
    b.seq = 3;
    b.lifetime_units = 0;
    CHECK(f.send(b).status == 0);
    CHECK(f.cache.find("mn1@example.net") == nullptr);
    CHECK(f.counter("gre_keys.in_use") == 0);
}

TEST_CASE("multiple care-of addresses (RFC 5648): one BID per CoA, bulk, de-registering one",
          "[home-agent]") {
    Fixture f;
    Bu b;
    b.nai = "mn1@example.net";
    b.gre = 5;
    b.bids = {bid(1)};
    auto ba = f.send(b, "2001:db8:500:1::5", "2001:db8:aaaa::1");
    REQUIRE(ba.status == 0);
    const auto* bo = mh::find_option<mh::BindingIdentifier>(ba.options);
    REQUIRE(bo != nullptr);
    CHECK(bo->bid == 1);
    CHECK(mh::find_option<mh::MobileNodeIdentifier>(ba.options) != nullptr);
    b.seq = 2;
    b.bids = {bid(2)};
    REQUIRE(f.send(b, "2001:db8:500:1::5", "2001:db8:bbbb::1").status == 0);
    const Session* s = f.cache.find("mn1@example.net");
    REQUIRE(s->paths.size() == 2);
    CHECK(to_string(s->find_path(1)->coa) == "2001:db8:aaaa::1");
    CHECK(to_string(s->find_path(2)->coa) == "2001:db8:bbbb::1");
    // Bulk: both bindings in one BU, each with its care-of address.
    b.seq = 3;
    b.bids = {bid(1, "2001:db8:cccc::1"), bid(2, "2001:db8:dddd::1")};
    ba = f.send(b);
    REQUIRE(ba.status == 0);
    CHECK(mh::find_options<mh::BindingIdentifier>(ba.options).size() == 2);
    s = f.cache.find("mn1@example.net");
    CHECK(to_string(s->find_path(1)->coa) == "2001:db8:cccc::1");
    CHECK(to_string(s->find_path(2)->coa) == "2001:db8:dddd::1");
    // De-registering BID 1 keeps BID 2.
    b.seq = 4;
    b.lifetime_units = 0;
    b.bids = {bid(1)};
    CHECK(f.send(b).status == 0);
    s = f.cache.find("mn1@example.net");
    REQUIRE(s != nullptr);
    REQUIRE(s->paths.size() == 1);
    CHECK(s->paths[0].bid == 2);
    // Lifetime expiry removes the rest.
    (void)f.lma.tick(f.t);
    f.t.now += 1000;
    (void)f.lma.tick(f.t);
    CHECK(f.cache.find("mn1@example.net") == nullptr);
}

TEST_CASE("home agent refusals get their status codes", "[home-agent]") {
    SECTION("home agent disabled") {
        Fixture f(false);
        CHECK(f.send(Bu{}).status == S(BaStatus::kHomeRegistrationNotSupported));
    }
    Fixture f;
    SECTION("unknown home address, unknown MN-ID") {
        CHECK(f.send(Bu{}, "2001:db8:999::5").status ==
              S(BaStatus::kNotHomeAgentForThisMobileNode));
        Bu b;
        b.nai = "nobody@example.net";
        CHECK(f.send(b).status == S(BaStatus::kNotHomeAgentForThisMobileNode));
        b.nai = std::string("bad\x01nai");
        CHECK(f.send(b).status == S(BaStatus::kNotHomeAgentForThisMobileNode));
    }
    SECTION("home address outside the MN-ID's home prefixes") {
        Bu b;
        b.nai = "mn1@example.net";
        CHECK(f.send(b, "2001:db8:500:2::5").status == S(BaStatus::kNotHomeSubnet));
    }
    SECTION("correspondent registration, proxy flag") {
        Bu b;
        b.home = false;
        CHECK(f.send(b).status == S(BaStatus::kAdministrativelyProhibited));
        b.home = true;
        b.proxy = true;
        CHECK(f.send(b).status == S(BaStatus::kReasonUnspecified));
    }
    SECTION("multiple CoA rules") {
        Bu b;
        b.bids = {bid(0)};
        CHECK(f.send(b).status == S(BaStatus::kMcoaMalformed));
        b.bids = {bid(1), bid(1)};
        CHECK(f.send(b).status == S(BaStatus::kMcoaMalformed));
        b.bids = {bid(1, "2001:db8:cccc::1"), bid(2)};  // bulk needs every CoA
        CHECK(f.send(b).status == S(BaStatus::kMcoaMalformed));
        auto h = bid(1);
        h.simultaneous_home_foreign = true;
        b.bids = {h};
        CHECK(f.send(b).status == S(BaStatus::kMcoaSimultaneousHomeAndForeignProhibited));
        b.bids = {bid(1)};
        CHECK(f.send(b, "2001:db8:500:3::5").status == S(BaStatus::kMcoaProhibited));
    }
    SECTION("GRE key required by the profile; mobile router flag echoed") {
        Bu b;
        b.mr = true;
        CHECK(f.send(b, "2001:db8:500:2::1").status == S(BaStatus::kGreKeyOptionRequired));
        b.gre = 9;
        auto ba = f.send(b, "2001:db8:500:2::1");
        CHECK(ba.status == 0);
        CHECK(ba.mobile_router);
    }
    SECTION("a subscriber with a proxy registration cannot switch to home registration") {
        mh::BindingUpdate pbu;
        pbu.sequence = 1;
        pbu.ack = true;
        pbu.proxy = true;
        pbu.home_registration = true;
        pbu.lifetime = 100;
        const std::string nai = "cpe1@example.net", mag = "mag1@example.net";
        pbu.options.push_back(mh::MobileNodeIdentifier{1, mh::Bytes(nai.begin(), nai.end())});
        pbu.options.push_back(mh::HomeNetworkPrefix{});
        pbu.options.push_back(mh::HandoffIndicatorOption{1});
        pbu.options.push_back(mh::AccessTechnologyTypeOption{3});
        pbu.options.push_back(mh::MagIdentifier{1, mh::Bytes(mag.begin(), mag.end())});
        Peer p;
        p.local = ip("2001:db8:ff::1");
        p.remote = ip("2001:db8:a::1");
        auto out = f.lma.receive(mh::encode(mh::Message{pbu}), p, f.t);
        REQUIRE(out.size() == 1);
        REQUIRE(std::get<mh::BindingAcknowledgement>(out[0].message.body).status == 0);
        Bu b;
        b.nai = "cpe1@example.net";
        CHECK(f.send(b, "2001:db8:500:4::5").status ==
              S(BaStatus::kRegistrationTypeChangeDisallowed));
    }
    CHECK(f.cache.find("mn1@example.net") == nullptr);
}

TEST_CASE("no BA for an accepted BU without the A flag; a BU without HoA stays a PBU matter",
          "[home-agent]") {
    Fixture f;
    Bu b;
    b.ack = false;
    CHECK(f.raw(b, "2001:db8:500:1::5", "2001:db8:aaaa::1").empty());
    CHECK(f.cache.find("mn1@example.net") != nullptr);
    // The same BU without a Home Address option (plain MH socket): not a home registration.
    b.ack = true;
    b.seq = 2;
    Peer p;
    p.local = ip("2001:db8:ff::1");
    p.remote = ip("2001:db8:500:1::5");
    auto out = f.lma.receive(b.bytes(), p, f.t);
    REQUIRE(out.size() == 1);
    CHECK(std::get<mh::BindingAcknowledgement>(out[0].message.body).status ==
          S(BaStatus::kHomeRegistrationNotSupported));
    CHECK_FALSE(out[0].to.home_address);
}

TEST_CASE("home agent configuration is checked", "[home-agent][config]") {
    auto r = parse_control_config(
        R"(lma_addresses: "2001:db8::1" home_agent { enabled: true discovery_addresses: "192.0.2.1" })",
        "t.conf");
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().front().str(), Catch::Contains("not an IPv6 address"));
    r = parse_control_config(
        "lma_addresses: \"2001:db8::1\" home_agent { discovery_addresses: \"2001:db8::1\" }",
        "t.conf");
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().front().str(), Catch::Contains("needs home_agent.enabled"));
}
