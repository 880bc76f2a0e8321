// hag-gen's DPDK side: frames into real mbufs, and the live mode that sends a profile over one
// port (any ethdev: net_ring, memif, af_packet, net_pcap, a NIC bound to vfio-pci) and receives
// on another (or the same), reporting rate, loss, reordering and latency.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>
#include <string>
#include <vector>

#include "gen.hpp"
#include "hag/result.hpp"

namespace hag::gen {

// Appends the frame of `s` (stamped with `tsc`) to the empty mbuf `m`. Fails when the mbuf's
// data room is too small; `m` is then unchanged.
Result<void, std::string> fill_mbuf(rte_mbuf* m, Direction d, const PacketSpec& s,
                                    std::uint64_t tsc);
// The stamp at the end of a received mbuf (any segment layout), if any.
std::optional<Stamp> mbuf_stamp(const rte_mbuf* m);

struct LiveOptions {
    std::vector<std::string> vdevs;  // --vdev arguments for the EAL
    std::string eal_args = "--no-huge --no-pci -m 512";
    std::string lcores = "0";
    std::uint16_t tx_port = 0;
    int rx_port = -1;         // -1: the TX port (net_ring: its own loopback)
    double seconds = 2;       // sending time (0: until `count`)
    std::uint64_t count = 0;  // packets to send (0: until `seconds`)
    double pps = 0;           // offered rate (0: as fast as the port takes them)
    double drain_seconds = 0.2;
    bool eal_ready = false;  // the EAL runs already (tests): the vdevs are created with
                             // rte_vdev_init and the ports given by id
};

struct LiveReport {
    std::uint64_t sent = 0, tx_refused = 0, generator_dropped = 0;
    double send_seconds = 0, tx_pps = 0, rx_pps = 0;
    RxReport rx;
};

// Initialises the EAL (once per process), runs, returns the figures.
Result<LiveReport, std::string> run_live(const Profile& p, const LiveOptions& o);
std::string to_json(const LiveReport& r, const Profile& p);

}  // namespace hag::gen
