#include "tables/prefix_table.hpp"

#include <cstring>

namespace hag::dp {

template <std::size_t AddrLen>
PrefixTable<AddrLen>::PrefixTable(std::string name, std::uint32_t entries, Rcu& rcu)
    : name_(std::move(name)), entries_(entries), rcu_(rcu) {}

template <std::size_t AddrLen>
PrefixTable<AddrLen>::~PrefixTable() {
    for (auto& l : levels_) {
        std::unique_ptr<Hash> owned(l.hash.load());
    }
}

template <std::size_t AddrLen>
typename PrefixTable<AddrLen>::Address PrefixTable<AddrLen>::mask(const Address& a,
                                                                  std::uint8_t length) noexcept {
    // The first length / 8 octets as they are, the partial octet masked, the rest zero
    // (called per level per packet: no per-octet branches).
    Address m = a;
    const std::size_t full = length / 8;
    if (full < AddrLen) {
        const unsigned rest = length % 8;
        m[full] = rest != 0 ? static_cast<std::uint8_t>(a[full] & (0xff << (8 - rest))) : 0;
        std::memset(m.data() + full + 1, 0, AddrLen - full - 1);
    }
    return m;
}

template <std::size_t AddrLen>
Result<typename PrefixTable<AddrLen>::Hash*, std::string> PrefixTable<AddrLen>::level_for(
    std::uint8_t length) {
    const unsigned n = count_.load(std::memory_order_relaxed);
    for (unsigned i = 0; i < n; ++i) {
        if (levels_[i].length.load(std::memory_order_relaxed) == length) {
            return levels_[i].hash.load(std::memory_order_relaxed);
        }
    }
    if (n == kMaxLengths) {
        return unexpected(name_ + ": more than 8 distinct prefix lengths in use");
    }
    auto made = Hash::create(name_ + "_" + std::to_string(length), entries_, rcu_);
    if (!made) {
        return unexpected(made.error());
    }
    Hash* h = made.value().release();  // owned by levels_ (freed by the destructor)
    // Append: readers see either the old count, ignoring this slot, or the new count with the
    // slot complete.
    levels_[n].hash.store(h, std::memory_order_relaxed);
    levels_[n].length.store(length, std::memory_order_relaxed);
    Address ones;
    ones.fill(0xff);
    levels_[n].bits = mask(ones, length);
    count_.store(n + 1, std::memory_order_release);
    return h;
}

template <std::size_t AddrLen>
Result<void, std::string> PrefixTable<AddrLen>::add(const Address& prefix, std::uint8_t length,
                                                    std::uint32_t value) {
    if (length > AddrLen * 8) {
        return unexpected(name_ + ": prefix length " + std::to_string(length) + " too long");
    }
    auto h = level_for(length);
    if (!h) {
        return unexpected(h.error());
    }
    if (auto r = (*h)->add(mask(prefix, length), value); !r) {
        return unexpected(r.error() + " for /" + std::to_string(length));
    }
    return {};
}

template <std::size_t AddrLen>
Result<void, std::string> PrefixTable<AddrLen>::remove(const Address& prefix, std::uint8_t length) {
    const unsigned n = count_.load(std::memory_order_relaxed);
    for (unsigned i = 0; i < n; ++i) {
        if (levels_[i].length.load(std::memory_order_relaxed) == length) {
            const Address key = mask(prefix, length);
            if (!levels_[i].hash.load(std::memory_order_relaxed)->remove(key)) {
                return unexpected(name_ + ": prefix not present");
            }
            return {};
        }
    }
    return unexpected(name_ + ": prefix not present");
}

template <std::size_t AddrLen>
bool PrefixTable<AddrLen>::lookup(const Address& addr, std::uint32_t& value) const noexcept {
    const unsigned n = count_.load(std::memory_order_acquire);
    int best = -1;
    for (unsigned i = 0; i < n; ++i) {
        const int len = levels_[i].length.load(std::memory_order_relaxed);
        if (len <= best) {
            continue;
        }
        const Address key = apply(addr, levels_[i].bits);
        std::uint32_t v = 0;
        if (levels_[i].hash.load(std::memory_order_relaxed)->lookup(key, v)) {
            best = len;
            value = v;
        }
    }
    return best >= 0;
}

template <std::size_t AddrLen>
std::uint64_t PrefixTable<AddrLen>::lookup_bulk(const Address* const* addrs, unsigned n,
                                                std::uint32_t* values) const noexcept {
    static_assert(kBulkMax <= Hash::kBulkMax);
    n = n < kBulkMax ? n : kBulkMax;
    const unsigned levels = count_.load(std::memory_order_acquire);
    Address keys[kBulkMax];
    const Address* key_ptrs[kBulkMax];
    if (levels == 1) {
        // One prefix length in use (the usual deployment, and every exact-match table): no
        // longest-match bookkeeping; a full-length "prefix" needs no masked copy either.
        const Level& lv = levels_[0];
        const Address* const* ptrs = addrs;
        if (lv.length.load(std::memory_order_relaxed) != AddrLen * 8) {
            for (unsigned i = 0; i < n; ++i) {
                keys[i] = apply(*addrs[i], lv.bits);
                key_ptrs[i] = &keys[i];
            }
            ptrs = key_ptrs;
        }
        return lv.hash.load(std::memory_order_relaxed)->lookup_bulk(ptrs, n, values);
    }
    std::uint64_t found = 0;
    int best[kBulkMax];
    for (unsigned i = 0; i < n; ++i) {
        best[i] = -1;
    }
    std::uint32_t data[kBulkMax];
    std::uint8_t which[kBulkMax];
    for (unsigned l = 0; l < levels; ++l) {
        const int len = levels_[l].length.load(std::memory_order_relaxed);
        const Address& bits = levels_[l].bits;
        unsigned k = 0;
        for (unsigned i = 0; i < n; ++i) {
            if (len > best[i]) {
                keys[k] = apply(*addrs[i], bits);
                key_ptrs[k] = &keys[k];
                which[k++] = static_cast<std::uint8_t>(i);
            }
        }
        if (k == 0) {
            continue;
        }
        std::uint64_t hits =
            levels_[l].hash.load(std::memory_order_relaxed)->lookup_bulk(key_ptrs, k, data);
        for (; hits != 0; hits &= hits - 1) {
            const unsigned j = static_cast<unsigned>(__builtin_ctzll(hits));
            const unsigned i = which[j];
            best[i] = len;
            values[i] = data[j];
            found |= std::uint64_t{1} << i;
        }
    }
    return found;
}

template <std::size_t AddrLen>
std::uint32_t PrefixTable<AddrLen>::size() const noexcept {
    std::uint32_t total = 0;
    const unsigned n = count_.load(std::memory_order_acquire);
    for (unsigned i = 0; i < n; ++i) {
        total += levels_[i].hash.load()->size();
    }
    return total;
}

template class PrefixTable<16>;
template class PrefixTable<4>;

}  // namespace hag::dp
