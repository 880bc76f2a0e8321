// The benchmark's synthetic subscribers: one formula from a subscriber index to everything the
// session table and the packet generator need, so that the pcaps and the table always agree.
//
// Subscriber i (0 <= i < kMaxSubscribers), all in 2001:db8::/32 (RFC 3849):
//   home network prefix   2001:db8:(0x100 + i / 65536):(i % 65536)::/64
//   inner host address    prefix::1 (downlink destination, uplink source)
//   care-of address       2001:db8:c0a::(i / 65536):(i % 65536)   (updates switch to
//   2001:db8:c0b::...) uplink GRE key        0x10000000 + i downlink GRE key      0x20000000 + i,
//   changed by updates
// The gateway's tunnel address is 2001:db8:a::1, the core host 2001:db8:ffff::1.
#pragma once

#include <cstdint>

#include "tables/session_table.hpp"

namespace hag::dp::bench {

inline constexpr std::uint32_t kMaxSubscribers = 1u << 24;

IpAddr inner_host(std::uint32_t i);
IpPrefix home_prefix(std::uint32_t i);
// alt = the other care-of address updates switch to.
IpAddr care_of(std::uint32_t i, bool alt = false);
// The care-of address of path k (0-based) of a session made by session_config(i, .., paths > k):
// care_of(i) for k = 0, 2001:db8:d0k::(i / 65536):(i % 65536) for k >= 1. tools/hag-gen stripes
// the uplink over these.
IpAddr path_coa(std::uint32_t i, unsigned k);
// With session_config(.., ipv4 = true) the session also owns the IPv4 home address
// 198.18.0.0 + i (/32, RFC 2544's benchmarking range; i < kMaxIpv4Subscribers).
inline constexpr std::uint32_t kMaxIpv4Subscribers = 1u << 17;
IpAddr inner_host_v4(std::uint32_t i);
IpAddr core_host_v4();  // 198.51.100.1
IpAddr gateway_address();
IpAddr core_host();
inline std::uint32_t uplink_key(std::uint32_t i) {
    return 0x10000000u + i;
}
inline std::uint32_t downlink_key(std::uint32_t i) {
    return 0x20000000u + i;
}

inline constexpr MacAddr kAccessNextHopMac{0x02, 0, 0, 0, 0, 0x02};  // toward every CoA
inline constexpr MacAddr kCoreNextHopMac{0x02, 0, 0, 0, 0, 0x01};    // the core router

// Session i with one path (BID 1) leaving by `access_port`; static next-hop MACs.
// paths > 1: a striped session (weighted by default) whose path k (0-based) has care-of address
// 2001:db8:d0k::(i / 65536):(i % 65536) (k >= 1), downlink key 0x20000000 + i, and weight
// 1000 x (k + 1) kbit/s, so the scheduler does real work (unequal shares).
SessionConfig session_config(std::uint32_t i, std::uint16_t access_port, const MacAddr& port_mac,
                             unsigned paths = 1, StripingMode striping = StripingMode::kWeighted,
                             bool ipv4 = false);

}  // namespace hag::dp::bench
