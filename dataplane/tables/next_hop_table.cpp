#include "tables/next_hop_table.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace hag::dp {

NextHopTable::NextHopTable(std::uint32_t capacity, Rcu& rcu)
    : capacity_(capacity), rcu_(rcu), slots_(std::make_unique<Slot[]>(capacity)) {
    entries_.resize(capacity);
    free_.reserve(capacity);
    for (std::uint32_t i = capacity; i > 0; --i) {
        free_.push_back(i - 1);  // hand out 0, 1, 2, ... first
    }
}

NextHopTable::Key NextHopTable::key_of(std::uint16_t port, const IpAddr& a) noexcept {
    Key k{port, {}};
    k.second[0] = static_cast<std::uint8_t>(a.family);
    std::copy(a.bytes.begin(), a.bytes.end(), k.second.begin() + 1);
    return k;
}

Result<NextHopTable::Index, std::string> NextHopTable::acquire(std::uint16_t port,
                                                               const IpAddr& addr) {
    if (addr.family == Family::kNone) {
        return unexpected(std::string("next hop without an address"));
    }
    const Key k = key_of(port, addr);
    if (auto it = by_key_.find(k); it != by_key_.end()) {
        ++entries_[it->second].refs;
        return it->second;
    }
    if (free_.empty()) {
        rcu_.reclaim();  // indices released earlier may be free by now
        if (free_.empty()) {
            return unexpected(fmt::format("next-hop table full ({} entries)", capacity_));
        }
    }
    const Index i = free_.back();
    free_.pop_back();
    entries_[i] = Entry{port, addr, 1};
    slots_[i].mac.store(0, std::memory_order_relaxed);
    slots_[i].wanted.store(0, std::memory_order_relaxed);
    by_key_.emplace(k, i);
    in_use_.push_back(i);
    return i;
}

void NextHopTable::release(Index i) {
    if (i >= capacity_ || entries_[i].refs == 0 || --entries_[i].refs > 0) {
        return;
    }
    by_key_.erase(key_of(entries_[i].port, entries_[i].addr));
    in_use_.erase(std::find(in_use_.begin(), in_use_.end(), i));
    rcu_.defer([this, i] {
        slots_[i].mac.store(0, std::memory_order_relaxed);
        free_.push_back(i);
    });
}

NextHopTable::Index NextHopTable::find(std::uint16_t port, const IpAddr& addr) const noexcept {
    const auto it = by_key_.find(key_of(port, addr));
    return it == by_key_.end() ? kNone : it->second;
}

void NextHopTable::set_mac(Index i, const MacAddr& mac) noexcept {
    std::uint64_t w = kResolved;
    for (std::size_t b = 0; b < 6; ++b) {
        w |= std::uint64_t{mac[b]} << (40 - 8 * b);
    }
    slots_[i].mac.store(w, std::memory_order_relaxed);
}

void NextHopTable::clear_mac(Index i) noexcept {
    slots_[i].mac.store(0, std::memory_order_relaxed);
}

}  // namespace hag::dp
