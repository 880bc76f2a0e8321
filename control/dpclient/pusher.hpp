// The data plane pusher: keeps hag-dataplane's session table equal to the binding cache over
// DataplaneProgrammer (proto/hag/v1/dataplane.proto, docs/control.md "Data plane programming").
//
// A cache observer marks changed session ids dirty (DirtySet: coalescing, bounded by the number
// of sessions). One pusher thread, never the signalling thread, takes dirty ids, snapshots those
// sessions under the CacheBackend lock and sends Apply batches with increasing generations,
// waiting for each acknowledgement. On the first connection and after any sign that the data
// plane lost or changed its state (connection lost, an Apply refused for its generation, a
// digest that disagrees, a new flow policy) it sends a full Resync and continues with deltas.
// The flow policy's profiles (the backend's PolicySnapshot) travel in the Resync's first chunk;
// each session names its profile; the digest covers both. Signalling only ever
// waits for the pusher's small mutex, never for the data plane.
//
// Start-up hold (docs/programming.md "Restarts"): when the first data plane this pusher reaches
// already holds sessions of an earlier hag-control (generation above 0), the first resync would
// replace them with a cache that may still be empty and stop forwarding until the MAGs
// re-register. So the pusher first holds: the data plane keeps its state and keeps forwarding,
// changes only mark sessions dirty (the DirtySet, bounded), and the hold ends at the first of
//   - `resync_hold` has passed since start(),
//   - cache_restored() was called (the daemon restored the binding cache from persistent state),
//   - the cache holds at least as many sessions as the data plane did (the MAGs are back),
//   - the data plane restarted meanwhile (generation 0: nothing left to keep);
// then the usual full resync carries everything, changes made during the hold included.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "mgmt/cache_backend.hpp"

namespace hag::control::dpclient {

struct PusherOptions {
    std::string target;             // gRPC target: "unix:/run/hag/dataplane.sock", "h:p"
    std::size_t batch_size = 1000;  // changes per Apply
    // Under load (the previous Apply ended less than this ago), a batch waits up to this long
    // after it for more changes (or until batch_size are dirty): fewer, larger Applies for the
    // same changes. A change after a quiet spell goes out at once. 0 = never wait.
    std::chrono::microseconds batch_linger{2'000};
    std::size_t resync_chunk = 1000;  // sessions per Resync chunk (and per cache lock hold)
    std::chrono::milliseconds digest_interval{10'000};
    std::chrono::milliseconds backoff_min{100};
    // The data plane is on the same host: retrying a refused connection costs nothing, and a
    // restarted data plane gets its state within a second of listening (tests/integration/demo/
    // test_restart.py measures it).
    std::chrono::milliseconds backoff_max{1'000};
    std::chrono::milliseconds rpc_timeout{10'000};      // Apply, Digest
    std::chrono::milliseconds resync_timeout{600'000};  // a whole Resync stream
    std::chrono::milliseconds resync_hold{0};           // start-up hold; 0 = none
};

struct PusherStatus {
    bool connected = false;             // in sync or pushing deltas (false: reconnecting)
    std::uint64_t generation = 0;       // the last generation the data plane acknowledged
    std::uint64_t sessions = 0;         // sessions the data plane holds, as far as control knows
    std::uint64_t digest = 0;           // sum of their session and policy profile digests
    std::uint64_t profiles = 0;         // flow policy profiles the data plane holds
    std::uint64_t pending = 0;          // dirty session ids not pushed yet
    std::uint64_t batches = 0;          // Apply batches acknowledged
    std::uint64_t changes = 0;          // upserts + removes acknowledged
    std::uint64_t resyncs = 0;          // full resyncs completed
    std::uint64_t resync_sessions = 0;  // sessions sent by the last resync
    std::uint64_t resync_ms = 0;        // the last resync: Digest call to acknowledgement
    std::uint64_t digest_checks = 0;
    std::uint64_t digest_mismatches = 0;
    std::uint64_t rejected = 0;     // refusals of a session (INVALID_ARGUMENT), in total
    std::uint64_t refused_now = 0;  // sessions currently refused (not programmed as they are)
    std::uint64_t errors = 0;       // failed calls (each leads to a reconnect + resync)
    // Where the pusher's time goes (microseconds, in total): planning Apply batches (waiting
    // for the cache lock included) and Apply calls (request to reply: transport and the data
    // plane's work).
    std::uint64_t plan_us = 0;
    std::uint64_t apply_us = 0;
    // Start-up hold in force: the data plane keeps an earlier hag-control's sessions
    // (`held_sessions` of them) for at most `hold_remaining` more.
    bool holding = false;
    std::uint64_t held_sessions = 0;
    std::chrono::milliseconds hold_remaining{0};
    std::uint64_t holds = 0;  // start-up holds entered (0 or 1)
};

class Pusher {
  public:
    // Registers the cache observer (under the backend's lock); start() starts the thread.
    Pusher(mgmt::CacheBackend& backend, PusherOptions opts);
    ~Pusher();  // stops the thread, cancelling a call in flight
    Pusher(const Pusher&) = delete;
    Pusher& operator=(const Pusher&) = delete;

    void start();
    void stop();
    // The binding cache now holds what it is going to hold after a start (e.g. restored from
    // persistent state): ends the start-up hold, or prevents it when called before start().
    // Thread-safe; call it after the restored sessions are in the cache.
    void cache_restored();
    // The backend's flow policy was replaced (reload): the pusher resyncs, profiles and the
    // sessions that name them together. Thread-safe.
    void policy_changed();
    [[nodiscard]] PusherStatus status() const;
    [[nodiscard]] const std::string& target() const noexcept;

    struct Impl;

  private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace hag::control::dpclient
