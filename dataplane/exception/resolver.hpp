// Next-hop resolution through the kernel: for every next hop in the NextHopTable, hag asks the
// kernel to resolve its address on the port's TAP (ARP for IPv4, ND for IPv6; the kernel owns the
// TAP and the gateway's addresses) and copies the MAC the kernel learns into the table.
//
// Main lcore only. Timing: an unresolved next hop is asked for again after 1 s when a worker
// dropped a packet for it (`wanted`), after 3 s otherwise; a resolved one is re-confirmed every
// 30 s (the kernel then probes it unicast, and reports a changed MAC or a failure). A next hop
// whose kernel entry FAILED becomes unresolved (packets to it are dropped as no_next_hop); one
// whose entry was deleted keeps its MAC and is asked for again at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "exception/neighbour.hpp"
#include "hag/v1/config.pb.h"
#include "pipeline/uplink_decap.hpp"
#include "runtime/ports.hpp"
#include "tables/next_hop_table.hpp"

namespace hag::dp {

// The address whose MAC a packet leaving by `port` toward `dst` needs: the port's configured
// router for dst's family (next_hop_ipv4 / next_hop_ipv6), or dst itself when none is set
// (on-link). An address family the port has no router for is on-link.
IpAddr next_hop_address(const v1::PortConfig& port, const IpAddr& dst);

// acquire()s the next hop for a packet leaving by `port` toward `dst`.
Result<NextHopTable::Index, std::string> acquire_next_hop(NextHopTable& table,
                                                          const v1::DataplaneConfig& cfg,
                                                          const Port& port, const IpAddr& dst);
// Fills the layer-2 part of a path leaving by access port `port`: the port, its MAC and the next
// hop toward the care-of address. A static MAC wins: the path's own (`path_mac`, may be null),
// else the port's `next_hop_mac`; otherwise the next hop is acquire()d (resolved at run time)
// and must be given back with release_path_next_hops(). Static sessions and programmed ones
// (dataplane/programmer) both come through here.
Result<void, std::string> attach_path_next_hop(PathConfig& path, const Port& port,
                                               const MacAddr* path_mac, NextHopTable& table,
                                               const v1::DataplaneConfig& cfg);
// The same for a remote anchor of a session (distributed anchoring): its next hop toward
// anchor.anchor on `port`.
Result<void, std::string> attach_anchor_next_hop(RemoteAnchorConfig& anchor, const Port& port,
                                                 const MacAddr* mac, NextHopTable& table,
                                                 const v1::DataplaneConfig& cfg);
// release()s the next hops attach_path_next_hop() / attach_anchor_next_hop() acquired for the
// paths and remote anchors of `s`.
void release_path_next_hops(const SessionConfig& s, NextHopTable& table);
// Without a static core next-hop MAC: acquires the core port's next_hop_ipv4 / next_hop_ipv6
// into uplink.core_next_hop_v4 / _v6.
Result<void, std::string> acquire_core_next_hops(NextHopTable& table,
                                                 const v1::DataplaneConfig& cfg, const Port& core,
                                                 UplinkCtx& uplink);

class Resolver {
  public:
    Resolver(NextHopTable& table, std::unique_ptr<NeighbourSocket> sock);
    // The TAP interface through which next hops of DPDK port `port` are resolved.
    void add_port(std::uint16_t port, int tap_ifindex, std::string name);
    // Reads neighbour events and triggers what is due. `now_ms`: a monotonic clock.
    void service(std::uint64_t now_ms);
    // {"triggers":N,"malformed":N,"overruns":N,"entries":[{"port","address","mac"}...]}
    [[nodiscard]] std::string json() const;

    static constexpr std::uint64_t kRetryWantedMs = 1000;
    static constexpr std::uint64_t kRetryIdleMs = 3000;
    static constexpr std::uint64_t kRefreshMs = 30000;

  private:
    void on_event(const NeighbourEvent& ev);
    [[nodiscard]] int ifindex_of(std::uint16_t port) const noexcept;
    [[nodiscard]] const std::string& name_of(std::uint16_t port) const noexcept;

    struct PortTap {
        std::uint16_t port;
        int ifindex;
        std::string name;
    };
    NextHopTable& table_;
    std::unique_ptr<NeighbourSocket> sock_;
    std::vector<PortTap> ports_;
    std::vector<std::uint64_t> last_ask_;  // per index; 0 = never asked
    std::uint64_t next_scan_ = 0;
    std::uint64_t triggers_ = 0;
    bool dumped_ = false;
};

}  // namespace hag::dp
