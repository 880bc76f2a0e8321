// Next hops of the data plane: (port, IP address) -> MAC address, resolved at run time.
//
// Workers read a next hop by index (held in a PathConfig or the uplink context): one relaxed
// 64-bit atomic load, no lock, no hash. The MAC and a "resolved" bit share that word, so a reader
// never sees half a MAC. A worker that finds a next hop unresolved drops the packet and raises
// the entry's `wanted` flag; the main lcore (the one writer) asks the kernel to resolve it.
//
// Entries are reference-counted by the writer (several paths share one next hop); an index
// whose last reference is released is reused only after an RCU grace period, so a reader still
// holding it (through an old SessionConfig) never reads another next hop's MAC.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "hag/result.hpp"
#include "tables/rcu.hpp"
#include "tables/session_table.hpp"

namespace hag::dp {

class NextHopTable {
  public:
    using Index = std::uint32_t;
    static constexpr Index kNone = UINT32_MAX;

    struct Entry {  // writer-side view
        std::uint16_t port = 0;
        IpAddr addr;
        std::uint32_t refs = 0;
    };

    NextHopTable(std::uint32_t capacity, Rcu& rcu);
    ~NextHopTable() { rcu_.synchronize(); }  // deferred frees refer to this table
    NextHopTable(const NextHopTable&) = delete;
    NextHopTable& operator=(const NextHopTable&) = delete;

    // ---- writer (main lcore) ----
    // The next hop for (port, addr), created unresolved if new; one more reference.
    Result<Index, std::string> acquire(std::uint16_t port, const IpAddr& addr);
    // Drops one reference; the last one frees the index after a grace period.
    void release(Index i);
    [[nodiscard]] Index find(std::uint16_t port, const IpAddr& addr) const noexcept;
    void set_mac(Index i, const MacAddr& mac) noexcept;
    void clear_mac(Index i) noexcept;
    // Indices in use, in creation order.
    [[nodiscard]] const std::vector<Index>& in_use() const noexcept { return in_use_; }
    [[nodiscard]] const Entry& entry(Index i) const noexcept { return entries_[i]; }
    [[nodiscard]] bool wanted(Index i) const noexcept {
        return slots_[i].wanted.load(std::memory_order_relaxed) != 0;
    }
    // Returns and clears the wanted flag (set by workers on a miss).
    bool take_wanted(Index i) noexcept {
        return slots_[i].wanted.load(std::memory_order_relaxed) &&
               slots_[i].wanted.exchange(0, std::memory_order_relaxed);
    }
    [[nodiscard]] std::uint32_t capacity() const noexcept { return capacity_; }

    // ---- readers (workers) ----
    // The resolved MAC of next hop i; false (and `mac` untouched) when unresolved.
    bool mac(Index i, MacAddr& out) const noexcept {
        const std::uint64_t w = slots_[i].mac.load(std::memory_order_relaxed);
        if ((w & kResolved) == 0) {
            return false;
        }
        for (int b = 0; b < 6; ++b) {
            out[static_cast<std::size_t>(b)] = static_cast<std::uint8_t>(w >> (40 - 8 * b));
        }
        return true;
    }
    // Marks next hop i as wanted (a packet was dropped for it). Cheap when already set.
    void want(Index i) const noexcept {
        if (!slots_[i].wanted.load(std::memory_order_relaxed)) {
            slots_[i].wanted.store(1, std::memory_order_relaxed);
        }
    }

  private:
    static constexpr std::uint64_t kResolved = std::uint64_t{1} << 48;
    struct Slot {
        std::atomic<std::uint64_t> mac{0};
        mutable std::atomic<std::uint8_t> wanted{0};
    };
    using Key = std::pair<std::uint16_t, std::array<std::uint8_t, 17>>;
    static Key key_of(std::uint16_t port, const IpAddr& a) noexcept;

    std::uint32_t capacity_;
    Rcu& rcu_;
    std::unique_ptr<Slot[]> slots_;
    std::vector<Entry> entries_;
    std::map<Key, Index> by_key_;
    std::vector<Index> free_;
    std::vector<Index> in_use_;
};

}  // namespace hag::dp
