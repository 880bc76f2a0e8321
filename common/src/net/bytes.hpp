// Big-endian reads and appends for the header codecs in this folder (private header).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace hag::net::detail {

inline std::uint16_t get16(std::span<const std::uint8_t> d, std::size_t at) noexcept {
    return static_cast<std::uint16_t>(d[at] << 8 | d[at + 1]);
}
inline std::uint32_t get32(std::span<const std::uint8_t> d, std::size_t at) noexcept {
    return static_cast<std::uint32_t>(d[at]) << 24 | static_cast<std::uint32_t>(d[at + 1]) << 16 |
           static_cast<std::uint32_t>(d[at + 2]) << 8 | d[at + 3];
}
inline void put8(std::vector<std::uint8_t>& out, std::uint32_t v) {
    out.push_back(static_cast<std::uint8_t>(v));
}
inline void put16(std::vector<std::uint8_t>& out, std::uint32_t v) {
    out.push_back(static_cast<std::uint8_t>(v >> 8));
    out.push_back(static_cast<std::uint8_t>(v));
}
inline void put32(std::vector<std::uint8_t>& out, std::uint32_t v) {
    put16(out, v >> 16);
    put16(out, v & 0xffffu);
}
inline void set16(std::span<std::uint8_t> d, std::size_t at, std::uint16_t v) noexcept {
    d[at] = static_cast<std::uint8_t>(v >> 8);
    d[at + 1] = static_cast<std::uint8_t>(v);
}

}  // namespace hag::net::detail
