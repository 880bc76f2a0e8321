// Readable descriptions of messages and options, for logs and hag-mhdump.
#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>

#include "hag/mh/codec.hpp"
#include "options_internal.hpp"

namespace hag::mh {

namespace {

std::string ip6(const Ipv6& a) {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(AF_INET6, a.data(), buf, sizeof buf);
    return buf;
}
std::string ip4(const Ipv4& a) {
    return fmt::format("{}.{}.{}.{}", a[0], a[1], a[2], a[3]);
}
std::string hex(const Bytes& b) {
    std::string s;
    for (auto c : b)
        s += fmt::format("{:02x}", c);
    return s.empty() ? "(none)" : s;
}
// Printable identifiers (NAIs) as text, anything else as hex.
std::string ident(const Bytes& b) {
    for (auto c : b) {
        if (c < 0x20 || c > 0x7e)
            return fmt::format("0x{}", hex(b));
    }
    return fmt::format("\"{}\"",
                       std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
}
std::string_view hi_name(std::uint8_t v) {
    switch (v) {
        case 1:
            return "attachment over a new interface";
        case 2:
            return "handoff between two different interfaces";
        case 3:
            return "handoff between mobile access gateways for the same interface";
        case 4:
            return "handoff state unknown";
        case 5:
            return "handoff state not changed (re-registration)";
        default:
            return "reserved";
    }
}
std::string_view att_name(std::uint8_t v) {
    switch (v) {
        case 1:
            return "virtual";
        case 2:
            return "PPP";
        case 3:
            return "IEEE 802.3";
        case 4:
            return "IEEE 802.11a/b/g";
        case 5:
            return "IEEE 802.16e";
        case 6:
            return "3GPP GERAN";
        case 7:
            return "3GPP UTRAN";
        case 8:
            return "3GPP E-UTRAN";
        default:
            return "other";
    }
}

struct Describer {
    std::string operator()(const AlternateCareOfAddress& o) const {
        return "Alternate Care-of Address " + ip6(o.address);
    }
    std::string operator()(const MobileNodeIdentifier& o) const {
        return fmt::format("Mobile Node Identifier subtype {}{} {}", o.subtype,
                           o.subtype == 1 ? " (NAI)" : "", ident(o.identifier));
    }
    std::string operator()(const VendorSpecific& o) const {
        return fmt::format("Vendor Specific vendor {} sub-type {} data {}", o.vendor_id, o.subtype,
                           hex(o.data));
    }
    std::string operator()(const HomeNetworkPrefix& o) const {
        return fmt::format("Home Network Prefix {}/{}", ip6(o.prefix), o.prefix_length);
    }
    std::string operator()(const HandoffIndicatorOption& o) const {
        return fmt::format("Handoff Indicator {} ({})", o.value, hi_name(o.value));
    }
    std::string operator()(const AccessTechnologyTypeOption& o) const {
        return fmt::format("Access Technology Type {} ({})", o.value, att_name(o.value));
    }
    std::string operator()(const MnLinkLayerIdentifier& o) const {
        return "MN Link-layer Identifier " + hex(o.identifier);
    }
    std::string operator()(const LinkLocalAddress& o) const {
        return "Link-local Address " + ip6(o.address);
    }
    std::string operator()(const Timestamp& o) const {
        return fmt::format("Timestamp {}.{:06} (NTP)", o.value >> 32,
                           ((o.value & 0xffffffffu) * 1000000) >> 32);
    }
    std::string operator()(const RestartCounter& o) const {
        return fmt::format("Restart Counter {}", o.value);
    }
    std::string operator()(const Ipv4HomeAddress& o) const {
        return fmt::format("IPv4 Home Address {}/{}{}", ip4(o.address), o.prefix_length,
                           o.request_prefix ? " P" : "");
    }
    std::string operator()(const Ipv4AddressAcknowledgement& o) const {
        return fmt::format("IPv4 Address Acknowledgement status {} {}/{}", o.status, ip4(o.address),
                           o.prefix_length);
    }
    std::string operator()(const NatDetection& o) const {
        return fmt::format("NAT Detection{} refresh {} s", o.udp_encapsulation_required ? " F" : "",
                           o.refresh_time);
    }
    std::string operator()(const Ipv4CareOfAddress& o) const {
        return "IPv4 Care-of Address " + ip4(o.address);
    }
    std::string operator()(const GreKey& o) const {
        return fmt::format("GRE Key {} (0x{:08x})", o.key, o.key);
    }
    std::string operator()(const BindingIdentifier& o) const {
        std::string s = fmt::format("Binding Identifier BID {} status {} priority {}{}", o.bid,
                                    o.status, o.priority, o.simultaneous_home_foreign ? " H" : "");
        if (o.coa4)
            s += " CoA " + ip4(*o.coa4);
        if (o.coa6)
            s += " CoA " + ip6(*o.coa6);
        return s;
    }
    std::string operator()(const Ipv4HomeAddressRequest& o) const {
        return fmt::format("IPv4 Home Address Request {}/{}", ip4(o.address), o.prefix_length);
    }
    std::string operator()(const Ipv4HomeAddressReply& o) const {
        return fmt::format("IPv4 Home Address Reply status {} {}/{}", o.status, ip4(o.address),
                           o.prefix_length);
    }
    std::string operator()(const Ipv4DefaultRouterAddress& o) const {
        return "IPv4 Default-Router Address " + ip4(o.address);
    }
    std::string operator()(const Ipv4DhcpSupportMode& o) const {
        return fmt::format("IPv4 DHCP Support Mode {}", o.server ? "server" : "relay");
    }
    std::string operator()(const FlowSummary& o) const {
        std::string s = "Flow Summary FIDs";
        for (auto f : o.fids)
            s += fmt::format(" {}", f);
        return s;
    }
    std::string operator()(const FlowIdentification& o) const {
        std::string s = fmt::format("Flow Identification FID {} priority {} reserved {} status {}",
                                    o.fid, o.priority, o.action, o.status);
        for (const auto& so : o.sub_options)
            s += fmt::format("; sub-option {} {}", so.type, hex(so.data));
        return s;
    }
    std::string operator()(const DelegatedMobileNetworkPrefix& o) const {
        if (o.ipv4 && o.prefix.size() == 4) {
            return fmt::format("Delegated Mobile Network Prefix {}/{}",
                               ip4({o.prefix[0], o.prefix[1], o.prefix[2], o.prefix[3]}),
                               o.prefix_length);
        }
        Ipv6 p{};
        std::copy_n(o.prefix.begin(), std::min<std::size_t>(16, o.prefix.size()), p.begin());
        return fmt::format("Delegated Mobile Network Prefix {}/{}", ip6(p), o.prefix_length);
    }
    std::string operator()(const MagMultipathBinding& o) const {
        return fmt::format("MAG Multipath-Binding If-ATT {} ({}) If-Label {} Binding-Id {}{}{}",
                           o.if_att, att_name(o.if_att), o.if_label, o.binding_id,
                           o.bulk ? " B" : "", o.overwrite ? " O" : "");
    }
    std::string operator()(const MagIdentifier& o) const {
        return fmt::format("MAG Identifier subtype {} {}", o.subtype, ident(o.identifier));
    }
    std::string operator()(const AnchoredPrefix& o) const {
        return fmt::format("Anchored Prefix {}/{}", ip6(o.prefix), o.prefix_length);
    }
    std::string operator()(const LocalPrefix& o) const {
        return fmt::format("Local Prefix {}/{}", ip6(o.prefix), o.prefix_length);
    }
    std::string operator()(const PreviousMaarAddress& o) const {
        return fmt::format("Previous MAAR {} prefix {}/{}", ip6(o.address), ip6(o.prefix),
                           o.prefix_length);
    }
    std::string operator()(const ServingMaarAddress& o) const {
        return "Serving MAAR Address " + ip6(o.address);
    }
    std::string operator()(const DlifLinkLocalAddress& o) const {
        return "DLIF Link-local Address " + ip6(o.address);
    }
    std::string operator()(const DlifLinkLayerAddress& o) const {
        return "DLIF Link-layer Address " + hex(o.address);
    }
    std::string operator()(const RawOption& o) const {
        return fmt::format("option type {} (not interpreted) data {}", o.type, hex(o.data));
    }
};

std::string describe_options(const Options& opts) {
    std::string s;
    for (const auto& o : opts)
        s += "  " + describe(o) + "\n";
    return s;
}

}  // namespace

std::string describe(const Option& o) {
    return std::visit(Describer{}, o);
}

std::string_view mh_type_name(MhType t) noexcept {
    switch (t) {
        case MhType::kBindingRefreshRequest:
            return "Binding Refresh Request";
        case MhType::kHomeTestInit:
            return "Home Test Init";
        case MhType::kCareOfTestInit:
            return "Care-of Test Init";
        case MhType::kHomeTest:
            return "Home Test";
        case MhType::kCareOfTest:
            return "Care-of Test";
        case MhType::kBindingUpdate:
            return "Binding Update";
        case MhType::kBindingAcknowledgement:
            return "Binding Acknowledgement";
        case MhType::kBindingError:
            return "Binding Error";
        case MhType::kHeartbeat:
            return "Heartbeat";
        case MhType::kBindingRevocation:
            return "Binding Revocation";
    }
    return "unknown MH type";
}

std::string describe(const Message& m) {
    struct V {
        std::string operator()(const BindingUpdate& u) const {
            std::string flags;
            for (auto [on, n] : {std::pair{u.ack, "A"},
                                 {u.home_registration, "H"},
                                 {u.link_local_compat, "L"},
                                 {u.key_mgmt, "K"},
                                 {u.map_registration, "M"},
                                 {u.mobile_router, "R"},
                                 {u.proxy, "P"},
                                 {u.force_udp, "F"},
                                 {u.tlv_header, "T"},
                                 {u.bulk, "B"}}) {
                if (on)
                    flags += n;
            }
            return fmt::format("{} seq {} flags {} lifetime {} ({} s)\n",
                               u.proxy ? "Proxy Binding Update" : "Binding Update", u.sequence,
                               flags.empty() ? "-" : flags, u.lifetime, u.lifetime * 4) +
                   describe_options(u.options);
        }
        std::string operator()(const BindingAcknowledgement& a) const {
            std::string flags;
            for (auto [on, n] : {std::pair{a.key_mgmt, "K"},
                                 {a.mobile_router, "R"},
                                 {a.proxy, "P"},
                                 {a.tlv_header, "T"},
                                 {a.bulk, "B"}}) {
                if (on)
                    flags += n;
            }
            const auto name = to_string(static_cast<BaStatus>(a.status));
            return fmt::format(
                       "{} status {} ({}) seq {} flags {} lifetime {} ({} s)\n",
                       a.proxy ? "Proxy Binding Acknowledgement" : "Binding Acknowledgement",
                       a.status, name.empty() ? "unassigned" : name, a.sequence,
                       flags.empty() ? "-" : flags, a.lifetime, a.lifetime * 4) +
                   describe_options(a.options);
        }
        std::string operator()(const BindingError& e) const {
            return fmt::format("Binding Error status {} home address {}\n", e.status,
                               ip6(e.home_address)) +
                   describe_options(e.options);
        }
        std::string operator()(const Heartbeat& h) const {
            return fmt::format("Heartbeat {} seq {}{}\n", h.response ? "response" : "request",
                               h.sequence, h.unsolicited ? " unsolicited" : "") +
                   describe_options(h.options);
        }
        std::string operator()(const BindingRevocation& r) const {
            const bool ind = r.br_type == kBrTypeIndication;
            return fmt::format("Binding Revocation {} seq {} {} {}{}{}{}\n",
                               ind ? "Indication" : "Acknowledgement", r.sequence,
                               ind ? "trigger" : "status", r.trigger_or_status, r.proxy ? " P" : "",
                               r.global ? " G" : "", r.vendor ? " V" : "") +
                   describe_options(r.options);
        }
    };
    return std::visit(V{}, m.body);
}

std::string_view to_string(BaStatus s) noexcept {
    switch (s) {
        case BaStatus::kAccepted:
            return "accepted";
        case BaStatus::kAcceptedPrefixDiscoveryNecessary:
            return "accepted, prefix discovery necessary";
        case BaStatus::kGreKeyOptionNotRequired:
            return "GRE_KEY_OPTION_NOT_REQUIRED";
        case BaStatus::kGreTunnelingButTlvHeaderNotSupported:
            return "GRE_TUNNELING_BUT_TLV_HEADER_NOT_SUPPORTED";
        case BaStatus::kMcoaNotComplete:
            return "MCOA_NOTCOMPLETE";
        case BaStatus::kMcoaReturnHomeWoNdp:
            return "MCOA_RETURNHOME_WO/NDP";
        case BaStatus::kReasonUnspecified:
            return "reason unspecified";
        case BaStatus::kAdministrativelyProhibited:
            return "administratively prohibited";
        case BaStatus::kInsufficientResources:
            return "insufficient resources";
        case BaStatus::kHomeRegistrationNotSupported:
            return "home registration not supported";
        case BaStatus::kNotHomeSubnet:
            return "not home subnet";
        case BaStatus::kNotHomeAgentForThisMobileNode:
            return "not home agent for this mobile node";
        case BaStatus::kDuplicateAddressDetectionFailed:
            return "duplicate address detection failed";
        case BaStatus::kSequenceNumberOutOfWindow:
            return "sequence number out of window";
        case BaStatus::kRegistrationTypeChangeDisallowed:
            return "registration type change disallowed";
        case BaStatus::kProxyRegistrationNotEnabled:
            return "PROXY_REG_NOT_ENABLED";
        case BaStatus::kNotLmaForThisMobileNode:
            return "NOT_LMA_FOR_THIS_MOBILE_NODE";
        case BaStatus::kMagNotAuthorizedForProxyReg:
            return "MAG_NOT_AUTHORIZED_FOR_PROXY_REG";
        case BaStatus::kNotAuthorizedForHomeNetworkPrefix:
            return "NOT_AUTHORIZED_FOR_HOME_NETWORK_PREFIX";
        case BaStatus::kTimestampMismatch:
            return "TIMESTAMP_MISMATCH";
        case BaStatus::kTimestampLowerThanPrevAccepted:
            return "TIMESTAMP_LOWER_THAN_PREV_ACCEPTED";
        case BaStatus::kMissingHomeNetworkPrefixOption:
            return "MISSING_HOME_NETWORK_PREFIX_OPTION";
        case BaStatus::kBcePbuPrefixSetDoNotMatch:
            return "BCE_PBU_PREFIX_SET_DO_NOT_MATCH";
        case BaStatus::kMissingMnIdentifierOption:
            return "MISSING_MN_IDENTIFIER_OPTION";
        case BaStatus::kMissingHandoffIndicatorOption:
            return "MISSING_HANDOFF_INDICATOR_OPTION";
        case BaStatus::kMissingAccessTechTypeOption:
            return "MISSING_ACCESS_TECH_TYPE_OPTION";
        case BaStatus::kGreKeyOptionRequired:
            return "GRE_KEY_OPTION_REQUIRED";
        case BaStatus::kMcoaMalformed:
            return "MCOA_MALFORMED";
        case BaStatus::kMcoaNonMcoaBindingExists:
            return "MCOA_NON_MCOA_BINDING_EXISTS";
        case BaStatus::kMcoaProhibited:
            return "MCOA_PROHIBITED";
        case BaStatus::kMcoaUnknownCoa:
            return "MCOA_UNKNOWN_COA";
        case BaStatus::kMcoaBulkRegistrationProhibited:
            return "MCOA_BULK_REGISTRATION_PROHIBITED";
        case BaStatus::kMcoaSimultaneousHomeAndForeignProhibited:
            return "MCOA_SIMULTANEOUS_HOME_AND_FOREIGN_PROHIBITED";
        case BaStatus::kNotAuthorizedForIpv4MobilityService:
            return "NOT_AUTHORIZED_FOR_IPV4_MOBILITY_SERVICE";
        case BaStatus::kNotAuthorizedForIpv4HomeAddress:
            return "NOT_AUTHORIZED_FOR_IPV4_HOME_ADDRESS";
        case BaStatus::kNotAuthorizedForIpv6MobilityService:
            return "NOT_AUTHORIZED_FOR_IPV6_MOBILITY_SERVICE";
        case BaStatus::kMultipleIpv4HomeAddressAssignmentNotSupported:
            return "MULTIPLE_IPV4_HOME_ADDRESS_ASSIGNMENT_NOT_SUPPORTED";
        case BaStatus::kInvalidCareOfAddress:
            return "invalid care-of address";
        case BaStatus::kNotAuthorizedForDelegatedMnp:
            return "NOT_AUTHORIZED_FOR_DELEGATED_MNP";
        case BaStatus::kRequestedDmnpInUse:
            return "REQUESTED_DMNP_IN_USE";
        case BaStatus::kCannotSupportMultipathBinding:
            return "CANNOT_SUPPORT_MULTIPATH_BINDING";
    }
    return "";
}

}  // namespace hag::mh
