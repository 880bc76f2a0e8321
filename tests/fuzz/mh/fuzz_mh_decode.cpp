// libFuzzer target: the mobility-header decoder on arbitrary bytes. What decodes must re-encode
// to bytes that decode to the same message (the codec's own round-trip property). Flow
// Identification options are also read as RFC 6089 flow bindings (RFC 6088 selectors): what
// parses must re-encode to the same binding.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "hag/mh/flow_binding.hpp"
#include "hag/mh/mh.hpp"

namespace {

void check_flow_bindings(const hag::mh::Options& opts) {
    for (const auto* fi : hag::mh::find_options<hag::mh::FlowIdentification>(opts)) {
        auto b = hag::mh::parse_flow_binding(*fi);
        if (!b.ok()) {
            (void)hag::mh::flow_reply(hag::mh::FlowBinding{fi->fid, fi->priority, {}, {}},
                                      b.error().status);
            continue;
        }
        auto again = hag::mh::parse_flow_binding(hag::mh::flow_identification(*b));
        if (!again.ok() || !(*again == *b)) {
            std::abort();
        }
        if (b->selector) {
            (void)hag::mh::describe(*b->selector);
            (void)hag::mh::classifiers_of(*b->selector);
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto m = hag::mh::decode(std::span<const std::uint8_t>(data, size));
    if (!m.ok()) {
        (void)hag::mh::reaction_to(m.error());
        (void)m.error().str();
        return 0;
    }
    (void)hag::mh::describe(*m);
    check_flow_bindings(m->options());
    const auto bytes = hag::mh::encode(*m);
    auto again = hag::mh::decode(bytes);
    if (!again.ok() || !(*again == *m)) {
        std::abort();  // the encoder produced something the decoder rejects or reads differently
    }
    return 0;
}
