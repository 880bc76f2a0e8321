// Limits of the runtime layer shared by the configuration check (no DPDK needed) and the
// workers: worker lcores, ports and uplink routes toward core ports.
#pragma once

#include <cstdint>

namespace hag::dp {

inline constexpr std::uint32_t kMaxWorkers = 16;     // worker lcores
inline constexpr std::uint32_t kMaxPorts = 8;        // ports of all roles
inline constexpr std::uint32_t kMaxCoreRoutes = 64;  // core_routes entries

}  // namespace hag::dp
