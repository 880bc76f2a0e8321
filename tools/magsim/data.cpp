#include "data.hpp"

#include <algorithm>

#include "hag/net/gre.hpp"
#include "hag/net/ipv4.hpp"

namespace hag::magsim {

std::string_view to_string(DownlinkDrop d) noexcept {
    switch (d) {
        case DownlinkDrop::malformed:
            return "malformed";
        case DownlinkDrop::not_gre:
            return "not_gre";
        case DownlinkDrop::bad_protocol:
            return "bad_protocol";
        case DownlinkDrop::no_key:
            return "no_key";
        case DownlinkDrop::bad_key:
            return "bad_key";
    }
    return "unknown";
}

DownlinkResult parse_downlink(std::span<const std::uint8_t> data, bool outer_ipv4,
                              std::uint32_t expected_key) noexcept {
    DownlinkResult r;
    if (outer_ipv4) {
        auto ip = net::parse_ipv4(data);
        if (!ip) {
            return r;
        }
        if (ip->header.protocol != net::kIpProtoGre) {
            r.drop = DownlinkDrop::not_gre;
            return r;
        }
        // The kernel reassembles before raw delivery; a fragment here is not ours to join.
        if ((ip->header.flags & 0x1) != 0 || ip->header.fragment_offset != 0) {
            return r;
        }
        data = ip->payload;
    }
    auto gre = net::parse_gre(data);
    if (!gre) {
        return r;
    }
    const auto& h = gre->header;
    const auto inner = gre->payload;
    const std::uint8_t version = inner.empty() ? 0 : static_cast<std::uint8_t>(inner[0] >> 4);
    if (!((h.protocol_type == net::kEtherTypeIpv6 && version == 6) ||
          (h.protocol_type == net::kEtherTypeIpv4 && version == 4))) {
        r.drop = DownlinkDrop::bad_protocol;
        return r;
    }
    if (!h.key) {
        r.drop = DownlinkDrop::no_key;
        return r;
    }
    if (*h.key != expected_key) {
        r.drop = DownlinkDrop::bad_key;
        return r;
    }
    r.packet = DownlinkPacket{h.sequence, inner};
    return r;
}

bool write_uplink_gre(std::span<std::uint8_t, kUplinkGreHeaderLength> out, std::uint32_t key,
                      std::uint32_t sequence, std::span<const std::uint8_t> inner) noexcept {
    if (inner.empty()) {
        return false;
    }
    const unsigned version = inner[0] >> 4;
    std::uint16_t proto = 0;
    if (version == 6) {
        proto = net::kEtherTypeIpv6;
    } else if (version == 4) {
        proto = net::kEtherTypeIpv4;
    } else {
        return false;
    }
    const std::uint16_t flags = net::kGreFlagKey | net::kGreFlagSequence;  // version 0
    out[0] = static_cast<std::uint8_t>(flags >> 8);
    out[1] = static_cast<std::uint8_t>(flags);
    out[2] = static_cast<std::uint8_t>(proto >> 8);
    out[3] = static_cast<std::uint8_t>(proto);
    for (int i = 0; i < 4; ++i) {
        out[4 + i] = static_cast<std::uint8_t>(key >> (24 - 8 * i));
        out[8 + i] = static_cast<std::uint8_t>(sequence >> (24 - 8 * i));
    }
    return true;
}

UplinkScheduler::UplinkScheduler(std::vector<std::uint64_t> weights) {
    entries_.reserve(weights.size());
    for (auto w : weights) {
        entries_.push_back(Entry{std::max<std::uint64_t>(w, 1), 0, true});
    }
}

void UplinkScheduler::set_live(std::size_t access, bool live) {
    if (entries_.at(access).live == live) {
        return;
    }
    entries_[access].live = live;
    for (auto& e : entries_) {
        e.bytes = 0;
    }
}

std::optional<std::size_t> UplinkScheduler::pick(std::size_t bytes) {
    std::optional<std::size_t> best;
    if (pinned_ && *pinned_ < entries_.size() && entries_[*pinned_].live) {
        best = pinned_;
    } else {
        // Fewest bytes per unit of weight (ties: the first).
        for (std::size_t i = 0; i < entries_.size(); ++i) {
            const Entry& e = entries_[i];
            if (!e.live) {
                continue;
            }
            if (!best || static_cast<double>(e.bytes) / static_cast<double>(e.weight) <
                             static_cast<double>(entries_[*best].bytes) /
                                 static_cast<double>(entries_[*best].weight)) {
                best = i;
            }
        }
    }
    if (best) {
        entries_[*best].bytes += bytes;
    }
    return best;
}

Reorderer::Reorderer(std::size_t window, std::chrono::microseconds timeout, std::size_t slot_bytes)
    : slots_(std::max<std::size_t>(window, 2)), timeout_(timeout) {
    for (auto& s : slots_) {
        s.bytes.resize(slot_bytes);
    }
}

bool Reorderer::all_live_passed(std::uint32_t seq) const {
    bool any = false;
    for (const auto& a : accesses_) {
        if (!a.live) {
            continue;
        }
        if (!a.seen || static_cast<std::int32_t>(a.highest - seq) <= 0) {
            return false;  // it may still deliver seq
        }
        any = true;
    }
    return any;
}

std::optional<Reorderer::Clock::time_point> Reorderer::deadline() const {
    if (held_ == 0) {
        return std::nullopt;
    }
    return gap_since_ + timeout_;
}

}  // namespace hag::magsim
