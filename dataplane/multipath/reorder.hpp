// Uplink reorder (access -> core): per session, a bounded buffer ordered by the GRE sequence
// number (RFC 2890) that the home router stamps across all its paths, released in order.
//
// Rules, per session:
// - in order (the next expected number): released at once; no buffer is taken;
// - ahead of the next expected number (a gap): held in the session's buffer, taken lazily from
//   a per-worker pool and returned as soon as it is empty;
// - a gap is given up ("skipped", its numbers counted lost) at once when every live path of the
//   session has delivered a later number since the gap opened (per-path arrival is in order, so
//   the missing packet can no longer come), or when the oldest held packet has waited the
//   session's timeout;
// - behind the release point: a duplicate (it was released: dropped) or late (its number was
//   skipped: dropped or forwarded by `forward_late`), told apart by a 64-number history bitmap as
//   in IPsec anti-replay (RFC 4303 §3.4.3); older than that history: late; behind the "late
//   floor" (the space's first number, or where recent give-ups began) and not in the history,
//   or more than 65536 behind: the CPE restarted its counter, the session starts over;
// - no sequence number, or reorder off for the session: passed straight through;
// - buffer full (the gap is `session_packets` or more behind) or the worker's held packets at
//   `global_packets` or no buffer free: the session advances to the arriving packet, releasing
//   what it holds before it in order and giving up the missing numbers (counted as overflow).
//
// Time: every held packet keeps its arrival TSC; a buffer's deadline is its oldest held packet's
// arrival plus the session's timeout. Buffers with packets sit in a min-heap by deadline, so
// `expire(now)` costs one comparison when nothing is due: no per-packet scan, no timer per packet.
// The timeout adapts between `min_timeout` and `timeout`: twice the longest recent wait that
// ended with the missing packet arriving (the paths' delay difference as measured), doubled when
// a packet comes late after a skip; before any measurement, `timeout`.
//
// Memory: 32 bytes per session (next number, history, late floor, incarnation, buffer index,
// wait estimate); buffers (`session_packets` slots of 17 bytes) only for sessions that hold
// packets.
//
// Threading: one Reorder per worker, used by that worker only. A session must be served by one
// worker for its order to mean anything (one worker today). The per-session and per-path
// counters go to SessionState (relaxed atomics), the per-worker ones to Counters.
#pragma once

#include <rte_mbuf.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hag/result.hpp"
#include "pipeline/stage.hpp"
#include "pipeline/uplink_decap.hpp"
#include "tables/session_table.hpp"

namespace hag::dp {

// RFC 1982 serial number arithmetic on 32 bits: > 0 when a is after b.
inline std::int32_t seq_diff(std::uint32_t a, std::uint32_t b) noexcept {
    return static_cast<std::int32_t>(a - b);
}

struct ReorderSettings {
    bool enabled = true;                  // sessions with ReorderMode::kDefault
    std::uint32_t timeout_us = 5000;      // longest wait for a missing number
    std::uint32_t min_timeout_us = 1000;  // the adaptive wait never goes below this
    std::uint32_t session_packets = 256;  // packets one session may hold (power of two)
    std::uint32_t global_packets = 4096;  // packets all sessions of the worker may hold
    std::uint32_t buffers = 1024;         // sessions that may hold packets at once
    bool forward_late = false;            // late packets: forwarded (true) or dropped
};

#define HAG_REORDER_DROPS(X)                                                                       \
    X(kDuplicate, "duplicate", "the sequence number was already released (a duplicate)")           \
    X(kLate, "late", "the sequence number was given up as lost before it came (late_policy DROP)") \
    X(kShutdown, "shutdown", "held when the worker stopped")

HAG_DECLARE_DROPS(ReorderDrop, HAG_REORDER_DROPS)

// Per-worker counts (one writer: the worker).
struct alignas(64) ReorderCounters {
    Counter passthrough;       // no sequence number, or reorder off for the session
    Counter in_order;          // released at once
    Counter held;              // entered a buffer (arrived ahead of a gap)
    Counter released;          // left the stage, all reasons
    Counter late_forwarded;    // late, forwarded by policy
    Counter gaps_skipped;      // gaps given up at once (every live path past them)
    Counter gaps_timed_out;    // gaps given up after the timeout
    Counter lost;              // sequence numbers given up
    Counter session_overflow;  // a gap beyond session_packets
    Counter global_overflow;   // global_packets reached, or no buffer free
    Counter resyncs;           // a session's sequence space restarted (new incarnation)
    ReorderDropCounters drops{};
    StageCycles cycles;
    // Added latency: held packets by the time they waited, bucket b = [2^(b-1), 2^b) us
    // (bucket 0: under 1 us; the last: 2^14 us and more).
    static constexpr std::size_t kWaitBuckets = 16;
    std::array<Counter, kWaitBuckets> wait_us_log2{};
};

class Reorder {
  public:
    // Where released packets go (the core port's TX in the worker); called with up to 64.
    using Sink = void (*)(void* arg, rte_mbuf** pkts, std::uint16_t n);

    // `sessions` receives the per-session counters; `tsc_hz` converts the microsecond settings.
    static Result<std::unique_ptr<Reorder>, std::string> create(const ReorderSettings& s,
                                                                SessionTable& sessions,
                                                                std::uint64_t tsc_hz, Sink sink,
                                                                void* sink_arg);
    ~Reorder();  // frees what is still held
    Reorder(const Reorder&) = delete;
    Reorder& operator=(const Reorder&) = delete;

    // The stage: takes ownership of `pkts[0..n)`; releases what is in order to the sink.
    void process(rte_mbuf** pkts, const UplinkMeta* meta, std::uint16_t n,
                 std::uint64_t now) noexcept;
    // Gives up the gaps whose deadline is past; call once per poll iteration.
    void expire(std::uint64_t now) noexcept;
    // Earliest deadline of a held packet, or UINT64_MAX when nothing is held.
    [[nodiscard]] std::uint64_t next_deadline() const noexcept;
    // Frees every held packet (counted as `shutdown`); for the worker's exit.
    void drop_all() noexcept;

    [[nodiscard]] std::uint32_t held_packets() const noexcept { return held_total_; }
    [[nodiscard]] std::uint32_t buffers_in_use() const noexcept {
        return static_cast<std::uint32_t>(buffers_.size() - free_.size());
    }
    [[nodiscard]] const ReorderCounters& counters() const noexcept { return c_; }
    [[nodiscard]] const ReorderSettings& settings() const noexcept { return s_; }

  private:
    static constexpr std::uint32_t kNone = UINT32_MAX;
    static constexpr std::uint16_t kOut = 64;

    struct Entry {                  // per session, 32 bytes
        std::uint64_t history = 0;  // bit i: number next-1-i was released
        std::uint32_t next = 0;     // the next number to release
        std::uint32_t incarnation = 0;
        // Numbers before this were never given up recently: a packet behind it is not late
        // but a new counter (the first number of the space, or where recent give-ups began).
        std::uint32_t late_floor = 0;
        std::uint32_t buffer = kNone;
        std::uint16_t wait_us = 0;  // adaptive estimate of the paths' delay difference
    };
    struct Buffer {
        std::uint32_t session = 0;
        std::uint32_t held = 0;
        std::uint32_t heap_pos = kNone;
        std::uint8_t seen = 0;      // paths that delivered a number since the buffer was taken
        std::uint8_t live = 0;      // live paths as of the last arrival
        std::uint64_t oldest = 0;   // arrival TSC of the oldest held packet
        std::uint64_t timeout = 0;  // cycles
        std::uint64_t deadline = 0;
        std::array<std::uint32_t, kMaxPaths> path_high{};  // highest number per path
    };

  public:
    struct Token {
        explicit Token() = default;
    };
    Reorder(Token, const ReorderSettings& s, SessionTable& sessions, std::uint64_t tsc_hz,
            Sink sink, void* sink_arg);

  private:
    void one(rte_mbuf* m, const UplinkMeta& meta, std::uint64_t now) noexcept;
    void behind(Entry& e, rte_mbuf* m, const UplinkMeta& meta, std::uint32_t back) noexcept;
    // A new sequence space for the session (new incarnation, or a number far behind): what is
    // held is released in order and `m` starts the new space.
    void restart(Entry& e, rte_mbuf* m, const UplinkMeta& meta) noexcept;
    void release_all(Entry& e) noexcept;
    void note_give_up(Entry& e, std::uint32_t first) noexcept;
    void emit(rte_mbuf* m) noexcept;
    void flush_out() noexcept;
    void deliver(Entry& e, rte_mbuf* m) noexcept;  // m is number e.next
    // Releases the held run starting at e.next; `timed_out` counts them per path as such.
    bool drain(Entry& e, Buffer& b, bool timed_out) noexcept;
    // Gives up numbers from e.next up to the first held one (b.held > 0).
    void skip_gap(Entry& e, Buffer& b) noexcept;
    // Moves e.next to `target`, releasing held packets before it in order, giving up the rest.
    void advance_to(Entry& e, Buffer* b, std::uint32_t target) noexcept;
    [[nodiscard]] bool all_live_paths_past(const Buffer& b, std::uint32_t next) const noexcept;
    // After a change: skip what can be skipped, free an empty buffer, else re-arm its deadline.
    void settle(Entry& e, std::uint32_t bi, bool released_oldest) noexcept;
    void free_buffer(Entry& e) noexcept;
    std::uint64_t timeout_for(const Entry& e, const UplinkMeta& meta) const noexcept;
    void recompute_oldest(const Entry& e, Buffer& b) noexcept;

    std::size_t slot(std::uint32_t bi, std::uint32_t seq) const noexcept {
        return (static_cast<std::size_t>(bi) << shift_) + (seq & mask_);
    }
    SessionState& state(std::uint32_t session) noexcept { return sessions_.state(session); }

    // Min-heap of buffer indexes by deadline.
    void heap_set(std::uint32_t bi) noexcept;  // insert or move after a deadline change
    void heap_erase(std::uint32_t bi) noexcept;
    void heap_swap(std::uint32_t a, std::uint32_t b) noexcept;
    void heap_up(std::uint32_t pos) noexcept;
    void heap_down(std::uint32_t pos) noexcept;

    ReorderSettings s_;
    SessionTable& sessions_;
    std::uint64_t cycles_per_us_;
    std::uint64_t timeout_cycles_, min_timeout_cycles_;
    std::uint32_t window_, mask_, shift_;
    Sink sink_;
    void* sink_arg_;
    std::vector<Entry> entries_;
    std::vector<Buffer> buffers_;
    std::vector<std::uint32_t> free_;
    std::vector<std::uint32_t> heap_;
    // Slots of all buffers: buffer i owns [i << shift_, (i + 1) << shift_).
    std::vector<rte_mbuf*> slot_mbuf_;
    std::vector<std::uint64_t> slot_arrival_;
    std::vector<std::uint8_t> slot_path_;
    std::uint32_t held_total_ = 0;
    rte_mbuf* out_[kOut];
    std::uint16_t n_out_ = 0;
    std::uint64_t sink_cycles_ = 0;  // spent in the sink during process()
    std::uint64_t now_ = 0;          // the clock of the current process() / expire()
    void count_wait(std::uint64_t arrival) noexcept;
    ReorderCounters c_;
};

}  // namespace hag::dp
