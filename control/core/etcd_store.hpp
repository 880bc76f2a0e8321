// The cluster binding store (docs/scale-out.md): hag-control's bindings as keys in etcd, shared
// by several nodes. One key per subscriber (<prefix>b/<nai>) whose value (cluster_record.hpp)
// names the serving node and the anchor; every key is attached to a lease that ends with the
// binding's lifetime (leases are shared by bindings ending in the same 10 s bucket, so a
// registration costs one write, not a lease grant too). Writes are conditional on the key's
// revision this node last saw: a node never overwrites or deletes a binding another node has
// taken over since; it learns it lost the binding and forgets it (take_lost()).
//
// Thread-safety: put/remove/load/placement under a short lock; commit() runs the etcd requests
// without it (commits are serialised by a second lock), like the embedded store.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "binding_store.hpp"
#include "store.hpp"

namespace grpc {
class Channel;
}

namespace hag::control::store {

struct EtcdOptions {
    std::string endpoint;          // host:port
    std::string prefix = "/hag/";  // key prefix of the cluster
    std::string node;              // this node's name
    std::chrono::milliseconds timeout{1000};
    std::string tls_ca_pem;  // non-empty: TLS (with the client pair when both are set)
    std::string tls_cert_pem;
    std::string tls_key_pem;
};

// A gRPC channel to the first endpoint, with TLS when the options say so.
std::shared_ptr<grpc::Channel> etcd_channel(const EtcdOptions& o);

// Where a binding lives: the node serving it and the node it was created at.
struct Placement {
    std::string node;
    std::string anchor;
};

class EtcdStore final : public BindingStore {
  public:
    // Connects, reads the bindings this node served before (`rec.sessions`, wall-clock
    // expiries) and its restart counter. An unreachable etcd fails the open.
    static Result<std::unique_ptr<EtcdStore>, std::string> open(const EtcdOptions& o,
                                                                Recovery& rec);
    ~EtcdStore() override;
    EtcdStore(const EtcdStore&) = delete;
    EtcdStore& operator=(const EtcdStore&) = delete;

    void put(const Session& s, std::int64_t to_wall) override;
    void remove(std::string_view nai) override;
    [[nodiscard]] bool pending() const override;
    // One etcd transaction per 100 changes, each change conditional on the key's revision. On
    // an etcd error the changes stay buffered (retried at the next commit) and an error is
    // returned; a change refused because another node took the binding over is dropped, the
    // subscriber is reported by take_lost(), and an error is returned too (nothing of the batch
    // is acknowledged; the MAGs retransmit).
    Result<void, std::string> commit() override;
    Result<void, std::string> checkpoint(const SessionWalk& each, std::int64_t to_wall,
                                         std::uint32_t restart_counter) override;
    [[nodiscard]] bool checkpoints() const override { return false; }
    [[nodiscard]] StoreStats stats() const override;
    [[nodiscard]] std::string where() const override;
    void add_counters(std::map<std::string, std::uint64_t>& m) const override;

    // A binding another node wrote (none when the key is absent), path expiries in wall-clock
    // seconds. Its revision is remembered: this node's next write of it takes it over. While
    // etcd is failing, calls fail at once for a second after an error (no signalling stall).
    Result<std::optional<Session>, std::string> load(const std::string& nai);
    // Serving node and anchor of a binding this node serves.
    [[nodiscard]] std::optional<Placement> placement(const std::string& nai) const;
    // Subscribers whose bindings other nodes took over since the last call. The caller removes
    // them from the cache; the removal is not written (remove() ignores them once).
    std::vector<std::string> take_lost();
    // Saves the restart counter under <prefix>n/<node>.
    Result<void, std::string> save_restart_counter(std::uint32_t c);
    [[nodiscard]] const std::string& node() const noexcept { return node_; }

    // Node liveness (distributed anchoring, docs/scale-out.md): <prefix>l/<node> holds this
    // node's address on a lease of `ttl_s` seconds. announce() grants the lease and writes the
    // key; keep_alive() (every third of the TTL) renews it with LeaseKeepAlive and announces
    // again when the lease was lost (etcd was away longer than the TTL).
    Result<void, std::string> announce(const std::string& address, std::int64_t ttl_s);
    Result<void, std::string> keep_alive();
    // The address of a live node (its liveness key), none when the node is dead or unknown.
    Result<std::optional<std::string>, std::string> node_address(const std::string& node);
    // A binding this node no longer writes (another node serves it and this node only anchors
    // an old prefix for it): its pending change and remembered revision are dropped; its
    // removal later is not written either.
    void disown(std::string_view nai);

    struct Rpc;

  private:
    EtcdStore(EtcdOptions o, std::unique_ptr<Rpc> rpc);
    struct Meta {
        std::int64_t revision = 0;  // mod_revision this node last wrote or read; 0 = none
        std::string anchor;
    };
    struct Op {
        bool del = false;
        std::vector<std::uint8_t> value;  // put
        std::int64_t expires_wall = 0;    // put: the binding's last path expiry
    };
    bool failing_now();   // within a second after an etcd error
    void note_failure();  // starts that second
    Result<std::int64_t, std::string> lease_for(std::int64_t expires_wall, std::int64_t now);

    EtcdOptions opt_;
    std::string node_;
    std::unique_ptr<Rpc> rpc_;
    mutable std::mutex mu_;  // buffer_, meta_, lost_, forget_, counters
    std::map<std::string, Op> buffer_;
    std::unordered_map<std::string, Meta> meta_;
    std::vector<std::string> lost_;
    std::set<std::string, std::less<>> forget_;
    std::map<std::int64_t, std::int64_t> leases_;  // bucket end (wall s) -> lease id
    std::chrono::steady_clock::time_point down_until_{};
    std::string live_address_;  // announced in the liveness key
    std::int64_t live_ttl_ = 0;
    std::atomic<std::int64_t> live_lease_{0};
    std::mutex commit_mu_;
    StoreStats stats_;
    // Counted on the syncer, signalling and gRPC threads.
    std::atomic<std::uint64_t> requests_{0}, request_errors_{0}, lease_grants_{0}, stale_{0},
        loads_{0}, puts_{0}, deletes_{0};
};

}  // namespace hag::control::store
