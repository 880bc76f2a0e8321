#include "mgmt/convert.hpp"

#include "core/dmnp.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include "hag/mh/flow_binding.hpp"

namespace hag::control::mgmt {

std::optional<Prefix> parse_prefix(std::string_view text) {
    const auto slash = text.find('/');
    if (slash == std::string_view::npos || slash == 0 || slash + 1 >= text.size()) {
        return std::nullopt;
    }
    const std::string addr(text.substr(0, slash));
    const std::string_view len_text = text.substr(slash + 1);
    unsigned len = 0;
    auto [ptr, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
    if (ec != std::errc() || ptr != len_text.data() + len_text.size() || len > 128) {
        return std::nullopt;
    }
    Prefix p;
    if (inet_pton(AF_INET6, addr.c_str(), p.addr.data()) != 1) {
        // An IPv4 home address or prefix (RFC 5844), held IPv4-mapped.
        std::array<std::uint8_t, 4> v4{};
        if (len > 32 || inet_pton(AF_INET, addr.c_str(), v4.data()) != 1) {
            return std::nullopt;
        }
        p.addr = CareOfAddress::from_ipv4(v4).addr;
        p.length = static_cast<std::uint8_t>(96 + len);
        return p;
    }
    p.length = static_cast<std::uint8_t>(len);
    return p;
}

std::optional<CareOfAddress> parse_coa(std::string_view text) {
    const std::string s(text);
    CareOfAddress c;
    if (inet_pton(AF_INET6, s.c_str(), c.addr.data()) == 1) {
        return c;
    }
    std::array<std::uint8_t, 4> v4{};
    if (inet_pton(AF_INET, s.c_str(), v4.data()) == 1) {
        return CareOfAddress::from_ipv4(v4);
    }
    return std::nullopt;
}

void to_proto(const Session& s, Seconds now, hag::v1::Binding* out) {
    out->set_nai(s.nai);
    for (const Prefix& p : s.home_prefixes) {
        out->add_home_prefixes(to_string(p));
    }
    for (const Prefix& p : s.home_prefixes) {
        if (p.length >= 96 && CareOfAddress{p.addr}.is_ipv4()) {
            out->set_ipv4_home_address(to_string(p));
        }
    }
    for (const Prefix& p : s.delegated_prefixes) {
        out->add_delegated_prefixes(prefix_text_any(p));
    }
    out->set_uplink_gre_key(s.uplink_gre_key);
    for (const auto& a : s.remote_anchors) {
        auto* pa = out->add_prefix_anchors();
        pa->set_prefix(to_string(a.prefix));
        pa->set_anchor_node(a.node);
        pa->set_anchor_address(to_string(a.anchor));
        pa->set_uplink_key(a.uplink_key);
        pa->set_downlink_key(a.downlink_key);
    }
    out->set_last_sequence(s.last_sequence);
    for (const Path& p : s.paths) {
        auto* pp = out->add_paths();
        pp->set_bid(p.bid);
        pp->set_mag_id(p.mag_id);
        pp->set_coa(to_string(p.coa));
        pp->set_access_technology(p.access_technology);
        pp->set_if_label(p.if_label);
        pp->set_downlink_gre_key(p.downlink_gre_key);
        pp->set_weight_kbps(p.weight_kbps);
        pp->set_live(p.live);
        pp->set_expires_in_seconds(p.expires_at > now ? p.expires_at - now : 0);
        if (p.nat) {
            pp->set_nat(true);
            pp->set_nat_port(p.nat_port);
            pp->set_mag_coa(to_string(p.mag_coa));
        }
        if (p.relay) {
            pp->set_relay(true);
        }
    }
    for (const FlowBindingEntry& f : s.flows) {
        auto* fb = out->add_flow_bindings();
        fb->set_fid(f.fid);
        fb->set_priority(f.priority);
        for (const auto bid : f.bids) {
            fb->add_bids(bid);
        }
        fb->set_discard(f.bids.empty());
        if (auto ts = mh::decode_traffic_selector(f.selector); ts.ok()) {
            fb->set_selector(mh::describe(*ts));
        }
        std::string now_text = "drop";
        for (const auto bid : f.bids) {
            if (const Path* p = s.find_path(bid); p != nullptr && p->live) {
                now_text = "path bid=" + std::to_string(bid);
                break;
            }
        }
        fb->set_now(now_text);
    }
}

}  // namespace hag::control::mgmt
