// The uplink reorder stage on a real EAL with real mbufs. Time is a fake clock: the stage is
// created with tsc_hz = 1 MHz, so one TSC unit is one microsecond and `now` is chosen by the test.
#include <catch2/catch.hpp>

#include <rte_mempool.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <numeric>
#include <random>

#include "../eal_fixture.hpp"
#include "multipath/reorder.hpp"

using namespace hag::dp;

namespace {

constexpr std::uint64_t kHz = 1'000'000;  // 1 tick = 1 us

// A packet carries (session, seq) in its first 8 bytes, so the output order can be checked.
rte_mbuf* packet(std::uint32_t session, std::uint32_t seq) {
    std::vector<std::uint8_t> b(8);
    std::memcpy(b.data(), &session, 4);
    std::memcpy(b.data() + 4, &seq, 4);
    rte_mbuf* m = test::mbuf_from(b);
    REQUIRE(m != nullptr);
    return m;
}

struct Out {
    std::uint32_t session, seq;
    bool operator==(const Out&) const = default;
};

struct Fixture {
    std::unique_ptr<Rcu> rcu;
    std::unique_ptr<SessionTable> table;
    std::unique_ptr<Reorder> r;
    std::vector<Out> out;
    unsigned in_use_before = 0;

    static void sink(void* arg, rte_mbuf** pkts, std::uint16_t n) {
        auto* self = static_cast<Fixture*>(arg);
        for (std::uint16_t i = 0; i < n; ++i) {
            Out o{};
            std::memcpy(&o.session, rte_pktmbuf_mtod(pkts[i], const void*), 4);
            std::memcpy(&o.seq, rte_pktmbuf_mtod_offset(pkts[i], const char*, 4), 4);
            self->out.push_back(o);
        }
        rte_pktmbuf_free_bulk(pkts, n);
    }

    explicit Fixture(ReorderSettings s = {}, unsigned sessions = 4, unsigned paths = 2) {
        test::ensure_eal();
        in_use_before = rte_mempool_in_use_count(test::pool());
        static int n = 0;
        rcu = std::move(Rcu::create(2).value());
        table = std::move(SessionTable::create("ro" + std::to_string(n++), 64, *rcu).value());
        for (unsigned id = 0; id < sessions; ++id) {
            add_session(id, paths);
        }
        r = std::move(Reorder::create(s, *table, kHz, &Fixture::sink, this).value());
    }
    ~Fixture() {
        r.reset();  // frees what is held
        CHECK(rte_mempool_in_use_count(test::pool()) == in_use_before);
    }

    void add_session(unsigned id, unsigned paths) {
        SessionConfig c;
        c.n_paths = static_cast<std::uint8_t>(paths);
        for (unsigned p = 0; p < paths; ++p) {
            c.paths[p].bid = static_cast<std::uint16_t>(p + 1);
            c.paths[p].local = IpAddr::v4(192, 0, 2, 1);
            c.paths[p].coa = IpAddr::v4(198, 51, 100, static_cast<std::uint8_t>(id * 8 + p + 1));
        }
        REQUIRE(table->upsert(id, c));
    }

    UplinkMeta meta(std::uint32_t session, std::uint32_t seq, unsigned path,
                    std::uint8_t live = 0x3) const {
        UplinkMeta m;
        m.session = session;
        m.seq = seq;
        m.incarnation = table->state(session).incarnation.load();
        m.path = static_cast<std::uint8_t>(path);
        m.live_mask = live;
        m.flags = UplinkMeta::kHasSeq;
        return m;
    }
    void send(const UplinkMeta& m, std::uint64_t now) {
        rte_mbuf* p = packet(m.session, m.seq);
        r->process(&p, &m, 1, now);
    }
    void send(std::uint32_t session, std::uint32_t seq, unsigned path, std::uint64_t now,
              std::uint8_t live = 0x3) {
        send(meta(session, seq, path, live), now);
    }
    std::vector<std::uint32_t> seqs(std::uint32_t session = 0) const {
        std::vector<std::uint32_t> v;
        for (const auto& o : out)
            if (o.session == session)
                v.push_back(o.seq);
        return v;
    }
    // A new incarnation of session `id` (a new sequence space), with the output cleared.
    void renew(std::uint32_t id) {
        REQUIRE(table->remove(id));
        table->reclaim();
        add_session(id, 2);
        out.clear();
    }
    SessionState& st(std::uint32_t s = 0) { return table->state(s); }
    std::uint64_t drops(ReorderDrop d) const {
        return r->counters().drops[static_cast<std::size_t>(d)];
    }
};

std::vector<std::uint32_t> range(std::uint32_t from, std::uint32_t n) {
    std::vector<std::uint32_t> v(n);
    for (std::uint32_t i = 0; i < n; ++i)
        v[i] = from + i;
    return v;
}

}  // namespace

TEST_CASE("reorder: serial number arithmetic", "[reorder]") {
    CHECK(seq_diff(1, 0) == 1);
    CHECK(seq_diff(0, 0xffffffffu) == 1);
    CHECK(seq_diff(0xffffffffu, 0) == -1);
    CHECK(seq_diff(0x7fffffffu, 0) == 0x7fffffff);
}

TEST_CASE("reorder: in-order packets leave at once and take no buffer", "[reorder]") {
    Fixture f;
    for (std::uint32_t s = 100; s < 200; ++s) {
        f.send(0, s, s % 2, s);
        CHECK(f.r->buffers_in_use() == 0);
    }
    CHECK(f.seqs() == range(100, 100));
    CHECK(f.r->counters().in_order == 100);
    CHECK(f.r->counters().held == 0);
}

TEST_CASE("reorder: every permutation of 6 from one path (the other live and silent)",
          "[reorder][permutation]") {
    std::vector<std::uint32_t> perm = range(0, 6);
    unsigned count = 0;
    Fixture f;
    do {
        f.renew(0);
        f.send(0, 1000, 0, 0);  // establishes the sequence space at 1000
        for (std::uint32_t s : perm) {
            f.send(0, 1001 + s, 0, 1);
        }
        CHECK(f.seqs() == range(1000, 7));
        CHECK(f.r->held_packets() == 0);
        CHECK(f.r->buffers_in_use() == 0);
        CHECK(f.r->counters().lost == 0);
        ++count;
    } while (std::next_permutation(perm.begin(), perm.end()));
    CHECK(count == 720);
}

TEST_CASE("reorder: every interleaving of two in-order paths, with and without a loss",
          "[reorder][permutation]") {
    // 10 numbers, each on path 0 or 1 (all 1024 splits); per-path arrival in order; the merged
    // arrival order is every interleaving chosen by a second mask. With one number lost the
    // gap is skipped by the time both paths are past it, without any timeout.
    std::mt19937 rng(7);
    Fixture f;
    for (unsigned split = 0; split < 1024; ++split) {
        for (int lose = -1; lose < 10; lose += 3) {
            std::vector<std::uint32_t> p0, p1;
            for (std::uint32_t s = 0; s < 10; ++s) {
                if (static_cast<int>(s) == lose)
                    continue;
                ((split >> s) & 1 ? p1 : p0).push_back(s);
            }
            f.renew(0);
            const std::uint64_t lost_before = f.r->counters().lost;
            f.send(0, 0xffffffffu, 0, 0);  // next = 0, across the wrap
            std::size_t i0 = 0, i1 = 0;
            while (i0 < p0.size() || i1 < p1.size()) {
                const bool take0 = i1 == p1.size() || (i0 < p0.size() && (rng() & 1));
                if (take0)
                    f.send(0, p0[i0++], 0, 1);
                else
                    f.send(0, p1[i1++], 1, 1);
            }
            std::vector<std::uint32_t> want{0xffffffffu};
            for (std::uint32_t s = 0; s < 10; ++s)
                if (static_cast<int>(s) != lose)
                    want.push_back(s);
            // The lost number is skipped once both paths are past it; a number lost at the very
            // end of one path's stream may still be waiting (then the timeout releases it).
            f.r->expire(1'000'000);
            CHECK(f.seqs() == want);
            CHECK(f.r->counters().lost - lost_before == (lose >= 0 ? 1u : 0u));
            CHECK(f.r->held_packets() == 0);
        }
    }
}

TEST_CASE("reorder: random large stream, two paths with different delays, in order out",
          "[reorder][permutation]") {
    // 200k packets striped at random over two paths; path 1 is 0-40 us slower with jitter but
    // keeps its own order; 1% of the packets are lost. Every released number is higher than the
    // one before, every packet is released or counted lost, nothing waits a timeout when both
    // paths keep sending.
    ReorderSettings s;
    s.session_packets = 256;
    Fixture f(s);
    std::mt19937 rng(42);
    struct Arrival {
        std::uint64_t t;
        std::uint32_t seq;
        unsigned path;
    };
    std::vector<Arrival> arr;
    std::uint64_t last_t[2] = {0, 0};
    const std::uint32_t base = 0xfffff000u;  // wraps during the run
    std::uint32_t lost_in = 0;
    for (std::uint32_t i = 0; i < 200'000; ++i) {
        const unsigned path = rng() & 1;
        const std::uint64_t sent = 10 + i / 4;  // 4 packets per microsecond
        std::uint64_t t = sent + (path == 1 ? 20 + rng() % 20 : rng() % 3);
        t = std::max(t, last_t[path]);  // each path keeps its order
        last_t[path] = t;
        if (i > 0 && rng() % 100 == 0) {
            ++lost_in;
            continue;
        }
        arr.push_back({t, base + i, path});
    }
    std::stable_sort(arr.begin(), arr.end(),
                     [](const Arrival& a, const Arrival& b) { return a.t < b.t; });
    std::size_t i = 0;
    std::vector<rte_mbuf*> burst;
    std::vector<UplinkMeta> metas;
    while (i < arr.size()) {
        const std::uint64_t now = arr[i].t;
        burst.clear();
        metas.clear();
        while (i < arr.size() && arr[i].t == now && burst.size() < 32) {
            metas.push_back(f.meta(0, arr[i].seq, arr[i].path));
            burst.push_back(packet(0, arr[i].seq));
            ++i;
        }
        f.r->process(burst.data(), metas.data(), static_cast<std::uint16_t>(burst.size()), now);
        f.r->expire(now);
    }
    f.r->expire(UINT64_MAX / 2);
    const auto got = f.seqs();
    REQUIRE(got.size() == arr.size());
    for (std::size_t k = 1; k < got.size(); ++k) {
        REQUIRE(seq_diff(got[k], got[k - 1]) > 0);
    }
    CHECK(f.r->counters().lost + got.size() == 200'000);
    CHECK(f.r->counters().lost == lost_in);
    CHECK(f.r->counters().held > 0);
    // Both paths kept delivering, so almost every gap was skipped at once (only a loss at the
    // very end of the run waits for the timeout).
    CHECK(f.r->counters().gaps_timed_out <= 1);
    CHECK(f.r->held_packets() == 0);
}

TEST_CASE("reorder: loss on one path is skipped as soon as every live path is past it",
          "[reorder][loss]") {
    Fixture f;
    f.send(0, 0, 0, 0);
    f.send(0, 1, 1, 1);
    // 2 (path 0) is lost. 3 on path 1 is held: path 0 has not passed 2 yet.
    f.send(0, 3, 1, 2);
    CHECK(f.seqs() == range(0, 2));
    CHECK(f.r->held_packets() == 1);
    CHECK(f.st().path_seq_gaps[1].load() == 1);
    // 4 on path 0: path 0 is past 2 and so is path 1 — 2 is lost; 3 and 4 leave now.
    f.send(0, 4, 0, 3);
    CHECK(f.seqs() == std::vector<std::uint32_t>{0, 1, 3, 4});
    CHECK(f.r->counters().lost == 1);
    CHECK(f.r->counters().gaps_skipped == 1);
    CHECK(f.r->counters().gaps_timed_out == 0);
    CHECK(f.st().reorder_lost.load() == 1);
    CHECK(f.st().path_reordered[1].load() == 1);
    CHECK(f.r->buffers_in_use() == 0);
    // Late arrival of 2 afterwards: dropped (default policy), counted on its path.
    f.send(0, 2, 0, 4);
    CHECK(f.drops(ReorderDrop::kLate) == 1);
    CHECK(f.st().path_late[0].load() == 1);
    CHECK(f.seqs().size() == 4);
}

TEST_CASE("reorder: a path that is down does not hold a gap", "[reorder][loss]") {
    Fixture f;
    f.send(0, 0, 0, 0, 0x1);
    // Only path 0 is live: 2 from path 0 proves 1 lost at once.
    f.send(0, 2, 0, 1, 0x1);
    CHECK(f.seqs() == std::vector<std::uint32_t>{0, 2});
    // With both live, the silent path 1 holds the gap until the timeout.
    f.send(0, 4, 0, 2, 0x3);
    CHECK(f.seqs() == std::vector<std::uint32_t>{0, 2});
    CHECK(f.r->held_packets() == 1);
    // Path 1 goes down (the next packet says so): the gap goes at once.
    f.send(0, 5, 0, 3, 0x1);
    CHECK(f.seqs() == std::vector<std::uint32_t>{0, 2, 4, 5});
}

TEST_CASE("reorder: loss on all paths waits the timeout (fake clock)", "[reorder][timeout]") {
    ReorderSettings s;
    s.timeout_us = 5000;
    Fixture f(s);
    f.send(0, 10, 0, 100);
    // 11 lost; 12 arrives on path 1 at t=200 and 13 at t=300; path 0 stays silent.
    f.send(0, 12, 1, 200);
    f.send(0, 13, 1, 300);
    CHECK(f.r->next_deadline() == 200 + 5000);
    f.r->expire(200 + 4999);
    CHECK(f.seqs() == std::vector<std::uint32_t>{10});
    f.r->expire(200 + 5000);
    CHECK(f.seqs() == std::vector<std::uint32_t>{10, 12, 13});
    CHECK(f.r->counters().gaps_timed_out == 1);
    CHECK(f.st().reorder_timeouts.load() == 1);
    CHECK(f.st().path_timed_out[1].load() == 2);
    CHECK(f.r->next_deadline() == UINT64_MAX);
}

TEST_CASE("reorder: the deadline follows the oldest held packet across several gaps",
          "[reorder][timeout]") {
    ReorderSettings s;
    s.timeout_us = 1000;
    Fixture f(s);
    f.send(0, 0, 0, 0);
    f.send(0, 5, 1, 10);  // gap 1-4, held since 10
    f.send(0, 3, 1, 10);  // path 1 out of its own order: nothing skipped at once
    f.send(0, 9, 1, 500);
    CHECK(f.r->next_deadline() == 1010);
    f.r->expire(1010);  // 3 and 5 waited their timeout; 9 has not
    CHECK(f.seqs() == std::vector<std::uint32_t>{0, 3, 5});
    CHECK(f.r->next_deadline() == 1500);
    f.r->expire(1500);
    CHECK(f.seqs() == std::vector<std::uint32_t>{0, 3, 5, 9});
    CHECK(f.r->counters().gaps_timed_out == 3);
    CHECK(f.r->counters().lost == 6);  // 1, 2, 4, 6, 7, 8
}

TEST_CASE("reorder: per-session timeout override and timers of many sessions",
          "[reorder][timeout]") {
    ReorderSettings s;
    s.timeout_us = 3000;
    Fixture f(s, 4);
    for (std::uint32_t id = 0; id < 4; ++id) {
        f.send(id, 0, 0, 0);
    }
    // Session 2 waits 500 us; the others the default 3000 us.
    for (std::uint32_t id : {3u, 1u, 2u, 0u}) {
        UplinkMeta m = f.meta(id, 2, 1);
        if (id == 2)
            m.timeout_us = 500;
        f.send(m, 100 + id);
    }
    f.r->expire(602);
    CHECK(f.seqs(2) == std::vector<std::uint32_t>{0, 2});
    CHECK(f.seqs(0).size() == 1);
    f.r->expire(3101);
    CHECK(f.seqs(0) == std::vector<std::uint32_t>{0, 2});
    CHECK(f.seqs(1) == std::vector<std::uint32_t>{0, 2});
    CHECK(f.seqs(3).size() == 1);
    f.r->expire(3103);
    CHECK(f.seqs(3) == std::vector<std::uint32_t>{0, 2});
    CHECK(f.r->buffers_in_use() == 0);
}

TEST_CASE("reorder: adaptive timeout from the measured wait, lengthened by late packets",
          "[reorder][timeout]") {
    ReorderSettings s;
    s.timeout_us = 10000;
    s.min_timeout_us = 100;
    Fixture f(s);
    f.send(0, 0, 0, 0);
    f.send(0, 2, 1, 1000);
    CHECK(f.r->next_deadline() == 1000 + 10000);  // nothing measured: the full timeout
    f.send(0, 1, 0, 1300);                        // filled after 300 us
    CHECK(f.seqs() == range(0, 3));
    f.send(0, 4, 1, 2000);
    CHECK(f.r->next_deadline() == 2000 + 600);  // twice the measured 300 us
    f.r->expire(2600);
    CHECK(f.seqs().back() == 4);
    f.send(0, 3, 0, 2700);  // late: the estimate doubles
    f.send(0, 6, 1, 3000);
    CHECK(f.r->next_deadline() == 3000 + 1200);
}

TEST_CASE("reorder: 32-bit wrap-around", "[reorder][wrap]") {
    Fixture f;
    f.send(0, 0xfffffffdu, 0, 0);
    for (std::uint32_t s : {0xffffffffu, 1u, 0xfffffffeu, 0u, 3u, 2u}) {
        f.send(0, s, s % 2, 1, 0x0);  // no live path: only the timeout would skip
    }
    CHECK(f.seqs() ==
          std::vector<std::uint32_t>{0xfffffffdu, 0xfffffffeu, 0xffffffffu, 0u, 1u, 2u, 3u});
    CHECK(f.r->held_packets() == 0);
}

TEST_CASE("reorder: duplicates are dropped and counted, held or released", "[reorder][dup]") {
    Fixture f;
    f.send(0, 0, 0, 0);
    f.send(0, 1, 0, 0);
    f.send(0, 1, 1, 0);  // released before
    f.send(0, 0, 1, 0);
    f.send(0, 3, 1, 0);
    f.send(0, 3, 1, 0);  // held
    CHECK(f.drops(ReorderDrop::kDuplicate) == 3);
    CHECK(f.st().reorder_duplicates.load() == 3);
    f.send(0, 2, 0, 0);
    CHECK(f.seqs() == range(0, 4));
    CHECK(f.drops(ReorderDrop::kLate) == 0);
}

TEST_CASE("reorder: late policy forward sends late packets once", "[reorder][late]") {
    ReorderSettings s;
    s.forward_late = true;
    Fixture f(s);
    f.send(0, 0, 0, 0);
    f.send(0, 2, 1, 0);
    f.send(0, 3, 0, 0);  // both past 1: 1 skipped
    f.send(0, 1, 1, 0);  // late: forwarded
    f.send(0, 1, 0, 0);  // its copy: duplicate
    CHECK(f.seqs() == std::vector<std::uint32_t>{0, 2, 3, 1});
    CHECK(f.r->counters().late_forwarded == 1);
    CHECK(f.drops(ReorderDrop::kDuplicate) == 1);
    CHECK(f.st().path_late[1].load() == 1);
    // Older than the 64-number history: still late, forwarded.
    for (std::uint32_t q = 4; q < 200; ++q)
        f.send(0, q, 0, 0);
    f.send(0, 3, 1, 0);  // released before, but beyond the history: counted late
    CHECK(f.r->counters().late_forwarded == 2);
    CHECK(f.drops(ReorderDrop::kDuplicate) == 1);
    f.send(0, 180, 1, 0);  // within the history: duplicate
    CHECK(f.drops(ReorderDrop::kDuplicate) == 2);
}

TEST_CASE("reorder: one session's gap never delays another", "[reorder][sessions]") {
    Fixture f(ReorderSettings{}, 3);
    f.send(0, 0, 0, 0);
    f.send(0, 5, 1, 1);  // session 0 waits for 1-4
    for (std::uint32_t s = 0; s < 50; ++s) {
        f.send(1, s, s % 2, 2);
        f.send(2, 1000 + s, s % 2, 2);
        CHECK(f.seqs(1).size() == s + 1);
        CHECK(f.seqs(2).size() == s + 1);
    }
    CHECK(f.seqs(0) == std::vector<std::uint32_t>{0});
    // Packets without a sequence number pass even while session 0 holds some.
    UplinkMeta m = f.meta(0, 77, 0);
    m.flags = 0;
    f.send(m, 3);
    CHECK(f.seqs(0) == std::vector<std::uint32_t>{0, 77});
    CHECK(f.r->counters().passthrough == 1);
    // Reorder off for one session: straight through.
    UplinkMeta off = f.meta(0, 99, 0);
    off.mode = ReorderMode::kOff;
    f.send(off, 3);
    CHECK(f.seqs(0).back() == 99);
    CHECK(f.r->held_packets() == 1);
}

TEST_CASE("reorder: disabled by default, enabled per session", "[reorder][config]") {
    ReorderSettings s;
    s.enabled = false;
    Fixture f(s);
    f.send(0, 0, 0, 0);
    f.send(0, 2, 0, 0);
    CHECK(f.seqs() == std::vector<std::uint32_t>{0, 2});
    UplinkMeta m = f.meta(1, 0, 0);
    m.mode = ReorderMode::kOn;
    f.send(m, 0);
    m.seq = 2;
    f.send(m, 0);
    CHECK(f.seqs(1) == std::vector<std::uint32_t>{0});
    CHECK(f.r->held_packets() == 1);
}

TEST_CASE("reorder: per-session overflow releases in order and skips", "[reorder][overflow]") {
    ReorderSettings s;
    s.session_packets = 8;
    s.global_packets = 64;
    Fixture f(s);
    f.send(0, 0, 0, 0);
    for (std::uint32_t q : {2u, 4u, 5u})
        f.send(0, q, 1, 0, 0x0);
    CHECK(f.r->held_packets() == 3);
    // 9 is 8 ahead of the release point 1: the buffer cannot hold it. The session advances to
    // it: 1 given up, 2 leaves, 3 given up, 4 and 5 leave, 6-8 given up, 9 leaves.
    f.send(0, 9, 1, 0, 0x0);
    CHECK(f.seqs() == std::vector<std::uint32_t>{0, 2, 4, 5, 9});
    CHECK(f.r->held_packets() == 0);
    CHECK(f.r->buffers_in_use() == 0);
    CHECK(f.r->counters().session_overflow == 1);
    CHECK(f.st().reorder_overflow.load() == 1);
    CHECK(f.r->counters().lost == 5);
    // Far ahead with nothing held: a jump.
    f.send(0, 1000, 1, 0, 0x0);
    CHECK(f.seqs() == std::vector<std::uint32_t>{0, 2, 4, 5, 9, 1000});
    CHECK(f.r->counters().lost == 1000 - 5);
    // Once more.
    f.send(0, 5000, 0, 0, 0x0);
    CHECK(f.seqs().back() == 5000);
    CHECK(f.r->counters().session_overflow == 3);
}

TEST_CASE("reorder: global limit and buffer pool", "[reorder][overflow]") {
    ReorderSettings s;
    s.session_packets = 8;
    s.global_packets = 8;
    s.buffers = 2;
    Fixture f(s, 4);
    for (std::uint32_t id = 0; id < 4; ++id)
        f.send(id, 0, 0, 0);
    for (std::uint32_t q = 2; q < 8; ++q)
        f.send(0, q, 1, 0, 0x0);  // session 0 holds 6
    f.send(1, 2, 1, 0, 0x0);      // session 1 holds 1
    f.send(1, 3, 1, 0, 0x0);      // and 2: 8 in all
    CHECK(f.r->held_packets() == 8);
    // Session 1 again: the global limit. It advances to 5: 1 given up, 2 and 3 leave, 4 given
    // up, 5 leaves; its buffer is free again.
    f.send(1, 5, 1, 0, 0x0);
    CHECK(f.seqs(1) == std::vector<std::uint32_t>{0, 2, 3, 5});
    CHECK(f.r->counters().global_overflow == 1);
    CHECK(f.r->held_packets() == 6);
    // Session 2 takes the buffer session 1 gave back.
    f.send(2, 3, 1, 0, 0x0);
    CHECK(f.r->buffers_in_use() == 2);
    // Session 3: no buffer free: it skips its gap at once.
    f.send(3, 4, 1, 0, 0x0);
    CHECK(f.seqs(3) == std::vector<std::uint32_t>{0, 4});
    CHECK(f.r->counters().global_overflow == 2);
    CHECK(f.r->held_packets() <= 8);
}

TEST_CASE("reorder: a re-created session starts a new sequence space", "[reorder][rcu]") {
    Fixture f;
    f.send(0, 100, 0, 0);
    f.send(0, 103, 1, 0, 0x0);  // held
    REQUIRE(f.table->remove(0));
    f.table->reclaim();
    f.add_session(0, 2);  // new incarnation
    f.send(0, 7, 0, 0);
    // The old space's held packet leaves (in its order) before the new space's first packet.
    CHECK(f.seqs() == std::vector<std::uint32_t>{100, 103, 7});
    CHECK(f.r->counters().resyncs == 1);
    CHECK(f.r->buffers_in_use() == 0);
    f.send(0, 8, 0, 0);
    CHECK(f.seqs().back() == 8);
    // A counter restart within one incarnation (the CPE's GRE endpoint restarted): a number
    // before the space's first one is no late packet but a new space.
    f.send(0, 5, 0, 0);
    f.send(0, 6, 0, 0);
    CHECK(f.seqs().back() == 6);
    CHECK(f.r->counters().resyncs == 2);
    CHECK(f.drops(ReorderDrop::kLate) == 0);
    // Far behind: also a new space.
    f.send(0, 8u - 100'000u, 0, 0);
    f.send(0, 9u - 100'000u, 0, 0);
    CHECK(f.seqs().back() == 9u - 100'000u);
    CHECK(f.r->counters().resyncs == 3);
}

TEST_CASE("reorder: a removed session's held packets are released by the timeout",
          "[reorder][rcu]") {
    ReorderSettings s;
    s.timeout_us = 100;
    s.min_timeout_us = 10;
    Fixture f(s);
    f.send(0, 0, 0, 0);
    f.send(0, 2, 1, 0, 0x3);
    REQUIRE(f.table->remove(0));
    f.table->reclaim();
    f.r->expire(100);
    CHECK(f.seqs() == std::vector<std::uint32_t>{0, 2});
}

TEST_CASE("reorder: drop_all frees everything held (worker exit)", "[reorder][leak]") {
    Fixture f(ReorderSettings{}, 3);
    for (std::uint32_t id = 0; id < 3; ++id) {
        f.send(id, 0, 0, 0);
        for (std::uint32_t q = 2; q < 40; q += 3)
            f.send(id, q, 1, 0, 0x0);
    }
    CHECK(f.r->held_packets() == 3 * 13);
    f.r->drop_all();
    CHECK(f.r->held_packets() == 0);
    CHECK(f.r->buffers_in_use() == 0);
    CHECK(f.drops(ReorderDrop::kShutdown) == 3 * 13);
    CHECK(f.r->next_deadline() == UINT64_MAX);
}

TEST_CASE("reorder: settings are validated", "[reorder][config]") {
    test::ensure_eal();
    auto rcu = std::move(Rcu::create(2).value());
    auto t = std::move(SessionTable::create("rov", 4, *rcu).value());
    auto sink = [](void*, rte_mbuf** p, std::uint16_t n) { rte_pktmbuf_free_bulk(p, n); };
    ReorderSettings s;
    s.session_packets = 100;
    CHECK_FALSE(Reorder::create(s, *t, kHz, sink, nullptr));
    s = {};
    s.global_packets = 10;
    CHECK_FALSE(Reorder::create(s, *t, kHz, sink, nullptr));
    s = {};
    s.min_timeout_us = s.timeout_us + 1;
    CHECK_FALSE(Reorder::create(s, *t, kHz, sink, nullptr));
    CHECK(Reorder::create(ReorderSettings{}, *t, kHz, sink, nullptr));
}

TEST_CASE("reorder: property — random streams of sessions, paths and numbers",
          "[reorder][property]") {
    // Hostile streams: any session, path and live set, numbers near the release point or
    // anywhere, duplicates, packets without a number. Whatever comes, the held count stays
    // within its limit, every packet is released or dropped with a reason, nothing stays held
    // after the last timeout, and no mbuf is leaked (checked by the fixture).
    for (unsigned seed = 0; seed < 40; ++seed) {
        std::mt19937 rng(seed);
        ReorderSettings s;
        s.session_packets = 16u << (seed % 3);
        s.global_packets = s.session_packets * 2;
        s.buffers = 1 + seed % 4;
        s.timeout_us = 50 + seed * 10;
        s.min_timeout_us = 10;
        Fixture f(s, 6, 3);
        std::map<std::uint32_t, std::uint32_t> base;
        std::uint64_t now = 0;
        for (unsigned i = 0; i < 20000; ++i) {
            const std::uint32_t id = rng() % 6;
            std::uint32_t& b = base[id];
            if (rng() % 3 != 0)
                ++b;
            const std::uint32_t seq = rng() % 50 == 0 ? rng() : b + rng() % 40 - 10;
            UplinkMeta m = f.meta(id, seq, rng() % 3, static_cast<std::uint8_t>(rng() % 8));
            if (rng() % 97 == 0)
                m.flags = 0;
            now += rng() % 20;
            f.send(m, now);
            if (rng() % 4 == 0)
                f.r->expire(now);
            REQUIRE(f.r->held_packets() <= s.global_packets);
        }
        f.r->expire(UINT64_MAX / 2);
        CHECK(f.r->held_packets() == 0);
        const auto& c = f.r->counters();
        CHECK(c.released + c.drops[0].read() + c.drops[1].read() + c.drops[2].read() == 20000);
    }
}

TEST_CASE("reorder: the added latency of held packets, by log2 microseconds",
          "[reorder][latency]") {
    Fixture f;
    f.send(0, 0, 0, 0);
    f.send(0, 2, 1, 100);
    f.send(0, 3, 1, 100);
    f.send(0, 1, 0, 130);  // 2 and 3 waited 30 us: bucket 5 = [16, 32)
    const auto& h = f.r->counters().wait_us_log2;
    CHECK(h[5] == 2);
    std::uint64_t all = 0;
    for (const auto& c : h)
        all += c;
    CHECK(all == 2);
}

TEST_CASE("reorder: a restarted sender is followed at once, a late one is not mistaken for it",
          "[reorder][restart]") {
    Fixture f;
    // The CPE's tunnel sends 0..99, then restarts its counter at 0 (a new GRE endpoint, same
    // session): its packets go through at once, nothing is dropped as late or duplicate.
    for (std::uint32_t q = 0; q < 100; ++q)
        f.send(0, q, q % 2, 0);
    for (std::uint32_t q = 0; q < 10; ++q)
        f.send(0, q, q % 2, 0);
    CHECK(f.seqs().size() == 110);
    CHECK(f.r->counters().resyncs == 1);
    CHECK(f.drops(ReorderDrop::kLate) + f.drops(ReorderDrop::kDuplicate) == 0);
    // A restart after fewer than 64 numbers cannot be told from duplicates: those are dropped
    // until the new counter passes the old one (documented limit).
    f.send(0, 0, 0, 0);
    CHECK(f.seqs().size() == 110);
    CHECK(f.drops(ReorderDrop::kDuplicate) == 1);
    // After a give-up, the late packet is late (not a restart), a released one a duplicate.
    f.send(0, 11, 1, 0);
    f.send(0, 12, 0, 0);  // both paths past 10: given up
    f.send(0, 10, 1, 0);
    CHECK(f.drops(ReorderDrop::kLate) == 1);
    f.send(0, 11, 0, 0);
    CHECK(f.drops(ReorderDrop::kDuplicate) == 2);
    CHECK(f.r->counters().resyncs == 1);
}
