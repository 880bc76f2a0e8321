// The flow policy's classifier key of one IP packet (issue #8): what rte_acl reads, built from
// the packet's bytes. Free of DPDK headers, so the libFuzzer target (tests/fuzz/policy) builds
// it without the data plane.
//
// Bounds: every read is checked against `total_len`, the IP packet's length as its header
// claims it (the caller checked that against the buffer). A packet too short for its L4 header,
// an extension header chain that runs off the end, or a later fragment is classified without
// ports / SPI. No allocation, bounded loops (at most four IPv6 extension headers).
#pragma once

#include <cstdint>
#include <cstring>

namespace hag::dp {

// From the subscriber's side (hag/policy/policy.hpp's FlowKey), in network byte order. IPv4
// addresses are IPv4-mapped IPv6 (::ffff:a.b.c.d), as the policy model holds them.
struct alignas(8) PolicyKey {
    std::uint8_t proto = 0;
    std::uint8_t pad[3]{};
    std::uint32_t dscp = 0;  // big-endian, 0..63
    std::uint8_t local[16]{};
    std::uint8_t remote[16]{};
    std::uint16_t local_port = 0;  // big-endian; 0 when the protocol has none
    std::uint16_t remote_port = 0;
    std::uint32_t spi = 0;  // big-endian; ESP / AH only
};
static_assert(sizeof(PolicyKey) == 48);

inline constexpr std::uint8_t kPolicyProtoTcp = 6;
inline constexpr std::uint8_t kPolicyProtoUdp = 17;
inline constexpr std::uint8_t kPolicyProtoEsp = 50;
inline constexpr std::uint8_t kPolicyProtoAh = 51;
inline constexpr std::uint8_t kPolicyProtoSctp = 132;
inline constexpr std::uint8_t kPolicyProtoUdpLite = 136;

// `ip`: the IP header, `total_len` bytes of packet readable from it; `v6`: its family;
// `header_len`: 40, or the IPv4 IHL x 4 (20..60, <= total_len); `downlink`: the subscriber is
// the destination (else the source).
inline void policy_key_from(const std::uint8_t* ip, std::uint16_t total_len, bool v6,
                            std::uint16_t header_len, bool downlink, PolicyKey& k) noexcept {
    k = PolicyKey{};
    auto be32 = [](std::uint32_t v) {
        std::uint32_t out = 0;
        const std::uint8_t b[4] = {static_cast<std::uint8_t>(v >> 24),
                                   static_cast<std::uint8_t>(v >> 16),
                                   static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
        std::memcpy(&out, b, 4);
        return out;
    };
    std::uint32_t off = header_len;
    std::uint8_t proto = 0;
    bool l4 = true;
    if (!v6) {
        if (total_len < 20 || header_len < 20 || header_len > total_len) {
            return;
        }
        k.local[10] = k.local[11] = k.remote[10] = k.remote[11] = 0xff;
        std::memcpy(k.local + 12, ip + (downlink ? 16 : 12), 4);
        std::memcpy(k.remote + 12, ip + (downlink ? 12 : 16), 4);
        k.dscp = be32(ip[1] >> 2);
        proto = ip[9];
        l4 = ((ip[6] << 8 | ip[7]) & 0x1fff) == 0;  // not a later fragment
    } else {
        if (total_len < 40) {
            return;
        }
        std::memcpy(k.local, ip + (downlink ? 24 : 8), 16);
        std::memcpy(k.remote, ip + (downlink ? 8 : 24), 16);
        k.dscp = be32(static_cast<std::uint32_t>(((ip[0] & 0x0f) << 2) | (ip[1] >> 6)));
        proto = ip[6];
        off = 40;
        // Hop-by-hop, routing, destination options and fragment headers (at most four).
        for (int n = 0; n < 4 && l4; ++n) {
            if (proto != 0 && proto != 43 && proto != 60 && proto != 44) {
                break;
            }
            if (off + 8 > total_len) {
                l4 = false;
                break;
            }
            const std::uint8_t next = ip[off];
            if (proto == 44) {
                l4 = ((ip[off + 2] << 8 | ip[off + 3]) & 0xfff8) == 0;  // first fragment only
                off += 8;
            } else {
                off += (std::uint32_t{ip[off + 1]} + 1) * 8;
            }
            proto = next;
        }
    }
    k.proto = proto;
    if (!l4) {
        return;
    }
    switch (proto) {
        case kPolicyProtoTcp:
        case kPolicyProtoUdp:
        case kPolicyProtoSctp:
        case kPolicyProtoUdpLite:
            if (off + 4 <= total_len) {
                std::uint16_t sp = 0, dp = 0;
                std::memcpy(&sp, ip + off, 2);  // kept in network order, as rte_acl reads them
                std::memcpy(&dp, ip + off + 2, 2);
                k.local_port = downlink ? dp : sp;
                k.remote_port = downlink ? sp : dp;
            }
            break;
        case kPolicyProtoEsp:
            if (off + 4 <= total_len) {
                std::memcpy(&k.spi, ip + off, 4);
            }
            break;
        case kPolicyProtoAh:
            if (off + 8 <= total_len) {
                std::memcpy(&k.spi, ip + off + 4, 4);
            }
            break;
        default:
            break;
    }
}

}  // namespace hag::dp
