// The sample exchange as a classic pcap: Ethernet + IPv6 (next header 135) + Mobility Header.
#pragma once

#include <cstdint>
#include <vector>

#include "sample.hpp"

namespace hag::mhdump {

// One Ethernet frame per message (locally administered MACs 02:00:00:00:00:01 for the MAG side,
// :02 for the LMA), hop limit 64, MH checksum filled over the pseudo-header, one second apart.
std::vector<std::uint8_t> exchange_pcap(const std::vector<SampleMessage>& messages);

}  // namespace hag::mhdump
