// Bounds-checked parsing of the headers the fast path looks at, on an mbuf: the first segment
// goes to the byte parsers of parse.hpp (headers spread over segments are treated as
// malformed; the RX paths of hag receive into single-segment mbufs).
#pragma once

#include <rte_mbuf.h>

#include <cstdint>

#include "pipeline/parse.hpp"

namespace hag::dp {

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

}  // namespace hag::dp
