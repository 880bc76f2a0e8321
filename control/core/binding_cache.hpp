// Binding cache of the LMA (RFC 5213 §5.1): mobility sessions keyed by MN-ID, each with 1..N
// paths (RFC 5648 Binding Identifier, RFC 8278 MAG Multipath-Binding). Indexed by home network
// prefix, by MAG identifier (+ BID) and by care-of address (Proxy-CoA).
//
// Threading: NOT thread-safe. The cache belongs to the signalling io_context thread; other
// threads (gRPC) go through the daemon's facade, which posts onto that thread.
//
// Memory: a Session is a fixed-size value (MN-ID, prefixes and paths inline, no per-session heap
// fragment except the index nodes). Expiry: a bucketed timing wheel of one-second slots driven by
// the caller (one steady timer in the daemon calls expire(now)); no timer object per entry.
//
// Public API stability: this header is built against by control/mgmt. Add, do not change.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "hag/result.hpp"

namespace hag::control {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

// An IPv6 address, or an IPv4 address stored IPv4-mapped (::ffff:a.b.c.d) with is_v4() true.
struct IpAddress {
    std::array<std::uint8_t, 16> bytes{};

    [[nodiscard]] bool is_v4() const noexcept;
    [[nodiscard]] static IpAddress from_v4(std::array<std::uint8_t, 4> v4) noexcept;
    [[nodiscard]] std::array<std::uint8_t, 4> v4() const noexcept;  // valid when is_v4()
    friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

// An IPv6 prefix (bits beyond `length` are zero); an IPv4 prefix uses the mapped form with
// length = 96 + IPv4 length.
struct IpPrefix {
    IpAddress address{};
    std::uint8_t length = 0;
    friend bool operator==(const IpPrefix&, const IpPrefix&) = default;
};

// Mobile Node Identifier (RFC 4283, NAI subtype), stored inline.
struct MnId {
    static constexpr std::size_t kMaxLen = 127;
    std::array<char, kMaxLen> bytes{};
    std::uint8_t len = 0;

    // Empty optional if longer than kMaxLen.
    [[nodiscard]] static std::optional<MnId> from(std::string_view s) noexcept;
    [[nodiscard]] std::string_view view() const noexcept { return {bytes.data(), len}; }
    friend bool operator==(const MnId& a, const MnId& b) noexcept { return a.view() == b.view(); }
};

// MAG identifier (RFC 8278 MAG Identifier option, or the MAG's Proxy-CoA when absent), interned
// by the cache into a small handle; BindingCache::mag_name() gives the identifier back.
using MagHandle = std::uint32_t;
inline constexpr MagHandle kNoMag = 0xffffffffu;

// Access technology type (RFC 5213 §8.5 ATT values; RFC 8278 If-ATT).
using AccessType = std::uint8_t;

// One path (care-of binding) of a mobility session.
struct Path {
    std::uint16_t bid = 0;       // Binding Identifier (RFC 5648 / RFC 8278 Binding-Id)
    AccessType access_type = 0;  // If-ATT
    std::uint8_t missed_heartbeats = 0;
    std::uint16_t if_label = 0;  // If-Label: operator colour of the interface
    bool up = true;              // false when the MAG's heartbeats are missed (RFC 5847)
    MagHandle mag = kNoMag;
    IpAddress coa{};                     // Proxy-CoA (IPv6 or IPv4-mapped)
    std::uint32_t gre_key_uplink = 0;    // allocated by the LMA (RFC 5845), 0 = no GRE key
    std::uint32_t gre_key_downlink = 0;  // given by the MAG, 0 = none
    std::uint32_t weight_kbps = 0;       // link capacity from the vendor link-metrics option
    std::uint32_t lifetime_s = 0;        // granted lifetime in seconds
    TimePoint expires{};                 // registration time + lifetime
    TimePoint registered{};              // last (re-)registration
    std::uint16_t last_sequence = 0;     // last accepted PBU sequence number (RFC 6275 §9.5.1)
    std::uint64_t last_timestamp = 0;    // last accepted Timestamp option (RFC 5213 §5.5)
};

// Stable identity of a session: slot index + generation (a reused slot gets a new generation).
struct SessionId {
    std::uint32_t slot = 0xffffffffu;
    std::uint32_t generation = 0;
    [[nodiscard]] bool valid() const noexcept { return slot != 0xffffffffu; }
    friend bool operator==(const SessionId&, const SessionId&) = default;
};

// A mobility session (binding cache entry, RFC 5213 §5.1).
struct Session {
    static constexpr std::size_t kMaxPaths = 8;
    static constexpr std::size_t kMaxPrefixes = 2;

    SessionId id{};  // assigned by the cache on insert
    MnId mn_id{};
    std::array<IpPrefix, kMaxPrefixes> prefix_slots{};  // home network prefixes (HNP)
    std::uint8_t prefix_count = 0;
    std::optional<IpPrefix> ipv4_home{};  // RFC 5844 IPv4 home address, if any
    bool multipath = false;               // RFC 8278 multipath binding in use
    std::uint8_t path_count = 0;
    std::array<Path, kMaxPaths> path_slots{};
    TimePoint created{};

    [[nodiscard]] std::span<const IpPrefix> prefixes() const noexcept {
        return {prefix_slots.data(), prefix_count};
    }
    [[nodiscard]] std::span<const Path> paths() const noexcept {
        return {path_slots.data(), path_count};
    }
    [[nodiscard]] std::span<Path> paths() noexcept { return {path_slots.data(), path_count}; }
    // Earliest path expiry (TimePoint::max() when there is no path).
    [[nodiscard]] TimePoint expires() const noexcept;
    // Path with that (MAG, BID), or nullptr.
    [[nodiscard]] const Path* find_path(MagHandle mag, std::uint16_t bid) const noexcept;
    [[nodiscard]] Path* find_path(MagHandle mag, std::uint16_t bid) noexcept;
    // Adds a path; false when kMaxPaths are in use.
    bool add_path(const Path& p) noexcept;
    // Removes the path with that (MAG, BID); false if absent.
    bool remove_path(MagHandle mag, std::uint16_t bid) noexcept;
    bool add_prefix(const IpPrefix& p) noexcept;
};

enum class CacheError {
    kFull,           // max_sessions reached
    kDuplicateMnId,  // insert of an MN-ID already present
    kPrefixInUse,    // a prefix already belongs to another session
    kNotFound,       // id unknown or stale
    kNoPath,         // a session must have at least one path
};
[[nodiscard]] std::string_view to_string(CacheError e) noexcept;

// Why a session changed; given to observers.
enum class ChangeKind {
    kCreated,  // initial registration
    kUpdated,  // re-registration, path added/removed, path state change
    kDeleted,  // de-registration or operator delete
    kExpired,  // every path's lifetime ran out
};
[[nodiscard]] std::string_view to_string(ChangeKind k) noexcept;

// Watch interface ("hagctl bindings watch"): called synchronously on the cache's thread, after
// the change is applied. The session is passed by value for kDeleted/kExpired (it is gone).
class BindingObserver {
  public:
    virtual ~BindingObserver() = default;
    virtual void on_binding_change(ChangeKind kind, const Session& session) = 0;
};

struct ListPage {
    std::vector<Session> sessions;
    std::uint64_t next_cursor = 0;  // pass to list() for the next page; 0 = no more pages
};

struct CacheCounters {
    std::uint64_t sessions = 0;
    std::uint64_t paths = 0;
    std::uint64_t created = 0;
    std::uint64_t updated = 0;
    std::uint64_t deleted = 0;
    std::uint64_t expired = 0;
};

class BindingCache {
  public:
    explicit BindingCache(std::size_t max_sessions = 1'000'000, TimePoint epoch = Clock::now());
    ~BindingCache();
    BindingCache(const BindingCache&) = delete;
    BindingCache& operator=(const BindingCache&) = delete;

    // --- MAG identifiers ---------------------------------------------------------------------
    // Interns a MAG identifier (idempotent).
    MagHandle intern_mag(std::string_view mag_id);
    [[nodiscard]] std::optional<MagHandle> find_mag(std::string_view mag_id) const;
    [[nodiscard]] std::string_view mag_name(MagHandle h) const;

    // --- changes -----------------------------------------------------------------------------
    // Inserts a new session (id is assigned, paths must be >= 1); notifies kCreated.
    Result<SessionId, CacheError> insert(const Session& s);
    // Replaces the session with s.id (MN-ID must be unchanged); reindexes; notifies kUpdated.
    Result<void, CacheError> update(const Session& s);
    // Removes a session; notifies `kind` (kDeleted or kExpired).
    Result<void, CacheError> erase(SessionId id, ChangeKind kind = ChangeKind::kDeleted);
    // Removes expired paths (expires <= now); sessions left without a path are erased with
    // kExpired, others notified kUpdated. Returns the number of sessions erased. Bounded work:
    // at most `budget` sessions examined per call (call again while it returns budget-limited).
    std::size_t expire(TimePoint now, std::size_t budget = SIZE_MAX);
    // Next time expire() has something to do (TimePoint::max() if none): arm the timer with it.
    [[nodiscard]] TimePoint next_expiry() const;

    // --- lookups (pointers are valid until the next change) ----------------------------------
    [[nodiscard]] const Session* get(SessionId id) const;
    [[nodiscard]] const Session* find_by_mn_id(std::string_view mn_id) const;
    // Session owning the prefix that contains `addr` (exact prefix match on stored prefixes).
    [[nodiscard]] const Session* find_by_prefix(const IpPrefix& prefix) const;
    // Session of `mn_id` whose path is (mag, bid) — i.e. a path lookup; nullptr if none.
    [[nodiscard]] const Session* find_by_mag_bid(MagHandle mag, std::uint16_t bid,
                                                 std::string_view mn_id) const;
    // All sessions with a path through this MAG (heartbeat failure, MAG restart).
    [[nodiscard]] std::vector<SessionId> sessions_by_mag(MagHandle mag) const;
    // All sessions with a path whose CoA is `coa` (one Proxy-CoA serves many MNs).
    [[nodiscard]] std::vector<SessionId> sessions_by_coa(const IpAddress& coa) const;

    // --- iteration -----------------------------------------------------------------------------
    // Up to `limit` sessions starting at `cursor` (0 = beginning), in slot order. Stable across
    // changes: a session present for the whole iteration is returned exactly once.
    [[nodiscard]] ListPage list(std::uint64_t cursor, std::size_t limit) const;
    void for_each(const std::function<void(const Session&)>& fn) const;

    // --- watch -------------------------------------------------------------------------------
    // The observer must outlive its registration. Returns a token for remove_observer.
    std::uint64_t add_observer(BindingObserver* obs);
    void remove_observer(std::uint64_t token);

    [[nodiscard]] std::size_t size() const noexcept;
    [[nodiscard]] std::size_t max_sessions() const noexcept;
    [[nodiscard]] CacheCounters counters() const noexcept;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace hag::control
