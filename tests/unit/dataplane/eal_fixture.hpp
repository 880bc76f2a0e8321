// Real DPDK for unit tests: one EAL per test process with --no-huge --no-pci and a unique
// --file-prefix (tests run in parallel), a mempool, and helpers to make mbufs from bytes.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>
#include <vector>

namespace hag::dp::test {

// Initialises the EAL on first use (and cleans it up at exit). Aborts the test run with a
// message if the EAL cannot start.
void ensure_eal();
rte_mempool* pool();
rte_mbuf* mbuf_from(const std::vector<std::uint8_t>& bytes);
std::vector<std::uint8_t> bytes_of(const rte_mbuf* m);

}  // namespace hag::dp::test
