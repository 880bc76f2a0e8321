#include "pipeline/downlink_encap.hpp"

#include <rte_cycles.h>
#include <rte_ether.h>
#include <rte_ip.h>

#include <algorithm>
#include <new>
#include <type_traits>

#include "multipath/scheduler.hpp"
#include "pipeline/packet.hpp"
#include "policy/classify.hpp"
#include "tables/nat_port.hpp"

namespace hag::dp {

namespace {

// Into all cache levels, to be written (rte_prefetch0_write is experimental in DPDK 22.11).
inline void prefetch_write(const void* p) noexcept {
    __builtin_prefetch(p, 1, 3);
}

constexpr std::uint8_t kIcmpHopLimit = 64;
constexpr std::uint16_t kIpv6MinMtu = 1280;  // an ICMPv6 error fits it (RFC 4443 §2.4)
constexpr std::uint16_t kIpv4IcmpMax = 576;  // an ICMPv4 error fits it (RFC 1812 §4.3.2.3)

// One GCRA bucket for all ICMP errors of this worker.
inline bool icmp_allowed(DownlinkCtx& ctx, std::uint64_t now, std::uint64_t hz) noexcept {
    if (ctx.icmp_per_second == 0) {
        return false;
    }
    const std::uint64_t cost = hz / ctx.icmp_per_second;
    const std::uint64_t tolerance = cost * ctx.icmp_per_second;  // one second's worth
    if (ctx.icmp_tat < now) {
        ctx.icmp_tat = now;
    }
    if (ctx.icmp_tat - now + cost > tolerance) {
        return false;
    }
    ctx.icmp_tat += cost;
    return true;
}

// Turns `m` (the packet as received, l2 header included) into an ICMP error about it toward its
// source, back the way it came: the received Ethernet header (VLAN tags kept) with the MACs
// swapped. `info` is the 32-bit word after the checksum (the MTU for Packet Too Big, the
// next-hop MTU in its low 16 bits for Fragmentation Needed). Returns true when `m` now is the
// error and sits in ctx.to_core; false when no error is sent (m unchanged, the caller frees it).
bool icmp_error(DownlinkCtx& ctx, rte_mbuf* m, const L2Info& l2, const L3Info& l3,
                std::uint8_t type, std::uint8_t code, std::uint32_t info, DownlinkEvent sent,
                std::uint64_t now, std::uint64_t hz) noexcept {
    const bool v6 = l3.family == Family::kIpv6;
    const IpAddr& src = v6 ? ctx.icmp_src_v6 : ctx.icmp_src_v4;
    const auto* ip = rte_pktmbuf_mtod_offset(m, const std::uint8_t*, l2.l3_offset);
    // A frame sent to a group MAC is not answered (the reply's source MAC would be that).
    const bool group_mac = (*rte_pktmbuf_mtod(m, const std::uint8_t*) & 1) != 0;
    if (src.family != l3.family || group_mac || !icmp_may_answer(ip, l3) ||
        ctx.n_to_core == DownlinkCtx::kSideMax) {
        ++ctx.events[static_cast<std::size_t>(DownlinkEvent::kIcmpSuppressed)];
        return false;
    }
    if (!icmp_allowed(ctx, now, hz)) {
        ++ctx.events[static_cast<std::size_t>(DownlinkEvent::kIcmpRateLimited)];
        return false;
    }
    const std::uint16_t hdr = v6 ? 40 + 8 : 20 + 8;
    const std::uint16_t quote = std::min<std::uint16_t>(
        l3.total_len, static_cast<std::uint16_t>((v6 ? kIpv6MinMtu : kIpv4IcmpMax) - hdr));
    if (rte_pktmbuf_headroom(m) < hdr) {
        ++ctx.events[static_cast<std::size_t>(DownlinkEvent::kIcmpSuppressed)];
        return false;
    }
    // Keep the received L2 header (at most 14 + 2 tags), drop it and the quote's tail.
    std::uint8_t l2hdr[22];
    std::memcpy(l2hdr, rte_pktmbuf_mtod(m, const std::uint8_t*), l2.l3_offset);
    rte_pktmbuf_adj(m, l2.l3_offset);
    rte_pktmbuf_trim(m, static_cast<std::uint16_t>(rte_pktmbuf_pkt_len(m) - quote));
    auto* h = reinterpret_cast<std::uint8_t*>(
        rte_pktmbuf_prepend(m, static_cast<std::uint16_t>(l2.l3_offset + hdr)));
    // Headroom was checked: the L2 header came off before (at most 22 bytes more than before).
    std::memcpy(h, l2hdr + 6, 6);
    std::memcpy(h + 6, l2hdr, 6);
    std::memcpy(h + 12, l2hdr + 12, l2.l3_offset - 14);
    put16(h + l2.l3_offset - 2, v6 ? kEtherIpv6 : kEtherIpv4);
    std::uint8_t* o = h + l2.l3_offset;
    std::uint8_t* icmp = o + hdr - 8;
    icmp[0] = type;
    icmp[1] = code;
    put16(icmp + 2, 0);
    put32(icmp + 4, info);
    if (v6) {
        put32(o, 6u << 28);
        put16(o + 4, static_cast<std::uint16_t>(8 + quote));
        o[6] = 58;
        o[7] = kIcmpHopLimit;
        std::memcpy(o + 8, src.bytes.data(), 16);
        std::memcpy(o + 24, l3.src.bytes.data(), 16);
        const std::uint16_t c =
            rte_ipv6_udptcp_cksum(reinterpret_cast<const rte_ipv6_hdr*>(o), icmp);
        std::memcpy(icmp + 2, &c, sizeof c);
    } else {
        o[0] = 0x45;
        o[1] = 0;
        put16(o + 2, static_cast<std::uint16_t>(hdr + quote));
        put32(o + 4, 0);  // identification 0, not a fragment, DF clear
        o[8] = kIcmpHopLimit;
        o[9] = 1;
        put16(o + 10, 0);
        std::memcpy(o + 12, src.bytes.data(), 4);
        std::memcpy(o + 16, l3.src.bytes.data(), 4);
        const std::uint16_t c = rte_ipv4_cksum(reinterpret_cast<const rte_ipv4_hdr*>(o));
        std::memcpy(o + 10, &c, sizeof c);
        const auto ic = static_cast<std::uint16_t>(~rte_raw_cksum(icmp, 8u + quote));
        std::memcpy(icmp + 2, &ic, sizeof ic);
    }
    set_l2_l3_len(m, l2.l3_offset, v6 ? 40 : 20);
    ctx.to_core[ctx.n_to_core++] = m;
    ++ctx.events[static_cast<std::size_t>(sent)];
    return true;
}

// Splits the encapsulated frame `m` (Ethernet 14 + outer IP + payload) into outer fragments of
// at most `mtu` bytes of IP: `m` becomes the first, the others are new mbufs from ctx.pool
// appended to ctx.more_access. False (m unchanged) when mbufs or room are missing.
bool fragment_outer(DownlinkCtx& ctx, rte_mbuf* m, bool v6, std::uint16_t mtu) noexcept {
    const std::uint16_t ip_len = v6 ? 40 : 20;
    const std::uint16_t extra = v6 ? 8 : 0;  // the fragment header
    const auto payload = static_cast<std::uint16_t>(rte_pktmbuf_pkt_len(m) - 14 - ip_len);
    const auto per = static_cast<std::uint16_t>((mtu - ip_len - extra) & ~7u);
    const unsigned n = (payload + per - 1u) / per;
    if (ctx.pool == nullptr || n < 2 || ctx.n_more_access + (n - 1) > DownlinkCtx::kSideMax ||
        (v6 && rte_pktmbuf_headroom(m) < extra)) {
        return false;
    }
    rte_mbuf* more[DownlinkCtx::kSideMax];
    if (rte_pktmbuf_alloc_bulk(ctx.pool, more, n - 1) != 0) {
        return false;
    }
    if (rte_pktmbuf_tailroom(more[0]) < 14u + ip_len + extra + per) {
        rte_pktmbuf_free_bulk(more, n - 1);
        return false;
    }
    const std::uint32_t id = ctx.fragment_id++;
    // The headers every fragment starts with, and the payload (prepending below moves neither).
    std::uint8_t tmpl[14 + 40];
    std::memcpy(tmpl, rte_pktmbuf_mtod(m, const std::uint8_t*), 14u + ip_len);
    const auto* body = rte_pktmbuf_mtod_offset(m, const std::uint8_t*, 14 + ip_len);
    // The first fragment: m itself, its headers first.
    if (v6) {
        auto* d = reinterpret_cast<std::uint8_t*>(rte_pktmbuf_prepend(m, extra));
        if (d == nullptr) {
            rte_pktmbuf_free_bulk(more, n - 1);
            return false;
        }
        std::memcpy(d, tmpl, 14 + 40);
        std::uint8_t* o = d + 14;
        put16(o + 4, static_cast<std::uint16_t>(extra + per));
        o[6] = 44;
        std::uint8_t* fh = o + 40;
        fh[0] = tmpl[14 + 6];  // the tunnel protocol
        fh[1] = 0;
        put16(fh + 2, 1);  // offset 0, more fragments
        put32(fh + 4, id);
    } else {
        auto* o = rte_pktmbuf_mtod_offset(m, std::uint8_t*, 14);
        put16(o + 2, static_cast<std::uint16_t>(ip_len + per));
        put16(o + 4, static_cast<std::uint16_t>(id));
        put16(o + 6, 0x2000);
        put16(o + 10, 0);
        const std::uint16_t c = rte_ipv4_cksum(reinterpret_cast<const rte_ipv4_hdr*>(o));
        std::memcpy(o + 10, &c, sizeof c);
    }
    for (unsigned k = 1; k < n; ++k) {
        const auto off = static_cast<std::uint16_t>(k * per);
        const auto len = static_cast<std::uint16_t>(std::min<unsigned>(per, payload - off));
        const bool last = k == n - 1;
        rte_mbuf* f = more[k - 1];
        auto* d = reinterpret_cast<std::uint8_t*>(
            rte_pktmbuf_append(f, static_cast<std::uint16_t>(14 + ip_len + extra + len)));
        std::memcpy(d, tmpl, 14u + ip_len);
        std::uint8_t* o = d + 14;
        if (v6) {
            put16(o + 4, static_cast<std::uint16_t>(extra + len));
            o[6] = 44;
            std::uint8_t* fh = o + 40;
            fh[0] = tmpl[14 + 6];  // the tunnel protocol
            fh[1] = 0;
            put16(fh + 2, static_cast<std::uint16_t>(off | (last ? 0 : 1)));
            put32(fh + 4, id);
        } else {
            put16(o + 2, static_cast<std::uint16_t>(ip_len + len));
            put16(o + 4, static_cast<std::uint16_t>(id));
            put16(o + 6, static_cast<std::uint16_t>((last ? 0 : 0x2000) | (off >> 3)));
            put16(o + 10, 0);
            const std::uint16_t c = rte_ipv4_cksum(reinterpret_cast<const rte_ipv4_hdr*>(o));
            std::memcpy(o + 10, &c, sizeof c);
        }
        std::memcpy(d + 14 + ip_len + extra, body + off, len);
        f->port = m->port;
        set_l2_l3_len(f, 14, ip_len);
        ctx.more_access[ctx.n_more_access++] = f;
    }
    // The first fragment ends after `per` bytes of payload.
    rte_pktmbuf_trim(m, static_cast<std::uint16_t>(payload - per));
    ++ctx.events[static_cast<std::size_t>(DownlinkEvent::kFragmented)];
    ctx.events[static_cast<std::size_t>(DownlinkEvent::kFragments)] += n;
    return true;
}

// What the burst's first pass learns of one packet: its headers, its session, and the profile
// that classifies it (the classification itself runs over the burst, one rte_acl call per
// profile, before the second pass).
struct Prepared {
    L2Info l2{};
    L3Info l3{};
    SessionTable::SessionId id = 0;
    const SessionConfig* cfg = nullptr;
    const CompiledProfile* prof = nullptr;      // null: no policy
    int rule = -1;                              // the profile's first matching rule, -1 none
    DownlinkDrop early = DownlinkDrop::kCount;  // a drop found in the first pass
};
// parse() builds over the old one, in uninitialised storage (downlink_encap).
static_assert(std::is_trivially_destructible_v<Prepared>);
static_assert(std::is_trivially_destructible_v<PolicyKey>);

// The first pass, per packet: Ethernet and IP headers (the session is looked up for the whole
// chunk at once afterwards). `p` is built in place, each field written once: building an
// L3Info elsewhere and copying it in made the copy's wide loads wait for the narrow stores that
// had just built it (a store-forwarding stall per packet, ~25 stage cycles).
inline void parse(rte_mbuf* m, Prepared& p) noexcept {
    const L2Info l2 = parse_l2(m);
    const bool ip =
        l2.l3_offset != 0 && (l2.ether_type == kEtherIpv4 || l2.ether_type == kEtherIpv6);
    ::new (static_cast<void*>(&p))
        Prepared{l2, ip ? parse_l3(m, l2.l3_offset, l2.ether_type) : L3Info{}};
    if (l2.l3_offset == 0) {
        p.early = rte_pktmbuf_data_len(m) < 14 ? DownlinkDrop::kMalformed : DownlinkDrop::kNotIp;
    } else if (!ip) {
        p.early = DownlinkDrop::kNotIp;
    } else if (!p.l3.ok) {
        p.early = DownlinkDrop::kMalformed;
    }
}

// What the general path reads of session id besides its hot record's first line, fetched in
// the pass that fetches that line: the config's first two lines at its usual place (rather
// than through the record's pointer once the record has arrived: a second miss after the
// first), and for striping the plan's first line (order, shares) and the striping state. A
// session that does not stripe (one path, flow policy, NAT) never reads the last two: at
// 100,000 sessions, fetching them anyway measured within the spread on the one-path general
// path and with 1,000 policy rules, and two paths striped went 0.191 -> 0.202 x testpmd io.
inline void general_prefetch(const DownlinkCtx& ctx, SessionTable::SessionId id) noexcept {
    const auto* c = static_cast<const char*>(ctx.sessions->config_home(id));
    rte_prefetch0(c);
    rte_prefetch0(c + 64);
    rte_prefetch0(&static_cast<const SessionConfig*>(ctx.sessions->config_home(id))->plan);
    const StripeState& ss = ctx.sessions->state(id).stripe;
    prefetch_write(&ss);
    prefetch_write(reinterpret_cast<const char*>(&ss + 1) - 1);
}

// The session's config (p.id found by the chunk's lookup) and the flow policy key.
inline void prepare(DownlinkCtx& ctx, rte_mbuf* m, Prepared& p, PolicyKey& key) noexcept {
    p.cfg = ctx.sessions->downlink_config(p.id);
    if (p.cfg == nullptr) {
        p.early = DownlinkDrop::kNoSubscriber;  // removed between lookup and read
        return;
    }
    if (p.cfg->plan_n_order > 1) {
        // Striping (stripe_pick) reads the session's striping state, the plan's shares and
        // any of its paths. The state and the plan's first line were fetched with the config
        // (general_prefetch); fetch the paths while the rest of the chunk is prepared.
        // Counters of paths kHotPaths and up: the state's downlink_more (two lines; a
        // prefetch per path, the same line twice at worst); those of the first paths are in the
        // SessionHot record the chunk prefetched.
        const unsigned n_paths = std::min<unsigned>(p.cfg->n_paths, kMaxPaths);
        for (unsigned i = kHotPaths; i < n_paths; ++i) {
            prefetch_write(&ctx.sessions->downlink_traffic(p.id, i));
        }
        const auto* c = reinterpret_cast<const char*>(p.cfg);
        const auto* paths_end = reinterpret_cast<const char*>(
            p.cfg->paths.data() + std::min<unsigned>(p.cfg->n_paths, kMaxPaths));
        for (const char* line = c + 128; line < paths_end; line += 64) {
            rte_prefetch0(line);
        }
    }
    if (p.cfg->policy != 0 && ctx.policies != nullptr) {
        p.prof = ctx.policies->get(p.cfg->policy);
        if (p.prof != nullptr) {
            // The session's policy counters (a line the other prefetches do not cover).
            prefetch_write(&ctx.sessions->state(p.id).policy_pinned);
            policy_key(rte_pktmbuf_mtod_offset(m, const std::uint8_t*, p.l2.l3_offset), p.l3, true,
                       key);
        }
    }
}

// Outer traffic class of an inner packet (`ip` its header): the (mapped) DSCP, and the inner
// ECN field copied (RFC 6040 §4.1 normal mode: CE included).
inline std::uint8_t outer_class(const DownlinkCtx& ctx, const std::uint8_t* ip,
                                bool v4_inner) noexcept {
    const auto dscp =
        static_cast<std::uint8_t>(v4_inner ? ip[1] >> 2 : ((ip[0] & 0x0f) << 2) | (ip[1] >> 6));
    const auto ecn = static_cast<std::uint8_t>(v4_inner ? ip[1] & 3 : (ip[1] >> 4) & 3);
    return static_cast<std::uint8_t>(ctx.dscp[dscp] << 2 | ecn);
}

// Decrements the inner TTL / hop limit (checked > 1 before); IPv4's checksum follows (RFC 1624
// incremental update: TTL is the high byte of its 16-bit word).
inline void decrement_ttl(std::uint8_t* ip, bool v4_inner) noexcept {
    if (v4_inner) {
        ipv4_decrement_ttl(ip);
    } else {
        ip[7] = static_cast<std::uint8_t>(ip[7] - 1);
    }
}

// The fast downlink (FastDownlink, session_table.hpp) of a packet whose session has it: copies
// the prebuilt outer headers and sets what differs per packet (destination MAC when resolved,
// traffic class, lengths, hop limit, IPv4 checksum, GRE protocol, sequence number). Writes the
// same octets encap_one would. False, with the packet untouched, when the fast form does not fit
// it (inner TTL expiring, too big for the MTU, next hop unresolved, no headroom) or the writer
// was rewriting it: encap_one then handles it (and drops it, answers it or fragments it).
inline bool encap_fast(DownlinkCtx& ctx, rte_mbuf* m, const Prepared& pre) noexcept {
    FastWords f;
    if (!ctx.sessions->fast_form(pre.id, f)) {
        return false;
    }
    const L3Info& l3 = pre.l3;
    const std::uint16_t l3_offset = pre.l2.l3_offset;
    auto* ip = rte_pktmbuf_mtod_offset(m, std::uint8_t*, l3_offset);
    const bool v4_inner = l3.family == Family::kIpv4;
    const unsigned mtu = f.mtu() != 0 ? f.mtu() : ctx.access_mtu;
    // The header's 64 octets end where the sequence number (or the inner packet) starts: the
    // headroom must hold what lands before the outer header too.
    const unsigned seq_len = f.sequence() ? 4 : 0;
    if ((v4_inner ? ip[8] : ip[7]) <= 1 || l3.total_len + f.length() - 14u > mtu ||
        rte_pktmbuf_headroom(m) + l3_offset < 64 + seq_len) {
        return false;
    }
    MacAddr mac;
    if (f.resolve_mac()) {
        if (ctx.next_hops == nullptr || f.next_hop() >= ctx.next_hops->capacity() ||
            !ctx.next_hops->mac(f.next_hop(), mac)) {
            return false;
        }
    }
    decrement_ttl(ip, v4_inner);
    const std::uint8_t tc = outer_class(ctx, ip, v4_inner);
    // Drop the core-side L2 header and any Ethernet padding after the IP packet.
    rte_pktmbuf_adj(m, l3_offset);
    if (rte_pktmbuf_pkt_len(m) > l3.total_len) {
        rte_pktmbuf_trim(m, static_cast<std::uint16_t>(rte_pktmbuf_pkt_len(m) - l3.total_len));
    }
    auto* h = reinterpret_cast<std::uint8_t*>(rte_pktmbuf_prepend(m, f.length()));  // room checked
    // The whole right-aligned template in eight word copies: its first 64 - (length - seq_len)
    // octets land in the headroom before h.
    std::uint8_t* const t_end = h + f.length() - seq_len;
    for (unsigned i = 0; i < 8; ++i) {
        std::memcpy(t_end - 64 + 8 * i, &f.header[i], 8);
    }
    if (f.resolve_mac()) {
        std::memcpy(h, mac.data(), 6);
    }
    std::uint8_t* o = h + 14;
    const auto inner_len = static_cast<std::uint16_t>(f.length() - 14 + l3.total_len);
    std::uint8_t* g;
    if (f.v6_outer()) {
        put32(o, 6u << 28 | std::uint32_t{tc} << 20);
        put16(o + 4, static_cast<std::uint16_t>(inner_len - 40));
        o[7] = ctx.outer_hop_limit;
        g = o + 40;
    } else {
        o[1] = tc;
        put16(o + 2, inner_len);
        o[8] = ctx.outer_hop_limit;
        std::uint32_t sum =
            f.ipv4_sum() + tc + inner_len + (std::uint32_t{ctx.outer_hop_limit} << 8);
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        put16(o + 10, static_cast<std::uint16_t>(~sum));
        g = o + 20;
    }
    put16(g + 2, v4_inner ? kEtherIpv4 : kEtherIpv6);
    m->port = f.port();
    set_l2_l3_len(m, 14, f.v6_outer() ? 40 : 20);
    SessionHot& hot = ctx.sessions_rw->hot(pre.id);
    if (f.sequence()) {
        put32(g + 8, owner_add(hot.next_downlink_seq, 1U));
    }
    owner_add(hot.downlink[f.path()].packets, std::uint64_t{1});
    owner_add(hot.downlink[f.path()].bytes, std::uint64_t{l3.total_len});
    return true;
}

// Returns the drop reason, or kCount when the packet was encapsulated. `consumed`: the mbuf
// became an ICMP error (in ctx.to_core) and must not be freed.
inline DownlinkDrop encap_one(DownlinkCtx& ctx, rte_mbuf* m, const Prepared& pre, std::uint64_t now,
                              std::uint64_t hz, bool& consumed) noexcept {
    if (pre.early != DownlinkDrop::kCount) {
        return pre.early;
    }
    const L2Info& l2 = pre.l2;
    const L3Info& l3 = pre.l3;
    const SessionTable::SessionId id = pre.id;
    const SessionConfig* cfg = pre.cfg;
    SessionState& st = ctx.sessions_rw->state(id);
    auto* ip = rte_pktmbuf_mtod_offset(m, std::uint8_t*, l2.l3_offset);
    // Flow policy: the first matching rule's first live access pins the packet to that path
    // (never striped); DROP drops it; STRIPE, or no matching rule, leaves it to striping.
    unsigned pi = kMaxPaths;
    if (pre.prof != nullptr) {
        if (const CompiledProfile* prof = pre.prof; prof != nullptr) {
            if (const int r = pre.rule; r >= 0) {
                PolicyRuleCounters& rc = prof->counters[static_cast<std::size_t>(r)];
                rc.hits.fetch_add(1, std::memory_order_relaxed);
                unsigned path = 0;
                switch (policy_resolve(prof->rules[static_cast<std::size_t>(r)], *cfg, path)) {
                    case PolicyVerdict::kPath:
                        pi = path;
                        owner_add(st.policy_pinned, std::uint64_t{1});
                        break;
                    case PolicyVerdict::kDrop:
                        rc.drops.fetch_add(1, std::memory_order_relaxed);
                        owner_add(st.policy_drops, std::uint64_t{1});
                        return DownlinkDrop::kPolicyDrop;
                    case PolicyVerdict::kStripe:
                        break;
                }
            }
        }
    }
    if (pi == kMaxPaths) {
        if (cfg->plan_n_order == 0) {
            return DownlinkDrop::kNoLivePath;
        }
        // One usable path: no scheduler work. Several: striping (multipath/scheduler.hpp),
        // whose state has one writer, this worker (RSS keeps a subscriber's downlink on one
        // worker).
        pi = cfg->plan_n_order == 1 ? cfg->plan_first
                                    : stripe_pick(*cfg, st.stripe, l3.total_len, now, hz);
    }
    const PathConfig* path = &cfg->paths[pi];
    MacAddr next_hop_mac = path->next_hop_mac;  // a static MAC overrides resolution
    if (mac_zero(next_hop_mac)) {
        if (ctx.next_hops == nullptr || path->next_hop >= ctx.next_hops->capacity()) {
            return DownlinkDrop::kNoNextHop;
        }
        if (!ctx.next_hops->mac(path->next_hop, next_hop_mac)) {
            ctx.next_hops->want(path->next_hop);
            return DownlinkDrop::kNoNextHop;
        }
    }

    // Inner TTL / hop limit: hag routes the packet into the tunnel. Expired: Time Exceeded.
    const bool v4_inner = l3.family == Family::kIpv4;
    if ((v4_inner ? ip[8] : ip[7]) <= 1) {
        consumed = icmp_error(ctx, m, l2, l3, v4_inner ? 11 : 3, 0, 0,
                              DownlinkEvent::kTimeExceededSent, now, hz);
        return DownlinkDrop::kTtlExpired;
    }

    const bool v6_outer = path->coa.family == Family::kIpv6;
    // A NATed path (udp_port set, IPv4 only): GRE in UDP, the UDP header counted with the IP one.
    const std::uint16_t udp_len = path->udp_port != 0 ? 8 : 0;
    // IP in IP: no tunnel header (and no key or sequence number).
    const bool ipip = path->tunnel == Tunnel::kIpInIp;
    const std::uint16_t gre_len = ipip ? 0 : cfg->gre_sequence ? 12 : 8;
    const std::uint8_t tunnel_proto = !ipip      ? kIpProtoGre
                                      : v4_inner ? kIpProtoIpInIp4
                                                 : kIpProtoIpInIp6;
    const std::uint16_t outer_ip_len = v6_outer ? 40 : 20;
    const std::uint16_t outer_total =
        static_cast<std::uint16_t>(outer_ip_len + udp_len + gre_len + l3.total_len);
    const std::uint16_t mtu = path->mtu != 0 ? path->mtu : ctx.access_mtu;
    bool fragment = false;
    if (static_cast<std::uint32_t>(outer_ip_len) + udp_len + gre_len + l3.total_len > mtu) {
        const bool df = v4_inner && (get16(ip + 6) & 0x4000) != 0;
        if (ctx.mtu_action == MtuAction::kFragment && !df) {
            fragment = true;
        } else {
            // The largest inner packet that fits; an IPv6 sender never goes below 1280.
            const auto inner_mtu =
                static_cast<std::uint16_t>(mtu - outer_ip_len - udp_len - gre_len);
            consumed = v4_inner ? icmp_error(ctx, m, l2, l3, 3, 4, inner_mtu,
                                             DownlinkEvent::kFragNeededSent, now, hz)
                                : icmp_error(ctx, m, l2, l3, 2, 0, inner_mtu,
                                             DownlinkEvent::kPacketTooBigSent, now, hz);
            return DownlinkDrop::kTooBig;
        }
    }

    decrement_ttl(ip, v4_inner);
    const std::uint8_t tc = outer_class(ctx, ip, v4_inner);

    // Drop the core-side L2 header and any Ethernet padding after the IP packet.
    rte_pktmbuf_adj(m, l2.l3_offset);
    if (rte_pktmbuf_pkt_len(m) > l3.total_len) {
        rte_pktmbuf_trim(m, static_cast<std::uint16_t>(rte_pktmbuf_pkt_len(m) - l3.total_len));
    }
    auto* h = reinterpret_cast<std::uint8_t*>(
        rte_pktmbuf_prepend(m, static_cast<std::uint16_t>(14 + outer_ip_len + udp_len + gre_len)));
    if (h == nullptr) {
        return DownlinkDrop::kNoHeadroom;
    }
    // Ethernet.
    std::memcpy(h, next_hop_mac.data(), 6);
    std::memcpy(h + 6, path->src_mac.data(), 6);
    put16(h + 12, v6_outer ? kEtherIpv6 : kEtherIpv4);
    std::uint8_t* o = h + 14;
    if (v6_outer) {
        put32(o, 6u << 28 | std::uint32_t{tc} << 20);
        put16(o + 4, static_cast<std::uint16_t>(udp_len + gre_len + l3.total_len));
        o[6] = tunnel_proto;
        o[7] = ctx.outer_hop_limit;
        std::memcpy(o + 8, path->local.bytes.data(), 16);
        std::memcpy(o + 24, path->coa.bytes.data(), 16);
    } else {
        o[0] = 0x45;
        o[1] = tc;
        put16(o + 2, outer_total);
        put16(o + 4, 0);       // identification: DF set, not fragmented on the way
        put16(o + 6, 0x4000);  // DF
        o[8] = ctx.outer_hop_limit;
        o[9] = udp_len != 0 ? kIpProtoUdp : tunnel_proto;
        put16(o + 10, 0);
        std::memcpy(o + 12, path->local.bytes.data(), 4);
        std::memcpy(o + 16, path->coa.bytes.data(), 4);
        // rte_ipv4_cksum returns the checksum ready to store as is (network byte order).
        const std::uint16_t csum = rte_ipv4_cksum(reinterpret_cast<const rte_ipv4_hdr*>(o));
        std::memcpy(o + 10, &csum, sizeof csum);
    }
    std::uint8_t* g = o + outer_ip_len;
    if (udp_len != 0) {
        // UDP from the data port to the NAT's observed port; checksum 0 (none, RFC 768 over
        // IPv4: the GRE payload has its own integrity at the inner layer, as RFC 8086 allows).
        put16(g, kDataUdpPort);
        put16(g + 2, nat_data_port(st, pi, *path));  // the port its data came from
        put16(g + 4, static_cast<std::uint16_t>(udp_len + gre_len + l3.total_len));
        put16(g + 6, 0);
        g += udp_len;
    }
    // GRE (RFC 2890): K always, S when the session uses sequence numbers.
    if (!ipip) {
        put16(g, static_cast<std::uint16_t>(kGreK | (cfg->gre_sequence ? kGreS : 0)));
        put16(g + 2, v4_inner ? kEtherIpv4 : kEtherIpv6);
        put32(g + 4, path->downlink_key);
    }
    m->port = path->port;
    set_l2_l3_len(m, 14, outer_ip_len);
    if (fragment && !fragment_outer(ctx, m, v6_outer, mtu)) {
        return DownlinkDrop::kFragmentNoMbuf;
    }
    if (cfg->gre_sequence && !ipip) {
        // One sequence space per session across all its paths (the far end reorders by it).
        // Taken only now that the packet leaves; `g` still points at the GRE header, in the
        // first fragment (an IPv6 fragment header went in before the headers, not after).
        put32(g + 8, owner_add(ctx.sessions_rw->hot(id).next_downlink_seq, 1U));
    }
    // One writer, this worker (the session's owner): plain adds (session_table.hpp).
    const std::uint64_t bytes = l3.total_len;
    PathTraffic& traffic = ctx.sessions_rw->downlink_traffic(id, pi);
    owner_add(traffic.packets, std::uint64_t{1});
    owner_add(traffic.bytes, bytes);
    return DownlinkDrop::kCount;
}

}  // namespace

uint16_t downlink_encap(DownlinkCtx& ctx, rte_mbuf** pkts, uint16_t n) noexcept {
    const std::uint64_t t0 = rte_rdtsc();
    const std::uint64_t hz = ctx.tsc_hz != 0 ? ctx.tsc_hz : rte_get_tsc_hz();
    ctx.n_to_core = 0;
    ctx.n_more_access = 0;
    uint16_t kept = 0;
    unsigned fast_kept = 0;
    // In chunks of kChunk: parse and look up every packet, classify the chunk's packets with
    // one rte_acl call per flow policy profile, then encapsulate.
    constexpr uint16_t kChunk = 64;
    static_assert(kChunk <= SessionTable::kBulkMax);
    // Uninitialised storage: parse() builds every packet's Prepared in place and prepare()
    // every key it uses (policy_key assigns it whole); arrays of them default-constructed
    // zeroed ~8 kB per burst (a memset call, 3 % of the worker at 1,000 subscribers).
    alignas(Prepared) unsigned char pre_bytes[sizeof(Prepared) * kChunk];
    alignas(PolicyKey) unsigned char key_bytes[sizeof(PolicyKey) * kChunk];
    auto* const pre = reinterpret_cast<Prepared*>(pre_bytes);
    auto* const keys = reinterpret_cast<PolicyKey*>(key_bytes);
    for (uint16_t base = 0; base < n; base += kChunk) {
        const uint16_t k = static_cast<uint16_t>(n - base < kChunk ? n - base : kChunk);
        // The chunk's table accesses are issued together so that their cache (and TLB) misses
        // overlap instead of following one another packet by packet: parse every packet, look
        // the sessions up in bulk (it prefetches every bucket before comparing any; each found
        // prefix's value says whether its session has the fast form), then prefetch each
        // session's hot record (SessionHot) and, for sessions without the fast form, in the
        // same pass, the config's first lines at its usual place.
        for (uint16_t i = 0; i < k; ++i) {
            rte_prefetch0(rte_pktmbuf_mtod(pkts[base + i], void*));
        }
        const IpAddr* dsts[kChunk];
        SessionTable::SessionId ids[kChunk];
        uint8_t which[kChunk];
        unsigned q = 0;
        for (uint16_t i = 0; i < k; ++i) {
            parse(pkts[base + i], pre[i]);
            if (pre[i].early == DownlinkDrop::kCount) {
                dsts[q] = &pre[i].l3.dst;
                which[q++] = static_cast<uint8_t>(i);
            }
        }
        // Bit j: the j-th destination's session has the fast downlink form, by the hint in its
        // prefix's bucket (encap_fast reads the form under its sequence lock and falls back
        // when it is gone).
        std::uint64_t hint = 0;
        const std::uint64_t found = ctx.sessions->lookup_destination_bulk(dsts, q, ids, &hint);
        if (!ctx.fast_path) {
            hint = 0;
        }
        // Bit i: packet i takes the fast form.
        std::uint64_t fast = 0;
        for (unsigned j = 0; j < q; ++j) {
            Prepared& p = pre[which[j]];
            if ((found >> j & 1U) == 0) {
                p.early = DownlinkDrop::kNoSubscriber;
                continue;
            }
            p.id = ids[j];
            // The session's downlink record (SessionHot): sequence number, first paths'
            // counters, config pointer and fast form, all a fast-form packet reads besides the
            // packet. The general path reads its first line and what general_prefetch fetches
            // (a removed session, or a config elsewhere: prepare() reads the published one).
            const auto* hot = reinterpret_cast<const char*>(&ctx.sessions->hot(p.id));
            prefetch_write(hot);
            if ((hint >> j & 1U) != 0) {
                rte_prefetch0(hot + 64);
                fast |= std::uint64_t{1} << which[j];
            } else {
                general_prefetch(ctx, p.id);
            }
        }
        for (unsigned j = 0; j < q; ++j) {
            if (pre[which[j]].early == DownlinkDrop::kCount && (fast >> which[j] & 1U) == 0) {
                prepare(ctx, pkts[base + which[j]], pre[which[j]], keys[which[j]]);
            }
        }
        // Group by profile (a burst usually has a few): each group in one classify call.
        std::uint64_t done = 0;  // bit i: packet i classified (or has no profile)
        for (uint16_t i = 0; i < k; ++i) {
            if ((done >> i & 1U) != 0 || pre[i].prof == nullptr) {
                continue;
            }
            const CompiledProfile* prof = pre[i].prof;
            const PolicyKey* group_keys[kChunk];
            uint16_t members[kChunk];
            unsigned g = 0;
            for (uint16_t j = i; j < k; ++j) {
                if (pre[j].prof == prof && (done >> j & 1U) == 0) {
                    group_keys[g] = &keys[j];
                    members[g++] = j;
                    done |= std::uint64_t{1} << j;
                }
            }
            int rules[kChunk];
            prof->classify_burst(group_keys, rules, g);
            for (unsigned x = 0; x < g; ++x) {
                pre[members[x]].rule = rules[x];
            }
        }
        for (uint16_t i = 0; i < k; ++i) {
            rte_mbuf* m = pkts[base + i];
            if ((fast >> i & 1U) != 0) {
                if (encap_fast(ctx, m, pre[i])) {
                    pkts[kept++] = m;
                    ++fast_kept;
                    continue;
                }
                // The general path after all (the form was being rewritten, or the packet does
                // not fit it): what prepare() and the classification skipped, for the config
                // published now (its flow policy included, when one came with it).
                prepare(ctx, m, pre[i], keys[i]);
                if (pre[i].prof != nullptr) {
                    const PolicyKey* key = &keys[i];
                    int rule = -1;
                    pre[i].prof->classify_burst(&key, &rule, 1);
                    pre[i].rule = rule;
                }
            }
            bool consumed = false;
            const DownlinkDrop why = encap_one(ctx, m, pre[i], t0, hz, consumed);
            if (why == DownlinkDrop::kCount) {
                pkts[kept++] = m;
            } else {
                ++ctx.drops[static_cast<std::size_t>(why)];
                if (!consumed) {
                    rte_pktmbuf_free(m);
                }
            }
        }
    }
    ctx.encapsulated += kept;
    ctx.events[static_cast<std::size_t>(DownlinkEvent::kFastForm)] += fast_kept;
    ctx.cycles.cycles += rte_rdtsc() - t0;
    ctx.cycles.packets += n;
    ++ctx.cycles.bursts;
    return kept;
}

}  // namespace hag::dp
