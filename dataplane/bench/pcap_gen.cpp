#include "bench/pcap_gen.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "bench/subscribers.hpp"
#include "hag/net/builders.hpp"

namespace hag::dp::bench {

namespace {

constexpr std::array<std::uint8_t, 6> kGatewayMac{0x02, 0, 0, 0, 0, 0x10};
constexpr std::uint16_t kSrcPort = 40000;
constexpr std::uint16_t kDstPort = 9;  // discard

void put_le32(std::vector<std::uint8_t>& b, std::uint32_t v) {
    for (int k = 0; k < 4; ++k) {
        b.push_back(static_cast<std::uint8_t>(v >> (8 * k)));
    }
}

std::vector<std::uint8_t> ethernet(const MacAddr& src, const std::vector<std::uint8_t>& ip) {
    std::vector<std::uint8_t> f(14 + ip.size());
    std::memcpy(f.data(), kGatewayMac.data(), 6);
    std::memcpy(f.data() + 6, src.data(), 6);
    f[12] = 0x86;  // IPv6
    f[13] = 0xdd;
    std::memcpy(f.data() + 14, ip.data(), ip.size());
    return f;
}

std::vector<std::uint8_t> frame(Direction dir, std::uint32_t sub, std::uint32_t seq,
                                bool alt_path = false) {
    static constexpr std::array<std::uint8_t, 2> kPayload{'h', 'a'};
    if (dir == Direction::kDownlink) {
        return ethernet(kCoreNextHopMac,
                        net::build_udp_ipv6(core_host().bytes, inner_host(sub).bytes, kSrcPort,
                                            kDstPort, kPayload));
    }
    const auto inner =
        net::build_udp_ipv6(inner_host(sub).bytes, core_host().bytes, kSrcPort, kDstPort, kPayload);
    return ethernet(kAccessNextHopMac,
                    net::build_gre_ipv6(care_of(sub, alt_path).bytes, gateway_address().bytes,
                                        uplink_key(sub), seq, inner));
}

using File = std::unique_ptr<std::FILE, int (*)(std::FILE*)>;

Result<void, std::string> write_records(
    const std::string& path, std::uint32_t packets,
    const std::function<std::vector<std::uint8_t>(std::uint32_t)>& frame_of) {
    File f(std::fopen(path.c_str(), "wb"), &std::fclose);
    if (!f) {
        return unexpected(fmt::format("{}: {}", path, std::strerror(errno)));
    }
    std::vector<std::uint8_t> out;
    // Classic pcap header: magic, version 2.4 (two 16-bit fields: 0x00040002 little-endian),
    // zone, sigfigs, snaplen, link type Ethernet; then one record per packet, one per microsecond.
    for (std::uint32_t v : {0xa1b2c3d4u, 0x00040002u, 0u, 0u, 65535u, 1u}) {
        put_le32(out, v);
    }
    for (std::uint32_t k = 0; k < packets; ++k) {
        const auto fr = frame_of(k);
        put_le32(out, k / 1000000);
        put_le32(out, k % 1000000);
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

}  // namespace

Result<void, std::string> write_reorder_pcap(const std::string& path, std::uint32_t subscribers,
                                             std::uint32_t per_subscriber, unsigned permille) {
    if (subscribers == 0 || subscribers > kMaxSubscribers || per_subscriber <= 65536 ||
        permille > 1000 || std::uint64_t{subscribers} * per_subscriber > (1u << 26)) {
        return unexpected(std::string(
            "reorder pcap: 1.. subscribers, more than 65536 packets each, at most 2^26 in all, "
            "permille 0-1000"));
    }
    std::vector<std::uint32_t> perm(subscribers);
    std::iota(perm.begin(), perm.end(), 0u);
    std::mt19937 rng(20240605);
    std::shuffle(perm.begin(), perm.end(), rng);
    // order[k] = (subscriber, number); swaps with the same subscriber's next packet.
    const std::uint32_t total = subscribers * per_subscriber;
    std::vector<std::uint32_t> seq(total);
    for (std::uint32_t k = 0; k < total; ++k) {
        seq[k] = k / subscribers;
    }
    for (std::uint32_t k = 0; k + subscribers < total; ++k) {
        if (rng() % 1000 < permille && seq[k] + 1 == seq[k + subscribers]) {
            std::swap(seq[k], seq[k + subscribers]);
        }
    }
    return write_records(path, total, [&](std::uint32_t k) {
        return frame(Direction::kUplink, perm[k % subscribers], seq[k], (seq[k] & 1) != 0);
    });
}

Result<void, std::string> write_pcap(const std::string& path, Direction dir,
                                     std::uint32_t subscribers, std::uint32_t packets) {
    if (subscribers == 0 || subscribers > kMaxSubscribers || packets == 0) {
        return unexpected(
            fmt::format("need 1..{} subscribers and at least one packet", kMaxSubscribers));
    }
    std::vector<std::uint32_t> perm(subscribers);
    std::iota(perm.begin(), perm.end(), 0u);
    std::mt19937 rng(20240605);
    std::shuffle(perm.begin(), perm.end(), rng);

    return write_records(path, packets, [&](std::uint32_t k) {
        return frame(dir, perm[k % subscribers], k / subscribers);
    });
}

}  // namespace hag::dp::bench
