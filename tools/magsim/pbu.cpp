#include "pbu.hpp"

#include <algorithm>

#include <arpa/inet.h>

#include <charconv>
#include <chrono>

#include <fmt/format.h>

namespace hag::magsim {

std::optional<AccessSpec> parse_access(std::string_view text) {
    const auto first = text.find(':');
    const auto last = text.rfind(':');
    if (first == std::string_view::npos || first == 0 || last == first || last + 1 >= text.size()) {
        return std::nullopt;
    }
    AccessSpec a;
    a.kind = std::string(text.substr(0, first));
    a.iface_or_coa = std::string(text.substr(first + 1, last - first - 1));
    if (a.kind.size() > 1 && a.kind.back() == '4') {
        a.kind.pop_back();
        a.ipv4 = true;
    }
    in_addr v4{};
    in6_addr v6{};
    if (inet_pton(AF_INET, a.iface_or_coa.c_str(), &v4) == 1) {
        a.ipv4 = true;
    } else if (a.ipv4 && inet_pton(AF_INET6, a.iface_or_coa.c_str(), &v6) == 1) {
        return std::nullopt;  // "lte4:2001:db8::2:2": IPv4 transport with an IPv6 CoA
    }
    const std::string_view bid = text.substr(last + 1);
    unsigned v = 0;
    auto [ptr, ec] = std::from_chars(bid.data(), bid.data() + bid.size(), v);
    if (ec != std::errc() || ptr != bid.data() + bid.size() || v == 0 || v > 255 ||
        a.iface_or_coa.empty()) {
        return std::nullopt;
    }
    a.bid = static_cast<std::uint16_t>(v);
    return a;
}

std::uint8_t access_att(std::string_view kind) {
    if (kind == "dsl" || kind == "ethernet" || kind == "fiber") {
        return static_cast<std::uint8_t>(mh::AccessTechnology::kIeee8023);
    }
    if (kind == "lte" || kind == "5g") {
        return static_cast<std::uint8_t>(mh::AccessTechnology::kEutran);
    }
    if (kind == "wlan" || kind == "wifi") {
        return static_cast<std::uint8_t>(mh::AccessTechnology::kIeee80211);
    }
    return static_cast<std::uint8_t>(mh::AccessTechnology::kVirtual);
}

std::uint8_t access_label(std::string_view kind) {
    if (kind == "dsl" || kind == "ethernet" || kind == "fiber") {
        return 1;
    }
    if (kind == "lte" || kind == "5g") {
        return 2;
    }
    return 3;
}

mh::Message build_pbu(const PbuParams& p) {
    if (p.mobile_node) {
        mh::BindingUpdate bu;
        bu.sequence = p.sequence;
        bu.ack = true;
        bu.home_registration = true;
        bu.lifetime = static_cast<std::uint16_t>((p.lifetime_s + 3) / 4);
        if (!p.nai.empty()) {
            bu.options.push_back(mh::MobileNodeIdentifier{mh::kMnIdSubtypeNai,
                                                          mh::Bytes(p.nai.begin(), p.nai.end())});
        }
        mh::BindingIdentifier bid;
        bid.bid = p.access.bid;
        bu.options.push_back(bid);
        if (p.gre_key) {
            bu.options.push_back(mh::GreKey{p.downlink_gre_key});
        }
        return mh::Message{bu};
    }
    mh::BindingUpdate bu;
    bu.sequence = p.sequence;
    bu.ack = true;
    bu.home_registration = true;
    bu.proxy = true;
    bu.lifetime = static_cast<std::uint16_t>((p.lifetime_s + 3) / 4);
    const std::uint8_t att = access_att(p.access.kind);
    bu.options.push_back(
        mh::MobileNodeIdentifier{mh::kMnIdSubtypeNai, mh::Bytes(p.nai.begin(), p.nai.end())});
    // An all-zero HNP asks the LMA to assign one (RFC 5213 §6.9.1.1).
    bu.options.push_back(mh::HomeNetworkPrefix{0, {}});
    bu.options.push_back(mh::HandoffIndicatorOption{p.handoff});
    bu.options.push_back(mh::AccessTechnologyTypeOption{att});
    bu.options.push_back(mh::Timestamp{p.timestamp});
    bu.options.push_back(mh::GreKey{p.downlink_gre_key});
    mh::BindingIdentifier bid;
    bid.bid = p.access.bid;
    bu.options.push_back(bid);
    mh::MagMultipathBinding mmb;
    mmb.if_att = att;
    mmb.if_label = access_label(p.access.kind);
    mmb.binding_id = static_cast<std::uint8_t>(p.access.bid);
    bu.options.push_back(mmb);
    bu.options.push_back(
        mh::MagIdentifier{mh::kMnIdSubtypeNai, mh::Bytes(p.mag_id.begin(), p.mag_id.end())});
    if (p.coa4) {
        bu.options.push_back(mh::Ipv4CareOfAddress{*p.coa4});
    }
    if (p.ipv4_hoa) {
        const bool any = (*p.ipv4_hoa == mh::Ipv4{});
        bu.options.push_back(
            mh::Ipv4HomeAddressRequest{static_cast<std::uint8_t>(any ? 0 : 32), *p.ipv4_hoa});
    }
    if (p.lifetime_s != 0) {
        for (const auto& d : p.dmnp) {
            bu.options.push_back(d);
        }
    }
    if (p.lifetime_s != 0) {
        mh::Bytes metrics(8);
        for (int i = 0; i < 4; ++i) {
            metrics[i] = static_cast<std::uint8_t>(p.down_kbps >> (24 - 8 * i));
            metrics[4 + i] = static_cast<std::uint8_t>(p.up_kbps >> (24 - 8 * i));
        }
        bu.options.push_back(
            mh::VendorSpecific{kLinkMetricsVendorId, kLinkMetricsSubtype, std::move(metrics)});
        for (const auto& f : p.flows) {
            bu.options.push_back(mh::flow_identification(f));
        }
    }
    return mh::Message{bu};
}

std::string ba_status_name(std::uint8_t status) {
    switch (static_cast<mh::BaStatus>(status)) {
        case mh::BaStatus::kAccepted:
            return "accepted";
        case mh::BaStatus::kReasonUnspecified:
            return "reason-unspecified";
        case mh::BaStatus::kAdministrativelyProhibited:
            return "administratively-prohibited";
        case mh::BaStatus::kInsufficientResources:
            return "insufficient-resources";
        case mh::BaStatus::kSequenceNumberOutOfWindow:
            return "sequence-out-of-window";
        case mh::BaStatus::kProxyRegistrationNotEnabled:
            return "proxy-registration-not-enabled";
        case mh::BaStatus::kNotLmaForThisMobileNode:
            return "not-lma-for-this-mobile-node";
        default: {
            const auto name = mh::to_string(static_cast<mh::BaStatus>(status));
            return name.empty() ? "status-" + std::to_string(status) : std::string(name);
        }
    }
}

mh::Message build_bra(const mh::BindingRevocation& bri, std::uint8_t status) {
    mh::BindingRevocation bra;
    bra.br_type = mh::kBrTypeAcknowledgement;
    bra.trigger_or_status = status;
    bra.sequence = bri.sequence;
    bra.proxy = bri.proxy;
    bra.global = bri.global;
    if (const auto* id = mh::find_option<mh::MobileNodeIdentifier>(bri.options)) {
        bra.options.push_back(*id);
    }
    return mh::Message{bra};
}

std::optional<PbaSummary> summarize_pba(const mh::Message& m) {
    const auto* ba = std::get_if<mh::BindingAcknowledgement>(&m.body);
    if (ba == nullptr) {
        return std::nullopt;
    }
    PbaSummary s;
    s.sequence = ba->sequence;
    s.status = ba->status;
    s.status_name = ba_status_name(ba->status);
    s.lifetime_s = static_cast<std::uint32_t>(ba->lifetime) * 4;
    for (const auto* h : mh::find_options<mh::HomeNetworkPrefix>(ba->options)) {
        char buf[INET6_ADDRSTRLEN] = {};
        inet_ntop(AF_INET6, h->prefix.data(), buf, sizeof buf);
        s.hnps.push_back(fmt::format("{}/{}", buf, h->prefix_length));
    }
    if (!s.hnps.empty()) {
        s.hnp = s.hnps.front();
    }
    if (const auto* k = mh::find_option<mh::GreKey>(ba->options)) {
        s.uplink_gre_key = k->key;
    }
    if (const auto* b = mh::find_option<mh::BindingIdentifier>(ba->options)) {
        s.bid = b->bid;
    }
    if (const auto* r = mh::find_option<mh::Ipv4HomeAddressReply>(ba->options)) {
        char buf[INET_ADDRSTRLEN] = {};
        inet_ntop(AF_INET, r->address.data(), buf, sizeof buf);
        s.ipv4_hoa = std::string(buf) + "/" + std::to_string(r->prefix_length);
        s.ipv4_hoa_status = r->status;
    }
    if (const auto* n = mh::find_option<mh::NatDetection>(ba->options)) {
        s.nat_refresh_s = n->refresh_time;
    }
    if (const auto* r = mh::find_option<mh::Ipv4DefaultRouterAddress>(ba->options)) {
        char buf[INET_ADDRSTRLEN] = {};
        inet_ntop(AF_INET, r->address.data(), buf, sizeof buf);
        s.ipv4_router = buf;
    }
    for (const auto* d : mh::find_options<mh::DelegatedMobileNetworkPrefix>(ba->options)) {
        s.dmnp.push_back(dmnp_text(*d));
    }
    for (const auto* f : mh::find_options<mh::FlowIdentification>(ba->options)) {
        s.flows.emplace_back(f->fid, f->status);
    }
    return s;
}

std::optional<mh::DelegatedMobileNetworkPrefix> parse_dmnp_request(std::string_view text) {
    mh::DelegatedMobileNetworkPrefix o;
    if (text == "any") {
        o.prefix.assign(16, 0);
        return o;
    }
    if (text == "any4") {
        o.ipv4 = true;
        o.prefix.assign(4, 0);
        return o;
    }
    const auto slash = text.find('/');
    if (slash == std::string_view::npos) {
        return std::nullopt;
    }
    const std::string addr(text.substr(0, slash));
    const std::string len_text(text.substr(slash + 1));
    unsigned len = 0;
    auto [ptr, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
    if (ec != std::errc() || ptr != len_text.data() + len_text.size() || len_text.empty()) {
        return std::nullopt;
    }
    mh::Ipv6 a6{};
    mh::Ipv4 a4{};
    if (inet_pton(AF_INET6, addr.c_str(), a6.data()) == 1 && len <= 128) {
        o.prefix.assign(a6.begin(), a6.end());
    } else if (inet_pton(AF_INET, addr.c_str(), a4.data()) == 1 && len <= 32) {
        o.ipv4 = true;
        o.prefix.assign(a4.begin(), a4.end());
    } else {
        return std::nullopt;
    }
    o.prefix_length = static_cast<std::uint8_t>(len);
    return o;
}

std::string dmnp_text(const mh::DelegatedMobileNetworkPrefix& o) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (o.ipv4 && o.prefix.size() == 4) {
        inet_ntop(AF_INET, o.prefix.data(), buf, sizeof buf);
    } else if (!o.ipv4 && o.prefix.size() == 16) {
        inet_ntop(AF_INET6, o.prefix.data(), buf, sizeof buf);
    } else {
        return "?";
    }
    return std::string(buf) + "/" + std::to_string(o.prefix_length);
}

}  // namespace hag::magsim
