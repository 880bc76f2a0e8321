#include "live.hpp"

#include <rte_cycles.h>
#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <unistd.h>

#include <fmt/format.h>

#include <array>
#include <cstring>
#include <deque>
#include <sstream>

namespace hag::gen {

Result<void, std::string> fill_mbuf(rte_mbuf* m, Direction d, const PacketSpec& s,
                                    std::uint64_t tsc) {
    const auto f = build_frame(d, s, tsc);
    if (f.size() > rte_pktmbuf_tailroom(m)) {
        return unexpected(fmt::format("frame of {} octets does not fit the mbuf ({} free)",
                                      f.size(), rte_pktmbuf_tailroom(m)));
    }
    char* p = rte_pktmbuf_append(m, static_cast<std::uint16_t>(f.size()));
    if (p == nullptr) {
        return unexpected(std::string("rte_pktmbuf_append failed"));
    }
    std::memcpy(p, f.data(), f.size());
    return {};
}

std::optional<Stamp> mbuf_stamp(const rte_mbuf* m) {
    if (m->pkt_len < kStampSize) {
        return std::nullopt;
    }
    std::array<std::uint8_t, kStampSize> buf{};
    const auto* p = static_cast<const std::uint8_t*>(
        rte_pktmbuf_read(m, m->pkt_len - kStampSize, kStampSize, buf.data()));
    if (p == nullptr) {
        return std::nullopt;
    }
    return parse_stamp(std::span<const std::uint8_t>(p, kStampSize));
}

namespace {

Result<void, std::string> init_eal(const LiveOptions& o) {
    static bool done = false;
    if (o.eal_ready) {
        for (const auto& v : o.vdevs) {
            const auto comma = v.find(',');
            const std::string name = v.substr(0, comma);
            const std::string args = comma == std::string::npos ? "" : v.substr(comma + 1);
            std::uint16_t id = 0;
            if (rte_eth_dev_get_port_by_name(name.c_str(), &id) != 0 &&
                rte_eal_hotplug_add("vdev", name.c_str(), args.c_str()) != 0) {
                return unexpected(fmt::format("cannot create {}", v));
            }
        }
        return {};
    }
    if (done) {
        return {};
    }
    std::vector<std::string> args{"hag-gen",
                                  "-l",
                                  o.lcores,
                                  "--file-prefix",
                                  fmt::format("hag-gen-{}", ::getpid()),
                                  "--no-telemetry",
                                  "--log-level=lib.eal:warning"};
    std::istringstream extra(o.eal_args);
    for (std::string w; extra >> w;) {
        args.push_back(w);
    }
    for (const auto& v : o.vdevs) {
        args.push_back("--vdev");
        args.push_back(v);
    }
    std::vector<char*> argv;
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
        return unexpected(fmt::format("EAL initialisation failed: {}", rte_strerror(rte_errno)));
    }
    done = true;
    return {};
}

Result<void, std::string> start_port(std::uint16_t port, rte_mempool* pool) {
    if (!rte_eth_dev_is_valid_port(port)) {
        return unexpected(fmt::format("no port {} (give --vdev or a PCI device)", port));
    }
    rte_eth_conf conf{};
    if (int rc = rte_eth_dev_configure(port, 1, 1, &conf); rc < 0) {
        return unexpected(fmt::format("port {}: configure: {}", port, rte_strerror(-rc)));
    }
    const int socket = rte_eth_dev_socket_id(port);
    const unsigned sock = socket < 0 ? rte_socket_id() : static_cast<unsigned>(socket);
    if (int rc = rte_eth_rx_queue_setup(port, 0, 1024, sock, nullptr, pool); rc < 0) {
        return unexpected(fmt::format("port {}: RX queue: {}", port, rte_strerror(-rc)));
    }
    if (int rc = rte_eth_tx_queue_setup(port, 0, 1024, sock, nullptr); rc < 0) {
        return unexpected(fmt::format("port {}: TX queue: {}", port, rte_strerror(-rc)));
    }
    if (int rc = rte_eth_dev_start(port); rc < 0) {
        return unexpected(fmt::format("port {}: start: {}", port, rte_strerror(-rc)));
    }
    rte_eth_promiscuous_enable(port);
    return {};
}

}  // namespace

Result<LiveReport, std::string> run_live(const Profile& p, const LiveOptions& o) {
    if (auto v = validate(p); !v) {
        return unexpected(v.error());
    }
    if (o.seconds <= 0 && o.count == 0) {
        return unexpected(std::string("give --seconds or --count"));
    }
    if (auto e = init_eal(o); !e) {
        return unexpected(e.error());
    }
    static unsigned runs = 0;
    rte_mempool* pool =
        rte_pktmbuf_pool_create(fmt::format("hgen{}_{}", ::getpid(), runs++).c_str(), 8191, 256, 0,
                                RTE_MBUF_DEFAULT_BUF_SIZE, static_cast<int>(rte_socket_id()));
    if (pool == nullptr) {
        return unexpected(fmt::format("mbuf pool: {}", rte_strerror(rte_errno)));
    }
    const std::uint16_t tx = o.tx_port;
    const std::uint16_t rx = o.rx_port < 0 ? tx : static_cast<std::uint16_t>(o.rx_port);
    if (auto r = start_port(tx, pool); !r) {
        rte_mempool_free(pool);
        return unexpected(r.error());
    }
    if (rx != tx) {
        if (auto r = start_port(rx, pool); !r) {
            rte_eth_dev_stop(tx);
            rte_mempool_free(pool);
            return unexpected(r.error());
        }
    }
    const std::uint64_t hz = rte_get_tsc_hz();
    Generator g(p);
    Receiver recv(p.subscribers, hz);
    LiveReport rep;
    constexpr unsigned kBurst = 32;
    std::array<rte_mbuf*, kBurst> burst{};
    const std::uint64_t t0 = rte_get_tsc_cycles();
    const std::uint64_t t_end =
        o.seconds > 0 ? t0 + static_cast<std::uint64_t>(o.seconds * hz) : UINT64_MAX;
    const double cycles_per_packet = o.pps > 0 ? static_cast<double>(hz) / o.pps : 0;
    double next_due = static_cast<double>(t0);
    std::deque<PacketSpec> carried;  // specs whose mbufs the port refused: sent next, in order
    auto poll_rx = [&] {
        std::array<rte_mbuf*, kBurst> in{};
        const std::uint16_t n = rte_eth_rx_burst(rx, 0, in.data(), kBurst);
        const std::uint64_t now = rte_get_tsc_cycles();
        std::array<std::uint8_t, 2048> copy{};
        for (std::uint16_t k = 0; k < n; ++k) {
            const rte_mbuf* m = in[k];
            const std::uint32_t len = std::min<std::uint32_t>(m->pkt_len, copy.size());
            const auto* d = static_cast<const std::uint8_t*>(
                rte_pktmbuf_read(m, m->pkt_len - len, len, copy.data()));
            if (d != nullptr) {
                recv.on_frame(std::span<const std::uint8_t>(d, len), now);
            }
            rte_pktmbuf_free(in[k]);
        }
        return n;
    };
    std::uint64_t now = t0;
    std::uint64_t last_progress = t0;  // the loop ends if the port takes nothing for 5 s
    std::string error;
    while (now < t_end && (o.count == 0 || rep.sent < o.count)) {
        now = rte_get_tsc_cycles();
        if (now - last_progress > 5 * hz) {
            error = fmt::format("port {} took no packet for 5 s", tx);
            break;
        }
        unsigned want = kBurst;
        if (o.count > 0) {
            want = static_cast<unsigned>(std::min<std::uint64_t>(want, o.count - rep.sent));
        }
        if (cycles_per_packet > 0) {
            const double due = (static_cast<double>(now) - next_due) / cycles_per_packet;
            want = due < 1 ? 0 : static_cast<unsigned>(std::min<double>(want, due));
            if (want == 0) {
                last_progress = now;  // waiting for the offered rate, not for the port
            }
        }
        if (want > 0 && rte_pktmbuf_alloc_bulk(pool, burst.data(), want) == 0) {
            std::vector<PacketSpec> specs(want);
            for (unsigned k = 0; k < want; ++k) {
                if (!carried.empty()) {
                    specs[k] = carried.front();
                    carried.pop_front();
                } else {
                    specs[k] = g.next();
                }
                if (auto r = fill_mbuf(burst[k], p.direction, specs[k], rte_get_tsc_cycles()); !r) {
                    error = r.error();
                }
            }
            if (!error.empty()) {
                rte_pktmbuf_free_bulk(burst.data(), want);
                break;
            }
            const std::uint16_t sent =
                rte_eth_tx_burst(tx, 0, burst.data(), static_cast<std::uint16_t>(want));
            rep.sent += sent;
            if (sent > 0) {
                last_progress = now;
            }
            if (sent < want) {
                // The port is full: the refused specs go out first next time (in their order:
                // no gap in their flows; their stamps are rewritten then).
                carried.insert(carried.begin(), specs.begin() + sent, specs.end());
                rep.tx_refused += want - sent;
                rte_pktmbuf_free_bulk(burst.data() + sent, want - sent);
            }
            if (cycles_per_packet > 0) {
                next_due += sent * cycles_per_packet;
            }
        }
        poll_rx();
    }
    const std::uint64_t t_sent = rte_get_tsc_cycles();
    const std::uint64_t drain_end = t_sent + static_cast<std::uint64_t>(o.drain_seconds * hz);
    std::uint64_t last_rx = t_sent;
    while (rte_get_tsc_cycles() < drain_end) {
        if (poll_rx() > 0) {
            last_rx = rte_get_tsc_cycles();
        }
    }
    rte_eth_dev_stop(tx);
    if (rx != tx) {
        rte_eth_dev_stop(rx);
    }
    rte_mempool_free(pool);
    if (!error.empty()) {
        return unexpected(error);
    }
    rep.generator_dropped = g.dropped();
    rep.send_seconds = static_cast<double>(t_sent - t0) / static_cast<double>(hz);
    rep.rx = recv.report();
    rep.tx_pps = rep.send_seconds > 0 ? static_cast<double>(rep.sent) / rep.send_seconds : 0;
    const double rx_s =
        static_cast<double>(std::max(last_rx, t_sent) - t0) / static_cast<double>(hz);
    rep.rx_pps = rx_s > 0 ? static_cast<double>(rep.rx.received) / rx_s : 0;
    return rep;
}

std::string to_json(const LiveReport& r, const Profile& p) {
    const std::uint64_t lost = r.sent > r.rx.received ? r.sent - r.rx.received : 0;
    return fmt::format(
        "{{\"direction\":\"{}\",\"subscribers\":{},\"sent\":{},\"tx_refused\":{},"
        "\"generator_dropped\":{},\"send_seconds\":{:.6g},\"tx_pps\":{:.6g},\"received\":{},"
        "\"rx_pps\":{:.6g},\"rx_bytes\":{},\"lost\":{},\"loss_ratio\":{:.6g},\"stamped\":{},"
        "\"unstamped\":{},\"foreign_flow\":{},\"in_order\":{},\"reordered\":{},"
        "\"gap_numbers\":{},\"duplicates_or_late\":{},\"latency_ns\":{{\"p50\":{:.6g},"
        "\"p99\":{:.6g},\"max\":{:.6g},\"mean\":{:.6g}}}}}",
        p.direction == Direction::kDownlink ? "downlink" : "uplink", p.subscribers, r.sent,
        r.tx_refused, r.generator_dropped, r.send_seconds, r.tx_pps, r.rx.received, r.rx_pps,
        r.rx.bytes, lost, r.sent ? static_cast<double>(lost) / static_cast<double>(r.sent) : 0.0,
        r.rx.stamped, r.rx.unstamped, r.rx.foreign_flow, r.rx.in_order, r.rx.reordered,
        r.rx.gap_numbers, r.rx.duplicates_or_late, r.rx.latency_ns_p50, r.rx.latency_ns_p99,
        r.rx.latency_ns_max, r.rx.latency_ns_mean);
}

}  // namespace hag::gen
