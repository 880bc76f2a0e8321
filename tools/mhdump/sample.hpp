// The sample PBU/PBA exchange of hag-mhdump: one home router (MAG) with two accesses, DSL and
// LTE, registering both with the LMA (RFC 5213 + RFC 8278 multipath, RFC 5845 GRE keys).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hag/net/address.hpp"

namespace hag::mhdump {

struct SampleMessage {
    std::string label;  // e.g. "PBU over DSL"
    net::Ipv6Address src{};
    net::Ipv6Address dst{};
    std::vector<std::uint8_t> mh;  // the Mobility Header, checksum filled for src/dst
};

// PBU (DSL), PBA (DSL), PBU (LTE), PBA (LTE), encoded with hag::mh.
std::vector<SampleMessage> sample_exchange();

}  // namespace hag::mhdump
