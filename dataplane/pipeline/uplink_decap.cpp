#include "pipeline/uplink_decap.hpp"

#include <rte_cycles.h>
#include <rte_ip.h>

#include <cstddef>
#include <type_traits>

#include "pipeline/packet.hpp"
#include "pipeline/relay.hpp"
#include "policy/classify.hpp"
#include "tables/nat_port.hpp"

namespace hag::dp {

namespace {

// Into all cache levels, to be written (rte_prefetch0_write is experimental in DPDK 22.11).
inline void prefetch_write(const void* p) noexcept {
    __builtin_prefetch(p, 1, 3);
}

// relay_from_anchor's verdict: relayed (kCount) marks the packet as in ctx.relay_downlink.
inline UplinkDrop relayed(UplinkDrop r, UplinkMeta& meta) noexcept {
    if (r == UplinkDrop::kCount) {
        meta.flags = UplinkMeta::kRelayed;
    }
    return r;
}

// The kept packet's meta data for the reorder, and its path's uplink counters (the session's
// totals are their sums). One writer, this worker (the session's owner): plain adds
// (session_table.hpp).
inline void keep_meta(UplinkCtx& ctx, const SessionConfig& cfg, SessionTable::SessionId id,
                      unsigned path, std::uint16_t bytes, UplinkMeta& meta) noexcept {
    SessionState& st = ctx.sessions_rw->state(id);
    meta.session = id;
    meta.incarnation = st.incarnation.load(std::memory_order_acquire);
    meta.timeout_us = cfg.reorder_timeout_us;
    meta.mode = cfg.reorder;
    meta.path = static_cast<std::uint8_t>(path);
    meta.live_mask = st.live_mask.load(std::memory_order_relaxed);  // on the state's line 0
    owner_add(st.uplink[path].packets, std::uint64_t{1});
    owner_add(st.uplink[path].bytes, std::uint64_t{bytes});
    meta.flags |= UplinkMeta::kKept;
}

// keep_meta for a packet that took the fast uplink form: the same fields, from the form and the
// session's UplinkHot record.
inline void keep_meta_fast(UplinkCtx& ctx, const UplinkWords& w, SessionTable::SessionId id,
                           std::uint16_t bytes, UplinkMeta& meta) noexcept {
    meta.session = id;
    meta.incarnation = w.incarnation();
    meta.timeout_us = w.timeout;
    meta.mode = w.mode();
    meta.path = 0;
    meta.live_mask = w.live_mask();
    PathTraffic& t = ctx.sessions_rw->uplink_hot(id).path0;
    owner_add(t.packets, std::uint64_t{1});
    owner_add(t.bytes, std::uint64_t{bytes});
    meta.flags |= UplinkMeta::kKept;
}

// The kept packet toward the core: everything before the inner packet and anything after it
// stripped, core Ethernet added (its next hop resolved, or resolution asked).
inline UplinkDrop to_core(UplinkCtx& ctx, rte_mbuf* m, const GreInIp& gre,
                          const L3Info& inner) noexcept {
    MacAddr next_hop_mac = ctx.core_next_hop_mac;  // a static MAC overrides resolution
    if (mac_zero(next_hop_mac)) {
        const NextHopTable::Index nh =
            inner.family == Family::kIpv4 ? ctx.core_next_hop_v4 : ctx.core_next_hop_v6;
        if (ctx.next_hops == nullptr || nh >= ctx.next_hops->capacity()) {
            return UplinkDrop::kNoNextHop;
        }
        if (!ctx.next_hops->mac(nh, next_hop_mac)) {
            ctx.next_hops->want(nh);
            return UplinkDrop::kNoNextHop;
        }
    }
    std::uint8_t* e = gre_inner_to_ethernet(m, gre, inner);
    if (e == nullptr) {
        return UplinkDrop::kNoHeadroom;
    }
    std::memcpy(e, next_hop_mac.data(), 6);
    std::memcpy(e + 6, ctx.core_src_mac.data(), 6);
    put16(e + 12, gre.proto);
    m->port = ctx.core_port;
    set_l2_l3_len(m, 14, inner.header_len);
    return UplinkDrop::kCount;
}

// `parsed` and `gre`: parse_gre_in_ip's verdict on m and what it found; `key_found` and
// `key_id`: the burst's bulk lookup of gre.key (meaningful when gre.has_key); `key_fast`: the
// key's bucket says its session has the fast uplink form.
inline UplinkDrop decap_one(UplinkCtx& ctx, rte_mbuf* m, GreParse parsed, const GreInIp& gre,
                            bool key_found, SessionTable::SessionId key_id, bool key_fast,
                            UplinkMeta& meta) noexcept {
    const auto* frame = rte_pktmbuf_mtod(m, const std::uint8_t*);
    const std::uint16_t frame_len = rte_pktmbuf_data_len(m);
    switch (parsed) {
        case GreParse::kOk:
            break;
        case GreParse::kMalformed:
            return UplinkDrop::kMalformed;
        case GreParse::kNotGre:
            return UplinkDrop::kNotGre;
        case GreParse::kOuterFragment:
            return UplinkDrop::kOuterFragment;
        case GreParse::kGreMalformed:
            return UplinkDrop::kGreMalformed;
        case GreParse::kGreChecksum:
            return UplinkDrop::kGreChecksum;
        case GreParse::kGreProtocol:
            return UplinkDrop::kGreProtocol;
        case GreParse::kUdpMalformed:
            return UplinkDrop::kUdpMalformed;
        case GreParse::kUdpChecksum:
            return UplinkDrop::kUdpChecksum;
        case GreParse::kKeepalive:
            ++ctx.events[static_cast<std::size_t>(UplinkEvent::kNatKeepalive)];
            return UplinkDrop::kCount;  // consumed: the caller frees it without a drop count
    }
    const L3Info& outer = gre.outer;
    const bool has_key = gre.has_key;
    meta.flags = 0;
    if (gre.has_seq) {
        meta.seq = gre.seq;
        meta.flags = UplinkMeta::kHasSeq;
    }

    SessionTable::SessionId id = 0;
    if (gre.ipip) {
        // IP in IP has no key: the session is the one whose prefixes hold the inner source (a
        // longest-prefix match, as the downlink does for destinations); the path check below
        // then wants the outer source to be one of its IP-in-IP paths. Not part of the burst's
        // bulk key lookup: this is a per-packet lookup.
        const L3Info in = parse_gre_inner(frame, frame_len, gre);
        if (!in.ok) {
            return UplinkDrop::kInnerMalformed;
        }
        if (!ctx.sessions->lookup_destination(in.src, id)) {
            return UplinkDrop::kIpInIpUnknown;
        }
    } else if (has_key) {
        if (!key_found) {  // lookup_uplink_key(key, id), done for the whole burst
            return UplinkDrop::kUnknownKey;
        }
        id = key_id;
        // The fast form: from the first path's care-of address, inner source in the first
        // prefix. A packet that is not, or whose form the writer is rewriting, takes the general
        // path below, which gives the verdict (UplinkWords, session_table.hpp).
        UplinkWords w;
        if (key_fast && !gre.udp && ctx.fast_path && ctx.sessions->uplink_form(id, w) &&
            w.from_coa(outer.src)) {
            const L3Info inner = parse_gre_inner(frame, frame_len, gre);
            if (!inner.ok) {
                return UplinkDrop::kInnerMalformed;
            }
            if (w.in_prefix(inner.src)) {
                if (!gre_ecn_to_inner(m, gre, inner)) {
                    return UplinkDrop::kEcnNotEct;
                }
                if (const UplinkDrop r = to_core(ctx, m, gre, inner); r != UplinkDrop::kCount) {
                    return r;
                }
                keep_meta_fast(ctx, w, id, inner.total_len, meta);
                ++ctx.events[static_cast<std::size_t>(UplinkEvent::kFastForm)];
                return UplinkDrop::kCount;
            }
        }
    } else if (!ctx.sessions->lookup_care_of(outer.src, id)) {
        // Keyless GRE from a remote anchor (pipeline/relay.hpp): found by inner destination.
        int a = -1;
        if (!anchor_keyless(ctx, frame, frame_len, gre, id, a)) {
            return UplinkDrop::kUnknownTunnel;
        }
        const SessionConfig* acfg = ctx.sessions->config(id);
        if (acfg == nullptr) {
            return UplinkDrop::kUnknownTunnel;
        }
        return relayed(relay_from_anchor(ctx, m, gre, *acfg, id, static_cast<unsigned>(a)), meta);
    }
    const SessionConfig* cfg = ctx.sessions->config(id);
    if (cfg == nullptr) {
        return UplinkDrop::kUnknownKey;
    }
    // A remote anchor's downlink key (distributed anchoring, pipeline/relay.hpp).
    if (has_key && cfg->n_anchors != 0) {
        if (const int a = anchor_of_key(*cfg, gre.key); a >= 0) {
            return relayed(relay_from_anchor(ctx, m, gre, *cfg, id, static_cast<unsigned>(a)),
                           meta);
        }
    }
    // A NATed path's packets come in UDP from its observed port; any other path's in plain GRE.
    unsigned path = kMaxPaths;
    const std::uint16_t udp_src = gre.udp ? gre.udp_src : 0;
    for (unsigned i = 0; i < cfg->n_paths; ++i) {
        if (cfg->paths[i].coa == outer.src && cfg->paths[i].udp_port == udp_src &&
            (cfg->paths[i].tunnel == Tunnel::kIpInIp) == gre.ipip) {
            path = i;
            break;
        }
    }
    // NAT rebinding (tables/nat_port.hpp): GRE in UDP with the session's key from the NAT's
    // address but another source port belongs to the one NATed path at that address, once the
    // inner source checks out below.
    if (path == kMaxPaths && gre.udp && has_key && ctx.nat_port_learning) {
        path = nat_float_path(*cfg, outer.src);
    }
    if (path == kMaxPaths) {
        return UplinkDrop::kSpoofedOuter;
    }

    // The inner packet must lie within the outer one; it is parsed like any IP packet.
    const std::uint16_t inner_off = gre.inner_off;
    const L3Info inner = parse_gre_inner(frame, frame_len, gre);
    if (!inner.ok) {
        return UplinkDrop::kInnerMalformed;
    }
    // The first prefix from its copy on a prefetched line (session_table.hpp), the others
    // from the prefixes' own lines.
    bool inside = cfg->n_prefixes != 0 && cfg->prefix_first.contains(inner.src);
    for (unsigned i = 1; i < cfg->n_prefixes && !inside; ++i) {
        inside = cfg->prefixes[i].contains(inner.src);
    }
    if (!inside) {
        return UplinkDrop::kSpoofedInner;
    }
    if (gre.udp && ctx.nat_port_learning &&
        nat_note_port(ctx.sessions_rw->state(id), path, cfg->paths[path], udp_src)) {
        ++ctx.events[static_cast<std::size_t>(UplinkEvent::kNatPortLearned)];
    }

    if (!gre_ecn_to_inner(m, gre, inner)) {
        return UplinkDrop::kEcnNotEct;
    }

    // A source in a prefix anchored at another node: relayed there (pipeline/relay.hpp), no
    // policy. Kept in the burst, already encapsulated, with mbuf->port the access port toward
    // the anchor: it passes the reorder with the session's other uplink packets (one sequence
    // space), then the worker sends it by its port (worker_send_core).
    if (cfg->n_anchors != 0) {
        if (const int a = anchor_of_source(*cfg, inner.src); a >= 0) {
            if (const UplinkDrop r =
                    relay_to_anchor(ctx, m, *cfg, id, static_cast<unsigned>(a), inner_off, inner);
                r != UplinkDrop::kCount) {
                return r;
            }
            keep_meta(ctx, *cfg, id, path, inner.total_len, meta);
            return UplinkDrop::kCount;
        }
    }

    // Flow policy: a packet on a path its rule does not allow is counted, and dropped when the
    // profile says so (policy/classify.hpp).
    if (cfg->policy != 0 && ctx.policies != nullptr) {
        if (const CompiledProfile* prof = ctx.policies->get(cfg->policy); prof != nullptr) {
            PolicyKey key;
            policy_key(rte_pktmbuf_mtod_offset(m, const std::uint8_t*, inner_off), inner, false,
                       key);
            if (const int r = prof->classify(key); r >= 0) {
                PolicyRuleCounters& rc = prof->counters[static_cast<std::size_t>(r)];
                rc.hits.fetch_add(1, std::memory_order_relaxed);
                if (!policy_allows(prof->rules[static_cast<std::size_t>(r)], cfg->paths[path])) {
                    rc.uplink_forbidden.fetch_add(1, std::memory_order_relaxed);
                    owner_add(ctx.sessions_rw->state(id).uplink_forbidden, std::uint64_t{1});
                    if (prof->drop_forbidden_uplink) {
                        return UplinkDrop::kPolicyForbidden;
                    }
                    ++ctx.policy_forbidden_forwarded;
                }
            }
        }
    }

    if (const UplinkDrop r = to_core(ctx, m, gre, inner); r != UplinkDrop::kCount) {
        return r;
    }
    keep_meta(ctx, *cfg, id, path, inner.total_len, meta);
    if (gre.udp) {
        ++ctx.events[static_cast<std::size_t>(UplinkEvent::kUdpDecapsulated)];
    }
    return UplinkDrop::kCount;
}

}  // namespace

uint16_t uplink_decap(UplinkCtx& ctx, rte_mbuf** pkts, uint16_t n, UplinkMeta* meta) noexcept {
    const std::uint64_t t0 = rte_rdtsc();
    uint16_t kept = 0;
    ctx.n_relay_downlink = 0;
    // In chunks: parse every packet's outer headers, look the GRE keys up in bulk
    // (the bulk lookup prefetches the buckets of all keys), prefetch each session's uplink
    // record and, for a session without the fast form, its config pointer and state, then its
    // config, then decapsulate; the chunk's cache and TLB
    // misses overlap instead of following one another packet by packet.
    constexpr uint16_t kChunk = 32;
    static_assert(kChunk <= SessionTable::kBulkMax);
    // Uninitialised storage (a default-constructed array zeroed it every burst, a memset
    // call): parse_gre_in_ip writes every field decap_one reads of a kOk (or kKeepalive)
    // packet, and decap_one reads nothing else of the others.
    static_assert(std::is_trivially_destructible_v<GreInIp>);
    alignas(GreInIp) unsigned char gre_bytes[sizeof(GreInIp) * kChunk];
    auto* const gre = reinterpret_cast<GreInIp*>(gre_bytes);
    GreParse parsed[kChunk];
    std::uint32_t keys[kChunk];
    SessionTable::SessionId ids[kChunk];
    for (uint16_t base = 0; base < n; base += kChunk) {
        const uint16_t k = static_cast<uint16_t>(n - base < kChunk ? n - base : kChunk);
        for (uint16_t i = 0; i < k; ++i) {
            rte_prefetch0(rte_pktmbuf_mtod(pkts[base + i], void*));
        }
        for (uint16_t i = 0; i < k; ++i) {
            rte_mbuf* m = pkts[base + i];
            parsed[i] = parse_gre_in_ip(
                rte_pktmbuf_mtod(m, const std::uint8_t*), rte_pktmbuf_data_len(m), gre[i],
                [](const std::uint8_t* q, std::size_t len) { return rte_raw_cksum(q, len); });
            // IP in IP has no key (decap_one finds its session by the inner source).
            keys[i] = parsed[i] == GreParse::kOk && gre[i].has_key ? gre[i].key : 0;
        }
        std::uint64_t fast = 0;
        const std::uint64_t found = ctx.sessions->lookup_uplink_key_bulk(keys, k, ids, &fast);
        fast = ctx.fast_path ? fast & found : 0;
        // The uplink record (fast form and its counters: one line) of every session whose key's
        // bucket says it has the form; then, for the packets the form will not take (by that
        // record read without its lock: a hint), what the general path reads.
        for (std::uint64_t f = fast; f != 0; f &= f - 1) {
            prefetch_write(&ctx.sessions->uplink_hot(ids[__builtin_ctzll(f)]));
        }
        std::uint64_t general = 0;
        for (std::uint64_t f = found; f != 0; f &= f - 1) {
            const unsigned i = static_cast<unsigned>(__builtin_ctzll(f));
            const SessionTable::SessionId id = ids[i];
            if ((fast >> i & 1U) != 0 && !gre[i].udp &&
                ctx.sessions->uplink_hint(id, gre[i].outer.src)) {
                continue;
            }
            general |= std::uint64_t{1} << i;
            const SessionState& st = ctx.sessions->state(id);
            // The config pointer, the incarnation and the counters of paths 1 and 2: one line
            // (session_table.hpp).
            prefetch_write(&st);
            // The config's usual place, next to the state (same page): fetched together
            // instead of after the pointer load.
            const auto* home = static_cast<const char*>(ctx.sessions->config_home(id));
            rte_prefetch0(home);
        }
        for (std::uint64_t f = general; f != 0; f &= f - 1) {
            if (const SessionConfig* c = ctx.sessions->config(ids[__builtin_ctzll(f)]);
                c != nullptr) {
                // The header, the first prefix's copy and what the uplink reads of the first
                // path: one line (session_table.hpp). A packet of another path, or with a
                // source in another prefix, reads their lines unprefetched.
                rte_prefetch0(c);
            }
        }
        for (uint16_t i = 0; i < k; ++i) {
            rte_mbuf* m = pkts[base + i];
            UplinkMeta one;
            const bool hit = (found >> i & 1U) != 0;  // ids[i] is set only for a hit
            const UplinkDrop why = decap_one(ctx, m, parsed[i], gre[i], hit, hit ? ids[i] : 0,
                                             (fast >> i & 1U) != 0, one);
            if (why == UplinkDrop::kCount && (one.flags & UplinkMeta::kRelayed) != 0) {
                // In ctx.relay_downlink (pipeline/relay.hpp).
            } else if (why == UplinkDrop::kCount && (one.flags & UplinkMeta::kKept) == 0) {
                rte_pktmbuf_free(m);  // consumed (a keepalive): neither kept nor a drop
            } else if (why == UplinkDrop::kCount) {
                one.flags = static_cast<std::uint8_t>(one.flags & ~UplinkMeta::kKept);
                if (meta != nullptr) {
                    meta[kept] = one;
                }
                pkts[kept++] = m;
            } else {
                ++ctx.drops[static_cast<std::size_t>(why)];
                rte_pktmbuf_free(m);
            }
        }
    }
    ctx.decapsulated += kept;
    ctx.cycles.cycles += rte_rdtsc() - t0;
    ctx.cycles.packets += n;
    ++ctx.cycles.bursts;
    return kept;
}

}  // namespace hag::dp
