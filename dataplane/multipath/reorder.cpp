#include "multipath/reorder.hpp"

#include <rte_cycles.h>

#include <algorithm>
#include <bit>

#include <fmt/format.h>

namespace hag::dp {

namespace {
// A number this far behind the release point is not late but a new sequence space (the home
// router restarted its counter): the session starts over from it.
constexpr std::uint32_t kResyncDistance = 1u << 16;
// How far the late floor may trail the numbers given up before it moves up to them.
constexpr std::int32_t kLateSpan = 4096;
}  // namespace

Result<std::unique_ptr<Reorder>, std::string> Reorder::create(const ReorderSettings& s,
                                                              SessionTable& sessions,
                                                              std::uint64_t tsc_hz, Sink sink,
                                                              void* sink_arg) {
    const auto sp = s.session_packets;
    if (sp < 2 || sp > 4096 || (sp & (sp - 1)) != 0) {
        return unexpected(
            fmt::format("reorder: session_packets {} must be a power of two in 2-4096", sp));
    }
    if (s.global_packets < sp) {
        return unexpected(fmt::format("reorder: global_packets {} is below session_packets {}",
                                      s.global_packets, sp));
    }
    if (s.buffers == 0 || s.timeout_us == 0 || s.min_timeout_us > s.timeout_us) {
        return unexpected(std::string(
            "reorder: buffers and timeout_us must be > 0, min_timeout_us <= timeout_us"));
    }
    if (sink == nullptr || tsc_hz == 0) {
        return unexpected(std::string("reorder: no sink or no TSC frequency"));
    }
    return std::make_unique<Reorder>(Token{}, s, sessions, tsc_hz, sink, sink_arg);
}

Reorder::Reorder(Token, const ReorderSettings& s, SessionTable& sessions, std::uint64_t tsc_hz,
                 Sink sink, void* sink_arg)
    : s_(s),
      sessions_(sessions),
      cycles_per_us_(std::max<std::uint64_t>(1, tsc_hz / 1'000'000)),
      timeout_cycles_(s.timeout_us * cycles_per_us_),
      min_timeout_cycles_(s.min_timeout_us * cycles_per_us_),
      window_(s.session_packets),
      mask_(s.session_packets - 1),
      shift_(static_cast<std::uint32_t>(std::countr_zero(s.session_packets))),
      sink_(sink),
      sink_arg_(sink_arg),
      entries_(sessions.capacity()),
      buffers_(s.buffers),
      slot_mbuf_(static_cast<std::size_t>(s.buffers) << shift_, nullptr),
      slot_arrival_(static_cast<std::size_t>(s.buffers) << shift_, 0),
      slot_path_(static_cast<std::size_t>(s.buffers) << shift_, 0) {
    free_.reserve(s.buffers);
    for (std::uint32_t i = s.buffers; i-- > 0;) {
        free_.push_back(i);
    }
    heap_.reserve(s.buffers);
}

Reorder::~Reorder() {
    flush_out();
    drop_all();
}

// ---- output ----

void Reorder::emit(rte_mbuf* m) noexcept {
    out_[n_out_++] = m;
    ++c_.released;
    if (n_out_ == kOut) {
        flush_out();
    }
}

void Reorder::flush_out() noexcept {
    if (n_out_ != 0) {
        // The sink's time (the TX burst) is not the stage's: it is taken out of its cycles.
        const std::uint64_t t0 = rte_rdtsc();
        sink_(sink_arg_, out_, n_out_);
        n_out_ = 0;
        sink_cycles_ += rte_rdtsc() - t0;
    }
}

void Reorder::deliver(Entry& e, rte_mbuf* m) noexcept {
    e.history = (e.history << 1) | 1;
    ++e.next;
    emit(m);
}

// ---- the stage ----

void Reorder::process(rte_mbuf** pkts, const UplinkMeta* meta, std::uint16_t n,
                      std::uint64_t now) noexcept {
    const std::uint64_t t0 = rte_rdtsc();
    sink_cycles_ = 0;
    now_ = now;
    for (std::uint16_t i = 0; i < n; ++i) {
        one(pkts[i], meta[i], now);
    }
    flush_out();
    c_.cycles.cycles += rte_rdtsc() - t0 - sink_cycles_;
    c_.cycles.packets += n;
    ++c_.cycles.bursts;
}

void Reorder::restart(Entry& e, rte_mbuf* m, const UplinkMeta& meta) noexcept {
    if (e.buffer != kNone) {
        release_all(e);  // what the old sequence space held, in its order
    }
    if (e.incarnation != 0) {
        ++c_.resyncs;
    }
    e = Entry{};
    e.incarnation = meta.incarnation;
    e.next = meta.seq;
    e.late_floor = meta.seq + 1;
    ++c_.in_order;
    deliver(e, m);
}

void Reorder::note_give_up(Entry& e, std::uint32_t first) noexcept {
    if (seq_diff(first, e.late_floor) > kLateSpan) {
        e.late_floor = first;
    }
}

void Reorder::one(rte_mbuf* m, const UplinkMeta& meta, std::uint64_t now) noexcept {
    const bool on = meta.mode == ReorderMode::kDefault ? s_.enabled : meta.mode == ReorderMode::kOn;
    if ((meta.flags & UplinkMeta::kHasSeq) == 0 || !on || meta.session >= entries_.size()) {
        ++c_.passthrough;
        emit(m);
        return;
    }
    Entry& e = entries_[meta.session];
    if (e.incarnation != meta.incarnation) {
        restart(e, m, meta);
        return;
    }
    const std::int32_t d = seq_diff(meta.seq, e.next);
    if (d < 0) {
        behind(e, m, meta, e.next - meta.seq);
        return;
    }
    const unsigned path = meta.path % kMaxPaths;
    SessionState& st = state(meta.session);
    const auto dist = static_cast<std::uint32_t>(d);
    if (e.buffer == kNone) {
        if (dist == 0) {  // the common case: in order, nothing held
            ++c_.in_order;
            deliver(e, m);
            return;
        }
        const bool too_far = dist >= window_;
        if (too_far || held_total_ >= s_.global_packets || free_.empty()) {
            ++(too_far ? c_.session_overflow : c_.global_overflow);
            st.reorder_overflow.fetch_add(1, std::memory_order_relaxed);
            advance_to(e, nullptr, meta.seq);
            deliver(e, m);
            return;
        }
        const std::uint32_t bi = free_.back();
        free_.pop_back();
        buffers_[bi] = Buffer{};
        buffers_[bi].session = meta.session;
        buffers_[bi].timeout = timeout_for(e, meta);
        e.buffer = bi;
        st.path_seq_gaps[path].fetch_add(1, std::memory_order_relaxed);
    }
    const std::uint32_t bi = e.buffer;
    Buffer& b = buffers_[bi];
    b.live = meta.live_mask;
    const auto bit = static_cast<std::uint8_t>(1u << path);
    if ((b.seen & bit) == 0 || seq_diff(meta.seq, b.path_high[path]) > 0) {
        b.path_high[path] = meta.seq;
    }
    b.seen |= bit;

    bool released_oldest = false;
    if (dist == 0) {
        // The missing number came: how long the oldest held packet waited is a sample of the
        // delay difference between the paths.
        const std::uint64_t waited = (now - b.oldest) / cycles_per_us_;
        const auto sample = static_cast<std::uint16_t>(std::min<std::uint64_t>(waited, 0xffff));
        e.wait_us =
            std::max<std::uint16_t>(sample, static_cast<std::uint16_t>(e.wait_us - e.wait_us / 8));
        ++c_.in_order;
        deliver(e, m);
        released_oldest = drain(e, b, false);
    } else if (dist >= window_ || held_total_ >= s_.global_packets) {
        ++(dist >= window_ ? c_.session_overflow : c_.global_overflow);
        st.reorder_overflow.fetch_add(1, std::memory_order_relaxed);
        advance_to(e, &b, meta.seq);
        deliver(e, m);
        drain(e, b, false);
        released_oldest = true;
    } else {
        const std::size_t idx = slot(bi, meta.seq);
        if (slot_mbuf_[idx] != nullptr) {
            ++c_.drops[static_cast<std::size_t>(ReorderDrop::kDuplicate)];
            st.reorder_duplicates.fetch_add(1, std::memory_order_relaxed);
            rte_pktmbuf_free(m);
            return;
        }
        if (b.held == 0) {
            b.oldest = now;
        }
        slot_mbuf_[idx] = m;
        slot_arrival_[idx] = now;
        slot_path_[idx] = static_cast<std::uint8_t>(path);
        ++b.held;
        ++held_total_;
        ++c_.held;
        st.path_reordered[path].fetch_add(1, std::memory_order_relaxed);
    }
    settle(e, bi, released_oldest);
}

void Reorder::behind(Entry& e, rte_mbuf* m, const UplinkMeta& meta, std::uint32_t back) noexcept {
    if (back > kResyncDistance) {
        restart(e, m, meta);
        return;
    }
    SessionState& st = state(meta.session);
    if (back <= 64 && ((e.history >> (back - 1)) & 1) != 0) {
        ++c_.drops[static_cast<std::size_t>(ReorderDrop::kDuplicate)];
        st.reorder_duplicates.fetch_add(1, std::memory_order_relaxed);
        rte_pktmbuf_free(m);
        return;
    }
    if (seq_diff(meta.seq, e.late_floor) < 0) {
        // Older than anything given up recently and than the start of the space, and not a
        // recent duplicate: no loss explains it, a restarted counter (a CPE that came back)
        // does.
        restart(e, m, meta);
        return;
    }
    // Late: its number was given up. The wait was too short for these paths: wait longer.
    st.path_late[meta.path % kMaxPaths].fetch_add(1, std::memory_order_relaxed);
    if (e.wait_us != 0) {
        e.wait_us = static_cast<std::uint16_t>(std::min<unsigned>(0xffffu, e.wait_us * 2u));
    }
    if (s_.forward_late) {
        if (back <= 64) {
            e.history |= std::uint64_t{1} << (back - 1);  // a second copy is a duplicate
        }
        ++c_.late_forwarded;
        emit(m);
    } else {
        ++c_.drops[static_cast<std::size_t>(ReorderDrop::kLate)];
        rte_pktmbuf_free(m);
    }
}

// ---- buffer moves ----

bool Reorder::drain(Entry& e, Buffer& b, bool timed_out) noexcept {
    bool oldest_gone = false;
    while (b.held > 0) {
        const std::size_t idx = slot(e.buffer, e.next);
        rte_mbuf* m = slot_mbuf_[idx];
        if (m == nullptr) {
            break;
        }
        slot_mbuf_[idx] = nullptr;
        --b.held;
        --held_total_;
        oldest_gone = oldest_gone || slot_arrival_[idx] == b.oldest;
        count_wait(slot_arrival_[idx]);
        if (timed_out) {
            state(b.session).path_timed_out[slot_path_[idx]].fetch_add(1,
                                                                       std::memory_order_relaxed);
        }
        deliver(e, m);
    }
    return oldest_gone;
}

void Reorder::skip_gap(Entry& e, Buffer& b) noexcept {
    note_give_up(e, e.next);
    std::uint32_t n = 0;
    // Held packets are within [next, next + window): the loop ends within the window.
    while (b.held > 0 && n < window_ && slot_mbuf_[slot(e.buffer, e.next)] == nullptr) {
        e.history <<= 1;
        ++e.next;
        ++n;
    }
    c_.lost += n;
    state(b.session).reorder_lost.fetch_add(n, std::memory_order_relaxed);
}

void Reorder::advance_to(Entry& e, Buffer* b, std::uint32_t target) noexcept {
    std::uint32_t dist = target - e.next;
    std::uint32_t lost = 0;
    note_give_up(e, e.next);
    if (b != nullptr) {
        const std::uint32_t steps = std::min(dist, window_);
        for (std::uint32_t k = 0; k < steps; ++k) {
            const std::size_t idx = slot(e.buffer, e.next);
            if (rte_mbuf* m = slot_mbuf_[idx]; m != nullptr) {
                slot_mbuf_[idx] = nullptr;
                --b->held;
                --held_total_;
                count_wait(slot_arrival_[idx]);
                deliver(e, m);
            } else {
                e.history <<= 1;
                ++e.next;
                ++lost;
            }
        }
        dist -= steps;
    }
    if (dist != 0) {
        lost += dist;
        e.history = dist >= 64 ? 0 : e.history << dist;
        e.next += dist;
    }
    c_.lost += lost;
    if (lost != 0) {
        const std::uint32_t session = static_cast<std::uint32_t>(&e - entries_.data());
        state(session).reorder_lost.fetch_add(lost, std::memory_order_relaxed);
    }
}

void Reorder::release_all(Entry& e) noexcept {
    Buffer& b = buffers_[e.buffer];
    for (std::uint32_t k = 0; k < window_ && b.held > 0; ++k) {
        const std::size_t idx = slot(e.buffer, e.next + k);
        if (rte_mbuf* m = slot_mbuf_[idx]; m != nullptr) {
            slot_mbuf_[idx] = nullptr;
            --b.held;
            --held_total_;
            emit(m);
        }
    }
    free_buffer(e);
}

bool Reorder::all_live_paths_past(const Buffer& b, std::uint32_t next) const noexcept {
    const std::uint8_t need = b.live;
    if (need == 0 || (b.seen & need) != need) {
        return false;
    }
    for (unsigned i = 0; i < kMaxPaths; ++i) {
        if ((need >> i & 1) != 0 && seq_diff(b.path_high[i], next) <= 0) {
            return false;
        }
    }
    return true;
}

void Reorder::settle(Entry& e, std::uint32_t bi, bool released_oldest) noexcept {
    Buffer& b = buffers_[bi];
    while (b.held > 0 && all_live_paths_past(b, e.next)) {
        ++c_.gaps_skipped;
        skip_gap(e, b);
        released_oldest = drain(e, b, false) || released_oldest;
    }
    if (b.held == 0) {
        free_buffer(e);
        return;
    }
    if (released_oldest) {
        recompute_oldest(e, b);
    }
    const std::uint64_t deadline = b.oldest + b.timeout;
    if (b.heap_pos == kNone || deadline != b.deadline) {
        b.deadline = deadline;
        heap_set(bi);
    }
}

void Reorder::recompute_oldest(const Entry& e, Buffer& b) noexcept {
    std::uint64_t oldest = UINT64_MAX;
    std::uint32_t seen = 0;
    for (std::uint32_t k = 0; k < window_ && seen < b.held; ++k) {
        const std::size_t idx = slot(e.buffer, e.next + k);
        if (slot_mbuf_[idx] != nullptr) {
            ++seen;
            oldest = std::min(oldest, slot_arrival_[idx]);
        }
    }
    b.oldest = oldest;
}

void Reorder::free_buffer(Entry& e) noexcept {
    const std::uint32_t bi = e.buffer;
    heap_erase(bi);
    free_.push_back(bi);
    e.buffer = kNone;
}

std::uint64_t Reorder::timeout_for(const Entry& e, const UplinkMeta& meta) const noexcept {
    const std::uint64_t longest =
        meta.timeout_us != 0 ? meta.timeout_us * cycles_per_us_ : timeout_cycles_;
    if (e.wait_us == 0) {
        return longest;  // nothing measured yet
    }
    const std::uint64_t shortest = std::min(min_timeout_cycles_, longest);
    return std::clamp<std::uint64_t>(2ull * e.wait_us * cycles_per_us_, shortest, longest);
}

// ---- timers ----

void Reorder::count_wait(std::uint64_t arrival) noexcept {
    const std::uint64_t us = now_ > arrival ? (now_ - arrival) / cycles_per_us_ : 0;
    const auto b = std::min<std::size_t>(static_cast<std::size_t>(std::bit_width(us)),
                                         ReorderCounters::kWaitBuckets - 1);
    ++c_.wait_us_log2[b];
}

void Reorder::expire(std::uint64_t now) noexcept {
    now_ = now;
    while (!heap_.empty() && buffers_[heap_[0]].deadline <= now) {
        const std::uint32_t bi = heap_[0];
        Buffer& b = buffers_[bi];
        Entry& e = entries_[b.session];
        ++c_.gaps_timed_out;
        state(b.session).reorder_timeouts.fetch_add(1, std::memory_order_relaxed);
        skip_gap(e, b);
        const bool released_oldest = drain(e, b, true);
        settle(e, bi, released_oldest);
    }
    flush_out();
}

std::uint64_t Reorder::next_deadline() const noexcept {
    return heap_.empty() ? UINT64_MAX : buffers_[heap_[0]].deadline;
}

void Reorder::drop_all() noexcept {
    flush_out();
    while (!heap_.empty()) {
        Entry& e = entries_[buffers_[heap_[0]].session];
        Buffer& b = buffers_[e.buffer];
        for (std::uint32_t k = 0; k < window_ && b.held > 0; ++k) {
            const std::size_t idx = slot(e.buffer, e.next + k);
            if (rte_mbuf* m = slot_mbuf_[idx]; m != nullptr) {
                slot_mbuf_[idx] = nullptr;
                --b.held;
                --held_total_;
                ++c_.drops[static_cast<std::size_t>(ReorderDrop::kShutdown)];
                rte_pktmbuf_free(m);
            }
        }
        free_buffer(e);
    }
}

// ---- min-heap of buffers by deadline ----

void Reorder::heap_swap(std::uint32_t a, std::uint32_t b) noexcept {
    std::swap(heap_[a], heap_[b]);
    buffers_[heap_[a]].heap_pos = a;
    buffers_[heap_[b]].heap_pos = b;
}

void Reorder::heap_up(std::uint32_t pos) noexcept {
    while (pos > 0) {
        const std::uint32_t parent = (pos - 1) / 2;
        if (buffers_[heap_[parent]].deadline <= buffers_[heap_[pos]].deadline) {
            break;
        }
        heap_swap(pos, parent);
        pos = parent;
    }
}

void Reorder::heap_down(std::uint32_t pos) noexcept {
    const auto n = static_cast<std::uint32_t>(heap_.size());
    for (;;) {
        const std::uint32_t l = 2 * pos + 1, r = l + 1;
        std::uint32_t least = pos;
        if (l < n && buffers_[heap_[l]].deadline < buffers_[heap_[least]].deadline) {
            least = l;
        }
        if (r < n && buffers_[heap_[r]].deadline < buffers_[heap_[least]].deadline) {
            least = r;
        }
        if (least == pos) {
            return;
        }
        heap_swap(pos, least);
        pos = least;
    }
}

void Reorder::heap_set(std::uint32_t bi) noexcept {
    Buffer& b = buffers_[bi];
    if (b.heap_pos == kNone) {
        b.heap_pos = static_cast<std::uint32_t>(heap_.size());
        heap_.push_back(bi);
        heap_up(b.heap_pos);
    } else {
        heap_up(b.heap_pos);
        heap_down(b.heap_pos);
    }
}

void Reorder::heap_erase(std::uint32_t bi) noexcept {
    const std::uint32_t pos = buffers_[bi].heap_pos;
    if (pos == kNone) {
        return;
    }
    const auto last = static_cast<std::uint32_t>(heap_.size() - 1);
    if (pos != last) {
        heap_swap(pos, last);
    }
    heap_.pop_back();
    buffers_[bi].heap_pos = kNone;
    if (pos < heap_.size()) {
        const std::uint32_t moved = heap_[pos];
        heap_up(pos);
        heap_down(buffers_[moved].heap_pos);
    }
}

}  // namespace hag::dp
