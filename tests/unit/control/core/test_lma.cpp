// LMA state machine: every PBA status the LMA produces, multipath, GRE keys, link metrics,
// heartbeats, revocation, reload. Messages go through the real codec (encode -> receive).
#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <map>
#include <sstream>

#include "core/config.hpp"
#include "core/flow_bindings.hpp"
#include "core/lma.hpp"
#include "hag/mh/flow_binding.hpp"
#include "hag/mh/mh.hpp"
#include "hag/net/address.hpp"

using namespace hag;
using namespace hag::control;
using mh::BaStatus;

namespace {

const char* kConfig = R"(
lma_addresses: "2001:db8::1"
hnp_pools { name: "main" prefix: "2001:db8:100::/56" assign_length: 64 }
hnp_pools { name: "tiny" prefix: "2001:db8:200::/63" assign_length: 64 }
default_profile { access_weights { access_technology: 8 kbps: 50000 } }
subscribers { nai: "static@example.net" home_prefixes: "2001:db8:300::/64" }
subscribers { nai: "single@example.net" profile { multipath: false } }
subscribers { nai: "keyed@example.net" profile { gre_key_required: true } }
subscribers { nai: "fixed@example.net" profile { allow_requested_prefix: false } }
subscribers { nai: "two@example.net" profile { max_paths: 2 hnp_pool: "tiny" } }
subscribers { nai: "cpe1@example.net" }
subscribers { nai: "cpe2@example.net" }
subscribers { nai: "cpe3@example.net" profile { access_weights { access_technology: 3 kbps: 7 override_link_metrics: true } striping: STRIPING_OVERFLOW overflow_burst_bytes: 9000 primary_access_technology: 3 } }
mags { mag_id: "mag1@example.net" }
mags { mag_id: "mag2@example.net" }
mags { mag_id: "pinned@example.net" source_addresses: "2001:db8:a::9" }
mags { mag_id: "picky@example.net" allowed_nai: "cpe1@*" }
heartbeat_interval_seconds: 10
heartbeat_missed_limit: 2
)";

v1::ControlConfig config(const std::string& extra = "") {
    auto r = parse_control_config(std::string(kConfig) + extra, "test.conf");
    if (!r) {
        FAIL(r.error().front().str());
    }
    return *r;
}

Ipv6Address ip(const char* s) {
    return *net::parse_ipv6_address(s);
}

Peer from(const char* remote) {
    Peer p;
    p.local = ip("2001:db8::1");
    p.remote = ip(remote);
    return p;
}

struct Pbu {
    std::string nai = "cpe1@example.net";
    std::string mag = "mag1@example.net";
    std::uint16_t seq = 1;
    std::uint16_t lifetime_units = 100;  // 400 s
    int bid = 1;                         // -1: no multipath options
    bool bulk = false, overwrite = false;
    bool mn_id = true, hi = true, att = true, hnp = true;
    std::uint8_t att_value = 3;
    std::optional<Prefix> requested;
    std::optional<std::uint32_t> gre;
    std::optional<std::uint64_t> timestamp;
    std::optional<std::uint32_t> kbps;
    bool proxy = true;
    mh::Options extra;  // appended as they are

    std::vector<std::uint8_t> bytes() const {
        mh::BindingUpdate bu;
        bu.sequence = seq;
        bu.ack = true;
        bu.home_registration = true;
        bu.proxy = proxy;
        bu.lifetime = lifetime_units;
        if (mn_id) {
            bu.options.push_back(mh::MobileNodeIdentifier{1, mh::Bytes(nai.begin(), nai.end())});
        }
        if (hnp) {
            mh::HomeNetworkPrefix h;
            if (requested) {
                h.prefix = requested->addr;
                h.prefix_length = requested->length;
            }
            bu.options.push_back(h);
        }
        if (hi) {
            bu.options.push_back(mh::HandoffIndicatorOption{1});
        }
        if (att) {
            bu.options.push_back(mh::AccessTechnologyTypeOption{att_value});
        }
        if (timestamp) {
            bu.options.push_back(mh::Timestamp{*timestamp});
        }
        if (gre) {
            bu.options.push_back(mh::GreKey{*gre});
        }
        if (bid >= 0) {
            mh::MagMultipathBinding m;
            m.if_att = att_value;
            m.if_label = static_cast<std::uint8_t>(bid);
            m.binding_id = static_cast<std::uint8_t>(bid);
            m.bulk = bulk;
            m.overwrite = overwrite;
            bu.options.push_back(m);
        }
        if (!mag.empty()) {
            bu.options.push_back(mh::MagIdentifier{1, mh::Bytes(mag.begin(), mag.end())});
        }
        if (kbps) {
            mh::VendorSpecific v;
            v.vendor_id = kLinkMetricsVendorId;
            v.subtype = kLinkMetricsSubtype;
            v.data = {std::uint8_t(*kbps >> 24),
                      std::uint8_t(*kbps >> 16),
                      std::uint8_t(*kbps >> 8),
                      std::uint8_t(*kbps),
                      0,
                      0,
                      0,
                      1};
            bu.options.push_back(v);
        }
        for (const auto& o : extra) {
            bu.options.push_back(o);
        }
        return mh::encode(mh::Message{bu});
    }
};

struct Fixture {
    BindingCache cache{1000};
    Lma lma;
    LmaTime t{1000, 1'000'000, std::uint64_t{1'700'000'000} << 16};
    explicit Fixture(const std::string& extra = "") : lma(config(extra), cache, 7) {}

    mh::BindingAcknowledgement send(const Pbu& p, const char* src = "2001:db8:a::1") {
        auto out = lma.receive(p.bytes(), from(src), t);
        REQUIRE(out.size() == 1);
        CHECK(out[0].to.remote == ip(src));
        auto* ba = std::get_if<mh::BindingAcknowledgement>(&out[0].message.body);
        REQUIRE(ba != nullptr);
        // Round-trip through the codec: what the LMA sends must encode and decode.
        auto again = mh::decode(mh::encode(out[0].message));
        REQUIRE(again);
        return *ba;
    }
    std::uint8_t status(const Pbu& p, const char* src = "2001:db8:a::1") {
        return send(p, src).status;
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

TEST_CASE("initial registration assigns a prefix and an uplink key, PBA carries them", "[lma]") {
    Fixture f;
    Pbu p;
    p.gre = 0xabcd;
    p.kbps = 16000;
    auto ba = f.send(p);
    CHECK(ba.status == S(BaStatus::kAccepted));
    CHECK(ba.proxy);
    CHECK(ba.sequence == 1);
    CHECK(ba.lifetime == 100);
    const auto* h = mh::find_option<mh::HomeNetworkPrefix>(ba.options);
    REQUIRE(h != nullptr);
    CHECK(h->prefix_length == 64);
    CHECK(net::format(h->prefix) == "2001:db8:100::");
    const auto* k = mh::find_option<mh::GreKey>(ba.options);
    REQUIRE(k != nullptr);
    CHECK(k->key != 0);
    REQUIRE(mh::find_option<mh::MobileNodeIdentifier>(ba.options) != nullptr);
    REQUIRE(mh::find_option<mh::MagMultipathBinding>(ba.options) != nullptr);

    const Session* s = f.cache.find("cpe1@example.net");
    REQUIRE(s != nullptr);
    REQUIRE(s->paths.size() == 1);
    CHECK(s->uplink_gre_key == k->key);
    CHECK(s->paths[0].bid == 1);
    CHECK(s->paths[0].mag_id == "mag1@example.net");
    CHECK(to_string(s->paths[0].coa) == "2001:db8:a::1");
    CHECK(s->paths[0].downlink_gre_key == 0xabcd);
    CHECK(s->paths[0].weight_kbps == 16000);
    CHECK(s->paths[0].expires_at == f.t.now + 400);
    CHECK(f.counter("pba.status.000") == 1);
}

TEST_CASE("two CoAs, re-registration, dropping one access, de-registration", "[lma]") {
    Fixture f;
    Pbu dsl;
    dsl.gre = 1;
    Pbu lte = dsl;
    lte.bid = 2;
    lte.att_value = 8;
    lte.seq = 2;
    lte.gre = 2;
    REQUIRE(f.status(dsl, "2001:db8:a::1") == 0);
    auto ba = f.send(lte, "2001:db8:b::1");
    REQUIRE(ba.status == 0);
    const Session* s = f.cache.find("cpe1@example.net");
    REQUIRE(s->paths.size() == 2);
    CHECK(s->home_prefixes.size() == 1);
    // Both PBAs name the same prefix and key.
    CHECK(s->find_path(2)->weight_kbps == 50000);  // LTE weight from the default profile policy
    CHECK(f.cache.find_by_path("mag1@example.net", 2) == s);
    CHECK(f.cache.find_by_coa(CareOfAddress{ip("2001:db8:b::1")}).size() == 1);

    // Re-registration refreshes the lifetime.
    f.t.now += 100;
    dsl.seq = 3;
    REQUIRE(f.status(dsl) == 0);
    CHECK(f.cache.find("cpe1@example.net")->find_path(1)->expires_at == f.t.now + 400);
    // A replayed (old) sequence number is refused with the last accepted one in the PBA.
    dsl.seq = 2;
    ba = f.send(dsl);
    CHECK(ba.status == S(BaStatus::kSequenceNumberOutOfWindow));
    CHECK(ba.sequence == 3);
    // Dropping LTE: per-path de-registration.
    lte.seq = 4;
    lte.lifetime_units = 0;
    ba = f.send(lte, "2001:db8:b::1");
    CHECK(ba.status == 0);
    CHECK(ba.lifetime == 0);
    REQUIRE(f.cache.find("cpe1@example.net")->paths.size() == 1);
    // De-registering the last path removes the session and frees prefix and key.
    dsl.seq = 5;
    dsl.lifetime_units = 0;
    CHECK(f.status(dsl) == 0);
    CHECK(f.cache.find("cpe1@example.net") == nullptr);
    CHECK(f.counter("pool.main.in_use") == 0);
    CHECK(f.counter("gre_keys.in_use") == 0);
    // De-registration of nothing is accepted (a retransmission after a lost PBA).
    dsl.seq = 6;
    CHECK(f.status(dsl) == 0);
}

TEST_CASE("missing mandatory options get their status codes", "[lma]") {
    Fixture f;
    Pbu p;
    p.mn_id = false;
    CHECK(f.status(p) == S(BaStatus::kMissingMnIdentifierOption));
    p = Pbu{};
    p.hi = false;
    CHECK(f.status(p) == S(BaStatus::kMissingHandoffIndicatorOption));
    p = Pbu{};
    p.att = false;
    CHECK(f.status(p) == S(BaStatus::kMissingAccessTechTypeOption));
    p = Pbu{};
    p.hnp = false;
    CHECK(f.status(p) == S(BaStatus::kMissingHomeNetworkPrefixOption));
    p = Pbu{};
    p.proxy = false;
    CHECK(f.status(p) == S(BaStatus::kHomeRegistrationNotSupported));
    p = Pbu{};
    p.nai = std::string("bad\x01nai");
    CHECK(f.status(p) == S(BaStatus::kMissingMnIdentifierOption));
    CHECK(f.cache.size() == 0);
}

TEST_CASE("authorization of MAGs and subscribers", "[lma]") {
    Fixture f;
    Pbu p;
    p.mag = "stranger@example.net";
    CHECK(f.status(p) == S(BaStatus::kMagNotAuthorizedForProxyReg));
    p.mag = "pinned@example.net";
    CHECK(f.status(p, "2001:db8:a::1") == S(BaStatus::kMagNotAuthorizedForProxyReg));
    CHECK(f.status(p, "2001:db8:a::9") == S(BaStatus::kAccepted));
    p = Pbu{};
    p.mag = "picky@example.net";
    p.nai = "cpe2@example.net";
    CHECK(f.status(p) == S(BaStatus::kMagNotAuthorizedForProxyReg));
    p.nai = "nobody@example.net";
    p.mag = "mag1@example.net";
    CHECK(f.status(p) == S(BaStatus::kProxyRegistrationNotEnabled));

    // Each refusal is counted by its reason as well as by its status.
    CHECK(f.counter("pbu.refused.mag_unknown") == 1);
    CHECK(f.counter("pbu.refused.mag_source_address") == 1);
    CHECK(f.counter("pbu.refused.mag_subscriber") == 1);
    CHECK(f.counter("pbu.refused.unknown_subscriber") == 1);
    CHECK(f.counter("pba.status.154") == 3);

    Fixture open("allow_unknown_subscribers: true allow_unknown_mags: true");
    Pbu q;
    q.nai = "nobody@example.net";
    q.mag = "stranger@example.net";
    CHECK(open.status(q) == S(BaStatus::kAccepted));
}

TEST_CASE("multipath rules: disabled, B+O, overwrite, bulk, max paths, non-MCoA", "[lma]") {
    Fixture f;
    Pbu p;
    p.nai = "single@example.net";
    CHECK(f.status(p) == S(BaStatus::kCannotSupportMultipathBinding));
    p.bid = -1;  // a plain single-path PBU is fine for that subscriber
    CHECK(f.status(p) == S(BaStatus::kAccepted));
    // An MCoA registration next to a non-MCoA binding needs O.
    Fixture g;
    Pbu s;
    s.bid = -1;
    REQUIRE(g.status(s) == 0);
    Pbu m;
    m.seq = 2;
    CHECK(g.status(m) == S(BaStatus::kMcoaNonMcoaBindingExists));
    m.overwrite = true;
    m.seq = 3;
    CHECK(g.status(m) == 0);
    REQUIRE(g.cache.find("cpe1@example.net")->paths.size() == 1);
    CHECK(g.cache.find("cpe1@example.net")->paths[0].bid == 1);

    // B and O together: the codec refuses the option; the LMA still answers MCOA_MALFORMED.
    Fixture h;
    Pbu bo;
    bo.bulk = true;
    bo.overwrite = true;
    bo.seq = 77;
    auto ba = h.send(bo);
    CHECK(ba.status == S(BaStatus::kMcoaMalformed));
    CHECK(ba.sequence == 77);
    CHECK(h.cache.size() == 0);

    // Overwrite removes the other paths; bulk refreshes all paths of the MAG.
    Fixture k;
    Pbu a, b, c;
    a.bid = 1;
    b.bid = 2;
    b.seq = 2;
    c.bid = 3;
    c.seq = 3;
    REQUIRE(k.status(a, "2001:db8:a::1") == 0);
    REQUIRE(k.status(b, "2001:db8:b::1") == 0);
    REQUIRE(k.status(c, "2001:db8:c::1") == 0);
    k.t.now += 50;
    Pbu bulk = a;
    bulk.seq = 4;
    bulk.bulk = true;
    REQUIRE(k.status(bulk, "2001:db8:a::1") == 0);
    for (const auto& path : k.cache.find("cpe1@example.net")->paths) {
        CHECK(path.expires_at == k.t.now + 400);
    }
    Pbu ow = b;
    ow.seq = 5;
    ow.overwrite = true;
    REQUIRE(k.status(ow, "2001:db8:b::1") == 0);
    REQUIRE(k.cache.find("cpe1@example.net")->paths.size() == 1);
    CHECK(k.cache.find("cpe1@example.net")->paths[0].bid == 2);

    // max_paths 2.
    Fixture l;
    Pbu x;
    x.nai = "two@example.net";
    for (int i = 1; i <= 3; ++i) {
        x.bid = i;
        x.seq = static_cast<std::uint16_t>(i);
        const auto want = i <= 2 ? S(BaStatus::kAccepted) : S(BaStatus::kInsufficientResources);
        CHECK(l.status(x) == want);
    }
}

TEST_CASE("home network prefixes: requested, static, mismatch, pool exhaustion", "[lma]") {
    Fixture f;
    Pbu p;
    p.requested = *parse_prefix("2001:db8:100:42::/64");
    auto ba = f.send(p);
    REQUIRE(ba.status == 0);
    CHECK(net::format(mh::find_option<mh::HomeNetworkPrefix>(ba.options)->prefix) ==
          "2001:db8:100:42::");
    // Another subscriber asking for the same prefix is refused.
    Pbu q;
    q.nai = "cpe2@example.net";
    q.requested = p.requested;
    q.bid = 5;
    CHECK(f.status(q) == S(BaStatus::kNotAuthorizedForHomeNetworkPrefix));
    // Outside the pool.
    q.requested = *parse_prefix("2001:db8:999::/64");
    CHECK(f.status(q) == S(BaStatus::kNotAuthorizedForHomeNetworkPrefix));
    // Re-registration naming another prefix than the binding's.
    p.seq = 2;
    p.requested = *parse_prefix("2001:db8:100:43::/64");
    CHECK(f.status(p) == S(BaStatus::kBcePbuPrefixSetDoNotMatch));
    // The subscriber that may not choose.
    Pbu r;
    r.nai = "fixed@example.net";
    r.bid = 9;
    r.requested = *parse_prefix("2001:db8:100:44::/64");
    CHECK(f.status(r) == S(BaStatus::kNotAuthorizedForHomeNetworkPrefix));
    // Static prefixes.
    Pbu st;
    st.nai = "static@example.net";
    st.bid = 10;
    ba = f.send(st);
    REQUIRE(ba.status == 0);
    CHECK(net::format(mh::find_option<mh::HomeNetworkPrefix>(ba.options)->prefix) ==
          "2001:db8:300::");
    // Pool "tiny" has two /64s; subscriber two@ uses it. Exhaust it with requested prefixes of
    // other subscribers is not possible (different pool), so use the subscriber twice: a second
    // registration reuses its prefix, so the pool stays at one.
    Pbu t1;
    t1.nai = "two@example.net";
    t1.bid = 11;
    REQUIRE(f.status(t1) == 0);
    CHECK(f.counter("pool.tiny.in_use") == 1);
}

TEST_CASE("pool exhaustion gives INSUFFICIENT_RESOURCES", "[lma]") {
    Fixture f(
        "subscribers { nai: \"t1@x\" profile { hnp_pool: \"tiny\" } } "
        "subscribers { nai: \"t2@x\" profile { hnp_pool: \"tiny\" } } "
        "subscribers { nai: \"t3@x\" profile { hnp_pool: \"tiny\" } }");
    for (int i = 1; i <= 3; ++i) {
        Pbu p;
        p.nai = fmt::format("t{}@x", i);
        p.bid = i;
        CHECK(f.status(p) == (i <= 2 ? 0 : S(BaStatus::kInsufficientResources)));
    }
}

TEST_CASE("GRE key required, timestamps, TLV header", "[lma]") {
    Fixture f;
    Pbu p;
    p.nai = "keyed@example.net";
    CHECK(f.status(p) == S(BaStatus::kGreKeyOptionRequired));
    p.gre = 5;
    CHECK(f.status(p) == 0);
    CHECK(f.counter("pool.main.in_use") == 1);  // the refused PBU claimed nothing

    Fixture g;
    Pbu ts;
    ts.timestamp = g.t.timestamp + (std::uint64_t{10} << 16);  // 10 s ahead
    auto ba = g.send(ts);
    CHECK(ba.status == S(BaStatus::kTimestampMismatch));
    CHECK(mh::find_option<mh::Timestamp>(ba.options)->value == g.t.timestamp);
    ts.timestamp = g.t.timestamp;
    CHECK(g.status(ts) == 0);
    ts.timestamp = g.t.timestamp - 100;  // within the window, but older than the last accepted
    CHECK(g.status(ts) == S(BaStatus::kTimestampLowerThanPrevAccepted));
}

TEST_CASE("link metrics become weights; policy overrides when asked", "[lma]") {
    Fixture f;
    Pbu p;
    p.nai = "cpe3@example.net";
    p.kbps = 100000;
    REQUIRE(f.status(p) == 0);
    CHECK(f.cache.find("cpe3@example.net")->paths[0].weight_kbps == 7);
    // The profile's striping settings ride on the session (the pusher sends them on).
    CHECK(f.cache.find("cpe3@example.net")->striping == 1);
    CHECK(f.cache.find("cpe3@example.net")->overflow_burst_bytes == 9000);
    CHECK(f.cache.find("cpe3@example.net")->primary_access_technology == 3);
    Pbu q;
    q.kbps = 12345;
    REQUIRE(f.status(q) == 0);
    CHECK(f.cache.find("cpe1@example.net")->paths[0].weight_kbps == 12345);
    CHECK(f.cache.find("cpe1@example.net")->striping == 0);  // the default: weighted
    // A re-registration without metrics keeps the last report.
    q.seq = 2;
    q.kbps.reset();
    REQUIRE(f.status(q) == 0);
    CHECK(f.cache.find("cpe1@example.net")->paths[0].weight_kbps == 12345);
}

TEST_CASE("a (MAG, BID) reused under another NAI moves to the new session", "[lma]") {
    Fixture f;
    Pbu a;
    REQUIRE(f.status(a) == 0);
    Pbu b;
    b.nai = "cpe2@example.net";
    REQUIRE(f.status(b) == 0);
    CHECK(f.cache.find("cpe1@example.net") == nullptr);
    CHECK(f.cache.find_by_path("mag1@example.net", 1)->nai == "cpe2@example.net");
}

TEST_CASE("de-registration from a MAG that no longer has the path is ignored", "[lma]") {
    Fixture f;
    Pbu a;
    REQUIRE(f.status(a, "2001:db8:a::1") == 0);
    Pbu moved = a;
    moved.mag = "mag2@example.net";
    moved.seq = 2;
    REQUIRE(f.status(moved, "2001:db8:b::1") == 0);  // handoff of BID 1 to mag2
    CHECK(f.counter("pbu.handoff") == 1);
    Pbu late = a;
    late.seq = 3;
    late.lifetime_units = 0;
    CHECK(f.status(late, "2001:db8:a::1") == 0);
    REQUIRE(f.cache.find("cpe1@example.net") != nullptr);
    CHECK(f.cache.find("cpe1@example.net")->paths[0].mag_id == "mag2@example.net");
}

TEST_CASE("lifetime expiry frees resources without any PBU", "[lma]") {
    Fixture f;
    Pbu p;
    p.gre = 1;
    REQUIRE(f.status(p) == 0);
    f.t.now += 399;
    f.lma.tick(f.t);
    CHECK(f.cache.size() == 1);
    f.t.now += 1;
    f.lma.tick(f.t);
    CHECK(f.cache.size() == 0);
    CHECK(f.counter("pool.main.in_use") == 0);
    CHECK(f.counter("gre_keys.in_use") == 0);
    CHECK(f.counter("sessions.expired") == 1);
}

TEST_CASE("heartbeats: requests per peer, misses take paths down, responses bring them up",
          "[lma]") {
    Fixture f;
    Pbu p;
    p.lifetime_units = 10000;
    REQUIRE(f.status(p, "2001:db8:a::1") == 0);
    // A MAG's heartbeat request is answered with R set and the same sequence.
    mh::Heartbeat req;
    req.sequence = 42;
    auto out = f.lma.handle(mh::Message{req}, from("2001:db8:a::1"), f.t);
    REQUIRE(out.size() == 1);
    const auto& resp = std::get<mh::Heartbeat>(out[0].message.body);
    CHECK(resp.response);
    CHECK(resp.sequence == 42);
    CHECK(mh::find_option<mh::RestartCounter>(resp.options)->value == 7);

    std::uint32_t last_seq = 0;
    for (int i = 0; i < 3; ++i) {  // three intervals unanswered: limit 2 -> down
        f.t.now += 10;
        out = f.lma.tick(f.t);
        REQUIRE(out.size() == 1);
        const auto& hb = std::get<mh::Heartbeat>(out[0].message.body);
        CHECK_FALSE(hb.response);
        CHECK(out[0].to.remote == ip("2001:db8:a::1"));
        last_seq = hb.sequence;
    }
    CHECK_FALSE(f.cache.find("cpe1@example.net")->paths[0].live);
    mh::Heartbeat ans;
    ans.response = true;
    ans.sequence = last_seq;
    f.lma.handle(mh::Message{ans}, from("2001:db8:a::1"), f.t);
    CHECK(f.cache.find("cpe1@example.net")->paths[0].live);
}

TEST_CASE("revocation: BRI content, retransmission, acknowledgement", "[lma]") {
    Fixture f;
    Pbu a, b;
    b.bid = 2;
    b.seq = 2;
    REQUIRE(f.status(a, "2001:db8:a::1") == 0);
    REQUIRE(f.status(b, "2001:db8:b::1") == 0);
    const Session copy = *f.cache.find("cpe1@example.net");
    auto bris = f.lma.revoke(copy, nullptr, kRevocationTriggerAdministrative, f.t);
    REQUIRE(bris.size() == 2);
    const auto& br = std::get<mh::BindingRevocation>(bris[1].message.body);
    CHECK(br.br_type == mh::kBrTypeIndication);
    CHECK(br.proxy);
    CHECK(br.trigger_or_status == kRevocationTriggerAdministrative);
    CHECK(bris[1].to.remote == ip("2001:db8:b::1"));
    CHECK(mh::find_option<mh::BindingIdentifier>(br.options)->bid == 2);
    CHECK(mh::find_option<mh::HomeNetworkPrefix>(br.options) != nullptr);
    CHECK(f.lma.pending_revocations() == 2);
    // The first is acknowledged; the second is retransmitted 3 times then given up.
    mh::BindingRevocation ack;
    ack.br_type = mh::kBrTypeAcknowledgement;
    ack.sequence = std::get<mh::BindingRevocation>(bris[0].message.body).sequence;
    f.lma.handle(mh::Message{ack}, from("2001:db8:a::1"), f.t);
    CHECK(f.lma.pending_revocations() == 1);
    int retransmissions = 0;
    for (int s = 0; s < 30; ++s) {
        f.t.now += 1;
        for (const auto& o : f.lma.tick(f.t)) {
            retransmissions += std::holds_alternative<mh::BindingRevocation>(o.message.body);
        }
    }
    CHECK(retransmissions == 3);
    CHECK(f.lma.pending_revocations() == 0);
    CHECK(f.counter("revocation.unacknowledged") == 1);
}

TEST_CASE("reload withdrawing a pool revokes its sessions", "[lma]") {
    Fixture f;
    Pbu a;
    REQUIRE(f.status(a) == 0);
    Pbu st;
    st.nai = "static@example.net";
    st.bid = 3;
    REQUIRE(f.status(st) == 0);
    std::string text = kConfig;
    text.replace(text.find("hnp_pools { name: \"main\""),
                 std::string("hnp_pools { name: \"main\" prefix: \"2001:db8:100::/56\" "
                             "assign_length: 64 }")
                     .size(),
                 "");
    auto cfg = parse_control_config(text, "r.conf");
    REQUIRE(cfg);
    auto out = f.lma.reload(*cfg, f.t);
    REQUIRE(out.size() == 1);
    CHECK(std::holds_alternative<mh::BindingRevocation>(out[0].message.body));
    CHECK(f.cache.find("cpe1@example.net") == nullptr);
    CHECK(f.cache.find("static@example.net") != nullptr);
}

TEST_CASE("rate limit per MAG source, other MAGs unaffected", "[lma]") {
    Fixture f("limits { per_mag_pbu_per_second: 10 per_mag_pbu_burst: 5 }");
    int answered = 0;
    for (int i = 0; i < 50; ++i) {
        Pbu p;
        p.seq = static_cast<std::uint16_t>(i + 1);
        answered += !f.lma.receive(p.bytes(), from("2001:db8:a::1"), f.t).empty();
    }
    CHECK(answered == 5);
    CHECK(f.counter("mh.rate_limited") == 45);
    Pbu other;
    other.nai = "cpe2@example.net";
    other.mag = "mag2@example.net";
    CHECK(f.status(other, "2001:db8:b::1") == 0);
    f.t.now_ms += 1000;  // 10 more tokens
    answered = 0;
    for (int i = 0; i < 20; ++i) {
        Pbu p;
        p.seq = static_cast<std::uint16_t>(100 + i);
        answered += !f.lma.receive(p.bytes(), from("2001:db8:a::1"), f.t).empty();
    }
    CHECK(answered == 5);  // the burst depth caps what a second of silence earns
}

TEST_CASE("hostile bytes: no crash, malformed counted, unknown MH type gets a Binding Error",
          "[lma]") {
    Fixture f;
    std::vector<std::uint8_t> junk = {59, 0, 99, 0, 0, 0, 0, 0};
    auto out = f.lma.receive(junk, from("2001:db8:a::1"), f.t);
    REQUIRE(out.size() == 1);
    CHECK(std::get<mh::BindingError>(out[0].message.body).status == mh::kBeUnrecognizedMhType);
    // Every truncation of a valid PBU.
    Pbu p;
    p.gre = 1;
    p.kbps = 1;
    auto bytes = p.bytes();
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        (void)f.lma.receive(std::span(bytes.data(), n), from("2001:db8:a::2"), f.t);
    }
    CHECK(f.counter("mh.malformed") >= bytes.size() - 1);
    CHECK(f.cache.size() == 0);
    // A link metrics option of the wrong size is ignored, not fatal.
    mh::BindingUpdate bu = std::get<mh::BindingUpdate>(mh::decode(bytes)->body);
    for (auto& o : bu.options) {
        if (auto* v = std::get_if<mh::VendorSpecific>(&o)) {
            v->data.resize(3);
        }
    }
    out = f.lma.handle(mh::Message{bu}, from("2001:db8:a::3"), f.t);
    REQUIRE(out.size() == 1);
    CHECK(std::get<mh::BindingAcknowledgement>(out[0].message.body).status == 0);
    CHECK(f.counter("link_metrics.malformed") == 1);
}

TEST_CASE("restore: allocations re-reserved, sequence numbers still refuse replays", "[lma]") {
    Session saved;
    {
        Fixture before;
        Pbu p;
        p.seq = 10;
        p.gre = 0xabcd;
        REQUIRE(before.status(p) == S(BaStatus::kAccepted));
        saved = *before.cache.find("cpe1@example.net");
    }
    Fixture f;  // a restarted LMA: empty cache, empty pools
    REQUIRE(f.lma.restore(saved, f.t).ok());
    CHECK(f.counter("sessions.restored") == 1);
    CHECK(f.counter("pool.main.in_use") == 1);
    CHECK(f.counter("gre_keys.in_use") == 1);
    CHECK(f.counter("heartbeat.peers") == 1);
    REQUIRE(f.cache.find("cpe1@example.net") != nullptr);
    CHECK(*f.cache.find("cpe1@example.net") == saved);

    // Restoring it twice is refused and changes nothing.
    CHECK_FALSE(f.lma.restore(saved, f.t).ok());
    CHECK(f.counter("pool.main.in_use") == 1);
    CHECK(f.counter("gre_keys.in_use") == 1);

    // The replayed PBU (same sequence number, no timestamp) is refused; the next one is accepted
    // and keeps the restored prefix and key.
    Pbu replay;
    replay.seq = 10;
    replay.gre = 0xabcd;
    auto ba = f.send(replay);
    CHECK(ba.status == S(BaStatus::kSequenceNumberOutOfWindow));
    CHECK(ba.sequence == 10);
    Pbu next = replay;
    next.seq = 11;
    ba = f.send(next);
    CHECK(ba.status == S(BaStatus::kAccepted));
    const auto* k = mh::find_option<mh::GreKey>(ba.options);
    REQUIRE(k != nullptr);
    CHECK(k->key == saved.uplink_gre_key);
    const auto* h = mh::find_option<mh::HomeNetworkPrefix>(ba.options);
    REQUIRE(h != nullptr);
    CHECK(h->prefix == saved.home_prefixes[0].addr);

    // Striping settings are not stored: a restored session takes them from its profile.
    Session striped = saved;
    striped.nai = "cpe3@example.net";
    striped.home_prefixes.clear();
    striped.uplink_gre_key = 0;
    striped.paths[0].mag_id = "mag3@example.net";
    striped.striping = 0;
    REQUIRE(f.lma.restore(striped, f.t).ok());
    const Session* r3 = f.cache.find("cpe3@example.net");
    REQUIRE(r3 != nullptr);
    CHECK(r3->striping == 1);
    CHECK(r3->overflow_burst_bytes == 9000);
    CHECK(r3->primary_access_technology == 3);

    // A new subscriber gets neither the restored prefix nor the restored key.
    Pbu other;
    other.nai = "cpe2@example.net";
    other.mag = "mag2@example.net";
    other.gre = 0x1234;
    ba = f.send(other, "2001:db8:a::2");
    REQUIRE(ba.status == S(BaStatus::kAccepted));
    CHECK(mh::find_option<mh::GreKey>(ba.options)->key != saved.uplink_gre_key);
    CHECK(mh::find_option<mh::HomeNetworkPrefix>(ba.options)->prefix !=
          saved.home_prefixes[0].addr);
}

TEST_CASE("a MAG limited to some home network prefixes gets 155 outside them", "[lma]") {
    Fixture f(R"(mags { mag_id: "west@example.net" allowed_prefixes: "2001:db8:100::/56" }
mags { mag_id: "narrow@example.net" allowed_prefixes: "2001:db8:100:80::/57" })");
    Pbu p;
    p.mag = "west@example.net";
    CHECK(f.status(p) == S(BaStatus::kAccepted));  // from pool main, inside the /56
    p = Pbu{};
    p.mag = "west@example.net";
    p.nai = "static@example.net";  // 2001:db8:300::/64: outside
    CHECK(f.status(p) == S(BaStatus::kNotAuthorizedForHomeNetworkPrefix));
    p.nai = "two@example.net";  // pool tiny, 2001:db8:200::/63: outside
    CHECK(f.status(p) == S(BaStatus::kNotAuthorizedForHomeNetworkPrefix));
    CHECK(f.counter("pbu.refused.mag_prefix") == 2);
    CHECK(f.cache.size() == 1);
    // The refused PBU gave back the /64 it had taken from pool tiny.
    p = Pbu{};
    p.nai = "two@example.net";
    CHECK(f.status(p) == S(BaStatus::kAccepted));
    p.nai = "cpe3@example.net";
    p.mag = "mag2@example.net";
    p.requested = *parse_prefix("2001:db8:100:1::/64");
    CHECK(f.status(p) == S(BaStatus::kAccepted));
    // A requested prefix outside the MAG's /57; inside it is fine.
    p = Pbu{};
    p.nai = "cpe2@example.net";
    p.mag = "narrow@example.net";
    p.requested = *parse_prefix("2001:db8:100:7f::/64");
    CHECK(f.status(p) == S(BaStatus::kNotAuthorizedForHomeNetworkPrefix));
    p.requested = *parse_prefix("2001:db8:100:80::/64");
    CHECK(f.status(p) == S(BaStatus::kAccepted));
    // A handoff of an existing session to a MAG not allowed its prefix is refused too.
    p = Pbu{};
    p.mag = "narrow@example.net";  // cpe1 holds a prefix from the first /64s of pool main
    p.seq = 2;
    CHECK(f.status(p) == S(BaStatus::kNotAuthorizedForHomeNetworkPrefix));
    CHECK(f.counter("pbu.refused.mag_prefix") == 4);
}

TEST_CASE("global rate limit: every source together, excess dropped without a reply", "[lma]") {
    Fixture f("limits { global_pbu_per_second: 10 global_pbu_burst: 5 }");
    int answered = 0;
    for (int i = 0; i < 50; ++i) {
        Pbu p;
        const std::string src = "2001:db8:f::" + std::to_string(i + 1);
        answered += !f.lma.receive(p.bytes(), from(src.c_str()), f.t).empty();
    }
    CHECK(answered == 5);
    CHECK(f.counter("mh.rate_limited_global") == 45);
    CHECK(f.counter("mh.rate_limited") == 0);
    f.t.now_ms += 300;  // 3 tokens
    answered = 0;
    for (int i = 0; i < 10; ++i) {
        Pbu p;
        p.nai = "nobody@example.net";  // refused: the source stays under the global limit
        p.seq = static_cast<std::uint16_t>(10 + i);
        answered += !f.lma.receive(p.bytes(), from("2001:db8:f::99"), f.t).empty();
    }
    CHECK(answered == 3);
}

TEST_CASE("a flood from unproven sources does not starve MAGs with sessions or listed MAGs",
          "[lma]") {
    Fixture f("limits { global_pbu_per_second: 10 global_pbu_burst: 5 }");
    // mag1 registers (one global token) and so proves its source.
    Pbu reg;
    REQUIRE(f.status(reg) == S(BaStatus::kAccepted));
    // The flood uses up the global bucket: 4 answered, the rest dropped.
    int answered = 0;
    for (int i = 0; i < 100; ++i) {
        Pbu p;
        p.nai = "unknown-" + std::to_string(i) + "@example.net";
        const std::string src = "2001:db8:f::" + std::to_string(i + 1);
        answered += !f.lma.receive(p.bytes(), from(src.c_str()), f.t).empty();
    }
    CHECK(answered == 4);
    CHECK(f.counter("mh.rate_limited_global") == 96);
    // The proven MAG still gets every answer (its own bucket only), ...
    for (int i = 0; i < 5; ++i) {
        Pbu p;
        p.seq = static_cast<std::uint16_t>(2 + i);
        CHECK(f.status(p) == S(BaStatus::kAccepted));
    }
    // ... and so does a MAG address listed in the configuration, before any session.
    Pbu pinned;
    pinned.nai = "cpe2@example.net";
    pinned.mag = "pinned@example.net";
    CHECK(f.status(pinned, "2001:db8:a::9") == S(BaStatus::kAccepted));
    CHECK(f.counter("mh.global_limit_exempt") == 6);
    // A new unproven source is still under the global limit.
    Pbu other;
    other.nai = "cpe3@example.net";
    CHECK(f.lma.receive(other.bytes(), from("2001:db8:f::1:1"), f.t).empty());
    CHECK(f.counter("mh.rate_limited_global") == 97);
}

TEST_CASE("a flood of PBUs for unknown subscribers keeps no state and bounded memory", "[lma]") {
    Fixture f(
        "limits { per_mag_pbu_per_second: 1000 per_mag_pbu_burst: 1000 "
        "global_pbu_per_second: 1000000 global_pbu_burst: 1000000 }");
    // Count the log lines: refusals are logged at most 10 a second.
    std::ostringstream log;
    auto previous = spdlog::default_logger();
    auto logger = std::make_shared<spdlog::logger>(
        "flood", std::make_shared<spdlog::sinks::ostream_sink_st>(log));
    spdlog::set_default_logger(logger);
    const auto counters_before = f.lma.counters().size();
    std::size_t sent_bytes = 0, reply_bytes = 0, replies = 0;
    constexpr int kFlood = 70'000;  // more sources than the rate limiter keeps buckets for
    for (int i = 0; i < kFlood; ++i) {
        Pbu p;
        p.nai = "unknown-" + std::to_string(i) + "@example.net";
        p.seq = static_cast<std::uint16_t>(i);
        Ipv6Address src = ip("2001:db8:f::");
        src[12] = static_cast<std::uint8_t>(i >> 24);
        src[13] = static_cast<std::uint8_t>(i >> 16);
        src[14] = static_cast<std::uint8_t>(i >> 8);
        src[15] = static_cast<std::uint8_t>(i);
        Peer peer;
        peer.local = ip("2001:db8::1");
        peer.remote = src;
        const auto bytes = p.bytes();
        sent_bytes += bytes.size();
        for (const auto& o : f.lma.receive(bytes, peer, f.t)) {
            ++replies;
            reply_bytes += mh::encode(o.message).size();
        }
    }
    spdlog::set_default_logger(previous);
    // Every PBU is refused (152) with at most one reply no larger than it: no amplification.
    CHECK(replies <= static_cast<std::size_t>(kFlood));
    CHECK(reply_bytes <= sent_bytes);
    CHECK(f.counter("pbu.refused.unknown_subscriber") == replies);
    CHECK(f.counter("pba.status.152") == replies);
    CHECK(f.counter("pbu.accepted") == 0);
    // No per-subscriber state: no sessions, no new counter names per NAI.
    CHECK(f.cache.size() == 0);
    CHECK(f.lma.counters().size() <= counters_before + 8);
    // The per-source buckets are bounded; the sources past the bound share one bucket.
    CHECK(f.lma.rate_limit_sources() <= 65536 + 1);  // plus the shared overflow bucket
    CHECK(f.counter("mh.rate_limit_overflow") > 0);
    // All at one instant: at most 10 refusal lines, plus one for the shared bucket's limit.
    std::size_t lines = 0;
    for (char c : log.str()) {
        lines += c == '\n';
    }
    CHECK(lines <= 11);
    // Once the flood is over and the buckets have refilled, they are forgotten.
    f.t.now_ms += 2000;
    Pbu p;
    CHECK(f.status(p, "2001:db8:e::1") == S(BaStatus::kAccepted));
    CHECK(f.lma.rate_limit_sources() < 100);
    // One sweep during the flood (nothing idle to forget; at most one a second), one after.
    CHECK(f.counter("mh.rate_limit_sweeps") == 2);
}

namespace {

mh::FlowIdentification flow(std::uint16_t fid, std::uint16_t prio, std::vector<std::uint16_t> bids,
                            std::optional<std::uint16_t> sport = 5060) {
    mh::FlowBinding b{fid, prio, std::move(bids), std::nullopt};
    if (sport) {
        mh::TrafficSelector ts;
        ts.protocol = mh::Range<std::uint8_t>{17, 17};
        ts.source_port = mh::Range<std::uint16_t>{*sport, *sport};
        b.selector = ts;
    }
    return mh::flow_identification(b);
}

std::map<std::uint16_t, std::uint8_t> flow_statuses(const mh::BindingAcknowledgement& ba) {
    std::map<std::uint16_t, std::uint8_t> out;
    for (const auto* f : mh::find_options<mh::FlowIdentification>(ba.options)) {
        out[f->fid] = f->status;
    }
    return out;
}

}  // namespace

TEST_CASE("RFC 6089 flow bindings: accepted, refused with their status, kept, replaced",
          "[lma][flow]") {
    Fixture f;
    Pbu dsl;
    dsl.seq = 1;
    REQUIRE(f.status(dsl) == S(BaStatus::kAccepted));
    Pbu lte = dsl;
    lte.bid = 2;
    lte.att_value = 8;
    lte.seq = 2;
    // fid 1 -> bid 2 then 1; fid 2 discard; fid 3 references an unknown BID; fid 4 has an
    // unsupported selector format; fid 5 changes a FID the session does not have.
    mh::FlowIdentification bad_format = flow(4, 4, {1}, std::nullopt);
    bad_format.sub_options.push_back({mh::kFlowSubTrafficSelector, {9, 0, 0, 0, 0, 0}});
    lte.extra = {flow(1, 1, {2, 1}), flow(2, 2, {}, 22), flow(3, 3, {7}), bad_format,
                 flow(5, 5, {1}, std::nullopt)};
    auto ba = f.send(lte, "2001:db8:b::1");
    CHECK(ba.status == S(BaStatus::kAccepted));
    CHECK(flow_statuses(ba) ==
          std::map<std::uint16_t, std::uint8_t>{{1, 0}, {2, 0}, {3, 131}, {4, 133}, {5, 132}});
    // The accepted reply echoes its BIDs.
    for (const auto* r : mh::find_options<mh::FlowIdentification>(ba.options)) {
        if (r->fid == 1) {
            CHECK(r->bid_references() == std::vector<std::uint16_t>{2, 1});
        }
    }
    const Session* s = f.cache.find("cpe1@example.net");
    REQUIRE(s != nullptr);
    REQUIRE(s->flows.size() == 2);
    CHECK(s->flows[0].fid == 1);
    CHECK(s->flows[1].bids.empty());
    CHECK(describe(s->flows[0]) == "fid 1 prio 1 ipv4 protocol=17 sport=5060 -> bid 2, 1");
    CHECK(describe(s->flows[1]) == "fid 2 prio 2 ipv4 protocol=17 sport=22 -> discard");
    CHECK(f.counter("flow_binding.accepted") == 2);
    CHECK(f.counter("flow_binding.refused.131") == 1);

    // A refresh without flow options keeps them.
    dsl.seq = 3;
    auto ba2 = f.send(dsl);
    CHECK(flow_statuses(ba2).empty());
    CHECK(f.cache.find("cpe1@example.net")->flows.size() == 2);

    // A Flow Summary keeps fid 2 only; fid 1 moves to bid 1 alone, without a selector (a
    // change); fid 9 in the summary is unknown.
    dsl.seq = 4;
    dsl.extra = {mh::FlowSummary{{2, 9}}, flow(1, 1, {1}, std::nullopt)};
    auto ba3 = f.send(dsl);
    CHECK(flow_statuses(ba3) == std::map<std::uint16_t, std::uint8_t>{{1, 0}, {2, 0}, {9, 132}});
    s = f.cache.find("cpe1@example.net");
    REQUIRE(s->flows.size() == 2);
    CHECK(s->flows[0].bids == std::vector<std::uint16_t>{1});
    CHECK(describe(s->flows[0]) == "fid 1 prio 1 ipv4 protocol=17 sport=5060 -> bid 1");

    // Only a Flow Summary naming nothing known: every binding goes.
    dsl.seq = 5;
    dsl.extra = {mh::FlowSummary{{42}}};
    (void)f.send(dsl);
    CHECK(f.cache.find("cpe1@example.net")->flows.empty());
}

TEST_CASE("RFC 6089 flow bindings: limits", "[lma][flow]") {
    Session s;
    s.nai = "x";
    s.paths.push_back(Path{});
    s.paths[0].bid = 1;
    mh::Options opts;
    for (std::size_t i = 1; i <= kMaxFlowBindings + 2; ++i) {
        const auto fid = static_cast<std::uint16_t>(i);
        opts.emplace_back(flow(fid, fid, {1}));
    }
    opts.emplace_back(flow(500, 1, {1, 2, 3, 4, 5, 6, 7, 8}));
    opts.emplace_back(flow(1, 1, {1}));  // named twice: the second replaces the first
    {
        // Address ranges that would expand into 254 x 254 ACL rules.
        mh::TrafficSelector ts;
        ts.ipv6 = true;
        net::Ipv6Address lo{}, hi{};
        lo[15] = 1;
        hi.fill(0xff);
        hi[15] = 0xfe;
        ts.source = mh::Range<net::Ipv6Address>{lo, hi};
        ts.destination = ts.source;
        opts.emplace_back(mh::flow_identification(mh::FlowBinding{600, 1, {1}, ts}));
    }
    auto replies = apply_flow_options(s, opts, [](const std::string&) {});
    CHECK(s.flows.size() == kMaxFlowBindings);
    std::map<std::uint16_t, std::uint8_t> st;
    for (const auto& r : replies) {
        const auto& fi = std::get<mh::FlowIdentification>(r);
        st[fi.fid] = fi.status;
    }
    CHECK(st[static_cast<std::uint16_t>(kMaxFlowBindings + 1)] == 128);
    CHECK(st[500] == 129);
    CHECK(st[600] == 129);
}

TEST_CASE(
    "cluster store: another node's binding is taken over by a PBU that passes replay "
    "protection",
    "[lma][cluster]") {
    Session saved;
    {
        Fixture other_node("store { uplink_gre_key_min: 5000 uplink_gre_key_max: 5999 }\n");
        Pbu p;
        p.seq = 10;
        p.gre = 0xabcd;
        REQUIRE(other_node.status(p) == S(BaStatus::kAccepted));
        saved = *other_node.cache.find("cpe1@example.net");
        CHECK(saved.uplink_gre_key == 5000);  // from that node's range
    }
    saved.paths[0].local = CareOfAddress{ip("2001:db8::99")};  // the other node's address
    Fixture f("store { uplink_gre_key_min: 1 uplink_gre_key_max: 4999 }\n");
    int loads = 0;
    bool fail = false;
    f.lma.set_binding_loader(
        [&](const std::string& nai) -> Result<std::optional<Session>, std::string> {
            ++loads;
            if (fail) {
                return unexpected(std::string("etcd: connection refused"));
            }
            if (nai == saved.nai) {
                return std::optional<Session>{saved};
            }
            return std::optional<Session>{};
        });

    // The store cannot be read: the PBU is dropped without a reply, nothing is kept.
    fail = true;
    Pbu next;
    next.seq = 11;
    next.gre = 0xabcd;
    CHECK(f.lma.receive(next.bytes(), from("2001:db8:a::1"), f.t).empty());
    CHECK(f.counter("cluster.lookup_failures") == 1);
    CHECK(f.counter("pbu.dropped") == 1);
    CHECK(f.cache.find("cpe1@example.net") == nullptr);
    fail = false;

    // A replay of the other node's last PBU is refused and does not take the binding over.
    Pbu replay = next;
    replay.seq = 10;
    auto ba = f.send(replay);
    CHECK(ba.status == S(BaStatus::kSequenceNumberOutOfWindow));
    CHECK(ba.sequence == 10);
    CHECK(f.cache.find("cpe1@example.net") == nullptr);
    CHECK(f.counter("cluster.takeovers") == 0);

    // The next sequence number takes it over with its prefix and uplink key (outside this
    // node's range), bound to this node's address.
    ba = f.send(next);
    CHECK(ba.status == S(BaStatus::kAccepted));
    CHECK(f.counter("cluster.takeovers") == 1);
    CHECK(mh::find_option<mh::GreKey>(ba.options)->key == 5000);
    CHECK(mh::find_option<mh::HomeNetworkPrefix>(ba.options)->prefix ==
          saved.home_prefixes[0].addr);
    const Session* s = f.cache.find("cpe1@example.net");
    REQUIRE(s != nullptr);
    CHECK(s->paths[0].local == CareOfAddress{ip("2001:db8::1")});
    CHECK(s->paths[0].last_sequence == 11);

    // Served here now: no more lookups for it; a subscriber unknown to the store is new.
    const int before = loads;
    next.seq = 12;
    CHECK(f.status(next) == S(BaStatus::kAccepted));
    CHECK(loads == before);
    Pbu fresh;
    fresh.nai = "cpe2@example.net";
    fresh.mag = "mag2@example.net";
    fresh.gre = 0x1234;
    ba = f.send(fresh, "2001:db8:a::2");
    CHECK(ba.status == S(BaStatus::kAccepted));
    CHECK(mh::find_option<mh::GreKey>(ba.options)->key == 1);  // this node's range
    CHECK(f.counter("cluster.takeovers") == 1);
}
