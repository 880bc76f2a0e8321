#include "runtime/worker.hpp"

#include <time.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>

#include <fmt/format.h>

#include <algorithm>

#include "pipeline/fragment_parse.hpp"
#include "pipeline/packet.hpp"
#include "pipeline/parse.hpp"
#include "pipeline/reassembly.hpp"
#include "runtime/steer_parse.hpp"

namespace hag::dp {

namespace {

constexpr std::uint16_t kBurst = 32;
// Bursts a worker takes from each of its hand-over rings per poll iteration, at most.
constexpr int kHandoffBursts = 4;

// Sends `n` packets on `port`'s queue `txq` (tagged with `vlan` unless 0); what the ring does
// not take is freed and counted.
inline void send(std::uint16_t port, std::uint16_t txq, rte_mbuf** pkts, std::uint16_t n,
                 PortCounters& c, std::uint16_t vlan) {
    if (n == 0) {
        return;
    }
    if (vlan != 0) {
        n = add_port_vlan(vlan, pkts, n, c);
    }
    const std::uint16_t sent = rte_eth_tx_burst(port, txq, pkts, n);
    c.tx += sent;
    if (sent < n) {
        c.tx_full += n - sent;
        rte_pktmbuf_free_bulk(pkts + sent, n - sent);
    }
}

inline void send_view(Worker& w, const PortView& v, rte_mbuf** pkts, std::uint16_t n) {
    send(v.id, w.txq, pkts, n, *v.counters, v.vlan);
}

// Sends each packet by the port in its mbuf->port (set by the stages), keeping the order of
// the packets of each port. One comparison per packet when they all leave by one port.
void send_by_port(Worker& w, rte_mbuf** pkts, std::uint16_t n) {
    while (n > 0) {
        const std::uint16_t chunk = n < 64 ? n : 64;
        const std::uint16_t first = pkts[0]->port;
        std::uint16_t same = 1;
        while (same < chunk && pkts[same]->port == first) {
            ++same;
        }
        if (same == chunk) {
            const std::uint8_t v = first < RTE_MAX_ETHPORTS ? w.view_of[first] : 0;
            if (v == 0) {  // not a port of ours: cannot happen, but never leak
                rte_pktmbuf_free_bulk(pkts, chunk);
            } else {
                send_view(w, w.views[v - 1], pkts, chunk);
            }
        } else {
            // Several ports in the chunk: one pass per port of this worker.
            rte_mbuf* group[64];
            std::uint16_t done = 0;
            for (std::uint16_t vi = 0; vi < w.n_views; ++vi) {
                std::uint16_t k = 0;
                for (std::uint16_t i = 0; i < chunk; ++i) {
                    if (pkts[i]->port == w.views[vi].id) {
                        group[k++] = pkts[i];
                    }
                }
                done = static_cast<std::uint16_t>(done + k);
                send_view(w, w.views[vi], group, k);
            }
            if (done != chunk) {  // packets for a port this worker does not have
                for (std::uint16_t i = 0; i < chunk; ++i) {
                    const std::uint16_t p = pkts[i]->port;
                    if (p >= RTE_MAX_ETHPORTS || w.view_of[p] == 0) {
                        rte_pktmbuf_free(pkts[i]);
                    }
                }
            }
        }
        pkts += chunk;
        n = static_cast<std::uint16_t>(n - chunk);
    }
}

// Longest-prefix route of a decapsulated packet (core Ethernet header at offset 0): moves it to
// its route's core port (MACs rewritten); false = drop it (the next hop is not resolved).
bool apply_route(Worker& w, rte_mbuf* m) {
    const CoreRoutes& r = *w.routes;
    const auto* p = rte_pktmbuf_mtod(m, const std::uint8_t*);
    const std::uint16_t len = rte_pktmbuf_data_len(m);
    if (len < 14) {
        return true;
    }
    const L3Info l3 = parse_l3(p, len, 14, get16(p + 12));
    if (!l3.ok) {
        return true;
    }
    int best = -1;
    for (std::uint16_t i = 0; i < r.n_routes; ++i) {
        const CoreRoute& cr = r.routes[i];
        if (cr.prefix.addr.family == l3.dst.family && cr.prefix.contains(l3.dst) &&
            (best < 0 ||
             cr.prefix.length > r.routes[static_cast<std::size_t>(best)].prefix.length)) {
            best = i;
        }
    }
    if (best < 0) {
        return true;  // the first core port, as the stage made it
    }
    const CoreEgress& e = r.egress[r.routes[static_cast<std::size_t>(best)].egress];
    MacAddr mac = e.static_mac;
    if (mac_zero(mac)) {
        const NextHopTable::Index nh = l3.family == Family::kIpv4 ? e.next_hop_v4 : e.next_hop_v6;
        if (r.next_hops == nullptr || nh >= r.next_hops->capacity()) {
            return false;
        }
        if (!r.next_hops->mac(nh, mac)) {
            r.next_hops->want(nh);
            return false;
        }
    }
    auto* eth = rte_pktmbuf_mtod(m, std::uint8_t*);
    std::memcpy(eth, mac.data(), 6);
    std::memcpy(eth + 6, e.src_mac.data(), 6);
    m->port = e.port;
    return true;
}

// May an ICMP Time Exceeded answer this uplink packet? What icmp_may_answer (parse.hpp) says,
// and not for a multicast / broadcast destination (RFC 4443 §2.4, RFC 1812 §4.3.2.7).
bool uplink_icmp_may_answer(const std::uint8_t* ip, const L3Info& l3) noexcept {
    const auto& d = l3.dst.bytes;
    const bool group_destination =
        l3.family == Family::kIpv6 ? d[0] == 0xff
                                   : (d[0] & 0xf0) == 0xe0 || (d[0] & d[1] & d[2] & d[3]) == 0xff;
    return !group_destination && icmp_may_answer(ip, l3);
}

void process_downlink(Worker& w, rte_mbuf** pkts, std::uint16_t n) {
    send_by_port(w, pkts, downlink_encap(w.downlink, pkts, n));
    send_by_port(w, w.downlink.more_access.data(), w.downlink.n_more_access);
    // ICMP errors go back by the port the packet came from (mbuf->port unchanged).
    send_by_port(w, w.downlink.to_core.data(), w.downlink.n_to_core);
}

// What the uplink stage took from remote anchors (distributed anchoring, pipeline/relay.hpp):
// the downlink stage sends it on to the subscriber.
void send_relayed(Worker& w) {
    if (const std::uint16_t n = w.uplink.n_relay_downlink; n != 0) {
        std::array<rte_mbuf*, UplinkCtx::kRelayMax> down;
        std::copy_n(w.uplink.relay_downlink.begin(), n, down.begin());
        w.uplink.n_relay_downlink = 0;
        for (std::uint16_t i = 0; i < n; i = static_cast<std::uint16_t>(i + kBurst)) {
            process_downlink(w, down.data() + i, std::min<std::uint16_t>(kBurst, n - i));
        }
    }
}

void process_uplink(Worker& w, rte_mbuf** pkts, std::uint16_t n) {
    if (w.reorder != nullptr) {
        UplinkMeta meta[kBurst];
        n = uplink_decap(w.uplink, pkts, n, meta);
        send_relayed(w);
        w.reorder->process(pkts, meta, n, rte_rdtsc());
    } else {
        n = uplink_decap(w.uplink, pkts, n);
        send_relayed(w);
        worker_send_core(&w, pkts, n);
    }
}

// Hands the packets of other workers' sessions to their owners; keeps this worker's (and
// those of no session: the stage drops and counts them) at the front. Returns how many stay.
std::uint16_t steer(Worker& w, bool downlink, rte_mbuf** pkts, std::uint16_t n) {
    const Handoff& h = *w.handoff;
    const SessionTable& t = downlink ? *w.downlink.sessions : *w.uplink.sessions;
    std::array<std::array<rte_mbuf*, kBurst>, kMaxWorkers> out;
    std::array<std::uint16_t, kMaxWorkers> count{};
    std::uint16_t kept = 0;
    for (std::uint16_t i = 0; i < n; ++i) {
        rte_mbuf* m = pkts[i];
        std::uint32_t id = 0;
        const bool found = downlink ? downlink_session(t, m, id) : uplink_session(t, m, id);
        const std::uint16_t o = found ? owner_of(id, h.workers()) : w.index;
        if (o == w.index) {
            pkts[kept++] = m;
        } else {
            out[o][count[o]++] = m;
        }
    }
    for (std::uint16_t o = 0; o < h.workers(); ++o) {
        if (count[o] == 0) {
            continue;
        }
        rte_ring* ring = downlink ? h.downlink(o) : h.uplink(o);
        const unsigned enq = rte_ring_enqueue_burst(ring, reinterpret_cast<void**>(out[o].data()),
                                                    count[o], nullptr);
        (downlink ? w.steer.handed_downlink : w.steer.handed_uplink) += enq;
        if (enq < count[o]) {
            w.steer.handoff_full += count[o] - enq;
            rte_pktmbuf_free_bulk(out[o].data() + enq, count[o] - enq);
        }
    }
    return kept;
}

// A burst received on access port view `v` (or, for reassembled packets, as if received there):
// the exception path, steering to the session's owner, the uplink.
void process_access(Worker& w, PortView& v, rte_mbuf** pkts, std::uint16_t n) {
    n = exception_punt(*v.exc, pkts, n);
    if (w.handoff != nullptr) {
        n = steer(w, false, pkts, n);
    }
    process_uplink(w, pkts, n);
}

// Fragments other workers handed to this one: reassembled here, and each whole packet goes on
// as if received on its port.
bool take_handed_fragments(Worker& w) {
    rte_mbuf* pkts[kBurst];
    const auto n = static_cast<std::uint16_t>(rte_ring_dequeue_burst(
        w.handoff->fragments(w.index), reinterpret_cast<void**>(pkts), kBurst, nullptr));
    if (n == 0) {
        return false;
    }
    Reassembly& r = *w.reassembly;
    r.count(ReassemblyEvent::kReceived, n);
    const std::uint64_t now = rte_rdtsc();
    std::uint16_t k = 0;
    for (std::uint16_t i = 0; i < n; ++i) {
        rte_mbuf* m = pkts[i];
        OuterFragment f;
        const FragParse v = parse_outer_fragment(rte_pktmbuf_mtod(m, const std::uint8_t*),
                                                 rte_pktmbuf_data_len(m), f);
        if (v == FragParse::kNone) {
            pkts[k++] = m;  // cannot happen: the sender parsed it the same way
            continue;
        }
        if (rte_mbuf* whole = r.add(m, v, f, now); whole != nullptr) {
            pkts[k++] = whole;
        }
    }
    r.cycles.cycles += rte_rdtsc() - now;
    ++r.cycles.bursts;
    // By port (the packets of one port keep their order).
    std::uint16_t done = 0;
    for (std::uint16_t vi = 0; vi < w.n_views && done < k; ++vi) {
        PortView& v = w.views[vi];
        rte_mbuf* group[kBurst];
        std::uint16_t g = 0;
        for (std::uint16_t i = 0; i < k; ++i) {
            if (pkts[i]->port == v.id) {
                group[g++] = pkts[i];
            }
        }
        if (g != 0) {
            done = static_cast<std::uint16_t>(done + g);
            if (v.access) {
                process_access(w, v, group, g);
            } else {
                rte_pktmbuf_free_bulk(group, g);
            }
        }
    }
    if (done != k) {
        for (std::uint16_t i = 0; i < k; ++i) {
            const std::uint16_t p = pkts[i]->port;
            if (p >= RTE_MAX_ETHPORTS || w.view_of[p] == 0) {
                rte_pktmbuf_free(pkts[i]);
            }
        }
    }
    return true;
}

}  // namespace

std::uint16_t take_fragments(Worker& w, rte_mbuf** pkts, std::uint16_t n, std::uint64_t now) {
    Reassembly& r = *w.reassembly;
    std::array<std::array<rte_mbuf*, kBurst>, kMaxWorkers> out;
    std::array<std::uint16_t, kMaxWorkers> count{};
    bool any_out = false;
    bool any_frag = false;
    std::uint16_t kept = 0;
    for (std::uint16_t i = 0; i < n; ++i) {
        rte_mbuf* m = pkts[i];
        const auto* p = rte_pktmbuf_mtod(m, const std::uint8_t*);
        const std::uint16_t len = rte_pktmbuf_data_len(m);
        OuterFragment f;
        const FragParse v =
            maybe_outer_fragment(p, len) ? parse_outer_fragment(p, len, f) : FragParse::kNone;
        if (v == FragParse::kNone) {
            pkts[kept++] = m;
            continue;
        }
        any_frag = true;
        if (w.handoff != nullptr && v == FragParse::kFragment && n <= kBurst) {  // (out's size)
            const auto o = static_cast<std::uint16_t>(f.hash % w.handoff->workers());
            if (o != w.index) {
                out[o][count[o]++] = m;
                any_out = true;
                continue;
            }
        }
        const std::uint64_t t0 = rte_rdtsc();
        rte_mbuf* whole = r.add(m, v, f, now);
        r.cycles.cycles += rte_rdtsc() - t0;
        if (whole != nullptr) {
            pkts[kept++] = whole;
        }
    }
    if (any_frag) {
        ++r.cycles.bursts;  // a burst with fragments in it
    }
    if (any_out) {
        for (std::uint16_t o = 0; o < w.handoff->workers(); ++o) {
            if (count[o] == 0) {
                continue;
            }
            const unsigned enq =
                rte_ring_enqueue_burst(w.handoff->fragments(o),
                                       reinterpret_cast<void**>(out[o].data()), count[o], nullptr);
            r.count(ReassemblyEvent::kHanded, enq);
            if (enq < count[o]) {
                r.count(ReassemblyDrop::kHandoffFull, count[o] - enq);
                rte_pktmbuf_free_bulk(out[o].data() + enq, count[o] - enq);
            }
        }
    }
    return kept;
}

Result<std::unique_ptr<Handoff>, std::string> Handoff::create(std::uint16_t workers,
                                                              std::uint32_t ring_size,
                                                              const std::string& name) {
    if (workers == 0 || workers > kMaxWorkers) {
        return unexpected(fmt::format("{} workers: 1-{} allowed", workers, kMaxWorkers));
    }
    auto h = std::make_unique<Handoff>();
    h->n_ = workers;
    for (std::uint16_t i = 0; i < workers; ++i) {
        for (const char kind : {'d', 'u', 'f'}) {
            const std::string n = fmt::format("{}_{}{}", name, kind, i);
            rte_ring* r = rte_ring_create(n.c_str(), ring_size, SOCKET_ID_ANY, RING_F_SC_DEQ);
            if (r == nullptr) {
                return unexpected(fmt::format("cannot create the hand-over ring {}: {}", n,
                                              rte_strerror(rte_errno)));
            }
            (kind == 'd' ? h->down_ : kind == 'u' ? h->up_ : h->frag_)[i] = r;
        }
    }
    return h;
}

Handoff::~Handoff() {
    for (std::uint16_t i = 0; i < n_; ++i) {
        for (rte_ring* r : {down_[i], up_[i], frag_[i]}) {
            if (r == nullptr) {
                continue;
            }
            void* m = nullptr;
            while (rte_ring_dequeue(r, &m) == 0) {
                rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
            }
            rte_ring_free(r);
        }
    }
}

const PortCounters* Worker::port_counters(std::uint16_t id) const noexcept {
    if (id == core_port) {
        return &core;
    }
    if (id == access_port) {
        return &access;
    }
    for (std::uint16_t i = 0; i < n_extra; ++i) {
        if (extra[i].id == id) {
            return &extra[i].counters;
        }
    }
    return nullptr;
}

std::uint16_t add_port_vlan(std::uint16_t vlan, rte_mbuf** pkts, std::uint16_t n, PortCounters& c) {
    std::uint16_t kept = 0;
    for (std::uint16_t i = 0; i < n; ++i) {
        rte_mbuf* m = pkts[i];
        const auto* e = rte_pktmbuf_mtod(m, const std::uint8_t*);
        const bool tagged = rte_pktmbuf_data_len(m) >= 14 &&
                            ((e[12] == 0x81 && e[13] == 0x00) || (e[12] == 0x88 && e[13] == 0xa8));
        if (!tagged) {
            m->vlan_tci = vlan;
            if (rte_vlan_insert(&m) != 0) {
                ++c.tx_vlan_errors;
                rte_pktmbuf_free(m);
                continue;
            }
        }
        pkts[kept++] = m;
    }
    return kept;
}

bool downlink_session(const SessionTable& t, const rte_mbuf* m, std::uint32_t& id) noexcept {
    const SteerKey k =
        downlink_steer_key(rte_pktmbuf_mtod(m, const std::uint8_t*), rte_pktmbuf_data_len(m));
    return k.kind == SteerKey::Kind::kDestination && t.lookup_destination(k.addr, id);
}

bool uplink_session(const SessionTable& t, const rte_mbuf* m, std::uint32_t& id) noexcept {
    const SteerKey k =
        uplink_steer_key(rte_pktmbuf_mtod(m, const std::uint8_t*), rte_pktmbuf_data_len(m));
    switch (k.kind) {
        case SteerKey::Kind::kUplinkKey:
            return t.lookup_uplink_key(k.key, id);
        case SteerKey::Kind::kCareOf:
            // Keyless tunnel; from a remote anchor (no care-of address): the inner destination.
            return t.lookup_care_of(k.addr, id) ||
                   (k.inner_dst.family != Family::kNone && t.lookup_destination(k.inner_dst, id));
        case SteerKey::Kind::kInnerSource:
            return t.lookup_destination(k.addr, id);  // IP in IP: the subscriber's prefix
        default:
            return false;
    }
}

void prepare_worker(Worker& w) {
    w.n_views = 0;
    w.view_of.fill(0);
    auto add = [&w](std::uint16_t id, std::uint16_t vlan, std::uint16_t rxq, bool access,
                    PortCounters* c, PuntCtx* exc) {
        if (id >= RTE_MAX_ETHPORTS || w.view_of[id] != 0 || w.n_views >= w.views.size()) {
            return;
        }
        w.views[w.n_views] = {id, vlan, rxq, access, c, exc};
        w.view_of[id] = static_cast<std::uint8_t>(++w.n_views);
    };
    add(w.core_port, w.core_vlan, w.core_rxq, false, &w.core, &w.core_exc);
    add(w.access_port, w.access_vlan, w.access_rxq, true, &w.access, &w.access_exc);
    for (std::uint16_t i = 0; i < w.n_extra; ++i) {
        ExtraPort& e = w.extra[i];
        add(e.id, e.vlan, e.rxq, e.access, &e.counters, &e.exc);
    }
}

bool uplink_ttl(Worker& w, rte_mbuf* m, std::uint64_t& now, bool* icmp) noexcept {
    *icmp = false;
    auto* p = rte_pktmbuf_mtod(m, std::uint8_t*);
    const std::uint16_t len = rte_pktmbuf_data_len(m);
    if (len < 14) {
        return true;
    }
    const std::uint16_t ether_type = get16(p + 12);
    // Every packet passes here: check only what parse_l3 would (l3_valid), and parse the
    // addresses only for a packet that expires.
    if (!l3_valid(p, len, 14, ether_type)) {
        return true;
    }
    std::uint8_t* ip = p + 14;
    const bool v6 = ether_type == kEtherIpv6;
    std::uint8_t& ttl = v6 ? ip[7] : ip[8];
    if (ttl > 1) {
        if (v6) {
            --ttl;
        } else {
            ipv4_decrement_ttl(ip);
        }
        return true;
    }
    ++w.uplink_ttl_expired;
    const L3Info l3 = parse_l3(p, len, 14, ether_type);  // ok: l3_valid said so
    const IpAddr& src = v6 ? w.downlink.icmp_src_v6 : w.downlink.icmp_src_v4;
    if (src.family != l3.family || !uplink_icmp_may_answer(ip, l3)) {
        return false;
    }
    // One GCRA bucket for these errors, at the downlink's rate.
    const std::uint32_t rate = w.downlink.icmp_per_second;
    if (rate == 0) {
        return false;
    }
    const std::uint64_t cost = rte_get_tsc_hz() / rate;
    if (now == 0) {
        now = rte_rdtsc();  // read once per burst, and only when a packet expires
    }
    if (w.uplink_icmp_tat < now) {
        w.uplink_icmp_tat = now;
    }
    if (w.uplink_icmp_tat - now + cost > cost * rate) {
        return false;
    }
    const std::uint16_t hdr = v6 ? 40 + 8 : 20 + 8;
    const std::uint16_t quote =
        std::min<std::uint16_t>(l3.total_len, static_cast<std::uint16_t>((v6 ? 1280 : 576) - hdr));
    if (rte_pktmbuf_headroom(m) < hdr) {
        return false;
    }
    w.uplink_icmp_tat += cost;
    rte_pktmbuf_adj(m, 14);
    rte_pktmbuf_trim(m, static_cast<std::uint16_t>(rte_pktmbuf_pkt_len(m) - quote));
    auto* h = reinterpret_cast<std::uint8_t*>(
        rte_pktmbuf_prepend(m, static_cast<std::uint16_t>(14 + hdr)));
    // An Ethernet header as if the error came from the core side (the downlink stage replaces it).
    std::memcpy(h, w.uplink.core_src_mac.data(), 6);
    std::memcpy(h + 6, w.uplink.core_src_mac.data(), 6);
    put16(h + 12, v6 ? kEtherIpv6 : kEtherIpv4);
    std::uint8_t* o = h + 14;
    std::uint8_t* ic = o + hdr - 8;
    ic[0] = v6 ? 3 : 11;  // Time Exceeded, hop limit / TTL exceeded in transit
    ic[1] = 0;
    put16(ic + 2, 0);
    put32(ic + 4, 0);
    if (v6) {
        put32(o, 6u << 28);
        put16(o + 4, static_cast<std::uint16_t>(8 + quote));
        o[6] = 58;
        o[7] = 64;
        std::memcpy(o + 8, src.bytes.data(), 16);
        std::memcpy(o + 24, l3.src.bytes.data(), 16);
        const std::uint16_t c = rte_ipv6_udptcp_cksum(reinterpret_cast<const rte_ipv6_hdr*>(o), ic);
        std::memcpy(ic + 2, &c, sizeof c);
    } else {
        o[0] = 0x45;
        o[1] = 0;
        put16(o + 2, static_cast<std::uint16_t>(hdr + quote));
        put32(o + 4, 0);
        o[8] = 64;
        o[9] = 1;
        put16(o + 10, 0);
        std::memcpy(o + 12, src.bytes.data(), 4);
        std::memcpy(o + 16, l3.src.bytes.data(), 4);
        const std::uint16_t c = rte_ipv4_cksum(reinterpret_cast<const rte_ipv4_hdr*>(o));
        std::memcpy(o + 10, &c, sizeof c);
        const auto icc = static_cast<std::uint16_t>(~rte_raw_cksum(ic, 8u + quote));
        std::memcpy(ic + 2, &icc, sizeof icc);
    }
    set_l2_l3_len(m, 14, v6 ? 40 : 20);
    ++w.uplink_time_exceeded_sent;
    *icmp = true;
    return false;
}

void worker_send_core(void* arg, rte_mbuf** pkts, std::uint16_t n) {
    auto& w = *static_cast<Worker*>(arg);
    const bool routed = w.routes != nullptr && w.routes->n_routes != 0;
    // One pass over the burst (each packet's headers are read once, while in L1):
    // - relayed toward a remote anchor (pipeline/relay.hpp): encapsulated already, by the access
    //   port the stage chose; no inner TTL, no core route;
    // - inner TTL / hop limit; expired ones become Time Exceeded toward the subscriber, which
    //   take the downlink stage (encapsulated toward the subscriber's care-of address);
    // - the core route of the rest.
    // Sent in that order: the relayed, the errors, then the packets to the core.
    rte_mbuf* relay[kBurst];
    rte_mbuf* errors[kBurst];
    std::uint16_t n_relay = 0, n_errors = 0, kept = 0;
    std::uint64_t now = 0;  // the TSC, read only if a packet expires (~60 cycles a read here)
    for (std::uint16_t i = 0; i < n; ++i) {
        rte_mbuf* m = pkts[i];
        if (m->port != w.uplink.core_port) {
            relay[n_relay++] = m;
            if (n_relay == kBurst) {
                send_by_port(w, relay, n_relay);
                n_relay = 0;
            }
            continue;
        }
        bool icmp = false;
        if (!uplink_ttl(w, m, now, &icmp)) {
            if (!icmp) {
                rte_pktmbuf_free(m);
                continue;
            }
            errors[n_errors++] = m;
            if (n_errors == kBurst) {
                process_downlink(w, errors, n_errors);
                n_errors = 0;
            }
            continue;
        }
        if (routed && !apply_route(w, m)) {
            ++w.route_no_next_hop;
            rte_pktmbuf_free(m);
            continue;
        }
        pkts[kept++] = m;
    }
    send_by_port(w, relay, n_relay);
    if (n_errors != 0) {
        process_downlink(w, errors, n_errors);
    }
    send_by_port(w, pkts, kept);
}

// Up to kHandoffBursts bursts from hand-over ring `r` (what other workers received for this
// worker's sessions), each counted in `received` and run through `process`. True when any.
static bool take_handed(Worker& w, rte_ring* r, rte_mbuf** pkts, Counter& received,
                        void (*process)(Worker&, rte_mbuf**, std::uint16_t)) {
    bool any = false;
    for (int b = 0; b < kHandoffBursts; ++b) {
        const auto n = static_cast<std::uint16_t>(
            rte_ring_dequeue_burst(r, reinterpret_cast<void**>(pkts), kBurst, nullptr));
        if (n == 0) {
            break;
        }
        any = true;
        received += n;
        process(w, pkts, n);
    }
    return any;
}

int worker_main(void* arg) {
    auto& w = *static_cast<Worker*>(arg);
    prepare_worker(w);
    w.rcu->register_reader(w.rcu_thread);  // main registers workers before launch too
    rte_mbuf* pkts[kBurst];
    std::uint32_t idle_polls = 0;
    while (!w.stop->load(std::memory_order_relaxed)) {
        bool busy = false;
        if (w.handoff != nullptr) {
            // What the other workers received for this worker's sessions, taken before the RX
            // queues and up to kHandoffBursts bursts per ring: packets another worker already
            // paid for are not dropped when this one is overloaded (overload then shows at the
            // RX queues, as rx_missed).
            busy |= take_handed(w, w.handoff->downlink(w.index), pkts, w.steer.received_downlink,
                                process_downlink);
            busy |= take_handed(w, w.handoff->uplink(w.index), pkts, w.steer.received_uplink,
                                process_uplink);
            if (w.reassembly != nullptr) {
                for (int b = 0; b < kHandoffBursts && take_handed_fragments(w); ++b) {
                    busy = true;
                }
            }
        }
        for (std::uint16_t vi = 0; vi < w.n_views; ++vi) {
            PortView& v = w.views[vi];
            if (v.rxq == kNoQueue) {
                continue;
            }
            std::uint16_t n = rte_eth_rx_burst(v.id, v.rxq, pkts, kBurst);
            if (n == 0) {
                continue;
            }
            busy = true;
            v.counters->rx += n;
            if (v.access) {
                if (w.reassembly != nullptr) {
                    n = take_fragments(w, pkts, n, rte_rdtsc());
                }
                process_access(w, v, pkts, n);
                continue;
            }
            n = exception_punt(*v.exc, pkts, n);
            if (w.handoff != nullptr) {
                n = steer(w, true, pkts, n);
            }
            process_downlink(w, pkts, n);
        }
        if (w.reassembly != nullptr) {
            w.reassembly->expire(rte_rdtsc());
        }
        if (w.reorder != nullptr) {
            // Gaps whose wait is over: one heap peek when none is due. While packets are
            // held the worker does not sleep, so a timeout is served within one iteration.
            w.reorder->expire(rte_rdtsc());
            busy |= w.reorder->held_packets() != 0;
        }
        // What the kernel wrote to the ports' TAPs leaves by the ports (one worker dequeues
        // each port's ring: the others have no from_kernel ring).
        for (std::uint16_t vi = 0; vi < w.n_views; ++vi) {
            PortView& v = w.views[vi];
            const std::uint16_t n = exception_from_kernel(*v.exc, pkts, kBurst);
            busy |= n > 0;
            send_view(w, v, pkts, n);
        }
        w.rcu->quiescent(w.rcu_thread);
        idle_polls = busy ? 0 : idle_polls + 1;
        if (w.idle_sleep_us != 0 && idle_polls >= kIdlePolls) {
            // Quiescent was reported above, so a sleeping worker never holds up reclamation.
            const timespec ts{0, static_cast<long>(w.idle_sleep_us) * 1000};
            nanosleep(&ts, nullptr);
        }
    }
    if (w.reorder != nullptr) {
        w.reorder->drop_all();  // held packets are freed, counted as `shutdown`
    }
    w.rcu->unregister_reader(w.rcu_thread);
    return 0;
}

}  // namespace hag::dp
