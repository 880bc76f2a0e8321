// A flat, open-addressed exact-match table for the fast path's lookups (subscriber prefixes by
// masked address, sessions by uplink GRE key or care-of address): the keys and their values
// (session ids) live in the bucket lines themselves, so a lookup costs one cache line (one
// miss) where rte_hash costs two (the bucket's signatures, then the key store's entry).
//
// Layout: a power-of-two array of 64-octet buckets (one cache line each), from DPDK memory
// (rte_zmalloc) when the EAL runs on hugepages, else anonymous memory advised for transparent
// huge pages (with --no-huge, DPDK's memory is on 4 kB pages: a TLB miss and a page walk per
// lookup in a table of megabytes, on top of the bucket's cache miss). A bucket holds kSlots (key,
// value) slots — 3 for 16-octet keys, 7 for 4-octet keys — and `reach`: how many buckets after it
// the keys whose home it is may have spilled into. A key's home is CRC32C(key) & mask; it is stored
// in the first empty slot of its home bucket or of the next ones (linear probing by bucket), at
// most kMaxProbe - 1 buckets away. A lookup reads the home bucket's reach and compares the
// slots of home .. home + reach: usually one line. The table is sized at creation (at most
// 3/4 full with `entries` keys) and never resized; a key with no empty slot within kMaxProbe
// buckets of its home is refused ("full"), never loops.
//
// Concurrency: one writer (the main lcore), any number of lock-free readers registered with
// the Rcu (workers), no locks, no per-bucket version counters:
//   - a slot's value word says what the slot is: 0 empty, 1 deleted (waiting for a grace
//     period), v + 2 a live key with value v. Readers load it (acquire) before the key;
//   - insert: the writer fills the key words of an empty slot, raises the home's reach if
//     needed, then stores the value word (release). A reader sees either an empty slot (and
//     ignores its key) or the complete key;
//   - update of a present key: one store of its value word (readers see the old or new value);
//   - delete: the value word becomes 1 (deleted; readers skip it). The slot's key words are not
//     rewritten until an RCU grace period has passed (every reader quiescent since), so a
//     reader that loaded the live value before the delete compares the key it was published
//     with. Deleted slots are recycled by the writer once their grace period is over; when a
//     key finds no empty slot but deleted ones wait in its window, the writer waits for one
//     grace period (rte_rcu_qsbr_synchronize, as rte_hash does) and tries again;
//   - entries never move (no relocation, no backward shift), so a key present across a
//     lookup is always found where the lookup looks. A home's reach grows before a spilled
//     key is published and shrinks only after the last spilled key of that home is deleted
//     (a reader with the old, larger reach only compares more slots).
// Keys and values are atomics (relaxed 64- or 32-bit loads: plain moves on x86), so a reader
// comparing a slot that the writer is filling is not a data race in the C++ sense.
#pragma once

#include <nmmintrin.h>  // SSE4.2 CRC32C (DPDK's -march=corei7 has it)
#include <rte_prefetch.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <string>

#include "hag/result.hpp"
#include "tables/rcu.hpp"

namespace hag::dp {

template <std::size_t KeyLen>
class FlatHash {
    static_assert(KeyLen == 4 || KeyLen == 16, "4- or 16-octet keys");
    using Word = std::conditional_t<KeyLen % 8 == 0, std::uint64_t, std::uint32_t>;
    static constexpr unsigned kWords = KeyLen / sizeof(Word);

  public:
    using Key = std::array<std::uint8_t, KeyLen>;
    static constexpr unsigned kSlots = (64 - 4) / (KeyLen + 4);  // 3 or 7
    static constexpr unsigned kMaxProbe = 128;                   // buckets from the home
    static constexpr std::uint32_t kMaxValue = UINT32_MAX - 2;
    static constexpr unsigned kBulkMax = 64;

    // name: unique among DPDK memory zones; entries: keys it must hold (load <= 3/4).
    static Result<std::unique_ptr<FlatHash>, std::string> create(const std::string& name,
                                                                 std::uint32_t entries, Rcu& rcu);
    ~FlatHash();
    FlatHash(const FlatHash&) = delete;
    FlatHash& operator=(const FlatHash&) = delete;

    // ---- writer ----
    // Adds `key` or replaces its value. Refused (nothing changed) when value > kMaxValue or no
    // slot within kMaxProbe buckets of the key's home is free after a grace period.
    Result<void, std::string> add(const Key& key, std::uint32_t value);
    // False when the key is not present.
    bool remove(const Key& key);
    // Recycles deleted slots whose grace period is over (non-blocking); add() calls it too.
    void reclaim();
    [[nodiscard]] std::uint32_t size() const noexcept { return live_; }
    [[nodiscard]] std::uint32_t buckets() const noexcept { return mask_ + 1; }
    [[nodiscard]] std::size_t pending_deleted() const noexcept { return deleted_.size(); }
    // Largest reach of any bucket (tests: probe lengths stay bounded).
    [[nodiscard]] unsigned max_reach() const noexcept;

    // ---- readers ----
    [[nodiscard]] std::uint32_t home(const Key& key) const noexcept { return hash(key) & mask_; }
    void prefetch(std::uint32_t home) const noexcept { rte_prefetch0(&buckets_[home]); }
    bool lookup(const Key& key, std::uint32_t& value) const noexcept {
        return lookup_at(key, home(key), value);
    }
    // The same with the home computed (and its bucket prefetched) beforehand.
    bool lookup_at(const Key& key, std::uint32_t home, std::uint32_t& value) const noexcept {
        Word w[kWords];
        std::memcpy(w, key.data(), KeyLen);
        const Bucket* b = &buckets_[home];
        const unsigned reach = b->reach.load(std::memory_order_relaxed);
        for (unsigned d = 0;; ++d) {
            for (unsigned s = 0; s < kSlots; ++s) {
                const std::uint32_t v = b->value[s].load(std::memory_order_acquire);
                if (v >= 2 && equal(*b, s, w)) {
                    value = v - 2;
                    return true;
                }
            }
            if (d == reach) {
                return false;
            }
            b = &buckets_[(home + d + 1) & mask_];
        }
    }
    // n <= kBulkMax keys: homes computed and buckets prefetched for all before any compare.
    // Bit i of the result is set when keys[i] was found, its value in values[i].
    std::uint64_t lookup_bulk(const Key* const* keys, unsigned n,
                              std::uint32_t* values) const noexcept {
        std::uint32_t homes[kBulkMax];
        n = n < kBulkMax ? n : kBulkMax;
        for (unsigned i = 0; i < n; ++i) {
            homes[i] = home(*keys[i]);
            prefetch(homes[i]);
        }
        std::uint64_t found = 0;
        for (unsigned i = 0; i < n; ++i) {
            if (lookup_at(*keys[i], homes[i], values[i])) {
                found |= std::uint64_t{1} << i;
            }
        }
        return found;
    }

  private:
    struct alignas(64) Bucket {
        std::atomic<std::uint32_t> value[kSlots];
        std::atomic<std::uint8_t> reach;
        std::atomic<Word> key[kSlots][kWords];
    };
    static_assert(sizeof(Bucket) == 64);

    struct Token {
        explicit Token() = default;
    };

  public:
    // mapped: the buckets' size when they are anonymous memory (munmap), 0 for DPDK memory.
    FlatHash(Token, std::string name, Bucket* buckets, std::uint32_t mask, Rcu& rcu,
             std::size_t mapped)
        : name_(std::move(name)), buckets_(buckets), mask_(mask), rcu_(rcu), mapped_(mapped) {}

  private:
    // CRC32C is linear over GF(2): keys that differ in a few bits (sequential prefixes, keys,
    // addresses) can share many low bits of their CRC. A multiply-xorshift finaliser spreads
    // every input bit over the bucket index. Inline: every lookup of every packet hashes (a
    // call per key showed as 1.5 % of the downlink worker).
    [[nodiscard]] static std::uint32_t mix(std::uint32_t h) noexcept {
        h ^= h >> 16;
        h *= 0x85ebca6bU;
        h ^= h >> 13;
        h *= 0xc2b2ae35U;
        h ^= h >> 16;
        return h;
    }
    [[nodiscard]] static std::uint32_t hash(const Key& key) noexcept {
        if constexpr (KeyLen == 16) {
            std::uint64_t a = 0, b = 0;
            std::memcpy(&a, key.data(), 8);
            std::memcpy(&b, key.data() + 8, 8);
            // The CRC32C instruction itself, not rte_hash_crc.h: that header brings a constructor
            // into every file that includes this one, which then needs DPDK's EAL library.
            return mix(static_cast<std::uint32_t>(_mm_crc32_u64(_mm_crc32_u64(0x9e3779b9U, a), b)));
        } else {
            std::uint32_t a = 0;
            std::memcpy(&a, key.data(), 4);
            return mix(_mm_crc32_u32(0x9e3779b9U, a));
        }
    }
    static bool equal(const Bucket& b, unsigned s, const Word* w) noexcept {
        Word diff = 0;
        for (unsigned i = 0; i < kWords; ++i) {
            diff |= b.key[s][i].load(std::memory_order_relaxed) ^ w[i];
        }
        return diff == 0;
    }
    // Writer: the slot (bucket index * kSlots + slot) holding key, or UINT32_MAX.
    std::uint32_t find(const Key& key, std::uint32_t home) const noexcept;
    void shrink_reach(std::uint32_t home);

    std::string name_;
    Bucket* buckets_;
    std::uint32_t mask_;
    Rcu& rcu_;
    std::size_t mapped_;
    std::uint32_t live_ = 0;
    // Deleted slots and the RCU token after which no reader can still compare their keys.
    std::deque<std::pair<std::uint64_t, std::uint32_t>> deleted_;
};

extern template class FlatHash<16>;
extern template class FlatHash<4>;

}  // namespace hag::dp
