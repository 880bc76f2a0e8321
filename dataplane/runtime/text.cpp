#include "runtime/text.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <charconv>

namespace hag::dp {

Result<IpAddr, std::string> parse_ip(std::string_view text) {
    const std::string s(text);
    IpAddr a;
    if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) {
        a.family = Family::kIpv6;
        return a;
    }
    if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) {
        a.family = Family::kIpv4;
        return a;
    }
    return unexpected(fmt::format("'{}' is not an IPv4 or IPv6 address", text));
}

Result<IpPrefix, std::string> parse_ip_prefix(std::string_view text) {
    const auto slash = text.find('/');
    if (slash == std::string_view::npos) {
        return unexpected(fmt::format("'{}' is not a prefix (expected address/length)", text));
    }
    auto addr = parse_ip(text.substr(0, slash));
    if (!addr) {
        return unexpected(addr.error());
    }
    const std::string_view len_text = text.substr(slash + 1);
    unsigned len = 0;
    const auto [ptr, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
    const unsigned max = addr->family == Family::kIpv4 ? 32 : 128;
    if (len_text.empty() || ec != std::errc() || ptr != len_text.data() + len_text.size() ||
        len > max) {
        return unexpected(fmt::format("'{}': prefix length must be 0-{}", text, max));
    }
    IpPrefix p{*addr, static_cast<std::uint8_t>(len)};
    for (unsigned b = len; b < max; ++b) {
        if ((p.addr.bytes[b / 8] >> (7 - b % 8)) & 1u) {
            return unexpected(fmt::format("'{}' has bits set past the prefix length", text));
        }
    }
    return p;
}

Result<MacAddr, std::string> parse_mac(std::string_view text) {
    MacAddr m{};
    if (text.size() != 17) {
        return unexpected(fmt::format("'{}' is not a MAC address (xx:xx:xx:xx:xx:xx)", text));
    }
    for (int i = 0; i < 6; ++i) {
        const char* b = text.data() + i * 3;
        if (i < 5 && b[2] != ':') {
            return unexpected(fmt::format("'{}' is not a MAC address (xx:xx:xx:xx:xx:xx)", text));
        }
        unsigned v = 0;
        const auto [ptr, ec] = std::from_chars(b, b + 2, v, 16);
        if (ec != std::errc() || ptr != b + 2) {
            return unexpected(fmt::format("'{}' is not a MAC address (xx:xx:xx:xx:xx:xx)", text));
        }
        m[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v);
    }
    return m;
}

std::string to_string(const IpAddr& a) {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(a.family == Family::kIpv4 ? AF_INET : AF_INET6, a.bytes.data(), buf, sizeof buf);
    return buf;
}

std::string to_string(const MacAddr& m) {
    return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4],
                       m[5]);
}

}  // namespace hag::dp
