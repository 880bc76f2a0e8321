#include "data_path.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

namespace hag::magsim {
namespace {

constexpr int kIpProtoGre = 47;
constexpr int kIpProtoIpv6InIp = 41;          // IPv6-in-IPv6 (MN mode without GRE)
constexpr std::uint16_t kLmaDataPort = 5437;  // user data in UDP (NAT traversal)
constexpr int kSocketBuffer = 4 << 20;

// Runs `ip ARGS...` (no shell) and returns its exit status.
int run_ip(std::vector<std::string> args) {
    args.insert(args.begin(), "ip");
    std::vector<char*> argv;
    for (auto& s : args) {
        argv.push_back(s.data());
    }
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        ::execvp("ip", argv.data());
        ::_exit(127);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) {
        s += (s.empty() ? "" : " ") + x;
    }
    return s;
}

void set_buffers(int fd) {
    for (int opt : {SO_RCVBUFFORCE, SO_SNDBUFFORCE}) {
        if (::setsockopt(fd, SOL_SOCKET, opt, &kSocketBuffer, sizeof kSocketBuffer) != 0) {
            (void)::setsockopt(fd, SOL_SOCKET, opt == SO_RCVBUFFORCE ? SO_RCVBUF : SO_SNDBUF,
                               &kSocketBuffer, sizeof kSocketBuffer);
        }
    }
}

sockaddr_storage lma_address(const DataAccess& a, socklen_t& len) {
    sockaddr_storage ss{};
    if (a.ipv4) {
        auto* s = reinterpret_cast<sockaddr_in*>(&ss);
        s->sin_family = AF_INET;
        std::memcpy(&s->sin_addr, a.lma4.data(), 4);
        len = sizeof(sockaddr_in);
    } else {
        auto* s = reinterpret_cast<sockaddr_in6*>(&ss);
        s->sin6_family = AF_INET6;
        std::memcpy(&s->sin6_addr, a.lma6.data(), 16);
        len = sizeof(sockaddr_in6);
    }
    return ss;
}

bool from_lma(const DataAccess& a, const sockaddr_storage& from) {
    if (a.ipv4) {
        return from.ss_family == AF_INET &&
               std::memcmp(&reinterpret_cast<const sockaddr_in*>(&from)->sin_addr, a.lma4.data(),
                           4) == 0;
    }
    return from.ss_family == AF_INET6 &&
           std::memcmp(&reinterpret_cast<const sockaddr_in6*>(&from)->sin6_addr, a.lma6.data(),
                       16) == 0;
}

}  // namespace

DataPath::DataPath(Key, const DataOptions& o, std::vector<DataAccess> accesses)
    : o_(o),
      scheduler_([&] {
          std::vector<std::uint64_t> w;
          for (const auto& a : accesses) {
              w.push_back(a.weight);
          }
          return w;
      }()),
      reorder_(o.reorder_window, std::chrono::milliseconds(o.reorder_timeout_ms), kRxBufferBytes),
      rx_(std::make_unique<RxBuffers>()),
      flows_(o.flows) {
    for (auto& a : accesses) {
        auto x = std::make_unique<Access>();
        x->cfg = std::move(a);
        x->index = accesses_.size();
        accesses_.push_back(std::move(x));
    }
    reorder_.set_accesses(accesses_.size());
    if (o.pin_bid) {
        for (std::size_t i = 0; i < accesses_.size(); ++i) {
            if (accesses_[i]->cfg.bid == *o.pin_bid) {
                scheduler_.pin(i);
            }
        }
    }
}

DataPath::~DataPath() {
    for (auto& a : accesses_) {
        if (a->fd >= 0) {
            ::close(a->fd);
        }
    }
    if (tun_ >= 0) {
        ::close(tun_);
    }
}

Result<std::unique_ptr<DataPath>, std::string> DataPath::open(const DataOptions& o,
                                                              std::vector<DataAccess> accesses) {
    if (o.tun.empty() || o.tun.size() >= IFNAMSIZ) {
        return unexpected("tun name must have 1 to 15 characters");
    }
    if (o.mtu < 1280 || o.mtu > kRxBufferBytes - 96) {
        return unexpected("tun MTU must be in 1280.." + std::to_string(kRxBufferBytes - 96));
    }
    auto d = std::make_unique<DataPath>(Key{}, o, std::move(accesses));
    d->tun_ = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (d->tun_ < 0) {
        return unexpected(std::string("/dev/net/tun: ") + std::strerror(errno));
    }
    ifreq ifr{};
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    std::memcpy(ifr.ifr_name, o.tun.c_str(), o.tun.size());
    if (::ioctl(d->tun_, TUNSETIFF, &ifr) != 0) {
        return unexpected("TUNSETIFF " + o.tun + ": " + std::strerror(errno));
    }
    // No link-local address: its router solicitations and MLD reports would be tunnelled with a
    // source outside the subscriber's prefix.
    std::ofstream("/proc/sys/net/ipv6/conf/" + o.tun + "/addr_gen_mode") << "1\n";
    std::vector<std::vector<std::string>> cmds;
    for (const auto& addr : o.tun_addresses) {
        std::vector<std::string> c{"addr", "add", addr, "dev", o.tun};
        if (addr.find(':') != std::string::npos) {
            c.emplace_back("nodad");
        }
        cmds.push_back(c);
    }
    cmds.push_back({"link", "set", o.tun, "up", "mtu", std::to_string(o.mtu)});
    for (const auto& r : o.routes) {
        cmds.push_back({"route", "add", r, "dev", o.tun});
    }
    for (const auto& addr : o.lan_addresses) {
        std::vector<std::string> c{"addr", "replace", addr, "dev", o.lan_dev};
        if (addr.find(':') != std::string::npos) {
            c.emplace_back("nodad");
        }
        cmds.push_back(c);
    }
    for (const auto& c : cmds) {
        if (run_ip(c) != 0) {
            return unexpected("`ip " + join(c) + "` failed");
        }
    }
    for (auto& a : d->accesses_) {
        const auto& c = a->cfg;
        if (c.udp) {
            if (auto r = open_udp(*a); !r) {
                return unexpected(r.error());
            }
            continue;
        }
        a->fd = ::socket(c.ipv4 ? AF_INET : AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
                         c.ipip ? kIpProtoIpv6InIp : kIpProtoGre);
        if (a->fd < 0) {
            return unexpected(c.name + ": GRE socket: " + std::strerror(errno));
        }
        set_buffers(a->fd);
        if (!c.device.empty() && ::setsockopt(a->fd, SOL_SOCKET, SO_BINDTODEVICE, c.device.c_str(),
                                              c.device.size()) != 0) {
            return unexpected(c.name + ": bind to device " + c.device + ": " +
                              std::strerror(errno));
        }
        sockaddr_storage local{};
        socklen_t len = 0;
        if (c.ipv4) {
            auto* s = reinterpret_cast<sockaddr_in*>(&local);
            s->sin_family = AF_INET;
            std::memcpy(&s->sin_addr, c.coa4.data(), 4);
            len = sizeof(sockaddr_in);
        } else {
            auto* s = reinterpret_cast<sockaddr_in6*>(&local);
            s->sin6_family = AF_INET6;
            std::memcpy(&s->sin6_addr, c.coa6.data(), 16);
            len = sizeof(sockaddr_in6);
        }
        if (::bind(a->fd, reinterpret_cast<sockaddr*>(&local), len) != 0) {
            return unexpected(c.name + ": bind GRE socket to the CoA: " + std::strerror(errno));
        }
    }
    return d;
}

// A NATed access: a UDP socket on the signalling socket's address and port (both with
// SO_REUSEADDR; this one is connected, so the kernel gives it what comes from the LMA's data
// port), connected to the LMA's port 5437. What it receives is the GRE header onward.
Result<void, std::string> DataPath::open_udp(Access& a) {
    const auto& c = a.cfg;
    if (!c.ipv4 || c.udp_port == 0) {
        return unexpected(c.name + ": UDP encapsulation needs an IPv4 access and its port");
    }
    a.fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
    if (a.fd < 0) {
        return unexpected(c.name + ": UDP socket: " + std::strerror(errno));
    }
    set_buffers(a.fd);
    const int one = 1;
    if (::setsockopt(a.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
        return unexpected(c.name + ": SO_REUSEADDR: " + std::strerror(errno));
    }
    if (!c.device.empty() &&
        ::setsockopt(a.fd, SOL_SOCKET, SO_BINDTODEVICE, c.device.c_str(), c.device.size()) != 0) {
        return unexpected(c.name + ": bind to device " + c.device + ": " + std::strerror(errno));
    }
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_port = htons(c.udp_port);
    std::memcpy(&local.sin_addr, c.coa4.data(), 4);
    if (::bind(a.fd, reinterpret_cast<const sockaddr*>(&local), sizeof local) != 0) {
        return unexpected(
            c.name + ": bind UDP socket to the CoA and signalling port: " + std::strerror(errno));
    }
    sockaddr_in lma{};
    lma.sin_family = AF_INET;
    lma.sin_port = htons(kLmaDataPort);
    std::memcpy(&lma.sin_addr, c.lma4.data(), 4);
    if (::connect(a.fd, reinterpret_cast<const sockaddr*>(&lma), sizeof lma) != 0) {
        return unexpected(c.name +
                          ": connect UDP socket to the LMA's port 5437: " + std::strerror(errno));
    }
    return {};
}

// NAT keepalives (one octet 0xFF, RFC 3948's NAT-keepalive shape: shorter than a GRE header,
// so the gateway counts and drops it without error) on each UDP access when due.
void DataPath::send_keepalives(std::chrono::steady_clock::time_point now) {
    for (auto& a : accesses_) {
        if (!a->cfg.udp || now < a->next_keepalive) {
            continue;
        }
        const std::uint8_t ka = 0xff;
        if (::send(a->fd, &ka, 1, 0) == 1) {
            ++a->c.keepalives;
        }
        a->next_keepalive =
            now + std::chrono::seconds(a->cfg.keepalive_s != 0 ? a->cfg.keepalive_s : 20);
    }
}

void DataPath::set_live(std::uint16_t bid, bool live) {
    for (auto& a : accesses_) {
        if (a->cfg.bid == bid) {
            a->live.store(live, std::memory_order_relaxed);
        }
    }
}

void DataPath::deliver(std::span<const std::uint8_t> inner) {
    if (::write(tun_, inner.data(), inner.size()) < 0) {
        ++tun_write_errors_;
    }
}

// Uplink: up to kRxBatch packets from the tun, each GRE-encapsulated on the access the scheduler
// picks, with the session's next sequence number.
void DataPath::on_tun_readable() {
    std::array<std::uint8_t, kRxBufferBytes> buf;
    for (std::size_t i = 0; i < kRxBatch; ++i) {
        const ssize_t n =
            ::read(tun_, buf.data() + kUplinkGreHeaderLength, buf.size() - kUplinkGreHeaderLength);
        if (n <= 0) {
            return;
        }
        const std::span<const std::uint8_t> inner(buf.data() + kUplinkGreHeaderLength,
                                                  static_cast<std::size_t>(n));
        // The flow bindings first (the policy mirrored on the uplink), then the scheduler.
        std::optional<std::size_t> pick;
        if (const auto choice = flows_.decide(inner, [this](std::uint16_t bid) {
                for (const auto& a : accesses_) {
                    if (a->cfg.bid == bid) {
                        return a->live.load(std::memory_order_relaxed);
                    }
                }
                return false;
            })) {
            if (choice->drop) {
                ++up_flow_dropped_;
                continue;
            }
            for (std::size_t k = 0; k < accesses_.size(); ++k) {
                if (accesses_[k]->cfg.bid == choice->bid) {
                    pick = k;
                }
            }
            ++up_flow_pinned_;
        } else {
            pick = scheduler_.pick(inner.size());
        }
        if (!pick) {
            ++up_no_access_;
            continue;
        }
        Access& a = *accesses_[*pick];
        if (a.cfg.ipip) {
            // IPv6 in IPv6: the kernel puts the outer header (next header 41) on the inner one.
            socklen_t len = 0;
            const sockaddr_storage to = lma_address(a.cfg, len);
            if (inner.empty() || (inner[0] >> 4) != 6) {
                ++up_not_ip_;
                continue;
            }
            if (::sendto(a.fd, inner.data(), inner.size(), 0,
                         reinterpret_cast<const sockaddr*>(&to), len) < 0) {
                ++a.c.up_send_errors;
                continue;
            }
            ++a.c.up_packets;
            a.c.up_bytes += inner.size();
            continue;
        }
        if (!write_uplink_gre(
                std::span<std::uint8_t, kUplinkGreHeaderLength>(buf.data(), kUplinkGreHeaderLength),
                a.cfg.uplink_key, uplink_seq_, inner)) {
            ++up_not_ip_;
            continue;
        }
        ++uplink_seq_;
        socklen_t len = 0;
        const sockaddr_storage to = lma_address(a.cfg, len);
        const std::size_t total = kUplinkGreHeaderLength + static_cast<std::size_t>(n);
        const ssize_t sent = a.cfg.udp ? ::send(a.fd, buf.data(), total, 0)
                                       : ::sendto(a.fd, buf.data(), total, 0,
                                                  reinterpret_cast<const sockaddr*>(&to), len);
        if (sent < 0) {
            ++a.c.up_send_errors;
            continue;
        }
        ++a.c.up_packets;
        a.c.up_bytes += inner.size();
    }
}

// Downlink: a batch of datagrams from one access; each is checked (source, outer header, GRE
// header, key) and goes through the session's reorder buffer to the tun.
void DataPath::on_gre_readable(Access& a) {
    auto& bufs = *rx_;
    std::array<mmsghdr, kRxBatch> msgs{};
    std::array<iovec, kRxBatch> iov{};
    std::array<sockaddr_storage, kRxBatch> from{};
    for (std::size_t i = 0; i < kRxBatch; ++i) {
        iov[i] = iovec{bufs[i].data(), bufs[i].size()};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &from[i];
        msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
    }
    const int got = ::recvmmsg(a.fd, msgs.data(), kRxBatch, MSG_DONTWAIT, nullptr);
    const auto now = Reorderer::Clock::now();
    for (int i = 0; i < got; ++i) {
        if ((msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0) {
            ++a.c.down_truncated;
            continue;
        }
        if (!from_lma(a.cfg, from[i])) {
            ++a.c.down_wrong_source;
            continue;
        }
        const std::span<const std::uint8_t> data(
            bufs[i].data(), std::min<std::size_t>(msgs[i].msg_len, kRxBufferBytes));
        if (a.cfg.ipip) {
            // A raw IPv6 socket of protocol 41 delivers the inner packet: no key, no number.
            if (data.size() < 40 || (data[0] >> 4) != 6 ||
                40u + (static_cast<std::size_t>(data[4]) << 8 | data[5]) != data.size()) {
                ++a.c.down_drops[static_cast<std::size_t>(DownlinkDrop::malformed)];
                continue;
            }
            ++a.c.down_packets;
            a.c.down_bytes += data.size();
            ++down_no_seq_;
            deliver(data);
            continue;
        }
        // A UDP socket delivers the GRE header onward, like a raw IPv6 socket.
        const auto r = parse_downlink(data, a.cfg.ipv4 && !a.cfg.udp, a.cfg.downlink_key);
        if (!r.packet) {
            ++a.c.down_drops[static_cast<std::size_t>(r.drop)];
            continue;
        }
        ++a.c.down_packets;
        a.c.down_bytes += r.packet->inner.size();
        if (!r.packet->sequence) {
            ++down_no_seq_;
            deliver(r.packet->inner);
            continue;
        }
        reorder_.arrived(a.index, *r.packet->sequence);
        const auto outcome = reorder_.push(*r.packet->sequence, r.packet->inner, now,
                                           [this](auto p) { deliver(p); });
        reorder_.skip_passed(now, [this](auto p) { deliver(p); });
        switch (outcome) {
            case Reorderer::Outcome::held:
                ++a.c.down_reordered;
                break;
            case Reorderer::Outcome::late:
                ++a.c.down_late;
                break;
            case Reorderer::Outcome::duplicate:
                ++a.c.down_duplicate;
                break;
            default:
                break;
        }
    }
}

void DataPath::run(const std::atomic<bool>& stop) {
    std::vector<pollfd> fds;
    fds.push_back(pollfd{tun_, POLLIN, 0});
    for (const auto& a : accesses_) {
        fds.push_back(pollfd{a->fd, POLLIN, 0});
    }
    while (!stop.load(std::memory_order_relaxed)) {
        for (std::size_t i = 0; i < accesses_.size(); ++i) {
            const bool live = accesses_[i]->live.load(std::memory_order_relaxed);
            if (scheduler_.live(i) != live) {
                scheduler_.set_live(i, live);
                reorder_.set_live(i, live);
                // An access gone: a gap only it could still fill is given up now.
                reorder_.skip_passed(Reorderer::Clock::now(), [this](auto p) { deliver(p); });
            }
        }
        auto wait = std::chrono::microseconds(100000);
        if (const auto d = reorder_.deadline()) {
            const auto left =
                std::chrono::duration_cast<std::chrono::microseconds>(*d - Reorderer::Clock::now());
            wait = std::clamp(left, std::chrono::microseconds(0), wait);
        }
        const timespec ts{static_cast<time_t>(wait.count() / 1000000),
                          static_cast<long>(wait.count() % 1000000) * 1000};
        const int n = ::ppoll(fds.data(), fds.size(), &ts, nullptr);
        if (n > 0) {
            if ((fds[0].revents & POLLIN) != 0) {
                on_tun_readable();
            }
            for (std::size_t i = 0; i < accesses_.size(); ++i) {
                if ((fds[i + 1].revents & POLLIN) != 0) {
                    on_gre_readable(*accesses_[i]);
                }
            }
        }
        reorder_.expire(Reorderer::Clock::now(), [this](auto p) { deliver(p); });
        send_keepalives(std::chrono::steady_clock::now());
    }
}

void DataPath::report() const {
    const auto& r = reorder_.counters();
    std::string json = "{\"accesses\": {";
    bool first = true;
    for (const auto& a : accesses_) {
        const auto& c = a->c;
        std::string drops;
        for (std::size_t k = 0; k < c.down_drops.size(); ++k) {
            drops += std::string(k ? ", " : "") + "\"" +
                     std::string(to_string(static_cast<DownlinkDrop>(k))) +
                     "\": " + std::to_string(c.down_drops[k]);
        }
        std::printf(
            "data %s: up packets=%llu bytes=%llu send_errors=%llu down packets=%llu bytes=%llu "
            "reordered=%llu late=%llu duplicate=%llu wrong_source=%llu truncated=%llu\n",
            a->cfg.name.c_str(), static_cast<unsigned long long>(c.up_packets),
            static_cast<unsigned long long>(c.up_bytes),
            static_cast<unsigned long long>(c.up_send_errors),
            static_cast<unsigned long long>(c.down_packets),
            static_cast<unsigned long long>(c.down_bytes),
            static_cast<unsigned long long>(c.down_reordered),
            static_cast<unsigned long long>(c.down_late),
            static_cast<unsigned long long>(c.down_duplicate),
            static_cast<unsigned long long>(c.down_wrong_source),
            static_cast<unsigned long long>(c.down_truncated));
        json += std::string(first ? "" : ", ") + "\"" + std::to_string(a->cfg.bid) +
                "\": {\"name\": \"" + a->cfg.name +
                "\", \"up_packets\": " + std::to_string(c.up_packets) +
                ", \"up_bytes\": " + std::to_string(c.up_bytes) +
                ", \"up_send_errors\": " + std::to_string(c.up_send_errors) +
                ", \"down_packets\": " + std::to_string(c.down_packets) +
                ", \"down_bytes\": " + std::to_string(c.down_bytes) +
                ", \"down_reordered\": " + std::to_string(c.down_reordered) +
                ", \"down_late\": " + std::to_string(c.down_late) +
                ", \"down_duplicate\": " + std::to_string(c.down_duplicate) +
                ", \"down_wrong_source\": " + std::to_string(c.down_wrong_source) +
                ", \"down_truncated\": " + std::to_string(c.down_truncated) +
                ", \"udp\": " + (a->cfg.udp ? "true" : "false") +
                ", \"ipip\": " + (a->cfg.ipip ? "true" : "false") +
                ", \"keepalives\": " + std::to_string(c.keepalives) + ", \"down_drops\": {" +
                drops + "}}";
        first = false;
    }
    std::printf(
        "data session: uplink_sequence=%u reorder in_order=%llu reordered=%llu late=%llu "
        "lost=%llu duplicate=%llu no_sequence=%llu up_no_access=%llu tun_write_errors=%llu "
        "up_flow_pinned=%llu up_flow_dropped=%llu\n",
        uplink_seq_, static_cast<unsigned long long>(r.in_order),
        static_cast<unsigned long long>(r.reordered), static_cast<unsigned long long>(r.late),
        static_cast<unsigned long long>(r.lost), static_cast<unsigned long long>(r.duplicate),
        static_cast<unsigned long long>(down_no_seq_),
        static_cast<unsigned long long>(up_no_access_),
        static_cast<unsigned long long>(tun_write_errors_),
        static_cast<unsigned long long>(up_flow_pinned_),
        static_cast<unsigned long long>(up_flow_dropped_));
    std::fflush(stdout);
    json += "}, \"session\": {\"uplink_sequence\": " + std::to_string(uplink_seq_) +
            ", \"in_order\": " + std::to_string(r.in_order) +
            ", \"reordered\": " + std::to_string(r.reordered) +
            ", \"late\": " + std::to_string(r.late) + ", \"lost\": " + std::to_string(r.lost) +
            ", \"duplicate\": " + std::to_string(r.duplicate) +
            ", \"too_big\": " + std::to_string(r.too_big) +
            ", \"no_sequence\": " + std::to_string(down_no_seq_) +
            ", \"up_no_access\": " + std::to_string(up_no_access_) +
            ", \"up_not_ip\": " + std::to_string(up_not_ip_) +
            ", \"up_flow_pinned\": " + std::to_string(up_flow_pinned_) +
            ", \"up_flow_dropped\": " + std::to_string(up_flow_dropped_) +
            ", \"tun_write_errors\": " + std::to_string(tun_write_errors_) + "}}\n";
    if (!o_.stats_file.empty()) {
        std::ofstream(o_.stats_file) << json;
    }
}

}  // namespace hag::magsim
