// Cluster store reads off the signalling thread (control/core/cluster_lookups.hpp): a PBU that
// needs etcd is held while lookup threads read, handed back once the answer is in, and finds
// the answer then; the signalling side never waits for a read. The backend here is a set of
// functions the test controls (a read can be made to wait until the test lets it go).
#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "core/cluster_lookups.hpp"
#include "hag/net/address.hpp"

using namespace hag;
using namespace hag::control;
using namespace std::chrono_literals;

namespace {

// A gate a backend read waits at until the test opens it.
struct Gate {
    std::mutex mu;
    std::condition_variable cv;
    bool open = true;
    void close() {
        std::lock_guard lk(mu);
        open = false;
    }
    void release() {
        {
            std::lock_guard lk(mu);
            open = true;
        }
        cv.notify_all();
    }
    void pass() {
        std::unique_lock lk(mu);
        cv.wait(lk, [&] { return open; });
    }
};

// What the deliver callback was handed (as the daemon's signalling thread would process it).
struct Inbox {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<HeldMessage> got;
    void add(std::vector<HeldMessage> v) {
        {
            std::lock_guard lk(mu);
            for (auto& m : v) {
                got.push_back(std::move(m));
            }
        }
        cv.notify_all();
    }
    // Waits (bounded) for at least n messages.
    std::size_t wait_for(std::size_t n) {
        std::unique_lock lk(mu);
        cv.wait_for(lk, 10s, [&] { return got.size() >= n; });
        return got.size();
    }
};

HeldMessage msg(std::uint8_t tag) {
    HeldMessage m;
    m.mh = {tag, 1, 2, 3};
    m.from.remote = *net::parse_ipv6_address("2001:db8:a::1");
    return m;
}

Session binding(const std::string& nai) {
    Session s;
    s.nai = nai;
    return s;
}

template <class A, class V>
bool is_wait(const V& v, ClusterLookups::Wait w) {
    const auto* p = std::get_if<ClusterLookups::Wait>(&v);
    return p != nullptr && *p == w;
}

}  // namespace

TEST_CASE("a binding read: the PBU is held, handed back, and finds the answer once",
          "[cluster-lookups]") {
    Gate gate;
    std::atomic<int> loads{0};
    Inbox inbox;
    ClusterLookups::Backend b;
    b.load = [&](const std::string& nai) -> ClusterLookups::BindingAnswer {
        gate.pass();
        ++loads;
        if (nai == "absent@example.net") {
            return std::optional<Session>{};
        }
        if (nai == "broken@example.net") {
            return unexpected(std::string("etcd unreachable"));
        }
        return std::optional<Session>{binding(nai)};
    };
    ClusterLookups lk(b, [&](std::vector<HeldMessage> v) { inbox.add(std::move(v)); });

    gate.close();  // the read waits: the signalling side must not
    auto first = lk.binding("cpe@example.net", msg(1));
    CHECK(is_wait<ClusterLookups::BindingAnswer>(first, ClusterLookups::Wait::kQueued));
    // The MAG retransmits while the read is running: one read, both messages held.
    auto again = lk.binding("cpe@example.net", msg(2));
    CHECK(is_wait<ClusterLookups::BindingAnswer>(again, ClusterLookups::Wait::kQueued));
    CHECK(lk.waiting() == 1);
    CHECK(inbox.wait_for(0) == 0);
    gate.release();
    REQUIRE(inbox.wait_for(2) == 2);
    CHECK(inbox.got[0].mh.front() == 1);
    CHECK(inbox.got[1].mh.front() == 2);
    CHECK(inbox.got[0].from.remote == *net::parse_ipv6_address("2001:db8:a::1"));
    CHECK(loads == 1);
    // Handed back: the first PBU takes the answer ...
    auto answer = lk.binding("cpe@example.net", msg(1));
    REQUIRE(std::holds_alternative<ClusterLookups::BindingAnswer>(answer));
    auto& a = std::get<ClusterLookups::BindingAnswer>(answer);
    REQUIRE(a);
    REQUIRE(*a);
    CHECK((*a)->nai == "cpe@example.net");
    // ... which is then gone: a later PBU reads again.
    CHECK(is_wait<ClusterLookups::BindingAnswer>(lk.binding("cpe@example.net", msg(3)),
                                                 ClusterLookups::Wait::kQueued));
    REQUIRE(inbox.wait_for(3) == 3);
    CHECK(loads == 2);

    // No binding, and an error, are answers too (each taken once).
    (void)lk.binding("absent@example.net", msg(4));
    (void)lk.binding("broken@example.net", msg(5));
    REQUIRE(inbox.wait_for(5) == 5);
    auto none = lk.binding("absent@example.net", msg(4));
    REQUIRE(std::holds_alternative<ClusterLookups::BindingAnswer>(none));
    CHECK(static_cast<bool>(std::get<ClusterLookups::BindingAnswer>(none)));
    CHECK(!*std::get<ClusterLookups::BindingAnswer>(none));
    auto err = lk.binding("broken@example.net", msg(5));
    REQUIRE(std::holds_alternative<ClusterLookups::BindingAnswer>(err));
    CHECK(!std::get<ClusterLookups::BindingAnswer>(err));
    const auto c = lk.counters();
    CHECK(c.reads == 4);
    CHECK(c.read_errors == 1);
    CHECK(c.held == 5);
    CHECK(c.delivered == 5);
}

TEST_CASE("reads run in parallel, bounded: held messages per key and keys waiting",
          "[cluster-lookups]") {
    Gate gate;
    Inbox inbox;
    std::atomic<int> running{0}, most{0};
    ClusterLookups::Backend b;
    b.load = [&](const std::string&) -> ClusterLookups::BindingAnswer {
        const int now = ++running;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        gate.pass();
        --running;
        return std::optional<Session>{};
    };
    ClusterLookups lk(
        b, [&](std::vector<HeldMessage> v) { inbox.add(std::move(v)); }, 4);
    gate.close();
    // Six messages for one key while its read waits: the four newest are kept.
    for (std::uint8_t i = 0; i < 6; ++i) {
        (void)lk.binding("one@example.net", msg(i));
    }
    // Keys up to the bound are queued, then refused at once (no unbounded memory, no wait).
    std::size_t queued = 1, full = 0;
    for (std::size_t i = 0; i < ClusterLookups::kMaxKeys + 10; ++i) {
        auto r = lk.binding(fmt::format("k{}@example.net", i), msg(9));
        if (is_wait<ClusterLookups::BindingAnswer>(r, ClusterLookups::Wait::kQueued)) {
            ++queued;
        } else if (is_wait<ClusterLookups::BindingAnswer>(r, ClusterLookups::Wait::kFull)) {
            ++full;
        }
    }
    CHECK(queued == ClusterLookups::kMaxKeys);
    CHECK(full == 11);
    CHECK(lk.waiting() == ClusterLookups::kMaxKeys);
    // Several lookup threads read at once (a slow etcd does not serialise takeovers).
    for (int i = 0; i < 200 && most.load() < 4; ++i) {
        std::this_thread::sleep_for(10ms);
    }
    CHECK(most.load() == 4);
    gate.release();
    REQUIRE(inbox.wait_for(4 + ClusterLookups::kMaxKeys - 1) == 4 + ClusterLookups::kMaxKeys - 1);
    std::vector<int> tags;
    for (const auto& m : inbox.got) {
        if (m.mh.front() != 9) {
            tags.push_back(m.mh.front());
        }
    }
    CHECK(tags == std::vector<int>{2, 3, 4, 5});
    const auto c = lk.counters();
    CHECK(c.held_dropped == 2);
    CHECK(c.full == 11);
    CHECK(lk.waiting() == 0);
}

TEST_CASE("liveness: remembered for a second, errors handed to one PBU, read with a binding",
          "[cluster-lookups]") {
    Inbox inbox;
    std::atomic<int> reads{0};
    std::atomic<bool> fail{false};
    const Ipv6Address a_addr = *net::parse_ipv6_address("2001:db8:1::1");
    ClusterLookups::Backend b;
    b.load = [&](const std::string& nai) -> ClusterLookups::BindingAnswer {
        return std::optional<Session>{binding(nai)};
    };
    b.anchor_of = [&](const std::string&) { return std::string("hag-a"); };
    b.node_address = [&](const std::string& node) -> ClusterLookups::LivenessAnswer {
        ++reads;
        if (fail) {
            return unexpected(std::string("liveness read: etcd unreachable"));
        }
        if (node == "hag-a") {
            return std::optional<Ipv6Address>{a_addr};
        }
        return std::optional<Ipv6Address>{};
    };
    std::atomic<int> keep_alives{0};
    b.keep_alive = [&]() -> Result<void, std::string> {
        ++keep_alives;
        return {};
    };
    ClusterLookups lk(b, [&](std::vector<HeldMessage> v) { inbox.add(std::move(v)); });

    // A binding's anchor is read with it: the resolver that runs next finds it.
    (void)lk.binding("moved@example.net", msg(1));
    REQUIRE(inbox.wait_for(1) == 1);
    auto known = lk.liveness_if_known("hag-a");
    REQUIRE(known);
    REQUIRE(*known);
    CHECK(**known == a_addr);
    CHECK(reads == 1);
    // A peer check: read once, then answered for a second without a read.
    CHECK(!lk.liveness_if_known("hag-c"));
    CHECK(is_wait<ClusterLookups::LivenessAnswer>(lk.liveness("hag-c", msg(2)),
                                                  ClusterLookups::Wait::kQueued));
    REQUIRE(inbox.wait_for(2) == 2);
    for (int i = 0; i < 3; ++i) {
        auto l = lk.liveness("hag-c", msg(2));
        REQUIRE(std::holds_alternative<ClusterLookups::LivenessAnswer>(l));
        CHECK(!*std::get<ClusterLookups::LivenessAnswer>(l));  // dead or unknown
    }
    CHECK(reads == 2);
    // An error is handed to one PBU only: the next one reads again.
    fail = true;
    (void)lk.liveness("hag-d", msg(3));
    REQUIRE(inbox.wait_for(3) == 3);
    auto e = lk.liveness("hag-d", msg(3));
    REQUIRE(std::holds_alternative<ClusterLookups::LivenessAnswer>(e));
    CHECK(!std::get<ClusterLookups::LivenessAnswer>(e));
    CHECK(is_wait<ClusterLookups::LivenessAnswer>(lk.liveness("hag-d", msg(4)),
                                                  ClusterLookups::Wait::kQueued));
    REQUIRE(inbox.wait_for(4) == 4);
    // Keep-alives run on the lookup threads.
    lk.keep_alive();
    for (int i = 0; i < 500 && keep_alives.load() == 0; ++i) {
        std::this_thread::sleep_for(10ms);
    }
    CHECK(keep_alives.load() == 1);
}

// ---- Prefixes and keys of this node that another node's binding holds (Lma::hold_foreign) ----

#include "core/config.hpp"
#include "core/lma.hpp"

namespace {

std::uint64_t lma_counter(const Lma& lma, const std::string& name) {
    for (const auto& [k, v] : lma.counters()) {
        if (k == name) {
            return v;
        }
    }
    return 0;
}

Session foreign_binding(const char* nai, const char* prefix, std::uint32_t key) {
    Session s;
    s.nai = nai;
    s.home_prefixes.push_back(*parse_prefix(prefix));
    s.uplink_gre_key = key;
    Path p;
    p.bid = 1;
    p.mag_id = "mag";
    p.coa = CareOfAddress{*net::parse_ipv6_address("2001:db8:a::1")};
    p.expires_at = 100;
    s.paths.push_back(p);
    return s;
}

}  // namespace

TEST_CASE("another node's binding keeps this node's prefixes and keys claimed until it ends",
          "[cluster-lookups][foreign]") {
    auto cfg = parse_control_config(R"(
lma_addresses: "2001:db8::1"
hnp_pools { name: "main" prefix: "2001:db8:100::/56" assign_length: 64 }
store { uplink_gre_key_min: 1 uplink_gre_key_max: 100 }
allow_unknown_mags: true
)",
                                    "t.conf");
    REQUIRE(cfg);
    const auto ours = Lma::foreign_filter(*cfg);
    CHECK(ours(foreign_binding("x", "2001:db8:100:7::/64", 5000)));  // our pool
    CHECK(ours(foreign_binding("x", "2001:db8:900::/64", 7)));       // our key range
    CHECK(!ours(foreign_binding("x", "2001:db8:900::/64", 5000)));   // nothing of ours

    BindingCache cache{100};
    Lma lma(*cfg, cache, 1);
    lma.hold_foreign(foreign_binding("moved@example.net", "2001:db8:100::/64", 1), 0);
    lma.hold_foreign(foreign_binding("other@example.net", "2001:db8:900::/64", 5000), 0);
    CHECK(lma.foreign_holds() == 1);  // the second holds nothing of this node
    CHECK(lma_counter(lma, "pool.main.in_use") == 1);
    CHECK(lma_counter(lma, "gre_keys.in_use") == 1);
    // Not due before its expiry; due once, then not again while its read is awaited.
    CHECK(lma.foreign_due(99).empty());
    CHECK(lma.foreign_due(100) == std::vector<std::string>{"moved@example.net"});
    CHECK(lma.foreign_due(101).empty());
    // etcd could not be read: kept, asked again in 10 s.
    lma.recheck_foreign("moved@example.net", unexpected(std::string("etcd unreachable")), 101);
    CHECK(lma.foreign_due(110).empty());
    CHECK(lma.foreign_due(111).size() == 1);
    // Still there, refreshed by its node: kept with the new expiry.
    Session later = foreign_binding("moved@example.net", "2001:db8:100::/64", 1);
    later.paths[0].expires_at = 500;
    lma.recheck_foreign("moved@example.net", std::optional<Session>{later}, 111);
    CHECK(lma.foreign_holds() == 1);
    CHECK(lma.foreign_due(499).empty());
    CHECK(lma.foreign_due(500).size() == 1);
    // Gone: the prefix and the key are free again.
    lma.recheck_foreign("moved@example.net", std::optional<Session>{}, 500);
    CHECK(lma.foreign_holds() == 0);
    CHECK(lma_counter(lma, "pool.main.in_use") == 0);
    CHECK(lma_counter(lma, "gre_keys.in_use") == 0);
    // Taken over here: the hold gives way to the binding's own claims.
    lma.hold_foreign(foreign_binding("back@example.net", "2001:db8:100:1::/64", 2), 0);
    CHECK(lma_counter(lma, "pool.main.in_use") == 1);
    REQUIRE(lma.restore(foreign_binding("back@example.net", "2001:db8:100:1::/64", 2),
                        LmaTime{10, 10'000, 0}));
    CHECK(lma.foreign_holds() == 0);
    CHECK(lma_counter(lma, "pool.main.in_use") == 1);
    CHECK(lma_counter(lma, "gre_keys.in_use") == 1);
    // A binding holding what this node has assigned itself: counted as a conflict.
    lma.hold_foreign(foreign_binding("dup@example.net", "2001:db8:100:1::/64", 2), 0);
    CHECK(lma.foreign_holds() == 0);
    CHECK(lma_counter(lma, "cluster.foreign_conflicts") == 2);
}
