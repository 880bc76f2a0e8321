#include "hag/mh/home_address.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <initializer_list>

namespace hag::mh {

namespace {

Ipv6 read_address(std::span<const std::uint8_t> d) {
    Ipv6 a{};
    std::copy_n(d.begin(), 16, a.begin());
    return a;
}

// An 8-octet header start followed by addresses, in a vector sized once (growing one built
// from an initializer list with insert() drew a false -Warray-bounds from GCC 12 at -O3).
std::vector<std::uint8_t> with_addresses(const std::array<std::uint8_t, 8>& start,
                                         std::initializer_list<const Ipv6*> addresses) {
    std::vector<std::uint8_t> h(start.size() + 16 * addresses.size());
    auto out = std::copy(start.begin(), start.end(), h.begin());
    for (const Ipv6* a : addresses) {
        out = std::copy(a->begin(), a->end(), out);
    }
    return h;
}

}  // namespace

Result<HomeAddressHeader, std::string> parse_home_address_header(
    std::span<const std::uint8_t> data) {
    if (data.size() < 2) {
        return unexpected(fmt::format("destination options header of {} octet(s)", data.size()));
    }
    const std::size_t len = (std::size_t{data[1]} + 1) * 8;
    if (len > data.size()) {
        return unexpected(
            fmt::format("destination options header of {} octets, {} present", len, data.size()));
    }
    HomeAddressHeader out;
    out.next_header = data[0];
    out.payload = data.subspan(len);
    bool found = false;
    std::size_t off = 2;
    while (off < len) {
        const std::uint8_t type = data[off];
        if (type == 0) {  // Pad1
            ++off;
            continue;
        }
        if (off + 2 > len) {
            return unexpected(fmt::format("option type {} at offset {} has no length", type, off));
        }
        const std::size_t olen = data[off + 1];
        if (off + 2 + olen > len) {
            return unexpected(
                fmt::format("option type {} at offset {} runs past the header", type, off));
        }
        if (type == kHomeAddressOptionType) {
            if (olen != 16) {
                return unexpected(fmt::format("Home Address option of length {} (16)", olen));
            }
            if (found) {
                return unexpected(std::string("two Home Address options"));
            }
            found = true;
            out.home_address = read_address(data.subspan(off + 2, 16));
        } else if (type != 1 && (type & 0xc0) != 0) {
            // RFC 8200 §4.2: an unknown option whose high bits are not 00 discards the packet.
            return unexpected(fmt::format("unknown option type {} at offset {}", type, off));
        }
        off += 2 + olen;
    }
    if (!found) {
        return unexpected(std::string("no Home Address option"));
    }
    return out;
}

std::vector<std::uint8_t> build_home_address_header(const Ipv6& home_address,
                                                    std::uint8_t next_header) {
    // Next Header, Hdr Ext Len 2 (24 octets), PadN of 4 octets, the option at offset 6 (8n+6).
    return with_addresses({next_header, 2, 1, 2, 0, 0, kHomeAddressOptionType, 16},
                          {&home_address});
}

Result<Type2RoutingHeader, std::string> parse_type2_routing_header(
    std::span<const std::uint8_t> data) {
    if (data.size() < 24) {
        return unexpected(fmt::format("routing header of {} octet(s), 24 needed", data.size()));
    }
    if (data[2] != 2) {
        return unexpected(fmt::format("routing type {} (2 expected)", data[2]));
    }
    if (data[1] != 2) {
        return unexpected(fmt::format("type 2 routing header with Hdr Ext Len {} (2)", data[1]));
    }
    if (data[3] > 1) {
        return unexpected(fmt::format("type 2 routing header with segments left {}", data[3]));
    }
    Type2RoutingHeader out;
    out.next_header = data[0];
    out.segments_left = data[3];
    out.home_address = read_address(data.subspan(8, 16));
    out.payload = data.subspan(24);
    return out;
}

std::vector<std::uint8_t> build_type2_routing_header(const Ipv6& home_address,
                                                     std::uint8_t next_header) {
    return with_addresses({next_header, 2, 2, 1, 0, 0, 0, 0}, {&home_address});
}

Result<HaadRequest, std::string> parse_haad_request(std::span<const std::uint8_t> icmp) {
    if (icmp.size() < 8) {
        return unexpected(fmt::format("HAAD request of {} octet(s), 8 needed", icmp.size()));
    }
    if (icmp[0] != kIcmpHaadRequest || icmp[1] != 0) {
        return unexpected(
            fmt::format("ICMPv6 type {} code {} is not a HAAD request", icmp[0], icmp[1]));
    }
    return HaadRequest{static_cast<std::uint16_t>((icmp[4] << 8) | icmp[5])};
}

std::vector<std::uint8_t> build_haad_request(std::uint16_t identifier) {
    return {kIcmpHaadRequest,
            0,
            0,
            0,
            static_cast<std::uint8_t>(identifier >> 8),
            static_cast<std::uint8_t>(identifier),
            0,
            0};
}

std::vector<std::uint8_t> build_haad_reply(std::uint16_t identifier,
                                           const std::vector<Ipv6>& home_agents) {
    std::vector<std::uint8_t> r{kIcmpHaadReply,
                                0,
                                0,
                                0,
                                static_cast<std::uint8_t>(identifier >> 8),
                                static_cast<std::uint8_t>(identifier),
                                0,
                                0};
    for (const auto& a : home_agents) {
        r.insert(r.end(), a.begin(), a.end());
    }
    return r;
}

Result<std::vector<Ipv6>, std::string> parse_haad_reply(std::span<const std::uint8_t> icmp,
                                                        std::uint16_t& identifier) {
    if (icmp.size() < 8 || (icmp.size() - 8) % 16 != 0) {
        return unexpected(fmt::format("HAAD reply of {} octets (8 + 16n)", icmp.size()));
    }
    if (icmp[0] != kIcmpHaadReply || icmp[1] != 0) {
        return unexpected(
            fmt::format("ICMPv6 type {} code {} is not a HAAD reply", icmp[0], icmp[1]));
    }
    identifier = static_cast<std::uint16_t>((icmp[4] << 8) | icmp[5]);
    std::vector<Ipv6> out;
    for (std::size_t off = 8; off < icmp.size(); off += 16) {
        out.push_back(read_address(icmp.subspan(off, 16)));
    }
    return out;
}

std::vector<std::uint8_t> build_ipv6_header(const Ipv6& src, const Ipv6& dst,
                                            std::uint8_t next_header, std::size_t payload_length,
                                            std::uint8_t hop_limit) {
    return with_addresses({0x60, 0, 0, 0, static_cast<std::uint8_t>(payload_length >> 8),
                           static_cast<std::uint8_t>(payload_length), next_header, hop_limit},
                          {&src, &dst});
}

}  // namespace hag::mh
