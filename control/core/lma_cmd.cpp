// Central mobility database mode (RFC 8885 §3, docs/scale-out.md): the CMD role (a directory of
// where each mobile node's prefixes are anchored, relaying a serving MAAR's registration to the
// previous anchors) and the MAAR role (registering at the CMD, holding the router's PBA until
// it answers, serving relayed registrations of prefixes anchored here).
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

constexpr std::size_t kMaxPrefixesPerPbu = 16;

std::optional<std::string> nai_of(const mh::Options& opts) {
    const auto* id = mh::find_option<mh::MobileNodeIdentifier>(opts);
    if (id == nullptr || id->subtype != mh::kMnIdSubtypeNai) {
        return std::nullopt;
    }
    return identifier_text(id->identifier);
}

bool valid_prefix(std::uint8_t length, const Ipv6Address& a) {
    return length != 0 && length <= 128 && host_bits_clear(a, length);
}

}  // namespace

const std::string* Lma::cmd_maar_name(const Ipv6Address& a) const {
    for (const auto& [name, addr] : cmd_maars_) {
        if (addr == a) {
            return &name;
        }
    }
    return nullptr;
}

// ---------------------------------------------------------------------------------------------
// CMD
// ---------------------------------------------------------------------------------------------

Outbound Lma::cmd_reply(const std::string& nai, const Peer& to, std::uint8_t status,
                        std::uint16_t sequence, std::uint16_t lifetime_units,
                        const std::vector<Prefix>& local, std::uint64_t timestamp) {
    mh::BindingAcknowledgement ba;
    ba.status = status;
    ba.proxy = true;
    ba.sequence = sequence;
    ba.lifetime = status < 128 ? lifetime_units : 0;
    if (!nai.empty() && nai.size() <= 255) {
        ba.options.push_back(
            mh::MobileNodeIdentifier{mh::kMnIdSubtypeNai, mh::Bytes(nai.begin(), nai.end())});
    }
    for (const auto& p : local) {
        ba.options.push_back(mh::LocalPrefix{p.length, p.addr});
    }
    if (timestamp != 0) {
        ba.options.push_back(mh::Timestamp{timestamp});
    }
    if (status < 128 && lifetime_units != 0) {
        // Per prefix anchored at a previous MAAR that accepted the relay: a Previous MAAR
        // option (its address and the prefix, RFC 8885 §4.5) followed by a GRE Key option with
        // the uplink key that anchor gave (RFC 5845; hag's pairing, docs/scale-out.md).
        if (const Session* e = cache_.find(nai); e != nullptr && !e->paths.empty()) {
            for (const auto& a : e->remote_anchors) {
                if (a.anchor.addr == e->paths.front().coa.addr || a.uplink_key == 0) {
                    continue;
                }
                ba.options.push_back(
                    mh::PreviousMaarAddress{a.prefix.length, a.anchor.addr, a.prefix.addr});
                ba.options.push_back(mh::GreKey{a.uplink_key});
            }
        }
    }
    count(fmt::format("cmd.pba_sent.{:03d}", status));
    return Outbound{to, mh::Message{ba}};
}

std::vector<Outbound> Lma::cmd_handle_pbu(const mh::BindingUpdate& bu, const Peer& from,
                                          const LmaTime& t) {
    count("cmd.pbu_received");
    last_now_ = t.now;
    last_timestamp_ = t.timestamp;
    const auto& opts = bu.options;
    const auto* ts = mh::find_option<mh::Timestamp>(opts);
    const std::uint64_t echo_ts = ts != nullptr ? ts->value : 0;
    auto refuse = [&](const std::string& nai, std::uint8_t status, const char* counter,
                      std::string_view why, std::uint16_t seq) -> std::vector<Outbound> {
        count(counter);
        log_refusal(
            t, fmt::format("CMD: PBU from {} for {} seq {}: {} ({})", net::format(from.remote), nai,
                           bu.sequence, ba_status_name(status), why));
        return {cmd_reply(nai, from, status, seq, 0, {}, echo_ts)};
    };
    if (from.udp || !bu.proxy) {
        count("cmd.pbu_ignored");
        return {};
    }
    // Only configured MAARs, from their own address, under their own name (RFC 8278 MAG
    // Identifier); anything else is not answered at all (no reflection toward a spoofed source).
    const std::string* name = cmd_maar_name(from.remote);
    const auto* mid = mh::find_option<mh::MagIdentifier>(opts);
    if (name == nullptr || mid == nullptr ||
        std::string(mid->identifier.begin(), mid->identifier.end()) != *name) {
        count("cmd.pbu_unknown_maar");
        log_refusal(t, fmt::format("CMD: PBU from {} ignored: not a configured MAAR (or its "
                                   "MAG Identifier is not its name)",
                                   net::format(from.remote)));
        return {};
    }
    const auto nai_opt = nai_of(opts);
    if (!nai_opt) {
        return refuse("", st(BaStatus::kMissingMnIdentifierOption), "cmd.pbu_malformed",
                      "no usable MN-ID", bu.sequence);
    }
    const std::string& nai = *nai_opt;
    if (ts != nullptr && check_timestamp(ts->value, t.timestamp, 0, cfg_.timestamp_window_ms()) ==
                             TimestampCheck::kOutsideWindow) {
        return refuse(nai, st(BaStatus::kTimestampMismatch), "cmd.pbu_refused",
                      "timestamp outside the window", bu.sequence);
    }
    std::vector<Prefix> local;
    for (const auto* lp : mh::find_options<mh::LocalPrefix>(opts)) {
        if (!valid_prefix(lp->prefix_length, lp->prefix)) {
            return refuse(nai, st(BaStatus::kNotAuthorizedForHomeNetworkPrefix),
                          "cmd.pbu_malformed", "Local Prefix with a bad length or host bits",
                          bu.sequence);
        }
        const Prefix p{lp->prefix, lp->prefix_length};
        if (std::find(local.begin(), local.end(), p) == local.end()) {
            local.push_back(p);
        }
    }
    if (local.size() > kMaxPrefixesPerPbu) {
        return refuse(nai, st(BaStatus::kInsufficientResources), "cmd.pbu_malformed",
                      "too many Local Prefix options", bu.sequence);
    }
    const Session* entry = cache_.find(nai);
    const Path* sp = entry != nullptr && !entry->paths.empty() ? &entry->paths.front() : nullptr;
    const bool same_serving = sp != nullptr && sp->coa.addr == from.remote;
    if (same_serving && !sequence_is_newer(bu.sequence, sp->last_sequence)) {
        // A retransmission of the registration that is waiting for the anchors: not again.
        if (auto tx = txns_.find(nai); tx != txns_.end() && tx->second.sequence == bu.sequence &&
                                       tx->second.serving.remote == from.remote) {
            count("cmd.retransmission_while_waiting");
            return {};
        }
        return refuse(nai, st(BaStatus::kSequenceNumberOutOfWindow), "cmd.pbu_stale",
                      fmt::format("last accepted {}", sp->last_sequence), sp->last_sequence);
    }

    if (bu.lifetime == 0) {
        if (same_serving) {
            txns_.erase(nai);
            (void)cache_.remove(nai);  // the observer de-registers at every previous anchor
            count("cmd.deregistered");
            spdlog::info("CMD: {} de-registered by its serving MAAR {}", nai, *name);
        } else {
            count("cmd.deregistration_stale");  // another MAAR serves it now (or nobody)
        }
        return {cmd_reply(nai, from, 0, bu.sequence, 0, local, echo_ts)};
    }
    if (local.empty()) {
        return refuse(nai, st(BaStatus::kMissingHomeNetworkPrefixOption), "cmd.pbu_malformed",
                      "no Local Prefix option", bu.sequence);
    }
    const auto* gre = mh::find_option<mh::GreKey>(opts);
    if (gre == nullptr || gre->key == 0) {
        return refuse(nai, st(BaStatus::kGreKeyOptionRequired), "cmd.pbu_malformed",
                      "no GRE key (the serving MAAR's relay downlink key)", bu.sequence);
    }
    const v1::SubscriberProfile prof = effective_profile(cfg_, subscribers_.find(nai));
    const std::uint32_t granted =
        std::min<std::uint32_t>(std::uint32_t{bu.lifetime} * 4, prof.max_lifetime_seconds());
    const auto units = static_cast<std::uint16_t>(std::max<std::uint32_t>(granted / 4, 1));

    // The new directory entry: prefixes anchored at other MAARs first (the previous anchors),
    // then this MAAR's local ones.
    Session s;
    s.nai = nai;
    std::vector<RemoteAnchor> previous;
    std::vector<Ipv6Address> old_anchors;  // anchors of the entry before (their relays)
    const bool refresh = same_serving;
    if (entry != nullptr) {
        for (const auto& a : entry->remote_anchors) {
            if (std::find(old_anchors.begin(), old_anchors.end(), a.anchor.addr) ==
                old_anchors.end()) {
                old_anchors.push_back(a.anchor.addr);
            }
            if (a.anchor.addr == from.remote ||
                std::find(local.begin(), local.end(), a.prefix) != local.end() ||
                cmd_maar_name(a.anchor.addr) == nullptr) {
                continue;  // now local at the serving MAAR (or an anchor no longer configured)
            }
            RemoteAnchor r = a;
            r.local = CareOfAddress{from.remote};
            r.downlink_key = gre->key;
            if (!refresh || a.downlink_key != gre->key) {
                r.uplink_key = 0;  // registered there anew
            }
            previous.push_back(r);
        }
    }
    for (const auto& a : previous) {
        s.home_prefixes.push_back(a.prefix);
        s.remote_anchors.push_back(a);
    }
    for (const auto& p : local) {
        s.home_prefixes.push_back(p);
        s.remote_anchors.push_back(RemoteAnchor{p, *name, CareOfAddress{from.remote},
                                                CareOfAddress{from.remote}, 0, gre->key});
    }
    Path path;
    path.bid = 1;
    path.mag_id = *name;
    path.coa.addr = from.remote;
    path.local.addr = from.local;
    path.access_technology = 1;  // virtual
    path.downlink_gre_key = gre->key;
    path.relay = true;
    path.live = true;
    path.expires_at = t.now + granted;
    path.last_sequence = bu.sequence;
    s.paths = {path};
    s.last_sequence = bu.sequence;
    if (ts != nullptr) {
        s.last_timestamp = ts->value;
    }
    // What changes at the anchors: the ones whose prefixes the entry no longer relays (the
    // serving MAAR itself, prefixes gone) lose their relay binding silently when they serve
    // it now, else by de-registration; the previous anchors are registered (again when the
    // serving MAAR changed).
    std::vector<Ipv6Address> relay_to;
    for (const auto& a : previous) {
        if (std::find(relay_to.begin(), relay_to.end(), a.anchor.addr) == relay_to.end()) {
            relay_to.push_back(a.anchor.addr);
        }
    }
    auto r = entry != nullptr ? cache_.update(s) : cache_.insert(s);
    if (!r) {
        const bool full = r.error() == CacheError::kCapacity;
        return refuse(nai,
                      full ? st(BaStatus::kInsufficientResources)
                           : st(BaStatus::kNotAuthorizedForHomeNetworkPrefix),
                      full ? "cmd.table_full" : "cmd.pbu_refused",
                      fmt::format("directory: {}", to_string(r.error())), bu.sequence);
    }
    entry = nullptr;
    sp = nullptr;
    std::vector<Outbound> out;
    for (const auto& addr : old_anchors) {
        if (std::find(relay_to.begin(), relay_to.end(), addr) != relay_to.end()) {
            continue;
        }
        const std::string key = MagRole::relay_key(nai, addr);
        if (addr == from.remote) {
            relay_.forget(key);  // it serves the router itself now
        } else if (auto o = relay_.stop(key, t)) {
            out.push_back(std::move(*o));
            count("cmd.anchor_deregistration_sent");
        }
    }
    const bool moved = !refresh;
    txns_.erase(nai);
    CmdTxn tx;
    tx.serving = from;
    tx.sequence = bu.sequence;
    tx.lifetime_units = units;
    tx.local = local;
    tx.deadline_ms = t.now_ms + cd_timeout_ms_;
    tx.timestamp = echo_ts;
    for (const auto& addr : relay_to) {
        const std::string key = MagRole::relay_key(nai, addr);
        if (!moved && relay_.registered(key)) {
            continue;  // a refresh of the serving MAAR: the CMD refreshes anchors by itself
        }
        std::vector<Prefix> prefixes;
        for (const auto& a : previous) {
            if (a.anchor.addr == addr) {
                prefixes.push_back(a.prefix);
            }
        }
        Peer to;
        to.local = from.local;
        to.remote = addr;
        MagFormat f{MagFormat::Prefixes::kAnchoredPrefix, from.remote, *name, nai};
        if (auto o = relay_.start(key, to, prefixes, gre->key, granted, t, f)) {
            out.push_back(std::move(*o));
            tx.waiting.push_back(addr);
            count("cmd.relayed");
        } else {
            cmd_drop_anchor(nai, addr, "cmd.relay_table_full");
        }
    }
    if (moved) {
        count(previous.empty() ? "cmd.registered" : "cmd.moved");
        spdlog::info("CMD: {} served by MAAR {} ({} local prefix(es), {} anchored elsewhere)", nai,
                     *name, local.size(), previous.size());
    } else {
        count("cmd.refreshed");
    }
    if (tx.waiting.empty()) {
        out.insert(out.begin(), cmd_reply(nai, from, 0, bu.sequence, units, local, echo_ts));
    } else {
        txns_[nai] = std::move(tx);  // answered when every anchor has (or timeout_ms)
    }
    return out;
}

void Lma::cmd_drop_anchor(const std::string& nai, const Ipv6Address& anchor, const char* counter) {
    count(counter);
    relay_.forget(MagRole::relay_key(nai, anchor));
    const Session* e = cache_.find(nai);
    if (e == nullptr) {
        return;
    }
    Session s = *e;
    std::vector<Prefix> dropped;
    std::erase_if(s.remote_anchors, [&](const RemoteAnchor& a) {
        if (a.anchor.addr == anchor && !s.paths.empty() &&
            a.anchor.addr != s.paths.front().coa.addr) {
            dropped.push_back(a.prefix);
            return true;
        }
        return false;
    });
    std::erase_if(s.home_prefixes, [&](const Prefix& p) {
        return std::find(dropped.begin(), dropped.end(), p) != dropped.end();
    });
    if (!dropped.empty()) {
        spdlog::warn("CMD: {}: {} anchored at {} dropped from the directory ({})", nai,
                     to_string(dropped.front()), net::format(anchor), counter);
        (void)cache_.update(std::move(s));
    }
}

void Lma::cmd_finish(const std::string& nai, const Ipv6Address& anchor) {
    auto it = txns_.find(nai);
    if (it == txns_.end()) {
        return;
    }
    auto& w = it->second.waiting;
    w.erase(std::remove(w.begin(), w.end(), anchor), w.end());
    if (w.empty()) {
        const CmdTxn tx = std::move(it->second);
        txns_.erase(it);
        mag_out_.push_back(
            cmd_reply(nai, tx.serving, 0, tx.sequence, tx.lifetime_units, tx.local, tx.timestamp));
    }
}

void Lma::cmd_relay_event(const MagEvent& ev, const LmaTime& t) {
    (void)t;
    switch (ev.kind) {
        case MagEvent::Kind::kDeregistered:
            count("cmd.anchor_deregistered");
            return;
        case MagEvent::Kind::kRefused:
        case MagEvent::Kind::kGaveUp:
            cmd_drop_anchor(
                ev.nai, ev.anchor,
                ev.kind == MagEvent::Kind::kRefused ? "cmd.anchor_refused" : "cmd.anchor_gave_up");
            cmd_finish(ev.nai, ev.anchor);
            return;
        case MagEvent::Kind::kRegistered:
            break;
    }
    count("cmd.anchor_registered");
    if (const Session* e = cache_.find(ev.nai); e != nullptr) {
        Session s = *e;
        bool changed = false;
        for (auto& a : s.remote_anchors) {
            if (a.anchor.addr == ev.anchor && !s.paths.empty() &&
                a.anchor.addr != s.paths.front().coa.addr && a.uplink_key != ev.uplink_key) {
                a.uplink_key = ev.uplink_key;
                changed = true;
            }
        }
        if (changed) {
            (void)cache_.update(std::move(s));
        }
    }
    cmd_finish(ev.nai, ev.anchor);
}

std::vector<Outbound> Lma::tick_central_db(const LmaTime& t) {
    std::vector<Outbound> out;
    if (cd_role_ == CdRole::kOff) {
        return out;
    }
    cmd_tick(t);
    out.swap(mag_out_);
    return out;
}

std::int64_t Lma::central_db_tick_ms() const noexcept {
    if (cd_role_ == CdRole::kOff) {
        return 0;
    }
    return std::clamp<std::int64_t>(cd_timeout_ms_ / 4, 50, 1000);
}

void Lma::cmd_tick(const LmaTime& t) {
    if (cd_role_ == CdRole::kCmd) {
        std::vector<std::pair<std::string, Ipv6Address>> late;
        for (const auto& [nai, tx] : txns_) {
            if (tx.deadline_ms <= t.now_ms) {
                for (const auto& a : tx.waiting) {
                    late.emplace_back(nai, a);
                }
            }
        }
        for (const auto& [nai, a] : late) {
            spdlog::warn("CMD: {}: anchor {} did not answer within {} ms", nai, net::format(a),
                         cd_timeout_ms_);
            cmd_drop_anchor(nai, a, "cmd.anchor_timeouts");
            cmd_finish(nai, a);
        }
        return;
    }
    // MAAR: router PBAs held past timeout_ms go with the local prefixes only; the CMD
    // registration goes on in the background.
    std::vector<std::string> late;
    for (const auto& [nai, h] : held_) {
        if (h.deadline_ms <= t.now_ms) {
            late.push_back(nai);
        }
    }
    for (const auto& nai : late) {
        spdlog::warn(
            "MAAR: {}: the CMD did not answer within {} ms; the router gets the local "
            "prefixes only",
            nai, cd_timeout_ms_);
        maar_release_held(nai, "cmd.cmd_timeouts");
    }
}

// ---------------------------------------------------------------------------------------------
// MAAR
// ---------------------------------------------------------------------------------------------

std::vector<Prefix> Lma::maar_local_prefixes(const Session& s) const {
    std::vector<Prefix> out;
    for (const auto& p : s.home_prefixes) {
        const bool remote = std::any_of(s.remote_anchors.begin(), s.remote_anchors.end(),
                                        [&](const RemoteAnchor& a) { return a.prefix == p; });
        const bool ours = std::any_of(pools_.begin(), pools_.end(),
                                      [&](const PrefixPool& pool) { return pool.contains(p); });
        if (!remote && (ours || pools_.empty()) && !CareOfAddress{p.addr}.is_ipv4()) {
            out.push_back(p);
        }
    }
    return out;
}

std::vector<Outbound> Lma::maar_after_pbu(const std::string& nai, std::uint16_t sequence,
                                          std::vector<Outbound> replies, std::uint32_t lifetime_s,
                                          const LmaTime& t) {
    const Session* s = cache_.find(nai);
    if (s == nullptr || replies.empty()) {
        return replies;
    }
    if (auto h = held_.find(nai); h != held_.end()) {
        // A newer PBU while the CMD has not answered: its PBA waits instead.
        h->second.pba = std::move(replies.front());
        h->second.sequence = sequence;
        replies.erase(replies.begin());
        count("cmd.held_superseded");
        return replies;
    }
    if (mag_.has(nai)) {
        return replies;  // registered (or registering) at the CMD: refreshed by the MAG role
    }
    const std::vector<Prefix> local = maar_local_prefixes(*s);
    if (local.empty()) {
        return replies;
    }
    auto k = cmd_keys_.find(nai);
    if (k == cmd_keys_.end()) {
        auto key = keys_.allocate();
        if (!key) {
            count("cmd.no_key");
            return replies;
        }
        k = cmd_keys_.emplace(nai, *key).first;
    }
    Peer to;
    to.local = node_address_;
    to.remote = cmd_address_;
    MagFormat f{MagFormat::Prefixes::kLocalPrefix, std::nullopt, "", ""};
    auto o = mag_.start(nai, to, local, k->second, lifetime_s, t, f);
    if (!o) {
        count("cmd.table_full");
        return replies;
    }
    count("cmd.registration_sent");
    HeldReply h;
    h.pba = std::move(replies.front());
    h.sequence = sequence;
    h.deadline_ms = t.now_ms + cd_timeout_ms_;
    held_[nai] = std::move(h);
    replies.erase(replies.begin());
    replies.push_back(std::move(*o));
    return replies;
}

void Lma::maar_release_held(const std::string& nai, const char* counter) {
    auto h = held_.find(nai);
    if (h == held_.end()) {
        return;
    }
    count(counter);
    Outbound o = std::move(h->second.pba);
    held_.erase(h);
    // The PBA's home prefixes: the session's now (old prefixes first, then the local ones).
    if (auto* ba = std::get_if<mh::BindingAcknowledgement>(&o.message.body);
        ba != nullptr && ba->status < 128) {
        if (const Session* s = cache_.find(nai)) {
            std::vector<mh::Option> opts;
            bool placed = false;
            for (auto& opt : ba->options) {
                if (std::holds_alternative<mh::HomeNetworkPrefix>(opt)) {
                    if (!placed) {
                        placed = true;
                        for (const auto& p : s->home_prefixes) {
                            if (!CareOfAddress{p.addr}.is_ipv4()) {
                                opts.emplace_back(mh::HomeNetworkPrefix{p.length, p.addr});
                            }
                        }
                    }
                    continue;
                }
                opts.push_back(std::move(opt));
            }
            ba->options = std::move(opts);
        }
    }
    mag_out_.push_back(std::move(o));
}

void Lma::maar_cmd_event(const MagEvent& ev, const LmaTime& t) {
    const Session* cur = cache_.find(ev.nai);
    switch (ev.kind) {
        case MagEvent::Kind::kDeregistered:
            count("cmd.deregistered_at_cmd");
            return;
        case MagEvent::Kind::kRefused:
            count("cmd.refused_by_cmd");
            maar_release_held(ev.nai, "cmd.held_released_refused");
            return;
        case MagEvent::Kind::kGaveUp:
            count("cmd.cmd_unreachable");
            maar_release_held(ev.nai, "cmd.cmd_timeouts");
            // Keep trying in the background while the router's binding lives.
            if (cur != nullptr && !cur->paths.empty() && !cur->paths.front().relay) {
                if (auto k = cmd_keys_.find(ev.nai); k != cmd_keys_.end()) {
                    Peer to;
                    to.local = node_address_;
                    to.remote = cmd_address_;
                    MagFormat f{MagFormat::Prefixes::kLocalPrefix, std::nullopt, "", ""};
                    const Seconds left = cur->expires_at() > t.now ? cur->expires_at() - t.now : 0;
                    if (left > 0) {
                        if (auto o = mag_.start(ev.nai, to, maar_local_prefixes(*cur), k->second,
                                                static_cast<std::uint32_t>(left), t, f)) {
                            mag_out_.push_back(std::move(*o));
                            count("cmd.registration_retried");
                        }
                    }
                }
            }
            return;
        case MagEvent::Kind::kRegistered:
            break;
    }
    count("cmd.registered_at_cmd");
    if (cur == nullptr) {
        return;
    }
    // The previous anchors the CMD names: (Previous MAAR, GRE Key) pairs.
    std::vector<RemoteAnchor> anchors;
    const std::uint32_t down = cmd_keys_.contains(ev.nai) ? cmd_keys_.at(ev.nai) : 0;
    for (std::size_t i = 0; i < ev.options.size(); ++i) {
        const auto* pm = std::get_if<mh::PreviousMaarAddress>(&ev.options[i]);
        if (pm == nullptr) {
            continue;
        }
        const auto* key =
            i + 1 < ev.options.size() ? std::get_if<mh::GreKey>(&ev.options[i + 1]) : nullptr;
        const Prefix p{pm->prefix, pm->prefix_length};
        const bool ours = std::any_of(pools_.begin(), pools_.end(),
                                      [&](const PrefixPool& pool) { return pool.contains(p); });
        if (key == nullptr || key->key == 0 || !valid_prefix(pm->prefix_length, pm->prefix) ||
            pm->address == node_address_ || ours || anchors.size() >= kMaxPrefixesPerPbu ||
            std::any_of(anchors.begin(), anchors.end(),
                        [&](const RemoteAnchor& a) { return a.prefix == p; })) {
            count("cmd.previous_maar_ignored");
            continue;
        }
        anchors.push_back(RemoteAnchor{p, net::format(pm->address), CareOfAddress{pm->address},
                                       CareOfAddress{node_address_}, key->key, down});
    }
    if (anchors != cur->remote_anchors) {
        Session s = *cur;
        std::vector<Prefix> prefixes;
        for (const auto& a : anchors) {
            prefixes.push_back(a.prefix);
        }
        for (const auto& p : maar_local_prefixes(s)) {
            prefixes.push_back(p);
        }
        for (const auto& p : s.home_prefixes) {
            if (CareOfAddress{p.addr}.is_ipv4()) {
                prefixes.push_back(p);
            }
        }
        s.home_prefixes = std::move(prefixes);
        s.remote_anchors = anchors;
        if (auto r = cache_.update(std::move(s)); !r) {
            count("cmd.anchor_update_failures");
            spdlog::warn("MAAR: {}: the previous anchors the CMD named not applied ({})", ev.nai,
                         to_string(r.error()));
        } else if (!anchors.empty()) {
            count("cmd.remote_anchors_set");
            spdlog::info(
                "MAAR: {}: {} prefix(es) anchored at previous MAARs relayed from here "
                "(first {} at {})",
                ev.nai, anchors.size(), to_string(anchors.front().prefix), anchors.front().node);
        }
    }
    maar_release_held(ev.nai, "cmd.held_answered");
}

std::uint8_t Lma::maar_relay_pbu(const mh::BindingUpdate& bu, const Peer& from, const LmaTime& t,
                                 const std::string& nai, const std::string& mag_id,
                                 PbuOutcome& out) {
    count("cmd.relay_pbu");
    const auto& opts = bu.options;
    const auto* serving = mh::find_option<mh::ServingMaarAddress>(opts);
    std::vector<Prefix> anchored;
    bool bad = false;
    for (const auto* ap : mh::find_options<mh::AnchoredPrefix>(opts)) {
        bad = bad || !valid_prefix(ap->prefix_length, ap->prefix);
        anchored.push_back(Prefix{ap->prefix, ap->prefix_length});
    }
    if (bad || anchored.empty() || anchored.size() > kMaxPrefixesPerPbu || serving == nullptr ||
        serving->address == node_address_) {
        count("cmd.relay_refused");
        log_refusal(t, fmt::format("MAAR: relayed PBU for {} seq {}: missing or malformed Serving "
                                   "MAAR / Anchored Prefix options",
                                   nai, bu.sequence));
        out.prefixes.clear();
        return st(anchored.empty() ? BaStatus::kMissingHomeNetworkPrefixOption
                                   : BaStatus::kReasonUnspecified);
    }
    // The serving MAAR's name (MAG Identifier of the relayed PBU), else its address.
    const std::string serving_name = mh::find_option<mh::MagIdentifier>(opts) != nullptr
                                         ? mag_id
                                         : net::format(serving->address);
    const Session* before = cache_.find(nai);
    const bool served_here =
        before != nullptr && !before->paths.empty() && !before->paths.front().relay;
    const std::uint8_t status =
        process_peer_pbu(bu, from, t, nai, serving_name, out, &anchored, &serving->address);
    if (status < 128 && bu.lifetime != 0) {
        // Another MAAR serves the router now: this node no longer registers it at the CMD,
        // and the prefixes it relayed to other anchors are theirs.
        mag_.forget(nai);
        held_.erase(nai);
        if (auto k = cmd_keys_.find(nai); k != cmd_keys_.end()) {
            (void)keys_.release(k->second);
            cmd_keys_.erase(k);
        }
        count(served_here ? "cmd.moved_away" : "cmd.relay_refreshed");
    }
    return status;
}

}  // namespace hag::control
