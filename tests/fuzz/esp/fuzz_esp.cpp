// libFuzzer target: ESP with AES-GCM (common/src/esp) on hostile input. Any input is opened as an
// ESP payload by an SA (it must be refused or, if ever authentic, well formed); it is also
// sealed as a plaintext and opened again (must round-trip), and the sealed packet with one
// octet changed (chosen by the input) must be refused.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "hag/esp/esp.hpp"

using namespace hag::esp;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const Key key = parse_key("000102030405060708090a0b0c0d0e0f10111213").value();
    const std::span<const std::uint8_t> in(data, size);
    {
        Sa sa(spi_of(in), key);  // the input's own SPI: reach the replay and ICV checks
        auto r = sa.open(in);
        if (r && r->payload.size() + kMinLen > size) {
            std::abort();
        }
    }
    Sa out(0x5150, key);
    Sa back(0x5150, key);
    const std::uint8_t nh = size > 0 ? data[0] : 135;
    auto sealed = out.seal(nh, in);
    if (!sealed) {
        std::abort();
    }
    auto opened = back.open(*sealed);
    if (!opened || opened->next_header != nh ||
        !std::equal(opened->payload.begin(), opened->payload.end(), in.begin(), in.end())) {
        std::abort();
    }
    if (size >= 2) {
        auto x = *sealed;
        const std::size_t at =
            (static_cast<std::size_t>(data[size - 1]) << 8 | data[size - 2]) % x.size();
        x[at] ^= static_cast<std::uint8_t>(data[size / 2] | 1);
        Sa fresh(0x5150, key);
        if (fresh.open(x)) {
            std::abort();  // a changed octet that still authenticates
        }
    }
    return 0;
}
