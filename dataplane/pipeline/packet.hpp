// Bounds-checked parsing of the headers the fast path looks at, on an mbuf: the first segment
// goes to the byte parsers of parse.hpp (headers spread over segments are treated as
// malformed; the RX paths of hag receive into single-segment mbufs).
#pragma once

#include <rte_mbuf.h>

#include <cstdint>

#include "pipeline/parse.hpp"

namespace hag::dp {

// Sets the mbuf's l2_len (7 bits) and l3_len (9 bits) with one store to tx_offload. Two
// bit-field assignments in a row compile to a byte store and then a 16-bit load of the same
// word for the second, which waits for the first store to retire (a store-forwarding stall:
// 14 % of the downlink stage's samples before).
inline void set_l2_l3_len(rte_mbuf* m, unsigned l2, unsigned l3) noexcept {
    static_assert(RTE_MBUF_L2_LEN_BITS == 7 && RTE_MBUF_L3_LEN_BITS == 9);
    m->tx_offload =
        (m->tx_offload & ~std::uint64_t{0xffff}) | (l2 & 0x7fu) | std::uint64_t{l3 & 0x1ffu} << 7;
}

inline L2Info parse_l2(const rte_mbuf* m) noexcept {
    return parse_l2(rte_pktmbuf_mtod(m, const std::uint8_t*), rte_pktmbuf_data_len(m));
}

inline L3Info parse_l3(const rte_mbuf* m, std::uint16_t off, std::uint16_t ether_type) noexcept {
    return parse_l3(rte_pktmbuf_mtod(m, const std::uint8_t*), rte_pktmbuf_data_len(m), off,
                    ether_type);
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

// Decrements an IPv4 header's TTL (`ip` its first octet; TTL checked > 1 before) and updates
// its checksum incrementally: the TTL is the high octet of its 16-bit word, so HC' = HC +
// 0x0100 with the end-around carry (RFC 1624; as Linux's ip_decrease_ttl). Where a
// recomputation would give 0x0000 this gives 0xffff, which verifies the same.
inline void ipv4_decrement_ttl(std::uint8_t* ip) noexcept {
    ip[8] = static_cast<std::uint8_t>(ip[8] - 1);
    std::uint32_t sum = static_cast<std::uint32_t>(get16(ip + 10)) + 0x0100u;
    sum = (sum & 0xffff) + (sum >> 16);
    put16(ip + 10, static_cast<std::uint16_t>(sum));
}

// ECN at decapsulation (RFC 6040 §4.2): the outer header's congestion marks reach the inner IP
// header `in` (its checksum adjusted for IPv4). Outer CE marks an ECN-capable inner packet CE;
// outer ECT(1) turns an inner ECT(0) into ECT(1). false: outer CE over a not-ECT inner packet,
// which must be dropped.
[[nodiscard]] inline bool ecn_decapsulate(const std::uint8_t* outer, bool outer_v6,
                                          std::uint8_t* in, bool inner_v6) noexcept {
    const auto outer_ecn = static_cast<std::uint8_t>(outer_v6 ? (outer[1] >> 4) & 3 : outer[1] & 3);
    if (outer_ecn != 3 && outer_ecn != 1) {
        return true;
    }
    const auto inner_ecn = static_cast<std::uint8_t>(inner_v6 ? (in[1] >> 4) & 3 : in[1] & 3);
    std::uint8_t to = inner_ecn;
    if (outer_ecn == 3) {
        if (inner_ecn == 0) {
            return false;
        }
        to = 3;
    } else if (inner_ecn == 2) {
        to = 1;  // outer ECT(1), inner ECT(0)
    }
    if (to != inner_ecn) {
        if (inner_v6) {
            in[1] = static_cast<std::uint8_t>((in[1] & 0xcf) | to << 4);
        } else {
            const std::uint16_t old = get16(in);
            in[1] = static_cast<std::uint8_t>((in[1] & 0xfc) | to);
            checksum_adjust(in + 10, old, get16(in));
        }
    }
    return true;
}

}  // namespace hag::dp
