// Exception-path classification: which frames arriving on a data-plane port are not user
// traffic for hag but belong to the gateway's own kernel stack (and hag-control's sockets).
//
// A pure function of the frame's bytes and the gateway's own addresses: no DPDK, no state, no
// allocation; every read is bounds-checked against `len`. Punted are:
//   - ARP (Ethernet/IPv4) whose target is an own address, or gratuitous (sender == target);
//   - ICMPv6 neighbour discovery (RS 133, RA 134, NS 135, NA 136) with hop limit 255
//     (RFC 4861 §6.1, §7.1), whatever the destination: NS go to solicited-node multicast and NA
//     to the TAP's link-local address; the kernel, which owns the addresses, filters the rest;
//   - to an own address: IPv6 next header 135 (Mobility Header, RFC 6275 §6.1), IPv6 ESP (50:
//     signalling protected by hag-control's userspace ESP, e.g. a MIPv6 BU behind its Home
//     Address option), UDP destination
//     port 5436 (PMIPv6 signalling over IPv4 transport / UDP, RFC 5844), ICMP and ICMPv6 of any
//     type (echo, errors such as Packet Too Big for the signalling), and fragments (the kernel
//     reassembles them; hag's fast path does not);
// behind up to two VLAN tags (802.1Q / 802.1ad) and IPv6 extension headers (hop-by-hop,
// routing, destination options). Everything else, GRE to an own address included, is user
// traffic (kNone). A frame that is truncated or inconsistent anywhere is kNone: the fast path
// drops it with its own reason.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace hag::dp::exc {

#define HAG_PUNT_KINDS(X)                                                            \
    X(kArp, "arp", "ARP for an own address, or gratuitous")                          \
    X(kNd, "nd", "ICMPv6 neighbour discovery (RS, RA, NS, NA)")                      \
    X(kIcmp, "icmp", "ICMP or ICMPv6 to an own address")                             \
    X(kMobility, "mobility_header", "IPv6 Mobility Header to an own address")        \
    X(kUdpSignalling, "udp_5436", "UDP to port 5436 of an own address")              \
    X(kFragment, "fragment", "an IPv4 or IPv6 fragment addressed to an own address") \
    X(kEsp, "esp", "IPv6 ESP (protected signalling) to an own address")

#define HAG_PUNT_ENUM(e, name, text) e,
#define HAG_PUNT_NAME(e, name, text) std::string_view{name},
enum class Punt : std::uint8_t { kNone = 0, HAG_PUNT_KINDS(HAG_PUNT_ENUM) kCount };
// Indexed by Punt (kNone included, as "none").
inline constexpr std::array<std::string_view, static_cast<std::size_t>(Punt::kCount)> Punt_names{
    std::string_view{"none"}, HAG_PUNT_KINDS(HAG_PUNT_NAME)};
#undef HAG_PUNT_ENUM
#undef HAG_PUNT_NAME

inline constexpr std::uint16_t kSignallingUdpPort = 5436;  // RFC 5844 §4 (IANA)
inline constexpr std::uint8_t kIpProtoMobility = 135;      // RFC 6275 §6.1
inline constexpr unsigned kMaxExtensionHeaders = 8;

// The gateway's own addresses: fixed arrays, linear search (a handful of addresses).
struct OwnAddresses {
    static constexpr unsigned kMax = 16;
    std::uint8_t n4 = 0, n6 = 0;
    std::array<std::array<std::uint8_t, 4>, kMax> v4{};
    std::array<std::array<std::uint8_t, 16>, kMax> v6{};

    [[nodiscard]] bool has_v4(const std::uint8_t* a) const noexcept {
        for (unsigned i = 0; i < n4; ++i) {
            if (std::memcmp(v4[i].data(), a, 4) == 0) {
                return true;
            }
        }
        return false;
    }
    [[nodiscard]] bool has_v6(const std::uint8_t* a) const noexcept {
        for (unsigned i = 0; i < n6; ++i) {
            if (std::memcmp(v6[i].data(), a, 16) == 0) {
                return true;
            }
        }
        return false;
    }
    // Adds an address (4 or 16 octets); false when the set is full. Duplicates are ignored.
    bool add(const std::uint8_t* a, std::size_t len) noexcept {
        if (len == 4) {
            if (has_v4(a)) {
                return true;
            }
            if (n4 == kMax) {
                return false;
            }
            std::memcpy(v4[n4++].data(), a, 4);
            return true;
        }
        if (len == 16) {
            if (has_v6(a)) {
                return true;
            }
            if (n6 == kMax) {
                return false;
            }
            std::memcpy(v6[n6++].data(), a, 16);
            return true;
        }
        return false;
    }
};

namespace detail {

inline std::uint16_t be16(const std::uint8_t* p) noexcept {
    return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}

inline Punt classify_arp(const std::uint8_t* a, std::size_t avail,
                         const OwnAddresses& own) noexcept {
    // RFC 826 for Ethernet / IPv4: htype 1, ptype 0x0800, hlen 6, plen 4; 28 octets.
    if (avail < 28 || be16(a) != 1 || be16(a + 2) != 0x0800 || a[4] != 6 || a[5] != 4) {
        return Punt::kNone;
    }
    const std::uint8_t* spa = a + 14;
    const std::uint8_t* tpa = a + 24;
    if (own.has_v4(tpa) || std::memcmp(spa, tpa, 4) == 0) {
        return Punt::kArp;
    }
    return Punt::kNone;
}

inline Punt classify_ipv4(const std::uint8_t* ip, std::size_t avail,
                          const OwnAddresses& own) noexcept {
    if (avail < 20 || (ip[0] >> 4) != 4) {
        return Punt::kNone;
    }
    const std::size_t ihl = static_cast<std::size_t>(ip[0] & 0x0f) * 4;
    const std::size_t total = be16(ip + 2);
    if (ihl < 20 || ihl > avail || total < ihl || total > avail) {
        return Punt::kNone;
    }
    if (!own.has_v4(ip + 16)) {
        return Punt::kNone;
    }
    if ((be16(ip + 6) & 0x3fff) != 0) {
        return Punt::kFragment;  // MF set or non-zero offset
    }
    const std::uint8_t* l4 = ip + ihl;
    const std::size_t l4_len = total - ihl;
    switch (ip[9]) {
        case 1:  // ICMP
            return l4_len >= 4 ? Punt::kIcmp : Punt::kNone;
        case 17:  // UDP
            return l4_len >= 8 && be16(l4 + 2) == kSignallingUdpPort ? Punt::kUdpSignalling
                                                                     : Punt::kNone;
        default:
            return Punt::kNone;
    }
}

inline Punt classify_ipv6(const std::uint8_t* ip, std::size_t avail,
                          const OwnAddresses& own) noexcept {
    if (avail < 40 || (ip[0] >> 4) != 6) {
        return Punt::kNone;
    }
    const std::size_t payload = be16(ip + 4);
    if (payload > avail - 40) {
        return Punt::kNone;
    }
    const std::uint8_t hop_limit = ip[7];
    const bool to_own = own.has_v6(ip + 24);
    std::uint8_t next = ip[6];
    std::size_t off = 40;
    const std::size_t end = 40 + payload;
    for (unsigned i = 0; i <= kMaxExtensionHeaders; ++i) {
        switch (next) {
            case 0:     // hop-by-hop options
            case 43:    // routing
            case 60: {  // destination options
                if (off + 2 > end) {
                    return Punt::kNone;
                }
                const std::size_t len = (static_cast<std::size_t>(ip[off + 1]) + 1) * 8;
                if (off + len > end) {
                    return Punt::kNone;
                }
                next = ip[off];
                off += len;
                continue;
            }
            case 44:  // fragment
                return to_own && off + 8 <= end ? Punt::kFragment : Punt::kNone;
            case 50:
                // ESP to an own address is protected signalling (PBU / BU, hag-control's
                // userspace ESP): hag's user plane carries no ESP to its own addresses.
                return to_own && off + 8 <= end ? Punt::kEsp : Punt::kNone;
            case kIpProtoMobility:
                // The Mobility Header's own fields are hag-control's to check (it sees every
                // malformed one); here it only has to be there.
                return to_own && off + 6 <= end ? Punt::kMobility : Punt::kNone;
            case 17:
                return to_own && off + 8 <= end && be16(ip + off + 2) == kSignallingUdpPort
                           ? Punt::kUdpSignalling
                           : Punt::kNone;
            case 58: {
                if (off + 4 > end) {
                    return Punt::kNone;
                }
                const std::uint8_t type = ip[off];
                if (type >= 133 && type <= 136 && hop_limit == 255) {
                    return Punt::kNd;
                }
                return to_own ? Punt::kIcmp : Punt::kNone;
            }
            default:
                return Punt::kNone;
        }
    }
    return Punt::kNone;  // more extension headers than anyone sends
}

}  // namespace detail

// Classifies one Ethernet frame of `len` octets.
inline Punt classify_frame(const std::uint8_t* frame, std::size_t len,
                           const OwnAddresses& own) noexcept {
    std::size_t off = 12;
    for (int tags = 0; tags <= 2; ++tags) {
        if (off + 2 > len) {
            return Punt::kNone;
        }
        const std::uint16_t type = detail::be16(frame + off);
        off += 2;
        switch (type) {
            case 0x8100:
            case 0x88A8:
                off += 2;  // the tag's TCI; the loop reads the next type
                continue;
            case 0x0806:
                return detail::classify_arp(frame + off, len - off, own);
            case 0x0800:
                return detail::classify_ipv4(frame + off, len - off, own);
            case 0x86DD:
                return detail::classify_ipv6(frame + off, len - off, own);
            default:
                return Punt::kNone;
        }
    }
    return Punt::kNone;  // more than two VLAN tags
}

}  // namespace hag::dp::exc
