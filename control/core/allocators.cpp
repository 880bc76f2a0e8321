#include "allocators.hpp"

namespace hag::control {

std::string_view to_string(AllocError e) noexcept {
    switch (e) {
        case AllocError::kExhausted:
            return "pool exhausted";
        case AllocError::kNotInPool:
            return "not part of the pool";
        case AllocError::kInUse:
            return "already assigned";
        case AllocError::kNotAllocated:
            return "not assigned";
    }
    return "unknown allocation error";
}

namespace {
// Reads/writes `bits` bits of `a` starting at bit `from` (bit 0 = most significant).
std::uint64_t get_bits(const Ipv6Address& a, unsigned from, unsigned bits) {
    std::uint64_t v = 0;
    for (unsigned i = 0; i < bits; ++i) {
        const unsigned b = from + i;
        v = v << 1 | ((a[b / 8] >> (7 - b % 8)) & 1u);
    }
    return v;
}
void set_bits(Ipv6Address& a, unsigned from, unsigned bits, std::uint64_t v) {
    for (unsigned i = 0; i < bits; ++i) {
        const unsigned b = from + bits - 1 - i;
        const auto mask = static_cast<std::uint8_t>(1u << (7 - b % 8));
        if ((v >> i) & 1u) {
            a[b / 8] |= mask;
        } else {
            a[b / 8] &= static_cast<std::uint8_t>(~mask);
        }
    }
}
}  // namespace

PrefixPool::PrefixPool(std::string name, Prefix pool, std::uint8_t assign_length)
    : name_(std::move(name)), pool_(pool), assign_length_(assign_length) {
    const bool sane =
        pool.length < assign_length && assign_length <= 128 && assign_length - pool.length <= 32;
    capacity_ = sane ? (std::uint64_t{1} << (assign_length - pool.length)) : 0;
}

Prefix PrefixPool::at(std::uint64_t index) const {
    Prefix p{pool_.addr, assign_length_};
    set_bits(p.addr, pool_.length, assign_length_ - pool_.length, index);
    for (unsigned b = assign_length_; b < 128; ++b) {
        p.addr[b / 8] &= static_cast<std::uint8_t>(~(1u << (7 - b % 8)));
    }
    return p;
}

std::optional<std::uint64_t> PrefixPool::index_of(const Prefix& p) const {
    if (capacity_ == 0 || p.length != assign_length_ || !host_bits_clear(p.addr, p.length)) {
        return std::nullopt;
    }
    if (get_bits(p.addr, 0, pool_.length > 64 ? 64 : pool_.length) !=
            get_bits(pool_.addr, 0, pool_.length > 64 ? 64 : pool_.length) ||
        (pool_.length > 64 &&
         get_bits(p.addr, 64, pool_.length - 64) != get_bits(pool_.addr, 64, pool_.length - 64))) {
        return std::nullopt;
    }
    return get_bits(p.addr, pool_.length, assign_length_ - pool_.length);
}

bool PrefixPool::contains(const Prefix& p) const noexcept {
    return index_of(p).has_value();
}

Result<Prefix, AllocError> PrefixPool::allocate() {
    while (!free_.empty()) {
        const std::uint64_t i = free_.back();
        free_.pop_back();
        if (used_.insert(i).second) {
            return at(i);
        }
    }
    while (next_ < capacity_) {
        const std::uint64_t i = next_++;
        if (used_.insert(i).second) {  // skips indexes claimed by request
            return at(i);
        }
    }
    return unexpected(AllocError::kExhausted);
}

Result<void, AllocError> PrefixPool::claim(const Prefix& p) {
    auto i = index_of(p);
    if (!i) {
        return unexpected(AllocError::kNotInPool);
    }
    if (!used_.insert(*i).second) {
        return unexpected(AllocError::kInUse);
    }
    return {};
}

Result<void, AllocError> PrefixPool::release(const Prefix& p) {
    auto i = index_of(p);
    if (!i || used_.erase(*i) == 0) {
        return unexpected(AllocError::kNotAllocated);
    }
    if (*i < next_) {
        free_.push_back(*i);
    }
    return {};
}

Result<std::uint32_t, AllocError> GreKeyAllocator::allocate() {
    const std::uint64_t span = std::uint64_t{max_} - min_ + 1;
    if (used_.size() >= 0xffffffffu) {
        return unexpected(AllocError::kExhausted);
    }
    for (std::uint64_t i = 0; i < span; ++i) {
        const std::uint32_t k = next_;
        next_ = next_ == max_ ? min_ : next_ + 1;  // 0 is never used (min_ >= 1)
        if (used_.insert(k).second) {
            return k;
        }
    }
    return unexpected(AllocError::kExhausted);
}

Result<void, AllocError> GreKeyAllocator::claim(std::uint32_t key) {
    if (key == 0) {
        return unexpected(AllocError::kNotInPool);
    }
    if (!used_.insert(key).second) {
        return unexpected(AllocError::kInUse);
    }
    return {};
}

Result<void, AllocError> GreKeyAllocator::release(std::uint32_t key) {
    if (used_.erase(key) == 0) {
        return unexpected(AllocError::kNotAllocated);
    }
    return {};
}

}  // namespace hag::control
