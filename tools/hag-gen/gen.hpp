// hag-gen: traffic that matches the sessions the benchmarks program (dataplane/bench/
// subscribers.hpp is the shared description: subscriber i's prefixes, keys and care-of addresses
// follow from i alone, so hag-dp-bench, hag-gen and the pktgen scripts agree without a file).
//
// A Profile says what to send; a Generator turns it into an endless sequence of PacketSpecs
// (deterministic for a seed); build_frame() makes a frame of one spec, with the stamp of
// stamp.hpp at its end when it has room.
//
//   downlink: Ethernet + IPv6 (2001:db8:ffff::1 -> prefix(i)::1) or IPv4 (198.51.100.1 ->
//             198.18.0.0 + i) + UDP 40000 -> 9 + payload: the frame size is the profile's.
//   uplink:   Ethernet + IPv6 (path_coa(i, path) -> 2001:db8:a::1) + GRE (key 0x10000000 + i,
//             sequence number) + the downlink's inner packet reversed; the inner frame (its
//             Ethernet header counted) has the profile's size, the outer frame 52 octets more.
//             Each session's sequence numbers are striped over its paths by weight; a packet
//             can be lost (never sent: a gap), delayed by its path's skew (in packet slots of
//             its session), or swapped with its session's next packet (permutation).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "hag/result.hpp"
#include "stamp.hpp"

namespace hag::gen {

enum class Direction { kDownlink, kUplink };

struct SizeWeight {
    std::uint16_t size = 64;  // frame octets without FCS (uplink: the inner frame)
    std::uint32_t weight = 1;
};

struct Profile {
    Direction direction = Direction::kDownlink;
    std::uint32_t subscribers = 1000;
    std::vector<SizeWeight> sizes{{64, 1}};
    bool ipv6 = true;  // families of the downlink flows / the uplink inner packets
    bool ipv4 = false;
    unsigned paths = 1;                         // uplink: CoAs per session
    std::vector<std::uint32_t> path_weights{};  // empty: equal
    std::vector<std::uint32_t> skew{};          // uplink: per path, delay in packet slots
    unsigned permille = 0;                      // uplink: swapped with the session's next one
    unsigned loss_permille = 0;                 // uplink: numbers never sent
    std::uint32_t seed = 20240605;
};

// "64", "imix" (7:4:1 of 64, 594 and 1400 octets: simple IMIX with its largest class cut to
// 1400 so that the GRE-encapsulated packet still fits a 1500-octet MTU) or "SIZE:WEIGHT,...".
// Sizes must be even (the stamp stays 16-bit aligned in the UDP checksum) and 64..1500.
Result<std::vector<SizeWeight>, std::string> parse_sizes(const std::string& text);
// Checks a profile (ranges, IPv4 subscriber limit, per-path vectors).
Result<void, std::string> validate(const Profile& p);

struct PacketSpec {
    std::uint32_t subscriber = 0;
    bool ipv4 = false;
    std::uint16_t size = 64;
    std::uint32_t seq = 0;  // in the flow; uplink: also the GRE sequence number
    unsigned path = 0;      // uplink: index of the care-of address
};

// Minimum frame (inner frame for the uplink) of a family, and whether a frame has room for
// the stamp.
std::uint16_t min_frame(bool ipv4);
bool stamped(const PacketSpec& s);
// Octets on the wire without FCS.
std::uint32_t wire_size(Direction d, const PacketSpec& s);

class Generator {
  public:
    explicit Generator(const Profile& p);
    PacketSpec next();
    // Uplink numbers dropped on purpose (loss_permille) so far.
    [[nodiscard]] std::uint64_t dropped() const { return dropped_; }

  private:
    struct Pending {
        std::uint64_t key;  // emission slot: seq + skew of its path
        std::uint32_t seq;
        std::uint8_t path;
        bool operator>(const Pending& o) const { return key != o.key ? key > o.key : seq > o.seq; }
    };
    struct SessionState {
        std::uint32_t next_seq = 0;
        std::uint64_t emitted = 0;
        std::vector<Pending> heap;  // min-heap by key
        std::optional<Pending> held;
    };
    std::uint32_t next_rand();
    unsigned pick_path(std::uint32_t seq) const;
    Pending pop(SessionState& s);

    Profile p_;
    std::vector<std::uint32_t> perm_;
    std::vector<std::uint16_t> size_pattern_;
    std::vector<std::uint8_t> path_pattern_;
    std::vector<std::uint32_t> flow_seq_;  // downlink: next number per flow
    std::vector<SessionState> sessions_;   // uplink
    std::uint64_t k_ = 0, dropped_ = 0;
    std::uint32_t max_skew_ = 0;
    std::uint64_t rng_;
};

// The frame of one spec. tsc is written into the stamp (0 in pcaps).
std::vector<std::uint8_t> build_frame(Direction d, const PacketSpec& s, std::uint64_t tsc = 0);

// Writes `packets` frames of the profile to a classic pcap file (Ethernet, one record per
// microsecond), for net_pcap's rx_pcap (infinite_rx=1 replays it).
Result<void, std::string> write_pcap(const std::string& path, const Profile& p,
                                     std::uint64_t packets);

// What came back: per flow, the numbers seen (a number below the highest seen so far is
// reordered; a jump over numbers is a gap, which is loss unless they come later), and the
// latency of stamped packets from their TSC stamp. Any bytes are accepted (received traffic).
struct RxReport {
    std::uint64_t received = 0, stamped = 0, unstamped = 0, foreign_flow = 0;
    std::uint64_t in_order = 0, reordered = 0, gap_numbers = 0, duplicates_or_late = 0;
    std::uint64_t bytes = 0;
    double latency_ns_p50 = 0, latency_ns_p99 = 0, latency_ns_max = 0, latency_ns_mean = 0;
};

class Receiver {
  public:
    // Flows 0..2 * subscribers - 1 (flow_id()); tsc_hz converts stamps to nanoseconds.
    Receiver(std::uint32_t subscribers, std::uint64_t tsc_hz);
    void on_frame(std::span<const std::uint8_t> frame, std::uint64_t now_tsc);
    [[nodiscard]] RxReport report() const;

  private:
    struct FlowRx {
        std::uint32_t next = 0;  // highest number seen + 1
        bool seen = false;
    };
    std::vector<FlowRx> flows_;
    std::uint64_t tsc_hz_;
    RxReport r_;
    std::vector<std::uint32_t> latency_ns_;  // the first kLatencySamples, then every 16th
    std::uint64_t latency_sum_ns_ = 0, latency_n_ = 0;
};

}  // namespace hag::gen
