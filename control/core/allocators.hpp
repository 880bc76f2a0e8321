// Allocators of the LMA: home network prefixes from configured pools (RFC 5213 §5.3.1 — the LMA
// assigns the HNP) and uplink GRE keys (RFC 5845 §3: the LMA chooses the key the MAG uses
// toward it). Owned by the signalling thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "binding_cache.hpp"
#include "hag/result.hpp"

namespace hag::control {

enum class AllocError : std::uint8_t {
    kExhausted,     // nothing free
    kNotInPool,     // requested prefix is outside the pool or of the wrong length
    kInUse,         // requested prefix or key already assigned
    kNotAllocated,  // release of something not assigned
};
std::string_view to_string(AllocError e) noexcept;

// Carves prefixes of `assign_length` out of `pool` (e.g. /64s out of a /40).
class PrefixPool {
  public:
    // pool.length < assign_length <= 128 and assign_length - pool.length <= 32 (checked by the
    // configuration loader; violated here it yields an empty pool).
    PrefixPool(std::string name, Prefix pool, std::uint8_t assign_length);

    Result<Prefix, AllocError> allocate();
    Result<void, AllocError> claim(const Prefix& p);  // honour a requested prefix
    Result<void, AllocError> release(const Prefix& p);
    [[nodiscard]] bool contains(const Prefix& p) const noexcept;
    [[nodiscard]] std::uint64_t capacity() const noexcept { return capacity_; }
    [[nodiscard]] std::uint64_t in_use() const noexcept { return used_.size(); }
    [[nodiscard]] const std::string& name() const noexcept { return name_; }

  private:
    [[nodiscard]] Prefix at(std::uint64_t index) const;
    [[nodiscard]] std::optional<std::uint64_t> index_of(const Prefix& p) const;

    std::string name_;
    Prefix pool_;
    std::uint8_t assign_length_;
    std::uint64_t capacity_;
    std::uint64_t next_ = 0;           // never handed out at or above this index
    std::vector<std::uint64_t> free_;  // released indexes below next_
    std::unordered_set<std::uint64_t> used_;
};

// Unique non-zero 32-bit GRE keys.
class GreKeyAllocator {
  public:
    // Keys are allocated from [min, max] (a node's range in a cluster, docs/scale-out.md);
    // claim() also takes keys outside it (a binding taken over from another node).
    explicit GreKeyAllocator(std::uint32_t min = 1, std::uint32_t max = 0xffffffffu)
        : min_(min == 0 ? 1 : min), max_(max < min_ ? min_ : max), next_(min_) {}
    Result<std::uint32_t, AllocError> allocate();
    Result<void, AllocError> claim(std::uint32_t key);  // e.g. restored from a persisted cache
    Result<void, AllocError> release(std::uint32_t key);
    [[nodiscard]] std::size_t in_use() const noexcept { return used_.size(); }

  private:
    std::uint32_t min_ = 1;
    std::uint32_t max_ = 0xffffffffu;
    std::uint32_t next_ = 1;
    std::unordered_set<std::uint32_t> used_;
};

}  // namespace hag::control
