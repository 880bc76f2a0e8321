// Text forms the data plane's configuration uses: IP addresses, prefixes and MAC addresses.
#pragma once

#include <string>
#include <string_view>

#include "hag/result.hpp"
#include "tables/session_table.hpp"

namespace hag::dp {

Result<IpAddr, std::string> parse_ip(std::string_view text);           // IPv4 or IPv6
Result<IpPrefix, std::string> parse_ip_prefix(std::string_view text);  // "addr/len", host bits zero
Result<MacAddr, std::string> parse_mac(std::string_view text);         // "02:00:00:00:00:01"
std::string to_string(const IpAddr& a);
std::string to_string(const MacAddr& m);

}  // namespace hag::dp
