// libFuzzer target: the UDP 5436 signalling framing (hag/mh/udp_transport.hpp) on arbitrary
// datagrams, then the MH decoder on what it accepts. What parses must rebuild to a datagram that
// parses to the same mobility header.
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "hag/mh/mh.hpp"
#include "hag/mh/udp_transport.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const hag::net::Ipv6Address src{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 2};
    const hag::net::Ipv6Address dst{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1};
    auto p = hag::mh::parse_udp_signalling(std::span<const std::uint8_t>(data, size), src, dst);
    if (!p.ok()) {
        (void)hag::mh::to_string(p.error());
        return 0;
    }
    (void)hag::mh::decode(p->mh);
    std::vector<std::uint8_t> mh(p->mh.begin(), p->mh.end());
    mh[4] = mh[5] = 0;
    const auto again = hag::mh::build_udp_signalling(mh, p->bare, p->inner_src, p->inner_dst);
    auto q = hag::mh::parse_udp_signalling(again, src, dst);
    // The same header, checksum aside: one's complement has two zeros, so a valid 0xffff
    // checksum may come back as 0x0000.
    std::vector<std::uint8_t> a(p->mh.begin(), p->mh.end());
    std::vector<std::uint8_t> b;
    if (q.ok()) {
        b.assign(q->mh.begin(), q->mh.end());
    }
    if (!q.ok() || a.size() != b.size()) {
        std::abort();
    }
    a[4] = a[5] = b[4] = b[5] = 0;
    if (a != b) {
        std::abort();
    }
    return 0;
}
