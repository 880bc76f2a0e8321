// The Prometheus endpoint: a tiny HTTP/1.0 server on its own thread (never a fast-path lcore)
// that answers GET /metrics with the text the handler renders.
//
// One connection at a time, each bounded: at most http::kMaxRequestBytes of request, and
// `timeout_ms` from accept to the last byte of the answer, after which the connection is
// closed whatever the client does. Garbage gets a 4xx and a close, never more of our time.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "hag/result.hpp"

namespace hag::dp {

struct ListenAddress {
    sockaddr_storage addr{};
    socklen_t len = 0;
};

// "192.0.2.1:9470", "[2001:db8::1]:9470", "0.0.0.0:9470", "[::]:9470". Port 0 = any free port.
Result<ListenAddress, std::string> parse_listen_address(std::string_view text);

class MetricsServer {
  public:
    using Handler = std::function<std::string()>;  // the body of GET /metrics

    struct Options {
        int timeout_ms = 2000;
    };

    static Result<std::unique_ptr<MetricsServer>, std::string> start(std::string_view listen,
                                                                     Handler handler, Options opt);
    ~MetricsServer();  // stops and joins the thread
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
    [[nodiscard]] std::uint64_t served() const noexcept { return served_.load(); }
    [[nodiscard]] std::uint64_t rejected() const noexcept { return rejected_.load(); }

  private:
    struct Token {
        explicit Token() = default;
    };

  public:
    MetricsServer(Token, int listen_fd, int wake_fd, std::uint16_t port, Handler h, Options o);

  private:
    void run();
    void serve(int fd);

    int listen_fd_;
    int wake_fd_;  // eventfd: written by the destructor to stop the thread
    std::uint16_t port_;
    Handler handler_;
    Options opt_;
    std::atomic<std::uint64_t> served_{0};
    std::atomic<std::uint64_t> rejected_{0};
    std::thread thread_;
};

// The whole answer (status line, headers, body) for what a client sent; exposed for tests.
// `complete` is false while more bytes are needed.
std::string http_response(std::string_view request, const MetricsServer::Handler& handler,
                          bool& complete);

}  // namespace hag::dp
