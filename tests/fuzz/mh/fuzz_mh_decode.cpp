// libFuzzer target: the mobility-header decoder on arbitrary bytes. What decodes must re-encode
// to bytes that decode to the same message (the codec's own round-trip property).
#include <cstdint>
#include <cstdlib>
#include <span>

#include "hag/mh/mh.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto m = hag::mh::decode(std::span<const std::uint8_t>(data, size));
    if (!m.ok()) {
        (void)hag::mh::reaction_to(m.error());
        (void)m.error().str();
        return 0;
    }
    (void)hag::mh::describe(*m);
    const auto bytes = hag::mh::encode(*m);
    auto again = hag::mh::decode(bytes);
    if (!again.ok() || !(*again == *m)) {
        std::abort();  // the encoder produced something the decoder rejects or reads differently
    }
    return 0;
}
