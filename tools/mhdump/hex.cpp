#include "hex.hpp"

#include <cstdio>

namespace hag::mhdump {
namespace {

int nibble(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

}  // namespace

std::optional<std::vector<std::uint8_t>> parse_hex(std::string_view text) {
    if (text.starts_with("0x") || text.starts_with("0X")) {
        text.remove_prefix(2);
    }
    std::vector<std::uint8_t> out;
    int high = -1;
    for (char c : text) {
        if (c == ' ' || c == ':' || c == '\n' || c == '\r' || c == '\t') {
            if (high >= 0) {
                return std::nullopt;  // a separator inside an octet
            }
            continue;
        }
        const int n = nibble(c);
        if (n < 0) {
            return std::nullopt;
        }
        if (high < 0) {
            high = n;
        } else {
            out.push_back(static_cast<std::uint8_t>(high << 4 | n));
            high = -1;
        }
    }
    if (high >= 0) {
        return std::nullopt;
    }
    return out;
}

std::string to_hex(std::span<const std::uint8_t> bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string s;
    s.reserve(bytes.size() * 2);
    for (auto b : bytes) {
        s += kDigits[b >> 4];
        s += kDigits[b & 0xf];
    }
    return s;
}

std::string hex_dump(std::span<const std::uint8_t> bytes) {
    std::string s;
    char off[32];
    for (std::size_t i = 0; i < bytes.size(); i += 16) {
        std::snprintf(off, sizeof off, "%04zx ", i);
        s += off;
        for (std::size_t j = i; j < i + 16 && j < bytes.size(); ++j) {
            if ((j - i) % 2 == 0)
                s += ' ';
            s += to_hex(bytes.subspan(j, 1));
        }
        s += '\n';
    }
    return s;
}

}  // namespace hag::mhdump
