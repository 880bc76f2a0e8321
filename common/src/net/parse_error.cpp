#include "hag/net/parse_error.hpp"

namespace hag::net {

std::string_view to_string(ParseError e) noexcept {
    switch (e) {
        case ParseError::truncated:
            return "truncated";
        case ParseError::bad_version:
            return "bad version";
        case ParseError::bad_header_length:
            return "bad header length";
        case ParseError::bad_total_length:
            return "bad total length";
        case ParseError::bad_checksum:
            return "bad checksum";
        case ParseError::reserved_bits_set:
            return "reserved bits set";
        case ParseError::extension_chain_too_long:
            return "extension header chain too long";
        case ParseError::misplaced_hop_by_hop:
            return "hop-by-hop options header not first";
        case ParseError::non_first_fragment:
            return "non-first fragment";
    }
    return "unknown";
}

}  // namespace hag::net
