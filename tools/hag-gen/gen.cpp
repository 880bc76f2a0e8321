#include "gen.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <numeric>
#include <random>

#include "bench/subscribers.hpp"
#include "hag/net/builders.hpp"

namespace hag::gen {

namespace bench = hag::dp::bench;

namespace {

constexpr std::uint8_t kGatewayMac[6] = {0x02, 0, 0, 0, 0, 0x10};
constexpr std::uint16_t kSrcPort = 40000;
constexpr std::uint16_t kDstPort = 9;  // discard
constexpr std::uint16_t kEth = 14, kIpv6 = 40, kIpv4 = 20, kUdp = 8, kGreOuter = 40 + 12;

net::Ipv6Address v6(const hag::dp::IpAddr& a) {
    net::Ipv6Address r{};
    std::memcpy(r.data(), a.bytes.data(), 16);
    return r;
}
net::Ipv4Address v4(const hag::dp::IpAddr& a) {
    net::Ipv4Address r{};
    std::memcpy(r.data(), a.bytes.data(), 4);
    return r;
}

std::vector<std::uint8_t> ethernet(const hag::dp::MacAddr& src, bool ipv4,
                                   std::span<const std::uint8_t> ip) {
    std::vector<std::uint8_t> f(kEth + ip.size());
    std::memcpy(f.data(), kGatewayMac, 6);
    std::memcpy(f.data() + 6, src.data(), 6);
    f[12] = ipv4 ? 0x08 : 0x86;
    f[13] = ipv4 ? 0x00 : 0xdd;
    std::memcpy(f.data() + kEth, ip.data(), ip.size());
    return f;
}

// The inner IP packet (no Ethernet) of `s`, `frame` octets once in an Ethernet header, with the
// stamp at its end when there is room.
std::vector<std::uint8_t> inner_ip(bool down, const PacketSpec& s, std::uint64_t tsc) {
    const std::uint16_t hdr = kEth + (s.ipv4 ? kIpv4 : kIpv6) + kUdp;
    std::vector<std::uint8_t> payload(s.size > hdr ? s.size - hdr : 0, 0);
    if (payload.size() >= kStampSize) {
        // Downlink: one flow per subscriber and family; uplink: the session's one GRE
        // sequence space, whatever the inner family.
        put_stamp(payload, {flow_id(s.subscriber, down && s.ipv4), s.seq, tsc});
    }
    if (s.ipv4) {
        const auto sub = v4(bench::inner_host_v4(s.subscriber));
        const auto core = v4(bench::core_host_v4());
        return down ? net::build_udp_ipv4(core, sub, kSrcPort, kDstPort, payload)
                    : net::build_udp_ipv4(sub, core, kSrcPort, kDstPort, payload);
    }
    const auto sub = v6(bench::inner_host(s.subscriber));
    const auto core = v6(bench::core_host());
    return down ? net::build_udp_ipv6(core, sub, kSrcPort, kDstPort, payload)
                : net::build_udp_ipv6(sub, core, kSrcPort, kDstPort, payload);
}

void put_le32(std::vector<std::uint8_t>& b, std::uint32_t v) {
    for (int k = 0; k < 4; ++k) {
        b.push_back(static_cast<std::uint8_t>(v >> (8 * k)));
    }
}

}  // namespace

std::uint16_t min_frame(bool ipv4) {
    // 64 octets is the smallest Ethernet frame (without FCS: 60; hag's benchmarks use 64).
    return std::max<std::uint16_t>(64, kEth + (ipv4 ? kIpv4 : kIpv6) + kUdp);
}

bool stamped(const PacketSpec& s) {
    return s.size >= kEth + (s.ipv4 ? kIpv4 : kIpv6) + kUdp + kStampSize;
}

std::uint32_t wire_size(Direction d, const PacketSpec& s) {
    return s.size + (d == Direction::kUplink ? kGreOuter : 0);
}

Result<std::vector<SizeWeight>, std::string> parse_sizes(const std::string& text) {
    if (text == "imix") {
        return std::vector<SizeWeight>{{64, 7}, {594, 4}, {1400, 1}};
    }
    std::vector<SizeWeight> out;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        const std::size_t end = std::min(text.find(',', pos), text.size());
        const std::string item = text.substr(pos, end - pos);
        SizeWeight sw;
        unsigned size = 0, weight = 1;
        char extra = 0;
        const int n = std::sscanf(item.c_str(), "%u:%u%c", &size, &weight, &extra);
        if (n < 1 || n > 2 || size < 64 || size > 1500 || size % 2 != 0 || weight == 0 ||
            weight > 1000) {
            return unexpected(fmt::format(
                "sizes: '{}' is not SIZE[:WEIGHT] with an even size 64..1500 and weight 1..1000",
                item));
        }
        sw.size = static_cast<std::uint16_t>(size);
        sw.weight = weight;
        out.push_back(sw);
        pos = end + 1;
    }
    if (out.empty()) {
        return unexpected(std::string("sizes: empty"));
    }
    return out;
}

Result<void, std::string> validate(const Profile& p) {
    if (p.subscribers == 0 || p.subscribers > bench::kMaxSubscribers) {
        return unexpected(fmt::format("subscribers: 1..{}", bench::kMaxSubscribers));
    }
    if (!p.ipv4 && !p.ipv6) {
        return unexpected(std::string("no address family"));
    }
    if (p.ipv4 && p.subscribers > bench::kMaxIpv4Subscribers) {
        return unexpected(fmt::format("IPv4: at most {} subscribers (198.18.0.0/15)",
                                      bench::kMaxIpv4Subscribers));
    }
    if (p.sizes.empty()) {
        return unexpected(std::string("no frame size"));
    }
    if (p.paths == 0 || p.paths > 8) {
        return unexpected(std::string("paths: 1..8"));
    }
    if (!p.path_weights.empty() && p.path_weights.size() != p.paths) {
        return unexpected(std::string("path weights: one per path"));
    }
    if (!p.skew.empty() && p.skew.size() != p.paths) {
        return unexpected(std::string("skew: one per path"));
    }
    for (auto w : p.path_weights) {
        if (w == 0 || w > 1000) {
            return unexpected(std::string("path weights: 1..1000"));
        }
    }
    for (auto d : p.skew) {
        if (d > 1000) {
            return unexpected(std::string("skew: 0..1000 packet slots"));
        }
    }
    if (p.permille > 1000 || p.loss_permille >= 1000) {
        return unexpected(std::string("permille 0..1000, loss 0..999"));
    }
    return {};
}

Generator::Generator(const Profile& p) : p_(p), rng_(0x9e3779b97f4a7c15ull ^ p.seed) {
    std::mt19937 rng(p.seed);
    perm_.resize(p.subscribers);
    std::iota(perm_.begin(), perm_.end(), 0u);
    std::shuffle(perm_.begin(), perm_.end(), rng);
    for (const auto& sw : p.sizes) {
        size_pattern_.insert(size_pattern_.end(), sw.weight, sw.size);
    }
    std::shuffle(size_pattern_.begin(), size_pattern_.end(), rng);
    for (unsigned k = 0; k < p.paths; ++k) {
        const std::uint32_t w = p.path_weights.empty() ? 1 : p.path_weights[k];
        path_pattern_.insert(path_pattern_.end(), w, static_cast<std::uint8_t>(k));
    }
    // Interleave the paths (weights 3,1 -> 0,1,0,0 rather than 0,0,0,1) deterministically.
    std::shuffle(path_pattern_.begin(), path_pattern_.end(), rng);
    for (auto d : p.skew) {
        max_skew_ = std::max(max_skew_, d);
    }
    if (p.direction == Direction::kDownlink) {
        flow_seq_.assign(std::size_t{p.subscribers} * 2, 0);
    } else {
        sessions_.resize(p.subscribers);
    }
}

std::uint32_t Generator::next_rand() {
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    return static_cast<std::uint32_t>(rng_ >> 16);
}

unsigned Generator::pick_path(std::uint32_t seq) const {
    return path_pattern_[seq % path_pattern_.size()];
}

Generator::Pending Generator::pop(SessionState& s) {
    // Slot `emitted` of the session: every number that could be due by then (up to the largest
    // skew ahead) is generated, lost ones never enter the heap, and the earliest due goes out.
    while (s.heap.empty() || s.next_seq <= s.emitted + max_skew_) {
        const std::uint32_t seq = s.next_seq++;
        const unsigned path = pick_path(seq);
        if (p_.loss_permille > 0 && next_rand() % 1000 < p_.loss_permille) {
            ++dropped_;
            continue;
        }
        const std::uint64_t skew = p_.skew.empty() ? 0 : p_.skew[path];
        s.heap.push_back({seq + skew, seq, static_cast<std::uint8_t>(path)});
        std::push_heap(s.heap.begin(), s.heap.end(), std::greater<>{});
    }
    std::pop_heap(s.heap.begin(), s.heap.end(), std::greater<>{});
    const Pending out = s.heap.back();
    s.heap.pop_back();
    ++s.emitted;
    return out;
}

PacketSpec Generator::next() {
    const std::uint64_t k = k_++;
    PacketSpec s;
    s.subscriber = perm_[k % p_.subscribers];
    const std::uint64_t round = k / p_.subscribers;
    // Sizes in proportion over every pattern's length of packets; when the subscribers are a
    // multiple of it, shifted each round so that a subscriber does not keep one size.
    const std::size_t len = size_pattern_.size();
    s.size = size_pattern_[(p_.subscribers % len == 0 ? k + round : k) % len];
    // Both families: a subscriber alternates between them from one round to the next.
    s.ipv4 = p_.ipv4 && (!p_.ipv6 || ((round + s.subscriber) & 1) != 0);
    s.size = std::max(s.size, min_frame(s.ipv4));
    if (p_.direction == Direction::kDownlink) {
        s.seq = flow_seq_[flow_id(s.subscriber, s.ipv4)]++;
        return s;
    }
    // Uplink: one sequence space per session (GRE), whatever the inner family.
    SessionState& st = sessions_[s.subscriber];
    Pending out{};
    if (st.held) {
        out = *st.held;
        st.held.reset();
    } else {
        out = pop(st);
        if (p_.permille > 0 && next_rand() % 1000 < p_.permille) {
            st.held = out;  // swap with the session's next packet
            out = pop(st);
        }
    }
    s.seq = out.seq;
    s.path = out.path;
    return s;
}

std::vector<std::uint8_t> build_frame(Direction d, const PacketSpec& s, std::uint64_t tsc) {
    const bool down = d == Direction::kDownlink;
    const auto inner = inner_ip(down, s, tsc);
    if (down) {
        return ethernet(bench::kCoreNextHopMac, s.ipv4, inner);
    }
    const auto outer =
        net::build_gre_ipv6(v6(bench::path_coa(s.subscriber, s.path)), v6(bench::gateway_address()),
                            bench::uplink_key(s.subscriber), s.seq, inner);
    return ethernet(bench::kAccessNextHopMac, false, outer);
}

Result<void, std::string> write_pcap(const std::string& path, const Profile& p,
                                     std::uint64_t packets) {
    if (auto v = validate(p); !v) {
        return v;
    }
    if (packets == 0 || packets > (1ull << 27)) {
        return unexpected(std::string("packets: 1..2^27"));
    }
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
    if (!f) {
        return unexpected(fmt::format("{}: {}", path, std::strerror(errno)));
    }
    std::vector<std::uint8_t> out;
    for (std::uint32_t v : {0xa1b2c3d4u, 0x00040002u, 0u, 0u, 65535u, 1u}) {
        put_le32(out, v);
    }
    Generator g(p);
    for (std::uint64_t k = 0; k < packets; ++k) {
        const auto fr = build_frame(p.direction, g.next());
        put_le32(out, static_cast<std::uint32_t>(k / 1000000));
        put_le32(out, static_cast<std::uint32_t>(k % 1000000));
        put_le32(out, static_cast<std::uint32_t>(fr.size()));
        put_le32(out, static_cast<std::uint32_t>(fr.size()));
        out.insert(out.end(), fr.begin(), fr.end());
        if (out.size() > (1u << 20)) {
            if (std::fwrite(out.data(), 1, out.size(), f.get()) != out.size()) {
                return unexpected(fmt::format("{}: write failed", path));
            }
            out.clear();
        }
    }
    if (std::fwrite(out.data(), 1, out.size(), f.get()) != out.size() ||
        std::fflush(f.get()) != 0) {
        return unexpected(fmt::format("{}: write failed", path));
    }
    return {};
}

Receiver::Receiver(std::uint32_t subscribers, std::uint64_t tsc_hz)
    : flows_(std::size_t{subscribers} * 2), tsc_hz_(tsc_hz ? tsc_hz : 1) {}

void Receiver::on_frame(std::span<const std::uint8_t> frame, std::uint64_t now_tsc) {
    constexpr std::size_t kLatencySamples = 1u << 20;
    ++r_.received;
    r_.bytes += frame.size();
    const auto st = parse_stamp(frame);
    if (!st) {
        ++r_.unstamped;
        return;
    }
    ++r_.stamped;
    if (st->flow >= flows_.size()) {
        ++r_.foreign_flow;
        return;
    }
    FlowRx& f = flows_[st->flow];
    if (!f.seen || st->seq >= f.next) {
        if (f.seen && st->seq > f.next) {
            r_.gap_numbers += st->seq - f.next;
        } else if (!f.seen && st->seq > 0) {
            r_.gap_numbers += st->seq;
        }
        ++r_.in_order;
        f.next = st->seq + 1;
        f.seen = true;
    } else {
        ++r_.reordered;
        // A late number fills a gap counted before: it was not lost.
        if (r_.gap_numbers > 0) {
            --r_.gap_numbers;
        } else {
            ++r_.duplicates_or_late;
        }
    }
    if (st->tsc != 0 && now_tsc >= st->tsc) {
        const double ns =
            static_cast<double>(now_tsc - st->tsc) * 1e9 / static_cast<double>(tsc_hz_);
        const auto v = static_cast<std::uint32_t>(std::min(ns, 4e9));
        latency_sum_ns_ += v;
        ++latency_n_;
        if (latency_ns_.size() < kLatencySamples || latency_n_ % 16 == 0) {
            if (latency_ns_.size() < kLatencySamples) {
                latency_ns_.push_back(v);
            } else {
                latency_ns_[(latency_n_ / 16) % kLatencySamples] = v;
            }
        }
    }
}

RxReport Receiver::report() const {
    RxReport r = r_;
    if (!latency_ns_.empty()) {
        auto v = latency_ns_;
        std::sort(v.begin(), v.end());
        r.latency_ns_p50 = v[v.size() / 2];
        r.latency_ns_p99 = v[std::min(v.size() - 1, v.size() * 99 / 100)];
        r.latency_ns_max = v.back();
        r.latency_ns_mean = static_cast<double>(latency_sum_ns_) / static_cast<double>(latency_n_);
    }
    return r;
}

}  // namespace hag::gen
