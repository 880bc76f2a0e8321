// The run-to-completion worker: polls the core and access ports in bursts and runs the
// downlink and uplink stages. One worker today (one RX/TX queue per port); the main lcore only
// does control-side work.
#pragma once

#include <atomic>
#include <cstdint>

#include "exception/punt.hpp"
#include "pipeline/downlink_encap.hpp"
#include "pipeline/uplink_decap.hpp"
#include "tables/rcu.hpp"

namespace hag::dp {

struct PortCounters {
    std::uint64_t rx = 0;
    std::uint64_t tx = 0;
    std::uint64_t tx_full = 0;  // dropped because the TX ring was full
};

struct Worker {
    std::uint32_t rcu_thread = 0;
    std::uint16_t core_port = 0;
    std::uint16_t access_port = 0;
    Rcu* rcu = nullptr;
    DownlinkCtx downlink;
    UplinkCtx uplink;
    PortCounters core, access;
    // Exception path of each port (disabled when its rings are null).
    PuntCtx core_exc, access_exc;
    const std::atomic<bool>* stop = nullptr;
};

// Runs until *w.stop; returns 0. Usable as an lcore function (arg = Worker*).
int worker_main(void* arg);

}  // namespace hag::dp
