// Binding cache of the LMA (RFC 5213 §5.1) with multiple care-of addresses per mobility session
// (RFC 5648 / RFC 8278): one entry per mobile node identifier, each with 1..N paths.
//
// Indexes: MN-ID (NAI), home network prefix, (MAG identifier, binding identifier, session),
// care-of address. A MAG may hold paths of many mobile nodes under one BID (another hag node
// acting as a MAG for the subscribers that moved to it, docs/scale-out.md): a path is identified
// by (MAG identifier, MN-ID, BID). Every mutation goes through this class, which keeps all indexes
// consistent. Expiry: one timing wheel of one-second slots advanced by expire(now); no timer object
// per entry. Not thread-safe: owned by the signalling io_context thread.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "hag/net/checksum.hpp"
#include "hag/result.hpp"

namespace hag::control {

using Ipv6Address = net::Ipv6Address;
// Seconds on a monotonic clock, supplied by the caller (the daemon uses steady_clock).
using Seconds = std::int64_t;

// A care-of address: IPv6, or IPv4 held as an IPv4-mapped IPv6 address (::ffff:a.b.c.d).
struct CareOfAddress {
    Ipv6Address addr{};
    [[nodiscard]] bool is_ipv4() const noexcept;
    static CareOfAddress from_ipv4(std::array<std::uint8_t, 4> v4) noexcept;
    bool operator==(const CareOfAddress&) const = default;
};

struct Prefix {
    Ipv6Address addr{};
    std::uint8_t length = 0;
    bool operator==(const Prefix&) const = default;
};

std::string to_string(const CareOfAddress& coa);
std::string to_string(const Prefix& p);

// True when no bit of `a` beyond its first `length` (<= 128) is set: a prefix in canonical
// form (RFC 4291 §2.3). Every parser of a prefix from the network checks it.
[[nodiscard]] bool host_bits_clear(const Ipv6Address& a, unsigned length) noexcept;

// One registered care-of address of a session (RFC 5648 binding identifier).
struct Path {
    std::uint16_t bid = 0;               // Binding Identifier (RFC 5648 §6.1)
    std::string mag_id;                  // MAG Identifier (RFC 8278), or the MAG's address
    CareOfAddress coa;                   // proxy care-of address
    CareOfAddress local;                 // the LMA address the MAG signalled to (tunnel source)
    std::uint8_t access_technology = 0;  // ATT option (RFC 5213 §8.5)
    std::uint8_t if_label = 0;           // access colour, If-Label (RFC 8278)
    std::uint32_t downlink_gre_key = 0;  // key the MAG expects on downlink (RFC 5845)
    std::uint32_t weight_kbps = 0;       // from link metrics or policy; 0 = unknown
    bool live = true;                    // heartbeat liveness (RFC 5847)
    std::uint16_t last_sequence = 0;     // of the last PBU accepted for this path
    Seconds expires_at = 0;              // registration lifetime end
    // NAT traversal (docs/control.md "NAT detection"): the PBU came over IPv4 from another
    // address than its IPv4 Care-of Address option. coa is then the observed address,
    // nat_port the observed UDP source port, mag_coa what the MAG reported.
    bool nat = false;
    std::uint16_t nat_port = 0;
    CareOfAddress mag_coa;
    // Registered by another hag node acting as a MAG for a subscriber that moved to it
    // (distributed anchoring, docs/scale-out.md): coa is that node's tunnel address. Not stored.
    bool relay = false;
    bool operator==(const Path&) const = default;
};

// At most this many delegated prefixes per session (RFC 7148): the data plane holds 4 prefixes
// per session, one of which is the home network prefix.
inline constexpr std::size_t kMaxDelegatedPrefixes = 2;
// At most this many prefixes per session in all (home network prefixes, the IPv4 home address,
// delegated prefixes, prefixes kept at other anchors): hag-dataplane routes 4 prefixes per
// session (kMaxPrefixes in dataplane/tables/session_table.hpp) and refuses a session with more,
// so the binding cache refuses it first: a PBA must never accept what the data plane drops.
inline constexpr std::size_t kMaxSessionPrefixes = 4;

// An RFC 6089 flow binding the MAG signalled for the session (docs/policy.md#flow-bindings).
struct FlowBindingEntry {
    std::uint16_t fid = 0;
    std::uint16_t priority = 0;          // FID-PRI: lower first
    std::vector<std::uint16_t> bids;     // forward to the first live one, in order; empty = discard
    std::vector<std::uint8_t> selector;  // RFC 6088 Traffic Selector sub-option data
    bool operator==(const FlowBindingEntry&) const = default;
};

// Distributed anchoring (docs/scale-out.md): a home network prefix of the session anchored at
// another hag node, toward which this node acts as a MAG (its PBU registers the prefix there).
struct RemoteAnchor {
    Prefix prefix;
    std::string node;                // the anchor's node name
    CareOfAddress anchor;            // its signalling and tunnel address
    CareOfAddress local;             // this node's address toward it
    std::uint32_t uplink_key = 0;    // GRE key toward the anchor, from its PBA (0: not yet)
    std::uint32_t downlink_key = 0;  // GRE key the anchor stamps toward us (our PBU)
    bool operator==(const RemoteAnchor&) const = default;
};

// One mobility session (binding cache entry for one mobile node identifier).
struct Session {
    std::string nai;                    // Mobile Node Identifier, NAI subtype (RFC 4283)
    std::vector<Prefix> home_prefixes;  // HNPs (RFC 5213 §5.2)
    // Delegated mobile network prefixes (RFC 7148), IPv6 or IPv4-mapped; indexed with the HNPs.
    std::vector<Prefix> delegated_prefixes;
    std::uint32_t uplink_gre_key = 0;  // allocated by the LMA (RFC 5845)
    std::uint16_t last_sequence = 0;   // of the last accepted PBU
    std::uint64_t last_timestamp = 0;  // of the last accepted PBU (NTP format), 0 = none
    std::vector<Path> paths;
    // Downlink striping, from the subscriber's profile at the last accepted PBU (values of
    // v1::StripingMode and SubscriberProfile, docs/dataplane.md "Striping").
    std::uint8_t striping = 0;                   // 0 weighted, 1 overflow
    std::uint32_t overflow_burst_bytes = 0;      // 0 = the data plane's default
    std::uint8_t primary_access_technology = 0;  // overflow: paths of this ATT first; 0 = BID order
    // Signalled flow bindings, sorted by (priority, fid); not persisted (the MAG re-signals
    // them with its next PBU).
    std::vector<FlowBindingEntry> flows;
    // Prefixes of home_prefixes anchored at other nodes (distributed anchoring).
    std::vector<RemoteAnchor> remote_anchors;

    [[nodiscard]] const Path* find_path(std::uint16_t bid) const noexcept;
    [[nodiscard]] Seconds expires_at() const noexcept;  // latest path expiry
    bool operator==(const Session&) const = default;
};

enum class CacheError : std::uint8_t {
    kNotFound,
    kAlreadyExists,
    kPrefixInUse,      // a home prefix belongs to another session
    kPathInUse,        // unused since (MAG id, MN-ID, BID) identifies a path; kept for its value
    kNoPaths,          // a session needs at least one path
    kDuplicateBid,     // two paths with one BID in one session
    kCapacity,         // max_sessions reached
    kTooManyPrefixes,  // more home + delegated prefixes than the data plane routes per session
};
std::string_view to_string(CacheError e) noexcept;

struct CacheEvent {
    enum class Kind : std::uint8_t { kAdded, kUpdated, kRemoved, kExpired };
    Kind kind;
    const Session* session;  // valid only during the callback
    std::uint32_t id = 0;    // the session's slot: stable while it exists, < max_sessions
};

class BindingCache {
  public:
    explicit BindingCache(std::size_t max_sessions = 1'000'000);

    // Inserts a new session (its NAI must be new; prefixes and (MAG id, BID) free).
    Result<void, CacheError> insert(Session s);
    // Replaces the session with the same NAI (re-registration, paths added or removed).
    Result<void, CacheError> update(Session s);
    // Removes a session. Returns the removed entry.
    Result<Session, CacheError> remove(std::string_view nai);
    // Removes one path; removing the last path removes the session (returns true then).
    Result<bool, CacheError> remove_path(std::string_view nai, std::uint16_t bid);
    // Sets liveness of one path (heartbeat).
    Result<void, CacheError> set_path_live(std::string_view nai, std::uint16_t bid, bool live);

    [[nodiscard]] const Session* find(std::string_view nai) const;
    // The session's slot (the id its events carry and the data plane's session id).
    [[nodiscard]] std::optional<std::uint32_t> session_id(std::string_view nai) const;
    // The session in slot `id`, or nullptr (no session there now).
    [[nodiscard]] const Session* at(std::uint32_t id) const noexcept;
    [[nodiscard]] const Session* find_by_prefix(const Prefix& p) const;
    // A session with a path of this MAG and BID (the one in the lowest slot when several mobile
    // nodes share the pair), or nullptr.
    [[nodiscard]] const Session* find_by_path(std::string_view mag_id, std::uint16_t bid) const;
    // The session of this mobile node if it has a path of this MAG and BID, else nullptr.
    [[nodiscard]] const Session* find_by_path(std::string_view mag_id, std::string_view nai,
                                              std::uint16_t bid) const;
    // Every session with a path of this MAG and BID, in slot order.
    [[nodiscard]] std::vector<const Session*> find_all_by_path(std::string_view mag_id,
                                                               std::uint16_t bid) const;
    [[nodiscard]] std::vector<const Session*> find_by_coa(const CareOfAddress& coa) const;

    // Paging: visits up to `limit` sessions starting at `cursor` (0 = start) and returns the
    // cursor of the next page, or 0 when done. Sessions present for the whole walk are visited
    // exactly once; sessions added during it may or may not be.
    std::uint64_t for_each_page(std::uint64_t cursor, std::size_t limit,
                                const std::function<void(const Session&)>& fn) const;
    // The same, with each session's slot (its id): no lookup by NAI.
    std::uint64_t for_each_page_id(
        std::uint64_t cursor, std::size_t limit,
        const std::function<void(std::uint32_t, const Session&)>& fn) const;

    // Drops paths whose lifetime ended at or before `now`, and sessions left with none.
    // Returns the number of paths expired. Cost is proportional to the seconds elapsed plus the
    // entries due, not to the cache size.
    std::size_t expire(Seconds now);

    [[nodiscard]] std::size_t size() const noexcept { return by_nai_.size(); }
    // Entries in the expiry wheel (live and not yet visited stale ones): about one per session.
    [[nodiscard]] std::size_t expiry_entries() const noexcept {
        std::size_t n = 0;
        for (const auto& b : wheel_) {
            n += b.size();
        }
        return n;
    }
    [[nodiscard]] std::size_t max_sessions() const noexcept { return max_sessions_; }

    using Observer = std::function<void(const CacheEvent&)>;
    void add_observer(Observer o) { observers_.push_back(std::move(o)); }

  private:
    struct PrefixHash {
        std::size_t operator()(const Prefix& p) const noexcept;
    };
    struct WheelEntry {
        std::uint32_t slot;  // index into slots_
        Seconds due;
    };

    Result<void, CacheError> check_indexes(const Session& s, std::uint32_t self) const;
    void index(std::uint32_t id);
    void unindex(std::uint32_t id);
    void schedule(std::uint32_t id);
    void release(std::uint32_t id);  // frees a removed session's slot
    void notify(CacheEvent::Kind k, std::uint32_t id, const Session& s);
    std::uint32_t id_of(std::string_view nai) const;

    std::size_t max_sessions_;
    std::vector<std::optional<Session>> slots_;
    std::vector<std::uint32_t> free_slots_;
    // Transparent: looked up by string_view without a temporary string.
    struct NaiHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    std::unordered_map<std::string, std::uint32_t, NaiHash, std::equal_to<>> by_nai_;
    std::unordered_map<Prefix, std::uint32_t, PrefixHash> by_prefix_;
    // Ordered by (MAG id, BID, slot): one MAG (another hag node) may register many sessions
    // under one BID.
    // (MAG id, BID, session id), looked up with a string_view MAG id (compared as views: the
    // standard library's heterogeneous tuple < is not portable between string and string_view).
    struct PathKeyLess {
        using is_transparent = void;
        template <typename A, typename B>
        bool operator()(const A& a, const B& b) const noexcept {
            return std::tuple<std::string_view, std::uint16_t, std::uint32_t>(
                       std::get<0>(a), std::get<1>(a), std::get<2>(a)) <
                   std::tuple<std::string_view, std::uint16_t, std::uint32_t>(
                       std::get<0>(b), std::get<1>(b), std::get<2>(b));
        }
    };
    std::set<std::tuple<std::string, std::uint16_t, std::uint32_t>, PathKeyLess> by_path_;
    // Ordered by (CoA, slot): many sessions may share a CoA (a NAT, a load generator), and
    // unindexing one of them must not walk all the others.
    std::set<std::pair<Ipv6Address, std::uint32_t>> by_coa_;

    // Timing wheel: kWheelSlots one-second buckets. An entry whose due time is beyond one turn
    // stays in its bucket until its turn comes. A session has one live entry, for its earliest
    // path expiry (wheel_due_); a refresh that expires later adds none (the entry, when it
    // fires, schedules the next one), so re-registrations cannot pile entries up — they did,
    // one per PBU for a whole lifetime. Entries superseded by an earlier one, or of removed
    // sessions, are dropped when their bucket is visited.
    static constexpr std::size_t kWheelSlots = 4096;
    std::vector<std::vector<WheelEntry>> wheel_;
    std::vector<Seconds> wheel_due_;  // per slot: due second of its live entry, -1: none
    Seconds wheel_now_ = -1;          // last second processed by expire()

    std::vector<Observer> observers_;
};

}  // namespace hag::control
