#include <catch2/catch.hpp>

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
