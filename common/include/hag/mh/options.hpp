// Typed mobility options (RFC 6275 §6.2 framing; layouts from the RFC named on each struct).
// Pad1 and PadN are framing, not options: the decoder skips them and the encoder inserts them.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace hag::mh {

using Ipv6 = std::array<std::uint8_t, 16>;
using Ipv4 = std::array<std::uint8_t, 4>;
using Bytes = std::vector<std::uint8_t>;

struct AlternateCareOfAddress {  // 3, RFC 6275 §6.2.5; align 8n+6
    Ipv6 address{};
    bool operator==(const AlternateCareOfAddress&) const = default;
};
struct MobileNodeIdentifier {  // 8, RFC 4283; identifier never empty
    std::uint8_t subtype = 1;  // 1 = NAI
    Bytes identifier;
    bool operator==(const MobileNodeIdentifier&) const = default;
};
struct VendorSpecific {  // 19, RFC 5094: vendor id (4) + sub-type (1) + data
    std::uint32_t vendor_id = 0;
    std::uint8_t subtype = 0;
    Bytes data;
    bool operator==(const VendorSpecific&) const = default;
};
struct HomeNetworkPrefix {  // 22, RFC 5213 §8.3: reserved, length, prefix (length 18); align 8n+4
    std::uint8_t prefix_length = 0;
    Ipv6 prefix{};
    bool operator==(const HomeNetworkPrefix&) const = default;
};
struct HandoffIndicatorOption {  // 23, RFC 5213 §8.4: reserved, HI (length 2)
    std::uint8_t value = 0;
    bool operator==(const HandoffIndicatorOption&) const = default;
};
struct AccessTechnologyTypeOption {  // 24, RFC 5213 §8.5: reserved, ATT (length 2)
    std::uint8_t value = 0;
    bool operator==(const AccessTechnologyTypeOption&) const = default;
};
struct MnLinkLayerIdentifier {  // 25, RFC 5213 §8.6: reserved (2) + identifier (>= 1)
    Bytes identifier;
    bool operator==(const MnLinkLayerIdentifier&) const = default;
};
struct LinkLocalAddress {  // 26, RFC 5213 §8.7 (length 16); align 8n+6
    Ipv6 address{};
    bool operator==(const LinkLocalAddress&) const = default;
};
struct Timestamp {  // 27, RFC 5213 §8.8: 64-bit NTP format (length 8); align 8n+2
    std::uint64_t value = 0;
    bool operator==(const Timestamp&) const = default;
};
struct RestartCounter {  // 28, RFC 5847 §5.2: reserved (2) + counter (4) (length 6)
    std::uint32_t value = 0;
    bool operator==(const RestartCounter&) const = default;
};
struct Ipv4HomeAddress {  // 29, RFC 5555 §3.1.1: prefix-len (6 bits), P, reserved, address
    std::uint8_t prefix_length = 0;
    bool request_prefix = false;  // P
    Ipv4 address{};
    bool operator==(const Ipv4HomeAddress&) const = default;
};
struct Ipv4AddressAcknowledgement {  // 30, RFC 5555 §3.2.1: status, prefix-len (6 bits), address
    std::uint8_t status = 0;
    std::uint8_t prefix_length = 0;
    Ipv4 address{};
    bool operator==(const Ipv4AddressAcknowledgement&) const = default;
};
struct NatDetection {  // 31, RFC 5555 §3.2.2: F flag, reserved, refresh time (4)
    bool udp_encapsulation_required = false;  // F
    std::uint32_t refresh_time = 0;
    bool operator==(const NatDetection&) const = default;
};
struct Ipv4CareOfAddress {  // 32, RFC 5555 §3.1.2: reserved (2) + address
    Ipv4 address{};
    bool operator==(const Ipv4CareOfAddress&) const = default;
};
struct GreKey {  // 33, RFC 5845 §3.1: reserved (2) + key (4) (length 6); align 4n+2
    std::uint32_t key = 0;
    bool operator==(const GreKey&) const = default;
};
struct BindingIdentifier {  // 35, RFC 5648 §6.1 / RFC 6089: BID, status, H + BID-PRI, [CoA]
    std::uint16_t bid = 0;
    std::uint8_t status = 0;
    bool simultaneous_home_foreign = false;  // H
    std::uint8_t priority = 0;               // BID-PRI, 7 bits
    std::optional<Ipv4> coa4;                // length 8
    std::optional<Ipv6> coa6;                // length 20 (never both)
    bool operator==(const BindingIdentifier&) const = default;
};
struct Ipv4HomeAddressRequest {  // 36, RFC 5844 §3.1: prefix-len (6 bits), reserved, address
    std::uint8_t prefix_length = 0;
    Ipv4 address{};
    bool operator==(const Ipv4HomeAddressRequest&) const = default;
};
struct Ipv4HomeAddressReply {  // 37, RFC 5844 §3.2: status, prefix-len (6 bits), address
    std::uint8_t status = 0;
    std::uint8_t prefix_length = 0;
    Ipv4 address{};
    bool operator==(const Ipv4HomeAddressReply&) const = default;
};
struct Ipv4DefaultRouterAddress {  // 38, RFC 5844 §3.3: reserved (2) + address
    Ipv4 address{};
    bool operator==(const Ipv4DefaultRouterAddress&) const = default;
};
struct Ipv4DhcpSupportMode {  // 39, RFC 5844 §3.4: reserved (15 bits) + S flag (length 2)
    bool server = false;      // S
    bool operator==(const Ipv4DhcpSupportMode&) const = default;
};
struct FlowSummary {  // 44, RFC 6089 §6.2: one or more 16-bit FIDs
    std::vector<std::uint16_t> fids;
    bool operator==(const FlowSummary&) const = default;
};
// A sub-option of Flow Identification: type, length, data. Types 2 (BID reference: a list of
// 16-bit BIDs) and 3 (traffic selector: format + reserved + selector) are typed; the others are
// kept as they came.
struct FlowSubOption {
    std::uint8_t type = 0;
    Bytes data;
    bool operator==(const FlowSubOption&) const = default;
};
struct FlowIdentification {  // 45, RFC 6089 §6.1: FID, FID-PRI, action, status, sub-options
    std::uint16_t fid = 0;
    std::uint16_t priority = 0;
    std::uint8_t action = 0;
    std::uint8_t status = 0;
    std::vector<FlowSubOption> sub_options;
    bool operator==(const FlowIdentification&) const = default;
    // Typed views of the well-known sub-options (empty when absent).
    [[nodiscard]] std::vector<std::uint16_t> bid_references() const;
    [[nodiscard]] std::optional<std::uint8_t> traffic_selector_format() const;
};
inline constexpr std::uint8_t kFlowSubBidReference = 2;
inline constexpr std::uint8_t kFlowSubTrafficSelector = 3;

struct DelegatedMobileNetworkPrefix {  // 55, RFC 7148 §3.1: V flag, prefix length, prefix
    bool ipv4 = false;                 // V
    std::uint8_t prefix_length = 0;
    Bytes prefix;  // 4 octets when ipv4, else 16
    bool operator==(const DelegatedMobileNetworkPrefix&) const = default;
};
struct MagMultipathBinding {    // 63, RFC 8278 §3.1 (length 4); align 8n+2
    std::uint8_t if_att = 0;    // access technology of the interface
    std::uint8_t if_label = 0;  // operator-defined label (colour)
    std::uint8_t binding_id = 0;
    bool bulk = false;       // B: bulk re-registration
    bool overwrite = false;  // O: overwrite all other bindings (never with B)
    bool operator==(const MagMultipathBinding&) const = default;
};
struct MagIdentifier {         // 64, RFC 8278 §3.2: subtype + identifier (never empty)
    std::uint8_t subtype = 1;  // 1 = NAI
    Bytes identifier;
    bool operator==(const MagIdentifier&) const = default;
};
// RFC 8885 options 65-70 (PMIPv6 extensions for distributed mobility management, §4): the
// layouts of its §4.3-4.8, used by the central mobility database mode (docs/scale-out.md).
struct AnchoredPrefix {  // 65: reserved, prefix length, prefix (length 18)
    std::uint8_t prefix_length = 0;
    Ipv6 prefix{};
    bool operator==(const AnchoredPrefix&) const = default;
};
struct LocalPrefix {  // 66: as 65
    std::uint8_t prefix_length = 0;
    Ipv6 prefix{};
    bool operator==(const LocalPrefix&) const = default;
};
// 67 (§4.5): reserved, prefix length, the P-MAAR's global address, then the mobile node's
// prefix anchored there (length 34).
struct PreviousMaarAddress {
    std::uint8_t prefix_length = 0;
    Ipv6 address{};
    Ipv6 prefix{};
    bool operator==(const PreviousMaarAddress&) const = default;
};
struct ServingMaarAddress {  // 68: address (length 16)
    Ipv6 address{};
    bool operator==(const ServingMaarAddress&) const = default;
};
struct DlifLinkLocalAddress {  // 69: address (length 16)
    Ipv6 address{};
    bool operator==(const DlifLinkLocalAddress&) const = default;
};
struct DlifLinkLayerAddress {  // 70 (§4.8): 2 reserved octets, link-layer address (>= 1 octet)
    Bytes address;
    bool operator==(const DlifLinkLayerAddress&) const = default;
};
// Any other option, kept so it can be skipped or echoed.
struct RawOption {
    std::uint8_t type = 0;
    Bytes data;
    bool operator==(const RawOption&) const = default;
};

using Option = std::variant<
    AlternateCareOfAddress, MobileNodeIdentifier, VendorSpecific, HomeNetworkPrefix,
    HandoffIndicatorOption, AccessTechnologyTypeOption, MnLinkLayerIdentifier, LinkLocalAddress,
    Timestamp, RestartCounter, Ipv4HomeAddress, Ipv4AddressAcknowledgement, NatDetection,
    Ipv4CareOfAddress, GreKey, BindingIdentifier, Ipv4HomeAddressRequest, Ipv4HomeAddressReply,
    Ipv4DefaultRouterAddress, Ipv4DhcpSupportMode, FlowSummary, FlowIdentification,
    DelegatedMobileNetworkPrefix, MagMultipathBinding, MagIdentifier, AnchoredPrefix, LocalPrefix,
    PreviousMaarAddress, ServingMaarAddress, DlifLinkLocalAddress, DlifLinkLayerAddress, RawOption>;
using Options = std::vector<Option>;

// The option type code of an option.
std::uint8_t option_type(const Option& o) noexcept;

// First option of type T in a list, or nullptr.
template <typename T>
const T* find_option(const Options& opts) {
    for (const auto& o : opts) {
        if (const auto* p = std::get_if<T>(&o)) {
            return p;
        }
    }
    return nullptr;
}
template <typename T>
std::vector<const T*> find_options(const Options& opts) {
    std::vector<const T*> out;
    for (const auto& o : opts) {
        if (const auto* p = std::get_if<T>(&o)) {
            out.push_back(p);
        }
    }
    return out;
}

}  // namespace hag::mh
