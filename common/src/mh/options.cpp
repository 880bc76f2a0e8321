// Encoding and decoding of each mobility option's data (the octets after Type and Length).
#include "options_internal.hpp"

#include <fmt/format.h>

#include <array>

#include "wire.hpp"

namespace hag::mh {

using namespace wire;

std::vector<std::uint16_t> FlowIdentification::bid_references() const {
    std::vector<std::uint16_t> out;
    for (const auto& s : sub_options) {
        if (s.type == kFlowSubBidReference) {
            for (std::size_t i = 0; i + 1 < s.data.size(); i += 2) {
                out.push_back(static_cast<std::uint16_t>(s.data[i] << 8 | s.data[i + 1]));
            }
        }
    }
    return out;
}

std::optional<std::uint8_t> FlowIdentification::traffic_selector_format() const {
    for (const auto& s : sub_options) {
        if (s.type == kFlowSubTrafficSelector && !s.data.empty()) {
            return s.data[0];
        }
    }
    return std::nullopt;
}

namespace {

struct Encoded {
    std::uint8_t type;
    Alignment align;
    Bytes data;
};

Encoded enc(const AlternateCareOfAddress& o) {
    return {opt::kAlternateCareOfAddress, {8, 6}, Bytes(o.address.begin(), o.address.end())};
}
Encoded enc(const MobileNodeIdentifier& o) {
    Bytes d{o.subtype};
    put_bytes(d, o.identifier);
    return {opt::kMobileNodeIdentifier, {1, 0}, d};
}
Encoded enc(const VendorSpecific& o) {
    Bytes d;
    put32(d, o.vendor_id);
    put8(d, o.subtype);
    put_bytes(d, o.data);
    return {opt::kVendorSpecific, {4, 2}, d};
}
Encoded enc(const HomeNetworkPrefix& o) {
    Bytes d{0, o.prefix_length};
    put_bytes(d, o.prefix);
    return {opt::kHomeNetworkPrefix, {8, 4}, d};
}
Encoded enc(const HandoffIndicatorOption& o) {
    return {opt::kHandoffIndicator, {1, 0}, Bytes{0, o.value}};
}
Encoded enc(const AccessTechnologyTypeOption& o) {
    return {opt::kAccessTechnologyType, {1, 0}, Bytes{0, o.value}};
}
Encoded enc(const MnLinkLayerIdentifier& o) {
    Bytes d{0, 0};
    put_bytes(d, o.identifier);
    return {opt::kMnLinkLayerIdentifier, {8, 2}, d};
}
Encoded enc(const LinkLocalAddress& o) {
    return {opt::kLinkLocalAddress, {8, 6}, Bytes(o.address.begin(), o.address.end())};
}
Encoded enc(const Timestamp& o) {
    Bytes d;
    put64(d, o.value);
    return {opt::kTimestamp, {8, 2}, d};
}
Encoded enc(const RestartCounter& o) {
    Bytes d{0, 0};
    put32(d, o.value);
    return {opt::kRestartCounter, {4, 2}, d};
}
Encoded enc(const Ipv4HomeAddress& o) {
    Bytes d{static_cast<std::uint8_t>(o.prefix_length << 2 | (o.request_prefix ? 0x02 : 0)), 0};
    put_bytes(d, o.address);
    return {opt::kIpv4HomeAddress, {4, 0}, d};
}
Encoded enc(const Ipv4AddressAcknowledgement& o) {
    Bytes d{o.status, static_cast<std::uint8_t>(o.prefix_length << 2)};
    put_bytes(d, o.address);
    return {opt::kIpv4AddressAcknowledgement, {4, 0}, d};
}
Encoded enc(const NatDetection& o) {
    Bytes d{static_cast<std::uint8_t>(o.udp_encapsulation_required ? 0x80 : 0), 0};
    put32(d, o.refresh_time);
    return {opt::kNatDetection, {4, 2}, d};
}
Encoded enc(const Ipv4CareOfAddress& o) {
    Bytes d{0, 0};
    put_bytes(d, o.address);
    return {opt::kIpv4CareOfAddress, {4, 2}, d};
}
Encoded enc(const GreKey& o) {
    Bytes d{0, 0};
    put32(d, o.key);
    return {opt::kGreKey, {4, 2}, d};
}
Encoded enc(const BindingIdentifier& o) {
    Bytes d;
    put16(d, o.bid);
    put8(d, o.status);
    put8(d,
         static_cast<std::uint8_t>((o.simultaneous_home_foreign ? 0x80 : 0) | (o.priority & 0x7f)));
    if (o.coa6) {
        put_bytes(d, *o.coa6);
    } else if (o.coa4) {
        put_bytes(d, *o.coa4);
    }
    return {opt::kBindingIdentifier, {2, 0}, d};
}
Encoded enc(const Ipv4HomeAddressRequest& o) {
    Bytes d{static_cast<std::uint8_t>(o.prefix_length << 2), 0};
    put_bytes(d, o.address);
    return {opt::kIpv4HomeAddressRequest, {4, 0}, d};
}
Encoded enc(const Ipv4HomeAddressReply& o) {
    Bytes d{o.status, static_cast<std::uint8_t>(o.prefix_length << 2)};
    put_bytes(d, o.address);
    return {opt::kIpv4HomeAddressReply, {4, 0}, d};
}
Encoded enc(const Ipv4DefaultRouterAddress& o) {
    Bytes d{0, 0};
    put_bytes(d, o.address);
    return {opt::kIpv4DefaultRouterAddress, {4, 2}, d};
}
Encoded enc(const Ipv4DhcpSupportMode& o) {
    return {
        opt::kIpv4DhcpSupportMode, {1, 0}, Bytes{0, static_cast<std::uint8_t>(o.server ? 1 : 0)}};
}
Encoded enc(const FlowSummary& o) {
    Bytes d;
    for (auto f : o.fids)
        put16(d, f);
    return {opt::kFlowSummary, {2, 0}, d};
}
Encoded enc(const FlowIdentification& o) {
    Bytes d;
    put16(d, o.fid);
    put16(d, o.priority);
    put8(d, o.action);
    put8(d, o.status);
    for (const auto& s : o.sub_options) {
        put8(d, s.type);
        if (s.type == 0) {  // Pad1: one octet
            continue;
        }
        put8(d, static_cast<std::uint8_t>(s.data.size()));
        put_bytes(d, s.data);
    }
    return {opt::kFlowIdentification, {2, 0}, d};
}
Encoded enc(const DelegatedMobileNetworkPrefix& o) {
    Bytes d{static_cast<std::uint8_t>(o.ipv4 ? 0x80 : 0), o.prefix_length};
    put_bytes(d, o.prefix);
    return {opt::kDelegatedMobileNetworkPrefix, {8, 4}, d};
}
Encoded enc(const MagMultipathBinding& o) {
    return {opt::kMagMultipathBinding,
            {8, 2},
            Bytes{o.if_att, o.if_label, o.binding_id,
                  static_cast<std::uint8_t>((o.bulk ? 0x80 : 0) | (o.overwrite ? 0x40 : 0))}};
}
Encoded enc(const MagIdentifier& o) {
    Bytes d{o.subtype};
    put_bytes(d, o.identifier);
    return {opt::kMagIdentifier, {1, 0}, d};
}
Encoded enc(const AnchoredPrefix& o) {
    Bytes d{0, o.prefix_length};
    put_bytes(d, o.prefix);
    return {opt::kAnchoredPrefix, {8, 4}, d};
}
Encoded enc(const LocalPrefix& o) {
    Bytes d{0, o.prefix_length};
    put_bytes(d, o.prefix);
    return {opt::kLocalPrefix, {8, 4}, d};
}
Encoded enc(const PreviousMaarAddress& o) {
    Bytes d{0, o.prefix_length};
    put_bytes(d, o.address);
    put_bytes(d, o.prefix);
    return {opt::kPreviousMaarAddress, {8, 4}, d};
}
Encoded enc(const ServingMaarAddress& o) {
    return {opt::kServingMaarAddress, {8, 6}, Bytes(o.address.begin(), o.address.end())};
}
Encoded enc(const DlifLinkLocalAddress& o) {
    return {opt::kDlifLinkLocalAddress, {8, 6}, Bytes(o.address.begin(), o.address.end())};
}
Encoded enc(const DlifLinkLayerAddress& o) {
    Bytes d{0, 0};
    put_bytes(d, o.address);
    return {opt::kDlifLinkLayerAddress, {8, 2}, d};
}
Encoded enc(const RawOption& o) {
    return {o.type, {1, 0}, o.data};
}

}  // namespace

std::uint8_t option_type(const Option& o) noexcept {
    return std::visit([](const auto& x) { return enc(x).type; }, o);
}

EncodedOption encode_option(const Option& o) {
    auto e = std::visit([](const auto& x) { return enc(x); }, o);
    return {e.type, e.align, std::move(e.data)};
}

namespace {

DecodeError bad(DecodeErrorCode c, std::size_t off, std::string detail) {
    return DecodeError{c, off, std::move(detail)};
}

std::string_view option_name(std::uint8_t t);

Result<Option, DecodeError> wrong_length(std::uint8_t type, std::size_t len, std::size_t off,
                                         std::string_view expected) {
    return unexpected(bad(DecodeErrorCode::kOptionBadLength, off,
                          fmt::format("{} option (type {}) has length {}, expected {}",
                                      option_name(type), type, len, expected)));
}

std::string_view option_name(std::uint8_t t) {
    switch (t) {
        case opt::kAlternateCareOfAddress:
            return "Alternate Care-of Address";
        case opt::kMobileNodeIdentifier:
            return "Mobile Node Identifier";
        case opt::kVendorSpecific:
            return "Vendor Specific";
        case opt::kHomeNetworkPrefix:
            return "Home Network Prefix";
        case opt::kHandoffIndicator:
            return "Handoff Indicator";
        case opt::kAccessTechnologyType:
            return "Access Technology Type";
        case opt::kMnLinkLayerIdentifier:
            return "MN Link-layer Identifier";
        case opt::kLinkLocalAddress:
            return "Link-local Address";
        case opt::kTimestamp:
            return "Timestamp";
        case opt::kRestartCounter:
            return "Restart Counter";
        case opt::kIpv4HomeAddress:
            return "IPv4 Home Address";
        case opt::kIpv4AddressAcknowledgement:
            return "IPv4 Address Acknowledgement";
        case opt::kNatDetection:
            return "NAT Detection";
        case opt::kIpv4CareOfAddress:
            return "IPv4 Care-of Address";
        case opt::kGreKey:
            return "GRE Key";
        case opt::kBindingIdentifier:
            return "Binding Identifier";
        case opt::kIpv4HomeAddressRequest:
            return "IPv4 Home Address Request";
        case opt::kIpv4HomeAddressReply:
            return "IPv4 Home Address Reply";
        case opt::kIpv4DefaultRouterAddress:
            return "IPv4 Default-Router Address";
        case opt::kIpv4DhcpSupportMode:
            return "IPv4 DHCP Support Mode";
        case opt::kFlowSummary:
            return "Flow Summary";
        case opt::kFlowIdentification:
            return "Flow Identification";
        case opt::kDelegatedMobileNetworkPrefix:
            return "Delegated Mobile Network Prefix";
        case opt::kMagMultipathBinding:
            return "MAG Multipath-Binding";
        case opt::kMagIdentifier:
            return "MAG Identifier";
        case opt::kAnchoredPrefix:
            return "Anchored Prefix";
        case opt::kLocalPrefix:
            return "Local Prefix";
        case opt::kPreviousMaarAddress:
            return "Previous MAAR Address";
        case opt::kServingMaarAddress:
            return "Serving MAAR Address";
        case opt::kDlifLinkLocalAddress:
            return "DLIF Link-local Address";
        case opt::kDlifLinkLayerAddress:
            return "DLIF Link-layer Address";
        default:
            return "unknown";
    }
}

}  // namespace

std::string_view option_type_name(std::uint8_t t) noexcept {
    return option_name(t);
}

Result<Option, DecodeError> decode_option(std::uint8_t type, std::span<const std::uint8_t> d,
                                          std::size_t off) {
    const std::size_t n = d.size();
    auto need = [&](std::size_t len) { return n == len; };
    switch (type) {
        case opt::kAlternateCareOfAddress:
            if (!need(16))
                return wrong_length(type, n, off, "16");
            return Option{AlternateCareOfAddress{get_array<16>(d, 0)}};
        case opt::kMobileNodeIdentifier:
        case opt::kMagIdentifier: {
            if (n < 1)
                return wrong_length(type, n, off, "at least 1");
            if (n == 1) {
                return unexpected(
                    bad(DecodeErrorCode::kZeroLengthIdentifier, off,
                        fmt::format("{} option carries an empty identifier", option_name(type))));
            }
            Bytes id(d.begin() + 1, d.end());
            if (type == opt::kMobileNodeIdentifier)
                return Option{MobileNodeIdentifier{d[0], id}};
            return Option{MagIdentifier{d[0], id}};
        }
        case opt::kVendorSpecific:
            if (n < 5)
                return wrong_length(type, n, off, "at least 5");
            return Option{VendorSpecific{get32(d, 0), d[4], Bytes(d.begin() + 5, d.end())}};
        case opt::kHomeNetworkPrefix:
        case opt::kAnchoredPrefix:
        case opt::kLocalPrefix: {
            if (!need(18))
                return wrong_length(type, n, off, "18");
            if (d[1] > 128) {
                return unexpected(
                    bad(DecodeErrorCode::kBadPrefixLength, off + 3,
                        fmt::format("{} option has prefix length {}", option_name(type), d[1])));
            }
            const auto p = get_array<16>(d, 2);
            if (type == opt::kHomeNetworkPrefix)
                return Option{HomeNetworkPrefix{d[1], p}};
            if (type == opt::kAnchoredPrefix)
                return Option{AnchoredPrefix{d[1], p}};
            return Option{LocalPrefix{d[1], p}};
        }
        case opt::kHandoffIndicator:
            if (!need(2))
                return wrong_length(type, n, off, "2");
            return Option{HandoffIndicatorOption{d[1]}};
        case opt::kAccessTechnologyType:
            if (!need(2))
                return wrong_length(type, n, off, "2");
            return Option{AccessTechnologyTypeOption{d[1]}};
        case opt::kMnLinkLayerIdentifier:
            if (n < 3)
                return wrong_length(type, n, off, "at least 3");
            return Option{MnLinkLayerIdentifier{Bytes(d.begin() + 2, d.end())}};
        case opt::kPreviousMaarAddress: {
            if (!need(34))
                return wrong_length(type, n, off, "34");
            if (d[1] > 128) {
                return unexpected(
                    bad(DecodeErrorCode::kBadPrefixLength, off + 3,
                        fmt::format("{} option has prefix length {}", option_name(type), d[1])));
            }
            return Option{PreviousMaarAddress{d[1], get_array<16>(d, 2), get_array<16>(d, 18)}};
        }
        case opt::kLinkLocalAddress:
        case opt::kServingMaarAddress:
        case opt::kDlifLinkLocalAddress: {
            if (!need(16))
                return wrong_length(type, n, off, "16");
            const auto a = get_array<16>(d, 0);
            if (type == opt::kLinkLocalAddress)
                return Option{LinkLocalAddress{a}};
            if (type == opt::kServingMaarAddress)
                return Option{ServingMaarAddress{a}};
            return Option{DlifLinkLocalAddress{a}};
        }
        case opt::kTimestamp:
            if (!need(8))
                return wrong_length(type, n, off, "8");
            return Option{Timestamp{get64(d, 0)}};
        case opt::kRestartCounter:
            if (!need(6))
                return wrong_length(type, n, off, "6");
            return Option{RestartCounter{get32(d, 2)}};
        case opt::kIpv4HomeAddress:
            if (!need(6))
                return wrong_length(type, n, off, "6");
            return Option{Ipv4HomeAddress{static_cast<std::uint8_t>(d[0] >> 2), (d[0] & 0x02) != 0,
                                          get_array<4>(d, 2)}};
        case opt::kIpv4AddressAcknowledgement:
            if (!need(6))
                return wrong_length(type, n, off, "6");
            return Option{Ipv4AddressAcknowledgement{d[0], static_cast<std::uint8_t>(d[1] >> 2),
                                                     get_array<4>(d, 2)}};
        case opt::kNatDetection:
            if (!need(6))
                return wrong_length(type, n, off, "6");
            return Option{NatDetection{(d[0] & 0x80) != 0, get32(d, 2)}};
        case opt::kIpv4CareOfAddress:
            if (!need(6))
                return wrong_length(type, n, off, "6");
            return Option{Ipv4CareOfAddress{get_array<4>(d, 2)}};
        case opt::kGreKey:
            if (!need(6))
                return wrong_length(type, n, off, "6");
            return Option{GreKey{get32(d, 2)}};
        case opt::kBindingIdentifier: {
            if (n != 4 && n != 8 && n != 20)
                return wrong_length(type, n, off, "4, 8 or 20");
            BindingIdentifier b;
            b.bid = get16(d, 0);
            b.status = d[2];
            b.simultaneous_home_foreign = (d[3] & 0x80) != 0;
            b.priority = d[3] & 0x7f;
            if (n == 8)
                b.coa4 = get_array<4>(d, 4);
            if (n == 20)
                b.coa6 = get_array<16>(d, 4);
            return Option{b};
        }
        case opt::kIpv4HomeAddressRequest:
            if (!need(6))
                return wrong_length(type, n, off, "6");
            return Option{
                Ipv4HomeAddressRequest{static_cast<std::uint8_t>(d[0] >> 2), get_array<4>(d, 2)}};
        case opt::kIpv4HomeAddressReply:
            if (!need(6))
                return wrong_length(type, n, off, "6");
            return Option{Ipv4HomeAddressReply{d[0], static_cast<std::uint8_t>(d[1] >> 2),
                                               get_array<4>(d, 2)}};
        case opt::kIpv4DefaultRouterAddress:
            if (!need(6))
                return wrong_length(type, n, off, "6");
            return Option{Ipv4DefaultRouterAddress{get_array<4>(d, 2)}};
        case opt::kIpv4DhcpSupportMode:
            if (!need(2))
                return wrong_length(type, n, off, "2");
            return Option{Ipv4DhcpSupportMode{(d[1] & 0x01) != 0}};
        case opt::kFlowSummary: {
            if (n < 2 || n % 2 != 0)
                return wrong_length(type, n, off, "a positive multiple of 2");
            FlowSummary f;
            for (std::size_t i = 0; i < n; i += 2)
                f.fids.push_back(get16(d, i));
            return Option{f};
        }
        case opt::kFlowIdentification: {
            if (n < 6)
                return wrong_length(type, n, off, "at least 6");
            FlowIdentification f;
            f.fid = get16(d, 0);
            f.priority = get16(d, 2);
            f.action = d[4];
            f.status = d[5];
            std::size_t i = 6;
            while (i < n) {
                if (d[i] == 0) {  // Pad1 (RFC 6089 §4.2.1.1): one octet, no length
                    f.sub_options.push_back({0, {}});
                    ++i;
                    continue;
                }
                if (i + 2 > n || i + 2 + d[i + 1] > n) {
                    return unexpected(bad(DecodeErrorCode::kFlowSubOptionMalformed, off + 2 + i,
                                          "Flow Identification sub-option runs past its option"));
                }
                const std::uint8_t st = d[i], sl = d[i + 1];
                Bytes sd(d.begin() + static_cast<long>(i) + 2,
                         d.begin() + static_cast<long>(i) + 2 + sl);
                if ((st == kFlowSubBidReference && (sl == 0 || sl % 2 != 0)) ||
                    (st == kFlowSubTrafficSelector && sl < 2)) {
                    return unexpected(bad(
                        DecodeErrorCode::kFlowSubOptionMalformed, off + 2 + i,
                        fmt::format("Flow Identification sub-option {} has length {}", st, sl)));
                }
                f.sub_options.push_back({st, std::move(sd)});
                i += 2 + sl;
            }
            return Option{f};
        }
        case opt::kDelegatedMobileNetworkPrefix: {
            if (n < 2)
                return wrong_length(type, n, off, "6 or 18");
            const bool v4 = (d[0] & 0x80) != 0;
            if (n != (v4 ? 6u : 18u))
                return wrong_length(type, n, off, v4 ? "6 (V set)" : "18 (V clear)");
            if (d[1] > (v4 ? 32 : 128)) {
                return unexpected(
                    bad(DecodeErrorCode::kBadPrefixLength, off + 3,
                        fmt::format("Delegated Mobile Network Prefix has prefix length {}", d[1])));
            }
            return Option{DelegatedMobileNetworkPrefix{v4, d[1], Bytes(d.begin() + 2, d.end())}};
        }
        case opt::kMagMultipathBinding: {
            if (!need(4))
                return wrong_length(type, n, off, "4");
            const bool b = (d[3] & 0x80) != 0, o = (d[3] & 0x40) != 0;
            if (b && o) {
                return unexpected(
                    bad(DecodeErrorCode::kMultipathBAndO, off + 5,
                        "MAG Multipath-Binding has both B and O set (RFC 8278 §3.1)"));
            }
            return Option{MagMultipathBinding{d[0], d[1], d[2], b, o}};
        }
        case opt::kDlifLinkLayerAddress:
            if (n < 3)
                return wrong_length(type, n, off, "at least 3");
            return Option{DlifLinkLayerAddress{Bytes(d.begin() + 2, d.end())}};
        default:
            return Option{RawOption{type, Bytes(d.begin(), d.end())}};
    }
}

}  // namespace hag::mh
