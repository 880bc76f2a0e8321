#include "tables/flat_hash.hpp"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <sys/mman.h>

#include <new>

namespace hag::dp {

template <std::size_t KeyLen>
Result<std::unique_ptr<FlatHash<KeyLen>>, std::string> FlatHash<KeyLen>::create(
    const std::string& name, std::uint32_t entries, Rcu& rcu) {
    // At most 3/4 full with `entries` keys: the number of buckets a power of two.
    const std::uint64_t want = (std::uint64_t{entries} * 4 / 3 + kSlots - 1) / kSlots;
    std::uint64_t n = 64;
    while (n < want) {
        n *= 2;
    }
    if (n > (std::uint64_t{1} << 31)) {
        return unexpected(name + ": " + std::to_string(entries) + " entries is too many");
    }
    const std::size_t bytes = n * sizeof(Bucket);
    void* mem = nullptr;
    std::size_t mapped = 0;
    if (rte_eal_has_hugepages() != 0) {
        mem = rte_zmalloc_socket(name.c_str(), bytes, RTE_CACHE_LINE_SIZE,
                                 static_cast<int>(rte_socket_id()));
    } else {
        // Zero-filled; the kernel aligns mappings of 2 MB and more to huge pages.
        mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED) {
            mem = nullptr;
        } else {
            (void)madvise(mem, bytes, MADV_HUGEPAGE);
            mapped = bytes;
        }
    }
    if (mem == nullptr) {
        return unexpected(name + ": cannot allocate " + std::to_string(bytes >> 20) + " MB of " +
                          (rte_eal_has_hugepages() != 0 ? "DPDK" : "anonymous") + " memory for " +
                          std::to_string(entries) + " entries");
    }
    auto* b = static_cast<Bucket*>(mem);
    for (std::uint64_t i = 0; i < n; ++i) {
        ::new (static_cast<void*>(b + i)) Bucket{};
    }
    return std::make_unique<FlatHash>(Token{}, name, b, static_cast<std::uint32_t>(n - 1), rcu,
                                      mapped);
}

template <std::size_t KeyLen>
FlatHash<KeyLen>::~FlatHash() {
    // Readers are gone (tables outlive the workers); Bucket is trivially destructible.
    static_assert(std::is_trivially_destructible_v<Bucket>);
    if (mapped_ != 0) {
        munmap(buckets_, mapped_);
    } else {
        rte_free(buckets_);
    }
}

template <std::size_t KeyLen>
std::uint32_t FlatHash<KeyLen>::find(const Key& key, std::uint32_t h) const noexcept {
    Word w[kWords];
    std::memcpy(w, key.data(), KeyLen);
    const unsigned reach = buckets_[h].reach.load(std::memory_order_relaxed);
    for (unsigned d = 0; d <= reach; ++d) {
        const std::uint32_t bi = (h + d) & mask_;
        for (unsigned s = 0; s < kSlots; ++s) {
            if (buckets_[bi].value[s].load(std::memory_order_relaxed) >= 2 &&
                equal(buckets_[bi], s, w)) {
                return bi * kSlots + s;
            }
        }
    }
    return UINT32_MAX;
}

template <std::size_t KeyLen>
void FlatHash<KeyLen>::reclaim() {
    while (!deleted_.empty() &&
           rte_rcu_qsbr_check(rcu_.qsbr(), deleted_.front().first, false) == 1) {
        const std::uint32_t slot = deleted_.front().second;
        buckets_[slot / kSlots].value[slot % kSlots].store(0, std::memory_order_relaxed);
        deleted_.pop_front();
    }
}

template <std::size_t KeyLen>
Result<void, std::string> FlatHash<KeyLen>::add(const Key& key, std::uint32_t value) {
    if (value > kMaxValue) {
        return unexpected(name_ + ": value " + std::to_string(value) + " out of range");
    }
    const std::uint32_t h = home(key);
    if (const std::uint32_t at = find(key, h); at != UINT32_MAX) {
        buckets_[at / kSlots].value[at % kSlots].store(value + 2, std::memory_order_release);
        return {};
    }
    reclaim();
    for (int attempt = 0; attempt < 2; ++attempt) {
        bool deleted_in_window = false;
        for (unsigned d = 0; d < kMaxProbe; ++d) {
            Bucket& b = buckets_[(h + d) & mask_];
            for (unsigned s = 0; s < kSlots; ++s) {
                const std::uint32_t v = b.value[s].load(std::memory_order_relaxed);
                if (v == 1) {
                    deleted_in_window = true;
                }
                if (v != 0) {
                    continue;
                }
                // An empty slot: no reader compares its key words (its value word says empty).
                Word w[kWords];
                std::memcpy(w, key.data(), KeyLen);
                for (unsigned i = 0; i < kWords; ++i) {
                    b.key[s][i].store(w[i], std::memory_order_relaxed);
                }
                Bucket& hb = buckets_[h];
                if (hb.reach.load(std::memory_order_relaxed) < d) {
                    hb.reach.store(static_cast<std::uint8_t>(d), std::memory_order_relaxed);
                }
                // Publishes the key words (and the reach) to readers that see the value.
                b.value[s].store(value + 2, std::memory_order_release);
                ++live_;
                return {};
            }
        }
        if (!deleted_in_window || attempt == 1) {
            break;
        }
        // Deleted slots wait for readers: one grace period (workers report every burst, so
        // this is short; readers never wait for it), then they are free.
        rte_rcu_qsbr_synchronize(rcu_.qsbr(), RTE_QSBR_THRID_INVALID);
        reclaim();
    }
    return unexpected(name_ + ": table full (no free slot within " + std::to_string(kMaxProbe) +
                      " buckets of the key's home)");
}

template <std::size_t KeyLen>
void FlatHash<KeyLen>::shrink_reach(std::uint32_t h) {
    Bucket& hb = buckets_[h];
    unsigned reach = hb.reach.load(std::memory_order_relaxed);
    // Down to the farthest bucket still holding a live key of this home.
    while (reach > 0) {
        const Bucket& b = buckets_[(h + reach) & mask_];
        bool holds = false;
        for (unsigned s = 0; s < kSlots && !holds; ++s) {
            if (b.value[s].load(std::memory_order_relaxed) >= 2) {
                Key k;
                Word w[kWords];
                for (unsigned i = 0; i < kWords; ++i) {
                    w[i] = b.key[s][i].load(std::memory_order_relaxed);
                }
                std::memcpy(k.data(), w, KeyLen);
                holds = home(k) == h;
            }
        }
        if (holds) {
            break;
        }
        --reach;
    }
    hb.reach.store(static_cast<std::uint8_t>(reach), std::memory_order_relaxed);
}

template <std::size_t KeyLen>
bool FlatHash<KeyLen>::remove(const Key& key) {
    const std::uint32_t h = home(key);
    const std::uint32_t at = find(key, h);
    if (at == UINT32_MAX) {
        return false;
    }
    buckets_[at / kSlots].value[at % kSlots].store(1, std::memory_order_release);
    --live_;
    deleted_.emplace_back(rte_rcu_qsbr_start(rcu_.qsbr()), at);
    // A reader that still loads the larger reach compares more slots, nothing else.
    if (((at / kSlots - h) & mask_) == buckets_[h].reach.load(std::memory_order_relaxed)) {
        shrink_reach(h);
    }
    return true;
}

template <std::size_t KeyLen>
unsigned FlatHash<KeyLen>::max_reach() const noexcept {
    unsigned m = 0;
    for (std::uint32_t i = 0; i <= mask_; ++i) {
        const unsigned r = buckets_[i].reach.load(std::memory_order_relaxed);
        m = r > m ? r : m;
    }
    return m;
}

template class FlatHash<16>;
template class FlatHash<4>;

}  // namespace hag::dp
