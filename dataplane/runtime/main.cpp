// hag-dataplane: the DPDK poll-mode forwarder.
//
//   hag-dataplane --config FILE [--check-config] [--stats-interval SECONDS]
//
// Starts the EAL with the file's eal_args plus one --vdev per virtual port, opens the ports,
// programs the static sessions, runs the workers until SIGINT/SIGTERM, then prints their counters
// as one JSON line on stdout. While it runs, counters are read through telemetry/ (DPDK
// telemetry /hag/..., the Prometheus endpoint, the periodic log line).
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_random.h>
#include <CLI/CLI.hpp>

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "exception/exception_path.hpp"
#include "exception/resolver.hpp"
#include "hag/log/log.hpp"
#include "pipeline/reassembly.hpp"
#include "programmer/main_loop_queue.hpp"
#include "programmer/path_encapsulation.hpp"
#include "programmer/programmer.hpp"
#include "programmer/service.hpp"
#include "runtime/config.hpp"
#include "runtime/eal_cleanup.hpp"
#include "runtime/ports.hpp"
#include "runtime/text.hpp"
#include "runtime/worker.hpp"
#include "telemetry/collector.hpp"
#include "telemetry/dpdk_commands.hpp"
#include "telemetry/metrics_server.hpp"
#include "telemetry/render.hpp"

namespace {

std::atomic<bool> g_stop{false};
// RCU reader id of the telemetry collector: above every lcore id.
constexpr std::uint32_t kCollectorReader = RTE_MAX_LCORE;

void on_signal(int) {
    g_stop.store(true);
}

// DPDK writes its own log lines (EAL, PMDs) to stderr. With JSON logs they go through spdlog
// instead, one event per line, at the level DPDK gave the message, prefixed "dpdk: ".
ssize_t dpdk_log_write(void* /*cookie*/, const char* buf, std::size_t size) {
    thread_local std::string pending;
    pending.append(buf, size);
    std::size_t start = 0;
    for (std::size_t nl = pending.find('\n'); nl != std::string::npos;
         nl = pending.find('\n', start)) {
        if (nl > start) {
            spdlog::level::level_enum lvl = spdlog::level::info;
            switch (rte_log_cur_msg_loglevel()) {
                case RTE_LOG_EMERG:
                case RTE_LOG_ALERT:
                case RTE_LOG_CRIT:
                    lvl = spdlog::level::critical;
                    break;
                case RTE_LOG_ERR:
                    lvl = spdlog::level::err;
                    break;
                case RTE_LOG_WARNING:
                    lvl = spdlog::level::warn;
                    break;
                case RTE_LOG_DEBUG:
                    lvl = spdlog::level::debug;
                    break;
                default:
                    break;
            }
            spdlog::log(lvl, "dpdk: {}", std::string_view(pending).substr(start, nl - start));
        }
        start = nl + 1;
    }
    pending.erase(0, start);
    if (pending.size() > 4096) {  // a line without an end: log what there is
        spdlog::info("dpdk: {}", pending);
        pending.clear();
    }
    return static_cast<ssize_t>(size);
}

void route_dpdk_log_to_spdlog() {
    cookie_io_functions_t io{};
    io.write = dpdk_log_write;
    // Lives as long as the process: DPDK may log until exit.
    if (FILE* f = fopencookie(nullptr, "w", io); f != nullptr) {
        std::setvbuf(f, nullptr, _IOLBF, 0);
        rte_openlog_stream(f);
    }
}

using namespace hag::dp;

// A static session of the configuration file as the programmer keeps it (DpSession, for
// Digest and ListSessions) and as the table gets it (SessionConfig with its next hops attached:
// the path's next_hop_mac, else the port's, else a resolved next hop).
struct StaticProgram {
    hag::v1::DpSession session;
    SessionConfig config;
};

hag::Result<StaticProgram, std::string> to_session(const hag::v1::StaticSession& s,
                                                   const Ports& ports,
                                                   const hag::v1::DataplaneConfig& cfg,
                                                   NextHopTable& next_hops) {
    StaticProgram out;
    out.session.set_id(s.id());
    out.session.set_nai("static");
    out.session.set_uplink_key(s.uplink_key());
    SessionConfig& c = out.config;
    c.uplink_key = s.uplink_key();
    c.gre_sequence = !s.has_gre_sequence() || s.gre_sequence();
    out.session.set_gre_sequence(c.gre_sequence);
    c.striping = s.striping() == hag::v1::STRIPING_OVERFLOW ? StripingMode::kOverflow
                                                            : StripingMode::kWeighted;
    c.overflow_burst_bytes = s.overflow_burst_bytes();
    out.session.set_striping(s.striping());
    out.session.set_overflow_burst_bytes(s.overflow_burst_bytes());
    for (const auto& text : s.prefixes()) {
        c.prefixes[c.n_prefixes++] = parse_ip_prefix(text).value();
        out.session.add_prefixes(text);
    }
    for (const auto& p : s.paths()) {
        PathConfig& pc = c.paths[c.n_paths];
        const Port* port = ports.by_name(p.port());
        if (port == nullptr || port->role != hag::v1::PortConfig::ACCESS) {
            release_path_next_hops(c, next_hops);
            return hag::unexpected(
                fmt::format("session {}: '{}' is not an access port", s.id(), p.port()));
        }
        pc.bid = static_cast<std::uint16_t>(p.bid());
        pc.local = parse_ip(p.local()).value();
        pc.coa = parse_ip(p.care_of()).value();
        pc.downlink_key = p.downlink_key();
        pc.if_label = static_cast<std::uint8_t>(p.if_label());
        pc.live = !p.has_live() || p.live();
        pc.weight = p.weight_kbps();
        pc.rate_kbps = p.rate_kbps();
        pc.preference = p.preference();
        // Checked with the configuration (runtime/config.cpp): an error here is a bug.
        if (auto r = parse_path_encapsulation(p.udp_port(), static_cast<int>(p.tunnel()), p.mtu(),
                                              pc.coa.family, pc);
            !r) {
            release_path_next_hops(c, next_hops);
            return hag::unexpected(
                fmt::format("session {} path {}: {}", s.id(), p.bid(), r.error()));
        }
        std::optional<MacAddr> mac;
        if (!p.next_hop_mac().empty()) {
            mac = parse_mac(p.next_hop_mac()).value();
        }
        if (auto r = attach_path_next_hop(pc, *port, mac ? &*mac : nullptr, next_hops, cfg); !r) {
            release_path_next_hops(c, next_hops);
            return hag::unexpected(fmt::format("session {}: {}", s.id(), r.error()));
        }
        ++c.n_paths;
        auto* dp = out.session.add_paths();
        dp->set_bid(p.bid());
        dp->set_live(pc.live);
        dp->set_if_label(p.if_label());
        dp->set_weight_kbps(p.weight_kbps());
        dp->set_rate_kbps(p.rate_kbps());
        dp->set_preference(p.preference());
        dp->set_downlink_key(p.downlink_key());
        dp->set_local(p.local());
        dp->set_care_of(p.care_of());
        dp->set_udp_port(p.udp_port());
        dp->set_tunnel(p.tunnel());
        dp->set_mtu(p.mtu());
    }
    // Distributed anchoring: prefixes anchored at other nodes (validated with the config).
    for (const auto& a : s.remote_anchors()) {
        RemoteAnchorConfig& ra = c.anchors[c.n_anchors];
        const Port* port = ports.by_name(a.port());
        if (port == nullptr || port->role != hag::v1::PortConfig::ACCESS) {
            release_path_next_hops(c, next_hops);
            return hag::unexpected(
                fmt::format("session {}: '{}' is not an access port", s.id(), a.port()));
        }
        ra.prefix = parse_ip_prefix(a.prefix()).value();
        ra.local = parse_ip(a.local()).value();
        ra.anchor = parse_ip(a.anchor()).value();
        ra.uplink_key = a.uplink_key();
        ra.downlink_key = a.downlink_key();
        std::optional<MacAddr> mac;
        if (!a.next_hop_mac().empty()) {
            mac = parse_mac(a.next_hop_mac()).value();
        }
        if (auto r = attach_anchor_next_hop(ra, *port, mac ? &*mac : nullptr, next_hops, cfg); !r) {
            release_path_next_hops(c, next_hops);
            return hag::unexpected(fmt::format("session {}: {}", s.id(), r.error()));
        }
        ++c.n_anchors;
        auto* da = out.session.add_remote_anchors();
        da->set_prefix(a.prefix());
        da->set_local(a.local());
        da->set_anchor(a.anchor());
        da->set_uplink_key(a.uplink_key());
        da->set_downlink_key(a.downlink_key());
    }
    return out;
}

// DpStatusReply.counters: ports, stages and drop reasons, named as in /metrics.
std::vector<std::pair<std::string, std::uint64_t>> status_counters(const Snapshot& s) {
    std::vector<std::pair<std::string, std::uint64_t>> out;
    for (const auto& p : s.ports) {
        const std::string l = fmt::format("{{port=\"{}\",role=\"{}\"}}", p.name, p.role);
        for (const auto& [name, v] : std::initializer_list<std::pair<const char*, std::uint64_t>>{
                 {"rx_packets", p.rx_packets},
                 {"tx_packets", p.tx_packets},
                 {"rx_bytes", p.rx_bytes},
                 {"tx_bytes", p.tx_bytes},
                 {"rx_missed", p.rx_missed},
                 {"rx_errors", p.rx_errors},
                 {"tx_errors", p.tx_errors},
                 {"rx_nombuf", p.rx_nombuf},
                 {"worker_rx_packets", p.worker_rx},
                 {"worker_tx_packets", p.worker_tx},
                 {"tx_ring_full_drops", p.tx_ring_full}}) {
            out.emplace_back(fmt::format("hag_port_{}_total{}", name, l), v);
        }
    }
    for (const auto& w : s.worker_stats) {
        const std::string l = fmt::format("{{worker=\"{}\"}}", w.index);
        out.emplace_back("hag_worker_rx_packets_total" + l, w.rx);
        out.emplace_back("hag_worker_tx_packets_total" + l, w.tx);
        out.emplace_back("hag_worker_handoff_handed_total" + l,
                         w.handed_downlink + w.handed_uplink);
        out.emplace_back("hag_worker_handoff_received_total" + l,
                         w.received_downlink + w.received_uplink);
        out.emplace_back("hag_worker_handoff_drops_total" + l, w.handoff_full);
    }
    for (const auto& st : s.stages) {
        const std::string l = fmt::format("{{stage=\"{}\"}}", st.name);
        out.emplace_back("hag_stage_packets_total" + l, st.packets);
        out.emplace_back("hag_stage_forwarded_packets_total" + l, st.forwarded);
        for (const auto& d : st.drops) {
            out.emplace_back(fmt::format("hag_stage_drops_total{{stage=\"{}\",reason=\"{}\"}}",
                                         st.name, d.reason),
                             d.count);
        }
        for (const auto& e : st.events) {
            out.emplace_back(
                fmt::format("hag_stage_events_total{{stage=\"{}\",event=\"{}\"}}", st.name, e.name),
                e.count);
        }
    }
    return out;
}

// The programming API: the service on gRPC threads, the programmer on the main lcore.
struct ProgrammingHooks {
    Programmer* programmer = nullptr;
    MainLoopQueue* queue = nullptr;
};

// Serves the counters (DPDK telemetry, Prometheus, --stats-interval) while the worker runs,
// does the main lcore's table upkeep, waits for the worker once stopped and prints the final
// counters as JSON.
struct ExceptionHooks {
    std::function<bool(std::uint64_t)> service;  // true = did work (do not sleep)
    std::function<std::string()> json;
};

// Waits for every worker lcore to return.
void wait_workers(const std::vector<unsigned>& lcores) {
    for (const unsigned l : lcores) {
        rte_eal_wait_lcore(l);
    }
}

int observe_and_wait(const hag::v1::DataplaneConfig& cfg, const Ports& ports,
                     SessionTable& sessions, Rcu& rcu,
                     const std::vector<std::unique_ptr<Worker>>& workers,
                     const std::vector<unsigned>& worker_lcores, unsigned stats_interval,
                     const ExceptionHooks& exc, const ProgrammingHooks& prog) {
    std::vector<PortInfo> infos;
    for (const auto& p : ports.all()) {
        infos.push_back({p.id, p.name, p.role == hag::v1::PortConfig::CORE ? "core" : "access"});
    }
    Collector collector(std::move(infos), &sessions, &rcu, kCollectorReader);
    for (const auto& w : workers) {
        collector.add_worker(w.get());
    }
    collector.set_policies(workers.front()->downlink.policies);
    TelemetryCommands commands(collector);
    std::unique_ptr<MetricsServer> metrics;
    const auto& tc = cfg.telemetry();
    if (!tc.metrics_listen().empty()) {
        const std::size_t top = tc.metrics_sessions();
        auto m = MetricsServer::start(
            tc.metrics_listen(),
            [&collector, top] {
                return render_prometheus(collector.collect({.top_sessions = top}));
            },
            {.timeout_ms = static_cast<int>(tc.metrics_timeout_ms())});
        if (!m) {
            spdlog::critical("{}", m.error());
            g_stop.store(true);
            wait_workers(worker_lcores);
            return 1;
        }
        metrics = std::move(*m);
        spdlog::info("Prometheus metrics on http://{}/metrics", tc.metrics_listen());
    }
    std::unique_ptr<ProgrammerServer> programmer;
    if (prog.programmer != nullptr && !cfg.programmer_listen().empty()) {
        auto p = ProgrammerServer::start(
            cfg.programmer_listen(), 0660, *prog.programmer, *prog.queue, [&collector] {
                return status_counters(collector.collect({.ethdev = true, .sessions = false}));
            });
        if (!p) {
            spdlog::critical("{}", p.error());
            g_stop.store(true);
            metrics.reset();
            wait_workers(worker_lcores);
            return 1;
        }
        programmer = std::move(*p);
        spdlog::info("programming API (DataplaneProgrammer) on {}", cfg.programmer_listen());
    }
    std::printf("ready\n");
    std::fflush(stdout);
    using Clock = std::chrono::steady_clock;
    auto last = Clock::now();
    Snapshot prev = collector.collect({.ethdev = true, .sessions = false});
    const auto t0 = Clock::now();
    while (!g_stop.load()) {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
        bool busy = exc.service && exc.service(static_cast<std::uint64_t>(ms.count()));
        // Programming requests are applied here, between the other duties of the main lcore.
        busy = (prog.queue != nullptr && prog.queue->run_pending()) || busy;
        if (!busy) {
            const std::chrono::milliseconds idle(exc.service ? 1 : 50);
            if (prog.queue != nullptr) {
                prog.queue->wait(idle);  // wakes at once for a programming request
            } else {
                std::this_thread::sleep_for(idle);
            }
        }
        sessions.reclaim();
        const auto now = Clock::now();
        if (stats_interval != 0 && now - last >= std::chrono::seconds(stats_interval)) {
            Snapshot cur = collector.collect({.ethdev = true, .sessions = false});
            cur.has_sessions = true;
            cur.sessions = sessions.size();  // the main lcore is the table's writer
            spdlog::info("{}", render_summary(cur, &prev,
                                              std::chrono::duration<double>(now - last).count()));
            prev = std::move(cur);
            last = now;
        }
    }
    if (prog.queue != nullptr) {
        prog.queue->close();  // requests still waiting get UNAVAILABLE
    }
    programmer.reset();
    metrics.reset();
    wait_workers(worker_lcores);
    std::string stats = render_json(collector.collect({.top_sessions = 1000}));
    if (exc.json) {  // one more member: "exception": {...}
        stats.pop_back();
        stats += ",\"exception\":" + exc.json() + "}";
    }
    std::printf("%s\n", stats.c_str());
    std::fflush(stdout);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"hag-dataplane: DPDK poll-mode forwarder of the hybrid access gateway"};
    std::string config_path = "/etc/hag/dataplane.conf";
    bool check_only = false;
    app.add_option("-c,--config", config_path, "configuration file (protobuf text format)");
    app.add_flag("--check-config", check_only, "validate the configuration and exit");
    unsigned stats_interval = 0;
    app.add_option("--stats-interval", stats_interval,
                   "log a one-line counter summary every N seconds (0 = off)")
        ->check(CLI::Range(0u, 86400u));
    std::string log_level, log_format;
    app.add_option("--log-level", log_level, "overrides log.level of the configuration")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
    app.add_option("--log-format", log_format,
                   "overrides log.format of the configuration: text or json (one JSON object per "
                   "line)")
        ->check(CLI::IsMember({"text", "json"}));
    app.set_version_flag("--version", std::string("hag-dataplane ") + HAG_VERSION);
    CLI11_PARSE(app, argc, argv);

    auto cfg = load_dataplane_config(config_path);
    if (!cfg) {
        for (const auto& e : cfg.error()) {
            std::fprintf(stderr, "%s\n", e.str().c_str());
        }
        std::fprintf(stderr, "hag-dataplane: %zu error(s) in %s\n", cfg.error().size(),
                     config_path.c_str());
        return 1;
    }
    if (check_only) {
        std::printf("%s: configuration OK (%d port(s), %d static session(s))\n",
                    config_path.c_str(), cfg->ports_size(), cfg->sessions_size());
        return 0;
    }
    const auto format =
        hag::log::parse_format(log_format.empty() ? cfg->log().format() : log_format).value();
    hag::log::init(
        "hag-dataplane",
        hag::log::parse_level(log_level.empty() ? cfg->log().level() : log_level).value(), format);
    if (format == hag::log::Format::kJson) {
        route_dpdk_log_to_spdlog();  // EAL and PMD messages become JSON lines too
    }

    std::vector<std::string> eal_args{"hag-dataplane"};
    for (const auto& a : cfg->eal_args())
        eal_args.push_back(a);
    std::vector<char*> eal_argv;
    for (auto& a : eal_args)
        eal_argv.push_back(a.data());
    if (rte_eal_init(static_cast<int>(eal_argv.size()), eal_argv.data()) < 0) {
        spdlog::critical(
            "EAL initialisation failed: {} (eal_args: check -l/--lcores, -m or "
            "hugepages, --file-prefix)",
            rte_strerror(rte_errno));
        return 1;
    }
    int rc = 0;
    {
        rte_mempool* pool =
            rte_pktmbuf_pool_create("hag_mbufs", cfg->mbufs(), 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                    static_cast<int>(rte_socket_id()));
        if (pool == nullptr) {
            spdlog::critical(
                "cannot create a pool of {} mbufs ({} MiB): {}. Give the EAL more memory "
                "(-m, or reserve hugepages) or lower 'mbufs'",
                cfg->mbufs(), cfg->mbufs() * (RTE_MBUF_DEFAULT_BUF_SIZE + 128) >> 20,
                rte_strerror(rte_errno));
            hag::dp::eal_cleanup();
            return 1;
        }
        auto ports = Ports::open(*cfg, pool, static_cast<std::uint16_t>(cfg->workers()));
        // Readers: worker lcores by lcore id, plus the telemetry collector (kCollectorReader).
        auto rcu = Rcu::create(kCollectorReader + 1);
        if (!ports || !rcu) {
            spdlog::critical("{}", !ports ? ports.error() : rcu.error());
            hag::dp::eal_cleanup();
            return 1;
        }
        auto sessions = SessionTable::create("hag_sessions", cfg->max_sessions(), **rcu);
        if (!sessions) {
            spdlog::critical("{}", sessions.error());
            hag::dp::eal_cleanup();
            return 1;
        }
        auto next_hops = std::make_unique<NextHopTable>(cfg->max_next_hops(), **rcu);
        std::unique_ptr<ExceptionPath> exception;
        if (!cfg->has_exception_path() || cfg->exception_path()) {
            auto e = ExceptionPath::open(*cfg, **ports, *next_hops, pool);
            if (!e) {
                spdlog::critical("exception path: {}", e.error());
                hag::dp::eal_cleanup();
                return 1;
            }
            exception = std::move(*e);
        }
        // Static sessions go through the programmer like programmed ones (docs/programming.md:
        // they are the state at generation 0; control's first resync replaces them).
        // Flow policy profiles (policy/policy_table.hpp), compiled and swapped on this lcore.
        auto policies = std::make_unique<PolicyTable>(**rcu);
        auto programmer = std::make_unique<Programmer>(**sessions, *next_hops, *cfg,
                                                       (*ports)->all(), policies.get());
        MainLoopQueue programming_queue;
        for (const auto& s : cfg->sessions()) {
            auto sc = to_session(s, **ports, *cfg, *next_hops);
            auto r = sc ? programmer->add_static(sc->session, sc->config)
                        : hag::Result<void, std::string>(hag::unexpected(sc.error()));
            if (!r) {
                spdlog::critical("static session {}: {}", s.id(), r.error());
                hag::dp::eal_cleanup();
                return 1;
            }
        }
        spdlog::info("{} static session(s) programmed", cfg->sessions_size());

        const Port* core = (*ports)->first(hag::v1::PortConfig::CORE);
        const Port* access = (*ports)->first(hag::v1::PortConfig::ACCESS);
        const auto n_workers = static_cast<std::uint16_t>(cfg->workers());
        // Worker lcores: the first n_workers lcores after the main one.
        std::vector<unsigned> worker_lcores;
        for (unsigned l = rte_get_next_lcore(-1, 1, 0);
             l < RTE_MAX_LCORE && worker_lcores.size() < n_workers;
             l = rte_get_next_lcore(l, 1, 0)) {
            worker_lcores.push_back(l);
        }
        if (worker_lcores.size() < n_workers) {
            spdlog::critical(
                "{} worker(s) need {} lcores: give the EAL the main lcore and one per worker "
                "(e.g. -l 0-{}); the main lcore never runs the fast path",
                n_workers, n_workers + 1, n_workers);
            hag::dp::eal_cleanup();
            return 1;
        }
        std::unique_ptr<Handoff> handoff;
        if (n_workers > 1) {
            auto h = Handoff::create(n_workers, cfg->handoff_ring(), "hag_handoff");
            if (!h) {
                spdlog::critical("{}", h.error());
                hag::dp::eal_cleanup();
                return 1;
            }
            handoff = std::move(*h);
        }
        // Uplink routes toward further core ports (core_routes).
        auto routes = std::make_unique<CoreRoutes>();
        routes->next_hops = next_hops.get();
        {
            for (const auto& p : (*ports)->all()) {
                if (p.role != hag::v1::PortConfig::CORE || &p == core) {
                    continue;
                }
                bool used = false;
                for (const auto& r : cfg->core_routes()) {
                    used |= r.port() == p.name;
                }
                if (!used) {
                    continue;
                }
                UplinkCtx probe;  // acquire_core_next_hops fills the next hops of a core port
                if (auto r = acquire_core_next_hops(*next_hops, *cfg, p, probe); !r) {
                    spdlog::critical("{}", r.error());
                    hag::dp::eal_cleanup();
                    return 1;
                }
                CoreEgress& e = routes->egress[routes->n_egress];
                e.port = p.id;
                e.src_mac = p.mac;
                e.static_mac = p.next_hop_mac;
                e.next_hop_v4 = probe.core_next_hop_v4;
                e.next_hop_v6 = probe.core_next_hop_v6;
                for (const auto& r : cfg->core_routes()) {
                    if (r.port() == p.name) {
                        CoreRoute& cr = routes->routes[routes->n_routes++];
                        cr.prefix = parse_ip_prefix(r.prefix()).value();
                        cr.egress = static_cast<std::uint8_t>(routes->n_egress);
                    }
                }
                ++routes->n_egress;
            }
        }
        std::vector<std::unique_ptr<Worker>> workers;
        std::vector<std::unique_ptr<Reorder>> reorders;
        std::vector<std::unique_ptr<Reassembly>> reassemblies;
        const ReassemblySettings reassembly = reassembly_settings(*cfg);
        bool failed = false;
        for (std::uint16_t wi = 0; wi < n_workers && !failed; ++wi) {
            auto wp = std::make_unique<Worker>();
            Worker& w = *wp;
            w.index = wi;
            w.txq = wi;
            w.handoff = handoff.get();
            w.rcu = rcu->get();
            w.rcu_thread = worker_lcores[wi];
            w.core_port = core->id;
            w.access_port = access->id;
            w.core_rxq = wi < core->rx_queues ? wi : kNoQueue;
            w.access_rxq = wi < access->rx_queues ? wi : kNoQueue;
            w.stop = &g_stop;
            w.idle_sleep_us = cfg->idle_sleep_us();
            w.downlink.sessions = w.downlink.sessions_rw = sessions->get();
            apply_downlink_settings(*cfg, w.downlink);
            w.downlink.pool = pool;
            w.downlink.fragment_id = static_cast<std::uint32_t>(rte_rand());
            w.core_vlan = port_vlan(*cfg, hag::v1::PortConfig::CORE);
            w.access_vlan = port_vlan(*cfg, hag::v1::PortConfig::ACCESS);
            w.uplink.sessions = w.uplink.sessions_rw = sessions->get();
            w.uplink.core_port = core->id;
            w.uplink.core_src_mac = core->mac;
            w.uplink.core_next_hop_mac = core->next_hop_mac;
            w.uplink.access_mtu = w.downlink.access_mtu;  // relay toward remote anchors
            w.uplink.outer_hop_limit = w.downlink.outer_hop_limit;
            w.downlink.next_hops = w.uplink.next_hops = next_hops.get();
            w.downlink.policies = w.uplink.policies = policies.get();
            w.uplink.nat_port_learning = !cfg->has_nat_port_learning() || cfg->nat_port_learning();
            w.routes = routes.get();
            if (wi == 0) {
                if (auto r = acquire_core_next_hops(*next_hops, *cfg, *core, w.uplink); !r) {
                    spdlog::critical("{}", r.error());
                    failed = true;
                    break;
                }
            } else {
                w.uplink.core_next_hop_v4 = workers.front()->uplink.core_next_hop_v4;
                w.uplink.core_next_hop_v6 = workers.front()->uplink.core_next_hop_v6;
            }
            for (const auto& p : (*ports)->all()) {
                if (&p == core || &p == access) {
                    continue;
                }
                ExtraPort& e = w.extra[w.n_extra++];
                e.id = p.id;
                e.access = p.role == hag::v1::PortConfig::ACCESS;
                e.rxq = wi < p.rx_queues ? wi : kNoQueue;
                for (const auto& pc : cfg->ports()) {
                    if (pc.name() == p.name) {
                        e.vlan = static_cast<std::uint16_t>(pc.vlan_id());
                    }
                }
            }
            // Uplink reorder: always there (a session may turn it on for itself); its buffers
            // are taken only by sessions that reorder. One per worker: the owner of a session
            // holds its packets.
            auto reorder = Reorder::create(reorder_settings(*cfg), **sessions, rte_get_tsc_hz(),
                                           worker_send_core, &w);
            if (!reorder) {
                spdlog::critical("{}", reorder.error());
                failed = true;
                break;
            }
            w.reorder = reorder->get();
            reorders.push_back(std::move(*reorder));
            if (reassembly.enabled) {
                // Outer fragments on access ports: a table per worker.
                auto r = Reassembly::create(reassembly, pool, rte_get_tsc_hz());
                if (!r) {
                    spdlog::critical("{}", r.error());
                    failed = true;
                    break;
                }
                w.reassembly = r->get();
                reassemblies.push_back(std::move(*r));
            }
            if (exception) {
                // Every worker punts (the rings toward the main lcore take many producers);
                // only worker 0 sends what the kernel wrote (single-consumer rings).
                exception->attach_worker(core->id, w.core_exc);
                exception->attach_worker(access->id, w.access_exc);
                w.core_exc.vlan = w.core_vlan;
                w.access_exc.vlan = w.access_vlan;
                for (std::uint16_t i = 0; i < w.n_extra; ++i) {
                    exception->attach_worker(w.extra[i].id, w.extra[i].exc);
                    w.extra[i].exc.vlan = w.extra[i].vlan;
                }
                if (wi != 0) {
                    w.core_exc.from_kernel = w.access_exc.from_kernel = nullptr;
                    for (std::uint16_t i = 0; i < w.n_extra; ++i) {
                        w.extra[i].exc.from_kernel = nullptr;
                    }
                }
            }
            workers.push_back(std::move(wp));
        }
        if (failed) {
            reorders.clear();
            reassemblies.clear();
            hag::dp::eal_cleanup();
            return 1;
        }

        std::signal(SIGINT, on_signal);
        std::signal(SIGTERM, on_signal);
        // Every worker is a registered RCU reader before any of them runs, so a grace period
        // (table reclamation) always waits for all of them.
        for (const auto& w : workers) {
            rcu->get()->register_reader(w->rcu_thread);
        }
        for (const auto& w : workers) {
            rte_eal_remote_launch(worker_main, w.get(), w->rcu_thread);
        }
        std::string where;
        for (const unsigned l : worker_lcores) {
            where += (where.empty() ? "" : ",") + std::to_string(l);
        }
        std::string names;
        for (const auto& p : (*ports)->all()) {
            names +=
                fmt::format("{}{} ({}, {} RX queue(s))", names.empty() ? "" : ", ", p.name,
                            p.role == hag::v1::PortConfig::CORE ? "core" : "access", p.rx_queues);
        }
        spdlog::info("forwarding: {} worker(s) on lcore(s) {}; ports {}", n_workers, where, names);
        // Exception path service on the main lcore (TAP I/O, neighbour events), and its
        // counters as one more member of the exit JSON.
        ExceptionHooks hooks;
        if (exception) {
            hooks.service = [&exception](std::uint64_t ms) { return exception->service(ms); };
            hooks.json = [&exception, &workers] {
                std::map<std::uint16_t, std::vector<const PuntCtx*>> m;
                for (const auto& w : workers) {
                    m[w->core_port].push_back(&w->core_exc);
                    m[w->access_port].push_back(&w->access_exc);
                    for (std::uint16_t i = 0; i < w->n_extra; ++i) {
                        m[w->extra[i].id].push_back(&w->extra[i].exc);
                    }
                }
                return exception->json(m);
            };
        }
        rc = observe_and_wait(*cfg, **ports, **sessions, **rcu, workers, worker_lcores,
                              stats_interval, hooks, {programmer.get(), &programming_queue});
        spdlog::info("stopped");
        reorders.clear();      // the workers have freed what they held; nothing is left
        reassemblies.clear();  // frees fragments still waiting
        handoff.reset();       // frees what is still in the hand-over rings
        exception.reset();
        programmer.reset();
        sessions->reset();
        next_hops.reset();
        rcu->reset();
        ports->reset();
        rte_mempool_free(pool);
    }
    hag::dp::eal_cleanup();
    return rc;
}
