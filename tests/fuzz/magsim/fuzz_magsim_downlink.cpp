// libFuzzer target: hag-magsim data mode's downlink — the GRE check (parse_downlink, over the
// common IPv4 / GRE parsers) and the reorder buffer fed with fuzzer-chosen sequence numbers.
// Input: octet 0 selects the outer family (bit 0) and how the rest is used (bit 1: reorder).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "data.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 5) {
        return 0;
    }
    const bool ipv4 = (data[0] & 1) != 0;
    const std::uint32_t key =
        static_cast<std::uint32_t>(data[1]) << 24 | data[2] << 16 | data[3] << 8 | data[4];
    const std::span<const std::uint8_t> rest(data + 5, size - 5);
    if ((data[0] & 2) == 0) {
        const auto r = hag::magsim::parse_downlink(rest, ipv4, key);
        if (r.packet) {
            const auto& in = r.packet->inner;
            if (in.data() < rest.data() || in.data() + in.size() > rest.data() + rest.size() ||
                in.empty()) {
                std::abort();
            }
        }
        return 0;
    }
    // Reorder: each 5-octet record is a 4-octet sequence number and a time step (0..255 ms);
    // every number delivered must be one pushed, and held packets never exceed the window.
    hag::magsim::Reorderer r(8, std::chrono::milliseconds(20), 8);
    auto now = hag::magsim::Reorderer::Clock::time_point{} + std::chrono::seconds(1);
    std::size_t pushed = 0, delivered = 0;
    for (std::size_t i = 0; i + 5 <= rest.size(); i += 5) {
        const std::uint8_t* p = rest.data() + i;
        const std::uint32_t seq =
            static_cast<std::uint32_t>(p[0]) << 24 | p[1] << 16 | p[2] << 8 | p[3];
        now += std::chrono::milliseconds(p[4]);
        r.expire(now, [&](auto) { ++delivered; });
        const std::uint8_t payload[4] = {p[0], p[1], p[2], p[3]};
        const auto out = r.push(seq, payload, now, [&](auto d) {
            if (d.size() != 4) {
                std::abort();
            }
            ++delivered;
        });
        if (out != hag::magsim::Reorderer::Outcome::duplicate) {
            ++pushed;
        }
        if (r.held() > 8 || delivered + r.held() != pushed) {
            std::abort();
        }
    }
    return 0;
}
