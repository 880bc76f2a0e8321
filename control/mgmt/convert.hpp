// Conversions between binding cache types and hag.v1 messages, and parsing of request fields.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/binding_cache.hpp"
#include "hag/v1/management.pb.h"

namespace hag::control::mgmt {

// "2001:db8:1::/64" -> Prefix; nullopt on any syntax error or length > 128.
std::optional<Prefix> parse_prefix(std::string_view text);
// IPv6 text, or IPv4 dotted quad (held IPv4-mapped) -> CareOfAddress.
std::optional<CareOfAddress> parse_coa(std::string_view text);

void to_proto(const Session& s, Seconds now, hag::v1::Binding* out);

}  // namespace hag::control::mgmt
