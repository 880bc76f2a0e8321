// hag-dataplane: the DPDK poll-mode forwarder.
//
//   hag-dataplane --config FILE [--check-config]
//
// Starts the EAL with the file's eal_args plus one --vdev per virtual port, opens the ports,
// programs the static sessions, runs one worker until SIGINT/SIGTERM, then prints its counters
// as one JSON line on stdout.
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <CLI/CLI.hpp>

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <thread>

#include "exception/exception_path.hpp"
#include "hag/log/log.hpp"
#include "runtime/config.hpp"
#include "runtime/ports.hpp"
#include "runtime/text.hpp"
#include "runtime/worker.hpp"

namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) {
    g_stop.store(true);
}

using namespace hag::dp;

hag::Result<SessionConfig, std::string> to_session(const hag::v1::StaticSession& s,
                                                   const Ports& ports,
                                                   const hag::v1::DataplaneConfig& cfg,
                                                   NextHopTable& next_hops) {
    SessionConfig c;
    c.uplink_key = s.uplink_key();
    c.gre_sequence = !s.has_gre_sequence() || s.gre_sequence();
    for (const auto& text : s.prefixes()) {
        c.prefixes[c.n_prefixes++] = parse_ip_prefix(text).value();
    }
    for (const auto& p : s.paths()) {
        PathConfig& pc = c.paths[c.n_paths++];
        const Port* port = ports.by_name(p.port());
        if (port == nullptr || port->role != hag::v1::PortConfig::ACCESS) {
            return hag::unexpected(
                fmt::format("session {}: '{}' is not an access port", s.id(), p.port()));
        }
        pc.bid = static_cast<std::uint16_t>(p.bid());
        pc.local = parse_ip(p.local()).value();
        pc.coa = parse_ip(p.care_of()).value();
        pc.downlink_key = p.downlink_key();
        pc.if_label = static_cast<std::uint8_t>(p.if_label());
        pc.port = port->id;
        pc.src_mac = port->mac;
        if (!p.next_hop_mac().empty()) {
            pc.next_hop_mac = parse_mac(p.next_hop_mac()).value();
        } else if (auto nh = acquire_next_hop(next_hops, cfg, *port, pc.coa); nh) {
            pc.next_hop = *nh;
        } else {
            return hag::unexpected(fmt::format("session {}: {}", s.id(), nh.error()));
        }
    }
    return c;
}

template <typename Names, typename Counters>
std::string drops_json(const Names& names, const Counters& counters) {
    std::string out = "{";
    for (std::size_t i = 0; i < names.size(); ++i) {
        out += fmt::format("{}\"{}\":{}", i ? "," : "", names[i], counters[i]);
    }
    return out + "}";
}

std::string stats_json(const Worker& w, const SessionTable& sessions,
                       const hag::v1::DataplaneConfig& cfg) {
    std::string s = fmt::format(
        "{{\"downlink\":{{\"encapsulated\":{},\"drops\":{},\"cycles_per_packet\":{:.1f}}},"
        "\"uplink\":{{\"decapsulated\":{},\"drops\":{},\"cycles_per_packet\":{:.1f}}},"
        "\"ports\":{{\"core\":{{\"rx\":{},\"tx\":{},\"tx_full\":{}}},"
        "\"access\":{{\"rx\":{},\"tx\":{},\"tx_full\":{}}}}},\"sessions\":{{",
        w.downlink.encapsulated, drops_json(DownlinkDrop_names, w.downlink.drops),
        w.downlink.cycles.packets
            ? double(w.downlink.cycles.cycles) / double(w.downlink.cycles.packets)
            : 0.0,
        w.uplink.decapsulated, drops_json(UplinkDrop_names, w.uplink.drops),
        w.uplink.cycles.packets ? double(w.uplink.cycles.cycles) / double(w.uplink.cycles.packets)
                                : 0.0,
        w.core.rx, w.core.tx, w.core.tx_full, w.access.rx, w.access.tx, w.access.tx_full);
    bool first = true;
    for (const auto& ss : cfg.sessions()) {
        const SessionState& st = sessions.state(ss.id());
        s += fmt::format("{}\"{}\":{{\"downlink_packets\":{},\"uplink_packets\":{}}}",
                         first ? "" : ",", ss.id(), st.downlink_packets.load(),
                         st.uplink_packets.load());
        first = false;
    }
    return s + "}}";
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"hag-dataplane: DPDK poll-mode forwarder of the hybrid access gateway"};
    std::string config_path = "/etc/hag/dataplane.conf";
    bool check_only = false;
    app.add_option("-c,--config", config_path, "configuration file (protobuf text format)");
    app.add_flag("--check-config", check_only, "validate the configuration and exit");
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
    hag::log::init("hag-dataplane", hag::log::parse_level(cfg->log().level()).value());

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
            rte_eal_cleanup();
            return 1;
        }
        auto ports = Ports::open(*cfg, pool);
        auto rcu = Rcu::create(RTE_MAX_LCORE);
        if (!ports || !rcu) {
            spdlog::critical("{}", !ports ? ports.error() : rcu.error());
            rte_eal_cleanup();
            return 1;
        }
        auto sessions = SessionTable::create("hag_sessions", cfg->max_sessions(), **rcu);
        if (!sessions) {
            spdlog::critical("{}", sessions.error());
            rte_eal_cleanup();
            return 1;
        }
        auto next_hops = std::make_unique<NextHopTable>(cfg->max_next_hops(), **rcu);
        std::unique_ptr<ExceptionPath> exception;
        if (!cfg->has_exception_path() || cfg->exception_path()) {
            auto e = ExceptionPath::open(*cfg, **ports, *next_hops, pool);
            if (!e) {
                spdlog::critical("exception path: {}", e.error());
                rte_eal_cleanup();
                return 1;
            }
            exception = std::move(*e);
        }
        for (const auto& s : cfg->sessions()) {
            auto sc = to_session(s, **ports, *cfg, *next_hops);
            auto r = sc ? (*sessions)->upsert(s.id(), *sc)
                        : hag::Result<void, std::string>(hag::unexpected(sc.error()));
            if (!r) {
                spdlog::critical("static session {}: {}", s.id(), r.error());
                rte_eal_cleanup();
                return 1;
            }
        }
        spdlog::info("{} static session(s) programmed", cfg->sessions_size());

        const Port* core = (*ports)->first(hag::v1::PortConfig::CORE);
        const Port* access = (*ports)->first(hag::v1::PortConfig::ACCESS);
        Worker w;
        w.rcu = rcu->get();
        w.core_port = core->id;
        w.access_port = access->id;
        w.stop = &g_stop;
        w.downlink.sessions = w.downlink.sessions_rw = sessions->get();
        w.downlink.access_mtu = static_cast<std::uint16_t>(cfg->access_mtu());
        w.uplink.sessions = w.uplink.sessions_rw = sessions->get();
        w.uplink.core_port = core->id;
        w.uplink.core_src_mac = core->mac;
        w.uplink.core_next_hop_mac = core->next_hop_mac;
        w.downlink.next_hops = w.uplink.next_hops = next_hops.get();
        if (auto r = acquire_core_next_hops(*next_hops, *cfg, *core, w.uplink); !r) {
            spdlog::critical("{}", r.error());
            rte_eal_cleanup();
            return 1;
        }
        if (exception) {
            w.core_exc = exception->worker_ctx(core->id);
            w.access_exc = exception->worker_ctx(access->id);
        }

        std::signal(SIGINT, on_signal);
        std::signal(SIGTERM, on_signal);
        const unsigned worker_lcore = rte_get_next_lcore(-1, 1, 0);
        if (worker_lcore >= RTE_MAX_LCORE) {
            spdlog::critical(
                "no worker lcore: give the EAL at least two lcores (e.g. -l 0-1); the "
                "main lcore never runs the fast path");
            rc = 1;
        } else {
            w.rcu_thread = worker_lcore;
            rte_eal_remote_launch(worker_main, &w, worker_lcore);
            spdlog::info("forwarding: worker on lcore {}, core port {} <-> access port {}",
                         worker_lcore, core->name, access->name);
            std::printf("ready\n");
            std::fflush(stdout);
            const auto t0 = std::chrono::steady_clock::now();
            while (!g_stop.load()) {
                const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - t0);
                if (!exception || !exception->service(static_cast<std::uint64_t>(now.count()))) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(exception ? 1 : 50));
                }
                (*sessions)->reclaim();
            }
            rte_eal_wait_lcore(worker_lcore);
            std::string stats = stats_json(w, **sessions, *cfg);
            if (exception) {  // one more member: "exception": {...}
                stats.pop_back();
                stats +=
                    ",\"exception\":" +
                    exception->json({{core->id, {&w.core_exc}}, {access->id, {&w.access_exc}}}) +
                    "}";
            }
            std::printf("%s\n", stats.c_str());
            std::fflush(stdout);
            spdlog::info("stopped");
        }
        exception.reset();
        sessions->reset();
        next_hops.reset();
        rcu->reset();
        ports->reset();
        rte_mempool_free(pool);
    }
    rte_eal_cleanup();
    return rc;
}
