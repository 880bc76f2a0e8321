// Dirty-set coalescing, the programmed view and batch planning (control/dpclient/).
#include <catch2/catch.hpp>

#include "dpclient/dirty_set.hpp"
#include "dpclient/programmed.hpp"
#include "dpclient/session_convert.hpp"
#include "hag/v1/dataplane_digest.hpp"
#include "mgmt/convert.hpp"

using namespace hag::control;
using namespace hag::control::dpclient;

namespace {

Session make(int n) {
    Session s;
    s.nai = "user" + std::to_string(n) + "@example.net";
    s.home_prefixes.push_back(*mgmt::parse_prefix("2001:db8:" + std::to_string(n + 1) + "::/64"));
    s.uplink_gre_key = 0x100u + static_cast<std::uint32_t>(n);
    Path p;
    p.bid = 1;
    p.mag_id = "mag" + std::to_string(n);
    p.coa = *mgmt::parse_coa("2001:db8:ff::" + std::to_string(n + 1));
    p.expires_at = 100;
    s.paths.push_back(p);
    return s;
}

}  // namespace

TEST_CASE("dirty set: marks coalesce, ids leave oldest first, take is bounded") {
    DirtySet d;
    CHECK(d.empty());
    CHECK(d.mark(5));
    CHECK(d.mark(2));
    CHECK_FALSE(d.mark(5));  // already dirty
    CHECK(d.mark(9));
    for (int i = 0; i < 1000; ++i) {
        d.mark(2);
    }
    CHECK(d.size() == 3);
    CHECK(d.contains(9));
    CHECK_FALSE(d.contains(3));
    CHECK_FALSE(d.contains(100000));
    CHECK(d.take(2) == std::vector<std::uint32_t>{5, 2});
    CHECK(d.size() == 1);
    CHECK(d.mark(5));  // dirty again after it was taken
    CHECK(d.take(10) == std::vector<std::uint32_t>{9, 5});
    CHECK(d.take(10).empty());
    d.mark(1);
    d.mark(0);
    d.clear();
    CHECK(d.empty());
    CHECK(d.mark(0));
}

TEST_CASE("dirty set fed by cache events: memory bounded by the sessions, not the changes") {
    BindingCache cache(100);
    DirtySet d;
    cache.add_observer([&](const CacheEvent& ev) { d.mark(ev.id); });
    for (int i = 0; i < 10; ++i) {
        REQUIRE(cache.insert(make(i)));
    }
    // 10,000 changes (heartbeat flaps) to 10 sessions while nothing is pushed.
    for (int round = 0; round < 500; ++round) {
        for (int i = 0; i < 10; ++i) {
            REQUIRE(cache.set_path_live(make(i).nai, 1, round % 2 == 0));
        }
    }
    CHECK(d.size() == 10);
    REQUIRE(cache.remove(make(3).nai));
    CHECK(d.size() == 10);
}

TEST_CASE("programmed set: running digest is the sum of what it holds") {
    ProgrammedSet p;
    CHECK(p.digest() == 0);
    p.set(1, 10);
    p.set(2, 20);
    CHECK(p.digest() == 30);
    p.set(1, 15);
    CHECK(p.digest() == 35);
    CHECK(p.size() == 2);
    p.erase(2);
    p.erase(7);  // unknown: nothing
    CHECK(p.digest() == 15);
    CHECK(p.get(1) == std::optional<std::uint64_t>(15));
    CHECK_FALSE(p.get(2));
    p.set(3, ~std::uint64_t{0});  // wraps modulo 2^64
    CHECK(p.digest() == 14);
    p.clear();
    CHECK(p.size() == 0);
    CHECK(p.digest() == 0);
}

TEST_CASE("plan_batch: upserts, removes only of what the data plane holds, no-op refreshes") {
    BindingCache cache(100);
    for (int i = 0; i < 3; ++i) {
        REQUIRE(cache.insert(make(i)));
    }
    const auto id0 = *cache.session_id(make(0).nai);
    const auto id1 = *cache.session_id(make(1).nai);
    const auto id2 = *cache.session_id(make(2).nai);
    ProgrammedSet programmed;
    RejectedMap rejected;

    auto b = plan_batch({id0, id1}, cache, programmed, rejected);
    REQUIRE(b.request.changes_size() == 2);
    CHECK(b.request.changes(0).upsert().nai() == make(0).nai);
    CHECK(b.request.changes(1).upsert().id() == id1);
    REQUIRE(b.effects.size() == 2);
    CHECK(b.effects[0].digest ==
          hag::v1::session_digest(to_dp_session(*cache.find(make(0).nai), id0)));
    commit(b.effects, programmed);
    CHECK(programmed.size() == 2);

    // A re-registration that only refreshes lifetimes changes nothing for the data plane.
    Session s0 = *cache.find(make(0).nai);
    s0.paths[0].expires_at += 3600;
    REQUIRE(cache.update(s0));
    b = plan_batch({id0}, cache, programmed, rejected);
    CHECK(b.request.changes_size() == 0);

    // A liveness change does.
    REQUIRE(cache.set_path_live(make(0).nai, 1, false));
    b = plan_batch({id0}, cache, programmed, rejected);
    REQUIRE(b.request.changes_size() == 1);
    CHECK_FALSE(b.request.changes(0).upsert().paths(0).live());

    // Removed: a remove for a held session; nothing for one the data plane never got.
    REQUIRE(cache.remove(make(1).nai));
    REQUIRE(cache.remove(make(2).nai));
    b = plan_batch({id1, id2}, cache, programmed, rejected);
    REQUIRE(b.request.changes_size() == 1);
    CHECK(b.request.changes(0).has_remove());
    CHECK(b.request.changes(0).remove() == id1);
    CHECK_FALSE(b.effects[0].digest);
    commit(b.effects, programmed);
    CHECK(programmed.size() == 1);
    CHECK_FALSE(programmed.get(id1));

    // A refused session is not offered again until it changes.
    REQUIRE(cache.insert(make(5)));
    const auto id5 = *cache.session_id(make(5).nai);
    b = plan_batch({id5}, cache, programmed, rejected);
    REQUIRE(b.effects.size() == 1);
    rejected[id5] = *b.effects[0].digest;
    CHECK(plan_batch({id5}, cache, programmed, rejected).effects.empty());
    REQUIRE(cache.set_path_live(make(5).nai, 1, false));
    CHECK(plan_batch({id5}, cache, programmed, rejected).effects.size() == 1);
}

TEST_CASE("a slot reused by another session is an upsert that replaces it") {
    BindingCache cache(100);
    REQUIRE(cache.insert(make(0)));
    const auto id = *cache.session_id(make(0).nai);
    ProgrammedSet programmed;
    RejectedMap rejected;
    commit(plan_batch({id}, cache, programmed, rejected).effects, programmed);
    REQUIRE(cache.remove(make(0).nai));
    REQUIRE(cache.insert(make(7)));
    REQUIRE(*cache.session_id(make(7).nai) == id);
    auto b = plan_batch({id}, cache, programmed, rejected);
    REQUIRE(b.request.changes_size() == 1);
    CHECK(b.request.changes(0).upsert().nai() == make(7).nai);
}
