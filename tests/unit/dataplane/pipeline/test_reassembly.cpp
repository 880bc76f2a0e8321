// Outer fragment reassembly (pipeline/reassembly.hpp, fragment_parse.hpp, the worker's
// take_fragments): real EAL, real mbufs from a real mempool, DPDK's rte_ip_frag. Tunnel packets
// (GRE over IPv6 and IPv4, GRE in UDP, IP in IP) are cut into fragments here, fed in every
// order, and must come out whole, byte for byte, in one segment, parsed by the uplink's own
// parser; hostile sets (overlaps, duplicates, too many, oversize, misaligned, empty, timeouts, a
// full table) are dropped under their reason; with two workers the fragments of one packet meet
// at one worker whichever worker receives them; no mbuf is leaked.
#include <catch2/catch.hpp>

#include <rte_cycles.h>
#include <rte_mempool.h>

#include <algorithm>
#include <optional>
#include <random>
#include <vector>

#include "../eal_fixture.hpp"
#include "pipeline/fragment_parse.hpp"
#include "pipeline/reassembly.hpp"
#include "runtime/worker.hpp"

using namespace hag::dp;
using Bytes = std::vector<std::uint8_t>;

namespace {

void put16(Bytes& b, std::size_t at, std::uint16_t v) {
    b[at] = static_cast<std::uint8_t>(v >> 8);
    b[at + 1] = static_cast<std::uint8_t>(v);
}

std::uint16_t ip_checksum(const std::uint8_t* h, std::size_t n) {
    std::uint32_t s = 0;
    for (std::size_t i = 0; i + 1 < n; i += 2)
        s += static_cast<std::uint32_t>(h[i] << 8 | h[i + 1]);
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return static_cast<std::uint16_t>(~s);
}

Bytes ether(std::uint16_t type) {
    Bytes b = {0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0, 0};
    put16(b, 12, type);
    return b;
}

// The tunnel payload (after the outer IP header): GRE with a key and an IPv6/UDP inner packet
// of `inner_payload` octets (a pattern, so misplaced octets show).
Bytes gre_payload(std::size_t inner_payload, std::uint8_t seed) {
    Bytes g = {0x20, 0x00, 0x86, 0xdd, 0, 0, 0x10, 0x01};  // K, IPv6, key 0x1001
    Bytes in(40 + 8 + inner_payload);
    in[0] = 0x60;
    put16(in, 4, static_cast<std::uint16_t>(8 + inner_payload));
    in[6] = 17;
    in[7] = 64;
    const std::uint8_t src[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42};
    const std::uint8_t dst[16] = {0x20, 0x01, 0x0d, 0xb8, 0x99, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    std::copy(src, src + 16, in.begin() + 8);
    std::copy(dst, dst + 16, in.begin() + 24);
    put16(in, 40, 7000);
    put16(in, 42, 7000);
    put16(in, 44, static_cast<std::uint16_t>(8 + inner_payload));
    for (std::size_t i = 0; i < inner_payload; ++i)
        in[48 + i] = static_cast<std::uint8_t>(seed + i * 7);
    g.insert(g.end(), in.begin(), in.end());
    return g;
}

struct Packet {
    bool v6 = true;
    std::uint8_t proto = 47;
    std::uint32_t id = 0x1234;
    Bytes payload;  // what follows the outer IP header in the whole packet
    Bytes whole() const {
        Bytes b = ether(v6 ? 0x86dd : 0x0800);
        if (v6) {
            Bytes ip(40);
            ip[0] = 0x60;
            put16(ip, 4, static_cast<std::uint16_t>(payload.size()));
            ip[6] = proto;
            ip[7] = 64;
            ip[8] = 0x20, ip[9] = 0x01, ip[10] = 0x0d, ip[11] = 0xb8, ip[12] = 0xaa, ip[23] = 1;
            ip[24] = 0x20, ip[25] = 0x01, ip[26] = 0x0d, ip[27] = 0xb8, ip[28] = 0xff, ip[39] = 1;
            b.insert(b.end(), ip.begin(), ip.end());
        } else {
            Bytes ip(20);
            ip[0] = 0x45;
            put16(ip, 2, static_cast<std::uint16_t>(20 + payload.size()));
            put16(ip, 4, static_cast<std::uint16_t>(id));
            ip[8] = 64;
            ip[9] = proto;
            ip[12] = 198, ip[13] = 51, ip[14] = 100, ip[15] = 7;
            ip[16] = 203, ip[17] = 0, ip[18] = 113, ip[19] = 1;
            put16(ip, 10, ip_checksum(ip.data(), 20));
            b.insert(b.end(), ip.begin(), ip.end());
        }
        b.insert(b.end(), payload.begin(), payload.end());
        return b;
    }
    // One fragment: payload[off, off + len), `more` as given.
    Bytes fragment(std::size_t off, std::size_t len, bool more) const {
        const Bytes w = whole();
        Bytes b(w.begin(), w.begin() + 14 + (v6 ? 40 : 20));
        if (v6) {
            b[14 + 6] = 44;
            put16(b, 14 + 4, static_cast<std::uint16_t>(8 + len));
            Bytes fh(8);
            fh[0] = proto;
            put16(fh, 2, static_cast<std::uint16_t>(off | (more ? 1 : 0)));
            fh[4] = static_cast<std::uint8_t>(id >> 24);
            fh[5] = static_cast<std::uint8_t>(id >> 16);
            fh[6] = static_cast<std::uint8_t>(id >> 8);
            fh[7] = static_cast<std::uint8_t>(id);
            b.insert(b.end(), fh.begin(), fh.end());
        } else {
            put16(b, 14 + 2, static_cast<std::uint16_t>(20 + len));
            put16(b, 14 + 6, static_cast<std::uint16_t>((off / 8) | (more ? 0x2000 : 0)));
            put16(b, 14 + 10, 0);
            put16(b, 14 + 10, ip_checksum(b.data() + 14, 20));
        }
        b.insert(b.end(), payload.begin() + static_cast<std::ptrdiff_t>(off),
                 payload.begin() + static_cast<std::ptrdiff_t>(off + len));
        return b;
    }
    // Cut at multiples of `size` (a multiple of 8).
    std::vector<Bytes> fragments(std::size_t size) const {
        std::vector<Bytes> out;
        for (std::size_t off = 0; off < payload.size(); off += size) {
            const std::size_t len = std::min(size, payload.size() - off);
            out.push_back(fragment(off, len, off + len < payload.size()));
        }
        return out;
    }
};

struct Fixture {
    std::unique_ptr<Reassembly> r;
    unsigned in_use = 0;
    explicit Fixture(std::uint32_t max_packets = 64, std::uint32_t timeout_ms = 1000) {
        test::ensure_eal();
        in_use = rte_mempool_in_use_count(test::pool());
        ReassemblySettings s;
        s.max_packets = max_packets;
        s.timeout_ms = timeout_ms;
        auto c = Reassembly::create(s, test::pool(), rte_get_tsc_hz());
        REQUIRE(c);
        r = std::move(*c);
    }
    // Feeds one frame; returns the whole packet's bytes when it completed one.
    std::optional<Bytes> feed(const Bytes& frame, std::uint64_t now = 1000) {
        rte_mbuf* m = test::mbuf_from(frame);
        REQUIRE(m != nullptr);
        OuterFragment f;
        const FragParse v =
            parse_outer_fragment(frame.data(), static_cast<std::uint16_t>(frame.size()), f);
        REQUIRE(v != FragParse::kNone);
        rte_mbuf* w = r->add(m, v, f, now);
        if (w == nullptr) {
            return std::nullopt;
        }
        CHECK(w->nb_segs == 1);
        Bytes b = test::bytes_of(w);
        rte_pktmbuf_free(w);
        return b;
    }
    std::uint64_t drop(ReassemblyDrop d) const { return r->drops[static_cast<std::size_t>(d)]; }
    std::uint64_t event(ReassemblyEvent e) const { return r->events[static_cast<std::size_t>(e)]; }
    void no_leak() {
        r->expire(~std::uint64_t{0} / 2);
        r.reset();
        CHECK(rte_mempool_in_use_count(test::pool()) == in_use);
    }
};

// The uplink's own parser must take the reassembled frame as a whole GRE packet.
void check_gre(const Bytes& got, const Packet& p) {
    REQUIRE(got.size() == p.whole().size());
    GreInIp g;
    const GreParse v =
        parse_gre_in_ip(got.data(), static_cast<std::uint16_t>(got.size()), g,
                        [](const std::uint8_t*, std::size_t) { return std::uint16_t{0xffff}; });
    CHECK(v == GreParse::kOk);
    CHECK(Bytes(got.begin() + 14 + (p.v6 ? 40 : 20), got.end()) == p.payload);
    if (!p.v6) {
        CHECK(ip_checksum(got.data() + 14, 20) == 0);
        CHECK((got[14 + 6] & 0x3f) == 0);  // MF and offset clear
    } else {
        CHECK(got[14 + 6] == p.proto);
    }
}

}  // namespace

TEST_CASE("GRE over IPv6 and IPv4: fragments in every order make the packet again",
          "[reassembly]") {
    for (const bool v6 : {true, false}) {
        Fixture fx;
        Packet p;
        p.v6 = v6;
        p.payload = gre_payload(1400, v6 ? 3 : 5);
        auto frags = p.fragments(504);  // 3 fragments
        REQUIRE(frags.size() == 3);
        std::vector<int> order = {0, 1, 2};
        int n = 0;
        do {
            p.id = 0x100u + static_cast<std::uint32_t>(n++);
            frags = p.fragments(504);
            std::optional<Bytes> got;
            for (std::size_t i = 0; i < order.size(); ++i) {
                auto r = fx.feed(frags[static_cast<std::size_t>(order[i])]);
                CHECK(r.has_value() == (i + 1 == order.size()));
                if (r)
                    got = r;
            }
            REQUIRE(got);
            check_gre(*got, p);
        } while (std::next_permutation(order.begin(), order.end()));
        CHECK(fx.event(ReassemblyEvent::kReassembled) == 6);
        for (std::size_t d = 0; d < static_cast<std::size_t>(ReassemblyDrop::kCount); ++d)
            CHECK(fx.r->drops[d] == 0);
        fx.no_leak();
    }
}

TEST_CASE("GRE in UDP and IP in IP fragments, and an atomic fragment", "[reassembly]") {
    Fixture fx;
    Packet udp;
    udp.v6 = false;
    udp.proto = 17;
    Bytes u(8);
    put16(u, 0, 40000);
    put16(u, 2, kDataUdpPort);
    Bytes gre = gre_payload(900, 9);
    put16(u, 4, static_cast<std::uint16_t>(8 + gre.size()));
    u.insert(u.end(), gre.begin(), gre.end());
    udp.payload = u;
    std::optional<Bytes> got;
    for (const auto& f : udp.fragments(480))
        got = fx.feed(f);
    REQUIRE(got);
    CHECK(Bytes(got->begin() + 34, got->end()) == udp.payload);

    Packet ipip;
    ipip.proto = 41;
    const Bytes inner = gre_payload(700, 1);
    ipip.payload = Bytes(inner.begin() + 8, inner.end());  // the IPv6 packet without GRE
    got.reset();
    for (const auto& f : ipip.fragments(512))
        got = fx.feed(f);
    REQUIRE(got);
    check_gre(*got, ipip);

    // RFC 6946: offset 0 and no more fragments is a whole packet with a Fragment header.
    Packet atomic;
    atomic.payload = gre_payload(100, 2);
    got = fx.feed(atomic.fragment(0, atomic.payload.size(), false));
    REQUIRE(got);
    check_gre(*got, atomic);
    CHECK(fx.event(ReassemblyEvent::kAtomic) == 1);
    CHECK(fx.event(ReassemblyEvent::kReassembled) == 2);
    fx.no_leak();
}

TEST_CASE("hostile fragments are dropped under their reason and nothing leaks",
          "[reassembly][hostile]") {
    Fixture fx(8, 1000);
    Packet p;
    p.payload = gre_payload(1400, 4);
    auto next_id = [&p] { return ++p.id; };

    // Overlap: the second fragment starts inside the first.
    next_id();
    CHECK(!fx.feed(p.fragment(0, 512, true)));
    CHECK(!fx.feed(p.fragment(504, p.payload.size() - 504, false)));
    CHECK(fx.drop(ReassemblyDrop::kInvalid) == 2);

    // A duplicate first fragment.
    next_id();
    CHECK(!fx.feed(p.fragment(0, 512, true)));
    CHECK(!fx.feed(p.fragment(0, 512, true)));
    CHECK(fx.drop(ReassemblyDrop::kInvalid) == 4);

    // More than 8 fragments (rte_ip_frag keeps 8 per packet).
    next_id();
    std::size_t fed = 0;
    for (std::size_t off = 0; off + 64 < p.payload.size() && fed < 10; off += 64, ++fed)
        CHECK(!fx.feed(p.fragment(off, 64, true)));
    CHECK(fx.drop(ReassemblyDrop::kInvalid) > 4);
    const auto invalid = fx.drop(ReassemblyDrop::kInvalid);

    // A hole: first and last, their sizes adding up to the total, but apart.
    next_id();
    CHECK(!fx.feed(p.fragment(0, 8, true)));
    CHECK(!fx.feed(p.fragment(16, 8, true)));
    CHECK(!fx.feed(p.fragment(8, 16, false)));  // claims 24 in all with 32 octets: given up
    CHECK(fx.drop(ReassemblyDrop::kInvalid) > invalid);

    // Malformed: not a multiple of 8 before the last, and no data.
    next_id();
    CHECK(!fx.feed(p.fragment(0, 100, true)));
    CHECK(!fx.feed(p.fragment(8, 0, true)));
    CHECK(fx.drop(ReassemblyDrop::kMalformed) == 2);

    // Oversize: a packet larger than one mbuf holds.
    Packet big;
    big.payload = gre_payload(2100, 6);
    CHECK(!fx.feed(big.fragment(1600, big.payload.size() - 1600, false)));
    CHECK(fx.drop(ReassemblyDrop::kOversize) == 1);

    // A full table: 8 packets wait, the 9th finds no entry.
    std::uint64_t held = 0;
    for (int i = 0; i < 9; ++i) {
        next_id();
        CHECK(!fx.feed(p.fragment(0, 512, true)));
        ++held;
    }
    CHECK(fx.drop(ReassemblyDrop::kTableFull) >= 1);
    // They time out; the table takes new packets again.
    const std::uint64_t later = 1000 + rte_get_tsc_hz() * 2;
    fx.r->expire(later);
    CHECK(fx.drop(ReassemblyDrop::kTimedOut) >= 7);
    next_id();
    std::optional<Bytes> got;
    for (const auto& f : p.fragments(504))
        got = fx.feed(f, later + 1);
    REQUIRE(got);
    check_gre(*got, p);
    fx.no_leak();
}

TEST_CASE("the fragment parser refuses what it must and leaves other protocols alone",
          "[reassembly][hostile]") {
    Packet p;
    p.payload = gre_payload(200, 1);
    OuterFragment f;
    const Bytes whole = p.whole();
    CHECK(parse_outer_fragment(whole.data(), static_cast<std::uint16_t>(whole.size()), f) ==
          FragParse::kNone);
    CHECK(!maybe_outer_fragment(whole.data(), static_cast<std::uint16_t>(whole.size())));
    Packet icmp = p;
    icmp.proto = 58;  // not a tunnel protocol: the kernel reassembles what is punted
    const Bytes frag = icmp.fragment(0, 64, true);
    CHECK(maybe_outer_fragment(frag.data(), static_cast<std::uint16_t>(frag.size())));
    CHECK(parse_outer_fragment(frag.data(), static_cast<std::uint16_t>(frag.size()), f) ==
          FragParse::kNone);
    // Every truncation of a fragment is refused or seen whole, never read past.
    const Bytes g = p.fragment(8, 64, true);
    for (std::size_t n = 0; n <= g.size(); ++n) {
        const FragParse v = parse_outer_fragment(g.data(), static_cast<std::uint16_t>(n), f);
        CHECK((v == FragParse::kNone || n == g.size()));
    }
    // Fragments of one packet share their hash; another id gives (almost surely) another.
    OuterFragment a, b, c;
    const Bytes f1 = p.fragment(0, 64, true), f2 = p.fragment(64, 64, false);
    p.id += 1;
    const Bytes f3 = p.fragment(0, 64, true);
    parse_outer_fragment(f1.data(), static_cast<std::uint16_t>(f1.size()), a);
    parse_outer_fragment(f2.data(), static_cast<std::uint16_t>(f2.size()), b);
    parse_outer_fragment(f3.data(), static_cast<std::uint16_t>(f3.size()), c);
    CHECK(a.hash == b.hash);
    CHECK(a.hash != c.hash);
}

TEST_CASE("two workers: the fragments of one packet meet at one worker", "[reassembly][workers]") {
    test::ensure_eal();
    const unsigned in_use = rte_mempool_in_use_count(test::pool());
    auto h = Handoff::create(2, 256, "hag_frag_test");
    REQUIRE(h);
    ReassemblySettings s;
    s.max_packets = 64;
    std::array<Worker, 2> w;
    std::array<std::unique_ptr<Reassembly>, 2> r;
    for (std::uint16_t i = 0; i < 2; ++i) {
        auto c = Reassembly::create(s, test::pool(), rte_get_tsc_hz());
        REQUIRE(c);
        r[i] = std::move(*c);
        w[i].index = i;
        w[i].handoff = h->get();
        w[i].reassembly = r[i].get();
    }
    // 16 packets, each with its first fragment on worker 0 and the rest on worker 1.
    int whole = 0;
    for (std::uint32_t id = 1; id <= 16; ++id) {
        Packet p;
        p.id = id * 7919;
        p.payload = gre_payload(1000, static_cast<std::uint8_t>(id));
        auto frags = p.fragments(512);
        REQUIRE(frags.size() == 3);
        for (std::uint16_t rx = 0; rx < 2; ++rx) {
            std::vector<rte_mbuf*> burst;
            if (rx == 0) {
                burst.push_back(test::mbuf_from(frags[0]));
            } else {
                burst.push_back(test::mbuf_from(frags[1]));
                burst.push_back(test::mbuf_from(frags[2]));
            }
            const auto n =
                take_fragments(w[rx], burst.data(), static_cast<std::uint16_t>(burst.size()), 1000);
            for (std::uint16_t i = 0; i < n; ++i) {
                ++whole;
                check_gre(test::bytes_of(burst[i]), p);
                rte_pktmbuf_free(burst[i]);
            }
        }
        // What was handed over, the other worker reassembles (as its loop would).
        for (std::uint16_t o = 0; o < 2; ++o) {
            rte_mbuf* got[32];
            const auto n = static_cast<std::uint16_t>(rte_ring_dequeue_burst(
                (*h)->fragments(o), reinterpret_cast<void**>(got), 32, nullptr));
            const auto k = take_fragments(w[o], got, n, 1000);
            CHECK(k <= 1);
            for (std::uint16_t i = 0; i < k; ++i) {
                ++whole;
                check_gre(test::bytes_of(got[i]), p);
                rte_pktmbuf_free(got[i]);
            }
        }
    }
    CHECK(whole == 16);
    const std::uint64_t handed = r[0]->events[static_cast<std::size_t>(ReassemblyEvent::kHanded)] +
                                 r[1]->events[static_cast<std::size_t>(ReassemblyEvent::kHanded)];
    CHECK(handed > 0);
    CHECK(r[0]->events[static_cast<std::size_t>(ReassemblyEvent::kReassembled)] > 0);
    CHECK(r[1]->events[static_cast<std::size_t>(ReassemblyEvent::kReassembled)] > 0);
    r[0].reset();
    r[1].reset();
    h->reset();
    CHECK(rte_mempool_in_use_count(test::pool()) == in_use);
}

TEST_CASE("random hostile fragment streams: no crash, single segments, no leak",
          "[reassembly][hostile]") {
    Fixture fx(32, 1000);
    std::mt19937 rng(5);
    std::uint64_t now = 1000;
    for (int round = 0; round < 400; ++round) {
        Packet p;
        p.v6 = (rng() & 1) != 0;
        p.id = rng() % 24;  // ids collide on purpose
        p.payload = gre_payload(rng() % 1800, static_cast<std::uint8_t>(round));
        std::vector<Bytes> frames;
        const int n = 1 + static_cast<int>(rng() % 10);
        for (int i = 0; i < n; ++i) {
            const std::size_t off = (rng() % (p.payload.size() / 8 + 2)) * 8;
            const std::size_t len = rng() % 700;
            if (off + len > p.payload.size() + 64)
                continue;
            const std::size_t end = std::min(off + len, p.payload.size());
            if (off > end)
                continue;
            frames.push_back(p.fragment(off, end - off, (rng() % 4) != 0));
        }
        for (const auto& f : p.fragments(8 * (1 + rng() % 100)))
            if (rng() % 3 != 0)
                frames.push_back(f);
        std::shuffle(frames.begin(), frames.end(), rng);
        for (const auto& f : frames) {
            OuterFragment of;
            if (parse_outer_fragment(f.data(), static_cast<std::uint16_t>(f.size()), of) ==
                FragParse::kNone)
                continue;
            fx.feed(f, now);
        }
        now += rte_get_tsc_hz() / 50;  // 20 ms a round: some packets time out
        fx.r->expire(now);
    }
    fx.no_leak();
}
