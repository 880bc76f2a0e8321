// The one place that reads the data plane's counters while it runs, for every consumer: the
// DPDK telemetry commands (on DPDK's telemetry threads), the Prometheus endpoint (its own
// thread) and the periodic log line (main lcore).
//
// Thread safety: workers write their own counters (telemetry/counter.hpp) and the collector
// sums them with relaxed loads, so workers are never slowed or locked. Collector calls are
// serialised by a mutex (rte_eth_stats_get is not safe to call concurrently on every PMD).
// Session configs are freed by the table writer after an RCU grace period, so the collector is
// an RCU reader of its own (thread id `reader_id`), online only while it walks the sessions.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "policy/policy_table.hpp"
#include "runtime/worker.hpp"
#include "tables/rcu.hpp"
#include "tables/session_table.hpp"
#include "telemetry/snapshot.hpp"

namespace hag::dp {

struct PortInfo {
    std::uint16_t id = 0;
    std::string name;
    std::string role;
};

struct CollectOptions {
    bool ethdev = true;            // include rte_eth_stats of each port
    bool sessions = true;          // count live sessions and pick the busiest
    std::size_t top_sessions = 0;  // how many of the busiest to include
};

class Collector {
  public:
    // `sessions` and `rcu` may be null (no session counters). The RCU variable must have room
    // for `reader_id`.
    Collector(std::vector<PortInfo> ports, const SessionTable* sessions, Rcu* rcu,
              std::uint32_t reader_id);
    ~Collector();
    Collector(const Collector&) = delete;
    Collector& operator=(const Collector&) = delete;

    // Adds a worker whose counters are summed. Call before the worker starts, or at any time:
    // the worker object must outlive the collector.
    void add_worker(const Worker* w);
    // The flow policy profiles whose per-rule counters are collected (null: none).
    void set_policies(const PolicyTable* p);

    [[nodiscard]] Snapshot collect(const CollectOptions& opt = {}) const;
    // One session with its paths; nullopt when no session has this id.
    [[nodiscard]] std::optional<SessionSnapshot> session(std::uint32_t id) const;

  private:
    void sum_workers(Snapshot& s) const;
    void sum_reorder(Snapshot& s) const;
    void sum_reassembly(Snapshot& s) const;
    void fill_ethdev(Snapshot& s) const;
    void scan_sessions(Snapshot& s, std::size_t top) const;
    SessionSnapshot session_locked(std::uint32_t id, const SessionConfig& cfg) const;

    mutable std::mutex mu_;
    std::vector<PortInfo> ports_;
    std::vector<const Worker*> workers_;
    const SessionTable* sessions_;
    Rcu* rcu_;
    std::uint32_t reader_id_;
    const PolicyTable* policies_ = nullptr;
};

}  // namespace hag::dp
