#include "eal_fixture.hpp"
#include "runtime/eal_cleanup.hpp"

#include <rte_eal.h>
#include <rte_errno.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace hag::dp::test {

namespace {
rte_mempool* g_pool = nullptr;
}

void ensure_eal() {
    static bool done = false;
    if (done) {
        return;
    }
    const std::string prefix = "hag-test-" + std::to_string(getpid());
    std::vector<std::string> args = {"hag-test",    "--no-huge",     "--no-pci", "-m",
                                     "512",         "--file-prefix", prefix,     "--log-level",
                                     "lib.*:error", "--lcores",      "0",        "--no-telemetry"};
    std::vector<char*> argv;
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
        std::fprintf(stderr, "EAL init failed: %s\n", rte_strerror(rte_errno));
        std::abort();
    }
    g_pool = rte_pktmbuf_pool_create("hag_test_pool", 8191, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                     SOCKET_ID_ANY);
    if (g_pool == nullptr) {
        std::fprintf(stderr, "mempool creation failed: %s\n", rte_strerror(rte_errno));
        std::abort();
    }
    std::atexit([] { hag::dp::eal_cleanup(); });
    done = true;
}

rte_mempool* pool() {
    ensure_eal();
    return g_pool;
}

rte_mbuf* mbuf_from(const std::vector<std::uint8_t>& bytes) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool());
    if (m == nullptr) {
        return nullptr;
    }
    auto* p = rte_pktmbuf_append(m, static_cast<std::uint16_t>(bytes.size()));
    if (p == nullptr) {
        rte_pktmbuf_free(m);
        return nullptr;
    }
    std::memcpy(p, bytes.data(), bytes.size());
    return m;
}

std::vector<std::uint8_t> bytes_of(const rte_mbuf* m) {
    std::vector<std::uint8_t> out(rte_pktmbuf_pkt_len(m));
    const void* p = rte_pktmbuf_read(m, 0, out.size(), out.data());
    if (p != out.data()) {
        std::memcpy(out.data(), p, out.size());
    }
    return out;
}

}  // namespace hag::dp::test
