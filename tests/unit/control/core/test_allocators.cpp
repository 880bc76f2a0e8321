#include <catch2/catch.hpp>

#include <set>

#include "core/allocators.hpp"
#include "core/config.hpp"

using namespace hag::control;

TEST_CASE("prefix pool hands out distinct aligned prefixes until exhausted", "[alloc]") {
    PrefixPool pool("p", *parse_prefix("2001:db8:100::/60"), 64);
    CHECK(pool.capacity() == 16);
    std::set<std::string> got;
    for (int i = 0; i < 16; ++i) {
        auto p = pool.allocate();
        REQUIRE(p.ok());
        CHECK(p->length == 64);
        CHECK(pool.contains(*p));
        got.insert(to_string(*p));
    }
    CHECK(got.size() == 16);
    CHECK(got.count("2001:db8:100::/64") == 1);
    CHECK(got.count("2001:db8:100:f::/64") == 1);
    CHECK(pool.allocate().error() == AllocError::kExhausted);
    REQUIRE(pool.release(*parse_prefix("2001:db8:100:7::/64")).ok());
    CHECK(to_string(*pool.allocate()) == "2001:db8:100:7::/64");
    CHECK(pool.release(*parse_prefix("2001:db8:200::/64")).error() == AllocError::kNotAllocated);
}

TEST_CASE("requested prefixes are honoured when free and inside the pool", "[alloc]") {
    PrefixPool pool("p", *parse_prefix("2001:db8:100::/56"), 64);
    REQUIRE(pool.claim(*parse_prefix("2001:db8:100:0::/64")).ok());
    CHECK(pool.claim(*parse_prefix("2001:db8:100:0::/64")).error() == AllocError::kInUse);
    CHECK(pool.claim(*parse_prefix("2001:db8:101::/64")).error() == AllocError::kNotInPool);
    CHECK(pool.claim(*parse_prefix("2001:db8:100:5::/72")).error() == AllocError::kNotInPool);
    // The claimed index is skipped by allocate.
    CHECK(to_string(*pool.allocate()) == "2001:db8:100:1::/64");
}

TEST_CASE("GRE keys are unique, never zero, reusable after release", "[alloc]") {
    GreKeyAllocator keys;
    std::set<std::uint32_t> got;
    for (int i = 0; i < 1000; ++i) {
        auto k = keys.allocate();
        REQUIRE(k.ok());
        CHECK(*k != 0);
        got.insert(*k);
    }
    CHECK(got.size() == 1000);
    CHECK(keys.claim(5).error() == AllocError::kInUse);
    CHECK(keys.claim(0).error() == AllocError::kNotInPool);
    REQUIRE(keys.release(5).ok());
    CHECK(keys.release(5).error() == AllocError::kNotAllocated);
    REQUIRE(keys.claim(5).ok());
    CHECK(keys.in_use() == 1000);
}
