#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "core/binding_cache.hpp"
#include "core/config.hpp"

using namespace hag::control;

namespace {

Prefix pfx(const char* text) {
    return *parse_prefix(text);
}
CareOfAddress coa(const char* text) {
    return *parse_address(text);
}

Path path(std::uint16_t bid, const char* mag, const char* c, Seconds expires) {
    Path p;
    p.bid = bid;
    p.mag_id = mag;
    p.coa = coa(c);
    p.expires_at = expires;
    return p;
}

Session session(const std::string& nai, const char* hnp, std::vector<Path> paths) {
    Session s;
    s.nai = nai;
    s.home_prefixes.push_back(pfx(hnp));
    s.paths = std::move(paths);
    return s;
}

}  // namespace

TEST_CASE("every index finds a session after insert and forgets it after remove", "[cache]") {
    BindingCache bc;
    REQUIRE(bc.insert(session("cpe1@hag.example", "2001:db8:1::/64",
                              {path(1, "mag1", "2001:db8:a::1", 100),
                               path(2, "mag1", "192.0.2.7", 100)}))
                .ok());
    const Session* s = bc.find("cpe1@hag.example");
    REQUIRE(s != nullptr);
    CHECK(bc.find_by_prefix(pfx("2001:db8:1::/64")) == s);
    CHECK(bc.find_by_path("mag1", 1) == s);
    CHECK(bc.find_by_path("mag1", 2) == s);
    CHECK(bc.find_by_path("mag2", 1) == nullptr);
    CHECK(bc.find_by_coa(coa("192.0.2.7")) == std::vector<const Session*>{s});
    CHECK(bc.find_by_coa(coa("2001:db8:a::1")).size() == 1);
    CHECK(s->find_path(2)->coa.is_ipv4());
    CHECK(to_string(s->find_path(2)->coa) == "192.0.2.7");

    auto removed = bc.remove("cpe1@hag.example");
    REQUIRE(removed.ok());
    CHECK(removed->nai == "cpe1@hag.example");
    CHECK(bc.size() == 0);
    CHECK(bc.find("cpe1@hag.example") == nullptr);
    CHECK(bc.find_by_prefix(pfx("2001:db8:1::/64")) == nullptr);
    CHECK(bc.find_by_path("mag1", 1) == nullptr);
    CHECK(bc.find_by_coa(coa("192.0.2.7")).empty());
    CHECK(bc.remove("cpe1@hag.example").error() == CacheError::kNotFound);
}

TEST_CASE("conflicting inserts and updates are refused and change nothing", "[cache]") {
    BindingCache bc;
    REQUIRE(
        bc.insert(session("a", "2001:db8:1::/64", {path(1, "mag1", "2001:db8:a::1", 100)})).ok());
    CHECK(bc.insert(session("a", "2001:db8:9::/64", {path(9, "mag9", "2001:db8:a::9", 100)}))
              .error() == CacheError::kAlreadyExists);
    CHECK(bc.insert(session("b", "2001:db8:1::/64", {path(2, "mag1", "2001:db8:a::2", 100)}))
              .error() == CacheError::kPrefixInUse);
    // One MAG may hold paths of several mobile nodes under one BID (another hag node acting as
    // a MAG, docs/scale-out.md): a path is (MAG id, MN-ID, BID).
    REQUIRE(
        bc.insert(session("b", "2001:db8:2::/64", {path(1, "mag1", "2001:db8:a::2", 100)})).ok());
    CHECK(bc.find_all_by_path("mag1", 1).size() == 2);
    REQUIRE(bc.remove("b").ok());
    CHECK(bc.find_all_by_path("mag1", 1).size() == 1);
    CHECK(bc.insert(session("b", "2001:db8:2::/64", {})).error() == CacheError::kNoPaths);
    CHECK(bc.insert(session("b", "2001:db8:2::/64",
                            {path(3, "mag1", "2001:db8:a::2", 100),
                             path(3, "mag2", "2001:db8:a::3", 100)}))
              .error() == CacheError::kDuplicateBid);
    CHECK(bc.update(session("zz", "2001:db8:2::/64", {path(3, "m", "2001:db8::1", 1)})).error() ==
          CacheError::kNotFound);
    CHECK(bc.size() == 1);
    CHECK(bc.find_by_prefix(pfx("2001:db8:2::/64")) == nullptr);

    BindingCache small(1);
    REQUIRE(small.insert(session("a", "2001:db8:1::/64", {path(1, "m", "2001:db8::1", 1)})).ok());
    CHECK(small.insert(session("b", "2001:db8:2::/64", {path(1, "n", "2001:db8::2", 1)})).error() ==
          CacheError::kCapacity);
}

TEST_CASE("update re-indexes paths and prefixes; remove_path drops one path", "[cache]") {
    BindingCache bc;
    REQUIRE(
        bc.insert(session("a", "2001:db8:1::/64", {path(1, "mag1", "2001:db8:a::1", 100)})).ok());
    Session s = *bc.find("a");
    s.paths.push_back(path(2, "mag1", "2001:db8:b::1", 100));
    s.home_prefixes = {pfx("2001:db8:5::/64")};
    REQUIRE(bc.update(s).ok());
    CHECK(bc.find_by_path("mag1", 2) != nullptr);
    CHECK(bc.find_by_prefix(pfx("2001:db8:1::/64")) == nullptr);
    CHECK(bc.find_by_prefix(pfx("2001:db8:5::/64")) != nullptr);

    auto last = bc.remove_path("a", 1);
    REQUIRE(last.ok());
    CHECK_FALSE(*last);
    CHECK(bc.find_by_path("mag1", 1) == nullptr);
    CHECK(bc.find_by_coa(coa("2001:db8:a::1")).empty());
    CHECK(bc.find("a")->paths.size() == 1);
    CHECK(bc.remove_path("a", 7).error() == CacheError::kNotFound);
    last = bc.remove_path("a", 2);
    REQUIRE(last.ok());
    CHECK(*last);
    CHECK(bc.size() == 0);
}

TEST_CASE("per-path and whole-session expiry from the timing wheel", "[cache][expiry]") {
    BindingCache bc;
    std::vector<std::string> events;
    bc.add_observer([&](const CacheEvent& e) {
        static const char* names[] = {"added", "updated", "removed", "expired"};
        events.push_back(std::string(names[static_cast<int>(e.kind)]) + ":" + e.session->nai);
    });
    CHECK(bc.expire(0) == 0);
    REQUIRE(
        bc.insert(session("a", "2001:db8:1::/64",
                          {path(1, "m", "2001:db8:a::1", 10), path(2, "m", "2001:db8:a::2", 20)}))
            .ok());
    REQUIRE(bc.insert(session("b", "2001:db8:2::/64", {path(3, "m", "2001:db8:a::3", 5000)})).ok());
    CHECK(bc.expire(9) == 0);
    CHECK(bc.find("a")->paths.size() == 2);
    CHECK(bc.expire(10) == 1);  // path 1 of a
    CHECK(bc.find("a")->paths.size() == 1);
    CHECK(bc.find_by_path("m", 1) == nullptr);

    // A refresh moves the expiry: the old wheel entry must not expire it.
    Session a = *bc.find("a");
    a.paths[0].expires_at = 40;
    REQUIRE(bc.update(a).ok());
    CHECK(bc.expire(25) == 0);
    CHECK(bc.find("a") != nullptr);
    CHECK(bc.expire(40) == 1);
    CHECK(bc.find("a") == nullptr);
    // b lives beyond one turn of the wheel (4096 s) and survives a long pause before it.
    CHECK(bc.expire(4999) == 0);
    CHECK(bc.find("b") != nullptr);
    CHECK(bc.expire(5000) == 1);
    CHECK(bc.size() == 0);
    CHECK(events == std::vector<std::string>{"added:a", "added:b", "updated:a", "updated:a",
                                             "expired:a", "expired:b"});
}

TEST_CASE("re-registrations do not pile up expiry entries; the right ones still expire",
          "[cache][expiry]") {
    BindingCache bc;
    REQUIRE(bc.insert(session("a", "2001:db8:1::/64",
                              {path(1, "m", "2001:db8:a::1", 3600),
                               path(2, "m", "2001:db8:a::2", 3700)}))
                .ok());
    REQUIRE(bc.insert(session("b", "2001:db8:2::/64", {path(3, "m", "2001:db8:a::3", 50)})).ok());
    // 100,000 refreshes of a, each a second later: one entry per PBU for a whole lifetime
    // before (1.6 MB here, 576 MB at 10k PBU/s and one hour).
    for (Seconds t = 1; t <= 100'000; ++t) {
        Session a = *bc.find("a");
        a.paths[0].expires_at = 3600 + t;
        a.paths[1].expires_at = 3700 + t;
        REQUIRE(bc.update(a).ok());
    }
    CHECK(bc.expiry_entries() <= 4);
    // A refresh to an earlier expiry is honoured (a second entry, the earlier one).
    Session b = *bc.find("b");
    b.paths[0].expires_at = 20;
    REQUIRE(bc.update(b).ok());
    CHECK(bc.expire(19) == 0);
    CHECK(bc.expire(20) == 1);
    CHECK(bc.find("b") == nullptr);
    // a's entry fires at its first due (3601), finds it refreshed, schedules the next one.
    CHECK(bc.expire(3601) == 0);
    CHECK(bc.find("a")->paths.size() == 2);
    CHECK(bc.expire(103'599) == 0);
    CHECK(bc.expire(103'600) == 1);  // path 1
    CHECK(bc.find("a")->paths.size() == 1);
    CHECK(bc.expire(103'700) == 1);  // path 2, the session with it
    CHECK(bc.find("a") == nullptr);
    CHECK(bc.size() == 0);
    // A slot reused by a new session gets its own entry.
    REQUIRE(
        bc.insert(session("c", "2001:db8:3::/64", {path(4, "m", "2001:db8:a::4", 103'710)})).ok());
    CHECK(bc.expire(103'709) == 0);
    CHECK(bc.expire(103'710) == 1);
    CHECK(bc.size() == 0);
}

TEST_CASE("paging visits every session exactly once, also with removals between pages",
          "[cache][paging]") {
    BindingCache bc;
    for (int i = 0; i < 1000; ++i) {
        auto hnp = fmt::format("2001:db8:{:x}::/64", i + 1);
        auto c = fmt::format("2001:db8:ffff::{:x}", i + 1);
        REQUIRE(bc.insert(session(fmt::format("n{}", i), hnp.c_str(),
                                  {path(1, ("mag" + std::to_string(i)).c_str(), c.c_str(), 100)}))
                    .ok());
    }
    std::set<std::string> seen;
    std::size_t visits = 0;
    std::uint64_t cursor = 0;
    int pages = 0;
    do {
        cursor = bc.for_each_page(cursor, 64, [&](const Session& s) {
            seen.insert(s.nai);
            ++visits;
        });
        // Remove a session not yet visited: it must then never be seen.
        if (pages == 2) {
            REQUIRE(bc.remove("n999").ok());
        }
        ++pages;
    } while (cursor != 0 && pages < 100);
    CHECK(visits == 999);
    CHECK(seen.size() == 999);
    CHECK(seen.count("n999") == 0);
    CHECK(pages == 16);
}

TEST_CASE("paging with ids gives each session's slot", "[cache]") {
    BindingCache bc(100);
    for (int i = 0; i < 10; ++i) {
        auto hnp = fmt::format("2001:db8:{:x}::/64", i + 1);
        auto c = fmt::format("2001:db8:ffff::{:x}", i + 1);
        REQUIRE(bc.insert(session(fmt::format("i{}", i), hnp.c_str(),
                                  {path(1, ("mag" + std::to_string(i)).c_str(), c.c_str(), 100)}))
                    .ok());
    }
    REQUIRE(bc.remove("i3").ok());  // a hole in the slots
    std::size_t visits = 0;
    std::uint64_t cursor = 0;
    int pages = 0;
    do {
        cursor = bc.for_each_page_id(cursor, 4, [&](std::uint32_t id, const Session& s) {
            CHECK(bc.session_id(s.nai) == id);
            CHECK(bc.at(id) == &s);
            ++visits;
        });
        ++pages;
    } while (cursor != 0 && pages < 10);
    CHECK(visits == 9);
    CHECK(pages == 3);
}

TEST_CASE("one million sessions fit, are found and expire", "[cache][scale]") {
    BindingCache bc(1'000'000);
    for (std::uint32_t i = 0; i < 1'000'000; ++i) {
        Session s;
        s.nai = fmt::format("cpe{}@hag.example", i);
        Prefix p;
        p.addr[0] = 0x20;
        p.addr[1] = 0x01;
        p.addr[2] = 0x0d;
        p.addr[3] = 0xb8;
        p.addr[4] = static_cast<std::uint8_t>(i >> 16);
        p.addr[5] = static_cast<std::uint8_t>(i >> 8);
        p.addr[6] = static_cast<std::uint8_t>(i);
        p.length = 64;
        s.home_prefixes.push_back(p);
        Path pa;
        pa.bid = 1;
        pa.mag_id = "mag" + std::to_string(i % 1000);
        pa.coa.addr = p.addr;
        pa.coa.addr[15] = 1;
        pa.bid = static_cast<std::uint16_t>(i / 1000 + 1);
        pa.expires_at = 100 + (i % 50);
        s.paths.push_back(pa);
        REQUIRE(bc.insert(std::move(s)).ok());
    }
    CHECK(bc.size() == 1'000'000);
    CHECK(bc.find("cpe123456@hag.example")->nai == "cpe123456@hag.example");
    CHECK(bc.find_by_path("mag456", 124)->nai == "cpe123456@hag.example");
    CHECK(bc.expire(99) == 0);
    CHECK(bc.expire(124) == 1'000'000 / 50 * 25);
    CHECK(bc.expire(200) == 1'000'000 / 50 * 25);
    CHECK(bc.size() == 0);
}

TEST_CASE("host_bits_clear: a prefix is canonical when nothing beyond its length is set",
          "[cache]") {
    Ipv6Address a{};
    CHECK(host_bits_clear(a, 0));
    CHECK(host_bits_clear(a, 128));
    a[0] = 0x80;  // the first bit
    CHECK_FALSE(host_bits_clear(a, 0));
    CHECK(host_bits_clear(a, 1));
    a = {};
    a[7] = 0x01;  // bit 63, the last of a /64
    CHECK(host_bits_clear(a, 64));
    CHECK_FALSE(host_bits_clear(a, 63));
    a = {};
    a[15] = 0x01;  // bit 127
    CHECK(host_bits_clear(a, 128));
    CHECK_FALSE(host_bits_clear(a, 127));
    CHECK_FALSE(host_bits_clear(a, 64));
    a.fill(0xff);
    CHECK(host_bits_clear(a, 128));
    CHECK_FALSE(host_bits_clear(a, 120));
}
