// Per-option encode/decode used by the message codec (internal).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "hag/mh/constants.hpp"
#include "hag/mh/errors.hpp"
#include "hag/mh/options.hpp"
#include "hag/result.hpp"

namespace hag::mh {

// RFC 6275 §6.2: an option with alignment xn+y starts at an offset o with o % x == y.
struct Alignment {
    std::uint8_t x = 1;
    std::uint8_t y = 0;
};

struct EncodedOption {
    std::uint8_t type;
    Alignment align;
    Bytes data;  // the option data, after Type and Length
};

EncodedOption encode_option(const Option& o);
// `d` is the option data (Length octets); `off` the offset of the option's Type octet.
Result<Option, DecodeError> decode_option(std::uint8_t type, std::span<const std::uint8_t> d,
                                          std::size_t off);
std::string_view option_type_name(std::uint8_t t) noexcept;

}  // namespace hag::mh
