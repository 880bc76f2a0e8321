// Durable store of hag-control's binding cache (docs/reliability.md): an append-only
// write-ahead log of session records and a periodic snapshot, in one state directory.
//
//   <dir>/snapshot            the whole cache at a checkpoint (generation N)
//   <dir>/log-<N, 16 hex>     every change since that checkpoint, appended in order
//   <dir>/lock                flock()ed while a hag-control uses the directory
//
// The caller appends records (put/remove) as the cache changes and calls commit() before it
// acknowledges anything: commit() writes what was appended and fdatasync()s it (group commit:
// one write and one sync for everything appended since the last commit). checkpoint() writes a
// new snapshot, starts the next log and deletes the old one. Thread-safe: put/remove take a
// short lock and are never blocked by a commit's write or sync in progress (commits and
// checkpoints are serialised by a second lock), so signalling goes on while a sync runs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "binding_cache.hpp"
#include "binding_store.hpp"
#include "hag/result.hpp"

namespace hag::control::store {

enum class FsyncPolicy : std::uint8_t {
    kAlways,  // fdatasync every commit (survives power loss and kernel crashes)
    kNone,    // write only: survives a crash of hag-control (kill -9), not of the host
};

struct StoreOptions {
    std::string dir;
    FsyncPolicy fsync = FsyncPolicy::kAlways;
    // A corrupt snapshot (or a log whose header is unreadable) normally refuses the start; with
    // this set the files are moved aside (*.corrupt) and the store starts empty.
    bool discard_corrupt = false;
};

// What open() found on disk.
struct Recovery {
    std::vector<Session> sessions;                 // path expires_at in wall-clock seconds
    std::optional<std::uint32_t> restart_counter;  // of the previous run, if any state was found
    bool snapshot_found = false;
    std::size_t log_files = 0;
    std::size_t log_records = 0;
    std::vector<std::string> warnings;  // torn tails, discarded files: log them
    // Cluster store: bindings other nodes serve that hold something of this node's pools or
    // key range (`keep_foreign` says which; unset: none kept), wall-clock expiries.
    std::function<bool(const Session&)> keep_foreign;
    std::vector<Session> foreign;
};

class Store final : public BindingStore {
  public:
    // Creates the directory if needed, locks it, reads the snapshot and logs. Nothing is written
    // until checkpoint(): the caller restores `rec`, then checkpoints what it kept.
    static Result<std::unique_ptr<Store>, std::string> open(const StoreOptions& o, Recovery& rec);
    ~Store() override;
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    // Appends a record to the commit buffer (no I/O). `to_wall` converts the cache's monotonic
    // path expiries to wall-clock seconds (wall now - monotonic now).
    void put(const Session& s, std::int64_t to_wall) override;
    void remove(std::string_view nai) override;
    [[nodiscard]] bool pending() const override;

    // Writes the buffer to the log and syncs it (per the fsync policy). On failure the log is
    // cut back to its last good length and the buffered records are dropped: the caller must
    // not acknowledge what they describe.
    Result<void, std::string> commit() override;

    // Writes a snapshot of every session `each` yields (generation + 1), starts a new log,
    // deletes the previous files. The commit buffer is dropped on success (the snapshot holds
    // its effect). The caller holds whatever keeps the sessions stable during the walk.
    Result<void, std::string> checkpoint(const SessionWalk& each, std::int64_t to_wall,
                                         std::uint32_t restart_counter) override;

    [[nodiscard]] StoreStats stats() const override;
    [[nodiscard]] std::string where() const override { return dir_; }
    [[nodiscard]] const std::string& dir() const noexcept { return dir_; }

  private:
    Store(StoreOptions o, int lock_fd);

    std::string dir_;
    FsyncPolicy fsync_;
    int lock_fd_ = -1;
    int log_fd_ = -1;
    std::uint64_t generation_ = 0;  // highest generation seen or written
    std::uint64_t log_size_ = 0;
    std::vector<std::uint8_t> buffer_;
    std::uint64_t buffered_records_ = 0;
    StoreStats stats_;
    mutable std::mutex mu_;  // buffer_, buffered_records_, stats_
    std::mutex commit_mu_;   // one commit or checkpoint at a time (taken before mu_)
};

std::string_view to_string(FsyncPolicy p) noexcept;

// Recovered sessions back on the monotonic clock: a path with a second or less left at
// `wall_now` is dropped (its lifetime ended while hag-control was down), the others keep their
// remaining lifetime less one second (expires_at = mono_now + (wall expiry - wall_now) - 1: the
// clocks are read in whole seconds, and a lifetime must never grow across a restart); a session
// left with no path is dropped. Returns the number of sessions dropped.
std::size_t to_monotonic(std::vector<Session>& sessions, std::int64_t wall_now, Seconds mono_now);

}  // namespace hag::control::store
