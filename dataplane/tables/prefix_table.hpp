// Longest-prefix match for subscriber prefixes, read lock-free by workers.
//
// One FlatHash (tables/flat_hash.hpp: open addressing, key and value in one cache line,
// RCU-reclaimed slots) per prefix length in use, keyed by the masked address. A lookup probes the
// lengths in use from longest to shortest; deployments use few lengths (/64 HNPs, /56 delegated
// prefixes, /32 IPv4 home addresses), so a lookup is a handful of hash probes, and every update is
// a single lock-free hash write — no rebuild.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

#include "hag/result.hpp"
#include "tables/flat_hash.hpp"
#include "tables/rcu.hpp"

namespace hag::dp {

template <std::size_t AddrLen>
class PrefixTable {
  public:
    using Address = std::array<std::uint8_t, AddrLen>;
    static constexpr unsigned kMaxLengths = 8;  // distinct prefix lengths in use at once

    // name: unique among DPDK objects; entries: capacity per prefix length.
    PrefixTable(std::string name, std::uint32_t entries, Rcu& rcu);
    ~PrefixTable();
    PrefixTable(const PrefixTable&) = delete;
    PrefixTable& operator=(const PrefixTable&) = delete;

    // Writer (main lcore) only.
    Result<void, std::string> add(const Address& prefix, std::uint8_t length, std::uint32_t value);
    Result<void, std::string> remove(const Address& prefix, std::uint8_t length);

    // Any reader registered with the RCU. Returns false when no prefix matches.
    bool lookup(const Address& addr, std::uint32_t& value) const noexcept;
    // The same for n <= kBulkMax addresses at once, one FlatHash::lookup_bulk per length
    // (its hashing and bucket prefetches overlap across the addresses): bit i of the result is
    // set when addrs[i] matched, its value in values[i] (untouched otherwise).
    static constexpr unsigned kBulkMax = 64;
    std::uint64_t lookup_bulk(const Address* const* addrs, unsigned n,
                              std::uint32_t* values) const noexcept;

    [[nodiscard]] std::uint32_t size() const noexcept;

  private:
    using Hash = FlatHash<AddrLen>;
    struct Level {
        std::atomic<Hash*> hash{nullptr};
        std::atomic<std::uint8_t> length{0};
        // The length as a bit mask (written before count_ publishes the level, never after):
        // a lookup masks an address with one or two word ANDs.
        Address bits{};
    };
    Result<Hash*, std::string> level_for(std::uint8_t length);
    static Address mask(const Address& a, std::uint8_t length) noexcept;
    static Address apply(const Address& a, const Address& bits) noexcept {
        using Word = std::conditional_t<AddrLen % 8 == 0, std::uint64_t, std::uint32_t>;
        constexpr std::size_t kWords = AddrLen / sizeof(Word);
        Word x[kWords], y[kWords];
        std::memcpy(x, a.data(), AddrLen);
        std::memcpy(y, bits.data(), AddrLen);
        for (std::size_t i = 0; i < kWords; ++i) {
            x[i] &= y[i];
        }
        Address m;
        std::memcpy(m.data(), x, AddrLen);
        return m;
    }

    std::string name_;
    std::uint32_t entries_;
    Rcu& rcu_;
    // Levels in order of creation; count_ is published last (release). Lookups scan all
    // levels and keep the longest match.
    std::array<Level, kMaxLengths> levels_;
    std::atomic<unsigned> count_{0};
};

using Prefix6Table = PrefixTable<16>;
using Prefix4Table = PrefixTable<4>;

}  // namespace hag::dp
