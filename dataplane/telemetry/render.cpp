#include "telemetry/render.hpp"

#include <fmt/format.h>

#include "telemetry/prometheus.hpp"

namespace hag::dp {

namespace {

constexpr std::string_view kCounter = "counter";
constexpr std::string_view kGauge = "gauge";

struct PortMetric {
    std::string_view name;
    std::string_view help;
    std::uint64_t PortSnapshot::*field;
    bool ethdev;  // from rte_eth_stats (absent when the PMD gave none)
};

constexpr PortMetric kPortMetrics[] = {
    {"hag_port_rx_packets_total", "Packets the port received (rte_eth_stats ipackets).",
     &PortSnapshot::rx_packets, true},
    {"hag_port_tx_packets_total", "Packets the port sent (rte_eth_stats opackets).",
     &PortSnapshot::tx_packets, true},
    {"hag_port_rx_bytes_total", "Bytes the port received (rte_eth_stats ibytes).",
     &PortSnapshot::rx_bytes, true},
    {"hag_port_tx_bytes_total", "Bytes the port sent (rte_eth_stats obytes).",
     &PortSnapshot::tx_bytes, true},
    {"hag_port_rx_missed_total", "Packets the NIC dropped because RX rings were full (imissed).",
     &PortSnapshot::rx_missed, true},
    {"hag_port_rx_errors_total", "Erroneous received packets (ierrors).", &PortSnapshot::rx_errors,
     true},
    {"hag_port_tx_errors_total", "Packets the port failed to send (oerrors).",
     &PortSnapshot::tx_errors, true},
    {"hag_port_rx_nombuf_total", "RX mbuf allocation failures (rx_nombuf).",
     &PortSnapshot::rx_nombuf, true},
    {"hag_port_worker_rx_packets_total", "Packets hag's workers took from the port's RX queues.",
     &PortSnapshot::worker_rx, false},
    {"hag_port_worker_tx_packets_total", "Packets hag's workers put on the port's TX queues.",
     &PortSnapshot::worker_tx, false},
    {"hag_port_tx_ring_full_drops_total",
     "Packets hag dropped because the port's TX ring was full.", &PortSnapshot::tx_ring_full,
     false},
    {"hag_port_tx_vlan_errors_total",
     "Frames hag dropped because the port's VLAN tag could not be added.",
     &PortSnapshot::tx_vlan_errors, false},
};

}  // namespace

std::string render_prometheus(const Snapshot& s) {
    prom::Writer w;
    w.family("hag_workers", kGauge, "Fast-path worker lcores.");
    w.sample("hag_workers", {}, std::uint64_t{s.workers});
    w.family("hag_tsc_hz", kGauge, "TSC frequency: divides hag_stage_cycles_total into seconds.");
    w.sample("hag_tsc_hz", {}, s.tsc_hz);

    // Per worker (several workers: docs/dataplane.md#workers-and-ports).
    w.family("hag_worker_rx_packets_total", kCounter,
             "Packets a worker took from its RX queues (all ports).");
    for (const auto& ws : s.worker_stats)
        w.sample("hag_worker_rx_packets_total", {{"worker", std::to_string(ws.index)}}, ws.rx);
    w.family("hag_worker_tx_packets_total", kCounter,
             "Packets a worker put on its TX queues (all ports).");
    for (const auto& ws : s.worker_stats)
        w.sample("hag_worker_tx_packets_total", {{"worker", std::to_string(ws.index)}}, ws.tx);
    w.family("hag_worker_handoff_packets_total", kCounter,
             "Packets of another worker's session handed to their owner (event handed) or taken "
             "over from another worker (event received).");
    for (const auto& ws : s.worker_stats) {
        const std::string i = std::to_string(ws.index);
        w.sample("hag_worker_handoff_packets_total",
                 {{"worker", i}, {"direction", "downlink"}, {"event", "handed"}},
                 ws.handed_downlink);
        w.sample("hag_worker_handoff_packets_total",
                 {{"worker", i}, {"direction", "uplink"}, {"event", "handed"}}, ws.handed_uplink);
        w.sample("hag_worker_handoff_packets_total",
                 {{"worker", i}, {"direction", "downlink"}, {"event", "received"}},
                 ws.received_downlink);
        w.sample("hag_worker_handoff_packets_total",
                 {{"worker", i}, {"direction", "uplink"}, {"event", "received"}},
                 ws.received_uplink);
    }
    w.family("hag_worker_handoff_drops_total", kCounter,
             "Packets dropped because the owning worker's hand-over ring was full.");
    for (const auto& ws : s.worker_stats)
        w.sample("hag_worker_handoff_drops_total", {{"worker", std::to_string(ws.index)}},
                 ws.handoff_full);
    w.family("hag_worker_route_no_next_hop_total", kCounter,
             "Uplink packets dropped: the next hop of their core route is not resolved.");
    for (const auto& ws : s.worker_stats)
        w.sample("hag_worker_route_no_next_hop_total", {{"worker", std::to_string(ws.index)}},
                 ws.route_no_next_hop);
    w.family("hag_worker_uplink_ttl_expired_total", kCounter,
             "Uplink packets dropped: inner TTL / hop limit would reach zero.");
    for (const auto& ws : s.worker_stats)
        w.sample("hag_worker_uplink_ttl_expired_total", {{"worker", std::to_string(ws.index)}},
                 ws.uplink_ttl_expired);
    w.family("hag_worker_uplink_time_exceeded_sent_total", kCounter,
             "ICMP Time Exceeded sent toward subscribers for expired uplink packets.");
    for (const auto& ws : s.worker_stats)
        w.sample("hag_worker_uplink_time_exceeded_sent_total",
                 {{"worker", std::to_string(ws.index)}}, ws.uplink_time_exceeded_sent);

    for (const auto& m : kPortMetrics) {
        w.family(m.name, kCounter, m.help);
        for (const auto& p : s.ports) {
            if (!m.ethdev || p.has_ethdev) {
                w.sample(m.name, {{"port", p.name}, {"role", p.role}}, p.*m.field);
            }
        }
    }

    w.family("hag_stage_packets_total", kCounter, "Packets that entered a fast-path stage.");
    for (const auto& st : s.stages)
        w.sample("hag_stage_packets_total", {{"stage", st.name}}, st.packets);
    w.family("hag_stage_forwarded_packets_total", kCounter,
             "Packets a stage passed on toward a port.");
    for (const auto& st : s.stages)
        w.sample("hag_stage_forwarded_packets_total", {{"stage", st.name}}, st.forwarded);
    w.family("hag_stage_drops_total", kCounter,
             "Packets a stage dropped, by reason (reasons: docs/dataplane-fastpath.md).");
    for (const auto& st : s.stages)
        for (const auto& d : st.drops)
            w.sample("hag_stage_drops_total", {{"stage", st.name}, {"reason", d.reason}}, d.count);
    w.family("hag_stage_cycles_total", kCounter, "TSC cycles spent in a stage.");
    for (const auto& st : s.stages)
        w.sample("hag_stage_cycles_total", {{"stage", st.name}}, st.cycles);
    w.family("hag_stage_bursts_total", kCounter, "Bursts a stage processed.");
    for (const auto& st : s.stages)
        w.sample("hag_stage_bursts_total", {{"stage", st.name}}, st.bursts);
    w.family("hag_stage_cycles_per_packet", kGauge,
             "TSC cycles per packet in a stage since start (cycles_total / packets_total).");
    for (const auto& st : s.stages)
        w.sample("hag_stage_cycles_per_packet", {{"stage", st.name}}, st.cycles_per_packet());

    w.family("hag_stage_events_total", kCounter,
             "What a stage did besides forwarding and dropping, by event (downlink: outer "
             "fragments, ICMP errors; uplink_reassembly: reassembled, hand-overs; "
             "docs/dataplane.md).");
    for (const auto& st : s.stages)
        for (const auto& e : st.events)
            w.sample("hag_stage_events_total", {{"stage", st.name}, {"event", e.name}}, e.count);
    if (!s.reorder.empty()) {
        w.family("hag_reorder_events_total", kCounter,
                 "Uplink reorder events by kind (docs/dataplane.md#reorder).");
        for (const auto& e : s.reorder)
            w.sample("hag_reorder_events_total", {{"event", e.name}}, e.count);
    }
    if (s.has_sessions) {
        w.family("hag_sessions", kGauge, "Live subscriber sessions.");
        w.sample("hag_sessions", {}, std::uint64_t{s.sessions});
        w.family("hag_sessions_capacity", kGauge, "Session table capacity.");
        w.sample("hag_sessions_capacity", {}, std::uint64_t{s.session_capacity});
        w.family("hag_sessions_exported", kGauge,
                 "Sessions with per-session series below (the busiest, by bytes).");
        w.sample("hag_sessions_exported", {}, std::uint64_t{s.top_sessions.size()});
    }
    if (!s.top_sessions.empty()) {
        w.family("hag_session_packets_total", kCounter,
                 "Inner packets of a subscriber session, by direction.");
        for (const auto& ss : s.top_sessions) {
            const std::string id = std::to_string(ss.id);
            w.sample("hag_session_packets_total", {{"session", id}, {"direction", "downlink"}},
                     ss.downlink_packets);
            w.sample("hag_session_packets_total", {{"session", id}, {"direction", "uplink"}},
                     ss.uplink_packets);
        }
        w.family("hag_session_bytes_total", kCounter,
                 "Inner IP bytes of a subscriber session, by direction.");
        for (const auto& ss : s.top_sessions) {
            const std::string id = std::to_string(ss.id);
            w.sample("hag_session_bytes_total", {{"session", id}, {"direction", "downlink"}},
                     ss.downlink_bytes);
            w.sample("hag_session_bytes_total", {{"session", id}, {"direction", "uplink"}},
                     ss.uplink_bytes);
        }
        w.family("hag_path_packets_total", kCounter,
                 "Inner packets over one path (care-of address, by BID) of a session.");
        for (const auto& ss : s.top_sessions) {
            const std::string id = std::to_string(ss.id);
            for (const auto& p : ss.paths) {
                const std::string bid = std::to_string(p.bid);
                w.sample("hag_path_packets_total",
                         {{"session", id}, {"bid", bid}, {"direction", "downlink"}},
                         p.downlink_packets);
                w.sample("hag_path_packets_total",
                         {{"session", id}, {"bid", bid}, {"direction", "uplink"}},
                         p.uplink_packets);
            }
        }
        w.family("hag_path_bytes_total", kCounter,
                 "Inner IP bytes over one path (care-of address, by BID) of a session.");
        for (const auto& ss : s.top_sessions) {
            const std::string id = std::to_string(ss.id);
            for (const auto& p : ss.paths) {
                const std::string bid = std::to_string(p.bid);
                w.sample("hag_path_bytes_total",
                         {{"session", id}, {"bid", bid}, {"direction", "downlink"}},
                         p.downlink_bytes);
                w.sample("hag_path_bytes_total",
                         {{"session", id}, {"bid", bid}, {"direction", "uplink"}}, p.uplink_bytes);
            }
        }
        w.family("hag_session_reorder_total", kCounter,
                 "Uplink reorder of a session: numbers lost, gaps timed out, duplicates, "
                 "overflows (32-bit, they wrap).");
        for (const auto& ss : s.top_sessions) {
            const std::string id = std::to_string(ss.id);
            w.sample("hag_session_reorder_total", {{"session", id}, {"event", "lost"}},
                     ss.reorder_lost);
            w.sample("hag_session_reorder_total", {{"session", id}, {"event", "timeouts"}},
                     ss.reorder_timeouts);
            w.sample("hag_session_reorder_total", {{"session", id}, {"event", "duplicates"}},
                     ss.reorder_duplicates);
            w.sample("hag_session_reorder_total", {{"session", id}, {"event", "overflow"}},
                     ss.reorder_overflow);
        }
        w.family("hag_path_reorder_packets_total", kCounter,
                 "Uplink packets of one path by reorder event: seq_gaps (opened a gap), "
                 "reordered (held), late, timed_out (32-bit, they wrap).");
        for (const auto& ss : s.top_sessions) {
            const std::string id = std::to_string(ss.id);
            for (const auto& p : ss.paths) {
                const std::string bid = std::to_string(p.bid);
                w.sample("hag_path_reorder_packets_total",
                         {{"session", id}, {"bid", bid}, {"event", "seq_gaps"}}, p.seq_gaps);
                w.sample("hag_path_reorder_packets_total",
                         {{"session", id}, {"bid", bid}, {"event", "reordered"}}, p.reordered);
                w.sample("hag_path_reorder_packets_total",
                         {{"session", id}, {"bid", bid}, {"event", "late"}}, p.late);
                w.sample("hag_path_reorder_packets_total",
                         {{"session", id}, {"bid", bid}, {"event", "timed_out"}}, p.timed_out);
            }
        }
        w.family("hag_session_policy_packets_total", kCounter,
                 "Flow policy events of a session: drop (downlink dropped by a rule), pinned "
                 "(downlink on the path a rule pins), uplink_forbidden (uplink on a path its "
                 "rule does not allow).");
        for (const auto& ss : s.top_sessions) {
            const std::string id = std::to_string(ss.id);
            w.sample("hag_session_policy_packets_total", {{"session", id}, {"event", "drop"}},
                     ss.policy_drops);
            w.sample("hag_session_policy_packets_total", {{"session", id}, {"event", "pinned"}},
                     ss.policy_pinned);
            w.sample("hag_session_policy_packets_total",
                     {{"session", id}, {"event", "uplink_forbidden"}}, ss.uplink_forbidden);
        }
    }
    if (!s.policy_rules.empty()) {
        w.family("hag_policy_rule_packets_total", kCounter,
                 "Packets of a flow policy rule (profile, 1-based rule, application), over the "
                 "profile's sessions: hit (matched), drop (downlink dropped), uplink_forbidden. "
                 "Rules that never counted are left out.");
        for (const auto& r : s.policy_rules) {
            const std::string rule = std::to_string(r.rule);
            for (const auto& [event, v] : {std::pair<const char*, std::uint64_t>{"hit", r.hits},
                                           {"drop", r.drops},
                                           {"uplink_forbidden", r.uplink_forbidden}}) {
                w.sample("hag_policy_rule_packets_total",
                         {{"profile", r.profile},
                          {"rule", rule},
                          {"application", r.application},
                          {"event", event}},
                         v);
            }
        }
    }
    return w.take();
}

void append_json_string(std::string& out, std::string_view s) {
    out += '"';
    for (char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20) {
            out += fmt::format("\\u{:04x}", u);
        } else {
            out += c;
        }
    }
    out += '"';
}

std::string render_json(const Snapshot& s) {
    std::string out = "{";
    for (const auto& st : s.stages) {
        // Keys "downlink" / "uplink" (the stage's direction), kept from the first versions;
        // "reorder" for the uplink reorder stage, "reassembly" for outer fragment reassembly.
        const bool reorder = st.name == "uplink_reorder";
        const bool reassembly = st.name == "uplink_reassembly";
        const std::string_view key = reorder      ? "reorder"
                                     : reassembly ? "reassembly"
                                                  : st.name.substr(0, st.name.find('_'));
        append_json_string(out, key);
        out += fmt::format(":{{\"stage\":\"{}\",\"packets\":{},\"{}\":{},\"drops\":{{", st.name,
                           st.packets,
                           reorder             ? "released"
                           : reassembly        ? "reassembled"
                           : key == "downlink" ? "encapsulated"
                                               : "decapsulated",
                           st.forwarded);
        for (std::size_t i = 0; i < st.drops.size(); ++i) {
            out += fmt::format("{}\"{}\":{}", i ? "," : "", st.drops[i].reason, st.drops[i].count);
        }
        out += fmt::format("}},\"cycles\":{},\"bursts\":{},\"cycles_per_packet\":{:.1f}", st.cycles,
                           st.bursts, st.cycles_per_packet());
        if (reorder) {
            out += ",\"events\":{";
            for (std::size_t i = 0; i < s.reorder.size(); ++i) {
                out +=
                    fmt::format("{}\"{}\":{}", i ? "," : "", s.reorder[i].name, s.reorder[i].count);
            }
            out += '}';
        } else if (!st.events.empty()) {
            out += ",\"events\":{";
            for (std::size_t i = 0; i < st.events.size(); ++i) {
                out +=
                    fmt::format("{}\"{}\":{}", i ? "," : "", st.events[i].name, st.events[i].count);
            }
            out += '}';
        }
        out += "},";
    }
    out += "\"ports\":{";
    for (std::size_t i = 0; i < s.ports.size(); ++i) {
        const auto& p = s.ports[i];
        if (i)
            out += ',';
        append_json_string(out, p.name);
        out += fmt::format(
            ":{{\"id\":{},\"role\":\"{}\",\"rx\":{},\"tx\":{},\"tx_full\":{},\"rx_packets\":{},"
            "\"tx_packets\":{},\"rx_bytes\":{},\"tx_bytes\":{},\"rx_missed\":{},\"rx_errors\":{},"
            "\"tx_errors\":{},\"rx_nombuf\":{},\"tx_vlan_errors\":{}}}",
            p.id, p.role, p.worker_rx, p.worker_tx, p.tx_ring_full, p.rx_packets, p.tx_packets,
            p.rx_bytes, p.tx_bytes, p.rx_missed, p.rx_errors, p.tx_errors, p.rx_nombuf,
            p.tx_vlan_errors);
    }
    out += fmt::format("}},\"workers\":{},\"tsc_hz\":{}", s.workers, s.tsc_hz);
    out += ",\"worker_stats\":[";
    for (std::size_t i = 0; i < s.worker_stats.size(); ++i) {
        const auto& ws = s.worker_stats[i];
        out += fmt::format(
            "{}{{\"worker\":{},\"rx\":{},\"tx\":{},\"handed_downlink\":{},"
            "\"handed_uplink\":{},\"received_downlink\":{},\"received_uplink\":{},"
            "\"handoff_full\":{},\"route_no_next_hop\":{},\"uplink_ttl_expired\":{},"
            "\"uplink_time_exceeded_sent\":{}}}",
            i ? "," : "", ws.index, ws.rx, ws.tx, ws.handed_downlink, ws.handed_uplink,
            ws.received_downlink, ws.received_uplink, ws.handoff_full, ws.route_no_next_hop,
            ws.uplink_ttl_expired, ws.uplink_time_exceeded_sent);
    }
    out += ']';
    if (s.has_sessions) {
        out += fmt::format(",\"session_count\":{},\"session_capacity\":{}", s.sessions,
                           s.session_capacity);
    }
    out += ",\"sessions\":{";
    for (std::size_t i = 0; i < s.top_sessions.size(); ++i) {
        const auto& ss = s.top_sessions[i];
        out += fmt::format(
            "{}\"{}\":{{\"downlink_packets\":{},\"downlink_bytes\":{},\"uplink_packets\":{},"
            "\"uplink_bytes\":{},\"reorder\":{{\"lost\":{},\"timeouts\":{},\"duplicates\":{},"
            "\"overflow\":{}}},\"paths\":{{",
            i ? "," : "", ss.id, ss.downlink_packets, ss.downlink_bytes, ss.uplink_packets,
            ss.uplink_bytes, ss.reorder_lost, ss.reorder_timeouts, ss.reorder_duplicates,
            ss.reorder_overflow);
        for (std::size_t j = 0; j < ss.paths.size(); ++j) {
            const auto& p = ss.paths[j];
            out += fmt::format(
                "{}\"{}\":{{\"care_of\":\"{}\",\"live\":{},\"downlink_packets\":{},"
                "\"downlink_bytes\":{},\"uplink_packets\":{},\"uplink_bytes\":{},"
                "\"seq_gaps\":{},\"reordered\":{},\"late\":{},\"timed_out\":{}}}",
                j ? "," : "", p.bid, p.care_of, p.live, p.downlink_packets, p.downlink_bytes,
                p.uplink_packets, p.uplink_bytes, p.seq_gaps, p.reordered, p.late, p.timed_out);
        }
        out += "}}";
    }
    return out + "}}";
}

std::string render_summary(const Snapshot& s, const Snapshot* prev, double seconds) {
    const auto rate = [&](std::uint64_t now, std::uint64_t before) {
        return prev != nullptr && seconds > 0 && now >= before
                   ? static_cast<double>(now - before) / seconds
                   : 0.0;
    };
    std::string out = "stats:";
    if (s.has_sessions) {
        out += fmt::format(" sessions {}", s.sessions);
    }
    for (std::size_t i = 0; i < s.ports.size(); ++i) {
        const auto& p = s.ports[i];
        const PortSnapshot* q =
            prev != nullptr && i < prev->ports.size() ? &prev->ports[i] : nullptr;
        out += fmt::format(" | {} rx {} ({:.0f}/s) tx {} ({:.0f}/s) ring-full {} missed {}", p.name,
                           p.worker_rx, rate(p.worker_rx, q ? q->worker_rx : 0), p.worker_tx,
                           rate(p.worker_tx, q ? q->worker_tx : 0), p.tx_ring_full, p.rx_missed);
    }
    for (const auto& st : s.stages) {
        out += fmt::format(" | {} fwd {} drop {} {:.1f} cyc/pkt", st.name, st.forwarded,
                           st.dropped(), st.cycles_per_packet());
        bool any = false;
        for (const auto& d : st.drops) {
            if (d.count) {
                out += fmt::format("{}{}={}", any ? "," : " (", d.reason, d.count);
                any = true;
            }
        }
        if (any)
            out += ')';
    }
    if (!s.reorder.empty()) {
        out += " | reorder";
        for (const auto& e : s.reorder) {
            if (e.count != 0) {
                out += fmt::format(" {}={}", e.name, e.count);
            }
        }
    }
    return out;
}

}  // namespace hag::dp
