// Bounds-checked parsing of the headers the fast path looks at. Every accessor checks the
// mbuf's first segment length first; headers spread over segments are treated as malformed
// (the RX paths of hag receive into single-segment mbufs).
#pragma once

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>

#include <cstdint>
#include <cstring>

#include "tables/session_table.hpp"

namespace hag::dp {

inline constexpr std::uint16_t kEtherIpv4 = 0x0800;
inline constexpr std::uint16_t kEtherIpv6 = 0x86DD;
inline constexpr std::uint16_t kEtherVlan = 0x8100;
inline constexpr std::uint16_t kEtherQinQ = 0x88A8;
inline constexpr std::uint8_t kIpProtoGre = 47;

// Where the L3 header starts, and which one it is; 0 when the frame is too short, has more than
// two VLAN tags, or carries neither IPv4 nor IPv6.
struct L2Info {
    std::uint16_t l3_offset = 0;
    std::uint16_t ether_type = 0;  // kEtherIpv4 / kEtherIpv6 / other
};

inline L2Info parse_l2(const rte_mbuf* m) noexcept {
    const auto* p = rte_pktmbuf_mtod(m, const std::uint8_t*);
    const std::uint16_t len = rte_pktmbuf_data_len(m);
    std::uint16_t off = 12;
    for (int tags = 0; tags <= 2; ++tags) {
        if (off + 2 > len) {
            return {};
        }
        const auto type = static_cast<std::uint16_t>(p[off] << 8 | p[off + 1]);
        if (type == kEtherVlan || type == kEtherQinQ) {
            off += 4;
            continue;
        }
        return {static_cast<std::uint16_t>(off + 2), type};
    }
    return {};  // more than two tags
}

// A validated IP header view at `off`: version, header length and total length checked against
// the data present. l3_len is the IP packet length claimed by the header (<= available).
struct L3Info {
    bool ok = false;
    Family family = Family::kNone;
    std::uint16_t header_len = 0;  // IPv4 IHL * 4, IPv6 40
    std::uint16_t total_len = 0;   // header + payload per the header
    std::uint8_t proto = 0;        // IPv4 protocol / IPv6 next header
    IpAddr src, dst;
};

inline L3Info parse_l3(const rte_mbuf* m, std::uint16_t off, std::uint16_t ether_type) noexcept {
    L3Info r;
    const std::uint16_t len = rte_pktmbuf_data_len(m);
    const auto* p = rte_pktmbuf_mtod_offset(m, const std::uint8_t*, off);
    if (off >= len) {
        return r;
    }
    const std::uint16_t avail = static_cast<std::uint16_t>(len - off);
    if (ether_type == kEtherIpv4) {
        if (avail < 20 || (p[0] >> 4) != 4) {
            return r;
        }
        const auto ihl = static_cast<std::uint16_t>((p[0] & 0x0f) * 4);
        const auto total = static_cast<std::uint16_t>(p[2] << 8 | p[3]);
        if (ihl < 20 || ihl > avail || total < ihl || total > avail) {
            return r;
        }
        r.family = Family::kIpv4;
        r.header_len = ihl;
        r.total_len = total;
        r.proto = p[9];
        r.src.family = r.dst.family = Family::kIpv4;
        std::memcpy(r.src.bytes.data(), p + 12, 4);
        std::memcpy(r.dst.bytes.data(), p + 16, 4);
    } else if (ether_type == kEtherIpv6) {
        if (avail < 40 || (p[0] >> 4) != 6) {
            return r;
        }
        const auto payload = static_cast<std::uint16_t>(p[4] << 8 | p[5]);
        if (payload > avail - 40) {
            return r;
        }
        r.family = Family::kIpv6;
        r.header_len = 40;
        r.total_len = static_cast<std::uint16_t>(40 + payload);
        r.proto = p[6];
        r.src.family = r.dst.family = Family::kIpv6;
        std::memcpy(r.src.bytes.data(), p + 8, 16);
        std::memcpy(r.dst.bytes.data(), p + 24, 16);
    } else {
        return r;
    }
    r.ok = true;
    return r;
}

inline void put16(std::uint8_t* p, std::uint16_t v) noexcept {
    p[0] = static_cast<std::uint8_t>(v >> 8);
    p[1] = static_cast<std::uint8_t>(v);
}
inline void put32(std::uint8_t* p, std::uint32_t v) noexcept {
    p[0] = static_cast<std::uint8_t>(v >> 24);
    p[1] = static_cast<std::uint8_t>(v >> 16);
    p[2] = static_cast<std::uint8_t>(v >> 8);
    p[3] = static_cast<std::uint8_t>(v);
}
inline std::uint16_t get16(const std::uint8_t* p) noexcept {
    return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}
inline std::uint32_t get32(const std::uint8_t* p) noexcept {
    return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}

// RFC 1624 incremental update of a stored Internet checksum for one 16-bit word changed.
inline void checksum_adjust(std::uint8_t* csum, std::uint16_t old_word,
                            std::uint16_t new_word) noexcept {
    std::uint32_t sum = static_cast<std::uint16_t>(~get16(csum));
    sum += static_cast<std::uint16_t>(~old_word);
    sum += new_word;
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    put16(csum, static_cast<std::uint16_t>(~sum));
}

}  // namespace hag::dp
