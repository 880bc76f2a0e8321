// What the workers steer a received frame by (runtime/worker.hpp, several workers): the key of
// the session lookup the stage will make — downlink the inner destination, uplink the GRE key
// (also inside UDP) or, for a keyless GRE tunnel, the outer source, and for IP in IP the inner
// source. Plain bytes, no DPDK, bounds-checked against
// `len` (the fuzz target tests/fuzz/dataplane checks it against the stages' parsers).
#pragma once

#include <cstdint>

#include "pipeline/parse.hpp"

namespace hag::dp {

struct SteerKey {
    enum class Kind : std::uint8_t { kNone, kDestination, kUplinkKey, kCareOf, kInnerSource };
    Kind kind = Kind::kNone;
    std::uint32_t key = 0;  // kUplinkKey
    // kDestination: inner destination; kCareOf: outer source; kInnerSource: the inner source
    // of an IP-in-IP packet
    IpAddr addr;
    // kCareOf: the inner destination when the inner header parses (family kNone otherwise),
    // for keyless GRE from a remote anchor (pipeline/relay.hpp), whose session the stage finds
    // by it when the outer source is no care-of address.
    IpAddr inner_dst;
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

// Uplink (access side): outer IPv4 / IPv6 with protocol 47, or outer IPv4 / UDP to the data
// port (GRE in UDP, NAT traversal), then the GRE key after the optional checksum word; without a
// key, the outer source (and the inner destination: keyless GRE from a remote anchor). IP in IP
// (protocol 4 or 41) has no key: the session is the one whose prefix holds the inner source (the
// stage looks it up the same way). A NAT keepalive (UDP payload shorter than a GRE header) steers
// nowhere: the receiving worker counts and frees it.
inline SteerKey uplink_steer_key(const std::uint8_t* p, std::uint16_t len) noexcept {
    SteerKey k;
    const L2Info l2 = parse_l2(p, len);
    if (l2.l3_offset == 0) {
        return k;
    }
    const L3Info outer = parse_l3(p, len, l2.l3_offset, l2.ether_type);
    if (!outer.ok) {
        return k;
    }
    std::uint32_t gre = std::uint32_t{l2.l3_offset} + outer.header_len;
    // Headers end where the outer IP packet does (as the stage reads them), not at the frame's
    // end: Ethernet padding is not a GRE header.
    const std::uint32_t end = std::uint32_t{l2.l3_offset} + outer.total_len;
    if (outer.proto == kIpProtoIpInIp4 || outer.proto == kIpProtoIpInIp6) {
        const L3Info inner =
            parse_l3(p, static_cast<std::uint16_t>(end), static_cast<std::uint16_t>(gre),
                     outer.proto == kIpProtoIpInIp4 ? kEtherIpv4 : kEtherIpv6);
        if (inner.ok) {
            k.kind = SteerKey::Kind::kInnerSource;
            k.addr = inner.src;
        }
        return k;
    }
    if (outer.proto == kIpProtoUdp && outer.family == Family::kIpv4) {
        if (gre + 8 > end || get16(p + gre + 2) != kDataUdpPort) {
            return k;
        }
        gre += 8;
    } else if (outer.proto != kIpProtoGre) {
        return k;
    }
    if (gre + 4 > end) {
        return k;
    }
    const std::uint16_t flags = get16(p + gre);
    if ((flags & kGreK) == 0) {
        k.kind = SteerKey::Kind::kCareOf;
        k.addr = outer.src;
        const std::uint32_t in =
            gre + 4 + ((flags & kGreC) != 0 ? 4 : 0) + ((flags & kGreS) != 0 ? 4 : 0);
        if (in < end) {
            const L3Info inner = parse_l3(p, static_cast<std::uint16_t>(end),
                                          static_cast<std::uint16_t>(in), get16(p + gre + 2));
            if (inner.ok) {
                k.inner_dst = inner.dst;
            }
        }
        return k;
    }
    const std::uint32_t off = gre + 4 + ((flags & kGreC) != 0 ? 4 : 0);
    if (off + 4 > end) {
        return k;
    }
    k.kind = SteerKey::Kind::kUplinkKey;
    k.key = get32(p + off);
    return k;
}

}  // namespace hag::dp
