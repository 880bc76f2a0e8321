#include "lma.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "config.hpp"
#include "flow_bindings.hpp"
#include "hag/net/address.hpp"
#include "sequence.hpp"

namespace hag::control {

std::optional<std::string> identifier_text(const mh::Bytes& id) {
    if (id.empty() || id.size() > 255) {
        return std::nullopt;
    }
    std::string s(id.begin(), id.end());
    for (unsigned char c : s) {
        if (c < 0x20 || c == 0x7f) {
            return std::nullopt;
        }
    }
    return s;
}

namespace {

using mh::BaStatus;

constexpr std::uint8_t st(BaStatus s) noexcept {
    return static_cast<std::uint8_t>(s);
}

bool is_zero(const mh::Ipv6& a) {
    return std::all_of(a.begin(), a.end(), [](std::uint8_t b) { return b == 0; });
}

// Whether p lies inside outer (as long or longer, same leading bits).
bool prefix_within(const Prefix& p, const Prefix& outer) {
    if (p.length < outer.length || outer.length > 128) {
        return false;
    }
    const unsigned whole = outer.length / 8u;
    const unsigned rest = outer.length % 8u;
    if (!std::equal(p.addr.begin(), p.addr.begin() + whole, outer.addr.begin())) {
        return false;
    }
    if (rest == 0) {
        return true;
    }
    const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
    return (p.addr[whole] & mask) == (outer.addr[whole] & mask);
}

bool nai_matches(const std::string& pattern, const std::string& nai) {
    if (!pattern.empty() && pattern.back() == '*') {
        return nai.compare(0, pattern.size() - 1, pattern, 0, pattern.size() - 1) == 0;
    }
    return pattern == nai;
}

mh::Message make_heartbeat(bool response, std::uint32_t seq, std::uint32_t restart) {
    mh::Heartbeat hb;
    hb.response = response;
    hb.sequence = seq;
    hb.options.push_back(mh::RestartCounter{restart});
    return mh::Message{hb};
}

std::uint32_t lifetime_seconds(std::uint16_t units) {
    return std::uint32_t{units} * 4;
}

// This node's GRE key range (store.uplink_gre_key_min / _max; 0 = unbounded on that side).
std::pair<std::uint32_t, std::uint32_t> key_range(const v1::ControlConfig& cfg) {
    return {cfg.store().uplink_gre_key_min() != 0 ? cfg.store().uplink_gre_key_min() : 1u,
            cfg.store().uplink_gre_key_max() != 0 ? cfg.store().uplink_gre_key_max() : 0xffffffffu};
}

// The pools of a configuration: home network prefix pools, then IPv4 home address pools (held
// IPv4-mapped). In an IPv4 pool of single addresses the network and broadcast addresses (when
// the pool is a /30 or larger) and the default router are never handed out.
std::vector<PrefixPool> make_pools(const v1::ControlConfig& cfg) {
    std::vector<PrefixPool> pools;
    for (const auto& p : cfg.hnp_pools()) {
        if (auto pfx = parse_prefix(p.prefix())) {
            pools.emplace_back(p.name(), *pfx, static_cast<std::uint8_t>(p.assign_length()));
        }
    }
    for (const auto& p : cfg.ipv4_pools()) {
        auto pfx = parse_ipv4_prefix(p.prefix());
        if (!pfx) {
            continue;
        }
        const auto alen =
            static_cast<std::uint8_t>(96 + (p.assign_length() == 0 ? 32 : p.assign_length()));
        auto& pool = pools.emplace_back(p.name(), *pfx, alen);
        if (alen == 128 && pfx->length <= 126) {
            Prefix network{pfx->addr, 128};
            (void)pool.claim(network);
            Prefix broadcast = network;
            for (unsigned b = pfx->length; b < 128; ++b) {
                broadcast.addr[b / 8] =
                    static_cast<std::uint8_t>(broadcast.addr[b / 8] | (0x80u >> (b % 8)));
            }
            (void)pool.claim(broadcast);
        }
        if (auto r = ipv4_pool_router(p)) {
            // The router's address, or the assignable block holding it, stays out of use.
            Prefix router{r->addr, alen};
            for (unsigned b = alen; b < 128; ++b) {
                router.addr[b / 8] =
                    static_cast<std::uint8_t>(router.addr[b / 8] & ~(0x80u >> (b % 8)));
            }
            if (pool.contains(router)) {
                (void)pool.claim(router);
            }
        }
    }
    return pools;
}

std::array<std::uint8_t, 4> v4_of(const Ipv6Address& a) {
    return {a[12], a[13], a[14], a[15]};
}

}  // namespace

Lma::Lma(v1::ControlConfig cfg, BindingCache& cache, std::uint32_t restart_counter)
    : cfg_(std::move(cfg)),
      subscribers_(cfg_),
      cache_(cache),
      restart_counter_(restart_counter),
      keys_(key_range(cfg_).first, key_range(cfg_).second),
      dmnp_(cfg_),
      mag_(MagOptions{cfg_.central_db().role() == v1::CENTRAL_DB_MAAR
                          ? cfg_.central_db().node_name()
                          : cfg_.store().node_name(),
                      cfg_.limits().max_sessions()}),
      relay_(MagOptions{"", cfg_.limits().max_sessions(), 4, 1, true}) {
    pools_ = make_pools(cfg_);
    switch (cfg_.central_db().role()) {
        case v1::CENTRAL_DB_CMD:
            cd_role_ = CdRole::kCmd;
            for (const auto& m : cfg_.central_db().maars()) {
                if (auto a = parse_address(m.address())) {
                    cmd_maars_.emplace_back(m.name(), a->addr);
                }
            }
            break;
        case v1::CENTRAL_DB_MAAR:
            cd_role_ = CdRole::kMaar;
            if (auto a = parse_address(cfg_.central_db().cmd_address())) {
                cmd_address_ = a->addr;
            }
            if (auto a = parse_address(cfg_.central_db().node_address())) {
                node_address_ = a->addr;
            }
            break;
        default:
            break;
    }
    if (cfg_.central_db().timeout_ms() != 0) {
        cd_timeout_ms_ = cfg_.central_db().timeout_ms();
    }
    listed_sources_ = listed_sources(cfg_);
    cache_.add_observer([this](const CacheEvent& ev) {
        if (ev.kind == CacheEvent::Kind::kRemoved || ev.kind == CacheEvent::Kind::kExpired) {
            const LmaTime now{last_now_, 0, last_timestamp_};
            if (cd_role_ == CdRole::kCmd) {
                // A directory entry ended (de-registration, the serving MAAR's registration
                // expired, a management delete): so do its relay bindings at the anchors.
                const Session& e = *ev.session;
                const Ipv6Address serving =
                    e.paths.empty() ? Ipv6Address{} : e.paths.front().coa.addr;
                std::vector<Ipv6Address> done;
                for (const auto& a : e.remote_anchors) {
                    if (a.anchor.addr == serving ||
                        std::find(done.begin(), done.end(), a.anchor.addr) != done.end()) {
                        continue;
                    }
                    done.push_back(a.anchor.addr);
                    if (auto o = relay_.stop(MagRole::relay_key(e.nai, a.anchor.addr), now)) {
                        mag_out_.push_back(std::move(*o));
                        count("cmd.anchor_deregistration_sent");
                    }
                }
                txns_.erase(e.nai);
                if (ev.kind == CacheEvent::Kind::kExpired) {
                    spdlog::info("CMD: {}: the serving MAAR's registration expired", e.nai);
                    count("cmd.expired");
                }
                return;
            }
            release(*ev.session);
            if (cd_role_ == CdRole::kMaar) {
                // The router's binding here ended: de-registered at the CMD, which ends the
                // previous anchors' relay bindings.
                if (auto o = mag_.stop(ev.session->nai, now)) {
                    mag_out_.push_back(std::move(*o));
                    count("cmd.deregistration_sent");
                }
                if (auto k = cmd_keys_.find(ev.session->nai); k != cmd_keys_.end()) {
                    (void)keys_.release(k->second);
                    cmd_keys_.erase(k);
                }
                held_.erase(ev.session->nai);
            } else if (!ev.session->remote_anchors.empty()) {
                // The router's binding here ended: so does its registration at the old anchor.
                if (auto o = mag_.stop(ev.session->nai, LmaTime{last_now_, 0, last_timestamp_})) {
                    mag_out_.push_back(std::move(*o));
                }
            }
            if (ev.kind == CacheEvent::Kind::kExpired) {
                spdlog::info("session {}: lifetime expired, binding removed", ev.session->nai);
                count("sessions.expired");
            }
        }
    });
}

PrefixPool* Lma::pool_named(const std::string& name) {
    for (auto& p : pools_) {
        if (p.name() == name) {
            return &p;
        }
    }
    return nullptr;
}

void Lma::release(const Session& s) {
    for (const auto& pfx : s.home_prefixes) {
        for (auto& pool : pools_) {
            if (pool.contains(pfx)) {
                (void)pool.release(pfx);
            }
        }
    }
    for (const auto& pfx : s.delegated_prefixes) {
        dmnp_.release(pfx);
    }
    if (s.uplink_gre_key != 0) {
        (void)keys_.release(s.uplink_gre_key);
    }
    if (cd_role_ == CdRole::kMaar) {
        return;  // the relay downlink key is cmd_keys_'s (released with the session)
    }
    for (const auto& a : s.remote_anchors) {
        if (a.downlink_key != 0) {
            (void)keys_.release(a.downlink_key);
        }
    }
}

bool Lma::take_token(Bucket& b, double rate, double burst, std::int64_t now_ms) {
    const auto elapsed = std::max<std::int64_t>(0, now_ms - b.last_ms);
    b.tokens = std::min(burst, b.tokens + rate * static_cast<double>(elapsed) / 1000.0);
    b.last_ms = now_ms;
    if (b.tokens < 1.0) {
        return false;
    }
    b.tokens -= 1.0;
    return true;
}

void Lma::log_refusal(const LmaTime& t, std::string line) {
    constexpr std::uint32_t kLinesPerSecond = 10;
    if (t.now_ms - last_refusal_log_ms_ >= 1000) {
        last_refusal_log_ms_ = t.now_ms;
        refusal_lines_ = 0;
    }
    if (refusal_lines_ >= kLinesPerSecond) {
        ++refusals_not_logged_;
        return;
    }
    ++refusal_lines_;
    if (refusals_not_logged_ != 0) {
        spdlog::info("{} ({} more refusals not logged before this one)", line,
                     refusals_not_logged_);
        refusals_not_logged_ = 0;
    } else {
        spdlog::info("{}", line);
    }
}

std::unordered_set<std::string> Lma::listed_sources(const v1::ControlConfig& cfg) {
    std::unordered_set<std::string> out;
    for (const auto& m : cfg.mags()) {
        for (const auto& a : m.source_addresses()) {
            if (auto pa = parse_address(a)) {
                out.emplace(reinterpret_cast<const char*>(pa->addr.data()), pa->addr.size());
            }
        }
    }
    return out;
}

Lma::Admit Lma::admit(const Peer& from, const LmaTime& t) {
    const double rate = cfg_.limits().per_mag_pbu_per_second();
    const double burst = cfg_.limits().per_mag_pbu_burst();
    std::string key(reinterpret_cast<const char*>(from.remote.data()), from.remote.size());
    auto it = buckets_.find(key);
    if (it == buckets_.end() && listed_sources_.contains(key)) {
        // A configured MAG address always has its own bucket (the list is bounded by the
        // configuration, not by the network).
        it = buckets_.emplace(key, Bucket{burst, t.now_ms, true}).first;
    }
    if (it == buckets_.end()) {
        if (buckets_.size() >= kMaxBuckets && t.now_ms - last_bucket_sweep_ms_ >= 1000) {
            // A bucket that has refilled to its depth is the same as a new one: forget those.
            // At most one sweep a second, so a flood of new sources costs no more than that.
            last_bucket_sweep_ms_ = t.now_ms;
            const auto full_after_ms =
                static_cast<std::int64_t>(rate > 0 ? std::ceil(burst * 1000.0 / rate) : 0);
            std::erase_if(buckets_, [&](const auto& kv) {
                return kv.first != kOverflowBucket && !kv.second.proven &&
                       t.now_ms - kv.second.last_ms >= full_after_ms;
            });
            count("mh.rate_limit_sweeps");
        }
        if (buckets_.size() >= kMaxBuckets) {
            // Bounded table: a flood of spoofed sources shares one bucket instead of growing
            // memory.
            key = kOverflowBucket;
            it = buckets_.find(key);
            count("mh.rate_limit_overflow");
        }
        if (it == buckets_.end()) {
            it = buckets_.emplace(key, Bucket{burst, t.now_ms}).first;
        }
    }
    if (!take_token(it->second, rate, burst, t.now_ms)) {
        return Admit::kMagLimit;
    }
    if (it->second.proven) {
        // MAGs with sessions (and configured MAG addresses) are only under their own limit:
        // the global one meters the sources nobody has vouched for.
        count("mh.global_limit_exempt");
        return Admit::kOk;
    }
    if (!global_bucket_ready_) {
        global_bucket_ = Bucket{static_cast<double>(cfg_.limits().global_pbu_burst()), t.now_ms};
        global_bucket_ready_ = true;
    }
    if (!take_token(global_bucket_, cfg_.limits().global_pbu_per_second(),
                    cfg_.limits().global_pbu_burst(), t.now_ms)) {
        return Admit::kGlobalLimit;
    }
    return Admit::kOk;
}

std::vector<Outbound> Lma::receive(std::span<const std::uint8_t> bytes, const Peer& from,
                                   const LmaTime& t) {
    count("mh.received");
    if (const Admit a = admit(from, t); a != Admit::kOk) {
        // Dropped without a reply: a flood gets nothing back to amplify or reflect.
        const bool global = a == Admit::kGlobalLimit;
        count(global ? "mh.rate_limited_global" : "mh.rate_limited");
        if (t.now_ms - last_limit_log_ms_ >= 1000) {
            last_limit_log_ms_ = t.now_ms;
            if (global) {
                spdlog::warn(
                    "over the global rate limit ({}/s, burst {}), dropping messages (latest from "
                    "{})",
                    cfg_.limits().global_pbu_per_second(), cfg_.limits().global_pbu_burst(),
                    net::format(from.remote));
            } else {
                spdlog::warn("MAG {}: over its rate limit ({}/s, burst {}), dropping its messages",
                             net::format(from.remote), cfg_.limits().per_mag_pbu_per_second(),
                             cfg_.limits().per_mag_pbu_burst());
            }
        }
        return {};
    }
    auto m = mh::decode(bytes);
    if (m) {
        return handle(*m, from, t);
    }
    count("mh.malformed");
    count(fmt::format("mh.malformed.{}", mh::to_string(m.error().code)));
    if (t.now_ms - last_decode_log_ms_ >= 1000) {
        last_decode_log_ms_ = t.now_ms;
        spdlog::warn("malformed mobility header from {}: {}", net::format(from.remote),
                     m.error().str());
    }
    // A PBU whose MAG Multipath-Binding option sets both B and O (RFC 8278 §3.1) is answered
    // with MCOA_MALFORMED rather than dropped, so the MAG learns why.
    if (m.error().code == mh::DecodeErrorCode::kMultipathBAndO && bytes.size() >= 12 &&
        bytes[2] == static_cast<std::uint8_t>(mh::MhType::kBindingUpdate)) {
        mh::BindingAcknowledgement ba;
        ba.status = st(BaStatus::kMcoaMalformed);
        ba.proxy = (bytes[8] & 0x02) != 0;  // P flag of the BU flags octet
        ba.sequence = static_cast<std::uint16_t>((bytes[6] << 8) | bytes[7]);
        count(fmt::format("pba.status.{:03d}", ba.status));
        return {Outbound{from, mh::Message{ba}}};
    }
    if (mh::reaction_to(m.error()).action == mh::ReceiverAction::kBindingErrorUnknownType) {
        mh::BindingError be;
        be.status = mh::kBeUnrecognizedMhType;
        count("binding_error.sent");
        return {Outbound{from, mh::Message{be}}};
    }
    return {};
}

std::vector<Outbound> Lma::handle(const mh::Message& m, const Peer& from, const LmaTime& t) {
    if (const auto* bu = std::get_if<mh::BindingUpdate>(&m.body); bu && from.home_address) {
        return handle_home_bu(*bu, from, t);  // MIPv6 home registration (lma_home.cpp)
    }
    if (const auto* bu = std::get_if<mh::BindingUpdate>(&m.body); bu && cd_role_ == CdRole::kCmd) {
        // The central mobility database (lma_cmd.cpp); with what ending entries sent.
        auto out = cmd_handle_pbu(*bu, from, t);
        out.insert(out.end(), std::make_move_iterator(mag_out_.begin()),
                   std::make_move_iterator(mag_out_.end()));
        mag_out_.clear();
        return out;
    }
    if (const auto* bu = std::get_if<mh::BindingUpdate>(&m.body)) {
        return handle_pbu(*bu, from, t);
    }
    if (const auto* hb = std::get_if<mh::Heartbeat>(&m.body)) {
        return handle_heartbeat(*hb, from, t);
    }
    if (const auto* ba = std::get_if<mh::BindingAcknowledgement>(&m.body)) {
        handle_pba(*ba, from, t);  // the MAG role's (distributed anchoring)
        std::vector<Outbound> out;
        out.swap(mag_out_);
        return out;
    }
    if (const auto* br = std::get_if<mh::BindingRevocation>(&m.body)) {
        if (br->br_type == mh::kBrTypeAcknowledgement) {
            handle_revocation_ack(*br, from);
        } else {
            count("revocation.indication_received");
            spdlog::info(
                "MAG {}: Binding Revocation Indication received; MAG-initiated "
                "revocation is not supported, ignored",
                net::format(from.remote));
        }
        return {};
    }
    count("mh.unexpected_type");
    spdlog::debug("{} from {} ignored (an LMA does not process it)", mh::mh_type_name(m.mh_type()),
                  net::format(from.remote));
    return {};
}

std::vector<Outbound> Lma::handle_pbu(const mh::BindingUpdate& bu, const Peer& from,
                                      const LmaTime& t) {
    count("pbu.received");
    PbuOutcome out;
    out.sequence = bu.sequence;
    last_now_ = t.now;
    last_timestamp_ = t.timestamp;
    if (cd_role_ == CdRole::kMaar && from.remote != cmd_address_ && !held_.empty()) {
        // A router's retransmission while its registration waits for the CMD: not processed
        // again (no second CMD registration, no second PBA).
        if (const auto* id = mh::find_option<mh::MobileNodeIdentifier>(bu.options)) {
            auto h = held_.find(std::string(id->identifier.begin(), id->identifier.end()));
            if (h != held_.end() && h->second.sequence == bu.sequence &&
                h->second.pba.to.remote == from.remote) {
                count("cmd.held_retransmissions");
                return {};
            }
        }
    }
    const std::uint8_t status = process_pbu(bu, from, t, out);
    std::vector<Outbound> mag_pbus;
    mag_pbus.swap(mag_out_);
    if (out.drop) {
        if (!out.deferred) {  // held by the daemon: counted cluster.lookups_deferred
            count("pbu.dropped");
        }
        return mag_pbus;
    }
    const bool accepted = status < 128;
    count(accepted ? "pbu.accepted" : "pbu.rejected");
    if (accepted) {
        // This source is a MAG with a session: the global rate limit no longer applies to it.
        const std::string key(reinterpret_cast<const char*>(from.remote.data()),
                              from.remote.size());
        if (auto b = buckets_.find(key); b != buckets_.end()) {
            b->second.proven = true;
        }
    }
    count(fmt::format("pba.status.{:03d}", status));

    mh::BindingAcknowledgement ba;
    ba.status = status;
    ba.proxy = bu.proxy;
    ba.sequence = out.sequence;
    ba.lifetime = accepted ? out.lifetime_units : 0;
    // Options: echo what identifies the binding, with the LMA's decisions filled in.
    for (const auto& o : bu.options) {
        std::visit(
            [&](const auto& v) {
                using T = std::decay_t<decltype(v)>;
                if constexpr (std::is_same_v<T, mh::MobileNodeIdentifier> ||
                              std::is_same_v<T, mh::HandoffIndicatorOption> ||
                              std::is_same_v<T, mh::AccessTechnologyTypeOption> ||
                              std::is_same_v<T, mh::MagMultipathBinding> ||
                              std::is_same_v<T, mh::MagIdentifier> ||
                              std::is_same_v<T, mh::LinkLocalAddress> ||
                              std::is_same_v<T, mh::MnLinkLayerIdentifier>) {
                    ba.options.emplace_back(v);
                } else if constexpr (std::is_same_v<T, mh::Timestamp>) {
                    // On TIMESTAMP_MISMATCH the LMA's own time tells the MAG how far off it is.
                    ba.options.emplace_back(mh::Timestamp{
                        status == st(BaStatus::kTimestampMismatch) ? t.timestamp : v.value});
                } else if constexpr (std::is_same_v<T, mh::BindingIdentifier>) {
                    auto b = v;
                    b.status = status;
                    ba.options.emplace_back(b);
                } else if constexpr (std::is_same_v<T, mh::HomeNetworkPrefix>) {
                    if (!accepted || out.prefixes.empty()) {
                        ba.options.emplace_back(v);  // echoed on rejection
                    }
                } else if constexpr (std::is_same_v<T, mh::DelegatedMobileNetworkPrefix>) {
                    if (!accepted) {
                        ba.options.emplace_back(v);  // echoed on rejection (RFC 7148 §3.2.2)
                    }
                }
            },
            o);
    }
    if (accepted) {
        for (const auto& p : out.prefixes) {
            ba.options.emplace_back(mh::HomeNetworkPrefix{p.length, p.addr});
        }
        if (out.ipv4_home) {
            ba.options.emplace_back(
                mh::Ipv4HomeAddressReply{0, static_cast<std::uint8_t>(out.ipv4_home->length - 96),
                                         v4_of(out.ipv4_home->addr)});
            if (out.ipv4_router) {
                ba.options.emplace_back(mh::Ipv4DefaultRouterAddress{v4_of(out.ipv4_router->addr)});
            }
        }
        for (const auto& p : out.delegated) {
            ba.options.emplace_back(to_option(p));  // the granted delegated prefixes
        }
        if (out.uplink_key) {
            ba.options.emplace_back(mh::GreKey{*out.uplink_key});
        }
        if (out.nat) {
            ba.options.emplace_back(mh::NatDetection{false, cfg_.nat_refresh_seconds()});
        }
        for (auto& f : out.flow_replies) {
            ba.options.push_back(std::move(f));
        }
        if (out.tlv_unsupported) {
            ba.status = st(BaStatus::kGreTunnelingButTlvHeaderNotSupported);
        }
    }
    if (!accepted && out.ipv4_request != nullptr) {
        // RFC 5844 §3.2: the reply says why no IPv4 home address was assigned.
        ba.options.emplace_back(mh::Ipv4HomeAddressReply{
            out.ipv4_reply_status != 0 ? out.ipv4_reply_status : std::uint8_t{128},
            out.ipv4_request->prefix_length, out.ipv4_request->address});
    }
    std::vector<Outbound> replies{Outbound{from, mh::Message{ba}}};
    for (auto& o : mag_pbus) {
        replies.push_back(std::move(o));  // after the PBA (distributed anchoring)
    }
    if (cd_role_ == CdRole::kMaar && accepted && bu.lifetime != 0 && from.remote != cmd_address_ &&
        !out.nai.empty()) {
        return maar_after_pbu(out.nai, bu.sequence, std::move(replies),
                              std::uint32_t{out.lifetime_units} * 4, t);
    }
    return replies;
}

std::optional<CareOfAddress> Lma::ipv4_router_for(const Prefix& home) const {
    for (const auto& p : cfg_.ipv4_pools()) {
        auto pfx = parse_ipv4_prefix(p.prefix());
        if (pfx && pfx->length <= home.length) {
            bool inside = true;
            for (unsigned b = 0; b < pfx->length; ++b) {
                inside =
                    inside && (((pfx->addr[b / 8] ^ home.addr[b / 8]) >> (7 - b % 8)) & 1u) == 0;
            }
            if (inside) {
                if (auto r = ipv4_pool_router(p)) {
                    return *r;
                }
            }
        }
    }
    return std::nullopt;
}

std::uint8_t Lma::process_pbu(const mh::BindingUpdate& bu, const Peer& from, const LmaTime& t,
                              PbuOutcome& out) {
    const auto& opts = bu.options;
    if (!bu.proxy) {
        // A client Binding Update (MIPv6 home agent role) is not served by this LMA.
        spdlog::info("BU from {} without the P flag: home registration not supported",
                     net::format(from.remote));
        return st(BaStatus::kHomeRegistrationNotSupported);
    }
    const auto* mnid = mh::find_option<mh::MobileNodeIdentifier>(opts);
    if (mnid == nullptr) {
        spdlog::info("PBU from {} seq {}: no MN-ID option", net::format(from.remote), bu.sequence);
        return st(BaStatus::kMissingMnIdentifierOption);
    }
    auto nai_text = identifier_text(mnid->identifier);
    if (mnid->subtype != mh::kMnIdSubtypeNai || !nai_text) {
        spdlog::info("PBU from {} seq {}: MN-ID subtype {} or identifier not a usable NAI",
                     net::format(from.remote), bu.sequence, mnid->subtype);
        return st(BaStatus::kMissingMnIdentifierOption);
    }
    const std::string nai = *nai_text;
    out.nai = nai;

    // MAG identity: its MAG Identifier (RFC 8278), else its address.
    std::string mag_id = net::format(from.remote);
    if (const auto* mid = mh::find_option<mh::MagIdentifier>(opts)) {
        if (auto txt = identifier_text(mid->identifier)) {
            mag_id = *txt;
        }
    }
    auto reject = [&](BaStatus s, std::string_view why) {
        log_refusal(t,
                    fmt::format("session {} PBU from MAG {} ({}) seq {}: {} ({})", nai, mag_id,
                                net::format(from.remote), bu.sequence, ba_status_name(st(s)), why));
        return st(s);
    };
    // Central mobility database mode: the CMD relays a serving MAAR's registration of prefixes
    // anchored here (RFC 8885; only the CMD's address may).
    if (cd_role_ == CdRole::kMaar && !from.udp && from.remote == cmd_address_) {
        return maar_relay_pbu(bu, from, t, nai, mag_id, out);
    }
    if (cd_role_ == CdRole::kMaar && (mh::find_option<mh::ServingMaarAddress>(opts) != nullptr ||
                                      mh::find_option<mh::AnchoredPrefix>(opts) != nullptr)) {
        count("cmd.relay_wrong_source");
        return reject(BaStatus::kMagNotAuthorizedForProxyReg,
                      "a relayed registration (Serving MAAR / Anchored Prefix) not from the CMD");
    }
    // Another hag node registering, as a MAG, a prefix anchored here (docs/scale-out.md).
    // (Its PBUs name it in a MAG Identifier and carry no multipath options; only such PBUs
    // cost the check, which reads the cluster store.)
    if (peer_check_ && !from.udp && mag_id != cfg_.store().node_name() &&
        mh::find_option<mh::MagIdentifier>(opts) != nullptr &&
        mh::find_option<mh::MagMultipathBinding>(opts) == nullptr &&
        mh::find_option<mh::BindingIdentifier>(opts) == nullptr) {
        auto peer = peer_check_(mag_id, from.remote);
        if (!peer && peer.error() == kDeferred) {
            count("cluster.lookups_deferred");
            out.drop = true;
            out.deferred = true;
            return st(BaStatus::kReasonUnspecified);
        }
        if (!peer) {
            count("cluster.lookup_failures");
            log_refusal(t, fmt::format("session {} PBU from MAG {} seq {}: dropped, the cluster "
                                       "store cannot be read ({})",
                                       nai, mag_id, bu.sequence, peer.error()));
            out.drop = true;
            return st(BaStatus::kReasonUnspecified);
        }
        if (*peer) {
            return process_peer_pbu(bu, from, t, nai, mag_id, out);
        }
    }
    // Authorization refusals are also counted by reason (pbu.refused.<reason>).
    auto refuse = [&](BaStatus s, std::string_view reason, std::string_view why) {
        count(fmt::format("pbu.refused.{}", reason));
        return reject(s, why);
    };

    // Authorization (RFC 5213 §5.3.1): is this MAG allowed to register this subscriber?
    const v1::MagAuthorization* auth = nullptr;
    for (const auto& m : cfg_.mags()) {
        if (m.mag_id() == mag_id) {
            auth = &m;
            break;
        }
    }
    if (auth == nullptr && !cfg_.allow_unknown_mags()) {
        return refuse(BaStatus::kMagNotAuthorizedForProxyReg, "mag_unknown", "MAG not configured");
    }
    if (auth != nullptr) {
        if (!auth->source_addresses().empty()) {
            bool ok = false;
            for (const auto& a : auth->source_addresses()) {
                auto pa = parse_address(a);
                ok = ok || (pa && pa->addr == from.remote);
            }
            if (!ok) {
                return refuse(BaStatus::kMagNotAuthorizedForProxyReg, "mag_source_address",
                              "source address not listed for this MAG");
            }
        }
        if (!auth->allowed_nai().empty()) {
            bool ok = false;
            for (const auto& pat : auth->allowed_nai()) {
                ok = ok || nai_matches(pat, nai);
            }
            if (!ok) {
                return refuse(BaStatus::kMagNotAuthorizedForProxyReg, "mag_subscriber",
                              "subscriber not allowed for this MAG");
            }
        }
    }
    const v1::Subscriber* sub = subscribers_.find(nai);
    if (sub == nullptr && !cfg_.allow_unknown_subscribers()) {
        // Nothing is kept for an unknown subscriber: the refusal is a counter and a log line.
        return refuse(BaStatus::kProxyRegistrationNotEnabled, "unknown_subscriber",
                      "unknown subscriber");
    }
    const v1::SubscriberProfile prof = effective_profile(cfg_, sub);

    const auto* hi = mh::find_option<mh::HandoffIndicatorOption>(opts);
    if (hi == nullptr) {
        return reject(BaStatus::kMissingHandoffIndicatorOption, "no Handoff Indicator option");
    }
    const auto* att = mh::find_option<mh::AccessTechnologyTypeOption>(opts);
    if (att == nullptr) {
        return reject(BaStatus::kMissingAccessTechTypeOption, "no Access Technology Type option");
    }
    const auto hnps = mh::find_options<mh::HomeNetworkPrefix>(opts);
    // RFC 5844: a PBU asking for an IPv4 home address needs no HNP option (IPv4-only service).
    const auto* v4req = mh::find_option<mh::Ipv4HomeAddressRequest>(opts);
    out.ipv4_request = v4req;
    if (hnps.empty() && v4req == nullptr) {
        return reject(BaStatus::kMissingHomeNetworkPrefixOption, "no Home Network Prefix option");
    }

    // Multipath: MAG Multipath-Binding (RFC 8278) and/or Binding Identifier (RFC 5648).
    const auto* mmb = mh::find_option<mh::MagMultipathBinding>(opts);
    const auto* bido = mh::find_option<mh::BindingIdentifier>(opts);
    const bool multipath = mmb != nullptr || bido != nullptr;
    std::uint16_t bid = 0;
    if (multipath) {
        if (!prof.multipath()) {
            return reject(mmb != nullptr ? BaStatus::kCannotSupportMultipathBinding
                                         : BaStatus::kMcoaProhibited,
                          "multipath disabled for this subscriber");
        }
        if (mmb != nullptr && mmb->bulk && mmb->overwrite) {
            return reject(BaStatus::kMcoaMalformed, "B and O both set");
        }
        if (mmb != nullptr && bido != nullptr && mmb->binding_id != bido->bid) {
            return reject(BaStatus::kMcoaMalformed,
                          "Binding-Id of the MAG Multipath-Binding and BID option differ");
        }
        bid = mmb != nullptr ? mmb->binding_id : bido->bid;
        if (bid == 0) {
            return reject(BaStatus::kMcoaMalformed, "binding identifier 0");
        }
        if (bido != nullptr && bido->simultaneous_home_foreign) {
            return reject(BaStatus::kMcoaSimultaneousHomeAndForeignProhibited,
                          "H flag: simultaneous home and foreign binding");
        }
    }
    out.bid = bid;
    const bool bulk = mmb != nullptr && mmb->bulk;
    const bool overwrite = mmb != nullptr && mmb->overwrite;

    const Session* existing = cache_.find(nai);
    // Cluster binding store (docs/scale-out.md): another node may have served this subscriber
    // (it failed, or the router moved here). Its binding is checked against this PBU's replay
    // protection first and taken over (sequence numbers, keys, prefixes) only if it passes.
    std::optional<Session> taken;
    if (existing == nullptr && loader_) {
        auto loaded = loader_(nai);
        if (!loaded && loaded.error() == kDeferred) {
            count("cluster.lookups_deferred");
            out.drop = true;
            out.deferred = true;
            return st(BaStatus::kReasonUnspecified);
        }
        if (!loaded) {
            count("cluster.lookup_failures");
            log_refusal(t, fmt::format("session {} PBU from MAG {} seq {}: dropped, the cluster "
                                       "store cannot be read ({})",
                                       nai, mag_id, bu.sequence, loaded.error()));
            out.drop = true;
            return st(BaStatus::kReasonUnspecified);
        }
        taken = std::move(*loaded);
    }
    const Session* basis = existing != nullptr ? existing : (taken ? &*taken : nullptr);
    const Path* existing_path = basis != nullptr ? basis->find_path(bid) : nullptr;

    // Replay protection: the Timestamp option if present (RFC 5213 §5.5), else sequence numbers
    // (RFC 6275 §9.5.1) per path.
    const auto* ts = mh::find_option<mh::Timestamp>(opts);
    if (ts != nullptr) {
        switch (check_timestamp(ts->value, t.timestamp, basis ? basis->last_timestamp : 0,
                                cfg_.timestamp_window_ms())) {
            case TimestampCheck::kOutsideWindow:
                return reject(BaStatus::kTimestampMismatch, "timestamp outside the window");
            case TimestampCheck::kLowerThanPrevious:
                return reject(BaStatus::kTimestampLowerThanPrevAccepted,
                              "timestamp older than the last accepted");
            case TimestampCheck::kOk:
                break;
        }
    } else if (existing_path != nullptr && existing_path->mag_id == mag_id &&
               !sequence_is_newer(bu.sequence, existing_path->last_sequence)) {
        out.sequence = existing_path->last_sequence;
        return reject(BaStatus::kSequenceNumberOutOfWindow,
                      fmt::format("last accepted {}", existing_path->last_sequence));
    }

    // Distributed anchoring: the anchor lives, so it keeps the old prefixes and this node
    // registers them there as a MAG; the router gets a new prefix of this node too.
    if (taken && bu.lifetime != 0 && cfg_.store().distributed_anchoring() && anchor_resolver_ &&
        taken->remote_anchors.empty()) {
        auto anchor = anchor_resolver_(nai);
        if (!anchor) {
            count("cluster.lookup_failures");
            log_refusal(t, fmt::format("session {} PBU from MAG {} seq {}: dropped, the cluster "
                                       "store cannot be read ({})",
                                       nai, mag_id, bu.sequence, anchor.error()));
            out.drop = true;
            return st(BaStatus::kReasonUnspecified);
        }
        if (*anchor) {
            if (adopt_moved(*taken, **anchor, from, prof,
                            std::min<std::uint32_t>(lifetime_seconds(bu.lifetime),
                                                    prof.max_lifetime_seconds()),
                            t)) {
                taken.reset();
                existing = cache_.find(nai);
                existing_path = existing != nullptr ? existing->find_path(bid) : nullptr;
            }
        }
    }
    if (taken) {
        Session s = std::move(*taken);
        taken.reset();
        drop_foreign(nai);  // held here for the node that served it: ours again
        // The paths were bound to the old node's addresses: signal from ours.
        for (auto& p : s.paths) {
            if (p.local.is_ipv4() == CareOfAddress{from.local}.is_ipv4()) {
                p.local = CareOfAddress{from.local};
            }
        }
        // The binding's uplink GRE key came from the old node's range; this node may hold it
        // already (the old node restarted with nothing and handed it out again, and this node
        // took over its earlier holder). Then the binding gets a key of this node's range: the
        // PBA carries it and the MAG uses it from then on (RFC 5845).
        if (s.uplink_gre_key != 0) {
            if (auto c = keys_.claim(s.uplink_gre_key); c) {
                (void)keys_.release(s.uplink_gre_key);
            } else if (auto k = keys_.allocate(); k) {
                (void)keys_.release(*k);  // restore() claims it
                spdlog::info(
                    "session {}: uplink GRE key {} of the taken-over binding is held "
                    "here already; new key {}",
                    nai, s.uplink_gre_key, *k);
                count("cluster.takeover_new_key");
                s.uplink_gre_key = *k;
            }
        }
        // Prefixes the old node relayed to their anchor: this node relays them now (restore()
        // registers them there again, as this node's MAG role).
        for (auto& a : s.remote_anchors) {
            if (!CareOfAddress{from.local}.is_ipv4()) {
                a.local = CareOfAddress{from.local};
            }
        }
        if (auto r = restore(std::move(s), t); !r) {
            count("cluster.takeover_failures");
            log_refusal(t, fmt::format("session {}: binding of another node not taken over ({}); "
                                       "PBU dropped",
                                       nai, r.error()));
            out.drop = true;
            return st(BaStatus::kReasonUnspecified);
        }
        count("cluster.takeovers");
        spdlog::info("session {}: binding taken over from the cluster store (PBU from MAG {})", nai,
                     mag_id);
        existing = cache_.find(nai);
        existing_path = existing != nullptr ? existing->find_path(bid) : nullptr;
    }

    if (bu.lifetime == 0) {
        return deregister(bu, nai, mag_id, bid, bulk, out);
    }

    // Non-MCoA binding present and an MCoA registration without overwrite (RFC 5648).
    if (existing != nullptr && multipath && !overwrite) {
        for (const auto& p : existing->paths) {
            if (p.bid == 0) {
                return reject(BaStatus::kMcoaNonMcoaBindingExists, "a binding without BID exists");
            }
        }
    }

    // Home network prefixes.
    std::vector<Prefix> requested;
    for (const auto* h : hnps) {
        if (h->prefix_length != 0 || !is_zero(h->prefix)) {
            requested.push_back(Prefix{h->prefix, h->prefix_length});
        }
    }
    std::vector<Prefix> prefixes;  // IPv6 home network prefixes
    std::optional<Prefix> v4home;  // IPv4 home address (RFC 5844), IPv4-mapped
    std::vector<Prefix> claimed;   // from pools for this PBU: released again on failure
    PrefixPool* pool = nullptr;
    PrefixPool* v4pool = nullptr;
    std::optional<Prefix> v4claimed;
    std::vector<Prefix> dmnp_claimed;  // delegated prefixes taken from pools for this PBU
    auto undo_claims = [&] {
        for (const auto& p : claimed) {
            (void)pool->release(p);
        }
        if (v4claimed) {
            (void)v4pool->release(*v4claimed);
            v4claimed.reset();
        }
        dmnp_.undo(dmnp_claimed);
    };
    if (existing != nullptr) {
        for (const auto& p : existing->home_prefixes) {
            if (is_ipv4_prefix(p)) {
                v4home = p;
            } else {
                prefixes.push_back(p);
            }
        }
        if (!requested.empty()) {
            auto a = requested, b = prefixes;
            auto less = [](const Prefix& x, const Prefix& y) {
                return std::tie(x.addr, x.length) < std::tie(y.addr, y.length);
            };
            std::sort(a.begin(), a.end(), less);
            std::sort(b.begin(), b.end(), less);
            // A router that moved here from a live anchor asks for the prefixes it had: they
            // are a part of its binding here (which has a new prefix too).
            const bool subset = !existing->remote_anchors.empty() &&
                                std::includes(b.begin(), b.end(), a.begin(), a.end(), less);
            // (Central mobility database mode: the CMD says which prefixes the router keeps.)
            if (a != b && !subset && cd_role_ != CdRole::kMaar) {
                return reject(BaStatus::kBcePbuPrefixSetDoNotMatch,
                              "requested prefixes differ from the binding's");
            }
        }
    } else if (sub != nullptr && sub->home_prefixes_size() > 0) {
        for (const auto& text : sub->home_prefixes()) {
            if (auto p = parse_prefix(text)) {
                prefixes.push_back(*p);
            }
        }
        for (const auto& r : requested) {
            if (std::find(prefixes.begin(), prefixes.end(), r) == prefixes.end()) {
                return reject(
                    BaStatus::kNotAuthorizedForHomeNetworkPrefix,
                    fmt::format("{} is not one of the subscriber's prefixes", to_string(r)));
            }
        }
    } else if (hnps.empty()) {
        // IPv4-only registration (only an IPv4 Home Address Request): no IPv6 prefix.
    } else {
        pool = prof.hnp_pool().empty() ? nullptr : pool_named(prof.hnp_pool());
        if (pool == nullptr) {
            return reject(BaStatus::kInsufficientResources, "no prefix pool for this subscriber");
        }
        if (!requested.empty()) {
            if (!prof.allow_requested_prefix()) {
                return reject(BaStatus::kNotAuthorizedForHomeNetworkPrefix,
                              "requested prefixes are not honoured for this subscriber");
            }
            for (const auto& r : requested) {
                if (auto c = pool->claim(r); !c) {
                    undo_claims();
                    return reject(
                        BaStatus::kNotAuthorizedForHomeNetworkPrefix,
                        fmt::format("requested {}: {}", to_string(r), to_string(c.error())));
                }
                claimed.push_back(r);
            }
            prefixes = requested;
        } else {
            auto p = pool->allocate();
            if (!p) {
                return reject(BaStatus::kInsufficientResources,
                              fmt::format("pool '{}' exhausted", pool->name()));
            }
            claimed.push_back(*p);
            prefixes.push_back(*p);
        }
    }

    // IPv4 home address (RFC 5844 §3.1): kept once assigned; else the subscriber's static one or
    // one from the profile's IPv4 pool, the requested one when the profile allows it.
    if (v4req != nullptr) {
        using R = std::uint8_t;
        constexpr R kReplyAdminProhibited = 129, kReplyIncorrect = 130, kReplyInvalid = 131,
                    kReplyDynamicUnavailable = 132;
        auto refuse4 = [&](BaStatus s4, R reply, std::string why) {
            undo_claims();
            out.ipv4_reply_status = reply;
            count(fmt::format("pbu.ipv4.refused.{}", reply));
            return reject(s4, why);
        };
        std::optional<Prefix> asked;
        if (std::any_of(v4req->address.begin(), v4req->address.end(),
                        [](std::uint8_t b) { return b != 0; })) {
            const unsigned len = v4req->prefix_length == 0 ? 32u : v4req->prefix_length;
            Prefix a{CareOfAddress::from_ipv4(v4req->address).addr,
                     static_cast<std::uint8_t>(96 + std::min(len, 32u))};
            if (len > 32 || !host_bits_clear(a.addr, a.length)) {
                return refuse4(BaStatus::kNotAuthorizedForIpv4HomeAddress, kReplyInvalid,
                               fmt::format("requested IPv4 home address {}/{} is invalid",
                                           to_string(CareOfAddress{a.addr}), len));
            }
            asked = a;
        }
        auto differs = [&](const Prefix& have) {
            return asked && (asked->addr != have.addr ||
                             (v4req->prefix_length != 0 && asked->length != have.length));
        };
        if (v4home) {
            if (differs(*v4home)) {
                return refuse4(BaStatus::kNotAuthorizedForIpv4HomeAddress, kReplyIncorrect,
                               fmt::format("requested IPv4 home address {} differs from the "
                                           "binding's {}",
                                           to_string(*asked), to_string(*v4home)));
            }
        } else if (sub != nullptr && !sub->ipv4_home_address().empty()) {
            auto fixed = parse_ipv4_prefix(sub->ipv4_home_address(), true);
            if (!fixed) {
                return refuse4(BaStatus::kReasonUnspecified, 128, fixed.error());
            }
            if (differs(*fixed)) {
                return refuse4(
                    BaStatus::kNotAuthorizedForIpv4HomeAddress, kReplyIncorrect,
                    fmt::format("{} is not the subscriber's IPv4 home address", to_string(*asked)));
            }
            v4home = *fixed;
        } else {
            v4pool = prof.ipv4_pool().empty() ? nullptr : pool_named(prof.ipv4_pool());
            if (v4pool == nullptr) {
                return refuse4(BaStatus::kNotAuthorizedForIpv4MobilityService,
                               kReplyAdminProhibited, "no IPv4 pool for this subscriber");
            }
            if (asked) {
                if (!prof.allow_requested_prefix()) {
                    return refuse4(BaStatus::kNotAuthorizedForIpv4HomeAddress,
                                   kReplyAdminProhibited,
                                   "requested addresses are not honoured for this subscriber");
                }
                if (auto c = v4pool->claim(*asked); !c) {
                    return refuse4(BaStatus::kNotAuthorizedForIpv4HomeAddress, kReplyIncorrect,
                                   fmt::format("requested IPv4 home address {}: {}",
                                               to_string(*asked), to_string(c.error())));
                }
                v4claimed = *asked;
            } else {
                auto a = v4pool->allocate();
                if (!a) {
                    return refuse4(BaStatus::kInsufficientResources, kReplyDynamicUnavailable,
                                   fmt::format("IPv4 pool '{}' exhausted", v4pool->name()));
                }
                v4claimed = *a;
            }
            v4home = v4claimed;
        }
    }

    // The MAG may be limited to some home network prefixes (every prefix of the binding).
    if (auth != nullptr && !auth->allowed_prefixes().empty()) {
        for (const auto& p : prefixes) {
            bool ok = false;
            for (const auto& text : auth->allowed_prefixes()) {
                auto allowed = parse_prefix(text);
                ok = ok || (allowed && prefix_within(p, *allowed));
            }
            if (!ok) {
                undo_claims();
                return refuse(
                    BaStatus::kNotAuthorizedForHomeNetworkPrefix, "mag_prefix",
                    fmt::format("{} is outside the prefixes allowed for this MAG", to_string(p)));
            }
        }
    }

    // Delegated mobile network prefixes (RFC 7148): granted when the PBU asks, kept by
    // re-registrations that do not.
    std::vector<Prefix> delegated =
        existing != nullptr ? existing->delegated_prefixes : std::vector<Prefix>{};
    if (auto reqs = dmnp_requests(opts); !reqs) {
        undo_claims();
        count("pbu.refused.dmnp");
        return reject(BaStatus::kNotAuthorizedForDelegatedMnp,
                      "malformed Delegated Mobile Network Prefix option");
    } else if (!reqs->empty()) {
        auto g = dmnp_.decide(*reqs, delegated, prof, sub, [&](const Prefix& p) {
            const Session* o = cache_.find_by_prefix(p);
            return o != nullptr && o->nai != nai;
        });
        if (!g) {
            undo_claims();
            count("pbu.refused.dmnp");
            return reject(static_cast<BaStatus>(g.error().status), g.error().why);
        }
        delegated = std::move(g->prefixes);
        dmnp_claimed = std::move(g->claimed);
    }

    // GRE keys (RFC 5845): the MAG's option carries its downlink key; the LMA answers with the
    // uplink key it allocated for the session.
    const auto* gre = mh::find_option<mh::GreKey>(opts);
    if (gre == nullptr && prof.gre_key_required()) {
        undo_claims();
        return reject(BaStatus::kGreKeyOptionRequired, "GRE key option required");
    }
    std::uint32_t uplink_key = existing != nullptr ? existing->uplink_gre_key : 0;
    bool key_allocated = false;
    if (gre != nullptr && uplink_key == 0) {
        auto k = keys_.allocate();
        if (!k) {
            undo_claims();
            return reject(BaStatus::kInsufficientResources, "GRE keys exhausted");
        }
        uplink_key = *k;
        key_allocated = true;
    }

    // The path.
    const std::uint32_t granted =
        std::min<std::uint32_t>(lifetime_seconds(bu.lifetime), prof.max_lifetime_seconds());
    Path path;
    path.bid = bid;
    path.mag_id = mag_id;
    path.coa.addr = from.remote;
    path.local.addr = from.local;
    if (bido != nullptr && bido->coa6) {
        path.coa.addr = *bido->coa6;
    } else if (bido != nullptr && bido->coa4) {
        path.coa = CareOfAddress::from_ipv4(*bido->coa4);
    }
    // NAT detection (RFC 5555 §3.1.3 style): over IPv4 the MAG reports its address in the IPv4
    // Care-of Address option; a PBU arriving from another address crossed a NAT. The path then
    // uses the observed address (and port), which is where the NAT forwards to the MAG.
    if (from.udp && cfg_.nat_detection()) {
        if (const auto* c4 = mh::find_option<mh::Ipv4CareOfAddress>(opts)) {
            const CareOfAddress reported = CareOfAddress::from_ipv4(c4->address);
            if (reported.addr != from.remote) {
                path.nat = true;
                path.nat_port = from.remote_port;
                path.mag_coa = reported;
                path.coa.addr = from.remote;
            }
        }
    }
    path.access_technology = mmb != nullptr ? mmb->if_att : att->value;
    path.if_label = mmb != nullptr ? mmb->if_label : 0;
    path.downlink_gre_key = gre != nullptr ? gre->key : 0;
    path.live = true;
    path.expires_at = t.now + granted;
    path.last_sequence = bu.sequence;
    std::optional<std::uint32_t> reported_kbps;
    for (const auto* v : mh::find_options<mh::VendorSpecific>(opts)) {
        if (v->vendor_id == kLinkMetricsVendorId && v->subtype == kLinkMetricsSubtype) {
            if (v->data.size() == 8) {
                reported_kbps = (std::uint32_t{v->data[0]} << 24) |
                                (std::uint32_t{v->data[1]} << 16) |
                                (std::uint32_t{v->data[2]} << 8) | v->data[3];
            } else {
                count("link_metrics.malformed");
                spdlog::info(
                    "session {} bid {}: link metrics option of {} octets ignored "
                    "(8 expected)",
                    nai, bid, v->data.size());
            }
        }
    }
    if (existing_path != nullptr) {
        path.weight_kbps = existing_path->weight_kbps;  // keep the last report
    }
    if (reported_kbps) {
        path.weight_kbps = *reported_kbps;
    }
    for (const auto& w : prof.access_weights()) {
        const bool match =
            (w.access_technology() == 0 || w.access_technology() == path.access_technology) &&
            (w.if_label() == 0 || w.if_label() == path.if_label);
        if (match && (w.override_link_metrics() || !reported_kbps)) {
            path.weight_kbps = w.kbps();
        }
    }

    Session s;
    if (existing != nullptr) {
        s = *existing;
    }
    s.nai = nai;
    s.home_prefixes = prefixes;
    if (v4home) {
        s.home_prefixes.push_back(*v4home);
    }
    s.delegated_prefixes = delegated;
    s.uplink_gre_key = uplink_key;
    s.last_sequence = bu.sequence;
    if (ts != nullptr) {
        s.last_timestamp = ts->value;
    }
    s.striping = static_cast<std::uint8_t>(prof.striping());
    s.overflow_burst_bytes = prof.overflow_burst_bytes();
    s.primary_access_technology = static_cast<std::uint8_t>(prof.primary_access_technology());
    if (!multipath || overwrite) {
        s.paths.clear();  // a non-MCoA binding, or overwrite: this path replaces every other
    }
    if (bulk) {
        // Bulk re-registration (RFC 8278): every path of this MAG is refreshed.
        for (auto& p : s.paths) {
            if (p.mag_id == mag_id) {
                p.expires_at = t.now + granted;
                p.last_sequence = bu.sequence;
            }
        }
    }
    auto it =
        std::find_if(s.paths.begin(), s.paths.end(), [&](const Path& p) { return p.bid == bid; });
    if (it != s.paths.end()) {
        if (it->mag_id != mag_id || !(it->coa == path.coa)) {
            count("pbu.handoff");
            spdlog::info("session {} bid {}: handoff from MAG {} CoA {} to MAG {} CoA {} (HI {})",
                         nai, bid, it->mag_id, to_string(it->coa), mag_id, to_string(path.coa),
                         hi->value);
        }
        *it = path;
    } else {
        if (s.paths.size() >= prof.max_paths()) {
            if (key_allocated) {
                (void)keys_.release(uplink_key);
            }
            undo_claims();
            return reject(BaStatus::kInsufficientResources,
                          fmt::format("max_paths {} reached", prof.max_paths()));
        }
        s.paths.push_back(path);
    }

    // A MAG is authoritative for its own binding identifiers: a (MAG, BID) still held by
    // another subscriber is stale there (the CPE registers under a new NAI).
    // (Another hag node acting as a MAG registers every subscriber that moved to it under its
    // own MAG identifier: process_peer_pbu, which does not come here.)
    {
        std::vector<std::string> stale;
        for (const Session* other : cache_.find_all_by_path(mag_id, bid)) {
            if (other->nai != nai) {
                stale.push_back(other->nai);
            }
        }
        for (const auto& other_nai : stale) {
            spdlog::info("session {} bid {}: MAG {} reuses the BID, removing it from session {}",
                         nai, bid, mag_id, other_nai);
            (void)cache_.remove_path(other_nai, bid);
            count("pbu.path_taken_over");
        }
    }
    out.flow_replies =
        apply_flow_options(s, opts, [this](const std::string& name) { count(name); });
    const bool is_new = existing == nullptr;
    // existing / existing_path point into the cached session, which update() replaces: read
    // what is needed from them first.
    const bool nat_news =
        path.nat && (existing_path == nullptr || !existing_path->nat ||
                     existing_path->coa != path.coa || existing_path->nat_port != path.nat_port);
    const bool had_path = existing_path != nullptr;
    existing_path = nullptr;
    auto r = is_new ? cache_.insert(s) : cache_.update(s);
    if (!r) {
        if (key_allocated) {
            (void)keys_.release(uplink_key);
        }
        undo_claims();
        switch (r.error()) {
            case CacheError::kCapacity:
                return reject(BaStatus::kInsufficientResources, "binding cache full");
            case CacheError::kTooManyPrefixes:
                count("pbu.too_many_prefixes");
                return reject(BaStatus::kInsufficientResources,
                              fmt::format("{} home and {} delegated prefixes: the data plane "
                                          "routes at most {} per session",
                                          s.home_prefixes.size(), s.delegated_prefixes.size(),
                                          kMaxSessionPrefixes));
            case CacheError::kPrefixInUse:
                if (v4req != nullptr) {
                    out.ipv4_reply_status = 130;  // Incorrect IPv4 home address
                }
                return reject(BaStatus::kNotAuthorizedForHomeNetworkPrefix,
                              "prefix held by another session");
            default:
                return reject(BaStatus::kReasonUnspecified,
                              fmt::format("binding cache: {}", to_string(r.error())));
        }
    }
    touch_peer(path.coa, from, t);
    out.prefixes = prefixes;
    if (path.nat) {
        out.nat = true;
        count("pbu.nat_detected");
        if (nat_news) {
            spdlog::info("session {} bid {}: NAT detected: MAG reports {}, PBU came from {}:{}",
                         nai, bid, to_string(path.mag_coa), to_string(path.coa), path.nat_port);
        }
    }
    if (v4req != nullptr && v4home) {
        out.ipv4_home = v4home;
        out.ipv4_router = ipv4_router_for(*v4home);
        count("pbu.ipv4.assigned");
    }
    out.delegated = delegated;
    if (gre != nullptr) {
        out.uplink_key = uplink_key;
    }
    out.lifetime_units = static_cast<std::uint16_t>(granted / 4);
    out.tlv_unsupported = bu.tlv_header;
    spdlog::info(
        "session {} bid {}: {} from MAG {} CoA {} att {} label {} hnp {}{}{} uplink-key {} "
        "downlink-key {} weight {} kbps lifetime {}s",
        nai, bid, is_new ? "registered" : (had_path ? "re-registered" : "path added"), mag_id,
        to_string(path.coa), path.access_technology, path.if_label,
        prefixes.empty() ? std::string("-") : to_string(prefixes.front()),
        v4home ? " ipv4 " + to_string(*v4home) : std::string(),
        [&] {
            std::string d;
            for (const auto& p : delegated) {
                d += " dmnp " + prefix_text_any(p);
            }
            return d;
        }(),
        uplink_key, path.downlink_gre_key, path.weight_kbps, granted);
    return st(BaStatus::kAccepted);
}

bool Lma::adopt_moved(const Session& old, const AnchorPeer& anchor, const Peer& from,
                      const v1::SubscriberProfile& prof, std::uint32_t lifetime_s,
                      const LmaTime& t) {
    std::vector<Prefix> old_prefixes;
    for (const auto& p : old.home_prefixes) {
        if (!is_ipv4_prefix(p)) {
            old_prefixes.push_back(p);
        }
    }
    PrefixPool* pool = prof.hnp_pool().empty() ? nullptr : pool_named(prof.hnp_pool());
    if (old_prefixes.empty() || pool == nullptr || from.udp) {
        return false;  // nothing to keep at the anchor, or no prefix of ours to add
    }
    auto fresh = pool->allocate();
    if (!fresh) {
        count("anchoring.no_prefix");
        return false;
    }
    auto uplink = keys_.allocate();
    auto downlink = keys_.allocate();
    if (!uplink || !downlink) {
        (void)pool->release(*fresh);
        if (uplink) {
            (void)keys_.release(*uplink);
        }
        if (downlink) {
            (void)keys_.release(*downlink);
        }
        count("anchoring.no_key");
        return false;
    }
    Session s;
    s.nai = old.nai;
    s.home_prefixes = old_prefixes;  // the old ones first (the PBA lists them first)
    s.home_prefixes.push_back(*fresh);
    s.uplink_gre_key = *uplink;
    s.last_sequence = old.last_sequence;
    s.last_timestamp = old.last_timestamp;
    s.paths = old.paths;
    for (auto& p : s.paths) {
        if (p.local.is_ipv4() == CareOfAddress{from.local}.is_ipv4()) {
            p.local = CareOfAddress{from.local};
        }
    }
    for (const auto& p : old_prefixes) {
        s.remote_anchors.push_back(RemoteAnchor{p, anchor.node, CareOfAddress{anchor.address},
                                                CareOfAddress{from.local}, 0, *downlink});
    }
    const std::string nai = s.nai;
    if (auto r = cache_.insert(std::move(s)); !r) {
        (void)pool->release(*fresh);
        (void)keys_.release(*uplink);
        (void)keys_.release(*downlink);
        count("anchoring.adopt_failures");
        spdlog::warn("session {}: cannot serve it with the anchor at {} kept ({}); taking it over",
                     nai, anchor.node, to_string(r.error()));
        return false;
    }
    Peer to;
    to.local = from.local;
    to.remote = anchor.address;
    if (auto o = mag_.start(nai, to, old_prefixes, *downlink, lifetime_s, t)) {
        mag_out_.push_back(std::move(*o));
    }
    count("anchoring.moved_in");
    spdlog::info("session {}: moved here from node {} ({}), which keeps {} anchored; new prefix {}",
                 nai, anchor.node, net::format(anchor.address), to_string(old_prefixes.front()),
                 to_string(*fresh));
    return true;
}

std::uint8_t Lma::process_peer_pbu(const mh::BindingUpdate& bu, const Peer& from, const LmaTime& t,
                                   const std::string& nai, const std::string& mag_id,
                                   PbuOutcome& out, const std::vector<Prefix>* anchored,
                                   const Ipv6Address* coa) {
    count("anchoring.peer_pbu");
    const auto& opts = bu.options;
    auto reject = [&](BaStatus s, std::string_view why) {
        log_refusal(t,
                    fmt::format("session {} PBU from node {} ({}) seq {}: {} ({})", nai, mag_id,
                                net::format(from.remote), bu.sequence, ba_status_name(st(s)), why));
        count("anchoring.peer_pbu_refused");
        return st(s);
    };
    std::vector<Prefix> requested;
    for (const auto* h : mh::find_options<mh::HomeNetworkPrefix>(opts)) {
        if (h->prefix_length == 0 || h->prefix_length > 128) {
            return reject(BaStatus::kNotAuthorizedForHomeNetworkPrefix, "no specific prefix");
        }
        requested.push_back(Prefix{h->prefix, h->prefix_length});
    }
    if (anchored != nullptr) {
        requested = *anchored;
    }
    if (requested.empty()) {
        return reject(BaStatus::kMissingHomeNetworkPrefixOption, "no Home Network Prefix option");
    }
    const auto* gre = mh::find_option<mh::GreKey>(opts);
    if (gre == nullptr) {
        return reject(BaStatus::kGreKeyOptionRequired, "GRE key option required");
    }
    if (const auto* ts = mh::find_option<mh::Timestamp>(opts);
        ts != nullptr && check_timestamp(ts->value, t.timestamp, 0, cfg_.timestamp_window_ms()) ==
                             TimestampCheck::kOutsideWindow) {
        return reject(BaStatus::kTimestampMismatch, "timestamp outside the window");
    }
    const Session* existing = cache_.find(nai);
    const Path* relay = nullptr;
    if (existing != nullptr && existing->paths.size() == 1 && existing->paths[0].relay &&
        (existing->paths[0].mag_id == mag_id || anchored != nullptr)) {
        relay = &existing->paths[0];
        if (!sequence_is_newer(bu.sequence, relay->last_sequence)) {
            out.sequence = relay->last_sequence;
            return reject(BaStatus::kSequenceNumberOutOfWindow,
                          fmt::format("last accepted {}", relay->last_sequence));
        }
    }
    out.prefixes = requested;
    if (bu.lifetime == 0) {
        if (relay != nullptr) {
            (void)cache_.remove(nai);
            count("anchoring.peer_deregistered");
            spdlog::info("session {}: node {} de-registered it; {} released", nai, mag_id,
                         to_string(requested.front()));
        } else {
            count("pbu.deregistration_unknown");
        }
        return st(BaStatus::kAccepted);
    }
    Session s;
    std::vector<std::pair<PrefixPool*, Prefix>> claimed;
    std::uint32_t key_allocated = 0;
    auto undo = [&] {
        for (auto& [pool, pfx] : claimed) {
            (void)pool->release(pfx);
        }
        if (key_allocated != 0) {
            (void)keys_.release(key_allocated);
        }
    };
    if (existing != nullptr) {
        for (const auto& r : requested) {
            const bool ours = anchored == nullptr ||
                              std::any_of(pools_.begin(), pools_.end(),
                                          [&](const PrefixPool& p) { return p.contains(r); });
            if (!ours || std::find(existing->home_prefixes.begin(), existing->home_prefixes.end(),
                                   r) == existing->home_prefixes.end()) {
                return reject(BaStatus::kBcePbuPrefixSetDoNotMatch,
                              fmt::format("{} is not one of the binding's prefixes", to_string(r)));
            }
            // A prefix this node only relays to its anchor is not this node's to relay on.
            if (const auto a =
                    std::find_if(existing->remote_anchors.begin(), existing->remote_anchors.end(),
                                 [&](const RemoteAnchor& x) { return x.prefix == r; });
                a != existing->remote_anchors.end()) {
                return reject(
                    BaStatus::kBcePbuPrefixSetDoNotMatch,
                    fmt::format("{} is anchored at node {}, not here", to_string(r), a->node));
            }
        }
        s = *existing;
        if (anchored != nullptr) {
            s.home_prefixes = requested;  // prefixes anchored elsewhere are not this node's now
        }
    } else {
        // This node restarted, or the binding expired here meanwhile: the prefixes must be of
        // this node's pools and free (held for the serving node's binding is free for it).
        drop_foreign(nai);
        for (const auto& r : requested) {
            PrefixPool* pool = nullptr;
            for (auto& p : pools_) {
                if (p.contains(r)) {
                    pool = &p;
                }
            }
            if (pool == nullptr || !pool->claim(r)) {
                undo();
                return reject(BaStatus::kNotAuthorizedForHomeNetworkPrefix,
                              fmt::format("{} is not a free prefix of this node", to_string(r)));
            }
            claimed.emplace_back(pool, r);
        }
        s.nai = nai;
        s.home_prefixes = requested;
    }
    if (s.uplink_gre_key == 0) {
        auto k = keys_.allocate();
        if (!k) {
            undo();
            return reject(BaStatus::kInsufficientResources, "GRE keys exhausted");
        }
        s.uplink_gre_key = key_allocated = *k;
    }
    const v1::SubscriberProfile prof = effective_profile(cfg_, subscribers_.find(nai));
    const std::uint32_t granted =
        std::min<std::uint32_t>(lifetime_seconds(bu.lifetime), prof.max_lifetime_seconds());
    Path p;
    p.bid = 1;  // one path (a data plane path needs a BID; the peer sends none)
    p.mag_id = mag_id;
    p.coa.addr = coa != nullptr ? *coa : from.remote;
    p.local.addr = from.local;
    p.access_technology = 1;  // virtual
    p.downlink_gre_key = gre->key;
    p.relay = true;
    p.live = true;
    p.last_sequence = bu.sequence;
    p.expires_at = t.now + granted;
    const bool was_relay = relay != nullptr;
    relay = nullptr;
    s.paths = {p};
    s.flows.clear();
    // A binding that served the router here and relayed its older prefixes to their anchors
    // (remote anchors) only relays now: the prefixes anchored elsewhere are no longer this
    // node's to route (the serving node registers them at their anchors itself), and neither
    // are the downlink keys nor the registration it held for them.
    const std::vector<RemoteAnchor> dropped = std::move(s.remote_anchors);
    s.remote_anchors.clear();
    std::erase_if(s.home_prefixes, [&](const Prefix& h) {
        return std::any_of(dropped.begin(), dropped.end(),
                           [&](const RemoteAnchor& a) { return a.prefix == h; });
    });
    s.last_sequence = bu.sequence;
    auto r = existing != nullptr ? cache_.update(s) : cache_.insert(s);
    if (!r) {
        undo();
        return reject(BaStatus::kReasonUnspecified,
                      fmt::format("binding cache: {}", to_string(r.error())));
    }
    if (!dropped.empty() && cd_role_ != CdRole::kMaar) {
        // (A MAAR's relay keys and registration are the central mobility database's, ended
        // with the session: lma_cmd.cpp.)
        std::vector<std::uint32_t> released;
        for (const auto& a : dropped) {
            if (a.downlink_key != 0 &&
                std::find(released.begin(), released.end(), a.downlink_key) == released.end()) {
                (void)keys_.release(a.downlink_key);
                released.push_back(a.downlink_key);
            }
        }
        // Its registration at the old anchor ends too: refreshed, it would take the anchor's
        // relay back from the node now serving the router.
        if (auto o = mag_.stop(nai, t)) {
            mag_out_.push_back(std::move(*o));
        }
        count("anchoring.remote_anchors_handed_on");
        spdlog::info(
            "session {}: node {} serves it now; {} prefix(es) anchored elsewhere and "
            "their relay left to it",
            nai, mag_id, dropped.size());
    }
    if (coa != nullptr) {
        Peer to = from;
        to.remote = *coa;
        touch_peer(p.coa, to, t);
    } else {
        touch_peer(p.coa, from, t);
    }
    out.uplink_key = s.uplink_gre_key;
    out.lifetime_units = static_cast<std::uint16_t>(granted / 4);
    if (!was_relay) {
        count("anchoring.relayed_out");
        spdlog::info(
            "session {}: served by node {} ({}) now; {} stays anchored here, tunnelled "
            "to it (downlink key {}, uplink key {})",
            nai, mag_id, net::format(p.coa.addr), to_string(requested.front()), gre->key,
            s.uplink_gre_key);
    }
    return st(BaStatus::kAccepted);
}

void Lma::handle_pba(const mh::BindingAcknowledgement& ba, const Peer& from, const LmaTime& t) {
    last_now_ = t.now;
    last_timestamp_ = t.timestamp;
    if (cd_role_ == CdRole::kCmd) {
        if (auto ev = relay_.on_pba(ba, from, t)) {
            cmd_relay_event(*ev, t);
        }
        return;
    }
    if (cd_role_ == CdRole::kMaar) {
        if (from.remote != cmd_address_) {
            count("cmd.pba_wrong_source");
            return;
        }
        if (auto ev = mag_.on_pba(ba, from, t)) {
            maar_cmd_event(*ev, t);
        }
        return;
    }
    if (auto ev = mag_.on_pba(ba, from, t)) {
        apply_mag_event(*ev);
    }
}

void Lma::apply_mag_event(const MagEvent& ev) {
    const Session* s = cache_.find(ev.nai);
    switch (ev.kind) {
        case MagEvent::Kind::kDeregistered:
            count("anchoring.deregistered_at_anchor");
            return;
        case MagEvent::Kind::kRegistered:
            count("anchoring.registered_at_anchor");
            break;
        case MagEvent::Kind::kRefused:
        case MagEvent::Kind::kGaveUp:
            count("anchoring.anchor_failures");
            break;
    }
    if (s == nullptr || s->remote_anchors.empty()) {
        return;
    }
    Session copy = *s;
    const std::uint32_t key = ev.kind == MagEvent::Kind::kRegistered ? ev.uplink_key : 0;
    bool changed = false;
    for (auto& a : copy.remote_anchors) {
        changed = changed || a.uplink_key != key;
        a.uplink_key = key;
    }
    if (changed) {
        spdlog::info("session {}: old prefix {} {} at node {} (uplink key {})", copy.nai,
                     to_string(copy.remote_anchors.front().prefix),
                     key != 0 ? "registered" : "NOT registered", copy.remote_anchors.front().node,
                     key);
        (void)cache_.update(std::move(copy));
    }
}

std::uint8_t Lma::deregister(const mh::BindingUpdate& bu, const std::string& nai,
                             const std::string& mag_id, std::uint16_t bid, bool bulk,
                             PbuOutcome& out) {
    (void)bu;
    const Session* s = cache_.find(nai);
    if (s == nullptr) {
        // Idempotent: a retransmitted de-registration whose PBA was lost finds nothing.
        count("pbu.deregistration_unknown");
        spdlog::info("session {} bid {}: de-registration from MAG {} for no binding", nai, bid,
                     mag_id);
        return st(BaStatus::kAccepted);
    }
    out.prefixes = s->home_prefixes;
    std::vector<std::uint16_t> remove;
    for (const auto& p : s->paths) {
        const bool selected = bulk || bid == 0 ? true : p.bid == bid;
        if (!selected) {
            continue;
        }
        if (p.mag_id != mag_id) {
            // RFC 5213: a de-registration from a MAG that no longer serves the path (it moved)
            // must not tear down the new binding.
            spdlog::info(
                "session {} bid {}: de-registration from MAG {} ignored, path is at "
                "MAG {}",
                nai, p.bid, mag_id, p.mag_id);
            count("pbu.deregistration_stale_mag");
            continue;
        }
        remove.push_back(p.bid);
    }
    if (bid != 0 && !bulk && remove.empty() && s->find_path(bid) == nullptr) {
        count("pbu.deregistration_unknown");
        spdlog::info("session {} bid {}: de-registration for an unknown BID", nai, bid);
    }
    for (auto b : remove) {
        (void)cache_.remove_path(nai, b);
        spdlog::info("session {} bid {}: de-registered by MAG {}", nai, b, mag_id);
    }
    count("pbu.deregistered_paths", remove.size());
    return st(BaStatus::kAccepted);
}

void Lma::touch_peer(const CareOfAddress& coa, const Peer& from, const LmaTime& t) {
    auto [it, inserted] = peers_.try_emplace(coa.addr);
    it->second.peer = from;
    if (inserted && cfg_.heartbeat_interval_seconds() > 0) {
        it->second.next_heartbeat = t.now + cfg_.heartbeat_interval_seconds();
        heartbeat_queue_.emplace_back(it->second.next_heartbeat, coa.addr);
    }
}

void Lma::set_peer_live(const Ipv6Address& coa, bool live) {
    CareOfAddress c{coa};
    for (const Session* s : cache_.find_by_coa(c)) {
        const std::string nai = s->nai;
        std::vector<std::uint16_t> bids;
        for (const auto& p : s->paths) {
            if (p.coa == c && p.live != live) {
                bids.push_back(p.bid);
            }
        }
        for (auto b : bids) {
            (void)cache_.set_path_live(nai, b, live);
            spdlog::warn("session {} bid {}: path {} (CoA {})", nai, b, live ? "up" : "DOWN",
                         to_string(c));
        }
    }
}

std::vector<Outbound> Lma::handle_heartbeat(const mh::Heartbeat& hb, const Peer& from,
                                            const LmaTime& t) {
    (void)t;
    auto it = peers_.find(from.remote);
    if (!hb.response) {
        count("heartbeat.request_received");
        if (it != peers_.end()) {
            it->second.missed = 0;
            if (it->second.down) {
                it->second.down = false;
                set_peer_live(from.remote, true);
            }
        }
        count("heartbeat.response_sent");
        return {Outbound{from, make_heartbeat(true, hb.sequence, restart_counter_)}};
    }
    count("heartbeat.response_received");
    if (it != peers_.end() && it->second.outstanding == hb.sequence) {
        it->second.outstanding.reset();
        it->second.missed = 0;
        if (it->second.down) {
            it->second.down = false;
            set_peer_live(from.remote, true);
        }
    }
    return {};
}

void Lma::handle_revocation_ack(const mh::BindingRevocation& br, const Peer& from) {
    auto it = pending_.find(br.sequence);
    if (it == pending_.end() || it->second.bri.to.remote != from.remote) {
        count("revocation.ack_unmatched");
        return;
    }
    count("revocation.acknowledged");
    spdlog::info("session {} bid {}: revocation acknowledged by {} (status {})", it->second.nai,
                 it->second.bid, net::format(from.remote), br.trigger_or_status);
    pending_.erase(it);
}

std::vector<Outbound> Lma::revoke(const Session& s, const Path* path, std::uint8_t trigger,
                                  const LmaTime& t) {
    std::vector<Outbound> out;
    auto one = [&](const Path& p) {
        auto peer_it = peers_.find(p.coa.addr);
        Peer to;
        if (peer_it != peers_.end()) {
            to = peer_it->second.peer;
        } else {
            to.remote = p.coa.addr;
            to.udp = p.coa.is_ipv4();
            to.remote_port = to.udp ? 5436 : 0;
        }
        mh::BindingRevocation br;
        br.br_type = mh::kBrTypeIndication;
        br.trigger_or_status = trigger;
        br.sequence = ++bri_sequence_;
        br.proxy = true;
        br.options.push_back(
            mh::MobileNodeIdentifier{mh::kMnIdSubtypeNai, mh::Bytes(s.nai.begin(), s.nai.end())});
        for (const auto& pfx : s.home_prefixes) {
            br.options.push_back(mh::HomeNetworkPrefix{pfx.length, pfx.addr});
        }
        if (p.bid != 0) {
            mh::BindingIdentifier b;
            b.bid = p.bid;
            br.options.push_back(b);
        }
        Outbound ob{to, mh::Message{br}};
        if (cfg_.revocation_retries() > 0) {
            pending_[br.sequence] =
                PendingRevocation{ob, cfg_.revocation_retries(), t.now + 1, 1, s.nai, p.bid};
        }
        count("revocation.sent");
        spdlog::info("session {} bid {}: Binding Revocation Indication to {} (trigger {})", s.nai,
                     p.bid, net::format(to.remote), trigger);
        out.push_back(std::move(ob));
    };
    if (path != nullptr) {
        one(*path);
    } else {
        for (const auto& p : s.paths) {
            one(p);
        }
    }
    return out;
}

std::vector<Outbound> Lma::tick(const LmaTime& t) {
    std::vector<Outbound> out;
    last_now_ = t.now;
    last_timestamp_ = t.timestamp;
    cache_.expire(t.now);
    // MAG role (distributed anchoring): retransmissions, refreshes, de-registrations of
    // bindings that ended.
    {
        std::vector<MagEvent> events;
        auto pbus = mag_.tick(t, events);
        for (const auto& ev : events) {
            if (cd_role_ == CdRole::kMaar) {
                maar_cmd_event(ev, t);
            } else {
                apply_mag_event(ev);
            }
        }
        if (cd_role_ != CdRole::kOff) {
            std::vector<MagEvent> relay_events;
            auto relays = relay_.tick(t, relay_events);
            for (const auto& ev : relay_events) {
                cmd_relay_event(ev, t);
            }
            pbus.insert(pbus.end(), std::make_move_iterator(relays.begin()),
                        std::make_move_iterator(relays.end()));
            cmd_tick(t);
        }
        out.insert(out.end(), std::make_move_iterator(mag_out_.begin()),
                   std::make_move_iterator(mag_out_.end()));
        mag_out_.clear();
        out.insert(out.end(), std::make_move_iterator(pbus.begin()),
                   std::make_move_iterator(pbus.end()));
    }

    // Heartbeats (RFC 5847): one request per peer per interval; missed ones take paths down.
    const auto interval = cfg_.heartbeat_interval_seconds();
    while (interval > 0 && !heartbeat_queue_.empty() && heartbeat_queue_.front().first <= t.now) {
        const auto [due, addr] = heartbeat_queue_.front();
        heartbeat_queue_.pop_front();
        auto it = peers_.find(addr);
        if (it == peers_.end() || it->second.next_heartbeat != due) {
            continue;  // stale queue entry
        }
        if (cache_.find_by_coa(CareOfAddress{addr}).empty()) {
            peers_.erase(it);  // no binding uses this peer any more
            continue;
        }
        PeerState& ps = it->second;
        if (ps.outstanding) {
            ++ps.missed;
            count("heartbeat.missed");
            if (ps.missed >= cfg_.heartbeat_missed_limit() && !ps.down) {
                ps.down = true;
                set_peer_live(addr, false);
            }
        }
        ps.outstanding = ++heartbeat_sequence_;
        count("heartbeat.request_sent");
        out.push_back(Outbound{ps.peer, make_heartbeat(false, *ps.outstanding, restart_counter_)});
        ps.next_heartbeat = t.now + interval;
        heartbeat_queue_.emplace_back(ps.next_heartbeat, addr);
    }

    // BRI retransmission with exponential backoff (RFC 5846 §7).
    for (auto it = pending_.begin(); it != pending_.end();) {
        auto& pr = it->second;
        if (pr.next_at > t.now) {
            ++it;
            continue;
        }
        if (pr.retries_left == 0) {
            count("revocation.unacknowledged");
            spdlog::warn("session {} bid {}: revocation not acknowledged by {}", pr.nai, pr.bid,
                         net::format(pr.bri.to.remote));
            it = pending_.erase(it);
            continue;
        }
        --pr.retries_left;
        pr.backoff *= 2;
        pr.next_at = t.now + pr.backoff;
        count("revocation.retransmitted");
        out.push_back(pr.bri);
        ++it;
    }

    // Idle rate-limit buckets are forgotten after a minute.
    for (auto it = buckets_.begin(); it != buckets_.end();) {
        it = (t.now_ms - it->second.last_ms > 60'000) ? buckets_.erase(it) : std::next(it);
    }
    return out;
}

std::vector<Outbound> Lma::reload(v1::ControlConfig cfg, const LmaTime& t) {
    std::vector<Outbound> out;
    // The new pools; a session whose prefixes no new pool (nor a static assignment) covers
    // lost its pool.
    std::vector<PrefixPool> next = make_pools(cfg);
    const SubscriberIndex next_subscribers(cfg);
    std::vector<std::string> doomed;
    cache_.for_each_page(0, cache_.size() + 1, [&](const Session& s) {
        for (const auto& pfx : s.home_prefixes) {
            bool covered = false;
            for (const auto& pool : next) {
                covered = covered || pool.contains(pfx);
            }
            const v1::Subscriber* sub = next_subscribers.find(s.nai);
            if (sub != nullptr) {
                for (const auto& text : sub->home_prefixes()) {
                    auto p = parse_prefix(text);
                    covered = covered || (p && *p == pfx);
                }
                if (!sub->ipv4_home_address().empty()) {
                    auto p = parse_ipv4_prefix(sub->ipv4_home_address(), true);
                    covered = covered || (p && *p == pfx);
                }
            }
            if (!covered) {
                doomed.push_back(s.nai);
                return;
            }
        }
    });
    for (const auto& nai : doomed) {
        const Session* s = cache_.find(nai);
        if (s == nullptr) {
            continue;
        }
        const Session copy = *s;
        auto bris = revoke(copy, nullptr, kRevocationTriggerAdministrative, t);
        out.insert(out.end(), bris.begin(), bris.end());
        (void)cache_.remove(nai);
        spdlog::warn("session {}: its prefix pool was withdrawn, binding revoked", nai);
        count("sessions.revoked_pool_withdrawn");
    }
    // Remaining sessions claim their prefixes in the new pools.
    cache_.for_each_page(0, cache_.size() + 1, [&](const Session& s) {
        for (const auto& pfx : s.home_prefixes) {
            for (auto& pool : next) {
                if (pool.contains(pfx)) {
                    (void)pool.claim(pfx);
                }
            }
        }
    });
    // Delegated prefixes: the new pools take what the sessions hold (a prefix of a withdrawn
    // DMNP pool stays with its session until it de-registers).
    DmnpPools next_dmnp(cfg);
    cache_.for_each_page(0, cache_.size() + 1, [&](const Session& s) {
        for (const auto& pfx : s.delegated_prefixes) {
            (void)next_dmnp.claim(pfx);
        }
    });
    dmnp_ = std::move(next_dmnp);
    pools_ = std::move(next);
    cfg_ = std::move(cfg);
    subscribers_ = SubscriberIndex(cfg_);
    listed_sources_ = listed_sources(cfg_);
    for (auto& [key, b] : buckets_) {
        b.proven = b.proven || listed_sources_.contains(key);
    }
    count("config.reloads");
    return out;
}

Result<void, std::string> Lma::restore(Session s, const LmaTime& t) {
    drop_foreign(s.nai);  // its prefixes and keys are this binding's again
    if (cd_role_ == CdRole::kCmd) {
        // A directory entry: no pools or keys of this node; registered at its previous
        // anchors again (their refresh timers were lost with the restart).
        const std::string nai = s.nai;
        const Seconds expires = s.expires_at();
        const Session copy = s;
        if (auto r = cache_.insert(std::move(s)); !r) {
            return unexpected(fmt::format("binding cache: {}", to_string(r.error())));
        }
        if (!copy.paths.empty() && expires > t.now) {
            const Path& sp = copy.paths.front();
            std::map<Ipv6Address, std::vector<Prefix>> by_anchor;
            for (const auto& a : copy.remote_anchors) {
                if (a.anchor.addr != sp.coa.addr) {
                    by_anchor[a.anchor.addr].push_back(a.prefix);
                }
            }
            for (const auto& [addr, prefixes] : by_anchor) {
                Peer to;
                to.local = sp.local.addr;
                to.remote = addr;
                MagFormat f{MagFormat::Prefixes::kAnchoredPrefix, sp.coa.addr, sp.mag_id, nai};
                if (auto o = relay_.start(MagRole::relay_key(nai, addr), to, prefixes,
                                          sp.downlink_gre_key,
                                          static_cast<std::uint32_t>(expires - t.now), t, f)) {
                    mag_out_.push_back(std::move(*o));
                }
            }
        }
        count("sessions.restored");
        return {};
    }
    // Striping settings are not stored: they come from the subscriber's profile, as at a PBU
    // (so a profile changed while hag-control was down applies at once).
    {
        const v1::SubscriberProfile prof = effective_profile(cfg_, subscribers_.find(s.nai));
        s.striping = static_cast<std::uint8_t>(prof.striping());
        s.overflow_burst_bytes = prof.overflow_burst_bytes();
        s.primary_access_technology = static_cast<std::uint8_t>(prof.primary_access_technology());
    }
    std::vector<std::pair<PrefixPool*, Prefix>> claimed;
    auto undo = [&] {
        for (auto& [pool, pfx] : claimed) {
            (void)pool->release(pfx);
        }
    };
    for (const auto& pfx : s.home_prefixes) {
        for (auto& pool : pools_) {
            if (!pool.contains(pfx)) {
                continue;
            }
            if (auto c = pool.claim(pfx); !c) {
                undo();
                return unexpected(fmt::format("prefix {} in pool {}: {}", to_string(pfx),
                                              pool.name(), to_string(c.error())));
            }
            claimed.emplace_back(&pool, pfx);
        }
    }
    std::vector<Prefix> dmnp_claimed;
    for (const auto& pfx : s.delegated_prefixes) {
        if (auto c = dmnp_.claim(pfx); !c) {
            undo();
            dmnp_.undo(dmnp_claimed);
            return unexpected(c.error());
        }
        if (dmnp_.covered(pfx)) {
            dmnp_claimed.push_back(pfx);
        }
    }
    if (s.uplink_gre_key != 0) {
        if (auto c = keys_.claim(s.uplink_gre_key); !c) {
            undo();
            dmnp_.undo(dmnp_claimed);
            return unexpected(
                fmt::format("uplink GRE key {}: {}", s.uplink_gre_key, to_string(c.error())));
        }
    }
    // Distributed anchoring: the relay's downlink keys are this node's too.
    std::vector<std::uint32_t> relay_keys;
    for (const auto& a : s.remote_anchors) {
        if (a.downlink_key == 0 ||
            std::find(relay_keys.begin(), relay_keys.end(), a.downlink_key) != relay_keys.end()) {
            continue;
        }
        if (auto c = keys_.claim(a.downlink_key); !c) {
            for (auto k : relay_keys) {
                (void)keys_.release(k);
            }
            undo();
            dmnp_.undo(dmnp_claimed);
            if (s.uplink_gre_key != 0) {
                (void)keys_.release(s.uplink_gre_key);
            }
            return unexpected(
                fmt::format("relay downlink GRE key {}: {}", a.downlink_key, to_string(c.error())));
        }
        relay_keys.push_back(a.downlink_key);
    }
    std::vector<Peer> peers;
    for (const auto& p : s.paths) {
        Peer peer;
        peer.udp = p.coa.is_ipv4();
        peer.local = p.local.addr;
        peer.remote = p.coa.addr;
        // The MAG's port is not stored (5436 until it signals again), except behind a NAT.
        peer.remote_port = p.nat ? p.nat_port : 0;
        peers.push_back(peer);
    }
    const std::uint32_t key = s.uplink_gre_key;
    const std::string nai = s.nai;
    const std::vector<RemoteAnchor> anchors = s.remote_anchors;
    const Seconds expires = s.expires_at();
    if (auto r = cache_.insert(std::move(s)); !r) {
        undo();
        dmnp_.undo(dmnp_claimed);
        if (key != 0) {
            (void)keys_.release(key);
        }
        for (auto k : relay_keys) {
            (void)keys_.release(k);
        }
        return unexpected(fmt::format("binding cache: {}", to_string(r.error())));
    }
    for (const auto& peer : peers) {
        touch_peer(CareOfAddress{peer.remote}, peer, t);
    }
    if (cd_role_ == CdRole::kMaar) {
        // Central mobility database mode: the relay downlink key is the one sent to the CMD;
        // a session served here registers at the CMD again (a relay binding does not).
        if (!relay_keys.empty()) {
            cmd_keys_[nai] = relay_keys.front();
            for (std::size_t i = 1; i < relay_keys.size(); ++i) {
                (void)keys_.release(relay_keys[i]);
            }
        }
        const Session* cur = cache_.find(nai);
        const bool served = cur != nullptr && !cur->paths.empty() && !cur->paths.front().relay;
        if (served && expires > t.now) {
            if (!cmd_keys_.contains(nai)) {
                if (auto k = keys_.allocate()) {
                    cmd_keys_[nai] = *k;
                }
            }
            Peer to;
            to.local = node_address_;
            to.remote = cmd_address_;
            MagFormat f{MagFormat::Prefixes::kLocalPrefix, std::nullopt, "", ""};
            if (auto o = mag_.start(nai, to, maar_local_prefixes(*cur), cmd_keys_[nai],
                                    static_cast<std::uint32_t>(expires - t.now), t, f)) {
                mag_out_.push_back(std::move(*o));
            }
        }
    } else if (!anchors.empty() && expires > t.now) {
        // Registered at the old anchor again by this node (after a restart, or taking over
        // from the node that served it): the anchor's binding then points here.
        std::vector<Prefix> old;
        for (const auto& a : anchors) {
            if (a.node == anchors.front().node) {
                old.push_back(a.prefix);
            }
        }
        Peer to;
        to.local = anchors.front().local.addr;
        to.remote = anchors.front().anchor.addr;
        if (auto o = mag_.start(nai, to, old, anchors.front().downlink_key,
                                static_cast<std::uint32_t>(expires - t.now), t)) {
            mag_out_.push_back(std::move(*o));
        }
    }
    count("sessions.restored");
    return {};
}

std::vector<std::pair<std::string, std::uint64_t>> Lma::counters() const {
    std::vector<std::pair<std::string, std::uint64_t>> c(counters_.begin(), counters_.end());
    c.emplace_back("heartbeat.peers", peers_.size());
    c.emplace_back("bindings.expiry_entries", cache_.expiry_entries());
    c.emplace_back("revocation.pending", pending_.size());
    c.emplace_back("gre_keys.in_use", keys_.in_use());
    for (const auto& [k, v] : mag_.counters()) {
        c.emplace_back(k, v);
    }
    c.emplace_back("mag.registrations", mag_.size());
    c.emplace_back("cluster.foreign_holds", foreign_.size());
    if (cd_role_ == CdRole::kCmd) {
        for (const auto& [k, v] : relay_.counters()) {
            c.emplace_back("cmd.relay." + k.substr(k.find('.') + 1), v);
        }
        c.emplace_back("cmd.relay.registrations", relay_.size());
        c.emplace_back("cmd.pending", txns_.size());
        c.emplace_back("cmd.directory", cache_.size());
    } else if (cd_role_ == CdRole::kMaar) {
        c.emplace_back("cmd.held", held_.size());
    }
    for (const auto& p : pools_) {
        c.emplace_back("pool." + p.name() + ".in_use", p.in_use());
        c.emplace_back("pool." + p.name() + ".capacity", p.capacity());
    }
    for (const auto& p : dmnp_.pools()) {
        c.emplace_back("dmnp_pool." + p.name() + ".in_use", p.in_use());
        c.emplace_back("dmnp_pool." + p.name() + ".capacity", p.capacity());
    }
    return c;
}

std::string ba_status_name(std::uint8_t status) {
    auto n = mh::to_string(static_cast<mh::BaStatus>(status));
    return n.empty() ? fmt::format("status-{}", status) : std::string(n);
}

}  // namespace hag::control

namespace hag::control {

namespace {

bool in_key_range(const v1::ControlConfig& cfg, std::uint32_t key) {
    const auto [lo, hi] = key_range(cfg);
    return key != 0 && key >= lo && key <= hi;
}

std::vector<std::uint32_t> keys_of(const Session& s) {
    std::vector<std::uint32_t> out;
    if (s.uplink_gre_key != 0) {
        out.push_back(s.uplink_gre_key);
    }
    for (const auto& a : s.remote_anchors) {
        if (a.downlink_key != 0 && std::find(out.begin(), out.end(), a.downlink_key) == out.end()) {
            out.push_back(a.downlink_key);
        }
    }
    return out;
}

}  // namespace

std::function<bool(const Session&)> Lma::foreign_filter(const v1::ControlConfig& cfg) {
    auto pools = std::make_shared<const std::vector<PrefixPool>>(make_pools(cfg));
    auto dmnp = std::make_shared<const DmnpPools>(cfg);
    auto conf = std::make_shared<const v1::ControlConfig>(cfg);
    return [pools, dmnp, conf](const Session& s) {
        for (const auto& p : s.home_prefixes) {
            for (const auto& pool : *pools) {
                if (pool.contains(p)) {
                    return true;
                }
            }
        }
        for (const auto& p : s.delegated_prefixes) {
            if (dmnp->covered(p)) {
                return true;
            }
        }
        for (auto k : keys_of(s)) {
            if (in_key_range(*conf, k)) {
                return true;
            }
        }
        return false;
    };
}

void Lma::hold_foreign(const Session& s, Seconds now) {
    drop_foreign(s.nai);
    ForeignHold h;
    h.expires = std::max<Seconds>(s.expires_at(), now + 10);  // read again 10 s on at least
    for (const auto& p : s.home_prefixes) {
        for (auto& pool : pools_) {
            if (!pool.contains(p)) {
                continue;
            }
            if (pool.claim(p)) {
                h.prefixes.push_back(p);
            } else {
                count("cluster.foreign_conflicts");
                spdlog::warn(
                    "cluster: prefix {} of {} (served by another node) is assigned here "
                    "too",
                    to_string(p), s.nai);
            }
        }
    }
    for (const auto& p : s.delegated_prefixes) {
        if (!dmnp_.covered(p)) {
            continue;
        }
        if (dmnp_.claim(p)) {
            h.delegated.push_back(p);
        } else {
            count("cluster.foreign_conflicts");
        }
    }
    for (auto k : keys_of(s)) {
        if (!in_key_range(cfg_, k)) {
            continue;
        }
        if (keys_.claim(k)) {
            h.keys.push_back(k);
        } else {
            count("cluster.foreign_conflicts");
        }
    }
    if (h.prefixes.empty() && h.delegated.empty() && h.keys.empty()) {
        return;
    }
    count("cluster.foreign_holds_made");
    foreign_.insert_or_assign(s.nai, std::move(h));
}

void Lma::drop_foreign(const std::string& nai) {
    auto it = foreign_.find(nai);
    if (it == foreign_.end()) {
        return;
    }
    for (const auto& p : it->second.prefixes) {
        for (auto& pool : pools_) {
            if (pool.contains(p)) {
                (void)pool.release(p);
            }
        }
    }
    for (const auto& p : it->second.delegated) {
        dmnp_.release(p);
    }
    for (auto k : it->second.keys) {
        (void)keys_.release(k);
    }
    foreign_.erase(it);
}

std::vector<std::string> Lma::foreign_due(Seconds now) {
    std::vector<std::string> out;
    for (auto& [nai, h] : foreign_) {
        if (!h.checking && h.expires <= now) {
            h.checking = true;
            out.push_back(nai);
        }
    }
    return out;
}

void Lma::recheck_foreign(const std::string& nai,
                          const Result<std::optional<Session>, std::string>& now_there,
                          Seconds now) {
    auto it = foreign_.find(nai);
    if (it == foreign_.end()) {
        return;  // taken over or anchored here since
    }
    if (!now_there) {
        it->second.checking = false;
        it->second.expires = now + 10;
        return;
    }
    if (!*now_there || cache_.find(nai) != nullptr) {
        count("cluster.foreign_holds_ended");
        drop_foreign(nai);  // the binding ended: its prefixes and keys are free again
        return;
    }
    hold_foreign(**now_there, now);
}

}  // namespace hag::control
