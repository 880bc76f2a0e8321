// What the data plane's counters say at one moment, as plain data: per port, per stage (with
// every drop reason), per session and per path. Built by the Collector (collector.hpp) and
// rendered as Prometheus text, DPDK telemetry dicts, JSON or a log line; the renderers need no
// DPDK, so they are unit-tested and fuzzed on their own.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hag::dp {

struct PortSnapshot {
    std::string name;
    std::uint16_t id = 0;
    std::string role;  // "access" or "core"
    // From rte_eth_stats_get (what the NIC / PMD counted).
    bool has_ethdev = false;
    std::uint64_t rx_packets = 0, tx_packets = 0, rx_bytes = 0, tx_bytes = 0;
    std::uint64_t rx_missed = 0, rx_errors = 0, tx_errors = 0, rx_nombuf = 0;
    // hag's own, summed over workers.
    std::uint64_t worker_rx = 0, worker_tx = 0, tx_ring_full = 0;
    std::uint64_t tx_vlan_errors = 0;  // frames dropped: no room for the port's VLAN tag
};

struct DropSnapshot {
    std::string_view reason;  // the name in the stage's drop list
    std::string_view text;    // its sentence
    std::uint64_t count = 0;
};

// The uplink reorder stage's events, summed over workers (the stage's packets, drops and cycles
// are in Snapshot::stages as "uplink_reorder").
struct ReorderSnapshot {
    std::string_view name;
    std::string_view help;
    std::uint64_t count = 0;
};

struct StageSnapshot {
    std::string_view name;        // "downlink_encap", "uplink_decap"
    std::uint64_t packets = 0;    // entered the stage
    std::uint64_t forwarded = 0;  // left it toward a port
    std::uint64_t cycles = 0;     // TSC cycles spent in the stage
    std::uint64_t bursts = 0;
    std::vector<DropSnapshot> drops;
    // What the stage did besides forwarding and dropping (downlink: outer fragments, ICMP
    // errors sent or not); the reorder stage's events are Snapshot::reorder.
    std::vector<ReorderSnapshot> events;
    [[nodiscard]] std::uint64_t dropped() const noexcept {
        std::uint64_t n = 0;
        for (const auto& d : drops)
            n += d.count;
        return n;
    }
    [[nodiscard]] double cycles_per_packet() const noexcept {
        return packets ? static_cast<double>(cycles) / static_cast<double>(packets) : 0.0;
    }
};

struct PathSnapshot {
    std::uint16_t bid = 0;
    std::uint8_t if_label = 0;
    bool live = false;
    std::string care_of;
    std::uint64_t downlink_packets = 0, downlink_bytes = 0;
    std::uint64_t uplink_packets = 0, uplink_bytes = 0;
    // Uplink reorder (docs/dataplane.md#reorder).
    std::uint64_t seq_gaps = 0, reordered = 0, late = 0, timed_out = 0;
};

struct SessionSnapshot {
    std::uint32_t id = 0;
    std::uint32_t uplink_key = 0;
    std::uint64_t downlink_packets = 0, downlink_bytes = 0;
    std::uint64_t uplink_packets = 0, uplink_bytes = 0;
    std::vector<PathSnapshot> paths;
    std::uint64_t reorder_lost = 0, reorder_timeouts = 0, reorder_duplicates = 0;
    std::uint64_t reorder_overflow = 0;
    // Flow policy (docs/policy.md): downlink dropped by a rule, downlink on a pinned path,
    // uplink on a path its rule does not allow.
    std::uint64_t policy_drops = 0, policy_pinned = 0, uplink_forbidden = 0;
    [[nodiscard]] std::uint64_t bytes() const noexcept { return downlink_bytes + uplink_bytes; }
};

// One rule of a flow policy profile (its counters are the profile's, over its sessions).
struct PolicyRuleSnapshot {
    std::string profile;
    std::uint32_t rule = 0;  // 1-based, in the profile's order
    std::string application;
    std::uint64_t hits = 0, drops = 0, uplink_forbidden = 0;
};

// One worker's own share (the stage and port counters above are sums over workers).
struct WorkerSnapshot {
    unsigned index = 0;
    std::uint64_t rx = 0;               // packets it took from its RX queues
    std::uint64_t tx = 0;               // packets it put on its TX queues
    std::uint64_t handed_downlink = 0;  // given to the session's owning worker
    std::uint64_t handed_uplink = 0;
    std::uint64_t received_downlink = 0;  // taken over from other workers
    std::uint64_t received_uplink = 0;
    std::uint64_t handoff_full = 0;        // dropped: the owner's hand-over ring was full
    std::uint64_t route_no_next_hop = 0;   // uplink: the core route's next hop unresolved
    std::uint64_t uplink_ttl_expired = 0;  // uplink: inner TTL / hop limit expired (dropped)
    std::uint64_t uplink_time_exceeded_sent = 0;
};

struct Snapshot {
    std::uint64_t tsc_hz = 0;
    std::vector<WorkerSnapshot> worker_stats;  // per worker, in index order
    std::vector<ReorderSnapshot> reorder;      // empty when the reorder stage is off
    unsigned workers = 0;
    std::vector<PortSnapshot> ports;
    std::vector<StageSnapshot> stages;
    bool has_sessions = false;   // the fields below were filled
    std::uint32_t sessions = 0;  // live sessions
    std::uint32_t session_capacity = 0;
    std::vector<SessionSnapshot> top_sessions;  // busiest first (bytes both ways)
    // Flow policy rules that counted anything (all profiles), in profile then rule order.
    std::vector<PolicyRuleSnapshot> policy_rules;

    [[nodiscard]] const StageSnapshot* stage(std::string_view name) const noexcept {
        for (const auto& s : stages)
            if (s.name == name)
                return &s;
        return nullptr;
    }
    [[nodiscard]] const PortSnapshot* port(std::string_view name) const noexcept {
        for (const auto& p : ports)
            if (p.name == name)
                return &p;
        return nullptr;
    }
};

}  // namespace hag::dp
