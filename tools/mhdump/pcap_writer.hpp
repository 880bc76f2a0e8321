// Classic libpcap file format (magic 0xa1b2c3d4, version 2.4, microsecond timestamps), written
// little-endian, link type Ethernet. No libpcap dependency: the format is a 24-octet file header
// followed by a 16-octet header per record.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace hag::mhdump {

inline constexpr std::uint32_t kLinkTypeEthernet = 1;

class PcapWriter {
  public:
    // Appends records in memory; save() writes the file.
    void add(std::uint32_t ts_sec, std::uint32_t ts_usec, std::span<const std::uint8_t> frame);
    [[nodiscard]] std::vector<std::uint8_t> bytes() const;
    // Returns false (errno set) when the file cannot be written.
    [[nodiscard]] bool save(const std::string& path) const;

  private:
    std::vector<std::uint8_t> records_;
};

using MacAddress = std::array<std::uint8_t, 6>;

// Ethernet II frame: dst, src, EtherType, payload.
std::vector<std::uint8_t> ethernet_frame(const MacAddress& dst, const MacAddress& src,
                                         std::uint16_t ether_type,
                                         std::span<const std::uint8_t> payload);

}  // namespace hag::mhdump
