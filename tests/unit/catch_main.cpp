// The Catch2 v2 runner main for all unit-test executables.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
