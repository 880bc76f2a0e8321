// DPDK ports of the data plane: found by PCI address or created from a vdev string, configured
// with one RX and one TX queue, started; closed again on destruction.
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
};

class Ports {
  public:
    // Probes and starts every configured port. Errors say which port and what to check.
    static Result<std::unique_ptr<Ports>, std::string> open(const v1::DataplaneConfig& cfg,
                                                            rte_mempool* pool);
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
