#include "signalling_io.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "config.hpp"
#include "hag/esp/esp.hpp"
#include "hag/mh/codec.hpp"
#include "hag/mh/home_address.hpp"
#include "hag/net/address.hpp"

namespace hag::control {

namespace {

constexpr std::size_t kBatch = 64;             // datagrams per recvmmsg
constexpr std::size_t kBatchesPerWake = 16;    // then yield to the other sockets and timers
constexpr std::size_t kBufferSize = 4096;      // > IPv6 header + the largest MH (2048 octets)
constexpr std::size_t kMaxUdpForms = 1 << 20;  // remembered UDP peers (framing)
constexpr int kReceiveBuffer = 4 << 20;

std::int64_t mono_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

Ipv6Address mapped(const in_addr& a) {
    net::Ipv4Address v4{};
    std::memcpy(v4.data(), &a, 4);
    return net::ipv4_mapped(v4);
}

in_addr unmapped(const Ipv6Address& a) {
    in_addr r{};
    std::memcpy(&r, a.data() + 12, 4);
    return r;
}

std::string addr_text(const Ipv6Address& a) {
    return to_string(CareOfAddress{a});
}

}  // namespace

// Receive buffers of one recvmmsg batch, allocated once (about 270 KiB).
struct SignallingIo::RxBuffers {
    std::array<std::array<std::uint8_t, kBufferSize>, kBatch> bufs;
    std::array<iovec, kBatch> iov;
    std::array<mmsghdr, kBatch> msgs;
    std::array<sockaddr_in6, kBatch> names;
    struct alignas(cmsghdr) Ctrl {
        std::array<std::uint8_t, CMSG_SPACE(sizeof(in6_pktinfo))> bytes;
        std::uint8_t* data() noexcept { return bytes.data(); }
        static constexpr std::size_t size() noexcept { return CMSG_SPACE(sizeof(in6_pktinfo)); }
    };
    std::array<Ctrl, kBatch> ctrl;
};

struct SignallingIo::Socket {
    Socket(boost::asio::io_context& io, int fd) : desc(io, fd) {}
    boost::asio::posix::stream_descriptor desc;
    bool udp = false;
    bool esp = false;     // raw IPPROTO_ESP (50): ESP-protected MH
    bool home = false;    // raw IPPROTO_DSTOPTS (60): MIPv6 BUs with a Home Address option
    bool haad = false;    // raw ICMPv6: Home Agent Address Discovery requests
    Ipv6Address local{};  // IPv4-mapped for UDP
    std::uint16_t port = 0;
    std::string text;
};

std::size_t SignallingIo::UdpPeerKeyHash::operator()(const UdpPeerKey& k) const noexcept {
    std::size_t h = k.port;
    for (auto b : k.addr) {
        h = h * 131 + b;
    }
    return h;
}

struct SignallingIo::EspPeer {
    Ipv6Address address{};
    esp::Sa in, out;
};

SignallingIo::EspPeer* SignallingIo::esp_peer(const Ipv6Address& a) {
    for (auto& p : esp_peers_) {  // a handful of MAGs per LMA address: a scan is enough
        if (p->address == a) {
            return p.get();
        }
    }
    return nullptr;
}

SignallingIo::SignallingIo(boost::asio::io_context& io, Handler handler)
    : io_(io), handler_(std::move(handler)), rx_(std::make_unique<RxBuffers>()) {}

SignallingIo::~SignallingIo() {
    if (raw_out_fd_ >= 0) {
        ::close(raw_out_fd_);
    }
}

Result<std::unique_ptr<SignallingIo>, std::string> SignallingIo::open(
    boost::asio::io_context& io, const std::vector<std::string>& addresses, Handler handler,
    std::uint16_t udp_port, const EspSettings& esp_settings, const HomeAgentIoSettings& home) {
    auto self = std::make_unique<SignallingIo>(io, std::move(handler));
    if (addresses.empty()) {
        return unexpected(std::string("no LMA address configured (lma_addresses)"));
    }
    for (const auto& p : esp_settings.peers) {
        auto ki = esp::parse_key(p.key_in);
        auto ko = esp::parse_key(p.key_out);
        if (!ki || !ko) {
            return unexpected(fmt::format("ESP peer {}: {}", addr_text(p.address),
                                          !ki ? ki.error() : ko.error()));
        }
        self->esp_peers_.push_back(std::make_unique<EspPeer>(EspPeer{
            p.address, esp::Sa(p.spi_in, std::move(*ki)), esp::Sa(p.spi_out, std::move(*ko))}));
    }
    self->esp_require_ = esp_settings.require;
    self->home_ = home;
    const bool want_esp = !esp_settings.peers.empty() || esp_settings.require;
    for (const auto& text : addresses) {
        auto a = parse_address(text);
        if (!a) {
            return unexpected(fmt::format("LMA address '{}': {}", text, a.error()));
        }
        const bool v4 = a->is_ipv4();
        const int fd = v4 ? ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
                          : ::socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_MH);
        if (fd < 0) {
            const int err = errno;
            return unexpected(fmt::format("{} socket for {}: {}{}", v4 ? "UDP" : "raw MH", text,
                                          std::strerror(err),
                                          err == EPERM ? " (needs root or CAP_NET_RAW)" : ""));
        }
        auto s = std::make_unique<Socket>(io, fd);  // owns fd from here
        s->udp = v4;
        s->local = a->addr;
        s->port = v4 ? udp_port : 0;
        s->text =
            v4 ? fmt::format("{}:{} (UDP)", text, udp_port) : fmt::format("{} (raw MH)", text);
        int one = 1;
        int rcvbuf = kReceiveBuffer;
        (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        int rc = 0;
        if (v4) {
            (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            sockaddr_in sin{};
            sin.sin_family = AF_INET;
            sin.sin_port = htons(udp_port);
            sin.sin_addr = unmapped(a->addr);
            rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&sin), sizeof sin);
        } else {
            int off = 4;  // RFC 3542 §3.1: the kernel computes and verifies the MH checksum
            if (::setsockopt(fd, IPPROTO_IPV6, IPV6_CHECKSUM, &off, sizeof off) != 0 ||
                ::setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one) != 0) {
                return unexpected(fmt::format("raw MH socket for {}: setsockopt: {}", text,
                                              std::strerror(errno)));
            }
            sockaddr_in6 sin6{};
            sin6.sin6_family = AF_INET6;
            std::memcpy(&sin6.sin6_addr, a->addr.data(), 16);
            rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&sin6), sizeof sin6);
        }
        if (rc != 0) {
            const int err = errno;
            return unexpected(fmt::format(
                "bind {}: {}{}", s->text, std::strerror(err),
                err == EADDRNOTAVAIL ? " (the address is not configured on this host)" : ""));
        }
        self->sockets_.push_back(std::move(s));
        if (!v4 && want_esp) {
            // ESP-protected MH to this address: a raw socket for protocol 50 (this host's
            // kernel does no ESP itself, so it hands every ESP packet to raw sockets).
            const int efd =
                ::socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, esp::kProtocol);
            if (efd < 0) {
                return unexpected(
                    fmt::format("raw ESP socket for {}: {}", text, std::strerror(errno)));
            }
            auto e = std::make_unique<Socket>(io, efd);
            e->esp = true;
            e->local = a->addr;
            e->text = fmt::format("{} (ESP)", text);
            (void)::setsockopt(efd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
            sockaddr_in6 sin6{};
            sin6.sin6_family = AF_INET6;
            std::memcpy(&sin6.sin6_addr, a->addr.data(), 16);
            if (::setsockopt(efd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one) != 0 ||
                ::bind(efd, reinterpret_cast<const sockaddr*>(&sin6), sizeof sin6) != 0) {
                return unexpected(
                    fmt::format("raw ESP socket for {}: {}", text, std::strerror(errno)));
            }
            self->sockets_.push_back(std::move(e));
        }
    }
    if (home.enabled) {
        if (auto r = self->open_home(io, addresses); !r) {
            return unexpected(r.error());
        }
    }
    for (auto& s : self->sockets_) {
        self->arm(*s);
    }
    return self;
}

// MIPv6 home agent sockets. The kernel here has no CONFIG_IPV6_MIP6: it does not know the Home
// Address option (type 201, "discard if unknown") and drops such packets after handing a copy to
// the raw sockets of protocol 60, which is how hag sees them. (It also answers each with an
// ICMPv6 Parameter Problem; docs/control.md says how to filter that.) Replies are whole IPv6
// packets on an IPPROTO_RAW socket: a Type 2 Routing Header cannot be sent through the socket
// API without MIP6 either.
Result<void, std::string> SignallingIo::open_home(boost::asio::io_context& io,
                                                  const std::vector<std::string>& addresses) {
    const int one = 1;
    const int rcvbuf = kReceiveBuffer;
    for (const auto& text : addresses) {
        auto a = parse_address(text);
        if (!a || a->is_ipv4()) {
            continue;
        }
        const int fd = ::socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_DSTOPTS);
        if (fd < 0) {
            return unexpected(fmt::format("raw destination options socket for {}: {}", text,
                                          std::strerror(errno)));
        }
        auto s = std::make_unique<Socket>(io, fd);
        s->home = true;
        s->local = a->addr;
        s->text = fmt::format("{} (MIPv6 home agent)", text);
        (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        sockaddr_in6 sin6{};
        sin6.sin6_family = AF_INET6;
        std::memcpy(&sin6.sin6_addr, a->addr.data(), 16);
        if (::setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one) != 0 ||
            ::bind(fd, reinterpret_cast<const sockaddr*>(&sin6), sizeof sin6) != 0) {
            return unexpected(fmt::format("raw destination options socket for {}: {}", text,
                                          std::strerror(errno)));
        }
        sockets_.push_back(std::move(s));
    }
    raw_out_fd_ = ::socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
    if (raw_out_fd_ < 0) {
        return unexpected(
            fmt::format("raw IPv6 socket (home agent replies): {}", std::strerror(errno)));
    }
    if (!home_.discovery_addresses.empty()) {
        const int fd = ::socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMPV6);
        if (fd < 0) {
            return unexpected(fmt::format("raw ICMPv6 socket (home agent address discovery): {}",
                                          std::strerror(errno)));
        }
        auto s = std::make_unique<Socket>(io, fd);
        s->haad = true;
        s->text = "ICMPv6 home agent address discovery";
        icmp6_filter filter{};
        ICMP6_FILTER_SETBLOCKALL(&filter);
        ICMP6_FILTER_SETPASS(mh::kIcmpHaadRequest, &filter);
        if (::setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof filter) != 0 ||
            ::setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one) != 0) {
            return unexpected(fmt::format("raw ICMPv6 socket: {}", std::strerror(errno)));
        }
        sockets_.push_back(std::move(s));
    }
    return {};
}

SignallingCounters SignallingIo::counters() const noexcept {
    SignallingCounters c;
    c.rx = counters_.rx.load(std::memory_order_relaxed);
    c.tx = counters_.tx.load(std::memory_order_relaxed);
    c.rx_batches = counters_.rx_batches.load(std::memory_order_relaxed);
    c.rx_udp_bad = counters_.rx_udp_bad.load(std::memory_order_relaxed);
    c.rx_truncated = counters_.rx_truncated.load(std::memory_order_relaxed);
    c.tx_errors = counters_.tx_errors.load(std::memory_order_relaxed);
    c.tx_no_socket = counters_.tx_no_socket.load(std::memory_order_relaxed);
    c.rx_esp = counters_.rx_esp.load(std::memory_order_relaxed);
    c.tx_esp = counters_.tx_esp.load(std::memory_order_relaxed);
    c.rx_esp_unknown_peer = counters_.rx_esp_unknown_peer.load(std::memory_order_relaxed);
    c.rx_esp_unknown_spi = counters_.rx_esp_unknown_spi.load(std::memory_order_relaxed);
    c.rx_esp_replayed = counters_.rx_esp_replayed.load(std::memory_order_relaxed);
    c.rx_esp_auth_failed = counters_.rx_esp_auth_failed.load(std::memory_order_relaxed);
    c.rx_esp_malformed = counters_.rx_esp_malformed.load(std::memory_order_relaxed);
    c.rx_esp_not_mh = counters_.rx_esp_not_mh.load(std::memory_order_relaxed);
    c.rx_esp_bad_checksum = counters_.rx_esp_bad_checksum.load(std::memory_order_relaxed);
    c.rx_esp_required = counters_.rx_esp_required.load(std::memory_order_relaxed);
    c.rx_home = counters_.rx_home.load(std::memory_order_relaxed);
    c.rx_home_malformed = counters_.rx_home_malformed.load(std::memory_order_relaxed);
    c.rx_home_bad_checksum = counters_.rx_home_bad_checksum.load(std::memory_order_relaxed);
    c.haad_requests = counters_.haad_requests.load(std::memory_order_relaxed);
    c.haad_replies = counters_.haad_replies.load(std::memory_order_relaxed);
    return c;
}

std::vector<std::string> SignallingIo::describe() const {
    std::vector<std::string> r;
    for (const auto& s : sockets_) {
        r.push_back(s->text);
    }
    return r;
}

void SignallingIo::arm(Socket& s) {
    s.desc.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                      [this, &s](const boost::system::error_code& ec) {
                          if (ec) {
                              return;  // cancelled at shutdown
                          }
                          drain(s);
                          arm(s);
                      });
}

void SignallingIo::drain(Socket& s) {
    auto& [bufs, iov, msgs, names, ctrl] = *rx_;
    const int fd = s.desc.native_handle();
    for (std::size_t round = 0; round < kBatchesPerWake; ++round) {
        for (std::size_t i = 0; i < kBatch; ++i) {
            iov[i] = {bufs[i].data(), bufs[i].size()};
            msgs[i].msg_hdr = {};
            msgs[i].msg_hdr.msg_name = &names[i];
            msgs[i].msg_hdr.msg_namelen = sizeof names[i];
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_control = ctrl[i].data();
            msgs[i].msg_hdr.msg_controllen = ctrl[i].size();
        }
        const int n = ::recvmmsg(fd, msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
        if (n <= 0) {
            return;  // EAGAIN (or a transient error: the next wake-up retries)
        }
        counters_.rx_batches += 1;
        for (int i = 0; i < n; ++i) {
            auto& h = msgs[i].msg_hdr;
            if ((h.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
                counters_.rx_truncated += 1;
                continue;
            }
            std::span<const std::uint8_t> data(bufs[i].data(), msgs[i].msg_len);
            if (s.udp) {
                const auto* sin = reinterpret_cast<const sockaddr_in*>(&names[i]);
                deliver_udp(s, data, mapped(sin->sin_addr), ntohs(sin->sin_port), s.local);
            } else {
                Ipv6Address src{};
                std::memcpy(src.data(), &names[i].sin6_addr, 16);
                Ipv6Address dst = s.local;
                for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
                    if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
                        in6_pktinfo pi{};
                        std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
                        std::memcpy(dst.data(), &pi.ipi6_addr, 16);
                    }
                }
                if (s.esp) {
                    deliver_esp(s, data, src, dst);
                } else if (s.home) {
                    deliver_home(s, data, src, dst);
                } else if (s.haad) {
                    answer_haad(s, data, src);
                } else {
                    deliver_raw(s, data, src, dst);
                }
            }
        }
        if (static_cast<std::size_t>(n) < kBatch) {
            return;
        }
    }
}

void SignallingIo::deliver_raw(Socket&, std::span<const std::uint8_t> data, const Ipv6Address& src,
                               const Ipv6Address& dst) {
    if (esp_require_ || esp_peer(src) != nullptr) {
        counters_.rx_esp_required += 1;
        log_limited(
            fmt::format("plain mobility header from {} refused: ESP is required", addr_text(src)));
        return;
    }
    counters_.rx += 1;
    handler_(data, Peer{false, dst, src, 0, std::nullopt});
}

void SignallingIo::deliver_esp(Socket&, std::span<const std::uint8_t> data, const Ipv6Address& src,
                               const Ipv6Address& dst) {
    EspPeer* p = esp_peer(src);
    if (p == nullptr) {
        counters_.rx_esp_unknown_peer += 1;
        log_limited(fmt::format("ESP from {} dropped: no SA with that address", addr_text(src)));
        return;
    }
    auto opened = p->in.open(data);
    if (!opened) {
        switch (opened.error()) {
            case esp::Error::kUnknownSpi:
                counters_.rx_esp_unknown_spi += 1;
                break;
            case esp::Error::kReplayed:
                counters_.rx_esp_replayed += 1;
                break;
            case esp::Error::kAuthFailed:
                counters_.rx_esp_auth_failed += 1;
                break;
            default:
                counters_.rx_esp_malformed += 1;
                break;
        }
        log_limited(fmt::format("ESP from {} (SPI {:#x}) dropped: {}", addr_text(src),
                                esp::spi_of(data), esp::to_string(opened.error())));
        return;
    }
    if (opened->next_header != 135) {  // 59 (no next header) is padding traffic: dropped too
        counters_.rx_esp_not_mh += 1;
        log_limited(fmt::format("ESP from {}: next header {} is not a mobility header",
                                addr_text(src), opened->next_header));
        return;
    }
    // The kernel checks the MH checksum of plain MH; inside ESP it is ours to check.
    if (!mh::checksum_ok(opened->payload, src, dst)) {
        counters_.rx_esp_bad_checksum += 1;
        log_limited(fmt::format("ESP from {}: mobility header checksum wrong", addr_text(src)));
        return;
    }
    counters_.rx_esp += 1;
    counters_.rx += 1;
    handler_(opened->payload, Peer{false, dst, src, 0, std::nullopt});
}

void SignallingIo::deliver_home(Socket&, std::span<const std::uint8_t> data, const Ipv6Address& src,
                                const Ipv6Address& dst) {
    auto h = mh::parse_home_address_header(data);
    if (!h) {
        counters_.rx_home_malformed += 1;
        log_limited(
            fmt::format("destination options from {} dropped: {}", addr_text(src), h.error()));
        return;
    }
    const Ipv6Address hoa = h->home_address;
    std::span<const std::uint8_t> mh_bytes = h->payload;
    std::vector<std::uint8_t> opened_payload;
    if (h->next_header == mh::kIpProtoEsp) {
        // RFC 3776 §3.1: BU / BA are protected by ESP in transport mode between the home
        // address and the home agent: the SA is found by the home address.
        EspPeer* p = esp_peer(hoa);
        if (p == nullptr) {
            counters_.rx_esp_unknown_peer += 1;
            log_limited(fmt::format("ESP from home address {} dropped: no SA with that address",
                                    addr_text(hoa)));
            return;
        }
        auto opened = p->in.open(h->payload);
        if (!opened) {
            counters_.rx_esp_malformed += 1;
            log_limited(fmt::format("ESP from home address {} dropped: {}", addr_text(hoa),
                                    esp::to_string(opened.error())));
            return;
        }
        if (opened->next_header != mh::kIpProtoMobility) {
            counters_.rx_esp_not_mh += 1;
            return;
        }
        opened_payload = std::move(opened->payload);
        mh_bytes = opened_payload;
        counters_.rx_esp += 1;
    } else if (h->next_header == mh::kIpProtoMobility) {
        if (esp_require_ || esp_peer(hoa) != nullptr) {
            counters_.rx_esp_required += 1;
            log_limited(fmt::format("plain BU from home address {} refused: ESP is required",
                                    addr_text(hoa)));
            return;
        }
    } else {
        counters_.rx_home_malformed += 1;
        log_limited(
            fmt::format("destination options from {}: next header {} is not a mobility "
                        "header",
                        addr_text(src), h->next_header));
        return;
    }
    // RFC 6275 §6.1.1: the pseudo-header's source is the home address of the option. (The
    // kernel cannot check it for us: it never reaches the MH socket.)
    if (!mh::checksum_ok(mh_bytes, hoa, dst)) {
        counters_.rx_home_bad_checksum += 1;
        log_limited(fmt::format("BU from {} (home address {}): mobility header checksum wrong",
                                addr_text(src), addr_text(hoa)));
        return;
    }
    counters_.rx_home += 1;
    counters_.rx += 1;
    Peer from{false, dst, src, 0, hoa};
    handler_(mh_bytes, from);
}

void SignallingIo::answer_haad(Socket& s, std::span<const std::uint8_t> data,
                               const Ipv6Address& src) {
    auto req = mh::parse_haad_request(data);
    if (!req) {
        return;  // the filter passes type 144 only: a short one is all that can fail
    }
    counters_.haad_requests += 1;
    std::vector<mh::Ipv6> list(home_.discovery_addresses.begin(), home_.discovery_addresses.end());
    auto reply = mh::build_haad_reply(req->identifier, list);
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    std::memcpy(&sin6.sin6_addr, src.data(), 16);
    // The kernel fills the ICMPv6 checksum of raw ICMPv6 sockets (RFC 3542 §3.1).
    if (::sendto(s.desc.native_handle(), reply.data(), reply.size(), MSG_DONTWAIT,
                 reinterpret_cast<const sockaddr*>(&sin6), sizeof sin6) < 0) {
        counters_.tx_errors += 1;
        log_limited(fmt::format("HAAD reply to {}: {}", addr_text(src), std::strerror(errno)));
        return;
    }
    counters_.haad_replies += 1;
}

void SignallingIo::send_home(const Outbound& out, std::vector<std::uint8_t> bytes) {
    const Ipv6Address hoa = *out.to.home_address;
    const Ipv6Address& local = out.to.local;
    // RFC 8200 §8.1: with a routing header the pseudo-header holds the final destination.
    mh::set_checksum(bytes, local, hoa);
    std::uint8_t next = mh::kIpProtoMobility;
    if (EspPeer* ep = esp_peer(hoa); ep != nullptr) {
        auto sealed = ep->out.seal(mh::kIpProtoMobility, bytes);
        if (!sealed) {
            counters_.tx_errors += 1;
            log_limited(fmt::format("ESP to home address {}: {}", addr_text(hoa),
                                    esp::to_string(sealed.error())));
            return;
        }
        bytes = std::move(*sealed);
        next = mh::kIpProtoEsp;
        counters_.tx_esp += 1;
    }
    const auto rh = mh::build_type2_routing_header(hoa, next);
    auto pkt =
        mh::build_ipv6_header(local, out.to.remote, mh::kIpProtoRouting, rh.size() + bytes.size());
    pkt.insert(pkt.end(), rh.begin(), rh.end());
    pkt.insert(pkt.end(), bytes.begin(), bytes.end());
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    std::memcpy(&sin6.sin6_addr, out.to.remote.data(), 16);
    if (raw_out_fd_ < 0 || ::sendto(raw_out_fd_, pkt.data(), pkt.size(), MSG_DONTWAIT,
                                    reinterpret_cast<const sockaddr*>(&sin6), sizeof sin6) < 0) {
        counters_.tx_errors += 1;
        log_limited(fmt::format("BA to {} (home address {}): {}", addr_text(out.to.remote),
                                addr_text(hoa),
                                raw_out_fd_ < 0 ? "no raw socket" : std::strerror(errno)));
        return;
    }
    counters_.tx += 1;
}

void SignallingIo::deliver_udp(Socket&, std::span<const std::uint8_t> data, const Ipv6Address& src,
                               std::uint16_t sport, const Ipv6Address& dst) {
    auto p = mh::parse_udp_signalling(data, src, dst);
    if (!p) {
        counters_.rx_udp_bad += 1;
        log_limited(fmt::format("UDP {} from {}:{}: dropped: {}", kPmipUdpPort, addr_text(src),
                                sport, mh::to_string(p.error())));
        return;
    }
    const UdpPeerKey key{src, sport};
    if (udp_forms_.size() >= kMaxUdpForms && !udp_forms_.contains(key)) {
        udp_forms_.clear();  // forgotten peers get the IPv6-header form until they speak again
    }
    udp_forms_[key] = UdpForm{p->bare, p->inner_src, p->inner_dst};
    counters_.rx += 1;
    handler_(p->mh, Peer{true, dst, src, sport, std::nullopt});
}

SignallingIo::Socket* SignallingIo::socket_for(const Peer& to, bool esp) {
    Socket* fallback = nullptr;
    for (auto& s : sockets_) {
        if (s->udp != to.udp || s->esp != esp || s->home || s->haad) {
            continue;
        }
        if (s->local == to.local) {
            return s.get();
        }
        if (fallback == nullptr) {
            fallback = s.get();
        }
    }
    return fallback;
}

void SignallingIo::send(const Outbound& out) {
    if (out.to.home_address) {
        send_home(out, mh::encode(out.message));  // MIPv6: BA with a Type 2 Routing Header
        return;
    }
    EspPeer* ep = out.to.udp ? nullptr : esp_peer(out.to.remote);
    Socket* s = socket_for(out.to, ep != nullptr);
    if (s == nullptr) {
        counters_.tx_no_socket += 1;
        log_limited(fmt::format("no {} signalling socket to reach {}", out.to.udp ? "IPv4" : "IPv6",
                                addr_text(out.to.remote)));
        return;
    }
    std::vector<std::uint8_t> bytes = mh::encode(out.message);
    const int fd = s->desc.native_handle();
    ssize_t rc = 0;
    if (s->udp) {
        UdpForm form{false, s->local, out.to.remote};
        if (auto it = udp_forms_.find(UdpPeerKey{out.to.remote, out.to.remote_port});
            it != udp_forms_.end()) {
            form = UdpForm{it->second.bare, it->second.inner_dst, it->second.inner_src};
        }
        auto payload =
            mh::build_udp_signalling(std::move(bytes), form.bare, form.inner_src, form.inner_dst);
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_port = htons(out.to.remote_port != 0 ? out.to.remote_port : kPmipUdpPort);
        sin.sin_addr = unmapped(out.to.remote);
        rc = ::sendto(fd, payload.data(), payload.size(), MSG_DONTWAIT,
                      reinterpret_cast<const sockaddr*>(&sin), sizeof sin);
    } else {
        if (ep != nullptr) {
            // The checksum the kernel fills for plain MH, then ESP around the whole MH.
            mh::set_checksum(bytes, s->local, out.to.remote);
            auto sealed = ep->out.seal(135, bytes);
            if (!sealed) {
                counters_.tx_errors += 1;
                log_limited(fmt::format("ESP to {}: {}", addr_text(out.to.remote),
                                        esp::to_string(sealed.error())));
                return;
            }
            bytes = std::move(*sealed);
            counters_.tx_esp += 1;
        }
        sockaddr_in6 sin6{};
        sin6.sin6_family = AF_INET6;
        std::memcpy(&sin6.sin6_addr, out.to.remote.data(), 16);
        iovec iov{bytes.data(), bytes.size()};
        alignas(cmsghdr) std::array<std::uint8_t, CMSG_SPACE(sizeof(in6_pktinfo))> ctrl{};
        msghdr h{};
        h.msg_name = &sin6;
        h.msg_namelen = sizeof sin6;
        h.msg_iov = &iov;
        h.msg_iovlen = 1;
        h.msg_control = ctrl.data();
        h.msg_controllen = ctrl.size();
        cmsghdr* c = CMSG_FIRSTHDR(&h);
        c->cmsg_level = IPPROTO_IPV6;
        c->cmsg_type = IPV6_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
        in6_pktinfo pi{};
        std::memcpy(&pi.ipi6_addr, s->local.data(), 16);
        std::memcpy(CMSG_DATA(c), &pi, sizeof pi);
        rc = ::sendmsg(fd, &h, MSG_DONTWAIT);
    }
    if (rc < 0) {
        counters_.tx_errors += 1;
        log_limited(fmt::format("send to {}: {}", addr_text(out.to.remote), std::strerror(errno)));
        return;
    }
    counters_.tx += 1;
}

void SignallingIo::log_limited(const std::string& msg) {
    const auto now = mono_ms();
    if (now - last_log_ms_ >= 1000) {
        last_log_ms_ = now;
        spdlog::warn("signalling: {} (further messages suppressed for 1 s)", msg);
    }
}

}  // namespace hag::control
