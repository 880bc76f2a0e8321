// MIPv6 home agent (RFC 6275 §10.3 home registration) with multiple care-of addresses (RFC 5648):
// Binding Updates from mobile nodes and mobile routers, answered with Binding Acknowledgements.
// The bindings live in the same binding cache as PMIPv6 sessions (one session per subscriber
// NAI, one path per care-of address / BID) and go to the data plane the same way: GRE, with the
// key the mobile node offers in a GRE Key option as the downlink key and the key the home agent
// allocates as the uplink key (RFC 5845's exchange, applied to a BU / BA).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "config.hpp"
#include "hag/net/address.hpp"
#include "lma.hpp"
#include "sequence.hpp"

namespace hag::control {

namespace {

using mh::BaStatus;

constexpr std::uint8_t st(BaStatus s) noexcept {
    return static_cast<std::uint8_t>(s);
}

bool prefix_contains(const Prefix& p, const Ipv6Address& a) {
    for (unsigned b = 0; b < p.length && b < 128; ++b) {
        const unsigned mask = 1u << (7 - b % 8);
        if ((p.addr[b / 8] & mask) != (a[b / 8] & mask)) {
            return false;
        }
    }
    return true;
}

std::vector<Prefix> static_prefixes(const v1::Subscriber& sub) {
    std::vector<Prefix> out;
    for (const auto& text : sub.home_prefixes()) {
        if (auto p = parse_prefix(text)) {
            out.push_back(*p);
        }
    }
    return out;
}

}  // namespace

std::vector<Outbound> Lma::handle_home_bu(const mh::BindingUpdate& bu, const Peer& from,
                                          const LmaTime& t) {
    count("bu.received");
    PbuOutcome out;
    out.sequence = bu.sequence;
    const std::uint8_t status = process_home_bu(bu, from, t, out);
    const bool accepted = status < 128;
    count(accepted ? "bu.accepted" : "bu.rejected");
    count(fmt::format("ba.status.{:03d}", status));
    if (accepted && !bu.ack) {
        return {};  // RFC 6275 §10.3.1: a BA only when asked for (or on an error)
    }
    mh::BindingAcknowledgement ba;
    ba.status = status;
    ba.mobile_router = accepted && bu.mobile_router;  // RFC 3963 §6.2: R when the HA serves MRs
    ba.sequence = out.sequence;
    ba.lifetime = accepted ? out.lifetime_units : 0;
    for (const auto& o : bu.options) {
        if (const auto* id = std::get_if<mh::MobileNodeIdentifier>(&o)) {
            ba.options.emplace_back(*id);
        } else if (const auto* b = std::get_if<mh::BindingIdentifier>(&o)) {
            auto echo = *b;  // RFC 5648 §5.3: one BID option per binding, with its status
            echo.status = status;
            ba.options.emplace_back(echo);
        }
    }
    if (accepted && out.uplink_key) {
        ba.options.emplace_back(mh::GreKey{*out.uplink_key});
    }
    return {Outbound{from, mh::Message{ba}}};
}

std::uint8_t Lma::process_home_bu(const mh::BindingUpdate& bu, const Peer& from, const LmaTime& t,
                                  PbuOutcome& out) {
    const Ipv6Address hoa = *from.home_address;
    const auto& opts = bu.options;
    std::string who = fmt::format("HoA {} CoA {}", net::format(hoa), net::format(from.remote));
    auto reject = [&](BaStatus s, std::string_view why) {
        log_refusal(t, fmt::format("home registration of {} seq {}: {} ({})", who, bu.sequence,
                                   ba_status_name(st(s)), why));
        return st(s);
    };
    if (!cfg_.home_agent().enabled()) {
        return reject(BaStatus::kHomeRegistrationNotSupported, "home_agent is not enabled");
    }
    if (bu.proxy) {
        return reject(BaStatus::kReasonUnspecified, "a proxy BU with a Home Address option");
    }
    if (!bu.home_registration) {
        return reject(BaStatus::kAdministrativelyProhibited,
                      "correspondent registration (H clear): route optimisation is not offered");
    }

    // The mobile node: its MN-ID option (RFC 4283) when present, else its home address.
    const v1::Subscriber* sub = nullptr;
    if (const auto* mnid = mh::find_option<mh::MobileNodeIdentifier>(opts)) {
        std::string text(mnid->identifier.begin(), mnid->identifier.end());
        const bool printable = !text.empty() && std::none_of(text.begin(), text.end(), [](char c) {
            return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
        });
        sub = printable ? subscribers_.find(text) : nullptr;
        if (sub == nullptr) {
            return reject(BaStatus::kNotHomeAgentForThisMobileNode,
                          "MN-ID is not a listed subscriber");
        }
    } else {
        // Without an MN-ID, a scan of the listed subscribers' home prefixes (send the MN-ID
        // where the subscriber list is long).
        for (const auto& s : cfg_.subscribers()) {
            for (const auto& p : static_prefixes(s)) {
                if (prefix_contains(p, hoa)) {
                    sub = &s;
                    break;
                }
            }
            if (sub != nullptr) {
                break;
            }
        }
        if (sub == nullptr) {
            return reject(BaStatus::kNotHomeAgentForThisMobileNode,
                          "no subscriber has this home address");
        }
    }
    const std::string nai = sub->nai();
    out.nai = nai;
    who = fmt::format("{} ({})", nai, who);
    const std::vector<Prefix> prefixes = static_prefixes(*sub);
    if (std::none_of(prefixes.begin(), prefixes.end(),
                     [&](const Prefix& p) { return prefix_contains(p, hoa); })) {
        return reject(BaStatus::kNotHomeSubnet,
                      "the home address is outside the subscriber's home prefixes");
    }
    const v1::SubscriberProfile prof = effective_profile(cfg_, sub);

    const Session* existing = cache_.find(nai);
    if (existing != nullptr) {
        for (const auto& p : existing->paths) {
            if (p.mag_id != nai) {
                return reject(BaStatus::kRegistrationTypeChangeDisallowed,
                              "the subscriber has a proxy (PMIPv6) registration");
            }
        }
    }

    // Multiple care-of addresses (RFC 5648): one binding per Binding Identifier option; several
    // options in one BU, each with its care-of address, are a bulk registration.
    const auto bidos = mh::find_options<mh::BindingIdentifier>(opts);
    if (!bidos.empty() && !prof.multipath()) {
        return reject(BaStatus::kMcoaProhibited, "multiple care-of addresses disabled");
    }
    std::vector<std::uint16_t> bids;
    for (const auto* b : bidos) {
        if (b->bid == 0 || std::find(bids.begin(), bids.end(), b->bid) != bids.end()) {
            return reject(BaStatus::kMcoaMalformed, "binding identifier 0 or repeated");
        }
        if (b->simultaneous_home_foreign) {
            return reject(BaStatus::kMcoaSimultaneousHomeAndForeignProhibited,
                          "H flag: simultaneous home and foreign binding");
        }
        if (bidos.size() > 1 && !b->coa4 && !b->coa6) {
            return reject(BaStatus::kMcoaMalformed,
                          "bulk registration with a BID option without care-of address");
        }
        bids.push_back(b->bid);
    }
    if (bids.empty()) {
        bids.push_back(0);
    }
    out.bid = bids.front();

    // Replay protection: the sequence number per binding (RFC 6275 §9.5.1).
    if (existing != nullptr) {
        for (auto bid : bids) {
            const Path* p = existing->find_path(bid);
            if (p != nullptr && !sequence_is_newer(bu.sequence, p->last_sequence)) {
                out.sequence = p->last_sequence;
                return reject(BaStatus::kSequenceNumberOutOfWindow,
                              fmt::format("last accepted {}", p->last_sequence));
            }
        }
    }

    if (bu.lifetime == 0) {
        // De-registration (returning home or giving up a care-of address): the listed bindings,
        // or all of them without a BID option.
        if (existing != nullptr) {
            if (bids.front() == 0) {
                (void)cache_.remove(nai);
            } else {
                for (auto bid : bids) {
                    (void)cache_.remove_path(nai, bid);
                }
            }
            spdlog::info("session {}: home registration removed by the mobile node ({})", nai, who);
        }
        count("bu.deregistered");
        return st(BaStatus::kAccepted);
    }

    const auto* gre = mh::find_option<mh::GreKey>(opts);
    // With home_agent.tunnel IP_IN_IP a BU without a GRE Key option asks for RFC 6275's own
    // IPv6-in-IPv6 tunnel: the profile's GRE key requirement (RFC 5845, PMIPv6) does not apply.
    if (gre == nullptr && prof.gre_key_required() &&
        cfg_.home_agent().tunnel() != v1::HOME_TUNNEL_IP_IN_IP) {
        return reject(BaStatus::kGreKeyOptionRequired, "GRE key option required");
    }
    std::uint32_t uplink_key = existing != nullptr ? existing->uplink_gre_key : 0;
    bool key_allocated = false;
    if (gre != nullptr && uplink_key == 0) {
        auto k = keys_.allocate();
        if (!k) {
            return reject(BaStatus::kInsufficientResources, "GRE keys exhausted");
        }
        uplink_key = *k;
        key_allocated = true;
    }
    auto release_key = [&] {
        if (key_allocated) {
            (void)keys_.release(uplink_key);
        }
    };

    CareOfAddress source_coa{from.remote};
    if (const auto* alt = mh::find_option<mh::AlternateCareOfAddress>(opts)) {
        source_coa.addr = alt->address;  // RFC 6275 §6.2.5
    }
    const std::uint32_t granted =
        std::min<std::uint32_t>(std::uint32_t{bu.lifetime} * 4, prof.max_lifetime_seconds());
    Session s;
    if (existing != nullptr) {
        s = *existing;
    }
    s.nai = nai;
    s.home_prefixes = prefixes;
    s.uplink_gre_key = uplink_key;
    s.last_sequence = bu.sequence;
    s.striping = static_cast<std::uint8_t>(prof.striping());
    s.overflow_burst_bytes = prof.overflow_burst_bytes();
    s.primary_access_technology = static_cast<std::uint8_t>(prof.primary_access_technology());
    if (bids.front() == 0) {
        s.paths.clear();  // a binding without BID replaces every other (RFC 5648 §5.5)
    } else {
        std::erase_if(s.paths, [](const Path& p) { return p.bid == 0; });
    }
    for (std::size_t i = 0; i < bids.size(); ++i) {
        Path path;
        path.bid = bids[i];
        path.mag_id = nai;  // a mobile node signals for itself
        path.coa = source_coa;
        if (i < bidos.size() && bidos[i]->coa6) {
            path.coa.addr = *bidos[i]->coa6;
        } else if (i < bidos.size() && bidos[i]->coa4) {
            path.coa = CareOfAddress::from_ipv4(*bidos[i]->coa4);
        }
        path.local.addr = from.local;
        path.downlink_gre_key = gre != nullptr ? gre->key : 0;
        path.live = true;
        path.expires_at = t.now + granted;
        path.last_sequence = bu.sequence;
        auto it = std::find_if(s.paths.begin(), s.paths.end(),
                               [&](const Path& p) { return p.bid == path.bid; });
        if (it != s.paths.end()) {
            path.weight_kbps = it->weight_kbps;
            *it = path;
        } else if (s.paths.size() >= prof.max_paths()) {
            release_key();
            return reject(BaStatus::kInsufficientResources,
                          fmt::format("max_paths {} reached", prof.max_paths()));
        } else {
            s.paths.push_back(path);
        }
    }
    const bool is_new = existing == nullptr;
    auto r = is_new ? cache_.insert(s) : cache_.update(s);
    if (!r) {
        release_key();
        const bool resources =
            r.error() == CacheError::kCapacity || r.error() == CacheError::kTooManyPrefixes;
        return reject(resources ? BaStatus::kInsufficientResources : BaStatus::kReasonUnspecified,
                      fmt::format("binding cache: {}", to_string(r.error())));
    }
    out.prefixes = prefixes;
    if (gre != nullptr) {
        out.uplink_key = uplink_key;
    }
    out.lifetime_units = static_cast<std::uint16_t>(granted / 4);
    for (auto bid : bids) {
        const Path* p = cache_.find(nai)->find_path(bid);
        spdlog::info(
            "session {} bid {}: home registration {} from {} CoA {} uplink-key {} downlink-key {} "
            "lifetime {}s{}",
            nai, bid, is_new ? "accepted" : "refreshed", net::format(hoa), to_string(p->coa),
            uplink_key, p->downlink_gre_key, granted, bu.mobile_router ? " (mobile router)" : "");
    }
    return st(BaStatus::kAccepted);
}

}  // namespace hag::control
