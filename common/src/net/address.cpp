#include "hag/net/address.hpp"

#include <algorithm>
#include <cstdio>

namespace hag::net {
namespace {

// Decimal 0..max without sign or leading zeros.
std::optional<unsigned> parse_decimal(std::string_view s, unsigned max) noexcept {
    if (s.empty() || s.size() > 3 || (s.size() > 1 && s[0] == '0')) {
        return std::nullopt;
    }
    unsigned v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v > max) {
        return std::nullopt;
    }
    return v;
}

int hex_digit(char c) noexcept {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

template <std::size_t N>
void mask_host_bits(std::array<std::uint8_t, N>& a, unsigned length) noexcept {
    for (std::size_t i = 0; i < N; ++i) {
        const unsigned bit = static_cast<unsigned>(i) * 8;
        if (bit >= length) {
            a[i] = 0;
        } else if (length - bit < 8) {
            a[i] &= static_cast<std::uint8_t>(0xff00u >> (length - bit));
        }
    }
}

template <typename Prefix, typename Parse>
std::optional<Prefix> parse_prefix(std::string_view text, unsigned max, Parse parse) noexcept {
    const auto slash = text.find('/');
    if (slash == std::string_view::npos) {
        return std::nullopt;
    }
    auto addr = parse(text.substr(0, slash));
    auto len = parse_decimal(text.substr(slash + 1), max);
    if (!addr || !len) {
        return std::nullopt;
    }
    return Prefix{*addr, static_cast<std::uint8_t>(*len)};
}

}  // namespace

std::optional<Ipv4Address> parse_ipv4_address(std::string_view text) noexcept {
    Ipv4Address a{};
    for (std::size_t i = 0; i < 4; ++i) {
        const auto dot = text.find('.');
        if ((i < 3) == (dot == std::string_view::npos)) {
            return std::nullopt;
        }
        auto v = parse_decimal(text.substr(0, dot), 255);
        if (!v) {
            return std::nullopt;
        }
        a[i] = static_cast<std::uint8_t>(*v);
        text = i < 3 ? text.substr(dot + 1) : std::string_view{};
    }
    return a;
}

std::optional<Ipv6Address> parse_ipv6_address(std::string_view text) noexcept {
    std::array<std::uint16_t, 8> groups{};
    std::size_t n = 0;  // groups written
    int gap = -1;       // index in groups where "::" stands
    if (text.starts_with("::")) {
        gap = 0;
        text.remove_prefix(2);
        if (text.empty()) {
            return Ipv6Address{};
        }
    } else if (text.empty() || text[0] == ':') {
        return std::nullopt;
    }
    while (true) {
        const auto colon = text.find(':');
        const auto part = text.substr(0, colon);
        if (colon == std::string_view::npos && part.find('.') != std::string_view::npos) {
            auto v4 = parse_ipv4_address(part);  // embedded IPv4 tail takes two groups
            if (!v4 || n > 6) {
                return std::nullopt;
            }
            groups[n++] = static_cast<std::uint16_t>((*v4)[0] << 8 | (*v4)[1]);
            groups[n++] = static_cast<std::uint16_t>((*v4)[2] << 8 | (*v4)[3]);
            break;
        }
        if (part.empty() || part.size() > 4 || n >= 8) {
            return std::nullopt;
        }
        unsigned v = 0;
        for (char c : part) {
            const int d = hex_digit(c);
            if (d < 0) {
                return std::nullopt;
            }
            v = v << 4 | static_cast<unsigned>(d);
        }
        groups[n++] = static_cast<std::uint16_t>(v);
        if (colon == std::string_view::npos) {
            break;
        }
        text.remove_prefix(colon + 1);
        if (text.starts_with(":")) {  // "::" in the middle or at the end
            if (gap >= 0) {
                return std::nullopt;
            }
            gap = static_cast<int>(n);
            text.remove_prefix(1);
            if (text.empty()) {
                break;
            }
        } else if (text.empty()) {
            return std::nullopt;  // trailing single colon
        }
    }
    if (gap < 0 ? n != 8 : n > 7) {
        return std::nullopt;
    }
    // The groups after "::" move to the end; the ones it stands for are zero. Built as eight
    // groups, then written out in one fixed loop (indexing the octets by the tail's length drew
    // a false -Wstringop-overflow from GCC 12 at -O3).
    const std::size_t head = gap < 0 ? n : static_cast<std::size_t>(gap);
    std::array<std::uint16_t, 8> all{};
    for (std::size_t i = 0; i < n && i < all.size(); ++i) {
        all[i < head ? i : 8 - n + i] = groups[i];
    }
    Ipv6Address a{};
    for (std::size_t i = 0; i < all.size(); ++i) {
        a[2 * i] = static_cast<std::uint8_t>(all[i] >> 8);
        a[2 * i + 1] = static_cast<std::uint8_t>(all[i]);
    }
    return a;
}

std::string format(const Ipv4Address& a) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
    return buf;
}

std::string format(const Ipv6Address& a) {
    // RFC 5952 §5: IPv4-mapped addresses keep the dotted-quad tail.
    static constexpr std::array<std::uint8_t, 12> kMapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::equal(kMapped.begin(), kMapped.end(), a.begin())) {
        return "::ffff:" + format(Ipv4Address{a[12], a[13], a[14], a[15]});
    }
    std::array<unsigned, 8> g{};
    for (std::size_t i = 0; i < 8; ++i) {
        g[i] = static_cast<unsigned>(a[2 * i] << 8 | a[2 * i + 1]);
    }
    // RFC 5952 §4.2: the longest run of at least two zero groups, the first one on a tie.
    int best = -1, best_len = 1;
    for (int i = 0; i < 8;) {
        int j = i;
        while (j < 8 && g[static_cast<std::size_t>(j)] == 0)
            ++j;
        if (j - i > best_len) {
            best = i;
            best_len = j - i;
        }
        i = j == i ? i + 1 : j;
    }
    std::string s;
    char buf[8];
    for (int i = 0; i < 8; ++i) {
        if (i == best) {
            s += "::";
            i += best_len - 1;
            continue;
        }
        if (!s.empty() && s.back() != ':')
            s += ':';
        std::snprintf(buf, sizeof buf, "%x", g[static_cast<std::size_t>(i)]);
        s += buf;
    }
    return s;
}

std::optional<Ipv4Prefix> parse_ipv4_prefix(std::string_view text) noexcept {
    return parse_prefix<Ipv4Prefix>(text, 32, parse_ipv4_address);
}
std::optional<Ipv6Prefix> parse_ipv6_prefix(std::string_view text) noexcept {
    return parse_prefix<Ipv6Prefix>(text, 128, parse_ipv6_address);
}

Ipv4Prefix canonical(const Ipv4Prefix& p) noexcept {
    Ipv4Prefix c = p;
    mask_host_bits(c.address, p.length);
    return c;
}
Ipv6Prefix canonical(const Ipv6Prefix& p) noexcept {
    Ipv6Prefix c = p;
    mask_host_bits(c.address, p.length);
    return c;
}
bool is_canonical(const Ipv4Prefix& p) noexcept {
    return canonical(p) == p;
}
bool is_canonical(const Ipv6Prefix& p) noexcept {
    return canonical(p) == p;
}

bool contains(const Ipv4Prefix& p, const Ipv4Address& a) noexcept {
    return canonical(Ipv4Prefix{a, p.length}).address == canonical(p).address;
}
bool contains(const Ipv6Prefix& p, const Ipv6Address& a) noexcept {
    return canonical(Ipv6Prefix{a, p.length}).address == canonical(p).address;
}
bool contains(const Ipv4Prefix& outer, const Ipv4Prefix& inner) noexcept {
    return inner.length >= outer.length && contains(outer, inner.address);
}
bool contains(const Ipv6Prefix& outer, const Ipv6Prefix& inner) noexcept {
    return inner.length >= outer.length && contains(outer, inner.address);
}

std::string format(const Ipv4Prefix& p) {
    return format(p.address) + "/" + std::to_string(p.length);
}
std::string format(const Ipv6Prefix& p) {
    return format(p.address) + "/" + std::to_string(p.length);
}

Ipv6Address ipv4_mapped(const Ipv4Address& a) noexcept {
    Ipv6Address out{};
    out[10] = out[11] = 0xff;
    std::copy(a.begin(), a.end(), out.begin() + 12);
    return out;
}

bool is_ipv4_mapped(const Ipv6Address& a) noexcept {
    return std::all_of(a.begin(), a.begin() + 10, [](std::uint8_t b) { return b == 0; }) &&
           a[10] == 0xff && a[11] == 0xff;
}

Ipv4Address mapped_ipv4(const Ipv6Address& a) noexcept {
    return {a[12], a[13], a[14], a[15]};
}

}  // namespace hag::net
