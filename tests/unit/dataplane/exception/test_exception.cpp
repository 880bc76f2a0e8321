// Exception path: classification of real mbufs (hostile inputs included), the punt stage with a
// real rte_ring, the next-hop table, and the rtnetlink neighbour message parser.
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <catch2/catch.hpp>

#include <cstring>
#include <random>

#include "../eal_fixture.hpp"
#include "exception/classify.hpp"
#include "exception/neighbour.hpp"
#include "exception/punt.hpp"
#include "tables/next_hop_table.hpp"

using namespace hag::dp;
using exc::Punt;
using Bytes = std::vector<std::uint8_t>;

namespace {

const std::array<std::uint8_t, 16> kOwn6{0x20, 0x01, 0x0d, 0xb8, 0, 0xff, 0, 0,
                                         0,    0,    0,    0,    0, 0,    0, 1};
const std::array<std::uint8_t, 16> kOther6{0x20, 0x01, 0x0d, 0xb8, 0xaa, 0xaa, 0, 0,
                                           0,    0,    0,    0,    0,    0,    0, 1};
const std::array<std::uint8_t, 16> kSolicited6{0xff, 0x02, 0, 0, 0,    0, 0, 0,
                                               0,    0,    0, 1, 0xff, 0, 0, 1};
const std::array<std::uint8_t, 4> kOwn4{192, 0, 2, 254};
const std::array<std::uint8_t, 4> kOther4{192, 0, 2, 1};

exc::OwnAddresses own() {
    exc::OwnAddresses o;
    o.add(kOwn6.data(), 16);
    o.add(kOwn4.data(), 4);
    return o;
}

void put16(Bytes& b, std::uint16_t v) {
    b.push_back(static_cast<std::uint8_t>(v >> 8));
    b.push_back(static_cast<std::uint8_t>(v));
}
template <std::size_t N>
void put(Bytes& b, const std::array<std::uint8_t, N>& a) {
    b.insert(b.end(), a.begin(), a.end());
}

Bytes eth(std::uint16_t type, int vlans = 0) {
    Bytes b{0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2};
    for (int i = 0; i < vlans; ++i) {
        put16(b, i == 0 && vlans == 2 ? 0x88A8 : 0x8100);
        put16(b, static_cast<std::uint16_t>(100 + i));
    }
    put16(b, type);
    return b;
}

// IPv6 header + `ext` (raw extension headers, first next header `first`) + upper payload.
Bytes ipv6(const std::array<std::uint8_t, 16>& dst, std::uint8_t first, const Bytes& rest,
           std::uint8_t hop_limit = 64) {
    Bytes b{0x60, 0, 0, 0};
    put16(b, static_cast<std::uint16_t>(rest.size()));
    b.push_back(first);
    b.push_back(hop_limit);
    put(b, kOther6);
    put(b, dst);
    b.insert(b.end(), rest.begin(), rest.end());
    return b;
}

Bytes ipv4(const std::array<std::uint8_t, 4>& dst, std::uint8_t proto, const Bytes& rest,
           std::uint16_t frag = 0, int option_words = 0) {
    Bytes b{static_cast<std::uint8_t>(0x45 + option_words), 0};
    put16(b, static_cast<std::uint16_t>(20 + 4 * option_words + rest.size()));
    put16(b, 1);
    put16(b, frag);
    b.push_back(64);
    b.push_back(proto);
    put16(b, 0);
    put(b, kOther4);
    put(b, dst);
    for (int i = 0; i < option_words; ++i) {
        b.insert(b.end(), {1, 1, 1, 1});  // NOPs
    }
    b.insert(b.end(), rest.begin(), rest.end());
    return b;
}

Bytes udp(std::uint16_t dport, std::size_t payload = 8) {
    Bytes b;
    put16(b, 5436);
    put16(b, dport);
    put16(b, static_cast<std::uint16_t>(8 + payload));
    put16(b, 0);
    b.resize(b.size() + payload, 0xab);
    return b;
}

Bytes icmp(std::uint8_t type) {
    return Bytes{type, 0, 0, 0, 0, 1, 0, 1};
}

// A Binding Update-like Mobility Header (RFC 6275 §6.1.7): payload proto 59, length 1 (16 octets).
Bytes mobility_header() {
    Bytes b{59, 1, 5, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0};
    return b;
}

Bytes arp(const std::array<std::uint8_t, 4>& spa, const std::array<std::uint8_t, 4>& tpa,
          std::uint16_t op = 1) {
    Bytes b;
    put16(b, 1);
    put16(b, 0x0800);
    b.push_back(6);
    b.push_back(4);
    put16(b, op);
    b.insert(b.end(), {0x02, 0, 0, 0, 0, 2});
    put(b, spa);
    b.insert(b.end(), {0, 0, 0, 0, 0, 0});
    put(b, tpa);
    return b;
}

Bytes cat(Bytes a, const Bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// Classifies `frame` from a real mbuf, as the worker does.
Punt classify(const Bytes& frame) {
    rte_mbuf* m = test::mbuf_from(frame);
    REQUIRE(m != nullptr);
    const exc::OwnAddresses o = own();
    const Punt p =
        exc::classify_frame(rte_pktmbuf_mtod(m, const std::uint8_t*), rte_pktmbuf_data_len(m), o);
    rte_pktmbuf_free(m);
    return p;
}

}  // namespace

TEST_CASE("classification: what is punted", "[exception][classify]") {
    const Bytes e6 = eth(0x86DD), e4 = eth(0x0800), ea = eth(0x0806);
    // Mobility Header and UDP 5436 to an own IPv6 address.
    CHECK(classify(cat(e6, ipv6(kOwn6, 135, mobility_header()))) == Punt::kMobility);
    CHECK(classify(cat(e6, ipv6(kOwn6, 17, udp(5436)))) == Punt::kUdpSignalling);
    CHECK(classify(cat(e4, ipv4(kOwn4, 17, udp(5436)))) == Punt::kUdpSignalling);
    // ESP to an own IPv6 address (protected signalling), also behind a Home Address option; a
    // truncated ESP header or ESP to another address is not punted.
    const Bytes esp{0, 0, 1, 0, 0, 0, 0, 1, 0xaa, 0xbb};
    CHECK(classify(cat(e6, ipv6(kOwn6, 50, esp))) == Punt::kEsp);
    const Bytes hao{50, 2, 1, 2, 0, 0, 0xc9, 16, 0x20, 0x01, 0x0d, 0xb8,
                    0,  1, 0, 0, 0, 0, 0,    0,  0,    0,    0,    5};
    CHECK(classify(cat(e6, ipv6(kOwn6, 60, cat(hao, esp)))) == Punt::kEsp);
    CHECK(classify(cat(e6, ipv6(kOwn6, 50, Bytes{0, 0, 1, 0}))) == Punt::kNone);
    CHECK(classify(cat(e6, ipv6(kOther6, 50, esp))) == Punt::kNone);
    // ICMP / ICMPv6 to own addresses: echo request and reply, errors.
    CHECK(classify(cat(e6, ipv6(kOwn6, 58, icmp(128)))) == Punt::kIcmp);
    CHECK(classify(cat(e6, ipv6(kOwn6, 58, icmp(129)))) == Punt::kIcmp);
    CHECK(classify(cat(e6, ipv6(kOwn6, 58, icmp(2)))) == Punt::kIcmp);
    CHECK(classify(cat(e4, ipv4(kOwn4, 1, icmp(8)))) == Punt::kIcmp);
    // ND with hop limit 255, to multicast or anywhere.
    for (std::uint8_t t : {133, 134, 135, 136}) {
        CHECK(classify(cat(e6, ipv6(kSolicited6, 58, icmp(t), 255))) == Punt::kNd);
        CHECK(classify(cat(e6, ipv6(kOther6, 58, icmp(t), 255))) == Punt::kNd);
    }
    // ARP for an own address (request or reply), and gratuitous ARP.
    CHECK(classify(cat(ea, arp(kOther4, kOwn4))) == Punt::kArp);
    CHECK(classify(cat(ea, arp(kOther4, kOwn4, 2))) == Punt::kArp);
    CHECK(classify(cat(ea, arp(kOther4, kOther4))) == Punt::kArp);
    // Fragments to own addresses go to the kernel, which reassembles.
    CHECK(classify(cat(e4, ipv4(kOwn4, 17, udp(5436), 0x2000))) == Punt::kFragment);
    CHECK(classify(cat(e4, ipv4(kOwn4, 17, udp(5436), 0x0010))) == Punt::kFragment);
    CHECK(classify(cat(e6, ipv6(kOwn6, 44, Bytes{17, 0, 0, 1, 0, 0, 0, 1}))) == Punt::kFragment);
}

TEST_CASE("classification: what stays user traffic", "[exception][classify]") {
    const Bytes e6 = eth(0x86DD), e4 = eth(0x0800), ea = eth(0x0806);
    // Same packets to other addresses.
    CHECK(classify(cat(e6, ipv6(kOther6, 135, mobility_header()))) == Punt::kNone);
    CHECK(classify(cat(e6, ipv6(kOther6, 17, udp(5436)))) == Punt::kNone);
    CHECK(classify(cat(e6, ipv6(kOther6, 58, icmp(128)))) == Punt::kNone);
    CHECK(classify(cat(e4, ipv4(kOther4, 1, icmp(8)))) == Punt::kNone);
    CHECK(classify(cat(ea, arp(kOther4, {192, 0, 2, 2}))) == Punt::kNone);
    CHECK(classify(cat(e4, ipv4(kOther4, 17, udp(5436), 0x2000))) == Punt::kNone);
    // Other UDP ports and GRE to own addresses are user traffic.
    CHECK(classify(cat(e6, ipv6(kOwn6, 17, udp(5437)))) == Punt::kNone);
    CHECK(classify(cat(e6, ipv6(kOwn6, 47, Bytes{0x20, 0, 0x86, 0xdd, 0, 0, 0, 1}))) ==
          Punt::kNone);
    CHECK(classify(cat(e4, ipv4(kOwn4, 47, Bytes{0x20, 0, 0x08, 0, 0, 0, 0, 1}))) == Punt::kNone);
    // ND with a hop limit other than 255 is invalid (RFC 4861) and not for a neighbour; to an
    // own address it is still ICMPv6 for the gateway.
    CHECK(classify(cat(e6, ipv6(kSolicited6, 58, icmp(135), 64))) == Punt::kNone);
    CHECK(classify(cat(e6, ipv6(kOwn6, 58, icmp(135), 64))) == Punt::kIcmp);
    // ARP that is not Ethernet/IPv4.
    Bytes bad_arp = arp(kOther4, kOwn4);
    bad_arp[4] = 8;  // hlen
    CHECK(classify(cat(ea, bad_arp)) == Punt::kNone);
}

TEST_CASE("classification: VLAN tags, extension headers, IPv4 options", "[exception][classify]") {
    // One and two VLAN tags; three are too many.
    CHECK(classify(cat(eth(0x86DD, 1), ipv6(kOwn6, 58, icmp(128)))) == Punt::kIcmp);
    CHECK(classify(cat(eth(0x0806, 2), arp(kOther4, kOwn4))) == Punt::kArp);
    Bytes three = cat(eth(0x86DD, 2), ipv6(kOwn6, 58, icmp(128)));
    three.insert(three.begin() + 12, {0x81, 0x00, 0x00, 0x07});
    CHECK(classify(three) == Punt::kNone);
    // Mobility Header behind hop-by-hop and destination options (Home Address option style).
    Bytes chain{60,  0, 1,    4,  0,    0,    0,    0,  // hop-by-hop, PadN
                135, 2, 0xc9, 16, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0,
                0,   0, 0,    0,  0,    0,    0,    0x42, 1, 2, 0, 0};  // dest opts: Home Address +
                                                                        // PadN, 24 octets
    CHECK(classify(cat(eth(0x86DD), ipv6(kOwn6, 0, cat(chain, mobility_header())))) ==
          Punt::kMobility);
    // UDP 5436 behind a routing header.
    Bytes rh{17, 0, 0, 0, 0, 0, 0, 0};
    CHECK(classify(cat(eth(0x86DD), ipv6(kOwn6, 43, cat(rh, udp(5436))))) == Punt::kUdpSignalling);
    // Nine extension headers: more than anyone sends.
    Bytes many;
    for (int i = 0; i < 9; ++i) {
        many.insert(many.end(), {static_cast<std::uint8_t>(i < 8 ? 60 : 58), 0, 1, 4, 0, 0, 0, 0});
    }
    CHECK(classify(cat(eth(0x86DD), ipv6(kOwn6, 60, cat(many, icmp(128))))) == Punt::kNone);
    // IPv4 with options.
    CHECK(classify(cat(eth(0x0800), ipv4(kOwn4, 1, icmp(8), 0, 2))) == Punt::kIcmp);
    CHECK(classify(cat(eth(0x0800), ipv4(kOwn4, 17, udp(5436), 0, 10))) == Punt::kUdpSignalling);
    // Ethernet padding after the IP packet is fine.
    Bytes padded = cat(eth(0x0800), ipv4(kOwn4, 1, icmp(8)));
    padded.resize(60, 0);
    CHECK(classify(padded) == Punt::kIcmp);
}

TEST_CASE("classification: truncated and inconsistent frames are never punted",
          "[exception][classify][hostile]") {
    const std::vector<Bytes> good = {
        cat(eth(0x86DD, 1), ipv6(kOwn6, 135, mobility_header())),
        cat(eth(0x86DD), ipv6(kOwn6, 17, udp(5436))),
        cat(eth(0x0800), ipv4(kOwn4, 17, udp(5436), 0, 3)),
        cat(eth(0x0800), ipv4(kOwn4, 1, icmp(8))),
        cat(eth(0x0806, 2), arp(kOther4, kOwn4)),
        cat(eth(0x86DD), ipv6(kSolicited6, 58, icmp(135), 255)),
    };
    for (const Bytes& g : good) {
        REQUIRE(classify(g) != Punt::kNone);
        // Every truncation of the frame, with the IP lengths left as they claim.
        for (std::size_t len = 0; len < g.size(); ++len) {
            const Bytes t(g.begin(), g.begin() + static_cast<std::ptrdiff_t>(len));
            INFO("length " << len << " of " << g.size());
            CHECK(classify(t) == Punt::kNone);
        }
    }
    // IPv6 payload length larger than the frame; IPv4 total length and IHL lies.
    Bytes v6 = cat(eth(0x86DD), ipv6(kOwn6, 58, icmp(128)));
    v6[14 + 5] = 200;
    CHECK(classify(v6) == Punt::kNone);
    Bytes v4 = cat(eth(0x0800), ipv4(kOwn4, 1, icmp(8)));
    v4[14 + 3] = 10;  // total length below the header
    CHECK(classify(v4) == Punt::kNone);
    v4 = cat(eth(0x0800), ipv4(kOwn4, 1, icmp(8)));
    v4[14] = 0x4f;  // IHL 60 > packet
    CHECK(classify(v4) == Punt::kNone);
    v4[14] = 0x44;  // IHL 16 < 20
    CHECK(classify(v4) == Punt::kNone);
    v4 = cat(eth(0x0800), ipv4(kOwn4, 1, icmp(8)));
    v4[14] = 0x65;  // version 6 in an IPv4 frame
    CHECK(classify(v4) == Punt::kNone);
    // An extension header whose length runs past the payload.
    Bytes ext{58, 5, 0, 0, 0, 0, 0, 0};
    CHECK(classify(cat(eth(0x86DD), ipv6(kOwn6, 60, cat(ext, icmp(128))))) == Punt::kNone);
    // ICMPv6 and UDP shorter than their headers inside a consistent IPv6 packet.
    CHECK(classify(cat(eth(0x86DD), ipv6(kOwn6, 58, Bytes{128, 0}))) == Punt::kNone);
    CHECK(classify(cat(eth(0x86DD), ipv6(kOwn6, 17, Bytes{0, 1, 0x15, 0x3c}))) == Punt::kNone);

    // Random bytes behind each Ethernet type: never a crash, and sanitizers stay quiet.
    std::mt19937 rng(5);
    const exc::OwnAddresses o = own();
    std::size_t punted = 0;
    for (int i = 0; i < 100000; ++i) {
        Bytes f = good[static_cast<std::size_t>(i) % good.size()];
        f.resize(rng() % (f.size() + 8));
        for (int k = 0; k < 4 && !f.empty(); ++k) {
            f[rng() % f.size()] = static_cast<std::uint8_t>(rng());
        }
        punted += exc::classify_frame(f.data(), f.size(), o) != Punt::kNone;
    }
    CHECK(punted > 0);
}

TEST_CASE("punt stage: punted frames go to the ring, the rest stay in order; a full ring drops",
          "[exception][punt]") {
    test::ensure_eal();
    rte_ring* to_k = rte_ring_create("t_to_k", 4, SOCKET_ID_ANY, RING_F_SC_DEQ);  // 3 slots
    REQUIRE(to_k != nullptr);
    const exc::OwnAddresses o = own();
    PuntCtx ctx;
    ctx.own = &o;
    ctx.to_kernel = to_k;

    const Bytes user = cat(eth(0x86DD), ipv6(kOther6, 17, udp(7000)));
    const Bytes ping = cat(eth(0x86DD), ipv6(kOwn6, 58, icmp(128)));
    const Bytes ns = cat(eth(0x86DD), ipv6(kSolicited6, 58, icmp(135), 255));
    std::vector<Bytes> in = {user, ping, user, ns, ping, user, ping};
    rte_mbuf* pkts[8];
    for (std::size_t i = 0; i < in.size(); ++i) {
        pkts[i] = test::mbuf_from(in[i]);
        pkts[i]->hash.usr = static_cast<std::uint32_t>(i);
    }
    const uint16_t kept = exception_punt(ctx, pkts, static_cast<uint16_t>(in.size()));
    REQUIRE(kept == 3);
    CHECK(pkts[0]->hash.usr == 0);
    CHECK(pkts[1]->hash.usr == 2);
    CHECK(pkts[2]->hash.usr == 5);
    rte_pktmbuf_free_bulk(pkts, kept);
    CHECK(ctx.punted[static_cast<std::size_t>(Punt::kIcmp)] == 3);
    CHECK(ctx.punted[static_cast<std::size_t>(Punt::kNd)] == 1);
    CHECK(ctx.ring_full == 1);  // four punted, three slots
    CHECK(rte_ring_count(to_k) == 3);
    void* objs[4];
    REQUIRE(rte_ring_dequeue_burst(to_k, objs, 4, nullptr) == 3);
    CHECK(static_cast<rte_mbuf*>(objs[0])->hash.usr == 1);
    CHECK(static_cast<rte_mbuf*>(objs[1])->hash.usr == 3);
    CHECK(static_cast<rte_mbuf*>(objs[2])->hash.usr == 4);
    for (void* m : {objs[0], objs[1], objs[2]}) {
        rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    }

    // A disabled context leaves the burst alone.
    PuntCtx off;
    pkts[0] = test::mbuf_from(ping);
    CHECK(exception_punt(off, pkts, 1) == 1);
    rte_pktmbuf_free(pkts[0]);

    // From the kernel: what the main lcore enqueued comes out for the port.
    rte_ring* from_k =
        rte_ring_create("t_from_k", 64, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
    ctx.from_kernel = from_k;
    rte_mbuf* m = test::mbuf_from(ping);
    REQUIRE(rte_ring_sp_enqueue(from_k, m) == 0);
    CHECK(exception_from_kernel(ctx, pkts, 8) == 1);
    CHECK(pkts[0] == m);
    CHECK(ctx.from_kernel_frames == 1);
    CHECK(exception_from_kernel(ctx, pkts, 8) == 0);
    rte_pktmbuf_free(m);
    rte_ring_free(to_k);
    rte_ring_free(from_k);
    // Every mbuf went back to the pool.
    CHECK(rte_mempool_in_use_count(test::pool()) == 0);
}

TEST_CASE("punt stage on a VLAN port: the port's tag is removed on the way to the TAP",
          "[exception][punt][vlan]") {
    test::ensure_eal();
    rte_ring* to_k = rte_ring_create("t_to_k_vlan", 16, SOCKET_ID_ANY, RING_F_SC_DEQ);
    REQUIRE(to_k != nullptr);
    const exc::OwnAddresses o = own();
    PuntCtx ctx;
    ctx.own = &o;
    ctx.to_kernel = to_k;
    ctx.vlan = 100;
    const Bytes ping = ipv6(kOwn6, 58, icmp(128));
    const Bytes tagged = cat(eth(0x86DD, 1), ping);  // VLAN 100
    Bytes prio = tagged;
    prio[14] = 0xa0;  // priority 5, VLAN 100: still the port's VLAN
    Bytes other = tagged;
    other[15] = 101;                               // another VLAN: left as it is
    const Bytes qinq = cat(eth(0x86DD, 2), ping);  // outer 802.1ad tag: left as it is
    const std::vector<Bytes> in = {tagged, prio, other, qinq, cat(eth(0x86DD), ping)};
    rte_mbuf* pkts[8];
    for (std::size_t i = 0; i < in.size(); ++i)
        pkts[i] = test::mbuf_from(in[i]);
    REQUIRE(exception_punt(ctx, pkts, static_cast<uint16_t>(in.size())) == 0);
    void* objs[8];
    REQUIRE(rte_ring_dequeue_burst(to_k, objs, 8, nullptr) == in.size());
    const Bytes untagged = cat(eth(0x86DD), ping);
    const std::vector<Bytes> want = {untagged, untagged, other, qinq, untagged};
    for (std::size_t i = 0; i < in.size(); ++i) {
        auto* m = static_cast<rte_mbuf*>(objs[i]);
        CHECK(test::bytes_of(m) == want[i]);
        rte_pktmbuf_free(m);
    }
    rte_ring_free(to_k);
    CHECK(rte_mempool_in_use_count(test::pool()) == 0);
}

TEST_CASE("next-hop table: resolution, sharing, deferred reuse", "[exception][nexthop]") {
    test::ensure_eal();
    auto rcu = std::move(Rcu::create(2).value());
    NextHopTable t(2, *rcu);
    const IpAddr a = IpAddr::v6(kOther6), b = IpAddr::v4(192, 0, 2, 1);
    auto i = t.acquire(0, a);
    REQUIRE(i.ok());
    CHECK(t.acquire(0, a).value() == *i);  // shared, two references
    auto j = t.acquire(1, a);              // another port: another next hop
    REQUIRE(j.ok());
    CHECK(*j != *i);
    CHECK_FALSE(t.acquire(0, b).ok());  // full
    MacAddr m{};
    CHECK_FALSE(t.mac(*i, m));
    CHECK_FALSE(t.wanted(*i));
    t.want(*i);
    CHECK(t.wanted(*i));
    CHECK(t.take_wanted(*i));
    CHECK_FALSE(t.take_wanted(*i));
    t.set_mac(*i, {0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee});
    REQUIRE(t.mac(*i, m));
    CHECK(m == MacAddr{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee});
    t.clear_mac(*i);
    CHECK_FALSE(t.mac(*i, m));

    // A reader holds the index: released twice, it is not reused before a grace period.
    rcu->register_reader(0);
    t.release(*i);
    CHECK(t.find(0, a) == *i);
    t.release(*i);
    CHECK(t.find(0, a) == NextHopTable::kNone);
    CHECK(t.in_use().size() == 1);
    CHECK_FALSE(t.acquire(0, b).ok());  // the freed index waits for the reader
    rcu->quiescent(0);
    auto k = t.acquire(0, b);
    REQUIRE(k.ok());
    CHECK(*k == *i);
    CHECK_FALSE(t.mac(*k, m));
    rcu->unregister_reader(0);
}

namespace {

// One rtnetlink neighbour message as the kernel lays it out.
Bytes neigh_msg(std::uint16_t type, std::uint8_t family, int ifindex, std::uint16_t state,
                const Bytes& dst, const Bytes& lladdr) {
    Bytes b(16 + 12, 0);
    auto attr = [&b](std::uint16_t t, const Bytes& v) {
        const std::uint16_t len = static_cast<std::uint16_t>(4 + v.size());
        Bytes h(4);
        std::memcpy(h.data(), &len, 2);
        std::memcpy(h.data() + 2, &t, 2);
        b.insert(b.end(), h.begin(), h.end());
        b.insert(b.end(), v.begin(), v.end());
        b.resize((b.size() + 3) & ~std::size_t{3}, 0);
    };
    if (!dst.empty())
        attr(NDA_DST, dst);
    if (!lladdr.empty())
        attr(NDA_LLADDR, lladdr);
    const std::uint32_t len = static_cast<std::uint32_t>(b.size());
    std::memcpy(b.data(), &len, 4);
    std::memcpy(b.data() + 4, &type, 2);
    b[16] = family;
    std::memcpy(b.data() + 20, &ifindex, 4);
    std::memcpy(b.data() + 24, &state, 2);
    return b;
}

}  // namespace

TEST_CASE("neighbour messages: parsed, and hostile ones rejected",
          "[exception][netlink][hostile]") {
    const Bytes v6(kOther6.begin(), kOther6.end());
    const Bytes v4{192, 0, 2, 1};
    const Bytes mac{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee};
    Bytes buf = neigh_msg(RTM_NEWNEIGH, AF_INET6, 7, NUD_REACHABLE, v6, mac);
    buf = cat(buf, neigh_msg(RTM_NEWNEIGH, AF_INET, 7, NUD_FAILED, v4, {}));
    buf = cat(buf, neigh_msg(RTM_DELNEIGH, AF_INET, 8, NUD_STALE, v4, mac));
    buf = cat(buf, neigh_msg(RTM_NEWNEIGH, AF_BRIDGE, 8, NUD_REACHABLE, v4, mac));  // ignored
    buf = cat(buf, neigh_msg(RTM_NEWNEIGH, AF_INET, 8, NUD_REACHABLE, {}, mac));    // no dst
    std::vector<NeighbourEvent> evs;
    auto fn = [&evs](const NeighbourEvent& e) { evs.push_back(e); };
    CHECK(parse_neighbour_messages(buf.data(), buf.size(), fn) == 0);
    REQUIRE(evs.size() == 3);
    CHECK(evs[0].ifindex == 7);
    CHECK(evs[0].addr == IpAddr::v6(kOther6));
    CHECK(evs[0].usable());
    CHECK(evs[0].mac == MacAddr{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee});
    CHECK(evs[1].addr == IpAddr::v4(192, 0, 2, 1));
    CHECK_FALSE(evs[1].usable());
    CHECK((evs[1].state & NUD_FAILED) != 0);
    CHECK(evs[2].removed);
    CHECK_FALSE(evs[2].usable());

    // A destination of the wrong length, an attribute running past its message, a message
    // running past the buffer, a length below the header.
    evs.clear();
    Bytes bad = neigh_msg(RTM_NEWNEIGH, AF_INET, 7, NUD_REACHABLE, v6, mac);  // 16-octet IPv4
    CHECK(parse_neighbour_messages(bad.data(), bad.size(), fn) == 1);
    bad = neigh_msg(RTM_NEWNEIGH, AF_INET6, 7, NUD_REACHABLE, v6, mac);
    bad[28] = 200;  // first attribute's length
    CHECK(parse_neighbour_messages(bad.data(), bad.size(), fn) == 1);
    bad = neigh_msg(RTM_NEWNEIGH, AF_INET6, 7, NUD_REACHABLE, v6, mac);
    CHECK(parse_neighbour_messages(bad.data(), bad.size() - 1, fn) == 1);
    bad[0] = 8;
    bad[1] = bad[2] = bad[3] = 0;
    CHECK(parse_neighbour_messages(bad.data(), bad.size(), fn) == 1);
    bad = neigh_msg(RTM_NEWNEIGH, AF_INET6, 7, NUD_REACHABLE, v6, mac);
    bad[0] = 20;  // shorter than nlmsghdr + ndmsg
    bad[1] = bad[2] = bad[3] = 0;
    CHECK(parse_neighbour_messages(bad.data(), 20, fn) == 1);
    CHECK(evs.empty());
    // Every truncation of a good buffer: no crash, no event from a cut message.
    const Bytes one = neigh_msg(RTM_NEWNEIGH, AF_INET6, 7, NUD_REACHABLE, v6, mac);
    for (std::size_t len = 0; len < one.size(); ++len) {
        (void)parse_neighbour_messages(one.data(), len, fn);
    }
    CHECK(evs.empty());
}
