#include "exception/tap.hpp"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_arp.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

namespace hag::dp {

namespace {

struct Fd {
    int fd;
    ~Fd() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
};

std::string err(const std::string& name, const char* what) {
    return fmt::format("TAP '{}': {}: {}", name, what, std::strerror(errno));
}

}  // namespace

Result<std::unique_ptr<Tap>, std::string> Tap::open(const std::string& name, const MacAddr& mac) {
    if (name.empty() || name.size() >= IFNAMSIZ) {
        return unexpected(fmt::format("TAP name '{}' must be 1-{} characters", name, IFNAMSIZ - 1));
    }
    Fd tun{::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC)};
    if (tun.fd < 0) {
        return unexpected(err(name, "cannot open /dev/net/tun (needs CAP_NET_ADMIN)"));
    }
    ifreq ifr{};
    std::memcpy(ifr.ifr_name, name.c_str(), name.size());
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    if (::ioctl(tun.fd, TUNSETIFF, &ifr) < 0) {
        return unexpected(err(name, "TUNSETIFF"));
    }
    Fd ctl{::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
    if (ctl.fd < 0) {
        return unexpected(err(name, "socket"));
    }
    ifreq req{};
    std::memcpy(req.ifr_name, ifr.ifr_name, IFNAMSIZ);
    req.ifr_hwaddr.sa_family = ARPHRD_ETHER;
    std::memcpy(req.ifr_hwaddr.sa_data, mac.data(), 6);
    if (::ioctl(ctl.fd, SIOCSIFHWADDR, &req) < 0) {
        return unexpected(err(name, "setting the port's MAC address"));
    }
    std::memset(&req.ifr_ifru, 0, sizeof req.ifr_ifru);
    if (::ioctl(ctl.fd, SIOCGIFFLAGS, &req) < 0) {
        return unexpected(err(name, "SIOCGIFFLAGS"));
    }
    req.ifr_flags = static_cast<short>(req.ifr_flags | IFF_UP);
    if (::ioctl(ctl.fd, SIOCSIFFLAGS, &req) < 0) {
        return unexpected(err(name, "bringing the interface up"));
    }
    std::memset(&req.ifr_ifru, 0, sizeof req.ifr_ifru);
    if (::ioctl(ctl.fd, SIOCGIFINDEX, &req) < 0) {
        return unexpected(err(name, "SIOCGIFINDEX"));
    }
    const int fd = tun.fd;
    tun.fd = -1;
    return std::make_unique<Tap>(Token{}, fd, req.ifr_ifindex, std::string(ifr.ifr_name));
}

Tap::~Tap() {
    ::close(fd_);
}

}  // namespace hag::dp
