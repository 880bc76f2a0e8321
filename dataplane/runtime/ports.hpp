// DPDK ports of the data plane: found by PCI address or created from a vdev string, configured
// with one TX queue per worker and as many RX queues as the device has, up to one per worker
// (RSS over them where the device hashes), started; closed again on destruction.
#pragma once

#include <rte_mempool.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hag/result.hpp"
#include "hag/v1/config.pb.h"
#include "tables/session_table.hpp"

namespace hag::dp {

struct Port {
    std::string name;
    std::string device;
    v1::PortConfig::Role role = v1::PortConfig::ROLE_UNSPECIFIED;
    std::uint16_t id = 0;
    MacAddr mac{};
    MacAddr next_hop_mac{};
    std::uint16_t rx_queues = 1;  // RX queue i is polled by worker i
    bool rss = false;             // the device spreads RX over the queues by RSS
};

class Ports {
  public:
    // Probes and starts every configured port. Errors say which port and what to check.
    // `workers` TX queues per port (each worker its own). A net_af_packet vdev without
    // `qpairs` gets qpairs=workers (the kernel's fan-out then spreads flows over them).
    static Result<std::unique_ptr<Ports>, std::string> open(const v1::DataplaneConfig& cfg,
                                                            rte_mempool* pool,
                                                            std::uint16_t workers = 1);
    ~Ports();
    Ports(const Ports&) = delete;
    Ports& operator=(const Ports&) = delete;
    Ports() = default;

    [[nodiscard]] const std::vector<Port>& all() const noexcept { return ports_; }
    [[nodiscard]] const Port* by_name(const std::string& name) const noexcept;
    [[nodiscard]] const Port* first(v1::PortConfig::Role role) const noexcept;

  private:
    std::vector<Port> ports_;
};

}  // namespace hag::dp
