#include "telemetry/collector.hpp"

#include <rte_cycles.h>
#include <rte_ethdev.h>

#include <algorithm>

#include "pipeline/reassembly.hpp"
#include "runtime/text.hpp"

namespace hag::dp {

namespace {

// RAII: the collector's RCU reader is online only while it holds session configs.
class ReadSection {
  public:
    ReadSection(Rcu* rcu, std::uint32_t id) : rcu_(rcu), id_(id) {
        rte_rcu_qsbr_thread_online(rcu_->qsbr(), id_);
    }
    ~ReadSection() { rte_rcu_qsbr_thread_offline(rcu_->qsbr(), id_); }
    ReadSection(const ReadSection&) = delete;
    ReadSection& operator=(const ReadSection&) = delete;

  private:
    Rcu* rcu_;
    std::uint32_t id_;
};

template <typename Names, typename Texts>
StageSnapshot stage(std::string_view name, const Names& names, const Texts& texts) {
    StageSnapshot st;
    st.name = name;
    for (std::size_t i = 0; i < names.size(); ++i)
        st.drops.push_back({names[i], texts[i], 0});
    return st;
}

template <typename Counters>
void add_drops(StageSnapshot& st, const Counters& c) {
    for (std::size_t i = 0; i < c.size() && i < st.drops.size(); ++i)
        st.drops[i].count += c[i].read();
}

void add_cycles(StageSnapshot& st, const StageCycles& c) {
    st.packets += c.packets.read();
    st.cycles += c.cycles.read();
    st.bursts += c.bursts.read();
}

}  // namespace

Collector::Collector(std::vector<PortInfo> ports, const SessionTable* sessions, Rcu* rcu,
                     std::uint32_t reader_id)
    : ports_(std::move(ports)), sessions_(sessions), rcu_(rcu), reader_id_(reader_id) {
    if (rcu_ != nullptr) {
        rte_rcu_qsbr_thread_register(rcu_->qsbr(), reader_id_);  // offline until it reads
    }
}

Collector::~Collector() {
    if (rcu_ != nullptr) {
        rte_rcu_qsbr_thread_unregister(rcu_->qsbr(), reader_id_);
    }
}

void Collector::set_policies(const PolicyTable* p) {
    std::lock_guard lock(mu_);
    policies_ = p;
}

void Collector::add_worker(const Worker* w) {
    std::lock_guard lock(mu_);
    workers_.push_back(w);
}

void Collector::sum_workers(Snapshot& s) const {
    s.workers = static_cast<unsigned>(workers_.size());
    StageSnapshot down = stage("downlink_encap", DownlinkDrop_names, DownlinkDrop_texts);
    StageSnapshot up = stage("uplink_decap", UplinkDrop_names, UplinkDrop_texts);
    for (std::size_t i = 0; i < DownlinkEvent_names.size(); ++i)
        down.events.push_back({DownlinkEvent_names[i], DownlinkEvent_texts[i], 0});
    for (std::size_t i = 0; i < UplinkEvent_names.size(); ++i)
        up.events.push_back({UplinkEvent_names[i], UplinkEvent_texts[i], 0});
    for (const Worker* w : workers_) {
        add_drops(down, w->downlink.drops);
        for (std::size_t i = 0; i < down.events.size(); ++i)
            down.events[i].count += w->downlink.events[i].read();
        add_cycles(down, w->downlink.cycles);
        down.forwarded += w->downlink.encapsulated.read();
        add_drops(up, w->uplink.drops);
        for (std::size_t i = 0; i < up.events.size(); ++i)
            up.events[i].count += w->uplink.events[i].read();
        add_cycles(up, w->uplink.cycles);
        up.forwarded += w->uplink.decapsulated.read();
        WorkerSnapshot ws;
        ws.index = w->index;
        ws.handed_downlink = w->steer.handed_downlink.read();
        ws.handed_uplink = w->steer.handed_uplink.read();
        ws.received_downlink = w->steer.received_downlink.read();
        ws.received_uplink = w->steer.received_uplink.read();
        ws.handoff_full = w->steer.handoff_full.read();
        ws.route_no_next_hop = w->route_no_next_hop.read();
        ws.uplink_ttl_expired = w->uplink_ttl_expired.read();
        ws.uplink_time_exceeded_sent = w->uplink_time_exceeded_sent.read();
        for (auto& p : s.ports) {
            if (const PortCounters* c = w->port_counters(p.id); c != nullptr) {
                ws.rx += c->rx.read();
                ws.tx += c->tx.read();
                p.worker_rx += c->rx.read();
                p.worker_tx += c->tx.read();
                p.tx_ring_full += c->tx_full.read();
                p.tx_vlan_errors += c->tx_vlan_errors.read();
            }
        }
        s.worker_stats.push_back(ws);
    }
    s.stages.push_back(std::move(down));
    s.stages.push_back(std::move(up));
    sum_reorder(s);
    sum_reassembly(s);
}

// Outer fragment reassembly (pipeline/reassembly.hpp): packets = fragments in, forwarded =
// whole packets out; a stage only when some worker reassembles.
void Collector::sum_reassembly(Snapshot& s) const {
    StageSnapshot st = stage("uplink_reassembly", ReassemblyDrop_names, ReassemblyDrop_texts);
    for (std::size_t i = 0; i < ReassemblyEvent_names.size(); ++i)
        st.events.push_back({ReassemblyEvent_names[i], ReassemblyEvent_texts[i], 0});
    bool any = false;
    for (const Worker* w : workers_) {
        if (w->reassembly == nullptr) {
            continue;
        }
        any = true;
        const Reassembly& r = *w->reassembly;
        add_drops(st, r.drops);
        add_cycles(st, r.cycles);
        for (std::size_t i = 0; i < st.events.size(); ++i)
            st.events[i].count += r.events[i].read();
        st.forwarded += r.events[static_cast<std::size_t>(ReassemblyEvent::kReassembled)].read() +
                        r.events[static_cast<std::size_t>(ReassemblyEvent::kAtomic)].read();
    }
    if (any) {
        s.stages.push_back(std::move(st));
    }
}

void Collector::sum_reorder(Snapshot& s) const {
    bool any = false;
    StageSnapshot st = stage("uplink_reorder", ReorderDrop_names, ReorderDrop_texts);
    struct Event {
        std::string_view name, help;
        Counter ReorderCounters::*field;
    };
    static constexpr Event kEvents[] = {
        {"passthrough", "no sequence number, or reorder off for the session",
         &ReorderCounters::passthrough},
        {"in_order", "released at once: the next number expected", &ReorderCounters::in_order},
        {"held", "held behind a missing number", &ReorderCounters::held},
        {"late_forwarded", "late (number given up), forwarded by late_policy FORWARD",
         &ReorderCounters::late_forwarded},
        {"gaps_skipped", "gaps given up at once: every live path was past them",
         &ReorderCounters::gaps_skipped},
        {"gaps_timed_out", "gaps given up after the timeout", &ReorderCounters::gaps_timed_out},
        {"lost", "sequence numbers given up as lost", &ReorderCounters::lost},
        {"session_overflow", "a number beyond session_packets: the session advanced to it",
         &ReorderCounters::session_overflow},
        {"global_overflow", "global_packets held or no buffer free: the session advanced",
         &ReorderCounters::global_overflow},
        {"resyncs", "a session's sequence space started over (new session, counter restart)",
         &ReorderCounters::resyncs},
    };
    std::vector<ReorderSnapshot> events;
    for (const auto& e : kEvents) {
        events.push_back({e.name, e.help, 0});
    }
    for (const Worker* w : workers_) {
        if (w->reorder == nullptr) {
            continue;
        }
        any = true;
        const ReorderCounters& c = w->reorder->counters();
        add_drops(st, c.drops);
        add_cycles(st, c.cycles);
        st.forwarded += c.released.read();
        for (std::size_t i = 0; i < std::size(kEvents); ++i) {
            events[i].count += (c.*kEvents[i].field).read();
        }
    }
    if (any) {
        s.stages.push_back(std::move(st));
        s.reorder = std::move(events);
    }
}

void Collector::fill_ethdev(Snapshot& s) const {
    for (auto& p : s.ports) {
        rte_eth_stats st{};
        if (rte_eth_dev_is_valid_port(p.id) == 0 || rte_eth_stats_get(p.id, &st) != 0) {
            continue;
        }
        p.has_ethdev = true;
        p.rx_packets = st.ipackets;
        p.tx_packets = st.opackets;
        p.rx_bytes = st.ibytes;
        p.tx_bytes = st.obytes;
        p.rx_missed = st.imissed;
        p.rx_errors = st.ierrors;
        p.tx_errors = st.oerrors;
        p.rx_nombuf = st.rx_nombuf;
    }
}

SessionSnapshot Collector::session_locked(std::uint32_t id, const SessionConfig& cfg) const {
    const SessionState& st = sessions_->state(id);
    SessionSnapshot s;
    s.id = id;
    s.uplink_key = cfg.uplink_key;
    const SessionTotals totals = sessions_->totals(id);
    s.downlink_packets = totals.downlink_packets;
    s.downlink_bytes = totals.downlink_bytes;
    s.uplink_packets = totals.uplink_packets;
    s.uplink_bytes = totals.uplink_bytes;
    s.reorder_lost = st.reorder_lost.load(std::memory_order_relaxed);
    s.reorder_timeouts = st.reorder_timeouts.load(std::memory_order_relaxed);
    s.reorder_duplicates = st.reorder_duplicates.load(std::memory_order_relaxed);
    s.reorder_overflow = st.reorder_overflow.load(std::memory_order_relaxed);
    s.policy_drops = st.policy_drops.load(std::memory_order_relaxed);
    s.policy_pinned = st.policy_pinned.load(std::memory_order_relaxed);
    s.uplink_forbidden = st.uplink_forbidden.load(std::memory_order_relaxed);
    for (unsigned i = 0; i < cfg.n_paths && i < kMaxPaths; ++i) {
        const PathConfig& pc = cfg.paths[i];
        PathSnapshot p;
        p.bid = pc.bid;
        p.if_label = pc.if_label;
        p.live = pc.live;
        p.care_of = to_string(pc.coa);
        const PathTraffic& down = sessions_->downlink_traffic(id, i);
        const PathCounts up = sessions_->uplink_counts(id, i);
        p.downlink_packets = down.packets.load(std::memory_order_relaxed);
        p.downlink_bytes = down.bytes.load(std::memory_order_relaxed);
        p.uplink_packets = up.packets;
        p.uplink_bytes = up.bytes;
        p.seq_gaps = st.path_seq_gaps[i].load(std::memory_order_relaxed);
        p.reordered = st.path_reordered[i].load(std::memory_order_relaxed);
        p.late = st.path_late[i].load(std::memory_order_relaxed);
        p.timed_out = st.path_timed_out[i].load(std::memory_order_relaxed);
        s.paths.push_back(std::move(p));
    }
    return s;
}

void Collector::scan_sessions(Snapshot& s, std::size_t top) const {
    s.has_sessions = true;
    s.session_capacity = sessions_->capacity();
    // Busiest `top` sessions by bytes: a min-heap of (bytes, id) over the live sessions.
    using Entry = std::pair<std::uint64_t, std::uint32_t>;
    std::vector<Entry> heap;
    heap.reserve(top + 1);
    const auto cmp = [](const Entry& a, const Entry& b) {
        return a.first != b.first ? a.first > b.first : a.second < b.second;
    };
    std::uint32_t live = 0;
    for (std::uint32_t id = 0; id < s.session_capacity; ++id) {
        if (sessions_->config(id) == nullptr) {
            continue;
        }
        ++live;
        if (top == 0) {
            continue;
        }
        const SessionTotals totals = sessions_->totals(id);
        const std::uint64_t bytes = totals.downlink_bytes + totals.uplink_bytes;
        if (heap.size() < top) {
            heap.emplace_back(bytes, id);
            std::push_heap(heap.begin(), heap.end(), cmp);
        } else if (cmp(Entry{bytes, id}, heap.front())) {
            std::pop_heap(heap.begin(), heap.end(), cmp);
            heap.back() = {bytes, id};
            std::push_heap(heap.begin(), heap.end(), cmp);
        }
    }
    s.sessions = live;
    std::sort_heap(heap.begin(), heap.end(), cmp);  // busiest first
    for (const auto& [bytes, id] : heap) {
        if (const SessionConfig* cfg = sessions_->config(id)) {
            s.top_sessions.push_back(session_locked(id, *cfg));
        }
    }
}

Snapshot Collector::collect(const CollectOptions& opt) const {
    std::lock_guard lock(mu_);
    Snapshot s;
    s.tsc_hz = rte_get_tsc_hz();
    for (const auto& p : ports_) {
        PortSnapshot ps;
        ps.name = p.name;
        ps.id = p.id;
        ps.role = p.role;
        s.ports.push_back(std::move(ps));
    }
    sum_workers(s);
    if (opt.ethdev) {
        fill_ethdev(s);
    }
    if (opt.sessions && sessions_ != nullptr && rcu_ != nullptr) {
        ReadSection rs(rcu_, reader_id_);
        scan_sessions(s, opt.top_sessions);
        if (policies_ != nullptr) {
            // Profiles are swapped by the main lcore; the read section keeps the ones loaded
            // here alive until it ends.
            for (std::uint16_t slot = 1; slot < kMaxPolicyProfiles; ++slot) {
                const CompiledProfile* p = policies_->get(slot);
                if (p == nullptr) {
                    continue;
                }
                for (std::size_t i = 0; i < p->rules.size(); ++i) {
                    const PolicyRuleCounters& c = p->counters[i];
                    PolicyRuleSnapshot r{p->name,
                                         static_cast<std::uint32_t>(i + 1),
                                         p->applications[i],
                                         c.hits.load(std::memory_order_relaxed),
                                         c.drops.load(std::memory_order_relaxed),
                                         c.uplink_forbidden.load(std::memory_order_relaxed)};
                    if (r.hits != 0 || r.drops != 0 || r.uplink_forbidden != 0) {
                        s.policy_rules.push_back(std::move(r));
                    }
                }
            }
        }
    }
    return s;
}

std::optional<SessionSnapshot> Collector::session(std::uint32_t id) const {
    std::lock_guard lock(mu_);
    if (sessions_ == nullptr || rcu_ == nullptr) {
        return std::nullopt;
    }
    ReadSection rs(rcu_, reader_id_);
    const SessionConfig* cfg = sessions_->config(id);
    if (cfg == nullptr) {
        return std::nullopt;
    }
    return session_locked(id, *cfg);
}

}  // namespace hag::dp
