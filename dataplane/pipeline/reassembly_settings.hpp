// What the `reassembly` configuration block sets (pipeline/reassembly.hpp); apart so that the
// configuration code needs no DPDK or parser header.
#pragma once

#include <cstdint>

namespace hag::dp {

struct ReassemblySettings {
    bool enabled = true;
    std::uint32_t max_packets = 256;  // packets in reassembly at once, per worker
    std::uint32_t timeout_ms = 1000;
};

}  // namespace hag::dp
