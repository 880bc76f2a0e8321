// Why a GRE / IPv4 / IPv6 / UDP header did not parse.
#pragma once

#include <string_view>

namespace hag::net {

enum class ParseError {
    truncated,                 // the buffer ends before the header (or a length field) says
    bad_version,               // IP version nibble, or GRE version != 0 (RFC 2784 §2.3.1)
    bad_header_length,         // IPv4 IHL < 5, or an extension-header length past the end
    bad_total_length,          // IPv4 total length < IHL*4 or > buffer; UDP length < 8 or > buffer
    bad_checksum,              // IPv4 header, UDP or GRE checksum does not verify
    reserved_bits_set,         // GRE reserved0 bits 1, 4, 5 (RFC 2784 §2.5 / RFC 2890)
    extension_chain_too_long,  // more IPv6 extension headers than the walker's bound
    misplaced_hop_by_hop,      // Hop-by-Hop Options not first (RFC 8200 §4.1)
    non_first_fragment,        // upper-layer header is not in this fragment
};

std::string_view to_string(ParseError e) noexcept;

}  // namespace hag::net
