#include "telemetry/metrics_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "telemetry/http_request.hpp"

namespace hag::dp {

namespace {

using Clock = std::chrono::steady_clock;

std::string answer(int code, std::string_view content_type, std::string_view body, bool head,
                   std::string_view extra = {}) {
    std::string out = fmt::format(
        "HTTP/1.0 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
        code, http::reason_phrase(code), content_type, body.size(), extra);
    if (!head) {
        out += body;
    }
    return out;
}

std::string error_answer(int code, bool head = false) {
    return answer(code, "text/plain; charset=utf-8",
                  fmt::format("{} {}\n", code, http::reason_phrase(code)), head,
                  code == 405 ? "Allow: GET, HEAD\r\n" : "");
}

int remaining_ms(Clock::time_point deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left > 0 ? static_cast<int>(left) : 0;
}

}  // namespace

Result<ListenAddress, std::string> parse_listen_address(std::string_view text) {
    const auto bad = [&](std::string_view why) {
        return unexpected(
            fmt::format("'{}': {} (expected ADDRESS:PORT, e.g. 127.0.0.1:9470 "
                        "or [::1]:9470)",
                        text, why));
    };
    std::string_view host, port;
    if (!text.empty() && text.front() == '[') {
        const std::size_t close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            return bad("IPv6 address in brackets must be followed by :PORT");
        }
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        const std::size_t colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            return bad("no port");
        }
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) {
            return bad("put an IPv6 address in brackets");
        }
    }
    if (port.empty() || port.size() > 5) {
        return bad("bad port");
    }
    unsigned p = 0;
    for (char c : port) {
        if (c < '0' || c > '9') {
            return bad("bad port");
        }
        p = p * 10 + static_cast<unsigned>(c - '0');
    }
    if (p > 65535 || host.empty() || host.size() >= INET6_ADDRSTRLEN) {
        return bad(p > 65535 ? "port above 65535" : "bad address");
    }
    const std::string h(host);
    ListenAddress a;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&a.addr);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.addr);
    if (text.front() != '[' && inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<std::uint16_t>(p));
        a.len = sizeof(sockaddr_in);
    } else if (text.front() == '[' && inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<std::uint16_t>(p));
        a.len = sizeof(sockaddr_in6);
    } else {
        return bad("not an IPv4 or bracketed IPv6 address");
    }
    return a;
}

std::string http_response(std::string_view request, const MetricsServer::Handler& handler,
                          bool& complete) {
    const http::ParseResult r = http::parse_request(request);
    complete = r.status != http::Parse::kIncomplete;
    if (!complete) {
        return {};
    }
    const bool head = r.status == http::Parse::kOk && r.request.method == "HEAD";
    if (r.status != http::Parse::kOk) {
        return error_answer(http::status_code(r.status));
    }
    if (r.request.path == "/metrics") {
        return answer(200, "text/plain; version=0.0.4; charset=utf-8", handler(), head);
    }
    if (r.request.path == "/") {
        return answer(200, "text/plain; charset=utf-8",
                      "hag-dataplane: Prometheus metrics at /metrics\n", head);
    }
    return error_answer(404, head);
}

Result<std::unique_ptr<MetricsServer>, std::string> MetricsServer::start(std::string_view listen,
                                                                         Handler handler,
                                                                         Options opt) {
    auto addr = parse_listen_address(listen);
    if (!addr) {
        return unexpected("metrics endpoint " + addr.error());
    }
    const int fd = socket(addr->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return unexpected(fmt::format("metrics endpoint: socket: {}", std::strerror(errno)));
    }
    const int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, reinterpret_cast<const sockaddr*>(&addr->addr), addr->len) != 0 ||
        ::listen(fd, 16) != 0) {
        const std::string err = std::strerror(errno);
        close(fd);
        return unexpected(fmt::format("metrics endpoint: cannot listen on {}: {}", listen, err));
    }
    sockaddr_storage bound{};
    socklen_t blen = sizeof bound;
    getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
    const std::uint16_t port =
        ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                         : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
    const int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake < 0) {
        close(fd);
        return unexpected(fmt::format("metrics endpoint: eventfd: {}", std::strerror(errno)));
    }
    return std::make_unique<MetricsServer>(Token{}, fd, wake, port, std::move(handler), opt);
}

MetricsServer::MetricsServer(Token, int listen_fd, int wake_fd, std::uint16_t port, Handler h,
                             Options o)
    : listen_fd_(listen_fd), wake_fd_(wake_fd), port_(port), handler_(std::move(h)), opt_(o) {
    thread_ = std::thread([this] { run(); });
}

MetricsServer::~MetricsServer() {
    const std::uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof one);
    if (thread_.joinable()) {
        thread_.join();
    }
    close(listen_fd_);
    close(wake_fd_);
}

void MetricsServer::run() {
    pthread_setname_np(pthread_self(), "hag-metrics");
    for (;;) {
        pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            return;
        }
        if (fds[1].revents != 0) {
            return;
        }
        const int c = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (c >= 0) {
            serve(c);
            close(c);
        }
    }
}

void MetricsServer::serve(int fd) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(opt_.timeout_ms);
    std::string buf;
    buf.reserve(1024);
    char chunk[2048];
    std::string out;
    bool complete = false;
    while (!complete) {
        pollfd p{fd, POLLIN, 0};
        pollfd w{wake_fd_, POLLIN, 0};
        pollfd fds[2] = {p, w};
        const int left = remaining_ms(deadline);
        const int ready = left == 0 ? 0 : poll(fds, 2, left);
        if (ready <= 0 || fds[1].revents != 0) {
            if (ready == 0 && !buf.empty()) {
                out = error_answer(408);  // best effort; the client may be gone
                (void)send(fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            }
            rejected_.fetch_add(1);
            return;
        }
        const ssize_t n =
            recv(fd, chunk, std::min(sizeof chunk, http::kMaxRequestBytes + 1 - buf.size()), 0);
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                continue;
            }
            rejected_.fetch_add(1);
            return;  // closed or failed before a whole request
        }
        buf.append(chunk, static_cast<std::size_t>(n));
        try {
            out = http_response(buf, handler_, complete);
        } catch (const std::exception&) {
            out = error_answer(500);  // the handler failed (out of memory): say so and go on
            complete = true;
        }
        if (!complete && buf.size() > http::kMaxRequestBytes) {
            out = error_answer(431);
            complete = true;
        }
    }
    (out.compare(0, 12, "HTTP/1.0 200") == 0 ? served_ : rejected_).fetch_add(1);
    std::size_t sent = 0;
    while (sent < out.size()) {
        pollfd fds[2] = {{fd, POLLOUT, 0}, {wake_fd_, POLLIN, 0}};
        const int left = remaining_ms(deadline);
        if (left == 0 || poll(fds, 2, left) <= 0 || fds[1].revents != 0) {
            return;  // a reader too slow for the deadline
        }
        const ssize_t n = send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                continue;
            }
            return;
        }
        sent += static_cast<std::size_t>(n);
    }
    // Closing with unread input would reset the connection and could discard our answer at
    // the client: read what is left (a request body, the rest of an oversized request) until
    // the client closes, for at most 250 ms and 256 KiB.
    shutdown(fd, SHUT_WR);
    const auto drain_until = std::min(deadline, Clock::now() + std::chrono::milliseconds(250));
    for (std::size_t drained = 0; drained < (256u << 10);) {
        pollfd p{fd, POLLIN, 0};
        const int left = remaining_ms(drain_until);
        if (left == 0 || poll(&p, 1, left) <= 0) {
            return;
        }
        const ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            return;
        }
        drained += n > 0 ? static_cast<std::size_t>(n) : 0;
    }
}

}  // namespace hag::dp
