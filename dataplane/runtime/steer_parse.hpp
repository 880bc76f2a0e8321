// What the workers steer a received frame by (runtime/worker.hpp, several workers): the key of
// the session lookup the stage will make — downlink the inner destination, uplink the GRE key
// or, for a keyless tunnel, the outer source. Plain bytes, no DPDK, bounds-checked against
// `len` (the fuzz target tests/fuzz/dataplane checks it against the stages' parsers).
#pragma once

#include <cstdint>

#include "pipeline/parse.hpp"

namespace hag::dp {

struct SteerKey {
    enum class Kind : std::uint8_t { kNone, kDestination, kUplinkKey, kCareOf };
    Kind kind = Kind::kNone;
    std::uint32_t key = 0;  // kUplinkKey
    IpAddr addr;            // kDestination: inner destination; kCareOf: outer source
};

// Downlink (core side): Ethernet (up to two VLAN tags) + IPv4 / IPv6 destination.
inline SteerKey downlink_steer_key(const std::uint8_t* p, std::uint16_t len) noexcept {
    SteerKey k;
    const L2Info l2 = parse_l2(p, len);
    if (l2.l3_offset == 0) {
        return k;
    }
    const L3Info l3 = parse_l3(p, len, l2.l3_offset, l2.ether_type);
    if (l3.ok) {
        k.kind = SteerKey::Kind::kDestination;
        k.addr = l3.dst;
    }
    return k;
}

// Uplink (access side): outer IPv4 / IPv6 with protocol 47, then the GRE key after the optional
// checksum word; without a key, the outer source.
inline SteerKey uplink_steer_key(const std::uint8_t* p, std::uint16_t len) noexcept {
    SteerKey k;
    const L2Info l2 = parse_l2(p, len);
    if (l2.l3_offset == 0) {
        return k;
    }
    const L3Info outer = parse_l3(p, len, l2.l3_offset, l2.ether_type);
    if (!outer.ok || outer.proto != kIpProtoGre) {
        return k;
    }
    const std::uint32_t gre = std::uint32_t{l2.l3_offset} + outer.header_len;
    if (gre + 4 > len) {
        return k;
    }
    const std::uint16_t flags = get16(p + gre);
    if ((flags & kGreK) == 0) {
        k.kind = SteerKey::Kind::kCareOf;
        k.addr = outer.src;
        return k;
    }
    const std::uint32_t off = gre + 4 + ((flags & kGreC) != 0 ? 4 : 0);
    if (off + 4 > len) {
        return k;
    }
    k.kind = SteerKey::Kind::kUplinkKey;
    k.key = get32(p + off);
    return k;
}

}  // namespace hag::dp
