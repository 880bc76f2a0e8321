// Code points of the Mobility Header and its options (IANA "Mobile IPv6 parameters" registry;
// see shared/PROTOCOL.md for the RFC of each).
#pragma once

#include <cstdint>
#include <string_view>

namespace hag::mh {

inline constexpr std::uint8_t kIpProtoMh = 135;
inline constexpr std::uint8_t kPayloadProtoNone = 59;  // IPPROTO_NONE, RFC 6275 §6.1.1

// MH Type (RFC 6275 §6.1, RFC 5847, RFC 5846).
enum class MhType : std::uint8_t {
    kBindingRefreshRequest = 0,
    kHomeTestInit = 1,
    kCareOfTestInit = 2,
    kHomeTest = 3,
    kCareOfTest = 4,
    kBindingUpdate = 5,
    kBindingAcknowledgement = 6,
    kBindingError = 7,
    kHeartbeat = 13,
    kBindingRevocation = 16,
};

// Mobility option types.
namespace opt {
inline constexpr std::uint8_t kPad1 = 0;
inline constexpr std::uint8_t kPadN = 1;
inline constexpr std::uint8_t kAlternateCareOfAddress = 3;
inline constexpr std::uint8_t kMobileNodeIdentifier = 8;
inline constexpr std::uint8_t kVendorSpecific = 19;
inline constexpr std::uint8_t kHomeNetworkPrefix = 22;
inline constexpr std::uint8_t kHandoffIndicator = 23;
inline constexpr std::uint8_t kAccessTechnologyType = 24;
inline constexpr std::uint8_t kMnLinkLayerIdentifier = 25;
inline constexpr std::uint8_t kLinkLocalAddress = 26;
inline constexpr std::uint8_t kTimestamp = 27;
inline constexpr std::uint8_t kRestartCounter = 28;
inline constexpr std::uint8_t kIpv4HomeAddress = 29;
inline constexpr std::uint8_t kIpv4AddressAcknowledgement = 30;
inline constexpr std::uint8_t kNatDetection = 31;
inline constexpr std::uint8_t kIpv4CareOfAddress = 32;
inline constexpr std::uint8_t kGreKey = 33;
inline constexpr std::uint8_t kBindingIdentifier = 35;
inline constexpr std::uint8_t kIpv4HomeAddressRequest = 36;
inline constexpr std::uint8_t kIpv4HomeAddressReply = 37;
inline constexpr std::uint8_t kIpv4DefaultRouterAddress = 38;
inline constexpr std::uint8_t kIpv4DhcpSupportMode = 39;
inline constexpr std::uint8_t kFlowSummary = 44;
inline constexpr std::uint8_t kFlowIdentification = 45;
inline constexpr std::uint8_t kDelegatedMobileNetworkPrefix = 55;
inline constexpr std::uint8_t kMagMultipathBinding = 63;
inline constexpr std::uint8_t kMagIdentifier = 64;
inline constexpr std::uint8_t kAnchoredPrefix = 65;
inline constexpr std::uint8_t kLocalPrefix = 66;
inline constexpr std::uint8_t kPreviousMaarAddress = 67;
inline constexpr std::uint8_t kServingMaarAddress = 68;
inline constexpr std::uint8_t kDlifLinkLocalAddress = 69;
inline constexpr std::uint8_t kDlifLinkLayerAddress = 70;
}  // namespace opt

// Mobile Node Identifier subtype (RFC 4283).
inline constexpr std::uint8_t kMnIdSubtypeNai = 1;

// Handoff Indicator values (RFC 5213 §8.4).
enum class HandoffIndicator : std::uint8_t {
    kReserved = 0,
    kNewAttach = 1,
    kHandoffBetweenInterfaces = 2,
    kHandoffSameInterface = 3,
    kUnknown = 4,
    kNotChanged = 5,
};

// Access Technology Type values (RFC 5213 §8.5).
enum class AccessTechnology : std::uint8_t {
    kReserved = 0,
    kVirtual = 1,
    kPpp = 2,
    kIeee8023 = 3,
    kIeee80211 = 4,
    kIeee80216e = 5,
    kGeran = 6,
    kUtran = 7,
    kEutran = 8,
};

// Binding Acknowledgement status (RFC 6275 §6.1.8 and the RFCs in shared/PROTOCOL.md).
enum class BaStatus : std::uint8_t {
    kAccepted = 0,
    kAcceptedPrefixDiscoveryNecessary = 1,
    kGreKeyOptionNotRequired = 2,
    kGreTunnelingButTlvHeaderNotSupported = 3,
    kMcoaNotComplete = 4,
    kMcoaReturnHomeWoNdp = 5,
    kReasonUnspecified = 128,
    kAdministrativelyProhibited = 129,
    kInsufficientResources = 130,
    kHomeRegistrationNotSupported = 131,
    kNotHomeSubnet = 132,
    kNotHomeAgentForThisMobileNode = 133,
    kDuplicateAddressDetectionFailed = 134,
    kSequenceNumberOutOfWindow = 135,
    kRegistrationTypeChangeDisallowed = 139,
    kProxyRegistrationNotEnabled = 152,
    kNotLmaForThisMobileNode = 153,
    kMagNotAuthorizedForProxyReg = 154,
    kNotAuthorizedForHomeNetworkPrefix = 155,
    kTimestampMismatch = 156,
    kTimestampLowerThanPrevAccepted = 157,
    kMissingHomeNetworkPrefixOption = 158,
    kBcePbuPrefixSetDoNotMatch = 159,
    kMissingMnIdentifierOption = 160,
    kMissingHandoffIndicatorOption = 161,
    kMissingAccessTechTypeOption = 162,
    kGreKeyOptionRequired = 163,
    kMcoaMalformed = 164,
    kMcoaNonMcoaBindingExists = 165,
    kMcoaProhibited = 166,
    kMcoaUnknownCoa = 167,
    kMcoaBulkRegistrationProhibited = 168,
    kMcoaSimultaneousHomeAndForeignProhibited = 169,
    kNotAuthorizedForIpv4MobilityService = 170,
    kNotAuthorizedForIpv4HomeAddress = 171,
    kNotAuthorizedForIpv6MobilityService = 172,
    kMultipleIpv4HomeAddressAssignmentNotSupported = 173,
    kInvalidCareOfAddress = 174,
    kNotAuthorizedForDelegatedMnp = 177,
    kRequestedDmnpInUse = 178,
    kCannotSupportMultipathBinding = 180,
};
std::string_view to_string(BaStatus s) noexcept;  // "" for values not listed above

// Binding Error status (RFC 6275 §6.1.9).
inline constexpr std::uint8_t kBeUnknownBindingForHomeAddress = 1;
inline constexpr std::uint8_t kBeUnrecognizedMhType = 2;

// Binding Revocation (RFC 5846 §6.1).
inline constexpr std::uint8_t kBrTypeIndication = 1;
inline constexpr std::uint8_t kBrTypeAcknowledgement = 2;

}  // namespace hag::mh
