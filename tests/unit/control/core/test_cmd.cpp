// Central mobility database mode (RFC 8885, docs/scale-out.md): a CMD and three MAARs as
// in-process LMAs passing every message through the codec; a home router (RFC 5213, unchanged)
// attaching and moving between them; hostile PBUs and PBAs against bounded tables.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <map>
#include <random>

#include "core/config.hpp"
#include "core/lma.hpp"
#include "hag/mh/mh.hpp"
#include "hag/net/address.hpp"

using namespace hag;
using namespace hag::control;

namespace {

Ipv6Address ip(const char* s) {
    return *net::parse_ipv6_address(s);
}

const Ipv6Address kCmd = ip("2001:db8::d");
const Ipv6Address kA = ip("2001:db8::a");
const Ipv6Address kB = ip("2001:db8::b");
const Ipv6Address kC = ip("2001:db8::c");
const Ipv6Address kRouter = ip("2001:db8:f::1");

v1::ControlConfig parse(const std::string& text) {
    auto r = parse_control_config(text, "test.conf");
    if (!r) {
        FAIL(r.error().front().str());
    }
    return *r;
}

v1::ControlConfig maar_config(const char* node, const char* addr, const char* pool, unsigned kmin,
                              unsigned kmax) {
    return parse(fmt::format(R"(
lma_addresses: "{1}"
hnp_pools {{ name: "p" prefix: "{2}" assign_length: 64 }}
default_profile {{ hnp_pool: "p" }}
allow_unknown_subscribers: true
allow_unknown_mags: true
limits {{ max_sessions: 50 }}
store {{ uplink_gre_key_min: {3} uplink_gre_key_max: {4} }}
central_db {{ role: CENTRAL_DB_MAAR node_name: "{0}" node_address: "{1}"
             cmd_address: "2001:db8::d" }}
)",
                             node, addr, pool, kmin, kmax));
}

v1::ControlConfig cmd_config() {
    return parse(R"(
lma_addresses: "2001:db8::d"
limits { max_sessions: 50 }
central_db {
  role: CENTRAL_DB_CMD
  maars { name: "hag-a" address: "2001:db8::a" }
  maars { name: "hag-b" address: "2001:db8::b" }
  maars { name: "hag-c" address: "2001:db8::c" }
}
)");
}

Peer peer(const Ipv6Address& local, const Ipv6Address& remote) {
    Peer p;
    p.local = local;
    p.remote = remote;
    return p;
}

std::vector<std::uint8_t> router_pbu(const std::string& nai, std::uint16_t seq,
                                     std::uint16_t lifetime_units) {
    mh::BindingUpdate bu;
    bu.sequence = seq;
    bu.ack = true;
    bu.home_registration = true;
    bu.proxy = true;
    bu.lifetime = lifetime_units;
    bu.options.push_back(mh::MobileNodeIdentifier{1, mh::Bytes(nai.begin(), nai.end())});
    bu.options.push_back(mh::HomeNetworkPrefix{0, {}});
    bu.options.push_back(mh::HandoffIndicatorOption{1});
    bu.options.push_back(mh::AccessTechnologyTypeOption{3});
    bu.options.push_back(mh::GreKey{0x77});
    const std::string mag = "rtr-" + nai;
    bu.options.push_back(mh::MagIdentifier{1, mh::Bytes(mag.begin(), mag.end())});
    return mh::encode(mh::Message{bu});
}

const mh::BindingAcknowledgement* ba_of(const Outbound& o) {
    return std::get_if<mh::BindingAcknowledgement>(&o.message.body);
}
const mh::BindingUpdate* bu_of(const Outbound& o) {
    return std::get_if<mh::BindingUpdate>(&o.message.body);
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

std::string text_of(const mh::Bytes& b) {
    return std::string(b.begin(), b.end());
}

// A CMD and three MAARs; messages between them go through the codec (encode, then the
// receiver's receive()); messages to the router are collected.
struct Net {
    BindingCache cache_cmd{50}, cache_a{50}, cache_b{50}, cache_c{50};
    Lma cmd{cmd_config(), cache_cmd};
    Lma a{maar_config("hag-a", "2001:db8::a", "2001:db8:100::/56", 1, 999), cache_a};
    Lma b{maar_config("hag-b", "2001:db8::b", "2001:db8:200::/56", 1000, 1999), cache_b};
    Lma c{maar_config("hag-c", "2001:db8::c", "2001:db8:300::/56", 2000, 2999), cache_c};
    LmaTime t{1000, 1'000'000, std::uint64_t{1'700'000'000} << 32};
    std::vector<Outbound> to_router;
    std::vector<Outbound> seen;     // every message passed between the nodes (decoded again)
    std::vector<Ipv6Address> down;  // nodes whose incoming messages are lost

    Lma* node(const Ipv6Address& a_) {
        if (a_ == kCmd)
            return &cmd;
        if (a_ == kA)
            return &a;
        if (a_ == kB)
            return &b;
        if (a_ == kC)
            return &c;
        return nullptr;
    }

    void pump(std::vector<Outbound> q, const Ipv6Address& from) {
        std::vector<std::pair<Outbound, Ipv6Address>> work;
        for (auto& o : q) {
            work.emplace_back(std::move(o), from);
        }
        for (int guard = 0; guard < 1000 && !work.empty(); ++guard) {
            auto [o, src] = std::move(work.front());
            work.erase(work.begin());
            Lma* dst = node(o.to.remote);
            if (dst == nullptr) {
                to_router.push_back(std::move(o));
                continue;
            }
            CHECK(o.to.local == src);  // sent from the node's own address
            auto bytes = mh::encode(o.message);
            auto decoded = mh::decode(bytes);
            REQUIRE(decoded.ok());
            seen.push_back(Outbound{o.to, *decoded});
            if (std::find(down.begin(), down.end(), o.to.remote) != down.end()) {
                continue;
            }
            const Ipv6Address dst_addr = o.to.remote;
            for (auto& r : dst->receive(bytes, peer(dst_addr, src), t)) {
                work.emplace_back(std::move(r), dst_addr);
            }
        }
    }

    void router_at(Lma& n, const Ipv6Address& addr, const std::string& nai, std::uint16_t seq,
                   std::uint16_t units = 100) {
        pump(n.receive(router_pbu(nai, seq, units), peer(addr, kRouter), t), addr);
    }

    void tick(std::int64_t seconds, std::int64_t ms = 0) {
        t.now += seconds;
        t.now_ms += seconds * 1000 + ms;
        t.timestamp += std::uint64_t(seconds) << 32;
        pump(cmd.tick(t), kCmd);
        pump(a.tick(t), kA);
        pump(b.tick(t), kB);
        pump(c.tick(t), kC);
    }

    // The last PBA to the router.
    const mh::BindingAcknowledgement* last_pba() {
        for (auto it = to_router.rbegin(); it != to_router.rend(); ++it) {
            if (const auto* ba = ba_of(*it)) {
                return ba;
            }
        }
        return nullptr;
    }
    const Outbound* last_seen(const Ipv6Address& to, bool pbu) {
        for (auto it = seen.rbegin(); it != seen.rend(); ++it) {
            if (it->to.remote == to && (pbu ? bu_of(*it) != nullptr : ba_of(*it) != nullptr)) {
                return &*it;
            }
        }
        return nullptr;
    }
};

Prefix attach_at_a(Net& n, const std::string& nai) {
    n.router_at(n.a, kA, nai, 1);
    const auto* ba = n.last_pba();
    REQUIRE(ba != nullptr);
    REQUIRE(ba->status == 0);
    auto p = hnps(ba->options);
    REQUIRE(p.size() == 1);
    return p[0];
}

}  // namespace

TEST_CASE("CMD: attach at A is registered at the CMD before the router is answered", "[cmd]") {
    Net n;
    // The router's PBU at A: A answers nothing yet, it registers at the CMD.
    auto out = n.a.receive(router_pbu("r1@x", 1, 100), peer(kA, kRouter), n.t);
    REQUIRE(out.size() == 1);
    const auto* bu = bu_of(out[0]);
    REQUIRE(bu != nullptr);
    CHECK(out[0].to.remote == kCmd);
    CHECK(out[0].to.local == kA);
    CHECK(n.a.held_replies() == 1);
    // The PBU as the codec's parser reads it.
    auto d = mh::decode(mh::encode(out[0].message));
    REQUIRE(d.ok());
    const auto& pbu = std::get<mh::BindingUpdate>(d->body);
    CHECK(pbu.proxy);
    CHECK(pbu.ack);
    CHECK(pbu.lifetime == 100);
    CHECK(text_of(mh::find_option<mh::MobileNodeIdentifier>(pbu.options)->identifier) == "r1@x");
    CHECK(text_of(mh::find_option<mh::MagIdentifier>(pbu.options)->identifier) == "hag-a");
    const auto locals = mh::find_options<mh::LocalPrefix>(pbu.options);
    REQUIRE(locals.size() == 1);
    CHECK(locals[0]->prefix_length == 64);
    CHECK(mh::find_option<mh::Timestamp>(pbu.options) != nullptr);
    const auto* key = mh::find_option<mh::GreKey>(pbu.options);
    REQUIRE(key != nullptr);
    CHECK(key->key >= 1);
    CHECK(key->key <= 999);
    CHECK(mh::find_options<mh::HomeNetworkPrefix>(pbu.options).empty());
    CHECK(mh::find_option<mh::ServingMaarAddress>(pbu.options) == nullptr);

    // The router retransmits while A waits: nothing is processed again.
    CHECK(n.a.receive(router_pbu("r1@x", 1, 100), peer(kA, kRouter), n.t).empty());
    CHECK(counter(n.a, "cmd.held_retransmissions") == 1);
    CHECK(n.a.mag().size() == 1);

    // The CMD answers; A answers the router with its prefix.
    n.pump(out, kA);
    const auto* cmd_pba = n.last_seen(kA, false);
    REQUIRE(cmd_pba != nullptr);
    CHECK(ba_of(*cmd_pba)->status == 0);
    CHECK(mh::find_option<mh::PreviousMaarAddress>(ba_of(*cmd_pba)->options) == nullptr);
    const auto* ba = n.last_pba();
    REQUIRE(ba != nullptr);
    CHECK(ba->status == 0);
    CHECK(hnps(ba->options) == std::vector<Prefix>{Prefix{locals[0]->prefix, 64}});
    CHECK(n.a.held_replies() == 0);
    CHECK(n.to_router.size() == 1);
    // The directory: served by hag-a, the prefix anchored there.
    const Session* e = n.cache_cmd.find("r1@x");
    REQUIRE(e != nullptr);
    REQUIRE(e->paths.size() == 1);
    CHECK(e->paths[0].mag_id == "hag-a");
    CHECK(e->paths[0].coa.addr == kA);
    REQUIRE(e->remote_anchors.size() == 1);
    CHECK(e->remote_anchors[0].node == "hag-a");
    CHECK(counter(n.cmd, "cmd.registered") == 1);
}

TEST_CASE("CMD: a move A -> B is relayed to A, B relays the old prefix", "[cmd]") {
    Net n;
    const Prefix pa = attach_at_a(n, "r1@x");
    n.router_at(n.b, kB, "r1@x", 2);

    // The CMD's PBU to A, every option as the codec parses it.
    const auto* relay = n.last_seen(kA, true);
    REQUIRE(relay != nullptr);
    CHECK(relay->to.local == kCmd);
    const auto* rb = bu_of(*relay);
    CHECK(text_of(mh::find_option<mh::MobileNodeIdentifier>(rb->options)->identifier) == "r1@x");
    CHECK(text_of(mh::find_option<mh::MagIdentifier>(rb->options)->identifier) == "hag-b");
    REQUIRE(mh::find_option<mh::ServingMaarAddress>(rb->options) != nullptr);
    CHECK(mh::find_option<mh::ServingMaarAddress>(rb->options)->address == kB);
    const auto ap = mh::find_options<mh::AnchoredPrefix>(rb->options);
    REQUIRE(ap.size() == 1);
    CHECK(Prefix{ap[0]->prefix, ap[0]->prefix_length} == pa);
    const std::uint32_t b_key = mh::find_option<mh::GreKey>(rb->options)->key;
    CHECK(b_key >= 1000);
    CHECK(b_key <= 1999);
    CHECK(mh::find_option<mh::Timestamp>(rb->options) != nullptr);
    // A's PBA to the CMD: A's uplink key.
    const auto* apba = n.last_seen(kCmd, false);
    REQUIRE(apba != nullptr);
    CHECK(ba_of(*apba)->status == 0);
    const std::uint32_t a_key = mh::find_option<mh::GreKey>(ba_of(*apba)->options)->key;
    CHECK(a_key >= 1);
    CHECK(a_key <= 999);
    // The CMD's PBA to B: Previous MAAR (A, P_A) and A's key.
    const auto* bpba = n.last_seen(kB, false);
    REQUIRE(bpba != nullptr);
    const auto& bopts = ba_of(*bpba)->options;
    const auto pms = mh::find_options<mh::PreviousMaarAddress>(bopts);
    REQUIRE(pms.size() == 1);
    CHECK(pms[0]->address == kA);
    CHECK(Prefix{pms[0]->prefix, pms[0]->prefix_length} == pa);
    CHECK(mh::find_option<mh::GreKey>(bopts)->key == a_key);

    // The router's PBA at B: P_A first, then B's own prefix.
    const auto* ba = n.last_pba();
    REQUIRE(ba != nullptr);
    REQUIRE(ba->status == 0);
    const auto got = hnps(ba->options);
    REQUIRE(got.size() == 2);
    CHECK(got[0] == pa);
    CHECK(got[1].addr[2] == 0x0d);  // 2001:db8:2xx::
    CHECK(got[1].addr[4] == 0x02);

    // A: one path to B (care-of = the Serving MAAR's address), B's downlink key.
    const Session* sa = n.cache_a.find("r1@x");
    REQUIRE(sa != nullptr);
    REQUIRE(sa->paths.size() == 1);
    CHECK(sa->paths[0].relay);
    CHECK(sa->paths[0].coa.addr == kB);
    CHECK(sa->paths[0].mag_id == "hag-b");
    CHECK(sa->paths[0].downlink_gre_key == b_key);
    CHECK(sa->home_prefixes == std::vector<Prefix>{pa});
    CHECK(!n.a.mag().has("r1@x"));  // A no longer registers it at the CMD
    // B: the remote anchor (prefix, addresses, both keys).
    const Session* sb = n.cache_b.find("r1@x");
    REQUIRE(sb != nullptr);
    REQUIRE(sb->remote_anchors.size() == 1);
    CHECK(sb->remote_anchors[0].prefix == pa);
    CHECK(sb->remote_anchors[0].anchor.addr == kA);
    CHECK(sb->remote_anchors[0].local.addr == kB);
    CHECK(sb->remote_anchors[0].uplink_key == a_key);
    CHECK(sb->remote_anchors[0].downlink_key == b_key);
    // The directory.
    const Session* e = n.cache_cmd.find("r1@x");
    REQUIRE(e != nullptr);
    CHECK(e->paths[0].mag_id == "hag-b");
    REQUIRE(e->remote_anchors.size() == 2);
    CHECK(e->remote_anchors[0].node == "hag-a");
    CHECK(e->remote_anchors[1].node == "hag-b");
    CHECK(counter(n.cmd, "cmd.moved") == 1);

    // Refreshes: B at 80 % refreshes at the CMD; the CMD refreshes at A by itself.
    const auto relays_before = counter(n.cmd, "cmd.relay.refresh_sent");
    n.tick(330);
    CHECK(counter(n.b, "mag.refresh_sent") >= 1);
    CHECK(counter(n.cmd, "cmd.relay.refresh_sent") > relays_before);
    CHECK(n.cache_a.find("r1@x") != nullptr);
    CHECK(n.cache_cmd.find("r1@x") != nullptr);

    // De-registration at B reaches the CMD and A: A's prefix back in its pool.
    n.router_at(n.b, kB, "r1@x", 3, 0);
    CHECK(n.cache_b.find("r1@x") == nullptr);
    CHECK(n.cache_cmd.find("r1@x") == nullptr);
    CHECK(n.cache_a.find("r1@x") == nullptr);
    CHECK(counter(n.a, "pool.p.in_use") == 0);
    CHECK(counter(n.b, "pool.p.in_use") == 0);
    CHECK(counter(n.cmd, "cmd.deregistered") == 1);
    CHECK(counter(n.cmd, "cmd.relay.registrations") == 0);
    CHECK(counter(n.a, "gre_keys.in_use") == 0);
    CHECK(counter(n.b, "gre_keys.in_use") == 0);
}

TEST_CASE("CMD: A -> B -> C relays to both previous anchors; A -> B -> A", "[cmd]") {
    SECTION("A -> B -> C") {
        Net n;
        const Prefix pa = attach_at_a(n, "r1@x");
        n.router_at(n.b, kB, "r1@x", 2);
        const Prefix pb = hnps(n.last_pba()->options).at(1);
        n.router_at(n.c, kC, "r1@x", 3);
        const auto got = hnps(n.last_pba()->options);
        REQUIRE(got.size() == 3);
        CHECK(got[0] == pa);
        CHECK(got[1] == pb);
        for (auto* cache : {&n.cache_a, &n.cache_b}) {
            const Session* s = cache->find("r1@x");
            REQUIRE(s != nullptr);
            REQUIRE(s->paths.size() == 1);
            CHECK(s->paths[0].relay);
            CHECK(s->paths[0].coa.addr == kC);
            CHECK(s->home_prefixes.size() == 1);
            CHECK(s->remote_anchors.empty());
        }
        const Session* sc = n.cache_c.find("r1@x");
        REQUIRE(sc->remote_anchors.size() == 2);
        CHECK(sc->remote_anchors[0].anchor.addr == kA);
        CHECK(sc->remote_anchors[1].anchor.addr == kB);
        CHECK(sc->remote_anchors[0].uplink_key != 0);
        CHECK(sc->remote_anchors[1].uplink_key != 0);
        // De-registration at C reaches both anchors.
        n.router_at(n.c, kC, "r1@x", 4, 0);
        CHECK(n.cache_a.find("r1@x") == nullptr);
        CHECK(n.cache_b.find("r1@x") == nullptr);
        CHECK(n.cache_cmd.find("r1@x") == nullptr);
    }
    SECTION("A -> B -> A") {
        Net n;
        const Prefix pa = attach_at_a(n, "r1@x");
        n.router_at(n.b, kB, "r1@x", 2);
        const Prefix pb = hnps(n.last_pba()->options).at(1);
        n.router_at(n.a, kA, "r1@x", 3);
        const auto got = hnps(n.last_pba()->options);
        REQUIRE(got.size() == 2);
        CHECK(got[0] == pb);  // now anchored elsewhere: first
        CHECK(got[1] == pa);
        const Session* sa = n.cache_a.find("r1@x");
        REQUIRE(sa->remote_anchors.size() == 1);
        CHECK(sa->remote_anchors[0].anchor.addr == kB);
        CHECK(!sa->paths[0].relay);
        const Session* sb = n.cache_b.find("r1@x");
        REQUIRE(sb->paths.size() == 1);
        CHECK(sb->paths[0].relay);
        CHECK(sb->paths[0].coa.addr == kA);
        CHECK(sb->home_prefixes == std::vector<Prefix>{pb});
        const Session* e = n.cache_cmd.find("r1@x");
        CHECK(e->paths[0].mag_id == "hag-a");
        CHECK(counter(n.b, "gre_keys.in_use") == 1);  // its uplink key for A only
    }
}

TEST_CASE("CMD: an anchor that never answers; a CMD that cannot be reached", "[cmd]") {
    SECTION("anchor silent") {
        Net n;
        const Prefix pa = attach_at_a(n, "r1@x");
        n.down = {kA};
        n.router_at(n.b, kB, "r1@x", 2);
        CHECK(n.last_pba() == n.last_pba());
        const std::size_t answered = n.to_router.size();
        CHECK(n.cmd.cmd_transactions() == 1);
        n.tick(0, 1500);
        CHECK(n.to_router.size() == answered);  // not yet
        n.tick(2, 0);
        REQUIRE(n.to_router.size() == answered + 1);
        const auto got = hnps(n.last_pba()->options);
        REQUIRE(got.size() == 1);
        CHECK(got[0] != pa);
        CHECK(counter(n.cmd, "cmd.anchor_timeouts") == 1);
        CHECK(n.cmd.cmd_transactions() == 0);
        const Session* e = n.cache_cmd.find("r1@x");
        REQUIRE(e != nullptr);
        CHECK(e->home_prefixes.size() == 1);  // P_A dropped from the directory
        CHECK(n.cache_b.find("r1@x")->remote_anchors.empty());
    }
    SECTION("CMD unreachable") {
        Net n;
        n.down = {kCmd};
        n.router_at(n.a, kA, "r1@x", 1);
        CHECK(n.to_router.empty());
        n.tick(3, 100);
        REQUIRE(n.to_router.size() == 1);
        CHECK(hnps(n.last_pba()->options).size() == 1);
        CHECK(counter(n.a, "cmd.cmd_timeouts") == 1);
        // The registration is retried in the background, and succeeds when the CMD is back.
        n.down.clear();
        for (int i = 0; i < 20 && n.cache_cmd.find("r1@x") == nullptr; ++i) {
            n.tick(1);
        }
        CHECK(n.cache_cmd.find("r1@x") != nullptr);
        CHECK(n.to_router.size() == 1);  // no second PBA to the router
    }
}

TEST_CASE("CMD: the deadlines alone, at a quarter of the timeout (tick_central_db)", "[cmd]") {
    Net n;
    // timeout_ms 3000 (the default): checked every 750 ms; no central database role: never.
    CHECK(n.a.central_db_tick_ms() == 750);
    CHECK(n.cmd.central_db_tick_ms() == 750);
    BindingCache plain_cache{10};
    Lma plain{parse(R"(
lma_addresses: "2001:db8::e"
hnp_pools { name: "p" prefix: "2001:db8:500::/56" assign_length: 64 }
default_profile { hnp_pool: "p" }
allow_unknown_subscribers: true
allow_unknown_mags: true
)"),
              plain_cache};
    CHECK(plain.central_db_tick_ms() == 0);
    CHECK(plain.tick_central_db(n.t).empty());

    SECTION("MAAR: a held router PBA leaves at its deadline without the second's tick") {
        n.down = {kCmd};
        n.router_at(n.a, kA, "r1@x", 1);
        CHECK(n.to_router.empty());
        n.t.now_ms += 2900;
        n.pump(n.a.tick_central_db(n.t), kA);
        CHECK(n.to_router.empty());  // not yet
        n.t.now_ms += 100;
        n.pump(n.a.tick_central_db(n.t), kA);
        REQUIRE(n.to_router.size() == 1);
        CHECK(n.last_pba()->status == 0);
        CHECK(hnps(n.last_pba()->options).size() == 1);  // the local prefix
        CHECK(counter(n.a, "cmd.cmd_timeouts") == 1);
    }
    SECTION("CMD: an anchor that does not answer is given up at its deadline") {
        (void)attach_at_a(n, "r1@x");
        n.down = {kA};
        n.router_at(n.b, kB, "r1@x", 2);
        const std::size_t answered = n.to_router.size();
        REQUIRE(n.cmd.cmd_transactions() == 1);
        n.t.now_ms += 3000;
        n.pump(n.cmd.tick_central_db(n.t), kCmd);
        CHECK(n.cmd.cmd_transactions() == 0);
        CHECK(counter(n.cmd, "cmd.anchor_timeouts") == 1);
        CHECK(n.to_router.size() == answered + 1);
    }
}

TEST_CASE("CMD: the serving MAAR's registration expiring ends the anchors' relays", "[cmd]") {
    Net n;
    attach_at_a(n, "r1@x");
    n.router_at(n.b, kB, "r1@x", 2, 10);  // 40 s
    REQUIRE(n.cache_a.find("r1@x") != nullptr);
    n.down = {kCmd};  // B's refreshes are lost; then B dies entirely
    n.tick(30);
    n.down = {kB};
    n.tick(15);
    n.tick(5);
    CHECK(n.cache_cmd.find("r1@x") == nullptr);
    CHECK(counter(n.cmd, "cmd.expired") == 1);
    CHECK(n.cache_a.find("r1@x") == nullptr);
    CHECK(counter(n.a, "pool.p.in_use") == 0);
}

TEST_CASE("CMD: hostile PBUs and PBAs are counted and ignored, tables stay bounded", "[cmd]") {
    Net n;
    attach_at_a(n, "r1@x");
    std::mt19937 rng(14);
    auto rnd = [&](unsigned m) { return static_cast<unsigned>(rng() % m); };
    const std::vector<Ipv6Address> sources{kA, kB, kC, kRouter, ip("2001:db8::99"), kCmd};
    for (int i = 0; i < 6000; ++i) {
        const bool pbu = rnd(2) == 0;
        mh::Options opts;
        if (rnd(8) != 0) {
            std::string nai = rnd(4) == 0 ? "r1@x" : fmt::format("h{}@x", rnd(400));
            if (rnd(20) == 0) {
                nai = std::string(rnd(300), '\x01');
            }
            opts.push_back(mh::MobileNodeIdentifier{static_cast<std::uint8_t>(rnd(3)),
                                                    mh::Bytes(nai.begin(), nai.end())});
        }
        const int n_opts = static_cast<int>(rnd(6));
        for (int k = 0; k < n_opts; ++k) {
            Ipv6Address a{};
            a[0] = 0x20;
            a[1] = 0x01;
            a[2] = 0x0d;
            a[3] = 0xb8;
            a[4] = static_cast<std::uint8_t>(rnd(4));
            a[5] = static_cast<std::uint8_t>(rnd(3));
            a[15] = static_cast<std::uint8_t>(rnd(2) ? 0 : rnd(256));
            const auto len = static_cast<std::uint8_t>(rnd(3) == 0 ? rnd(140) : 64);
            switch (rnd(8)) {
                case 0:
                    opts.push_back(mh::LocalPrefix{len, a});
                    break;
                case 1:
                    opts.push_back(mh::AnchoredPrefix{len, a});
                    break;
                case 2:
                    opts.push_back(mh::PreviousMaarAddress{len, sources[rnd(6)], a});
                    break;
                case 3:
                    opts.push_back(mh::ServingMaarAddress{sources[rnd(6)]});
                    break;
                case 4:
                    opts.push_back(mh::GreKey{rnd(3000)});
                    break;
                case 5: {
                    const std::string m = rnd(2) ? "hag-b" : "hag-x";
                    opts.push_back(mh::MagIdentifier{1, mh::Bytes(m.begin(), m.end())});
                    break;
                }
                case 6:
                    opts.push_back(mh::Timestamp{n.t.timestamp + rnd(2) * (1ull << 40)});
                    break;
                default:
                    opts.push_back(mh::HomeNetworkPrefix{len, a});
                    break;
            }
        }
        mh::Message m;
        if (pbu) {
            mh::BindingUpdate bu;
            bu.sequence = static_cast<std::uint16_t>(rnd(65536));
            bu.proxy = rnd(10) != 0;
            bu.ack = true;
            bu.lifetime = static_cast<std::uint16_t>(rnd(3) == 0 ? 0 : rnd(1000));
            bu.options = opts;
            m.body = bu;
        } else {
            mh::BindingAcknowledgement ba;
            ba.status = static_cast<std::uint8_t>(rnd(3) == 0 ? 135 : rnd(256));
            ba.sequence = static_cast<std::uint16_t>(rnd(65536));
            ba.lifetime = static_cast<std::uint16_t>(rnd(1000));
            ba.proxy = true;
            ba.options = opts;
            m.body = ba;
        }
        auto bytes = mh::encode(m);
        const Ipv6Address src = sources[rnd(6)];
        Lma* dst = rnd(2) == 0 ? &n.cmd : (rnd(2) == 0 ? &n.a : &n.b);
        const Ipv6Address dst_addr = dst == &n.cmd ? kCmd : (dst == &n.a ? kA : kB);
        if (src == dst_addr) {
            continue;
        }
        n.pump(dst->receive(bytes, peer(dst_addr, src), n.t), dst_addr);
        if (i % 500 == 0) {
            n.tick(1);
        }
    }
    CHECK(n.cache_cmd.size() <= 50);
    CHECK(n.cmd.cmd_relays().size() <= 50);
    CHECK(n.cmd.cmd_transactions() <= 50);
    CHECK(n.a.held_replies() <= 50);
    CHECK(n.cache_a.size() <= 50);
    CHECK(counter(n.cmd, "cmd.pbu_unknown_maar") > 0);
    CHECK(counter(n.cmd, "cmd.pbu_malformed") > 0);
    CHECK(counter(n.a, "cmd.relay_wrong_source") + counter(n.b, "cmd.relay_wrong_source") > 0);
    // Let everything expire: every table empties.
    for (int i = 0; i < 8; ++i) {
        n.tick(600);
    }
    CHECK(n.cmd.cmd_transactions() == 0);
    CHECK(n.a.held_replies() == 0);
    CHECK(n.b.held_replies() == 0);
}

TEST_CASE("CMD: a MAAR restarted from its store registers its sessions at the CMD again", "[cmd]") {
    // r1 attached at A, then moved to B: B serves it and relays A's prefix from A. B restarts
    // (a fresh Lma restoring B's saved binding): it claims the relay key again, registers at
    // the CMD with that key and its own prefix, and the CMD's directory keeps pointing at B.
    Net n;
    const Prefix pa = attach_at_a(n, "r1@x");
    n.router_at(n.b, kB, "r1@x", 2);
    const Session saved = *n.cache_b.find("r1@x");
    REQUIRE(saved.remote_anchors.size() == 1);
    CHECK(saved.remote_anchors[0].prefix == pa);
    const std::uint32_t relay_key = saved.remote_anchors[0].downlink_key;
    REQUIRE(relay_key != 0);

    BindingCache cache2{50};
    Lma b2{maar_config("hag-b", "2001:db8::b", "2001:db8:200::/56", 1000, 1999), cache2};
    REQUIRE(b2.restore(saved, n.t).ok());
    CHECK(counter(b2, "gre_keys.in_use") == 2);  // the router's uplink key and the relay key

    // Whatever the restarted MAAR and the CMD say to each other (a sequence resync included),
    // a few rounds at most.
    std::vector<Outbound> from_b2 = b2.tick(n.t);
    const mh::BindingUpdate* first = nullptr;
    for (const auto& o : from_b2) {
        if (o.to.remote == kCmd && bu_of(o) != nullptr && first == nullptr) {
            first = bu_of(o);
            REQUIRE(mh::find_option<mh::GreKey>(first->options) != nullptr);
            CHECK(mh::find_option<mh::GreKey>(first->options)->key == relay_key);
            std::vector<Prefix> local;
            for (const auto* lp : mh::find_options<mh::LocalPrefix>(first->options)) {
                local.push_back(Prefix{lp->prefix, lp->prefix_length});
            }
            REQUIRE(local.size() == 1);
            CHECK(local[0] != pa);  // B's own prefix, not the one A anchors
            CHECK(std::find(saved.home_prefixes.begin(), saved.home_prefixes.end(), local[0]) !=
                  saved.home_prefixes.end());
        }
    }
    REQUIRE(first != nullptr);
    for (int round = 0; round < 5 && !from_b2.empty(); ++round) {
        std::vector<Outbound> next;
        for (const auto& o : from_b2) {
            if (o.to.remote != kCmd) {
                continue;
            }
            for (auto& back : n.cmd.receive(mh::encode(o.message), peer(kCmd, kB), n.t)) {
                if (back.to.remote == kB) {
                    auto more = b2.receive(mh::encode(back.message), peer(kB, kCmd), n.t);
                    next.insert(next.end(), std::make_move_iterator(more.begin()),
                                std::make_move_iterator(more.end()));
                }
            }
        }
        // A resync (135: the CMD had B's registration with a newer sequence number) is resent
        // at the MAG role's next tick.
        auto ticked = b2.tick(n.t);
        next.insert(next.end(), std::make_move_iterator(ticked.begin()),
                    std::make_move_iterator(ticked.end()));
        from_b2 = std::move(next);
    }
    CHECK(counter(b2, "cmd.registered_at_cmd") == 1);
    // Its sequence numbers start again, so the CMD's 135 (RFC 6275 §11.7.1) costs one round.
    CHECK(counter(b2, "mag.sequence_resync") == 1);
    const Session* e = n.cache_cmd.find("r1@x");
    REQUIRE(e != nullptr);
    REQUIRE(!e->paths.empty());
    CHECK(e->paths[0].mag_id == "hag-b");
    CHECK(e->paths[0].downlink_gre_key == relay_key);
    CHECK(cache2.find("r1@x") != nullptr);
}
