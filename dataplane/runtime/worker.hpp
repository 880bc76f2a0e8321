// The run-to-completion worker: polls the core and access ports in bursts and runs the
// downlink and uplink stages, and sends what they made besides (ICMP errors toward the core,
// outer fragments); frames leaving a port with a VLAN get its tag here. One worker today (one RX/TX
// queue per port); the main lcore only does control-side work.
#pragma once

#include <atomic>
#include <cstdint>

#include "exception/punt.hpp"
#include "multipath/reorder.hpp"
#include "pipeline/downlink_encap.hpp"
#include "pipeline/uplink_decap.hpp"
#include "tables/rcu.hpp"
#include "telemetry/counter.hpp"

namespace hag::dp {

// hag's own per-port counts of one worker (one writer; read by telemetry while running).
struct PortCounters {
    Counter rx;
    Counter tx;
    Counter tx_full;         // dropped because the TX ring was full
    Counter tx_vlan_errors;  // dropped: no room to add the port's VLAN tag
};

// Cache-line aligned so that no two workers ever write the same line.
struct alignas(64) Worker {
    std::uint32_t rcu_thread = 0;
    std::uint16_t core_port = 0;
    std::uint16_t access_port = 0;
    // 802.1Q VLAN added to every frame sent on the port (0 = none; ports.vlan_id).
    std::uint16_t core_vlan = 0;
    std::uint16_t access_vlan = 0;
    Rcu* rcu = nullptr;
    DownlinkCtx downlink;
    UplinkCtx uplink;
    // Uplink reorder, after uplink_decap; null = decapsulated packets go straight to the core.
    // Its sink is worker_send_core with this worker as the argument.
    Reorder* reorder = nullptr;
    PortCounters core, access;
    // Exception path of each port (disabled when its rings are null).
    PuntCtx core_exc, access_exc;
    const std::atomic<bool>* stop = nullptr;
    // Sleep this long after kIdlePolls empty polls in a row; 0 = never sleep (poll mode).
    std::uint32_t idle_sleep_us = 0;
};

inline constexpr std::uint32_t kIdlePolls = 256;

// Adds an 802.1Q tag with `vlan` to each frame that has no tag (802.1Q or 802.1ad) yet, in
// place; a frame without room for it is freed and counted (tx_vlan_errors). Compacts the rest
// to the front of pkts and returns how many.
std::uint16_t add_port_vlan(std::uint16_t vlan, rte_mbuf** pkts, std::uint16_t n, PortCounters& c);

// Reorder::Sink of a worker: sends to its core port (arg = Worker*).
void worker_send_core(void* arg, rte_mbuf** pkts, std::uint16_t n);

// Runs until *w.stop; returns 0. Usable as an lcore function (arg = Worker*).
int worker_main(void* arg);

}  // namespace hag::dp
