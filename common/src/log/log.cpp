#include "hag/log/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>

#include <array>
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

}  // namespace

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

void init(std::string_view program, spdlog::level::level_enum level) {
    auto logger = std::make_shared<spdlog::logger>(
        std::string(program), std::make_shared<spdlog::sinks::stderr_sink_mt>());
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %n: %v");
    logger->set_level(level);
    spdlog::set_default_logger(std::move(logger));
}

}  // namespace hag::log
