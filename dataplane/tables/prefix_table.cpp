#include "tables/prefix_table.hpp"

#include <rte_errno.h>
#include <rte_hash_crc.h>
#include <rte_lcore.h>

#include <cstring>

namespace hag::dp {

template <std::size_t AddrLen>
PrefixTable<AddrLen>::PrefixTable(std::string name, std::uint32_t entries, Rcu& rcu)
    : name_(std::move(name)), entries_(entries), rcu_(rcu) {}

template <std::size_t AddrLen>
PrefixTable<AddrLen>::~PrefixTable() {
    for (auto& l : levels_) {
        if (auto* h = l.hash.load()) {
            rte_hash_free(h);
        }
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
Result<rte_hash*, std::string> PrefixTable<AddrLen>::level_for(std::uint8_t length) {
    const unsigned n = count_.load(std::memory_order_relaxed);
    for (unsigned i = 0; i < n; ++i) {
        if (levels_[i].length.load(std::memory_order_relaxed) == length) {
            return levels_[i].hash.load(std::memory_order_relaxed);
        }
    }
    if (n == kMaxLengths) {
        return unexpected(name_ + ": more than 8 distinct prefix lengths in use");
    }
    const std::string hname = name_ + "_" + std::to_string(length);
    rte_hash_parameters params{};
    params.name = hname.c_str();
    params.entries = entries_;
    params.key_len = AddrLen;
    params.hash_func = rte_hash_crc;
    params.hash_func_init_val = 0;
    params.socket_id = static_cast<int>(rte_socket_id());
    params.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
    rte_hash* h = rte_hash_create(&params);
    if (h == nullptr) {
        return unexpected(name_ + ": cannot create hash for /" + std::to_string(length) + ": " +
                          rte_strerror(rte_errno));
    }
    rte_hash_rcu_config rc{};
    rc.v = rcu_.qsbr();
    rc.mode = RTE_HASH_QSBR_MODE_DQ;
    if (rte_hash_rcu_qsbr_add(h, &rc) != 0) {
        rte_hash_free(h);
        return unexpected(name_ + ": cannot attach RCU to hash: " + rte_strerror(rte_errno));
    }
    // Append: readers see either the old count, ignoring this slot, or the new count with the
    // slot complete.
    levels_[n].hash.store(h, std::memory_order_relaxed);
    levels_[n].length.store(length, std::memory_order_relaxed);
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
    const Address key = mask(prefix, length);
    void* data = reinterpret_cast<void*>(static_cast<std::uintptr_t>(value));
    int rc = rte_hash_add_key_data(*h, key.data(), data);
    if (rc == -ENOSPC) {
        // Deleted keys' slots return to the table only after every reader has been quiescent.
        // Wait for one grace period (workers report every burst, so this is short; readers are
        // never blocked by it) and try again, which lets the hash reclaim those slots.
        rte_rcu_qsbr_synchronize(rcu_.qsbr(), RTE_QSBR_THRID_INVALID);
        rc = rte_hash_add_key_data(*h, key.data(), data);
    }
    if (rc != 0) {
        return unexpected(name_ + ": table full for /" + std::to_string(length) + " (" +
                          rte_strerror(-rc) + ")");
    }
    return {};
}

template <std::size_t AddrLen>
Result<void, std::string> PrefixTable<AddrLen>::remove(const Address& prefix, std::uint8_t length) {
    const unsigned n = count_.load(std::memory_order_relaxed);
    for (unsigned i = 0; i < n; ++i) {
        if (levels_[i].length.load(std::memory_order_relaxed) == length) {
            const Address key = mask(prefix, length);
            if (rte_hash_del_key(levels_[i].hash.load(std::memory_order_relaxed), key.data()) < 0) {
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
        const Address key = mask(addr, static_cast<std::uint8_t>(len));
        void* data = nullptr;
        if (rte_hash_lookup_data(levels_[i].hash.load(std::memory_order_relaxed), key.data(),
                                 &data) >= 0) {
            best = len;
            value = static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(data));
        }
    }
    return best >= 0;
}

template <std::size_t AddrLen>
std::uint64_t PrefixTable<AddrLen>::lookup_bulk(const Address* const* addrs, unsigned n,
                                                std::uint32_t* values) const noexcept {
    static_assert(kBulkMax <= RTE_HASH_LOOKUP_BULK_MAX);
    n = n < kBulkMax ? n : kBulkMax;
    const unsigned levels = count_.load(std::memory_order_acquire);
    std::uint64_t found = 0;
    int best[kBulkMax];
    for (unsigned i = 0; i < n; ++i) {
        best[i] = -1;
    }
    Address keys[kBulkMax];
    const void* key_ptrs[kBulkMax];
    void* data[kBulkMax];
    std::uint8_t which[kBulkMax];
    for (unsigned l = 0; l < levels; ++l) {
        const int len = levels_[l].length.load(std::memory_order_relaxed);
        unsigned k = 0;
        for (unsigned i = 0; i < n; ++i) {
            if (len > best[i]) {
                keys[k] = mask(*addrs[i], static_cast<std::uint8_t>(len));
                key_ptrs[k] = keys[k].data();
                which[k++] = static_cast<std::uint8_t>(i);
            }
        }
        if (k == 0) {
            continue;
        }
        std::uint64_t hits = 0;
        if (rte_hash_lookup_bulk_data(levels_[l].hash.load(std::memory_order_relaxed), key_ptrs, k,
                                      &hits, data) <= 0) {
            continue;
        }
        for (; hits != 0; hits &= hits - 1) {
            const unsigned j = static_cast<unsigned>(__builtin_ctzll(hits));
            const unsigned i = which[j];
            best[i] = len;
            values[i] = static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(data[j]));
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
        total += static_cast<std::uint32_t>(rte_hash_count(levels_[i].hash.load()));
    }
    return total;
}

template class PrefixTable<16>;
template class PrefixTable<4>;

}  // namespace hag::dp
