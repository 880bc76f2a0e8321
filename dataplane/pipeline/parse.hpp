// The fast path's header parsers over plain bytes (no DPDK, no mbuf): Ethernet with up to two
// VLAN tags, an IPv4 / IPv6 header, and a GRE-in-IP packet as the uplink takes it apart. The
// stages call them on the first segment of an mbuf (packet.hpp); the fuzz target
// tests/fuzz/dataplane calls them on arbitrary bytes. Everything is inline and bounds-checked
// against `len`; nothing reads past p + len.
#pragma once

#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>

#include "tables/ip_addr.hpp"

namespace hag::dp {

inline constexpr std::uint16_t kEtherIpv4 = 0x0800;
inline constexpr std::uint16_t kEtherIpv6 = 0x86DD;
inline constexpr std::uint16_t kEtherVlan = 0x8100;
inline constexpr std::uint16_t kEtherQinQ = 0x88A8;
inline constexpr std::uint8_t kIpProtoGre = 47;
inline constexpr std::uint8_t kIpProtoUdp = 17;
inline constexpr std::uint8_t kIpProtoIpInIp4 = 4;   // IPv4 inside (RFC 2003)
inline constexpr std::uint8_t kIpProtoIpInIp6 = 41;  // IPv6 inside (RFC 2473)
// User data in UDP for NATed paths (RFC 5844's IANA port "pmip6-data"; 5436 is signalling): the
// gateway's end of every UDP-encapsulated tunnel. The UDP payload is the GRE header (key and
// sequence number) and the inner packet; a payload shorter than a GRE header is a keepalive.
inline constexpr std::uint16_t kDataUdpPort = 5437;

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

// Where the L3 header starts, and which one it is; 0 when the frame is too short, has more than
// two VLAN tags, or carries neither IPv4 nor IPv6.
struct L2Info {
    std::uint16_t l3_offset = 0;
    std::uint16_t ether_type = 0;  // kEtherIpv4 / kEtherIpv6 / other
};

inline L2Info parse_l2(const std::uint8_t* p, std::uint16_t len) noexcept {
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
// the data present. total_len is the IP packet length claimed by the header (<= available).
struct L3Info {
    bool ok = false;
    Family family = Family::kNone;
    std::uint16_t header_len = 0;  // IPv4 IHL * 4, IPv6 40
    std::uint16_t total_len = 0;   // header + payload per the header
    std::uint8_t proto = 0;        // IPv4 protocol / IPv6 next header
    IpAddr src, dst;
};

static_assert(std::is_trivially_destructible_v<L3Info>);  // built over in place below

inline L3Info parse_l3(const std::uint8_t* base, std::uint16_t len, std::uint16_t off,
                       std::uint16_t ether_type) noexcept {
    L3Info r;
    if (off >= len) {
        return r;
    }
    const std::uint8_t* p = base + off;
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

// parse_l3(...).ok without building the L3Info: an IPv4 or IPv6 header of the ether type's
// version at `off` whose lengths fit in the frame. For checks run on every packet (the uplink's
// TTL pass) that need the addresses only now and then; the fuzz target holds the two equal.
inline bool l3_valid(const std::uint8_t* base, std::uint16_t len, std::uint16_t off,
                     std::uint16_t ether_type) noexcept {
    if (off >= len) {
        return false;
    }
    const std::uint8_t* p = base + off;
    const auto avail = static_cast<std::uint16_t>(len - off);
    if (ether_type == kEtherIpv6) {
        return avail >= 40 && (p[0] >> 4) == 6 && (p[4] << 8 | p[5]) <= avail - 40;
    }
    if (ether_type == kEtherIpv4) {
        if (avail < 20 || (p[0] >> 4) != 4) {
            return false;
        }
        const auto ihl = static_cast<std::uint16_t>((p[0] & 0x0f) * 4);
        const auto total = static_cast<std::uint16_t>(p[2] << 8 | p[3]);
        return ihl >= 20 && ihl <= avail && total >= ihl && total <= avail;
    }
    return false;
}

inline constexpr std::uint16_t kGreC = 0x8000;
inline constexpr std::uint16_t kGreK = 0x2000;
inline constexpr std::uint16_t kGreS = 0x1000;
// RFC 2784 §2.5.1: a receiver discards a packet with any of bits 1-5 set (bit 1 routing, bit 4
// strict source route, bit 5 the top of the recursion control in RFC 1701 terms — bits 2 and 3
// are K and S since RFC 2890) or a version (bits 13-15) other than 0; bits 6-12 are ignored.
inline constexpr std::uint16_t kGreMustBeZero = 0x4c07;

// The uplink's verdict on a GRE-in-IP frame's headers, in the order it checks them (the same
// order as the first UplinkDrop reasons).
enum class GreParse : std::uint8_t {
    kOk,
    kMalformed,      // no IPv4 / IPv6 header, or its lengths are inconsistent
    kNotGre,         // outer protocol is not 47
    kOuterFragment,  // outer IPv4 MF set or a non-zero fragment offset
    kGreMalformed,   // GRE header truncated, reserved bits or version set
    kGreChecksum,    // GRE checksum present and wrong
    kGreProtocol,    // GRE payload is neither IPv4 nor IPv6
    // UDP encapsulation (outer IPv4 / UDP to kDataUdpPort / GRE), checked before the GRE header:
    kUdpMalformed,  // UDP header truncated or its length disagrees with the IP packet's
    kUdpChecksum,   // UDP checksum present (non-zero) and wrong
    kKeepalive,     // UDP payload shorter than a GRE header: a NAT keepalive, not an error
};

struct GreInIp {
    L2Info l2;
    L3Info outer;
    std::uint16_t gre_off = 0;    // the GRE header
    std::uint16_t inner_off = 0;  // the first byte after the GRE header
    std::uint16_t ip_end = 0;     // the end of the outer IP packet (per its header)
    std::uint16_t proto = 0;      // the GRE protocol type
    bool ipip = false;            // IP in IP: no GRE header, inner_off == gre_off
    bool udp = false;             // GRE inside UDP (outer IPv4, destination port 5437)
    std::uint16_t udp_src = 0;    // the UDP source port (the NAT's mapped port)
    bool has_key = false;
    bool has_seq = false;
    std::uint32_t key = 0;
    std::uint32_t seq = 0;
};

// Parses Ethernet, the outer IP header and the GRE header of frame p[0, len) — or, for outer
// IPv4 / UDP to kDataUdpPort (NAT traversal), the UDP header and the GRE header after it; for
// IP in IP (outer protocol 4 or 41) no tunnel header at all (ipip set, inner_off = gre_off).
// `checksum(q, n)` returns the 16-bit one's complement sum of q[0, n) (rte_raw_cksum on the fast
// path); it is called only for a GRE header with the C bit. On kOk, inner_off <= ip_end <= len.
template <typename Checksum>
inline GreParse parse_gre_in_ip(const std::uint8_t* p, std::uint16_t len, GreInIp& r,
                                Checksum&& checksum) noexcept {
    r.l2 = parse_l2(p, len);
    if (r.l2.l3_offset == 0 || (r.l2.ether_type != kEtherIpv4 && r.l2.ether_type != kEtherIpv6)) {
        return GreParse::kMalformed;
    }
    // Built in place (L3Info is trivially destructible): an assignment built it elsewhere and
    // copied it in with wide loads that waited for its narrow stores (a store-forwarding stall).
    ::new (static_cast<void*>(&r.outer)) L3Info(parse_l3(p, len, r.l2.l3_offset, r.l2.ether_type));
    if (!r.outer.ok) {
        return GreParse::kMalformed;
    }
    r.udp = false;
    r.udp_src = 0;
    r.ipip = false;
    const bool udp = r.outer.proto == kIpProtoUdp && r.outer.family == Family::kIpv4;
    const bool ipip = r.outer.proto == kIpProtoIpInIp4 || r.outer.proto == kIpProtoIpInIp6;
    if (r.outer.proto != kIpProtoGre && !udp && !ipip) {
        return GreParse::kNotGre;
    }
    const std::uint8_t* ip = p + r.l2.l3_offset;
    if (r.outer.family == Family::kIpv4 && (get16(ip + 6) & 0x3fff) != 0) {
        return GreParse::kOuterFragment;  // MF set or non-zero offset
    }
    r.gre_off = static_cast<std::uint16_t>(r.l2.l3_offset + r.outer.header_len);
    r.ip_end = static_cast<std::uint16_t>(r.l2.l3_offset + r.outer.total_len);
    if (ipip) {
        // IP in IP: the inner packet follows the outer header; no key, no sequence number.
        r.ipip = true;
        r.inner_off = r.gre_off;
        r.proto = r.outer.proto == kIpProtoIpInIp4 ? kEtherIpv4 : kEtherIpv6;
        r.has_key = r.has_seq = false;
        r.key = r.seq = 0;
        return GreParse::kOk;
    }
    if (udp) {
        // UDP (RFC 768) to the data port: its length must be the rest of the IP packet; a
        // non-zero checksum covers the pseudo-header (addresses, protocol, UDP length) too.
        const std::uint8_t* u = p + r.gre_off;
        if (r.gre_off + 8 > r.ip_end) {
            return GreParse::kUdpMalformed;
        }
        if (get16(u + 2) != kDataUdpPort) {
            return GreParse::kNotGre;
        }
        const std::uint16_t udp_len = get16(u + 4);
        if (udp_len != r.ip_end - r.gre_off) {
            return GreParse::kUdpMalformed;
        }
        if (get16(u + 6) != 0) {
            std::uint8_t pseudo[12];
            std::memcpy(pseudo, ip + 12, 8);
            pseudo[8] = 0;
            pseudo[9] = kIpProtoUdp;
            put16(pseudo + 10, udp_len);
            std::uint32_t sum = std::uint32_t{checksum(pseudo, sizeof pseudo)} +
                                checksum(u, static_cast<std::size_t>(udp_len));
            sum = (sum & 0xffff) + (sum >> 16);
            if (sum != 0xffff) {
                return GreParse::kUdpChecksum;
            }
        }
        r.udp = true;
        r.udp_src = get16(u);
        r.gre_off = static_cast<std::uint16_t>(r.gre_off + 8);
        if (r.gre_off + 4 > r.ip_end) {
            return GreParse::kKeepalive;
        }
    }
    if (r.gre_off + 4 > r.ip_end) {
        return GreParse::kGreMalformed;
    }
    const std::uint8_t* g = p + r.gre_off;
    const std::uint16_t flags = get16(g);
    if ((flags & kGreMustBeZero) != 0) {
        return GreParse::kGreMalformed;
    }
    const std::uint16_t gre_len = static_cast<std::uint16_t>(
        4 + ((flags & kGreC) ? 4 : 0) + ((flags & kGreK) ? 4 : 0) + ((flags & kGreS) ? 4 : 0));
    if (r.gre_off + gre_len > r.ip_end) {
        return GreParse::kGreMalformed;
    }
    std::size_t field = 4;
    if (flags & kGreC) {
        // The checksum covers the GRE header and payload (RFC 2784 §2.3).
        if (checksum(g, static_cast<std::size_t>(r.ip_end - r.gre_off)) != 0xffff) {
            return GreParse::kGreChecksum;
        }
        field += 4;
    }
    r.has_key = (flags & kGreK) != 0;
    r.key = 0;
    if (r.has_key) {
        r.key = get32(g + field);
        field += 4;
    }
    r.has_seq = (flags & kGreS) != 0;
    r.seq = r.has_seq ? get32(g + field) : 0;
    r.proto = get16(g + 2);
    r.inner_off = static_cast<std::uint16_t>(r.gre_off + gre_len);
    if (r.proto != kEtherIpv4 && r.proto != kEtherIpv6) {
        return GreParse::kGreProtocol;
    }
    return GreParse::kOk;
}

// The inner packet of a frame parse_gre_in_ip accepted: an IP header that, with its payload,
// lies within the outer packet; ok = false otherwise.
// One named result returned on every path, so that it is built in the caller's object: a copy of
// it (two returns of different objects) read it with wide loads that waited for the narrow
// stores that had just built it, a store-forwarding stall per uplink packet (~18 % of the stage).
inline L3Info parse_gre_inner(const std::uint8_t* p, std::uint16_t len, const GreInIp& g) noexcept {
    L3Info inner = parse_l3(p, len, g.inner_off, g.proto);
    if (inner.ok && g.inner_off + inner.total_len > g.ip_end) {
        inner = L3Info{};
    }
    return inner;
}

// May an ICMP error answer this packet (`ip` is its IP header, `l3` parsed from it)? Not one about
// an ICMP error, a non-first IPv4 fragment, or a multicast / broadcast / unspecified source (RFC
// 4443 §2.4 e, RFC 1812 §4.3.2.7).
inline bool icmp_may_answer(const std::uint8_t* ip, const L3Info& l3) noexcept {
    const auto& s = l3.src.bytes;
    if (l3.family == Family::kIpv6) {
        bool unspecified = true;
        for (unsigned i = 0; i < 16; ++i)
            unspecified &= s[i] == 0;
        if (unspecified || s[0] == 0xff) {
            return false;
        }
        // ICMPv6 errors are types 0-127 (only a directly following ICMPv6 header is looked at).
        return !(l3.proto == 58 && l3.total_len > 40 && ip[40] < 128);
    }
    if ((s[0] & 0xf0) == 0xe0 || (s[0] | s[1] | s[2] | s[3]) == 0 ||
        (s[0] & s[1] & s[2] & s[3]) == 0xff) {
        return false;
    }
    if ((get16(ip + 6) & 0x1fff) != 0) {
        return false;  // not the first fragment
    }
    if (l3.proto == 1 && l3.total_len > l3.header_len) {
        const std::uint8_t t = ip[l3.header_len];
        return !(t == 3 || t == 4 || t == 5 || t == 11 || t == 12);
    }
    return true;
}

}  // namespace hag::dp
