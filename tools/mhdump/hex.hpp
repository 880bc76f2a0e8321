// Hex text <-> bytes for hag-mhdump.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hag::mhdump {

// Hex digits, optionally separated by spaces, colons, newlines or tabs, with an optional "0x"
// prefix; an odd number of digits or any other character is an error.
std::optional<std::vector<std::uint8_t>> parse_hex(std::string_view text);
// Lower-case hex, no separators.
std::string to_hex(std::span<const std::uint8_t> bytes);
// 16 octets per line, grouped by 2, with offsets ("0000  3b01 0500 ...").
std::string hex_dump(std::span<const std::uint8_t> bytes);

}  // namespace hag::mhdump
