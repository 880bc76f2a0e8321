// rte_eal_cleanup(), then the removal of this process's EAL runtime directory
// (/var/run/dpdk/<file-prefix>/ as root, $XDG_RUNTIME_DIR/dpdk/<file-prefix>/ otherwise): DPDK
// 22.11 leaves its config, fbarray and socket files there after a clean exit, one directory per
// file prefix, and tests use a unique prefix per run. Only a primary process removes it (a
// secondary shares the primary's directory).
#pragma once

#include <rte_eal.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace hag::dp {

inline int eal_cleanup() {
    const char* d = rte_eal_get_runtime_dir();
    const std::string dir = d != nullptr ? d : "";
    const bool primary = rte_eal_process_type() == RTE_PROC_PRIMARY;
    const int r = rte_eal_cleanup();
    if (primary && r == 0 && !dir.empty()) {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);  // best effort: nothing else depends on it
    }
    return r;
}

}  // namespace hag::dp
