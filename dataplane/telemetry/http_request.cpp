#include "telemetry/http_request.hpp"

namespace hag::dp::http {

namespace {

// RFC 9110 section 5.6.2: tchar.
bool is_tchar(char c) noexcept {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    switch (c) {
        case '!':
        case '#':
        case '$':
        case '%':
        case '&':
        case '\'':
        case '*':
        case '+':
        case '-':
        case '.':
        case '^':
        case '_':
        case '`':
        case '|':
        case '~':
            return true;
        default:
            return false;
    }
}

bool is_vchar(char c) noexcept {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f;
}

// Finds the end of the line starting at `from`: the index of its '\n', or npos. The line's
// content excludes an optional '\r' before the '\n'.
std::size_t line_end(std::string_view buf, std::size_t from) noexcept {
    return buf.find('\n', from);
}

std::string_view content(std::string_view buf, std::size_t from, std::size_t nl) noexcept {
    std::string_view line = buf.substr(from, nl - from);
    if (!line.empty() && line.back() == '\r') {
        line.remove_suffix(1);
    }
    return line;
}

Parse parse_request_line(std::string_view line, Request& r) noexcept {
    const std::size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos || sp1 == 0) {
        return Parse::kBadRequest;
    }
    const std::string_view method = line.substr(0, sp1);
    if (method.size() > kMaxMethodBytes) {
        return Parse::kBadRequest;
    }
    for (char c : method) {
        if (!is_tchar(c)) {
            return Parse::kBadRequest;
        }
    }
    const std::size_t sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || sp2 == sp1 + 1) {
        return Parse::kBadRequest;
    }
    const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string_view version = line.substr(sp2 + 1);
    if (target.size() > kMaxTargetBytes) {
        return Parse::kUriTooLong;
    }
    if (target.front() != '/') {
        return Parse::kBadRequest;  // origin-form only: no absolute-form, no "*"
    }
    for (char c : target) {
        if (!is_vchar(c)) {
            return Parse::kBadRequest;
        }
    }
    // "HTTP/" DIGIT "." DIGIT, exactly eight characters.
    if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
        version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9') {
        return Parse::kBadRequest;
    }
    if (version[5] != '1' || version[7] > '1') {
        return Parse::kVersionNotSupported;
    }
    r.method = method;
    r.target = target;
    r.path = target.substr(0, target.find('?'));
    r.minor = static_cast<std::uint8_t>(version[7] - '0');
    if (method != "GET" && method != "HEAD") {
        return Parse::kMethodNotAllowed;
    }
    return Parse::kOk;
}

// A header field line: token ":" then visible characters, spaces and tabs.
bool valid_header_line(std::string_view line) noexcept {
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
        return false;
    }
    for (std::size_t i = 0; i < colon; ++i) {
        if (!is_tchar(line[i])) {
            return false;
        }
    }
    for (std::size_t i = colon + 1; i < line.size(); ++i) {
        const auto u = static_cast<unsigned char>(line[i]);
        if (u < 0x20 && line[i] != '\t') {
            return false;
        }
        if (u == 0x7f) {
            return false;
        }
    }
    return true;
}

}  // namespace

ParseResult parse_request(std::string_view buf) noexcept {
    ParseResult res;
    if (buf.size() > kMaxRequestBytes) {
        buf = buf.substr(0, kMaxRequestBytes);  // never look further than the bound
    }
    // Request line.
    const std::size_t nl = line_end(buf, 0);
    if (nl == std::string_view::npos) {
        // A request line is at most method + target + version + 4 separators.
        if (buf.size() > kMaxMethodBytes + kMaxTargetBytes + 8 + 4) {
            res.status = Parse::kUriTooLong;
        } else if (buf.find('\0') != std::string_view::npos) {
            res.status = Parse::kBadRequest;
        }
        return res;
    }
    Request r;
    const Parse line_status = parse_request_line(content(buf, 0, nl), r);
    if (line_status != Parse::kOk && line_status != Parse::kMethodNotAllowed) {
        res.status = line_status;
        return res;
    }
    // Header lines up to the empty line.
    std::size_t pos = nl + 1;
    for (std::size_t lines = 0;; ++lines) {
        const std::size_t e = line_end(buf, pos);
        if (e == std::string_view::npos) {
            res.status =
                buf.size() >= kMaxRequestBytes ? Parse::kHeadersTooLarge : Parse::kIncomplete;
            if (buf.substr(pos).find('\0') != std::string_view::npos) {
                res.status = Parse::kBadRequest;
            }
            return res;
        }
        const std::string_view line = content(buf, pos, e);
        pos = e + 1;
        if (line.empty()) {
            break;
        }
        if (lines >= kMaxHeaderLines) {
            res.status = Parse::kHeadersTooLarge;
            return res;
        }
        if (!valid_header_line(line)) {
            res.status = Parse::kBadRequest;
            return res;
        }
    }
    r.length = pos;
    res.status = line_status;
    res.request = r;
    return res;
}

int status_code(Parse p) noexcept {
    switch (p) {
        case Parse::kIncomplete:
            return 0;
        case Parse::kOk:
            return 200;
        case Parse::kBadRequest:
            return 400;
        case Parse::kMethodNotAllowed:
            return 405;
        case Parse::kUriTooLong:
            return 414;
        case Parse::kHeadersTooLarge:
            return 431;
        case Parse::kVersionNotSupported:
            return 505;
    }
    return 400;
}

std::string_view reason_phrase(int code) noexcept {
    switch (code) {
        case 200:
            return "OK";
        case 400:
            return "Bad Request";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 408:
            return "Request Timeout";
        case 414:
            return "URI Too Long";
        case 431:
            return "Request Header Fields Too Large";
        case 500:
            return "Internal Server Error";
        case 505:
            return "HTTP Version Not Supported";
        default:
            return "Error";
    }
}

}  // namespace hag::dp::http
