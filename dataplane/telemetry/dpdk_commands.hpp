// hag's commands on the DPDK telemetry socket (/var/run/dpdk/<file-prefix>/dpdk_telemetry.v2;
// `dpdk-telemetry.py -f <file-prefix>`):
//
//   /hag/ports            per port: ethdev stats and hag's worker RX/TX and TX-ring-full drops
//   /hag/stages           per stage: packets, forwarded, dropped, TSC cycles, cycles per packet
//   /hag/drops[,STAGE]    per stage and drop reason
//   /hag/sessions[,N]     live session count, capacity, and the N busiest (default 10, max 64)
//   /hag/session,ID       one session with its per-path counters
//
// The callbacks run on DPDK's telemetry threads and read through a Collector. DPDK 22.11 cannot
// unregister a command, so they are registered once per process and answer null while no
// TelemetryCommands object is alive.
#pragma once

#include "telemetry/collector.hpp"

struct rte_tel_data;

namespace hag::dp {

class TelemetryCommands {
  public:
    explicit TelemetryCommands(const Collector& collector);
    ~TelemetryCommands();
    TelemetryCommands(const TelemetryCommands&) = delete;
    TelemetryCommands& operator=(const TelemetryCommands&) = delete;
};

// The command handlers, callable directly (tests): fill `d` from `c`; negative errno on bad
// parameters or an unknown session.
int telemetry_ports(const Collector& c, const char* params, rte_tel_data* d);
int telemetry_stages(const Collector& c, const char* params, rte_tel_data* d);
int telemetry_drops(const Collector& c, const char* params, rte_tel_data* d);
int telemetry_sessions(const Collector& c, const char* params, rte_tel_data* d);
int telemetry_session(const Collector& c, const char* params, rte_tel_data* d);

// A name DPDK accepts as a dict key ([A-Za-z0-9_/]; anything else becomes '_'), at most
// RTE_TEL_MAX_STRING_LEN - 1 bytes.
std::string telemetry_key(std::string_view name);

}  // namespace hag::dp
