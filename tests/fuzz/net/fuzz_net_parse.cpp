// libFuzzer target: IPv4 / IPv6 (+ extension walk) / GRE / UDP parsers over arbitrary bytes.
// Whatever parses must re-encode to exactly the bytes it was parsed from.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include <string_view>

#include "hag/net/address.hpp"
#include "hag/net/gre.hpp"
#include "hag/net/ipv4.hpp"
#include "hag/net/ipv6.hpp"
#include "hag/net/udp.hpp"
#include "stamp.hpp"  // tools/hag-gen: the payload stamp of received benchmark traffic

namespace {

using Bytes = std::vector<std::uint8_t>;

void require(bool ok) {
    if (!ok) {
        std::abort();
    }
}

bool same(const Bytes& encoded, std::span<const std::uint8_t> input) {
    return encoded.size() <= input.size() &&
           std::equal(encoded.begin(), encoded.end(), input.begin());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> in(data, size);
    using namespace hag::net;

    if (auto p = parse_ipv4(in)) {
        Bytes e;
        encode(p->header, e);
        require(e.size() == p->header.header_length());
        require(same(e, in));
        require(compute_checksum(p->header) == p->header.checksum || p->header.checksum == 0xffff ||
                p->header.checksum == 0);
        require(p->payload.size() == p->header.total_length - e.size());
        (void)parse_udp(p->payload, p->header.src, p->header.dst);
    }
    if (auto p = parse_ipv6(in)) {
        Bytes e;
        encode(p->header, e);
        require(same(e, in));
        if (auto ul = find_upper_layer(p->header.next_header, p->payload)) {
            require(ul->offset + ul->data.size() == p->payload.size());
            (void)parse_udp(ul->data, p->header.src, p->header.dst);
        }
    }
    if (auto g = parse_gre(in)) {
        Bytes e;
        encode(g->header, e);
        require(e.size() == g->header.length());
        require(same(e, in));
        require(g->payload.size() == in.size() - e.size());
    }
    if (auto u = parse_udp(in)) {
        Bytes e;
        encode(u->header, e);
        require(same(e, in));
        require(u->payload.size() + kUdpHeaderLength == u->header.length);
    }
    // Address and prefix text: whatever parses formats canonically and parses back the same.
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    if (auto a = parse_ipv6_address(text)) {
        const auto f = format(*a);
        require(parse_ipv6_address(f) == a);
        require(format(*parse_ipv6_address(f)) == f);
    }
    if (auto a = parse_ipv4_address(text)) {
        require(format(*a) == text);
    }
    if (auto p = parse_ipv6_prefix(text)) {
        const auto c = canonical(*p);
        require(is_canonical(c) && contains(c, p->address) && contains(*p, c));
        require(parse_ipv6_prefix(format(c)) == c);
    }
    if (auto p = parse_ipv4_prefix(text)) {
        require(format(*p) == text);
        require(contains(canonical(*p), p->address));
    }
    // hag-gen's stamp: whatever parses re-encodes to the input's last 20 octets.
    if (auto st = hag::gen::parse_stamp(in)) {
        std::vector<std::uint8_t> e(hag::gen::kStampSize);
        hag::gen::put_stamp(e, *st);
        require(std::equal(e.begin(), e.end(), in.end() - static_cast<long>(e.size())));
    }
    return 0;
}
