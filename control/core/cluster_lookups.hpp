// Cluster store reads off the signalling thread (docs/scale-out.md "Lookups off the signalling
// thread"). A PBU that needs etcd — the binding of a subscriber this node does not serve (a
// takeover or a moved router), the liveness of a peer node — does not wait for it on the
// signalling thread: the read is queued for a few lookup threads, the PBU is held (at most
// kHeldPerKey per key, kMaxKeys keys in all) and handed back for processing when the answer is
// in. The answer is then found here at once: a binding answer is taken by the one PBU that
// asked (and forgotten after kAnswerSeconds if none does), a liveness answer serves every PBU
// for a second, an error is handed to one PBU (which is dropped: the MAG retransmits, and the
// next read is made then).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "binding_cache.hpp"
#include "hag/net/address.hpp"
#include "hag/result.hpp"
#include "peer.hpp"

namespace hag::control {

// A mobility header message as the signalling layer delivered it, kept to be processed again.
struct HeldMessage {
    std::vector<std::uint8_t> mh;
    Peer from;
};

class ClusterLookups {
  public:
    using BindingAnswer = Result<std::optional<Session>, std::string>;  // wall-clock expiries
    using LivenessAnswer = Result<std::optional<Ipv6Address>, std::string>;
    // What the lookup threads call (the etcd store; a test's own functions). Called
    // concurrently from several threads.
    struct Backend {
        std::function<BindingAnswer(const std::string& nai)> load;
        // After a binding was found: the node anchoring it when that is another node (its
        // liveness is read right after, so the PBU finds both answers), else empty.
        std::function<std::string(const std::string& nai)> anchor_of;
        std::function<LivenessAnswer(const std::string& node)> node_address;
        std::function<Result<void, std::string>()> keep_alive;
    };
    // Called on a lookup thread with the messages whose answer is in; the daemon posts them to
    // its signalling thread.
    using Deliver = std::function<void(std::vector<HeldMessage>)>;

    static constexpr std::size_t kHeldPerKey = 4;
    static constexpr std::size_t kMaxKeys = 4096;
    static constexpr std::chrono::seconds kAnswerSeconds{2};
    static constexpr std::chrono::seconds kLivenessSeconds{1};

    ClusterLookups(Backend b, Deliver d, unsigned threads = 4);
    ~ClusterLookups();
    ClusterLookups(const ClusterLookups&) = delete;
    ClusterLookups& operator=(const ClusterLookups&) = delete;

    enum class Wait : std::uint8_t { kQueued, kFull };
    // The answer for `nai` if it is in (taken), else the read is queued (once per key) and
    // `msg` held until it is in; kFull when too many reads wait (the PBU is then dropped).
    std::variant<BindingAnswer, Wait> binding(const std::string& nai, const HeldMessage& msg);
    // The address of a live node (none: dead or unknown) if read within the last second.
    std::variant<LivenessAnswer, Wait> liveness(const std::string& node, const HeldMessage& msg);
    // The same without a message to hold: the answer if in, else none (the caller reads
    // synchronously).
    std::optional<LivenessAnswer> liveness_if_known(const std::string& node);
    // Reads a binding for the caller (no PBU held; the answer is not kept): `done` runs on a
    // lookup thread. Several calls for one subscriber while its read waits share the read.
    void read_binding(const std::string& nai, std::function<void(const BindingAnswer&)> done);
    // Queues a liveness keep-alive unless one is queued or running; its error is logged.
    void keep_alive();

    struct Counters {
        std::uint64_t reads = 0;         // etcd reads made by the lookup threads
        std::uint64_t read_errors = 0;   // of which failed
        std::uint64_t held = 0;          // messages held for an answer
        std::uint64_t delivered = 0;     // held messages handed back
        std::uint64_t held_dropped = 0;  // a key's fifth message: the oldest dropped
        std::uint64_t full = 0;          // refused: kMaxKeys reads waiting
        std::uint64_t keep_alives = 0;
        std::uint64_t keep_alive_errors = 0;
    };
    [[nodiscard]] Counters counters() const;
    [[nodiscard]] std::size_t waiting() const;  // keys with a read queued or running

  private:
    enum class Kind : std::uint8_t { kBinding, kLiveness, kKeepAlive, kRead };
    using Key = std::pair<Kind, std::string>;
    struct Pending {
        std::vector<HeldMessage> held;
        std::vector<std::function<void(const BindingAnswer&)>> done;  // kRead
    };
    template <class A>
    struct Answer {
        A value;
        std::chrono::steady_clock::time_point at;
    };

    Wait enqueue(Kind k, const std::string& key, const HeldMessage* msg);  // under mu_
    void run();
    void sweep(std::chrono::steady_clock::time_point now);  // under mu_
    std::chrono::steady_clock::time_point last_sweep_{};
    Backend backend_;
    Deliver deliver_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Key> queue_;
    std::map<Key, Pending> pending_;  // queued or running, with the messages they hold
    std::map<std::string, Answer<BindingAnswer>> bindings_;
    std::map<std::string, Answer<LivenessAnswer>> live_;
    Counters counters_;
    bool stop_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace hag::control
