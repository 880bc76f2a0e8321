#include "daemon.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <grpcpp/grpcpp.h>
#include <algorithm>
#include <atomic>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <thread>

#include "binding_cache.hpp"
#include "cluster_lookups.hpp"
#include "cluster_record.hpp"
#include "config.hpp"
#include "dpclient/pusher.hpp"
#include "etcd_policy.hpp"
#include "etcd_store.hpp"
#include "hag/log/log.hpp"
#include "hag/mh/timestamp.hpp"
#include "hag/v1/dataplane.grpc.pb.h"
#include "lma.hpp"
#include "mgmt/cache_backend.hpp"
#include "mgmt/server.hpp"
#include "policy_edit.hpp"
#include "signalling_io.hpp"
#include "store.hpp"
#include "store_format.hpp"

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

std::int64_t wall_seconds() {
    using namespace std::chrono;
    return duration_cast<seconds>(system_clock::now().time_since_epoch()).count();
}

// Monotonic -> wall-clock seconds, for path expiries written to the store.
std::int64_t to_wall() {
    return wall_seconds() - clock_now().now;
}

// A binding read from the cluster store (wall-clock path expiries) on the monotonic clock of
// the binding cache: none when the key was absent or its lifetime is over; errors kept.
Result<std::optional<Session>, std::string> on_monotonic_clock(
    Result<std::optional<Session>, std::string> r) {
    if (!r) {
        return unexpected(r.error());
    }
    if (!*r) {
        return std::optional<Session>{};
    }
    std::vector<Session> one;
    one.push_back(std::move(**r));
    store::to_monotonic(one, wall_seconds(), clock_now().now);
    if (one.empty()) {
        return std::optional<Session>{};  // its lifetime is over
    }
    return std::optional<Session>{std::move(one.front())};
}

// RFC 5847 §5.2: a peer learns from a changed Restart Counter that the LMA restarted and lost
// its bindings. When the binding cache was restored from the store nothing was lost: the
// previous counter is kept, so MAGs do not re-register. Otherwise (first start, persistence
// off, state discarded) a new value: wall-clock seconds, different from the previous one.
std::uint32_t restart_counter(const std::optional<std::uint32_t>& previous, bool restored) {
    if (previous && restored) {
        return *previous;
    }
    auto c = static_cast<std::uint32_t>(wall_seconds());
    if (previous && c == *previous) {
        ++c;
    }
    return c;
}

// The management Backend of the daemon: the cache backend plus the LMA's and the transport's
// counters.
class DaemonBackend final : public mgmt::Backend {
  public:
    DaemonBackend(mgmt::CacheBackend& inner,
                  std::function<void(std::map<std::string, std::uint64_t>&)> extra,
                  std::function<std::optional<mgmt::DataplaneSync>()> dataplane,
                  std::function<void()> commit,
                  std::function<std::optional<Placement>(const std::string&)> placement)
        : inner_(inner),
          extra_(std::move(extra)),
          dataplane_(std::move(dataplane)),
          commit_(std::move(commit)),
          placement_(std::move(placement)) {}
    mgmt::BindingPage list(const mgmt::BindingFilter& f, std::uint64_t cursor,
                           std::size_t limit) override {
        return inner_.list(f, cursor, limit);
    }
    std::optional<Session> get(const std::string& nai) override { return inner_.get(nai); }
    Result<mgmt::DeleteOutcome, CacheError> remove(const std::string& nai,
                                                   std::uint16_t bid) override {
        auto r = inner_.remove(nai, bid);
        commit_();  // the removal is durable before the caller hears of it
        return r;
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
    std::optional<Placement> placement(const std::string& nai) override { return placement_(nai); }
    Result<v1::EditPolicyReply, PolicyEditError> edit_policy(
        const v1::EditPolicyRequest& req) override {
        return inner_.edit_policy(req);
    }
    std::optional<Session> get_by_id(std::uint32_t id) override { return inner_.get_by_id(id); }
    std::optional<std::uint32_t> session_id(const std::string& nai) override {
        return inner_.session_id(nai);
    }
    std::map<std::string, std::uint32_t> profile_sessions(const PolicySnapshot& p,
                                                          std::size_t max) override {
        return inner_.profile_sessions(p, max);
    }
    std::optional<v1::DpPolicyStats> dataplane_policy_stats(std::uint32_t id) override {
        return dp_stats_ ? dp_stats_(id) : std::nullopt;
    }
    void set_dataplane_stats(std::function<std::optional<v1::DpPolicyStats>(std::uint32_t)> f) {
        dp_stats_ = std::move(f);
    }

  private:
    std::function<std::optional<v1::DpPolicyStats>(std::uint32_t)> dp_stats_;
    mgmt::CacheBackend& inner_;
    std::function<void(std::map<std::string, std::uint64_t>&)> extra_;
    std::function<std::optional<mgmt::DataplaneSync>()> dataplane_;
    std::function<void()> commit_;
    std::function<std::optional<Placement>(const std::string&)> placement_;
};

// The cluster store's options from the configuration (files read here).
Result<store::EtcdOptions, std::string> etcd_options(const v1::StoreConfig& c) {
    store::EtcdOptions o;
    o.endpoint = c.etcd_endpoints(0);  // at least one (checked with the configuration)
    o.prefix = c.etcd_prefix();
    o.node = c.node_name();
    o.timeout = std::chrono::milliseconds(c.etcd_timeout_ms());
    auto read = [](const std::string& path, std::string& out) -> Result<void, std::string> {
        if (path.empty()) {
            return {};
        }
        std::ifstream f(path, std::ios::binary);
        if (!f) {
            return unexpected("cannot read " + path);
        }
        out.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
        return {};
    };
    for (auto [path, out] : {std::pair{&c.etcd_tls_ca(), &o.tls_ca_pem},
                             std::pair{&c.etcd_tls_cert(), &o.tls_cert_pem},
                             std::pair{&c.etcd_tls_key(), &o.tls_key_pem}}) {
        if (auto r = read(*path, *out); !r) {
            return unexpected(r.error());
        }
    }
    return o;
}

}  // namespace

std::string management_listen_address(const std::string& configured) {
    if (!configured.empty() && configured.front() == '/') {
        return "unix:" + configured;
    }
    return configured;
}

struct Daemon::Impl {
    Impl(v1::ControlConfig c, DaemonOptions o, std::unique_ptr<store::BindingStore> st,
         store::EtcdStore* etcd_store, std::uint32_t restart)
        : opts(std::move(o)),
          store(std::move(st)),
          etcd(etcd_store),
          cache(c.limits().max_sessions()),
          lma(c, cache, restart),
          cache_backend(
              cache, [this](const Session& s, const Path& p) { return revoke(s, p); },
              [] { return clock_now().now; }),
          backend(
              cache_backend, [this](std::map<std::string, std::uint64_t>& m) { add_counters(m); },
              [this] { return dataplane_sync(); }, [this] { commit_store(); },
              [this](const std::string& nai) -> std::optional<mgmt::Backend::Placement> {
                  const auto role = cfg.central_db().role();
                  if (role == v1::CENTRAL_DB_CMD) {
                      // The directory: NODE = the serving MAAR (its relay path), ANCHOR per
                      // prefix (its prefix anchors).
                      return mgmt::Backend::Placement{"", ""};
                  }
                  if (role == v1::CENTRAL_DB_MAAR) {
                      const Session* s = cache.find(nai);
                      const bool relay = s != nullptr && !s->paths.empty() && s->paths[0].relay;
                      const std::string& me = cfg.central_db().node_name();
                      return mgmt::Backend::Placement{relay ? "" : me, me};
                  }
                  if (etcd == nullptr) {
                      return std::nullopt;
                  }
                  auto p = etcd->placement(nai);
                  if (!p) {
                      // Not written by this node: anchored here for another node serving it
                      // (distributed anchoring), or not in the cluster store.
                      return mgmt::Backend::Placement{"", etcd->node()};
                  }
                  return mgmt::Backend::Placement{p->node, p->anchor};
              }),
          timer(io),
          cd_timer(io),
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

    // --- persistence (docs/reliability.md) ---

    // Every change of the cache becomes a record in the store's commit buffer. Observers run
    // under the cache lock, in the order of the changes.
    void observe_for_store() {
        cache.add_observer([this](const CacheEvent& ev) {
            const bool relayed = std::any_of(ev.session->paths.begin(), ev.session->paths.end(),
                                             [](const Path& p) { return p.relay; });
            if (relayed && etcd != nullptr &&
                (ev.kind == CacheEvent::Kind::kAdded || ev.kind == CacheEvent::Kind::kUpdated)) {
                // Distributed anchoring: another node serves this subscriber and writes its
                // key; this node only anchors an old prefix for it (docs/scale-out.md).
                etcd->disown(ev.session->nai);
            } else if (ev.kind == CacheEvent::Kind::kAdded ||
                       ev.kind == CacheEvent::Kind::kUpdated) {
                store->put(*ev.session, to_wall());
            } else {
                store->remove(ev.session->nai);
            }
        });
    }

    // Writes and syncs what the store buffered; false if that failed (logged).
    bool commit_store() {
        if (!store) {
            return true;
        }
        if (auto r = store->commit(); !r) {
            ++store_commit_failures;
            spdlog::error("store: {}", r.error());
            return false;
        }
        return true;
    }

    // Replies leave only after the changes they acknowledge are durable: they are held until
    // the end of this Asio turn, then handed to the syncer thread, whose next write +
    // fdatasync covers every change made before (group commit). Signalling goes on meanwhile:
    // PBUs arriving during a sync are processed and their replies wait for the next one.
    void send_durable(std::vector<Outbound> outs) {
        if (!store) {
            sigio->send(outs);
            return;
        }
        held.insert(held.end(), std::make_move_iterator(outs.begin()),
                    std::make_move_iterator(outs.end()));
        if (!flush_posted) {
            flush_posted = true;
            boost::asio::post(io, [this] { flush_held(); });
        }
    }

    void flush_held() {
        flush_posted = false;
        {
            std::lock_guard lk(sync_mu);
            sync_queue.push_back(std::move(held));
        }
        held.clear();
        sync_cv.notify_one();
    }

    // The syncer thread: commits the store, then posts the replies that waited for it back to
    // the signalling thread (in order).
    void sync_loop() {
        for (;;) {
            std::vector<std::vector<Outbound>> batch;
            {
                std::unique_lock lk(sync_mu);
                sync_cv.wait(lk, [this] { return sync_stop || !sync_queue.empty(); });
                if (sync_queue.empty()) {
                    return;  // stopping, nothing left
                }
                batch.swap(sync_queue);
            }
            if (!commit_store()) {
                // Not durable: nothing is acknowledged. MAGs retransmit their PBUs.
                std::size_t n = 0;
                for (const auto& b : batch) {
                    n += b.size();
                }
                if (n > 0) {
                    spdlog::error("store: {} repl(ies) withheld because the change is not durable",
                                  n);
                }
                store_replies_withheld += n;
                continue;
            }
            boost::asio::post(io, [this, batch = std::move(batch)] {
                for (const auto& outs : batch) {
                    sigio->send(outs);
                }
            });
        }
    }

    void stop_syncer() {
        if (!syncer.joinable()) {
            return;
        }
        {
            std::lock_guard lk(sync_mu);
            sync_stop = true;
        }
        sync_cv.notify_one();
        syncer.join();
    }

    ~Impl() { stop_syncer(); }

    // Cluster store: bindings another node took over are forgotten here (cache and data
    // plane), without writing anything.
    void forget_lost() {
        if (etcd == nullptr) {
            return;
        }
        for (const auto& nai : etcd->take_lost()) {
            // Its prefixes and keys stay claimed here while the other node holds them
            // (Lma::hold_foreign): this node must not hand them out again.
            const bool removed = cache_backend.with_cache([&](BindingCache& c) {
                const Session* s = c.find(nai);
                if (s == nullptr) {
                    return false;
                }
                const Session copy = *s;
                (void)c.remove(nai);
                lma.hold_foreign(copy, clock_now().now);
                return true;
            });
            spdlog::warn("cluster: session {} is served by another node now; {}", nai,
                         removed ? "removed here" : "already gone here");
        }
    }

    void maybe_checkpoint(Seconds now) {
        if (!store || !store->checkpoints()) {
            return;
        }
        const auto st = store->stats();
        const bool changed = st.log_bytes > store::kHeaderSize || store->pending();
        const bool due =
            now - last_checkpoint >= static_cast<Seconds>(cfg.state_snapshot_interval_seconds());
        if (!changed || (!due && st.log_bytes < cfg.state_snapshot_log_bytes())) {
            return;
        }
        checkpoint();
        last_checkpoint = now;
    }

    // A snapshot of the whole cache (under its lock), then a fresh log.
    bool checkpoint() {
        auto r = cache_backend.with_cache([&](BindingCache& c) {
            return store->checkpoint(
                [&c](const std::function<void(const Session&)>& fn) {
                    c.for_each_page(0, c.size() + 1, fn);
                },
                to_wall(), lma.restart_counter());
        });
        if (!r) {
            spdlog::error("store: {}", r.error());
            return false;
        }
        spdlog::debug("store: checkpoint of {} session(s), generation {}", cache.size(),
                      store->stats().generation);
        return true;
    }

    void add_counters(std::map<std::string, std::uint64_t>& m) {
        cache_backend.with_cache([&](BindingCache&) {
            for (const auto& [k, v] : lma.counters()) {
                m[k] += v;
            }
            return 0;
        });
        if (policy_poller) {
            policy_poller->add_counters(m);
        }
        const auto c = sigio->counters();
        m["signalling.rx"] = c.rx;
        m["signalling.tx"] = c.tx;
        m["signalling.rx_batches"] = c.rx_batches;
        m["signalling.rx_udp_malformed"] = c.rx_udp_bad;
        m["signalling.rx_truncated"] = c.rx_truncated;
        m["signalling.tx_errors"] = c.tx_errors;
        m["signalling.tx_no_socket"] = c.tx_no_socket;
        m["signalling.rx_esp"] = c.rx_esp;
        m["signalling.tx_esp"] = c.tx_esp;
        m["signalling.rx_esp_unknown_peer"] = c.rx_esp_unknown_peer;
        m["signalling.rx_esp_unknown_spi"] = c.rx_esp_unknown_spi;
        m["signalling.rx_esp_replayed"] = c.rx_esp_replayed;
        m["signalling.rx_esp_auth_failed"] = c.rx_esp_auth_failed;
        m["signalling.rx_esp_malformed"] = c.rx_esp_malformed;
        m["signalling.rx_esp_not_mh"] = c.rx_esp_not_mh;
        m["signalling.rx_esp_bad_checksum"] = c.rx_esp_bad_checksum;
        m["signalling.rx_esp_required"] = c.rx_esp_required;
        m["signalling.rx_home"] = c.rx_home;
        m["signalling.rx_home_malformed"] = c.rx_home_malformed;
        m["signalling.rx_home_bad_checksum"] = c.rx_home_bad_checksum;
        m["signalling.haad_requests"] = c.haad_requests;
        m["signalling.haad_replies"] = c.haad_replies;
        if (store) {
            store->add_counters(m);
            const auto st = store->stats();
            m["store.commits"] = st.commits;
            m["store.records"] = st.records;
            m["store.log_bytes"] = st.log_bytes;
            m["store.checkpoints"] = st.checkpoints;
            m["store.errors"] = st.errors;
            m["store.generation"] = st.generation;
            m["store.commit_failures"] = store_commit_failures;
            m["store.replies_withheld"] = store_replies_withheld;
        }
        if (lookups) {
            const auto c = lookups->counters();
            m["cluster.lookup_reads"] = c.reads;
            m["cluster.lookup_read_errors"] = c.read_errors;
            m["cluster.lookups_held"] = c.held;
            m["cluster.lookups_delivered"] = c.delivered;
            m["cluster.lookups_held_dropped"] = c.held_dropped;
            m["cluster.lookups_full"] = c.full;
            m["cluster.lookups_waiting"] = lookups->waiting();
            m["cluster.keep_alives"] = c.keep_alives;
            m["cluster.keep_alive_errors"] = c.keep_alive_errors;
        }
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
            m["dataplane.plan_us"] = p.plan_us;
            m["dataplane.apply_us"] = p.apply_us;
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
        current_mh = mh;
        current_from = &from;
        auto outs = cache_backend.with_cache(
            [&](BindingCache&) { return lma.receive(mh, from, clock_now()); });
        current_from = nullptr;
        send_durable(std::move(outs));
    }
    // The message lma.receive() is processing, for the cluster lookups to hold.
    HeldMessage current_message() const {
        HeldMessage m;
        m.mh.assign(current_mh.begin(), current_mh.end());
        if (current_from != nullptr) {
            m.from = *current_from;
        }
        return m;
    }

    void arm_timer() {
        timer.expires_after(std::chrono::seconds(1));
        timer.async_wait([this](const boost::system::error_code& ec) {
            if (ec) {
                return;
            }
            const auto t = clock_now();
            auto outs = cache_backend.with_cache([&](BindingCache&) { return lma.tick(t); });
            send_durable(std::move(outs));
            maybe_checkpoint(t.now);
            forget_lost();
            recheck_foreign(t.now);
            keep_alive(t.now);
            arm_timer();
        });
    }

    // The central mobility database's deadlines (a CMD's anchor answers, a MAAR's held router
    // PBAs) between the once-a-second ticks, so that central_db.timeout_ms is kept to within a
    // quarter of itself. Not armed without a central database role.
    void arm_cd_timer() {
        const std::int64_t every = lma.central_db_tick_ms();
        if (every <= 0 || every >= 1000) {
            return;  // the second's tick is precise enough
        }
        cd_timer.expires_after(std::chrono::milliseconds(every));
        cd_timer.async_wait([this](const boost::system::error_code& ec) {
            if (ec) {
                return;
            }
            const auto t = clock_now();
            auto outs =
                cache_backend.with_cache([&](BindingCache&) { return lma.tick_central_db(t); });
            send_durable(std::move(outs));
            arm_cd_timer();
        });
    }

    // Holds for other nodes' bindings whose expiry came: read them again (lookup threads).
    void recheck_foreign(Seconds now) {
        if (!lookups) {
            return;
        }
        auto due = cache_backend.with_cache([&](BindingCache&) { return lma.foreign_due(now); });
        for (const auto& nai : due) {
            lookups->read_binding(nai, [this, nai](const ClusterLookups::BindingAnswer& a) {
                boost::asio::post(io, [this, nai, a] {
                    const auto r = on_monotonic_clock(a);
                    cache_backend.with_cache([&](BindingCache&) {
                        lma.recheck_foreign(nai, r, clock_now().now);
                        return 0;
                    });
                });
            });
        }
    }

    // Distributed anchoring: this node's liveness key, renewed every third of its lease.
    void keep_alive(Seconds now) {
        if (etcd == nullptr || !cfg.store().distributed_anchoring()) {
            return;
        }
        const Seconds every = std::max<Seconds>(1, cfg.store().node_lease_seconds() / 3);
        if (now - last_keep_alive < every) {
            return;
        }
        last_keep_alive = now;
        if (lookups) {
            lookups->keep_alive();  // on a lookup thread: etcd may be slow
        }
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
            const auto n = cache_backend.with_cache([](BindingCache& c) { return c.size(); });
            if (store) {
                flush_held();
                stop_syncer();  // commits what is queued
                checkpoint();
                spdlog::info("signal {}: shutting down ({} sessions saved in {})", sig, n,
                             store->where());
            } else {
                spdlog::info(
                    "signal {}: shutting down ({} sessions in the binding cache are dropped "
                    "(persistence off); MAGs re-register after the restart counter changes)",
                    sig, n);
            }
            timer.cancel();
            cd_timer.cancel();
            if (policy_poller) {
                policy_poller->stop();
            }
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
        if (c->store().SerializeAsString() != cfg.store().SerializeAsString()) {
            spdlog::warn("reload: store changed; takes effect at restart");
        }
        if (c->log().format() != cfg.log().format()) {
            spdlog::warn("reload: log.format changed; takes effect at restart");
        }
        if (auto lvl = log::parse_level(c->log().level())) {
            spdlog::set_level(*lvl);
        }
        // The flow policy: the new file's, with the run-time edits on top (docs/policy.md
        // "Run-time edits"); edits that do not apply to the new file refuse the reload.
        if (auto p = policy_editor.reload(*c); !p) {
            spdlog::error("reload: {}; keeping the running configuration", p.error());
            return;
        }
        cfg = *c;
        auto outs = cache_backend.with_cache(
            [&](BindingCache&) { return lma.reload(*std::move(c), clock_now()); });
        spdlog::info("reload: {} applied ({} revocation(s) for withdrawn pools)", opts.config_path,
                     outs.size());
        send_durable(std::move(outs));
    }

    DaemonOptions opts;
    boost::asio::io_context io;
    std::unique_ptr<store::BindingStore> store;  // null: persistence off
    store::EtcdStore* etcd = nullptr;            // store, when it is the cluster store
    Seconds last_keep_alive = 0;
    std::vector<Outbound> held;  // replies waiting for the group commit
    bool flush_posted = false;
    Seconds last_checkpoint = 0;
    std::atomic<std::uint64_t> store_commit_failures{0};  // also counted on gRPC threads
    std::atomic<std::uint64_t> store_replies_withheld{0};
    std::mutex sync_mu;
    std::condition_variable sync_cv;
    std::vector<std::vector<Outbound>> sync_queue;  // reply batches waiting for a commit
    bool sync_stop = false;
    std::thread syncer;  // joined by ~Impl / at shutdown, before io goes
    BindingCache cache;
    Lma lma;
    mgmt::CacheBackend cache_backend;
    DaemonBackend backend;
    boost::asio::steady_timer timer;
    boost::asio::steady_timer cd_timer;  // the central database's deadlines (arm_cd_timer)
    boost::asio::signal_set signals;
    std::vector<std::string> addresses;
    v1::ControlConfig cfg;
    std::unique_ptr<SignallingIo> sigio;
    std::unique_ptr<mgmt::ManagementServer> server;
    std::unique_ptr<dpclient::Pusher> pusher;  // destroyed before the cache it observes
    // The flow policy (file + run-time edits); installs each new snapshot in cache_backend and
    // has the pusher program it.
    PolicyEditor policy_editor{[this](std::shared_ptr<const PolicySnapshot> p) {
                                   cache_backend.set_policy(std::move(p));
                                   if (pusher) {
                                       pusher->policy_changed();
                                   }
                               },
                               cfg.persistence() ? overlay_path(cfg.state_directory()) : ""};
    // Cluster store: adopts the policy edits other nodes store in etcd.
    std::unique_ptr<store::PolicyPoller> policy_poller;
    // hag-dataplane's ListSessions, for the policy counters of `hagctl policy show`.
    std::unique_ptr<v1::DataplaneProgrammer::Stub> dp_stub;
    std::span<const std::uint8_t> current_mh;
    const Peer* current_from = nullptr;
    // Cluster store reads off the signalling thread; destroyed (threads joined) first.
    std::unique_ptr<ClusterLookups> lookups;

    std::optional<v1::DpPolicyStats> dataplane_policy_stats(std::uint32_t id) {
        if (!dp_stub) {
            return std::nullopt;
        }
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
        v1::DpListRequest req;
        req.set_limit(1);
        if (id == 0) {
            req.set_first_page(true);
        } else {
            req.set_after_id(id - 1);
        }
        v1::DpListReply r;
        if (!dp_stub->ListSessions(&ctx, req, &r).ok() || r.sessions().empty() ||
            r.sessions(0).session().id() != id) {
            return std::nullopt;
        }
        return r.sessions(0).policy();
    }
};

Daemon::Daemon(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Daemon::~Daemon() {
    if (impl_ && impl_->policy_poller) {
        impl_->policy_poller->stop();
    }
    if (impl_ && impl_->server) {
        impl_->server->shutdown();
    }
    if (impl_ && impl_->pusher) {
        impl_->pusher->stop();
    }
}

Result<std::unique_ptr<Daemon>, std::string> Daemon::start(v1::ControlConfig cfg,
                                                           DaemonOptions opts) {
    // The store first: a corrupt snapshot (or an unreachable etcd) stops the start before any
    // socket is opened.
    std::unique_ptr<store::BindingStore> st;
    store::EtcdStore* etcd = nullptr;
    store::Recovery recovered;
    const bool cluster = cfg.store().backend() == "etcd";
    // etcd's endpoints and TLS files, read once (the binding store and the policy overlay).
    store::EtcdOptions etcd_opts;
    if (cluster) {
        auto o = etcd_options(cfg.store());
        if (!o) {
            return unexpected("store: " + o.error());
        }
        etcd_opts = std::move(*o);
        recovered.keep_foreign = Lma::foreign_filter(cfg);
        auto s = store::EtcdStore::open(etcd_opts, recovered);
        if (!s) {
            return unexpected("store: " + s.error());
        }
        etcd = s->get();
        st = std::move(*s);
        for (const auto& w : recovered.warnings) {
            spdlog::warn("store: {}", w);
        }
    } else if (cfg.persistence()) {
        store::StoreOptions so;
        so.dir = cfg.state_directory();
        so.fsync =
            cfg.state_fsync() == "none" ? store::FsyncPolicy::kNone : store::FsyncPolicy::kAlways;
        so.discard_corrupt = cfg.state_discard_corrupt();
        auto s = store::Store::open(so, recovered);
        if (!s) {
            return unexpected("state: " + s.error());
        }
        st = std::move(*s);
        for (const auto& w : recovered.warnings) {
            spdlog::warn("state: {}", w);
        }
    }
    const bool had_state = recovered.snapshot_found || recovered.log_files > 0;
    const std::uint32_t restart = restart_counter(recovered.restart_counter, had_state);
    auto impl =
        std::make_unique<Impl>(std::move(cfg), std::move(opts), std::move(st), etcd, restart);
    Impl& d = *impl;
    if (d.store) {
        const auto t = clock_now();
        const std::size_t found = recovered.sessions.size();
        const std::size_t expired = store::to_monotonic(recovered.sessions, wall_seconds(), t.now);
        std::size_t refused = 0;
        for (auto& s : recovered.sessions) {
            const std::string nai = s.nai;
            if (auto r = d.lma.restore(std::move(s), t); !r) {
                ++refused;
                spdlog::error("state: session {} not restored: {}", nai, r.error());
            }
        }
        spdlog::info(
            "state: {} session(s) restored from {} ({} found, {} expired while down, {} "
            "refused; {} {} read); restart counter {} ({})",
            d.cache.size(), d.store->where(), found, expired, refused, recovered.log_records,
            d.etcd != nullptr ? "key(s)" : "log record(s)", restart,
            had_state ? "kept: bindings restored" : "new");
        d.observe_for_store();
        if (d.etcd != nullptr) {
            // Prefixes and keys of this node that other nodes' bindings hold stay claimed.
            store::to_monotonic(recovered.foreign, wall_seconds(), t.now);
            for (const auto& f : recovered.foreign) {
                d.lma.hold_foreign(f, t.now);
            }
            if (!recovered.foreign.empty()) {
                spdlog::info(
                    "cluster: {} binding(s) of other nodes hold prefixes or GRE keys of "
                    "this node's pools; kept claimed ({} hold(s))",
                    recovered.foreign.size(), d.lma.foreign_holds());
            }
            recovered.foreign.clear();
            if (auto r = d.etcd->save_restart_counter(restart); !r) {
                return unexpected("store: " + r.error());
            }
            // Reads of etcd a PBU needs run on lookup threads (cluster_lookups.hpp); the PBU
            // is held meanwhile and processed again when the answer is in.
            const bool anchoring = d.cfg.store().distributed_anchoring();
            auto to_live = [](Result<std::optional<std::string>, std::string> a)
                -> ClusterLookups::LivenessAnswer {
                if (!a) {
                    return unexpected(a.error());
                }
                std::optional<Ipv6Address> out;
                if (*a) {
                    if (auto pa = parse_address(**a)) {
                        out = pa->addr;
                    }
                }
                return out;
            };
            ClusterLookups::Backend lb;
            lb.load = [&d](const std::string& nai) { return d.etcd->load(nai); };
            if (anchoring) {
                lb.anchor_of = [&d](const std::string& nai) -> std::string {
                    auto p = d.etcd->placement(nai);
                    return p && p->anchor != d.etcd->node() ? p->anchor : std::string();
                };
            }
            lb.node_address = [&d, to_live](const std::string& node) {
                return to_live(d.etcd->node_address(node));
            };
            lb.keep_alive = [&d] { return d.etcd->keep_alive(); };
            d.lookups = std::make_unique<ClusterLookups>(
                std::move(lb), [&d](std::vector<HeldMessage> ready) {
                    boost::asio::post(d.io, [&d, ready = std::move(ready)] {
                        for (const auto& m : ready) {
                            d.on_receive(m.mh, m.from);
                        }
                    });
                });
            auto waiting = [](ClusterLookups::Wait w) {
                return unexpected(w == ClusterLookups::Wait::kFull
                                      ? std::string("too many cluster store reads waiting")
                                      : std::string(Lma::kDeferred));
            };
            d.lma.set_binding_loader([&d, waiting](const std::string& nai)
                                         -> Result<std::optional<Session>, std::string> {
                auto got = d.lookups->binding(nai, d.current_message());
                if (const auto* w = std::get_if<ClusterLookups::Wait>(&got)) {
                    return waiting(*w);
                }
                return on_monotonic_clock(std::get<ClusterLookups::BindingAnswer>(std::move(got)));
            });
            if (anchoring) {
                if (auto r = d.etcd->announce(d.cfg.store().node_address(),
                                              d.cfg.store().node_lease_seconds());
                    !r) {
                    return unexpected("store: " + r.error());
                }
                d.last_keep_alive = t.now;
                // A node's liveness, read by the lookup threads (remembered for a second; a
                // binding's anchor is read with the binding). The anchor resolver runs right
                // after the binding's answer was taken, so it finds the anchor's answer; when
                // it does not (rare), it reads here.
                using Live = ClusterLookups::LivenessAnswer;
                auto live_now = [&d, to_live](const std::string& node) -> Live {
                    if (auto a = d.lookups->liveness_if_known(node)) {
                        return std::move(*a);
                    }
                    return to_live(d.etcd->node_address(node));
                };
                d.lma.set_anchor_resolver(
                    [&d, live_now](const std::string& nai)
                        -> Result<std::optional<Lma::AnchorPeer>, std::string> {
                        auto p = d.etcd->placement(nai);
                        if (!p || p->anchor == d.etcd->node()) {
                            return std::optional<Lma::AnchorPeer>{};
                        }
                        auto a = live_now(p->anchor);
                        if (!a) {
                            return unexpected(a.error());
                        }
                        if (!*a) {
                            spdlog::info("cluster: anchor {} of {} is not alive", p->anchor, nai);
                            return std::optional<Lma::AnchorPeer>{};
                        }
                        return std::optional<Lma::AnchorPeer>{Lma::AnchorPeer{p->anchor, **a}};
                    });
                d.lma.set_peer_check(
                    [&d, waiting](const std::string& mag_id,
                                  const Ipv6Address& from) -> Result<bool, std::string> {
                        if (!store::valid_node_name(mag_id)) {
                            return false;
                        }
                        auto got = d.lookups->liveness(mag_id, d.current_message());
                        if (const auto* w = std::get_if<ClusterLookups::Wait>(&got)) {
                            return waiting(*w);
                        }
                        auto a = std::get<ClusterLookups::LivenessAnswer>(std::move(got));
                        if (!a) {
                            return unexpected(a.error());
                        }
                        return *a && **a == from;
                    });
                spdlog::info("cluster: distributed anchoring on; node {} at {}", d.etcd->node(),
                             d.cfg.store().node_address());
            }
        } else if (!d.checkpoint()) {
            // The restored (and pruned) state becomes the new snapshot; the old log goes.
            return unexpected("state: cannot write the first checkpoint in " + d.store->where());
        }
        d.last_checkpoint = t.now;
        d.syncer = std::thread([&d] { d.sync_loop(); });
    }
    EspSettings esp;
    esp.require = d.cfg.esp().require();
    for (const auto& p : d.cfg.esp().peers()) {
        auto a = parse_address(p.address());  // checked with the configuration
        if (!a) {
            return unexpected("esp.peers.address: " + a.error());
        }
        esp.peers.push_back(EspPeerSas{a->addr, p.spi_in(), p.spi_out(), p.key_in(), p.key_out()});
    }
    auto io = SignallingIo::open(
        d.io, d.addresses,
        [&d](std::span<const std::uint8_t> mh, const Peer& from) { d.on_receive(mh, from); },
        static_cast<std::uint16_t>(d.opts.udp_port.value_or(kPmipUdpPort)), esp,
        [&] {
            HomeAgentIoSettings h;
            h.enabled = d.cfg.home_agent().enabled();
            for (const auto& text : d.cfg.home_agent().discovery_addresses()) {
                if (auto a = parse_address(text)) {  // checked with the configuration
                    h.discovery_addresses.push_back(a->addr);
                }
            }
            return h;
        }());
    if (!io) {
        return unexpected("signalling: " + io.error());
    }
    d.sigio = std::move(*io);
    if (cluster) {
        // Run-time policy edits are shared by the cluster: one key in etcd, not a file.
        d.policy_editor.use_store(store::etcd_overlay_store(etcd_opts));
    }
    if (auto p = d.policy_editor.start(d.cfg); !p) {
        return unexpected(p.error());
    }
    if (cluster) {
        d.policy_poller = std::make_unique<store::PolicyPoller>(
            d.policy_editor, std::chrono::milliseconds(d.cfg.store().policy_poll_ms()));
    }
    d.cache_backend.set_policy_editor(&d.policy_editor);

    std::string dp = "no data plane";
    if (!d.cfg.dataplane_socket().empty()) {
        dpclient::PusherOptions po;
        po.target = management_listen_address(d.cfg.dataplane_socket());
        po.resync_hold = std::chrono::seconds(d.cfg.dataplane_resync_hold_seconds());
        d.pusher = std::make_unique<dpclient::Pusher>(d.cache_backend, po);
        dp = "data plane at " + po.target;
        grpc::ChannelArguments args;
        args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
        d.dp_stub = v1::DataplaneProgrammer::NewStub(
            grpc::CreateCustomChannel(po.target, grpc::InsecureChannelCredentials(), args));
        d.backend.set_dataplane_stats(
            [&d](std::uint32_t id) { return d.dataplane_policy_stats(id); });
    }

    mgmt::ServerOptions so;
    so.listen = d.opts.listen.value_or(management_listen_address(d.cfg.management_socket()));
    so.socket_mode = d.cfg.management_socket_mode();
    so.tls_cert_file = d.cfg.management_tls_cert();
    so.tls_key_file = d.cfg.management_tls_key();
    so.tls_client_ca_file = d.cfg.management_tls_client_ca();
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
    if (so.listen.rfind("unix:", 0) != 0 && !d.server->tls()) {
        spdlog::warn(
            "management API on TCP {} WITHOUT TLS: anyone who can reach it controls the binding "
            "cache (set management_tls_cert, management_tls_key and management_tls_client_ca)",
            so.listen);
    }
    spdlog::info("signalling on {}; management API on {}{}; {}", where, so.listen,
                 d.server->tls() ? " (TLS, client certificates required)" : "", dp);
    if (d.pusher) {
        // Start-up hold (docs/programming.md "Restarts"): a binding cache restored from the
        // state directory is the state to program, so there is nothing to wait for: the first
        // resync carries it. Without restored state (persistence off, or a new state
        // directory) the pusher holds an earlier hag-control's sessions in the data plane
        // until the MAGs are back.
        if (d.store && had_state) {
            d.pusher->cache_restored();
        }
        d.pusher->start();
    }
    d.arm_timer();
    d.arm_cd_timer();
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
