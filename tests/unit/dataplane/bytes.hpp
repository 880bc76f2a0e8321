// Big-endian byte helpers for the data plane's unit tests that build and read frames by hand.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace hag::test {

using Bytes = std::vector<std::uint8_t>;

inline void put16(Bytes& b, std::uint16_t v) {
    b.push_back(static_cast<std::uint8_t>(v >> 8));
    b.push_back(static_cast<std::uint8_t>(v));
}
inline void put32(Bytes& b, std::uint32_t v) {
    put16(b, static_cast<std::uint16_t>(v >> 16));
    put16(b, static_cast<std::uint16_t>(v));
}
inline std::uint16_t get16(const Bytes& b, std::size_t o) {
    return static_cast<std::uint16_t>(b[o] << 8 | b[o + 1]);
}
inline std::uint32_t get32(const Bytes& b, std::size_t o) {
    return std::uint32_t{get16(b, o)} << 16 | get16(b, o + 2);
}
inline void append(Bytes& b, const Bytes& x) {
    b.insert(b.end(), x.begin(), x.end());
}

}  // namespace hag::test
