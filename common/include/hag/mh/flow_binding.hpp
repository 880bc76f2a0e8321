// RFC 6089 flow bindings and RFC 6088 binary traffic selectors, on top of the generic Flow
// Identification (45) / Flow Summary (44) options of options.hpp.
//
// Flow Identification (RFC 6089 §4.2.1): FID (2), FID-PRI (2), Reserved (1), Status (1),
// sub-options (Pad1 = 0 is one octet; the others are type, length, data): 2 BID Reference
// (one or more 16-bit BIDs), 3 Traffic Selector (TS Format (1), Reserved (1), selector).
// The octet the generic codec calls `action` is RFC 6089's Reserved octet (a field of the
// flow-binding drafts): hag sends 0 and ignores it.
//
// Actions: a flow binding that references BIDs forwards its flow to them (hag: the first
// referenced BID with a live path, then the next; none live: dropped); one that references no
// BID (no BID Reference sub-option) discards its flow. See docs/policy.md#flow-bindings.
//
// RFC 6088 selectors (§3.1 IPv4, format 1; §3.2 IPv6, format 2): a 32-bit flags word (IPv4:
// A..N in its 14 high bits; IPv6: A..P in its 16 high bits; the rest reserved), then exactly the
// fields whose flag is set, in flag order: start / end source address, start / end destination
// address (4 or 16 octets), start / end SPI (4), [IPv6: start / end flow label (4)], start /
// end source port (2), start / end destination port (2), start / end DS or traffic class (1),
// start / end protocol or next header (1). An end without its start, or an end below its
// start, is malformed.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "hag/mh/options.hpp"
#include "hag/net/checksum.hpp"  // net::Ipv6Address
#include "hag/policy/policy.hpp"
#include "hag/result.hpp"

namespace hag::mh {

inline constexpr std::uint8_t kFlowSubPad1 = 0;
inline constexpr std::uint8_t kFlowSubPadN = 1;
inline constexpr std::uint8_t kTsFormatIpv4 = 1;  // RFC 6088 §3.1
inline constexpr std::uint8_t kTsFormatIpv6 = 2;  // RFC 6088 §3.2

// Flow Identification status (RFC 6089 §4.2.1 / IANA).
enum class FlowStatus : std::uint8_t {
    kSuccess = 0,
    kAdministrativelyProhibited = 128,
    kRejectedUnspecified = 129,
    kMalformed = 130,
    kBidNotFound = 131,
    kFidNotFound = 132,
    kTsFormatNotSupported = 133,
};
std::string_view flow_status_name(std::uint8_t status) noexcept;

struct FlowError {
    FlowStatus status = FlowStatus::kMalformed;
    std::string what;
};

template <typename T>
struct Range {  // inclusive
    T first{};
    T last{};
    friend bool operator==(const Range&, const Range&) = default;
};

// An RFC 6088 selector; absent fields match anything. Addresses of an IPv4 selector are held
// IPv4-mapped (::ffff:a.b.c.d). A single value is a range with first == last.
struct TrafficSelector {
    bool ipv6 = false;
    std::optional<Range<net::Ipv6Address>> source;
    std::optional<Range<net::Ipv6Address>> destination;
    std::optional<Range<std::uint32_t>> spi;
    std::optional<Range<std::uint32_t>> flow_label;  // IPv6 only, 20 bits
    std::optional<Range<std::uint16_t>> source_port;
    std::optional<Range<std::uint16_t>> destination_port;
    std::optional<Range<std::uint8_t>> ds;        // DS field / traffic class octet
    std::optional<Range<std::uint8_t>> protocol;  // protocol / next header
    friend bool operator==(const TrafficSelector&, const TrafficSelector&) = default;
};

// The Traffic Selector sub-option's data (TS Format, Reserved, selector). Bounds-checked;
// errors say kMalformed or kTsFormatNotSupported.
Result<TrafficSelector, FlowError> decode_traffic_selector(std::span<const std::uint8_t> data);
// The sub-option data for `ts` (a range with first == last is sent as its start only).
Bytes encode_traffic_selector(const TrafficSelector& ts);
std::string describe(const TrafficSelector& ts);

// One flow binding as a MAG / mobile node asks for it.
struct FlowBinding {
    std::uint16_t fid = 0;
    std::uint16_t priority = 0;               // FID-PRI: lower value = higher priority (RFC 6089)
    std::vector<std::uint16_t> bids;          // forward to these, in order; empty = discard
    std::optional<TrafficSelector> selector;  // absent: a change to an existing FID
    friend bool operator==(const FlowBinding&, const FlowBinding&) = default;
    [[nodiscard]] bool discard() const noexcept { return bids.empty(); }
};

// Reads a Flow Identification option as a request (status ignored). Errors: kMalformed (two
// BID References or selectors, a repeated BID), kTsFormatNotSupported, with what went wrong.
Result<FlowBinding, FlowError> parse_flow_binding(const FlowIdentification& o);
// The option for a request (status 0).
FlowIdentification flow_identification(const FlowBinding& b);
// The reply in a PBA: FID, FID-PRI and status, the BID Reference echoed when accepted.
FlowIdentification flow_reply(const FlowBinding& b, FlowStatus status);

// The selector as policy classifiers, from the subscriber's side (the selector describes a
// downlink packet: its destination is the subscriber, "local"; its source is "remote").
// Address ranges become prefixes, protocol ranges one classifier per protocol, DS ranges the
// DSCP values they cover. nullopt (with `why`) when the classifier model cannot express the
// selector: an SPI range wider than one value, a flow label.
std::optional<std::vector<policy::Classifier>> classifiers_of(const TrafficSelector& ts,
                                                              std::string* why = nullptr);

// The fewest prefixes covering exactly [first, last] (at most 254).
std::vector<net::Ipv6Prefix> range_to_prefixes(const net::Ipv6Address& first,
                                               const net::Ipv6Address& last);

}  // namespace hag::mh
