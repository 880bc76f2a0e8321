// NAT traversal: the UDP port a NAT gave a path's user data, learnt from the data itself.
//
// hag-control programs a NATed path with the port the NAT mapped the MAG's signalling (UDP
// 5436) to, PathConfig::udp_port. A NAT that maps each destination port apart (RFC 4787
// "address-dependent" or "address and port-dependent" mapping, some CGNs) gives the data flow
// (to port 5437) another outside port. Like IKE's NAT-T port float (RFC 7296 §2.23), the uplink
// then accepts GRE-in-UDP of the session from the path's care-of address (the NAT's address)
// from any source port, once the GRE key has found the session and the inner source has passed
// the anti-spoofing check, and the downlink follows the port the path's data last came from.
// Counted as the uplink event `nat_port_learned`; off with the data plane's
// `nat_port_learning: false` (the security trade-off is in docs/dataplane.md).
//
// Threading: SessionState::path_nat_port[i] belongs to the worker that serves the session (its
// uplink writes it, its downlink reads it; every session has one owner worker). The main lcore
// writes it only in SessionTable::upsert, before publishing the new config, to carry a port
// over to where the same path (BID and care-of address) sits in the new config and to clear it
// everywhere else. A worker that is still deciding with the old config at that instant can
// store one stale port afterwards; the path's next data packet (from whichever port) corrects
// it, since every accepted GRE-in-UDP packet sets the port it came from.
#pragma once

#include <atomic>
#include <cstdint>

#include "tables/session_table.hpp"

namespace hag::dp {

// The downlink's destination port of path `pi` (udp_port != 0).
[[nodiscard]] inline std::uint16_t nat_data_port(const SessionState& st, unsigned pi,
                                                 const PathConfig& path) noexcept {
    const std::uint16_t learnt = st.path_nat_port[pi].load(std::memory_order_relaxed);
    return learnt != 0 ? learnt : path.udp_port;
}

// The uplink: the one GRE path of cfg whose care-of address is `src` and that is NATed (UDP),
// or kMaxPaths when there is none or more than one (two NATed paths of one session behind one
// address: the port tells them apart, so an unknown port cannot be given to either).
[[nodiscard]] inline unsigned nat_float_path(const SessionConfig& cfg, const IpAddr& src) noexcept {
    unsigned found = kMaxPaths;
    for (unsigned i = 0; i < cfg.n_paths && i < kMaxPaths; ++i) {
        const PathConfig& p = cfg.paths[i];
        if (p.udp_port != 0 && p.tunnel == Tunnel::kGre && p.coa == src) {
            if (found != kMaxPaths) {
                return kMaxPaths;
            }
            found = i;
        }
    }
    return found;
}

// The uplink, after the anti-spoofing checks passed for a GRE-in-UDP packet from `udp_src` on
// path `pi`: the downlink follows that port. True when the port changed (one event).
inline bool nat_note_port(SessionState& st, unsigned pi, const PathConfig& path,
                          std::uint16_t udp_src) noexcept {
    const std::uint16_t want = udp_src == path.udp_port ? 0 : udp_src;
    if (st.path_nat_port[pi].load(std::memory_order_relaxed) == want) {
        return false;
    }
    st.path_nat_port[pi].store(want, std::memory_order_relaxed);
    return true;
}

// The main lcore, in SessionTable::upsert before publishing `next` (old = the replaced config,
// null for a new session): a learnt port stays with its path (same BID, same care-of address,
// still NATed) wherever the path now sits; every other slot is cleared.
inline void nat_carry_ports(SessionState& st, const SessionConfig* old,
                            const SessionConfig& next) noexcept {
    std::uint16_t carried[kMaxPaths] = {};
    if (old != nullptr) {
        for (unsigned i = 0; i < next.n_paths && i < kMaxPaths; ++i) {
            const PathConfig& n = next.paths[i];
            for (unsigned j = 0; j < old->n_paths && j < kMaxPaths; ++j) {
                const PathConfig& o = old->paths[j];
                if (n.udp_port != 0 && o.udp_port != 0 && o.bid == n.bid && o.coa == n.coa) {
                    carried[i] = st.path_nat_port[j].load(std::memory_order_relaxed);
                    break;
                }
            }
        }
    }
    for (unsigned i = 0; i < kMaxPaths; ++i) {
        st.path_nat_port[i].store(carried[i], std::memory_order_relaxed);
    }
}

}  // namespace hag::dp
