#include "runtime/worker.hpp"

#include <rte_ethdev.h>
#include <rte_mbuf.h>

namespace hag::dp {

namespace {

constexpr std::uint16_t kBurst = 32;

// Sends `n` packets on `port`; what the ring does not take is freed and counted.
inline void send(std::uint16_t port, rte_mbuf** pkts, std::uint16_t n, PortCounters& c) {
    if (n == 0) {
        return;
    }
    const std::uint16_t sent = rte_eth_tx_burst(port, 0, pkts, n);
    c.tx += sent;
    if (sent < n) {
        c.tx_full += n - sent;
        rte_pktmbuf_free_bulk(pkts + sent, n - sent);
    }
}

}  // namespace

int worker_main(void* arg) {
    auto& w = *static_cast<Worker*>(arg);
    w.rcu->register_reader(w.rcu_thread);
    rte_mbuf* pkts[kBurst];
    while (!w.stop->load(std::memory_order_relaxed)) {
        std::uint16_t n = rte_eth_rx_burst(w.core_port, 0, pkts, kBurst);
        if (n > 0) {
            w.core.rx += n;
            n = exception_punt(w.core_exc, pkts, n);
            send(w.access_port, pkts, downlink_encap(w.downlink, pkts, n), w.access);
        }
        n = rte_eth_rx_burst(w.access_port, 0, pkts, kBurst);
        if (n > 0) {
            w.access.rx += n;
            n = exception_punt(w.access_exc, pkts, n);
            send(w.core_port, pkts, uplink_decap(w.uplink, pkts, n), w.core);
        }
        // What the kernel wrote to the ports' TAPs leaves by the ports.
        send(w.core_port, pkts, exception_from_kernel(w.core_exc, pkts, kBurst), w.core);
        send(w.access_port, pkts, exception_from_kernel(w.access_exc, pkts, kBurst), w.access);
        w.rcu->quiescent(w.rcu_thread);
    }
    w.rcu->unregister_reader(w.rcu_thread);
    return 0;
}

}  // namespace hag::dp
