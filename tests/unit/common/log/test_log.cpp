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
