#include "programmer/session_parse.hpp"

#include <fmt/format.h>

#include "multipath/scheduler.hpp"
#include "programmer/path_encapsulation.hpp"
#include "runtime/text.hpp"

namespace hag::dp {

SessionParser::SessionParser(const v1::DataplaneConfig& cfg, std::vector<Port> ports,
                             std::uint32_t capacity)
    : ports_(std::move(ports)), capacity_(capacity) {
    for (std::size_t i = 0; i < ports_.size(); ++i) {
        if (ports_[i].role != v1::PortConfig::ACCESS) {
            continue;
        }
        for (const auto& pc : cfg.ports()) {
            if (pc.name() != ports_[i].name) {
                continue;
            }
            for (const auto& text : pc.addresses()) {
                if (auto a = parse_ip(text); a) {
                    own_.emplace_back(*a, i);
                }
            }
        }
    }
    for (const auto& p : ports_) {
        if (p.role == v1::PortConfig::ACCESS) {
            first_access_ = &p;
            break;
        }
    }
}

const Port* SessionParser::port_for(const IpAddr& local) const noexcept {
    for (const auto& [addr, i] : own_) {
        if (addr == local) {
            return &ports_[i];
        }
    }
    return first_access_;
}

Result<ParsedSession, std::string> SessionParser::parse(const v1::DpSession& s) const {
    ParsedSession out;
    out.id = s.id();
    if (s.id() >= capacity_) {
        return unexpected(fmt::format("session {}: id beyond the table capacity (ids 0-{})", s.id(),
                                      capacity_ - 1));
    }
    if (s.paths_size() == 0 || s.paths_size() > static_cast<int>(kMaxPaths)) {
        return unexpected(
            fmt::format("session {}: {} paths (1-{} allowed)", s.id(), s.paths_size(), kMaxPaths));
    }
    if (s.prefixes_size() > static_cast<int>(kMaxPrefixes)) {
        return unexpected(fmt::format("session {}: {} prefixes (at most {})", s.id(),
                                      s.prefixes_size(), kMaxPrefixes));
    }
    if (first_access_ == nullptr) {
        return unexpected(fmt::format("session {}: the data plane has no access port", s.id()));
    }
    SessionConfig& c = out.cfg;
    c.uplink_key = s.uplink_key();
    c.gre_sequence = s.gre_sequence();
    switch (s.striping()) {
        case v1::STRIPING_WEIGHTED:
            c.striping = StripingMode::kWeighted;
            break;
        case v1::STRIPING_OVERFLOW:
            c.striping = StripingMode::kOverflow;
            break;
        default:
            return unexpected(fmt::format(
                "session {}: striping {} is not a striping mode (0 weighted, 1 overflow)", s.id(),
                static_cast<int>(s.striping())));
    }
    if (s.overflow_burst_bytes() > kMaxOverflowBurstBytes) {
        return unexpected(fmt::format("session {}: overflow_burst_bytes {} is above {}", s.id(),
                                      s.overflow_burst_bytes(), kMaxOverflowBurstBytes));
    }
    c.overflow_burst_bytes = s.overflow_burst_bytes();
    c.reorder = !s.has_reorder() ? ReorderMode::kDefault
                : s.reorder()    ? ReorderMode::kOn
                                 : ReorderMode::kOff;
    if (s.reorder_timeout_us() != 0 &&
        (s.reorder_timeout_us() < 100 || s.reorder_timeout_us() > 1'000'000)) {
        return unexpected(fmt::format("session {}: reorder_timeout_us {} is not within 100-1000000",
                                      s.id(), s.reorder_timeout_us()));
    }
    c.reorder_timeout_us = s.reorder_timeout_us();
    for (int i = 0; i < s.prefixes_size(); ++i) {
        auto p = parse_ip_prefix(s.prefixes(i));
        if (!p) {
            return unexpected(fmt::format("session {}: prefix {}", s.id(), p.error()));
        }
        for (unsigned j = 0; j < c.n_prefixes; ++j) {
            if (c.prefixes[j] == *p) {
                return unexpected(
                    fmt::format("session {}: prefix '{}' listed twice", s.id(), s.prefixes(i)));
            }
        }
        c.prefixes[c.n_prefixes++] = *p;
    }
    for (int i = 0; i < s.paths_size(); ++i) {
        const v1::DpPath& dp = s.paths(i);
        if (dp.bid() == 0 || dp.bid() > 65535) {
            return unexpected(
                fmt::format("session {}: path BID {} (1-65535 allowed)", s.id(), dp.bid()));
        }
        if (dp.if_label() > 255) {
            return unexpected(fmt::format("session {} path {}: if_label {} (0-255 allowed)", s.id(),
                                          dp.bid(), dp.if_label()));
        }
        if (dp.access_technology() > 255) {
            return unexpected(
                fmt::format("session {} path {}: access_technology {} (0-255 allowed)", s.id(),
                            dp.bid(), dp.access_technology()));
        }
        PathConfig& pc = c.paths[c.n_paths];
        pc.bid = static_cast<std::uint16_t>(dp.bid());
        for (unsigned j = 0; j < c.n_paths; ++j) {
            if (c.paths[j].bid == pc.bid) {
                return unexpected(fmt::format("session {}: BID {} used twice", s.id(), pc.bid));
            }
        }
        auto local = parse_ip(dp.local());
        if (!local) {
            return unexpected(
                fmt::format("session {} path {}: local: {}", s.id(), dp.bid(), local.error()));
        }
        auto coa = parse_ip(dp.care_of());
        if (!coa) {
            return unexpected(
                fmt::format("session {} path {}: care_of: {}", s.id(), dp.bid(), coa.error()));
        }
        if (local->family != coa->family) {
            return unexpected(fmt::format(
                "session {} path {}: local '{}' and care_of '{}' are of different families", s.id(),
                dp.bid(), dp.local(), dp.care_of()));
        }
        pc.live = dp.live();
        pc.if_label = static_cast<std::uint8_t>(dp.if_label());
        pc.access_technology = static_cast<std::uint8_t>(dp.access_technology());
        pc.downlink_key = dp.downlink_key();
        pc.weight = dp.weight_kbps();
        pc.rate_kbps = dp.rate_kbps();
        pc.preference = dp.preference();
        if (auto r = parse_path_encapsulation(dp.udp_port(), static_cast<int>(dp.tunnel()),
                                              dp.mtu(), coa->family, pc);
            !r) {
            return unexpected(fmt::format("session {} path {}: {}", s.id(), dp.bid(), r.error()));
        }
        pc.local = *local;
        pc.coa = *coa;
        const Port* port = port_for(pc.local);
        pc.port = port->id;
        pc.src_mac = port->mac;
        out.ports[c.n_paths] = port;
        ++c.n_paths;
    }
    if (auto r = parse_anchors(s, out); !r) {
        return unexpected(r.error());
    }
    return out;
}

Result<void, std::string> SessionParser::parse_anchors(const v1::DpSession& s,
                                                       ParsedSession& out) const {
    SessionConfig& c = out.cfg;
    if (s.remote_anchors_size() > static_cast<int>(kMaxRemoteAnchors)) {
        return unexpected(fmt::format("session {}: {} remote anchors (at most {})", s.id(),
                                      s.remote_anchors_size(), kMaxRemoteAnchors));
    }
    for (int i = 0; i < s.remote_anchors_size(); ++i) {
        const v1::DpRemoteAnchor& ra = s.remote_anchors(i);
        RemoteAnchorConfig& a = c.anchors[c.n_anchors];
        auto p = parse_ip_prefix(ra.prefix());
        if (!p) {
            return unexpected(
                fmt::format("session {} remote anchor #{}: prefix {}", s.id(), i, p.error()));
        }
        bool own = false;
        for (unsigned j = 0; j < c.n_prefixes && !own; ++j) {
            own = c.prefixes[j] == *p;
        }
        if (!own) {
            return unexpected(fmt::format(
                "session {} remote anchor #{}: prefix '{}' is not one of the session's prefixes",
                s.id(), i, ra.prefix()));
        }
        for (unsigned j = 0; j < c.n_anchors; ++j) {
            if (c.anchors[j].prefix == *p) {
                return unexpected(fmt::format(
                    "session {} remote anchor #{}: prefix '{}' has a remote anchor already", s.id(),
                    i, ra.prefix()));
            }
        }
        auto local = parse_ip(ra.local());
        if (!local) {
            return unexpected(
                fmt::format("session {} remote anchor #{}: local: {}", s.id(), i, local.error()));
        }
        auto anchor = parse_ip(ra.anchor());
        if (!anchor) {
            return unexpected(
                fmt::format("session {} remote anchor #{}: anchor: {}", s.id(), i, anchor.error()));
        }
        if (local->family != anchor->family) {
            return unexpected(fmt::format(
                "session {} remote anchor #{}: local '{}' and anchor '{}' are of different "
                "families",
                s.id(), i, ra.local(), ra.anchor()));
        }
        if (ra.downlink_key() != 0) {
            if (ra.downlink_key() == c.uplink_key) {
                return unexpected(fmt::format(
                    "session {} remote anchor #{}: downlink_key {} is the session's uplink_key",
                    s.id(), i, ra.downlink_key()));
            }
            for (unsigned j = 0; j < c.n_anchors; ++j) {
                if (c.anchors[j].downlink_key == ra.downlink_key()) {
                    return unexpected(
                        fmt::format("session {} remote anchor #{}: downlink_key {} used twice",
                                    s.id(), i, ra.downlink_key()));
                }
            }
        }
        a.prefix = *p;
        a.local = *local;
        a.anchor = *anchor;
        a.uplink_key = ra.uplink_key();
        a.downlink_key = ra.downlink_key();
        const Port* port = port_for(a.local);
        a.port = port->id;
        a.src_mac = port->mac;
        out.anchor_ports[c.n_anchors] = port;
        ++c.n_anchors;
    }
    return {};
}

std::string prefix_identity(const IpPrefix& p) {
    std::string k(reinterpret_cast<const char*>(p.addr.bytes.data()), p.addr.bytes.size());
    k += static_cast<char>(p.addr.family);
    k += static_cast<char>(p.length);
    return k;
}

}  // namespace hag::dp
