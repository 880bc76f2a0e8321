// libFuzzer target: hag-magsim's UDP 5436 framing parser on arbitrary bytes. What it accepts must
// point inside the input, carry a checksum that verifies, and re-frame to the same bytes (up to
// the traffic class, flow label and hop limit, which the parser does not look at, and the
// checksum field, where 0x0000 and 0xffff both verify).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "hag/mh/mh.hpp"
#include "udp_framing.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> in(data, size);
    auto r = hag::magsim::parse_udp_payload(in);
    if (!r.ok()) {
        (void)hag::magsim::to_string(r.error());
        return 0;
    }
    if (r->mh.data() != data + 40 || r->mh.size() != size - 40 ||
        !hag::mh::checksum_ok(r->mh, r->inner_src, r->inner_dst)) {
        std::abort();
    }
    auto again = hag::magsim::build_udp_payload(
        std::vector<std::uint8_t>(r->mh.begin(), r->mh.end()), r->inner_src, r->inner_dst);
    if (again.size() != size || !std::equal(again.begin() + 4, again.begin() + 7, data + 4) ||
        !std::equal(again.begin() + 8, again.begin() + 44, data + 8) ||
        !std::equal(again.begin() + 46, again.end(), data + 46) ||
        !hag::mh::checksum_ok(std::span<const std::uint8_t>(again).subspan(40), r->inner_src,
                              r->inner_dst)) {
        std::abort();  // the builder disagrees with the parser about the framing
    }
    (void)hag::mh::decode(r->mh);
    return 0;
}
