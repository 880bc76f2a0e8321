#include "tables/session_table.hpp"

#include <fmt/format.h>
#include <sys/mman.h>

#include <bit>
#include <cstddef>
#include <cstring>
#include <new>

#include "multipath/scheduler.hpp"
#include "pipeline/parse.hpp"
#include "tables/nat_port.hpp"

namespace hag::dp {

namespace {
std::array<std::uint8_t, 4> v4_of(const IpAddr& a) {
    return {a.bytes[0], a.bytes[1], a.bytes[2], a.bytes[3]};
}

// The fast downlink form (session_table.hpp) of c, whose plan is derived: the outer headers of
// its one usable path, or not enabled when its downlink needs the general path.
FastDownlink derive_fast(const SessionConfig& c) noexcept {
    FastDownlink f;
    if (c.plan_n_order != 1 || c.policy != 0 || c.plan_first >= c.n_paths ||
        c.plan_first >= kHotPaths) {
        // Striped, no usable path, a flow policy to classify by, or a path whose counters are
        // not in SessionHot.
        return f;
    }
    const PathConfig& p = c.paths[c.plan_first];
    if (p.tunnel != Tunnel::kGre || p.udp_port != 0 ||
        (p.coa.family != Family::kIpv6 && p.coa.family != Family::kIpv4)) {
        return f;  // IP in IP, GRE in UDP (NAT traversal)
    }
    f.v6_outer = p.coa.family == Family::kIpv6;
    f.sequence = c.gre_sequence;
    f.path = c.plan_first;
    f.port = p.port;
    f.mtu = p.mtu;
    f.resolve_mac = mac_zero(p.next_hop_mac);
    f.next_hop = p.next_hop;
    // Right-aligned in the 64 octets (FastDownlink::header).
    std::uint8_t* h = f.header.data() + 64 - (f.v6_outer ? 62 : 42);
    std::memcpy(h, p.next_hop_mac.data(), 6);
    std::memcpy(h + 6, p.src_mac.data(), 6);
    put16(h + 12, f.v6_outer ? kEtherIpv6 : kEtherIpv4);
    std::uint8_t* o = h + 14;
    std::uint8_t* g = nullptr;
    if (f.v6_outer) {
        o[6] = kIpProtoGre;  // version, class, flow label, length and hop limit: per packet
        std::memcpy(o + 8, p.local.bytes.data(), 16);
        std::memcpy(o + 24, p.coa.bytes.data(), 16);
        g = o + 40;
    } else {
        o[0] = 0x45;
        put16(o + 6, 0x4000);  // DF; identification 0 (never fragmented on the way)
        o[9] = kIpProtoGre;
        std::memcpy(o + 12, p.local.bytes.data(), 4);
        std::memcpy(o + 16, p.coa.bytes.data(), 4);
        for (unsigned i = 0; i < 20; i += 2) {
            f.ipv4_sum += static_cast<std::uint32_t>(o[i] << 8 | o[i + 1]);
        }
        // Folded to 16 bits (one's complement: the per-packet sum folds to the same result).
        while ((f.ipv4_sum >> 16) != 0) {
            f.ipv4_sum = (f.ipv4_sum & 0xffff) + (f.ipv4_sum >> 16);
        }
        g = o + 20;
    }
    // GRE (RFC 2890): K, S when sequence numbers are used; the protocol is the inner family's.
    put16(g, static_cast<std::uint16_t>(kGreK | (f.sequence ? kGreS : 0)));
    put32(g + 4, p.downlink_key);
    f.length = static_cast<std::uint8_t>((f.v6_outer ? 62 : 42) + (f.sequence ? 4 : 0));
    f.enabled = true;
    return f;
}

// Bit i: path i of c is live.
std::uint8_t live_mask_of(const SessionConfig& c) noexcept {
    std::uint8_t live = 0;
    for (unsigned i = 0; i < c.n_paths; ++i) {
        live |= static_cast<std::uint8_t>(c.paths[i].live ? 1U << i : 0U);
    }
    return live;
}

// The fast uplink form (session_table.hpp) of c, a published config whose session's
// incarnation is `incarnation`: not enabled when its first path's packets need the general path.
UplinkWords derive_uplink(const SessionConfig& c, std::uint32_t incarnation) noexcept {
    UplinkWords w;
    if (c.n_paths == 0 || c.n_prefixes == 0 || c.uplink_key == 0 || c.n_anchors != 0 ||
        c.policy != 0) {
        // No key to find it by, nothing to check the inner source against, or remote anchors'
        // and flow policy's checks to make.
        return w;
    }
    const PathConfig& p = c.paths[0];
    const Family pf = c.prefix_first.addr.family;
    if (p.tunnel != Tunnel::kGre || p.udp_port != 0 ||
        (p.coa.family != Family::kIpv6 && p.coa.family != Family::kIpv4) ||
        (pf != Family::kIpv6 && pf != Family::kIpv4)) {
        return w;  // IP in IP, GRE in UDP (NAT traversal: port learning)
    }
    const std::uint64_t live = live_mask_of(c);
    w.meta = 1U | std::uint64_t{p.coa.family == Family::kIpv6} << 1 |
             std::uint64_t{pf == Family::kIpv6} << 2 |
             std::uint64_t{static_cast<std::uint8_t>(c.reorder)} << 8 | live << 16 |
             std::uint64_t{c.prefix_first.length} << 24 | std::uint64_t{incarnation} << 32;
    w.timeout = c.reorder_timeout_us;
    std::memcpy(w.coa, p.coa.bytes.data(), 16);
    std::memcpy(w.prefix, c.prefix_first.addr.bytes.data(), 16);
    return w;
}

}  // namespace

void SessionTable::publish(SessionId id, const SessionConfig* cfg) noexcept {
    slots_[id].state.config.store(cfg, std::memory_order_release);
    hot_[id].config.store(cfg, std::memory_order_release);
}

void SessionTable::publish_fast(SessionId id, const FastDownlink& f) noexcept {
    SessionHot& h = hot_[id];
    const FastWords w = fast_words(f);
    const std::uint64_t* meta = w.meta;
    const std::uint64_t* header = w.header;
    // Unchanged (a refresh, a path's counters or weights changed): no version bump, so readers
    // never fall back for nothing. (reclaim() moves a config back into its slot without calling
    // this: same content, same form.)
    bool same = true;
    for (std::size_t i = 0; i < kFastMetaWords; ++i) {
        same = same && h.fast_meta[i].load(std::memory_order_relaxed) == meta[i];
    }
    for (std::size_t i = 0; i < 8; ++i) {
        same = same && h.fast_header[i].load(std::memory_order_relaxed) == header[i];
    }
    if (same) {
        return;
    }
    const std::uint32_t v = h.fast_version.load(std::memory_order_relaxed);
    h.fast_version.store(v + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    for (std::size_t i = 0; i < kFastMetaWords; ++i) {
        h.fast_meta[i].store(meta[i], std::memory_order_relaxed);
    }
    for (std::size_t i = 0; i < 8; ++i) {
        h.fast_header[i].store(header[i], std::memory_order_relaxed);
    }
    h.fast_version.store(v + 2, std::memory_order_release);
}

void SessionTable::publish_uplink(SessionId id, const UplinkWords& w) noexcept {
    UplinkHot& h = up_[id];
    // Unchanged: no version bump (as publish_fast).
    if (h.meta.load(std::memory_order_relaxed) == w.meta &&
        h.timeout.load(std::memory_order_relaxed) == w.timeout &&
        h.coa[0].load(std::memory_order_relaxed) == w.coa[0] &&
        h.coa[1].load(std::memory_order_relaxed) == w.coa[1] &&
        h.prefix[0].load(std::memory_order_relaxed) == w.prefix[0] &&
        h.prefix[1].load(std::memory_order_relaxed) == w.prefix[1]) {
        return;
    }
    const std::uint32_t v = h.version.load(std::memory_order_relaxed);
    h.version.store(v + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    h.meta.store(w.meta, std::memory_order_relaxed);
    h.timeout.store(w.timeout, std::memory_order_relaxed);
    for (std::size_t i = 0; i < 2; ++i) {
        h.coa[i].store(w.coa[i], std::memory_order_relaxed);
        h.prefix[i].store(w.prefix[i], std::memory_order_relaxed);
    }
    h.version.store(v + 2, std::memory_order_release);
}

SessionTotals SessionTable::totals(SessionId id) const noexcept {
    SessionTotals t;
    for (unsigned i = 0; i < kMaxPaths; ++i) {
        const PathTraffic& d = downlink_traffic(id, i);
        const PathCounts u = uplink_counts(id, i);
        t.downlink_packets += d.packets.load(std::memory_order_relaxed);
        t.downlink_bytes += d.bytes.load(std::memory_order_relaxed);
        t.uplink_packets += u.packets;
        t.uplink_bytes += u.bytes;
    }
    return t;
}

SessionTable::KeyTable::Key SessionTable::key_bytes(std::uint32_t key) noexcept {
    KeyTable::Key b{};
    std::memcpy(b.data(), &key, sizeof key);
    return b;
}

std::array<std::uint8_t, 16> SessionTable::coa_bytes(const IpAddr& a) noexcept {
    std::array<std::uint8_t, 16> b{};
    if (a.family == Family::kIpv4) {
        b[10] = 0xff;  // IPv4-mapped
        b[11] = 0xff;
        std::memcpy(b.data() + 12, a.bytes.data(), 4);
    } else {
        b = a.bytes;
    }
    return b;
}

Result<std::unique_ptr<SessionTable>, std::string> SessionTable::create(const std::string& name,
                                                                        std::uint32_t capacity,
                                                                        Rcu& rcu) {
    if (capacity == 0 || capacity >= kUplinkFastBit - 2) {
        return unexpected(
            fmt::format("session table capacity must be 1 .. {}", kUplinkFastBit - 3));
    }
    // Index capacity with headroom (FlatHash keeps its load at most 3/4 of that).
    const std::uint32_t entries = capacity + capacity / 4 + 64;
    auto keys = KeyTable::create(name + "k", entries, rcu);
    if (!keys) {
        return unexpected(keys.error());
    }
    return std::make_unique<SessionTable>(
        Token{}, name, capacity, rcu, std::make_unique<Prefix6Table>(name + "6", entries, rcu),
        std::make_unique<Prefix4Table>(name + "4", entries, rcu), std::move(keys).value(),
        std::make_unique<Prefix6Table>(name + "c", entries * 2, rcu));
}

void SessionTable::Unmap::operator()(void* p) const noexcept {
    if (p != nullptr) {
        munmap(p, bytes);
    }
}

namespace {
void* map_zeroed(std::size_t bytes) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        throw std::bad_alloc();
    }
    (void)madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}
}  // namespace

SessionTable::SessionTable(Token, std::string name, std::uint32_t capacity, Rcu& rcu,
                           std::unique_ptr<Prefix6Table> v6, std::unique_ptr<Prefix4Table> v4,
                           std::unique_ptr<KeyTable> keys, std::unique_ptr<Prefix6Table> coas)
    : name_(std::move(name)),
      capacity_(capacity),
      rcu_(rcu),
      // Zero pages: every SessionState reads as value-initialised (no config, counters 0)
      // without being constructed, and costs memory only once written.
      slots_(static_cast<SessionSlot*>(map_zeroed(std::size_t{capacity} * sizeof(SessionSlot))),
             Unmap{std::size_t{capacity} * sizeof(SessionSlot)}),
      hot_(static_cast<SessionHot*>(map_zeroed(std::size_t{capacity} * sizeof(SessionHot))),
           Unmap{std::size_t{capacity} * sizeof(SessionHot)}),
      up_(static_cast<UplinkHot*>(map_zeroed(std::size_t{capacity} * sizeof(UplinkHot))),
          Unmap{std::size_t{capacity} * sizeof(UplinkHot)}),
      v6_(std::move(v6)),
      v4_(std::move(v4)),
      keys_(std::move(keys)),
      coas_(std::move(coas)),
      where_(capacity, Where::kNone),
      slot_free_(capacity, 0) {}

SessionTable::~SessionTable() {
    // Deferred frees reference heap configs moved into the Rcu queue; flush them.
    rcu_.synchronize();
}

bool SessionTable::slot_buffer_free(SessionId id) {
    if (where_[id] == Where::kSlot) {
        return false;
    }
    if (slot_free_[id] != 0 && rte_rcu_qsbr_check(rcu_.qsbr(), slot_free_[id], false) != 1) {
        return false;
    }
    slot_free_[id] = 0;
    return true;
}

const SessionConfig* SessionTable::current(SessionId id) const noexcept {
    switch (where_[id]) {
        case Where::kSlot:
            return &slots_[id].config;
        case Where::kHeap:
            return heap_.at(id).get();
        case Where::kNone:
            break;
    }
    return nullptr;
}

void SessionTable::retire(SessionId id) {
    if (where_[id] == Where::kSlot) {
        // Rewritten only once every reader has been quiescent since.
        slot_free_[id] = rte_rcu_qsbr_start(rcu_.qsbr());
    } else if (where_[id] == Where::kHeap) {
        auto it = heap_.find(id);
        SessionConfig* raw = it->second.release();
        heap_.erase(it);
        rcu_.defer([raw] { std::unique_ptr<SessionConfig> gone(raw); });
    }
    where_[id] = Where::kNone;
}

void SessionTable::reclaim() {
    rcu_.reclaim();
    // Heap copies (published while their slot's buffer was busy) go back into the slot, in
    // the order their buffers were retired, once the buffer's grace period is over.
    while (!to_slot_.empty()) {
        const auto [token, id] = to_slot_.front();
        if (rte_rcu_qsbr_check(rcu_.qsbr(), token, false) != 1) {
            break;
        }
        to_slot_.pop_front();
        if (where_[id] != Where::kHeap || !slot_buffer_free(id)) {
            continue;  // updated or removed since; a later entry covers a later retirement
        }
        SessionSlot& slot = slots_[id];
        ::new (static_cast<void*>(&slot.config)) SessionConfig(*heap_.at(id));  // same version
        // Unpublish the heap copy before its grace period starts (as upsert and remove do): a
        // worker quiescent after the start but before the swap could otherwise still load the
        // heap copy's address after the grace period had let it be freed.
        publish(id, &slot.config);
        retire(id);  // the heap copy (where_ still says so): freed after a grace period
        where_[id] = Where::kSlot;
    }
}

Result<void, std::string> SessionTable::check(SessionId id, const SessionConfig& cfg) const {
    if (id >= capacity_) {
        return unexpected(
            fmt::format("session id {} is beyond the table capacity {}", id, capacity_));
    }
    if (cfg.n_paths == 0 || cfg.n_paths > kMaxPaths) {
        return unexpected(
            fmt::format("session {}: {} paths (1-{} allowed)", id, cfg.n_paths, kMaxPaths));
    }
    if (cfg.n_prefixes > kMaxPrefixes) {
        return unexpected(
            fmt::format("session {}: {} prefixes (at most {})", id, cfg.n_prefixes, kMaxPrefixes));
    }
    if (cfg.striping != StripingMode::kWeighted && cfg.striping != StripingMode::kOverflow) {
        return unexpected(fmt::format("session {}: unknown striping mode {}", id,
                                      static_cast<unsigned>(cfg.striping)));
    }
    if (cfg.overflow_burst_bytes > kMaxOverflowBurstBytes) {
        return unexpected(fmt::format("session {}: overflow burst {} bytes is above {}", id,
                                      cfg.overflow_burst_bytes, kMaxOverflowBurstBytes));
    }
    for (unsigned i = 0; i < cfg.n_paths; ++i) {
        const auto& p = cfg.paths[i];
        if (p.coa.family == Family::kNone || p.local.family != p.coa.family) {
            return unexpected(
                fmt::format("session {} path {}: care-of and local tunnel addresses must be set "
                            "and of one family",
                            id, p.bid));
        }
        if (p.udp_port != 0 && p.coa.family != Family::kIpv4) {
            return unexpected(fmt::format(
                "session {} path {}: UDP encapsulation (NAT traversal) needs an IPv4 path", id,
                p.bid));
        }
        if (p.tunnel != Tunnel::kGre && (p.tunnel != Tunnel::kIpInIp || p.udp_port != 0)) {
            return unexpected(fmt::format(
                "session {} path {}: unknown tunnel type, or IP-in-IP with UDP encapsulation", id,
                p.bid));
        }
        if (p.mtu != 0 && (p.mtu < (p.coa.family == Family::kIpv4 ? kMinPathMtu4 : kMinPathMtu6) ||
                           p.mtu > kMaxPathMtu)) {
            return unexpected(
                fmt::format("session {} path {}: tunnel MTU {} is outside {}-{} (IPv4 {}-{})", id,
                            p.bid, p.mtu, kMinPathMtu6, kMaxPathMtu, kMinPathMtu4, kMaxPathMtu));
        }
        for (unsigned j = 0; j < i; ++j) {
            if (cfg.paths[j].bid == p.bid) {
                return unexpected(fmt::format("session {}: BID {} used twice", id, p.bid));
            }
        }
    }
    for (unsigned i = 0; i < cfg.n_prefixes; ++i) {
        const auto& p = cfg.prefixes[i];
        const unsigned max = p.addr.family == Family::kIpv4 ? 32 : 128;
        if (p.addr.family == Family::kNone || p.length > max) {
            return unexpected(fmt::format("session {}: invalid prefix #{}", id, i));
        }
        auto it = prefix_owner_.find(p);
        if (it != prefix_owner_.end() && it->second != id) {
            return unexpected(
                fmt::format("session {}: prefix #{} belongs to session {}", id, i, it->second));
        }
    }
    if (cfg.uplink_key != 0) {
        auto it = key_owner_.find(cfg.uplink_key);
        if (it != key_owner_.end() && it->second != id) {
            return unexpected(fmt::format("session {}: uplink GRE key {} belongs to session {}", id,
                                          cfg.uplink_key, it->second));
        }
    }
    return check_anchors(id, cfg);
}

Result<void, std::string> SessionTable::check_anchors(SessionId id,
                                                      const SessionConfig& cfg) const {
    if (cfg.n_anchors > kMaxRemoteAnchors) {
        return unexpected(fmt::format("session {}: {} remote anchors (at most {})", id,
                                      cfg.n_anchors, kMaxRemoteAnchors));
    }
    for (unsigned i = 0; i < cfg.n_anchors; ++i) {
        const RemoteAnchorConfig& a = cfg.anchors[i];
        bool own = false;
        for (unsigned j = 0; j < cfg.n_prefixes && !own; ++j) {
            own = cfg.prefixes[j] == a.prefix;
        }
        if (!own) {
            return unexpected(fmt::format(
                "session {} remote anchor #{}: the prefix is not the session's", id, i));
        }
        if (a.anchor.family == Family::kNone || a.local.family != a.anchor.family) {
            return unexpected(fmt::format(
                "session {} remote anchor #{}: local and anchor addresses must be set and of one "
                "family",
                id, i));
        }
        for (unsigned j = 0; j < i; ++j) {
            if (cfg.anchors[j].prefix == a.prefix) {
                return unexpected(fmt::format(
                    "session {} remote anchor #{}: the prefix has a remote anchor already", id, i));
            }
        }
        if (a.downlink_key == 0) {
            continue;
        }
        if (a.downlink_key == cfg.uplink_key) {
            return unexpected(fmt::format(
                "session {} remote anchor #{}: downlink GRE key {} is the session's uplink key", id,
                i, a.downlink_key));
        }
        for (unsigned j = 0; j < i; ++j) {
            if (cfg.anchors[j].downlink_key == a.downlink_key) {
                return unexpected(
                    fmt::format("session {} remote anchor #{}: downlink GRE key {} used twice", id,
                                i, a.downlink_key));
            }
        }
        auto it = key_owner_.find(a.downlink_key);
        if (it != key_owner_.end() && it->second != id) {
            return unexpected(fmt::format(
                "session {} remote anchor #{}: downlink GRE key {} belongs to session {}", id, i,
                a.downlink_key, it->second));
        }
    }
    return {};
}

Result<void, std::string> SessionTable::upsert(SessionId id, const SessionConfig& cfg) {
    if (auto r = check(id, cfg); !r) {
        return r;
    }
    // The new config goes into the slot's buffer when that is free (not published, grace
    // period over), else into a heap copy that reclaim() moves back later.
    std::unique_ptr<SessionConfig> heap_fresh;
    SessionConfig* fresh = nullptr;
    if (slot_buffer_free(id)) {
        fresh = ::new (static_cast<void*>(&slots_[id].config)) SessionConfig(cfg);
    } else {
        heap_fresh = std::make_unique<SessionConfig>(cfg);
        fresh = heap_fresh.get();
    }
    fresh->plan.version = next_version_;
    next_version_ = next_version_ == UINT32_MAX ? 1 : next_version_ + 1;  // 0 = "never set up"
    plan_striping(*fresh);
    fresh->plan_n_order = fresh->plan.n_order;
    fresh->plan_first = fresh->plan.order[0];
    fresh->prefix_first = fresh->n_prefixes != 0 ? fresh->prefixes[0] : IpPrefix{};
    const FastDownlink fast = derive_fast(*fresh);
    const SessionConfig* published = fresh;
    // The replaced config stays readable (by workers, and below by unlink) until a grace
    // period after it is retired: a heap one is freed by the Rcu, the slot's buffer is not
    // rewritten before.
    const SessionConfig* old = current(id);
    if (old != nullptr) {
        // Every tunnel replaced (no path with the same care-of address and downlink key): the
        // home router attached anew (a handoff, a restart re-registering, a router coming back
        // to a node that anchored it meanwhile) and numbers its GRE sequence from wherever it
        // starts now. A new incarnation makes the reorder stage start the session's sequence
        // space over at the next packet, instead of dropping the new numbers as duplicates or
        // late ones of the old space. Costs nothing when a path stays (multipath changes,
        // refreshes).
        bool kept = false;
        for (unsigned i = 0; i < cfg.n_paths && !kept; ++i) {
            for (unsigned j = 0; j < old->n_paths && !kept; ++j) {
                kept = cfg.paths[i].coa == old->paths[j].coa &&
                       cfg.paths[i].downlink_key == old->paths[j].downlink_key;
            }
        }
        if (!kept) {
            // The fast uplink form carries the incarnation: cleared first, so that no packet
            // goes on with the old number once one has the new (the reorder stage restarts a
            // session's sequence space at every change). It comes back with the new number
            // below.
            publish_uplink(id, UplinkWords{});
            slots_[id].state.incarnation.fetch_add(1, std::memory_order_release);
        }
    } else {
        // A new session starts its sequence space and counters from zero. (A worker still
        // finishing a burst of the removed session that last had this id may write its count
        // back over these zeros: owner_add is a load and a store, and the window is one packet,
        // as rare as an id reused within a burst. Locked adds had the same window, counting that
        // packet in the new session.)
        SessionState& st = slots_[id].state;
        hot_[id].next_downlink_seq.store(0, std::memory_order_relaxed);
        for (unsigned i = 0; i < kMaxPaths; ++i) {
            for (PathTraffic* t :
                 {&downlink_traffic(id, i), &uplink_traffic(id, i), &up_[id].path0}) {
                t->packets.store(0, std::memory_order_relaxed);
                t->bytes.store(0, std::memory_order_relaxed);
            }
            st.path_seq_gaps[i].store(0, std::memory_order_relaxed);
            st.path_reordered[i].store(0, std::memory_order_relaxed);
            st.path_late[i].store(0, std::memory_order_relaxed);
            st.path_timed_out[i].store(0, std::memory_order_relaxed);
        }
        st.reorder_lost.store(0, std::memory_order_relaxed);
        st.reorder_timeouts.store(0, std::memory_order_relaxed);
        st.reorder_duplicates.store(0, std::memory_order_relaxed);
        st.reorder_overflow.store(0, std::memory_order_relaxed);
        st.relay_uplink_packets.store(0, std::memory_order_relaxed);
        st.relay_uplink_bytes.store(0, std::memory_order_relaxed);
        st.relay_downlink_packets.store(0, std::memory_order_relaxed);
        st.relay_downlink_bytes.store(0, std::memory_order_relaxed);
        // Readers see the new incarnation together with the config published below.
        st.incarnation.fetch_add(1, std::memory_order_release);
        ++live_;
    }
    // NAT ports learnt from data stay with their paths (tables/nat_port.hpp).
    nat_carry_ports(slots_[id].state, old, *published);
    slots_[id].state.live_mask.store(live_mask_of(*published),
                                     std::memory_order_relaxed);  // before publish()
    // Publish the config before any index points at it, then the fast form derived from it (a
    // reader may see the new config with the old form for a moment: both are a published
    // config's, as with an RCU reader still holding the old config).
    publish(id, published);
    publish_fast(id, fast);
    const UplinkWords uplink =
        derive_uplink(*published, slots_[id].state.incarnation.load(std::memory_order_relaxed));
    publish_uplink(id, uplink);
    // Retire the old one (a heap copy moves into the heap_ map's place below first).
    std::unique_ptr<SessionConfig> old_heap;
    if (where_[id] == Where::kHeap) {
        old_heap = std::move(heap_.at(id));
        heap_.erase(id);
    } else {
        retire(id);
    }
    if (heap_fresh) {
        heap_[id] = std::move(heap_fresh);
        where_[id] = Where::kHeap;
        to_slot_.emplace_back(slot_free_[id], id);
    } else {
        where_[id] = Where::kSlot;
    }
    // A replaced heap copy is freed after a grace period, on every path out of here.
    auto retire_old = [&] {
        if (old_heap) {
            SessionConfig* raw = old_heap.release();
            rcu_.defer([raw] { std::unique_ptr<SessionConfig> gone(raw); });
        }
    };

    // Add new index entries (overwriting an entry of this same session is harmless). A
    // prefix's value carries the fast downlink form's hint (kDownlinkFastBit), rewritten in
    // place when it changes, as the uplink key's.
    if (auto r = index_prefixes(id, cfg, fast.enabled); !r) {
        retire_old();
        return r;  // table full: the session stays with its earlier indexes (logged by caller)
    }
    if (cfg.uplink_key != 0) {
        // The value carries the fast uplink form's hint (kUplinkFastBit), rewritten in place
        // when it changes: the uplink learns from the key's bucket which lines to prefetch.
        const std::uint32_t value = id | (uplink.enabled() ? kUplinkFastBit : 0U);
        if (auto r = keys_->add(key_bytes(cfg.uplink_key), value); !r) {
            retire_old();
            return r;
        }
        key_owner_[cfg.uplink_key] = id;
    }
    for (unsigned i = 0; i < cfg.n_anchors; ++i) {
        if (const std::uint32_t k = cfg.anchors[i].downlink_key; k != 0) {
            if (auto r = keys_->add(key_bytes(k), id); !r) {
                retire_old();
                return r;
            }
            key_owner_[k] = id;
        }
    }
    for (unsigned i = 0; i < cfg.n_paths; ++i) {
        if (auto r = coas_->add(coa_bytes(cfg.paths[i].coa), 128, id); !r) {
            retire_old();
            return r;
        }
    }
    if (old != nullptr) {
        unlink(id, *old, published);
    }
    retire_old();
    return {};
}

Result<void, std::string> SessionTable::index_prefixes(SessionId id, const SessionConfig& cfg,
                                                       bool fast) {
    const std::uint32_t value = id | (fast ? kDownlinkFastBit : 0U);
    for (unsigned i = 0; i < cfg.n_prefixes; ++i) {
        const auto& p = cfg.prefixes[i];
        auto r = p.addr.family == Family::kIpv6 ? v6_->add(p.addr.bytes, p.length, value)
                                                : v4_->add(v4_of(p.addr), p.length, value);
        if (!r) {
            return r;
        }
        prefix_owner_[p] = id;
    }
    return {};
}

void SessionTable::rewrite_destination_hint(SessionId id, bool fast) {
    if (const SessionConfig* cur = id < capacity_ ? current(id) : nullptr; cur != nullptr) {
        (void)index_prefixes(id, *cur, fast);  // existing entries: rewritten in place
    }
}

void SessionTable::unlink(SessionId id, const SessionConfig& old, const SessionConfig* keep) {
    auto kept_prefix = [keep](const IpPrefix& p) {
        if (keep == nullptr)
            return false;
        for (unsigned i = 0; i < keep->n_prefixes; ++i) {
            if (keep->prefixes[i] == p)
                return true;
        }
        return false;
    };
    for (unsigned i = 0; i < old.n_prefixes; ++i) {
        const auto& p = old.prefixes[i];
        if (kept_prefix(p))
            continue;
        (void)(p.addr.family == Family::kIpv6 ? v6_->remove(p.addr.bytes, p.length)
                                              : v4_->remove(v4_of(p.addr), p.length));
        prefix_owner_.erase(p);
    }
    // The uplink key and the remote anchors' downlink keys share the key table.
    auto kept_key = [keep](std::uint32_t k) {
        if (keep == nullptr)
            return false;
        if (keep->uplink_key == k)
            return true;
        for (unsigned i = 0; i < keep->n_anchors; ++i) {
            if (keep->anchors[i].downlink_key == k)
                return true;
        }
        return false;
    };
    auto unlink_key = [&](std::uint32_t k) {
        if (k == 0 || kept_key(k))
            return;
        if (auto it = key_owner_.find(k); it != key_owner_.end() && it->second == id) {
            (void)keys_->remove(key_bytes(k));
            key_owner_.erase(it);
        }
    };
    unlink_key(old.uplink_key);
    for (unsigned i = 0; i < old.n_anchors; ++i) {
        unlink_key(old.anchors[i].downlink_key);
    }
    for (unsigned i = 0; i < old.n_paths; ++i) {
        bool kept = false;
        for (unsigned j = 0; keep != nullptr && j < keep->n_paths; ++j) {
            kept = kept || keep->paths[j].coa == old.paths[i].coa;
        }
        std::uint32_t owner = 0;
        if (!kept && coas_->lookup(coa_bytes(old.paths[i].coa), owner) && owner == id) {
            (void)coas_->remove(coa_bytes(old.paths[i].coa), 128);
        }
    }
}

Result<void, std::string> SessionTable::remove(SessionId id) {
    const SessionConfig* cur = id < capacity_ ? current(id) : nullptr;
    if (cur == nullptr) {
        return unexpected(fmt::format("session {} does not exist", id));
    }
    unlink(id, *cur, nullptr);
    publish_uplink(id, UplinkWords{});
    publish(id, nullptr);
    publish_fast(id, FastDownlink{});
    retire(id);
    --live_;
    return {};
}

bool SessionTable::lookup_destination(const IpAddr& dst, SessionId& id) const noexcept {
    std::uint32_t v = 0;
    if (!(dst.family == Family::kIpv6 ? v6_->lookup(dst.bytes, v) : v4_->lookup(v4_of(dst), v))) {
        return false;
    }
    id = v & ~kDownlinkFastBit;
    return true;
}

bool SessionTable::lookup_uplink_key(std::uint32_t key, SessionId& id) const noexcept {
    std::uint32_t v = 0;
    if (key == 0 || !keys_->lookup(key_bytes(key), v)) {
        return false;
    }
    id = v & ~kUplinkFastBit;
    return true;
}

std::uint64_t SessionTable::lookup_destination_bulk(const IpAddr* const* dsts, unsigned n,
                                                    SessionId* ids,
                                                    std::uint64_t* fast) const noexcept {
    n = n < kBulkMax ? n : kBulkMax;
    const Prefix6Table::Address* a6[kBulkMax];
    Prefix4Table::Address a4[kBulkMax];
    const Prefix4Table::Address* p4[kBulkMax];
    std::uint8_t i6[kBulkMax], i4[kBulkMax];
    unsigned n6 = 0, n4 = 0;
    for (unsigned i = 0; i < n; ++i) {
        if (dsts[i]->family == Family::kIpv6) {
            a6[n6] = &dsts[i]->bytes;
            i6[n6++] = static_cast<std::uint8_t>(i);
        } else {
            a4[n4] = v4_of(*dsts[i]);
            p4[n4] = &a4[n4];
            i4[n4++] = static_cast<std::uint8_t>(i);
        }
    }
    std::uint64_t found = 0, hinted = 0;
    std::uint32_t v[kBulkMax];
    auto scatter = [&](std::uint64_t hits, const std::uint8_t* index) {
        for (; hits != 0; hits &= hits - 1) {
            const unsigned j = static_cast<unsigned>(__builtin_ctzll(hits));
            ids[index[j]] = v[j] & ~kDownlinkFastBit;
            found |= std::uint64_t{1} << index[j];
            hinted |= std::uint64_t{(v[j] & kDownlinkFastBit) != 0} << index[j];
        }
    };
    if (n6 != 0) {
        scatter(v6_->lookup_bulk(a6, n6, v), i6);
    }
    if (n4 != 0) {
        scatter(v4_->lookup_bulk(p4, n4, v), i4);
    }
    if (fast != nullptr) {
        *fast = hinted;
    }
    return found;
}

std::uint64_t SessionTable::lookup_uplink_key_bulk(const std::uint32_t* keys, unsigned n,
                                                   SessionId* ids,
                                                   std::uint64_t* fast) const noexcept {
    std::uint64_t hinted = 0;
    n = n < kBulkMax ? n : kBulkMax;
    KeyTable::Key k[kBulkMax];
    const KeyTable::Key* pk[kBulkMax];
    std::uint8_t index[kBulkMax];
    unsigned m = 0;
    for (unsigned i = 0; i < n; ++i) {
        if (keys[i] != 0) {  // key 0 is "none", never in the table
            k[m] = key_bytes(keys[i]);
            pk[m] = &k[m];
            index[m++] = static_cast<std::uint8_t>(i);
        }
    }
    std::uint64_t found = 0;
    if (m != 0) {
        std::uint32_t v[kBulkMax];
        for (std::uint64_t hits = keys_->lookup_bulk(pk, m, v); hits != 0; hits &= hits - 1) {
            const unsigned j = static_cast<unsigned>(__builtin_ctzll(hits));
            ids[index[j]] = v[j] & ~kUplinkFastBit;
            found |= std::uint64_t{1} << index[j];
            hinted |= std::uint64_t{(v[j] & kUplinkFastBit) != 0} << index[j];
        }
    }
    if (fast != nullptr) {
        *fast = hinted;
    }
    return found;
}

bool SessionTable::lookup_care_of(const IpAddr& coa, SessionId& id) const noexcept {
    return coas_->lookup(coa_bytes(coa), id);
}

}  // namespace hag::dp
