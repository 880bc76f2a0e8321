#include "dmnp.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "config.hpp"
#include "hag/net/address.hpp"

namespace hag::control {

namespace {

using mh::BaStatus;

constexpr std::uint8_t st(BaStatus s) noexcept {
    return static_cast<std::uint8_t>(s);
}

Prefix mapped_prefix(const std::array<std::uint8_t, 4>& v4, unsigned length) {
    return Prefix{net::ipv4_mapped(v4), static_cast<std::uint8_t>(96 + length)};
}

}  // namespace

bool prefix_is_ipv4(const Prefix& p) noexcept {
    return p.length >= 96 && net::is_ipv4_mapped(p.addr);
}

Result<Prefix, std::string> parse_prefix_any(std::string_view text) {
    const auto slash = text.find('/');
    if (slash != std::string_view::npos && text.substr(0, slash).find(':') == std::string::npos) {
        const std::string addr(text.substr(0, slash));
        const std::string_view len_text = text.substr(slash + 1);
        std::array<std::uint8_t, 4> v4{};
        if (inet_pton(AF_INET, addr.c_str(), v4.data()) != 1) {
            return unexpected(fmt::format("'{}' is not an IPv4 address", addr));
        }
        unsigned len = 0;
        auto [ptr, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
        if (ec != std::errc() || ptr != len_text.data() + len_text.size() || len_text.empty() ||
            len > 32) {
            return unexpected(fmt::format("'{}' is not an IPv4 prefix length (0-32)", len_text));
        }
        Prefix p = mapped_prefix(v4, len);
        if (!host_bits_clear(p.addr, p.length)) {
            return unexpected(fmt::format("'{}' has bits set past the prefix length", text));
        }
        return p;
    }
    return parse_prefix(text);
}

std::string prefix_text_any(const Prefix& p) {
    if (prefix_is_ipv4(p)) {
        return fmt::format("{}/{}", net::format(net::mapped_ipv4(p.addr)), p.length - 96);
    }
    return to_string(p);
}

std::optional<std::vector<DmnpRequest>> dmnp_requests(const mh::Options& opts) {
    std::vector<DmnpRequest> out;
    for (const auto* o : mh::find_options<mh::DelegatedMobileNetworkPrefix>(opts)) {
        DmnpRequest r;
        r.ipv4 = o->ipv4;
        const bool zero =
            std::all_of(o->prefix.begin(), o->prefix.end(), [](std::uint8_t b) { return b == 0; });
        if (!zero) {
            Prefix p;
            if (o->ipv4) {
                if (o->prefix.size() != 4 || o->prefix_length > 32) {
                    return std::nullopt;
                }
                p = mapped_prefix({o->prefix[0], o->prefix[1], o->prefix[2], o->prefix[3]},
                                  o->prefix_length);
            } else {
                if (o->prefix.size() != 16 || o->prefix_length > 128) {
                    return std::nullopt;
                }
                std::copy(o->prefix.begin(), o->prefix.end(), p.addr.begin());
                p.length = o->prefix_length;
                if (net::is_ipv4_mapped(p.addr)) {
                    return std::nullopt;  // an IPv4 prefix must say so with the V flag
                }
            }
            if (!host_bits_clear(p.addr, p.length) || (!o->ipv4 && p.length == 0)) {
                return std::nullopt;
            }
            r.specific = p;
        }
        out.push_back(r);
    }
    return out;
}

mh::DelegatedMobileNetworkPrefix to_option(const Prefix& p) {
    mh::DelegatedMobileNetworkPrefix o;
    if (prefix_is_ipv4(p)) {
        o.ipv4 = true;
        o.prefix_length = static_cast<std::uint8_t>(p.length - 96);
        o.prefix.assign(p.addr.begin() + 12, p.addr.end());
    } else {
        o.prefix_length = p.length;
        o.prefix.assign(p.addr.begin(), p.addr.end());
    }
    return o;
}

DmnpPools::DmnpPools(const v1::ControlConfig& cfg) {
    for (const auto& pc : cfg.dmnp_pools()) {
        auto p = parse_prefix_any(pc.prefix());
        if (!p) {
            continue;  // refused by the configuration check
        }
        const unsigned offset = prefix_is_ipv4(*p) ? 96 : 0;
        pools_.emplace_back(pc.name(), *p, static_cast<std::uint8_t>(pc.assign_length() + offset));
    }
}

PrefixPool* DmnpPools::named(const std::string& name) {
    for (auto& p : pools_) {
        if (p.name() == name) {
            return &p;
        }
    }
    return nullptr;
}

void DmnpPools::undo(const std::vector<Prefix>& claimed) {
    for (const auto& p : claimed) {
        release(p);
    }
}

void DmnpPools::release(const Prefix& p) {
    for (auto& pool : pools_) {
        if (pool.contains(p)) {
            (void)pool.release(p);
        }
    }
}

Result<void, std::string> DmnpPools::claim(const Prefix& p) {
    for (auto& pool : pools_) {
        if (pool.contains(p)) {
            if (auto c = pool.claim(p); !c) {
                return unexpected(fmt::format("delegated prefix {} in pool {}: {}",
                                              prefix_text_any(p), pool.name(),
                                              to_string(c.error())));
            }
        }
    }
    return {};
}

bool DmnpPools::covered(const Prefix& p) const noexcept {
    return std::any_of(pools_.begin(), pools_.end(),
                       [&](const PrefixPool& pool) { return pool.contains(p); });
}

Result<DmnpPools::Grant, DmnpPools::Refusal> DmnpPools::decide(
    const std::vector<DmnpRequest>& requests, const std::vector<Prefix>& current,
    const v1::SubscriberProfile& prof, const v1::Subscriber* sub,
    const std::function<bool(const Prefix&)>& in_use_elsewhere) {
    Grant g;
    g.prefixes = current;
    std::vector<Prefix> statics;
    if (sub != nullptr) {
        for (const auto& text : sub->delegated_prefixes()) {
            if (auto p = parse_prefix_any(text)) {
                statics.push_back(*p);
            }
        }
    }
    auto refuse = [&](BaStatus s, std::string why) -> Result<Grant, Refusal> {
        undo(g.claimed);
        return unexpected(Refusal{st(s), std::move(why)});
    };
    auto holds = [&](const Prefix& p) {
        return std::find(g.prefixes.begin(), g.prefixes.end(), p) != g.prefixes.end();
    };
    // Requests that the session's prefixes already answer are no new grant: a re-registration
    // repeats its requests, and an "any" is answered by the prefix it got before.
    std::vector<bool> satisfied_any(2, false);
    for (const auto& r : requests) {
        if (r.specific) {
            if (holds(*r.specific)) {
                continue;
            }
            const Prefix want = *r.specific;
            if (g.prefixes.size() >= kMaxDelegatedPrefixes) {
                return refuse(BaStatus::kInsufficientResources,
                              fmt::format("at most {} delegated prefixes per session",
                                          kMaxDelegatedPrefixes));
            }
            if (std::find(statics.begin(), statics.end(), want) != statics.end()) {
                if (in_use_elsewhere(want)) {
                    return refuse(
                        BaStatus::kRequestedDmnpInUse,
                        fmt::format("{} is held by another session", prefix_text_any(want)));
                }
                g.prefixes.push_back(want);
                continue;
            }
            const std::string& pool_name = r.ipv4 ? prof.dmnp_pool_ipv4() : prof.dmnp_pool();
            PrefixPool* pool = pool_name.empty() ? nullptr : named(pool_name);
            if (pool == nullptr || !prof.allow_requested_dmnp() || !pool->contains(want)) {
                return refuse(BaStatus::kNotAuthorizedForDelegatedMnp,
                              fmt::format("requested delegated prefix {} is not the subscriber's "
                                          "nor a prefix of its pool",
                                          prefix_text_any(want)));
            }
            if (auto c = pool->claim(want); !c) {
                return refuse(c.error() == AllocError::kInUse
                                  ? BaStatus::kRequestedDmnpInUse
                                  : BaStatus::kNotAuthorizedForDelegatedMnp,
                              fmt::format("requested delegated prefix {}: {}",
                                          prefix_text_any(want), to_string(c.error())));
            }
            g.claimed.push_back(want);
            g.prefixes.push_back(want);
            continue;
        }
        // Any prefix of the family.
        const bool v4 = r.ipv4;
        const bool have = std::any_of(g.prefixes.begin(), g.prefixes.end(),
                                      [&](const Prefix& p) { return prefix_is_ipv4(p) == v4; });
        if (have && !satisfied_any[v4 ? 1 : 0]) {
            satisfied_any[v4 ? 1 : 0] = true;
            continue;
        }
        if (g.prefixes.size() >= kMaxDelegatedPrefixes) {
            return refuse(
                BaStatus::kInsufficientResources,
                fmt::format("at most {} delegated prefixes per session", kMaxDelegatedPrefixes));
        }
        std::optional<Prefix> pick;
        for (const auto& s : statics) {
            if (prefix_is_ipv4(s) == v4 && !holds(s) && !in_use_elsewhere(s)) {
                pick = s;
                break;
            }
        }
        if (!pick) {
            const std::string& pool_name = v4 ? prof.dmnp_pool_ipv4() : prof.dmnp_pool();
            PrefixPool* pool = pool_name.empty() ? nullptr : named(pool_name);
            if (pool == nullptr) {
                return refuse(BaStatus::kNotAuthorizedForDelegatedMnp,
                              fmt::format("no {} delegated prefix for this subscriber",
                                          v4 ? "IPv4" : "IPv6"));
            }
            auto p = pool->allocate();
            if (!p) {
                return refuse(BaStatus::kInsufficientResources,
                              fmt::format("delegated prefix pool '{}' exhausted", pool->name()));
            }
            g.claimed.push_back(*p);
            pick = *p;
        }
        satisfied_any[v4 ? 1 : 0] = true;
        g.prefixes.push_back(*pick);
    }
    return g;
}

}  // namespace hag::control
