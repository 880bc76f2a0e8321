// Several workers (runtime/worker.hpp): two real worker loops on real net_ring ethdevs with two
// RX and two TX queues per port, a real SessionTable, the real stages and reorder. Packets of
// every session arrive on both RX queues (as RSS or a kernel fan-out would spread them); each
// session must be served by exactly one worker — its owner, id mod 2 — on that worker's TX
// queue, with the downlink GRE sequence numbers of a session gap-free and increasing, the
// packets of one RX queue in their order, and the uplink of a session striped over two paths
// (one per RX queue) put back into exact sequence order by the owner's reorder buffer.
#include <catch2/catch.hpp>

#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ring.h>

#include <chrono>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "../eal_fixture.hpp"
#include "pipeline/parse.hpp"
#include "runtime/worker.hpp"

using namespace hag::dp;
using Bytes = std::vector<std::uint8_t>;

namespace {

const MacAddr kGwMac{0x02, 0, 0, 0, 0, 0x01};
const MacAddr kCpeMac{0x02, 0, 0, 0, 0, 0x02};
const MacAddr kCoreMac{0x02, 0, 0, 0, 0, 0x03};
constexpr std::uint32_t kSessions = 8;

std::array<std::uint8_t, 16> a6(std::uint16_t g2, std::uint16_t last) {
    std::array<std::uint8_t, 16> a{
        0x20, 0x01, 0x0d, 0xb8, static_cast<std::uint8_t>(g2 >> 8), static_cast<std::uint8_t>(g2)};
    a[14] = static_cast<std::uint8_t>(last >> 8);
    a[15] = static_cast<std::uint8_t>(last);
    return a;
}

void put16(Bytes& b, std::uint16_t v) {
    b.push_back(static_cast<std::uint8_t>(v >> 8));
    b.push_back(static_cast<std::uint8_t>(v));
}
void put32(Bytes& b, std::uint32_t v) {
    put16(b, static_cast<std::uint16_t>(v >> 16));
    put16(b, static_cast<std::uint16_t>(v));
}
// get32: pipeline/parse.hpp
void addr(Bytes& b, const std::array<std::uint8_t, 16>& a) {
    b.insert(b.end(), a.begin(), a.end());
}

// IPv6 + UDP whose 8-byte payload is (tag, index).
void inner(Bytes& b, const std::array<std::uint8_t, 16>& src,
           const std::array<std::uint8_t, 16>& dst, std::uint32_t tag, std::uint32_t index,
           std::uint8_t hop_limit = 64) {
    b.insert(b.end(), {0x60, 0, 0, 0});
    put16(b, 16);
    b.push_back(17);
    b.push_back(hop_limit);
    addr(b, src);
    addr(b, dst);
    put16(b, 4000);
    put16(b, 5000);
    put16(b, 16);
    put16(b, 0);
    put32(b, tag);
    put32(b, index);
}

Bytes ether(std::uint16_t type) {
    Bytes b{0x02, 0, 0, 0, 0, 0x09, 0x02, 0, 0, 0, 0, 0x08};
    put16(b, type);
    return b;
}

// Downlink: from the core host to subscriber s's prefix 2001:db8:(s+1)::/64.
Bytes downlink_frame(std::uint32_t s, std::uint32_t queue, std::uint32_t index) {
    Bytes b = ether(0x86DD);
    inner(b, a6(0x9999, 1), a6(static_cast<std::uint16_t>(s + 1), 0x42), queue, index);
    return b;
}

std::array<std::uint8_t, 16> care_of(std::uint32_t s, std::uint32_t path) {
    return a6(0xaaaa, static_cast<std::uint16_t>(s * 2 + path + 1));
}

// Uplink: GRE (key 0x2000+s, sequence number seq) from path `path`'s care-of address around
// `in` (an inner IPv6 packet unless `proto` says IPv4).
Bytes uplink_around(std::uint32_t s, std::uint32_t path, std::uint32_t seq, const Bytes& in,
                    std::uint16_t proto = 0x86DD) {
    Bytes b = ether(0x86DD);
    b.insert(b.end(), {0x60, 0, 0, 0});
    put16(b, static_cast<std::uint16_t>(12 + in.size()));
    b.push_back(47);
    b.push_back(64);
    addr(b, care_of(s, path));
    addr(b, a6(0xff, 1));
    put16(b, 0x3000);  // K, S
    put16(b, proto);
    put32(b, 0x2000 + s);
    put32(b, seq);
    b.insert(b.end(), in.begin(), in.end());
    return b;
}

Bytes uplink_frame(std::uint32_t s, std::uint32_t path, std::uint32_t seq,
                   std::uint8_t hop_limit = 64) {
    Bytes in;
    inner(in, a6(static_cast<std::uint16_t>(s + 1), 7), a6(0x9999, 1), path, seq, hop_limit);
    return uplink_around(s, path, seq, in);
}

std::uint16_t ones_sum(const std::uint8_t* p, std::size_t n) {
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i + 1 < n; i += 2)
        sum += static_cast<std::uint32_t>(p[i] << 8 | p[i + 1]);
    if (n % 2)
        sum += static_cast<std::uint32_t>(p[n - 1] << 8);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(sum);
}

// IPv4 + UDP from the subscriber's 192.0.2.(s+1) to 198.51.100.1 with this TTL.
Bytes inner_v4(std::uint32_t s, std::uint8_t ttl) {
    Bytes b{0x45, 0,  0,   36, 0x12, 0x34, 0, 0,
            ttl,  17, 0,   0,  192,  0,    2, static_cast<std::uint8_t>(s + 1),
            198,  51, 100, 1};
    const std::uint16_t c = static_cast<std::uint16_t>(~ones_sum(b.data(), 20));
    b[10] = static_cast<std::uint8_t>(c >> 8);
    b[11] = static_cast<std::uint8_t>(c);
    put16(b, 4000);
    put16(b, 5000);
    put16(b, 16);
    put16(b, 0);
    put32(b, 7);
    put32(b, 8);
    return b;
}

SessionConfig session(std::uint32_t s, std::uint16_t access_port) {
    SessionConfig c;
    c.uplink_key = 0x2000 + s;
    c.n_paths = 2;
    for (std::uint32_t i = 0; i < 2; ++i) {
        auto& p = c.paths[i];
        p.bid = static_cast<std::uint16_t>(i + 1);
        p.downlink_key = 0x1000 + s;
        p.local = IpAddr::v6(a6(0xff, 1));
        p.coa = IpAddr::v6(care_of(s, i));
        p.port = access_port;
        p.src_mac = kGwMac;
        p.next_hop_mac = kCpeMac;
        p.live = true;
    }
    c.n_prefixes = 2;
    c.prefixes[0] = {IpAddr::v6(a6(static_cast<std::uint16_t>(s + 1), 0)), 64};
    c.prefixes[1] = {IpAddr::v4(192, 0, 2, static_cast<std::uint8_t>(s + 1)), 32};
    return c;
}

// A net_ring ethdev with two RX and two TX queues whose rings the test feeds and drains.
struct RingPort {
    std::array<rte_ring*, 2> rx{}, tx{};
    std::uint16_t id = 0;

    explicit RingPort(const std::string& name) {
        for (int q = 0; q < 2; ++q) {
            rx[q] = rte_ring_create((name + "r" + std::to_string(q)).c_str(), 4096, SOCKET_ID_ANY,
                                    RING_F_SP_ENQ | RING_F_SC_DEQ);
            tx[q] = rte_ring_create((name + "t" + std::to_string(q)).c_str(), 4096, SOCKET_ID_ANY,
                                    RING_F_SP_ENQ | RING_F_SC_DEQ);
            REQUIRE(rx[q] != nullptr);
            REQUIRE(tx[q] != nullptr);
        }
        const int port = rte_eth_from_rings(name.c_str(), rx.data(), 2, tx.data(), 2, 0);
        REQUIRE(port >= 0);
        id = static_cast<std::uint16_t>(port);
        rte_eth_conf conf{};
        REQUIRE(rte_eth_dev_configure(id, 2, 2, &conf) == 0);
        for (std::uint16_t q = 0; q < 2; ++q) {
            REQUIRE(rte_eth_rx_queue_setup(id, q, 256, SOCKET_ID_ANY, nullptr, test::pool()) == 0);
            REQUIRE(rte_eth_tx_queue_setup(id, q, 256, SOCKET_ID_ANY, nullptr) == 0);
        }
        REQUIRE(rte_eth_dev_start(id) == 0);
    }
    ~RingPort() {
        (void)rte_eth_dev_stop(id);
        (void)rte_eth_dev_close(id);
        for (int q = 0; q < 2; ++q) {
            for (rte_ring* r : {rx[q], tx[q]}) {
                void* m = nullptr;
                while (rte_ring_dequeue(r, &m) == 0) {
                    rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
                }
                rte_ring_free(r);
            }
        }
    }
    void inject(int q, const Bytes& frame) const {
        rte_mbuf* m = test::mbuf_from(frame);
        REQUIRE(rte_ring_enqueue(rx[q], m) == 0);
    }
    // Everything sent on TX queue q, in order.
    std::vector<Bytes> drain(int q) const {
        std::vector<Bytes> out;
        void* m = nullptr;
        while (rte_ring_dequeue(tx[q], &m) == 0) {
            out.push_back(test::bytes_of(static_cast<rte_mbuf*>(m)));
            rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
        }
        return out;
    }
    [[nodiscard]] unsigned queued(int q) const { return rte_ring_count(tx[q]); }
};

struct Rig {
    std::unique_ptr<Rcu> rcu;
    std::unique_ptr<SessionTable> table;
    std::unique_ptr<RingPort> core, access;
    std::unique_ptr<Handoff> handoff;
    std::vector<std::unique_ptr<Worker>> workers;
    std::vector<std::unique_ptr<Reorder>> reorders;
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;

    explicit Rig(const ReorderSettings& rs = {}) {
        test::ensure_eal();
        static int n = 0;
        const std::string tag = "wk" + std::to_string(n++);
        rcu = std::move(Rcu::create(8).value());
        table = std::move(SessionTable::create(tag, 64, *rcu).value());
        core = std::make_unique<RingPort>(tag + "c");
        access = std::make_unique<RingPort>(tag + "a");
        handoff = std::move(Handoff::create(2, 1024, tag + "h").value());
        for (std::uint32_t s = 0; s < kSessions; ++s) {
            REQUIRE(table->upsert(s, session(s, access->id)).ok());
        }
        for (std::uint16_t i = 0; i < 2; ++i) {
            auto w = std::make_unique<Worker>();
            w->index = i;
            w->txq = i;
            w->core_rxq = i;
            w->access_rxq = i;
            w->handoff = handoff.get();
            w->rcu = rcu.get();
            w->rcu_thread = i + 1;
            w->core_port = core->id;
            w->access_port = access->id;
            w->stop = &stop;
            w->idle_sleep_us = 50;
            w->downlink.sessions = w->downlink.sessions_rw = table.get();
            w->uplink.sessions = w->uplink.sessions_rw = table.get();
            w->uplink.core_port = core->id;
            w->uplink.core_src_mac = kGwMac;
            w->uplink.core_next_hop_mac = kCoreMac;
            w->downlink.icmp_src_v6 = IpAddr::v6(a6(0x9999, 0xfe));
            w->downlink.icmp_src_v4 = IpAddr::v4(203, 0, 113, 1);
            reorders.push_back(std::move(
                Reorder::create(rs, *table, rte_get_tsc_hz(), worker_send_core, w.get()).value()));
            w->reorder = reorders.back().get();
            workers.push_back(std::move(w));
        }
    }
    void start() {
        for (auto& w : workers) {
            rcu->register_reader(w->rcu_thread);  // as main.cpp does before launching
        }
        for (auto& w : workers) {
            threads.emplace_back([p = w.get()] { worker_main(p); });
        }
    }
    // Waits (bounded) until `total` packets left on `port`'s two TX queues, then stops.
    void run_until(const RingPort& port, unsigned total) {
        start();
        wait_for(port, total);
    }
    void wait_for(const RingPort& port, unsigned total) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (port.queued(0) + port.queued(1) < total &&
               std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        stop_all();
    }
    void stop_all() {
        stop = true;
        for (auto& t : threads) {
            t.join();
        }
        threads.clear();
    }
    ~Rig() {
        if (!threads.empty()) {
            stop_all();
        }
        reorders.clear();
        workers.clear();
        handoff.reset();
        core.reset();
        access.reset();
        rcu->synchronize();
    }
};

}  // namespace

TEST_CASE("owner_of spreads sessions and the steering lookups find them", "[workers]") {
    CHECK(owner_of(7, 1) == 0);
    CHECK(owner_of(7, 2) == 1);
    CHECK(owner_of(8, 2) == 0);
    CHECK(owner_of(10, 4) == 2);
    Rig rig;
    for (std::uint32_t s = 0; s < kSessions; ++s) {
        rte_mbuf* d = test::mbuf_from(downlink_frame(s, 0, 1));
        rte_mbuf* u = test::mbuf_from(uplink_frame(s, 1, 5));
        std::uint32_t id = 99;
        CHECK(downlink_session(*rig.table, d, id));
        CHECK(id == s);
        id = 99;
        CHECK(uplink_session(*rig.table, u, id));
        CHECK(id == s);
        rte_pktmbuf_free(d);
        rte_pktmbuf_free(u);
    }
    // No session, or not parseable: kept by the receiver (its stage counts the drop).
    std::uint32_t id = 0;
    rte_mbuf* m = test::mbuf_from(downlink_frame(40, 0, 1));
    CHECK_FALSE(downlink_session(*rig.table, m, id));
    rte_pktmbuf_free(m);
    Bytes junk = ether(0x86DD);
    junk.resize(30, 0);
    for (std::size_t len = 0; len <= junk.size(); ++len) {
        Bytes cut(junk.begin(), junk.begin() + static_cast<std::ptrdiff_t>(len));
        if (cut.empty()) {
            continue;
        }
        m = test::mbuf_from(cut);
        CHECK_FALSE(downlink_session(*rig.table, m, id));
        CHECK_FALSE(uplink_session(*rig.table, m, id));
        rte_pktmbuf_free(m);
    }
    Bytes gre = uplink_frame(3, 0, 1);
    for (std::size_t len = 1; len < 14 + 40 + 12; ++len) {  // truncated before the key
        m = test::mbuf_from(Bytes(gre.begin(), gre.begin() + static_cast<std::ptrdiff_t>(len)));
        CHECK_FALSE(uplink_session(*rig.table, m, id));
        rte_pktmbuf_free(m);
    }
}

TEST_CASE("two workers: a session's downlink is served by its owner only, in order", "[workers]") {
    const std::size_t in_use = rte_mempool_in_use_count(test::pool());
    {
        Rig rig;
        constexpr std::uint32_t kPerQueue = 150;
        // Each session's packets alternate over both RX queues of the core port.
        for (std::uint32_t i = 0; i < kPerQueue; ++i) {
            for (std::uint32_t s = 0; s < kSessions; ++s) {
                rig.core->inject(0, downlink_frame(s, 0, i));
                rig.core->inject(1, downlink_frame(s, 1, i));
            }
        }
        const unsigned total = kPerQueue * 2 * kSessions;
        rig.run_until(*rig.access, total);
        std::map<std::uint32_t, std::uint32_t> next_seq;                       // by session
        std::map<std::pair<std::uint32_t, std::uint32_t>, std::int64_t> last;  // (session, queue)
        unsigned seen = 0;
        for (int q = 0; q < 2; ++q) {
            for (const Bytes& f : rig.access->drain(q)) {
                REQUIRE(f.size() == 14 + 40 + 12 + 40 + 8 + 8);
                const std::uint32_t key = get32(&f[14 + 40 + 4]);
                const std::uint32_t seq = get32(&f[14 + 40 + 8]);
                const std::uint32_t s = key - 0x1000;
                REQUIRE(s < kSessions);
                // Single ownership: every packet of s left by its owner's TX queue.
                CHECK(q == owner_of(s, 2));
                // One writer of the sequence space: gap-free, in transmit order.
                CHECK(seq == next_seq[s]++);
                const std::uint32_t rxq = get32(&f[14 + 40 + 12 + 40 + 8]);
                const std::uint32_t idx = get32(&f[14 + 40 + 12 + 40 + 12]);
                auto& l = last.try_emplace({s, rxq}, -1).first->second;
                CHECK(static_cast<std::int64_t>(idx) == l + 1);  // each RX queue's order kept
                l = idx;
                ++seen;
            }
        }
        CHECK(seen == total);
        for (const auto& w : rig.workers) {
            // Half of each worker's packets belonged to the other one.
            CHECK(w->steer.handed_downlink.read() == total / 4);
            CHECK(w->steer.received_downlink.read() == total / 4);
            CHECK(w->steer.handoff_full.read() == 0);
            CHECK(w->downlink.encapsulated.read() == total / 2);
        }
    }
    CHECK(rte_mempool_in_use_count(test::pool()) == in_use);
}

TEST_CASE("two workers: a session striped over two paths on two queues is reordered by its owner",
          "[workers]") {
    const std::size_t in_use = rte_mempool_in_use_count(test::pool());
    {
        ReorderSettings rs;
        rs.timeout_us = 1'000'000;  // no gap may time out: only the owner's order counts
        rs.min_timeout_us = 1'000'000;
        Rig rig(rs);
        constexpr std::uint32_t kPerSession = 200;
        // Every other number over each path, one path per RX queue: each worker receives half
        // of every session, and the order between the queues is lost. Number 0 starts the
        // session's sequence space in the reorder buffer: it goes first, on its own.
        auto path_of = [](std::uint32_t s, std::uint32_t seq) { return (seq + s) % 2; };
        for (std::uint32_t s = 0; s < kSessions; ++s) {
            rig.access->inject(static_cast<int>(path_of(s, 0)), uplink_frame(s, path_of(s, 0), 0));
        }
        rig.start();
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (rig.core->queued(0) + rig.core->queued(1) < kSessions &&
               std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        for (std::uint32_t seq = 1; seq < kPerSession; ++seq) {
            for (std::uint32_t s = 0; s < kSessions; ++s) {
                const std::uint32_t path = path_of(s, seq);
                rig.access->inject(static_cast<int>(path), uplink_frame(s, path, seq));
            }
        }
        const unsigned total = kPerSession * kSessions;
        rig.wait_for(*rig.core, total);
        std::map<std::uint32_t, std::uint32_t> next;  // by session: next inner index expected
        unsigned seen = 0;
        for (int q = 0; q < 2; ++q) {
            for (const Bytes& f : rig.core->drain(q)) {
                REQUIRE(f.size() == 14 + 40 + 8 + 8);
                const std::uint32_t s =
                    static_cast<std::uint32_t>(f[14 + 8 + 4] << 8 | f[14 + 8 + 5]) - 1;
                REQUIRE(s < kSessions);
                CHECK(q == owner_of(s, 2));
                CHECK(get32(&f[14 + 40 + 8 + 4]) == next[s]++);  // exact GRE order
                ++seen;
            }
        }
        CHECK(seen == total);
        for (const auto& w : rig.workers) {
            CHECK(w->steer.handed_uplink.read() == total / 4);
            CHECK(w->steer.received_uplink.read() == total / 4);
            CHECK(w->reorder->counters().drops[0].read() == 0);  // no duplicate
        }
    }
    CHECK(rte_mempool_in_use_count(test::pool()) == in_use);
}

TEST_CASE("a full hand-over ring drops and counts, and leaks nothing", "[workers]") {
    const std::size_t in_use = rte_mempool_in_use_count(test::pool());
    {
        Rig rig;
        // Worker 1 never runs: worker 0 hands it session 1's packets until its ring is full.
        rig.workers[1]->core_rxq = kNoQueue;
        rig.workers[1]->access_rxq = kNoQueue;
        for (std::uint32_t i = 0; i < 1100; ++i) {
            rig.core->inject(0, downlink_frame(1, 0, i));
        }
        for (std::uint32_t i = 0; i < 100; ++i) {
            rig.core->inject(0, downlink_frame(0, 0, i));
        }
        rig.rcu->register_reader(rig.workers[0]->rcu_thread);
        rig.threads.emplace_back([p = rig.workers[0].get()] { worker_main(p); });
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (rig.access->queued(0) < 100 && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        rig.stop_all();
        CHECK(rig.access->drain(0).size() == 100);
        const auto& w0 = *rig.workers[0];
        CHECK(w0.steer.handed_downlink.read() == 1023);  // ring of 1024 holds 1023
        CHECK(w0.steer.handoff_full.read() == 1100 - 1023);
    }
    // The Handoff freed what its rings still held.
    CHECK(rte_mempool_in_use_count(test::pool()) == in_use);
}

TEST_CASE("reclamation waits for every registered worker", "[workers]") {
    test::ensure_eal();
    auto rcu = std::move(Rcu::create(8).value());
    rcu->register_reader(1);
    rcu->register_reader(2);
    bool freed = false;
    rcu->defer([&freed] { freed = true; });
    CHECK(rcu->reclaim() == 0);
    rcu->quiescent(1);
    CHECK(rcu->reclaim() == 0);  // worker 2 may still hold the old entry
    CHECK_FALSE(freed);
    rcu->quiescent(2);
    CHECK(rcu->reclaim() == 1);
    CHECK(freed);
    rcu->unregister_reader(1);
    rcu->unregister_reader(2);
}

TEST_CASE("l3_valid accepts exactly the headers parse_l3 accepts", "[workers][ttl]") {
    // The uplink's TTL pass checks every packet with l3_valid and parses only expired ones.
    auto same = [](const std::vector<std::uint8_t>& f, std::uint16_t off, std::uint16_t et) {
        const auto len = static_cast<std::uint16_t>(f.size());
        return l3_valid(f.data(), len, off, et) == parse_l3(f.data(), len, off, et).ok;
    };
    std::vector<std::uint8_t> v6(14 + 40 + 8, 0);
    v6[14] = 0x60;
    v6[14 + 5] = 8;  // payload 8: fits
    CHECK(l3_valid(v6.data(), static_cast<std::uint16_t>(v6.size()), 14, kEtherIpv6));
    std::vector<std::uint8_t> v4(14 + 20 + 8, 0);
    v4[14] = 0x45;
    v4[14 + 3] = 28;  // total 28: fits
    CHECK(l3_valid(v4.data(), static_cast<std::uint16_t>(v4.size()), 14, kEtherIpv4));
    // Hostile: wrong version for the ether type, lengths past the frame, header shorter than
    // its minimum, truncated frames, an offset at or past the end, other ether types.
    CHECK_FALSE(l3_valid(v6.data(), static_cast<std::uint16_t>(v6.size()), 14, kEtherIpv4));
    CHECK_FALSE(l3_valid(v4.data(), static_cast<std::uint16_t>(v4.size()), 14, kEtherIpv6));
    CHECK_FALSE(l3_valid(v4.data(), static_cast<std::uint16_t>(v4.size()), 14, 0x0806));
    CHECK_FALSE(l3_valid(v6.data(), 14, 14, kEtherIpv6));
    CHECK_FALSE(l3_valid(v6.data(), 10, 14, kEtherIpv6));
    std::mt19937 rng(7);
    for (int i = 0; i < 20000; ++i) {
        std::vector<std::uint8_t> f(rng() % 80);
        for (auto& b : f) {
            b = static_cast<std::uint8_t>(rng());
        }
        if (f.size() > 14 && (rng() & 1) != 0) {  // a plausible version nibble and lengths
            f[14] = static_cast<std::uint8_t>((rng() & 1 ? 0x60 : 0x40) | (f[14] & 0x0f));
            if (f.size() > 19) {
                f[18] = 0;
                f[16] = 0;
            }
        }
        const auto off = static_cast<std::uint16_t>(rng() % 20);
        for (const std::uint16_t et : {kEtherIpv4, kEtherIpv6, std::uint16_t{0x8100}}) {
            CHECK(same(f, off, et));
        }
    }
}

TEST_CASE("uplink TTL and hop limit: decremented, Time Exceeded to the subscriber on expiry",
          "[workers][ttl]") {
    const std::size_t in_use = rte_mempool_in_use_count(test::pool());
    {
        ReorderSettings rs;
        rs.enabled = false;  // the sequence numbers below are not one stream
        Rig rig(rs);
        // Session 3 (owner 1): hop limit 2 and 1 (IPv6), TTL 5 and 1 (IPv4); an expired
        // multicast destination is not answered. All on worker 0's queue: handed over.
        rig.access->inject(0, uplink_frame(3, 0, 1, 2));
        rig.access->inject(0, uplink_frame(3, 0, 2, 1));
        rig.access->inject(0, uplink_around(3, 0, 3, inner_v4(3, 5), 0x0800));
        rig.access->inject(0, uplink_around(3, 0, 4, inner_v4(3, 1), 0x0800));
        Bytes mc;
        auto ff = a6(0, 1);
        ff[0] = 0xff;
        ff[1] = 0x0e;
        inner(mc, a6(4, 7), ff, 0, 0, 1);
        rig.access->inject(0, uplink_around(3, 0, 5, mc));
        rig.start();
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while ((rig.core->queued(1) < 2 || rig.access->queued(1) < 2) &&
               std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        rig.stop_all();
        const auto core = rig.core->drain(1);
        REQUIRE(core.size() == 2);
        CHECK(core[0][14 + 7] == 1);  // hop limit 2 -> 1
        CHECK(core[1][14 + 8] == 4);  // TTL 5 -> 4, checksum still right
        CHECK(ones_sum(&core[1][14], 20) == 0xffff);
        const auto access = rig.access->drain(1);
        REQUIRE(access.size() == 2);  // the two Time Exceeded, GRE toward the subscriber
        const Bytes& e6 = access[0];
        CHECK(get32(&e6[14 + 40 + 4]) == 0x1000 + 3);  // the session's downlink key
        const std::size_t i6 = 14 + 40 + 12;           // inner IPv6
        CHECK(e6[i6 + 6] == 58);
        const auto gw = a6(0x9999, 0xfe), sub = a6(4, 7);
        CHECK(Bytes(e6.begin() + i6 + 8, e6.begin() + i6 + 24) == Bytes(gw.begin(), gw.end()));
        CHECK(Bytes(e6.begin() + i6 + 24, e6.begin() + i6 + 40) == Bytes(sub.begin(), sub.end()));
        CHECK(e6[i6 + 40] == 3);  // ICMPv6 Time Exceeded
        CHECK(e6[i6 + 41] == 0);
        CHECK(e6.size() == i6 + 40 + 8 + 56);  // the whole expired packet quoted
        const Bytes& e4 = access[1];
        const std::size_t i4 = 14 + 40 + 12;
        CHECK(e4[i4] == 0x45);
        CHECK(e4[i4 + 9] == 1);
        CHECK(ones_sum(&e4[i4], 20) == 0xffff);
        CHECK(Bytes(e4.begin() + i4 + 12, e4.begin() + i4 + 16) == Bytes{203, 0, 113, 1});
        CHECK(Bytes(e4.begin() + i4 + 16, e4.begin() + i4 + 20) == Bytes{192, 0, 2, 4});
        CHECK(e4[i4 + 20] == 11);  // ICMP Time Exceeded
        CHECK(ones_sum(&e4[i4 + 20], e4.size() - i4 - 20) == 0xffff);
        const auto& w1 = *rig.workers[1];
        CHECK(w1.uplink_ttl_expired.read() == 3);
        CHECK(w1.uplink_time_exceeded_sent.read() == 2);
        CHECK(rig.workers[0]->steer.handed_uplink.read() == 5);
    }
    CHECK(rte_mempool_in_use_count(test::pool()) == in_use);
}

TEST_CASE("core routes: an uplink destination inside a route leaves by its core port",
          "[workers][ports]") {
    const std::size_t in_use = rte_mempool_in_use_count(test::pool());
    {
        ReorderSettings rs;
        rs.enabled = false;
        Rig rig(rs);
        static int n = 0;
        RingPort core2("wkr" + std::to_string(n++));
        const MacAddr kCore2Mac{0x02, 0, 0, 0, 0, 0x22}, kRouterMac{0x02, 0, 0, 0, 0, 0x33};
        NextHopTable next_hops(16, *rig.rcu);
        const auto unresolved = next_hops.acquire(core2.id, IpAddr::v4(198, 51, 100, 254));
        REQUIRE(unresolved.ok());
        CoreRoutes routes;
        routes.next_hops = &next_hops;
        routes.egress[0] = {core2.id, kCore2Mac, kRouterMac, NextHopTable::kNone,
                            NextHopTable::kNone};
        routes.egress[1] = {core2.id, kCore2Mac, MacAddr{}, *unresolved, NextHopTable::kNone};
        routes.n_egress = 2;
        routes.routes[0] = {{IpAddr::v6(a6(0x77, 0)), 48}, 0};
        routes.routes[1] = {{IpAddr::v6(a6(0x77, 0)), 64}, 0};      // longer, same port
        routes.routes[2] = {{IpAddr::v4(198, 51, 100, 0), 24}, 1};  // next hop unresolved
        routes.n_routes = 3;
        for (auto& w : rig.workers) {
            w->routes = &routes;
            ExtraPort& e = w->extra[w->n_extra++];
            e.id = core2.id;
            e.rxq = kNoQueue;
        }
        // Session 5 (owner 1): to the core host (first core port), to 2001:db8:77::1 (core2),
        // to 198.51.100.1 (route without a resolved next hop: dropped, resolution asked).
        rig.access->inject(1, uplink_frame(5, 0, 1));
        Bytes in;
        inner(in, a6(6, 7), a6(0x77, 1), 0, 2);
        rig.access->inject(1, uplink_around(5, 0, 2, in));
        rig.access->inject(1, uplink_around(5, 0, 3, inner_v4(5, 9), 0x0800));
        rig.start();
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while ((rig.core->queued(1) < 1 || core2.queued(1) < 1 ||
                rig.workers[1]->route_no_next_hop.read() < 1) &&
               std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        rig.stop_all();
        const auto first = rig.core->drain(1);
        REQUIRE(first.size() == 1);
        CHECK(MacAddr{first[0][0], first[0][1], first[0][2], first[0][3], first[0][4],
                      first[0][5]} == kCoreMac);
        const auto second = core2.drain(1);
        REQUIRE(second.size() == 1);
        const Bytes& f = second[0];
        CHECK(MacAddr{f[0], f[1], f[2], f[3], f[4], f[5]} == kRouterMac);
        CHECK(MacAddr{f[6], f[7], f[8], f[9], f[10], f[11]} == kCore2Mac);
        CHECK(get32(&f[14 + 40 + 12]) == 2);  // the packet's index
        CHECK(rig.workers[1]->route_no_next_hop.read() == 1);
        CHECK(next_hops.take_wanted(*unresolved));
        CHECK(rig.workers[1]->core.tx.read() == 1);
        next_hops.release(*unresolved);
        rig.rcu->synchronize();
    }
    CHECK(rte_mempool_in_use_count(test::pool()) == in_use);
}
