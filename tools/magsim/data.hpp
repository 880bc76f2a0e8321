// hag-magsim data mode, the parts without I/O: the home router's GRE framing (RFC 2784 / 2890),
// the uplink split over accesses and the downlink reorder buffer. The I/O loop is data_path.cpp.
// Independent of the data plane's own striping and reorder code: magsim is the peer that checks
// it.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace hag::magsim {

// Why a received GRE packet was not delivered.
enum class DownlinkDrop {
    malformed,     // outer IPv4 header or GRE header does not parse (bounds, version, flags)
    not_gre,       // outer IPv4 protocol is not 47
    bad_protocol,  // GRE protocol type is neither IPv4 nor IPv6
    no_key,        // K bit clear
    bad_key,       // key differs from the access's downlink key
};
std::string_view to_string(DownlinkDrop d) noexcept;

struct DownlinkPacket {
    std::optional<std::uint32_t> sequence;
    std::span<const std::uint8_t> inner;  // the IPv4 / IPv6 packet for the tun device
};

// What a raw protocol-47 socket delivered: over IPv6 the GRE header onward, over IPv4 the IPv4
// header first (the kernel keeps it on raw IPv4 sockets). Every length is checked against
// `data`; the inner packet must start with the version the protocol type names.
struct DownlinkResult {
    std::optional<DownlinkPacket> packet;
    DownlinkDrop drop = DownlinkDrop::malformed;  // when !packet
};
DownlinkResult parse_downlink(std::span<const std::uint8_t> data, bool outer_ipv4,
                              std::uint32_t expected_key) noexcept;

// Writes the 12-octet GRE header (K and S set, protocol from the inner packet's version nibble)
// into `out`. Returns false (nothing written) when the inner packet is empty or neither IPv4
// nor IPv6.
inline constexpr std::size_t kUplinkGreHeaderLength = 12;
bool write_uplink_gre(std::span<std::uint8_t, kUplinkGreHeaderLength> out, std::uint32_t key,
                      std::uint32_t sequence, std::span<const std::uint8_t> inner) noexcept;

// Uplink split over accesses: weighted round robin by bytes. Each packet goes to the live access
// that has sent the fewest bytes per unit of weight since the live set last changed (so a
// returning access does not get a burst to catch up). Pinned: always that access while it is
// live, else the weighted choice among the others.
class UplinkScheduler {
  public:
    // Weights in any unit (the accesses' uplink kbps); 0 counts as 1.
    explicit UplinkScheduler(std::vector<std::uint64_t> weights);
    void set_live(std::size_t access, bool live);
    void pin(std::optional<std::size_t> access) { pinned_ = access; }
    // The access for a packet of `bytes`, or nullopt when none is live.
    std::optional<std::size_t> pick(std::size_t bytes);
    [[nodiscard]] bool live(std::size_t access) const { return entries_.at(access).live; }

  private:
    struct Entry {
        std::uint64_t weight = 1;
        std::uint64_t bytes = 0;  // since the live set changed
        bool live = true;
    };
    std::vector<Entry> entries_;
    std::optional<std::size_t> pinned_;
};

// Downlink reorder by GRE sequence number (RFC 2890 §2.2: the receiver may hold packets to
// deliver them in order), one sequence space per session over all accesses. A bounded buffer of
// `window` packets ahead of the next expected number; a gap is given up after `timeout` (the
// missing packets count as lost) or when a packet arrives `window` or more ahead. Packets behind
// the expected number (after their gap was given up) are delivered at once and counted late;
// a second copy of a buffered number is dropped as a duplicate.
//
// With the accesses known (set_accesses / arrived / set_live), a gap is given up at once when
// every live access has already delivered a later number: each access delivers in order, so the
// missing packet was lost on the way (the gateway's uplink reorder follows the same rule).
class Reorderer {
  public:
    using Clock = std::chrono::steady_clock;
    struct Counters {
        std::uint64_t in_order = 0;   // delivered on arrival
        std::uint64_t reordered = 0;  // held in the buffer, then delivered in order
        std::uint64_t late = 0;       // behind the expected number: delivered at once
        std::uint64_t lost = 0;       // numbers skipped (timeout or window overrun)
        std::uint64_t duplicate = 0;  // already buffered: dropped
        std::uint64_t too_big = 0;    // larger than a buffer slot: delivered at once
    };
    // What push() / expire() did with the packet just pushed: its number lets the caller count
    // per access.
    enum class Outcome { in_order, held, late, duplicate, too_big };

    // Deliver receives each packet in order.
    template <typename Deliver>
    Outcome push(std::uint32_t seq, std::span<const std::uint8_t> packet, Clock::time_point now,
                 Deliver&& deliver);
    // Gives up gaps older than the timeout; delivers what then is in order.
    template <typename Deliver>
    void expire(Clock::time_point now, Deliver&& deliver);
    // The accesses whose arrivals skip gaps (none by default: gaps wait for the timeout).
    void set_accesses(std::size_t n) { accesses_.assign(n, AccessState{}); }
    void set_live(std::size_t access, bool live) {
        if (access < accesses_.size()) {
            accesses_[access].live = live;
        }
    }
    // Access `access` delivered number `seq` (call before push()).
    void arrived(std::size_t access, std::uint32_t seq) {
        if (access < accesses_.size()) {
            accesses_[access].seen = true;
            accesses_[access].highest = seq;
        }
    }
    // Gives up every gap that all live accesses have passed; delivers what then is in order.
    template <typename Deliver>
    void skip_passed(Clock::time_point now, Deliver&& deliver);
    // When expire() next has work (nullopt: nothing held).
    [[nodiscard]] std::optional<Clock::time_point> deadline() const;

    Reorderer(std::size_t window, std::chrono::microseconds timeout, std::size_t slot_bytes);
    [[nodiscard]] const Counters& counters() const { return c_; }
    [[nodiscard]] std::size_t held() const { return held_; }

  private:
    struct Slot {
        bool used = false;
        std::uint32_t seq = 0;
        std::size_t length = 0;
        std::vector<std::uint8_t> bytes;  // slot_bytes, allocated once
    };
    Slot& slot(std::uint32_t seq) { return slots_[seq % slots_.size()]; }
    template <typename Deliver>
    void drain(Deliver& deliver);  // delivers held packets from next_ while consecutive
    template <typename Deliver>
    void skip_to_first_held(Deliver& deliver);

    struct AccessState {
        bool live = true;
        bool seen = false;
        std::uint32_t highest = 0;  // the last number it delivered
    };
    // True when every live access delivered a number after `seq` (and at least one is live).
    [[nodiscard]] bool all_live_passed(std::uint32_t seq) const;

    std::vector<Slot> slots_;
    std::vector<AccessState> accesses_;
    std::chrono::microseconds timeout_;
    bool started_ = false;
    std::uint32_t next_ = 0;
    std::size_t held_ = 0;
    Clock::time_point gap_since_{};  // when the current gap began to hold packets
    Counters c_;
};

// --- template definitions ---

template <typename Deliver>
void Reorderer::drain(Deliver& deliver) {
    while (held_ > 0) {
        Slot& s = slot(next_);
        if (!s.used || s.seq != next_) {
            return;
        }
        deliver(std::span<const std::uint8_t>(s.bytes.data(), s.length));
        s.used = false;
        --held_;
        ++c_.reordered;
        ++next_;
    }
}

template <typename Deliver>
void Reorderer::skip_to_first_held(Deliver& deliver) {
    // The held packet nearest ahead: scan the window once (it is small and this is rare).
    for (std::uint32_t d = 1; d < slots_.size(); ++d) {
        const Slot& s = slot(next_ + d);
        if (s.used && s.seq == next_ + d) {
            c_.lost += d;
            next_ += d;
            drain(deliver);
            return;
        }
    }
}

template <typename Deliver>
Reorderer::Outcome Reorderer::push(std::uint32_t seq, std::span<const std::uint8_t> packet,
                                   Clock::time_point now, Deliver&& deliver) {
    if (!started_) {
        started_ = true;
        next_ = seq;
    }
    const auto ahead = static_cast<std::int32_t>(seq - next_);  // RFC 1982 serial arithmetic
    if (ahead < 0) {
        ++c_.late;
        deliver(packet);
        return Outcome::late;
    }
    if (ahead == 0) {
        ++c_.in_order;
        deliver(packet);
        ++next_;
        drain(deliver);
        if (held_ > 0) {
            gap_since_ = now;  // a new gap starts behind the packets still held
        }
        return Outcome::in_order;
    }
    if (packet.size() > slots_.front().bytes.size()) {
        ++c_.too_big;
        deliver(packet);
        return Outcome::too_big;
    }
    // Ahead. Beyond the window: give up gaps until it fits.
    while (static_cast<std::uint32_t>(seq - next_) >= slots_.size()) {
        if (held_ == 0) {  // nothing held: the whole gap is given up
            c_.lost += static_cast<std::uint32_t>(seq - next_);
            next_ = seq;
            break;
        }
        skip_to_first_held(deliver);
    }
    if (seq == next_) {  // the skipping reached it
        ++c_.in_order;
        deliver(packet);
        ++next_;
        drain(deliver);
        return Outcome::in_order;
    }
    Slot& s = slot(seq);
    if (s.used && s.seq == seq) {
        ++c_.duplicate;
        return Outcome::duplicate;
    }
    if (held_ == 0) {
        gap_since_ = now;
    }
    s.used = true;
    s.seq = seq;
    s.length = packet.size();
    std::copy(packet.begin(), packet.end(), s.bytes.begin());
    ++held_;
    return Outcome::held;
}

template <typename Deliver>
void Reorderer::skip_passed(Clock::time_point now, Deliver&& deliver) {
    bool skipped = false;
    while (held_ > 0 && all_live_passed(next_)) {
        skip_to_first_held(deliver);
        skipped = true;
    }
    if (skipped && held_ > 0) {
        gap_since_ = now;  // what is still held waits for its own gap from now
    }
}

template <typename Deliver>
void Reorderer::expire(Clock::time_point now, Deliver&& deliver) {
    while (held_ > 0 && now - gap_since_ >= timeout_) {
        skip_to_first_held(deliver);
        gap_since_ = now;  // anything still held waits for its own gap from now
    }
}

}  // namespace hag::magsim
