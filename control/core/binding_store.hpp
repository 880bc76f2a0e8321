// Where hag-control keeps its binding cache durable: the interface the daemon writes through.
// Two backends: the embedded write-ahead log + snapshots (store.hpp, docs/reliability.md, the
// single-node default) and etcd shared by a cluster of nodes (etcd_store.hpp,
// docs/scale-out.md). Every change of the cache is put() / remove()d under the cache lock;
// commit() makes what was buffered durable before any reply acknowledging it leaves.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "binding_cache.hpp"
#include "hag/result.hpp"

namespace hag::control::store {

struct StoreStats {
    std::uint64_t commits = 0;      // group commits that wrote something
    std::uint64_t records = 0;      // records appended to the log (etcd: keys written)
    std::uint64_t log_bytes = 0;    // size of the current log
    std::uint64_t checkpoints = 0;  // snapshots written
    std::uint64_t errors = 0;       // failed writes or syncs
    std::uint64_t generation = 0;   // of the current log
};

class BindingStore {
  public:
    virtual ~BindingStore() = default;
    // Buffers a change (no I/O). `to_wall` converts the cache's monotonic path expiries to
    // wall-clock seconds (wall now - monotonic now).
    virtual void put(const Session& s, std::int64_t to_wall) = 0;
    virtual void remove(std::string_view nai) = 0;
    [[nodiscard]] virtual bool pending() const = 0;
    // Makes the buffered changes durable; on failure the caller acknowledges none of them.
    virtual Result<void, std::string> commit() = 0;
    // A compaction point with the whole cache (the embedded store writes a snapshot; etcd needs
    // none and returns at once).
    using SessionWalk = std::function<void(const std::function<void(const Session&)>&)>;
    virtual Result<void, std::string> checkpoint(const SessionWalk& each, std::int64_t to_wall,
                                                 std::uint32_t restart_counter) = 0;
    // True when checkpoint() does something worth calling periodically.
    [[nodiscard]] virtual bool checkpoints() const { return true; }
    [[nodiscard]] virtual StoreStats stats() const = 0;
    // Where the state lives, for log lines ("/var/lib/hag", "etcd 127.0.0.1:2379 /hag/").
    [[nodiscard]] virtual std::string where() const = 0;
    // Backend counters for `hagctl counters` (besides store.* from stats()).
    virtual void add_counters(std::map<std::string, std::uint64_t>& /*m*/) const {}
};

}  // namespace hag::control::store
