#include "hag/v1/policy_config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <string>

namespace hag::policy {

namespace {

using config::Reporter;

std::string upper(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return out;
}

bool reserved_name(std::string_view name) {
    const std::string u = upper(name);
    return u == "DROP" || u == "STRIPE";
}

// Reports an error and remembers that there was one (the reporter may hold errors from other
// parts of the file).
struct Failer {
    const Reporter& at;
    bool failed = false;
    void operator()(const config::ParseInfoTree* tree, const google::protobuf::Message& msg,
                    const char* field, int index, std::string text) {
        failed = true;
        at.at(tree, msg, field, index, std::move(text));
    }
};

void compile_classifier(const v1::TrafficClassifier& c, const config::ParseInfoTree* tree,
                        Failer& at, const std::string& where, Classifier& out) {
    if (c.has_protocol()) {
        if (c.protocol() > 255) {
            at(tree, c, "protocol", -1,
               fmt::format("{}: protocol {} is not an IP protocol number (0-255)", where,
                           c.protocol()));
        } else {
            out.protocol = static_cast<std::uint8_t>(c.protocol());
        }
    }
    const auto ports = [&](const google::protobuf::RepeatedPtrField<std::string>& list,
                           const char* field, std::vector<PortRange>& dst) {
        for (int i = 0; i < list.size(); ++i) {
            auto r = parse_ports(list.Get(i));
            if (!r) {
                at(tree, c, field, i,
                   fmt::format("{}: {} '{}' is not a port list (\"80\", \"10000-20000\", "
                               "\"80,443\")",
                               where, field, list.Get(i)));
                continue;
            }
            dst.insert(dst.end(), r->begin(), r->end());
        }
    };
    ports(c.local_ports(), "local_ports", out.local_ports);
    ports(c.remote_ports(), "remote_ports", out.remote_ports);
    if ((!out.local_ports.empty() || !out.remote_ports.empty()) && out.protocol &&
        *out.protocol != kProtoTcp && *out.protocol != kProtoUdp && *out.protocol != 132) {
        at(tree, c, "protocol", -1,
           fmt::format("{}: ports given but protocol {} has none (TCP 6, UDP 17, SCTP 132)", where,
                       *out.protocol));
    }
    const auto prefixes = [&](const google::protobuf::RepeatedPtrField<std::string>& list,
                              const char* field, std::vector<net::Ipv6Prefix>& dst) {
        for (int i = 0; i < list.size(); ++i) {
            auto p = parse_prefix(list.Get(i));
            if (!p) {
                at(tree, c, field, i,
                   fmt::format("{}: {} '{}' is not an IPv4 or IPv6 prefix with its host bits "
                               "clear",
                               where, field, list.Get(i)));
                continue;
            }
            dst.push_back(*p);
        }
    };
    prefixes(c.local_prefixes(), "local_prefixes", out.local_prefixes);
    prefixes(c.remote_prefixes(), "remote_prefixes", out.remote_prefixes);
    for (int i = 0; i < c.dscp_size(); ++i) {
        if (c.dscp(i) > 63) {
            at(tree, c, "dscp", i,
               fmt::format("{}: dscp {} is not a code point (0-63)", where, c.dscp(i)));
            continue;
        }
        out.dscp.push_back(static_cast<std::uint8_t>(c.dscp(i)));
    }
    if (c.has_spi()) {
        if (out.protocol && *out.protocol != kProtoEsp && *out.protocol != kProtoAh) {
            at(tree, c, "spi", -1,
               fmt::format("{}: spi given but protocol {} is neither ESP (50) nor AH (51)", where,
                           *out.protocol));
        }
        out.spi = c.spi();
    }
}

}  // namespace

std::optional<Policy> compile_policy(const v1::PolicyConfig& cfg, const config::ParseInfoTree* tree,
                                     const config::Reporter& at) {
    Policy out;
    Failer fail{at};

    std::set<std::string> names;
    for (int i = 0; i < cfg.labels_size(); ++i) {
        const v1::AccessLabel& l = cfg.labels(i);
        const auto* lt = Reporter::nested(tree, cfg, "labels", i);
        if (l.name().empty() || reserved_name(l.name())) {
            fail(lt, l, "name", -1,
                 fmt::format("policy.labels: name '{}' is empty or reserved (DROP, STRIPE)",
                             l.name()));
        } else if (!names.insert(l.name()).second) {
            fail(lt, l, "name", -1, fmt::format("policy.labels: '{}' defined twice", l.name()));
        }
        Label label{l.name(), std::nullopt, std::nullopt};
        if (l.has_if_label()) {
            if (l.if_label() > 255) {
                fail(lt, l, "if_label", -1,
                     fmt::format("policy.labels '{}': if_label {} is above 255", l.name(),
                                 l.if_label()));
            }
            label.if_label = static_cast<std::uint8_t>(l.if_label());
        }
        if (l.has_access_technology()) {
            if (l.access_technology() > 255) {
                fail(lt, l, "access_technology", -1,
                     fmt::format("policy.labels '{}': access_technology {} is above 255", l.name(),
                                 l.access_technology()));
            }
            label.access_technology = static_cast<std::uint8_t>(l.access_technology());
        }
        if (!l.has_if_label() && !l.has_access_technology()) {
            fail(lt, l, "name", -1,
                 fmt::format("policy.labels '{}': needs if_label or access_technology (a label "
                             "matching every path is STRIPE)",
                             l.name()));
        }
        out.labels.push_back(std::move(label));
    }

    std::set<std::string> apps;
    for (int i = 0; i < cfg.applications_size(); ++i) {
        const v1::ApplicationClass& a = cfg.applications(i);
        const auto* t = Reporter::nested(tree, cfg, "applications", i);
        if (a.name().empty()) {
            fail(t, a, "name", -1, "policy.applications: a name is required");
        } else if (!apps.insert(a.name()).second) {
            fail(t, a, "name", -1,
                 fmt::format("policy.applications: '{}' defined twice", a.name()));
        }
        if (a.match_size() == 0) {
            fail(t, a, "name", -1,
                 fmt::format("policy.applications '{}': needs at least one match", a.name()));
        }
        Application app{a.name(), {}};
        for (int m = 0; m < a.match_size(); ++m) {
            Classifier c;
            compile_classifier(a.match(m), Reporter::nested(t, a, "match", m), fail,
                               fmt::format("policy.applications '{}' match {}", a.name(), m + 1),
                               c);
            app.any_of.push_back(std::move(c));
        }
        out.applications.push_back(std::move(app));
    }

    std::set<std::string> profiles;
    for (int i = 0; i < cfg.profiles_size(); ++i) {
        const v1::PolicyProfile& p = cfg.profiles(i);
        const auto* pt = Reporter::nested(tree, cfg, "profiles", i);
        if (p.name().empty()) {
            fail(pt, p, "name", -1, "policy.profiles: a name is required");
        } else if (!profiles.insert(p.name()).second) {
            fail(pt, p, "name", -1, fmt::format("policy.profiles: '{}' defined twice", p.name()));
        } else if (p.name().rfind("flows/", 0) == 0) {
            fail(pt, p, "name", -1,
                 fmt::format("policy.profiles: '{}': names starting with flows/ are the "
                             "sessions' flow binding profiles",
                             p.name()));
        }
        Profile prof{p.name(), {}};
        std::set<std::string> ruled;  // one rule per application: a second one never matches
        for (int r = 0; r < p.rules_size(); ++r) {
            const v1::PolicyRule& pr = p.rules(r);
            const auto* rt = Reporter::nested(pt, p, "rules", r);
            const std::string where =
                fmt::format("policy.profiles '{}' rule {} ({})", p.name(), r + 1, pr.application());
            Rule rule;
            rule.priority = pr.priority();
            if (!ruled.insert(pr.application()).second) {
                fail(rt, pr, "application", -1,
                     fmt::format("{}: the profile already has a rule for application '{}' (the "
                                 "second would never match)",
                                 where, pr.application()));
            }
            if (auto idx = out.find_application(pr.application())) {
                rule.application = *idx;
            } else {
                fail(rt, pr, "application", -1,
                     fmt::format("{}: no application '{}' in policy.applications", where,
                                 pr.application()));
            }
            if (pr.preference_size() == 0) {
                fail(rt, pr, "application", -1,
                     fmt::format("{}: preference is empty (end it with DROP or STRIPE)", where));
            }
            std::set<std::size_t> seen;
            for (int s = 0; s < pr.preference_size(); ++s) {
                const std::string& name = pr.preference(s);
                const bool last = s + 1 == pr.preference_size();
                const std::string u = upper(name);
                if (u == "DROP" || u == "STRIPE") {
                    if (!last) {
                        fail(rt, pr, "preference", s,
                             fmt::format("{}: {} must be the last step", where, u));
                    }
                    rule.preference.push_back(
                        {u == "DROP" ? Step::Kind::kDrop : Step::Kind::kStripe, 0});
                    continue;
                }
                if (last) {
                    fail(rt, pr, "preference", s,
                         fmt::format("{}: the list must end in DROP or STRIPE, not '{}'", where,
                                     name));
                }
                auto l = out.find_label(name);
                if (!l) {
                    fail(rt, pr, "preference", s,
                         fmt::format("{}: no label '{}' in policy.labels", where, name));
                    continue;
                }
                if (!seen.insert(*l).second) {
                    fail(rt, pr, "preference", s,
                         fmt::format("{}: label '{}' listed twice", where, name));
                }
                rule.preference.push_back({Step::Kind::kAccess, *l});
            }
            prof.rules.push_back(std::move(rule));
        }
        sort_rules(prof);
        out.profiles.push_back(std::move(prof));
    }
    if (!cfg.default_profile().empty()) {
        for (std::size_t i = 0; i < out.profiles.size(); ++i) {
            if (out.profiles[i].name == cfg.default_profile()) {
                out.default_profile = i;
            }
        }
        if (!out.default_profile) {
            fail(tree, cfg, "default_profile", -1,
                 fmt::format("policy.default_profile: no profile '{}' in policy.profiles",
                             cfg.default_profile()));
        }
    }
    if (fail.failed) {
        return std::nullopt;
    }
    return out;
}

}  // namespace hag::policy
