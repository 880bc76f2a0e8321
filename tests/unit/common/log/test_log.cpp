#include <fmt/format.h>
#include <spdlog/sinks/ostream_sink.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "hag/log/log.hpp"

TEST_CASE("log levels parse by name and reject unknown names", "[log]") {
    auto lvl = hag::log::parse_level("debug");
    REQUIRE(lvl.ok());
    CHECK(*lvl == spdlog::level::debug);
    CHECK(*hag::log::parse_level("off") == spdlog::level::off);

    auto bad = hag::log::parse_level("verbose");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().find("verbose") != std::string::npos);
    CHECK_FALSE(hag::log::parse_level("").ok());
    CHECK_FALSE(hag::log::parse_level("INFO").ok());
}

TEST_CASE("the log level changes at run time and reports the previous one", "[log]") {
    hag::log::init("test-log", spdlog::level::info);
    CHECK(hag::log::current_level() == "info");
    auto prev = hag::log::set_level("debug");
    REQUIRE(prev.ok());
    CHECK(*prev == "info");
    CHECK(hag::log::current_level() == "debug");
    CHECK(spdlog::default_logger_raw()->should_log(spdlog::level::debug));

    auto bad = hag::log::set_level("loud");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().find("loud") != std::string::npos);
    CHECK(hag::log::current_level() == "debug");  // unchanged

    REQUIRE(hag::log::set_level("warn").ok());
    CHECK(hag::log::level_name(spdlog::level::warn) == "warn");
    CHECK(hag::log::level_name(spdlog::level::err) == "error");
    CHECK_FALSE(spdlog::default_logger_raw()->should_log(spdlog::level::info));
    REQUIRE(hag::log::set_level("info").ok());
}

// ---- JSON lines --------------------------------------------------------------------------

namespace {

// A strict reader for the flat objects the JSON formatter writes: {"key":"string"|integer,...}.
// Written against RFC 8259, independently of the formatter: raw bytes must be valid UTF-8
// (RFC 3629), no raw control characters inside strings, only the escapes JSON defines, no
// lone surrogates. Strings come back decoded (UTF-8).
struct JsonReader {
    std::string_view s;
    std::size_t i = 0;

    bool eat(char c) {
        if (i < s.size() && s[i] == c) {
            ++i;
            return true;
        }
        return false;
    }
    static void put_utf8(std::string& out, std::uint32_t cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xc0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xe0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (cp & 0x3f));
        } else {
            out += static_cast<char>(0xf0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (cp & 0x3f));
        }
    }
    // One UTF-8 scalar value at i (RFC 3629 table), or false.
    bool utf8(std::string& out) {
        const auto b = [&](std::size_t k) { return static_cast<std::uint8_t>(s[k]); };
        const std::uint8_t c = b(i);
        std::size_t n = c < 0x80             ? 1
                        : (c & 0xe0) == 0xc0 ? 2
                        : (c & 0xf0) == 0xe0 ? 3
                        : (c & 0xf8) == 0xf0 ? 4
                                             : 0;
        if (n == 0 || i + n > s.size()) {
            return false;
        }
        std::uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1f) : n == 3 ? (c & 0x0f) : (c & 0x07);
        for (std::size_t k = 1; k < n; ++k) {
            if ((b(i + k) & 0xc0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (b(i + k) & 0x3f);
        }
        static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        out.append(s.substr(i, n));
        i += n;
        return true;
    }
    bool string(std::string& out) {
        if (!eat('"')) {
            return false;
        }
        while (i < s.size()) {
            const auto c = static_cast<std::uint8_t>(s[i]);
            if (c == '"') {
                ++i;
                return true;
            }
            if (c < 0x20) {
                return false;
            }
            if (c != '\\') {
                if (!utf8(out)) {
                    return false;
                }
                continue;
            }
            if (++i >= s.size()) {
                return false;
            }
            const char e = s[i++];
            switch (e) {
                case '"':
                    out += '"';
                    break;
                case '\\':
                    out += '\\';
                    break;
                case '/':
                    out += '/';
                    break;
                case 'b':
                    out += '\b';
                    break;
                case 'f':
                    out += '\f';
                    break;
                case 'n':
                    out += '\n';
                    break;
                case 'r':
                    out += '\r';
                    break;
                case 't':
                    out += '\t';
                    break;
                case 'u': {
                    if (i + 4 > s.size()) {
                        return false;
                    }
                    std::uint32_t cp = 0;
                    for (int k = 0; k < 4; ++k) {
                        const char h = s[i++];
                        const int v = h >= '0' && h <= '9'   ? h - '0'
                                      : h >= 'a' && h <= 'f' ? h - 'a' + 10
                                      : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                                             : -1;
                        if (v < 0) {
                            return false;
                        }
                        cp = cp * 16 + static_cast<std::uint32_t>(v);
                    }
                    if (cp >= 0xd800 && cp <= 0xdfff) {
                        return false;  // the formatter never writes surrogate pairs
                    }
                    put_utf8(out, cp);
                    break;
                }
                default:
                    return false;
            }
        }
        return false;
    }
    // Parses the whole of s as one object; values are strings or non-negative integers.
    std::optional<std::map<std::string, std::string>> object() {
        std::map<std::string, std::string> m;
        if (!eat('{')) {
            return std::nullopt;
        }
        do {
            std::string key, value;
            if (!string(key) || !eat(':')) {
                return std::nullopt;
            }
            if (i < s.size() && s[i] == '"') {
                if (!string(value)) {
                    return std::nullopt;
                }
            } else {
                const std::size_t start = i;
                while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
                    ++i;
                }
                if (i == start) {
                    return std::nullopt;
                }
                value = "#" + std::string(s.substr(start, i - start));
            }
            if (!m.emplace(key, value).second) {
                return std::nullopt;  // duplicate key
            }
        } while (eat(','));
        if (!eat('}') || i != s.size()) {
            return std::nullopt;
        }
        return m;
    }
};

std::optional<std::map<std::string, std::string>> parse_json_line(std::string_view line) {
    return JsonReader{line}.object();
}

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    for (std::size_t nl = text.find('\n'); nl != std::string::npos; nl = text.find('\n', start)) {
        lines.push_back(text.substr(start, nl - start));
        start = nl + 1;
    }
    CHECK(start == text.size());  // every line ends in '\n'
    return lines;
}

// YYYY-MM-DDTHH:MM:SS.uuuuuuZ (no std::regex: GCC's sanitizer build warns inside it).
bool is_rfc3339_utc_micros(const std::string& t) {
    static constexpr std::string_view kShape = "dddd-dd-ddTdd:dd:dd.ddddddZ";
    if (t.size() != kShape.size()) {
        return false;
    }
    for (std::size_t i = 0; i < t.size(); ++i) {
        if (kShape[i] == 'd' ? (t[i] < '0' || t[i] > '9') : t[i] != kShape[i]) {
            return false;
        }
    }
    return true;
}

const std::string kFffd = "\xef\xbf\xbd";  // U+FFFD in UTF-8

}  // namespace

TEST_CASE("log formats parse by name", "[log]") {
    CHECK(*hag::log::parse_format("text") == hag::log::Format::kText);
    CHECK(*hag::log::parse_format("json") == hag::log::Format::kJson);
    auto bad = hag::log::parse_format("JSON");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().find("JSON") != std::string::npos);
    CHECK_FALSE(hag::log::parse_format("").ok());
    CHECK(hag::log::format_name(hag::log::Format::kJson) == "json");
}

TEST_CASE("JSON log lines survive hostile messages: one valid object per line", "[log]") {
    std::ostringstream os;
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(os);
    spdlog::logger logger("hag-\"test\"\n", sink);
    logger.set_formatter(hag::log::make_json_formatter());
    logger.set_level(spdlog::level::trace);

    // {message logged, message expected after decoding}
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"plain", "plain"},
        {"quote \" backslash \\ slash /", "quote \" backslash \\ slash /"},
        {"two\nlines\r\nand\ttab", "two\nlines\r\nand\ttab"},
        {std::string("nul\0byte", 8), std::string("nul\0byte", 8)},
        {"\x01\x08\x0c\x1b[31m\x1f\x7f", "\x01\x08\x0c\x1b[31m\x1f\x7f"},
        {"gr\xc3\xbc\xc3\x9f"
         "e \xe2\x9c\x93 \xf0\x9f\x98\x80",
         "gr\xc3\xbc\xc3\x9f"
         "e \xe2\x9c\x93 \xf0\x9f\x98\x80"},  // valid UTF-8 kept
        {"\xff\xfe", kFffd + kFffd},
        {"\xc3(", kFffd + "("},                               // bad continuation
        {"end\xe2\x82", "end" + kFffd + kFffd},               // truncated at the end
        {"\xc0\xaf", kFffd + kFffd},                          // overlong '/'
        {"\xe0\x80\xaf", kFffd + kFffd + kFffd},              // overlong, three bytes
        {"\xed\xa0\x80", kFffd + kFffd + kFffd},              // UTF-16 surrogate
        {"\xf4\x90\x80\x80", kFffd + kFffd + kFffd + kFffd},  // above U+10FFFF
        {"\x80 lone", kFffd + " lone"},
        {"cpe\"}\n{\"level\":\"critical\"@example.net",
         "cpe\"}\n{\"level\":\"critical\"@example.net"},
        {"", ""},
    };
    for (const auto& [in, want] : cases) {
        logger.info("{}", in);
    }
    std::string all;  // every byte value, then pseudo-random byte strings
    for (int b = 0; b < 256; ++b) {
        all += static_cast<char>(b);
    }
    logger.warn("{}", all);
    std::uint32_t x = 12345;
    constexpr int kRandom = 500;
    for (int n = 0; n < kRandom; ++n) {
        std::string r;
        for (int k = 0; k < 40; ++k) {
            x = x * 1103515245u + 12345u;
            r += static_cast<char>(x >> 23);
        }
        logger.debug("{}", r);
    }

    const auto lines = split_lines(os.str());
    REQUIRE(lines.size() == cases.size() + 1 + kRandom);
    for (std::size_t n = 0; n < lines.size(); ++n) {
        INFO("line " << n << ": " << lines[n]);
        const auto obj = parse_json_line(lines[n]);
        REQUIRE(obj.has_value());
        CHECK(obj->size() == 5);
        CHECK(is_rfc3339_utc_micros(obj->at("time")));
        CHECK(obj->at("logger") == "hag-\"test\"\n");
        CHECK(obj->at("pid") == fmt::format("#{}", ::getpid()));
        CHECK(obj->at("level") == (n < cases.size()    ? "info"
                                   : n == cases.size() ? "warn"
                                                       : "debug"));
        if (n < cases.size()) {
            CHECK(obj->at("message") == cases[n].second);
        }
    }
}

TEST_CASE("JSON escaping keeps printable ASCII and valid UTF-8 as they are", "[log]") {
    std::string out;
    hag::log::append_json_escaped(out, "abc \xc3\xa9 \xe2\x82\xac");
    CHECK(out == "abc \xc3\xa9 \xe2\x82\xac");
    out.clear();
    hag::log::append_json_escaped(out, std::string("a\0\"\\\n\x7f\xff", 7));
    CHECK(out == "a\\u0000\\\"\\\\\\n\\u007f\\ufffd");
}

TEST_CASE("the default logger writes JSON lines to stderr and its level still changes", "[log]") {
    // Redirect stderr to a file for the duration (what hagctl log-level does: set_level).
    char path[] = "/tmp/hag-test-log.XXXXXX";
    const int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    std::fflush(stderr);
    const int saved = ::dup(2);
    ::dup2(fd, 2);
    hag::log::init("hag-json", spdlog::level::info, hag::log::Format::kJson);
    spdlog::info("first {}", "line");
    spdlog::debug("not shown");
    REQUIRE(hag::log::set_level("debug").ok());
    spdlog::debug("shown \"now\"");
    std::fflush(stderr);
    ::dup2(saved, 2);
    ::close(saved);
    hag::log::init("test-log", spdlog::level::info);  // text again for the rest

    std::ifstream in(path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ::close(fd);
    ::unlink(path);
    const auto lines = split_lines(text);
    REQUIRE(lines.size() == 2);
    const auto a = parse_json_line(lines[0]);
    const auto b = parse_json_line(lines[1]);
    REQUIRE((a && b));
    CHECK(a->at("message") == "first line");
    CHECK(a->at("logger") == "hag-json");
    CHECK(b->at("level") == "debug");
    CHECK(b->at("message") == "shown \"now\"");
}
