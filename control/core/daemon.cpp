#include "daemon.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "binding_cache.hpp"
#include "config.hpp"
#include "dpclient/pusher.hpp"
#include "hag/log/log.hpp"
#include "hag/mh/timestamp.hpp"
#include "lma.hpp"
#include "mgmt/cache_backend.hpp"
#include "mgmt/server.hpp"
#include "signalling_io.hpp"

namespace hag::control {

namespace {

LmaTime clock_now() {
    using namespace std::chrono;
    const auto mono = steady_clock::now().time_since_epoch();
    LmaTime t;
    t.now = static_cast<Seconds>(duration_cast<seconds>(mono).count());
    t.now_ms = duration_cast<milliseconds>(mono).count();
    t.timestamp = mh::timestamp_now();
    return t;
}

// RFC 5847 §5.2: the counter must change on every restart. Wall-clock seconds do, as long as
// the clock does not step back across a restart; no state file is needed.
std::uint32_t restart_counter() {
    using namespace std::chrono;
    return static_cast<std::uint32_t>(
        duration_cast<seconds>(system_clock::now().time_since_epoch()).count());
}

// The management Backend of the daemon: the cache backend plus the LMA's and the transport's
// counters.
class DaemonBackend final : public mgmt::Backend {
  public:
    DaemonBackend(mgmt::CacheBackend& inner,
                  std::function<void(std::map<std::string, std::uint64_t>&)> extra,
                  std::function<std::optional<mgmt::DataplaneSync>()> dataplane)
        : inner_(inner), extra_(std::move(extra)), dataplane_(std::move(dataplane)) {}
    mgmt::BindingPage list(const mgmt::BindingFilter& f, std::uint64_t cursor,
                           std::size_t limit) override {
        return inner_.list(f, cursor, limit);
    }
    std::optional<Session> get(const std::string& nai) override { return inner_.get(nai); }
    Result<mgmt::DeleteOutcome, CacheError> remove(const std::string& nai,
                                                   std::uint16_t bid) override {
        return inner_.remove(nai, bid);
    }
    std::vector<std::pair<std::string, std::uint64_t>> counters() override {
        auto base = inner_.counters();
        std::map<std::string, std::uint64_t> all(base.begin(), base.end());
        extra_(all);
        return {all.begin(), all.end()};
    }
    std::uint64_t subscribe(mgmt::WatchCallback cb) override {
        return inner_.subscribe(std::move(cb));
    }
    void unsubscribe(std::uint64_t id) override { inner_.unsubscribe(id); }
    Seconds now() override { return inner_.now(); }
    std::optional<mgmt::DataplaneSync> dataplane_sync() override { return dataplane_(); }
    std::shared_ptr<const PolicySnapshot> policy() override { return inner_.policy(); }

  private:
    mgmt::CacheBackend& inner_;
    std::function<void(std::map<std::string, std::uint64_t>&)> extra_;
    std::function<std::optional<mgmt::DataplaneSync>()> dataplane_;
};

}  // namespace

std::string management_listen_address(const std::string& configured) {
    if (!configured.empty() && configured.front() == '/') {
        return "unix:" + configured;
    }
    return configured;
}

struct Daemon::Impl {
    explicit Impl(v1::ControlConfig c, DaemonOptions o)
        : opts(std::move(o)),
          cache(c.limits().max_sessions()),
          lma(c, cache, restart_counter()),
          cache_backend(
              cache, [this](const Session& s, const Path& p) { return revoke(s, p); },
              [] { return clock_now().now; }),
          backend(
              cache_backend, [this](std::map<std::string, std::uint64_t>& m) { add_counters(m); },
              [this] { return dataplane_sync(); }),
          timer(io),
          signals(io, SIGINT, SIGTERM, SIGHUP),
          addresses(c.lma_addresses().begin(), c.lma_addresses().end()),
          cfg(std::move(c)) {}

    // Management deletes (gRPC thread, under the cache lock): a BRI per removed path, sent from
    // the signalling thread.
    bool revoke(const Session& s, const Path& p) {
        auto outs = lma.revoke(s, &p, kRevocationTriggerAdministrative, clock_now());
        if (outs.empty()) {
            return false;
        }
        boost::asio::post(io, [this, outs = std::move(outs)] { sigio->send(outs); });
        return true;
    }

    void add_counters(std::map<std::string, std::uint64_t>& m) {
        cache_backend.with_cache([&](BindingCache&) {
            for (const auto& [k, v] : lma.counters()) {
                m[k] += v;
            }
            return 0;
        });
        const auto c = sigio->counters();
        m["signalling.rx"] = c.rx;
        m["signalling.tx"] = c.tx;
        m["signalling.rx_batches"] = c.rx_batches;
        m["signalling.rx_udp_malformed"] = c.rx_udp_bad;
        m["signalling.rx_truncated"] = c.rx_truncated;
        m["signalling.tx_errors"] = c.tx_errors;
        m["signalling.tx_no_socket"] = c.tx_no_socket;
        if (pusher) {
            const auto p = pusher->status();
            m["dataplane.connected"] = p.connected ? 1 : 0;
            m["dataplane.generation"] = p.generation;
            m["dataplane.sessions"] = p.sessions;
            m["dataplane.pending"] = p.pending;
            m["dataplane.batches"] = p.batches;
            m["dataplane.changes"] = p.changes;
            m["dataplane.resyncs"] = p.resyncs;
            m["dataplane.resync_sessions"] = p.resync_sessions;
            m["dataplane.resync_ms"] = p.resync_ms;
            m["dataplane.digest_checks"] = p.digest_checks;
            m["dataplane.digest_mismatches"] = p.digest_mismatches;
            m["dataplane.rejected"] = p.rejected;
            m["dataplane.refused_sessions"] = p.refused_now;
            m["dataplane.errors"] = p.errors;
            m["dataplane.holding"] = p.holding ? 1 : 0;
            m["dataplane.holds"] = p.holds;
            m["dataplane.held_sessions"] = p.held_sessions;
        }
    }

    std::optional<mgmt::DataplaneSync> dataplane_sync() {
        if (!pusher) {
            return std::nullopt;
        }
        const auto p = pusher->status();
        mgmt::DataplaneSync d;
        d.target = pusher->target();
        d.connected = p.connected;
        d.generation = p.generation;
        d.sessions = static_cast<std::uint32_t>(p.sessions);
        d.digest = p.digest;
        d.pending = p.pending;
        d.rejected = static_cast<std::uint32_t>(p.refused_now);
        d.resync_hold_ms =
            p.holding
                ? static_cast<std::uint64_t>(std::max<std::int64_t>(p.hold_remaining.count(), 1))
                : 0;
        return d;
    }

    void on_receive(std::span<const std::uint8_t> mh, const Peer& from) {
        auto outs = cache_backend.with_cache(
            [&](BindingCache&) { return lma.receive(mh, from, clock_now()); });
        sigio->send(outs);
    }

    void arm_timer() {
        timer.expires_after(std::chrono::seconds(1));
        timer.async_wait([this](const boost::system::error_code& ec) {
            if (ec) {
                return;
            }
            auto outs =
                cache_backend.with_cache([&](BindingCache&) { return lma.tick(clock_now()); });
            sigio->send(outs);
            arm_timer();
        });
    }

    void arm_signals() {
        signals.async_wait([this](const boost::system::error_code& ec, int sig) {
            if (ec) {
                return;
            }
            if (sig == SIGHUP) {
                reload();
                arm_signals();
                return;
            }
            spdlog::info(
                "signal {}: shutting down ({} sessions in the binding cache are dropped; "
                "MAGs re-register after the restart counter changes)",
                sig, cache_backend.with_cache([](BindingCache& c) { return c.size(); }));
            timer.cancel();
            if (server) {
                server->shutdown();
            }
            if (pusher) {
                pusher->stop();
            }
            io.stop();
        });
    }

    void reload() {
        auto c = load_control_config(opts.config_path);
        if (!c) {
            for (const auto& e : c.error()) {
                spdlog::error("reload: {}", e.str());
            }
            spdlog::error("reload: {} error(s) in {}; keeping the running configuration",
                          c.error().size(), opts.config_path);
            return;
        }
        std::vector<std::string> now_addrs(c->lma_addresses().begin(), c->lma_addresses().end());
        if (now_addrs != addresses) {
            spdlog::warn(
                "reload: lma_addresses changed; signalling sockets stay on the old "
                "addresses until hag-control restarts");
        }
        if (c->management_socket() != cfg.management_socket()) {
            spdlog::warn("reload: management_socket changed; takes effect at restart");
        }
        if (c->dataplane_socket() != cfg.dataplane_socket()) {
            spdlog::warn("reload: dataplane_socket changed; takes effect at restart");
        }
        if (auto lvl = log::parse_level(c->log().level())) {
            spdlog::set_level(*lvl);
        }
        cfg = *c;
        cache_backend.set_policy(PolicySnapshot::build(cfg));
        auto outs = cache_backend.with_cache(
            [&](BindingCache&) { return lma.reload(*std::move(c), clock_now()); });
        spdlog::info("reload: {} applied ({} revocation(s) for withdrawn pools)", opts.config_path,
                     outs.size());
        sigio->send(outs);
    }

    DaemonOptions opts;
    boost::asio::io_context io;
    BindingCache cache;
    Lma lma;
    mgmt::CacheBackend cache_backend;
    DaemonBackend backend;
    boost::asio::steady_timer timer;
    boost::asio::signal_set signals;
    std::vector<std::string> addresses;
    v1::ControlConfig cfg;
    std::unique_ptr<SignallingIo> sigio;
    std::unique_ptr<mgmt::ManagementServer> server;
    std::unique_ptr<dpclient::Pusher> pusher;  // destroyed before the cache it observes
};

Daemon::Daemon(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Daemon::~Daemon() {
    if (impl_ && impl_->server) {
        impl_->server->shutdown();
    }
    if (impl_ && impl_->pusher) {
        impl_->pusher->stop();
    }
}

Result<std::unique_ptr<Daemon>, std::string> Daemon::start(v1::ControlConfig cfg,
                                                           DaemonOptions opts) {
    auto impl = std::make_unique<Impl>(std::move(cfg), std::move(opts));
    Impl& d = *impl;
    auto io = SignallingIo::open(
        d.io, d.addresses,
        [&d](std::span<const std::uint8_t> mh, const Peer& from) { d.on_receive(mh, from); },
        static_cast<std::uint16_t>(d.opts.udp_port.value_or(kPmipUdpPort)));
    if (!io) {
        return unexpected("signalling: " + io.error());
    }
    d.sigio = std::move(*io);
    d.cache_backend.set_policy(PolicySnapshot::build(d.cfg));

    std::string dp = "no data plane";
    if (!d.cfg.dataplane_socket().empty()) {
        dpclient::PusherOptions po;
        po.target = management_listen_address(d.cfg.dataplane_socket());
        po.resync_hold = std::chrono::seconds(d.cfg.dataplane_resync_hold_seconds());
        d.pusher = std::make_unique<dpclient::Pusher>(d.cache_backend, po);
        dp = "data plane at " + po.target;
    }

    mgmt::ServerOptions so;
    so.listen = d.opts.listen.value_or(management_listen_address(d.cfg.management_socket()));
    so.socket_mode = d.cfg.management_socket_mode();
    if (so.listen.rfind("unix:", 0) == 0) {
        const std::filesystem::path dir = std::filesystem::path(so.listen.substr(5)).parent_path();
        std::error_code ec;
        if (!dir.empty() && !std::filesystem::exists(dir, ec)) {
            std::filesystem::create_directories(dir, ec);
            if (ec) {
                return unexpected(
                    fmt::format("management: cannot create {}: {}", dir.string(), ec.message()));
            }
        }
    }
    auto srv = mgmt::ManagementServer::start(d.backend, so);
    if (!srv) {
        return unexpected("management: " + srv.error());
    }
    d.server = std::move(*srv);

    std::string where;
    for (const auto& s : d.sigio->describe()) {
        where += (where.empty() ? "" : ", ") + s;
    }
    spdlog::info("signalling on {}; management API on {}; {}", where, so.listen, dp);
    if (d.pusher) {
        // Start-up hold (docs/programming.md "Restarts"): a binding cache restored from
        // persistent state ends it: call d.pusher->cache_restored() once the restored sessions
        // are in the cache (before or after start()).
        d.pusher->start();
    }
    d.arm_timer();
    d.arm_signals();
    return std::make_unique<Daemon>(std::move(impl));
}

int Daemon::run() {
    std::printf("hag-control ready\n");
    std::fflush(stdout);
    impl_->io.run();
    return 0;
}

}  // namespace hag::control
