#include "telemetry/dpdk_commands.hpp"

#include <rte_telemetry.h>

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <mutex>

namespace hag::dp {

namespace {

std::mutex g_mu;  // guards g_collector against destruction mid-call
const Collector* g_collector = nullptr;
std::once_flag g_registered;

constexpr std::size_t kDefaultTop = 10;
constexpr std::size_t kMaxTop = 64;  // keeps the answer inside telemetry's 16 KiB buffer

// Optional decimal parameter; false when present but not a number within [0, max].
bool parse_number(const char* params, std::uint64_t max, std::uint64_t& out) {
    if (params == nullptr || params[0] == '\0') {
        return true;
    }
    const std::size_t len = strnlen(params, 32);
    if (len == 32) {
        return false;
    }
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(params, params + len, v);
    if (ec != std::errc{} || end != params + len || v > max) {
        return false;
    }
    out = v;
    return true;
}

void add_u64(rte_tel_data* d, const char* name, std::uint64_t v) {
    rte_tel_data_add_dict_u64(d, name, v);
}

rte_tel_data* port_dict(const PortSnapshot& p) {
    rte_tel_data* c = rte_tel_data_alloc();
    if (c == nullptr) {
        return nullptr;
    }
    rte_tel_data_start_dict(c);
    add_u64(c, "id", p.id);
    rte_tel_data_add_dict_string(c, "role", p.role.c_str());
    if (p.has_ethdev) {
        add_u64(c, "rx_packets", p.rx_packets);
        add_u64(c, "tx_packets", p.tx_packets);
        add_u64(c, "rx_bytes", p.rx_bytes);
        add_u64(c, "tx_bytes", p.tx_bytes);
        add_u64(c, "rx_missed", p.rx_missed);
        add_u64(c, "rx_errors", p.rx_errors);
        add_u64(c, "tx_errors", p.tx_errors);
        add_u64(c, "rx_nombuf", p.rx_nombuf);
    }
    add_u64(c, "worker_rx_packets", p.worker_rx);
    add_u64(c, "worker_tx_packets", p.worker_tx);
    add_u64(c, "tx_ring_full_drops", p.tx_ring_full);
    add_u64(c, "tx_vlan_errors", p.tx_vlan_errors);
    return c;
}

void add_traffic(rte_tel_data* d, std::uint64_t dp, std::uint64_t db, std::uint64_t up,
                 std::uint64_t ub) {
    add_u64(d, "downlink_packets", dp);
    add_u64(d, "downlink_bytes", db);
    add_u64(d, "uplink_packets", up);
    add_u64(d, "uplink_bytes", ub);
}

template <int (*Fn)(const Collector&, const char*, rte_tel_data*)>
int callback(const char* /*cmd*/, const char* params, rte_tel_data* d) {
    std::lock_guard lock(g_mu);
    if (g_collector == nullptr) {
        return -ENODEV;
    }
    try {
        return Fn(*g_collector, params, d);
    } catch (const std::exception&) {
        return -ENOMEM;
    }
}

}  // namespace

std::string telemetry_key(std::string_view name) {
    std::string k(name.substr(0, RTE_TEL_MAX_STRING_LEN - 1));
    for (char& c : k) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '_' || c == '/';
        if (!ok) {
            c = '_';
        }
    }
    return k.empty() ? std::string("_") : k;
}

int telemetry_ports(const Collector& c, const char* /*params*/, rte_tel_data* d) {
    const Snapshot s = c.collect({.ethdev = true, .sessions = false});
    rte_tel_data_start_dict(d);
    for (const auto& p : s.ports) {
        if (rte_tel_data* pd = port_dict(p)) {
            rte_tel_data_add_dict_container(d, telemetry_key(p.name).c_str(), pd, 0);
        }
    }
    return 0;
}

int telemetry_workers(const Collector& c, const char* /*params*/, rte_tel_data* d) {
    const Snapshot s = c.collect({.ethdev = false, .sessions = false});
    rte_tel_data_start_dict(d);
    for (const auto& ws : s.worker_stats) {
        rte_tel_data* wd = rte_tel_data_alloc();
        if (wd == nullptr) {
            return -ENOMEM;
        }
        rte_tel_data_start_dict(wd);
        add_u64(wd, "rx", ws.rx);
        add_u64(wd, "tx", ws.tx);
        add_u64(wd, "handed_downlink", ws.handed_downlink);
        add_u64(wd, "handed_uplink", ws.handed_uplink);
        add_u64(wd, "received_downlink", ws.received_downlink);
        add_u64(wd, "received_uplink", ws.received_uplink);
        add_u64(wd, "handoff_full", ws.handoff_full);
        add_u64(wd, "route_no_next_hop", ws.route_no_next_hop);
        add_u64(wd, "uplink_ttl_expired", ws.uplink_ttl_expired);
        add_u64(wd, "uplink_time_exceeded_sent", ws.uplink_time_exceeded_sent);
        rte_tel_data_add_dict_container(d, fmt::format("worker_{}", ws.index).c_str(), wd, 0);
    }
    return 0;
}

int telemetry_stages(const Collector& c, const char* /*params*/, rte_tel_data* d) {
    const Snapshot s = c.collect({.ethdev = false, .sessions = false});
    rte_tel_data_start_dict(d);
    add_u64(d, "workers", s.workers);
    add_u64(d, "tsc_hz", s.tsc_hz);
    for (const auto& st : s.stages) {
        rte_tel_data* sd = rte_tel_data_alloc();
        if (sd == nullptr) {
            return -ENOMEM;
        }
        rte_tel_data_start_dict(sd);
        add_u64(sd, "packets", st.packets);
        add_u64(sd, "forwarded", st.forwarded);
        add_u64(sd, "dropped", st.dropped());
        add_u64(sd, "cycles", st.cycles);
        add_u64(sd, "bursts", st.bursts);
        rte_tel_data_add_dict_string(sd, "cycles_per_packet",
                                     fmt::format("{:.1f}", st.cycles_per_packet()).c_str());
        for (const auto& e : st.events) {
            add_u64(sd, telemetry_key(e.name).c_str(), e.count);
        }
        rte_tel_data_add_dict_container(d, telemetry_key(st.name).c_str(), sd, 0);
    }
    return 0;
}

// The uplink reorder stage's events; an empty dict when reorder is off.
int telemetry_reorder(const Collector& c, const char* /*params*/, rte_tel_data* d) {
    const Snapshot s = c.collect({.ethdev = false, .sessions = false});
    rte_tel_data_start_dict(d);
    for (const auto& e : s.reorder) {
        add_u64(d, std::string(e.name).c_str(), e.count);
    }
    return 0;
}

int telemetry_drops(const Collector& c, const char* params, rte_tel_data* d) {
    const Snapshot s = c.collect({.ethdev = false, .sessions = false});
    const std::string_view want = params != nullptr ? std::string_view(params) : "";
    rte_tel_data_start_dict(d);
    if (!want.empty()) {
        const StageSnapshot* st = s.stage(want);
        if (st == nullptr) {
            return -EINVAL;
        }
        for (const auto& dr : st->drops) {
            add_u64(d, std::string(dr.reason).c_str(), dr.count);
        }
        return 0;
    }
    for (const auto& st : s.stages) {
        rte_tel_data* sd = rte_tel_data_alloc();
        if (sd == nullptr) {
            return -ENOMEM;
        }
        rte_tel_data_start_dict(sd);
        for (const auto& dr : st.drops) {
            add_u64(sd, std::string(dr.reason).c_str(), dr.count);
        }
        rte_tel_data_add_dict_container(d, telemetry_key(st.name).c_str(), sd, 0);
    }
    return 0;
}

int telemetry_sessions(const Collector& c, const char* params, rte_tel_data* d) {
    std::uint64_t top = kDefaultTop;
    if (!parse_number(params, kMaxTop, top)) {
        return -EINVAL;
    }
    const Snapshot s = c.collect(
        {.ethdev = false, .sessions = true, .top_sessions = static_cast<std::size_t>(top)});
    rte_tel_data_start_dict(d);
    add_u64(d, "count", s.sessions);
    add_u64(d, "capacity", s.session_capacity);
    for (const auto& ss : s.top_sessions) {
        rte_tel_data* sd = rte_tel_data_alloc();
        if (sd == nullptr) {
            return -ENOMEM;
        }
        rte_tel_data_start_dict(sd);
        add_traffic(sd, ss.downlink_packets, ss.downlink_bytes, ss.uplink_packets, ss.uplink_bytes);
        add_u64(sd, "paths", ss.paths.size());
        rte_tel_data_add_dict_container(d, std::to_string(ss.id).c_str(), sd, 0);
    }
    return 0;
}

int telemetry_session(const Collector& c, const char* params, rte_tel_data* d) {
    std::uint64_t id = 0;
    if (params == nullptr || params[0] == '\0' || !parse_number(params, UINT32_MAX, id)) {
        return -EINVAL;
    }
    const auto s = c.session(static_cast<std::uint32_t>(id));
    if (!s) {
        return -ENOENT;
    }
    rte_tel_data_start_dict(d);
    add_u64(d, "id", s->id);
    add_u64(d, "uplink_key", s->uplink_key);
    add_traffic(d, s->downlink_packets, s->downlink_bytes, s->uplink_packets, s->uplink_bytes);
    add_u64(d, "reorder_lost", s->reorder_lost);
    add_u64(d, "reorder_timeouts", s->reorder_timeouts);
    add_u64(d, "reorder_duplicates", s->reorder_duplicates);
    add_u64(d, "reorder_overflow", s->reorder_overflow);
    for (const auto& p : s->paths) {
        rte_tel_data* pd = rte_tel_data_alloc();
        if (pd == nullptr) {
            return -ENOMEM;
        }
        rte_tel_data_start_dict(pd);
        add_u64(pd, "bid", p.bid);
        add_u64(pd, "if_label", p.if_label);
        add_u64(pd, "live", p.live ? 1 : 0);
        rte_tel_data_add_dict_string(pd, "care_of", p.care_of.c_str());
        add_traffic(pd, p.downlink_packets, p.downlink_bytes, p.uplink_packets, p.uplink_bytes);
        add_u64(pd, "seq_gaps", p.seq_gaps);
        add_u64(pd, "reordered", p.reordered);
        add_u64(pd, "late", p.late);
        add_u64(pd, "timed_out", p.timed_out);
        rte_tel_data_add_dict_container(d, fmt::format("path_{}", p.bid).c_str(), pd, 0);
    }
    return 0;
}

TelemetryCommands::TelemetryCommands(const Collector& collector) {
    {
        std::lock_guard lock(g_mu);
        g_collector = &collector;
    }
    std::call_once(g_registered, [] {
        rte_telemetry_register_cmd("/hag/ports", callback<telemetry_ports>,
                                   "hag ports: ethdev and worker counters. No parameters.");
        rte_telemetry_register_cmd("/hag/workers", callback<telemetry_workers>,
                                   "hag workers: each worker's RX/TX and hand-overs.");
        rte_telemetry_register_cmd("/hag/stages", callback<telemetry_stages>,
                                   "hag fast-path stages: packets, drops, TSC cycles.");
        rte_telemetry_register_cmd("/hag/drops", callback<telemetry_drops>,
                                   "hag drops by stage and reason. Parameter: optional stage.");
        rte_telemetry_register_cmd(
            "/hag/sessions", callback<telemetry_sessions>,
            "hag session count and the busiest sessions. Parameter: how many (max 64).");
        rte_telemetry_register_cmd("/hag/session", callback<telemetry_session>,
                                   "one hag session with its paths. Parameter: session id.");
        rte_telemetry_register_cmd("/hag/reorder", callback<telemetry_reorder>,
                                   "hag uplink reorder events (gaps, lost, overflow, ...).");
    });
}

TelemetryCommands::~TelemetryCommands() {
    std::lock_guard lock(g_mu);
    g_collector = nullptr;
}

}  // namespace hag::dp
