#include "runtime/ports.hpp"

#include <rte_bus.h>
#include <rte_dev.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include "runtime/text.hpp"

namespace hag::dp {

namespace {

bool looks_like_pci(const std::string& d) {
    // dddd:bb:dd.f or bb:dd.f
    return d.find(':') != std::string::npos && d.find('.') != std::string::npos &&
           d.find(',') == std::string::npos && d.rfind("net_", 0) != 0;
}

Result<std::uint16_t, std::string> find_port(const v1::PortConfig& pc) {
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
    if (rte_dev_probe(pc.device().c_str()) != 0) {
        return unexpected(
            fmt::format("port '{}': cannot create device '{}': {} (check the vdev "
                        "string and that the interface exists)",
                        pc.name(), pc.device(), rte_strerror(rte_errno)));
    }
    const std::string name = pc.device().substr(0, pc.device().find(','));
    if (rte_eth_dev_get_port_by_name(name.c_str(), &id) != 0) {
        return unexpected(fmt::format("port '{}': device '{}' is not an ethdev", pc.name(), name));
    }
    return id;
}

}  // namespace

Result<std::unique_ptr<Ports>, std::string> Ports::open(const v1::DataplaneConfig& cfg,
                                                        rte_mempool* pool) {
    auto ports = std::make_unique<Ports>();
    for (const auto& pc : cfg.ports()) {
        auto id = find_port(pc);
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
        rte_eth_conf conf{};
        int rc = rte_eth_dev_configure(p.id, 1, 1, &conf);
        if (rc != 0) {
            return unexpected(
                fmt::format("port '{}': configure failed: {}", p.name, rte_strerror(-rc)));
        }
        std::uint16_t rx = static_cast<std::uint16_t>(pc.rx_ring() ? pc.rx_ring() : 1024);
        std::uint16_t tx = static_cast<std::uint16_t>(pc.tx_ring() ? pc.tx_ring() : 1024);
        rte_eth_dev_adjust_nb_rx_tx_desc(p.id, &rx, &tx);
        const int socket = rte_eth_dev_socket_id(p.id);
        rc =
            rte_eth_rx_queue_setup(p.id, 0, rx, socket < 0 ? SOCKET_ID_ANY : socket, nullptr, pool);
        if (rc == 0) {
            rc = rte_eth_tx_queue_setup(p.id, 0, tx, socket < 0 ? SOCKET_ID_ANY : socket, nullptr);
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
        spdlog::info("port {} ({}) is DPDK port {}, MAC {}, {} RX / {} TX descriptors", p.name,
                     p.device, p.id, to_string(ports->ports_.back().mac), rx, tx);
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
