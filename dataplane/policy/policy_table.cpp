#include "policy/policy_table.hpp"

#include <fmt/format.h>
#include <rte_errno.h>

#include "hag/v1/policy_dp.hpp"

namespace hag::dp {

namespace {

// The ACL fields, in PolicyKey's layout. rte_acl reads four bytes per input index; the first
// field must be one byte long.
enum Field : std::uint8_t {
    kFProto,
    kFDscp,
    kFLocal0,  // 4 x 32 bits
    kFRemote0 = kFLocal0 + 4,
    kFLocalPort = kFRemote0 + 4,
    kFRemotePort,
    kFSpi,
    kNumFields
};

RTE_ACL_RULE_DEF(AclRule, kNumFields);

rte_acl_config acl_config() {
    rte_acl_config c{};
    c.num_categories = 1;
    c.num_fields = kNumFields;
    auto def = [&](std::uint8_t f, std::uint8_t type, std::uint8_t size, std::uint8_t input,
                   std::uint32_t off) {
        c.defs[f] = rte_acl_field_def{type, size, f, input, off};
    };
    def(kFProto, RTE_ACL_FIELD_TYPE_BITMASK, 1, 0, offsetof(PolicyKey, proto));
    def(kFDscp, RTE_ACL_FIELD_TYPE_RANGE, 4, 1, offsetof(PolicyKey, dscp));
    for (std::uint8_t k = 0; k < 4; ++k) {
        def(static_cast<std::uint8_t>(kFLocal0 + k), RTE_ACL_FIELD_TYPE_MASK, 4,
            static_cast<std::uint8_t>(2 + k), offsetof(PolicyKey, local) + 4u * k);
        def(static_cast<std::uint8_t>(kFRemote0 + k), RTE_ACL_FIELD_TYPE_MASK, 4,
            static_cast<std::uint8_t>(6 + k), offsetof(PolicyKey, remote) + 4u * k);
    }
    def(kFLocalPort, RTE_ACL_FIELD_TYPE_RANGE, 2, 10, offsetof(PolicyKey, local_port));
    def(kFRemotePort, RTE_ACL_FIELD_TYPE_RANGE, 2, 10, offsetof(PolicyKey, remote_port));
    def(kFSpi, RTE_ACL_FIELD_TYPE_MASK, 4, 11, offsetof(PolicyKey, spi));
    return c;
}

// A 128-bit prefix into four 32-bit mask fields (values in host order, as rte_acl wants them).
void set_prefix(AclRule& r, unsigned first, const net::Ipv6Prefix& p) {
    for (unsigned k = 0; k < 4; ++k) {
        const auto* b = p.address.data() + 4 * k;
        const std::uint32_t v =
            std::uint32_t{b[0]} << 24 | std::uint32_t{b[1]} << 16 | std::uint32_t{b[2]} << 8 | b[3];
        const int len = std::clamp(static_cast<int>(p.length) - 32 * static_cast<int>(k), 0, 32);
        r.field[first + k].value.u32 = len == 0 ? 0 : v;
        r.field[first + k].mask_range.u32 = static_cast<std::uint32_t>(len);
    }
}

struct U16Range {
    std::uint16_t first, last;
};

std::vector<U16Range> port_ranges(const std::vector<policy::PortRange>& in) {
    std::vector<U16Range> out;
    for (const auto& r : in) {
        out.push_back({r.first, r.last});
    }
    if (out.empty()) {
        out.push_back({0, 65535});
    }
    return out;
}

// DSCP code points as runs of consecutive values.
std::vector<U16Range> dscp_runs(std::vector<std::uint8_t> d) {
    std::vector<U16Range> out;
    if (d.empty()) {
        out.push_back({0, 63});
        return out;
    }
    std::sort(d.begin(), d.end());
    for (std::uint8_t v : d) {
        if (!out.empty() && (out.back().last == v || out.back().last + 1 == v)) {
            out.back().last = v;
        } else {
            out.push_back({v, v});
        }
    }
    return out;
}

std::atomic<std::uint32_t> acl_serial{0};

}  // namespace

CompiledProfile::~CompiledProfile() {
    if (acl != nullptr) {
        rte_acl_free(acl);
    }
}

Result<std::unique_ptr<CompiledProfile>, std::string> compile_profile(
    const v1::DpPolicyProfile& dp) {
    auto model = policy::from_dp_profile(dp);
    if (!model) {
        return unexpected(model.error());
    }
    const policy::Policy& pol = *model;
    const policy::Profile& prof = pol.profiles.at(0);
    auto out = std::make_unique<CompiledProfile>();
    out->name = prof.name;
    out->drop_forbidden_uplink = dp.drop_forbidden_uplink();
    out->counters =
        std::make_unique<PolicyRuleCounters[]>(std::max<std::size_t>(1, prof.rules.size()));

    std::vector<AclRule> acl;
    const auto n_rules = static_cast<std::int32_t>(prof.rules.size());
    for (std::int32_t ri = 0; ri < n_rules; ++ri) {
        const policy::Rule& rule = prof.rules[static_cast<std::size_t>(ri)];
        PolicyRule pr;
        for (const policy::Step& s : rule.preference) {
            if (s.kind == policy::Step::Kind::kAccess) {
                if (pr.n_steps == kMaxPolicySteps) {
                    return unexpected(fmt::format("profile {} rule {}: more than {} accesses",
                                                  prof.name, ri + 1, kMaxPolicySteps));
                }
                const policy::Label& l = pol.labels.at(s.label);
                PolicyStep& st = pr.steps[pr.n_steps++];
                st.has_if_label = l.if_label.has_value();
                st.if_label = l.if_label.value_or(0);
                st.has_access_technology = l.access_technology.has_value();
                st.access_technology = l.access_technology.value_or(0);
            } else {
                pr.terminal = s.kind == policy::Step::Kind::kDrop ? PolicyTerminal::kDrop
                                                                  : PolicyTerminal::kStripe;
            }
        }
        out->rules.push_back(pr);
        const policy::Application& app = pol.applications.at(rule.application);
        out->applications.push_back(app.name);
        for (const policy::Classifier& c : app.any_of) {
            const auto lp = port_ranges(c.local_ports);
            const auto rp = port_ranges(c.remote_ports);
            const auto ds = dscp_runs(c.dscp);
            const std::vector<net::Ipv6Prefix> any{net::Ipv6Prefix{}};
            const auto& lx = c.local_prefixes.empty() ? any : c.local_prefixes;
            const auto& rx = c.remote_prefixes.empty() ? any : c.remote_prefixes;
            const std::uint64_t n =
                std::uint64_t{lp.size()} * rp.size() * ds.size() * lx.size() * rx.size();
            if (acl.size() + n > kMaxAclRules) {
                return unexpected(fmt::format(
                    "profile {}: the classifiers expand to more than {} ACL rules (port lists x "
                    "prefix lists x DSCP runs)",
                    prof.name, kMaxAclRules));
            }
            for (const auto& l : lp) {
                for (const auto& r : rp) {
                    for (const auto& d : ds) {
                        for (const auto& la : lx) {
                            for (const auto& ra : rx) {
                                AclRule a{};
                                // First match wins: earlier rules get higher priorities.
                                a.data.priority = n_rules - ri;
                                a.data.category_mask = 1;
                                a.data.userdata = static_cast<std::uint32_t>(ri + 1);
                                a.field[kFProto].value.u8 = c.protocol.value_or(0);
                                a.field[kFProto].mask_range.u8 = c.protocol ? 0xff : 0;
                                a.field[kFDscp].value.u32 = d.first;
                                a.field[kFDscp].mask_range.u32 = d.last;
                                set_prefix(a, kFLocal0, la);
                                set_prefix(a, kFRemote0, ra);
                                a.field[kFLocalPort].value.u16 = l.first;
                                a.field[kFLocalPort].mask_range.u16 = l.last;
                                a.field[kFRemotePort].value.u16 = r.first;
                                a.field[kFRemotePort].mask_range.u16 = r.last;
                                a.field[kFSpi].value.u32 = c.spi.value_or(0);
                                a.field[kFSpi].mask_range.u32 = c.spi ? 32 : 0;
                                acl.push_back(a);
                            }
                        }
                    }
                }
            }
        }
    }
    out->acl_rules = static_cast<std::uint32_t>(acl.size());
    if (acl.empty()) {
        return out;  // nothing can match: every packet is striped
    }
    const std::string name = fmt::format("hagpol{}", acl_serial.fetch_add(1));
    rte_acl_param param{};
    param.name = name.c_str();
    param.socket_id = SOCKET_ID_ANY;
    param.rule_size = RTE_ACL_RULE_SZ(kNumFields);
    param.max_rule_num = static_cast<std::uint32_t>(acl.size());
    out->acl = rte_acl_create(&param);
    if (out->acl == nullptr) {
        return unexpected(
            fmt::format("profile {}: rte_acl_create: {}", prof.name, rte_strerror(rte_errno)));
    }
    if (int rc = rte_acl_add_rules(out->acl, reinterpret_cast<const rte_acl_rule*>(acl.data()),
                                   static_cast<std::uint32_t>(acl.size()));
        rc != 0) {
        return unexpected(
            fmt::format("profile {}: rte_acl_add_rules: {}", prof.name, rte_strerror(-rc)));
    }
    const rte_acl_config cfg = acl_config();
    if (int rc = rte_acl_build(out->acl, &cfg); rc != 0) {
        return unexpected(
            fmt::format("profile {}: rte_acl_build: {}", prof.name, rte_strerror(-rc)));
    }
    return out;
}

PolicyTable::PolicyTable(Rcu& rcu)
    : rcu_(rcu),
      slots_(std::make_unique<std::atomic<const CompiledProfile*>[]>(kMaxPolicyProfiles)) {
    for (std::uint16_t i = 0; i < kMaxPolicyProfiles; ++i) {
        slots_[i].store(nullptr, std::memory_order_relaxed);
    }
}

PolicyTable::~PolicyTable() = default;

std::uint16_t PolicyTable::find(const std::string& name) const noexcept {
    const auto it = by_name_.find(name);
    return it == by_name_.end() ? 0 : it->second;
}

Result<std::pair<std::uint16_t, std::unique_ptr<CompiledProfile>>, std::string>
PolicyTable::publish(std::unique_ptr<CompiledProfile> p) {
    std::uint16_t slot = find(p->name);
    if (slot == 0) {
        for (std::uint16_t i = 1; i < kMaxPolicyProfiles; ++i) {
            if (owned_.count(i) == 0) {
                slot = i;
                break;
            }
        }
        if (slot == 0) {
            return unexpected(fmt::format("no room for profile {}: {} profiles at most", p->name,
                                          kMaxPolicyProfiles - 1));
        }
        by_name_.emplace(p->name, slot);
    }
    std::unique_ptr<CompiledProfile> old;
    if (auto it = owned_.find(slot); it != owned_.end()) {
        old = std::move(it->second);
    }
    slots_[slot].store(p.get(), std::memory_order_release);
    owned_[slot] = std::move(p);
    return std::pair{slot, std::move(old)};
}

void PolicyTable::restore(std::uint16_t slot, std::unique_ptr<CompiledProfile> old) {
    auto it = owned_.find(slot);
    if (it == owned_.end()) {
        return;
    }
    std::unique_ptr<CompiledProfile> cur = std::move(it->second);
    if (old) {
        slots_[slot].store(old.get(), std::memory_order_release);
        it->second = std::move(old);
    } else {
        slots_[slot].store(nullptr, std::memory_order_release);
        by_name_.erase(cur->name);
        owned_.erase(it);
    }
    retire(std::move(cur));
}

void PolicyTable::retire(std::unique_ptr<CompiledProfile> old) {
    if (old) {
        std::shared_ptr<CompiledProfile> keep(std::move(old));
        rcu_.defer([keep]() mutable { keep.reset(); });
    }
}

void PolicyTable::remove(const std::string& name) {
    const std::uint16_t slot = find(name);
    if (slot == 0) {
        return;
    }
    slots_[slot].store(nullptr, std::memory_order_release);
    by_name_.erase(name);
    auto it = owned_.find(slot);
    retire(std::move(it->second));
    owned_.erase(it);
}

}  // namespace hag::dp
