// The collector sums per-worker counters and walks sessions while workers and the table writer
// run; the DPDK telemetry handlers answer through it. Real EAL, real tables.
#include <rte_telemetry.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <cerrno>
#include <thread>

#include "../eal_fixture.hpp"
#include "telemetry/collector.hpp"
#include "telemetry/dpdk_commands.hpp"
#include "telemetry/render.hpp"

using namespace hag::dp;

namespace {

constexpr std::uint32_t kReader = 3;  // RCU reader id of the collector in these tests

std::array<std::uint8_t, 16> v6(std::uint16_t c, std::uint16_t last) {
    return {0x20,
            0x01,
            0x0d,
            0xb8,
            static_cast<std::uint8_t>(c >> 8),
            static_cast<std::uint8_t>(c),
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

SessionConfig session(std::uint32_t n, unsigned paths = 1) {
    SessionConfig c;
    c.uplink_key = 1000 + n;
    c.n_paths = static_cast<std::uint8_t>(paths);
    for (unsigned i = 0; i < paths; ++i) {
        c.paths[i].bid = static_cast<std::uint16_t>(i + 1);
        c.paths[i].local = IpAddr::v6(v6(0xff, 1));
        c.paths[i].coa = IpAddr::v6(v6(0xaaaa, static_cast<std::uint16_t>(n * 8 + i)));
        c.paths[i].downlink_key = 5000 + n;
    }
    c.n_prefixes = 1;
    c.prefixes[0] = {IpAddr::v6(v6(static_cast<std::uint16_t>(n), 0)), 64};
    return c;
}

struct Env {
    std::unique_ptr<Rcu> rcu;
    std::unique_ptr<SessionTable> t;
    explicit Env(const char* name, std::uint32_t cap = 256) {
        test::ensure_eal();
        rcu = std::move(Rcu::create(kReader + 1).value());
        t = std::move(SessionTable::create(name, cap, *rcu).value());
    }
    ~Env() { rcu->synchronize(); }
};

}  // namespace

TEST_CASE("counters of several workers are summed per stage, reason and port", "[collector]") {
    Env env("c_sum");
    Worker a, b;
    a.core_port = 0;
    a.access_port = 1;
    b.core_port = 0;
    b.access_port = 1;
    a.downlink.encapsulated += 10;
    b.downlink.encapsulated += 5;
    a.downlink.cycles.packets += 12;
    b.downlink.cycles.packets += 8;
    a.downlink.cycles.cycles += 1000;
    b.downlink.cycles.cycles += 1000;
    ++a.downlink.drops[static_cast<std::size_t>(DownlinkDrop::kNoSubscriber)];
    b.downlink.drops[static_cast<std::size_t>(DownlinkDrop::kNoSubscriber)] += 2;
    b.downlink.drops[static_cast<std::size_t>(DownlinkDrop::kTooBig)] += 3;
    a.uplink.drops[static_cast<std::size_t>(UplinkDrop::kUnknownKey)] += 7;
    a.uplink.decapsulated += 4;
    a.core.rx += 100;
    b.core.rx += 50;
    a.access.tx += 9;
    b.access.tx_full += 2;
    Collector c({{0, "core", "core"}, {1, "access", "access"}}, env.t.get(), env.rcu.get(),
                kReader);
    c.add_worker(&a);
    c.add_worker(&b);
    const Snapshot s = c.collect();
    CHECK(s.workers == 2);
    const StageSnapshot* dl = s.stage("downlink_encap");
    const StageSnapshot* ul = s.stage("uplink_decap");
    REQUIRE(dl != nullptr);
    REQUIRE(ul != nullptr);
    CHECK(dl->forwarded == 15);
    CHECK(dl->packets == 20);
    CHECK(dl->cycles_per_packet() == 100.0);
    CHECK(dl->drops.size() == DownlinkDrop_names.size());
    CHECK(dl->drops[static_cast<std::size_t>(DownlinkDrop::kNoSubscriber)].count == 3);
    CHECK(dl->drops[static_cast<std::size_t>(DownlinkDrop::kTooBig)].count == 3);
    CHECK(dl->drops[static_cast<std::size_t>(DownlinkDrop::kTooBig)].reason == "too_big");
    CHECK(dl->dropped() == 6);
    CHECK(ul->forwarded == 4);
    CHECK(ul->dropped() == 7);
    const PortSnapshot* core = s.port("core");
    const PortSnapshot* access = s.port("access");
    REQUIRE(core != nullptr);
    REQUIRE(access != nullptr);
    CHECK(core->worker_rx == 150);
    CHECK(access->worker_tx == 9);
    CHECK(access->tx_ring_full == 2);
    CHECK(!core->has_ethdev);  // no such ethdev in this EAL: only hag's own counts
    CHECK(s.has_sessions);
    CHECK(s.sessions == 0);
}

TEST_CASE("sessions: count, the busiest first, one session with its paths", "[collector]") {
    Env env("c_sessions");
    for (std::uint32_t id = 1; id <= 20; ++id) {
        REQUIRE(env.t->upsert(id, session(id, id == 7 ? 2 : 1)).ok());
        // A session's totals are its paths' sums.
        env.t->downlink_traffic(id, 0).packets = id;
        env.t->downlink_traffic(id, 0).bytes = id * 100;            // busiest: 20, 19, 18 ...
        env.t->uplink_traffic(id, 0).bytes = id == 3 ? 100000 : 0;  // ... except 3, the busiest
    }
    env.t->uplink_traffic(7, 1).bytes = 77;
    Collector c({}, env.t.get(), env.rcu.get(), kReader);
    Snapshot s = c.collect({.ethdev = false, .sessions = true, .top_sessions = 4});
    CHECK(s.sessions == 20);
    CHECK(s.session_capacity == 256);
    REQUIRE(s.top_sessions.size() == 4);
    CHECK(s.top_sessions[0].id == 3);
    CHECK(s.top_sessions[1].id == 20);
    CHECK(s.top_sessions[2].id == 19);
    CHECK(s.top_sessions[3].id == 18);
    CHECK(s.top_sessions[1].downlink_bytes == 2000);
    s = c.collect({.ethdev = false, .sessions = true, .top_sessions = 1000});
    CHECK(s.top_sessions.size() == 20);
    auto one = c.session(7);
    REQUIRE(one.has_value());
    CHECK(one->uplink_key == 1007);
    REQUIRE(one->paths.size() == 2);
    CHECK(one->paths[0].bid == 1);
    CHECK(one->paths[0].downlink_packets == 7);
    CHECK(one->paths[0].care_of == "2001:db8:aaaa::38");
    CHECK(one->paths[1].uplink_bytes == 77);
    CHECK(one->downlink_packets == 7);
    CHECK(one->downlink_bytes == 700);
    CHECK(one->uplink_bytes == 77);
    CHECK(!c.session(21).has_value());
    CHECK(!c.session(1u << 31).has_value());
    REQUIRE(env.t->remove(7).ok());
    CHECK(!c.session(7).has_value());
    CHECK(c.collect().sessions == 19);
}

TEST_CASE("reading while workers count and the writer replaces sessions", "[collector]") {
    Env env("c_race");
    for (std::uint32_t id = 0; id < 32; ++id) {
        REQUIRE(env.t->upsert(id, session(id)).ok());
    }
    Worker w;
    Collector c({}, env.t.get(), env.rcu.get(), kReader);
    c.add_worker(&w);
    std::atomic<bool> stop{false};
    std::thread worker([&] {  // a worker: counts, touches session state, reports quiescent
        env.rcu->register_reader(1);
        while (!stop.load(std::memory_order_relaxed)) {
            w.downlink.encapsulated += 1;
            w.core.rx += 1;
            env.t->downlink_traffic(5, 0).packets.fetch_add(1, std::memory_order_relaxed);
            env.rcu->quiescent(1);
        }
        env.rcu->unregister_reader(1);
    });
    std::atomic<std::uint64_t> reads{0};
    std::atomic<bool> went_down{false};
    std::thread reader([&] {  // telemetry: reads through the collector
        std::uint64_t last = 0;
        while (!stop.load(std::memory_order_relaxed)) {
            const Snapshot s = c.collect({.ethdev = false, .sessions = true, .top_sessions = 8});
            const std::uint64_t now = s.stage("downlink_encap")->forwarded;
            if (now < last)
                went_down = true;
            last = now;
            for (const auto& ss : s.top_sessions)
                if (ss.paths.size() != 1 || ss.paths[0].bid != 1)
                    went_down = true;  // a torn config would show here
            (void)c.session(static_cast<std::uint32_t>(reads.load() % 40));
            reads.fetch_add(1);
        }
    });
    // The writer (this thread) replaces and removes sessions, freeing old configs after grace
    // periods: the collector must never see a freed one.
    for (int round = 0; round < 2000; ++round) {
        const auto id = static_cast<std::uint32_t>(round % 32);
        SessionConfig cfg = session(id);
        cfg.paths[0].downlink_key = static_cast<std::uint32_t>(round);
        REQUIRE(env.t->upsert(id, cfg).ok());
        if (round % 5 == 0) {
            REQUIRE(env.t->remove(id).ok());
            REQUIRE(env.t->upsert(id, cfg).ok());
        }
        env.t->reclaim();
    }
    for (int i = 0; i < 1000 && reads.load() < 10; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    stop = true;
    worker.join();
    reader.join();
    CHECK(!went_down);
    CHECK(reads.load() >= 10);
    CHECK(c.collect().stage("downlink_encap")->forwarded == w.downlink.encapsulated.read());
}

// The handlers add nested containers with keep = 0: DPDK's telemetry socket frees them after it
// has written the reply. This test calls the handlers directly and can free only the outer
// object (rte_tel_data is opaque), so LeakSanitizer (tools/quickstart test's ASan build) is told
// about these allocations in this binary only; the socket path is covered by dataplane-telemetry.
extern "C" const char* __lsan_default_suppressions() {
    return "leak:hag::dp::telemetry_\n";
}

TEST_CASE("telemetry handlers check their parameters", "[collector][telemetry]") {
    Env env("c_tel");
    REQUIRE(env.t->upsert(1, session(1)).ok());
    Worker w;
    Collector c({{0, "core-0", "core"}}, env.t.get(), env.rcu.get(), kReader);
    c.add_worker(&w);
    TelemetryCommands commands(c);
    const auto call = [&](int (*fn)(const Collector&, const char*, rte_tel_data*),
                          const char* params) {
        rte_tel_data* d = rte_tel_data_alloc();
        const int rc = fn(c, params, d);
        rte_tel_data_free(d);
        return rc;
    };
    CHECK(call(telemetry_ports, nullptr) == 0);
    CHECK(call(telemetry_stages, "") == 0);
    CHECK(call(telemetry_drops, nullptr) == 0);
    CHECK(call(telemetry_drops, "uplink_decap") == 0);
    CHECK(call(telemetry_drops, "nope") == -EINVAL);
    CHECK(call(telemetry_sessions, nullptr) == 0);
    CHECK(call(telemetry_sessions, "64") == 0);
    CHECK(call(telemetry_sessions, "65") == -EINVAL);
    CHECK(call(telemetry_sessions, "-1") == -EINVAL);
    CHECK(call(telemetry_sessions, "1x") == -EINVAL);
    CHECK(call(telemetry_sessions, "99999999999999999999999999999999999") == -EINVAL);
    CHECK(call(telemetry_session, "1") == 0);
    CHECK(call(telemetry_session, "2") == -ENOENT);
    CHECK(call(telemetry_session, "") == -EINVAL);
    CHECK(call(telemetry_session, nullptr) == -EINVAL);
    CHECK(call(telemetry_session, "4294967296") == -EINVAL);
    CHECK(call(telemetry_session, " 1") == -EINVAL);
    CHECK(telemetry_key("core-0") == "core_0");
    CHECK(telemetry_key("a/b_C9") == "a/b_C9");
    CHECK(telemetry_key("") == "_");
    CHECK(telemetry_key(std::string(500, 'x')).size() == RTE_TEL_MAX_STRING_LEN - 1);
}
