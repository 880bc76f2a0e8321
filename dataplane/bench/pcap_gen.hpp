// Input pcaps of the data-plane benchmark (read by net_pcap with infinite_rx=1, replayed in a
// loop). Every packet is valid traffic of one of the benchmark's subscribers (subscribers.hpp),
// so the stages under test should drop none of them.
//
//   downlink: Ethernet + IPv6 (core host -> the subscriber's inner host) + UDP + 2 octets of
//             payload = 64-octet frames (no FCS). hag sends them GRE-encapsulated: 116 octets.
//   uplink:   Ethernet + outer IPv6 (care-of address -> gateway) + GRE with key and sequence
//             number (12 octets) + the downlink's inner packet reversed (inner host -> core
//             host, IPv6 + UDP + 2 octets) = 116-octet frames. hag sends the inner packet in a
//             new Ethernet header: 64 octets.
// Packet k goes to subscriber perm[k % n] (a fixed pseudo-random permutation), so each pass
// over the file touches every subscriber once in an order with no locality.
#pragma once

#include <cstdint>
#include <string>

#include "hag/result.hpp"

namespace hag::dp::bench {

enum class Direction { kDownlink, kUplink };

inline constexpr std::uint32_t kDownlinkFrame = 64;
inline constexpr std::uint32_t kUplinkFrame = 116;

// Writes `packets` frames for subscribers 0..subscribers-1 to `path` (classic pcap, Ethernet).
Result<void, std::string> write_pcap(const std::string& path, Direction dir,
                                     std::uint32_t subscribers, std::uint32_t packets);

// The reorder scenario (uplink, two paths): subscriber i sends `per_subscriber` numbers
// 0..per_subscriber-1, even numbers from care_of(i), odd ones from care_of(i, true); the
// subscribers' packets are interleaved round-robin (in a fixed shuffled order) and, with
// probability permille/1000, a packet trades places with its subscriber's next one (that one
// comes from the other path, so each path stays in order). per_subscriber must exceed 65536:
// when net_pcap loops, each subscriber's numbers jump back by that much, which the reorder takes
// as a counter restart (one resync per subscriber and pass) instead of late packets.
Result<void, std::string> write_reorder_pcap(const std::string& path, std::uint32_t subscribers,
                                             std::uint32_t per_subscriber, unsigned permille);

}  // namespace hag::dp::bench
