#include "binding_cache.hpp"

#include <fmt/format.h>

#include "hag/net/address.hpp"

#include <algorithm>
#include <cstring>

namespace hag::control {

namespace {

std::size_t hash_bytes(const std::uint8_t* p, std::size_t n, std::size_t seed) noexcept {
    // FNV-1a over the bytes, mixed with a seed.
    std::uint64_t h = 1469598103934665603ull ^ seed;
    for (std::size_t i = 0; i < n; ++i) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return static_cast<std::size_t>(h);
}

}  // namespace

bool CareOfAddress::is_ipv4() const noexcept {
    return net::is_ipv4_mapped(addr);
}

CareOfAddress CareOfAddress::from_ipv4(std::array<std::uint8_t, 4> v4) noexcept {
    return CareOfAddress{net::ipv4_mapped(v4)};
}

std::string to_string(const CareOfAddress& coa) {
    return coa.is_ipv4() ? net::format(net::mapped_ipv4(coa.addr)) : net::format(coa.addr);
}

bool host_bits_clear(const Ipv6Address& a, unsigned length) noexcept {
    for (unsigned b = length; b < 128; ++b) {
        if (((a[b / 8] >> (7 - b % 8)) & 1u) != 0) {
            return false;
        }
    }
    return true;
}

std::string to_string(const Prefix& p) {
    if (p.length >= 96 && CareOfAddress{p.addr}.is_ipv4()) {
        // An IPv4 home address or prefix (RFC 5844), held IPv4-mapped.
        return fmt::format("{}/{}", net::format(net::mapped_ipv4(p.addr)), p.length - 96);
    }
    return fmt::format("{}/{}", net::format(p.addr), p.length);
}

const Path* Session::find_path(std::uint16_t bid) const noexcept {
    for (const auto& p : paths) {
        if (p.bid == bid) {
            return &p;
        }
    }
    return nullptr;
}

Seconds Session::expires_at() const noexcept {
    Seconds t = 0;
    for (const auto& p : paths) {
        t = std::max(t, p.expires_at);
    }
    return t;
}

std::string_view to_string(CacheError e) noexcept {
    switch (e) {
        case CacheError::kNotFound:
            return "no binding cache entry for this mobile node";
        case CacheError::kAlreadyExists:
            return "a binding cache entry for this mobile node exists";
        case CacheError::kPrefixInUse:
            return "home network prefix belongs to another mobile node";
        case CacheError::kPathInUse:
            return "MAG identifier and binding identifier belong to another mobile node";
        case CacheError::kNoPaths:
            return "a binding cache entry needs at least one care-of address";
        case CacheError::kDuplicateBid:
            return "binding identifier used twice in one entry";
        case CacheError::kCapacity:
            return "binding cache is full";
        case CacheError::kTooManyPrefixes:
            return "more prefixes than the data plane routes per session (4)";
    }
    return "unknown binding cache error";
}

std::size_t BindingCache::PrefixHash::operator()(const Prefix& p) const noexcept {
    return hash_bytes(p.addr.data(), p.addr.size(), p.length);
}

BindingCache::BindingCache(std::size_t max_sessions)
    : max_sessions_(max_sessions), wheel_(kWheelSlots) {}

std::optional<std::uint32_t> BindingCache::session_id(std::string_view nai) const {
    const std::uint32_t id = id_of(nai);
    return id == UINT32_MAX ? std::nullopt : std::optional<std::uint32_t>(id);
}

std::uint32_t BindingCache::id_of(std::string_view nai) const {
    auto it = by_nai_.find(nai);  // transparent: no temporary string
    return it == by_nai_.end() ? UINT32_MAX : it->second;
}

Result<void, CacheError> BindingCache::check_indexes(const Session& s, std::uint32_t self) const {
    if (s.paths.empty()) {
        return unexpected(CacheError::kNoPaths);
    }
    if (s.home_prefixes.size() + s.delegated_prefixes.size() > kMaxSessionPrefixes) {
        return unexpected(CacheError::kTooManyPrefixes);
    }
    for (std::size_t i = 0; i < s.paths.size(); ++i) {
        for (std::size_t j = i + 1; j < s.paths.size(); ++j) {
            if (s.paths[i].bid == s.paths[j].bid) {
                return unexpected(CacheError::kDuplicateBid);
            }
        }
    }
    for (const auto* list : {&s.home_prefixes, &s.delegated_prefixes}) {
        for (const auto& p : *list) {
            auto it = by_prefix_.find(p);
            if (it != by_prefix_.end() && it->second != self) {
                return unexpected(CacheError::kPrefixInUse);
            }
        }
    }
    return {};
}

void BindingCache::index(std::uint32_t id) {
    const Session& s = *slots_[id];
    by_nai_.emplace(s.nai, id);
    for (const auto* list : {&s.home_prefixes, &s.delegated_prefixes}) {
        for (const auto& p : *list) {
            by_prefix_[p] = id;
        }
    }
    for (const auto& p : s.paths) {
        by_path_.emplace(p.mag_id, p.bid, id);
        by_coa_.emplace(p.coa.addr, id);
    }
}

void BindingCache::unindex(std::uint32_t id) {
    const Session& s = *slots_[id];
    by_nai_.erase(s.nai);
    for (const auto* list : {&s.home_prefixes, &s.delegated_prefixes}) {
        for (const auto& p : *list) {
            by_prefix_.erase(p);
        }
    }
    for (const auto& p : s.paths) {
        by_path_.erase({p.mag_id, p.bid, id});
        by_coa_.erase({p.coa.addr, id});
    }
}

void BindingCache::schedule(std::uint32_t id) {
    // One live wheel entry per session, for its earliest path expiry.
    const Session& s = *slots_[id];
    if (s.paths.empty()) {
        return;
    }
    Seconds due = s.paths.front().expires_at;
    for (const auto& p : s.paths) {
        due = std::min(due, p.expires_at);
    }
    if (wheel_due_.size() <= id) {
        wheel_due_.resize(static_cast<std::size_t>(id) + 1, -1);
    }
    if (wheel_due_[id] >= 0 && wheel_due_[id] <= due) {
        return;  // the live entry fires no later than needed and then schedules the next
    }
    wheel_due_[id] = due;
    const Seconds d = std::max<Seconds>(due, wheel_now_ + 1);
    wheel_[static_cast<std::size_t>(d) % kWheelSlots].push_back({id, due});
}

void BindingCache::release(std::uint32_t id) {
    slots_[id].reset();
    free_slots_.push_back(id);
    if (id < wheel_due_.size()) {
        wheel_due_[id] = -1;
    }
}

void BindingCache::notify(CacheEvent::Kind k, std::uint32_t id, const Session& s) {
    for (const auto& o : observers_) {
        o(CacheEvent{k, &s, id});
    }
}

Result<void, CacheError> BindingCache::insert(Session s) {
    if (id_of(s.nai) != UINT32_MAX) {
        return unexpected(CacheError::kAlreadyExists);
    }
    if (by_nai_.size() >= max_sessions_) {
        return unexpected(CacheError::kCapacity);
    }
    if (auto r = check_indexes(s, UINT32_MAX); !r) {
        return r;
    }
    std::uint32_t id;
    if (!free_slots_.empty()) {
        id = free_slots_.back();
        free_slots_.pop_back();
        slots_[id] = std::move(s);
    } else {
        id = static_cast<std::uint32_t>(slots_.size());
        slots_.emplace_back(std::move(s));
    }
    index(id);
    schedule(id);
    notify(CacheEvent::Kind::kAdded, id, *slots_[id]);
    return {};
}

Result<void, CacheError> BindingCache::update(Session s) {
    const std::uint32_t id = id_of(s.nai);
    if (id == UINT32_MAX) {
        return unexpected(CacheError::kNotFound);
    }
    if (auto r = check_indexes(s, id); !r) {
        return r;
    }
    unindex(id);
    slots_[id] = std::move(s);
    index(id);
    schedule(id);
    notify(CacheEvent::Kind::kUpdated, id, *slots_[id]);
    return {};
}

Result<Session, CacheError> BindingCache::remove(std::string_view nai) {
    const std::uint32_t id = id_of(nai);
    if (id == UINT32_MAX) {
        return unexpected(CacheError::kNotFound);
    }
    unindex(id);
    Session s = std::move(*slots_[id]);
    release(id);
    notify(CacheEvent::Kind::kRemoved, id, s);
    return s;
}

Result<bool, CacheError> BindingCache::remove_path(std::string_view nai, std::uint16_t bid) {
    const std::uint32_t id = id_of(nai);
    if (id == UINT32_MAX || slots_[id]->find_path(bid) == nullptr) {
        return unexpected(CacheError::kNotFound);
    }
    if (slots_[id]->paths.size() == 1) {
        (void)remove(nai);
        return true;
    }
    Session s = *slots_[id];
    std::erase_if(s.paths, [bid](const Path& p) { return p.bid == bid; });
    if (auto r = update(std::move(s)); !r) {
        return unexpected(r.error());
    }
    return false;
}

Result<void, CacheError> BindingCache::set_path_live(std::string_view nai, std::uint16_t bid,
                                                     bool live) {
    const std::uint32_t id = id_of(nai);
    if (id == UINT32_MAX) {
        return unexpected(CacheError::kNotFound);
    }
    for (auto& p : slots_[id]->paths) {
        if (p.bid == bid) {
            if (p.live != live) {
                p.live = live;
                notify(CacheEvent::Kind::kUpdated, id, *slots_[id]);
            }
            return {};
        }
    }
    return unexpected(CacheError::kNotFound);
}

const Session* BindingCache::find(std::string_view nai) const {
    const std::uint32_t id = id_of(nai);
    return id == UINT32_MAX ? nullptr : &*slots_[id];
}

const Session* BindingCache::at(std::uint32_t id) const noexcept {
    return id < slots_.size() && slots_[id] ? &*slots_[id] : nullptr;
}

const Session* BindingCache::find_by_prefix(const Prefix& p) const {
    auto it = by_prefix_.find(p);
    return it == by_prefix_.end() ? nullptr : &*slots_[it->second];
}

const Session* BindingCache::find_by_path(std::string_view mag_id, std::uint16_t bid) const {
    auto it = by_path_.lower_bound(std::make_tuple(mag_id, bid, std::uint32_t{0}));
    if (it == by_path_.end() || std::get<0>(*it) != mag_id || std::get<1>(*it) != bid) {
        return nullptr;
    }
    return &*slots_[std::get<2>(*it)];
}

const Session* BindingCache::find_by_path(std::string_view mag_id, std::string_view nai,
                                          std::uint16_t bid) const {
    const Session* s = find(nai);
    if (s == nullptr) {
        return nullptr;
    }
    const Path* p = s->find_path(bid);
    return p != nullptr && p->mag_id == mag_id ? s : nullptr;
}

std::vector<const Session*> BindingCache::find_all_by_path(std::string_view mag_id,
                                                           std::uint16_t bid) const {
    std::vector<const Session*> out;
    for (auto it = by_path_.lower_bound(std::make_tuple(mag_id, bid, std::uint32_t{0}));
         it != by_path_.end() && std::get<0>(*it) == mag_id && std::get<1>(*it) == bid; ++it) {
        out.push_back(&*slots_[std::get<2>(*it)]);
    }
    return out;
}

std::vector<const Session*> BindingCache::find_by_coa(const CareOfAddress& coa) const {
    std::vector<const Session*> out;
    for (auto it = by_coa_.lower_bound({coa.addr, 0}); it != by_coa_.end() && it->first == coa.addr;
         ++it) {
        out.push_back(&*slots_[it->second]);  // one entry per session and CoA
    }
    return out;
}

std::uint64_t BindingCache::for_each_page(std::uint64_t cursor, std::size_t limit,
                                          const std::function<void(const Session&)>& fn) const {
    return for_each_page_id(cursor, limit, [&fn](std::uint32_t, const Session& s) { fn(s); });
}

std::uint64_t BindingCache::for_each_page_id(
    std::uint64_t cursor, std::size_t limit,
    const std::function<void(std::uint32_t, const Session&)>& fn) const {
    // The cursor is 1 + the slot index to resume at, so that 0 can mean "start" and "done".
    std::size_t i = cursor == 0 ? 0 : static_cast<std::size_t>(cursor - 1);
    std::size_t visited = 0;
    for (; i < slots_.size() && visited < limit; ++i) {
        if (slots_[i]) {
            fn(static_cast<std::uint32_t>(i), *slots_[i]);
            ++visited;
        }
    }
    while (i < slots_.size() && !slots_[i]) {
        ++i;
    }
    return i < slots_.size() ? static_cast<std::uint64_t>(i) + 1 : 0;
}

std::size_t BindingCache::expire(Seconds now) {
    std::size_t expired = 0;
    if (wheel_now_ < 0) {
        wheel_now_ = now - 1;
    }
    // Visit each second once; after a long pause, one full turn covers every bucket.
    Seconds from = wheel_now_ + 1;
    if (now - from >= static_cast<Seconds>(kWheelSlots)) {
        from = now - static_cast<Seconds>(kWheelSlots) + 1;
    }
    for (Seconds t = from; t <= now; ++t) {
        // Entries rescheduled while this bucket is processed land in later buckets
        // (schedule() never uses a second <= wheel_now_), so take this one out first.
        wheel_now_ = t;
        const std::size_t b = static_cast<std::size_t>(t) % kWheelSlots;
        std::vector<WheelEntry> entries;
        entries.swap(wheel_[b]);
        for (const WheelEntry& e : entries) {
            if (e.due > now) {
                wheel_[b].push_back(e);  // a later turn of the wheel
                continue;
            }
            if (e.slot >= slots_.size() || !slots_[e.slot]) {
                continue;  // stale: session removed
            }
            if (e.slot >= wheel_due_.size() || wheel_due_[e.slot] != e.due) {
                continue;  // superseded by an earlier entry of the session
            }
            wheel_due_[e.slot] = -1;  // consumed; schedule() below sets the next one
            Session& s = *slots_[e.slot];
            const bool any_due = std::any_of(s.paths.begin(), s.paths.end(),
                                             [now](const Path& p) { return p.expires_at <= now; });
            if (!any_due) {
                schedule(e.slot);  // refreshed since: wait for the new earliest expiry
                continue;
            }
            const std::size_t before = s.paths.size();
            Session copy = s;
            std::erase_if(copy.paths, [now](const Path& p) { return p.expires_at <= now; });
            expired += before - copy.paths.size();
            if (copy.paths.empty()) {
                const std::uint32_t id = e.slot;
                unindex(id);
                Session gone = std::move(*slots_[id]);
                release(id);
                notify(CacheEvent::Kind::kExpired, id, gone);
            } else {
                (void)update(std::move(copy));
            }
        }
    }
    wheel_now_ = std::max(wheel_now_, now);
    return expired;
}

}  // namespace hag::control
