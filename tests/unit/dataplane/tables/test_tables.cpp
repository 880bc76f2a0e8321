#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>
#include <thread>
#include <vector>

#include "../eal_fixture.hpp"
#include "tables/session_table.hpp"

using namespace hag::dp;

namespace {

std::array<std::uint8_t, 16> v6(std::uint16_t a, std::uint16_t b, std::uint16_t c, std::uint16_t d,
                                std::uint16_t last = 0) {
    return {static_cast<std::uint8_t>(a >> 8),
            static_cast<std::uint8_t>(a),
            static_cast<std::uint8_t>(b >> 8),
            static_cast<std::uint8_t>(b),
            static_cast<std::uint8_t>(c >> 8),
            static_cast<std::uint8_t>(c),
            static_cast<std::uint8_t>(d >> 8),
            static_cast<std::uint8_t>(d),
            0,
            0,
            0,
            0,
            0,
            0,
            static_cast<std::uint8_t>(last >> 8),
            static_cast<std::uint8_t>(last)};
}

SessionConfig one_path(std::uint32_t key, std::uint16_t subnet, std::uint16_t coa_last) {
    SessionConfig c;
    c.uplink_key = key;
    c.n_paths = 1;
    c.paths[0].bid = 1;
    c.paths[0].local = IpAddr::v6(v6(0x2001, 0xdb8, 0xff, 0, 1));
    c.paths[0].coa = IpAddr::v6(v6(0x2001, 0xdb8, 0xaaaa, 0, coa_last));
    c.paths[0].downlink_key = key + 1;
    c.n_prefixes = 1;
    c.prefixes[0] = {IpAddr::v6(v6(0x2001, 0xdb8, subnet, 0)), 64};
    return c;
}

// one_path(100, 1, 1) and a second path (BID 2, care-of ...:2, downlink key 500).
SessionConfig two_paths() {
    SessionConfig c = one_path(100, 1, 1);
    c.n_paths = 2;
    c.paths[1] = c.paths[0];
    c.paths[1].bid = 2;
    c.paths[1].coa = IpAddr::v6(v6(0x2001, 0xdb8, 0xaaaa, 0, 2));
    c.paths[1].downlink_key = 500;
    return c;
}

struct Env {
    std::unique_ptr<Rcu> rcu;
    std::unique_ptr<SessionTable> t;
    explicit Env(const char* name, std::uint32_t cap = 1024) {
        test::ensure_eal();
        rcu = std::move(Rcu::create(4).value());
        t = std::move(SessionTable::create(name, cap, *rcu).value());
    }
};

// The writer alternates configs a and b of session 3 while a reader thread copies one of its
// sequence-locked forms without pause (`copy(w)`: false when the lock refused the copy, a
// packet then taking the general path). Every copy let through must be whole (`whole(w)`: one
// of the two configs' forms). Bounded: the writer stops after 2,000,000 upserts even if the
// reader never got the CPU.
template <typename Words, typename Copy, typename Whole>
void race_form_reader(Env& env, const SessionConfig& a, const SessionConfig& b, Copy copy,
                      Whole whole) {
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> copies{0}, refused{0}, torn{0};
    std::thread reader([&] {
        while (!stop.load(std::memory_order_relaxed)) {
            Words w;
            if (copy(w)) {
                if (!whole(w)) {
                    torn.fetch_add(1, std::memory_order_relaxed);
                }
                copies.fetch_add(1, std::memory_order_relaxed);
            } else {
                refused.fetch_add(1, std::memory_order_relaxed);
            }
        }
    });
    for (int i = 0; i < 20000 || copies.load() < 10000; ++i) {
        REQUIRE(env.t->upsert(3, i % 2 == 0 ? a : b).ok());
        if (i % 64 == 0) {
            env.t->reclaim();
        }
        if (i > 2'000'000) {
            break;
        }
    }
    stop = true;
    reader.join();
    env.rcu->synchronize();
    INFO("copies " << copies.load() << ", refused " << refused.load());
    CHECK(torn.load() == 0);
    CHECK(copies.load() >= 10000);
}

// A form's sequence lock (`version` of session 9's record, `read` its locked copy): an upsert of
// the same config `c` leaves the version as it was; a reader that sees it odd (the writer in
// the middle) gets no form, and gets it again once the version is even.
template <typename Read>
void check_version_lock(SessionTable& t, std::atomic<std::uint32_t>& version,
                        const SessionConfig& c, Read read) {
    const std::uint32_t v = version.load();
    CHECK(v % 2 == 0);
    CHECK(v != 0);
    REQUIRE(t.upsert(9, c).ok());
    CHECK(version.load() == v);
    version.store(v + 1);
    CHECK_FALSE(read());
    version.store(v);
    CHECK(read());
}

}  // namespace

TEST_CASE("sessions are found by destination, key and care-of address", "[tables]") {
    Env env("t_basic");
    auto& t = *env.t;
    REQUIRE(t.upsert(7, one_path(100, 1, 1)).ok());
    SessionTable::SessionId id = 0;
    CHECK(t.lookup_destination(IpAddr::v6(v6(0x2001, 0xdb8, 1, 0, 0x42)), id));
    CHECK(id == 7);
    CHECK_FALSE(t.lookup_destination(IpAddr::v6(v6(0x2001, 0xdb8, 2, 0, 0x42)), id));
    CHECK(t.lookup_uplink_key(100, id));
    CHECK(id == 7);
    CHECK_FALSE(t.lookup_uplink_key(101, id));
    CHECK_FALSE(t.lookup_uplink_key(0, id));
    CHECK(t.lookup_care_of(IpAddr::v6(v6(0x2001, 0xdb8, 0xaaaa, 0, 1)), id));
    REQUIRE(t.config(7) != nullptr);
    CHECK(t.config(7)->paths[0].downlink_key == 101);

    // Update: new prefix and key; the old ones stop matching.
    auto c = one_path(200, 3, 1);
    REQUIRE(t.upsert(7, c).ok());
    CHECK_FALSE(t.lookup_uplink_key(100, id));
    CHECK(t.lookup_uplink_key(200, id));
    CHECK_FALSE(t.lookup_destination(IpAddr::v6(v6(0x2001, 0xdb8, 1, 0, 0x42)), id));
    CHECK(t.lookup_destination(IpAddr::v6(v6(0x2001, 0xdb8, 3, 0, 0x42)), id));

    REQUIRE(t.remove(7).ok());
    CHECK(t.config(7) == nullptr);
    CHECK_FALSE(t.lookup_uplink_key(200, id));
    CHECK_FALSE(t.lookup_destination(IpAddr::v6(v6(0x2001, 0xdb8, 3, 0, 0x42)), id));
    CHECK_FALSE(t.remove(7).ok());
    env.rcu->synchronize();
    CHECK(env.rcu->pending() == 0);
}

TEST_CASE("an update that replaces every tunnel starts a new sequence space", "[tables]") {
    Env env("t_incarnation");
    auto& t = *env.t;
    REQUIRE(t.upsert(7, one_path(100, 1, 1)).ok());
    const auto first = t.state(7).incarnation.load();
    CHECK(first != 0);
    // A refresh (same path) and a second path next to it: the same sequence space.
    REQUIRE(t.upsert(7, one_path(100, 1, 1)).ok());
    CHECK(t.state(7).incarnation.load() == first);
    const SessionConfig two = two_paths();
    REQUIRE(t.upsert(7, two).ok());
    CHECK(t.state(7).incarnation.load() == first);
    // The first path gone, the second kept: still the same space.
    auto second = two;
    second.n_paths = 1;
    second.paths[0] = two.paths[1];
    REQUIRE(t.upsert(7, second).ok());
    CHECK(t.state(7).incarnation.load() == first);
    // Every tunnel new (the router re-registered with a new downlink key, or at a new care-of
    // address): a new incarnation; the counters stay (the same session).
    t.uplink_traffic(7, 0).packets.store(9);
    REQUIRE(t.upsert(7, one_path(100, 1, 2)).ok());
    const auto moved = t.state(7).incarnation.load();
    CHECK(moved != first);
    auto rekeyed = one_path(100, 1, 2);
    rekeyed.paths[0].downlink_key = 777;
    REQUIRE(t.upsert(7, rekeyed).ok());
    CHECK(t.state(7).incarnation.load() != moved);
    CHECK(t.totals(7).uplink_packets == 9);
    env.rcu->synchronize();
}

TEST_CASE("a session's totals are its paths' counters, kept across updates, reset with it",
          "[tables]") {
    Env env("t_totals");
    auto& t = *env.t;
    const SessionConfig two = two_paths();
    REQUIRE(t.upsert(7, two).ok());
    // Paths 0 and 1 count their downlink in the SessionHot record, the others in the state.
    t.downlink_traffic(7, 0).packets.store(3);
    t.downlink_traffic(7, 0).bytes.store(300);
    t.downlink_traffic(7, 1).packets.store(4);
    t.downlink_traffic(7, 1).bytes.store(400);
    t.downlink_traffic(7, 5).packets.store(10);
    t.downlink_traffic(7, 5).bytes.store(1000);
    t.uplink_traffic(7, 1).packets.store(5);
    t.uplink_traffic(7, 1).bytes.store(500);
    CHECK(&t.downlink_traffic(7, 1) == &t.hot(7).downlink[1]);
    CHECK(&t.downlink_traffic(7, 5) == &t.state(7).downlink_more[3]);
    CHECK(&t.uplink_traffic(7, 1) == &t.state(7).uplink[1]);
    CHECK(t.totals(7).downlink_packets == 17);
    CHECK(t.totals(7).downlink_bytes == 1700);
    CHECK(t.totals(7).uplink_packets == 5);
    CHECK(t.totals(7).uplink_bytes == 500);
    // The second path removed: what it carried stays in the session's totals.
    REQUIRE(t.upsert(7, one_path(100, 1, 1)).ok());
    CHECK(t.totals(7).downlink_packets == 17);
    CHECK(t.totals(7).uplink_bytes == 500);
    // A new session on the id starts from zero, its sequence numbers too.
    t.hot(7).next_downlink_seq.store(99);
    REQUIRE(t.remove(7).ok());
    REQUIRE(t.upsert(7, one_path(100, 1, 1)).ok());
    CHECK(t.totals(7).downlink_packets == 0);
    CHECK(t.totals(7).downlink_bytes == 0);
    CHECK(t.totals(7).uplink_packets == 0);
    CHECK(t.totals(7).uplink_bytes == 0);
    CHECK(t.hot(7).next_downlink_seq.load() == 0);
    env.rcu->synchronize();
}

TEST_CASE("the first line's copies follow the plan; the config pointer is the state's",
          "[tables]") {
    Env env("t_hotline");
    auto& t = *env.t;
    // Never programmed, and out of range: no config.
    CHECK(t.config(5) == nullptr);
    CHECK(t.config(t.capacity()) == nullptr);
    auto c = one_path(300, 5, 5);
    c.plan_n_order = 7;  // callers' values are overwritten by upsert
    c.plan_first = 6;
    REQUIRE(t.upsert(5, c).ok());
    const SessionConfig* one = t.config(5);
    REQUIRE(one != nullptr);
    CHECK(one == t.state(5).config.load());
    CHECK(one->plan_n_order == one->plan.n_order);
    CHECK(one->plan_n_order == 1);
    CHECK(one->plan_first == one->plan.order[0]);
    CHECK(one->plan_first == 0);

    // Three paths, the first not live: two usable, the second path first.
    c.n_paths = 3;
    c.paths[0].live = false;
    for (unsigned i = 1; i < 3; ++i) {
        c.paths[i] = c.paths[0];
        c.paths[i].live = true;
        c.paths[i].bid = static_cast<std::uint16_t>(i + 1);
        c.paths[i].coa =
            IpAddr::v6(v6(0x2001, 0xdb8, 0xaaaa, 0, static_cast<std::uint16_t>(50 + i)));
        c.paths[i].weight = 1000;
    }
    REQUIRE(t.upsert(5, c).ok());
    const SessionConfig* three = t.config(5);
    REQUIRE(three != nullptr);
    CHECK(three != one);
    CHECK(three == t.state(5).config.load());
    CHECK(three == t.downlink_config(5));
    CHECK(three->plan_n_order == three->plan.n_order);
    CHECK(three->plan_n_order == 2);
    CHECK(three->plan_first == three->plan.order[0]);
    CHECK(three->plan_first == 1);

    // No live path: nothing to schedule.
    for (unsigned i = 0; i < 3; ++i) {
        c.paths[i].live = false;
    }
    REQUIRE(t.upsert(5, c).ok());
    CHECK(t.config(5)->plan_n_order == 0);

    REQUIRE(t.remove(5).ok());
    CHECK(t.config(5) == nullptr);
    CHECK(t.state(5).config.load() == nullptr);
    env.rcu->synchronize();
}

TEST_CASE("the fast downlink form: prebuilt headers for one-way sessions, in the hot record",
          "[tables][fast]") {
    Env env("t_fast");
    auto& t = *env.t;
    // The hint the downlink's prefetches go by: in the bucket of the session's first prefix,
    // beside its id (which both lookups return without it).
    auto hint_of = [&](SessionTable::SessionId id) {
        const SessionConfig* cfg = t.config(id);
        if (cfg == nullptr || cfg->n_prefixes == 0) {
            return false;
        }
        const IpAddr* dst = &cfg->prefixes[0].addr;
        SessionTable::SessionId found = 0;
        std::uint64_t hint = 0;
        REQUIRE(t.lookup_destination_bulk(&dst, 1, &found, &hint) == 1);
        CHECK(found == id);
        REQUIRE(t.lookup_destination(*dst, found));
        CHECK(found == id);
        return hint == 1;
    };
    // The form as a reader copies it (fast_form), checked against that hint.
    auto fast_of = [&](SessionTable::SessionId id) {
        FastDownlink f;
        const bool on = t.fast_form(id, f);
        CHECK(on == hint_of(id));
        CHECK(on == f.enabled);
        return f;
    };
    // Where the outer header starts in the right-aligned template.
    auto at = [](const FastDownlink& f) { return f.header.cbegin() + (f.v6_outer ? 2 : 22); };

    // One IPv6 path, static MAC, sequence numbers: Ethernet, IPv6 to the care-of address, GRE
    // with K and S and the downlink key.
    auto c = one_path(320, 9, 9);
    c.paths[0].src_mac = {0x02, 0, 0, 0, 0, 0x01};
    c.paths[0].next_hop_mac = {0x02, 0, 0, 0, 0, 0x02};
    c.paths[0].port = 3;
    c.paths[0].mtu = 1400;
    REQUIRE(t.upsert(9, c).ok());
    FastDownlink f = fast_of(9);
    REQUIRE(f.enabled);
    CHECK(f.v6_outer);
    CHECK(f.sequence);
    CHECK_FALSE(f.resolve_mac);
    CHECK(f.path == 0);
    CHECK(f.port == 3);
    CHECK(f.mtu == 1400);
    CHECK(f.length == 66);
    const std::array<std::uint8_t, 14> l2{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd};
    CHECK(std::all_of(f.header.cbegin(), at(f), [](std::uint8_t b) { return b == 0; }));
    CHECK(std::equal(l2.begin(), l2.end(), at(f)));
    CHECK(at(f)[14 + 6] == 47);
    CHECK(std::equal(c.paths[0].local.bytes.begin(), c.paths[0].local.bytes.end(), at(f) + 14 + 8));
    CHECK(std::equal(c.paths[0].coa.bytes.begin(), c.paths[0].coa.bytes.end(), at(f) + 14 + 24));
    const std::array<std::uint8_t, 8> gre{0x30, 0, 0, 0, 0, 0, 0x01, 0x41};  // key 321
    CHECK(std::equal(gre.begin(), gre.end(), at(f) + 54));
    CHECK(at(f) + 62 == f.header.cend());

    // Rewritten only when it changes; a reader that sees the writer in the middle gets no form
    // and takes the general path.
    check_version_lock(t, t.hot(9).fast_version, c, [&] { return t.fast_form(9, f); });

    // No sequence numbers, a resolved next hop: 62 octets, the MAC left to the packet.
    c.gre_sequence = false;
    c.paths[0].next_hop_mac = {};
    c.paths[0].next_hop = 7;
    REQUIRE(t.upsert(9, c).ok());
    f = fast_of(9);
    REQUIRE(f.enabled);
    CHECK(f.length == 62);
    CHECK(f.resolve_mac);
    CHECK(f.next_hop == 7);
    CHECK(at(f)[54] == 0x20);

    // An IPv4 path: 42 octets, DF, and the header's sum for the checksum.
    c.paths[0].local = IpAddr::v4(198, 51, 100, 1);
    c.paths[0].coa = IpAddr::v4(198, 51, 100, 7);
    c.paths[0].mtu = 0;
    REQUIRE(t.upsert(9, c).ok());
    f = fast_of(9);
    REQUIRE(f.enabled);
    CHECK_FALSE(f.v6_outer);
    CHECK(f.length == 42);
    CHECK(at(f)[14] == 0x45);
    CHECK(at(f)[14 + 6] == 0x40);
    CHECK(at(f)[14 + 9] == 47);
    CHECK(at(f) + 42 == f.header.cend());
    // The header's words summed, folded to 16 bits (the end-around carry).
    std::uint32_t sum = 0x4500u + 0x4000u + 47u + 0xc633u + 0x6401u + 0xc633u + 0x6407u;
    sum = (sum & 0xffff) + (sum >> 16);
    CHECK(f.ipv4_sum == sum);
    CHECK(f.ipv4_sum <= 0xffff);

    // Not one way: two live paths (striped), a flow policy, IP in IP, GRE in UDP, no live path.
    auto two = two_paths();
    REQUIRE(t.upsert(9, two).ok());
    CHECK_FALSE(fast_of(9).enabled);
    two.paths[0].live = false;  // one way again: the second path
    REQUIRE(t.upsert(9, two).ok());
    f = fast_of(9);
    REQUIRE(f.enabled);
    CHECK(f.path == 1);
    CHECK(at(f)[54 + 7] == 500 % 256);
    // One way over a third path: its downlink counters are not in the hot record, so no form.
    auto three = two;
    three.n_paths = 3;
    three.paths[1].live = false;
    three.paths[2] = two.paths[1];
    three.paths[2].live = true;
    three.paths[2].bid = 3;
    three.paths[2].coa = IpAddr::v6(v6(0x2001, 0xdb8, 0xaaaa, 0, 77));
    REQUIRE(t.upsert(9, three).ok());
    CHECK(t.config(9)->plan_first == 2);
    CHECK_FALSE(fast_of(9).enabled);
    two.policy = 2;
    REQUIRE(t.upsert(9, two).ok());
    CHECK_FALSE(fast_of(9).enabled);
    two.policy = 0;
    two.paths[1].tunnel = Tunnel::kIpInIp;
    REQUIRE(t.upsert(9, two).ok());
    CHECK_FALSE(fast_of(9).enabled);
    two.paths[1].tunnel = Tunnel::kGre;
    two.paths[1].live = false;
    REQUIRE(t.upsert(9, two).ok());
    CHECK_FALSE(fast_of(9).enabled);
    c.paths[0].udp_port = 4500;
    REQUIRE(t.upsert(9, c).ok());
    CHECK_FALSE(fast_of(9).enabled);

    // A config moved back into its slot keeps its form (the heap copy's update above, reclaimed).
    c.paths[0].udp_port = 0;
    REQUIRE(t.upsert(9, c).ok());
    env.rcu->synchronize();
    t.reclaim();
    CHECK(t.configs_on_heap() == 0);
    CHECK(fast_of(9).enabled);
    CHECK(t.downlink_config(9) == t.config(9));
    REQUIRE(t.remove(9).ok());
    CHECK(t.state(9).config.load() == nullptr);
    CHECK(t.downlink_config(9) == nullptr);
    CHECK_FALSE(fast_of(9).enabled);
    env.rcu->synchronize();
}

TEST_CASE("the first prefix's copy follows the prefixes", "[tables]") {
    Env env("t_pfirst");
    auto& t = *env.t;
    auto c = one_path(310, 7, 7);
    c.prefix_first = {IpAddr::v4(192, 0, 2, 1), 32};  // a caller's value is overwritten
    REQUIRE(t.upsert(7, c).ok());
    CHECK(t.config(7)->prefix_first == c.prefixes[0]);
    c.prefixes[1] = {IpAddr::v4(192, 0, 2, 8), 30};
    c.n_prefixes = 2;
    std::swap(c.prefixes[0], c.prefixes[1]);
    REQUIRE(t.upsert(7, c).ok());
    CHECK(t.config(7)->prefix_first == c.prefixes[0]);
    c.n_prefixes = 0;
    REQUIRE(t.upsert(7, c).ok());
    CHECK(t.config(7)->prefix_first == IpPrefix{});
    REQUIRE(t.remove(7).ok());
    env.rcu->synchronize();
}

TEST_CASE("IpPrefix::contains compares exactly the first length bits", "[tables]") {
    // Against a bit-by-bit reference, for every length, with addresses that differ from the
    // prefix in one bit (before, at and after the length) or not at all, both families.
    auto bit = [](const IpAddr& a, unsigned i) { return (a.bytes[i / 8] >> (7 - i % 8)) & 1; };
    auto reference = [&](const IpPrefix& p, const IpAddr& a) {
        if (p.addr.family != a.family) {
            return false;
        }
        for (unsigned i = 0; i < p.length; ++i) {
            if (bit(p.addr, i) != bit(a, i)) {
                return false;
            }
        }
        return true;
    };
    IpAddr base = IpAddr::v6(v6(0x2001, 0xdb8, 0x1234, 0x5678, 0x9abc));
    base.bytes[9] = 0x5a;
    unsigned checked = 0;
    for (const Family f : {Family::kIpv6, Family::kIpv4}) {
        const unsigned max = f == Family::kIpv6 ? 128 : 32;
        IpAddr pa = base;
        pa.family = f;
        if (f == Family::kIpv4) {
            std::fill(pa.bytes.begin() + 4, pa.bytes.end(), 0);
        }
        for (unsigned len = 0; len <= max; ++len) {
            const IpPrefix p{pa, static_cast<std::uint8_t>(len)};
            CHECK(p.contains(pa));
            for (unsigned flip = 0; flip < max; ++flip) {
                IpAddr a = pa;
                a.bytes[flip / 8] =
                    static_cast<std::uint8_t>(a.bytes[flip / 8] ^ (0x80 >> (flip % 8)));
                CHECK(p.contains(a) == reference(p, a));
                ++checked;
            }
            IpAddr other = pa;
            other.family = f == Family::kIpv6 ? Family::kIpv4 : Family::kIpv6;
            CHECK_FALSE(p.contains(other));
        }
    }
    CHECK(checked == 129 * 128 + 33 * 32);
}

TEST_CASE("owner_add adds like fetch_add and wraps alike", "[tables]") {
    std::atomic<std::uint64_t> packets{41};
    CHECK(owner_add(packets, std::uint64_t{1}) == 41);
    CHECK(packets.load() == 42);
    CHECK(owner_add(packets, std::uint64_t{1000}) == 42);
    CHECK(packets.load() == 1042);
    std::atomic<std::uint32_t> seq{UINT32_MAX};
    CHECK(owner_add(seq, 1U) == UINT32_MAX);
    CHECK(seq.load() == 0);  // the GRE sequence number wraps as the locked add did
}

TEST_CASE("longest prefix wins across /56, /64 and IPv4 /32 and /24", "[tables]") {
    Env env("t_lpm");
    auto& t = *env.t;
    auto a = one_path(1, 0x100, 1);
    a.prefixes[0] = {IpAddr::v6(v6(0x2001, 0xdb8, 0x100, 0)), 56};
    auto b = one_path(2, 0x142, 2);  // 2001:db8:100:42::/64, inside a's /56
    b.prefixes[0] = {IpAddr::v6(v6(0x2001, 0xdb8, 0x100, 0x42)), 64};
    b.n_prefixes = 2;
    b.prefixes[1] = {IpAddr::v4(192, 0, 2, 0), 24};
    auto c = one_path(3, 0x300, 3);
    c.prefixes[0] = {IpAddr::v4(192, 0, 2, 9), 32};
    REQUIRE(t.upsert(1, a).ok());
    REQUIRE(t.upsert(2, b).ok());
    REQUIRE(t.upsert(3, c).ok());
    SessionTable::SessionId id = 99;
    CHECK(t.lookup_destination(IpAddr::v6(v6(0x2001, 0xdb8, 0x100, 0x42, 5)), id));
    CHECK(id == 2);
    CHECK(t.lookup_destination(IpAddr::v6(v6(0x2001, 0xdb8, 0x100, 0x43, 5)), id));
    CHECK(id == 1);
    CHECK(t.lookup_destination(IpAddr::v4(192, 0, 2, 9), id));
    CHECK(id == 3);
    CHECK(t.lookup_destination(IpAddr::v4(192, 0, 2, 10), id));
    CHECK(id == 2);
    CHECK_FALSE(t.lookup_destination(IpAddr::v4(192, 0, 3, 10), id));
}

TEST_CASE("bulk lookups answer as the single ones, mixed families and lengths", "[tables]") {
    // The stages look a burst up at once (lookup_destination_bulk, lookup_uplink_key_bulk): the
    // same longest-prefix answers, misses and key 0 as one lookup at a time, in any order.
    Env env("t_bulk");
    auto& t = *env.t;
    auto a = one_path(1, 0x100, 1);
    a.prefixes[0] = {IpAddr::v6(v6(0x2001, 0xdb8, 0x100, 0)), 56};
    auto b = one_path(2, 0x142, 2);
    b.prefixes[0] = {IpAddr::v6(v6(0x2001, 0xdb8, 0x100, 0x42)), 64};  // inside a's /56
    b.n_prefixes = 2;
    b.prefixes[1] = {IpAddr::v4(192, 0, 2, 0), 24};
    auto c = one_path(3, 0x300, 3);
    c.prefixes[0] = {IpAddr::v4(192, 0, 2, 9), 32};  // inside b's /24
    REQUIRE(t.upsert(10, a).ok());
    REQUIRE(t.upsert(20, b).ok());
    REQUIRE(t.upsert(30, c).ok());
    for (std::uint32_t i = 0; i < 100; ++i) {  // more /64s, so the hash has more than a bucket
        REQUIRE(t.upsert(100 + i, one_path(1000 + i, static_cast<std::uint16_t>(0x1000 + i),
                                           static_cast<std::uint16_t>(0x1000 + i)))
                    .ok());
    }
    std::vector<IpAddr> dsts;
    for (unsigned k = 0; k < SessionTable::kBulkMax; ++k) {  // a full bulk, then more below
        switch (k % 7) {
            case 0:
                dsts.push_back(IpAddr::v6(v6(0x2001, 0xdb8, 0x100, 0x42, k)));
                break;  // b
            case 1:
                dsts.push_back(IpAddr::v6(v6(0x2001, 0xdb8, 0x100, 0x43, k)));
                break;  // a
            case 2:
                dsts.push_back(IpAddr::v4(192, 0, 2, 9));
                break;  // c
            case 3:
                dsts.push_back(IpAddr::v4(192, 0, 2, static_cast<std::uint8_t>(k)));
                break;
            case 4:
                dsts.push_back(IpAddr::v4(198, 51, 100, 1));
                break;  // no session
            case 5:
                dsts.push_back(IpAddr::v6(v6(0x2001, 0xdb8, 0x200, 0, k)));
                break;  // none
            default:
                dsts.push_back(
                    IpAddr::v6(v6(0x2001, 0xdb8, static_cast<std::uint16_t>(0x1000 + k), 0, 1)));
        }
    }
    for (unsigned n : {1u, 7u, 32u, SessionTable::kBulkMax}) {
        std::vector<const IpAddr*> ptrs;
        for (unsigned k = 0; k < n; ++k) {
            ptrs.push_back(&dsts[k]);
        }
        std::vector<SessionTable::SessionId> ids(n, 9999);
        const std::uint64_t found = t.lookup_destination_bulk(ptrs.data(), n, ids.data());
        for (unsigned k = 0; k < n; ++k) {
            SessionTable::SessionId one = 7777;
            const bool hit = t.lookup_destination(dsts[k], one);
            INFO("n " << n << " address " << k);
            CHECK(((found >> k) & 1U) == (hit ? 1U : 0U));
            if (hit) {
                CHECK(ids[k] == one);
            }
        }
        CHECK((n == 64 || (found >> n) == 0));
    }
    // Keys: known, unknown, 0 (never a key), repeated.
    const std::vector<std::uint32_t> keys{1, 2, 3, 0, 4, 1000, 1099, 1100, 2, 0xffffffffu};
    std::vector<SessionTable::SessionId> ids(keys.size(), 9999);
    const std::uint64_t found =
        t.lookup_uplink_key_bulk(keys.data(), static_cast<unsigned>(keys.size()), ids.data());
    for (std::size_t k = 0; k < keys.size(); ++k) {
        SessionTable::SessionId one = 7777;
        const bool hit = t.lookup_uplink_key(keys[k], one);
        INFO("key " << keys[k]);
        CHECK(((found >> k) & 1U) == (hit ? 1U : 0U));
        if (hit) {
            CHECK(ids[k] == one);
        }
    }
    CHECK(found == 0b101100111);  // 1, 2, 3, 1000, 1099, 2
    std::uint32_t none = 0;
    CHECK(t.lookup_uplink_key_bulk(&none, 1, ids.data()) == 0);
    CHECK(t.lookup_destination_bulk(nullptr, 0, ids.data()) == 0);
}

TEST_CASE("a delegated /56 and an IPv4 /28 route every address of them to the session",
          "[tables][dmnp]") {
    // RFC 7148 delegated prefixes are session prefixes like the HNP: the whole prefix, first
    // and last addresses included, finds the session; the neighbours on either side do not.
    Env env("t_dmnp");
    auto& t = *env.t;
    auto s = one_path(1, 0x100, 1);  // HNP 2001:db8:100::/64
    s.n_prefixes = 3;
    s.prefixes[1] = {IpAddr::v6(v6(0x2001, 0xdb8, 0xd00, 0x100)), 56};  // 2001:db8:d00:100::/56
    s.prefixes[2] = {IpAddr::v4(192, 0, 2, 144), 28};                   // 192.0.2.144/28
    REQUIRE(t.upsert(4, s).ok());
    SessionTable::SessionId id = 99;
    for (std::uint16_t sub = 0x100; sub <= 0x1ff; ++sub) {  // every /64 of the /56
        id = 99;
        CHECK(t.lookup_destination(IpAddr::v6(v6(0x2001, 0xdb8, 0xd00, sub, 0x1234)), id));
        CHECK(id == 4);
    }
    auto last = v6(0x2001, 0xdb8, 0xd00, 0x1ff);
    std::fill(last.begin() + 8, last.end(), 0xff);
    CHECK(t.lookup_destination(IpAddr::v6(last), id));
    CHECK(id == 4);
    CHECK_FALSE(t.lookup_destination(IpAddr::v6(v6(0x2001, 0xdb8, 0xd00, 0xff, 1)), id));
    CHECK_FALSE(t.lookup_destination(IpAddr::v6(v6(0x2001, 0xdb8, 0xd00, 0x200, 1)), id));
    for (std::uint8_t h = 144; h < 160; ++h) {
        id = 99;
        CHECK(t.lookup_destination(IpAddr::v4(192, 0, 2, h), id));
        CHECK(id == 4);
    }
    CHECK_FALSE(t.lookup_destination(IpAddr::v4(192, 0, 2, 143), id));
    CHECK_FALSE(t.lookup_destination(IpAddr::v4(192, 0, 2, 160), id));
    // Removing the session removes the whole prefix.
    REQUIRE(t.remove(4).ok());
    CHECK_FALSE(t.lookup_destination(IpAddr::v6(v6(0x2001, 0xdb8, 0xd00, 0x180, 1)), id));
    CHECK_FALSE(t.lookup_destination(IpAddr::v4(192, 0, 2, 150), id));
}

TEST_CASE("inconsistent or colliding sessions are refused with nothing changed", "[tables]") {
    Env env("t_refuse");
    auto& t = *env.t;
    REQUIRE(t.upsert(1, one_path(10, 1, 1)).ok());
    CHECK(t.upsert(2, one_path(10, 2, 2)).error().find("key 10 belongs to session 1") !=
          std::string::npos);
    CHECK(t.upsert(2, one_path(11, 1, 2)).error().find("belongs to session 1") !=
          std::string::npos);
    auto bad = one_path(12, 5, 5);
    bad.n_paths = 0;
    CHECK_FALSE(t.upsert(2, bad).ok());
    bad = one_path(12, 5, 5);
    bad.paths[0].local = IpAddr::v4(192, 0, 2, 1);  // family mismatch
    CHECK_FALSE(t.upsert(2, bad).ok());
    bad = one_path(12, 5, 5);
    bad.n_paths = 2;
    bad.paths[1] = bad.paths[0];  // duplicate BID
    CHECK_FALSE(t.upsert(2, bad).ok());
    CHECK_FALSE(t.upsert(5000, one_path(13, 6, 6)).ok());  // beyond capacity
    CHECK(t.config(2) == nullptr);
    CHECK(t.size() == 1);
    SessionTable::SessionId id = 0;
    CHECK_FALSE(t.lookup_uplink_key(12, id));
}

TEST_CASE("100k sessions", "[tables][scale]") {
    Env env("t_100k", 100'000);
    auto& t = *env.t;
    for (std::uint32_t i = 0; i < 100'000; ++i) {
        auto c = one_path(i + 1, 0, 0);
        c.prefixes[0].addr.bytes[4] = static_cast<std::uint8_t>(i >> 16);
        c.prefixes[0].addr.bytes[5] = static_cast<std::uint8_t>(i >> 8);
        c.prefixes[0].addr.bytes[6] = static_cast<std::uint8_t>(i);
        c.paths[0].coa.bytes[12] = static_cast<std::uint8_t>(i >> 16);
        c.paths[0].coa.bytes[13] = static_cast<std::uint8_t>(i >> 8);
        c.paths[0].coa.bytes[14] = static_cast<std::uint8_t>(i);
        auto r = t.upsert(i, c);
        REQUIRE(r.ok());
    }
    CHECK(t.size() == 100'000);
    std::uint32_t misses = 0;
    for (std::uint32_t i = 0; i < 100'000; i += 7) {
        SessionTable::SessionId id = 0;
        if (!t.lookup_uplink_key(i + 1, id) || id != i) {
            ++misses;
        }
    }
    CHECK(misses == 0);
}

TEST_CASE("readers never miss stable entries while the writer churns others", "[tables][rcu]") {
    Env env("t_rcu", 4096);
    auto& t = *env.t;
    for (std::uint32_t i = 0; i < 1000; ++i) {
        auto c = one_path(i + 1, static_cast<std::uint16_t>(i + 1), 1);
        REQUIRE(t.upsert(i, c).ok());
    }
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> lookups{0}, failures{0};
    env.rcu->register_reader(0);
    std::thread reader([&] {
        std::uint32_t i = 0;
        while (!stop.load(std::memory_order_relaxed)) {
            SessionTable::SessionId id = 0;
            const std::uint32_t k = i % 1000;
            const SessionConfig* cfg = nullptr;
            if (!t.lookup_uplink_key(k + 1, id) || id != k || (cfg = t.config(id)) == nullptr ||
                cfg->uplink_key != k + 1) {
                failures.fetch_add(1);
            }
            lookups.fetch_add(1, std::memory_order_relaxed);
            if (++i % 64 == 0) {
                env.rcu->quiescent(0);
            }
        }
        env.rcu->unregister_reader(0);
    });
    // Churn: add, update (re-key) and remove sessions 1000..1999, and update stable ones in place.
    for (int round = 0; round < 20; ++round) {
        for (std::uint32_t i = 1000; i < 2000; ++i) {
            auto r =
                t.upsert(i, one_path(100000 + i + round, static_cast<std::uint16_t>(i + 1), 2));
            INFO((r.ok() ? std::string() : r.error()));
            REQUIRE(r.ok());
        }
        for (std::uint32_t i = 0; i < 1000; i += 10) {
            auto c = one_path(i + 1, static_cast<std::uint16_t>(i + 1), 1);
            c.paths[0].weight = static_cast<std::uint32_t>(round);
            REQUIRE(t.upsert(i, c).ok());
        }
        for (std::uint32_t i = 1000; i < 2000; ++i) {
            REQUIRE(t.remove(i).ok());
        }
        t.reclaim();
    }
    while (lookups.load() < 100000) {
        std::this_thread::yield();
    }
    stop = true;
    reader.join();
    env.rcu->synchronize();
    CHECK(failures.load() == 0);
    CHECK(lookups.load() >= 100000);
    CHECK(t.size() == 1000);
}

TEST_CASE("a reader of the fast form never sees a torn one while the writer rewrites it",
          "[tables][fast][rcu]") {
    // Two one-way configs of session 3 whose forms differ in every field that can: the writer
    // alternates them while a reader thread copies the form without pause. Every copy the
    // sequence lock lets through must be exactly one of the two; a copy it refuses is a
    // packet taking the general path, never a wrong header.
    Env env("t_fastlock");
    auto& t = *env.t;
    auto a = one_path(100, 1, 1);
    auto b = one_path(200, 1, 2);
    b.gre_sequence = false;
    b.paths[0].port = 2;
    b.paths[0].mtu = 1400;
    b.paths[0].src_mac = {0x02, 1, 2, 3, 4, 5};
    b.paths[0].local = IpAddr::v6(v6(0x2001, 0xdb8, 0xbbbb, 0, 1));
    REQUIRE(t.upsert(3, a).ok());
    FastDownlink fa, fb;
    REQUIRE(t.fast_form(3, fa));
    REQUIRE(t.upsert(3, b).ok());
    REQUIRE(t.fast_form(3, fb));
    const FastWords wa = fast_words(fa), wb = fast_words(fb);
    auto same = [](const FastWords& x, const FastWords& y) {
        return std::memcmp(x.meta, y.meta, sizeof x.meta) == 0 &&
               std::memcmp(x.header, y.header, sizeof x.header) == 0;
    };
    REQUIRE_FALSE(same(wa, wb));
    race_form_reader<FastWords>(
        env, a, b, [&](FastWords& w) { return t.fast_form(3, w); },
        [&](const FastWords& w) { return same(w, wa) || same(w, wb); });
}

TEST_CASE("the fast uplink form: the first path's care-of address and the first prefix",
          "[tables][fast][uplink]") {
    Env env("t_upform");
    auto& t = *env.t;
    auto form_of = [&](SessionTable::SessionId id) {
        UplinkWords w;
        const bool on = t.uplink_form(id, w);
        if (on) {  // the prefetch pass's hint agrees
            CHECK(t.uplink_hint(id, t.config(id)->paths[0].coa));
        }
        CHECK(on == w.enabled());
        return w;
    };
    auto c = one_path(320, 9, 9);
    c.reorder = ReorderMode::kOn;
    c.reorder_timeout_us = 2500;
    REQUIRE(t.upsert(9, c).ok());
    UplinkWords w = form_of(9);
    REQUIRE(w.enabled());
    CHECK(w.from_coa(c.paths[0].coa));
    CHECK_FALSE(w.from_coa(IpAddr::v6(v6(0x2001, 0xdb8, 0xaaaa, 0, 10))));
    CHECK(w.in_prefix(IpAddr::v6(v6(0x2001, 0xdb8, 9, 0, 0x77))));
    CHECK_FALSE(w.in_prefix(IpAddr::v6(v6(0x2001, 0xdb8, 10, 0, 0x77))));
    CHECK_FALSE(w.in_prefix(IpAddr::v4(198, 51, 100, 1)));  // another family
    CHECK(w.mode() == ReorderMode::kOn);
    CHECK(w.timeout == 2500);
    CHECK(w.live_mask() == 1);
    CHECK(w.prefix_length() == 64);
    CHECK(w.incarnation() == t.state(9).incarnation.load());

    // Rewritten only when it changes; a reader that sees the writer in the middle gets none.
    check_version_lock(t, t.uplink_hot(9).version, c, [&] { return t.uplink_form(9, w); });

    // The general path counts in the state, the form in the record; a path's traffic is the sum.
    CHECK(&t.uplink_traffic(9, 0) == &t.state(9).uplink[0]);
    t.uplink_traffic(9, 0).packets.store(4);
    t.uplink_traffic(9, 0).bytes.store(400);
    t.uplink_hot(9).path0.packets.store(3);
    t.uplink_hot(9).path0.bytes.store(300);
    t.uplink_traffic(9, 1).packets.store(1);
    CHECK(t.uplink_counts(9, 0).packets == 7);
    CHECK(t.uplink_counts(9, 0).bytes == 700);
    CHECK(t.uplink_counts(9, 1).packets == 1);
    CHECK(t.totals(9).uplink_packets == 8);
    CHECK(t.totals(9).uplink_bytes == 700);

    // The key's bucket carries the form's hint beside the session id.
    const std::uint32_t key = 320;
    SessionTable::SessionId ids[1] = {};
    std::uint64_t hint = 0;
    auto key_hint = [&] {
        REQUIRE(t.lookup_uplink_key_bulk(&key, 1, ids, &hint) == 1);
        CHECK(ids[0] == 9);
        SessionTable::SessionId one = 0;
        REQUIRE(t.lookup_uplink_key(key, one));
        CHECK(one == 9);
        return hint == 1;
    };
    CHECK(key_hint());

    // A new care-of address everywhere (a new incarnation): the form follows it. IPv4 both
    // ways, a second path that is down.
    auto two = two_paths();
    two.paths[0].coa = IpAddr::v4(198, 51, 100, 7);
    two.paths[0].local = IpAddr::v4(198, 51, 100, 1);
    two.paths[1].live = false;
    two.prefixes[0] = {IpAddr::v4(203, 0, 113, 0), 24};
    REQUIRE(t.upsert(9, two).ok());
    w = form_of(9);
    REQUIRE(w.enabled());
    CHECK(w.from_coa(IpAddr::v4(198, 51, 100, 7)));
    CHECK_FALSE(w.from_coa(two.paths[1].coa));
    CHECK(w.in_prefix(IpAddr::v4(203, 0, 113, 200)));
    CHECK_FALSE(w.in_prefix(IpAddr::v4(203, 0, 114, 1)));
    CHECK(w.live_mask() == 1);
    CHECK(w.incarnation() == t.state(9).incarnation.load());
    two.paths[1].live = true;
    REQUIRE(t.upsert(9, two).ok());
    CHECK(form_of(9).live_mask() == 3);

    // What the general path must answer: no key, GRE in UDP, IP in IP, remote anchors, a
    // flow policy, no prefix.
    auto off = [&](auto change) {
        auto x = one_path(320, 9, 9);
        change(x);
        REQUIRE(t.upsert(9, x).ok());
        return form_of(9).enabled();
    };
    CHECK_FALSE(off([](SessionConfig& x) { x.uplink_key = 0; }));
    CHECK_FALSE(off([](SessionConfig& x) {
        x.paths[0].coa = IpAddr::v4(198, 51, 100, 9);  // NAT traversal is IPv4 only
        x.paths[0].local = IpAddr::v4(198, 51, 100, 1);
        x.paths[0].udp_port = 4500;
    }));
    CHECK_FALSE(off([](SessionConfig& x) { x.n_prefixes = 0; }));
    CHECK_FALSE(off([](SessionConfig& x) { x.paths[0].tunnel = Tunnel::kIpInIp; }));
    CHECK_FALSE(off([](SessionConfig& x) { x.policy = 2; }));
    CHECK_FALSE(key_hint());  // rewritten in place when the form went away
    CHECK_FALSE(off([](SessionConfig& x) {
        x.n_anchors = 1;
        x.n_prefixes = 2;
        x.prefixes[1] = {IpAddr::v6(v6(0x2001, 0xdb8, 0x99, 0)), 64};
        x.anchors[0].prefix = x.prefixes[1];
        x.anchors[0].local = x.paths[0].local;
        x.anchors[0].anchor = IpAddr::v6(v6(0x2001, 0xdb8, 0xeeee, 0, 1));
        x.anchors[0].uplink_key = 900;
        x.anchors[0].downlink_key = 901;
    }));
    CHECK(off([](SessionConfig&) {}));
    CHECK(key_hint());
    // A new session on the id starts its counters at zero, the record's included.
    REQUIRE(t.remove(9).ok());
    REQUIRE(t.upsert(9, one_path(320, 9, 9)).ok());
    CHECK(t.uplink_counts(9, 0).packets == 0);
    CHECK(t.uplink_counts(9, 1).packets == 0);

    REQUIRE(t.remove(9).ok());
    CHECK_FALSE(form_of(9).enabled());
    env.rcu->synchronize();
}

TEST_CASE("a reader of the fast uplink form never sees a torn one while the writer rewrites it",
          "[tables][fast][uplink][rcu]") {
    // As the downlink's test above: two configs of session 3 whose uplink forms differ in every
    // word (care-of address, prefix, reorder, live paths, incarnation), alternated by the
    // writer while a reader copies without pause. A copy the lock lets through is one of the
    // two forms, or the same form with a later incarnation; never a mix of both configs.
    Env env("t_uplock");
    auto& t = *env.t;
    auto a = one_path(100, 1, 1);
    auto b = two_paths();
    b.uplink_key = 200;
    b.paths[0].coa = IpAddr::v4(198, 51, 100, 7);
    b.paths[0].local = IpAddr::v4(198, 51, 100, 1);
    b.paths[0].downlink_key = 201;
    b.paths[1].downlink_key = 202;
    b.prefixes[0] = {IpAddr::v4(203, 0, 113, 0), 24};
    b.reorder = ReorderMode::kOff;
    b.reorder_timeout_us = 999;
    REQUIRE(t.upsert(3, a).ok());
    UplinkWords wa, wb;
    REQUIRE(t.uplink_form(3, wa));
    REQUIRE(t.upsert(3, b).ok());
    REQUIRE(t.uplink_form(3, wb));
    // Everything but the incarnation (each swap of care-of addresses starts a new one).
    auto same = [](const UplinkWords& x, const UplinkWords& y) {
        return (x.meta & 0xffffffffU) == (y.meta & 0xffffffffU) && x.timeout == y.timeout &&
               x.coa[0] == y.coa[0] && x.coa[1] == y.coa[1] && x.prefix[0] == y.prefix[0] &&
               x.prefix[1] == y.prefix[1];
    };
    REQUIRE_FALSE(same(wa, wb));
    REQUIRE(wa.coa[0] != wb.coa[0]);
    REQUIRE(wa.prefix[0] != wb.prefix[0]);
    race_form_reader<UplinkWords>(
        env, a, b, [&](UplinkWords& w) { return t.uplink_form(3, w); },
        [&](const UplinkWords& w) { return same(w, wa) || same(w, wb); });
    // The incarnation went up with each swap and the form carried it.
    UplinkWords w;
    REQUIRE(t.uplink_form(3, w));
    CHECK(w.incarnation() == t.state(3).incarnation.load());
    CHECK(w.incarnation() > wb.incarnation());
}

TEST_CASE("a zero SessionState is a value-initialised one (the slots are zero pages)",
          "[tables][slot]") {
    // SessionTable's slots are never constructed: fresh anonymous memory must read as a
    // default SessionState. Construct one over zeros and check that no byte changed.
    alignas(SessionState) unsigned char buf[sizeof(SessionState)] = {};
    auto* st = ::new (static_cast<void*>(buf)) SessionState{};
    CHECK(st->config.load() == nullptr);
    unsigned char zero[sizeof(SessionState)] = {};
    CHECK(std::memcmp(buf, zero, sizeof buf) == 0);
    // The same for the hot records (no fast form, sequence 0, counters 0).
    alignas(SessionHot) unsigned char hbuf[sizeof(SessionHot)] = {};
    auto* h = ::new (static_cast<void*>(hbuf)) SessionHot{};
    CHECK(h->fast_version.load() == 0);
    unsigned char hzero[sizeof(SessionHot)] = {};
    CHECK(std::memcmp(hbuf, hzero, sizeof hbuf) == 0);
    // And the uplink records.
    alignas(UplinkHot) unsigned char ubuf[sizeof(UplinkHot)] = {};
    auto* u = ::new (static_cast<void*>(ubuf)) UplinkHot{};
    CHECK(u->version.load() == 0);
    unsigned char uzero[sizeof(UplinkHot)] = {};
    CHECK(std::memcmp(ubuf, uzero, sizeof ubuf) == 0);
}

TEST_CASE(
    "configs live in their session's slot; an update in a grace period goes to the heap "
    "and moves back",
    "[tables][slot][rcu]") {
    Env env("t_slot");
    auto& t = *env.t;
    env.rcu->register_reader(1);  // a reader that is not quiescent until told
    auto c = one_path(500, 50, 50);
    REQUIRE(t.upsert(9, c).ok());
    CHECK(t.config(9) == t.config_home(9));  // the first config goes into the slot
    CHECK(t.configs_on_heap() == 0);
    // The slot's buffer is published: the update goes to a heap copy.
    c.paths[0].downlink_key = 777;
    REQUIRE(t.upsert(9, c).ok());
    const SessionConfig* heap = t.config(9);
    CHECK(heap != t.config_home(9));
    CHECK(heap->paths[0].downlink_key == 777);
    CHECK(t.configs_on_heap() == 1);
    // The slot's old config is still what a reader may hold: untouched until a grace period.
    const auto* in_slot = static_cast<const SessionConfig*>(t.config_home(9));
    CHECK(in_slot->paths[0].downlink_key == 501);
    t.reclaim();
    CHECK(t.config(9) == heap);  // the reader has not been quiescent
    // Another update still goes to the heap (the slot's grace period is not over).
    c.paths[0].downlink_key = 778;
    REQUIRE(t.upsert(9, c).ok());
    CHECK(t.config(9) != t.config_home(9));
    CHECK(t.configs_on_heap() == 1);
    env.rcu->quiescent(1);
    t.reclaim();
    // Back in the slot, the same content and plan version.
    REQUIRE(t.config(9) == t.config_home(9));
    CHECK(t.config(9)->paths[0].downlink_key == 778);
    CHECK(t.configs_on_heap() == 0);
    SessionTable::SessionId id = 0;
    CHECK(t.lookup_uplink_key(500, id));
    CHECK(id == 9);
    // Removed while a reader may hold it, then re-added at once: a heap copy, then the slot.
    REQUIRE(t.remove(9).ok());
    CHECK(t.config(9) == nullptr);
    CHECK(t.size() == 0);
    REQUIRE(t.upsert(9, one_path(600, 60, 60)).ok());
    CHECK(t.config(9) != t.config_home(9));
    CHECK(t.size() == 1);
    env.rcu->quiescent(1);
    t.reclaim();
    CHECK(t.config(9) == t.config_home(9));
    CHECK(t.config(9)->uplink_key == 600);
    // Many sessions updated twice in one grace period: all back in their slots afterwards.
    for (std::uint32_t i = 100; i < 300; ++i) {
        REQUIRE(t.upsert(i, one_path(1000 + i, static_cast<std::uint16_t>(i), 1)).ok());
        REQUIRE(t.upsert(i, one_path(2000 + i, static_cast<std::uint16_t>(i), 1)).ok());
    }
    CHECK(t.configs_on_heap() == 200);
    env.rcu->quiescent(1);
    t.reclaim();
    CHECK(t.configs_on_heap() == 0);
    for (std::uint32_t i = 100; i < 300; ++i) {
        REQUIRE(t.config(i) == t.config_home(i));
        CHECK(t.config(i)->uplink_key == 2000 + i);
    }
    env.rcu->unregister_reader(1);
    env.rcu->synchronize();
}
