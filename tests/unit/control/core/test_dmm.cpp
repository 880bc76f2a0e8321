// Distributed anchoring (docs/scale-out.md): the MAG role (PBUs checked by the codec's own
// parser, PBA handling, bounded retransmission, hostile PBAs), and two LMAs passing a router
// that moved from node A to node B between them through the real codec.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <map>
#include <random>

#include "core/config.hpp"
#include "core/lma.hpp"
#include "core/mag.hpp"
#include "hag/mh/mh.hpp"
#include "hag/net/address.hpp"

using namespace hag;
using namespace hag::control;
using mh::BaStatus;

namespace {

Ipv6Address ip(const char* s) {
    return *net::parse_ipv6_address(s);
}

Prefix pfx(const char* a, std::uint8_t len) {
    return Prefix{ip(a), len};
}

constexpr std::uint8_t S(BaStatus s) {
    return static_cast<std::uint8_t>(s);
}

const Ipv6Address kA = ip("2001:db8::a");
const Ipv6Address kB = ip("2001:db8::b");
const Ipv6Address kC = ip("2001:db8::c");
const Ipv6Address kRouter = ip("2001:db8:f::1");

v1::ControlConfig node_config(const char* node, const char* addr, const char* pool, unsigned kmin,
                              unsigned kmax) {
    const std::string text = fmt::format(R"(
lma_addresses: "{1}"
hnp_pools {{ name: "p" prefix: "{2}" assign_length: 64 }}
default_profile {{ hnp_pool: "p" }}
allow_unknown_subscribers: true
allow_unknown_mags: true
store {{ node_name: "{0}" distributed_anchoring: true node_address: "{1}"
        uplink_gre_key_min: {3} uplink_gre_key_max: {4} }}
)",
                                         node, addr, pool, kmin, kmax);
    auto r = parse_control_config(text, "test.conf");
    if (!r) {
        FAIL(r.error().front().str());
    }
    return *r;
}

Peer peer(const Ipv6Address& local, const Ipv6Address& remote) {
    Peer p;
    p.local = local;
    p.remote = remote;
    return p;
}

// A home router's PBU (RFC 5213, MAG = the router, one access, BID 1).
std::vector<std::uint8_t> router_pbu(const std::string& nai, std::uint16_t seq,
                                     std::uint16_t lifetime_units,
                                     std::optional<Prefix> hnp = std::nullopt) {
    mh::BindingUpdate bu;
    bu.sequence = seq;
    bu.ack = true;
    bu.home_registration = true;
    bu.proxy = true;
    bu.lifetime = lifetime_units;
    bu.options.push_back(mh::MobileNodeIdentifier{1, mh::Bytes(nai.begin(), nai.end())});
    bu.options.push_back(hnp ? mh::HomeNetworkPrefix{hnp->length, hnp->addr}
                             : mh::HomeNetworkPrefix{0, {}});
    bu.options.push_back(mh::HandoffIndicatorOption{hnp ? std::uint8_t{3} : std::uint8_t{1}});
    bu.options.push_back(mh::AccessTechnologyTypeOption{3});
    bu.options.push_back(mh::GreKey{0x77});
    mh::MagMultipathBinding m;
    m.if_att = 3;
    m.if_label = 1;
    m.binding_id = 1;
    bu.options.push_back(m);
    const std::string mag = "rtr-" + nai;
    bu.options.push_back(mh::MagIdentifier{1, mh::Bytes(mag.begin(), mag.end())});
    return mh::encode(mh::Message{bu});
}

const mh::BindingAcknowledgement* ba_of(const Outbound& o) {
    return std::get_if<mh::BindingAcknowledgement>(&o.message.body);
}

std::vector<Prefix> hnps(const mh::Options& opts) {
    std::vector<Prefix> out;
    for (const auto* h : mh::find_options<mh::HomeNetworkPrefix>(opts)) {
        out.push_back(Prefix{h->prefix, h->prefix_length});
    }
    return out;
}

std::uint64_t counter(const Lma& l, const std::string& name) {
    for (const auto& [k, v] : l.counters()) {
        if (k == name) {
            return v;
        }
    }
    return 0;
}

// Two nodes, A (anchor of the router's first prefix) and B (where it moves).
struct Cluster {
    BindingCache cache_a{100}, cache_b{100};
    Lma a{node_config("hag-a", "2001:db8::a", "2001:db8:100::/56", 1, 999), cache_a};
    Lma b{node_config("hag-b", "2001:db8::b", "2001:db8:200::/56", 1000, 1999), cache_b};
    LmaTime t{1000, 1'000'000, std::uint64_t{1'700'000'000} << 32};
    std::map<std::string, Session> etcd;  // what A wrote: B's loader reads it
    bool a_alive = true;
    bool etcd_down = false;  // liveness reads fail

    Cluster() {
        b.set_binding_loader(
            [this](const std::string& nai) -> Result<std::optional<Session>, std::string> {
                auto it = etcd.find(nai);
                if (it == etcd.end()) {
                    return std::optional<Session>{};
                }
                return std::optional<Session>{it->second};
            });
        b.set_anchor_resolver(
            [this](const std::string&) -> Result<std::optional<Lma::AnchorPeer>, std::string> {
                if (etcd_down) {
                    return unexpected(std::string("etcd: connection refused"));
                }
                if (!a_alive) {
                    return std::optional<Lma::AnchorPeer>{};
                }
                return std::optional<Lma::AnchorPeer>{Lma::AnchorPeer{"hag-a", kA}};
            });
        a.set_peer_check([this](const std::string& mag_id,
                                const Ipv6Address& from) -> Result<bool, std::string> {
            if (etcd_down) {
                return unexpected(std::string("etcd: connection refused"));
            }
            return (mag_id == "hag-b" && from == kB) || (mag_id == "hag-c" && from == kC);
        });
    }

    // Delivers messages through the codec; returns what the receiver sent back.
    std::vector<Outbound> deliver(Lma& to, const Outbound& o, const Ipv6Address& to_addr,
                                  const Ipv6Address& from_addr) {
        auto bytes = mh::encode(o.message);
        return to.receive(bytes, peer(to_addr, from_addr), t);
    }

    // The router registers at A; A's binding goes to the "store".
    Prefix register_at_a(const std::string& nai) {
        auto out = a.receive(router_pbu(nai, 1, 100), peer(kA, kRouter), t);
        REQUIRE(out.size() == 1);
        REQUIRE(ba_of(out[0])->status == 0);
        etcd[nai] = *cache_a.find(nai);
        return hnps(ba_of(out[0])->options).at(0);
    }
};

}  // namespace

TEST_CASE("MAG role: PBU contents as the codec's parser reads them", "[mag]") {
    MagRole mag(MagOptions{"hag-b"});
    LmaTime t{100, 100'000, 0x1122334455667788ull};
    auto o = mag.start("cpe@example.net", peer(kB, kA),
                       {pfx("2001:db8:100::", 64), pfx("2001:db8:101::", 64)}, 0xbeef, 400, t);
    REQUIRE(o);
    CHECK(o->to.remote == kA);
    CHECK(o->to.local == kB);
    auto m = mh::decode(mh::encode(o->message));
    REQUIRE(m);
    const auto* bu = std::get_if<mh::BindingUpdate>(&m->body);
    REQUIRE(bu != nullptr);
    CHECK(bu->proxy);
    CHECK(bu->ack);
    CHECK(bu->home_registration);
    CHECK(bu->lifetime == 100);
    const auto* id = mh::find_option<mh::MobileNodeIdentifier>(bu->options);
    REQUIRE(id != nullptr);
    CHECK(std::string(id->identifier.begin(), id->identifier.end()) == "cpe@example.net");
    CHECK(hnps(bu->options) ==
          std::vector<Prefix>{pfx("2001:db8:100::", 64), pfx("2001:db8:101::", 64)});
    REQUIRE(mh::find_option<mh::GreKey>(bu->options) != nullptr);
    CHECK(mh::find_option<mh::GreKey>(bu->options)->key == 0xbeef);
    REQUIRE(mh::find_option<mh::Timestamp>(bu->options) != nullptr);
    CHECK(mh::find_option<mh::Timestamp>(bu->options)->value == 0x1122334455667788ull);
    const auto* mid = mh::find_option<mh::MagIdentifier>(bu->options);
    REQUIRE(mid != nullptr);
    CHECK(std::string(mid->identifier.begin(), mid->identifier.end()) == "hag-b");
    REQUIRE(mh::find_option<mh::HandoffIndicatorOption>(bu->options) != nullptr);
    REQUIRE(mh::find_option<mh::AccessTechnologyTypeOption>(bu->options) != nullptr);

    // De-registration: lifetime 0, a newer sequence number.
    auto d = mag.stop("cpe@example.net", t);
    REQUIRE(d);
    auto dm = mh::decode(mh::encode(d->message));
    REQUIRE(dm);
    const auto* dbu = std::get_if<mh::BindingUpdate>(&dm->body);
    REQUIRE(dbu != nullptr);
    CHECK(dbu->lifetime == 0);
    CHECK(dbu->sequence == static_cast<std::uint16_t>(bu->sequence + 1));
    CHECK_FALSE(mag.stop("nobody@example.net", t));
}

TEST_CASE("MAG role: retransmission with backoff is bounded; then given up", "[mag]") {
    MagRole mag(MagOptions{"hag-b", 10, 3, 1});
    LmaTime t{0, 0, 1};
    REQUIRE(mag.start("x@example.net", peer(kB, kA), {pfx("2001:db8:100::", 64)}, 5, 400, t));
    std::vector<Seconds> sent_at;
    std::vector<MagEvent> events;
    for (Seconds s = 1; s <= 60; ++s) {
        t.now = s;
        auto out = mag.tick(t, events);
        for (std::size_t i = 0; i < out.size(); ++i) {
            sent_at.push_back(s);
        }
    }
    CHECK(sent_at == std::vector<Seconds>{1, 3, 7});  // backoff 1, 2, 4
    REQUIRE(events.size() == 1);
    CHECK(events[0].kind == MagEvent::Kind::kGaveUp);
    CHECK(mag.size() == 0);
    CHECK(mag.counters().at("mag.gave_up") == 1);
}

TEST_CASE("MAG role: PBA handling, refresh before the lifetime ends, 135 resync", "[mag]") {
    MagRole mag(MagOptions{"hag-b"});
    LmaTime t{0, 0, 1};
    auto o = mag.start("x@example.net", peer(kB, kA), {pfx("2001:db8:100::", 64)}, 5, 40, t);
    REQUIRE(o);
    const auto seq = std::get<mh::BindingUpdate>(o->message.body).sequence;
    mh::BindingAcknowledgement ba;
    ba.proxy = true;
    ba.sequence = seq;
    ba.lifetime = 10;  // 40 s
    ba.options.push_back(mh::MobileNodeIdentifier{
        1, mh::Bytes{'x', '@', 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'n', 'e', 't'}});
    ba.options.push_back(mh::GreKey{0x42});
    // From another address: not ours.
    CHECK_FALSE(mag.on_pba(ba, peer(kB, kRouter), t));
    auto ev = mag.on_pba(ba, peer(kB, kA), t);
    REQUIRE(ev);
    CHECK(ev->kind == MagEvent::Kind::kRegistered);
    CHECK(ev->uplink_key == 0x42);
    CHECK(ev->lifetime_s == 40);
    // A duplicate PBA changes nothing.
    CHECK_FALSE(mag.on_pba(ba, peer(kB, kA), t));
    // Refresh at 80 % of the lifetime.
    std::vector<MagEvent> events;
    t.now = 31;
    CHECK(mag.tick(t, events).empty());
    t.now = 32;
    auto r = mag.tick(t, events);
    REQUIRE(r.size() == 1);
    const auto& rbu = std::get<mh::BindingUpdate>(r[0].message.body);
    CHECK(rbu.sequence == static_cast<std::uint16_t>(seq + 1));
    CHECK(rbu.lifetime == 10);
    // The anchor lost our sequence numbers (it says 900 was its last): next PBU above it.
    mh::BindingAcknowledgement oow = ba;
    oow.status = 135;
    oow.sequence = 900;
    CHECK_FALSE(mag.on_pba(oow, peer(kB, kA), t));
    auto again = mag.tick(t, events);
    REQUIRE(again.size() == 1);
    CHECK(std::get<mh::BindingUpdate>(again[0].message.body).sequence == 901);
    CHECK(events.empty());
}

TEST_CASE("MAG role: hostile PBAs never crash it and cannot grow its state", "[mag]") {
    MagRole mag(MagOptions{"hag-b", 4, 4, 1});
    LmaTime t{0, 0, 1};
    for (int i = 0; i < 6; ++i) {
        (void)mag.start(fmt::format("n{}@example.net", i), peer(kB, kA),
                        {pfx("2001:db8:100::", 64)}, 5, 400, t);
    }
    CHECK(mag.size() == 4);  // bounded table
    CHECK(mag.counters().at("mag.table_full") == 2);
    std::mt19937 rng(14);
    for (int i = 0; i < 20000; ++i) {
        mh::BindingAcknowledgement ba;
        ba.status = static_cast<std::uint8_t>(rng());
        ba.sequence = static_cast<std::uint16_t>(rng());
        ba.lifetime = static_cast<std::uint16_t>(rng());
        const int kind = static_cast<int>(rng() % 5);
        if (kind == 0) {
            const std::string n = fmt::format("n{}@example.net", rng() % 6);
            ba.options.push_back(mh::MobileNodeIdentifier{1, mh::Bytes(n.begin(), n.end())});
        } else if (kind == 1) {
            ba.options.push_back(mh::MobileNodeIdentifier{static_cast<std::uint8_t>(rng()),
                                                          mh::Bytes(rng() % 300, 'a')});
        } else if (kind == 2) {
            ba.options.push_back(mh::GreKey{static_cast<std::uint32_t>(rng())});
        }
        // Through the codec when it encodes, as the socket would deliver it.
        auto bytes = mh::encode(mh::Message{ba});
        if (auto m = mh::decode(bytes)) {
            if (const auto* d = std::get_if<mh::BindingAcknowledgement>(&m->body)) {
                (void)mag.on_pba(*d, peer(kB, (rng() & 1) ? kA : kRouter), t);
            }
        }
        if (i % 100 == 0) {
            std::vector<MagEvent> ev;
            t.now += 1;
            (void)mag.tick(t, ev);
        }
    }
    CHECK(mag.size() <= 4);
}

TEST_CASE("binding cache: one MAG, many mobile nodes under one BID", "[cache][mag]") {
    BindingCache bc;
    auto make = [](const char* nai, const char* p) {
        Session s;
        s.nai = nai;
        s.home_prefixes = {pfx(p, 64)};
        Path path;
        path.bid = 0;
        path.mag_id = "hag-b";
        path.coa = CareOfAddress{kB};
        path.relay = true;
        path.expires_at = 100;
        s.paths = {path};
        return s;
    };
    REQUIRE(bc.insert(make("a@x", "2001:db8:100::")).ok());
    REQUIRE(bc.insert(make("b@x", "2001:db8:101::")).ok());
    REQUIRE(bc.insert(make("c@x", "2001:db8:102::")).ok());
    CHECK(bc.find_all_by_path("hag-b", 0).size() == 3);
    CHECK(bc.find_by_path("hag-b", "b@x", 0)->nai == "b@x");
    CHECK(bc.find_by_path("hag-b", "b@x", 1) == nullptr);
    CHECK(bc.find_by_path("hag-c", "b@x", 0) == nullptr);
    CHECK(bc.find_by_path("hag-b", 0) != nullptr);
    REQUIRE(bc.remove("a@x").ok());
    auto left = bc.find_all_by_path("hag-b", 0);
    REQUIRE(left.size() == 2);
    CHECK(left[0]->nai != "a@x");
    CHECK(left[1]->nai != "a@x");
    REQUIRE(bc.remove_path("b@x", 0).ok());
    CHECK(bc.find_all_by_path("hag-b", 0).size() == 1);
    CHECK(bc.expire(100) == 1);
    CHECK(bc.find_all_by_path("hag-b", 0).empty());
    CHECK(bc.find_by_path("hag-b", 0) == nullptr);
}

TEST_CASE("distributed anchoring: a router moves from A to B and keeps its old prefix at A",
          "[lma][dmm]") {
    Cluster c;
    const Prefix old = c.register_at_a("cpe1@example.net");
    const std::uint32_t a_key = c.cache_a.find("cpe1@example.net")->uplink_gre_key;

    // The router re-registers at B, asking for its prefix (handoff between MAGs).
    auto out = c.b.receive(router_pbu("cpe1@example.net", 2, 100, old), peer(kB, kRouter), c.t);
    REQUIRE(out.size() == 2);
    const auto* pba = ba_of(out[0]);
    REQUIRE(pba != nullptr);
    CHECK(out[0].to.remote == kRouter);
    CHECK(pba->status == 0);
    auto prefixes = hnps(pba->options);
    REQUIRE(prefixes.size() == 2);
    CHECK(prefixes[0] == old);  // the old one first
    CHECK(to_string(prefixes[1]) == "2001:db8:200::/64");
    const std::uint32_t b_uplink = mh::find_option<mh::GreKey>(pba->options)->key;
    CHECK(b_uplink >= 1000);
    CHECK(b_uplink <= 1999);
    CHECK(counter(c.b, "anchoring.moved_in") == 1);

    // ... and B registers the old prefix at A as a MAG.
    CHECK(out[1].to.remote == kA);
    CHECK(out[1].to.local == kB);
    const auto* pbu = std::get_if<mh::BindingUpdate>(&out[1].message.body);
    REQUIRE(pbu != nullptr);
    CHECK(hnps(pbu->options) == std::vector<Prefix>{old});
    const std::uint32_t dl_key = mh::find_option<mh::GreKey>(pbu->options)->key;
    const Session* sb = c.cache_b.find("cpe1@example.net");
    REQUIRE(sb != nullptr);
    REQUIRE(sb->remote_anchors.size() == 1);
    CHECK(sb->remote_anchors[0].prefix == old);
    CHECK(sb->remote_anchors[0].node == "hag-a");
    CHECK(sb->remote_anchors[0].anchor == CareOfAddress{kA});
    CHECK(sb->remote_anchors[0].local == CareOfAddress{kB});
    CHECK(sb->remote_anchors[0].downlink_key == dl_key);
    CHECK(sb->remote_anchors[0].uplink_key == 0);  // until A answers
    CHECK(dl_key != b_uplink);

    // A accepts it: the old prefix stays anchored, the router's paths become one path to B.
    auto a_out = c.deliver(c.a, out[1], kA, kB);
    REQUIRE(a_out.size() == 1);
    const auto* apba = ba_of(a_out[0]);
    REQUIRE(apba != nullptr);
    CHECK(apba->status == 0);
    CHECK(hnps(apba->options) == std::vector<Prefix>{old});
    CHECK(mh::find_option<mh::GreKey>(apba->options)->key == a_key);
    const Session* sa = c.cache_a.find("cpe1@example.net");
    REQUIRE(sa != nullptr);
    REQUIRE(sa->paths.size() == 1);
    CHECK(sa->paths[0].relay);
    CHECK(sa->paths[0].mag_id == "hag-b");
    CHECK(sa->paths[0].coa == CareOfAddress{kB});
    CHECK(sa->paths[0].local == CareOfAddress{kA});
    CHECK(sa->paths[0].downlink_gre_key == dl_key);
    CHECK(sa->home_prefixes == std::vector<Prefix>{old});
    CHECK(counter(c.a, "anchoring.relayed_out") == 1);

    // A's PBA reaches B: the relay's uplink key is A's key for the subscriber.
    CHECK(c.deliver(c.b, a_out[0], kB, kA).empty());
    CHECK(c.cache_b.find("cpe1@example.net")->remote_anchors[0].uplink_key == a_key);
    CHECK(counter(c.b, "anchoring.registered_at_anchor") == 1);

    // A second router moving from A to B: A holds both under MAG hag-b (one MAG, many MNs).
    const Prefix old2 = c.register_at_a("cpe2@example.net");
    auto out2 = c.b.receive(router_pbu("cpe2@example.net", 2, 100), peer(kB, kRouter), c.t);
    REQUIRE(out2.size() == 2);
    CHECK(hnps(ba_of(out2[0])->options).at(0) == old2);
    auto a_out2 = c.deliver(c.a, out2[1], kA, kB);
    REQUIRE(a_out2.size() == 1);
    CHECK(ba_of(a_out2[0])->status == 0);
    CHECK(c.cache_a.find_all_by_path("hag-b", 1).size() == 2);
    CHECK(c.cache_a.find("cpe1@example.net") != nullptr);
    CHECK(c.deliver(c.b, a_out2[0], kB, kA).empty());

    // The router's refresh at B keeps both prefixes (asking for them or not).
    auto refresh = c.b.receive(router_pbu("cpe1@example.net", 3, 100), peer(kB, kRouter), c.t);
    REQUIRE(refresh.size() == 1);
    CHECK(ba_of(refresh[0])->status == 0);
    CHECK(hnps(ba_of(refresh[0])->options).size() == 2);

    // B refreshes its registration at A before the lifetime ends.
    c.t.now += 330;
    auto ticks = c.b.tick(c.t);
    std::size_t to_a = 0;
    for (const auto& o : ticks) {
        if (o.to.remote == kA) {
            ++to_a;
            auto r = c.deliver(c.a, o, kA, kB);
            REQUIRE(r.size() == 1);
            CHECK(ba_of(r[0])->status == 0);
            CHECK(c.deliver(c.b, r[0], kB, kA).empty());
        }
    }
    CHECK(to_a == 2);

    // The router de-registers at B: B de-registers the old prefix at A, which releases it.
    auto dereg = c.b.receive(router_pbu("cpe1@example.net", 4, 0), peer(kB, kRouter), c.t);
    REQUIRE(dereg.size() == 2);
    CHECK(ba_of(dereg[0])->status == 0);
    CHECK(c.cache_b.find("cpe1@example.net") == nullptr);
    const auto* dpbu = std::get_if<mh::BindingUpdate>(&dereg[1].message.body);
    REQUIRE(dpbu != nullptr);
    CHECK(dpbu->lifetime == 0);
    auto a_dereg = c.deliver(c.a, dereg[1], kA, kB);
    REQUIRE(a_dereg.size() == 1);
    CHECK(ba_of(a_dereg[0])->status == 0);
    CHECK(c.cache_a.find("cpe1@example.net") == nullptr);
    CHECK(counter(c.a, "pool.p.in_use") == 1);  // cpe2's old prefix only
    CHECK(c.deliver(c.b, a_dereg[0], kB, kA).empty());
    CHECK(counter(c.b, "anchoring.deregistered_at_anchor") == 1);
    CHECK(c.b.mag().size() == 1);
    // B's own keys of cpe1 (router uplink key, relay downlink key) are free again.
    CHECK(counter(c.b, "gre_keys.in_use") == 2);
}

TEST_CASE("distributed anchoring: liveness unreadable: PBUs dropped, nothing taken over",
          "[lma][dmm]") {
    Cluster c;
    (void)c.register_at_a("cpe1@example.net");
    c.etcd_down = true;
    // At B: the anchor's liveness cannot be read: no reply (the router retransmits), no takeover.
    CHECK(c.b.receive(router_pbu("cpe1@example.net", 2, 100), peer(kB, kRouter), c.t).empty());
    CHECK(c.cache_b.find("cpe1@example.net") == nullptr);
    CHECK(counter(c.b, "cluster.lookup_failures") == 1);
    // At A: a PBU that may be a peer's is dropped too, not taken for an ordinary MAG's.
    MagRole mag(MagOptions{"hag-b"});
    auto o = mag.start("cpe1@example.net", peer(kA, kB),
                       c.cache_a.find("cpe1@example.net")->home_prefixes, 9, 400, c.t);
    REQUIRE(o);
    CHECK(c.deliver(c.a, *o, kA, kB).empty());
    CHECK(c.cache_a.find("cpe1@example.net")->paths.at(0).mag_id == "rtr-cpe1@example.net");
    // etcd back: the retransmissions go through.
    c.etcd_down = false;
    auto out = c.b.receive(router_pbu("cpe1@example.net", 2, 100), peer(kB, kRouter), c.t);
    REQUIRE(out.size() == 2);
    CHECK(ba_of(out[0])->status == 0);
}

TEST_CASE("distributed anchoring: a dead anchor means takeover as before", "[lma][dmm]") {
    Cluster c;
    const Prefix old = c.register_at_a("cpe1@example.net");
    c.a_alive = false;
    auto out = c.b.receive(router_pbu("cpe1@example.net", 2, 100), peer(kB, kRouter), c.t);
    REQUIRE(out.size() == 1);
    CHECK(ba_of(out[0])->status == 0);
    CHECK(hnps(ba_of(out[0])->options) == std::vector<Prefix>{old});
    CHECK(c.cache_b.find("cpe1@example.net")->remote_anchors.empty());
    CHECK(counter(c.b, "cluster.takeovers") == 1);
}

TEST_CASE("distributed anchoring: the anchor refuses what is not a peer's to ask", "[lma][dmm]") {
    Cluster c;
    const Prefix old = c.register_at_a("cpe1@example.net");
    MagRole impostor(MagOptions{"hag-b"});
    // From an address that is not hag-b's: an ordinary (unknown) MAG, not a relay.
    auto o = impostor.start("cpe1@example.net", peer(kA, kRouter), {old}, 9, 400, c.t);
    REQUIRE(o);
    auto r = c.deliver(c.a, *o, kA, kRouter);
    REQUIRE(r.size() == 1);
    CHECK(counter(c.a, "anchoring.peer_pbu") == 0);
    // From hag-b, for a prefix that is not the subscriber's.
    auto p =
        impostor.start("cpe1@example.net", peer(kA, kB), {pfx("2001:db8:1ff::", 64)}, 9, 400, c.t);
    r = c.deliver(c.a, *p, kA, kB);
    REQUIRE(r.size() == 1);
    CHECK(ba_of(r[0])->status == S(BaStatus::kBcePbuPrefixSetDoNotMatch));
    // For a subscriber A does not have, with a prefix outside A's pools.
    auto q =
        impostor.start("ghost@example.net", peer(kA, kB), {pfx("2001:db8:9::", 64)}, 9, 400, c.t);
    r = c.deliver(c.a, *q, kA, kB);
    REQUIRE(r.size() == 1);
    CHECK(ba_of(r[0])->status == S(BaStatus::kNotAuthorizedForHomeNetworkPrefix));
    CHECK(c.cache_a.find("ghost@example.net") == nullptr);
    // Without a GRE key option.
    mh::BindingUpdate bu = std::get<mh::BindingUpdate>(p->message.body);
    std::erase_if(bu.options,
                  [](const mh::Option& op) { return std::holds_alternative<mh::GreKey>(op); });
    r = c.a.receive(mh::encode(mh::Message{bu}), peer(kA, kB), c.t);
    REQUIRE(r.size() == 1);
    CHECK(ba_of(r[0])->status == S(BaStatus::kGreKeyOptionRequired));
}

TEST_CASE("distributed anchoring: moving on to C, C relays the old prefix to A itself",
          "[lma][dmm]") {
    Cluster c;
    const Prefix old = c.register_at_a("cpe1@example.net");
    auto out = c.b.receive(router_pbu("cpe1@example.net", 2, 100), peer(kB, kRouter), c.t);
    REQUIRE(out.size() == 2);
    auto a_out = c.deliver(c.a, out[1], kA, kB);
    REQUIRE(a_out.size() == 1);
    REQUIRE(c.deliver(c.b, a_out[0], kB, kA).empty());
    const Session at_b = *c.cache_b.find("cpe1@example.net");  // what B wrote to etcd

    BindingCache cache_c{100};
    Lma node_c{node_config("hag-c", "2001:db8::c", "2001:db8:300::/56", 2000, 2999), cache_c};
    node_c.set_binding_loader(
        [&](const std::string&) -> Result<std::optional<Session>, std::string> {
            return std::optional<Session>{at_b};
        });
    node_c.set_anchor_resolver(
        [](const std::string&) -> Result<std::optional<Lma::AnchorPeer>, std::string> {
            return std::optional<Lma::AnchorPeer>{Lma::AnchorPeer{"hag-b", kB}};
        });
    auto c_out = node_c.receive(router_pbu("cpe1@example.net", 3, 100), peer(kC, kRouter), c.t);
    REQUIRE(c_out.size() == 2);
    CHECK(ba_of(c_out[0])->status == 0);
    CHECK(hnps(ba_of(c_out[0])->options) == at_b.home_prefixes);  // taken over, nothing added
    const Session* sc = cache_c.find("cpe1@example.net");
    REQUIRE(sc != nullptr);
    REQUIRE(sc->remote_anchors.size() == 1);
    CHECK(sc->remote_anchors[0].local == CareOfAddress{kC});
    CHECK(c_out[1].to.remote == kA);
    CHECK(c_out[1].to.local == kC);
    auto a2 = c.deliver(c.a, c_out[1], kA, kC);
    REQUIRE(a2.size() == 1);
    CHECK(ba_of(a2[0])->status == 0);
    const Session* sa = c.cache_a.find("cpe1@example.net");
    REQUIRE(sa != nullptr);
    CHECK(sa->paths.at(0).mag_id == "hag-c");
    CHECK(sa->paths.at(0).coa == CareOfAddress{kC});
    CHECK(sa->home_prefixes == std::vector<Prefix>{old});
    CHECK(node_c.receive(mh::encode(a2[0].message), peer(kC, kA), c.t).empty());
    CHECK(cache_c.find("cpe1@example.net")->remote_anchors[0].uplink_key == sa->uplink_gre_key);
    // The relay's downlink key (B's) is held here now: not handed out again.
    CHECK(counter(node_c, "gre_keys.in_use") == 2);
}

TEST_CASE("distributed anchoring: a restarted node registers its remote anchors again",
          "[lma][dmm]") {
    Cluster c;
    (void)c.register_at_a("cpe1@example.net");
    auto out = c.b.receive(router_pbu("cpe1@example.net", 2, 100), peer(kB, kRouter), c.t);
    REQUIRE(out.size() == 2);
    const Session saved = *c.cache_b.find("cpe1@example.net");
    BindingCache cache2{100};
    Lma b2{node_config("hag-b", "2001:db8::b", "2001:db8:200::/56", 1000, 1999), cache2};
    REQUIRE(b2.restore(saved, c.t).ok());
    auto ticks = b2.tick(c.t);
    REQUIRE(ticks.size() == 1);
    CHECK(ticks[0].to.remote == kA);
    const auto* bu = std::get_if<mh::BindingUpdate>(&ticks[0].message.body);
    REQUIRE(bu != nullptr);
    CHECK(mh::find_option<mh::GreKey>(bu->options)->key == saved.remote_anchors.at(0).downlink_key);
    CHECK(counter(b2, "gre_keys.in_use") == 2);  // the router's key and the relay's
}

TEST_CASE(
    "distributed anchoring: a node that relays its own prefix out releases its remote "
    "anchors' keys",
    "[lma][dmm]") {
    // cpe1 moved from A to B: B anchors a fresh prefix and relays the old one to A with a
    // downlink key of B's own. Then a third node C registers B's prefix at B: B's binding
    // becomes a relay toward C, its remote anchor at A goes away, and so must the key B had
    // allocated for it (else every such move leaks one of B's GRE keys).
    Cluster c;
    const Prefix old = c.register_at_a("cpe1@example.net");
    auto out = c.b.receive(router_pbu("cpe1@example.net", 2, 100, old), peer(kB, kRouter), c.t);
    REQUIRE(out.size() == 2);
    auto a_out = c.deliver(c.a, out[1], kA, kB);
    REQUIRE(a_out.size() == 1);
    REQUIRE(c.deliver(c.b, a_out[0], kB, kA).empty());
    const Session before = *c.cache_b.find("cpe1@example.net");
    REQUIRE(before.remote_anchors.size() == 1);
    REQUIRE(before.home_prefixes.size() == 2);
    const Prefix own = before.home_prefixes[1];   // B's fresh prefix
    CHECK(counter(c.b, "gre_keys.in_use") == 2);  // the router's uplink key and the relay's

    c.b.set_peer_check(
        [](const std::string& mag_id, const Ipv6Address& from) -> Result<bool, std::string> {
            return mag_id == "hag-c" && from == kC;
        });
    // C's PBU for B's prefix: B's own PBU to A, with C's identity and B's prefix.
    mh::Message m = out[1].message;
    auto& bu = std::get<mh::BindingUpdate>(m.body);
    bu.sequence = 7;
    for (auto& o : bu.options) {
        if (auto* h = std::get_if<mh::HomeNetworkPrefix>(&o)) {
            h->prefix = own.addr;
            h->prefix_length = own.length;
        } else if (auto* id = std::get_if<mh::MagIdentifier>(&o)) {
            const std::string c_name = "hag-c";
            id->identifier = mh::Bytes(c_name.begin(), c_name.end());
        } else if (auto* k = std::get_if<mh::GreKey>(&o)) {
            k->key = 2500;  // C's downlink key
        }
    }
    // Meanwhile C registers the old prefix at A itself (as in the test above).
    mh::Message at_a = out[1].message;
    auto& abu = std::get<mh::BindingUpdate>(at_a.body);
    abu.sequence = 9;
    for (auto& o : abu.options) {
        if (auto* id = std::get_if<mh::MagIdentifier>(&o)) {
            const std::string c_name = "hag-c";
            id->identifier = mh::Bytes(c_name.begin(), c_name.end());
        } else if (auto* k = std::get_if<mh::GreKey>(&o)) {
            k->key = 2501;
        }
    }
    auto a_c = c.a.receive(mh::encode(at_a), peer(kA, kC), c.t);
    REQUIRE(a_c.size() == 1);
    CHECK(ba_of(a_c[0])->status == 0);
    CHECK(c.cache_a.find("cpe1@example.net")->paths.at(0).mag_id == "hag-c");

    // Asking B for the old prefix is refused: B only relays it to A, its anchor.
    {
        mh::Message wrong = m;
        for (auto& o : std::get<mh::BindingUpdate>(wrong.body).options) {
            if (auto* h = std::get_if<mh::HomeNetworkPrefix>(&o)) {
                h->prefix = old.addr;
                h->prefix_length = old.length;
            }
        }
        auto r = c.b.receive(mh::encode(wrong), peer(kB, kC), c.t);
        REQUIRE(r.size() == 1);
        CHECK(ba_of(r[0])->status == S(BaStatus::kBcePbuPrefixSetDoNotMatch));
        CHECK(c.cache_b.find("cpe1@example.net")->remote_anchors.size() == 1);
        CHECK(counter(c.b, "gre_keys.in_use") == 2);
    }

    auto b_out = c.b.receive(mh::encode(m), peer(kB, kC), c.t);
    REQUIRE(b_out.size() == 2);
    REQUIRE(ba_of(b_out[0]) != nullptr);
    CHECK(b_out[0].to.remote == kC);
    CHECK(ba_of(b_out[0])->status == 0);
    CHECK(hnps(ba_of(b_out[0])->options) == std::vector<Prefix>{own});
    // B ends its own registration of the old prefix at A ...
    CHECK(b_out[1].to.remote == kA);
    const auto* stop = std::get_if<mh::BindingUpdate>(&b_out[1].message.body);
    REQUIRE(stop != nullptr);
    CHECK(stop->lifetime == 0);
    CHECK(hnps(stop->options) == std::vector<Prefix>{old});
    // ... which leaves C's registration there alone (A's binding is C's, not B's).
    auto a_stop = c.deliver(c.a, b_out[1], kA, kB);
    REQUIRE(a_stop.size() == 1);
    CHECK(ba_of(a_stop[0])->status == 0);
    REQUIRE(c.cache_a.find("cpe1@example.net") != nullptr);
    CHECK(c.cache_a.find("cpe1@example.net")->paths.at(0).mag_id == "hag-c");
    CHECK(c.deliver(c.b, a_stop[0], kB, kA).empty());
    CHECK(c.b.mag().size() == 0);  // nothing left for B to refresh at A
    CHECK(counter(c.b, "anchoring.remote_anchors_handed_on") == 1);
    const Session* sb = c.cache_b.find("cpe1@example.net");
    REQUIRE(sb != nullptr);
    REQUIRE(sb->paths.size() == 1);
    CHECK(sb->paths[0].relay);
    CHECK(sb->paths[0].mag_id == "hag-c");
    CHECK(sb->paths[0].downlink_gre_key == 2500);
    CHECK(sb->remote_anchors.empty());
    CHECK(sb->home_prefixes == std::vector<Prefix>{own});
    // The router's uplink key stays (the relay's uplink key); the one toward A is free again.
    CHECK(sb->uplink_gre_key == before.uplink_gre_key);
    CHECK(counter(c.b, "gre_keys.in_use") == 1);

    // And it can be handed out again: C de-registers, B's binding goes, no key is left.
    bu.sequence = 8;
    bu.lifetime = 0;
    auto dereg = c.b.receive(mh::encode(m), peer(kB, kC), c.t);
    REQUIRE(dereg.size() == 1);
    CHECK(ba_of(dereg[0])->status == 0);
    CHECK(c.cache_b.find("cpe1@example.net") == nullptr);
    CHECK(counter(c.b, "gre_keys.in_use") == 0);
}
