#include "config.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <set>

#include "cluster_record.hpp"
#include "dmnp.hpp"
#include "hag/esp/esp.hpp"
#include "hag/log/log.hpp"
#include "hag/v1/policy_config.hpp"

namespace hag::control {

Result<Prefix, std::string> parse_prefix(std::string_view text) {
    const auto slash = text.find('/');
    if (slash == std::string_view::npos) {
        return unexpected(fmt::format("'{}' is not a prefix (expected address/length)", text));
    }
    const std::string addr(text.substr(0, slash));
    const std::string_view len_text = text.substr(slash + 1);
    Prefix p;
    if (inet_pton(AF_INET6, addr.c_str(), p.addr.data()) != 1) {
        return unexpected(fmt::format("'{}' is not an IPv6 address", addr));
    }
    unsigned len = 0;
    auto [ptr, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
    if (ec != std::errc() || ptr != len_text.data() + len_text.size() || len_text.empty() ||
        len > 128) {
        return unexpected(fmt::format("'{}' is not a prefix length (0-128)", len_text));
    }
    p.length = static_cast<std::uint8_t>(len);
    if (!host_bits_clear(p.addr, len)) {
        return unexpected(fmt::format("'{}' has bits set past the prefix length", text));
    }
    return p;
}

Result<CareOfAddress, std::string> parse_address(std::string_view text) {
    const std::string s(text);
    CareOfAddress a;
    if (inet_pton(AF_INET6, s.c_str(), a.addr.data()) == 1) {
        return a;
    }
    std::array<std::uint8_t, 4> v4{};
    if (inet_pton(AF_INET, s.c_str(), v4.data()) == 1) {
        return CareOfAddress::from_ipv4(v4);
    }
    return unexpected(fmt::format("'{}' is not an IPv4 or IPv6 address", text));
}

Result<Prefix, std::string> parse_ipv4_prefix(std::string_view text, bool bare_is_host) {
    const auto slash = text.find('/');
    if (slash == std::string_view::npos && !bare_is_host) {
        return unexpected(
            fmt::format("'{}' is not an IPv4 prefix (expected a.b.c.d/length)", text));
    }
    const std::string addr(text.substr(0, slash));
    std::array<std::uint8_t, 4> v4{};
    if (inet_pton(AF_INET, addr.c_str(), v4.data()) != 1) {
        return unexpected(fmt::format("'{}' is not an IPv4 address", addr));
    }
    unsigned len = 32;
    if (slash != std::string_view::npos) {
        const std::string_view len_text = text.substr(slash + 1);
        auto [ptr, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
        if (ec != std::errc() || ptr != len_text.data() + len_text.size() || len_text.empty() ||
            len > 32) {
            return unexpected(fmt::format("'{}' is not an IPv4 prefix length (0-32)", len_text));
        }
    }
    Prefix p;
    p.addr = CareOfAddress::from_ipv4(v4).addr;
    p.length = static_cast<std::uint8_t>(96 + len);
    if (!host_bits_clear(p.addr, p.length)) {
        return unexpected(fmt::format("'{}' has bits set past the prefix length", text));
    }
    return p;
}

bool is_ipv4_prefix(const Prefix& p) noexcept {
    return p.length >= 96 && CareOfAddress{p.addr}.is_ipv4();
}

Result<CareOfAddress, std::string> ipv4_pool_router(const v1::Ipv4Pool& pool) {
    if (!pool.default_router().empty()) {
        auto a = parse_address(pool.default_router());
        if (!a || !a->is_ipv4()) {
            return unexpected(fmt::format("'{}' is not an IPv4 address", pool.default_router()));
        }
        return *a;
    }
    auto p = parse_ipv4_prefix(pool.prefix());
    if (!p) {
        return unexpected(p.error());
    }
    if (p->length > 126) {
        return unexpected(fmt::format("{} has no address for a router", pool.prefix()));
    }
    CareOfAddress a{p->addr};
    a.addr[15] = static_cast<std::uint8_t>(a.addr[15] + 1);  // bits past the length are zero
    return a;
}

namespace {

// Two prefixes overlap when one contains the other: their first min(length) bits agree.
bool prefixes_overlap(const Prefix& a, const Prefix& b) {
    const unsigned common = std::min(a.length, b.length);
    for (unsigned bit = 0; bit < common; ++bit) {
        if (((a.addr[bit / 8] ^ b.addr[bit / 8]) >> (7 - bit % 8)) & 1u) {
            return false;
        }
    }
    return true;
}

}  // namespace

void check_policy_profile(const v1::PolicyConfig& policy, const v1::SubscriberProfile& prof,
                          const config::ParseInfoTree* tree, const config::Reporter& at,
                          std::string_view where) {
    if (prof.policy_profile().empty()) {
        return;
    }
    for (const auto& pp : policy.profiles()) {
        if (pp.name() == prof.policy_profile()) {
            return;
        }
    }
    at.at(tree, prof, "policy_profile", -1,
          fmt::format("{}.policy_profile: no profile '{}' in policy.profiles", where,
                      prof.policy_profile()));
}

std::vector<std::string> check_policy(const v1::ControlConfig& part) {
    config::Errors errors;
    const config::Reporter at("policy", errors);
    (void)policy::compile_policy(part.policy(), nullptr, at);
    check_policy_profile(part.policy(), part.default_profile(), nullptr, at, "default_profile");
    for (const auto& sub : part.subscribers()) {
        check_policy_profile(part.policy(), sub.profile(), nullptr, at,
                             fmt::format("subscriber '{}' profile", sub.nai()));
    }
    std::vector<std::string> out;
    out.reserve(errors.size());
    for (auto& e : errors) {
        out.push_back(std::move(e.message));
    }
    return out;
}

namespace {

void validate(v1::ControlConfig& cfg, const config::ParseInfoTree* tree,
              const config::Reporter& at) {
    if (cfg.lma_addresses().empty()) {
        at.file("lma_addresses: at least one address is required");
    }
    for (int i = 0; i < cfg.lma_addresses_size(); ++i) {
        if (auto a = parse_address(cfg.lma_addresses(i)); !a) {
            at.at(tree, cfg, "lma_addresses", i, "lma_addresses: " + a.error());
        }
    }
    std::vector<std::pair<Prefix, std::string>> pools;
    for (int i = 0; i < cfg.hnp_pools_size(); ++i) {
        const auto& pool = cfg.hnp_pools(i);
        const auto* t = config::Reporter::nested(tree, cfg, "hnp_pools", i);
        auto p = parse_prefix(pool.prefix());
        if (!p) {
            at.at(t, pool, "prefix", -1, "hnp_pools.prefix: " + p.error());
            continue;
        }
        if (pool.name().empty()) {
            at.at(tree, cfg, "hnp_pools", i, "hnp_pools: a pool needs a name");
        }
        if (pool.assign_length() <= p->length || pool.assign_length() > 128 ||
            pool.assign_length() - p->length > 32) {
            at.at(t, pool, "assign_length", -1,
                  fmt::format("hnp_pools.assign_length: {} must be longer than the pool's /{} "
                              "by 1 to 32 bits",
                              pool.assign_length(), p->length));
        }
        for (const auto& [other, name] : pools) {
            if (prefixes_overlap(other, *p)) {
                at.at(t, pool, "prefix", -1,
                      fmt::format("hnp_pools.prefix: {} overlaps pool '{}'", pool.prefix(), name));
            }
            if (name == pool.name()) {
                at.at(t, pool, "name", -1, fmt::format("hnp_pools.name: '{}' used twice", name));
            }
        }
        if (is_ipv4_prefix(*p)) {
            at.at(t, pool, "prefix", -1,
                  fmt::format("hnp_pools.prefix: {} is IPv4-mapped; IPv4 home addresses come "
                              "from ipv4_pools",
                              pool.prefix()));
        }
        pools.emplace_back(*p, pool.name());
    }
    std::vector<std::pair<Prefix, std::string>> v4pools;
    for (int i = 0; i < cfg.ipv4_pools_size(); ++i) {
        const auto& pool = cfg.ipv4_pools(i);
        const auto* t = config::Reporter::nested(tree, cfg, "ipv4_pools", i);
        auto p = parse_ipv4_prefix(pool.prefix());
        if (!p) {
            at.at(t, pool, "prefix", -1, "ipv4_pools.prefix: " + p.error());
            continue;
        }
        if (pool.name().empty()) {
            at.at(tree, cfg, "ipv4_pools", i, "ipv4_pools: a pool needs a name");
        }
        const unsigned plen = p->length - 96u;
        const unsigned alen = pool.assign_length() == 0 ? 32 : pool.assign_length();
        if (alen <= plen || alen > 32 || alen - plen > 24) {
            at.at(t, pool, "assign_length", -1,
                  fmt::format("ipv4_pools.assign_length: {} must be longer than the pool's /{} "
                              "by 1 to 24 bits (at most 32)",
                              alen, plen));
        }
        if (auto r = ipv4_pool_router(pool); !r) {
            at.at(t, pool, pool.default_router().empty() ? "prefix" : "default_router", -1,
                  "ipv4_pools.default_router: " + r.error());
        }
        for (const auto& [other, name] : v4pools) {
            if (prefixes_overlap(other, *p)) {
                at.at(t, pool, "prefix", -1,
                      fmt::format("ipv4_pools.prefix: {} overlaps pool '{}'", pool.prefix(), name));
            }
        }
        for (const auto& [other, name] : pools) {
            if (name == pool.name()) {
                at.at(t, pool, "name", -1,
                      fmt::format("ipv4_pools.name: '{}' is also a hnp_pools name", name));
            }
        }
        for (const auto& [other, name] : v4pools) {
            if (name == pool.name()) {
                at.at(t, pool, "name", -1, fmt::format("ipv4_pools.name: '{}' used twice", name));
            }
        }
        v4pools.emplace_back(*p, pool.name());
        if (pool.assign_length() == 0) {
            cfg.mutable_ipv4_pools(i)->set_assign_length(32);
        }
    }
    // Delegated prefix pools (RFC 7148): IPv6 or IPv4, apart from each other, the HNP pools and
    // the IPv4 home address pools.
    std::vector<std::pair<Prefix, std::string>> dpools;  // IPv4 as mapped
    std::vector<bool> dpool_v4;
    for (int i = 0; i < cfg.dmnp_pools_size(); ++i) {
        const auto& pool = cfg.dmnp_pools(i);
        const auto* t = config::Reporter::nested(tree, cfg, "dmnp_pools", i);
        auto p = parse_prefix_any(pool.prefix());
        if (!p) {
            at.at(t, pool, "prefix", -1, "dmnp_pools.prefix: " + p.error());
            continue;
        }
        if (pool.name().empty()) {
            at.at(tree, cfg, "dmnp_pools", i, "dmnp_pools: a pool needs a name");
        }
        const bool v4 = prefix_is_ipv4(*p);
        const unsigned bits = v4 ? 32 : 128, len = v4 ? p->length - 96u : p->length;
        if (pool.assign_length() <= len || pool.assign_length() > bits ||
            pool.assign_length() - len > 32) {
            at.at(t, pool, "assign_length", -1,
                  fmt::format("dmnp_pools.assign_length: {} must be longer than the pool's /{} "
                              "by 1 to 32 bits (at most {})",
                              pool.assign_length(), len, bits));
        }
        for (const auto* list : {&pools, &v4pools, &dpools}) {
            for (const auto& [other, name] : *list) {
                if (prefixes_overlap(other, *p)) {
                    at.at(t, pool, "prefix", -1,
                          fmt::format("dmnp_pools.prefix: {} overlaps pool '{}'", pool.prefix(),
                                      name));
                }
            }
        }
        for (const auto& [other, name] : dpools) {
            if (name == pool.name()) {
                at.at(t, pool, "name", -1, fmt::format("dmnp_pools.name: '{}' used twice", name));
            }
        }
        dpools.emplace_back(*p, pool.name());
        dpool_v4.push_back(v4);
    }
    auto check_profile = [&](const v1::SubscriberProfile& prof, const config::ParseInfoTree* t,
                             const char* where) {
        if (prof.has_hnp_pool()) {
            bool found = false;
            for (const auto& [pfx, name] : pools) {
                found = found || name == prof.hnp_pool();
            }
            if (!found) {
                at.at(t, prof, "hnp_pool", -1,
                      fmt::format("{}.hnp_pool: no pool named '{}'", where, prof.hnp_pool()));
            }
        }
        if (prof.has_ipv4_pool()) {
            bool found = false;
            for (const auto& [pfx, name] : v4pools) {
                found = found || name == prof.ipv4_pool();
            }
            if (!found) {
                at.at(
                    t, prof, "ipv4_pool", -1,
                    fmt::format("{}.ipv4_pool: no IPv4 pool named '{}'", where, prof.ipv4_pool()));
            }
        }
        for (const bool v4 : {false, true}) {
            const bool has = v4 ? prof.has_dmnp_pool_ipv4() : prof.has_dmnp_pool();
            const std::string& want = v4 ? prof.dmnp_pool_ipv4() : prof.dmnp_pool();
            const char* field = v4 ? "dmnp_pool_ipv4" : "dmnp_pool";
            if (!has || want.empty()) {
                continue;
            }
            bool found = false, family = false;
            for (std::size_t k = 0; k < dpools.size(); ++k) {
                if (dpools[k].second == want) {
                    found = true;
                    family = dpool_v4[k] == v4;
                }
            }
            if (!found || !family) {
                at.at(t, prof, field, -1,
                      fmt::format("{}.{}: {} '{}'", where, field,
                                  found ? (v4 ? "not an IPv4 dmnp_pools entry:"
                                              : "not an IPv6 dmnp_pools entry:")
                                        : "no dmnp_pools entry named",
                                  want));
            }
        }
        for (int k = 0; k < prof.access_weights_size(); ++k) {
            const auto& w = prof.access_weights(k);
            if (w.access_technology() > 255 || w.if_label() > 255) {
                at.at(t, prof, "access_weights", k,
                      fmt::format("{}.access_weights: access_technology and if_label are 0-255",
                                  where));
            }
        }
        check_policy_profile(cfg.policy(), prof, t, at, where);
        if (prof.has_striping() && !v1::StripingMode_IsValid(prof.striping())) {
            at.at(t, prof, "striping", -1,
                  fmt::format("{}.striping: {} is not a striping mode (STRIPING_WEIGHTED, "
                              "STRIPING_OVERFLOW)",
                              where, static_cast<int>(prof.striping())));
        }
        if (prof.overflow_burst_bytes() > (16u << 20)) {
            at.at(t, prof, "overflow_burst_bytes", -1,
                  fmt::format("{}.overflow_burst_bytes: {} is above 16777216", where,
                              prof.overflow_burst_bytes()));
        }
        if (prof.primary_access_technology() > 255) {
            at.at(t, prof, "primary_access_technology", -1,
                  fmt::format("{}.primary_access_technology: {} is not within 0-255", where,
                              prof.primary_access_technology()));
        }
        if (prof.has_max_paths() && (prof.max_paths() == 0 || prof.max_paths() > 16)) {
            at.at(t, prof, "max_paths", -1,
                  fmt::format("{}.max_paths: {} is not within 1-16", where, prof.max_paths()));
        }
        if (prof.has_max_lifetime_seconds() &&
            (prof.max_lifetime_seconds() < 4 || prof.max_lifetime_seconds() > 65535u * 4)) {
            at.at(t, prof, "max_lifetime_seconds", -1,
                  fmt::format("{}.max_lifetime_seconds: {} is not within 4-262140", where,
                              prof.max_lifetime_seconds()));
        }
    };
    (void)policy::compile_policy(cfg.policy(), config::Reporter::nested(tree, cfg, "policy", -1),
                                 at);
    check_profile(cfg.default_profile(), config::Reporter::nested(tree, cfg, "default_profile", -1),
                  "default_profile");
    for (int i = 0; i < cfg.subscribers_size(); ++i) {
        const auto& sub = cfg.subscribers(i);
        const auto* t = config::Reporter::nested(tree, cfg, "subscribers", i);
        if (sub.nai().empty()) {
            at.at(tree, cfg, "subscribers", i, "subscribers: nai is required");
        }
        for (int j = 0; j < i; ++j) {
            if (cfg.subscribers(j).nai() == sub.nai() && !sub.nai().empty()) {
                at.at(t, sub, "nai", -1,
                      fmt::format("subscribers.nai: '{}' listed twice", sub.nai()));
            }
        }
        for (int j = 0; j < sub.home_prefixes_size(); ++j) {
            if (auto p = parse_prefix(sub.home_prefixes(j)); !p) {
                at.at(t, sub, "home_prefixes", j, "subscribers.home_prefixes: " + p.error());
            }
        }
        if (const std::size_t n = static_cast<std::size_t>(sub.home_prefixes_size()) +
                                  (sub.ipv4_home_address().empty() ? 0 : 1);
            n > kMaxSessionPrefixes) {
            at.at(t, sub, "home_prefixes", sub.home_prefixes_size() - 1,
                  fmt::format("subscribers.home_prefixes: {} prefixes (with the IPv4 home "
                              "address); the data plane routes at most {} per session",
                              n, kMaxSessionPrefixes));
        }
        if (!sub.ipv4_home_address().empty()) {
            if (auto p = parse_ipv4_prefix(sub.ipv4_home_address(), true); !p) {
                at.at(t, sub, "ipv4_home_address", -1,
                      "subscribers.ipv4_home_address: " + p.error());
            }
        }
        for (int j = 0; j < sub.delegated_prefixes_size(); ++j) {
            if (auto p = parse_prefix_any(sub.delegated_prefixes(j)); !p) {
                at.at(t, sub, "delegated_prefixes", j,
                      "subscribers.delegated_prefixes: " + p.error());
            }
        }
        check_profile(sub.profile(), config::Reporter::nested(t, sub, "profile", -1),
                      "subscribers.profile");
    }
    for (int i = 0; i < cfg.mags_size(); ++i) {
        const auto& mag = cfg.mags(i);
        const auto* t = config::Reporter::nested(tree, cfg, "mags", i);
        if (mag.mag_id().empty()) {
            at.at(tree, cfg, "mags", i, "mags: mag_id is required");
        }
        for (int j = 0; j < mag.source_addresses_size(); ++j) {
            if (auto a = parse_address(mag.source_addresses(j)); !a) {
                at.at(t, mag, "source_addresses", j, "mags.source_addresses: " + a.error());
            }
        }
        for (int j = 0; j < mag.allowed_prefixes_size(); ++j) {
            if (auto p = parse_prefix(mag.allowed_prefixes(j)); !p) {
                at.at(t, mag, "allowed_prefixes", j, "mags.allowed_prefixes: " + p.error());
            }
        }
    }
    {
        const auto* et = config::Reporter::nested(tree, cfg, "esp", -1);
        std::vector<std::uint32_t> spis;
        for (int i = 0; i < cfg.esp().peers_size(); ++i) {
            const auto& p = cfg.esp().peers(i);
            const auto* t = config::Reporter::nested(et, cfg.esp(), "peers", i);
            auto a = parse_address(p.address());
            if (!a || a->is_ipv4()) {
                at.at(t, p, "address", -1,
                      fmt::format("esp.peers.address: '{}' is not an IPv6 address (ESP covers the "
                                  "raw MH signalling only)",
                                  p.address()));
            }
            for (const auto& [field, spi] :
                 {std::pair{"spi_in", p.spi_in()}, std::pair{"spi_out", p.spi_out()}}) {
                if (spi < 256) {
                    at.at(t, p, field, -1,
                          fmt::format("esp.peers.{}: {} is reserved (RFC 4303: use 256 or more)",
                                      field, spi));
                }
            }
            if (std::find(spis.begin(), spis.end(), p.spi_in()) != spis.end()) {
                at.at(t, p, "spi_in", -1,
                      fmt::format("esp.peers.spi_in: {} is used by another peer", p.spi_in()));
            }
            spis.push_back(p.spi_in());
            for (const auto& [field, key] :
                 {std::pair{"key_in", &p.key_in()}, std::pair{"key_out", &p.key_out()}}) {
                if (auto k = esp::parse_key(*key); !k) {
                    at.at(t, p, field, -1, fmt::format("esp.peers.{}: {}", field, k.error()));
                }
            }
        }
    }
    if (cfg.revocation_retries() > 10) {
        at.file(fmt::format("revocation_retries: {} is not within 0-10", cfg.revocation_retries()));
    }
    if (const std::string& dp = cfg.dataplane_socket(); !dp.empty()) {
        const bool unix_path =
            dp.front() == '/' || (dp.rfind("unix:", 0) == 0 && dp.size() > 6 && dp[5] == '/');
        const auto colon = dp.rfind(':');
        bool host_port = false;
        if (!unix_path && dp.rfind("unix:", 0) != 0 && colon != std::string::npos && colon > 0 &&
            colon + 1 < dp.size()) {
            unsigned port = 0;
            const char* b = dp.data() + colon + 1;
            auto [ptr, ec] = std::from_chars(b, dp.data() + dp.size(), port);
            host_port =
                ec == std::errc() && ptr == dp.data() + dp.size() && port > 0 && port <= 65535;
        }
        if (!unix_path && !host_port) {
            at.at(tree, cfg, "dataplane_socket", -1,
                  fmt::format("dataplane_socket: '{}' is not unix:/absolute/path, /absolute/path "
                              "or host:port",
                              dp));
        }
    }
    for (int i = 0; i < cfg.path_mtus_size(); ++i) {
        const auto& m = cfg.path_mtus(i);
        const auto* t = config::Reporter::nested(tree, cfg, "path_mtus", i);
        if (m.access_technology() > 255 || m.if_label() > 255) {
            at.at(t, m, m.access_technology() > 255 ? "access_technology" : "if_label", -1,
                  "path_mtus: access_technology and if_label are 0-255");
        }
        if (m.mtu() < 1280 || m.mtu() > 9216) {
            at.at(t, m, "mtu", -1,
                  fmt::format("path_mtus.mtu: {} is not within 1280-9216", m.mtu()));
        }
    }
    if (cfg.has_nat_refresh_seconds() &&
        (cfg.nat_refresh_seconds() == 0 || cfg.nat_refresh_seconds() > 3600)) {
        at.at(
            tree, cfg, "nat_refresh_seconds", -1,
            fmt::format("nat_refresh_seconds: {} is not within 1-3600", cfg.nat_refresh_seconds()));
    }
    if (cfg.dataplane_resync_hold_seconds() > 3600) {
        at.at(tree, cfg, "dataplane_resync_hold_seconds", -1,
              fmt::format("dataplane_resync_hold_seconds: {} is not within 0-3600",
                          cfg.dataplane_resync_hold_seconds()));
    }
    if (!cfg.state_fsync().empty() && cfg.state_fsync() != "always" &&
        cfg.state_fsync() != "none") {
        at.at(tree, cfg, "state_fsync", -1,
              fmt::format("state_fsync: '{}' is not always or none", cfg.state_fsync()));
    }
    {
        const auto& sc = cfg.store();
        const auto* st = config::Reporter::nested(tree, cfg, "store");
        const auto& b = sc.backend();
        if (!b.empty() && b != "embedded" && b != "etcd") {
            at.at(st, sc, "backend", -1,
                  fmt::format("store.backend: '{}' is not embedded or etcd", b));
        }
        if (b == "etcd") {
            if (sc.etcd_endpoints().empty()) {
                at.at(st, sc, "backend", -1,
                      "store.backend etcd: etcd_endpoints needs at least one host:port");
            }
            for (int i = 0; i < sc.etcd_endpoints_size(); ++i) {
                const auto& e = sc.etcd_endpoints(i);
                const auto colon = e.rfind(':');
                unsigned port = 0;
                bool ok = colon != std::string::npos && colon > 0 && colon + 1 < e.size() &&
                          e.find("://") == std::string::npos;
                if (ok) {
                    auto [ptr, ec] =
                        std::from_chars(e.data() + colon + 1, e.data() + e.size(), port);
                    ok = ec == std::errc() && ptr == e.data() + e.size() && port > 0 &&
                         port <= 65535;
                }
                if (!ok) {
                    at.at(st, sc, "etcd_endpoints", i,
                          fmt::format("store.etcd_endpoints: '{}' is not host:port", e));
                }
            }
            if (sc.distributed_anchoring()) {
                auto na = parse_address(sc.node_address());
                bool listed = false;
                for (const auto& a : cfg.lma_addresses()) {
                    auto la = parse_address(a);
                    listed = listed || (na && la && la->addr == na->addr);
                }
                if (!na || !listed) {
                    at.at(st, sc, "node_address", -1,
                          fmt::format("store.node_address: '{}' must be one of lma_addresses "
                                      "with distributed_anchoring",
                                      sc.node_address()));
                }
            }
            if (sc.node_lease_seconds() != 0 &&
                (sc.node_lease_seconds() < 3 || sc.node_lease_seconds() > 60)) {
                at.at(st, sc, "node_lease_seconds", -1,
                      fmt::format("store.node_lease_seconds: {} is not within 3-60",
                                  sc.node_lease_seconds()));
            }
            if (!sc.node_name().empty() && !store::valid_node_name(sc.node_name())) {
                at.at(st, sc, "node_name", -1,
                      fmt::format("store.node_name: '{}' is not 1-64 printable characters "
                                  "without spaces",
                                  sc.node_name()));
            }
            if (!sc.etcd_tls_cert().empty() != !sc.etcd_tls_key().empty()) {
                at.at(st, sc, "etcd_tls_cert", -1,
                      "store.etcd_tls_cert and etcd_tls_key: both or neither");
            }
            if (!sc.etcd_tls_cert().empty() && sc.etcd_tls_ca().empty()) {
                at.at(st, sc, "etcd_tls_ca", -1,
                      "store.etcd_tls_ca: needed with a client certificate");
            }
        }
        if (sc.policy_poll_ms() != 0 &&
            (sc.policy_poll_ms() < 100 || sc.policy_poll_ms() > 600000)) {
            at.at(st, sc, "policy_poll_ms", -1,
                  fmt::format("store.policy_poll_ms: {} is not within 100-600000",
                              sc.policy_poll_ms()));
        }
        if (sc.etcd_timeout_ms() > 60000) {
            at.at(st, sc, "etcd_timeout_ms", -1,
                  fmt::format("store.etcd_timeout_ms: {} is not within 1-60000",
                              sc.etcd_timeout_ms()));
        }
        if (sc.uplink_gre_key_min() != 0 && sc.uplink_gre_key_max() != 0 &&
            sc.uplink_gre_key_min() > sc.uplink_gre_key_max()) {
            at.at(st, sc, "uplink_gre_key_min", -1,
                  fmt::format("store.uplink_gre_key_min {} is above uplink_gre_key_max {}",
                              sc.uplink_gre_key_min(), sc.uplink_gre_key_max()));
        }
    }
    if (cfg.has_central_db() && cfg.central_db().role() != v1::CENTRAL_DB_OFF) {
        // Central mobility database mode (RFC 8885, docs/scale-out.md).
        const auto& cd = cfg.central_db();
        const auto* ct = config::Reporter::nested(tree, cfg, "central_db");
        if (cfg.store().backend() == "etcd" || cfg.store().distributed_anchoring()) {
            at.at(ct, cd, "role", -1,
                  "central_db: not with store.backend etcd or store.distributed_anchoring (the "
                  "CMD is the directory)");
        }
        if (cd.timeout_ms() != 0 && (cd.timeout_ms() < 100 || cd.timeout_ms() > 60000)) {
            at.at(
                ct, cd, "timeout_ms", -1,
                fmt::format("central_db.timeout_ms: {} is not within 100-60000", cd.timeout_ms()));
        }
        if (cd.role() == v1::CENTRAL_DB_MAAR) {
            if (!store::valid_node_name(cd.node_name())) {
                at.at(ct, cd, "node_name", -1,
                      fmt::format("central_db.node_name: '{}' is not 1-64 printable characters "
                                  "without spaces (needed by role CENTRAL_DB_MAAR)",
                                  cd.node_name()));
            }
            auto na = parse_address(cd.node_address());
            bool listed = false;
            for (const auto& a : cfg.lma_addresses()) {
                auto la = parse_address(a);
                listed = listed || (na && la && la->addr == na->addr);
            }
            if (!na || !listed || CareOfAddress{na->addr}.is_ipv4()) {
                at.at(ct, cd, "node_address", -1,
                      fmt::format("central_db.node_address: '{}' must be an IPv6 address of "
                                  "lma_addresses (role CENTRAL_DB_MAAR)",
                                  cd.node_address()));
            }
            auto ca = parse_address(cd.cmd_address());
            if (!ca || CareOfAddress{ca->addr}.is_ipv4() || (na && ca->addr == na->addr)) {
                at.at(ct, cd, "cmd_address", -1,
                      fmt::format("central_db.cmd_address: '{}' is not an IPv6 address other "
                                  "than node_address (role CENTRAL_DB_MAAR)",
                                  cd.cmd_address()));
            }
        } else if (cd.role() == v1::CENTRAL_DB_CMD) {
            if (cd.maars().empty()) {
                at.at(ct, cd, "role", -1,
                      "central_db.maars: role CENTRAL_DB_CMD needs at least one MAAR");
            }
            std::set<std::string> names, addrs;
            for (int i = 0; i < cd.maars_size(); ++i) {
                const auto& m = cd.maars(i);
                auto ma = parse_address(m.address());
                if (!store::valid_node_name(m.name()) || !names.insert(m.name()).second) {
                    at.at(ct, cd, "maars", i,
                          fmt::format("central_db.maars: name '{}' is not a valid node name or "
                                      "is listed twice",
                                      m.name()));
                }
                if (!ma || CareOfAddress{ma->addr}.is_ipv4() ||
                    !addrs.insert(std::string(ma->addr.begin(), ma->addr.end())).second) {
                    at.at(ct, cd, "maars", i,
                          fmt::format("central_db.maars: address '{}' of '{}' is not an IPv6 "
                                      "address or is listed twice",
                                      m.address(), m.name()));
                }
            }
        } else {
            at.at(ct, cd, "role", -1,
                  fmt::format("central_db.role: {} is not a known role",
                              static_cast<int>(cd.role())));
        }
    }
    if (!cfg.state_directory().empty() && cfg.state_directory().front() != '/') {
        at.at(tree, cfg, "state_directory", -1,
              fmt::format("state_directory: '{}' is not an absolute path", cfg.state_directory()));
    }
    {
        const int tls = (cfg.management_tls_cert().empty() ? 0 : 1) +
                        (cfg.management_tls_key().empty() ? 0 : 1) +
                        (cfg.management_tls_client_ca().empty() ? 0 : 1);
        if (tls != 0 && tls != 3) {
            at.file(
                "management_tls_cert, management_tls_key and management_tls_client_ca go together "
                "(all three or none)");
        }
    }
    {
        const auto& ha = cfg.home_agent();
        const auto* t = config::Reporter::nested(tree, cfg, "home_agent", -1);
        for (int i = 0; i < ha.discovery_addresses_size(); ++i) {
            auto a = parse_address(ha.discovery_addresses(i));
            if (!a || a->is_ipv4()) {
                at.at(t, ha, "discovery_addresses", i,
                      fmt::format("home_agent.discovery_addresses: '{}' is not an IPv6 address",
                                  ha.discovery_addresses(i)));
            }
        }
        if (!ha.enabled() && ha.discovery_addresses_size() > 0) {
            at.at(t, ha, "discovery_addresses", 0,
                  "home_agent.discovery_addresses: needs home_agent.enabled: true");
        }
    }
    if (cfg.hnp_pools().empty() && cfg.allow_unknown_subscribers()) {
        at.file("allow_unknown_subscribers needs at least one hnp_pools entry");
    }
    if (!cfg.log().level().empty()) {
        static const char* kLevels[] = {"trace", "debug",    "info", "warn",
                                        "error", "critical", "off"};
        bool ok = false;
        for (const char* l : kLevels) {
            ok = ok || cfg.log().level() == l;
        }
        if (!ok) {
            at.at(config::Reporter::nested(tree, cfg, "log", -1), cfg.log(), "level", -1,
                  fmt::format("log.level: '{}' is not trace, debug, info, warn, error, critical "
                              "or off",
                              cfg.log().level()));
        }
    }
    if (!cfg.log().format().empty()) {
        if (auto f = hag::log::parse_format(cfg.log().format()); !f) {
            at.at(config::Reporter::nested(tree, cfg, "log", -1), cfg.log(), "format", -1,
                  "log.format: " + f.error());
        }
    }

    // Defaults.
    auto* lim = cfg.mutable_limits();
    if (lim->max_sessions() == 0)
        lim->set_max_sessions(1'000'000);
    if (lim->per_mag_pbu_per_second() == 0)
        lim->set_per_mag_pbu_per_second(2000);
    if (lim->per_mag_pbu_burst() == 0)
        lim->set_per_mag_pbu_burst(static_cast<std::uint32_t>(
            std::min<std::uint64_t>(2ull * lim->per_mag_pbu_per_second(), UINT32_MAX)));
    if (lim->global_pbu_per_second() == 0)
        lim->set_global_pbu_per_second(20000);
    if (lim->global_pbu_burst() == 0)
        lim->set_global_pbu_burst(static_cast<std::uint32_t>(
            std::min<std::uint64_t>(2ull * lim->global_pbu_per_second(), UINT32_MAX)));
    if (cfg.management_socket().empty())
        cfg.set_management_socket("/run/hag/control.sock");
    if (cfg.management_socket_mode() == 0)
        cfg.set_management_socket_mode(0660);
    if (!cfg.has_heartbeat_interval_seconds())
        cfg.set_heartbeat_interval_seconds(30);
    if (cfg.heartbeat_missed_limit() == 0)
        cfg.set_heartbeat_missed_limit(3);
    if (!cfg.has_dataplane_resync_hold_seconds()) {
        const std::uint64_t hb = cfg.heartbeat_interval_seconds();
        const std::uint64_t hold = hb == 0 ? 90 : hb * cfg.heartbeat_missed_limit();
        cfg.set_dataplane_resync_hold_seconds(
            static_cast<std::uint32_t>(std::min<std::uint64_t>(hold, 3600)));
    }
    if (cfg.timestamp_window_ms() == 0)
        cfg.set_timestamp_window_ms(300);
    if (cfg.revocation_retries() == 0)
        cfg.set_revocation_retries(3);
    if (cfg.log().level().empty())
        cfg.mutable_log()->set_level("info");
    if (cfg.log().format().empty())
        cfg.mutable_log()->set_format("text");
    if (!cfg.has_persistence())
        cfg.set_persistence(true);
    if (!cfg.has_nat_detection())
        cfg.set_nat_detection(true);
    if (!cfg.has_nat_refresh_seconds())
        cfg.set_nat_refresh_seconds(30);
    if (cfg.state_directory().empty())
        cfg.set_state_directory("/var/lib/hag");
    if (cfg.state_fsync().empty())
        cfg.set_state_fsync("always");
    if (cfg.state_snapshot_interval_seconds() == 0)
        cfg.set_state_snapshot_interval_seconds(300);
    if (cfg.state_snapshot_log_bytes() == 0)
        cfg.set_state_snapshot_log_bytes(64ull << 20);
    auto* sc = cfg.mutable_store();
    if (sc->backend().empty())
        sc->set_backend("embedded");
    if (sc->etcd_prefix().empty())
        sc->set_etcd_prefix("/hag/");
    if (sc->etcd_timeout_ms() == 0)
        sc->set_etcd_timeout_ms(1000);
    if (sc->policy_poll_ms() == 0)
        sc->set_policy_poll_ms(2000);
    if (sc->node_lease_seconds() == 0)
        sc->set_node_lease_seconds(6);
    if (cfg.central_db().role() != v1::CENTRAL_DB_OFF && cfg.central_db().timeout_ms() == 0)
        cfg.mutable_central_db()->set_timeout_ms(3000);
    if (sc->node_name().empty() && sc->backend() == "etcd") {
        char host[256] = {};
        if (gethostname(host, sizeof host - 1) == 0 && store::valid_node_name(host)) {
            sc->set_node_name(host);
        } else {
            sc->set_node_name("hag");
        }
    }
}

}  // namespace

Result<v1::ControlConfig, ConfigErrors> parse_control_config(std::string_view text,
                                                             const std::string& file_name) {
    v1::ControlConfig cfg;
    config::ParseInfoTree tree;
    if (auto r = config::parse_text(text, file_name, cfg, tree); !r) {
        return unexpected(r.error());
    }
    ConfigErrors errors;
    validate(cfg, &tree, config::Reporter(file_name, errors));
    if (!errors.empty()) {
        return unexpected(std::move(errors));
    }
    return cfg;
}

Result<v1::ControlConfig, ConfigErrors> load_control_config(const std::string& path) {
    auto text = config::read_file(path);
    if (!text) {
        return unexpected(text.error());
    }
    return parse_control_config(*text, path);
}

SubscriberIndex::SubscriberIndex(const v1::ControlConfig& cfg) {
    by_nai_.reserve(static_cast<std::size_t>(cfg.subscribers_size()));
    for (const auto& s : cfg.subscribers()) {
        by_nai_.try_emplace(s.nai(), &s);  // the first listing wins, as validation requires
    }
}

const v1::Subscriber* SubscriberIndex::find(std::string_view nai) const {
    auto it = by_nai_.find(nai);
    return it == by_nai_.end() ? nullptr : it->second;
}

v1::SubscriberProfile effective_profile(const v1::ControlConfig& cfg, std::string_view nai) {
    const v1::Subscriber* sub = nullptr;
    for (const auto& s : cfg.subscribers()) {
        if (s.nai() == nai) {
            sub = &s;
            break;
        }
    }
    return effective_profile(cfg, sub);
}

v1::SubscriberProfile effective_profile(const v1::ControlConfig& cfg, const v1::Subscriber* sub) {
    v1::SubscriberProfile p;
    p.set_multipath(true);
    p.set_gre_key_required(false);
    p.set_max_paths(8);
    p.set_max_lifetime_seconds(3600);
    p.set_allow_requested_prefix(true);
    p.set_allow_requested_dmnp(true);
    p.set_striping(v1::STRIPING_WEIGHTED);
    p.set_overflow_burst_bytes(0);
    p.set_primary_access_technology(0);
    if (!cfg.hnp_pools().empty()) {
        p.set_hnp_pool(cfg.hnp_pools(0).name());
    }
    if (!cfg.ipv4_pools().empty()) {
        p.set_ipv4_pool(cfg.ipv4_pools(0).name());
    }
    p.MergeFrom(cfg.default_profile());
    if (sub != nullptr) {
        p.MergeFrom(sub->profile());
    }
    return p;
}

}  // namespace hag::control
