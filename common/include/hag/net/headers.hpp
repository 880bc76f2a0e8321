// Umbrella header for the packet header codecs of hag::net: IPv4, IPv6, UDP and GRE header
// structs (encode / bounds-checked parse returning hag::Result<..., ParseError>) and the packet
// builders (build_ipv6_packet, build_ipv6_mh, build_gre, ...).
#pragma once

#include "hag/net/builders.hpp"
#include "hag/net/gre.hpp"
#include "hag/net/ipv4.hpp"
#include "hag/net/ipv6.hpp"
#include "hag/net/parse_error.hpp"
#include "hag/net/udp.hpp"
