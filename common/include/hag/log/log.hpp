// Logging for every hag program: spdlog, one line per event. Callers put the session (NAI) and
// path (BID) into the message; this header only sets levels and the pattern.
#pragma once

#include <spdlog/spdlog.h>

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

// Sets up the default logger for a program: stderr, pattern with time, level and program name.
void init(std::string_view program, spdlog::level::level_enum level = spdlog::level::info);

}  // namespace hag::log
