// Binding cache implementation: slot storage (std::deque, stable addresses), hash indexes, and a
// one-second timing wheel with lazy entries (no timer object per session).
#include "binding_cache.hpp"

#include <algorithm>
#include <deque>
#include <string>
#include <unordered_map>
#include <unordered_set>

namespace hag::control {

namespace {
constexpr std::size_t kWheelSlots = 4096;  // seconds; longer lifetimes wrap and are re-queued
constexpr std::uint32_t kFree = 0xffffffffu;

std::size_t hash_bytes(const std::uint8_t* p, std::size_t n, std::size_t seed) {
    std::size_t h = seed ^ 0xcbf29ce484222325ull;
    for (std::size_t i = 0; i < n; ++i)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}
struct PrefixHash {
    std::size_t operator()(const IpPrefix& p) const noexcept {
        return hash_bytes(p.address.bytes.data(), 16, p.length);
    }
};
struct AddrHash {
    std::size_t operator()(const IpAddress& a) const noexcept {
        return hash_bytes(a.bytes.data(), 16, 0);
    }
};
}  // namespace

bool IpAddress::is_v4() const noexcept {
    for (int i = 0; i < 10; ++i)
        if (bytes[i] != 0)
            return false;
    return bytes[10] == 0xff && bytes[11] == 0xff;
}
IpAddress IpAddress::from_v4(std::array<std::uint8_t, 4> v4) noexcept {
    IpAddress a;
    a.bytes[10] = a.bytes[11] = 0xff;
    std::copy(v4.begin(), v4.end(), a.bytes.begin() + 12);
    return a;
}
std::array<std::uint8_t, 4> IpAddress::v4() const noexcept {
    return {bytes[12], bytes[13], bytes[14], bytes[15]};
}

std::optional<MnId> MnId::from(std::string_view s) noexcept {
    if (s.size() > kMaxLen)
        return std::nullopt;
    MnId m;
    std::copy(s.begin(), s.end(), m.bytes.begin());
    m.len = static_cast<std::uint8_t>(s.size());
    return m;
}

TimePoint Session::expires() const noexcept {
    TimePoint t = TimePoint::max();
    for (const auto& p : paths())
        t = std::min(t, p.expires);
    return t;
}
const Path* Session::find_path(MagHandle mag, std::uint16_t bid) const noexcept {
    for (const auto& p : paths())
        if (p.mag == mag && p.bid == bid)
            return &p;
    return nullptr;
}
Path* Session::find_path(MagHandle mag, std::uint16_t bid) noexcept {
    for (auto& p : paths())
        if (p.mag == mag && p.bid == bid)
            return &p;
    return nullptr;
}
bool Session::add_path(const Path& p) noexcept {
    if (path_count >= kMaxPaths)
        return false;
    path_slots[path_count++] = p;
    return true;
}
bool Session::remove_path(MagHandle mag, std::uint16_t bid) noexcept {
    for (std::size_t i = 0; i < path_count; ++i) {
        if (path_slots[i].mag == mag && path_slots[i].bid == bid) {
            for (std::size_t j = i + 1; j < path_count; ++j)
                path_slots[j - 1] = path_slots[j];
            path_slots[--path_count] = Path{};
            return true;
        }
    }
    return false;
}
bool Session::add_prefix(const IpPrefix& p) noexcept {
    if (prefix_count >= kMaxPrefixes)
        return false;
    prefix_slots[prefix_count++] = p;
    return true;
}

std::string_view to_string(CacheError e) noexcept {
    switch (e) {
        case CacheError::kFull:
            return "binding cache full";
        case CacheError::kDuplicateMnId:
            return "MN-ID already has a session";
        case CacheError::kPrefixInUse:
            return "prefix belongs to another session";
        case CacheError::kNotFound:
            return "no such session";
        case CacheError::kNoPath:
            return "session without path";
    }
    return "?";
}
std::string_view to_string(ChangeKind k) noexcept {
    switch (k) {
        case ChangeKind::kCreated:
            return "created";
        case ChangeKind::kUpdated:
            return "updated";
        case ChangeKind::kDeleted:
            return "deleted";
        case ChangeKind::kExpired:
            return "expired";
    }
    return "?";
}

struct BindingCache::Impl {
    struct Slot {
        Session s;
        bool live = false;
        std::int64_t scheduled_sec = -1;  // wheel second of the current entry
    };
    struct WheelEntry {
        std::uint32_t slot;
        std::uint32_t generation;
        std::int64_t sec;
    };

    std::size_t max_sessions;
    TimePoint epoch;
    std::deque<Slot> slots;
    std::vector<std::uint32_t> free_slots;
    std::unordered_map<std::string_view, std::uint32_t> by_mn_id;  // views into slots
    std::unordered_map<IpPrefix, std::uint32_t, PrefixHash> by_prefix;
    std::unordered_map<MagHandle, std::unordered_set<std::uint32_t>> by_mag;
    std::unordered_map<IpAddress, std::unordered_set<std::uint32_t>, AddrHash> by_coa;
    std::vector<std::string> mag_names;
    std::unordered_map<std::string, MagHandle> mag_ids;
    std::vector<std::vector<WheelEntry>> wheel = std::vector<std::vector<WheelEntry>>(kWheelSlots);
    std::int64_t wheel_now = 0;  // last second processed
    std::vector<std::pair<std::uint64_t, BindingObserver*>> observers;
    std::uint64_t next_token = 1;
    CacheCounters ctr;

    std::int64_t ceil_sec(TimePoint t) const {
        if (t == TimePoint::max())
            return INT64_MAX;
        auto d = std::chrono::ceil<std::chrono::seconds>(t - epoch).count();
        return std::max<std::int64_t>(d, wheel_now + 1);
    }
    void schedule(std::uint32_t idx) {
        Slot& sl = slots[idx];
        std::int64_t sec = ceil_sec(sl.s.expires());
        if (sec == INT64_MAX || sec == sl.scheduled_sec)
            return;
        sl.scheduled_sec = sec;
        wheel[static_cast<std::size_t>(sec) % kWheelSlots].push_back(
            {idx, sl.s.id.generation, sec});
    }
    void notify(ChangeKind k, const Session& s) {
        auto obs = observers;  // an observer may unregister itself
        for (auto& [t, o] : obs)
            o->on_binding_change(k, s);
    }
    void index(std::uint32_t idx) {
        const Session& s = slots[idx].s;
        by_mn_id.emplace(s.mn_id.view(), idx);
        for (const auto& p : s.prefixes())
            by_prefix.emplace(p, idx);
        for (const auto& p : s.paths()) {
            by_mag[p.mag].insert(idx);
            by_coa[p.coa].insert(idx);
        }
    }
    void unindex(std::uint32_t idx) {
        const Session& s = slots[idx].s;
        by_mn_id.erase(s.mn_id.view());
        for (const auto& p : s.prefixes())
            by_prefix.erase(p);
        for (const auto& p : s.paths()) {
            if (auto it = by_mag.find(p.mag); it != by_mag.end()) {
                it->second.erase(idx);
                if (it->second.empty())
                    by_mag.erase(it);
            }
            if (auto it = by_coa.find(p.coa); it != by_coa.end()) {
                it->second.erase(idx);
                if (it->second.empty())
                    by_coa.erase(it);
            }
        }
        ctr.paths -= s.path_count;
    }
    Slot* live(SessionId id) {
        if (id.slot >= slots.size())
            return nullptr;
        Slot& sl = slots[id.slot];
        return (sl.live && sl.s.id.generation == id.generation) ? &sl : nullptr;
    }
    bool prefixes_free(const Session& s, std::uint32_t self) const {
        for (const auto& p : s.prefixes()) {
            auto it = by_prefix.find(p);
            if (it != by_prefix.end() && it->second != self)
                return false;
        }
        return true;
    }
    void remove(std::uint32_t idx, ChangeKind kind) {
        Slot& sl = slots[idx];
        unindex(idx);
        Session gone = sl.s;
        sl.live = false;
        sl.scheduled_sec = -1;
        sl.s = Session{};
        sl.s.id.generation = gone.id.generation + 1;
        free_slots.push_back(idx);
        --ctr.sessions;
        (kind == ChangeKind::kExpired ? ctr.expired : ctr.deleted)++;
        notify(kind, gone);
    }
};

BindingCache::BindingCache(std::size_t max_sessions, TimePoint epoch)
    : impl_(std::make_unique<Impl>()) {
    impl_->max_sessions = max_sessions;
    impl_->epoch = epoch;
}
BindingCache::~BindingCache() = default;

MagHandle BindingCache::intern_mag(std::string_view mag_id) {
    std::string key(mag_id);
    if (auto it = impl_->mag_ids.find(key); it != impl_->mag_ids.end())
        return it->second;
    auto h = static_cast<MagHandle>(impl_->mag_names.size());
    impl_->mag_names.push_back(key);
    impl_->mag_ids.emplace(std::move(key), h);
    return h;
}
std::optional<MagHandle> BindingCache::find_mag(std::string_view mag_id) const {
    auto it = impl_->mag_ids.find(std::string(mag_id));
    if (it == impl_->mag_ids.end())
        return std::nullopt;
    return it->second;
}
std::string_view BindingCache::mag_name(MagHandle h) const {
    return h < impl_->mag_names.size() ? std::string_view(impl_->mag_names[h]) : "";
}

Result<SessionId, CacheError> BindingCache::insert(const Session& s) {
    auto& I = *impl_;
    if (s.path_count == 0)
        return unexpected(CacheError::kNoPath);
    if (I.by_mn_id.count(s.mn_id.view()))
        return unexpected(CacheError::kDuplicateMnId);
    if (!I.prefixes_free(s, kFree))
        return unexpected(CacheError::kPrefixInUse);
    if (I.ctr.sessions >= I.max_sessions)
        return unexpected(CacheError::kFull);
    std::uint32_t idx;
    if (!I.free_slots.empty()) {
        idx = I.free_slots.back();
        I.free_slots.pop_back();
    } else {
        idx = static_cast<std::uint32_t>(I.slots.size());
        I.slots.emplace_back();
    }
    auto& sl = I.slots[idx];
    std::uint32_t gen = sl.s.id.generation;
    sl.s = s;
    sl.s.id = SessionId{idx, gen};
    sl.live = true;
    sl.scheduled_sec = -1;
    I.index(idx);
    ++I.ctr.sessions;
    ++I.ctr.created;
    I.ctr.paths += s.path_count;
    I.schedule(idx);
    I.notify(ChangeKind::kCreated, sl.s);
    return sl.s.id;
}

Result<void, CacheError> BindingCache::update(const Session& s) {
    auto& I = *impl_;
    auto* sl = I.live(s.id);
    if (!sl || !(sl->s.mn_id == s.mn_id))
        return unexpected(CacheError::kNotFound);
    if (s.path_count == 0)
        return unexpected(CacheError::kNoPath);
    if (!I.prefixes_free(s, s.id.slot))
        return unexpected(CacheError::kPrefixInUse);
    I.unindex(s.id.slot);
    sl->s = s;
    I.index(s.id.slot);
    I.ctr.paths += s.path_count;
    ++I.ctr.updated;
    I.schedule(s.id.slot);
    I.notify(ChangeKind::kUpdated, sl->s);
    return {};
}

Result<void, CacheError> BindingCache::erase(SessionId id, ChangeKind kind) {
    if (!impl_->live(id))
        return unexpected(CacheError::kNotFound);
    impl_->remove(id.slot, kind);
    return {};
}

std::size_t BindingCache::expire(TimePoint now, std::size_t budget) {
    auto& I = *impl_;
    auto now_sec = std::chrono::floor<std::chrono::seconds>(now - I.epoch).count();
    std::size_t erased = 0, examined = 0;
    auto steps = std::min<std::int64_t>(now_sec - I.wheel_now, kWheelSlots);
    for (std::int64_t i = 1; i <= steps; ++i) {
        auto& bucket = I.wheel[static_cast<std::size_t>(I.wheel_now + i) % kWheelSlots];
        std::vector<Impl::WheelEntry> entries;
        entries.swap(bucket);
        std::size_t k = 0;
        for (; k < entries.size(); ++k) {
            const auto e = entries[k];
            if (e.sec > now_sec) {  // a later lap of the wheel
                bucket.push_back(e);
                continue;
            }
            if (examined >= budget)
                break;
            auto& sl = I.slots[e.slot];
            if (!sl.live || sl.s.id.generation != e.generation || sl.scheduled_sec != e.sec)
                continue;  // stale entry
            ++examined;
            sl.scheduled_sec = -1;
            Session& s = sl.s;
            bool changed = false;
            for (std::size_t p = s.path_count; p-- > 0;) {
                if (s.path_slots[p].expires <= now) {
                    Session copy = s;
                    copy.remove_path(s.path_slots[p].mag, s.path_slots[p].bid);
                    if (copy.path_count == 0)
                        break;
                    I.unindex(e.slot);
                    s = copy;
                    I.index(e.slot);
                    I.ctr.paths += s.path_count;
                    changed = true;
                }
            }
            if (s.expires() <= now) {
                I.remove(e.slot, ChangeKind::kExpired);
                ++erased;
                continue;
            }
            I.schedule(e.slot);
            if (changed) {
                ++I.ctr.updated;
                I.notify(ChangeKind::kUpdated, s);
            }
        }
        if (k < entries.size()) {  // budget exhausted: keep the rest, do not advance
            bucket.insert(bucket.end(), entries.begin() + static_cast<std::ptrdiff_t>(k),
                          entries.end());
            I.wheel_now += i - 1;
            return erased;
        }
    }
    I.wheel_now = std::max(I.wheel_now, now_sec);
    return erased;
}

TimePoint BindingCache::next_expiry() const {
    if (impl_->ctr.sessions == 0)
        return TimePoint::max();
    return impl_->epoch + std::chrono::seconds(impl_->wheel_now + 1);
}

const Session* BindingCache::get(SessionId id) const {
    auto* sl = impl_->live(id);
    return sl ? &sl->s : nullptr;
}
const Session* BindingCache::find_by_mn_id(std::string_view mn_id) const {
    auto it = impl_->by_mn_id.find(mn_id);
    return it == impl_->by_mn_id.end() ? nullptr : &impl_->slots[it->second].s;
}
const Session* BindingCache::find_by_prefix(const IpPrefix& prefix) const {
    auto it = impl_->by_prefix.find(prefix);
    return it == impl_->by_prefix.end() ? nullptr : &impl_->slots[it->second].s;
}
const Session* BindingCache::find_by_mag_bid(MagHandle mag, std::uint16_t bid,
                                             std::string_view mn_id) const {
    const Session* s = find_by_mn_id(mn_id);
    return (s && s->find_path(mag, bid)) ? s : nullptr;
}
std::vector<SessionId> BindingCache::sessions_by_mag(MagHandle mag) const {
    std::vector<SessionId> out;
    if (auto it = impl_->by_mag.find(mag); it != impl_->by_mag.end())
        for (auto idx : it->second)
            out.push_back(impl_->slots[idx].s.id);
    return out;
}
std::vector<SessionId> BindingCache::sessions_by_coa(const IpAddress& coa) const {
    std::vector<SessionId> out;
    if (auto it = impl_->by_coa.find(coa); it != impl_->by_coa.end())
        for (auto idx : it->second)
            out.push_back(impl_->slots[idx].s.id);
    return out;
}

ListPage BindingCache::list(std::uint64_t cursor, std::size_t limit) const {
    ListPage page;
    std::size_t i = cursor;
    for (; i < impl_->slots.size() && page.sessions.size() < limit; ++i)
        if (impl_->slots[i].live)
            page.sessions.push_back(impl_->slots[i].s);
    page.next_cursor = i < impl_->slots.size() ? i : 0;
    return page;
}
void BindingCache::for_each(const std::function<void(const Session&)>& fn) const {
    for (const auto& sl : impl_->slots)
        if (sl.live)
            fn(sl.s);
}

std::uint64_t BindingCache::add_observer(BindingObserver* obs) {
    impl_->observers.emplace_back(impl_->next_token, obs);
    return impl_->next_token++;
}
void BindingCache::remove_observer(std::uint64_t token) {
    std::erase_if(impl_->observers, [&](const auto& p) { return p.first == token; });
}

std::size_t BindingCache::size() const noexcept {
    return impl_->ctr.sessions;
}
std::size_t BindingCache::max_sessions() const noexcept {
    return impl_->max_sessions;
}
CacheCounters BindingCache::counters() const noexcept {
    return impl_->ctr;
}

}  // namespace hag::control
