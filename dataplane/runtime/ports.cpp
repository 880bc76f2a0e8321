#include "runtime/ports.hpp"

#include <rte_bus.h>
#include <rte_dev.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include <algorithm>

#include "runtime/text.hpp"

namespace hag::dp {

namespace {

bool looks_like_pci(const std::string& d) {
    // dddd:bb:dd.f or bb:dd.f
    return d.find(':') != std::string::npos && d.find('.') != std::string::npos &&
           d.find(',') == std::string::npos && d.rfind("net_", 0) != 0;
}

Result<std::uint16_t, std::string> find_port(const v1::PortConfig& pc, const std::string& device) {
    std::uint16_t id = 0;
    if (looks_like_pci(pc.device())) {
        if (rte_eth_dev_get_port_by_name(pc.device().c_str(), &id) == 0) {
            return id;
        }
        return unexpected(
            fmt::format("port '{}': PCI device {} is not a DPDK port. Is it bound to vfio-pci "
                        "(dpdk-devbind.py --status), and was the EAL started without --no-pci?",
                        pc.name(), pc.device()));
    }
    if (rte_dev_probe(device.c_str()) != 0) {
        return unexpected(
            fmt::format("port '{}': cannot create device '{}': {} (check the vdev "
                        "string and that the interface exists)",
                        pc.name(), device, rte_strerror(rte_errno)));
    }
    const std::string name = pc.device().substr(0, pc.device().find(','));
    if (rte_eth_dev_get_port_by_name(name.c_str(), &id) != 0) {
        return unexpected(fmt::format("port '{}': device '{}' is not an ethdev", pc.name(), name));
    }
    return id;
}

// The device string to probe: net_af_packet gets one queue pair per worker unless it says.
std::string device_for(const std::string& device, std::uint16_t workers) {
    if (workers > 1 && device.rfind("net_af_packet", 0) == 0 &&
        device.find("qpairs=") == std::string::npos) {
        return fmt::format("{},qpairs={}", device, workers);
    }
    return device;
}

}  // namespace

Result<std::unique_ptr<Ports>, std::string> Ports::open(const v1::DataplaneConfig& cfg,
                                                        rte_mempool* pool, std::uint16_t workers) {
    auto ports = std::make_unique<Ports>();
    for (const auto& pc : cfg.ports()) {
        auto id = find_port(pc, device_for(pc.device(), workers));
        if (!id) {
            return unexpected(id.error());
        }
        Port p;
        p.name = pc.name();
        p.device = pc.device();
        p.role = pc.role();
        p.id = *id;
        if (!pc.next_hop_mac().empty()) {
            p.next_hop_mac = parse_mac(pc.next_hop_mac()).value();
        }
        rte_eth_dev_info info{};
        if (int rc = rte_eth_dev_info_get(p.id, &info); rc != 0) {
            return unexpected(
                fmt::format("port '{}': no device info: {}", p.name, rte_strerror(-rc)));
        }
        if (info.max_tx_queues < workers) {
            return unexpected(fmt::format(
                "port '{}': {} workers need {} TX queues, the device has {} (net_af_packet: "
                "qpairs=N; net_pcap: one tx_pcap/tx_iface per queue)",
                p.name, workers, workers, info.max_tx_queues));
        }
        p.rx_queues =
            std::max<std::uint16_t>(1, std::min<std::uint16_t>(workers, info.max_rx_queues));
        rte_eth_conf conf{};
        if (p.rx_queues > 1 && info.flow_type_rss_offloads != 0) {
            // Spread by the IP addresses (and ports where the device can): a session's GRE
            // path or a subscriber's flow stays on one queue, so its order is kept.
            conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf =
                (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP | RTE_ETH_RSS_TCP) & info.flow_type_rss_offloads;
            p.rss = conf.rx_adv_conf.rss_conf.rss_hf != 0;
            if (!p.rss) {
                conf.rxmode.mq_mode = RTE_ETH_MQ_RX_NONE;
            }
        }
        int rc = rte_eth_dev_configure(p.id, p.rx_queues, workers, &conf);
        if (rc != 0) {
            return unexpected(
                fmt::format("port '{}': configure failed: {}", p.name, rte_strerror(-rc)));
        }
        std::uint16_t rx = static_cast<std::uint16_t>(pc.rx_ring() ? pc.rx_ring() : 1024);
        std::uint16_t tx = static_cast<std::uint16_t>(pc.tx_ring() ? pc.tx_ring() : 1024);
        rte_eth_dev_adjust_nb_rx_tx_desc(p.id, &rx, &tx);
        const int socket = rte_eth_dev_socket_id(p.id);
        const unsigned sock = socket < 0 ? SOCKET_ID_ANY : static_cast<unsigned>(socket);
        for (std::uint16_t q = 0; rc == 0 && q < p.rx_queues; ++q) {
            rc = rte_eth_rx_queue_setup(p.id, q, rx, sock, nullptr, pool);
        }
        for (std::uint16_t q = 0; rc == 0 && q < workers; ++q) {
            rc = rte_eth_tx_queue_setup(p.id, q, tx, sock, nullptr);
        }
        if (rc != 0) {
            return unexpected(
                fmt::format("port '{}': queue setup failed: {} (too little memory? "
                            "raise -m or reserve hugepages)",
                            p.name, rte_strerror(-rc)));
        }
        rc = rte_eth_dev_start(p.id);
        if (rc != 0) {
            return unexpected(
                fmt::format("port '{}': start failed: {}", p.name, rte_strerror(-rc)));
        }
        ports->ports_.push_back(p);  // from here on, closed by the destructor
        (void)rte_eth_promiscuous_enable(p.id);
        rte_ether_addr mac{};
        rte_eth_macaddr_get(p.id, &mac);
        std::copy(std::begin(mac.addr_bytes), std::end(mac.addr_bytes),
                  ports->ports_.back().mac.begin());
        spdlog::info(
            "port {} ({}) is DPDK port {}, MAC {}, {} RX / {} TX descriptors, {} RX queue(s){}, "
            "{} TX queue(s)",
            p.name, p.device, p.id, to_string(ports->ports_.back().mac), rx, tx, p.rx_queues,
            p.rx_queues > 1 ? (p.rss ? " by RSS" : " spread by the device") : "", workers);
    }
    return ports;
}

Ports::~Ports() {
    for (const auto& p : ports_) {
        (void)rte_eth_dev_stop(p.id);
        (void)rte_eth_dev_close(p.id);
    }
}

const Port* Ports::by_name(const std::string& name) const noexcept {
    for (const auto& p : ports_) {
        if (p.name == name)
            return &p;
    }
    return nullptr;
}

const Port* Ports::first(v1::PortConfig::Role role) const noexcept {
    for (const auto& p : ports_) {
        if (p.role == role)
            return &p;
    }
    return nullptr;
}

}  // namespace hag::dp
