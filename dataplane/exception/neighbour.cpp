#include "exception/neighbour.hpp"

#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace hag::dp {

namespace {

constexpr std::size_t kNlHdr = 16;  // struct nlmsghdr
constexpr std::size_t kNdMsg = 12;  // struct ndmsg
constexpr std::size_t kRtaHdr = 4;  // struct rtattr

constexpr std::size_t align4(std::size_t n) noexcept {
    return (n + 3) & ~std::size_t{3};
}

template <typename T>
T load(const std::uint8_t* p) noexcept {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

// One RTM_{NEW,DEL}NEIGH payload (after the nlmsghdr). False when malformed.
bool parse_neigh(const std::uint8_t* p, std::size_t len, bool removed, NeighbourEvent& ev,
                 bool& relevant) {
    relevant = false;
    if (len < kNdMsg) {
        return false;
    }
    const std::uint8_t family = p[0];
    if (family != AF_INET && family != AF_INET6) {
        return true;  // bridge FDB and the like: not ours
    }
    ev = NeighbourEvent{};
    ev.removed = removed;
    ev.ifindex = load<std::int32_t>(p + 4);
    ev.state = load<std::uint16_t>(p + 8);
    const std::size_t addr_len = family == AF_INET ? 4 : 16;
    bool have_dst = false;
    std::size_t off = kNdMsg;
    while (off + kRtaHdr <= len) {
        const std::size_t rta_len = load<std::uint16_t>(p + off);
        const std::uint16_t type = load<std::uint16_t>(p + off + 2);
        if (rta_len < kRtaHdr || off + rta_len > len) {
            return false;
        }
        const std::uint8_t* data = p + off + kRtaHdr;
        const std::size_t dlen = rta_len - kRtaHdr;
        if (type == NDA_DST) {
            if (dlen != addr_len) {
                return false;
            }
            ev.addr.family = family == AF_INET ? Family::kIpv4 : Family::kIpv6;
            std::memcpy(ev.addr.bytes.data(), data, addr_len);
            have_dst = true;
        } else if (type == NDA_LLADDR && dlen == 6) {
            std::memcpy(ev.mac.data(), data, 6);
            ev.has_mac = true;
        }
        off += align4(rta_len);
    }
    relevant = have_dst;
    return true;
}

}  // namespace

bool NeighbourEvent::usable() const noexcept {
    return !removed && has_mac &&
           (state &
            (NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT | NUD_NOARP)) != 0;
}

std::size_t parse_neighbour_messages(const std::uint8_t* buf, std::size_t len,
                                     const NeighbourFn& fn) {
    std::size_t bad = 0;
    std::size_t off = 0;
    while (off + kNlHdr <= len) {
        const std::size_t msg_len = load<std::uint32_t>(buf + off);
        const std::uint16_t type = load<std::uint16_t>(buf + off + 4);
        if (msg_len < kNlHdr || msg_len > len - off) {
            return bad + 1;  // the rest of the buffer cannot be trusted
        }
        if (type == RTM_NEWNEIGH || type == RTM_DELNEIGH) {
            NeighbourEvent ev;
            bool relevant = false;
            if (!parse_neigh(buf + off + kNlHdr, msg_len - kNlHdr, type == RTM_DELNEIGH, ev,
                             relevant)) {
                ++bad;
            } else if (relevant) {
                fn(ev);
            }
        }
        off += align4(msg_len);
    }
    return bad;
}

Result<std::unique_ptr<NeighbourSocket>, std::string> NeighbourSocket::open() {
    const int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) {
        return unexpected(fmt::format("netlink socket: {}", std::strerror(errno)));
    }
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    sa.nl_groups = RTMGRP_NEIGH;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
        const int e = errno;
        ::close(fd);
        return unexpected(fmt::format("netlink bind (neighbour events): {}", std::strerror(e)));
    }
    int rcvbuf = 1 << 20;
    (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    return std::make_unique<NeighbourSocket>(Token{}, fd);
}

NeighbourSocket::~NeighbourSocket() {
    ::close(fd_);
}

Result<void, std::string> NeighbourSocket::request_dump() {
    struct {
        nlmsghdr h;
        ndmsg nd;
    } req{};
    req.h.nlmsg_len = sizeof req;
    req.h.nlmsg_type = RTM_GETNEIGH;
    req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.h.nlmsg_seq = seq_++;
    req.nd.ndm_family = AF_UNSPEC;
    if (::send(fd_, &req, sizeof req, 0) < 0) {
        return unexpected(fmt::format("netlink RTM_GETNEIGH: {}", std::strerror(errno)));
    }
    return {};
}

namespace {
struct NeighRequest {
    nlmsghdr h;
    ndmsg nd;
    rtattr dst;
    std::array<std::uint8_t, 16> bytes;
};

NeighRequest neigh_request(std::uint16_t type, std::uint16_t flags, int ifindex, const IpAddr& addr,
                           std::uint32_t seq) {
    NeighRequest req{};
    const std::size_t alen = addr.family == Family::kIpv4 ? 4 : 16;
    req.h.nlmsg_len = static_cast<std::uint32_t>(NLMSG_LENGTH(sizeof(ndmsg)) + RTA_LENGTH(alen));
    req.h.nlmsg_type = type;
    req.h.nlmsg_flags = flags;
    req.h.nlmsg_seq = seq;
    req.nd.ndm_family = addr.family == Family::kIpv4 ? AF_INET : AF_INET6;
    req.nd.ndm_ifindex = ifindex;
    req.dst.rta_len = static_cast<unsigned short>(RTA_LENGTH(alen));
    req.dst.rta_type = NDA_DST;
    std::memcpy(req.bytes.data(), addr.bytes.data(), alen);
    return req;
}
}  // namespace

Result<void, std::string> NeighbourSocket::resolve(int ifindex, const IpAddr& addr) {
    NeighRequest req = neigh_request(RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE,
                                     ifindex, addr, seq_++);
    req.nd.ndm_state = NUD_NONE;
    req.nd.ndm_flags = NTF_USE;  // neigh_event_send(): resolve as a packet would
    if (::send(fd_, &req, req.h.nlmsg_len, 0) < 0) {
        return unexpected(fmt::format("netlink RTM_NEWNEIGH (resolve): {}", std::strerror(errno)));
    }
    return {};
}

Result<void, std::string> NeighbourSocket::query(int ifindex, const IpAddr& addr) {
    // The kernel answers with the entry as an RTM_NEWNEIGH (or an error if it has none), which
    // poll() reads like an event: an entry that is already REACHABLE sends no event on its own.
    const NeighRequest req = neigh_request(RTM_GETNEIGH, NLM_F_REQUEST, ifindex, addr, seq_++);
    if (::send(fd_, &req, req.h.nlmsg_len, 0) < 0) {
        return unexpected(fmt::format("netlink RTM_GETNEIGH (query): {}", std::strerror(errno)));
    }
    return {};
}

std::size_t NeighbourSocket::poll(const NeighbourFn& fn) {
    alignas(4) static thread_local std::array<std::uint8_t, 64 * 1024> buf;
    std::size_t n = 0;
    for (int i = 0; i < 64; ++i) {
        const ssize_t r = ::recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT);
        if (r < 0) {
            if (errno == ENOBUFS) {
                ++overruns_;  // events were lost: read the table again
                (void)request_dump();
                continue;
            }
            break;  // EAGAIN, or nothing more to read
        }
        ++n;
        malformed_ += parse_neighbour_messages(buf.data(), static_cast<std::size_t>(r), fn);
    }
    return n;
}

}  // namespace hag::dp
