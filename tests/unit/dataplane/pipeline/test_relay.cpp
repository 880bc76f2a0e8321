// Distributed anchoring's relay in the uplink stage (pipeline/relay.hpp), with real mbufs: a
// session whose old prefixes are anchored at another node; uplink from the router toward that
// anchor, GRE from the anchor decapsulated and encapsulated again toward the router.
#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <vector>

#include "../bytes.hpp"
#include "../eal_fixture.hpp"
#include "hag/net/checksum.hpp"
#include "pipeline/downlink_encap.hpp"
#include "pipeline/uplink_decap.hpp"
#include "runtime/worker.hpp"

using namespace hag::dp;

namespace {

using hag::test::append;
using hag::test::Bytes;
using hag::test::get16;
using hag::test::get32;
using hag::test::put16;
using hag::test::put32;

const MacAddr kAccessMac{0x02, 0, 0, 0, 0, 0x11};
const MacAddr kCpeMac{0x02, 0, 0, 0, 0, 0x12};
const MacAddr kCoreMac{0x02, 0, 0, 0, 0, 0x13};
const MacAddr kCoreRouterMac{0x02, 0, 0, 0, 0, 0x14};
const MacAddr kAnchorMac{0x02, 0, 0, 0, 0, 0x15};

constexpr std::uint32_t kRouterKey = 0xabcd0001;    // the router's uplink key
constexpr std::uint32_t kRouterDlKey = 0x11111111;  // stamped toward the router
constexpr std::uint32_t kAnchorUlKey = 0x0a0a0001;  // stamped toward the anchor
constexpr std::uint32_t kAnchorDlKey = 0x0b0b0001;  // the anchor stamps toward us

std::array<std::uint8_t, 16> a6(std::uint16_t g2, std::uint16_t last) {
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

Bytes mac_bytes(const MacAddr& m) {
    return Bytes(m.begin(), m.end());
}

Bytes ipv6_udp(const std::array<std::uint8_t, 16>& src, const std::array<std::uint8_t, 16>& dst,
               std::uint8_t tc = 0) {
    Bytes b;
    put32(b, 6u << 28 | std::uint32_t{tc} << 20);
    put16(b, 8 + 16);
    b.push_back(17);
    b.push_back(64);
    b.insert(b.end(), src.begin(), src.end());
    b.insert(b.end(), dst.begin(), dst.end());
    put16(b, 4000);
    put16(b, 5000);
    put16(b, 8 + 16);
    put16(b, 0);
    for (std::uint8_t i = 0; i < 16; ++i)
        b.push_back(i);
    return b;
}

Bytes ipv4(std::uint8_t proto, std::array<std::uint8_t, 4> src, std::array<std::uint8_t, 4> dst,
           const Bytes& payload, std::uint8_t tos = 0) {
    Bytes b{0x45, tos};
    put16(b, static_cast<std::uint16_t>(20 + payload.size()));
    put16(b, 0x1234);
    put16(b, 0);
    b.push_back(64);
    b.push_back(proto);
    put16(b, 0);
    b.insert(b.end(), src.begin(), src.end());
    b.insert(b.end(), dst.begin(), dst.end());
    const auto c = hag::net::internet_checksum(std::span(b.data(), 20));
    b[10] = static_cast<std::uint8_t>(c >> 8);
    b[11] = static_cast<std::uint8_t>(c);
    append(b, payload);
    return b;
}

Bytes ipv4_udp(std::array<std::uint8_t, 4> src, std::array<std::uint8_t, 4> dst) {
    Bytes u;
    put16(u, 4000);
    put16(u, 5000);
    put16(u, 8 + 16);
    put16(u, 0);
    for (std::uint8_t i = 0; i < 16; ++i)
        u.push_back(i);
    return ipv4(17, src, dst, u);
}

// GRE with key k (when `key`) and sequence number seq (when not -1).
Bytes gre(bool key, std::uint32_t k, const Bytes& inner, std::int64_t seq = -1) {
    Bytes g;
    put16(g, static_cast<std::uint16_t>((key ? 0x2000 : 0) | (seq >= 0 ? 0x1000 : 0)));
    put16(g, (inner[0] >> 4) == 4 ? 0x0800 : 0x86DD);
    if (key)
        put32(g, k);
    if (seq >= 0)
        put32(g, static_cast<std::uint32_t>(seq));
    append(g, inner);
    return g;
}

Bytes eth(const MacAddr& dst, const MacAddr& src, std::uint16_t type) {
    Bytes b(dst.begin(), dst.end());
    b.insert(b.end(), src.begin(), src.end());
    put16(b, type);
    return b;
}

// GRE in outer IPv6 from `src` to `dst` on the access side.
Bytes frame6(const std::array<std::uint8_t, 16>& src, const std::array<std::uint8_t, 16>& dst,
             bool key, std::uint32_t k, const Bytes& inner, std::int64_t seq = -1) {
    const Bytes g = gre(key, k, inner, seq);
    Bytes f = eth(kAccessMac, kCpeMac, 0x86DD);
    put32(f, 6u << 28);
    put16(f, static_cast<std::uint16_t>(g.size()));
    f.push_back(47);
    f.push_back(64);
    f.insert(f.end(), src.begin(), src.end());
    f.insert(f.end(), dst.begin(), dst.end());
    append(f, g);
    return f;
}

Bytes frame4(std::array<std::uint8_t, 4> src, std::array<std::uint8_t, 4> dst, bool key,
             std::uint32_t k, const Bytes& inner) {
    Bytes f = eth(kAccessMac, kCpeMac, 0x0800);
    append(f, ipv4(47, src, dst, gre(key, k, inner)));
    return f;
}

// This node's and the anchor's tunnel addresses, the router's care-of address.
const auto kLocal6 = a6(0xff, 1);
const auto kAnchor6 = a6(0xee, 1);
const auto kCoa6 = a6(0xaaaa, 1);
const std::array<std::uint8_t, 4> kLocal4{198, 51, 100, 1};
const std::array<std::uint8_t, 4> kAnchor4{203, 0, 113, 1};

struct Relay {
    std::unique_ptr<Rcu> rcu;
    std::unique_ptr<SessionTable> t;
    UplinkCtx ul;
    DownlinkCtx dl;

    // Session 5: new prefix 2001:db8:1::/64 (anchored here); old prefixes 2001:db8:a::/64
    // (anchored at 2001:db8:ee::1, keys both ways) and 192.0.2.8/29 (at 203.0.113.1, keyless).
    static SessionConfig session() {
        SessionConfig c;
        c.uplink_key = kRouterKey;
        c.gre_sequence = false;
        c.n_paths = 1;
        auto& p = c.paths[0];
        p.bid = 1;
        p.downlink_key = kRouterDlKey;
        p.local = IpAddr::v6(kLocal6);
        p.coa = IpAddr::v6(kCoa6);
        p.port = 0;
        p.src_mac = kAccessMac;
        p.next_hop_mac = kCpeMac;
        c.n_prefixes = 3;
        c.prefixes[0] = {IpAddr::v6(a6(1, 0)), 64};
        c.prefixes[1] = {IpAddr::v6(a6(0xa, 0)), 64};
        c.prefixes[2] = {IpAddr::v4(192, 0, 2, 8), 29};
        c.n_anchors = 2;
        auto& x = c.anchors[0];
        x.prefix = c.prefixes[1];
        x.local = IpAddr::v6(kLocal6);
        x.anchor = IpAddr::v6(kAnchor6);
        x.uplink_key = kAnchorUlKey;
        x.downlink_key = kAnchorDlKey;
        x.port = 2;
        x.src_mac = kAccessMac;
        x.next_hop_mac = kAnchorMac;
        auto& y = c.anchors[1];
        y.prefix = c.prefixes[2];
        y.local = IpAddr::v4(198, 51, 100, 1);
        y.anchor = IpAddr::v4(203, 0, 113, 1);
        y.port = 2;
        y.src_mac = kAccessMac;
        y.next_hop_mac = kAnchorMac;
        return c;
    }

    Relay() {
        test::ensure_eal();
        static int n = 0;
        rcu = std::move(Rcu::create(2).value());
        t = std::move(SessionTable::create("rl" + std::to_string(n++), 64, *rcu).value());
        ul.sessions = ul.sessions_rw = t.get();
        dl.sessions = dl.sessions_rw = t.get();
        ul.core_port = 1;
        ul.core_src_mac = kCoreMac;
        ul.core_next_hop_mac = kCoreRouterMac;
        REQUIRE(t->upsert(5, session()).ok());
    }
    ~Relay() { rcu->synchronize(); }

    // One frame through the uplink stage: what went to the core, and what it relayed.
    struct Out {
        Bytes core, access, down;
        std::uint16_t access_port = 0xffff;
        UplinkMeta meta{};
    };
    Out up(const Bytes& in) {
        rte_mbuf* m = test::mbuf_from(in);
        REQUIRE(m != nullptr);
        rte_mbuf* burst[1] = {m};
        Out o;
        UplinkMeta meta[1];
        if (uplink_decap(ul, burst, 1, meta) == 1) {
            // Toward a remote anchor: by an access port, in the burst (for the reorder).
            REQUIRE(ul.n_relay_downlink == 0);
            if (burst[0]->port == ul.core_port) {
                o.core = test::bytes_of(burst[0]);
            } else {
                o.access = test::bytes_of(burst[0]);
                o.access_port = burst[0]->port;
                o.meta = meta[0];
            }
            rte_pktmbuf_free(burst[0]);
        }
        REQUIRE(ul.n_relay_downlink <= 1);
        if (ul.n_relay_downlink == 1) {
            // What the worker does with it: the downlink stage.
            rte_mbuf* d[1] = {ul.relay_downlink[0]};
            REQUIRE(downlink_encap(dl, d, 1) == 1);
            o.down = test::bytes_of(d[0]);
            rte_pktmbuf_free(d[0]);
        }
        return o;
    }
    std::uint64_t drops(UplinkDrop d) const { return ul.drops[static_cast<std::size_t>(d)]; }
    std::uint64_t events(UplinkEvent e) const { return ul.events[static_cast<std::size_t>(e)]; }
    bool steered(const Bytes& in, std::uint32_t& id) {
        rte_mbuf* m = test::mbuf_from(in);
        const bool ok = uplink_session(*t, m, id);
        rte_pktmbuf_free(m);
        return ok;
    }
};

}  // namespace

TEST_CASE("relay: uplink from an old IPv6 prefix goes to its anchor in GRE over IPv6", "[relay]") {
    Relay fx;
    const Bytes inner = ipv6_udp(a6(0xa, 5), a6(0x9999, 1), 0xb8);
    const auto o = fx.up(frame6(kCoa6, kLocal6, true, kRouterKey, inner, 77));
    CHECK(o.core.empty());
    REQUIRE(o.access.size() == 14 + 40 + 8 + inner.size());
    CHECK(o.access_port == 2);
    CHECK(Bytes(o.access.begin(), o.access.begin() + 6) == mac_bytes(kAnchorMac));
    CHECK(Bytes(o.access.begin() + 6, o.access.begin() + 12) == mac_bytes(kAccessMac));
    CHECK(get16(o.access, 12) == 0x86DD);
    CHECK(get32(o.access, 14) == (6u << 28 | 0xb8u << 20));  // the inner traffic class
    CHECK(get16(o.access, 18) == 8 + inner.size());
    CHECK(o.access[20] == 47);
    CHECK(Bytes(o.access.begin() + 22, o.access.begin() + 38) ==
          Bytes(kLocal6.begin(), kLocal6.end()));
    CHECK(Bytes(o.access.begin() + 38, o.access.begin() + 54) ==
          Bytes(kAnchor6.begin(), kAnchor6.end()));
    CHECK(get16(o.access, 54) == 0x2000);  // key, no sequence number
    CHECK(get16(o.access, 56) == 0x86DD);
    CHECK(get32(o.access, 58) == kAnchorUlKey);
    CHECK(Bytes(o.access.begin() + 62, o.access.end()) == inner);
    CHECK(fx.events(UplinkEvent::kRelayUplink) == 1);
    CHECK(fx.t->state(5).relay_uplink_packets.load() == 1);
    CHECK(fx.t->state(5).relay_uplink_bytes.load() == inner.size());
    CHECK(fx.t->totals(5).uplink_packets == 1);
    // The reorder gets it with the router's sequence number, in the session's space.
    CHECK(o.meta.session == 5);
    CHECK(o.meta.flags == UplinkMeta::kHasSeq);
    CHECK(o.meta.seq == 77);
}

TEST_CASE("relay: uplink from an old IPv4 prefix goes to its anchor in keyless GRE over IPv4",
          "[relay]") {
    Relay fx;
    const Bytes inner = ipv4_udp({192, 0, 2, 9}, {203, 0, 113, 99});
    const auto o = fx.up(frame6(kCoa6, kLocal6, true, kRouterKey, inner));
    REQUIRE(o.access.size() == 14 + 20 + 4 + inner.size());
    CHECK(get16(o.access, 12) == 0x0800);
    CHECK(o.access[14] == 0x45);
    CHECK(get16(o.access, 16) == 20 + 4 + inner.size());
    CHECK(o.access[23] == 47);
    CHECK(hag::net::internet_checksum(std::span(o.access.data() + 14, 20)) == 0);
    CHECK(Bytes(o.access.begin() + 26, o.access.begin() + 30) ==
          Bytes(kLocal4.begin(), kLocal4.end()));
    CHECK(Bytes(o.access.begin() + 30, o.access.begin() + 34) ==
          Bytes(kAnchor4.begin(), kAnchor4.end()));
    CHECK(get16(o.access, 34) == 0);  // no key
    CHECK(get16(o.access, 36) == 0x0800);
    CHECK(Bytes(o.access.begin() + 38, o.access.end()) == inner);
}

TEST_CASE("relay: uplink from the node's own prefix goes to the core as before", "[relay]") {
    Relay fx;
    const Bytes inner = ipv6_udp(a6(1, 5), a6(0x9999, 1));
    const auto o = fx.up(frame6(kCoa6, kLocal6, true, kRouterKey, inner));
    CHECK(o.access.empty());
    REQUIRE(o.core.size() == 14 + inner.size());
    CHECK(Bytes(o.core.begin() + 14, o.core.end()) == inner);
    CHECK(fx.events(UplinkEvent::kRelayUplink) == 0);
}

TEST_CASE("relay: GRE from the anchor (IPv6, keyed) reaches the router through the downlink",
          "[relay]") {
    Relay fx;
    const Bytes inner = ipv6_udp(a6(0x9999, 1), a6(0xa, 5));
    const Bytes in = frame6(kAnchor6, kLocal6, true, kAnchorDlKey, inner);
    std::uint32_t id = 0;
    REQUIRE(fx.steered(in, id));  // the workers steer it to the session's owner
    CHECK(id == 5);
    const auto o = fx.up(in);
    CHECK(o.core.empty());
    CHECK(o.access.empty());
    REQUIRE(o.down.size() == 14 + 40 + 8 + inner.size());
    CHECK(Bytes(o.down.begin(), o.down.begin() + 6) == mac_bytes(kCpeMac));
    CHECK(Bytes(o.down.begin() + 38, o.down.begin() + 54) == Bytes(kCoa6.begin(), kCoa6.end()));
    CHECK(get16(o.down, 54) == 0x2000);
    CHECK(get32(o.down, 58) == kRouterDlKey);
    Bytes expect = inner;
    expect[7] = 63;  // the downlink routes it: hop limit - 1
    CHECK(Bytes(o.down.begin() + 62, o.down.end()) == expect);
    CHECK(fx.events(UplinkEvent::kRelayDownlink) == 1);
    CHECK(fx.t->state(5).relay_downlink_packets.load() == 1);
    CHECK(fx.t->totals(5).downlink_packets == 1);
}

TEST_CASE("relay: keyless GRE from the IPv4 anchor, found by inner destination", "[relay]") {
    Relay fx;
    const Bytes inner = ipv4_udp({203, 0, 113, 99}, {192, 0, 2, 9});
    const Bytes in = frame4(kAnchor4, kLocal4, false, 0, inner);
    std::uint32_t id = 0;
    REQUIRE(fx.steered(in, id));
    CHECK(id == 5);
    const auto o = fx.up(in);
    REQUIRE(o.down.size() == 14 + 40 + 8 + inner.size());
    CHECK(get16(o.down, 56) == 0x0800);
    CHECK(fx.events(UplinkEvent::kRelayDownlink) == 1);
    // From another address: no care-of address, no anchor.
    CHECK(fx.up(frame4({203, 0, 113, 2}, kLocal4, false, 0, inner)).down.empty());
    CHECK(fx.drops(UplinkDrop::kUnknownTunnel) == 1);
    // To an inner destination outside the anchored prefix.
    CHECK(fx.up(frame4(kAnchor4, kLocal4, false, 0, ipv4_udp({203, 0, 113, 99}, {192, 0, 2, 1})))
              .down.empty());
    CHECK(fx.drops(UplinkDrop::kUnknownTunnel) == 2);
}

TEST_CASE("relay: what is dropped from the anchor's side", "[relay]") {
    Relay fx;
    const Bytes inner = ipv6_udp(a6(0x9999, 1), a6(0xa, 5));
    SECTION("wrong outer source") {
        CHECK(fx.up(frame6(a6(0xee, 2), kLocal6, true, kAnchorDlKey, inner)).down.empty());
        CHECK(fx.drops(UplinkDrop::kRelaySpoofedOuter) == 1);
    }
    SECTION("wrong outer destination") {
        CHECK(fx.up(frame6(kAnchor6, a6(0xff, 2), true, kAnchorDlKey, inner)).down.empty());
        CHECK(fx.drops(UplinkDrop::kRelaySpoofedOuter) == 1);
    }
    SECTION("the router's key from the anchor's address") {
        CHECK(fx.up(frame6(kAnchor6, kLocal6, true, kRouterKey, inner)).down.empty());
        CHECK(fx.drops(UplinkDrop::kSpoofedOuter) == 1);
    }
    SECTION("the anchor's key from the router") {
        CHECK(fx.up(frame6(kCoa6, kLocal6, true, kAnchorDlKey, inner)).down.empty());
        CHECK(fx.drops(UplinkDrop::kRelaySpoofedOuter) == 1);
    }
    SECTION("an unknown key") {
        CHECK(fx.up(frame6(kAnchor6, kLocal6, true, kAnchorDlKey + 1, inner)).down.empty());
        CHECK(fx.drops(UplinkDrop::kUnknownKey) == 1);
    }
    SECTION("inner destination outside the anchored prefix") {
        const Bytes own = ipv6_udp(a6(0x9999, 1), a6(1, 5));  // the node's own prefix
        CHECK(fx.up(frame6(kAnchor6, kLocal6, true, kAnchorDlKey, own)).down.empty());
        CHECK(fx.drops(UplinkDrop::kRelaySpoofedInner) == 1);
    }
    CHECK(fx.events(UplinkEvent::kRelayDownlink) == 0);
    CHECK(fx.t->totals(5).downlink_packets == 0);
}

TEST_CASE("relay: no next hop toward the anchor yet", "[relay]") {
    Relay fx;
    SessionConfig c = Relay::session();
    c.anchors[0].next_hop_mac = {};  // resolved at run time, and no table here
    REQUIRE(fx.t->upsert(5, c).ok());
    const auto o = fx.up(frame6(kCoa6, kLocal6, true, kRouterKey, ipv6_udp(a6(0xa, 5), a6(9, 1))));
    CHECK(o.access.empty());
    CHECK(fx.drops(UplinkDrop::kRelayNoNextHop) == 1);
}

TEST_CASE("relay: the table's keys and checks for remote anchors", "[relay][tables]") {
    Relay fx;
    std::uint32_t id = 0;
    CHECK(fx.t->lookup_uplink_key(kAnchorDlKey, id));
    CHECK(id == 5);
    SessionConfig other;
    other.n_paths = 1;
    other.paths[0].bid = 1;
    other.paths[0].local = IpAddr::v6(kLocal6);
    other.paths[0].coa = IpAddr::v6(a6(0xaaaa, 2));
    SECTION("another session cannot take the anchor's downlink key") {
        other.uplink_key = kAnchorDlKey;
        CHECK_FALSE(fx.t->upsert(6, other).ok());
    }
    SECTION("the anchor's prefix must be the session's") {
        SessionConfig c = Relay::session();
        c.anchors[0].prefix = {IpAddr::v6(a6(0xb, 0)), 64};
        CHECK_FALSE(fx.t->upsert(5, c).ok());
    }
    SECTION("local and anchor of one family") {
        SessionConfig c = Relay::session();
        c.anchors[0].anchor = IpAddr::v4(203, 0, 113, 1);
        CHECK_FALSE(fx.t->upsert(5, c).ok());
    }
    SECTION("the downlink key is not the session's uplink key") {
        SessionConfig c = Relay::session();
        c.anchors[0].downlink_key = kRouterKey;
        CHECK_FALSE(fx.t->upsert(5, c).ok());
    }
    SECTION("dropping the remote anchor frees its key") {
        SessionConfig c = Relay::session();
        c.n_anchors = 0;
        REQUIRE(fx.t->upsert(5, c).ok());
        CHECK_FALSE(fx.t->lookup_uplink_key(kAnchorDlKey, id));
        CHECK(fx.t->lookup_uplink_key(kRouterKey, id));
        other.uplink_key = kAnchorDlKey;
        CHECK(fx.t->upsert(6, other).ok());
    }
    SECTION("removing the session frees its keys") {
        REQUIRE(fx.t->remove(5).ok());
        CHECK_FALSE(fx.t->lookup_uplink_key(kAnchorDlKey, id));
        CHECK_FALSE(fx.t->lookup_uplink_key(kRouterKey, id));
    }
}
