// libFuzzer target: the mobility-header decoder on arbitrary bytes. What decodes must re-encode
// to bytes that decode to the same message (the codec's own round-trip property).
//
// The same bytes also go through the MIPv6 home agent's raw-socket entry points
// (hag/mh/home_address.hpp): as what a raw IPPROTO_DSTOPTS socket delivers (Destination
// Options header with the Home Address option, then the BU), as what a raw protocol-43 socket
// delivers (Type 2 Routing Header, then the BA) and as an ICMPv6 HAAD request / reply. Whatever
// they accept must lie inside the input, and the mobility header behind them is decoded too.
//
// Flow Identification options are also read as RFC 6089 flow bindings (RFC 6088 selectors):
// what parses must re-encode to the same binding.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "hag/mh/flow_binding.hpp"
#include "hag/mh/home_address.hpp"
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

void decode_round_trip(std::span<const std::uint8_t> in) {
    auto m = hag::mh::decode(in);
    if (!m.ok()) {
        (void)hag::mh::reaction_to(m.error());
        (void)m.error().str();
        return;
    }
    (void)hag::mh::describe(*m);
    check_flow_bindings(m->options());
    const auto bytes = hag::mh::encode(*m);
    auto again = hag::mh::decode(bytes);
    if (!again.ok() || !(*again == *m)) {
        std::abort();  // the encoder produced something the decoder rejects or reads differently
    }
}

bool inside(std::span<const std::uint8_t> part, std::span<const std::uint8_t> whole) {
    return part.data() >= whole.data() && part.data() + part.size() == whole.data() + whole.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> in(data, size);
    decode_round_trip(in);
    if (auto h = hag::mh::parse_home_address_header(in)) {
        if (!inside(h->payload, in)) {
            std::abort();
        }
        decode_round_trip(h->payload);
        // What the parser accepted must survive being rebuilt around the same home address.
        auto rebuilt = hag::mh::build_home_address_header(h->home_address, h->next_header);
        auto back = hag::mh::parse_home_address_header(rebuilt);
        if (!back || back->home_address != h->home_address || !back->payload.empty()) {
            std::abort();
        }
    }
    if (auto r = hag::mh::parse_type2_routing_header(in)) {
        if (!inside(r->payload, in)) {
            std::abort();
        }
        decode_round_trip(r->payload);
    }
    (void)hag::mh::parse_haad_request(in);
    std::uint16_t id = 0;
    if (auto a = hag::mh::parse_haad_reply(in, id); a && a->size() * 16 + 8 != size) {
        std::abort();
    }
    return 0;
}
