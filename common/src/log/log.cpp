#include "hag/log/log.hpp"

#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <iterator>
#include <memory>
#include <utility>

namespace hag::log {

namespace {

constexpr std::array<std::pair<std::string_view, spdlog::level::level_enum>, 7> kLevels{{
    {"trace", spdlog::level::trace},
    {"debug", spdlog::level::debug},
    {"info", spdlog::level::info},
    {"warn", spdlog::level::warn},
    {"error", spdlog::level::err},
    {"critical", spdlog::level::critical},
    {"off", spdlog::level::off},
}};

constexpr std::array<std::pair<std::string_view, Format>, 2> kFormats{{
    {"text", Format::kText},
    {"json", Format::kJson},
}};

// Length of the valid UTF-8 sequence at s[i], or 0 if the bytes there are not one (RFC 3629:
// no overlong forms, no surrogates, nothing above U+10FFFF).
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char c = b(i);
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xbf;  // allowed range of the second byte
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;  // overlong
        hi = c == 0xed ? 0x9f : 0xbf;  // surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;  // overlong
        hi = c == 0xf4 ? 0x8f : 0xbf;  // above U+10FFFF
    } else {
        return 0;
    }
    if (s.size() - i < len || b(i + 1) < lo || b(i + 1) > hi) {
        return 0;
    }
    for (std::size_t k = 2; k < len; ++k) {
        if ((b(i + k) & 0xc0) != 0x80) {
            return 0;
        }
    }
    return len;
}

template <typename Out>
void escape_into(Out& out, std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    const auto put = [&](std::string_view t) { out.append(t.data(), t.data() + t.size()); };
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            if (const std::size_t n = utf8_sequence(s, i); n != 0) {
                out.append(s.data() + i, s.data() + i + n);
                i += n;
            } else {
                put("\\ufffd");  // one replacement per invalid byte
                ++i;
            }
            continue;
        }
        switch (c) {
            case '"':
                put("\\\"");
                break;
            case '\\':
                put("\\\\");
                break;
            case '\n':
                put("\\n");
                break;
            case '\r':
                put("\\r");
                break;
            case '\t':
                put("\\t");
                break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    const char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
                    out.append(u, u + 6);
                } else {
                    out.push_back(static_cast<char>(c));
                }
        }
        ++i;
    }
}

class JsonFormatter final : public spdlog::formatter {
  public:
    JsonFormatter() : pid_(static_cast<long>(::getpid())) {}

    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        using namespace std::chrono;
        const auto since = msg.time.time_since_epoch();
        const auto secs = duration_cast<seconds>(since);
        auto micros = duration_cast<microseconds>(since - secs).count();
        std::time_t t = secs.count();
        if (micros < 0) {  // before 1970: keep the fraction positive
            micros += 1'000'000;
            --t;
        }
        std::tm tm{};
        ::gmtime_r(&t, &tm);
        fmt::format_to(std::back_inserter(dest),
                       "{{\"time\":\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z\",\"level\":\"",
                       tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                       tm.tm_sec, micros);
        escape_into(dest, level_name(msg.level));
        const std::string_view mid1 = "\",\"logger\":\"";
        dest.append(mid1.data(), mid1.data() + mid1.size());
        escape_into(dest, std::string_view(msg.logger_name.data(), msg.logger_name.size()));
        const std::string_view mid2 = "\",\"message\":\"";
        dest.append(mid2.data(), mid2.data() + mid2.size());
        escape_into(dest, std::string_view(msg.payload.data(), msg.payload.size()));
        fmt::format_to(std::back_inserter(dest), "\",\"pid\":{}}}\n", pid_);
    }

    std::unique_ptr<spdlog::formatter> clone() const override {
        return std::make_unique<JsonFormatter>(*this);
    }

  private:
    long pid_;
};

}  // namespace

Result<Format, std::string> parse_format(std::string_view name) {
    for (const auto& [n, f] : kFormats) {
        if (n == name) {
            return f;
        }
    }
    return unexpected(std::string("unknown log format '") + std::string(name) +
                      "' (expected text or json)");
}

std::string_view format_name(Format format) {
    for (const auto& [n, f] : kFormats) {
        if (f == format) {
            return n;
        }
    }
    return "unknown";
}

void append_json_escaped(std::string& out, std::string_view s) {
    escape_into(out, s);
}

std::unique_ptr<spdlog::formatter> make_json_formatter() {
    return std::make_unique<JsonFormatter>();
}

std::string_view level_name(spdlog::level::level_enum level) {
    for (const auto& [n, lvl] : kLevels) {
        if (lvl == level) {
            return n;
        }
    }
    return "unknown";
}

std::string current_level() {
    return std::string(level_name(spdlog::default_logger_raw()->level()));
}

Result<std::string, std::string> set_level(std::string_view name) {
    auto lvl = parse_level(name);
    if (!lvl) {
        return unexpected(lvl.error());
    }
    std::string previous = current_level();
    spdlog::default_logger_raw()->set_level(*lvl);
    return previous;
}

Result<spdlog::level::level_enum, std::string> parse_level(std::string_view name) {
    for (const auto& [n, lvl] : kLevels) {
        if (n == name) {
            return lvl;
        }
    }
    return unexpected(std::string("unknown log level '") + std::string(name) +
                      "' (expected trace, debug, info, warn, error, critical or off)");
}

void init(std::string_view program, spdlog::level::level_enum level, Format format) {
    auto logger = std::make_shared<spdlog::logger>(
        std::string(program), std::make_shared<spdlog::sinks::stderr_sink_mt>());
    if (format == Format::kJson) {
        logger->set_formatter(make_json_formatter());
    } else {
        logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %n: %v");
    }
    logger->set_level(level);
    spdlog::set_default_logger(std::move(logger));
}

}  // namespace hag::log
