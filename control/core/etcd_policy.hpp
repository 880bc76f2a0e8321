// Run-time flow policy edits shared by the nodes of a cluster (docs/scale-out.md, docs/policy.md
// "Run-time edits"): with `store.backend: etcd` the overlay of `hagctl policy ...` edits is one
// key in etcd, <prefix>p/overlay (a serialized hag.v1.PolicyOverlay), instead of a file in each
// node's state directory. An edit at any node is a write conditional on the key's revision;
// every node reads the key periodically and adopts a newer overlay (PolicyEditor::refresh).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/policy_edit.hpp"
#include "etcd_store.hpp"

namespace hag::control::store {

// The key's name under `prefix`.
std::string policy_overlay_key(const std::string& prefix);

std::unique_ptr<OverlayStore> etcd_overlay_store(const EtcdOptions& o);

// A thread that calls editor.refresh() every `interval` and logs what it adopts or refuses
// (a refusal once per stored revision; an unreachable etcd once until it answers again).
class PolicyPoller {
  public:
    PolicyPoller(PolicyEditor& editor, std::chrono::milliseconds interval);
    ~PolicyPoller();
    PolicyPoller(const PolicyPoller&) = delete;
    PolicyPoller& operator=(const PolicyPoller&) = delete;
    void stop();
    // policy.cluster_adopted, policy.cluster_refused, policy.cluster_read_errors
    void add_counters(std::map<std::string, std::uint64_t>& m) const;

  private:
    void run();

    PolicyEditor& editor_;
    std::chrono::milliseconds interval_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::atomic<std::uint64_t> adopted_{0};
    std::atomic<std::uint64_t> refused_{0};
    std::atomic<std::uint64_t> read_errors_{0};
    std::thread thread_;
};

}  // namespace hag::control::store
