// The main-lcore side of the exception path: one kernel TAP per port (named by the port's
// tap_name, default "hag-<port name>", carrying the port's MAC), two rings per port, and the
// next-hop resolver.
//
//   worker --(to_kernel ring, MP/SC)--> main lcore --write()--> TAP --> kernel stack, sockets
//   kernel --> TAP --read()--> main lcore --(from_kernel ring, SP/SC)--> worker --> port TX
//
// The main lcore never transmits on a port itself: each port's TX queue belongs to one worker.
// Why a kernel TAP through /dev/net/tun rather than a net_tap ethdev: exception traffic is a
// trickle that the main lcore moves with plain non-blocking read()/write(); a TAP fd needs no
// extra DPDK port, queue, mempool or lcore, does not appear among the data ports (their counters
// and telemetry stay about forwarding), can attach to a persistent TAP an operator made (with its
// addresses already configured) and lives in the network namespace hag runs in.
#pragma once

#include <rte_mempool.h>
#include <rte_ring.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "exception/kernel_filter.hpp"
#include "exception/punt.hpp"
#include "exception/resolver.hpp"
#include "exception/tap.hpp"
#include "hag/v1/config.pb.h"
#include "runtime/ports.hpp"
#include "tables/next_hop_table.hpp"

namespace hag::dp {

// The gateway's own addresses per the configuration: every port's `addresses` and every static
// path's `local` (tunnel) address.
Result<exc::OwnAddresses, std::string> own_addresses(const v1::DataplaneConfig& cfg);

class ExceptionPath {
  public:
    // Opens a TAP and two rings per port and the neighbour socket.
    static Result<std::unique_ptr<ExceptionPath>, std::string> open(const v1::DataplaneConfig& cfg,
                                                                    const Ports& ports,
                                                                    NextHopTable& next_hops,
                                                                    rte_mempool* pool);
    ~ExceptionPath();
    ExceptionPath(const ExceptionPath&) = delete;
    ExceptionPath& operator=(const ExceptionPath&) = delete;

    // The worker-side context of DPDK port `port` (rings and own addresses; counters zero).
    // Points a worker's context (its counters stay where they are) at this port's rings.
    void attach_worker(std::uint16_t port, PuntCtx& c) const;
    // One round: frames from workers to the TAPs, frames from the TAPs to workers, neighbour
    // events and due resolutions. Returns true when it moved a frame (call again soon).
    bool service(std::uint64_t now_ms);
    // Counters as a JSON object; `workers` maps a port id to the worker contexts serving it.
    [[nodiscard]] std::string json(
        const std::map<std::uint16_t, std::vector<const PuntCtx*>>& workers) const;

    struct PortPath {
        std::uint16_t port = 0;
        std::string name;
        std::unique_ptr<Tap> tap;
        rte_ring* to_kernel = nullptr;
        rte_ring* from_kernel = nullptr;
        std::uint64_t to_tap = 0;              // frames written to the TAP
        std::uint64_t tap_write_errors = 0;    // the kernel refused a frame (queue full, ...)
        std::uint64_t from_tap = 0;            // frames read from the TAP
        std::uint64_t from_tap_ring_full = 0;  // dropped: the ring to the worker was full
        std::uint64_t from_tap_oversize = 0;   // dropped: larger than an mbuf
        std::uint64_t no_mbuf = 0;             // a TAP read waited: the pool was empty
        // dropped: the kernel's Parameter Problem for a BU's Home Address option
        // (exception/kernel_filter.hpp)
        std::uint64_t param_problem_suppressed = 0;
    };

  private:
    struct Token {
        explicit Token() = default;
    };

  public:
    ExceptionPath(Token, exc::OwnAddresses own, rte_mempool* pool) : own_(own), pool_(pool) {}

  private:
    exc::OwnAddresses own_;
    rte_mempool* pool_;
    std::vector<PortPath> ports_;
    std::unique_ptr<Resolver> resolver_;
};

}  // namespace hag::dp
