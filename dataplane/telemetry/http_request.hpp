// The request side of the tiny HTTP/1.0 server behind the Prometheus endpoint: a bounds-checked
// parser of the request line and header block (RFC 9112 section 3, strictly: one space between
// the three parts, a token method, an origin-form target of visible ASCII, HTTP/1.0 or 1.1).
// It looks only at the bytes it is given, never reads past them, allocates nothing and keeps
// views into the caller's buffer. Network input: fuzzed by tests/fuzz/http.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace hag::dp::http {

inline constexpr std::size_t kMaxRequestBytes = 8192;  // request line + headers
inline constexpr std::size_t kMaxTargetBytes = 1024;
inline constexpr std::size_t kMaxMethodBytes = 16;
inline constexpr std::size_t kMaxHeaderLines = 64;

enum class Parse : std::uint8_t {
    kIncomplete,           // need more bytes (the header block has not ended yet)
    kOk,                   // a GET or HEAD request; `request` is valid
    kBadRequest,           // 400
    kMethodNotAllowed,     // 405: a well-formed method other than GET / HEAD
    kUriTooLong,           // 414
    kHeadersTooLarge,      // 431
    kVersionNotSupported,  // 505: HTTP/x.y other than 1.0 / 1.1
};

struct Request {
    std::string_view method;  // "GET" or "HEAD"
    std::string_view target;  // as sent, "/metrics?x=1"
    std::string_view path;    // target without the query, "/metrics"
    std::uint8_t minor = 0;   // HTTP/1.<minor>
    std::size_t length = 0;   // bytes of request line + headers + blank line
};

struct ParseResult {
    Parse status = Parse::kIncomplete;
    Request request;
};

// Parses the start of `buf`: what a client sent so far.
[[nodiscard]] ParseResult parse_request(std::string_view buf) noexcept;

// The HTTP status code for a parse outcome (200 for kOk, 0 for kIncomplete) and its phrase.
[[nodiscard]] int status_code(Parse p) noexcept;
[[nodiscard]] std::string_view reason_phrase(int code) noexcept;

}  // namespace hag::dp::http
