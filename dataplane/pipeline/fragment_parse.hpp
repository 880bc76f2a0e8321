// Outer fragments on the uplink (docs/dataplane.md#outer-fragment-reassembly): which frames
// arriving on an access port are fragments of a tunnel packet that hag reassembles before the
// exception path and the uplink stage see them, and the numbers reassembly needs. Plain bytes,
// no DPDK, bounds-checked against `len` (the fuzz target tests/fuzz/dataplane calls it on
// arbitrary bytes; pipeline/reassembly.cpp on the first segment of an mbuf).
#pragma once

#include <cstdint>

#include "pipeline/parse.hpp"

namespace hag::dp {

inline constexpr std::uint8_t kIpProtoFragment = 44;  // IPv6 Fragment header (RFC 8200 §4.5)

// What parse_outer_fragment says about a frame.
enum class FragParse : std::uint8_t {
    kNone,       // not a fragment, or not one hag reassembles: leave it to the usual path
    kFragment,   // a fragment to reassemble (OuterFragment filled)
    kAtomic,     // IPv6 atomic fragment (offset 0, M clear): a whole packet (RFC 6946)
    kMalformed,  // a fragment of a tunnel protocol whose lengths are wrong: drop it
};

struct OuterFragment {
    Family family = Family::kNone;
    std::uint16_t l2_len = 0;    // Ethernet (and VLAN tags)
    std::uint16_t l3_len = 0;    // IPv4: IHL * 4; IPv6: 40 + the 8-octet Fragment header
    std::uint16_t offset = 0;    // of this fragment's data in the packet, octets
    std::uint16_t data_len = 0;  // this fragment's data, octets
    bool more = false;           // MF / M: more fragments follow
    std::uint8_t proto = 0;      // IPv4 protocol / the Fragment header's next header
    std::uint32_t id = 0;        // identification (IPv4: 16 bits)
    // Over (source, destination, identification): the same for every fragment of one packet;
    // with several workers it picks the worker that reassembles the packet.
    std::uint32_t hash = 0;
    // Size of the frame the reassembled packet becomes if this is a correct fragment of it: at
    // least l2 + unfragmentable headers + offset + data_len.
    std::uint32_t frame_end = 0;
};

// The protocols hag reassembles: its tunnels (GRE 47, IP in IP 4 / 41) and UDP (GRE in UDP to
// port 5437, and signalling to 5436, which the exception path punts whole once reassembled).
// Fragments of any other protocol take the usual path: to an own address they are punted and
// the kernel reassembles them; otherwise the uplink drops them.
inline bool reassembled_protocol(std::uint8_t proto) noexcept {
    return proto == kIpProtoGre || proto == kIpProtoUdp || proto == kIpProtoIpInIp4 ||
           proto == kIpProtoIpInIp6;
}

// A cheap first look (Ethernet type and the fragment bits / next header, no VLAN walk beyond
// two tags): false means certainly not an outer fragment.
inline bool maybe_outer_fragment(const std::uint8_t* p, std::uint16_t len) noexcept {
    const L2Info l2 = parse_l2(p, len);
    if (l2.l3_offset == 0 || l2.l3_offset + 20 > len) {
        return false;
    }
    const std::uint8_t* ip = p + l2.l3_offset;
    if (l2.ether_type == kEtherIpv4) {
        return (get16(ip + 6) & 0x3fff) != 0;
    }
    return l2.ether_type == kEtherIpv6 && l2.l3_offset + 40 <= len && ip[6] == kIpProtoFragment;
}

inline std::uint32_t fragment_hash(const std::uint8_t* src, const std::uint8_t* dst, unsigned n,
                                   std::uint32_t id) noexcept {
    std::uint32_t h = 2166136261u;  // FNV-1a
    for (unsigned i = 0; i < n; ++i) {
        h = (h ^ src[i]) * 16777619u;
        h = (h ^ dst[i]) * 16777619u;
    }
    for (int s = 24; s >= 0; s -= 8) {
        h = (h ^ ((id >> s) & 0xff)) * 16777619u;
    }
    return h ^ (h >> 16);
}

// Frame p[0, len): an IPv4 fragment (MF set or a non-zero offset), or IPv6 whose Fragment header
// follows the fixed header directly (fragments with extension headers before it are kNone:
// reassembly would have to rewrite those headers). Only reassembled_protocol() fragments are
// kFragment / kMalformed. Malformed (RFC 791, RFC 8200 §4.5): no data; a fragment that is not
// the last with a length that is not a multiple of 8; data ending past 65535 octets.
inline FragParse parse_outer_fragment(const std::uint8_t* p, std::uint16_t len,
                                      OuterFragment& f) noexcept {
    const L2Info l2 = parse_l2(p, len);
    if (l2.l3_offset == 0 || (l2.ether_type != kEtherIpv4 && l2.ether_type != kEtherIpv6)) {
        return FragParse::kNone;
    }
    const L3Info l3 = parse_l3(p, len, l2.l3_offset, l2.ether_type);
    if (!l3.ok) {
        return FragParse::kNone;
    }
    const std::uint8_t* ip = p + l2.l3_offset;
    f.family = l3.family;
    f.l2_len = l2.l3_offset;
    std::uint32_t unfragmentable = 0;  // the IP header the reassembled packet keeps
    if (l3.family == Family::kIpv4) {
        const std::uint16_t frag = get16(ip + 6);
        if ((frag & 0x3fff) == 0) {
            return FragParse::kNone;
        }
        f.l3_len = l3.header_len;
        f.offset = static_cast<std::uint16_t>((frag & 0x1fff) * 8);
        f.more = (frag & 0x2000) != 0;
        f.proto = l3.proto;
        f.id = get16(ip + 4);
        f.data_len = static_cast<std::uint16_t>(l3.total_len - l3.header_len);
        f.hash = fragment_hash(ip + 12, ip + 16, 4, f.id);
        unfragmentable = l3.header_len;
    } else {
        if (l3.proto != kIpProtoFragment) {
            return FragParse::kNone;
        }
        if (l3.total_len < 48) {
            return FragParse::kNone;  // no room for the Fragment header: not a fragment of ours
        }
        const std::uint8_t* fh = ip + 40;
        const std::uint16_t off_m = get16(fh + 2);
        f.l3_len = 48;
        f.offset = static_cast<std::uint16_t>(off_m & 0xfff8);
        f.more = (off_m & 1) != 0;
        f.proto = fh[0];
        f.id = get32(fh + 4);
        f.data_len = static_cast<std::uint16_t>(l3.total_len - 48);
        f.hash = fragment_hash(ip + 8, ip + 24, 16, f.id);
        unfragmentable = 40;
    }
    if (!reassembled_protocol(f.proto)) {
        return FragParse::kNone;
    }
    f.frame_end = std::uint32_t{f.l2_len} + unfragmentable + f.offset + f.data_len;
    if (l3.family == Family::kIpv6 && f.offset == 0 && !f.more) {
        return f.data_len == 0 ? FragParse::kMalformed : FragParse::kAtomic;
    }
    if (f.data_len == 0 || (f.more && (f.data_len & 7) != 0) ||
        std::uint32_t{f.offset} + f.data_len + (l3.family == Family::kIpv4 ? f.l3_len : 0) >
            65535) {
        return FragParse::kMalformed;
    }
    return FragParse::kFragment;
}

}  // namespace hag::dp
