// tools/hag-gen: packet builders into real DPDK mbufs (EAL --no-huge --no-pci), the generator's
// striping / loss / skew / permutation, the receiver's accounting (also on hostile bytes), and
// the live mode over a net_ring loopback.
#include <rte_dev.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "../dataplane/eal_fixture.hpp"
#include "bench/subscribers.hpp"
#include "gen.hpp"
#include "hag/net/gre.hpp"
#include "hag/net/ipv4.hpp"
#include "hag/net/ipv6.hpp"
#include "hag/net/udp.hpp"
#include "live.hpp"

namespace {

using namespace hag::gen;
namespace bench = hag::dp::bench;
using hag::dp::test::bytes_of;
using hag::dp::test::pool;

std::array<std::uint8_t, 16> a16(const hag::dp::IpAddr& a) {
    return a.bytes;
}
std::array<std::uint8_t, 4> a4(const hag::dp::IpAddr& a) {
    return {a.bytes[0], a.bytes[1], a.bytes[2], a.bytes[3]};
}

// The frame of `s` built into a fresh mbuf, read back as bytes.
std::vector<std::uint8_t> via_mbuf(Direction d, const PacketSpec& s, std::uint64_t tsc,
                                   std::optional<Stamp>* stamp = nullptr) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool());
    REQUIRE(m != nullptr);
    REQUIRE(fill_mbuf(m, d, s, tsc));
    if (stamp != nullptr) {
        *stamp = mbuf_stamp(m);
    }
    auto b = bytes_of(m);
    rte_pktmbuf_free(m);
    return b;
}

std::span<const std::uint8_t> after_eth(const std::vector<std::uint8_t>& f) {
    return std::span<const std::uint8_t>(f).subspan(14);
}

}  // namespace

TEST_CASE("hag-gen downlink IPv6 64-octet frame in an mbuf", "[hag-gen]") {
    PacketSpec s{.subscriber = 70000, .ipv4 = false, .size = 64, .seq = 5, .path = 0};
    std::optional<Stamp> st;
    const auto f = via_mbuf(Direction::kDownlink, s, 123, &st);
    REQUIRE(f.size() == 64);
    CHECK(f[12] == 0x86);
    CHECK(f[13] == 0xdd);
    CHECK(std::equal(bench::kCoreNextHopMac.begin(), bench::kCoreNextHopMac.end(), f.begin() + 6));
    auto ip = hag::net::parse_ipv6(after_eth(f));
    REQUIRE(ip);
    CHECK(ip->header.src == a16(bench::core_host()));
    CHECK(ip->header.dst == a16(bench::inner_host(70000)));
    CHECK(bench::home_prefix(70000).contains(bench::inner_host(70000)));
    auto udp = hag::net::parse_udp(ip->payload, ip->header.src, ip->header.dst);
    REQUIRE(udp);  // checksum verified
    CHECK(udp->header.dst_port == 9);
    CHECK_FALSE(stamped(s));  // 2 octets of payload: no room for the stamp
    CHECK_FALSE(st.has_value());
}

TEST_CASE("hag-gen downlink IPv4 and IMIX frames carry the stamp", "[hag-gen]") {
    for (std::uint16_t size : {64, 594, 1400}) {
        PacketSpec s{.subscriber = 3, .ipv4 = true, .size = size, .seq = 77, .path = 0};
        std::optional<Stamp> st;
        const auto f = via_mbuf(Direction::kDownlink, s, 0xabcdef, &st);
        REQUIRE(f.size() == size);
        CHECK(f[12] == 0x08);
        auto ip = hag::net::parse_ipv4(after_eth(f));
        REQUIRE(ip);
        CHECK(ip->header.dst == a4(bench::inner_host_v4(3)));
        CHECK(ip->header.src == a4(bench::core_host_v4()));
        REQUIRE(hag::net::parse_udp(ip->payload, ip->header.src, ip->header.dst));
        REQUIRE(st.has_value());
        CHECK(*st == Stamp{flow_id(3, true), 77, 0xabcdef});
    }
    // IPv6 with room for it.
    PacketSpec s{.subscriber = 9, .ipv4 = false, .size = 594, .seq = 1, .path = 0};
    std::optional<Stamp> st;
    via_mbuf(Direction::kDownlink, s, 1, &st);
    REQUIRE(st.has_value());
    CHECK(st->flow == flow_id(9, false));
}

TEST_CASE("hag-gen uplink GRE: the session's key, number and path's care-of address", "[hag-gen]") {
    for (unsigned path : {0u, 1u, 3u}) {
        PacketSpec s{.subscriber = 42, .ipv4 = false, .size = 64, .seq = 1000 + path, .path = path};
        const auto f = via_mbuf(Direction::kUplink, s, 0);
        REQUIRE(f.size() == 116);  // the smallest keyed, sequenced GRE over IPv6 of a 64 B frame
        auto outer = hag::net::parse_ipv6(after_eth(f));
        REQUIRE(outer);
        CHECK(outer->header.src == a16(bench::path_coa(42, path)));
        CHECK(outer->header.dst == a16(bench::gateway_address()));
        CHECK(outer->header.next_header == 47);
        auto gre = hag::net::parse_gre(outer->payload);
        REQUIRE(gre);
        CHECK(gre->header.key == bench::uplink_key(42));
        CHECK(gre->header.sequence == 1000 + path);
        auto inner = hag::net::parse_ipv6(gre->payload);
        REQUIRE(inner);
        CHECK(inner->header.src == a16(bench::inner_host(42)));
        CHECK(hag::net::parse_udp(inner->payload, inner->header.src, inner->header.dst));
    }
    // The paths hag-gen stripes over are the session's (session_config with 4 paths).
    const auto c = bench::session_config(42, 0, {}, 4);
    for (unsigned k = 0; k < 4; ++k) {
        CHECK(c.paths[k].coa == bench::path_coa(42, k));
    }
    CHECK(bench::session_config(42, 0, {}, 1, hag::dp::StripingMode::kWeighted, true)
              .prefixes[1]
              .contains(bench::inner_host_v4(42)));
}

TEST_CASE("hag-gen uplink: every number once, striped by weight, skewed, lost, swapped",
          "[hag-gen]") {
    Profile p;
    p.direction = Direction::kUplink;
    p.subscribers = 3;
    p.paths = 2;
    p.path_weights = {1, 3};
    Generator g(p);
    std::map<std::uint32_t, std::vector<std::uint32_t>> seqs;
    std::map<unsigned, unsigned> per_path;
    for (int k = 0; k < 3 * 400; ++k) {
        const auto s = g.next();
        seqs[s.subscriber].push_back(s.seq);
        ++per_path[s.path];
    }
    for (auto& [sub, v] : seqs) {
        REQUIRE(v.size() == 400);
        CHECK(std::is_sorted(v.begin(), v.end()));  // no skew, no permutation: in order
        CHECK(v.back() == 399);
    }
    CHECK(per_path[1] == 3 * per_path[0]);

    // Skew: path 1 four slots late. Each session's numbers all come, some out of order.
    p.path_weights = {};
    p.skew = {0, 4};
    Generator sk(p);
    std::map<std::uint32_t, std::vector<std::uint32_t>> sseq;
    for (int k = 0; k < 3 * 200; ++k) {
        const auto s = sk.next();
        sseq[s.subscriber].push_back(s.seq);
    }
    for (auto& [sub, v] : sseq) {
        CHECK_FALSE(std::is_sorted(v.begin(), v.end()));
        std::set<std::uint32_t> uniq(v.begin(), v.end());
        CHECK(uniq.size() == v.size());
        CHECK(*uniq.begin() == 0);
        CHECK(*uniq.rbegin() < 200 + 4);  // a number is at most the skew late
    }

    // Loss: the dropped numbers never come; permutation: adjacent swaps.
    p.skew = {};
    p.loss_permille = 100;
    p.permille = 100;
    Generator lp(p);
    std::uint64_t swapped = 0;
    std::map<std::uint32_t, std::vector<std::uint32_t>> lseq;
    for (int k = 0; k < 3 * 1000; ++k) {
        const auto s = lp.next();
        auto& v = lseq[s.subscriber];
        if (!v.empty() && s.seq < v.back()) {
            ++swapped;
        }
        v.push_back(s.seq);
    }
    std::uint64_t max_seen = 0;
    for (auto& [sub, v] : lseq) {
        max_seen += *std::max_element(v.begin(), v.end()) + 1;
    }
    CHECK(lp.dropped() > 150);
    CHECK(lp.dropped() < 500);
    CHECK(swapped > 150);
    CHECK(max_seen >= 3000 + lp.dropped() - 3);  // generated = sent + dropped
}

TEST_CASE("hag-gen downlink: both families alternate, numbers per flow, sizes by weight",
          "[hag-gen]") {
    Profile p;
    p.subscribers = 10;
    p.ipv4 = true;
    p.sizes = *parse_sizes("imix");
    Generator g(p);
    std::map<std::uint32_t, std::uint32_t> next;
    std::map<std::uint16_t, unsigned> sizes;
    unsigned v4 = 0;
    for (int k = 0; k < 1200; ++k) {
        const auto s = g.next();
        const auto f = flow_id(s.subscriber, s.ipv4);
        CHECK(s.seq == next[f]++);
        ++sizes[s.size];
        v4 += s.ipv4 ? 1 : 0;
    }
    CHECK(v4 == 600);
    CHECK(sizes[64] == 700);
    CHECK(sizes[594] == 400);
    CHECK(sizes[1400] == 100);
    CHECK_FALSE(parse_sizes("63"));
    CHECK_FALSE(parse_sizes("64:0"));
    CHECK_FALSE(parse_sizes("1502"));
    CHECK_FALSE(parse_sizes("64,"));
    CHECK(parse_sizes("64:3,128")->size() == 2);
    Profile bad = p;
    bad.subscribers = bench::kMaxIpv4Subscribers + 1;
    CHECK_FALSE(validate(bad));
}

TEST_CASE("hag-gen receiver: order, gaps, late numbers, latency; hostile bytes", "[hag-gen]") {
    Receiver r(4, 1000000000);  // 1 GHz: one cycle per ns
    auto frame = [](std::uint32_t sub, std::uint32_t seq, std::uint64_t tsc) {
        return build_frame(Direction::kDownlink,
                           PacketSpec{.subscriber = sub, .ipv4 = true, .size = 64, .seq = seq},
                           tsc);
    };
    for (std::uint32_t seq : {0u, 1u, 3u, 2u, 4u, 7u}) {
        r.on_frame(frame(1, seq, 1000), 1000 + 500 + seq);
    }
    auto rep = r.report();
    CHECK(rep.received == 6);
    CHECK(rep.in_order == 5);
    CHECK(rep.reordered == 1);
    CHECK(rep.gap_numbers == 2);  // 5 and 6 never came (2 came late and filled its gap)
    CHECK(rep.latency_ns_p50 >= 500);
    CHECK(rep.latency_ns_max <= 507);

    // Hostile input: random lengths and bytes, a valid stamp for an unknown flow, a short frame.
    std::mt19937 rng(7);
    for (int k = 0; k < 2000; ++k) {
        std::vector<std::uint8_t> junk(rng() % 80);
        for (auto& b : junk) {
            b = static_cast<std::uint8_t>(rng());
        }
        r.on_frame(junk, 0);
    }
    auto foreign = frame(3, 0, 0);
    put_stamp(foreign, Stamp{1000, 1, 5});
    r.on_frame(foreign, 0);
    r.on_frame(std::span<const std::uint8_t>(foreign.data(), 3), 0);
    rep = r.report();
    CHECK(rep.foreign_flow == 1);
    CHECK(rep.received == 6 + 2000 + 2);
    CHECK_FALSE(parse_stamp(std::span<const std::uint8_t>(foreign.data(), 19)));
}

TEST_CASE("hag-gen live over a net_ring loopback: all back, in order, latency measured",
          "[hag-gen]") {
    hag::dp::test::ensure_eal();
    Profile p;
    p.direction = Direction::kUplink;
    p.subscribers = 16;
    p.paths = 2;
    p.sizes = *parse_sizes("128");
    REQUIRE(rte_eal_hotplug_add("vdev", "net_ring_hgen0", "") == 0);
    std::uint16_t port = 0;
    REQUIRE(rte_eth_dev_get_port_by_name("net_ring_hgen0", &port) == 0);
    LiveOptions o;
    o.eal_ready = true;
    o.tx_port = port;
    o.seconds = 0;
    o.count = 3000;
    o.drain_seconds = 0.05;
    auto r = run_live(p, o);
    REQUIRE(r);
    CHECK(r->sent == 3000);
    CHECK(r->rx.received == 3000);
    CHECK(r->rx.stamped == 3000);
    CHECK(r->rx.in_order == 3000);
    CHECK(r->rx.reordered == 0);
    CHECK(r->rx.gap_numbers == 0);
    CHECK(r->rx.latency_ns_max > 0);
    const auto json = to_json(*r, p);
    CHECK(json.find("\"lost\":0,") != std::string::npos);
}
