// hag-gen's payload stamp: the last 20 octets of every generated packet that has room for them
// (the gateway adds or removes headers in front, never at the end, so the stamp is found from the
// frame's end on both sides of it). No DPDK: the fuzz target and the tests include it alone.
//
//   offset from the end  -20: magic "hgn1" | -16: flow | -12: sequence number within the flow |
//                        -8: transmit timestamp (TSC, 0 in pcaps)
// flow: downlink subscriber << 1 | 1 for IPv4; uplink subscriber << 1 (the session's GRE
// sequence space, whatever the inner family: the number is the GRE sequence number).
// All big-endian.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

namespace hag::gen {

inline constexpr std::uint32_t kStampMagic = 0x68676e31;  // "hgn1"
inline constexpr std::size_t kStampSize = 20;

struct Stamp {
    std::uint32_t flow = 0;
    std::uint32_t seq = 0;
    std::uint64_t tsc = 0;
    bool operator==(const Stamp&) const = default;
};

inline std::uint32_t flow_id(std::uint32_t subscriber, bool ipv4) {
    return subscriber << 1 | (ipv4 ? 1u : 0u);
}

// Writes the stamp into the last kStampSize octets of `out` (which must have that many).
inline void put_stamp(std::span<std::uint8_t> out, const Stamp& s) {
    if (out.size() < kStampSize) {
        return;
    }
    std::uint8_t* p = out.data() + out.size() - kStampSize;
    auto put = [&p](std::uint64_t v, int n) {
        for (int k = n - 1; k >= 0; --k) {
            *p++ = static_cast<std::uint8_t>(v >> (8 * k));
        }
    };
    put(kStampMagic, 4);
    put(s.flow, 4);
    put(s.seq, 4);
    put(s.tsc, 8);
}

// The stamp at the end of `frame`, if the frame is long enough and carries the magic. Any bytes
// are accepted as input (received traffic).
inline std::optional<Stamp> parse_stamp(std::span<const std::uint8_t> frame) {
    if (frame.size() < kStampSize) {
        return std::nullopt;
    }
    const std::uint8_t* p = frame.data() + frame.size() - kStampSize;
    auto get = [&p](int n) {
        std::uint64_t v = 0;
        for (int k = 0; k < n; ++k) {
            v = v << 8 | *p++;
        }
        return v;
    };
    if (get(4) != kStampMagic) {
        return std::nullopt;
    }
    Stamp s;
    s.flow = static_cast<std::uint32_t>(get(4));
    s.seq = static_cast<std::uint32_t>(get(4));
    s.tsc = get(8);
    return s;
}

}  // namespace hag::gen
