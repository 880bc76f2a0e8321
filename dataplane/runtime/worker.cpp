#include "runtime/worker.hpp"

#include <time.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_mbuf.h>

namespace hag::dp {

namespace {

constexpr std::uint16_t kBurst = 32;

// Sends `n` packets on `port` (tagged with `vlan` unless 0); what the ring does not take is
// freed and counted.
inline void send(std::uint16_t port, rte_mbuf** pkts, std::uint16_t n, PortCounters& c,
                 std::uint16_t vlan) {
    if (n == 0) {
        return;
    }
    if (vlan != 0) {
        n = add_port_vlan(vlan, pkts, n, c);
    }
    const std::uint16_t sent = rte_eth_tx_burst(port, 0, pkts, n);
    c.tx += sent;
    if (sent < n) {
        c.tx_full += n - sent;
        rte_pktmbuf_free_bulk(pkts + sent, n - sent);
    }
}

}  // namespace

std::uint16_t add_port_vlan(std::uint16_t vlan, rte_mbuf** pkts, std::uint16_t n, PortCounters& c) {
    std::uint16_t kept = 0;
    for (std::uint16_t i = 0; i < n; ++i) {
        rte_mbuf* m = pkts[i];
        const auto* e = rte_pktmbuf_mtod(m, const std::uint8_t*);
        const bool tagged = rte_pktmbuf_data_len(m) >= 14 &&
                            ((e[12] == 0x81 && e[13] == 0x00) || (e[12] == 0x88 && e[13] == 0xa8));
        if (!tagged) {
            m->vlan_tci = vlan;
            if (rte_vlan_insert(&m) != 0) {
                ++c.tx_vlan_errors;
                rte_pktmbuf_free(m);
                continue;
            }
        }
        pkts[kept++] = m;
    }
    return kept;
}

void worker_send_core(void* arg, rte_mbuf** pkts, std::uint16_t n) {
    auto& w = *static_cast<Worker*>(arg);
    send(w.core_port, pkts, n, w.core, w.core_vlan);
}

int worker_main(void* arg) {
    auto& w = *static_cast<Worker*>(arg);
    w.rcu->register_reader(w.rcu_thread);
    rte_mbuf* pkts[kBurst];
    UplinkMeta meta[kBurst];
    std::uint32_t idle_polls = 0;
    while (!w.stop->load(std::memory_order_relaxed)) {
        bool busy = false;
        std::uint16_t n = rte_eth_rx_burst(w.core_port, 0, pkts, kBurst);
        if (n > 0) {
            busy = true;
            w.core.rx += n;
            n = exception_punt(w.core_exc, pkts, n);
            send(w.access_port, pkts, downlink_encap(w.downlink, pkts, n), w.access, w.access_vlan);
            send(w.access_port, w.downlink.more_access.data(), w.downlink.n_more_access, w.access,
                 w.access_vlan);
            send(w.core_port, w.downlink.to_core.data(), w.downlink.n_to_core, w.core, w.core_vlan);
        }
        n = rte_eth_rx_burst(w.access_port, 0, pkts, kBurst);
        if (n > 0) {
            busy = true;
            w.access.rx += n;
            n = exception_punt(w.access_exc, pkts, n);
            if (w.reorder != nullptr) {
                n = uplink_decap(w.uplink, pkts, n, meta);
                w.reorder->process(pkts, meta, n, rte_rdtsc());
            } else {
                send(w.core_port, pkts, uplink_decap(w.uplink, pkts, n), w.core, w.core_vlan);
            }
        }
        if (w.reorder != nullptr) {
            // Gaps whose wait is over: one heap peek when none is due. While packets are
            // held the worker does not sleep, so a timeout is served within one iteration.
            w.reorder->expire(rte_rdtsc());
            busy |= w.reorder->held_packets() != 0;
        }
        // What the kernel wrote to the ports' TAPs leaves by the ports.
        n = exception_from_kernel(w.core_exc, pkts, kBurst);
        busy |= n > 0;
        send(w.core_port, pkts, n, w.core, w.core_vlan);
        n = exception_from_kernel(w.access_exc, pkts, kBurst);
        busy |= n > 0;
        send(w.access_port, pkts, n, w.access, w.access_vlan);
        w.rcu->quiescent(w.rcu_thread);
        idle_polls = busy ? 0 : idle_polls + 1;
        if (w.idle_sleep_us != 0 && idle_polls >= kIdlePolls) {
            // Quiescent was reported above, so a sleeping worker never holds up reclamation.
            const timespec ts{0, static_cast<long>(w.idle_sleep_us) * 1000};
            nanosleep(&ts, nullptr);
        }
    }
    if (w.reorder != nullptr) {
        w.reorder->drop_all();  // held packets are freed, counted as `shutdown`
    }
    w.rcu->unregister_reader(w.rcu_thread);
    return 0;
}

}  // namespace hag::dp
