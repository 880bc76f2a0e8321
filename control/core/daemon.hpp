// The hag-control daemon: binds the signalling sockets, runs the LMA on one Boost.Asio thread
// (receive, 1 s ticks, SIGHUP reload, SIGTERM/SIGINT shutdown) and serves the management API
// on gRPC's own threads. The binding cache and the LMA are shared with the management service
// under the CacheBackend's lock.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "hag/result.hpp"
#include "hag/v1/config.pb.h"

namespace hag::control {

struct DaemonOptions {
    std::string config_path;                // re-read on SIGHUP
    std::optional<std::string> listen;      // overrides management_socket ("unix:/p", "h:p")
    std::optional<std::uint32_t> udp_port;  // overrides 5436 (tests)
};

class Daemon {
  public:
    // Opens sockets and the management server; the error says what failed and why.
    static Result<std::unique_ptr<Daemon>, std::string> start(v1::ControlConfig cfg,
                                                              DaemonOptions opts);
    ~Daemon();
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // Runs until SIGTERM or SIGINT; returns the process exit code.
    int run();

    struct Impl;
    explicit Daemon(std::unique_ptr<Impl> impl);

  private:
    std::unique_ptr<Impl> impl_;
};

// The management listen address for a management_socket value: a path becomes "unix:<path>".
std::string management_listen_address(const std::string& configured);

}  // namespace hag::control
