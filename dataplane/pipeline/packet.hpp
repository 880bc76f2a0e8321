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

}  // namespace hag::dp
