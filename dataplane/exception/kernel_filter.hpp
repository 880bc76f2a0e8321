// What the kernel sends on a TAP that must not leave by the port: the ICMPv6 Parameter Problem
// (code 2, "unrecognized IPv6 option") a kernel without CONFIG_IPV6_MIP6 sends for every
// Binding Update that carries a Home Address destination option.
//
// Why the kernel sends it: RFC 8200 §4.2 encodes in an option type's two high-order bits what a
// node that does not know the option does; the Home Address option's type 201 (0xC9, RFC 6275
// §6.3) starts with 11: discard the packet and, unless the destination was multicast, send a
// Parameter Problem code 2 pointing at the option. hag-control has received the BU on its raw
// destination-options socket before the kernel discarded it (docs/control.md#home-agent-mipv6),
// so the error is wrong for the mobile node and is dropped here.
//
// A pure function of the frame's bytes and the gateway's own addresses, like classify.hpp: no
// DPDK, no state, no allocation; every read is bounds-checked against `len`. Suppressed is only
// a frame that is, all of it checked:
//   - Ethernet (behind up to two VLAN tags) / IPv6 whose next header is ICMPv6 (58), type 4
//     (Parameter Problem) code 2, from an own address;
//   - whose invoking packet (the ICMPv6 body after the 4-octet pointer) is IPv6 from the error's
//     destination to the error's source (the packet the gateway itself received);
//   - with, among its hop-by-hop / routing / destination-options headers (at most
//     kMaxExtensionHeaders), a destination-options header whose next header is a Mobility
//     Header (135) or ESP (50: a BU under hag-control's userspace ESP), and the pointer at the
//     first octet of an option of that header that is a Home Address option (type 201, 16
//     octets of data) — found by walking the header's options, not by reading at the pointer.
// Anything else (other ICMPv6 errors, a Parameter Problem about another option, a truncated or
// inconsistent frame) leaves as the kernel sent it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "exception/classify.hpp"

namespace hag::dp::exc {

inline constexpr std::uint8_t kIcmp6ParameterProblem = 4;  // RFC 4443 §3.4
inline constexpr std::uint8_t kIcmp6UnrecognizedOption = 2;
inline constexpr std::uint8_t kHomeAddressOption = 201;  // RFC 6275 §6.3
inline constexpr std::uint8_t kHomeAddressOptionLength = 16;

namespace detail {

inline std::uint32_t be32(const std::uint8_t* p) noexcept {
    return static_cast<std::uint32_t>(p[0]) << 24 | static_cast<std::uint32_t>(p[1]) << 16 |
           static_cast<std::uint32_t>(p[2]) << 8 | p[3];
}

// True when `pointer` (an offset from the invoking packet's start) is the first octet of a Home
// Address option among the options of the destination-options header at inv[off, off+len).
inline bool home_address_option_at(const std::uint8_t* inv, std::size_t off, std::size_t len,
                                   std::size_t pointer) noexcept {
    const std::size_t end = off + len;
    std::size_t o = off + 2;
    for (unsigned i = 0; i < len && o < end; ++i) {  // each step moves o forward
        const std::uint8_t type = inv[o];
        if (type == 0) {  // Pad1: one octet, no length
            if (o == pointer) {
                return false;
            }
            ++o;
            continue;
        }
        if (o + 2 > end) {
            return false;
        }
        const std::size_t olen = inv[o + 1];
        if (o + 2 + olen > end) {
            return false;
        }
        if (o == pointer) {
            return type == kHomeAddressOption && olen == kHomeAddressOptionLength;
        }
        if (pointer < o) {
            return false;  // the pointer is inside an earlier option, not at one's start
        }
        o += 2 + olen;
    }
    return false;
}

// The invoking packet of `avail` octets (what the error quotes), `pointer` from the error.
inline bool invoking_is_home_address_bu(const std::uint8_t* inv, std::size_t avail,
                                        std::size_t pointer) noexcept {
    if (avail < 40 || (inv[0] >> 4) != 6) {
        return false;
    }
    // The quote may be cut short (RFC 4443 §2.4 (c)); it may not claim more than it was.
    const std::size_t claimed = 40 + static_cast<std::size_t>(be16(inv + 4));
    const std::size_t end = claimed < avail ? claimed : avail;
    std::uint8_t next = inv[6];
    std::size_t off = 40;
    for (unsigned i = 0; i < kMaxExtensionHeaders; ++i) {
        if (next != 0 && next != 43 && next != 60) {
            return false;  // the upper layer (or a fragment header) before any match
        }
        if (off + 2 > end) {
            return false;
        }
        const std::size_t len = (static_cast<std::size_t>(inv[off + 1]) + 1) * 8;
        if (off + len > end) {
            return false;
        }
        if (next == 60 && pointer >= off + 2 && pointer < off + len) {
            const std::uint8_t after = inv[off];
            return (after == kIpProtoMobility || after == 50) &&
                   home_address_option_at(inv, off, len, pointer);
        }
        next = inv[off];
        off += len;
    }
    return false;
}

inline bool is_home_address_parameter_problem(const std::uint8_t* ip, std::size_t avail,
                                              const OwnAddresses& own) noexcept {
    if (avail < 40 || (ip[0] >> 4) != 6 || ip[6] != 58) {
        return false;
    }
    const std::size_t payload = be16(ip + 4);
    if (payload > avail - 40 || payload < 8 + 40) {
        return false;
    }
    const std::uint8_t* icmp = ip + 40;
    if (icmp[0] != kIcmp6ParameterProblem || icmp[1] != kIcmp6UnrecognizedOption) {
        return false;
    }
    if (!own.has_v6(ip + 8)) {
        return false;  // not the gateway's own answer
    }
    const std::uint8_t* inv = icmp + 8;
    // The packet the gateway received: to the error's source, from the error's destination.
    if (std::memcmp(inv + 24, ip + 8, 16) != 0 || std::memcmp(inv + 8, ip + 24, 16) != 0) {
        return false;
    }
    return invoking_is_home_address_bu(inv, payload - 8, be32(icmp + 4));
}

}  // namespace detail

// True for one Ethernet frame of `len` octets the kernel wrote to a TAP that is the Parameter
// Problem described above: the caller drops it instead of sending it.
inline bool suppress_from_kernel(const std::uint8_t* frame, std::size_t len,
                                 const OwnAddresses& own) noexcept {
    std::size_t off = 12;
    for (int tags = 0; tags <= 2; ++tags) {
        if (off + 2 > len) {
            return false;
        }
        const std::uint16_t type = detail::be16(frame + off);
        off += 2;
        if (type == 0x8100 || type == 0x88A8) {
            off += 2;
            continue;
        }
        return type == 0x86DD &&
               detail::is_home_address_parameter_problem(frame + off, len - off, own);
    }
    return false;
}

}  // namespace hag::dp::exc
