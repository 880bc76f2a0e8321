// Binding cache: indexes stay consistent on insert/update/erase/expiry; 1,000,000 sessions.
#include <catch2/catch.hpp>
#include <string>

#include "core/binding_cache.hpp"

using namespace hag::control;
using namespace std::chrono_literals;

namespace {
const TimePoint t0{};

IpPrefix hnp(std::uint32_t n) {
    IpPrefix p;
    p.address.bytes = {0x20,
                       0x01,
                       0x0d,
                       0xb8,
                       static_cast<std::uint8_t>(n >> 24),
                       static_cast<std::uint8_t>(n >> 16),
                       static_cast<std::uint8_t>(n >> 8),
                       static_cast<std::uint8_t>(n)};
    p.length = 64;
    return p;
}
IpAddress coa(std::uint8_t last) {
    IpAddress a;
    a.bytes = {0x20, 0x01, 0x0d, 0xb8, 0xff};
    a.bytes[15] = last;
    return a;
}
Session make(std::uint32_t n, MagHandle mag, std::chrono::seconds life, std::uint16_t bid = 1) {
    Session s;
    s.mn_id = *MnId::from("mn" + std::to_string(n) + "@example.net");
    s.add_prefix(hnp(n));
    Path p;
    p.bid = bid;
    p.mag = mag;
    p.coa = coa(static_cast<std::uint8_t>(mag));
    p.lifetime_s = static_cast<std::uint32_t>(life.count());
    p.expires = t0 + life;
    s.add_path(p);
    return s;
}
struct Recorder : BindingObserver {
    std::vector<std::pair<ChangeKind, std::string>> seen;
    void on_binding_change(ChangeKind k, const Session& s) override {
        seen.emplace_back(k, std::string(s.mn_id.view()));
    }
};
}  // namespace

TEST_CASE("insert, lookups by MN-ID, prefix, MAG/BID, CoA; erase keeps indexes consistent") {
    BindingCache bc(10, t0);
    Recorder rec;
    bc.add_observer(&rec);
    MagHandle m1 = bc.intern_mag("mag1.example.net");
    MagHandle m2 = bc.intern_mag("mag2.example.net");
    REQUIRE(bc.intern_mag("mag1.example.net") == m1);
    REQUIRE(bc.mag_name(m2) == "mag2.example.net");

    auto id1 = bc.insert(make(1, m1, 100s));
    REQUIRE(id1.ok());
    auto id2 = bc.insert(make(2, m1, 100s));
    REQUIRE(id2.ok());
    REQUIRE(bc.insert(make(1, m2, 100s)).error() == CacheError::kDuplicateMnId);
    Session clash = make(3, m2, 100s);
    clash.prefix_slots[0] = hnp(1);
    REQUIRE(bc.insert(clash).error() == CacheError::kPrefixInUse);

    REQUIRE(bc.find_by_mn_id("mn1@example.net")->id == *id1);
    REQUIRE(bc.find_by_prefix(hnp(2))->id == *id2);
    REQUIRE(bc.find_by_prefix(hnp(3)) == nullptr);
    REQUIRE(bc.find_by_mag_bid(m1, 1, "mn2@example.net")->id == *id2);
    REQUIRE(bc.find_by_mag_bid(m1, 2, "mn2@example.net") == nullptr);
    REQUIRE(bc.sessions_by_mag(m1).size() == 2);
    REQUIRE(bc.sessions_by_coa(coa(static_cast<std::uint8_t>(m1))).size() == 2);

    // Second path from another MAG (multiple CoAs), then update.
    Session s = *bc.get(*id1);
    Path p2 = s.paths()[0];
    p2.bid = 2;
    p2.mag = m2;
    p2.coa = coa(static_cast<std::uint8_t>(m2));
    REQUIRE(s.add_path(p2));
    REQUIRE(bc.update(s).ok());
    REQUIRE(bc.get(*id1)->path_count == 2);
    REQUIRE(bc.sessions_by_mag(m2).size() == 1);
    REQUIRE(bc.counters().paths == 3);

    REQUIRE(bc.erase(*id1).ok());
    REQUIRE(bc.erase(*id1).error() == CacheError::kNotFound);
    REQUIRE(bc.get(*id1) == nullptr);
    REQUIRE(bc.find_by_mn_id("mn1@example.net") == nullptr);
    REQUIRE(bc.find_by_prefix(hnp(1)) == nullptr);
    REQUIRE(bc.sessions_by_mag(m2).empty());
    REQUIRE(bc.sessions_by_mag(m1).size() == 1);
    REQUIRE(bc.size() == 1);
    REQUIRE(bc.counters().paths == 1);

    // Slot reuse gives a new generation; the stale id stays invalid.
    auto id3 = bc.insert(make(3, m2, 100s));
    REQUIRE(id3->slot == id1->slot);
    REQUIRE(id3->generation != id1->generation);
    REQUIRE(bc.get(*id1) == nullptr);

    REQUIRE(rec.seen.size() == 5);
    REQUIRE(rec.seen[2].first == ChangeKind::kUpdated);
    REQUIRE(rec.seen[3] == std::make_pair(ChangeKind::kDeleted, std::string("mn1@example.net")));
}

TEST_CASE("max_sessions and sessions without path are refused") {
    BindingCache bc(1, t0);
    Session empty;
    empty.mn_id = *MnId::from("x");
    REQUIRE(bc.insert(empty).error() == CacheError::kNoPath);
    REQUIRE(bc.insert(make(1, 0, 10s)).ok());
    REQUIRE(bc.insert(make(2, 0, 10s)).error() == CacheError::kFull);
    REQUIRE_FALSE(MnId::from(std::string(200, 'a')).has_value());
}

TEST_CASE("expiry removes paths, then sessions; re-registration postpones it") {
    BindingCache bc(10, t0);
    Recorder rec;
    bc.add_observer(&rec);
    auto a = bc.insert(make(1, 0, 10s));
    auto b = bc.insert(make(2, 0, 5000s));  // beyond one lap of the wheel
    Session s = *bc.get(*a);
    Path p2 = s.paths()[0];
    p2.bid = 7;
    p2.expires = t0 + 30s;
    s.add_path(p2);
    REQUIRE(bc.update(s).ok());

    REQUIRE(bc.expire(t0 + 9s) == 0);
    REQUIRE(bc.get(*a)->path_count == 2);
    REQUIRE(bc.expire(t0 + 10s) == 0);  // path bid 1 gone, bid 7 left
    REQUIRE(bc.get(*a)->path_count == 1);
    REQUIRE(bc.get(*a)->paths()[0].bid == 7);

    // Re-registration of bid 7 until t0+60s.
    s = *bc.get(*a);
    s.paths()[0].expires = t0 + 60s;
    REQUIRE(bc.update(s).ok());
    REQUIRE(bc.expire(t0 + 31s) == 0);
    REQUIRE(bc.get(*a) != nullptr);
    REQUIRE(bc.expire(t0 + 60s) == 1);
    REQUIRE(bc.get(*a) == nullptr);
    REQUIRE(rec.seen.back() ==
            std::make_pair(ChangeKind::kExpired, std::string("mn1@example.net")));

    REQUIRE(bc.expire(t0 + 4999s) == 0);
    REQUIRE(bc.get(*b) != nullptr);
    REQUIRE(bc.expire(t0 + 5000s) == 1);
    REQUIRE(bc.size() == 0);
    REQUIRE(bc.counters().expired == 2);
}

TEST_CASE("paging from a cursor returns every session once") {
    BindingCache bc(100, t0);
    for (std::uint32_t i = 0; i < 25; ++i)
        REQUIRE(bc.insert(make(i, 0, 100s)).ok());
    REQUIRE(bc.erase(bc.find_by_mn_id("mn3@example.net")->id).ok());
    std::size_t total = 0, pages = 0;
    std::uint64_t cursor = 0;
    do {
        auto page = bc.list(cursor, 10);
        total += page.sessions.size();
        cursor = page.next_cursor;
        ++pages;
    } while (cursor != 0 && pages < 100);
    REQUIRE(total == 24);
}

TEST_CASE("1,000,000 sessions: lookups and expiry") {
    constexpr std::uint32_t kN = 1'000'000;
    BindingCache bc(kN, t0);
    MagHandle mag = bc.intern_mag("mag.example.net");
    for (std::uint32_t i = 0; i < kN; ++i) {
        // Lifetimes spread over 1..100 s.
        auto r = bc.insert(make(i, mag, std::chrono::seconds(1 + i % 100)));
        if (!r.ok())
            FAIL("insert " << i);
    }
    REQUIRE(bc.size() == kN);
    for (std::uint32_t i = 0; i < kN; i += 9973) {
        const Session* s = bc.find_by_mn_id("mn" + std::to_string(i) + "@example.net");
        REQUIRE(s != nullptr);
        REQUIRE(bc.find_by_prefix(hnp(i)) == s);
    }
    REQUIRE(bc.expire(t0 + 50s) == kN / 2);
    REQUIRE(bc.size() == kN / 2);
    REQUIRE(bc.find_by_mn_id("mn0@example.net") == nullptr);   // lifetime 1 s
    REQUIRE(bc.find_by_mn_id("mn99@example.net") != nullptr);  // lifetime 100 s
    REQUIRE(bc.expire(t0 + 100s) == kN / 2);
    REQUIRE(bc.size() == 0);
    REQUIRE(bc.sessions_by_mag(mag).empty());
}
