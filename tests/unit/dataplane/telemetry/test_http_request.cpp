// The metrics endpoint's request parser and server: what a well-behaved scraper sends, and
// what a hostile or broken client might.
#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <random>
#include <string>
#include <thread>

#include "telemetry/http_request.hpp"
#include "telemetry/metrics_server.hpp"

using namespace hag::dp;
using http::Parse;

namespace {

Parse status(std::string_view s) {
    return http::parse_request(s).status;
}

}  // namespace

TEST_CASE("request lines a scraper sends parse", "[http]") {
    auto r = http::parse_request(
        "GET /metrics HTTP/1.1\r\nHost: 192.0.2.1:9470\r\n"
        "User-Agent: Prometheus/2.42\r\nAccept: text/plain\r\n\r\n");
    REQUIRE(r.status == Parse::kOk);
    CHECK(r.request.method == "GET");
    CHECK(r.request.path == "/metrics");
    CHECK(r.request.minor == 1);
    r = http::parse_request("HEAD /metrics?name[]=x HTTP/1.0\n\n");  // bare LF is tolerated
    REQUIRE(r.status == Parse::kOk);
    CHECK(r.request.method == "HEAD");
    CHECK(r.request.target == "/metrics?name[]=x");
    CHECK(r.request.path == "/metrics");
    CHECK(r.request.length == 33);
}

TEST_CASE("a request is incomplete until its header block ends", "[http]") {
    const std::string full = "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n";
    for (std::size_t n = 0; n < full.size(); ++n) {
        INFO(n);
        const Parse p = status(full.substr(0, n));
        CHECK((p == Parse::kIncomplete));
    }
    CHECK(status(full) == Parse::kOk);
}

TEST_CASE("malformed request lines are refused", "[http][hostile]") {
    for (const char* s : {
             "GET\r\n\r\n",
             "GET /metrics\r\n\r\n",
             " GET /metrics HTTP/1.0\r\n\r\n",
             "GET  /metrics HTTP/1.0\r\n\r\n",
             "GET /metrics  HTTP/1.0\r\n\r\n",
             "GET metrics HTTP/1.0\r\n\r\n",
             "GET http://x/metrics HTTP/1.0\r\n\r\n",
             "GET * HTTP/1.0\r\n\r\n",
             "GET /met rics HTTP/1.0\r\n\r\n",
             "GET /metrics HTTP/1.0 \r\n\r\n",
             "GET /metrics http/1.0\r\n\r\n",
             "GET /metrics HTTP/1.10\r\n\r\n",
             "GET /metrics HTTP/1\r\n\r\n",
             "GET /metrics HTTP/a.b\r\n\r\n",
             "G(T /metrics HTTP/1.0\r\n\r\n",
             "GET /m\x7f HTTP/1.0\r\n\r\n",
             "GET /m\xc3\xa9 HTTP/1.0\r\n\r\n",
             "\r\n\r\n",
             "\n",
             "GET /metrics HTTP/1.0\rX\n\r\n",
         }) {
        INFO(s);
        CHECK(status(s) == Parse::kBadRequest);
    }
    CHECK(status(std::string_view("GET /\0 HTTP/1.0\r\n\r\n", 20)) == Parse::kBadRequest);
    CHECK(status(std::string_view("\0\0\0", 3)) == Parse::kBadRequest);  // before any newline
}

TEST_CASE("bad header lines are refused", "[http][hostile]") {
    for (const char* s : {
             "GET / HTTP/1.0\r\nno colon\r\n\r\n",
             "GET / HTTP/1.0\r\n: empty name\r\n\r\n",
             "GET / HTTP/1.0\r\nHost: x\r\n folded: continuation\r\n\r\n",
             "GET / HTTP/1.0\r\nBad Name: x\r\n\r\n",
             "GET / HTTP/1.0\r\nX: a\x01b\r\n\r\n",
         }) {
        INFO(s);
        CHECK(status(s) == Parse::kBadRequest);
    }
    CHECK(status(std::string_view("GET / HTTP/1.0\r\nX: \0\r\n\r\n", 24)) == Parse::kBadRequest);
    CHECK(status(std::string_view("GET / HTTP/1.0\r\nX: \0", 20)) == Parse::kBadRequest);
    CHECK(status("GET / HTTP/1.0\r\nX:\tok\r\n\r\n") == Parse::kOk);
}

TEST_CASE("methods, versions and sizes map to their status codes", "[http][hostile]") {
    CHECK(status("POST /metrics HTTP/1.0\r\n\r\n") == Parse::kMethodNotAllowed);
    CHECK(status("get /metrics HTTP/1.0\r\n\r\n") == Parse::kMethodNotAllowed);
    CHECK(status("DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n") == Parse::kMethodNotAllowed);
    CHECK(status("GET /metrics HTTP/2.0\r\n\r\n") == Parse::kVersionNotSupported);
    CHECK(status("GET /metrics HTTP/0.9\r\n\r\n") == Parse::kVersionNotSupported);
    CHECK(status("GET /metrics HTTP/1.2\r\n\r\n") == Parse::kVersionNotSupported);
    CHECK(status("AVERYLONGMETHODNAMEXX / HTTP/1.0\r\n\r\n") == Parse::kBadRequest);
    const std::string long_target(http::kMaxTargetBytes + 1, 'a');
    CHECK(status("GET /" + long_target + " HTTP/1.0\r\n\r\n") == Parse::kUriTooLong);
    CHECK(status("GET /" + long_target + std::string(30, 'a')) ==
          Parse::kUriTooLong);  // no newline yet, already too long
    CHECK(status(std::string(100000, 'A')) == Parse::kUriTooLong);
    std::string many = "GET / HTTP/1.0\r\n";
    for (std::size_t i = 0; i <= http::kMaxHeaderLines; ++i)
        many += "X: y\r\n";
    CHECK(status(many + "\r\n") == Parse::kHeadersTooLarge);
    std::string big = "GET / HTTP/1.0\r\nX: " + std::string(http::kMaxRequestBytes, 'v');
    CHECK(status(big) == Parse::kHeadersTooLarge);
    CHECK(status(big + "\r\n\r\n") == Parse::kHeadersTooLarge);
}

TEST_CASE("random and mutated requests never crash and stay within their input",
          "[http][hostile]") {
    std::mt19937 rng(5);
    const std::string good = "GET /metrics HTTP/1.1\r\nHost: 192.0.2.1\r\nAccept: */*\r\n\r\n";
    const std::string alphabet = "GETHP/1.0 \r\n:\0\x7f\xff?a";
    for (int i = 0; i < 100000; ++i) {
        std::string s = good;
        const int edits = 1 + static_cast<int>(rng() % 6);
        for (int e = 0; e < edits; ++e) {
            const std::size_t at = rng() % (s.size() + 1);
            switch (rng() % 3) {
                case 0:
                    if (at < s.size())
                        s[at] = alphabet[rng() % alphabet.size()];
                    break;
                case 1:
                    s.insert(at, 1, alphabet[rng() % alphabet.size()]);
                    break;
                default:
                    if (at < s.size())
                        s.erase(at, 1 + rng() % 4);
                    break;
            }
        }
        const auto r = http::parse_request(s);
        if (r.status == Parse::kOk) {
            REQUIRE(r.request.length <= s.size());
            REQUIRE((r.request.method == "GET" || r.request.method == "HEAD"));
            REQUIRE(r.request.path.size() <= r.request.target.size());
            REQUIRE(r.request.target.front() == '/');
        }
    }
}

TEST_CASE("responses: /metrics, /, 404, 405 with Allow, HEAD without a body", "[http]") {
    const MetricsServer::Handler h = [] { return std::string("hag_workers 1\n"); };
    bool complete = false;
    std::string a = http_response("GET /metrics HTTP/1.0\r\n\r\n", h, complete);
    CHECK(complete);
    CHECK(a.rfind("HTTP/1.0 200 OK\r\n", 0) == 0);
    CHECK(a.find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
    CHECK(a.find("Content-Length: 14\r\n") != std::string::npos);
    CHECK(a.substr(a.size() - 14) == "hag_workers 1\n");
    a = http_response("HEAD /metrics HTTP/1.0\r\n\r\n", h, complete);
    CHECK(a.find("Content-Length: 14\r\n") != std::string::npos);
    CHECK(a.substr(a.size() - 4) == "\r\n\r\n");
    CHECK(http_response("GET /x HTTP/1.0\r\n\r\n", h, complete).rfind("HTTP/1.0 404", 0) == 0);
    a = http_response("PUT / HTTP/1.0\r\n\r\n", h, complete);
    CHECK(a.rfind("HTTP/1.0 405", 0) == 0);
    CHECK(a.find("Allow: GET, HEAD\r\n") != std::string::npos);
    CHECK(http_response("GET / HTTP/1.0\r\n", h, complete).empty());
    CHECK(!complete);
}

TEST_CASE("listen addresses", "[http]") {
    CHECK(parse_listen_address("127.0.0.1:9470").ok());
    CHECK(parse_listen_address("[::1]:9470").ok());
    CHECK(parse_listen_address("[2001:db8::1]:0").ok());
    CHECK(parse_listen_address("0.0.0.0:65535").ok());
    for (const char* bad :
         {"", ":", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:123456", "::1:9470",
          "[::1]", "[::1]9470", "[127.0.0.1]:1", "localhost:9470", "192.0.2.300:1", "1.2.3.4:-1",
          "1.2.3.4:9x", "[::1:9470", "[]:1"}) {
        INFO(bad);
        CHECK(!parse_listen_address(bad).ok());
    }
}

namespace {

int connect_to(std::uint16_t port) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    return fd;
}

// Sends `req` and reads until the server closes (bounded by 10 s of poll time).
std::string http_exchange(std::uint16_t port, const std::string& req) {
    const int fd = connect_to(port);
    (void)send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    std::string out;
    char buf[4096];
    for (int i = 0; i < 100; ++i) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        const ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    close(fd);
    return out;
}

}  // namespace

TEST_CASE("the server answers, survives hostile clients and keeps serving", "[http][hostile]") {
    int calls = 0;
    auto srv = MetricsServer::start(
        "127.0.0.1:0", [&calls] { return "hag_workers " + std::to_string(++calls) + "\n"; },
        {.timeout_ms = 300});
    REQUIRE(srv.ok());
    const std::uint16_t port = (*srv)->port();
    REQUIRE(port != 0);
    CHECK(http_exchange(port, "GET /metrics HTTP/1.0\r\n\r\n").find("hag_workers 1") !=
          std::string::npos);
    // A client that sends half a request and then nothing: closed after the timeout (408).
    {
        const int fd = connect_to(port);
        (void)send(fd, "GET /met", 8, MSG_NOSIGNAL);
        std::string out;
        char buf[512];
        bool closed = false;
        for (int i = 0; i < 50 && !closed; ++i) {  // up to 5 s; the server gives up at 0.3 s
            pollfd p{fd, POLLIN, 0};
            if (poll(&p, 1, 100) > 0) {
                const ssize_t n = recv(fd, buf, sizeof buf, 0);
                closed = n <= 0;
                if (n > 0)
                    out.append(buf, static_cast<std::size_t>(n));
            }
        }
        close(fd);
        CHECK(closed);
        CHECK(out.rfind("HTTP/1.0 408", 0) == 0);
    }
    // Connect and leave at once; binary garbage; an endless header block; a huge request line.
    close(connect_to(port));
    CHECK(
        http_exchange(port, std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15))
            .rfind("HTTP/1.0 400", 0) == 0);
    CHECK(http_exchange(port, "GET /metrics HTTP/1.1\r\n" + std::string(20000, 'h'))
              .rfind("HTTP/1.0 431", 0) == 0);
    CHECK(http_exchange(port, "GET /" + std::string(20000, 'a')).rfind("HTTP/1.0 414", 0) == 0);
    CHECK(http_exchange(port, "OPTIONS * HTTP/1.1\r\n\r\n").rfind("HTTP/1.0 400", 0) == 0);
    CHECK(http_exchange(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").find("hag_workers 2") !=
          std::string::npos);
    CHECK((*srv)->served() == 2);
    CHECK((*srv)->rejected() >= 5);
    srv->reset();  // stops and joins
}
