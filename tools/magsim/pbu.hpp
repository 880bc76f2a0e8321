// hag-magsim message building: PBUs for one access of a subscriber and PBA summaries.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <utility>
#include <vector>

#include "hag/mh/codec.hpp"
#include "hag/mh/flow_binding.hpp"
#include "hag/mh/mh.hpp"

namespace hag::magsim {

// Link metrics travel in a Vendor-Specific Mobility Option (RFC 5094). Vendor ID 32473 is the
// documentation enterprise number (RFC 5612); sub-type 1 = downlink kbps (4) + uplink kbps (4).
inline constexpr std::uint32_t kLinkMetricsVendorId = 32473;
inline constexpr std::uint8_t kLinkMetricsSubtype = 1;

// "dsl:2001:db8:a::2:1" or "lte:eth1:2": kind, interface name or CoA, BID. IPv4 transport
// (UDP 5436): an IPv4 CoA ("lte:192.0.2.2:2") or a kind with the suffix 4 ("lte4:eth1:2": the
// interface's IPv4 address).
struct AccessSpec {
    std::string kind;  // dsl, lte, wlan, ethernet, ... (without the suffix 4)
    std::string iface_or_coa;
    std::uint16_t bid = 0;  // 1..255 (MAG Multipath-Binding carries 8 bits)
    bool ipv4 = false;      // signalling over IPv4 / UDP 5436
};
std::optional<AccessSpec> parse_access(std::string_view text);
// ATT value (RFC 5213 §8.5) and If-Label (colour) for an access kind.
std::uint8_t access_att(std::string_view kind);
std::uint8_t access_label(std::string_view kind);

struct PbuParams {
    std::string nai;
    std::string mag_id;  // MAG Identifier (NAI subtype)
    AccessSpec access;
    std::uint16_t sequence = 0;
    std::uint16_t lifetime_s = 3600;  // 0 = de-registration
    std::uint32_t downlink_gre_key = 0;
    bool gre_key = true;          // MN mode: false = no GRE Key option (IPv6-in-IPv6 user plane)
    std::uint64_t timestamp = 0;  // RFC 5213 §8.8 format (hag/mh/timestamp.hpp)
    std::uint8_t handoff = 1;     // HI: 1 new attach
    std::uint32_t down_kbps = 0;
    std::uint32_t up_kbps = 0;
    std::optional<mh::Ipv4> coa4;  // IPv4 transport: IPv4 Care-of Address option (RFC 5555)
    // IPv4 Home Address Request option (RFC 5844 §3.1): 0.0.0.0 asks the LMA to assign one.
    std::optional<mh::Ipv4> ipv4_hoa;
    // Delegated Mobile Network Prefix options (RFC 7148) sent with registrations.
    std::vector<mh::DelegatedMobileNetworkPrefix> dmnp;
    // MN mode (RFC 6275 home registration): a BU of a mobile node (A and H flags, no P) with
    // MN-ID, Binding Identifier (RFC 5648) and GRE Key options only; the home address travels
    // in a Home Address destination option (hag/mh/home_address.hpp), not in the BU.
    bool mobile_node = false;
    std::vector<mh::FlowBinding> flows;  // RFC 6089 Flow Identification options
};
// --dmnp: "any" (an IPv6 prefix), "any4" (an IPv4 prefix), or a prefix: a specific one
// ("2001:db8:d00::/56", "192.0.2.128/28") or a zero one with a length hint ("::/56").
std::optional<mh::DelegatedMobileNetworkPrefix> parse_dmnp_request(std::string_view text);
// "2001:db8:d00::/56", "192.0.2.128/28".
std::string dmnp_text(const mh::DelegatedMobileNetworkPrefix& o);
mh::Message build_pbu(const PbuParams& p);

struct PbaSummary {
    std::uint16_t sequence = 0;
    std::uint8_t status = 0;
    std::string status_name;
    std::uint32_t lifetime_s = 0;
    std::string hnp = "-";  // "2001:db8:1::/64" or "-": the first
    // Every HNP option in order (a node of a cluster with distributed anchoring grants the old
    // prefix, anchored at another node, and one of its own).
    std::vector<std::string> hnps;
    std::uint32_t uplink_gre_key = 0;
    std::optional<std::uint16_t> bid;
    // IPv4 Home Address Reply (RFC 5844 §3.2), when the PBA carries one: "198.51.100.2/32",
    // its status, and the IPv4 Default-Router Address option ("-" when absent).
    std::optional<std::string> ipv4_hoa;
    std::uint8_t ipv4_hoa_status = 0;
    std::string ipv4_router = "-";
    // NAT Detection option (RFC 5555 §3.2.2 style): the LMA saw this access behind a NAT; its
    // refresh time in seconds.
    std::optional<std::uint32_t> nat_refresh_s;
    std::vector<std::string> dmnp;  // granted delegated prefixes (RFC 7148)
    std::vector<std::pair<std::uint16_t, std::uint8_t>> flows;  // (FID, status) replies
};
// nullopt when the message is not a PBA.
std::optional<PbaSummary> summarize_pba(const mh::Message& m);
std::string ba_status_name(std::uint8_t status);

// Binding Revocation Acknowledgement (RFC 5846 §6.2) answering an Indication: same sequence
// number, P and G flags as the indication, the given status, the MN-ID option echoed.
mh::Message build_bra(const mh::BindingRevocation& bri, std::uint8_t status = 0);

}  // namespace hag::magsim
