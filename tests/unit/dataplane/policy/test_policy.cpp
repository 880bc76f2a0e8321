// Flow policy in the data plane (policy/): profiles compiled to rte_acl, classification of real
// packets checked against the policy model (hag/policy/policy.hpp) as the reference, the
// downlink stage's choice (pinned path, DROP counted per rule, STRIPE, fallback when a path goes
// down), the uplink check, RCU swaps of a profile under a session, and the programmer's profile
// handling (all or nothing, digest). Real EAL, real mbufs, real tables.
#include <fmt/format.h>
#include <google/protobuf/util/message_differencer.h>
#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <set>
#include <vector>

#include "../eal_fixture.hpp"
#include "hag/v1/dataplane_digest.hpp"
#include "hag/v1/policy_dp.hpp"
#include "pipeline/downlink_encap.hpp"
#include "pipeline/packet.hpp"
#include "pipeline/uplink_decap.hpp"
#include "policy/classify.hpp"
#include "policy/policy_table.hpp"
#include "programmer/programmer.hpp"
#include "runtime/text.hpp"

using namespace hag::dp;
namespace pol = hag::policy;
using Bytes = std::vector<std::uint8_t>;

namespace {

const MacAddr kGwMac{0x02, 0, 0, 0, 0, 0x01};
const MacAddr kCpeMac{0x02, 0, 0, 0, 0, 0x02};

// One packet's inner fields; `v6` picks the family. Addresses: 16 bytes (IPv6) or the first
// four (IPv4).
struct Pkt {
    bool v6 = true;
    std::array<std::uint8_t, 16> src{}, dst{};
    std::uint8_t proto = 17;
    std::uint16_t sport = 0, dport = 0;
    std::uint8_t dscp = 0;
    std::uint32_t spi = 0;
};

void put16(Bytes& b, std::uint16_t v) {
    b.push_back(static_cast<std::uint8_t>(v >> 8));
    b.push_back(static_cast<std::uint8_t>(v));
}
void put32(Bytes& b, std::uint32_t v) {
    put16(b, static_cast<std::uint16_t>(v >> 16));
    put16(b, static_cast<std::uint16_t>(v));
}

// Ethernet + IP + L4 (8 bytes of TCP/UDP/ESP/AH-ish header, 16 bytes payload).
Bytes frame(const Pkt& p) {
    Bytes l4;
    if (p.proto == 50) {
        put32(l4, p.spi);
        put32(l4, 1);
    } else if (p.proto == 51) {
        l4 = {59, 4, 0, 0};
        put32(l4, p.spi);
        put32(l4, 1);
    } else {
        put16(l4, p.sport);
        put16(l4, p.dport);
        put32(l4, 0);
    }
    if (p.proto == 6) {
        l4.resize(20, 0);
    }
    l4.resize(l4.size() + 16, 0x5a);
    Bytes b{0x02, 0, 0, 0, 0, 0x03, 0x02, 0, 0, 0, 0, 0x04};
    if (p.v6) {
        put16(b, 0x86DD);
        b.push_back(static_cast<std::uint8_t>(0x60 | (p.dscp >> 2)));
        b.push_back(static_cast<std::uint8_t>((p.dscp & 3) << 6));
        put16(b, 0);
        put16(b, static_cast<std::uint16_t>(l4.size()));
        b.push_back(p.proto);
        b.push_back(64);
        b.insert(b.end(), p.src.begin(), p.src.end());
        b.insert(b.end(), p.dst.begin(), p.dst.end());
    } else {
        put16(b, 0x0800);
        b.push_back(0x45);
        b.push_back(static_cast<std::uint8_t>(p.dscp << 2));
        put16(b, static_cast<std::uint16_t>(20 + l4.size()));
        put32(b, 0);
        b.push_back(64);
        b.push_back(p.proto);
        put16(b, 0);
        b.insert(b.end(), p.src.begin(), p.src.begin() + 4);
        b.insert(b.end(), p.dst.begin(), p.dst.begin() + 4);
    }
    b.insert(b.end(), l4.begin(), l4.end());
    return b;
}

hag::net::Ipv6Address addr_of(const Pkt& p, const std::array<std::uint8_t, 16>& a) {
    hag::net::Ipv6Address out{};
    if (p.v6) {
        std::copy(a.begin(), a.end(), out.begin());
    } else {
        out[10] = out[11] = 0xff;
        std::copy(a.begin(), a.begin() + 4, out.begin() + 12);
    }
    return out;
}

// The model's view of a downlink packet (the subscriber is the destination).
pol::FlowKey downlink_key(const Pkt& p) {
    pol::FlowKey k;
    k.local = addr_of(p, p.dst);
    k.remote = addr_of(p, p.src);
    k.protocol = p.proto;
    if (p.proto == 6 || p.proto == 17) {
        k.local_port = p.dport;
        k.remote_port = p.sport;
    }
    k.dscp = p.dscp;
    if (p.proto == 50 || p.proto == 51) {
        k.spi = p.spi;
    }
    return k;
}

std::array<std::uint8_t, 16> v6(std::uint16_t g2, std::uint16_t last) {
    return {0x20,
            0x01,
            0x0d,
            0xb8,
            static_cast<std::uint8_t>(g2 >> 8),
            static_cast<std::uint8_t>(g2),
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            static_cast<std::uint8_t>(last >> 8),
            static_cast<std::uint8_t>(last)};
}
std::array<std::uint8_t, 16> v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
    return {a, b, c, d};
}

pol::Classifier cls(std::optional<std::uint8_t> proto, std::vector<pol::PortRange> lp = {},
                    std::vector<pol::PortRange> rp = {}) {
    pol::Classifier c;
    c.protocol = proto;
    c.local_ports = std::move(lp);
    c.remote_ports = std::move(rp);
    return c;
}

// RED = DSL (ATT 3), BLUE = LTE (ATT 8), WLAN (ATT 4), and a label on If-Label 7.
pol::Policy base_policy() {
    pol::Policy p;
    p.labels = {{"RED", std::nullopt, 3},
                {"BLUE", std::nullopt, 8},
                {"WLAN", std::nullopt, 4},
                {"GOLD", 7, std::nullopt}};
    return p;
}

pol::Step access(std::size_t label) {
    return {pol::Step::Kind::kAccess, label};
}
const pol::Step kDrop{pol::Step::Kind::kDrop, 0};
const pol::Step kStripe{pol::Step::Kind::kStripe, 0};

// The table: HTTP BLUE, RED, DROP; IPsec RED, BLUE, DROP; SSH DROP; SIP/RTP BLUE, DROP.
pol::Policy table_policy() {
    pol::Policy p = base_policy();
    p.applications = {
        {"HTTP", {cls(6, {}, {{80, 80}, {443, 443}})}},
        {"IPsec", {cls(50), cls(17, {}, {{500, 500}, {4500, 4500}})}},
        {"SSH", {cls(6, {}, {{22, 22}})}},
        {"SIP/RTP", {cls(17, {}, {{5060, 5061}}), cls(17, {{10000, 20000}}, {})}},
    };
    pol::Profile prof;
    prof.name = "home";
    prof.rules = {{0, {access(1), access(0), kDrop}, 0},
                  {1, {access(0), access(1), kDrop}, 0},
                  {2, {kDrop}, 0},
                  {3, {access(1), kDrop}, 0}};
    p.profiles = {prof};
    return p;
}

// Overlapping rules with priorities, prefixes both ways, DSCP and SPI.
pol::Policy overlap_policy() {
    pol::Policy p = base_policy();
    pol::Classifier web6 = cls(6, {}, {{80, 80}});
    web6.remote_prefixes = {pol::parse_prefix("2001:db8:9999::/48").value()};
    pol::Classifier web4 = cls(6, {}, {{80, 90}});
    web4.remote_prefixes = {pol::parse_prefix("198.51.100.0/24").value()};
    pol::Classifier lan = cls(std::nullopt);
    lan.local_prefixes = {pol::parse_prefix("2001:db8:1:0:8000::/65").value(),
                          pol::parse_prefix("192.0.2.128/25").value()};
    pol::Classifier ef = cls(std::nullopt);
    ef.dscp = {46, 34, 35, 36};
    pol::Classifier esp = cls(50);
    esp.spi = 0x1234;
    pol::Classifier ah = cls(51);
    ah.spi = 0x99;
    p.applications = {
        {"web", {web6, web4}}, {"tcp-any", {cls(6)}},
        {"lan", {lan}},        {"voice", {ef}},
        {"ipsec", {esp, ah}},  {"high-ports", {cls(17, {{30000, 65535}}, {{1024, 65535}})}},
    };
    pol::Profile prof;
    prof.name = "overlap";
    prof.rules = {{1, {access(2), kStripe}, 0},           // tcp-any, declared first, priority 0
                  {0, {access(1), access(0), kDrop}, 5},  // web: above tcp-any by priority
                  {2, {access(3), kDrop}, 1},
                  {3, {access(1), kDrop}, 7},
                  {4, {access(0), kDrop}, 0},
                  {5, {kDrop}, -2}};
    pol::sort_rules(prof);
    p.profiles = {prof};
    return p;
}

std::unique_ptr<CompiledProfile> compile(const pol::Policy& p, bool drop_forbidden = false) {
    auto c = compile_profile(pol::to_dp_profile(p, p.profiles[0], drop_forbidden));
    REQUIRE(c.ok());
    return std::move(*c);
}

// Paths: BID 1 DSL (ATT 3), BID 2 LTE (ATT 8), BID 3 WLAN (ATT 4, If-Label 7); IPv6 CoAs.
SessionConfig session(std::uint16_t policy_slot, std::vector<bool> live = {true, true, true}) {
    SessionConfig c;
    c.policy = policy_slot;
    c.n_paths = static_cast<std::uint8_t>(live.size());
    const std::uint8_t att[] = {3, 8, 4};
    for (std::size_t i = 0; i < live.size(); ++i) {
        auto& p = c.paths[i];
        p.bid = static_cast<std::uint16_t>(i + 1);
        p.live = live[i];
        p.access_technology = att[i];
        p.if_label = i == 2 ? 7 : 0;
        p.downlink_key = static_cast<std::uint32_t>(0x100 + i + 1);
        p.weight = 1000;
        p.local = IpAddr::v6(v6(0xff, 1));
        p.coa = IpAddr::v6(v6(0xaaaa, static_cast<std::uint16_t>(i + 1)));
        p.port = 1;
        p.src_mac = kGwMac;
        p.next_hop_mac = kCpeMac;
    }
    c.n_prefixes = 2;
    c.prefixes[0] = {IpAddr::v6(v6(1, 0)), 64};
    c.prefixes[1] = {IpAddr::v4(192, 0, 2, 0), 24};
    return c;
}

std::vector<pol::Access> accesses(const SessionConfig& c) {
    std::vector<pol::Access> out;
    for (unsigned i = 0; i < c.n_paths; ++i) {
        out.push_back(
            {c.paths[i].bid, c.paths[i].if_label, c.paths[i].access_technology, c.paths[i].live});
    }
    return out;
}

// The data plane's decision for a packet: rule index, verdict and BID (0 unless pinned).
struct DpDecision {
    int rule = -1;
    PolicyVerdict verdict = PolicyVerdict::kStripe;
    std::uint16_t bid = 0;
};

DpDecision dp_decide(const CompiledProfile& prof, const SessionConfig& cfg, const Pkt& p) {
    rte_mbuf* m = test::mbuf_from(frame(p));
    REQUIRE(m != nullptr);
    const L2Info l2 = parse_l2(m);
    const L3Info l3 = parse_l3(m, l2.l3_offset, l2.ether_type);
    REQUIRE(l3.ok);
    PolicyKey key;
    policy_key(rte_pktmbuf_mtod_offset(m, const std::uint8_t*, l2.l3_offset), l3, true, key);
    rte_pktmbuf_free(m);
    DpDecision d;
    d.rule = prof.classify(key);
    if (d.rule >= 0) {
        unsigned path = 0;
        d.verdict = policy_resolve(prof.rules[static_cast<std::size_t>(d.rule)], cfg, path);
        if (d.verdict == PolicyVerdict::kPath) {
            d.bid = cfg.paths[path].bid;
        }
    }
    return d;
}

void check_against_model(const pol::Policy& model, const CompiledProfile& prof,
                         const SessionConfig& cfg, const Pkt& p) {
    const pol::Decision want =
        pol::decide(model, model.profiles[0], downlink_key(p), accesses(cfg));
    const DpDecision got = dp_decide(prof, cfg, p);
    INFO("proto " << int(p.proto) << " sport " << p.sport << " dport " << p.dport << " dscp "
                  << int(p.dscp) << " spi " << p.spi << " v6 " << p.v6);
    REQUIRE(got.rule == want.rule);
    switch (want.kind) {
        case pol::Decision::Kind::kPath:
            REQUIRE(got.verdict == PolicyVerdict::kPath);
            REQUIRE(got.bid == want.bid);
            break;
        case pol::Decision::Kind::kDrop:
            REQUIRE(got.verdict == PolicyVerdict::kDrop);
            break;
        case pol::Decision::Kind::kStripe:
            REQUIRE(got.verdict == PolicyVerdict::kStripe);
            break;
    }
}

// A random packet toward the session (2001:db8:1::/64 or 192.0.2.0/24), with field values
// drawn near the rules' edges.
Pkt random_packet(std::mt19937& rng) {
    auto pick = [&](std::initializer_list<std::uint32_t> v) {
        return *(v.begin() + std::uniform_int_distribution<std::size_t>(0, v.size() - 1)(rng));
    };
    Pkt p;
    p.v6 = pick({0, 1}) == 1;
    if (p.v6) {
        p.dst = v6(1, static_cast<std::uint16_t>(pick({1, 0x42, 0x8000, 0xffff})));
        p.dst[8] = static_cast<std::uint8_t>(pick({0, 0x7f, 0x80, 0xff}));
        p.src = v6(static_cast<std::uint16_t>(pick({0x9999, 0x9998, 0x1234})), 7);
    } else {
        p.dst = v4(192, 0, 2, static_cast<std::uint8_t>(pick({1, 127, 128, 200, 255})));
        p.src = v4(198, 51, static_cast<std::uint8_t>(pick({99, 100, 101})), 9);
    }
    p.proto = static_cast<std::uint8_t>(pick({6, 17, 50, 51, 1, 132}));
    p.sport = static_cast<std::uint16_t>(
        pick({22, 79, 80, 81, 90, 91, 443, 500, 1023, 1024, 4500, 5060, 5061, 5062, 40000}));
    p.dport = static_cast<std::uint16_t>(
        pick({9999, 10000, 15000, 20000, 20001, 29999, 30000, 65535, 80}));
    p.dscp = static_cast<std::uint8_t>(pick({0, 33, 34, 36, 37, 46, 63}));
    p.spi = pick({0x1234, 0x1235, 0x99, 0});
    return p;
}

}  // namespace

TEST_CASE("policy: rte_acl classification equals the policy model on random packets", "[policy]") {
    test::ensure_eal();
    std::mt19937 rng(8);
    for (const pol::Policy& model : {table_policy(), overlap_policy()}) {
        auto prof = compile(model);
        for (const auto& live : std::vector<std::vector<bool>>{{true, true, true},
                                                               {false, true, true},
                                                               {true, false, false},
                                                               {false, false, false}}) {
            const SessionConfig cfg = session(1, live);
            for (int i = 0; i < 3000; ++i) {
                check_against_model(model, *prof, cfg, random_packet(rng));
            }
        }
    }
}

TEST_CASE("policy: priorities and overlaps decide which rule wins", "[policy]") {
    test::ensure_eal();
    const pol::Policy model = overlap_policy();
    auto prof = compile(model);
    const SessionConfig cfg = session(1);
    auto app_of = [&](const Pkt& p) {
        const DpDecision d = dp_decide(*prof, cfg, p);
        return d.rule < 0 ? std::string("-") : prof->applications[static_cast<std::size_t>(d.rule)];
    };
    Pkt web;  // TCP from 2001:db8:9999::7 port 80: web (priority 5) above tcp-any (0)
    web.proto = 6;
    web.src = v6(0x9999, 7);
    web.dst = v6(1, 0x42);
    web.sport = 80;
    web.dport = 40000;
    CHECK(app_of(web) == "web");
    web.sport = 81;  // not web's port: tcp-any
    CHECK(app_of(web) == "tcp-any");
    web.dscp = 46;  // voice (priority 7) beats both
    CHECK(app_of(web) == "voice");
    Pkt w4 = web;  // IPv4 web: 198.51.100.0/24 ports 80-90
    w4.v6 = false;
    w4.dscp = 0;
    w4.src = v4(198, 51, 100, 9);
    w4.dst = v4(192, 0, 2, 1);
    w4.sport = 90;
    CHECK(app_of(w4) == "web");
    w4.src = v4(198, 51, 101, 9);
    CHECK(app_of(w4) == "tcp-any");
    w4.dst = v4(192, 0, 2, 200);  // local 192.0.2.128/25: lan (priority 1) beats tcp-any
    CHECK(app_of(w4) == "lan");
    Pkt esp;
    esp.proto = 50;
    esp.src = v6(0x1234, 7);
    esp.dst = v6(1, 1);
    esp.spi = 0x1234;
    CHECK(app_of(esp) == "ipsec");
    esp.spi = 0x1235;
    CHECK(app_of(esp) == "-");  // no rule: striped
    esp.proto = 51;
    esp.spi = 0x99;
    CHECK(app_of(esp) == "ipsec");  // AH SPI
}

namespace {

struct Stage {
    std::unique_ptr<Rcu> rcu;
    std::unique_ptr<SessionTable> t;
    std::unique_ptr<PolicyTable> policies;
    DownlinkCtx dl;
    std::uint16_t slot = 0;

    explicit Stage(const pol::Policy& model, std::vector<bool> live = {true, true}) {
        test::ensure_eal();
        static int n = 0;
        rcu = std::move(Rcu::create(2).value());
        t = std::move(SessionTable::create("pol" + std::to_string(n++), 16, *rcu).value());
        policies = std::make_unique<PolicyTable>(*rcu);
        auto r = policies->publish(compile(model));
        REQUIRE(r.ok());
        slot = r->first;
        dl.sessions = dl.sessions_rw = t.get();
        dl.policies = policies.get();
        REQUIRE(t->upsert(3, session(slot, live)).ok());
    }
    ~Stage() {
        t.reset();
        rcu->synchronize();
    }
    const CompiledProfile& profile() const { return *policies->get(slot); }

    // Sends `count` copies of `p`; returns the downlink keys they left with (0 = dropped).
    std::vector<std::uint32_t> send(const Pkt& p, int count = 1) {
        std::vector<std::uint32_t> keys;
        std::vector<rte_mbuf*> burst;
        for (int i = 0; i < count; ++i) {
            burst.push_back(test::mbuf_from(frame(p)));
        }
        const auto kept = downlink_encap(dl, burst.data(), static_cast<std::uint16_t>(count));
        for (std::uint16_t i = 0; i < kept; ++i) {
            const auto* d = rte_pktmbuf_mtod(burst[i], const std::uint8_t*);
            const std::uint8_t* gre = d + 14 + 40;
            keys.push_back(std::uint32_t{gre[4]} << 24 | std::uint32_t{gre[5]} << 16 |
                           std::uint32_t{gre[6]} << 8 | gre[7]);
            rte_pktmbuf_free(burst[i]);
        }
        keys.resize(static_cast<std::size_t>(count), 0);
        return keys;
    }
    void set_live(std::vector<bool> live) { REQUIRE(t->upsert(3, session(slot, live)).ok()); }
};

Pkt tcp_from(std::uint16_t sport) {
    Pkt p;
    p.proto = 6;
    p.src = v6(0x9999, 1);
    p.dst = v6(1, 0x42);
    p.sport = sport;
    p.dport = 40000;
    return p;
}
Pkt udp_from(std::uint16_t sport) {
    Pkt p = tcp_from(sport);
    p.proto = 17;
    return p;
}

constexpr std::uint32_t kDsl = 0x101, kLte = 0x102;

std::set<std::uint32_t> distinct(const std::vector<std::uint32_t>& v) {
    return {v.begin(), v.end()};
}

}  // namespace

TEST_CASE("policy: the downlink stage pins, drops (counted per rule) and stripes", "[policy]") {
    Stage s(table_policy());
    // HTTP from port 80 -> LTE (BLUE first) only.
    CHECK(distinct(s.send(tcp_from(80), 64)) == std::set<std::uint32_t>{kLte});
    // SSH -> dropped, counted on rule 3 (SSH) and the session, and as the stage's policy_drop.
    CHECK(distinct(s.send(tcp_from(22), 5)) == std::set<std::uint32_t>{0});
    CHECK(s.profile().counters[2].drops.load() == 5);
    CHECK(s.profile().counters[2].hits.load() == 5);
    CHECK(s.t->state(3).policy_drops.load() == 5);
    CHECK(s.dl.drops[static_cast<std::size_t>(DownlinkDrop::kPolicyDrop)].read() == 5);
    // SIP (UDP from 5060) -> LTE; IPsec ESP -> DSL.
    CHECK(distinct(s.send(udp_from(5060), 64)) == std::set<std::uint32_t>{kLte});
    Pkt esp = tcp_from(0);
    esp.proto = 50;
    esp.spi = 7;
    CHECK(distinct(s.send(esp, 16)) == std::set<std::uint32_t>{kDsl});
    CHECK(s.profile().counters[0].hits.load() == 64);
    CHECK(s.profile().counters[3].hits.load() == 64);
    CHECK(s.t->state(3).policy_pinned.load() == 64 + 64 + 16);
    // Anything else is striped over both paths.
    CHECK(distinct(s.send(udp_from(7777), 64)) == std::set<std::uint32_t>{kDsl, kLte});
}

TEST_CASE("policy: a pinned flow is never striped while the rest of the session is", "[policy]") {
    Stage s(table_policy());
    // Interleave VoIP (pinned to LTE) with bulk traffic (striped) in the same bursts.
    std::vector<rte_mbuf*> burst;
    std::vector<bool> voip;
    for (int i = 0; i < 32; ++i) {
        const bool v = i % 3 == 0;
        voip.push_back(v);
        Pkt p = v ? udp_from(5060) : udp_from(static_cast<std::uint16_t>(7000 + i));
        if (!v) {
            p.dport = 1000;  // no rule
        }
        burst.push_back(test::mbuf_from(frame(p)));
    }
    std::set<std::uint32_t> bulk_keys;
    for (int round = 0; round < 20; ++round) {
        std::vector<rte_mbuf*> b;
        for (std::size_t i = 0; i < burst.size(); ++i) {
            b.push_back(rte_pktmbuf_copy(burst[i], test::pool(), 0, UINT32_MAX));
        }
        REQUIRE(downlink_encap(s.dl, b.data(), static_cast<std::uint16_t>(b.size())) == b.size());
        for (std::size_t i = 0; i < b.size(); ++i) {
            const auto* d = rte_pktmbuf_mtod(b[i], const std::uint8_t*);
            const std::uint32_t key = d[14 + 40 + 7] | 0x100u;
            if (voip[i]) {
                REQUIRE(key == kLte);
            } else {
                bulk_keys.insert(key);
            }
            rte_pktmbuf_free(b[i]);
        }
    }
    for (auto* m : burst) {
        rte_pktmbuf_free(m);
    }
    CHECK(bulk_keys == std::set<std::uint32_t>{kDsl, kLte});
}

TEST_CASE("policy: a path going down moves flows to the next preference on the next packet",
          "[policy]") {
    Stage s(table_policy());
    CHECK(s.send(tcp_from(80))[0] == kLte);
    CHECK(s.send(udp_from(5060))[0] == kLte);
    s.set_live({true, false});                 // LTE down
    CHECK(s.send(tcp_from(80))[0] == kDsl);    // HTTP: BLUE, RED -> RED
    CHECK(s.send(udp_from(5060))[0] == 0);     // SIP: BLUE, DROP -> dropped
    CHECK(s.send(udp_from(7777))[0] == kDsl);  // the rest: the live path
    s.set_live({false, true});                 // DSL down, LTE up
    Pkt esp = tcp_from(0);
    esp.proto = 50;
    CHECK(s.send(esp)[0] == kLte);  // IPsec: RED, BLUE -> BLUE
    CHECK(s.send(tcp_from(80))[0] == kLte);
    s.set_live({true, true});
    CHECK(s.send(esp)[0] == kDsl);
    CHECK(s.send(udp_from(5060))[0] == kLte);
    CHECK(s.profile().counters[3].drops.load() == 1);
}

TEST_CASE("policy: a profile replaced under its sessions applies from the next packet (RCU)",
          "[policy]") {
    Stage s(table_policy());
    CHECK(s.send(tcp_from(22))[0] == 0);
    // New version of "home": SSH on DSL.
    pol::Policy next = table_policy();
    next.profiles[0].rules[2].preference = {access(0), kDrop};
    auto r = s.policies->publish(compile(next));
    REQUIRE(r.ok());
    CHECK(r->first == s.slot);
    REQUIRE(r->second != nullptr);
    s.policies->retire(std::move(r->second));  // freed once the workers were quiescent
    s.rcu->quiescent(0);
    CHECK(s.send(tcp_from(22))[0] == kDsl);
    s.policies->remove("home");
    CHECK(s.policies->get(s.slot) == nullptr);
    CHECK(distinct(s.send(tcp_from(22), 32)) == std::set<std::uint32_t>{kDsl, kLte});  // no policy
    s.rcu->synchronize();
}

TEST_CASE("policy: a packet that falls back from the fast form obeys the config published now",
          "[policy][fast]") {
    // The session one way without a policy has the fast downlink form; with the policy it has
    // none. A packet whose session still looked fast (its prefix's hint) while the writer was
    // rewriting the form (odd version) is refused by the form's sequence lock and must be
    // classified under the config published now: SSH is dropped, not sent.
    Stage s(table_policy());
    REQUIRE(s.t->upsert(3, session(0, {true, false})).ok());
    FastDownlink form;
    REQUIRE(s.t->fast_form(3, form));
    SessionHot& hot = s.t->hot(3);
    std::array<std::uint64_t, kFastMetaWords> meta{};
    for (std::size_t i = 0; i < meta.size(); ++i) {
        meta[i] = hot.fast_meta[i].load();
    }
    CHECK(s.send(tcp_from(22))[0] == kDsl);  // the fast form: no policy
    REQUIRE(s.t->upsert(3, session(s.slot, {true, true})).ok());
    REQUIRE_FALSE(s.t->fast_form(3, form));
    // The writer caught in the middle of a rewrite of an enabled form.
    for (std::size_t i = 0; i < meta.size(); ++i) {
        hot.fast_meta[i].store(meta[i]);
    }
    hot.fast_version.store(hot.fast_version.load() + 1);
    s.t->rewrite_destination_hint(3, true);
    REQUIRE_FALSE(s.t->fast_form(3, form));
    CHECK(distinct(s.send(tcp_from(22), 4)) == std::set<std::uint32_t>{0});
    CHECK(s.t->state(3).policy_drops.load() == 4);
    CHECK(distinct(s.send(tcp_from(80), 8)) == std::set<std::uint32_t>{kLte});  // pinned
    CHECK(s.dl.events[static_cast<std::size_t>(DownlinkEvent::kFastForm)].read() == 1);
}

TEST_CASE("policy: uplink on a path the rule does not list is forbidden", "[policy]") {
    const pol::Policy model = table_policy();
    auto prof = compile(model, true);
    CHECK(prof->drop_forbidden_uplink);
    const SessionConfig cfg = session(1);
    // HTTP lists BLUE and RED: both allowed; WLAN (path 3) not.
    CHECK(policy_allows(prof->rules[0], cfg.paths[0]));
    CHECK(policy_allows(prof->rules[0], cfg.paths[1]));
    CHECK_FALSE(policy_allows(prof->rules[0], cfg.paths[2]));
    // SSH (DROP): no path allowed. SIP: only LTE.
    CHECK_FALSE(policy_allows(prof->rules[2], cfg.paths[1]));
    CHECK(policy_allows(prof->rules[3], cfg.paths[1]));
    CHECK_FALSE(policy_allows(prof->rules[3], cfg.paths[0]));
    // A STRIPE rule allows any path.
    auto ov = compile(overlap_policy());
    for (std::size_t i = 0; i < ov->rules.size(); ++i) {
        if (ov->rules[i].terminal == PolicyTerminal::kStripe) {
            CHECK(policy_allows(ov->rules[i], cfg.paths[0]));
        }
    }
    // The uplink key is built from the subscriber's side: source = local.
    Pkt up;
    up.proto = 6;
    up.src = v6(1, 0x42);
    up.dst = v6(0x9999, 1);
    up.sport = 40000;
    up.dport = 22;
    rte_mbuf* m = test::mbuf_from(frame(up));
    const L2Info l2 = parse_l2(m);
    const L3Info l3 = parse_l3(m, l2.l3_offset, l2.ether_type);
    PolicyKey key;
    policy_key(rte_pktmbuf_mtod_offset(m, const std::uint8_t*, l2.l3_offset), l3, false, key);
    rte_pktmbuf_free(m);
    CHECK(prof->classify(key) == 2);  // SSH
}

TEST_CASE("policy: hostile and odd packets classify without ports, never out of bounds",
          "[policy][hostile]") {
    test::ensure_eal();
    auto prof = compile(table_policy());
    std::mt19937 rng(3);
    for (int i = 0; i < 2000; ++i) {
        Pkt p = random_packet(rng);
        Bytes b = frame(p);
        // Truncate the L4 header (fix the IP lengths so the L3 header stays valid).
        const std::size_t l3 = 14, hl = p.v6 ? 40 : 20;
        const std::size_t keep = std::uniform_int_distribution<std::size_t>(0, 7)(rng);
        b.resize(l3 + hl + keep);
        if (p.v6) {
            b[l3 + 4] = 0;
            b[l3 + 5] = static_cast<std::uint8_t>(keep);
            // Sometimes an extension header chain that runs off the end.
            if (i % 5 == 0) {
                b[l3 + 6] = static_cast<std::uint8_t>(i % 2 == 0 ? 0 : 44);
            }
        } else {
            b[l3 + 2] = 0;
            b[l3 + 3] = static_cast<std::uint8_t>(hl + keep);
            if (i % 7 == 0) {
                b[l3 + 6] = 0x00;  // a later fragment
                b[l3 + 7] = 0x10;
            }
        }
        rte_mbuf* m = test::mbuf_from(b);
        const L2Info l2 = parse_l2(m);
        const L3Info l3i = parse_l3(m, l2.l3_offset, l2.ether_type);
        REQUIRE(l3i.ok);
        PolicyKey key;
        policy_key(rte_pktmbuf_mtod_offset(m, const std::uint8_t*, l2.l3_offset), l3i, true, key);
        if (keep < 4) {
            CHECK(key.local_port == 0);
            CHECK(key.remote_port == 0);
        }
        (void)prof->classify(key);
        rte_pktmbuf_free(m);
    }
}

TEST_CASE("policy: 1,000 rules compile into one context and classify", "[policy]") {
    test::ensure_eal();
    pol::Policy p = base_policy();
    pol::Profile prof;
    prof.name = "big";
    for (int i = 0; i < 1000; ++i) {
        pol::Classifier c = cls(
            17, {}, {{static_cast<std::uint16_t>(1000 + i), static_cast<std::uint16_t>(1000 + i)}});
        c.remote_prefixes = {pol::parse_prefix(fmt::format("2001:db8:{:x}::/48", i + 1)).value()};
        p.applications.push_back({fmt::format("app{}", i), {c}});
        prof.rules.push_back(
            {static_cast<std::size_t>(i), {access(static_cast<std::size_t>(i % 2)), kDrop}, 0});
    }
    p.profiles = {prof};
    auto c = compile(p);
    CHECK(c->acl_rules == 1000);
    const SessionConfig cfg = session(1);
    for (int i : {0, 1, 500, 999}) {
        Pkt u = udp_from(static_cast<std::uint16_t>(1000 + i));
        u.src = v6(static_cast<std::uint16_t>(i + 1), 1);
        const DpDecision d = dp_decide(*c, cfg, u);
        CHECK(d.rule == i);
        CHECK(d.bid == (i % 2 == 0 ? 1 : 2));
    }
}

// ---- the programmer: profiles over DataplaneProgrammer ----

namespace {

struct Prog {
    std::unique_ptr<Rcu> rcu;
    std::unique_ptr<SessionTable> table;
    std::unique_ptr<NextHopTable> next_hops;
    std::unique_ptr<PolicyTable> policies;
    hag::v1::DataplaneConfig cfg;
    std::unique_ptr<Programmer> prog;
    Prog() {
        test::ensure_eal();
        static int n = 0;
        rcu = std::move(Rcu::create(4).value());
        table = std::move(SessionTable::create("polprog" + std::to_string(n++), 64, *rcu).value());
        next_hops = std::make_unique<NextHopTable>(64, *rcu);
        policies = std::make_unique<PolicyTable>(*rcu);
        auto* port = cfg.add_ports();
        port->set_name("a1");
        port->set_role(hag::v1::PortConfig::ACCESS);
        std::vector<Port> ports = {
            {"core", "net_null0", hag::v1::PortConfig::CORE, 0, {2, 0, 0, 0, 0, 1}, {}},
            {"a1", "net_null1", hag::v1::PortConfig::ACCESS, 1, {2, 0, 0, 0, 0, 2}, {}}};
        prog = std::make_unique<Programmer>(*table, *next_hops, cfg, ports, policies.get());
    }
    ~Prog() {
        prog.reset();
        table.reset();
        next_hops.reset();
        rcu->synchronize();
    }
};

hag::v1::DpSession dp_session(std::uint32_t id, const std::string& profile) {
    hag::v1::DpSession s;
    s.set_id(id);
    s.set_nai("cpe@example.net");
    s.set_uplink_key(100 + id);
    s.add_prefixes(fmt::format("2001:db8:{}::/64", id + 1));
    s.set_policy_profile(profile);
    auto* p = s.add_paths();
    p->set_bid(1);
    p->set_live(true);
    p->set_access_technology(8);
    p->set_local("2001:db8:ff::1");
    p->set_care_of("2001:db8:aaaa::1");
    return s;
}

}  // namespace

TEST_CASE("policy: the programmer applies profiles with their sessions, all or nothing",
          "[policy][programmer]") {
    Prog e;
    const pol::Policy model = table_policy();
    const auto home = pol::to_dp_profile(model, model.profiles[0], false);
    // A session naming a profile nobody programmed: refused, nothing changes.
    hag::v1::ApplyRequest bad;
    bad.set_generation(1);
    *bad.add_changes()->mutable_upsert() = dp_session(1, "home");
    CHECK_FALSE(e.prog->apply(bad).ok());
    CHECK(e.table->size() == 0);
    // Profile and session in one batch.
    hag::v1::ApplyRequest ok;
    ok.set_generation(2);
    *ok.add_changes()->mutable_upsert_profile() = home;
    *ok.add_changes()->mutable_upsert() = dp_session(1, "home");
    REQUIRE(e.prog->apply(ok).ok());
    const std::uint16_t slot = e.policies->find("home");
    CHECK(slot != 0);
    CHECK(e.table->config(1)->policy == slot);
    auto d = e.prog->digest();
    CHECK(d.profiles() == 1);
    CHECK(d.digest() ==
          hag::v1::session_digest(dp_session(1, "home")) + hag::v1::profile_digest(home));
    // Removing a profile in use: refused. A broken profile: refused, the old one stays.
    hag::v1::ApplyRequest rm;
    rm.set_generation(3);
    rm.add_changes()->set_remove_profile("home");
    CHECK_FALSE(e.prog->apply(rm).ok());
    hag::v1::ApplyRequest broken;
    broken.set_generation(3);
    auto* bp = broken.add_changes()->mutable_upsert_profile();
    *bp = home;
    bp->mutable_rules(0)->mutable_preference()->RemoveLast();  // no terminal
    auto* other = broken.add_changes()->mutable_upsert();
    *other = dp_session(2, "home");
    CHECK_FALSE(e.prog->apply(broken).ok());
    CHECK(e.table->config(2) == nullptr);
    CHECK(e.policies->get(slot)->rules.size() == 4);
    CHECK(e.prog->digest().digest() == d.digest());
    // The same profile again: unchanged, its counters keep counting.
    const CompiledProfile* before = e.policies->get(slot);
    hag::v1::ApplyRequest same;
    same.set_generation(4);
    *same.add_changes()->mutable_upsert_profile() = home;
    REQUIRE(e.prog->apply(same).ok());
    CHECK(e.policies->get(slot) == before);
    // A resync without profiles or sessions empties both.
    REQUIRE(e.prog->resync(5, {}, {}).ok());
    CHECK(e.policies->size() == 0);
    CHECK(e.prog->digest().digest() == 0);
    // A resync with the profile and a session naming it.
    REQUIRE(e.prog->resync(6, {dp_session(1, "home")}, {home}).ok());
    CHECK(e.table->config(1)->policy == e.policies->find("home"));
    // Stats: the session's policy counters and the profile's rules.
    hag::v1::DpListRequest lr;
    lr.set_first_page(true);
    const auto list = e.prog->list(lr);
    REQUIRE(list.sessions_size() == 1);
    CHECK(list.sessions(0).policy().profile() == "home");
    CHECK(list.sessions(0).policy().rules_size() == 4);
    CHECK(list.sessions(0).policy().rules(2).application() == "SSH");
}

TEST_CASE("policy: the uplink stage counts packets on a forbidden path, drops them if told",
          "[policy]") {
    for (const bool drop : {false, true}) {
        test::ensure_eal();
        static int n = 0;
        auto rcu = std::move(Rcu::create(2).value());
        auto t = std::move(SessionTable::create("polup" + std::to_string(n++), 16, *rcu).value());
        PolicyTable policies(*rcu);
        const std::uint16_t slot = policies.publish(compile(table_policy(), drop)).value().first;
        SessionConfig cfg = session(slot, {true, true});
        cfg.uplink_key = 0x77;
        REQUIRE(t->upsert(3, cfg).ok());
        UplinkCtx ul;
        ul.sessions = ul.sessions_rw = t.get();
        ul.policies = &policies;
        ul.core_next_hop_mac = kCpeMac;
        ul.core_src_mac = kGwMac;
        // GRE from path `bid`'s care-of address carrying TCP from the subscriber to port `dport`.
        auto gre = [&](std::uint16_t bid, std::uint16_t dport) {
            Pkt inner;
            inner.proto = 6;
            inner.src = v6(1, 0x42);
            inner.dst = v6(0x9999, 1);
            inner.sport = 40000;
            inner.dport = dport;
            const Bytes in = frame(inner);
            const Bytes ip(in.begin() + 14, in.end());
            Bytes b{0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02};
            put16(b, 0x86DD);
            put32(b, 0x60000000);
            put16(b, static_cast<std::uint16_t>(8 + ip.size()));
            b.push_back(47);
            b.push_back(64);
            const auto src = v6(0xaaaa, bid), dst = v6(0xff, 1);
            b.insert(b.end(), src.begin(), src.end());
            b.insert(b.end(), dst.begin(), dst.end());
            put16(b, 0x2000);
            put16(b, 0x86DD);
            put32(b, 0x77);
            b.insert(b.end(), ip.begin(), ip.end());
            return b;
        };
        auto send = [&](std::uint16_t bid, std::uint16_t dport) {
            rte_mbuf* m = test::mbuf_from(gre(bid, dport));
            const auto kept = uplink_decap(ul, &m, 1);
            if (kept == 1) {
                rte_pktmbuf_free(m);
            }
            return kept == 1;
        };
        const CompiledProfile& prof = *policies.get(slot);
        // HTTP on LTE and on DSL: both listed, allowed.
        CHECK(send(2, 80));
        CHECK(send(1, 80));
        CHECK(prof.counters[0].uplink_forbidden.load() == 0);
        // SSH (DROP) is forbidden on every path.
        CHECK(send(2, 22) == !drop);
        CHECK(send(1, 22) == !drop);
        CHECK(prof.counters[2].uplink_forbidden.load() == 2);
        CHECK(prof.counters[2].hits.load() == 2);
        CHECK(t->state(3).uplink_forbidden.load() == 2);
        CHECK(ul.drops[static_cast<std::size_t>(UplinkDrop::kPolicyForbidden)].read() ==
              (drop ? 2u : 0u));
        CHECK(ul.policy_forbidden_forwarded.read() == (drop ? 0u : 2u));
        t.reset();
        rcu->synchronize();
    }
}

TEST_CASE("policy: a mixed burst across the classification chunks decides each packet as alone",
          "[policy]") {
    Stage s(table_policy());
    s.set_live({true, false});  // one live path: striping is deterministic (DSL)
    // 150 packets (chunks of 64, 64, 22): HTTP (DSL), SSH (dropped), SIP (dropped: BLUE down),
    // ESP (DSL), no rule (DSL), a frame for no subscriber, a frame that is not IP.
    std::vector<std::uint32_t> want;
    std::vector<rte_mbuf*> burst;
    for (int i = 0; i < 150; ++i) {
        std::vector<std::uint8_t> f;
        switch (i % 7) {
            case 0:
                f = frame(tcp_from(80));
                want.push_back(kDsl);
                break;
            case 1:
                f = frame(tcp_from(22));
                break;
            case 2:
                f = frame(udp_from(5060));
                break;
            case 3: {
                Pkt esp = tcp_from(0);
                esp.proto = 50;
                f = frame(esp);
                want.push_back(kDsl);
                break;
            }
            case 4:
                f = frame(udp_from(static_cast<std::uint16_t>(9000 + i)));
                want.push_back(kDsl);
                break;
            case 5: {
                Pkt other = tcp_from(80);
                other.dst = v6(7, 7);  // no session
                f = frame(other);
                break;
            }
            default:
                f = frame(tcp_from(80));
                f[12] = 0x88;
                f[13] = 0x99;
                break;  // not IP
        }
        burst.push_back(test::mbuf_from(f));
    }
    const auto kept = downlink_encap(s.dl, burst.data(), static_cast<std::uint16_t>(burst.size()));
    REQUIRE(kept == want.size());
    for (std::uint16_t i = 0; i < kept; ++i) {
        const auto* d = rte_pktmbuf_mtod(burst[i], const std::uint8_t*);
        const std::uint8_t* gre = d + 14 + 40;
        CHECK((std::uint32_t{gre[4]} << 24 | std::uint32_t{gre[5]} << 16 |
               std::uint32_t{gre[6]} << 8 | gre[7]) == want[i]);
        rte_pktmbuf_free(burst[i]);
    }
    // Rule counters as per packet (i < 150: residues 0..2 occur 22 times, 3..6 21 times).
    CHECK(s.profile().counters[0].hits.load() == 22);   // HTTP
    CHECK(s.profile().counters[2].drops.load() == 22);  // SSH
    CHECK(s.profile().counters[3].drops.load() == 22);  // SIP
    CHECK(s.profile().counters[1].hits.load() == 21);   // IPsec
    CHECK(s.dl.drops[static_cast<std::size_t>(DownlinkDrop::kNoSubscriber)].read() == 21);
    CHECK(s.dl.drops[static_cast<std::size_t>(DownlinkDrop::kNotIp)].read() == 21);
}
