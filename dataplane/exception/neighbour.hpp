// The kernel's neighbour table over rtnetlink: hag asks the kernel (which owns the TAPs and the
// gateway's addresses, and so does ARP and ND on them) to resolve a next hop, and learns the
// result from neighbour events.
//
//   resolve(ifindex, addr): RTM_NEWNEIGH with NTF_USE — create the entry if needed and start
//                           resolution (or re-confirm a stale entry), like a packet would;
//   query(ifindex, addr):   RTM_GETNEIGH of one entry (an entry already REACHABLE sends no
//                           event when resolve() is asked for it: this reads its MAC);
//   request_dump():         RTM_GETNEIGH dump of both families;
//   poll(fn):               reads what is pending (dump replies and RTNLGRP_NEIGH events).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "hag/result.hpp"
#include "tables/session_table.hpp"

namespace hag::dp {

struct NeighbourEvent {
    bool removed = false;  // RTM_DELNEIGH
    int ifindex = 0;
    IpAddr addr;
    std::uint16_t state = 0;  // NUD_* bits
    bool has_mac = false;
    MacAddr mac{};
    // The entry carries a usable link-layer address (REACHABLE, STALE, DELAY, PROBE, PERMANENT,
    // NOARP).
    [[nodiscard]] bool usable() const noexcept;
};

using NeighbourFn = std::function<void(const NeighbourEvent&)>;

// Parses a buffer of netlink messages as received from a NETLINK_ROUTE socket. Calls fn for each
// well-formed RTM_NEWNEIGH / RTM_DELNEIGH of AF_INET / AF_INET6 with a destination. Bounds-checked:
// stops at the first message whose length is inconsistent. Returns how many messages it skipped
// as malformed (0 or 1, plus attribute-level problems).
std::size_t parse_neighbour_messages(const std::uint8_t* buf, std::size_t len,
                                     const NeighbourFn& fn);

class NeighbourSocket {
  public:
    static Result<std::unique_ptr<NeighbourSocket>, std::string> open();
    ~NeighbourSocket();
    NeighbourSocket(const NeighbourSocket&) = delete;
    NeighbourSocket& operator=(const NeighbourSocket&) = delete;

    Result<void, std::string> request_dump();
    Result<void, std::string> resolve(int ifindex, const IpAddr& addr);
    // RTM_GETNEIGH for one address: its current state arrives through poll().
    Result<void, std::string> query(int ifindex, const IpAddr& addr);
    // Non-blocking; returns the number of datagrams read. When the kernel reports that events
    // were lost (ENOBUFS), asks for a new dump.
    std::size_t poll(const NeighbourFn& fn);
    [[nodiscard]] std::uint64_t malformed() const noexcept { return malformed_; }
    [[nodiscard]] std::uint64_t overruns() const noexcept { return overruns_; }

  private:
    struct Token {
        explicit Token() = default;
    };

  public:
    NeighbourSocket(Token, int fd) : fd_(fd) {}

  private:
    int fd_;
    std::uint32_t seq_ = 1;
    std::uint64_t malformed_ = 0;
    std::uint64_t overruns_ = 0;
};

}  // namespace hag::dp
