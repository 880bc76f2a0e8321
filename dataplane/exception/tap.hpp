// A kernel TAP interface opened through /dev/net/tun: the kernel side of one port's exception
// path. Frames are read and written whole (IFF_TAP | IFF_NO_PI), non-blocking.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "hag/result.hpp"
#include "tables/session_table.hpp"

namespace hag::dp {

class Tap {
  public:
    // Creates (or attaches to a persistent) TAP `name`, gives it `mac` and brings it up.
    static Result<std::unique_ptr<Tap>, std::string> open(const std::string& name,
                                                          const MacAddr& mac);
    ~Tap();
    Tap(const Tap&) = delete;
    Tap& operator=(const Tap&) = delete;

    [[nodiscard]] int fd() const noexcept { return fd_; }
    [[nodiscard]] int ifindex() const noexcept { return ifindex_; }
    [[nodiscard]] const std::string& name() const noexcept { return name_; }

  private:
    struct Token {
        explicit Token() = default;
    };

  public:
    Tap(Token, int fd, int ifindex, std::string name)
        : fd_(fd), ifindex_(ifindex), name_(std::move(name)) {}

  private:
    int fd_;
    int ifindex_;
    std::string name_;
};

}  // namespace hag::dp
