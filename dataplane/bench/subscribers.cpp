#include "bench/subscribers.hpp"

namespace hag::dp::bench {

namespace {
IpAddr v6(std::uint16_t g0, std::uint16_t g1, std::uint16_t g2, std::uint16_t g3, std::uint16_t g6,
          std::uint16_t g7) {
    IpAddr a;
    a.family = Family::kIpv6;
    const std::uint16_t groups[8] = {g0, g1, g2, g3, 0, 0, g6, g7};
    for (unsigned k = 0; k < 8; ++k) {
        a.bytes[2 * k] = static_cast<std::uint8_t>(groups[k] >> 8);
        a.bytes[2 * k + 1] = static_cast<std::uint8_t>(groups[k]);
    }
    return a;
}
std::uint16_t hi(std::uint32_t i) {
    return static_cast<std::uint16_t>(i >> 16);
}
std::uint16_t lo(std::uint32_t i) {
    return static_cast<std::uint16_t>(i);
}
}  // namespace

IpAddr inner_host(std::uint32_t i) {
    return v6(0x2001, 0x0db8, static_cast<std::uint16_t>(0x100 + hi(i)), lo(i), 0, 1);
}

IpPrefix home_prefix(std::uint32_t i) {
    return {v6(0x2001, 0x0db8, static_cast<std::uint16_t>(0x100 + hi(i)), lo(i), 0, 0), 64};
}

IpAddr care_of(std::uint32_t i, bool alt) {
    return v6(0x2001, 0x0db8, alt ? 0x0c0b : 0x0c0a, 0, hi(i), lo(i));
}

IpAddr path_coa(std::uint32_t i, unsigned k) {
    return k == 0 ? care_of(i)
                  : v6(0x2001, 0x0db8, static_cast<std::uint16_t>(0x0d00 + k), 0, hi(i), lo(i));
}

IpAddr inner_host_v4(std::uint32_t i) {
    const std::uint32_t a = 0xc6120000u + (i % kMaxIpv4Subscribers);  // 198.18.0.0/15
    return IpAddr::v4(static_cast<std::uint8_t>(a >> 24), static_cast<std::uint8_t>(a >> 16),
                      static_cast<std::uint8_t>(a >> 8), static_cast<std::uint8_t>(a));
}

IpAddr core_host_v4() {
    return IpAddr::v4(198, 51, 100, 1);
}

IpAddr gateway_address() {
    return v6(0x2001, 0x0db8, 0x000a, 0, 0, 1);
}

IpAddr core_host() {
    return v6(0x2001, 0x0db8, 0xffff, 0, 0, 1);
}

SessionConfig session_config(std::uint32_t i, std::uint16_t access_port, const MacAddr& port_mac,
                             unsigned paths, StripingMode striping, bool ipv4) {
    SessionConfig c;
    c.uplink_key = uplink_key(i);
    c.gre_sequence = true;
    c.n_prefixes = 1;
    c.prefixes[0] = home_prefix(i);
    if (ipv4 && i < kMaxIpv4Subscribers) {
        c.prefixes[c.n_prefixes++] = {inner_host_v4(i), 32};
    }
    c.n_paths = 1;
    PathConfig& p = c.paths[0];
    p.bid = 1;
    p.if_label = 1;
    p.downlink_key = downlink_key(i);
    p.weight = 1;
    p.local = gateway_address();
    p.coa = care_of(i);
    p.port = access_port;
    p.src_mac = port_mac;
    p.next_hop_mac = kAccessNextHopMac;
    c.striping = striping;
    for (unsigned k = 1; k < paths && k < kMaxPaths; ++k) {
        PathConfig& q = c.paths[k];
        q = p;
        q.bid = static_cast<std::uint16_t>(k + 1);
        q.coa = path_coa(i, k);
        q.weight = 1000 * (k + 1);
        ++c.n_paths;
    }
    if (paths > 1) {
        p.weight = 1000;
    }
    return c;
}

}  // namespace hag::dp::bench
