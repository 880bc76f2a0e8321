// hag-dp-bench: the data plane's benchmark harness (not a test: it reports figures, it never
// passes or fails on speed). tools/bench/dataplane drives it next to dpdk-testpmd.
//
//   hag-dp-bench gen --direction downlink|uplink --subscribers N [--packets P] --out FILE
//                    [--reorder-per-subscriber M --permille P]   (uplink over two paths)
//   hag-dp-bench run --direction downlink|uplink --pcap FILE --subscribers N [--seconds D]
//                    [--warmup W] [--updates U] [--lcores 0,1] [--memory MB]
//                    [--paths 1-8] [--striping weighted|overflow] [--reorder]
//                    [--workers N]
//
// --workers N: N worker lcores (--lcores gives the main lcore and one per worker, e.g.
// "0@0,1@0,2@1" on a two-CPU host). The input net_pcap gets one RX queue per worker, each
// replaying the whole file, so every worker receives every session's packets and hands the
// other workers' sessions over through their rings, as with a device that cannot hash.
//
// --reorder: sessions get a second path (care_of(i, true)) and the worker runs the uplink
// reorder stage after the decap (default settings); the JSON gets a "reorder" member.
//
// `run` starts the EAL (--no-huge --no-pci), opens the input as net_pcap (rx_pcap=FILE,
// infinite_rx=1) and the output as net_null (no-rx=1) through the real Ports code, programs N
// subscribers into the real SessionTable, and runs the real worker loop (runtime/worker.cpp,
// with the real stages) on one worker lcore. After W seconds of warm-up it measures for D
// seconds; the main lcore wakes every millisecond to sample the forwarded-packet counter and,
// with --updates U, applies U session upserts per second (random sessions; each changes the
// path's downlink key and care-of address) the way a programmer delta would. It prints one JSON
// object on stdout (docs/benchmarks.md says what each field means) and a summary on stderr.
// With --huge the EAL memory is on 2 MB hugepages instead (tools/bench/run picks it).
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <ctime>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "bench/misses.hpp"
#include "bench/pcap_gen.hpp"
#include "bench/subscribers.hpp"
#include "multipath/reorder.hpp"
#include "policy/policy_table.hpp"
#include "runtime/eal_cleanup.hpp"
#include "runtime/ports.hpp"
#include "runtime/worker.hpp"
#include "tables/rcu.hpp"
#include "tables/session_table.hpp"

namespace {

using namespace hag::dp;
using Clock = std::chrono::steady_clock;

struct RunOptions {
    bench::Direction dir = bench::Direction::kDownlink;
    std::string pcap;
    std::uint32_t subscribers = 100000;
    double seconds = 10;
    double warmup = 1;
    std::uint32_t updates = 0;  // upserts per second from the main lcore; 0 = none
    unsigned paths = 1;         // paths per session (> 1: downlink striping)
    std::string striping = "weighted";
    std::string lcores = "0,1";
    unsigned memory_mb = 512;
    bool reorder = false;
    unsigned policy_rules = 0;  // > 0: a flow policy profile of this many rules, every session
    bool ipv4 = false;          // sessions also own an IPv4 home address (tools/hag-gen --ipv4)
    bool huge = false;     // EAL memory on hugepages (a mounted hugetlbfs) instead of --no-huge
    unsigned workers = 1;  // worker lcores (runtime/worker.hpp: sessions steered to owners)
    bool no_fast_path = false;  // {Downlink,Uplink}Ctx::fast_path off: every packet the general way
};

// A profile of `n` rules that every session shares: n - 1 rules the benchmark's packets do not
// match (UDP to other ports and from other prefixes), then one they match (UDP from the core
// host's 2001:db8:ffff::/48), pinning them to the path with If-Label 1 (docs/benchmarks.md).
hag::v1::DpPolicyProfile bench_profile(unsigned n) {
    hag::v1::DpPolicyProfile p;
    p.set_name("bench");
    for (unsigned i = 0; i < n; ++i) {
        auto* r = p.add_rules();
        r->set_application(fmt::format("app{}", i));
        auto* m = r->add_match();
        m->set_protocol(17);
        if (i + 1 < n) {
            auto* pr = m->add_remote_ports();
            pr->set_first(1000 + i % 60000);
            pr->set_last(1000 + i % 60000);
            m->add_remote_prefixes(fmt::format("2001:db8:{:x}::/48", 0x1000 + i));
        } else {
            m->add_remote_prefixes("2001:db8:ffff::/48");
        }
        auto* a = r->add_preference();
        a->set_kind(hag::v1::DpPolicyStep::ACCESS);
        a->set_if_label(1);
        a->set_label("L1");
        r->add_preference()->set_kind(hag::v1::DpPolicyStep::DROP);
    }
    return p;
}

// Records in a classic pcap file (the mbuf pool must hold all of them: net_pcap's infinite_rx
// keeps a copy of every packet in mbufs).
hag::Result<std::uint32_t, std::string> count_pcap_records(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    char hdr[24];
    if (!in.read(hdr, sizeof hdr)) {
        return hag::unexpected(fmt::format("{}: not a pcap file", path));
    }
    std::uint32_t n = 0;
    unsigned char rec[16];
    while (in.read(reinterpret_cast<char*>(rec), sizeof rec)) {
        const std::uint32_t incl =
            rec[8] | rec[9] << 8 | rec[10] << 16 | static_cast<std::uint32_t>(rec[11]) << 24;
        in.seekg(incl, std::ios::cur);
        ++n;
    }
    return n;
}

// Samples the forwarded counter every millisecond (and applies the updates due) during the
// measured interval.
struct Sampler {
    double longest_no_progress_ms = 0;  // longest time between two samples that saw progress
    double longest_sample_gap_ms = 0;   // longest time between two samples (the sampler's own)
    double min_100ms_pps = -1, max_100ms_pps = 0;
    std::uint64_t samples = 0;
    std::uint64_t zero_progress_samples = 0;  // samples that saw no packet forwarded since the last
    std::uint64_t updates_applied = 0, updates_refused = 0;
    double longest_upsert_us = 0;
    std::uint64_t upserts_over_1ms = 0;
    double upsert_us_total = 0;
    // The same in the main lcore thread's CPU time (CLOCK_THREAD_CPUTIME_ID around each
    // upsert): what the upsert itself took, without the time another thread or process had the
    // CPU meanwhile (the wall-clock figures above include it).
    double longest_upsert_own_us = 0;
    std::uint64_t upserts_over_1ms_own = 0;
};

// The calling thread's CPU time in ns; -1 if the clock cannot be read.
std::int64_t thread_cpu_ns() {
    timespec ts{};
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) {
        return -1;
    }
    return std::int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// What the kernel says about one thread: time on a CPU and time waiting to run (ready but
// not running: another process had its CPU), from /proc/self/task/TID/schedstat.
struct SchedStat {
    std::uint64_t run_ns = 0, wait_ns = 0;
    std::uint64_t nonvoluntary_switches = 0;
};

// The EAL names its worker threads "rte-worker-<lcore>"; finds that thread's id.
std::string find_worker_task(unsigned lcore) {
    const std::string want = fmt::format("rte-worker-{}", lcore);
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) {
        std::ifstream comm(e.path() / "comm");
        std::string name;
        if (std::getline(comm, name) && name == want) {
            return e.path().filename().string();
        }
    }
    return {};
}

SchedStat read_sched(const std::string& tid) {
    SchedStat st;
    if (tid.empty()) {
        return st;
    }
    std::ifstream ss("/proc/self/task/" + tid + "/schedstat");
    ss >> st.run_ns >> st.wait_ns;
    std::ifstream status("/proc/self/task/" + tid + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("nonvoluntary_ctxt_switches:", 0) == 0) {
            st.nonvoluntary_switches = std::stoull(line.substr(line.find(':') + 1));
        }
    }
    return st;
}

// Resident set size of this process in bytes (VmRSS), 0 if unreadable.
std::uint64_t rss_bytes() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            return std::stoull(line.substr(6)) * 1024;
        }
    }
    return 0;
}

std::string fmt_double(double v) {
    return fmt::format("{:.6g}", v);
}

struct Totals {
    std::uint64_t rx = 0, fwd = 0, stage_packets = 0, stage_cycles = 0;
};

Totals totals(const std::vector<std::unique_ptr<Worker>>& workers, bench::Direction dir) {
    Totals t;
    for (const auto& wp : workers) {
        const Worker& w = *wp;
        if (dir == bench::Direction::kDownlink) {
            t.rx += w.core.rx;
            t.fwd += w.access.tx;
            t.stage_packets += w.downlink.cycles.packets;
            t.stage_cycles += w.downlink.cycles.cycles;
        } else {
            t.rx += w.access.rx;
            t.fwd += w.core.tx;
            t.stage_packets += w.uplink.cycles.packets;
            t.stage_cycles += w.uplink.cycles.cycles;
        }
    }
    return t;
}

int run(const RunOptions& o) {
    auto records = count_pcap_records(o.pcap);
    if (!records) {
        std::fprintf(stderr, "hag-dp-bench: %s\n", records.error().c_str());
        return 1;
    }
    const std::string prefix = fmt::format("hag-dpbench-{}", ::getpid());
    std::vector<std::string> eal_args{"hag-dp-bench",
                                      "--lcores",
                                      o.lcores,
                                      o.huge ? "--huge-unlink" : "--no-huge",
                                      "--no-pci",
                                      "-m",
                                      std::to_string(o.memory_mb),
                                      "--file-prefix",
                                      prefix,
                                      "--no-telemetry",
                                      "--log-level=lib.eal:warning"};
    std::vector<char*> argv;
    for (auto& a : eal_args) {
        argv.push_back(a.data());
    }
    if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
        std::fprintf(stderr, "hag-dp-bench: EAL initialisation failed: %s\n",
                     rte_strerror(rte_errno));
        return 1;
    }
    int rc = 1;
    {
        // Pool: every pcap record (kept by infinite_rx) plus rings, caches and bursts in flight.
        // 512-octet data room (headroom included), as testpmd's --mbuf-size=512 in the script.
        const unsigned n_mbufs = *records * o.workers + 16384;
        rte_mempool* pool = rte_pktmbuf_pool_create("dpb_mbufs", n_mbufs, 256, 0, 512,
                                                    static_cast<int>(rte_socket_id()));
        if (pool == nullptr) {
            std::fprintf(stderr, "hag-dp-bench: cannot create %u mbufs: %s (raise --memory)\n",
                         n_mbufs, rte_strerror(rte_errno));
            hag::dp::eal_cleanup();
            return 1;
        }
        const bool down = o.dir == bench::Direction::kDownlink;
        hag::v1::DataplaneConfig cfg;
        auto* in = cfg.add_ports();
        in->set_name("in");
        std::string in_dev = "net_pcap0";
        for (unsigned i = 0; i < o.workers; ++i) {
            in_dev += ",rx_pcap=" + o.pcap;  // one RX queue per worker (and as many TX drops)
        }
        in->set_device(in_dev + ",infinite_rx=1");
        in->set_role(down ? hag::v1::PortConfig::CORE : hag::v1::PortConfig::ACCESS);
        auto* out = cfg.add_ports();
        out->set_name("out");
        out->set_device("net_null0,no-rx=1");
        out->set_role(down ? hag::v1::PortConfig::ACCESS : hag::v1::PortConfig::CORE);
        auto ports = Ports::open(cfg, pool, static_cast<std::uint16_t>(o.workers));
        auto rcu = Rcu::create(RTE_MAX_LCORE);
        if (!ports || !rcu) {
            std::fprintf(stderr, "hag-dp-bench: %s\n",
                         (!ports ? ports.error() : rcu.error()).c_str());
            hag::dp::eal_cleanup();
            return 1;
        }
        const StripingMode mode =
            o.striping == "overflow" ? StripingMode::kOverflow : StripingMode::kWeighted;
        // Memory per subscriber: the process's RSS growth over the table's creation and fill.
        const std::uint64_t rss0 = rss_bytes();
        // The care-of index holds two CoAs per session of capacity: more paths need more room.
        const std::uint32_t capacity = o.subscribers * std::max(1u, (o.paths + 1) / 2);
        auto sessions = SessionTable::create("dpb_sessions", capacity, **rcu);
        if (!sessions) {
            std::fprintf(stderr, "hag-dp-bench: %s\n", sessions.error().c_str());
            hag::dp::eal_cleanup();
            return 1;
        }
        const Port* core = (*ports)->first(hag::v1::PortConfig::CORE);
        const Port* access = (*ports)->first(hag::v1::PortConfig::ACCESS);
        auto policies = std::make_unique<PolicyTable>(**rcu);
        std::uint16_t policy_slot = 0;
        double compile_s = 0;
        if (o.policy_rules > 0) {
            const auto c0 = Clock::now();
            auto compiled = compile_profile(bench_profile(o.policy_rules));
            if (!compiled) {
                std::fprintf(stderr, "hag-dp-bench: %s\n", compiled.error().c_str());
                hag::dp::eal_cleanup();
                return 1;
            }
            compile_s = std::chrono::duration<double>(Clock::now() - c0).count();
            policy_slot = policies->publish(std::move(*compiled)).value().first;
        }
        const auto fill0 = Clock::now();
        for (std::uint32_t i = 0; i < o.subscribers; ++i) {
            SessionConfig sc =
                bench::session_config(i, access->id, access->mac, o.paths, mode, o.ipv4);
            sc.policy = policy_slot;
            if (o.reorder && sc.n_paths < 2) {  // the uplink reorder scenario's odd numbers
                sc.paths[1] = sc.paths[0];
                sc.paths[1].bid = 2;
                sc.paths[1].coa = bench::care_of(i, true);
                sc.n_paths = 2;
            }
            if (auto r = (*sessions)->upsert(i, sc); !r) {
                std::fprintf(stderr, "hag-dp-bench: session %u: %s\n", i, r.error().c_str());
                hag::dp::eal_cleanup();
                return 1;
            }
        }
        const double fill_s = std::chrono::duration<double>(Clock::now() - fill0).count();
        const std::uint64_t rss1 = rss_bytes();
        const double mem_per_sub =
            rss1 > rss0 ? static_cast<double>(rss1 - rss0) / o.subscribers : 0;

        std::atomic<bool> stop{false};
        std::unique_ptr<Handoff> handoff;
        if (o.workers > 1) {
            auto h = Handoff::create(static_cast<std::uint16_t>(o.workers), 4096, "dpb_handoff");
            if (!h) {
                std::fprintf(stderr, "hag-dp-bench: %s\n", h.error().c_str());
                hag::dp::eal_cleanup();
                return 1;
            }
            handoff = std::move(*h);
        }
        std::vector<std::unique_ptr<Worker>> workers;
        std::vector<std::unique_ptr<Reorder>> reorders;
        std::vector<unsigned> lcores;
        for (unsigned l = rte_get_next_lcore(-1, 1, 0);
             l < RTE_MAX_LCORE && lcores.size() < o.workers; l = rte_get_next_lcore(l, 1, 0)) {
            lcores.push_back(l);
        }
        if (lcores.size() < o.workers) {
            std::fprintf(stderr,
                         "hag-dp-bench: %u worker(s) need %u lcores (--lcores: the main lcore and "
                         "one per worker)\n",
                         o.workers, o.workers + 1);
            hag::dp::eal_cleanup();
            return 1;
        }
        for (unsigned i = 0; i < o.workers; ++i) {
            auto wp = std::make_unique<Worker>();
            Worker& w = *wp;
            w.index = static_cast<std::uint16_t>(i);
            w.txq = static_cast<std::uint16_t>(i);
            w.handoff = handoff.get();
            w.core_rxq = i < core->rx_queues ? w.index : kNoQueue;
            w.access_rxq = i < access->rx_queues ? w.index : kNoQueue;
            w.rcu = rcu->get();
            w.core_port = core->id;
            w.access_port = access->id;
            w.stop = &stop;
            w.downlink.sessions = w.downlink.sessions_rw = sessions->get();
            w.downlink.policies = w.uplink.policies = policies.get();
            w.downlink.fast_path = w.uplink.fast_path = !o.no_fast_path;
            w.uplink.sessions = w.uplink.sessions_rw = sessions->get();
            w.uplink.core_port = core->id;
            w.uplink.core_src_mac = core->mac;
            w.uplink.core_next_hop_mac = bench::kCoreNextHopMac;
            if (o.reorder) {
                auto r = Reorder::create(ReorderSettings{}, **sessions, rte_get_tsc_hz(),
                                         worker_send_core, &w);
                if (!r) {
                    std::fprintf(stderr, "hag-dp-bench: %s\n", r.error().c_str());
                    hag::dp::eal_cleanup();
                    return 1;
                }
                w.reorder = r->get();
                reorders.push_back(std::move(*r));
            }
            w.rcu_thread = lcores[i];
            workers.push_back(std::move(wp));
        }
        Reorder* reorder = reorders.empty() ? nullptr : reorders.front().get();
        const unsigned lcore = lcores.front();
        for (const auto& wp : workers) {
            rcu->get()->register_reader(wp->rcu_thread);
        }
        for (const auto& wp : workers) {
            rte_eal_remote_launch(worker_main, wp.get(), wp->rcu_thread);
        }

        // Warm-up, then the measured interval on 1 ms ticks.
        timespec tick{};
        clock_gettime(CLOCK_MONOTONIC, &tick);
        auto advance = [&tick](long ns) {
            tick.tv_nsec += ns;
            while (tick.tv_nsec >= 1000000000L) {
                tick.tv_nsec -= 1000000000L;
                ++tick.tv_sec;
            }
        };
        advance(static_cast<long>(o.warmup * 1e9));
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &tick, nullptr);

        const std::string worker_tid = find_worker_task(lcore);
        const SchedStat sched0 = read_sched(worker_tid);
        const Totals t0 = totals(workers, o.dir);
        const std::uint64_t tsc0 = rte_get_tsc_cycles();
        const auto start = Clock::now();
        const auto end = start + std::chrono::duration<double>(o.seconds);
        Sampler s;
        std::uint64_t last_fwd = t0.fwd, window_fwd = t0.fwd;
        auto last_progress = start, last_sample = start, window_start = start;
        std::uint64_t rng = 0x9e3779b97f4a7c15ull;
        std::vector<std::uint8_t> alt(o.subscribers, 0);
        std::uint32_t update_gen = 0;
        for (;;) {
            advance(1000000);
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &tick, nullptr);
            const auto now = Clock::now();
            const std::uint64_t fwd = totals(workers, o.dir).fwd;
            ++s.samples;
            s.longest_sample_gap_ms =
                std::max(s.longest_sample_gap_ms,
                         std::chrono::duration<double, std::milli>(now - last_sample).count());
            last_sample = now;
            if (fwd != last_fwd) {
                s.longest_no_progress_ms = std::max(
                    s.longest_no_progress_ms,
                    std::chrono::duration<double, std::milli>(now - last_progress).count());
                last_progress = now;
                last_fwd = fwd;
            } else {
                ++s.zero_progress_samples;
            }
            if (now - window_start >= std::chrono::milliseconds(100)) {
                const double pps = static_cast<double>(fwd - window_fwd) /
                                   std::chrono::duration<double>(now - window_start).count();
                s.min_100ms_pps = s.min_100ms_pps < 0 ? pps : std::min(s.min_100ms_pps, pps);
                s.max_100ms_pps = std::max(s.max_100ms_pps, pps);
                window_start = now;
                window_fwd = fwd;
            }
            if (now >= end) {
                break;
            }
            if (o.updates > 0) {
                // Updates due by now at the target rate (catches up after a late tick).
                const double el = std::chrono::duration<double>(now - start).count();
                const auto due = static_cast<std::uint64_t>(el * o.updates);
                while (s.updates_applied + s.updates_refused < due) {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    const auto i = static_cast<std::uint32_t>(rng % o.subscribers);
                    SessionConfig c =
                        bench::session_config(i, access->id, access->mac, o.paths, mode, o.ipv4);
                    c.paths[0].downlink_key = 0x40000000u | (++update_gen & 0x3fffffffu);
                    if (down) {  // uplink packets come from the first care-of address
                        alt[i] ^= 1;
                        c.paths[0].coa = bench::care_of(i, alt[i] != 0);
                    }
                    const std::int64_t cpu0 = thread_cpu_ns();
                    const auto u0 = Clock::now();
                    const bool ok = static_cast<bool>((*sessions)->upsert(i, c));
                    const double us =
                        std::chrono::duration<double, std::micro>(Clock::now() - u0).count();
                    const std::int64_t cpu1 = thread_cpu_ns();
                    s.upsert_us_total += us;
                    s.longest_upsert_us = std::max(s.longest_upsert_us, us);
                    s.upserts_over_1ms += us > 1000 ? 1 : 0;
                    // The wall-clock time when the thread's clock could not be read.
                    const double own =
                        cpu0 >= 0 && cpu1 >= cpu0 ? static_cast<double>(cpu1 - cpu0) / 1e3 : us;
                    s.longest_upsert_own_us = std::max(s.longest_upsert_own_us, own);
                    s.upserts_over_1ms_own += own > 1000 ? 1 : 0;
                    ++(ok ? s.updates_applied : s.updates_refused);
                }
            }
            (*sessions)->reclaim();
        }
        const auto stop_at = Clock::now();
        const Totals t1 = totals(workers, o.dir);
        const SchedStat sched1 = read_sched(worker_tid);
        const std::uint64_t tsc1 = rte_get_tsc_cycles();
        stop.store(true);
        for (const unsigned l : lcores) {
            rte_eal_wait_lcore(l);
        }
        const double secs = std::chrono::duration<double>(stop_at - start).count();
        const double fwd_pps = static_cast<double>(t1.fwd - t0.fwd) / secs;
        const double rx_pps = static_cast<double>(t1.rx - t0.rx) / secs;
        const double stage_cpp = t1.stage_packets > t0.stage_packets
                                     ? static_cast<double>(t1.stage_cycles - t0.stage_cycles) /
                                           static_cast<double>(t1.stage_packets - t0.stage_packets)
                                     : 0;
        const double loop_cpp = t1.fwd > t0.fwd ? static_cast<double>(tsc1 - tsc0) /
                                                      static_cast<double>(t1.fwd - t0.fwd)
                                                : 0;

        // Drops over the whole run (warm-up included: valid traffic must never be dropped).
        std::string drops;
        std::uint64_t dropped = 0;
        auto add_drops = [&](const char* stage, const auto& names, const auto& counters) {
            for (std::size_t k = 0; k < names.size(); ++k) {
                const std::uint64_t v = counters[k];
                dropped += v;
                drops +=
                    fmt::format("{}\"{}.{}\":{}", drops.empty() ? "" : ",", stage, names[k], v);
            }
        };
        // Summed over the workers.
        std::array<std::uint64_t, DownlinkDrop_names.size()> down_drops{};
        std::array<std::uint64_t, UplinkDrop_names.size()> up_drops{};
        std::uint64_t handoff_full = 0;
        std::uint64_t encapsulated = 0, fast_encapsulated = 0;  // the whole run, warm-up too
        std::uint64_t decapsulated = 0, fast_decapsulated = 0;
        for (const auto& wp : workers) {
            encapsulated += wp->downlink.encapsulated.read();
            fast_encapsulated +=
                wp->downlink.events[static_cast<std::size_t>(DownlinkEvent::kFastForm)].read();
            decapsulated += wp->uplink.decapsulated.read();
            fast_decapsulated +=
                wp->uplink.events[static_cast<std::size_t>(UplinkEvent::kFastForm)].read();
            for (std::size_t k = 0; k < down_drops.size(); ++k) {
                down_drops[k] += wp->downlink.drops[k];
            }
            for (std::size_t k = 0; k < up_drops.size(); ++k) {
                up_drops[k] += wp->uplink.drops[k];
            }
            handoff_full += wp->steer.handoff_full.read();
        }
        add_drops("downlink_encap", DownlinkDrop_names, down_drops);
        add_drops("uplink_decap", UplinkDrop_names, up_drops);
        // Hand-over ring overflow is overload (a worker without its CPU for a while), the
        // counterpart of rx_missed, not a fault: reported apart from the unexpected drops.
        drops += fmt::format(",\"handoff_full\":{}", handoff_full);
        std::string reorder_json;
        if (reorder) {
            const ReorderCounters& c = reorder->counters();
            // Late and duplicate would be unexpected (the pcap has neither); shutdown is not.
            add_drops("uplink_reorder", ReorderDrop_names, c.drops);
            dropped -= c.drops[static_cast<std::size_t>(ReorderDrop::kShutdown)].read();
            std::string hist;
            for (const auto& b : c.wait_us_log2) {
                hist += fmt::format("{}{}", hist.empty() ? "" : ",", b.read());
            }
            const std::uint64_t rp = c.cycles.packets.read();
            reorder_json = fmt::format(
                "\"reorder\":{{\"stage_cycles_per_packet\":{},\"in_order\":{},\"held\":{},"
                "\"gaps_skipped\":{},\"gaps_timed_out\":{},\"lost\":{},\"resyncs\":{},"
                "\"session_overflow\":{},\"global_overflow\":{},\"wait_us_log2\":[{}]}},",
                fmt_double(
                    rp ? static_cast<double>(c.cycles.cycles.read()) / static_cast<double>(rp) : 0),
                c.in_order.read(), c.held.read(), c.gaps_skipped.read(), c.gaps_timed_out.read(),
                c.lost.read(), c.resyncs.read(), c.session_overflow.read(),
                c.global_overflow.read(), hist);
        }
        std::uint64_t tx_full = 0;
        for (const auto& wp : workers) {
            tx_full += wp->core.tx_full + wp->access.tx_full;
        }
        rte_eth_stats in_stats{};
        rte_eth_stats_get(down ? core->id : access->id, &in_stats);

        std::string json = fmt::format(
            "{{\"direction\":\"{}\",\"workers\":{},"
            "\"subscribers\":{},\"pcap_packets\":{},\"frame_in\":{},"
            "\"frame_out\":{},\"paths\":{},\"striping\":\"{}\",\"policy_rules\":{},"
            "\"policy_compile_seconds\":{},\"fill_seconds\":{},\"seconds\":{},"
            "\"memory_bytes_per_subscriber\":{},\"hugepages\":{},"
            "\"tsc_hz\":{},"
            "\"forwarded\":{},\"forwarded_pps\":{},\"rx_pps\":{},"
            "\"stage_cycles_per_packet\":{},\"loop_cycles_per_packet\":{},"
            "\"unexpected_drops\":{},\"tx_full\":{},\"rx_nombuf\":{},\"rx_missed\":{},"
            "\"drops\":{{{}}},\"downlink_fast_share\":{},\"uplink_fast_share\":{},",
            down ? "downlink" : "uplink", o.workers, o.subscribers, *records,
            down ? bench::kDownlinkFrame : bench::kUplinkFrame,
            down ? bench::kUplinkFrame : bench::kDownlinkFrame, o.paths, o.striping, o.policy_rules,
            fmt_double(compile_s), fmt_double(fill_s), fmt_double(secs), fmt_double(mem_per_sub),
            o.huge ? "true" : "false", rte_get_tsc_hz(), t1.fwd - t0.fwd, fmt_double(fwd_pps),
            fmt_double(rx_pps), fmt_double(stage_cpp), fmt_double(loop_cpp), dropped + tx_full,
            tx_full, in_stats.rx_nombuf, in_stats.imissed, drops,
            fmt_double(encapsulated != 0 ? static_cast<double>(fast_encapsulated) /
                                               static_cast<double>(encapsulated)
                                         : 0.0),
            fmt_double(decapsulated != 0 ? static_cast<double>(fast_decapsulated) /
                                               static_cast<double>(decapsulated)
                                         : 0.0));
        json += reorder_json;
        const std::uint64_t tried = s.updates_applied + s.updates_refused;
        json += fmt::format(
            "\"updates\":{{\"target_per_s\":{},\"applied\":{},\"refused\":{},\"per_s\":{},"
            "\"mean_upsert_us\":{},\"longest_upsert_us\":{},\"upserts_over_1ms\":{},"
            "\"longest_upsert_own_us\":{},\"upserts_over_1ms_own\":{}}},"
            "\"worker\":{{\"cpu_share\":{},\"runqueue_wait_ms\":{},"
            "\"nonvoluntary_switches\":{}}},"
            "\"progress\":{{\"samples\":{},\"zero_progress_samples\":{},\"sample_ms\":1,"
            "\"longest_no_progress_ms\":{},\"longest_sample_gap_ms\":{},\"min_100ms_pps\":{},\"max_"
            "100ms_pps\":{}}}}}",
            o.updates, s.updates_applied, s.updates_refused,
            fmt_double(static_cast<double>(s.updates_applied) / secs),
            fmt_double(tried ? s.upsert_us_total / static_cast<double>(tried) : 0),
            fmt_double(s.longest_upsert_us), s.upserts_over_1ms,
            fmt_double(s.longest_upsert_own_us), s.upserts_over_1ms_own,
            fmt_double(static_cast<double>(sched1.run_ns - sched0.run_ns) / (secs * 1e9)),
            fmt_double(static_cast<double>(sched1.wait_ns - sched0.wait_ns) / 1e6),
            sched1.nonvoluntary_switches - sched0.nonvoluntary_switches, s.samples,
            s.zero_progress_samples, fmt_double(s.longest_no_progress_ms),
            fmt_double(s.longest_sample_gap_ms), fmt_double(std::max(0.0, s.min_100ms_pps)),
            fmt_double(s.max_100ms_pps));
        std::printf("%s\n", json.c_str());
        std::fflush(stdout);
        std::fprintf(stderr,
                     "hag-dp-bench %s: %.3f Mpps forwarded (rx %.3f Mpps), %.1f stage cycles/pkt, "
                     "%.1f loop cycles/pkt, %lu dropped; updates %.0f/s; %lu of %lu 1-ms samples "
                     "without progress, longest no-progress %.2f ms (sampler gap %.2f ms); "
                     "100 ms rate %.3f..%.3f Mpps; worker had its CPU %.0f%% of the time\n",
                     down ? "downlink" : "uplink", fwd_pps / 1e6, rx_pps / 1e6, stage_cpp, loop_cpp,
                     static_cast<unsigned long>(dropped + tx_full),
                     static_cast<double>(s.updates_applied) / secs,
                     static_cast<unsigned long>(s.zero_progress_samples),
                     static_cast<unsigned long>(s.samples), s.longest_no_progress_ms,
                     s.longest_sample_gap_ms, std::max(0.0, s.min_100ms_pps) / 1e6,
                     s.max_100ms_pps / 1e6,
                     100.0 * static_cast<double>(sched1.run_ns - sched0.run_ns) / (secs * 1e9));
        rc = 0;
        reorders.clear();
        workers.clear();
        handoff.reset();
        sessions->reset();
        rcu->reset();
        ports->reset();
        rte_mempool_free(pool);
    }
    hag::dp::eal_cleanup();
    return rc;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"hag-dp-bench: data-plane benchmark harness (docs/benchmarks.md)"};
    app.require_subcommand(1);
    const std::map<std::string, bench::Direction> dirs{{"downlink", bench::Direction::kDownlink},
                                                       {"uplink", bench::Direction::kUplink}};

    auto* gen = app.add_subcommand("gen", "write an input pcap for N subscribers");
    bench::Direction gen_dir = bench::Direction::kDownlink;
    std::uint32_t gen_subs = 100000, gen_packets = 0;
    std::string gen_out;
    gen->add_option("--direction", gen_dir, "downlink or uplink")
        ->required()
        ->transform(CLI::CheckedTransformer(dirs));
    gen->add_option("--subscribers", gen_subs, "subscribers 0..N-1")
        ->check(CLI::Range(1u, bench::kMaxSubscribers));
    gen->add_option("--packets", gen_packets, "frames in the file (default: one per subscriber)");
    gen->add_option("--out", gen_out, "pcap file to write")->required();
    std::uint32_t gen_reorder = 0;
    unsigned gen_permille = 10;
    gen->add_option("--reorder-per-subscriber", gen_reorder,
                    "uplink over two paths, this many numbers per subscriber (> 65536)");
    gen->add_option("--permille", gen_permille, "packets swapped with their successor, per mille")
        ->check(CLI::Range(0u, 1000u));

    auto* misses = app.add_subcommand(
        "misses", "TSC cycles per random cache-line read, in bursts of 32 as the stages read");
    std::size_t misses_mb = 64, misses_reads = std::size_t{1} << 21;
    misses->add_option("--megabytes", misses_mb, "size of the region read at random")
        ->check(CLI::Range(std::size_t{1}, std::size_t{65536}));
    misses->add_option("--reads", misses_reads, "records read per mode")
        ->check(CLI::Range(std::size_t{1024}, std::size_t{1} << 30));

    auto* runc = app.add_subcommand("run", "forward a pcap through the real worker and stages");
    RunOptions o;
    runc->add_option("--direction", o.dir, "downlink or uplink")
        ->required()
        ->transform(CLI::CheckedTransformer(dirs));
    runc->add_option("--pcap", o.pcap, "input pcap (from gen)")->required();
    runc->add_option("--subscribers", o.subscribers, "sessions in the table")
        ->check(CLI::Range(1u, bench::kMaxSubscribers));
    runc->add_option("--seconds", o.seconds, "measured interval")->check(CLI::Range(0.1, 3600.0));
    runc->add_option("--warmup", o.warmup, "seconds forwarded before measuring")
        ->check(CLI::Range(0.0, 60.0));
    runc->add_option("--updates", o.updates, "session upserts per second during the measurement");
    runc->add_option("--paths", o.paths, "paths per session; > 1 stripes the downlink")
        ->check(CLI::Range(1u, kMaxPaths));
    runc->add_option("--striping", o.striping, "weighted or overflow (with --paths > 1)")
        ->check(CLI::IsMember({"weighted", "overflow"}));
    runc->add_option("--lcores", o.lcores,
                     "EAL --lcores: main lcore, then one per worker (\"0,1\", \"0@0,1@0,2@1\")");
    runc->add_option("--workers", o.workers, "worker lcores; sessions are steered to their owner")
        ->check(CLI::Range(1u, 16u));
    runc->add_option("--memory", o.memory_mb, "EAL -m (MiB)");
    runc->add_flag("--huge", o.huge,
                   "EAL memory on 2 MB hugepages (needs a mounted hugetlbfs with -m MiB free); "
                   "default --no-huge");
    runc->add_flag("--ipv4", o.ipv4,
                   "sessions also own the IPv4 home address 198.18.0.0 + i (hag-gen --ipv4)");
    runc->add_flag("--reorder", o.reorder, "two paths per session and the uplink reorder stage");
    runc->add_flag("--no-fast-path", o.no_fast_path,
                   "the general path for every packet of both directions (no fast downlink or "
                   "uplink form), to compare");
    runc->add_option("--policy-rules", o.policy_rules,
                     "a flow policy profile of N rules shared by every session (downlink "
                     "packets match the last rule)")
        ->check(CLI::Range(0u, 100000u));
    CLI11_PARSE(app, argc, argv);

    if (gen->parsed() && gen_reorder != 0) {
        auto r = bench::write_reorder_pcap(gen_out, gen_subs, gen_reorder, gen_permille);
        if (!r) {
            std::fprintf(stderr, "hag-dp-bench gen: %s\n", r.error().c_str());
            return 1;
        }
        return 0;
    }
    if (misses->parsed()) {
        auto r = bench::measure_misses(misses_mb, misses_reads);
        if (!r) {
            std::fprintf(stderr, "hag-dp-bench misses: %s\n", r.error().c_str());
            return 1;
        }
        std::string json = fmt::format("{{\"megabytes\":{},\"reads\":{},\"cycles_per_read\":{{",
                                       misses_mb, misses_reads);
        for (std::size_t i = 0; i < r->size(); ++i) {
            json += fmt::format("{}\"{}\":{:.1f}", i ? "," : "", (*r)[i].mode, (*r)[i].cycles);
        }
        std::printf("%s}}\n", json.c_str());
        return 0;
    }
    if (gen->parsed()) {
        auto r =
            bench::write_pcap(gen_out, gen_dir, gen_subs, gen_packets ? gen_packets : gen_subs);
        if (!r) {
            std::fprintf(stderr, "hag-dp-bench gen: %s\n", r.error().c_str());
            return 1;
        }
        return 0;
    }
    return run(o);
}
