// Logging for every hag program: spdlog, one line per event. Callers put the session (NAI) and
// path (BID) into the message; this header only sets levels and the line format.
#pragma once

#include <spdlog/formatter.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <string_view>

#include "hag/result.hpp"

namespace hag::log {

// Parses "trace", "debug", "info", "warn", "error", "critical" or "off".
Result<spdlog::level::level_enum, std::string> parse_level(std::string_view name);

// The name parse_level accepts for a level ("warn", "error", ...).
std::string_view level_name(spdlog::level::level_enum level);

// The default logger's level now, by name.
std::string current_level();

// Changes the default logger's level at run time (thread-safe: spdlog keeps it atomic);
// returns the previous level's name, or parse_level's error (level unchanged).
Result<std::string, std::string> set_level(std::string_view name);

// How a log line looks: kText "2026-01-02T03:04:05.678 info hag-control: message" (for people),
// kJson one JSON object per line (for log collectors, docs/observability.md):
//   {"time":"2026-01-02T03:04:05.678901Z","level":"info","logger":"hag-control",
//    "message":"...","pid":1234}
enum class Format { kText, kJson };

// Parses "text" or "json".
Result<Format, std::string> parse_format(std::string_view name);

// The name parse_format accepts for a format.
std::string_view format_name(Format format);

// Appends s to out as the inside of a JSON string (no quotes): '"', '\\' and control characters
// (U+0000-U+001F, U+007F) escaped, valid UTF-8 kept, each byte that is not part of valid
// UTF-8 (stray continuation bytes, overlong forms, surrogates, code points above U+10FFFF,
// truncated sequences) replaced by \ufffd. The result is always valid UTF-8 without raw control
// bytes, whatever s holds: log messages carry NAIs and other bytes from the network.
void append_json_escaped(std::string& out, std::string_view s);

// The spdlog formatter behind Format::kJson (exposed for tests: give it to any logger).
std::unique_ptr<spdlog::formatter> make_json_formatter();

// Sets up the default logger for a program: stderr, one line per event in the given format with
// time, level and program name.
void init(std::string_view program, spdlog::level::level_enum level = spdlog::level::info,
          Format format = Format::kText);

}  // namespace hag::log
