#include "hag/policy/policy.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace hag::policy {

namespace {

bool any_port(const std::vector<PortRange>& ranges, std::uint16_t p) noexcept {
    if (ranges.empty()) {
        return true;
    }
    return std::any_of(ranges.begin(), ranges.end(),
                       [p](const PortRange& r) { return r.contains(p); });
}

bool any_prefix(const std::vector<net::Ipv6Prefix>& prefixes, const net::Ipv6Address& a) noexcept {
    if (prefixes.empty()) {
        return true;
    }
    return std::any_of(prefixes.begin(), prefixes.end(),
                       [&a](const net::Ipv6Prefix& p) { return net::contains(p, a); });
}

std::optional<std::uint16_t> parse_port(std::string_view t) {
    if (t.empty() || t.size() > 5 || (t.size() > 1 && t[0] == '0')) {
        return std::nullopt;
    }
    unsigned v = 0;
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec != std::errc{} || end != t.data() + t.size() || v > 65535) {
        return std::nullopt;
    }
    return static_cast<std::uint16_t>(v);
}

}  // namespace

bool Classifier::matches(const FlowKey& k) const noexcept {
    if (protocol && *protocol != k.protocol) {
        return false;
    }
    if (spi && (!k.spi || *spi != *k.spi)) {
        return false;
    }
    if (!dscp.empty() && std::find(dscp.begin(), dscp.end(), k.dscp) == dscp.end()) {
        return false;
    }
    return any_port(local_ports, k.local_port) && any_port(remote_ports, k.remote_port) &&
           any_prefix(local_prefixes, k.local) && any_prefix(remote_prefixes, k.remote);
}

bool Application::matches(const FlowKey& k) const noexcept {
    return std::any_of(any_of.begin(), any_of.end(),
                       [&k](const Classifier& c) { return c.matches(k); });
}

const Profile* Policy::find_profile(std::string_view name) const noexcept {
    for (const Profile& p : profiles) {
        if (p.name == name) {
            return &p;
        }
    }
    return nullptr;
}

std::optional<std::size_t> Policy::find_label(std::string_view name) const noexcept {
    for (std::size_t i = 0; i < labels.size(); ++i) {
        if (labels[i].name == name) {
            return i;
        }
    }
    return std::nullopt;
}

std::optional<std::size_t> Policy::find_application(std::string_view name) const noexcept {
    for (std::size_t i = 0; i < applications.size(); ++i) {
        if (applications[i].name == name) {
            return i;
        }
    }
    return std::nullopt;
}

bool carries(const Label& label, const Access& a) noexcept {
    return (!label.if_label || *label.if_label == a.if_label) &&
           (!label.access_technology || *label.access_technology == a.access_technology);
}

Decision resolve(const Policy& policy, const Rule& rule,
                 std::span<const Access> accesses) noexcept {
    Decision d;
    for (std::size_t s = 0; s < rule.preference.size(); ++s) {
        const Step& step = rule.preference[s];
        d.step = static_cast<std::int32_t>(s);
        switch (step.kind) {
            case Step::Kind::kDrop:
                d.kind = Decision::Kind::kDrop;
                return d;
            case Step::Kind::kStripe:
                d.kind = Decision::Kind::kStripe;
                return d;
            case Step::Kind::kAccess: {
                if (step.label >= policy.labels.size()) {
                    continue;
                }
                const Label& label = policy.labels[step.label];
                const Access* best = nullptr;
                for (const Access& a : accesses) {
                    if (a.live && carries(label, a) && (!best || a.bid < best->bid)) {
                        best = &a;
                    }
                }
                if (best) {
                    d.kind = Decision::Kind::kPath;
                    d.bid = best->bid;
                    return d;
                }
                break;
            }
        }
    }
    // A list without a terminal (refused by validation): nothing live means drop.
    d.kind = Decision::Kind::kDrop;
    return d;
}

Decision decide(const Policy& policy, const Profile& profile, const FlowKey& key,
                std::span<const Access> accesses) noexcept {
    for (std::size_t r = 0; r < profile.rules.size(); ++r) {
        const Rule& rule = profile.rules[r];
        if (rule.application < policy.applications.size() &&
            policy.applications[rule.application].matches(key)) {
            Decision d = resolve(policy, rule, accesses);
            d.rule = static_cast<std::int32_t>(r);
            return d;
        }
    }
    return Decision{};
}

void sort_rules(Profile& p) {
    std::stable_sort(p.rules.begin(), p.rules.end(),
                     [](const Rule& a, const Rule& b) { return a.priority > b.priority; });
}

std::string describe(const Policy& policy, const Rule& rule) {
    std::string out = rule.application < policy.applications.size()
                          ? policy.applications[rule.application].name
                          : std::string("?");
    out += " ->";
    bool first = true;
    for (const Step& s : rule.preference) {
        out += first ? " " : ", ";
        first = false;
        switch (s.kind) {
            case Step::Kind::kDrop:
                out += "DROP";
                break;
            case Step::Kind::kStripe:
                out += "STRIPE";
                break;
            case Step::Kind::kAccess:
                out += s.label < policy.labels.size() ? policy.labels[s.label].name : "?";
                break;
        }
    }
    if (rule.priority != 0) {
        out += fmt::format(" (priority {})", rule.priority);
    }
    return out;
}

std::string describe(const Policy& policy, const Profile& profile, const Decision& d) {
    std::string what;
    switch (d.kind) {
        case Decision::Kind::kPath:
            what = fmt::format("path bid={}", d.bid);
            break;
        case Decision::Kind::kStripe:
            what = "stripe";
            break;
        case Decision::Kind::kDrop:
            what = "drop";
            break;
    }
    if (d.rule < 0 || static_cast<std::size_t>(d.rule) >= profile.rules.size()) {
        return what + " (no rule matched)";
    }
    const Rule& rule = profile.rules[static_cast<std::size_t>(d.rule)];
    std::string step = "?";
    if (d.step >= 0 && static_cast<std::size_t>(d.step) < rule.preference.size()) {
        const Step& s = rule.preference[static_cast<std::size_t>(d.step)];
        step = s.kind == Step::Kind::kAccess
                   ? (s.label < policy.labels.size() ? policy.labels[s.label].name : "?")
                   : (s.kind == Step::Kind::kDrop ? "DROP" : "STRIPE");
    }
    return fmt::format("{} (rule {}: {}; step {} = {})", what, d.rule + 1, describe(policy, rule),
                       d.step + 1, step);
}

std::string describe(const Label& label) {
    std::string out = label.name + ":";
    if (label.if_label) {
        out += fmt::format(" if_label={}", *label.if_label);
    }
    if (label.access_technology) {
        out += fmt::format(" access_technology={}", *label.access_technology);
    }
    return out;
}

namespace {

std::string protocol_name(std::uint8_t p) {
    switch (p) {
        case kProtoTcp:
            return "tcp";
        case kProtoUdp:
            return "udp";
        case kProtoEsp:
            return "esp";
        case kProtoAh:
            return "ah";
        case 132:
            return "sctp";
        default:
            return fmt::format("protocol={}", p);
    }
}

std::string ports_text(const std::vector<PortRange>& ranges) {
    std::string out;
    for (const PortRange& r : ranges) {
        out += out.empty() ? "" : ",";
        out +=
            r.first == r.last ? fmt::format("{}", r.first) : fmt::format("{}-{}", r.first, r.last);
    }
    return out;
}

std::string prefixes_text(const std::vector<net::Ipv6Prefix>& prefixes) {
    std::string out;
    for (const net::Ipv6Prefix& p : prefixes) {
        out += out.empty() ? "" : ",";
        if (net::is_ipv4_mapped(p.address) && p.length >= 96) {
            out += net::format(net::Ipv4Prefix{net::mapped_ipv4(p.address),
                                               static_cast<std::uint8_t>(p.length - 96)});
        } else {
            out += net::format(p);
        }
    }
    return out;
}

std::string classifier_text(const Classifier& c) {
    std::vector<std::string> parts;
    if (c.protocol) {
        parts.push_back(protocol_name(*c.protocol));
    }
    if (!c.local_ports.empty()) {
        parts.push_back("local_ports=" + ports_text(c.local_ports));
    }
    if (!c.remote_ports.empty()) {
        parts.push_back("remote_ports=" + ports_text(c.remote_ports));
    }
    if (!c.local_prefixes.empty()) {
        parts.push_back("local=" + prefixes_text(c.local_prefixes));
    }
    if (!c.remote_prefixes.empty()) {
        parts.push_back("remote=" + prefixes_text(c.remote_prefixes));
    }
    if (!c.dscp.empty()) {
        std::string d;
        for (std::uint8_t v : c.dscp) {
            fmt::format_to(std::back_inserter(d), "{}{}", d.empty() ? "" : ",", v);
        }
        parts.push_back("dscp=" + d);
    }
    if (c.spi) {
        parts.push_back(fmt::format("spi=0x{:x}", *c.spi));
    }
    if (parts.empty()) {
        return "any";
    }
    std::string out;
    for (const std::string& p : parts) {
        out += (out.empty() ? "" : " ") + p;
    }
    return out;
}

}  // namespace

std::string describe(const Application& app) {
    std::string out = app.name + ":";
    bool first = true;
    for (const Classifier& c : app.any_of) {
        out += first ? " " : " | ";
        first = false;
        out += classifier_text(c);
    }
    return out;
}

std::optional<std::vector<PortRange>> parse_ports(std::string_view text) {
    std::vector<PortRange> out;
    if (text.empty()) {
        return std::nullopt;
    }
    while (true) {
        const std::size_t comma = text.find(',');
        const std::string_view item = text.substr(0, comma);
        const std::size_t dash = item.find('-');
        PortRange r;
        if (dash == std::string_view::npos) {
            const auto p = parse_port(item);
            if (!p) {
                return std::nullopt;
            }
            r = {*p, *p};
        } else {
            const auto a = parse_port(item.substr(0, dash));
            const auto b = parse_port(item.substr(dash + 1));
            if (!a || !b || *a > *b) {
                return std::nullopt;
            }
            r = {*a, *b};
        }
        out.push_back(r);
        if (comma == std::string_view::npos) {
            break;
        }
        text.remove_prefix(comma + 1);
        if (text.empty()) {
            return std::nullopt;  // trailing comma
        }
    }
    return out;
}

std::optional<net::Ipv6Prefix> parse_prefix(std::string_view text) {
    if (text.find('/') == std::string_view::npos) {
        if (auto a6 = net::parse_ipv6_address(text)) {
            return net::Ipv6Prefix{*a6, 128};
        }
        if (auto a4 = net::parse_ipv4_address(text)) {
            return net::Ipv6Prefix{net::ipv4_mapped(*a4), 128};
        }
        return std::nullopt;
    }
    if (auto p6 = net::parse_ipv6_prefix(text)) {
        if (!net::is_canonical(*p6)) {
            return std::nullopt;
        }
        return *p6;
    }
    if (auto p4 = net::parse_ipv4_prefix(text)) {
        if (!net::is_canonical(*p4)) {
            return std::nullopt;
        }
        return net::Ipv6Prefix{net::ipv4_mapped(p4->address),
                               static_cast<std::uint8_t>(96 + p4->length)};
    }
    return std::nullopt;
}

}  // namespace hag::policy
