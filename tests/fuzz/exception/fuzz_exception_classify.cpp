// libFuzzer target: the data plane's exception-path classifier over arbitrary frames, both
// directions: classify_frame (port -> kernel) and suppress_from_kernel (kernel -> port, the
// Parameter Problem filter of exception/kernel_filter.hpp).
// Besides memory safety (ASan/UBSan), checks one property: a frame's verdict depends only on
// the bytes its headers claim, so appending bytes (Ethernet padding) never changes a verdict
// that punts, nor one that suppresses.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "exception/classify.hpp"
#include "exception/kernel_filter.hpp"

namespace {

hag::dp::exc::OwnAddresses own() {
    hag::dp::exc::OwnAddresses o;
    const std::uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    const std::uint8_t v4[4] = {192, 0, 2, 254};
    o.add(v6, 16);
    o.add(v4, 4);
    return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const hag::dp::exc::OwnAddresses o = own();
    // An exact-size copy, so ASan sees any read past the end.
    const std::vector<std::uint8_t> frame(data, data + size);
    const auto verdict = hag::dp::exc::classify_frame(frame.data(), frame.size(), o);
    std::vector<std::uint8_t> padded = frame;
    padded.resize(size + 64, 0xa5);
    const auto again = hag::dp::exc::classify_frame(padded.data(), padded.size(), o);
    if (verdict != hag::dp::exc::Punt::kNone && again != verdict) {
        std::abort();
    }
    if (hag::dp::exc::suppress_from_kernel(frame.data(), frame.size(), o) &&
        !hag::dp::exc::suppress_from_kernel(padded.data(), padded.size(), o)) {
        std::abort();
    }
    return 0;
}
