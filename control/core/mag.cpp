#include "mag.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "hag/net/address.hpp"

namespace hag::control {

namespace {

constexpr std::uint8_t kStatusSequenceOutOfWindow = 135;  // RFC 6275 §6.1.8
constexpr std::uint8_t kHiHandoffBetweenMags = 3;         // RFC 5213 §8.4
constexpr std::uint8_t kHiStateNotChanged = 5;
constexpr std::uint8_t kAttVirtual = 1;  // RFC 5213 §8.5

std::uint16_t lifetime_units(std::uint32_t s) {
    return static_cast<std::uint16_t>(std::min<std::uint32_t>((s + 3) / 4, 0xffff));
}

}  // namespace

std::optional<std::uint16_t> MagRole::sequence(const std::string& nai) const {
    auto it = regs_.find(nai);
    return it == regs_.end() ? std::nullopt : std::optional<std::uint16_t>(it->second.sequence);
}

Outbound MagRole::pbu(const std::string& nai, const Registration& r, const LmaTime& t) const {
    mh::BindingUpdate bu;
    bu.sequence = r.sequence;
    bu.ack = true;
    bu.home_registration = true;
    bu.proxy = true;
    const bool dereg = r.state == State::kDeregistering;
    bu.lifetime = dereg ? 0 : lifetime_units(r.lifetime_s);
    const std::string& mn = r.format.mn_id.empty() ? nai : r.format.mn_id;
    bu.options.push_back(
        mh::MobileNodeIdentifier{mh::kMnIdSubtypeNai, mh::Bytes(mn.begin(), mn.end())});
    for (const auto& p : r.prefixes) {
        switch (r.format.prefixes) {
            case MagFormat::Prefixes::kHomeNetworkPrefix:
                bu.options.push_back(mh::HomeNetworkPrefix{p.length, p.addr});
                break;
            case MagFormat::Prefixes::kLocalPrefix:
                bu.options.push_back(mh::LocalPrefix{p.length, p.addr});
                break;
            case MagFormat::Prefixes::kAnchoredPrefix:
                bu.options.push_back(mh::AnchoredPrefix{p.length, p.addr});
                break;
        }
    }
    if (r.format.serving) {
        bu.options.push_back(mh::ServingMaarAddress{*r.format.serving});
    }
    bu.options.push_back(mh::HandoffIndicatorOption{
        r.state == State::kRegistered ? kHiStateNotChanged : kHiHandoffBetweenMags});
    bu.options.push_back(mh::AccessTechnologyTypeOption{kAttVirtual});
    bu.options.push_back(mh::Timestamp{t.timestamp});
    bu.options.push_back(mh::GreKey{r.downlink_key});
    const std::string& id = r.format.mag_id.empty() ? opt_.mag_id : r.format.mag_id;
    bu.options.push_back(mh::MagIdentifier{mh::kMnIdSubtypeNai, mh::Bytes(id.begin(), id.end())});
    return Outbound{r.anchor, mh::Message{bu}};
}

void MagRole::sent(Registration& r, const LmaTime& t) {
    r.retransmissions = 0;
    r.backoff = std::max<Seconds>(1, opt_.initial_backoff);
    r.next_at = t.now + r.backoff;
}

bool MagRole::registered(const std::string& key) const {
    auto it = regs_.find(key);
    return it != regs_.end() && it->second.state == State::kRegistered;
}

std::optional<Outbound> MagRole::start(const std::string& nai, const Peer& anchor,
                                       const std::vector<Prefix>& prefixes,
                                       std::uint32_t downlink_key, std::uint32_t lifetime_s,
                                       const LmaTime& t) {
    return start(nai, anchor, prefixes, downlink_key, lifetime_s, t, MagFormat{});
}

std::optional<Outbound> MagRole::start(const std::string& nai, const Peer& anchor,
                                       const std::vector<Prefix>& prefixes,
                                       std::uint32_t downlink_key, std::uint32_t lifetime_s,
                                       const LmaTime& t, const MagFormat& f) {
    auto it = regs_.find(nai);
    if (it == regs_.end()) {
        if (regs_.size() >= opt_.max_registrations) {
            count("mag.table_full");
            return std::nullopt;
        }
        it = regs_.emplace(nai, Registration{}).first;
        it->second.sequence = next_sequence_;
        next_sequence_ = static_cast<std::uint16_t>(next_sequence_ + 1);
    } else {
        it->second.sequence = static_cast<std::uint16_t>(it->second.sequence + 1);
    }
    Registration& r = it->second;
    if (r.state == State::kDeregistering || !(r.anchor == anchor)) {
        r.state = State::kPending;
    }
    r.anchor = anchor;
    r.format = f;
    r.prefixes = prefixes;
    r.downlink_key = downlink_key;
    r.lifetime_s = std::max<std::uint32_t>(lifetime_s, 8);
    r.refreshing = r.state == State::kRegistered;
    sent(r, t);
    count("mag.pbu_sent");
    return pbu(nai, r, t);
}

std::optional<Outbound> MagRole::stop(const std::string& nai, const LmaTime& t) {
    auto it = regs_.find(nai);
    if (it == regs_.end()) {
        return std::nullopt;
    }
    Registration& r = it->second;
    r.state = State::kDeregistering;
    r.refreshing = false;
    r.sequence = static_cast<std::uint16_t>(r.sequence + 1);
    sent(r, t);
    count("mag.deregistration_sent");
    return pbu(nai, r, t);
}

std::optional<MagEvent> MagRole::on_pba(const mh::BindingAcknowledgement& ba, const Peer& from,
                                        const LmaTime& t) {
    count("mag.pba_received");
    const auto* mnid = mh::find_option<mh::MobileNodeIdentifier>(ba.options);
    if (mnid == nullptr || mnid->subtype != mh::kMnIdSubtypeNai || mnid->identifier.empty() ||
        mnid->identifier.size() > 255) {
        count("mag.pba_unmatched");
        return std::nullopt;
    }
    const std::string nai =
        opt_.keyed_by_anchor
            ? relay_key(std::string(mnid->identifier.begin(), mnid->identifier.end()), from.remote)
            : std::string(mnid->identifier.begin(), mnid->identifier.end());
    auto it = regs_.find(nai);
    if (it == regs_.end() || it->second.anchor.remote != from.remote) {
        count("mag.pba_unmatched");
        return std::nullopt;
    }
    Registration& r = it->second;
    const bool waiting = r.state != State::kRegistered || r.refreshing;  // something is outstanding
    if (!waiting) {
        count("mag.pba_unexpected");
        return std::nullopt;
    }
    if (ba.status == kStatusSequenceOutOfWindow) {
        // RFC 6275 §11.7.1: the anchor says which sequence number it accepted last; the next
        // PBU goes above it (once per outstanding PBU: a stream of 135s cannot loop us).
        if (r.retransmissions >= opt_.max_retransmissions) {
            count("mag.pba_unexpected");
            return std::nullopt;
        }
        count("mag.sequence_resync");
        r.sequence = static_cast<std::uint16_t>(ba.sequence + 1);
        r.next_at = t.now;  // resent at the next tick
        ++r.retransmissions;
        return std::nullopt;
    }
    if (ba.sequence != r.sequence) {
        count("mag.pba_stale");
        return std::nullopt;
    }
    MagEvent ev;
    ev.nai = r.format.mn_id.empty() ? nai : r.format.mn_id;
    ev.key = nai;
    ev.anchor = r.anchor.remote;
    ev.options = ba.options;
    ev.status = ba.status;
    if (r.state == State::kDeregistering) {
        ev.kind = MagEvent::Kind::kDeregistered;
        regs_.erase(it);
        count("mag.deregistered");
        return ev;
    }
    if (ba.status >= 128) {
        ev.kind = MagEvent::Kind::kRefused;
        spdlog::warn("MAG role: registration of {} at {} refused: status {}", ev.nai,
                     net::format(r.anchor.remote), ba.status);
        regs_.erase(it);
        count("mag.refused");
        return ev;
    }
    if (ba.lifetime == 0) {
        // An accepted registration with no lifetime: nothing is registered (RFC 5213 §6.9.1.2).
        ev.kind = MagEvent::Kind::kRefused;
        regs_.erase(it);
        count("mag.refused");
        return ev;
    }
    ev.kind = MagEvent::Kind::kRegistered;
    if (const auto* k = mh::find_option<mh::GreKey>(ba.options)) {
        ev.uplink_key = k->key;
    }
    const std::uint32_t granted = std::uint32_t{ba.lifetime} * 4;
    ev.lifetime_s = std::min(granted, r.lifetime_s);
    r.state = State::kRegistered;
    r.refreshing = false;
    r.retransmissions = 0;
    r.expires_at = t.now + ev.lifetime_s;
    // Refresh at 80 % of the lifetime (at least 2 s before its end).
    r.refresh_at = t.now + std::max<Seconds>(1, std::min<Seconds>(ev.lifetime_s * 4 / 5,
                                                                  Seconds{ev.lifetime_s} - 2));
    count("mag.registered");
    return ev;
}

std::vector<Outbound> MagRole::tick(const LmaTime& t, std::vector<MagEvent>& events) {
    std::vector<Outbound> out;
    for (auto it = regs_.begin(); it != regs_.end();) {
        Registration& r = it->second;
        const std::string& nai = it->first;
        if (r.state == State::kRegistered && !r.refreshing) {
            if (r.refresh_at <= t.now) {
                r.refreshing = true;
                r.sequence = static_cast<std::uint16_t>(r.sequence + 1);
                sent(r, t);
                count("mag.refresh_sent");
                out.push_back(pbu(nai, r, t));
            }
            ++it;
            continue;
        }
        if (r.next_at > t.now) {
            ++it;
            continue;
        }
        const bool expired = r.state == State::kRegistered && r.expires_at <= t.now;
        if (r.retransmissions >= opt_.max_retransmissions || expired) {
            MagEvent ev;
            ev.nai = r.format.mn_id.empty() ? nai : r.format.mn_id;
            ev.key = nai;
            ev.anchor = r.anchor.remote;
            ev.kind = r.state == State::kDeregistering ? MagEvent::Kind::kDeregistered
                                                       : MagEvent::Kind::kGaveUp;
            spdlog::warn("MAG role: {} of {} at {} not acknowledged after {} retransmissions",
                         r.state == State::kDeregistering ? "de-registration" : "registration",
                         ev.nai, net::format(r.anchor.remote), r.retransmissions);
            count("mag.gave_up");
            events.push_back(std::move(ev));
            it = regs_.erase(it);
            continue;
        }
        ++r.retransmissions;
        r.backoff *= 2;
        r.next_at = t.now + r.backoff;
        count("mag.retransmitted");
        out.push_back(pbu(nai, r, t));
        ++it;
    }
    return out;
}

}  // namespace hag::control
