// hag-linkemu: a userspace link emulator for tests (docs/linkemu.md). Forwards Ethernet frames
// both ways between two interfaces of one namespace (AF_PACKET), adding per-direction delay,
// jitter, random loss and optional reordering. Rate: tbf / htb on the interfaces.
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "schedule.hpp"

using hag::linkemu::Clock;
using hag::linkemu::Direction;
using hag::linkemu::DirectionConfig;

namespace {

volatile sig_atomic_t g_stop = 0;

// A raw socket bound to one interface, in promiscuous mode, that sees frames the interface
// receives (not the ones sent through it).
int open_port(const std::string& ifname, int& ifindex) {
    ifindex = static_cast<int>(::if_nametoindex(ifname.c_str()));
    if (ifindex == 0) {
        std::fprintf(stderr, "hag-linkemu: no interface %s\n", ifname.c_str());
        return -1;
    }
    const int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (fd < 0) {
        std::fprintf(stderr, "hag-linkemu: AF_PACKET socket: %s (needs CAP_NET_RAW)\n",
                     std::strerror(errno));
        return -1;
    }
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = ifindex;
    packet_mreq mr{};
    mr.mr_ifindex = ifindex;
    mr.mr_type = PACKET_MR_PROMISC;
    const int one = 1;
    const int buf = 4 << 20;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0 ||
        ::setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) != 0) {
        std::fprintf(stderr, "hag-linkemu: %s: %s\n", ifname.c_str(), std::strerror(errno));
        ::close(fd);
        return -1;
    }
    (void)::setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
    (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf);
    (void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof buf);
    return fd;
}

std::string counters_json(const hag::linkemu::DirectionCounters& c) {
    return "{\"received\": " + std::to_string(c.received) +
           ", \"forwarded\": " + std::to_string(c.forwarded) +
           ", \"lost\": " + std::to_string(c.lost) +
           ", \"queue_full\": " + std::to_string(c.queue_full) +
           ", \"reordered\": " + std::to_string(c.reordered) +
           ", \"send_errors\": " + std::to_string(c.send_errors) + "}";
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "hag-linkemu: test tool; forwards frames between two interfaces with delay, jitter, loss "
        "and reordering per direction (rate: use tbf/htb)"};
    std::string ifa, ifb, stats;
    double delay_ms = 0, jitter_ms = 0, loss = 0, reorder = 0;
    double delay_ba = -1, jitter_ba = -1, loss_ba = -1, reorder_ba = -1;
    std::size_t limit = 10000;
    std::uint64_t seed = 1;
    app.add_option("--a", ifa, "first interface")->required();
    app.add_option("--b", ifb, "second interface")->required();
    app.add_option("--delay-ms", delay_ms, "added delay, a->b (and b->a unless --delay-ms-ba)")
        ->check(CLI::Range(0.0, 10000.0));
    app.add_option("--jitter-ms", jitter_ms, "uniform jitter +-, no reordering")
        ->check(CLI::Range(0.0, 10000.0));
    app.add_option("--loss", loss, "loss probability 0..1")->check(CLI::Range(0.0, 1.0));
    app.add_option("--reorder", reorder,
                   "probability 0..1 that a frame skips the delay (overtakes the queue)")
        ->check(CLI::Range(0.0, 1.0));
    app.add_option("--delay-ms-ba", delay_ba, "b->a delay (default: --delay-ms)")
        ->check(CLI::Range(0.0, 10000.0));
    app.add_option("--jitter-ms-ba", jitter_ba, "b->a jitter")->check(CLI::Range(0.0, 10000.0));
    app.add_option("--loss-ba", loss_ba, "b->a loss")->check(CLI::Range(0.0, 1.0));
    app.add_option("--reorder-ba", reorder_ba, "b->a reordering")->check(CLI::Range(0.0, 1.0));
    app.add_option("--queue-limit", limit, "frames waiting per direction (more are dropped)")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}))
        ->capture_default_str();
    app.add_option("--seed", seed, "random seed")->capture_default_str();
    app.add_option("--stats", stats, "counters as JSON to this file at exit");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    auto us = [](double ms) {
        return std::chrono::microseconds(static_cast<std::int64_t>(ms * 1000.0));
    };
    DirectionConfig ab{us(delay_ms), us(jitter_ms), loss, reorder, limit};
    DirectionConfig ba{us(delay_ba >= 0 ? delay_ba : delay_ms),
                       us(jitter_ba >= 0 ? jitter_ba : jitter_ms), loss_ba >= 0 ? loss_ba : loss,
                       reorder_ba >= 0 ? reorder_ba : reorder, limit};
    std::array<Direction, 2> dir{Direction(ab, seed), Direction(ba, seed + 1)};
    std::array<int, 2> idx{};
    std::array<int, 2> fd{open_port(ifa, idx[0]), open_port(ifb, idx[1])};
    if (fd[0] < 0 || fd[1] < 0) {
        return 2;
    }
    ::signal(SIGINT, [](int) { g_stop = 1; });
    ::signal(SIGTERM, [](int) { g_stop = 1; });
    std::printf("hag-linkemu: ready %s <-> %s\n", ifa.c_str(), ifb.c_str());
    std::fflush(stdout);

    std::array<std::uint8_t, 65536> frame;
    std::array<pollfd, 2> pfd{pollfd{fd[0], POLLIN, 0}, pollfd{fd[1], POLLIN, 0}};
    while (!g_stop) {
        auto wait = std::chrono::microseconds(100000);
        const auto now0 = Clock::now();
        for (const auto& d : dir) {
            if (auto t = d.next_departure()) {
                wait = std::min(
                    wait,
                    std::max(std::chrono::microseconds(0),
                             std::chrono::duration_cast<std::chrono::microseconds>(*t - now0)));
            }
        }
        const timespec ts{static_cast<time_t>(wait.count() / 1000000),
                          static_cast<long>(wait.count() % 1000000) * 1000};
        const int n = ::ppoll(pfd.data(), pfd.size(), &ts, nullptr);
        for (std::size_t i = 0; n > 0 && i < 2; ++i) {
            if ((pfd[i].revents & POLLIN) == 0) {
                continue;
            }
            for (int k = 0; k < 64; ++k) {  // a batch per turn
                sockaddr_ll from{};
                socklen_t flen = sizeof from;
                const ssize_t got = ::recvfrom(fd[i], frame.data(), frame.size(), MSG_TRUNC,
                                               reinterpret_cast<sockaddr*>(&from), &flen);
                if (got < 0) {
                    break;
                }
                if (from.sll_pkttype == PACKET_OUTGOING ||
                    static_cast<std::size_t>(got) > frame.size() || got < 14) {
                    continue;  // our own sends, or nothing an Ethernet link carries
                }
                dir[i].arrive(
                    std::span<const std::uint8_t>(frame.data(), static_cast<std::size_t>(got)),
                    Clock::now());
            }
        }
        const auto now = Clock::now();
        for (std::size_t i = 0; i < 2; ++i) {
            const int out = fd[1 - i];
            dir[i].depart(now, [out](std::span<const std::uint8_t> f) {
                return ::send(out, f.data(), f.size(), 0) == static_cast<ssize_t>(f.size());
            });
        }
    }
    const std::string json = "{\"a\": \"" + ifa + "\", \"b\": \"" + ifb +
                             "\", \"a_to_b\": " + counters_json(dir[0].counters()) +
                             ", \"b_to_a\": " + counters_json(dir[1].counters()) + "}\n";
    std::printf("%s", json.c_str());
    if (!stats.empty()) {
        std::ofstream(stats) << json;
    }
    ::close(fd[0]);
    ::close(fd[1]);
    return 0;
}
