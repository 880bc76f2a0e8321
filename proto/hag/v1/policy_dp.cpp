#include "hag/v1/policy_dp.hpp"

#include <fmt/format.h>

namespace hag::policy {

namespace {

void add_ports(const std::vector<PortRange>& in,
               google::protobuf::RepeatedPtrField<v1::DpPortRange>* out) {
    for (const PortRange& r : in) {
        auto* o = out->Add();
        o->set_first(r.first);
        o->set_last(r.last);
    }
}

Result<std::vector<PortRange>, std::string> ports_from(
    const google::protobuf::RepeatedPtrField<v1::DpPortRange>& in, const std::string& where) {
    std::vector<PortRange> out;
    for (const auto& r : in) {
        if (r.first() > 65535 || r.last() > 65535 || r.first() > r.last()) {
            return unexpected(
                fmt::format("{}: port range {}-{} is invalid", where, r.first(), r.last()));
        }
        out.push_back(
            {static_cast<std::uint16_t>(r.first()), static_cast<std::uint16_t>(r.last())});
    }
    return out;
}

Result<std::vector<net::Ipv6Prefix>, std::string> prefixes_from(
    const google::protobuf::RepeatedPtrField<std::string>& in, const std::string& where) {
    std::vector<net::Ipv6Prefix> out;
    for (const auto& t : in) {
        auto p = parse_prefix(t);
        if (!p) {
            return unexpected(fmt::format("{}: prefix '{}' is invalid", where, t));
        }
        out.push_back(*p);
    }
    return out;
}

}  // namespace

std::string prefix_text(const net::Ipv6Prefix& p) {
    if (p.length >= 96 && net::is_ipv4_mapped(p.address)) {
        return fmt::format("{}/{}", net::format(net::mapped_ipv4(p.address)), p.length - 96);
    }
    return net::format(p);
}

v1::DpPolicyProfile to_dp_profile(const Policy& policy, const Profile& profile,
                                  bool drop_forbidden_uplink) {
    v1::DpPolicyProfile out;
    out.set_name(profile.name);
    out.set_drop_forbidden_uplink(drop_forbidden_uplink);
    for (const Rule& r : profile.rules) {
        auto* dr = out.add_rules();
        const Application& app = policy.applications.at(r.application);
        dr->set_application(app.name);
        dr->set_priority(r.priority);
        for (const Classifier& c : app.any_of) {
            auto* dc = dr->add_match();
            if (c.protocol) {
                dc->set_protocol(*c.protocol);
            }
            add_ports(c.local_ports, dc->mutable_local_ports());
            add_ports(c.remote_ports, dc->mutable_remote_ports());
            for (const auto& p : c.local_prefixes) {
                dc->add_local_prefixes(prefix_text(p));
            }
            for (const auto& p : c.remote_prefixes) {
                dc->add_remote_prefixes(prefix_text(p));
            }
            for (std::uint8_t d : c.dscp) {
                dc->add_dscp(d);
            }
            if (c.spi) {
                dc->set_spi(*c.spi);
            }
        }
        for (const Step& s : r.preference) {
            auto* ds = dr->add_preference();
            switch (s.kind) {
                case Step::Kind::kDrop:
                    ds->set_kind(v1::DpPolicyStep::DROP);
                    break;
                case Step::Kind::kStripe:
                    ds->set_kind(v1::DpPolicyStep::STRIPE);
                    break;
                case Step::Kind::kAccess: {
                    const Label& l = policy.labels.at(s.label);
                    ds->set_kind(v1::DpPolicyStep::ACCESS);
                    ds->set_label(l.name);
                    if (l.if_label) {
                        ds->set_if_label(*l.if_label);
                    }
                    if (l.access_technology) {
                        ds->set_access_technology(*l.access_technology);
                    }
                    break;
                }
            }
        }
    }
    return out;
}

Result<Policy, std::string> from_dp_profile(const v1::DpPolicyProfile& p) {
    Policy out;
    if (p.name().empty()) {
        return unexpected(std::string("profile without a name"));
    }
    Profile prof;
    prof.name = p.name();
    for (int ri = 0; ri < p.rules_size(); ++ri) {
        const auto& dr = p.rules(ri);
        const std::string where =
            fmt::format("profile {} rule {} ({})", p.name(), ri + 1, dr.application());
        Application app;
        app.name = dr.application();
        for (const auto& dc : dr.match()) {
            Classifier c;
            if (dc.has_protocol()) {
                if (dc.protocol() > 255) {
                    return unexpected(where + ": protocol above 255");
                }
                c.protocol = static_cast<std::uint8_t>(dc.protocol());
            }
            auto lp = ports_from(dc.local_ports(), where);
            auto rp = ports_from(dc.remote_ports(), where);
            auto lx = prefixes_from(dc.local_prefixes(), where);
            auto rx = prefixes_from(dc.remote_prefixes(), where);
            if (!lp || !rp || !lx || !rx) {
                return unexpected(!lp   ? lp.error()
                                  : !rp ? rp.error()
                                  : !lx ? lx.error()
                                        : rx.error());
            }
            c.local_ports = std::move(*lp);
            c.remote_ports = std::move(*rp);
            c.local_prefixes = std::move(*lx);
            c.remote_prefixes = std::move(*rx);
            for (std::uint32_t d : dc.dscp()) {
                if (d > 63) {
                    return unexpected(where + ": DSCP above 63");
                }
                c.dscp.push_back(static_cast<std::uint8_t>(d));
            }
            if (dc.has_spi()) {
                c.spi = dc.spi();
            }
            app.any_of.push_back(std::move(c));
        }
        Rule rule;
        rule.application = out.applications.size();
        rule.priority = dr.priority();
        out.applications.push_back(std::move(app));
        for (int si = 0; si < dr.preference_size(); ++si) {
            const auto& ds = dr.preference(si);
            const bool last = si + 1 == dr.preference_size();
            Step step;
            if (ds.kind() == v1::DpPolicyStep::ACCESS) {
                if (last) {
                    return unexpected(where +
                                      ": the preference list does not end in DROP or STRIPE");
                }
                if (!ds.has_if_label() && !ds.has_access_technology()) {
                    return unexpected(where +
                                      ": an access step with neither if_label nor "
                                      "access_technology");
                }
                if (ds.if_label() > 255 || ds.access_technology() > 255) {
                    return unexpected(where + ": if_label / access_technology above 255");
                }
                Label l;
                l.name = ds.label();
                if (ds.has_if_label()) {
                    l.if_label = static_cast<std::uint8_t>(ds.if_label());
                }
                if (ds.has_access_technology()) {
                    l.access_technology = static_cast<std::uint8_t>(ds.access_technology());
                }
                std::size_t idx = out.labels.size();
                for (std::size_t k = 0; k < out.labels.size(); ++k) {
                    if (out.labels[k].if_label == l.if_label &&
                        out.labels[k].access_technology == l.access_technology) {
                        idx = k;
                        break;
                    }
                }
                if (idx == out.labels.size()) {
                    out.labels.push_back(std::move(l));
                }
                step.kind = Step::Kind::kAccess;
                step.label = idx;
            } else if (ds.kind() == v1::DpPolicyStep::DROP ||
                       ds.kind() == v1::DpPolicyStep::STRIPE) {
                if (!last) {
                    return unexpected(where + ": DROP / STRIPE before the end of the list");
                }
                step.kind =
                    ds.kind() == v1::DpPolicyStep::DROP ? Step::Kind::kDrop : Step::Kind::kStripe;
            } else {
                return unexpected(where + ": unknown step kind");
            }
            rule.preference.push_back(step);
        }
        if (rule.preference.empty()) {
            return unexpected(where + ": empty preference list");
        }
        prof.rules.push_back(std::move(rule));
    }
    out.profiles.push_back(std::move(prof));  // order as sent: no re-sorting
    return out;
}

}  // namespace hag::policy
