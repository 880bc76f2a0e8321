// Big-endian byte helpers for the codec (internal).
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace hag::mh::wire {

inline void put8(std::vector<std::uint8_t>& b, std::uint8_t v) {
    b.push_back(v);
}
inline void put16(std::vector<std::uint8_t>& b, std::uint16_t v) {
    b.push_back(static_cast<std::uint8_t>(v >> 8));
    b.push_back(static_cast<std::uint8_t>(v));
}
inline void put32(std::vector<std::uint8_t>& b, std::uint32_t v) {
    put16(b, static_cast<std::uint16_t>(v >> 16));
    put16(b, static_cast<std::uint16_t>(v));
}
inline void put64(std::vector<std::uint8_t>& b, std::uint64_t v) {
    put32(b, static_cast<std::uint32_t>(v >> 32));
    put32(b, static_cast<std::uint32_t>(v));
}
template <typename C>
inline void put_bytes(std::vector<std::uint8_t>& b, const C& c) {
    b.insert(b.end(), c.begin(), c.end());
}
// Readers: callers have checked the span is long enough.
inline std::uint16_t get16(std::span<const std::uint8_t> s, std::size_t o) {
    return static_cast<std::uint16_t>(s[o] << 8 | s[o + 1]);
}
inline std::uint32_t get32(std::span<const std::uint8_t> s, std::size_t o) {
    return std::uint32_t{get16(s, o)} << 16 | get16(s, o + 2);
}
inline std::uint64_t get64(std::span<const std::uint8_t> s, std::size_t o) {
    return std::uint64_t{get32(s, o)} << 32 | get32(s, o + 4);
}
template <std::size_t N>
inline std::array<std::uint8_t, N> get_array(std::span<const std::uint8_t> s, std::size_t o) {
    std::array<std::uint8_t, N> a{};
    std::memcpy(a.data(), s.data() + o, N);
    return a;
}

}  // namespace hag::mh::wire
