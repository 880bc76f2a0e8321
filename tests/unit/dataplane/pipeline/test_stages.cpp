#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <tuple>

#include "../bytes.hpp"
#include "../eal_fixture.hpp"
#include "hag/net/checksum.hpp"
#include "pipeline/downlink_encap.hpp"
#include "pipeline/packet.hpp"
#include "pipeline/uplink_decap.hpp"
#include "runtime/worker.hpp"

using namespace hag::dp;
using hag::test::append;
using hag::test::Bytes;
using hag::test::get16;
using hag::test::get32;
using hag::test::put16;
using hag::test::put32;

namespace {

const MacAddr kGwAccessMac{0x02, 0, 0, 0, 0, 0x01};
const MacAddr kCpeMac{0x02, 0, 0, 0, 0, 0x02};
const MacAddr kGwCoreMac{0x02, 0, 0, 0, 0, 0x03};
const MacAddr kRouterMac{0x02, 0, 0, 0, 0, 0x04};

std::array<std::uint8_t, 16> a6(std::uint16_t g2, std::uint16_t g3, std::uint16_t last) {
    return {0x20,
            0x01,
            0x0d,
            0xb8,
            static_cast<std::uint8_t>(g2 >> 8),
            static_cast<std::uint8_t>(g2),
            static_cast<std::uint8_t>(g3 >> 8),
            static_cast<std::uint8_t>(g3),
            0,
            0,
            0,
            0,
            0,
            0,
            static_cast<std::uint8_t>(last >> 8),
            static_cast<std::uint8_t>(last)};
}

Bytes eth(const MacAddr& dst, const MacAddr& src, std::uint16_t type) {
    Bytes b(dst.begin(), dst.end());
    b.insert(b.end(), src.begin(), src.end());
    put16(b, type);
    return b;
}

// IPv6 + UDP with `payload` bytes; traffic class `tc`, hop limit `hl`.
Bytes ipv6_udp(const std::array<std::uint8_t, 16>& src, const std::array<std::uint8_t, 16>& dst,
               std::size_t payload, std::uint8_t tc = 0, std::uint8_t hl = 64) {
    Bytes b;
    put32(b, 6u << 28 | std::uint32_t{tc} << 20);
    put16(b, static_cast<std::uint16_t>(8 + payload));
    b.push_back(17);
    b.push_back(hl);
    b.insert(b.end(), src.begin(), src.end());
    b.insert(b.end(), dst.begin(), dst.end());
    put16(b, 4000);
    put16(b, 5000);
    put16(b, static_cast<std::uint16_t>(8 + payload));
    put16(b, 0);
    for (std::size_t i = 0; i < payload; ++i)
        b.push_back(static_cast<std::uint8_t>(i));
    return b;
}

Bytes ipv4_udp(std::array<std::uint8_t, 4> src, std::array<std::uint8_t, 4> dst,
               std::size_t payload, std::uint8_t tos = 0, std::uint8_t ttl = 64) {
    Bytes b{0x45, tos};
    put16(b, static_cast<std::uint16_t>(28 + payload));
    put16(b, 0x1234);
    put16(b, 0);
    b.push_back(ttl);
    b.push_back(17);
    put16(b, 0);
    b.insert(b.end(), src.begin(), src.end());
    b.insert(b.end(), dst.begin(), dst.end());
    const auto c = hag::net::internet_checksum(std::span(b.data(), 20));
    b[10] = static_cast<std::uint8_t>(c >> 8);
    b[11] = static_cast<std::uint8_t>(c);
    put16(b, 4000);
    put16(b, 5000);
    put16(b, static_cast<std::uint16_t>(8 + payload));
    put16(b, 0);
    for (std::size_t i = 0; i < payload; ++i)
        b.push_back(static_cast<std::uint8_t>(i));
    return b;
}

struct Fixture {
    std::unique_ptr<Rcu> rcu;
    std::unique_ptr<SessionTable> t;
    DownlinkCtx dl;
    UplinkCtx ul;
    Fixture() {
        test::ensure_eal();
        static int n = 0;
        rcu = std::move(Rcu::create(2).value());
        t = std::move(SessionTable::create("st" + std::to_string(n++), 64, *rcu).value());
        dl.sessions = dl.sessions_rw = t.get();
        ul.sessions = ul.sessions_rw = t.get();
        ul.core_port = 1;
        ul.core_src_mac = kGwCoreMac;
        ul.core_next_hop_mac = kRouterMac;

        // Session 5: HNP 2001:db8:1::/64 and 192.0.2.0/28; an IPv6 path (DSL) and an IPv4 one
        // (LTE).
        SessionConfig c;
        c.uplink_key = 0xabcd0001;
        c.n_paths = 2;
        auto& p6 = c.paths[0];
        p6.bid = 1;
        p6.downlink_key = 0x11111111;
        p6.local = IpAddr::v6(a6(0xff, 0, 1));
        p6.coa = IpAddr::v6(a6(0xaaaa, 0, 1));
        p6.port = 0;
        p6.src_mac = kGwAccessMac;
        p6.next_hop_mac = kCpeMac;
        auto& p4 = c.paths[1];
        p4.bid = 2;
        p4.downlink_key = 0x22222222;
        p4.local = IpAddr::v4(198, 51, 100, 1);
        p4.coa = IpAddr::v4(198, 51, 100, 7);
        p4.port = 2;
        p4.src_mac = kGwAccessMac;
        p4.next_hop_mac = kCpeMac;
        c.n_prefixes = 2;
        c.prefixes[0] = {IpAddr::v6(a6(1, 0, 0)), 64};
        c.prefixes[1] = {IpAddr::v4(192, 0, 2, 0), 28};
        REQUIRE(t->upsert(5, c).ok());
    }
    ~Fixture() { rcu->synchronize(); }
    void set_live(unsigned path, bool live) {
        SessionConfig c = *t->config(5);
        c.paths[path].live = live;
        REQUIRE(t->upsert(5, c).ok());
    }
    // Runs one packet through a stage; returns the output bytes or empty when dropped.
    template <typename Stage, typename Ctx>
    Bytes run(Stage stage, Ctx& ctx, const Bytes& in) {
        rte_mbuf* m = test::mbuf_from(in);
        REQUIRE(m != nullptr);
        rte_mbuf* burst[1] = {m};
        if (stage(ctx, burst, 1) == 0) {
            return {};
        }
        Bytes out = test::bytes_of(burst[0]);
        last_port = burst[0]->port;
        rte_pktmbuf_free(burst[0]);
        return out;
    }
    Bytes down(const Bytes& in) { return run(downlink_encap, dl, in); }
    Bytes up(const Bytes& in) {
        return run(
            [](UplinkCtx& c, rte_mbuf** p, uint16_t n) { return uplink_decap(c, p, n, seqs); }, ul,
            in);
    }
    std::uint64_t drops(DownlinkDrop d) const { return dl.drops[static_cast<std::size_t>(d)]; }
    std::uint64_t drops(UplinkDrop d) const { return ul.drops[static_cast<std::size_t>(d)]; }
    std::uint16_t last_port = 0xffff;
    static inline UplinkMeta seqs[1] = {};
};

Bytes down_frame_v6(std::uint8_t tc = 0, std::uint8_t hl = 64, std::size_t payload = 32) {
    Bytes f = eth(kGwCoreMac, kRouterMac, 0x86DD);
    append(f, ipv6_udp(a6(0x9999, 0, 1), a6(1, 0, 0x42), payload, tc, hl));
    return f;
}

// An uplink frame: outer IPv6 from the DSL CoA, GRE with `flags`/key/seq, inner IPv6 from the HNP.
Bytes up_frame_v6(std::uint16_t flags, std::uint32_t key, std::uint32_t seq,
                  const std::array<std::uint8_t, 16>& outer_src, const Bytes& inner) {
    Bytes gre;
    put16(gre, flags);
    put16(gre, (!inner.empty() && (inner[0] >> 4) == 4) ? 0x0800 : 0x86DD);
    if (flags & 0x8000)
        put32(gre, 0);
    if (flags & 0x2000)
        put32(gre, key);
    if (flags & 0x1000)
        put32(gre, seq);
    append(gre, inner);
    if (flags & 0x8000) {
        const auto c = hag::net::internet_checksum(gre);
        gre[4] = static_cast<std::uint8_t>(c >> 8);
        gre[5] = static_cast<std::uint8_t>(c);
    }
    Bytes f = eth(kGwAccessMac, kCpeMac, 0x86DD);
    Bytes ip;
    put32(ip, 6u << 28);
    put16(ip, static_cast<std::uint16_t>(gre.size()));
    ip.push_back(47);
    ip.push_back(64);
    ip.insert(ip.end(), outer_src.begin(), outer_src.end());
    auto dst = a6(0xff, 0, 1);
    ip.insert(ip.end(), dst.begin(), dst.end());
    append(f, ip);
    append(f, gre);
    return f;
}

}  // namespace

TEST_CASE("downlink: IPv6 inner over the IPv6 path, byte for byte", "[downlink]") {
    Fixture fx;
    const Bytes in = down_frame_v6(0xb8 /* DSCP 46 */, 64);
    const Bytes out = fx.down(in);
    REQUIRE(out.size() == 14 + 40 + 12 + (in.size() - 14));
    // Ethernet toward the CPE.
    CHECK(Bytes(out.begin(), out.begin() + 6) == Bytes(kCpeMac.begin(), kCpeMac.end()));
    CHECK(Bytes(out.begin() + 6, out.begin() + 12) ==
          Bytes(kGwAccessMac.begin(), kGwAccessMac.end()));
    CHECK(get16(out, 12) == 0x86DD);
    // Outer IPv6: version 6, DSCP 46 copied, payload = GRE + inner, next header 47, hop limit 64.
    CHECK(get32(out, 14) == (6u << 28 | 46u << 22));
    CHECK(get16(out, 18) == 12 + in.size() - 14);
    CHECK(out[20] == 47);
    CHECK(out[21] == 64);
    auto src = a6(0xff, 0, 1), dst = a6(0xaaaa, 0, 1);
    CHECK(Bytes(out.begin() + 22, out.begin() + 38) == Bytes(src.begin(), src.end()));
    CHECK(Bytes(out.begin() + 38, out.begin() + 54) == Bytes(dst.begin(), dst.end()));
    // GRE: K and S, IPv6 payload, downlink key, sequence 0 then 1.
    CHECK(get16(out, 54) == 0x3000);
    CHECK(get16(out, 56) == 0x86DD);
    CHECK(get32(out, 58) == 0x11111111);
    CHECK(get32(out, 62) == 0);
    // Inner packet unchanged except the hop limit.
    Bytes inner(in.begin() + 14, in.end());
    inner[7] = 63;
    CHECK(Bytes(out.begin() + 66, out.end()) == inner);
    CHECK(fx.last_port == 0);
    CHECK(get32(fx.down(in), 62) == 1);
    CHECK(fx.t->totals(5).downlink_packets == 2);
    CHECK(fx.t->downlink_traffic(5, 0).packets.load() == 2);
}

TEST_CASE("downlink: IPv4 inner over the IPv4 path when the IPv6 path is down", "[downlink]") {
    Fixture fx;
    fx.set_live(0, false);
    Bytes in = eth(kGwCoreMac, kRouterMac, 0x0800);
    append(in, ipv4_udp({203, 0, 113, 5}, {192, 0, 2, 3}, 20, 0x28 /* DSCP 10 */, 9));
    in.resize(in.size() + 6, 0);  // Ethernet padding must not be tunnelled
    const Bytes out = fx.down(in);
    REQUIRE(out.size() == 14 + 20 + 12 + 48);
    CHECK(get16(out, 12) == 0x0800);
    const Bytes outer(out.begin() + 14, out.begin() + 34);
    CHECK(outer[0] == 0x45);
    CHECK(outer[1] == 0x28);
    CHECK(get16(outer, 2) == 20 + 12 + 48);
    CHECK(get16(outer, 6) == 0x4000);
    CHECK(outer[9] == 47);
    CHECK(hag::net::internet_checksum(outer) == 0);  // valid header checksum
    CHECK(Bytes(outer.begin() + 12, outer.begin() + 20) == Bytes{198, 51, 100, 1, 198, 51, 100, 7});
    CHECK(get16(out, 34) == 0x3000);
    CHECK(get16(out, 36) == 0x0800);
    CHECK(get32(out, 38) == 0x22222222);
    const Bytes inner(out.begin() + 46, out.end());
    CHECK(inner[8] == 8);                                                  // TTL decremented
    CHECK(hag::net::internet_checksum(std::span(inner.data(), 20)) == 0);  // still valid
    CHECK(fx.last_port == 2);
}

TEST_CASE("downlink drops count each reason", "[downlink][drops]") {
    Fixture fx;
    CHECK(fx.down(down_frame_v6(0, 1)).empty());
    CHECK(fx.drops(DownlinkDrop::kTtlExpired) == 1);

    Bytes other = eth(kGwCoreMac, kRouterMac, 0x86DD);
    append(other, ipv6_udp(a6(0x9999, 0, 1), a6(2, 0, 1), 10));
    CHECK(fx.down(other).empty());
    CHECK(fx.drops(DownlinkDrop::kNoSubscriber) == 1);

    Bytes arp = eth(kGwCoreMac, kRouterMac, 0x0806);
    arp.resize(60, 0);
    CHECK(fx.down(arp).empty());
    CHECK(fx.drops(DownlinkDrop::kNotIp) == 1);

    Bytes trunc = down_frame_v6();
    trunc.resize(14 + 30);
    CHECK(fx.down(trunc).empty());
    Bytes lying = down_frame_v6();
    lying[14 + 4] = 0x7f;  // payload length past the frame
    CHECK(fx.down(lying).empty());
    CHECK(fx.down(Bytes{1, 2, 3}).empty());
    CHECK(fx.drops(DownlinkDrop::kMalformed) == 3);

    fx.dl.access_mtu = 100;
    CHECK(fx.down(down_frame_v6(0, 64, 40)).empty());
    CHECK(fx.drops(DownlinkDrop::kTooBig) == 1);
    fx.dl.access_mtu = 1500;

    Bytes qinq = down_frame_v6();
    qinq.insert(qinq.begin() + 12, {0x81, 0x00, 0x00, 0x0a});
    qinq.insert(qinq.begin() + 12, {0x88, 0xa8, 0x00, 0x14});
    CHECK_FALSE(fx.down(qinq).empty());  // two tags are fine
    Bytes three = qinq;
    three.insert(three.begin() + 12, {0x81, 0x00, 0x00, 0x0b});
    CHECK(fx.down(three).empty());
    CHECK(fx.drops(DownlinkDrop::kNotIp) == 2);

    fx.set_live(0, false);
    fx.set_live(1, false);
    CHECK(fx.down(down_frame_v6()).empty());
    CHECK(fx.drops(DownlinkDrop::kNoLivePath) == 1);

    SessionConfig c = *fx.t->config(5);
    c.paths[0].live = true;
    c.paths[0].next_hop_mac = {};
    REQUIRE(fx.t->upsert(5, c).ok());
    CHECK(fx.down(down_frame_v6()).empty());
    CHECK(fx.drops(DownlinkDrop::kNoNextHop) == 1);
    CHECK(fx.dl.encapsulated == 1);
}

TEST_CASE("resolved next hops: unresolved drops ask for resolution, then forward",
          "[downlink][uplink][nexthop]") {
    Fixture fx;
    NextHopTable nh(16, *fx.rcu);
    fx.dl.next_hops = fx.ul.next_hops = &nh;
    const IpAddr cpe = IpAddr::v6(a6(0xaaaa, 0, 1));
    const auto path_nh = nh.acquire(0, cpe).value();
    SessionConfig c = *fx.t->config(5);
    c.paths[0].next_hop_mac = {};
    c.paths[0].next_hop = path_nh;
    REQUIRE(fx.t->upsert(5, c).ok());

    CHECK(fx.down(down_frame_v6()).empty());
    CHECK(fx.drops(DownlinkDrop::kNoNextHop) == 1);
    CHECK(nh.wanted(path_nh));
    nh.set_mac(path_nh, {0x02, 0, 0, 0, 0, 0x77});
    Bytes out = fx.down(down_frame_v6());
    REQUIRE_FALSE(out.empty());
    CHECK(Bytes(out.begin(), out.begin() + 6) == Bytes{0x02, 0, 0, 0, 0, 0x77});

    // Uplink: no static core MAC; IPv6 inner packets use the IPv6 core next hop.
    fx.ul.core_next_hop_mac = {};
    const Bytes inner = ipv6_udp(a6(1, 0, 0x42), a6(0x9999, 0, 1), 16);
    const Bytes frame = up_frame_v6(0x3000, 0xabcd0001, 1, a6(0xaaaa, 0, 1), inner);
    CHECK(fx.up(frame).empty());  // no core next hop configured at all
    CHECK(fx.drops(UplinkDrop::kNoNextHop) == 1);
    fx.ul.core_next_hop_v6 = nh.acquire(1, IpAddr::v6(a6(0x9999, 0, 1))).value();
    CHECK(fx.up(frame).empty());
    CHECK(fx.drops(UplinkDrop::kNoNextHop) == 2);
    CHECK(nh.wanted(fx.ul.core_next_hop_v6));
    nh.set_mac(fx.ul.core_next_hop_v6, kRouterMac);
    out = fx.up(frame);
    REQUIRE(out.size() == 14 + inner.size());
    CHECK(Bytes(out.begin(), out.begin() + 6) == Bytes(kRouterMac.begin(), kRouterMac.end()));
    // A static MAC overrides the table.
    fx.ul.core_next_hop_mac = kGwAccessMac;
    out = fx.up(frame);
    REQUIRE_FALSE(out.empty());
    CHECK(Bytes(out.begin(), out.begin() + 6) == Bytes(kGwAccessMac.begin(), kGwAccessMac.end()));
}

TEST_CASE("uplink: GRE with key and sequence is decapsulated toward the core", "[uplink]") {
    Fixture fx;
    const Bytes inner = ipv6_udp(a6(1, 0, 0x42), a6(0x9999, 0, 1), 16);
    const Bytes out = fx.up(up_frame_v6(0x3000, 0xabcd0001, 77, a6(0xaaaa, 0, 1), inner));
    REQUIRE(out.size() == 14 + inner.size());
    CHECK(Bytes(out.begin(), out.begin() + 6) == Bytes(kRouterMac.begin(), kRouterMac.end()));
    CHECK(Bytes(out.begin() + 6, out.begin() + 12) == Bytes(kGwCoreMac.begin(), kGwCoreMac.end()));
    CHECK(get16(out, 12) == 0x86DD);
    CHECK(Bytes(out.begin() + 14, out.end()) == inner);
    CHECK(fx.seqs[0].seq == 77);
    CHECK(fx.seqs[0].flags == UplinkMeta::kHasSeq);
    CHECK(fx.last_port == 1);
    CHECK(fx.t->totals(5).uplink_packets == 1);
    CHECK(fx.t->uplink_counts(5, 0).packets == 1);

    // Without a sequence number, and with a correct GRE checksum.
    CHECK_FALSE(fx.up(up_frame_v6(0x2000, 0xabcd0001, 0, a6(0xaaaa, 0, 1), inner)).empty());
    CHECK(fx.seqs[0].flags == 0);
    CHECK_FALSE(fx.up(up_frame_v6(0xb000, 0xabcd0001, 5, a6(0xaaaa, 0, 1), inner)).empty());
    // Keyless GRE: the session is found by the outer source.
    CHECK_FALSE(fx.up(up_frame_v6(0x0000, 0, 0, a6(0xaaaa, 0, 1), inner)).empty());
    CHECK(fx.ul.decapsulated == 4);
}

TEST_CASE("uplink anti-spoofing and GRE validation drop with their reason", "[uplink][drops]") {
    Fixture fx;
    const Bytes inner = ipv6_udp(a6(1, 0, 0x42), a6(0x9999, 0, 1), 16);
    const auto coa = a6(0xaaaa, 0, 1);
    CHECK(fx.up(up_frame_v6(0x3000, 0xdead, 1, coa, inner)).empty());
    CHECK(fx.drops(UplinkDrop::kUnknownKey) == 1);
    CHECK(fx.up(up_frame_v6(0x3000, 0xabcd0001, 1, a6(0xaaaa, 0, 9), inner)).empty());
    CHECK(fx.drops(UplinkDrop::kSpoofedOuter) == 1);
    const Bytes foreign = ipv6_udp(a6(2, 0, 0x42), a6(0x9999, 0, 1), 16);
    CHECK(fx.up(up_frame_v6(0x3000, 0xabcd0001, 1, coa, foreign)).empty());
    CHECK(fx.drops(UplinkDrop::kSpoofedInner) == 1);
    CHECK(fx.up(up_frame_v6(0x0000, 0, 0, a6(0xaaaa, 0, 9), inner)).empty());
    CHECK(fx.drops(UplinkDrop::kUnknownTunnel) == 1);

    Bytes bad_version = up_frame_v6(0x3001, 0xabcd0001, 1, coa, inner);
    CHECK(fx.up(bad_version).empty());
    Bytes routing = up_frame_v6(0x7000, 0xabcd0001, 1, coa, inner);
    CHECK(fx.up(routing).empty());
    CHECK(fx.drops(UplinkDrop::kGreMalformed) == 2);
    // Bits 6-12 are ignored on receipt (RFC 2784 §2.5.1).
    CHECK_FALSE(fx.up(up_frame_v6(0x3000 | 0x0080, 0xabcd0001, 1, coa, inner)).empty());

    Bytes bad_sum = up_frame_v6(0xb000, 0xabcd0001, 1, coa, inner);
    bad_sum.back() ^= 0xff;
    CHECK(fx.up(bad_sum).empty());
    CHECK(fx.drops(UplinkDrop::kGreChecksum) == 1);

    Bytes eth_payload = up_frame_v6(0x3000, 0xabcd0001, 1, coa, inner);
    eth_payload[14 + 40 + 2] = 0x65;  // GRE protocol 0x6558 (transparent Ethernet bridging)
    eth_payload[14 + 40 + 3] = 0x58;
    CHECK(fx.up(eth_payload).empty());
    CHECK(fx.drops(UplinkDrop::kGreProtocol) == 1);

    Bytes short_gre = up_frame_v6(0x3000, 0xabcd0001, 1, coa, Bytes{});
    short_gre.resize(14 + 40 + 6);
    short_gre[14 + 4] = 0;
    short_gre[14 + 5] = 6;  // payload length 6: GRE with K and S needs 12
    CHECK(fx.up(short_gre).empty());
    CHECK(fx.drops(UplinkDrop::kGreMalformed) == 3);

    Bytes bad_inner = inner;
    bad_inner[4] = 0x7f;  // inner payload length past the end
    CHECK(fx.up(up_frame_v6(0x3000, 0xabcd0001, 1, coa, bad_inner)).empty());
    CHECK(fx.drops(UplinkDrop::kInnerMalformed) == 1);

    Bytes udp = down_frame_v6();
    CHECK(fx.up(udp).empty());
    CHECK(fx.drops(UplinkDrop::kNotGre) == 1);
    CHECK(fx.ul.decapsulated == 1);
}

TEST_CASE("random and truncated frames never crash and every packet is accounted", "[robust]") {
    Fixture fx;
    std::mt19937 rng(12345);
    const Bytes good_up = up_frame_v6(0x3000, 0xabcd0001, 1, a6(0xaaaa, 0, 1),
                                      ipv6_udp(a6(1, 0, 0x42), a6(0x9999, 0, 1), 16));
    const Bytes good_down = down_frame_v6();
    std::uint64_t kept_dl = 0, kept_ul = 0, total = 0;
    for (int round = 0; round < 3125; ++round) {  // 3125 bursts of 32 = 100k packets
        rte_mbuf* burst[32];
        rte_mbuf* burst2[32];
        for (int i = 0; i < 32; ++i) {
            const Bytes& base = (i % 2) ? good_up : good_down;
            Bytes b(base.begin(), base.begin() + static_cast<long>(rng() % (base.size() + 1)));
            for (int k = 0, flips = static_cast<int>(rng() % 4); k < flips && !b.empty(); ++k) {
                b[rng() % b.size()] = static_cast<std::uint8_t>(rng());
            }
            burst[i] = test::mbuf_from(b);
            burst2[i] = test::mbuf_from(b);
            REQUIRE(burst[i] != nullptr);
            REQUIRE(burst2[i] != nullptr);
        }
        const auto k1 = downlink_encap(fx.dl, burst, 32);
        const auto k2 = uplink_decap(fx.ul, burst2, 32);
        kept_dl += k1;
        kept_ul += k2;
        total += 32;
        rte_pktmbuf_free_bulk(burst, k1);
        rte_pktmbuf_free_bulk(burst2, k2);
    }
    std::uint64_t dl_drops = 0, ul_drops = 0;
    for (const auto& d : fx.dl.drops)
        dl_drops += d;
    for (const auto& d : fx.ul.drops)
        ul_drops += d;
    CHECK(kept_dl + dl_drops == total);
    CHECK(kept_ul + ul_drops == total);
    CHECK(kept_dl > 0);
    CHECK(kept_ul > 0);
    CHECK(rte_mempool_in_use_count(test::pool()) == 0);  // nothing leaked
}

TEST_CASE("scapy, an independent decoder, reads our GRE encapsulation", "[downlink][scapy]") {
    Fixture fx;
    const Bytes out = fx.down(down_frame_v6(0, 64, 24));
    const Bytes out2 = fx.down(down_frame_v6(0, 64, 24));
    REQUIRE(!out.empty());
    char path[] = "/tmp/hag-gre-XXXXXX";
    const int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    {
        std::ofstream f(path);
        for (const Bytes* b : {&out, &out2}) {
            for (auto c : *b)
                f << fmt::format("{:02x}", c);
            f << "\n";
        }
    }
    const std::string script = R"PY(
import sys
from scapy.all import Ether, IPv6, GRE, UDP
lines = open(sys.argv[1]).read().split()
for i, line in enumerate(lines):
    p = Ether(bytes.fromhex(line))
    assert p[IPv6].nh == 47, p[IPv6].nh
    assert p[IPv6].src == "2001:db8:ff::1", p[IPv6].src
    assert p[IPv6].dst == "2001:db8:aaaa::1", p[IPv6].dst
    g = p[GRE]
    assert g.key_present == 1 and g.seqnum_present == 1 and g.chksum_present == 0
    assert g.key == 0x11111111, hex(g.key)
    assert g.seqence_number == i, g.seqence_number
    inner = g.payload
    assert inner.src == "2001:db8:9999::1" and inner.dst == "2001:db8:1::42", inner.summary()
    assert inner.hlim == 63
    assert inner[UDP].dport == 5000
print("scapy: ok")
)PY";
    const std::string spath = std::string(path) + ".py";
    std::ofstream(spath) << script;
    const int rc = std::system(("/usr/bin/python3 " + spath + " " + path).c_str());
    std::remove(path);
    std::remove(spath.c_str());
    CHECK(rc == 0);
}

// ---------------------------------------------------------------------------------------------
// MTU (Packet Too Big / Fragmentation Needed / outer fragments), Time Exceeded, DSCP and ECN,
// VLAN tags on transmit.

namespace {

const auto kGw6 = a6(0x9999, 0, 0xfe);  // the gateway's core-side address (ICMP source)

// Runs a burst of frames through the downlink stage; returns the kept ones' bytes, and the
// stage's side lists (ICMP errors, later fragments) as bytes in `icmp` / `more`.
std::vector<Bytes> down_burst(Fixture& fx, const std::vector<Bytes>& in, std::vector<Bytes>& icmp,
                              std::vector<Bytes>& more) {
    std::vector<rte_mbuf*> burst;
    for (const auto& b : in) {
        burst.push_back(test::mbuf_from(b));
        REQUIRE(burst.back() != nullptr);
    }
    const auto kept = downlink_encap(fx.dl, burst.data(), static_cast<uint16_t>(burst.size()));
    std::vector<Bytes> out;
    for (uint16_t i = 0; i < kept; ++i) {
        out.push_back(test::bytes_of(burst[i]));
        rte_pktmbuf_free(burst[i]);
    }
    icmp.clear();
    more.clear();
    for (uint16_t i = 0; i < fx.dl.n_to_core; ++i) {
        icmp.push_back(test::bytes_of(fx.dl.to_core[i]));
        rte_pktmbuf_free(fx.dl.to_core[i]);
    }
    for (uint16_t i = 0; i < fx.dl.n_more_access; ++i) {
        more.push_back(test::bytes_of(fx.dl.more_access[i]));
        rte_pktmbuf_free(fx.dl.more_access[i]);
    }
    return out;
}

std::uint64_t events(const Fixture& fx, DownlinkEvent e) {
    return fx.dl.events[static_cast<std::size_t>(e)];
}

Bytes sub(const Bytes& b, std::size_t from, std::size_t len) {
    return Bytes(b.begin() + static_cast<long>(from), b.begin() + static_cast<long>(from + len));
}

// Verifies an ICMPv6 checksum over the pseudo-header (RFC 8200 §8.1).
bool icmp6_checksum_ok(const Bytes& ip6) {
    hag::net::Ipv6Address s{}, d{};
    std::copy(ip6.begin() + 8, ip6.begin() + 24, s.begin());
    std::copy(ip6.begin() + 24, ip6.begin() + 40, d.begin());
    return hag::net::ipv6_upper_layer_checksum(s, d, 58,
                                               std::span(ip6.data() + 40, ip6.size() - 40)) == 0;
}

Bytes down_frame_v4(std::size_t payload, bool df, std::uint8_t tos = 0, std::uint8_t ttl = 64) {
    Bytes f = eth(kGwCoreMac, kRouterMac, 0x0800);
    Bytes ip = ipv4_udp({203, 0, 113, 5}, {192, 0, 2, 3}, payload, tos, ttl);
    if (df) {
        ip[6] = 0x40;
        ip[10] = ip[11] = 0;
        const auto c = hag::net::internet_checksum(std::span(ip.data(), 20));
        ip[10] = static_cast<std::uint8_t>(c >> 8);
        ip[11] = static_cast<std::uint8_t>(c);
    }
    append(f, ip);
    return f;
}

}  // namespace

TEST_CASE("too big, IPv6 inner: ICMPv6 Packet Too Big back to the sender", "[downlink][mtu]") {
    Fixture fx;
    fx.dl.icmp_src_v6 = IpAddr::v6(kGw6);
    fx.dl.access_mtu = 1400;
    const Bytes in = down_frame_v6(0, 64, 1400);  // inner 1448: 1500 with outer IPv6 + GRE
    std::vector<Bytes> icmp, more;
    CHECK(down_burst(fx, {in}, icmp, more).empty());
    CHECK(fx.drops(DownlinkDrop::kTooBig) == 1);
    CHECK(events(fx, DownlinkEvent::kPacketTooBigSent) == 1);
    REQUIRE(icmp.size() == 1);
    const Bytes& e = icmp[0];
    // Back the way it came: MACs swapped.
    CHECK(sub(e, 0, 6) == Bytes(kRouterMac.begin(), kRouterMac.end()));
    CHECK(sub(e, 6, 6) == Bytes(kGwCoreMac.begin(), kGwCoreMac.end()));
    CHECK(get16(e, 12) == 0x86DD);
    const Bytes ip(e.begin() + 14, e.end());
    CHECK(ip.size() == 1280);  // RFC 4443: as much of the packet as fits the minimum MTU
    CHECK(get16(ip, 4) == 1280 - 40);
    CHECK(ip[6] == 58);
    CHECK(sub(ip, 8, 16) == Bytes(kGw6.begin(), kGw6.end()));
    const auto sender = a6(0x9999, 0, 1);
    CHECK(sub(ip, 24, 16) == Bytes(sender.begin(), sender.end()));
    CHECK(ip[40] == 2);  // Packet Too Big
    CHECK(ip[41] == 0);
    CHECK(get32(ip, 44) == 1400 - 40 - 12);  // tunnel MTU - outer overhead
    CHECK(icmp6_checksum_ok(ip));
    CHECK(sub(ip, 48, 1232) == sub(in, 14, 1232));  // the packet as received (hop limit 64)
    CHECK(fx.t->totals(5).downlink_packets == 0);

    // Without sequence numbers the overhead is 48.
    SessionConfig c = *fx.t->config(5);
    c.gre_sequence = false;
    REQUIRE(fx.t->upsert(5, c).ok());
    down_burst(fx, {in}, icmp, more);
    REQUIRE(icmp.size() == 1);
    CHECK(get32(icmp[0], 14 + 44) == 1400 - 40 - 8);
    // Just fitting is fine: 1400 - 48 = 1352 bytes of inner packet.
    const auto fits = down_burst(fx, {down_frame_v6(0, 64, 1352 - 48)}, icmp, more);
    CHECK(fits.size() == 1);
    CHECK(icmp.empty());
}

TEST_CASE("too big, IPv4 inner with DF: Fragmentation Needed with the next-hop MTU",
          "[downlink][mtu]") {
    Fixture fx;
    fx.set_live(0, false);  // the IPv4 path: outer IPv4 + GRE with key and sequence = 32
    fx.dl.icmp_src_v4 = IpAddr::v4(203, 0, 113, 254);
    const Bytes in = down_frame_v4(1472, true);  // inner 1500
    std::vector<Bytes> icmp, more;
    CHECK(down_burst(fx, {in}, icmp, more).empty());
    CHECK(events(fx, DownlinkEvent::kFragNeededSent) == 1);
    REQUIRE(icmp.size() == 1);
    const Bytes ip(icmp[0].begin() + 14, icmp[0].end());
    CHECK(get16(icmp[0], 12) == 0x0800);
    CHECK(ip.size() == 576);  // header + ICMP + 548 bytes of the packet (RFC 1812)
    CHECK(get16(ip, 2) == 576);
    CHECK(ip[9] == 1);
    CHECK(hag::net::internet_checksum(std::span(ip.data(), 20)) == 0);
    CHECK(sub(ip, 12, 8) == Bytes{203, 0, 113, 254, 203, 0, 113, 5});
    CHECK(ip[20] == 3);
    CHECK(ip[21] == 4);
    CHECK(get16(ip, 24) == 0);
    CHECK(get16(ip, 26) == 1500 - 20 - 12);
    CHECK(hag::net::internet_checksum(std::span(ip.data() + 20, ip.size() - 20)) == 0);
    CHECK(sub(ip, 28, 548) == sub(in, 14, 548));

    // FRAGMENT mode does not fragment a DF packet either.
    fx.dl.mtu_action = MtuAction::kFragment;
    fx.dl.pool = test::pool();
    down_burst(fx, {in}, icmp, more);
    CHECK(icmp.size() == 1);
    CHECK(events(fx, DownlinkEvent::kFragNeededSent) == 2);
    CHECK(events(fx, DownlinkEvent::kFragmented) == 0);
    CHECK(rte_mempool_in_use_count(test::pool()) == 0);
}

TEST_CASE("ICMP errors are rate-limited and never sent about errors or without a source",
          "[downlink][mtu][icmp]") {
    Fixture fx;
    fx.dl.access_mtu = 1280;
    const Bytes big = down_frame_v6(0, 64, 1300);
    std::vector<Bytes> icmp, more;
    // No IPv6 source address configured: counted, nothing sent.
    down_burst(fx, {big}, icmp, more);
    CHECK(icmp.empty());
    CHECK(events(fx, DownlinkEvent::kIcmpSuppressed) == 1);
    fx.dl.icmp_src_v6 = IpAddr::v6(kGw6);

    // 3 per second: a burst of 8 at one instant gets 3 answers.
    fx.dl.icmp_per_second = 3;
    fx.dl.tsc_hz = 1'000'000'000'000ull;  // the bucket refills nothing during the test
    down_burst(fx, std::vector<Bytes>(8, big), icmp, more);
    CHECK(icmp.size() == 3);
    CHECK(events(fx, DownlinkEvent::kPacketTooBigSent) == 3);
    CHECK(events(fx, DownlinkEvent::kIcmpRateLimited) == 5);
    CHECK(fx.drops(DownlinkDrop::kTooBig) == 9);
    fx.dl.icmp_per_second = 0;  // off
    down_burst(fx, {big}, icmp, more);
    CHECK(icmp.empty());
    CHECK(events(fx, DownlinkEvent::kIcmpRateLimited) == 6);

    // About an ICMPv6 error (type 1), from a multicast source: never.
    fx.dl.icmp_per_second = 1000;
    fx.dl.icmp_tat = 0;
    fx.dl.tsc_hz = 0;
    Bytes err = big;
    err[14 + 6] = 58;
    err[14 + 40] = 1;
    Bytes mcast = big;
    mcast[14 + 8] = 0xff;
    Bytes echo = big;
    echo[14 + 6] = 58;
    echo[14 + 40] = 128;  // echo request: answered
    down_burst(fx, {err, mcast, echo}, icmp, more);
    CHECK(icmp.size() == 1);
    CHECK(events(fx, DownlinkEvent::kIcmpSuppressed) == 3);
    CHECK(rte_mempool_in_use_count(test::pool()) == 0);
}

TEST_CASE("expired TTL / hop limit: ICMP Time Exceeded, inner TTL decremented otherwise",
          "[downlink][ttl]") {
    Fixture fx;
    fx.dl.icmp_src_v6 = IpAddr::v6(kGw6);
    fx.dl.icmp_src_v4 = IpAddr::v4(203, 0, 113, 254);
    std::vector<Bytes> icmp, more;
    CHECK(down_burst(fx, {down_frame_v6(0, 1)}, icmp, more).empty());
    REQUIRE(icmp.size() == 1);
    CHECK(icmp[0][14 + 40] == 3);  // ICMPv6 Time Exceeded, hop limit exceeded in transit
    CHECK(icmp[0][14 + 41] == 0);
    CHECK(icmp6_checksum_ok(Bytes(icmp[0].begin() + 14, icmp[0].end())));
    fx.set_live(0, false);
    CHECK(down_burst(fx, {down_frame_v4(20, false, 0, 1)}, icmp, more).empty());
    REQUIRE(icmp.size() == 1);
    CHECK(icmp[0][14 + 20] == 11);                 // ICMP Time Exceeded
    CHECK(get16(icmp[0], 14 + 2) == 20 + 8 + 48);  // the whole 48-byte packet quoted
    CHECK(fx.drops(DownlinkDrop::kTtlExpired) == 2);
    CHECK(events(fx, DownlinkEvent::kTimeExceededSent) == 2);
    const auto out = down_burst(fx, {down_frame_v4(20, false, 0, 2)}, icmp, more);
    REQUIRE(out.size() == 1);
    CHECK(out[0][14 + 32 + 8] == 1);  // inner TTL 2 -> 1
}

TEST_CASE("FRAGMENT: the outer IPv6 packet is fragmented and reassembles to the tunnel packet",
          "[downlink][mtu][fragment]") {
    Fixture fx;
    fx.dl.mtu_action = MtuAction::kFragment;
    fx.dl.pool = test::pool();
    fx.dl.access_mtu = 1280;
    fx.dl.fragment_id = 0x01020304;
    const Bytes in = down_frame_v6(0x10 /* ECT(0) */, 64, 1400);  // inner 1448
    std::vector<Bytes> icmp, more;
    const auto out = down_burst(fx, {in}, icmp, more);
    REQUIRE(out.size() == 1);
    REQUIRE(more.size() == 1);
    CHECK(icmp.empty());
    CHECK(events(fx, DownlinkEvent::kFragmented) == 1);
    CHECK(events(fx, DownlinkEvent::kFragments) == 2);
    Bytes payload;  // the fragmentable part, GRE onward
    std::size_t expect_off = 0;
    for (const Bytes* f : std::initializer_list<const Bytes*>{&out[0], &more[0]}) {
        CHECK(get16(*f, 12) == 0x86DD);
        CHECK(f->size() - 14 <= 1280);
        CHECK(get16(*f, 14 + 4) == f->size() - 14 - 40);
        CHECK((*f)[14 + 6] == 44);
        CHECK(get32(*f, 14) == (6u << 28 | 0x10u << 20));  // traffic class on every fragment
        const std::size_t fh = 14 + 40;
        CHECK((*f)[fh] == 47);
        CHECK(get32(*f, fh + 4) == 0x01020304);
        const std::uint16_t off_m = get16(*f, fh + 2);
        CHECK((off_m & ~7u) == expect_off);
        CHECK((off_m & 1) == (f == &out[0] ? 1 : 0));
        payload.insert(payload.end(), f->begin() + fh + 8, f->end());
        expect_off += f->size() - fh - 8;
        if (f == &out[0])
            CHECK((f->size() - fh - 8) % 8 == 0);
    }
    REQUIRE(payload.size() == 12 + 1448);
    CHECK(get16(payload, 0) == 0x3000);
    CHECK(get32(payload, 4) == 0x11111111);
    CHECK(get32(payload, 8) == 0);  // sequence number
    Bytes inner(in.begin() + 14, in.end());
    inner[7] = 63;
    CHECK(Bytes(payload.begin() + 12, payload.end()) == inner);
    CHECK(fx.dl.fragment_id == 0x01020305);
    CHECK(rte_mempool_in_use_count(test::pool()) == 0);
}

TEST_CASE("FRAGMENT: outer IPv4 fragments of an IPv4 packet without DF",
          "[downlink][mtu][fragment]") {
    Fixture fx;
    fx.set_live(0, false);
    fx.dl.mtu_action = MtuAction::kFragment;
    fx.dl.pool = test::pool();
    fx.dl.access_mtu = 1300;
    const Bytes in = down_frame_v4(1472, false);  // inner 1500: two fragments
    std::vector<Bytes> icmp, more;
    const auto out = down_burst(fx, {in}, icmp, more);
    REQUIRE(out.size() == 1);
    REQUIRE(more.size() == 1);
    Bytes payload;
    std::uint16_t id = 0;
    for (const Bytes* f : std::initializer_list<const Bytes*>{&out[0], &more[0]}) {
        const Bytes ip(f->begin() + 14, f->begin() + 34);
        CHECK(hag::net::internet_checksum(ip) == 0);
        CHECK(get16(ip, 2) == f->size() - 14);
        CHECK(f->size() - 14 <= 1300);
        const bool first = f == &out[0];
        if (first)
            id = get16(ip, 4);
        CHECK(get16(ip, 4) == id);
        CHECK(get16(ip, 6) == (first ? 0x2000 : payload.size() / 8));  // MF / offset, DF clear
        payload.insert(payload.end(), f->begin() + 34, f->end());
    }
    REQUIRE(payload.size() == 12 + 1500);
    CHECK(get32(payload, 4) == 0x22222222);
    const Bytes inner(payload.begin() + 12, payload.end());
    CHECK(inner[8] == 63);
    CHECK(hag::net::internet_checksum(std::span(inner.data(), 20)) == 0);

    // No mbuf to be had: dropped and counted, nothing leaks.
    fx.dl.pool = nullptr;
    CHECK(down_burst(fx, {in}, icmp, more).empty());
    CHECK(fx.drops(DownlinkDrop::kFragmentNoMbuf) == 1);
    CHECK(rte_mempool_in_use_count(test::pool()) == 0);
}

TEST_CASE("scapy reassembles our outer fragments", "[downlink][fragment][scapy]") {
    Fixture fx;
    fx.dl.mtu_action = MtuAction::kFragment;
    fx.dl.pool = test::pool();
    fx.dl.access_mtu = 1280;
    std::vector<Bytes> icmp, more, frames;
    auto o6 = down_burst(fx, {down_frame_v6(0, 64, 2000 - 62)}, icmp, more);  // inner 1986
    REQUIRE(o6.size() == 1);
    REQUIRE(more.size() == 1);
    frames = {o6[0], more[0]};
    fx.set_live(0, false);
    auto o4 = down_burst(fx, {down_frame_v4(1900, false)}, icmp, more);
    REQUIRE(o4.size() == 1);
    REQUIRE(more.size() == 1);
    frames.push_back(o4[0]);
    frames.push_back(more[0]);
    char path[] = "/tmp/hag-frag-XXXXXX";
    const int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    {
        std::ofstream f(path);
        for (const Bytes& b : frames) {
            for (auto c : b)
                f << fmt::format("{:02x}", c);
            f << "\n";
        }
    }
    const std::string script = R"PY(
import sys
from scapy.all import Ether, IPv6, IP, GRE, UDP, defragment6, defragment, IPv6ExtHdrFragment
lines = [Ether(bytes.fromhex(l)) for l in open(sys.argv[1]).read().split()]
v6 = defragment6([p[IPv6] for p in lines[:2]])
g = GRE(bytes(v6.payload))
assert g.key == 0x11111111, hex(g.key)
inner = IPv6(bytes(g.payload))
assert inner.plen == 1986 - 40 and inner[UDP].len == 1986 - 40, inner.plen
assert bytes(inner[UDP].payload) == bytes(i % 256 for i in range(1986 - 48))
v4 = defragment([p[IP] for p in lines[2:]])
assert len(v4) == 1, v4
g = v4[0][GRE]
assert g.key == 0x22222222
inner = g.payload
assert inner.len == 1928 and inner.ttl == 63, inner.summary()
assert bytes(inner[UDP].payload) == bytes(i % 256 for i in range(1900))
print("scapy: ok")
)PY";
    const std::string spath = std::string(path) + ".py";
    std::ofstream(spath) << script;
    const int rc = std::system(("/usr/bin/python3 " + spath + " " + path).c_str());
    std::remove(path);
    std::remove(spath.c_str());
    CHECK(rc == 0);
}

TEST_CASE("DSCP copied, fixed or mapped; ECN copied to the outer header", "[downlink][dscp]") {
    Fixture fx;
    // IPv6 inner: DSCP 46, ECT(1) -> outer TC 46<<2|1.
    auto tc_of = [&](std::uint8_t tc) {
        const Bytes out = fx.down(down_frame_v6(tc));
        REQUIRE_FALSE(out.empty());
        return static_cast<std::uint8_t>(get32(out, 14) >> 20);
    };
    CHECK(tc_of(46 << 2 | 1) == (46 << 2 | 1));
    CHECK(tc_of(10 << 2 | 3) == (10 << 2 | 3));  // CE copied (RFC 6040 normal mode)
    fx.dl.dscp.fill(8);                          // fixed CS1
    CHECK(tc_of(46 << 2 | 2) == (8 << 2 | 2));
    fx.dl.dscp = dscp_identity();
    fx.dl.dscp[46] = 34;  // map EF -> AF41
    CHECK(tc_of(46 << 2) == 34 << 2);
    CHECK(tc_of(10 << 2) == 10 << 2);
    // IPv4 inner over the IPv4 path.
    fx.set_live(0, false);
    Bytes in = eth(kGwCoreMac, kRouterMac, 0x0800);
    append(in, ipv4_udp({203, 0, 113, 5}, {192, 0, 2, 3}, 20, 46 << 2 | 2));
    const Bytes out = fx.down(in);
    REQUIRE_FALSE(out.empty());
    CHECK(out[15] == (34 << 2 | 2));
    CHECK(hag::net::internet_checksum(std::span(out.data() + 14, 20)) == 0);
}

TEST_CASE("uplink ECN per RFC 6040: CE and ECT(1) reach the inner packet", "[uplink][ecn]") {
    Fixture fx;
    const auto coa = a6(0xaaaa, 0, 1);
    auto frame = [&](std::uint8_t outer_ecn, const Bytes& inner) {
        Bytes f = up_frame_v6(0x3000, 0xabcd0001, 1, coa, inner);
        f[14 + 1] = static_cast<std::uint8_t>(f[14 + 1] | outer_ecn << 4);
        return f;
    };
    auto inner6 = [&](std::uint8_t ecn) {
        return ipv6_udp(a6(1, 0, 0x42), a6(0x9999, 0, 1), 16, ecn);
    };
    auto ecn6 = [](const Bytes& out) { return (out[14 + 1] >> 4) & 3; };
    Bytes out = fx.up(frame(3, inner6(2)));  // CE over ECT(0) -> CE
    REQUIRE_FALSE(out.empty());
    CHECK(ecn6(out) == 3);
    out = fx.up(frame(3, inner6(1)));
    REQUIRE_FALSE(out.empty());
    CHECK(ecn6(out) == 3);
    out = fx.up(frame(1, inner6(2)));  // ECT(1) over ECT(0) -> ECT(1)
    REQUIRE_FALSE(out.empty());
    CHECK(ecn6(out) == 1);
    out = fx.up(frame(2, inner6(1)));  // ECT(0) outer: inner unchanged
    REQUIRE_FALSE(out.empty());
    CHECK(ecn6(out) == 1);
    out = fx.up(frame(0, inner6(3)));
    REQUIRE_FALSE(out.empty());
    CHECK(ecn6(out) == 3);
    CHECK(fx.up(frame(3, inner6(0))).empty());  // CE over Not-ECT: dropped
    CHECK(fx.drops(UplinkDrop::kEcnNotEct) == 1);
    // IPv4 inner: the header checksum follows.
    const Bytes in4 = ipv4_udp({192, 0, 2, 1}, {203, 0, 113, 5}, 16, 0x2a /* DSCP 10, ECT(0) */);
    out = fx.up(frame(3, in4));
    REQUIRE_FALSE(out.empty());
    CHECK(out[14 + 1] == 0x2b);
    CHECK(hag::net::internet_checksum(std::span(out.data() + 14, 20)) == 0);
}

TEST_CASE("VLAN on transmit: untagged frames get the port's tag, tagged ones keep theirs",
          "[vlan]") {
    test::ensure_eal();
    PortCounters c;
    Bytes plain = eth(kCpeMac, kGwAccessMac, 0x86DD);
    plain.resize(60, 0xab);
    Bytes tagged = plain;
    tagged.insert(tagged.begin() + 12, {0x81, 0x00, 0x00, 0x07});
    rte_mbuf* pkts[2] = {test::mbuf_from(plain), test::mbuf_from(tagged)};
    REQUIRE(add_port_vlan(100, pkts, 2, c) == 2);
    const Bytes a = test::bytes_of(pkts[0]);
    const Bytes b = test::bytes_of(pkts[1]);
    CHECK(a.size() == 64);
    CHECK(sub(a, 0, 12) == sub(plain, 0, 12));
    CHECK(get16(a, 12) == 0x8100);
    CHECK(get16(a, 14) == 100);
    CHECK(get16(a, 16) == 0x86DD);
    CHECK(Bytes(a.begin() + 18, a.end()) == Bytes(plain.begin() + 14, plain.end()));
    CHECK(b == tagged);
    rte_pktmbuf_free_bulk(pkts, 2);
    // No headroom: dropped and counted.
    rte_mbuf* full = test::mbuf_from(plain);
    rte_pktmbuf_prepend(full, rte_pktmbuf_headroom(full));
    CHECK(add_port_vlan(100, &full, 1, c) == 0);
    CHECK(c.tx_vlan_errors == 1);
    CHECK(rte_mempool_in_use_count(test::pool()) == 0);
}

TEST_CASE("hostile frames through the MTU and ICMP paths: accounted, well-formed, no leak",
          "[robust][mtu]") {
    Fixture fx;
    fx.dl.icmp_src_v6 = IpAddr::v6(kGw6);
    fx.dl.icmp_src_v4 = IpAddr::v4(203, 0, 113, 254);
    fx.dl.icmp_per_second = 100000;
    fx.dl.access_mtu = 1280;
    fx.dl.pool = test::pool();
    std::mt19937 rng(777);
    const std::vector<Bytes> bases = {down_frame_v6(0, 64, 1400), down_frame_v6(0, 1, 1400),
                                      down_frame_v4(1400, true), down_frame_v4(1400, false),
                                      down_frame_v4(1400, false, 0, 1)};
    std::uint64_t total = 0, kept = 0, side = 0;
    for (int round = 0; round < 400; ++round) {
        fx.dl.mtu_action = (round % 2) ? MtuAction::kFragment : MtuAction::kPacketTooBig;
        fx.set_live(0, round % 4 < 2);  // IPv6 or IPv4 outer
        std::vector<Bytes> in;
        for (int i = 0; i < 32; ++i) {
            const Bytes& base = bases[rng() % bases.size()];
            Bytes b(base.begin(), base.begin() + static_cast<long>(rng() % (base.size() + 1)));
            if (rng() % 4 != 0)
                b = base;  // most whole, so the MTU paths run
            for (int k = 0, flips = static_cast<int>(rng() % 3); k < flips && !b.empty(); ++k) {
                b[rng() % b.size()] = static_cast<std::uint8_t>(rng());
            }
            in.push_back(std::move(b));
        }
        std::vector<Bytes> icmp, more;
        const auto out = down_burst(fx, in, icmp, more);
        total += in.size();
        kept += out.size();
        side += icmp.size() + more.size();
        for (const auto* list :
             std::initializer_list<const std::vector<Bytes>*>{&out, &icmp, &more}) {
            for (const Bytes& f : *list) {
                const L2Info l2 = [&] {
                    rte_mbuf* m = test::mbuf_from(f);
                    const L2Info r = parse_l2(m);
                    rte_pktmbuf_free(m);
                    return r;
                }();
                REQUIRE(l2.l3_offset != 0);
                const std::size_t ip_len = f.size() - l2.l3_offset;
                CHECK(ip_len <= 1280u);
                const auto* ip = f.data() + l2.l3_offset;
                if (l2.ether_type == 0x86DD)
                    CHECK(40u + (ip[4] << 8 | ip[5]) == ip_len);
                else
                    CHECK(static_cast<std::size_t>(ip[2] << 8 | ip[3]) == ip_len);
            }
        }
    }
    std::uint64_t drops = 0;
    for (const auto& d : fx.dl.drops)
        drops += d;
    CHECK(kept + drops == total);
    CHECK(side > 0);
    CHECK(events(fx, DownlinkEvent::kFragmented) > 0);
    CHECK(events(fx, DownlinkEvent::kPacketTooBigSent) > 0);
    CHECK(events(fx, DownlinkEvent::kFragNeededSent) > 0);
    CHECK(events(fx, DownlinkEvent::kTimeExceededSent) > 0);
    CHECK(rte_mempool_in_use_count(test::pool()) == 0);
}

// NAT traversal (issue 10): GRE in UDP on a NATed IPv4 path, both ways; per-path tunnel MTU.

namespace {

constexpr std::uint16_t kNatPort = 40123;

// The fixture's IPv4 path (BID 2) made NATed: user data in UDP to 198.51.100.7:kNatPort.
void make_nat(Fixture& fx) {
    SessionConfig c = *fx.t->config(5);
    c.paths[1].udp_port = kNatPort;
    REQUIRE(fx.t->upsert(5, c).ok());
}

// An outer IPv4 header (TTL 60, no options, checksum set) for `payload` octets of `proto`.
Bytes outer_ipv4(std::array<std::uint8_t, 4> src, std::array<std::uint8_t, 4> dst,
                 std::uint8_t proto, std::size_t payload, std::uint16_t id) {
    Bytes ip{0x45, 0};
    put16(ip, static_cast<std::uint16_t>(20 + payload));
    put16(ip, id);
    put16(ip, 0);
    ip.push_back(60);
    ip.push_back(proto);
    put16(ip, 0);
    ip.insert(ip.end(), src.begin(), src.end());
    ip.insert(ip.end(), dst.begin(), dst.end());
    const auto c = hag::net::internet_checksum(std::span(ip.data(), 20));
    ip[10] = static_cast<std::uint8_t>(c >> 8);
    ip[11] = static_cast<std::uint8_t>(c);
    return ip;
}

// An uplink frame from the NAT: outer IPv4 from `src`:`sport` to 198.51.100.1:`dport`, UDP with
// `payload` (a checksum when `csum`), Ethernet first.
Bytes up_frame_udp(std::array<std::uint8_t, 4> src, std::uint16_t sport, std::uint16_t dport,
                   const Bytes& payload, bool csum) {
    Bytes udp;
    put16(udp, sport);
    put16(udp, dport);
    put16(udp, static_cast<std::uint16_t>(8 + payload.size()));
    put16(udp, 0);
    append(udp, payload);
    const std::array<std::uint8_t, 4> dst{198, 51, 100, 1};
    if (csum) {
        Bytes pseudo(src.begin(), src.end());
        pseudo.insert(pseudo.end(), dst.begin(), dst.end());
        pseudo.push_back(0);
        pseudo.push_back(17);
        put16(pseudo, static_cast<std::uint16_t>(udp.size()));
        append(pseudo, udp);
        auto c = hag::net::internet_checksum(pseudo);
        if (c == 0) {
            c = 0xffff;
        }
        udp[6] = static_cast<std::uint8_t>(c >> 8);
        udp[7] = static_cast<std::uint8_t>(c);
    }
    Bytes f = eth(kGwAccessMac, kCpeMac, 0x0800);
    append(f, outer_ipv4(src, dst, 17, udp.size(), 7));
    append(f, udp);
    return f;
}

Bytes gre_kseq(std::uint32_t key, std::uint32_t seq, const Bytes& inner) {
    Bytes g;
    put16(g, 0x3000);
    put16(g, (inner[0] >> 4) == 4 ? 0x0800 : 0x86DD);
    put32(g, key);
    put32(g, seq);
    append(g, inner);
    return g;
}

std::uint64_t up_events(const Fixture& fx, UplinkEvent e) {
    return fx.ul.events[static_cast<std::size_t>(e)];
}

}  // namespace

TEST_CASE("downlink on a NATed path: IPv4 / UDP 5437 -> observed port / GRE, byte for byte",
          "[downlink][nat]") {
    Fixture fx;
    make_nat(fx);
    fx.set_live(0, false);
    const Bytes in = down_frame_v4(20, false, 0x28);
    const Bytes out = fx.down(in);
    REQUIRE(out.size() == 14 + 20 + 8 + 12 + 48);
    const Bytes outer = sub(out, 14, 20);
    CHECK(outer[0] == 0x45);
    CHECK(outer[1] == 0x28);
    CHECK(get16(outer, 2) == 20 + 8 + 12 + 48);
    CHECK(outer[9] == 17);
    CHECK(hag::net::internet_checksum(outer) == 0);
    CHECK(sub(outer, 12, 8) == Bytes{198, 51, 100, 1, 198, 51, 100, 7});
    // UDP from the data port to the NAT's port, length, no checksum.
    CHECK(get16(out, 34) == 5437);
    CHECK(get16(out, 36) == kNatPort);
    CHECK(get16(out, 38) == 8 + 12 + 48);
    CHECK(get16(out, 40) == 0);
    // GRE with key and sequence (one space with the other paths), then the inner packet.
    CHECK(get16(out, 42) == 0x3000);
    CHECK(get16(out, 44) == 0x0800);
    CHECK(get32(out, 46) == 0x22222222);
    CHECK(get32(out, 50) == 0);
    Bytes inner = sub(in, 14, 48);
    CHECK(sub(out, 54, 48)[8] == 63);
    inner[8] = 63;
    CHECK(sub(out, 54, 8) == sub(inner, 0, 8));
    CHECK(get32(fx.down(in), 50) == 1);
    CHECK(fx.t->downlink_traffic(5, 1).packets.load() == 2);
    // The IPv6 path is untouched by the NAT setting of the other path.
    fx.set_live(0, true);
    fx.set_live(1, false);
    CHECK(fx.down(down_frame_v6())[20] == 47);
}

TEST_CASE("downlink on a NATed path: the UDP header counts against the MTU", "[downlink][nat]") {
    Fixture fx;
    make_nat(fx);
    fx.set_live(0, false);
    fx.dl.icmp_src_v4 = IpAddr::v4(203, 0, 113, 254);
    std::vector<Bytes> icmp, more;
    // 1500 - 20 - 8 - 12 = 1460 bytes of inner packet fit, 1461 do not.
    CHECK(down_burst(fx, {down_frame_v4(1460 - 28, true)}, icmp, more).size() == 1);
    CHECK(down_burst(fx, {down_frame_v4(1461 - 28, true)}, icmp, more).empty());
    REQUIRE(icmp.size() == 1);
    CHECK(get16(icmp[0], 14 + 20 + 6) == 1460);  // next-hop MTU in Fragmentation Needed
    // Without DF and with mtu_action FRAGMENT: outer fragments that carry the UDP header once.
    fx.dl.mtu_action = MtuAction::kFragment;
    fx.dl.pool = test::pool();
    const auto first = down_burst(fx, {down_frame_v4(1600, false)}, icmp, more);
    REQUIRE(first.size() == 1);
    REQUIRE(more.size() == 1);
    CHECK(first[0][14 + 9] == 17);
    CHECK(more[0][14 + 9] == 17);
    CHECK(get16(first[0], 14 + 20 + 2) == kNatPort);
    CHECK(get16(first[0], 14 + 20 + 4) == 8 + 12 + 1628);  // the whole datagram's length
    CHECK(get16(first[0], 14 + 6) == 0x2000);              // MF
    CHECK(rte_mempool_in_use_count(test::pool()) == 0);
}

TEST_CASE("uplink on a NATed path: GRE in UDP from the observed address and port",
          "[uplink][nat]") {
    Fixture fx;
    make_nat(fx);
    const Bytes inner = ipv4_udp({192, 0, 2, 3}, {203, 0, 113, 5}, 16);
    const std::array<std::uint8_t, 4> nat{198, 51, 100, 7};
    for (const bool csum : {false, true}) {
        const Bytes out =
            fx.up(up_frame_udp(nat, kNatPort, 5437, gre_kseq(0xabcd0001, 9, inner), csum));
        REQUIRE(out.size() == 14 + inner.size());
        CHECK(get16(out, 12) == 0x0800);
        CHECK(sub(out, 14, inner.size()) == inner);
        CHECK(fx.seqs[0].seq == 9);
        CHECK(fx.seqs[0].path == 1);
        CHECK(fx.seqs[0].flags == UplinkMeta::kHasSeq);
    }
    CHECK(fx.t->uplink_traffic(5, 1).packets.load() == 2);
    CHECK(up_events(fx, UplinkEvent::kUdpDecapsulated) == 2);

    // Anti-spoofing: another port of the NAT, another address, or plain GRE from the NAT's
    // address (the path expects UDP) are not this path — the port only with nat_port_learning
    // off (with it on, the next test case: the downlink follows the data's port).
    fx.ul.nat_port_learning = false;
    CHECK(fx.up(up_frame_udp(nat, kNatPort + 1, 5437, gre_kseq(0xabcd0001, 10, inner), true))
              .empty());
    fx.ul.nat_port_learning = true;
    CHECK(fx.up(up_frame_udp({198, 51, 100, 8}, kNatPort, 5437, gre_kseq(0xabcd0001, 10, inner),
                             false))
              .empty());
    CHECK(fx.drops(UplinkDrop::kSpoofedOuter) == 2);
    // Inner source outside the session's prefixes.
    const Bytes foreign = ipv4_udp({192, 0, 2, 99}, {203, 0, 113, 5}, 16);
    CHECK(
        fx.up(up_frame_udp(nat, kNatPort, 5437, gre_kseq(0xabcd0001, 10, foreign), true)).empty());
    CHECK(fx.drops(UplinkDrop::kSpoofedInner) == 1);
    // Unknown key.
    CHECK(fx.up(up_frame_udp(nat, kNatPort, 5437, gre_kseq(0x0bad, 10, inner), true)).empty());
    CHECK(fx.drops(UplinkDrop::kUnknownKey) == 1);
    // UDP to another port is not user data (5436 is punted before the stage; anything else
    // is not GRE).
    CHECK(fx.up(up_frame_udp(nat, kNatPort, 5438, gre_kseq(0xabcd0001, 10, inner), true)).empty());
    CHECK(fx.drops(UplinkDrop::kNotGre) == 1);
    // Wrong checksum.
    Bytes bad = up_frame_udp(nat, kNatPort, 5437, gre_kseq(0xabcd0001, 10, inner), true);
    bad.back() ^= 0x5a;
    CHECK(fx.up(bad).empty());
    CHECK(fx.drops(UplinkDrop::kUdpChecksum) == 1);
    // UDP length disagreeing with the IP packet, both ways; a truncated UDP header.
    for (const int delta : {-1, 1}) {
        Bytes f = up_frame_udp(nat, kNatPort, 5437, gre_kseq(0xabcd0001, 10, inner), false);
        const auto l = static_cast<std::uint16_t>(get16(f, 14 + 20 + 4) + delta);
        f[14 + 20 + 4] = static_cast<std::uint8_t>(l >> 8);
        f[14 + 20 + 5] = static_cast<std::uint8_t>(l);
        CHECK(fx.up(f).empty());
    }
    Bytes trunc = up_frame_udp(nat, kNatPort, 5437, Bytes{}, false);
    trunc.resize(14 + 20 + 6);
    trunc[14 + 3] = 26;  // IP total length 26: 6 bytes of UDP header
    trunc[14 + 10] = trunc[14 + 11] = 0;
    const auto c = hag::net::internet_checksum(std::span(trunc.data() + 14, 20));
    trunc[14 + 10] = static_cast<std::uint8_t>(c >> 8);
    trunc[14 + 11] = static_cast<std::uint8_t>(c);
    CHECK(fx.up(trunc).empty());
    CHECK(fx.drops(UplinkDrop::kUdpMalformed) == 3);
    // A GRE header inside UDP that is itself bad keeps its reason.
    Bytes bad_gre = gre_kseq(0xabcd0001, 10, inner);
    bad_gre[1] = 0x07;  // version 7
    CHECK(fx.up(up_frame_udp(nat, kNatPort, 5437, bad_gre, true)).empty());
    CHECK(fx.drops(UplinkDrop::kGreMalformed) == 1);

    // Keepalives (a payload shorter than a GRE header): consumed, counted, no drop.
    std::uint64_t drops_before = 0;
    for (const auto& d : fx.ul.drops) {
        drops_before += d;
    }
    CHECK(fx.up(up_frame_udp(nat, kNatPort, 5437, Bytes{0xff}, true)).empty());
    CHECK(fx.up(up_frame_udp(nat, kNatPort, 5437, Bytes{}, false)).empty());
    CHECK(up_events(fx, UplinkEvent::kNatKeepalive) == 2);
    std::uint64_t drops_after = 0;
    for (const auto& d : fx.ul.drops) {
        drops_after += d;
    }
    CHECK(drops_after == drops_before);
    CHECK(fx.ul.decapsulated == 2);
}

TEST_CASE("uplink: plain GRE from a NATed path's address is refused, the IPv6 path is not",
          "[uplink][nat]") {
    Fixture fx;
    make_nat(fx);
    const Bytes inner6 = ipv6_udp(a6(1, 0, 0x42), a6(0x9999, 0, 1), 16);
    CHECK_FALSE(fx.up(up_frame_v6(0x3000, 0xabcd0001, 1, a6(0xaaaa, 0, 1), inner6)).empty());
    // The same GRE, outer IPv4 from the NAT's address without UDP.
    Bytes gre = gre_kseq(0xabcd0001, 2, ipv4_udp({192, 0, 2, 3}, {203, 0, 113, 5}, 16));
    Bytes f = up_frame_udp({198, 51, 100, 7}, 1, 2, Bytes{}, false);
    f.resize(14 + 20);
    append(f, gre);
    f[14 + 9] = 47;
    f[14 + 2] = static_cast<std::uint8_t>((20 + gre.size()) >> 8);
    f[14 + 3] = static_cast<std::uint8_t>(20 + gre.size());
    f[14 + 10] = f[14 + 11] = 0;
    const auto c = hag::net::internet_checksum(std::span(f.data() + 14, 20));
    f[14 + 10] = static_cast<std::uint8_t>(c >> 8);
    f[14 + 11] = static_cast<std::uint8_t>(c);
    CHECK(fx.up(f).empty());
    CHECK(fx.drops(UplinkDrop::kSpoofedOuter) == 1);
}

TEST_CASE("uplink on a NATed path: data from another port of the NAT's address is followed",
          "[uplink][downlink][nat]") {
    Fixture fx;
    make_nat(fx);
    fx.set_live(0, false);  // the downlink goes over the NATed path
    const std::array<std::uint8_t, 4> nat{198, 51, 100, 7};
    const Bytes inner = ipv4_udp({192, 0, 2, 3}, {203, 0, 113, 5}, 16);
    const Bytes foreign = ipv4_udp({192, 0, 2, 99}, {203, 0, 113, 5}, 16);
    constexpr std::uint16_t kDataPort = 40777;  // where the NAT put the data flow
    std::uint32_t seq = 1;
    auto from = [&](std::array<std::uint8_t, 4> src, std::uint16_t sport, const Bytes& in,
                    std::uint32_t key = 0xabcd0001) {
        return fx.up(up_frame_udp(src, sport, 5437, gre_kseq(key, seq++, in), true));
    };
    auto down_port = [&] {
        const Bytes out = fx.down(down_frame_v4(20, false));
        REQUIRE(out.size() > 38);
        return get16(out, 36);
    };
    const SessionState& st = fx.t->state(5);
    REQUIRE(down_port() == kNatPort);

    // Hostile first: a foreign inner source, an unknown key or another address from the new
    // port teach nothing.
    CHECK(from(nat, kDataPort, foreign).empty());
    CHECK(fx.drops(UplinkDrop::kSpoofedInner) == 1);
    CHECK(from(nat, kDataPort, inner, 0x0bad).empty());
    CHECK(fx.drops(UplinkDrop::kUnknownKey) == 1);
    CHECK(from({198, 51, 100, 8}, kDataPort, inner).empty());
    CHECK(fx.drops(UplinkDrop::kSpoofedOuter) == 1);
    CHECK(up_events(fx, UplinkEvent::kNatPortLearned) == 0);
    CHECK(st.path_nat_port[1].load() == 0);
    CHECK(down_port() == kNatPort);

    // The session's key, the NAT's address, an inner source of the session: learnt.
    CHECK_FALSE(from(nat, kDataPort, inner).empty());
    CHECK(fx.seqs[0].path == 1);
    CHECK(up_events(fx, UplinkEvent::kNatPortLearned) == 1);
    CHECK(st.path_nat_port[1].load() == kDataPort);
    CHECK(down_port() == kDataPort);
    CHECK_FALSE(from(nat, kDataPort, inner).empty());  // no change, no event
    CHECK(up_events(fx, UplinkEvent::kNatPortLearned) == 1);
    // A spoofed inner source from a third port changes nothing.
    CHECK(from(nat, kDataPort + 1, foreign).empty());
    CHECK(down_port() == kDataPort);

    // A control upsert that keeps the path's address keeps the port, wherever the path sits:
    // another weight, a new signalled port, then the paths in the other order.
    SessionConfig c = *fx.t->config(5);
    c.paths[1].weight = 777;
    c.paths[1].udp_port = kNatPort + 2;
    REQUIRE(fx.t->upsert(5, c).ok());
    CHECK(down_port() == kDataPort);
    std::swap(c.paths[0], c.paths[1]);
    REQUIRE(fx.t->upsert(5, c).ok());
    CHECK(st.path_nat_port[0].load() == kDataPort);
    CHECK(st.path_nat_port[1].load() == 0);
    CHECK(down_port() == kDataPort);
    std::swap(c.paths[0], c.paths[1]);
    REQUIRE(fx.t->upsert(5, c).ok());
    CHECK(down_port() == kDataPort);

    // Data from the signalled port again (the NAT rebound): the downlink goes back to it.
    CHECK_FALSE(from(nat, kNatPort + 2, inner).empty());
    CHECK(up_events(fx, UplinkEvent::kNatPortLearned) == 2);
    CHECK(down_port() == kNatPort + 2);

    // A new address for the path (another NAT) forgets the learnt port.
    CHECK_FALSE(from(nat, kDataPort, inner).empty());
    CHECK(down_port() == kDataPort);
    c = *fx.t->config(5);
    c.paths[1].coa = IpAddr::v4(198, 51, 100, 9);
    REQUIRE(fx.t->upsert(5, c).ok());
    CHECK(st.path_nat_port[1].load() == 0);
    CHECK(down_port() == kNatPort + 2);
    CHECK(from(nat, kDataPort, inner).empty());  // the old address is no path any more
    CHECK_FALSE(from({198, 51, 100, 9}, kDataPort, inner).empty());
    CHECK(down_port() == kDataPort);

    // A session that ends and another that takes its id start without a port.
    REQUIRE(fx.t->remove(5).ok());
    REQUIRE(fx.t->upsert(5, c).ok());
    CHECK(st.path_nat_port[1].load() == 0);

    // Learning off: the port must be the signalled one.
    fx.ul.nat_port_learning = false;
    CHECK(from({198, 51, 100, 9}, kDataPort, inner).empty());
    CHECK(fx.drops(UplinkDrop::kSpoofedOuter) == 3);
    CHECK(st.path_nat_port[1].load() == 0);
    fx.ul.nat_port_learning = true;

    // Two NATed paths of the session behind one address: an unknown port is neither's.
    c = *fx.t->config(5);
    c.paths[2] = c.paths[1];
    c.paths[2].bid = 3;
    c.paths[2].udp_port = kNatPort + 3;
    c.n_paths = 3;
    REQUIRE(fx.t->upsert(5, c).ok());
    CHECK(from({198, 51, 100, 9}, kDataPort, inner).empty());
    CHECK(fx.drops(UplinkDrop::kSpoofedOuter) == 4);
    CHECK_FALSE(from({198, 51, 100, 9}, kNatPort + 3, inner).empty());
    CHECK(fx.seqs[0].path == 2);
    CHECK(rte_mempool_in_use_count(test::pool()) == 0);
}

TEST_CASE("the session table refuses UDP encapsulation on IPv6 paths and bad tunnel MTUs",
          "[tables][nat][mtu]") {
    Fixture fx;
    SessionConfig c = *fx.t->config(5);
    c.paths[0].udp_port = 4000;  // the IPv6 path
    CHECK_FALSE(fx.t->upsert(5, c).ok());
    c.paths[0].udp_port = 0;
    c.paths[0].mtu = 1279;
    CHECK_FALSE(fx.t->upsert(5, c).ok());
    c.paths[0].mtu = 9217;
    CHECK_FALSE(fx.t->upsert(5, c).ok());
    c.paths[0].mtu = 1280;
    c.paths[1].mtu = 576;
    CHECK(fx.t->upsert(5, c).ok());
    c.paths[1].mtu = 575;
    CHECK_FALSE(fx.t->upsert(5, c).ok());
}

TEST_CASE("per-path tunnel MTU replaces the port's for Packet Too Big and fragments",
          "[downlink][mtu]") {
    Fixture fx;
    fx.dl.icmp_src_v6 = IpAddr::v6(kGw6);
    fx.dl.access_mtu = 1500;
    SessionConfig c = *fx.t->config(5);
    c.paths[0].mtu = 1400;  // the IPv6 path
    c.paths[1].live = false;
    REQUIRE(fx.t->upsert(5, c).ok());
    std::vector<Bytes> icmp, more;
    // Inner 1348 fits 1400 - 40 - 12; 1349 does not, though the port's 1500 would take it.
    CHECK(down_burst(fx, {down_frame_v6(0, 64, 1348 - 48)}, icmp, more).size() == 1);
    CHECK(down_burst(fx, {down_frame_v6(0, 64, 1349 - 48)}, icmp, more).empty());
    REQUIRE(icmp.size() == 1);
    CHECK(get32(icmp[0], 14 + 44) == 1400 - 40 - 12);
    CHECK(fx.drops(DownlinkDrop::kTooBig) == 1);
    // The IPv4 path keeps the port's MTU.
    fx.set_live(1, true);
    fx.set_live(0, false);
    CHECK(down_burst(fx, {down_frame_v4(1468 - 28, true)}, icmp, more).size() == 1);
    // FRAGMENT: the outer fragments are cut at the path's MTU.
    fx.set_live(0, true);
    fx.set_live(1, false);
    fx.dl.mtu_action = MtuAction::kFragment;
    fx.dl.pool = test::pool();
    const auto first = down_burst(fx, {down_frame_v6(0, 64, 1449 - 48)}, icmp, more);
    REQUIRE(first.size() == 1);
    REQUIRE(more.size() == 1);
    CHECK(first[0].size() - 14 <= 1400);
    CHECK(get16(first[0], 14 + 4) + 40 <= 1400);
    CHECK(rte_mempool_in_use_count(test::pool()) == 0);
}

// IP-in-IP tunnels (issues 5 and 10): no GRE header, protocol 41 / 4, session by inner source.

namespace {

void make_ipip(Fixture& fx) {
    SessionConfig c = *fx.t->config(5);
    c.paths[0].tunnel = Tunnel::kIpInIp;
    c.paths[1].tunnel = Tunnel::kIpInIp;
    REQUIRE(fx.t->upsert(5, c).ok());
}

// Outer IPv6 from `src` to the gateway (2001:db8:ff::1) with next header `nh`, then `inner`.
Bytes up_frame_ip6(std::uint8_t nh, const std::array<std::uint8_t, 16>& src, const Bytes& inner) {
    Bytes f = eth(kGwAccessMac, kCpeMac, 0x86DD);
    Bytes ip;
    put32(ip, 6u << 28);
    put16(ip, static_cast<std::uint16_t>(inner.size()));
    ip.push_back(nh);
    ip.push_back(64);
    ip.insert(ip.end(), src.begin(), src.end());
    const auto dst = a6(0xff, 0, 1);
    ip.insert(ip.end(), dst.begin(), dst.end());
    append(f, ip);
    append(f, inner);
    return f;
}

}  // namespace

TEST_CASE("downlink over IP-in-IP paths: the inner packet right after the outer header",
          "[downlink][ipip]") {
    Fixture fx;
    make_ipip(fx);
    fx.set_live(1, false);  // the IPv6 path first
    // IPv6 in IPv6.
    const Bytes in6 = down_frame_v6();
    Bytes out = fx.down(in6);
    REQUIRE(out.size() == 14 + 40 + (in6.size() - 14));
    CHECK(get16(out, 12) == 0x86DD);
    CHECK(get16(out, 18) == in6.size() - 14);
    CHECK(out[20] == 41);
    Bytes inner(in6.begin() + 14, in6.end());
    inner[7] = 63;
    CHECK(sub(out, 54, inner.size()) == inner);
    // IPv4 in IPv6.
    const Bytes in4 = down_frame_v4(20, false);
    out = fx.down(in4);
    REQUIRE(out.size() == 14 + 40 + 48);
    CHECK(out[20] == 4);
    CHECK(get16(out, 18) == 48);
    CHECK(out[54] == 0x45);
    // Over the IPv4 path: IPv4 in IPv4 and IPv6 in IPv4.
    fx.set_live(1, true);
    fx.set_live(0, false);
    out = fx.down(in4);
    REQUIRE(out.size() == 14 + 20 + 48);
    CHECK(out[14 + 9] == 4);
    CHECK(get16(out, 14 + 2) == 20 + 48);
    CHECK(hag::net::internet_checksum(sub(out, 14, 20)) == 0);
    out = fx.down(in6);
    REQUIRE(out.size() == 14 + 20 + (in6.size() - 14));
    CHECK(out[14 + 9] == 41);
    CHECK(out[34] >> 4 == 6);
    // No sequence number was used; the counters count as for GRE.
    CHECK(fx.t->hot(5).next_downlink_seq.load() == 0);
    CHECK(fx.t->totals(5).downlink_packets == 4);
    // The MTU counts 40 / 20 octets of overhead only.
    fx.set_live(0, true);
    fx.set_live(1, false);
    fx.dl.icmp_src_v6 = IpAddr::v6(kGw6);
    std::vector<Bytes> icmp, more;
    CHECK(down_burst(fx, {down_frame_v6(0, 64, 1460 - 48)}, icmp, more).size() == 1);
    CHECK(down_burst(fx, {down_frame_v6(0, 64, 1461 - 48)}, icmp, more).empty());
    REQUIRE(icmp.size() == 1);
    CHECK(get32(icmp[0], 14 + 44) == 1460);
}

TEST_CASE("uplink over IP-in-IP: session by inner source, outer source checked", "[uplink][ipip]") {
    Fixture fx;
    make_ipip(fx);
    const auto coa = a6(0xaaaa, 0, 1);
    const Bytes inner6 = ipv6_udp(a6(1, 0, 0x42), a6(0x9999, 0, 1), 16);
    Bytes out = fx.up(up_frame_ip6(41, coa, inner6));
    REQUIRE(out.size() == 14 + inner6.size());
    CHECK(sub(out, 14, inner6.size()) == inner6);
    CHECK(get16(out, 12) == 0x86DD);
    CHECK(fx.seqs[0].flags == 0);  // no sequence number: the reorder passes it through
    CHECK(fx.seqs[0].path == 0);
    // IPv4 in IPv6 from the same care-of address.
    const Bytes inner4 = ipv4_udp({192, 0, 2, 3}, {203, 0, 113, 5}, 16);
    out = fx.up(up_frame_ip6(4, coa, inner4));
    REQUIRE(out.size() == 14 + inner4.size());
    CHECK(get16(out, 12) == 0x0800);
    CHECK(fx.t->uplink_counts(5, 0).packets == 2);

    // Another outer source: spoofed; an inner source of no session: unknown; the wrong inner
    // version for the protocol or a truncated inner packet: malformed.
    CHECK(fx.up(up_frame_ip6(41, a6(0xaaaa, 0, 9), inner6)).empty());
    CHECK(fx.drops(UplinkDrop::kSpoofedOuter) == 1);
    CHECK(fx.up(up_frame_ip6(41, coa, ipv6_udp(a6(7, 0, 1), a6(0x9999, 0, 1), 16))).empty());
    CHECK(fx.drops(UplinkDrop::kIpInIpUnknown) == 1);
    CHECK(fx.up(up_frame_ip6(41, coa, inner4)).empty());
    Bytes cut = up_frame_ip6(41, coa, inner6);
    cut.resize(cut.size() - 3);
    cut[14 + 5] = static_cast<std::uint8_t>(cut[14 + 5] - 3);
    CHECK(fx.up(cut).empty());
    CHECK(fx.drops(UplinkDrop::kInnerMalformed) == 2);
    // GRE from an IP-in-IP path's address is not that path.
    CHECK(fx.up(up_frame_v6(0x3000, 0xabcd0001, 1, coa, inner6)).empty());
    CHECK(fx.drops(UplinkDrop::kSpoofedOuter) == 2);
    CHECK(fx.ul.decapsulated == 2);
}

TEST_CASE("uplink: IP in IP to a session of GRE paths is refused", "[uplink][ipip]") {
    Fixture fx;  // GRE paths
    const Bytes inner6 = ipv6_udp(a6(1, 0, 0x42), a6(0x9999, 0, 1), 16);
    CHECK(fx.up(up_frame_ip6(41, a6(0xaaaa, 0, 1), inner6)).empty());
    CHECK(fx.drops(UplinkDrop::kSpoofedOuter) == 1);
    // And IP in IP with UDP encapsulation cannot be programmed.
    SessionConfig c = *fx.t->config(5);
    c.paths[1].tunnel = Tunnel::kIpInIp;
    c.paths[1].udp_port = 4000;
    CHECK_FALSE(fx.t->upsert(5, c).ok());
}

namespace {

// The mbuf fields a stage sets besides the octets.
struct MbufFields {
    std::uint16_t port, data_off, data_len, nb_segs;
    std::uint32_t pkt_len;
    std::uint64_t l2_len, l3_len;
    bool operator==(const MbufFields&) const = default;
};

MbufFields fields_of(const rte_mbuf* m) {
    return {m->port, m->data_off, m->data_len, m->nb_segs, m->pkt_len, m->l2_len, m->l3_len};
}

// What one downlink burst did, for comparing two runs of it.
struct BurstResult {
    std::vector<std::pair<Bytes, MbufFields>> out;
    std::vector<Bytes> to_core, more_access;
    bool operator==(const BurstResult&) const = default;
};

BurstResult run_burst(DownlinkCtx& ctx, const std::vector<Bytes>& frames,
                      const std::vector<std::uint16_t>& headroom) {
    std::vector<rte_mbuf*> burst;
    for (std::size_t i = 0; i < frames.size(); ++i) {
        rte_mbuf* m = rte_pktmbuf_alloc(test::pool());
        REQUIRE(m != nullptr);
        m->data_off = headroom[i];
        auto* d = rte_pktmbuf_append(m, static_cast<std::uint16_t>(frames[i].size()));
        REQUIRE(d != nullptr);
        std::memcpy(d, frames[i].data(), frames[i].size());
        burst.push_back(m);
    }
    BurstResult r;
    const uint16_t kept =
        downlink_encap(ctx, burst.data(), static_cast<std::uint16_t>(burst.size()));
    for (uint16_t i = 0; i < kept; ++i) {
        r.out.emplace_back(test::bytes_of(burst[i]), fields_of(burst[i]));
        rte_pktmbuf_free(burst[i]);
    }
    for (std::uint16_t i = 0; i < ctx.n_to_core; ++i) {
        r.to_core.push_back(test::bytes_of(ctx.to_core[i]));
        rte_pktmbuf_free(ctx.to_core[i]);
    }
    for (std::uint16_t i = 0; i < ctx.n_more_access; ++i) {
        r.more_access.push_back(test::bytes_of(ctx.more_access[i]));
        rte_pktmbuf_free(ctx.more_access[i]);
    }
    return r;
}

}  // namespace

TEST_CASE("fast_form counts the packets the fast downlink form takes, not its fallbacks",
          "[downlink][fast]") {
    Fixture fx;
    const auto fast_form = [&] { return events(fx, DownlinkEvent::kFastForm); };
    FastDownlink form;
    CHECK_FALSE(fx.t->fast_form(5, form));  // two live paths: striped
    CHECK_FALSE(fx.down(down_frame_v6()).empty());
    CHECK(fast_form() == 0);
    fx.set_live(1, false);  // one way: the IPv6 path
    REQUIRE(fx.t->fast_form(5, form));
    const Bytes out = fx.down(down_frame_v6(0xb8, 64));
    REQUIRE(out.size() == 14 + 40 + 12 + 40 + 8 + 32);  // outer headers, IPv6 + UDP + 32
    CHECK(get32(out, 14) == (6u << 28 | 46u << 22));
    CHECK(get16(out, 54) == 0x3000);
    CHECK(get32(out, 58) == 0x11111111);
    CHECK(fast_form() == 1);
    // Expiring hop limit and too big: the general path answers them, not the fast form.
    CHECK(fx.down(down_frame_v6(0, 1)).empty());
    CHECK(fx.drops(DownlinkDrop::kTtlExpired) == 1);
    fx.dl.access_mtu = 100;
    CHECK(fx.down(down_frame_v6(0, 64, 40)).empty());
    CHECK(fx.drops(DownlinkDrop::kTooBig) == 1);
    CHECK(fast_form() == 1);
    fx.dl.access_mtu = 1500;
    fx.dl.fast_path = false;
    CHECK_FALSE(fx.down(down_frame_v6()).empty());
    CHECK(fast_form() == 1);
    CHECK(fx.dl.encapsulated == 3);
}

// The fast downlink (FastDownlink) against the general path: two fixtures programmed alike, one
// with the fast path off, take the same random bursts (sessions with and without the fast form,
// hostile and ordinary frames) and must give the same octets, ports, ICMP errors, fragments,
// drops, events, counters and sequence numbers.
TEST_CASE("fast downlink writes what the general path writes, packet for packet",
          "[downlink][fast]") {
    Fixture fast, general;
    general.dl.fast_path = false;
    NextHopTable nh_fast(16, *fast.rcu), nh_general(16, *general.rcu);
    fast.dl.next_hops = &nh_fast;
    general.dl.next_hops = &nh_general;
    const IpAddr cpe6 = IpAddr::v6(a6(0xaaaa, 0, 1));
    const IpAddr cpe4 = IpAddr::v4(198, 51, 100, 7);
    const NextHopTable::Index nh6 = nh_fast.acquire(0, cpe6).value();
    const NextHopTable::Index nh4 = nh_fast.acquire(2, cpe4).value();
    REQUIRE(nh_general.acquire(0, cpe6).value() == nh6);
    REQUIRE(nh_general.acquire(2, cpe4).value() == nh4);

    std::mt19937 rng(20261204);
    auto pick = [&](unsigned n) { return static_cast<unsigned>(rng() % n); };
    std::uint64_t fast_sessions = 0, fast_packets_possible = 0;
    for (int round = 0; round < 300; ++round) {
        // The session: which paths are live, sequence numbers, MACs, MTUs, tunnel kinds.
        SessionConfig c = *fast.t->config(5);
        const unsigned live = 1 + pick(3);  // 1: IPv6 path, 2: IPv4 path, 3: both (striped)
        c.paths[0].live = (live & 1) != 0;
        c.paths[1].live = (live & 2) != 0;
        c.gre_sequence = pick(4) != 0;
        c.policy = pick(8) == 0 ? 3 : 0;  // a profile slot with no policy table: general path
        for (unsigned i = 0; i < 2; ++i) {
            PathConfig& p = c.paths[i];
            const bool resolve = pick(2) == 0;
            p.next_hop_mac = resolve ? MacAddr{} : kCpeMac;
            p.next_hop = resolve ? (i == 0 ? nh6 : nh4) : NextHopTable::kNone;
            p.mtu = pick(3) == 0 ? static_cast<std::uint16_t>(i == 0 ? 1280 : 576) : 0;
            p.downlink_key = static_cast<std::uint32_t>(rng());
            p.tunnel = pick(10) == 0 ? Tunnel::kIpInIp : Tunnel::kGre;
            p.udp_port = i == 1 && p.tunnel == Tunnel::kGre && pick(10) == 0 ? 40000 : 0;
        }
        REQUIRE(fast.t->upsert(5, c).ok());
        REQUIRE(general.t->upsert(5, c).ok());
        FastDownlink form;
        const bool is_fast = fast.t->fast_form(5, form);
        fast_sessions += is_fast ? 1 : 0;
        // Next hops resolved or not, the context's knobs.
        for (const auto i : {nh6, nh4}) {
            if (pick(4) == 0) {
                nh_fast.clear_mac(i);
                nh_general.clear_mac(i);
            } else {
                const MacAddr mac{0x02, 0, 0, 0, static_cast<std::uint8_t>(pick(256)), 0x77};
                nh_fast.set_mac(i, mac);
                nh_general.set_mac(i, mac);
            }
        }
        for (Fixture* fx : {&fast, &general}) {
            fx->dl.access_mtu = pick(4) == 0 ? 200 : 1500;
            fx->dl.outer_hop_limit = static_cast<std::uint8_t>(1 + (round * 37) % 255);
            fx->dl.mtu_action = round % 2 == 0 ? MtuAction::kPacketTooBig : MtuAction::kFragment;
            fx->dl.pool = test::pool();
            fx->dl.icmp_src_v6 = IpAddr::v6(a6(0xff, 0, 0xfe));
            fx->dl.icmp_src_v4 = IpAddr::v4(203, 0, 113, 254);
            fx->dl.icmp_per_second = 1000000;
        }
        general.dl.access_mtu = fast.dl.access_mtu;
        for (unsigned d = 0; d < 64; ++d) {
            fast.dl.dscp[d] = general.dl.dscp[d] =
                round % 3 == 0 ? static_cast<std::uint8_t>(d) : static_cast<std::uint8_t>(pick(64));
        }
        // A burst of frames: IPv6 or IPv4 inner to the session (or not), classes, hop limits,
        // sizes, DF, padding, VLAN tags, cut or lying lengths, too little headroom.
        std::vector<Bytes> frames;
        std::vector<std::uint16_t> headroom;
        const unsigned n = 1 + pick(70);
        for (unsigned i = 0; i < n; ++i) {
            const std::uint8_t hops[] = {0, 1, 2, 64, 255};
            const std::uint8_t hl = hops[pick(5)];
            const std::size_t payload = pick(4) == 0 ? pick(1400) : pick(64);
            const auto cls = static_cast<std::uint8_t>(pick(256));
            Bytes f;
            if (pick(2) == 0) {
                f = eth(kGwCoreMac, kRouterMac, 0x86DD);
                append(f, ipv6_udp(a6(0x9999, 0, 1), a6(pick(8) == 0 ? 2 : 1, 0, 0x42), payload,
                                   cls, hl));
            } else {
                f = down_frame_v4(payload, pick(2) == 0, cls, hl);
                if (pick(4) == 0) {
                    // Well-formed options: 4 octets of NOP and End, IHL 6, lengths and
                    // checksum to match.
                    f.insert(f.begin() + 14 + 20, {1, 1, 1, 0});
                    f[14] = 0x46;
                    const auto total = static_cast<std::uint16_t>(get16(f, 14 + 2) + 4);
                    f[14 + 2] = static_cast<std::uint8_t>(total >> 8);
                    f[14 + 3] = static_cast<std::uint8_t>(total);
                    f[14 + 10] = f[14 + 11] = 0;
                    const auto c = hag::net::internet_checksum(std::span(f.data() + 14, 24));
                    f[14 + 10] = static_cast<std::uint8_t>(c >> 8);
                    f[14 + 11] = static_cast<std::uint8_t>(c);
                }
                if (pick(8) == 0) {
                    f[14 + 19] = 99;  // another destination (and a bad checksum)
                }
            }
            if (pick(4) == 0) {
                f.resize(f.size() + pick(20), 0xee);  // Ethernet padding
            }
            for (unsigned tags = pick(4) == 0 ? 1 + pick(3) : 0; tags > 0; --tags) {
                f.insert(f.begin() + 12, {0x81, 0x00, 0x00, static_cast<std::uint8_t>(tags)});
            }
            if (pick(16) == 0) {
                f.resize(pick(static_cast<unsigned>(f.size())));  // cut short
            }
            if (pick(16) == 0 && f.size() > 20) {
                f[14 + pick(6)] ^= static_cast<std::uint8_t>(1 + pick(255));  // a lying header
            }
            frames.push_back(f);
            const std::uint16_t rooms[] = {RTE_PKTMBUF_HEADROOM, 0, 40, 50, 62, 66};
            headroom.push_back(pick(6) == 0 ? rooms[pick(6)] : RTE_PKTMBUF_HEADROOM);
            fast_packets_possible += is_fast ? 1 : 0;
        }
        const BurstResult a = run_burst(fast.dl, frames, headroom);
        const BurstResult b = run_burst(general.dl, frames, headroom);
        REQUIRE(a.out.size() == b.out.size());
        for (std::size_t i = 0; i < a.out.size(); ++i) {
            INFO("round " << round << " packet " << i << " of " << a.out.size()
                          << (is_fast ? " (fast session)" : ""));
            REQUIRE(a.out[i].first == b.out[i].first);
            REQUIRE(a.out[i].second == b.out[i].second);
        }
        REQUIRE(a.to_core == b.to_core);
        REQUIRE(a.more_access == b.more_access);
        for (std::size_t d = 0; d < fast.dl.drops.size(); ++d) {
            REQUIRE(fast.dl.drops[d].read() == general.dl.drops[d].read());
        }
        for (std::size_t e = 0; e < fast.dl.events.size(); ++e) {
            if (e != static_cast<std::size_t>(DownlinkEvent::kFastForm)) {
                REQUIRE(fast.dl.events[e].read() == general.dl.events[e].read());
            }
        }
        REQUIRE(fast.dl.encapsulated.read() == general.dl.encapsulated.read());
        REQUIRE(fast.t->hot(5).next_downlink_seq.load() ==
                general.t->hot(5).next_downlink_seq.load());
        for (unsigned p = 0; p < kMaxPaths; ++p) {
            const PathTraffic& a = fast.t->downlink_traffic(5, p);
            const PathTraffic& b = general.t->downlink_traffic(5, p);
            REQUIRE(a.packets.load() == b.packets.load());
            REQUIRE(a.bytes.load() == b.bytes.load());
        }
    }
    // Both kinds of session came up, and the fast path had packets to take.
    CHECK(fast_sessions > 50);
    CHECK(fast_sessions < 250);
    CHECK(fast_packets_possible > 2000);
    const auto fast_form = static_cast<std::size_t>(DownlinkEvent::kFastForm);
    CHECK(fast.dl.events[fast_form].read() > 1000);
    CHECK(general.dl.events[fast_form].read() == 0);
    CHECK(fast.dl.encapsulated.read() > fast.dl.events[fast_form].read());
}

TEST_CASE("ipv4_decrement_ttl: the incremental checksum verifies like a recomputed one", "[ttl]") {
    // Random IPv4 headers with a correct checksum, and the corner where HC + 0x0100 lands on
    // 0xffff (a recomputation gives 0x0000): after the decrement the header's one's-complement
    // sum, checksum included, is still all ones, and the checksum equals a recomputation's
    // except in that corner.
    std::mt19937 rng(7);
    unsigned corner = 0;
    for (int i = 0; i < 200000; ++i) {
        std::uint8_t h[20];
        for (auto& b : h) {
            b = static_cast<std::uint8_t>(rng());
        }
        h[0] = 0x45;
        h[8] = static_cast<std::uint8_t>(2 + rng() % 254);  // > 1
        if (i == 0) {
            // Force HC = 0xfeff: choose the identification so that the header sums to 0x0100.
            put16(h + 10, 0);
            put16(h + 4, 0);
            const std::uint16_t rest =
                static_cast<std::uint16_t>(~hag::net::internet_checksum({h, 20}));
            // sum(rest) + id == 0x0100 in one's complement
            std::uint32_t id = 0x0100u + static_cast<std::uint16_t>(~rest);
            id = (id & 0xffff) + (id >> 16);
            put16(h + 4, static_cast<std::uint16_t>(id));
        }
        put16(h + 10, 0);
        put16(h + 10, hag::net::internet_checksum({h, 20}));
        const std::uint8_t ttl = h[8];
        const std::uint16_t before = get16(h + 10);
        ipv4_decrement_ttl(h);
        CHECK(h[8] == ttl - 1);
        // Verification: the checksum over the whole header is zero (all ones summed).
        CHECK(hag::net::internet_checksum({h, 20}) == 0);
        std::uint8_t r[20];
        std::memcpy(r, h, 20);
        put16(r + 10, 0);
        const std::uint16_t recomputed = hag::net::internet_checksum({r, 20});
        if (before == 0xfeff) {
            ++corner;
            CHECK(get16(h + 10) == 0xffff);
            CHECK(recomputed == 0x0000);
        } else {
            CHECK(get16(h + 10) == recomputed);
        }
    }
    CHECK(corner >= 1);
}

namespace {

// What one uplink burst did, for comparing two runs of it.
struct UplinkResult {
    std::vector<std::pair<Bytes, MbufFields>> out;
    std::vector<std::tuple<std::uint32_t, std::uint32_t, std::uint32_t, std::uint32_t, std::uint8_t,
                           std::uint8_t, std::uint8_t, ReorderMode>>
        meta;
    bool operator==(const UplinkResult&) const = default;
};

// An uplink frame over IPv4: outer IPv4 from `src` to 198.51.100.1, GRE with `flags`/key/seq.
Bytes up_frame_v4(std::uint16_t flags, std::uint32_t key, std::uint32_t seq,
                  std::array<std::uint8_t, 4> src, const Bytes& inner) {
    Bytes gre;
    put16(gre, flags);
    put16(gre, (!inner.empty() && (inner[0] >> 4) == 4) ? 0x0800 : 0x86DD);
    if (flags & 0x2000)
        put32(gre, key);
    if (flags & 0x1000)
        put32(gre, seq);
    append(gre, inner);
    Bytes f = eth(kGwAccessMac, kCpeMac, 0x0800);
    append(f, outer_ipv4(src, {198, 51, 100, 1}, 47, gre.size(), 9));
    append(f, gre);
    return f;
}

UplinkResult run_up_burst(UplinkCtx& ctx, const std::vector<Bytes>& frames) {
    std::vector<rte_mbuf*> burst;
    for (const Bytes& f : frames) {
        rte_mbuf* m = test::mbuf_from(f);
        REQUIRE(m != nullptr);
        burst.push_back(m);
    }
    std::vector<UplinkMeta> meta(frames.size());
    UplinkResult r;
    const uint16_t kept =
        uplink_decap(ctx, burst.data(), static_cast<std::uint16_t>(burst.size()), meta.data());
    for (uint16_t i = 0; i < kept; ++i) {
        r.out.emplace_back(test::bytes_of(burst[i]), fields_of(burst[i]));
        rte_pktmbuf_free(burst[i]);
        const UplinkMeta& m = meta[i];
        r.meta.emplace_back(m.session, m.seq, m.incarnation, m.timeout_us, m.path, m.live_mask,
                            m.flags, m.mode);
    }
    return r;
}

}  // namespace

TEST_CASE("fast_form counts the uplink packets the fast uplink form takes", "[uplink][fast]") {
    Fixture fx;
    const auto fast_form = [&] { return up_events(fx, UplinkEvent::kFastForm); };
    UplinkWords form;
    REQUIRE(fx.t->uplink_form(5, form));
    const Bytes inner = ipv6_udp(a6(1, 0, 0x42), a6(0x9999, 0, 1), 16);
    const auto coa = a6(0xaaaa, 0, 1);
    const Bytes out = fx.up(up_frame_v6(0x3000, 0xabcd0001, 77, coa, inner));
    REQUIRE(out.size() == 14 + inner.size());
    CHECK(Bytes(out.begin() + 14, out.end()) == inner);
    CHECK(fast_form() == 1);
    CHECK(fx.seqs[0].seq == 77);
    CHECK(fx.seqs[0].path == 0);
    CHECK(fx.seqs[0].live_mask == 3);
    CHECK(fx.seqs[0].incarnation == fx.t->state(5).incarnation.load());
    CHECK(fx.t->uplink_counts(5, 0).packets == 1);
    CHECK(fx.t->uplink_counts(5, 0).bytes == inner.size());
    CHECK(fx.t->uplink_hot(5).path0.packets.load() == 1);  // counted by the form
    // The second prefix (IPv4 inner from 192.0.2.0/28) and a spoofed source: the general path.
    Bytes in4 = ipv4_udp({192, 0, 2, 3}, {203, 0, 113, 5}, 20);
    CHECK_FALSE(fx.up(up_frame_v6(0x3000, 0xabcd0001, 78, coa, in4)).empty());
    const Bytes foreign = ipv6_udp(a6(2, 0, 0x42), a6(0x9999, 0, 1), 16);
    CHECK(fx.up(up_frame_v6(0x3000, 0xabcd0001, 79, coa, foreign)).empty());
    CHECK(fx.drops(UplinkDrop::kSpoofedInner) == 1);
    // Another care-of address: the general path, which refuses it.
    CHECK(fx.up(up_frame_v6(0x3000, 0xabcd0001, 80, a6(0xaaaa, 0, 9), inner)).empty());
    CHECK(fx.drops(UplinkDrop::kSpoofedOuter) == 1);
    CHECK(fast_form() == 1);
    CHECK(fx.t->uplink_counts(5, 0).packets == 2);
    fx.ul.fast_path = false;
    CHECK_FALSE(fx.up(up_frame_v6(0x3000, 0xabcd0001, 81, coa, inner)).empty());
    CHECK(fast_form() == 1);
    CHECK(fx.ul.decapsulated == 3);
    // The general path's live mask comes from the state (SessionState::live_mask, derived by
    // upsert) and follows the config.
    CHECK(fx.seqs[0].live_mask == 3);
    fx.set_live(1, false);
    CHECK_FALSE(fx.up(up_frame_v6(0x3000, 0xabcd0001, 82, coa, inner)).empty());
    CHECK(fx.seqs[0].live_mask == 1);
    CHECK(fx.t->state(5).live_mask.load() == 1);
}

// The fast uplink form (UplinkWords) against the general path: two fixtures programmed alike,
// one with the fast path off, take the same random bursts (sessions with and without the form,
// genuine, spoofed and hostile frames) and must give the same verdicts, octets, mbuf fields,
// reorder meta data, drops, events and counters.
TEST_CASE("fast uplink decides and writes what the general path does, packet for packet",
          "[uplink][fast]") {
    Fixture fast, general;
    general.ul.fast_path = false;
    std::mt19937 rng(20261205);
    auto pick = [&](unsigned n) { return static_cast<unsigned>(rng() % n); };
    std::uint64_t fast_sessions = 0, fast_candidates = 0;
    const SessionConfig base = *fast.t->config(5);
    for (int round = 0; round < 300; ++round) {
        SessionConfig c = base;
        // The IPv4 path first now and then (its care-of address is then the form's).
        if (pick(3) == 0) {
            std::swap(c.paths[0], c.paths[1]);
        }
        c.paths[0].live = pick(4) != 0;
        c.paths[1].live = pick(2) != 0;
        c.reorder = static_cast<ReorderMode>(pick(3));
        c.reorder_timeout_us = pick(3) == 0 ? 0 : 1 + pick(100000);
        c.policy = pick(8) == 0 ? 3 : 0;  // a profile slot with no policy table: general path
        c.paths[0].tunnel = pick(10) == 0 ? Tunnel::kIpInIp : Tunnel::kGre;
        c.uplink_key = pick(10) == 0 ? 0 : 0xabcd0001;
        // The first prefix: the IPv6 one or the IPv4 one, of various lengths; sometimes one only.
        const IpPrefix p6{IpAddr::v6(a6(1, 0, 0)), static_cast<std::uint8_t>(48 + pick(3) * 8)};
        const IpPrefix p4{IpAddr::v4(192, 0, 2, 0), static_cast<std::uint8_t>(24 + pick(5))};
        const bool v4_first = pick(3) == 0;
        c.prefixes[0] = v4_first ? p4 : p6;
        c.prefixes[1] = v4_first ? p6 : p4;
        c.n_prefixes = static_cast<std::uint8_t>(1 + pick(2));
        // Another care-of address for the IPv6 path and new downlink keys now and then: every
        // tunnel replaced, a new incarnation.
        PathConfig& v6path = c.paths[0].coa.family == Family::kIpv6 ? c.paths[0] : c.paths[1];
        if (pick(4) == 0) {
            v6path.coa = IpAddr::v6(a6(0xaaaa, 0, 2));
            c.paths[0].downlink_key = static_cast<std::uint32_t>(rng());
            c.paths[1].downlink_key = static_cast<std::uint32_t>(rng());
        }
        c.paths[1].tunnel = Tunnel::kGre;
        REQUIRE(fast.t->upsert(5, c).ok());
        REQUIRE(general.t->upsert(5, c).ok());
        UplinkWords form;
        const bool is_fast = fast.t->uplink_form(5, form);
        fast_sessions += is_fast ? 1 : 0;
        for (Fixture* fx : {&fast, &general}) {
            fx->ul.nat_port_learning = round % 2 == 0;
        }
        std::vector<Bytes> frames;
        const unsigned n = 1 + pick(70);
        for (unsigned i = 0; i < n; ++i) {
            // Inner: IPv6 or IPv4, from inside a prefix or not, ECN-capable or not.
            const auto ecn = static_cast<std::uint8_t>(pick(4));
            Bytes inner;
            if (pick(3) != 0) {
                const std::uint16_t net = pick(6) == 0 ? 2 : 1;
                inner = ipv6_udp(a6(net, static_cast<std::uint16_t>(pick(3)), 0x42),
                                 a6(0x9999, 0, 1), pick(64), static_cast<std::uint8_t>(ecn));
            } else {
                const auto host = static_cast<std::uint8_t>(pick(6) == 0 ? 200 : pick(16));
                inner = ipv4_udp({192, 0, static_cast<std::uint8_t>(pick(6) == 0 ? 3 : 2), host},
                                 {203, 0, 113, 5}, pick(64), ecn);
            }
            if (pick(16) == 0) {
                inner[pick(static_cast<unsigned>(inner.size()))] ^= 0x5a;  // a lying inner header
            }
            const std::uint16_t flag_set[] = {0x3000, 0x3000, 0x3000, 0x2000,
                                              0xb000, 0x0000, 0x3001};
            const std::uint16_t flags = flag_set[pick(7)];
            const std::uint32_t key =
                pick(10) == 0 ? static_cast<std::uint32_t>(rng()) : 0xabcd0001;
            // The outer source: the IPv6 path's care-of addresses (old and new) or another,
            // the IPv4 path's or another.
            const unsigned src = pick(7);
            const std::uint16_t from6[] = {1, 1, 1, 2, 9};
            const auto seq = static_cast<std::uint32_t>(rng());
            Bytes f = src < 5
                          ? up_frame_v6(flags, key, seq, a6(0xaaaa, 0, from6[src]), inner)
                          : up_frame_v4(flags, key, seq,
                                        {198, 51, 100, static_cast<std::uint8_t>(src == 5 ? 7 : 9)},
                                        inner);
            if (pick(4) == 0) {
                if (src < 5) {
                    f[15] = static_cast<std::uint8_t>(f[15] | 0x30);  // outer ECN CE
                } else {
                    f[15] = static_cast<std::uint8_t>(f[15] | 0x03);  // outer ECN CE
                    f[24] = f[25] = 0;
                    const auto sum = hag::net::internet_checksum(std::span(f.data() + 14, 20));
                    f[24] = static_cast<std::uint8_t>(sum >> 8);
                    f[25] = static_cast<std::uint8_t>(sum);
                }
            }
            if (pick(6) == 0) {
                f.resize(f.size() + pick(20), 0xee);  // Ethernet padding
            }
            const bool cut = pick(16) == 0;
            if (cut) {
                f.resize(pick(static_cast<unsigned>(f.size())));  // cut short
            }
            // What the fast form may take: a session with it, a valid keyed header with the
            // session's key, from the first path's care-of address, whole.
            const IpAddr outer_src =
                src < 5 ? IpAddr::v6(a6(0xaaaa, 0, from6[src]))
                        : IpAddr::v4(198, 51, 100, static_cast<std::uint8_t>(src == 5 ? 7 : 9));
            fast_candidates += is_fast && (flags & 0x2000) != 0 && flags != 0x3001 &&
                                       key == c.uplink_key && outer_src == c.paths[0].coa && !cut
                                   ? 1
                                   : 0;
            frames.push_back(f);
        }
        const UplinkResult a = run_up_burst(fast.ul, frames);
        const UplinkResult b = run_up_burst(general.ul, frames);
        INFO("round " << round << (is_fast ? " (fast session)" : ""));
        REQUIRE(a.out.size() == b.out.size());
        for (std::size_t i = 0; i < a.out.size(); ++i) {
            INFO("packet " << i << " of " << a.out.size());
            REQUIRE(a.out[i].first == b.out[i].first);
            REQUIRE(a.out[i].second == b.out[i].second);
            REQUIRE(a.meta[i] == b.meta[i]);
        }
        for (std::size_t d = 0; d < fast.ul.drops.size(); ++d) {
            INFO("drop " << d);
            REQUIRE(fast.ul.drops[d].read() == general.ul.drops[d].read());
        }
        for (std::size_t e = 0; e < fast.ul.events.size(); ++e) {
            if (e != static_cast<std::size_t>(UplinkEvent::kFastForm)) {
                REQUIRE(fast.ul.events[e].read() == general.ul.events[e].read());
            }
        }
        REQUIRE(fast.ul.decapsulated.read() == general.ul.decapsulated.read());
        for (unsigned p = 0; p < kMaxPaths; ++p) {
            const PathCounts x = fast.t->uplink_counts(5, p);
            const PathCounts y = general.t->uplink_counts(5, p);
            REQUIRE(x.packets == y.packets);
            REQUIRE(x.bytes == y.bytes);
        }
    }
    // Both kinds of session came up, the fast form took packets (at most its candidates; the
    // others' inner sources were outside the first prefix, or were dropped), and refused some.
    CHECK(fast_sessions > 100);
    CHECK(fast_sessions < 280);
    const auto fast_form = static_cast<std::size_t>(UplinkEvent::kFastForm);
    INFO("fast candidates " << fast_candidates << ", taken " << fast.ul.events[fast_form].read());
    CHECK(fast.ul.events[fast_form].read() <= fast_candidates);
    CHECK(fast.ul.events[fast_form].read() > fast_candidates / 5);
    CHECK(fast.ul.events[fast_form].read() > 200);
    CHECK(general.ul.events[fast_form].read() == 0);
    CHECK(fast.ul.decapsulated.read() > fast.ul.events[fast_form].read());
    CHECK(fast.ul.drops[static_cast<std::size_t>(UplinkDrop::kSpoofedInner)].read() > 100);
    CHECK(fast.ul.drops[static_cast<std::size_t>(UplinkDrop::kSpoofedOuter)].read() > 100);
    CHECK(fast.ul.drops[static_cast<std::size_t>(UplinkDrop::kEcnNotEct)].read() > 10);
}
