// Subscriber sessions of the data plane: what the control plane programs (SessionConfig) and
// what workers update per packet (SessionState), with the lookups workers need:
//   inner destination IPv6 / IPv4 -> session   (downlink)
//   uplink GRE key                -> session   (uplink)
//   outer source (care-of address) -> session  (uplink GRE without a key)
//
// Threading rule: one writer (the main lcore) calls upsert/remove; any number of readers
// registered with the Rcu read concurrently without locks. A SessionConfig is immutable once
// published: an update publishes a new one and the old one is neither freed nor rewritten
// before an RCU grace period, so a reader holding a pointer between two quiescent reports
// always sees a complete config. Each session has a slot (SessionSlot): its state and, next to
// it, a buffer for its config; an update whose slot buffer is still published or in its grace
// period goes to a heap copy, which reclaim() moves back into the slot afterwards.
// SessionState (counters, striping and reorder state) and SessionHot (the downlink's sequence
// number, its first paths' counters and the fast downlink form derived from the config, in a
// dense array of its own) are keyed by session id and survive updates. Each published config gets a
// new plan.version, so the striping scheduler notices a swap on the next packet.
#pragma once

#include <rte_prefetch.h>

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "hag/result.hpp"
#include "multipath/stripe_state.hpp"
#include "tables/ip_addr.hpp"
#include "tables/prefix_table.hpp"
#include "tables/rcu.hpp"

namespace hag::dp {

inline constexpr unsigned kMaxPaths = 8;
// Paths whose downlink counters live in the session's SessionHot record (the rest in its
// SessionState): the first two, what a single-path or two-path session's downlink writes.
inline constexpr unsigned kHotPaths = 2;
inline constexpr unsigned kMaxPrefixes = 4;
// PathConfig::mtu bounds: the outer packet's MTU (RFC 791's 576 that every IPv4 host takes,
// RFC 8200's 1280 for IPv6) up to a jumbo frame.
inline constexpr unsigned kMinPathMtu4 = 576;
inline constexpr unsigned kMinPathMtu6 = 1280;
inline constexpr unsigned kMaxPathMtu = 9216;

struct IpPrefix {
    IpAddr addr;
    std::uint8_t length = 0;
    bool operator==(const IpPrefix&) const = default;
    // The first `length` bits equal, same family. Inline, with two 64-bit compares (the
    // uplink's anti-spoofing check runs it per packet; an out-of-line memcmp showed in its
    // profile). Addresses past a family's length are zero-filled (IpAddr), so the IPv6 form
    // serves IPv4 too.
    [[nodiscard]] bool contains(const IpAddr& a) const noexcept {
        if (a.family != addr.family) {
            return false;
        }
        std::uint64_t x[2], y[2];
        std::memcpy(x, a.bytes.data(), 16);
        std::memcpy(y, addr.bytes.data(), 16);
        const unsigned len = length < 128 ? length : 128;
        const std::uint64_t hi = len >= 64  ? ~std::uint64_t{0}
                                 : len == 0 ? 0
                                            : ~std::uint64_t{0} << (64 - len);
        const std::uint64_t lo = len <= 64    ? 0
                                 : len == 128 ? ~std::uint64_t{0}
                                              : ~std::uint64_t{0} << (128 - len);
        return ((__builtin_bswap64(x[0] ^ y[0]) & hi) | (__builtin_bswap64(x[1] ^ y[1]) & lo)) == 0;
    }
};

// For hash maps keyed by prefix (the writer's ownership indexes): address bytes, family and
// length, no allocation.
struct IpPrefixHash {
    std::size_t operator()(const IpPrefix& p) const noexcept {
        std::uint64_t a = 0, b = 0;
        std::memcpy(&a, p.addr.bytes.data(), 8);
        std::memcpy(&b, p.addr.bytes.data() + 8, 8);
        std::uint64_t h = a * 0x9E3779B97F4A7C15ULL;
        h ^= (b + 0x632BE59BD9B4E019ULL + (h << 6) + (h >> 2)) * 0xC2B2AE3D27D4EB4FULL;
        h ^= (static_cast<std::uint64_t>(p.addr.family) << 8 | p.length) * 0x165667B19E3779F9ULL;
        return static_cast<std::size_t>(h ^ (h >> 29));
    }
};

using MacAddr = std::array<std::uint8_t, 6>;

// An unset MAC (a static next-hop MAC of zero means: resolve it at run time).
inline bool mac_zero(const MacAddr& m) noexcept {
    return (m[0] | m[1] | m[2] | m[3] | m[4] | m[5]) == 0;
}

// How a path's packets are tunnelled (DpPath.tunnel).
enum class Tunnel : std::uint8_t {
    kGre = 0,     // GRE with the path's key and the session's sequence numbers
    kIpInIp = 1,  // the inner packet right after the outer IP header (RFC 2473 / RFC 2003)
};

// One tunnel (care-of address) of a session. Field order matters for speed: what a packet
// reads comes first, in 64 octets (the hot part: a path's packet reads at most two lines of
// it), then what only the writer, the striping plan and flow policy read.
struct PathConfig {
    bool live = true;  // taken out of forwarding when false
    Tunnel tunnel = Tunnel::kGre;
    std::uint16_t port = 0;  // access port the tunnel leaves by
    // NAT traversal: non-zero = the path is behind a NAT and its packets are GRE in UDP, from
    // the gateway's port 5437 to coa:udp_port (the NAT's observed port) and back (IPv4 only).
    std::uint16_t udp_port = 0;
    std::uint16_t mtu = 0;  // tunnel MTU (outer packet) of this path; 0 = the access port's
    // Care-of address (outer destination). Before `local`: the uplink's anti-spoofing compares
    // it, and for the first path this puts it in the config's first line (static_assert below).
    IpAddr coa;
    IpAddr local;                    // gateway's tunnel address (outer source)
    MacAddr src_mac{};               // that port's MAC
    MacAddr next_hop_mac{};          // static next hop toward the CoA; zero = use next_hop
    std::uint32_t downlink_key = 0;  // GRE key stamped on downlink packets (RFC 5845)
    // NextHopTable index of the next hop toward the CoA (resolved at run time), or UINT32_MAX.
    std::uint32_t next_hop = UINT32_MAX;
    std::uint16_t bid = 0;               // binding identifier (RFC 5648)
    std::uint8_t if_label = 0;           // access colour
    std::uint8_t access_technology = 0;  // RFC 5213 ATT (flow policy labels match it)
    std::uint32_t weight = 0;      // striping weight, kbit/s (link metrics / policy); 0 = unknown
    std::uint32_t rate_kbps = 0;   // overflow striping: fill rate; 0 = weight
    std::uint32_t preference = 0;  // overflow striping: lower is filled first; ties in path order
};
static_assert(offsetof(PathConfig, next_hop) + sizeof(PathConfig::next_hop) <= 64,
              "a path's hot part is 64 octets");

// Distributed anchoring (docs/scale-out.md): one of the session's prefixes is anchored at another
// node. Uplink packets whose inner source lies in `prefix` are re-encapsulated in GRE from `local`
// to `anchor` (key uplink_key); GRE from `anchor` to `local` with key downlink_key is decapsulated
// and its inner packet (destination in `prefix`) goes the session's downlink way
// (pipeline/relay.hpp).
inline constexpr unsigned kMaxRemoteAnchors = kMaxPrefixes;
struct RemoteAnchorConfig {
    IpPrefix prefix;                      // one of the session's prefixes
    IpAddr local;                         // this node's tunnel address (outer source)
    IpAddr anchor;                        // the anchor's tunnel address (outer destination)
    std::uint32_t uplink_key = 0;         // stamped toward the anchor; 0 = no key
    std::uint32_t downlink_key = 0;       // the anchor's toward us: in the key table; 0 = none
    std::uint16_t port = 0;               // access port toward the anchor
    MacAddr src_mac{};                    // that port's MAC
    MacAddr next_hop_mac{};               // static next hop toward the anchor; zero = use next_hop
    std::uint32_t next_hop = UINT32_MAX;  // NextHopTable index toward the anchor, or UINT32_MAX
};

// Uplink reorder of one session (dataplane/multipath/reorder.hpp): kDefault follows the data
// plane's `reorder.enabled`.
enum class ReorderMode : std::uint8_t { kDefault = 0, kOn = 1, kOff = 2 };

// The downlink of a session whose every packet leaves one way: one usable path among its first
// kHotPaths, a GRE tunnel without UDP, no flow policy. Derived by SessionTable::upsert from the
// config and kept in the session's SessionHot record (below), not in the config: that path's
// outer headers prebuilt, so that such a packet reads its SessionHot record and nothing of its
// slot, and copies its headers instead of building them field by field
// (pipeline/downlink_encap.cpp, encap_fast). A packet the fast form does not fit (inner TTL
// expiring, too big for the MTU, next hop unresolved, no headroom) takes the general path.
struct FastDownlink {
    // Right-aligned in 64 octets (the first 64 - hlen are zero, hlen = 62 over IPv6, 42 over
    // IPv4): Ethernet (the destination MAC zero when resolved at run time), the outer IPv6 or
    // IPv4 header with traffic class, length, hop limit and checksum zero, then GRE's flags,
    // protocol 0 and key. A packet copies all 64 octets so that they end where the GRE sequence
    // number (when the session uses them) or the inner packet starts; what lands before the
    // header is in the headroom.
    std::array<std::uint8_t, 64> header{};
    bool enabled = false;  // false: the general path (the rest is not set)
    bool v6_outer = false;
    bool sequence = false;       // GRE sequence numbers (SessionConfig::gre_sequence)
    bool resolve_mac = false;    // the destination MAC comes from next_hop
    std::uint8_t path = 0;       // the path's index (< kHotPaths: its counters are SessionHot's)
    std::uint8_t length = 0;     // octets prepended: 62 or 42, + 4 with sequence numbers
    std::uint16_t port = 0;      // access port
    std::uint16_t mtu = 0;       // the path's tunnel MTU; 0 = the access port's
    std::uint32_t next_hop = 0;  // NextHopTable index (resolve_mac)
    // IPv4: one's complement sum of `header`'s IP header words, folded to 16 bits.
    std::uint32_t ipv4_sum = 0;
};
// FastDownlink as SessionHot stores it and a packet reads it: words, so that a reader copies it
// with plain 8-octet loads and decodes its fields with shifts (copying the words into a
// FastDownlink on the stack made the field loads wait for the word stores: a store-forwarding
// stall per packet).
//   meta[0]: enabled | v6_outer << 8 | sequence << 16 | resolve_mac << 24 | path << 32 |
//            length << 40 | port << 48
//   meta[1]: mtu | ipv4_sum << 16 | next_hop << 32
//   header:  FastDownlink::header, little-endian words
inline constexpr std::size_t kFastMetaWords = 2;
struct FastWords {
    std::uint64_t meta[kFastMetaWords];
    std::uint64_t header[8];
    [[nodiscard]] bool enabled() const noexcept { return (meta[0] & 0xff) != 0; }
    [[nodiscard]] bool v6_outer() const noexcept { return (meta[0] >> 8 & 0xff) != 0; }
    [[nodiscard]] bool sequence() const noexcept { return (meta[0] >> 16 & 0xff) != 0; }
    [[nodiscard]] bool resolve_mac() const noexcept { return (meta[0] >> 24 & 0xff) != 0; }
    [[nodiscard]] unsigned path() const noexcept { return meta[0] >> 32 & 0xff; }
    [[nodiscard]] unsigned length() const noexcept { return meta[0] >> 40 & 0xff; }
    [[nodiscard]] std::uint16_t port() const noexcept {
        return static_cast<std::uint16_t>(meta[0] >> 48);
    }
    [[nodiscard]] unsigned mtu() const noexcept { return meta[1] & 0xffff; }
    [[nodiscard]] std::uint32_t next_hop() const noexcept {
        return static_cast<std::uint32_t>(meta[1] >> 32);
    }
    [[nodiscard]] std::uint32_t ipv4_sum() const noexcept {
        return static_cast<std::uint32_t>(meta[1] >> 16 & 0xffff);
    }
};
static_assert(std::endian::native == std::endian::little, "FastWords::header is little-endian");
inline FastWords fast_words(const FastDownlink& f) noexcept {
    FastWords w{};
    w.meta[0] = std::uint64_t{f.enabled} | std::uint64_t{f.v6_outer} << 8 |
                std::uint64_t{f.sequence} << 16 | std::uint64_t{f.resolve_mac} << 24 |
                std::uint64_t{f.path} << 32 | std::uint64_t{f.length} << 40 |
                std::uint64_t{f.port} << 48;
    w.meta[1] = std::uint64_t{f.mtu} | std::uint64_t{f.ipv4_sum & 0xffff} << 16 |
                std::uint64_t{f.next_hop} << 32;
    std::memcpy(w.header, f.header.data(), sizeof w.header);
    return w;
}
inline FastDownlink fast_downlink(const FastWords& w) noexcept {
    FastDownlink f;
    f.enabled = w.enabled();
    f.v6_outer = w.v6_outer();
    f.sequence = w.sequence();
    f.resolve_mac = w.resolve_mac();
    f.path = static_cast<std::uint8_t>(w.path());
    f.length = static_cast<std::uint8_t>(w.length());
    f.port = w.port();
    f.mtu = static_cast<std::uint16_t>(w.mtu());
    f.next_hop = w.next_hop();
    f.ipv4_sum = w.ipv4_sum();
    std::memcpy(f.header.data(), w.header, sizeof w.header);
    return f;
}

// Field order matters for speed: the first 18 octets hold what every packet of either direction
// reads besides its path and prefix; the first prefix's copy and the first path's hot part
// follow them, all in the first two lines (static_assert below).
struct alignas(64) SessionConfig {
    std::uint32_t uplink_key = 0;  // GRE key the CPE stamps on uplink packets; 0 = none
    bool gre_sequence = true;      // stamp sequence numbers on downlink
    ReorderMode reorder = ReorderMode::kDefault;
    // Flow policy profile (policy/policy_table.hpp slot); 0 = none: every packet striped.
    std::uint16_t policy = 0;
    std::uint32_t reorder_timeout_us = 0;  // longest wait for a gap; 0 = the data plane's
    std::uint8_t n_paths = 0;
    // Derived by SessionTable::upsert, callers leave them: plan.n_order and plan.order[0], here
    // in the first line so that a single-path downlink packet does not read the plan's line.
    std::uint8_t plan_n_order = 0;
    std::uint8_t plan_first = 0;
    // Distributed anchoring: prefixes anchored at other nodes (`anchors` below). In the first
    // line: every uplink packet with a key tests it (a miss per packet further down).
    std::uint8_t n_anchors = 0;
    // Downlink over several live paths. In the first line: every striped packet reads it (on
    // its old line, after the prefixes, it was a miss per packet: striping at 0.46 x single path).
    StripingMode striping = StripingMode::kWeighted;
    std::uint8_t n_prefixes = 0;  // home prefixes (IPv6 HNP, IPv4 HoA, delegated), below
    // Derived by SessionTable::upsert, callers leave it: prefixes[0] (none when n_prefixes is
    // 0), in the first line for the uplink's anti-spoofing check. (With the paths' cold fields
    // last, it does not push the second path's hot part across a third line.)
    IpPrefix prefix_first{};
    std::array<PathConfig, kMaxPaths> paths{};
    std::array<IpPrefix, kMaxPrefixes> prefixes{};  // n_prefixes of them (above)
    std::uint32_t overflow_burst_bytes = 0;         // overflow bucket depth; 0 = 10 ms of rate
    // Distributed anchoring: n_anchors of these (tables above).
    std::array<RemoteAnchorConfig, kMaxRemoteAnchors> anchors{};
    // Derived by SessionTable::upsert (plan_striping, multipath/scheduler.hpp); callers leave it.
    // On a line of its own: a striped packet reads version .. share_max (52 octets) in one line.
    alignas(64) StripePlan plan{};
};

// A downlink packet of a session's first path that does not take the fast form reads the
// config's first two lines only, an uplink packet of it the first line only (header, first
// prefix, the path's live, tunnel, udp_port and coa); a packet of its second path reads two lines
// too (lines 1 and 2).
static_assert(offsetof(SessionConfig, prefix_first) + sizeof(IpPrefix) <= 64);
static_assert(offsetof(SessionConfig, paths) + 64 <= 128);
static_assert(offsetof(SessionConfig, paths) + offsetof(PathConfig, coa) + sizeof(IpAddr) <= 64);
static_assert(offsetof(SessionConfig, paths) + sizeof(PathConfig) >= 64 &&
              offsetof(SessionConfig, paths) + sizeof(PathConfig) + 64 <= 192);

// Written by workers per packet (relaxed atomics: counts, not synchronisation). Unlike stage
// and port counters these are not per worker (per-worker copies would cost workers x capacity x
// 512 bytes): a session has exactly one owning worker (runtime/worker.hpp, owner_of), the only
// one that runs its stages, so the per-packet counters and the downlink sequence number have
// one writer and are bumped with owner_add (a plain add, no locked instruction; readers on
// other threads still load whole values). Byte counts are inner IP packet bytes (what the
// subscriber sent / received).
// A path's traffic in one direction: its two counters side by side, so that a packet writes one
// line for both.
struct PathTraffic {
    std::atomic<std::uint64_t> packets{0};
    std::atomic<std::uint64_t> bytes{0};  // inner IP bytes
};

// Field order matters for speed: line 0 holds everything an uplink packet on one of the
// session's first three paths touches when it does not take the fast uplink form (UplinkHot):
// the config pointer, the incarnation and the path's uplink counters. The downlink's sequence
// number and its first paths' counters are in the session's SessionHot record (below) instead. The
// session's totals are not counters of their own: they are the sums of its paths' counters
// (SessionTable::totals; every packet counted in a total was counted in exactly one path's, and a
// path's counters are reset only with the session's), so a packet adds to two counters, not four.
struct alignas(64) SessionState {
    // The session's published config (nullptr: no session). Written by SessionTable's writer
    // only, read through SessionTable::config(). Here rather than in an array of its own so that
    // an uplink packet's config pointer and its counters share a line (and its config's page).
    std::atomic<const SessionConfig*> config{nullptr};
    // Bumped by upsert when the id starts a new session: the reorder stage resets its
    // per-session state (sequence space) when it sees a new value. 0 = never programmed.
    std::atomic<std::uint32_t> incarnation{0};
    // Bit i: path i of the published config is live. Derived by upsert before it publishes
    // the config (the uplink's reorder meta data): read from every path's `live` octet, the
    // second path's on a config line nothing prefetched, it cost a general-path uplink packet
    // of a two-path session ~140 cycles (docs/benchmarks.md, "Uplink record").
    std::atomic<std::uint8_t> live_mask{0};
    // Per path index (PathConfig order): its uplink traffic on the general path, uplink[0..2]
    // in line 0 (the fast uplink form counts the first path's packets it takes in UplinkHot;
    // SessionTable::uplink_counts sums both).
    std::array<PathTraffic, kMaxPaths> uplink{};
    // The downlink traffic of paths kHotPaths.. (indexed from 0); that of the first kHotPaths
    // is in SessionHot. Through SessionTable::downlink_traffic.
    std::array<PathTraffic, kMaxPaths - kHotPaths> downlink_more{};
    // Downlink striping (multipath/stripe_state.hpp): one writer, the worker serving the
    // session's downlink; never written by the main lcore (it resets itself on a new version).
    StripeState stripe{};
    // Uplink reorder (dataplane/multipath/reorder.hpp). 32-bit (they wrap) to keep the state of
    // a million sessions small; the per-path ones are indexed like the counters above.
    std::atomic<std::uint32_t> reorder_lost{0};        // sequence numbers given up as lost
    std::atomic<std::uint32_t> reorder_timeouts{0};    // gaps given up after the timeout
    std::atomic<std::uint32_t> reorder_duplicates{0};  // duplicates dropped
    std::atomic<std::uint32_t> reorder_overflow{0};    // buffer full: gaps skipped early
    std::array<std::atomic<std::uint32_t>, kMaxPaths> path_seq_gaps{};   // opened a gap
    std::array<std::atomic<std::uint32_t>, kMaxPaths> path_reordered{};  // held behind a gap
    std::array<std::atomic<std::uint32_t>, kMaxPaths> path_late{};  // after its gap was skipped
    std::array<std::atomic<std::uint32_t>, kMaxPaths> path_timed_out{};  // released by a timeout
    // Flow policy (policy/classify.hpp).
    std::atomic<std::uint64_t> policy_drops{0};      // downlink packets dropped by a rule
    std::atomic<std::uint64_t> policy_pinned{0};     // downlink packets sent on a pinned path
    std::atomic<std::uint64_t> uplink_forbidden{0};  // uplink on a path its rule does not allow
    // NAT traversal (tables/nat_port.hpp): per path, the UDP source port the NAT gave the
    // path's data when it differs from PathConfig::udp_port (learnt from GRE-in-UDP with the
    // session's key), else 0. Written by the worker serving the session; carried over by
    // upsert (the main lcore) for paths that keep their BID and care-of address.
    std::array<std::atomic<std::uint16_t>, kMaxPaths> path_nat_port{};
    // Distributed anchoring (pipeline/relay.hpp): inner IP packets / bytes relayed to the remote
    // anchors (uplink) and from them toward the subscriber (downlink, before encapsulation).
    std::atomic<std::uint64_t> relay_uplink_packets{0};
    std::atomic<std::uint64_t> relay_uplink_bytes{0};
    std::atomic<std::uint64_t> relay_downlink_packets{0};
    std::atomic<std::uint64_t> relay_downlink_bytes{0};
};

static_assert(offsetof(SessionState, live_mask) < 64 &&
                  offsetof(SessionState, uplink) + 3 * sizeof(PathTraffic) <= 64,
              "an uplink packet on paths 0-2 writes line 0 only");

// What a session's downlink packet reads and writes besides its config, in a dense array of its
// own (SessionTable::hot): 128 octets a session instead of a ~2 kB slot, so that the records of
// 100k sessions take 12.8 MB (3,125 pages of 4 kB, about what a core's TLB holds) and a packet
// that takes the fast downlink form touches this record and its lookup's bucket only. Line 0:
// the sequence number, the first two paths' downlink counters, the fast form's fields and the
// config pointer (a copy of SessionState::config, for the downlink's general path, which then
// reads no state line); line 1: the fast form's headers.
//
// The fast form is written by SessionTable's writer while workers read it: a sequence lock.
// The writer makes `fast_version` odd, rewrites the words, makes it even again; a reader that
// sees the same even version before and after its copy has a consistent one, and a reader that
// does not takes the general path for that packet (no retry loop: the config, RCU-published,
// says what to do). All the words are relaxed atomics (no data race).
struct alignas(64) SessionHot {
    std::atomic<std::uint32_t> next_downlink_seq{0};  // one writer: the session's owning worker
    std::atomic<std::uint32_t> fast_version{0};       // even: fast_meta / fast_header stable
    std::array<PathTraffic, kHotPaths> downlink{};    // paths 0 and 1 (owner_add)
    std::array<std::atomic<std::uint64_t>, kFastMetaWords> fast_meta{};  // FastDownlink fields
    // The published config, as SessionState::config (SessionTable::publish writes both).
    std::atomic<const SessionConfig*> config{nullptr};
    std::array<std::atomic<std::uint64_t>, 8> fast_header{};  // FastDownlink::header
};
static_assert(sizeof(SessionHot) == 128 && offsetof(SessionHot, fast_header) == 64);

// The uplink of a session's first path when a packet needs nothing else of the session: GRE with
// the session's key, not in UDP, from the first path's care-of address, with an inner source in
// the first prefix. Derived by SessionTable::upsert from a config whose first path is a plain
// GRE tunnel (no NAT), without remote anchors or flow policy, with at least one prefix. Such a
// packet reads the session's UplinkHot record (below) instead of its state and config lines
// (pipeline/uplink_decap.cpp); any other packet, or one that fails a check here, takes the
// general path, which gives the verdict. As words, for the reason FastWords are:
//   meta: enabled | coa is IPv6 << 1 | prefix is IPv6 << 2 | reorder mode << 8 |
//         live paths' mask << 16 | prefix length << 24 | incarnation << 32
//   timeout: SessionConfig::reorder_timeout_us
//   coa, prefix: the first path's care-of address, the first prefix (IpAddr::bytes, zero-filled
//                past the family's length), little-endian words
struct UplinkWords {
    std::uint64_t meta = 0;
    std::uint32_t timeout = 0;
    std::uint64_t coa[2] = {0, 0};
    std::uint64_t prefix[2] = {0, 0};
    [[nodiscard]] bool enabled() const noexcept { return (meta & 1U) != 0; }
    [[nodiscard]] Family coa_family() const noexcept {
        return (meta >> 1 & 1U) != 0 ? Family::kIpv6 : Family::kIpv4;
    }
    [[nodiscard]] Family prefix_family() const noexcept {
        return (meta >> 2 & 1U) != 0 ? Family::kIpv6 : Family::kIpv4;
    }
    [[nodiscard]] ReorderMode mode() const noexcept {
        return static_cast<ReorderMode>(meta >> 8 & 0xff);
    }
    [[nodiscard]] std::uint8_t live_mask() const noexcept {
        return static_cast<std::uint8_t>(meta >> 16);
    }
    [[nodiscard]] unsigned prefix_length() const noexcept { return meta >> 24 & 0xff; }
    [[nodiscard]] std::uint32_t incarnation() const noexcept {
        return static_cast<std::uint32_t>(meta >> 32);
    }
    // a is the first path's care-of address.
    [[nodiscard]] bool from_coa(const IpAddr& a) const noexcept {
        std::uint64_t x[2];
        std::memcpy(x, a.bytes.data(), 16);
        return a.family == coa_family() && x[0] == coa[0] && x[1] == coa[1];
    }
    // a lies in the first prefix (IpPrefix::contains on the words).
    [[nodiscard]] bool in_prefix(const IpAddr& a) const noexcept {
        IpPrefix p;
        p.addr.family = prefix_family();
        std::memcpy(p.addr.bytes.data(), prefix, 16);
        p.length = static_cast<std::uint8_t>(prefix_length());
        return p.contains(a);
    }
};

// What an uplink packet that takes the fast form (UplinkWords) reads and writes, in a dense
// array of its own (SessionTable::uplink_hot): 64 octets a session, one line, instead of a line
// of its state and one of its config, on the slot's page. The packets the form takes are
// counted here (the first path's; the general path counts in SessionState::uplink, and
// SessionTable::uplink_counts sums both), so that a session without the form, whose key's
// bucket says so (SessionTable::kUplinkFastBit), never touches this line. The form is rewritten by
// the writer under a sequence lock, as SessionHot's: a reader that sees the same even version
// before and after its copy has a consistent one, any other reader takes the general path.
struct alignas(64) UplinkHot {
    std::atomic<std::uint32_t> version{0};  // even: the words below are stable
    std::atomic<std::uint32_t> timeout{0};
    std::atomic<std::uint64_t> meta{0};
    std::array<std::atomic<std::uint64_t>, 2> coa{};
    std::array<std::atomic<std::uint64_t>, 2> prefix{};
    PathTraffic path0;  // the first path's uplink packets the form took (owner_add)
};
static_assert(sizeof(UplinkHot) == 64);

// A path's counters in one direction, read (SessionTable::uplink_counts).
struct PathCounts {
    std::uint64_t packets = 0;
    std::uint64_t bytes = 0;  // inner IP bytes
};

// One session's totals, the sums of its paths' counters (SessionTable::totals).
struct SessionTotals {
    std::uint64_t downlink_packets = 0;
    std::uint64_t downlink_bytes = 0;  // inner IP bytes
    std::uint64_t uplink_packets = 0;
    std::uint64_t uplink_bytes = 0;
};

// One session's slot in SessionTable: its state, then its config's home buffer, adjacent so that
// a packet's state lines and config lines share a 4 kB page (and its page walk) most of the
// time. SessionTable publishes a config in the slot's buffer when that buffer is free, else
// (an update while the buffer is still published, or within the grace period after) in a heap
// copy that it moves back into the slot once the buffer's grace period is over.
struct alignas(64) SessionSlot {
    SessionState state;
    // SessionTable's writer only; readers go through state.config (the downlink through its
    // copy in SessionHot).
    SessionConfig config;
};

// Adds v to a counter of SessionState or SessionHot that only the session's owning worker
// writes (or the downlink sequence number), and
// returns the value before (as fetch_add would): a relaxed load and store, which on x86 is a
// plain add instead of a locked one (a locked add per counter and packet costs ~20 cycles and
// stops later loads from overlapping earlier ones). Never for counters with several writers.
template <typename T>
inline T owner_add(std::atomic<T>& c, T v) noexcept {
    const T before = c.load(std::memory_order_relaxed);
    c.store(static_cast<T>(before + v), std::memory_order_relaxed);
    return before;
}

class SessionTable {
  public:
    using SessionId = std::uint32_t;
    using KeyTable = FlatHash<4>;

    // name: unique among DPDK objects of the process; capacity: max sessions (ids 0..cap-1).
    static Result<std::unique_ptr<SessionTable>, std::string> create(const std::string& name,
                                                                     std::uint32_t capacity,
                                                                     Rcu& rcu);
    ~SessionTable();
    SessionTable(const SessionTable&) = delete;
    SessionTable& operator=(const SessionTable&) = delete;

    // ---- writer (main lcore) ----
    // Adds or replaces session `id`. Refused, with nothing changed, when the config is
    // inconsistent or collides with another session (key, prefix).
    Result<void, std::string> upsert(SessionId id, const SessionConfig& cfg);
    Result<void, std::string> remove(SessionId id);
    // Frees replaced configs whose grace period is over (call from the main loop).
    // Moves heap copies back into their slots once the slot's buffer is free (non-blocking).
    void reclaim();
    [[nodiscard]] std::uint32_t size() const noexcept { return live_; }
    [[nodiscard]] std::uint32_t capacity() const noexcept { return capacity_; }

    // ---- readers ----
    [[nodiscard]] const SessionConfig* config(SessionId id) const noexcept {
        return id < capacity_ ? slots_[id].state.config.load(std::memory_order_acquire) : nullptr;
    }
    [[nodiscard]] SessionState& state(SessionId id) noexcept { return slots_[id].state; }
    [[nodiscard]] const SessionState& state(SessionId id) const noexcept {
        return slots_[id].state;
    }
    // Session id's published config as the downlink reads it (its hot record's copy).
    [[nodiscard]] const SessionConfig* downlink_config(SessionId id) const noexcept {
        return hot_[id].config.load(std::memory_order_acquire);
    }
    // Session id's downlink record (sequence number, first paths' counters, fast form).
    [[nodiscard]] SessionHot& hot(SessionId id) noexcept { return hot_[id]; }
    [[nodiscard]] const SessionHot& hot(SessionId id) const noexcept { return hot_[id]; }
    // Path `path`'s traffic counters of session id (path < kMaxPaths).
    [[nodiscard]] PathTraffic& downlink_traffic(SessionId id, unsigned path) noexcept {
        return path < kHotPaths ? hot_[id].downlink[path]
                                : slots_[id].state.downlink_more[path - kHotPaths];
    }
    [[nodiscard]] const PathTraffic& downlink_traffic(SessionId id, unsigned path) const noexcept {
        return path < kHotPaths ? hot_[id].downlink[path]
                                : slots_[id].state.downlink_more[path - kHotPaths];
    }
    // Path `path`'s uplink counters that the general path writes (the fast uplink form
    // writes the first path's in UplinkHot): uplink_counts() is the path's traffic.
    [[nodiscard]] PathTraffic& uplink_traffic(SessionId id, unsigned path) noexcept {
        return slots_[id].state.uplink[path];
    }
    [[nodiscard]] const PathTraffic& uplink_traffic(SessionId id, unsigned path) const noexcept {
        return slots_[id].state.uplink[path];
    }
    // Path `path`'s uplink traffic of session id: the general path's counters, plus for the
    // first path the fast form's (readers on any thread).
    [[nodiscard]] PathCounts uplink_counts(SessionId id, unsigned path) const noexcept {
        const PathTraffic& g = slots_[id].state.uplink[path];
        PathCounts c{g.packets.load(std::memory_order_relaxed),
                     g.bytes.load(std::memory_order_relaxed)};
        if (path == 0) {
            c.packets += up_[id].path0.packets.load(std::memory_order_relaxed);
            c.bytes += up_[id].path0.bytes.load(std::memory_order_relaxed);
        }
        return c;
    }
    // Session id's uplink record (fast form, first path's counters).
    [[nodiscard]] UplinkHot& uplink_hot(SessionId id) noexcept { return up_[id]; }
    [[nodiscard]] const UplinkHot& uplink_hot(SessionId id) const noexcept { return up_[id]; }
    // Whether session id has the fast uplink form and `src` is its first path's care-of
    // address, read without the sequence lock: a hint for what to prefetch (uplink_form() is
    // the answer).
    [[nodiscard]] bool uplink_hint(SessionId id, const IpAddr& src) const noexcept {
        const UplinkHot& h = up_[id];
        UplinkWords w;
        w.meta = h.meta.load(std::memory_order_relaxed);
        w.coa[0] = h.coa[0].load(std::memory_order_relaxed);
        w.coa[1] = h.coa[1].load(std::memory_order_relaxed);
        return w.enabled() && w.from_coa(src);
    }
    // A consistent copy of session id's fast uplink form: false when it has none, or when the
    // writer is rewriting it right now (the packet then takes the general path).
    [[nodiscard]] bool uplink_form(SessionId id, UplinkWords& out) const noexcept {
        const UplinkHot& h = up_[id];
        const std::uint32_t v = h.version.load(std::memory_order_acquire);
        out.meta = h.meta.load(std::memory_order_relaxed);
        out.timeout = h.timeout.load(std::memory_order_relaxed);
        for (std::size_t i = 0; i < 2; ++i) {
            out.coa[i] = h.coa[i].load(std::memory_order_relaxed);
            out.prefix[i] = h.prefix[i].load(std::memory_order_relaxed);
        }
        std::atomic_thread_fence(std::memory_order_acquire);
        return (v & 1U) == 0 && h.version.load(std::memory_order_relaxed) == v && out.enabled();
    }
    // Session id's totals: the sums of its paths' counters (readers on any thread).
    [[nodiscard]] SessionTotals totals(SessionId id) const noexcept;
    // A consistent copy of session id's fast downlink form into `out`: false when it has none,
    // or when the writer is rewriting it right now (the packet then takes the general path).
    // Inline: a packet's copy (pipeline/downlink_encap.cpp) stays in registers.
    [[nodiscard]] bool fast_form(SessionId id, FastWords& out) const noexcept {
        const SessionHot& h = hot_[id];
        const std::uint32_t v = h.fast_version.load(std::memory_order_acquire);
        for (std::size_t i = 0; i < kFastMetaWords; ++i) {
            out.meta[i] = h.fast_meta[i].load(std::memory_order_relaxed);
        }
        for (std::size_t i = 0; i < 8; ++i) {
            out.header[i] = h.fast_header[i].load(std::memory_order_relaxed);
        }
        std::atomic_thread_fence(std::memory_order_acquire);
        return (v & 1U) == 0 && h.fast_version.load(std::memory_order_relaxed) == v &&
               out.enabled();
    }
    // The same as a FastDownlink (tests, tools).
    [[nodiscard]] bool fast_form(SessionId id, FastDownlink& out) const noexcept {
        FastWords w;
        const bool ok = fast_form(id, w);
        out = ok ? fast_downlink(w) : FastDownlink{};
        return ok;
    }
    // Where session id's config usually is (its slot's buffer, next to its state), for
    // prefetching before the config pointer is loaded. Never dereference it: config(id) says
    // which config is published.
    [[nodiscard]] const void* config_home(SessionId id) const noexcept {
        return &slots_[id].config;
    }
    // How many sessions have their config in a heap copy rather than in their slot (tests).
    [[nodiscard]] std::size_t configs_on_heap() const noexcept { return heap_.size(); }
    bool lookup_destination(const IpAddr& dst, SessionId& id) const noexcept;
    // Uplink GRE keys and remote anchors' downlink keys (one key space).
    bool lookup_uplink_key(std::uint32_t key, SessionId& id) const noexcept;
    bool lookup_care_of(const IpAddr& coa, SessionId& id) const noexcept;
    // Bulk forms of the first two for a burst of n <= kBulkMax packets, with the same answers:
    // bit i of the result is set when the i-th lookup found a session, its id in ids[i].
    static constexpr unsigned kBulkMax = Prefix6Table::kBulkMax;
    // `fast`, when given: bit i set when the i-th destination's session had the fast downlink
    // form when its prefix was last written (a hint kept in the prefix's bucket:
    // kDownlinkFastBit; fast_form() is the answer).
    std::uint64_t lookup_destination_bulk(const IpAddr* const* dsts, unsigned n, SessionId* ids,
                                          std::uint64_t* fast = nullptr) const noexcept;
    // `fast`, when given: bit i set when the i-th key's session had the fast uplink form
    // when its key was last written (a hint kept in the key's bucket: kUplinkFastBit).
    std::uint64_t lookup_uplink_key_bulk(const std::uint32_t* keys, unsigned n, SessionId* ids,
                                         std::uint64_t* fast = nullptr) const noexcept;
    // In the key table's value of an uplink key, beside the session id: the session has the
    // fast uplink form (capacity stays below it).
    static constexpr std::uint32_t kUplinkFastBit = 1U << 31;
    // In the prefix tables' value of a session's prefix, the same for the fast downlink form:
    // the downlink knows from the lookup which packets take the general path, and fetches
    // their config with their hot record instead of after it.
    static constexpr std::uint32_t kDownlinkFastBit = kUplinkFastBit;
    // Rewrites the hint of every prefix of session id to `fast`, whatever its form (tests: a
    // packet whose hint is stale).
    void rewrite_destination_hint(SessionId id, bool fast);

  private:
    struct Token {
        explicit Token() = default;
    };

  public:
    SessionTable(Token, std::string name, std::uint32_t capacity, Rcu& rcu,
                 std::unique_ptr<Prefix6Table> v6, std::unique_ptr<Prefix4Table> v4,
                 std::unique_ptr<KeyTable> keys, std::unique_ptr<Prefix6Table> coas);

  private:
    static KeyTable::Key key_bytes(std::uint32_t key) noexcept;
    static std::array<std::uint8_t, 16> coa_bytes(const IpAddr& a) noexcept;
    Result<void, std::string> check(SessionId id, const SessionConfig& cfg) const;
    Result<void, std::string> check_anchors(SessionId id, const SessionConfig& cfg) const;
    // Indexes cfg's prefixes to id, with the fast downlink form's hint.
    Result<void, std::string> index_prefixes(SessionId id, const SessionConfig& cfg, bool fast);
    void unlink(SessionId id, const SessionConfig& old, const SessionConfig* keep);
    // Writer side of the slots' config buffers.
    enum class Where : std::uint8_t { kNone, kSlot, kHeap };
    [[nodiscard]] bool slot_buffer_free(SessionId id);
    [[nodiscard]] const SessionConfig* current(SessionId id) const noexcept;
    // Makes cfg session id's published config.
    void publish(SessionId id, const SessionConfig* cfg) noexcept;
    // Rewrites session id's fast downlink form (sequence lock, SessionHot).
    void publish_fast(SessionId id, const FastDownlink& f) noexcept;
    // Rewrites session id's fast uplink form (sequence lock, UplinkHot).
    void publish_uplink(SessionId id, const UplinkWords& w) noexcept;
    // Retires the published config of id (its grace period starts now).
    void retire(SessionId id);
    // Deleter of the anonymous mappings below (slots and records): munmap of `bytes`.
    struct Unmap {
        std::size_t bytes;
        void operator()(void* p) const noexcept;
    };

    std::string name_;
    std::uint32_t capacity_;
    Rcu& rcu_;
    // capacity_ slots, anonymous memory: pages are zero until written, and a zero SessionState
    // is a value-initialised one (tested), so unused ids cost no memory.
    std::unique_ptr<SessionSlot[], Unmap> slots_;
    // capacity_ downlink records, anonymous memory like the slots (zero = no fast form).
    std::unique_ptr<SessionHot[], Unmap> hot_;
    // capacity_ uplink records, anonymous memory like the slots (zero = no fast form).
    std::unique_ptr<UplinkHot[], Unmap> up_;
    std::unique_ptr<Prefix6Table> v6_;
    std::unique_ptr<Prefix4Table> v4_;
    // Uplink keys and remote anchors' downlink keys, exact match: 4-octet keys, 7 to a bucket
    // line (as a /128 "address" in a prefix table they took 16 octets, 3 to a line: a table
    // more than twice the size, with a dearer hash).
    std::unique_ptr<KeyTable> keys_;
    std::unique_ptr<Prefix6Table> coas_;  // care-of addresses, exact match
    // Writer-side ownership, to refuse collisions before touching reader-visible tables.
    std::unordered_map<std::uint32_t, SessionId> key_owner_;
    std::unordered_map<IpPrefix, SessionId, IpPrefixHash> prefix_owner_;
    std::vector<Where> where_;              // where each id's published config is
    std::vector<std::uint64_t> slot_free_;  // RCU token after which the slot buffer is free; 0 = is
    std::unordered_map<SessionId, std::unique_ptr<SessionConfig>> heap_;  // Where::kHeap configs
    std::deque<std::pair<std::uint64_t, SessionId>> to_slot_;  // heap configs to move back
    std::uint32_t live_ = 0;
    std::uint32_t next_version_ = 1;  // StripePlan::version of the next published config
};

}  // namespace hag::dp
