// Messages to and from the mobility signalling socket, and the time the LMA and MAG logic is
// given (lma.hpp, mag.hpp).
#pragma once

#include <cstdint>
#include <optional>

#include "binding_cache.hpp"
#include "hag/mh/mh.hpp"

namespace hag::control {

// Where a message came from or goes to.
struct Peer {
    bool udp = false;      // IPv4 transport over UDP 5436 (else raw MH over IPv6)
    Ipv6Address local{};   // the LMA's address (IPv4-mapped when udp)
    Ipv6Address remote{};  // the MAG's address (IPv4-mapped when udp)
    std::uint16_t remote_port = 0;
    // MIPv6 home registration (RFC 6275): the mobile node's home address, from the Home Address
    // destination option of its BU; the BA goes to `remote` (the care-of address) with a Type 2
    // Routing Header carrying it.
    std::optional<Ipv6Address> home_address;
    bool operator==(const Peer&) const = default;
};

struct Outbound {
    Peer to;
    mh::Message message;
};

struct LmaTime {
    Seconds now = 0;              // monotonic seconds (binding lifetimes)
    std::int64_t now_ms = 0;      // monotonic milliseconds (rate limiting)
    std::uint64_t timestamp = 0;  // wall clock, RFC 5213 §8.8 format (hag/mh/timestamp.hpp)
};

}  // namespace hag::control
