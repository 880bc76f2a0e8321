// A path's encapsulation fields (DpPath.udp_port, .tunnel, .mtu; the configuration file's
// StaticPath has the same) checked and converted, for the programming API (session_parse.cpp)
// and the static sessions (runtime/config.cpp checks them, runtime/main.cpp converts them).
// Header-only: the configuration fuzz target builds config.cpp without the rest.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string>

#include "hag/result.hpp"
#include "hag/v1/dataplane.pb.h"
#include "tables/session_table.hpp"

namespace hag::dp {

// Into pc.udp_port, pc.tunnel, pc.mtu for a path whose care-of address is of `family`. The
// error names the field, not the session and path ("udp_port 70000 (1-65535, ...)").
inline Result<void, std::string> parse_path_encapsulation(std::uint32_t udp_port, int tunnel,
                                                          std::uint32_t mtu, Family family,
                                                          PathConfig& pc) {
    if (udp_port > 65535 || (udp_port != 0 && family != Family::kIpv4)) {
        return unexpected(fmt::format("udp_port {} (1-65535, on an IPv4 path only)", udp_port));
    }
    const unsigned min_mtu = family == Family::kIpv4 ? kMinPathMtu4 : kMinPathMtu6;
    if (mtu != 0 && (mtu < min_mtu || mtu > kMaxPathMtu)) {
        return unexpected(
            fmt::format("mtu {} ({}-{} allowed, 0 = the port's)", mtu, min_mtu, kMaxPathMtu));
    }
    switch (tunnel) {
        case v1::TUNNEL_GRE:
            pc.tunnel = Tunnel::kGre;
            break;
        case v1::TUNNEL_IP_IN_IP:
            pc.tunnel = Tunnel::kIpInIp;
            break;
        default:
            return unexpected(
                fmt::format("tunnel {} is not a tunnel type (0 GRE, 1 IP in IP)", tunnel));
    }
    if (pc.tunnel == Tunnel::kIpInIp && udp_port != 0) {
        return unexpected(std::string("udp_port is for GRE paths (NAT traversal), not IP in IP"));
    }
    pc.udp_port = static_cast<std::uint16_t>(udp_port);
    pc.mtu = static_cast<std::uint16_t>(mtu);
    return {};
}

}  // namespace hag::dp
