// The data plane's side of DataplaneProgrammer: batches checked as a whole and applied all or
// nothing, key and prefix moves, resync, digest, paging, next hops; with a real EAL and real
// tables (no mocks).
#include <google/protobuf/text_format.h>
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <thread>

#include "../eal_fixture.hpp"
#include "hag/v1/dataplane_digest.hpp"
#include "multipath/scheduler.hpp"
#include "programmer/main_loop_queue.hpp"
#include "programmer/programmer.hpp"
#include "runtime/text.hpp"

using namespace hag::dp;
using hag::v1::ApplyRequest;
using hag::v1::DpSession;

namespace {

// Two access ports: "a1" (first, the default) and "a2" owning 2001:db8:ff::2.
struct Env {
    std::unique_ptr<Rcu> rcu;
    std::unique_ptr<SessionTable> table;
    std::unique_ptr<NextHopTable> next_hops;
    hag::v1::DataplaneConfig cfg;
    std::unique_ptr<Programmer> prog;

    explicit Env(const char* name, std::uint32_t capacity = 64) {
        test::ensure_eal();
        rcu = std::move(Rcu::create(4).value());
        table = std::move(SessionTable::create(name, capacity, *rcu).value());
        next_hops = std::make_unique<NextHopTable>(64, *rcu);
        google::protobuf::TextFormat::ParseFromString(R"(
            ports { name: "core" role: CORE next_hop_mac: "02:00:00:00:00:09" }
            ports { name: "a1" role: ACCESS }
            ports { name: "a2" role: ACCESS addresses: "2001:db8:ff::2" }
        )",
                                                      &cfg);
        std::vector<Port> ports = {
            {"core", "net_null0", hag::v1::PortConfig::CORE, 0, {2, 0, 0, 0, 0, 1}, {}},
            {"a1", "net_null1", hag::v1::PortConfig::ACCESS, 1, {2, 0, 0, 0, 0, 2}, {}},
            {"a2", "net_null2", hag::v1::PortConfig::ACCESS, 2, {2, 0, 0, 0, 0, 3}, {}}};
        prog = std::make_unique<Programmer>(*table, *next_hops, cfg, ports);
    }
    ~Env() {
        prog.reset();
        table.reset();
        next_hops.reset();
        rcu->synchronize();
    }
    std::uint32_t owner_of(const std::string& addr) const {
        SessionTable::SessionId id = UINT32_MAX;
        return table->lookup_destination(parse_ip(addr).value(), id) ? id : UINT32_MAX;
    }
    std::uint32_t owner_of_key(std::uint32_t key) const {
        SessionTable::SessionId id = UINT32_MAX;
        return table->lookup_uplink_key(key, id) ? id : UINT32_MAX;
    }
};

DpSession session(std::uint32_t id, std::uint32_t key, const std::string& prefix,
                  const std::string& local = "2001:db8:ff::1",
                  const std::string& coa = "2001:db8:aaaa::1") {
    DpSession s;
    s.set_id(id);
    s.set_nai("cpe" + std::to_string(id) + "@example.net");
    s.set_uplink_key(key);
    s.set_gre_sequence(true);
    if (!prefix.empty()) {
        s.add_prefixes(prefix);
    }
    auto* p = s.add_paths();
    p->set_bid(1);
    p->set_live(true);
    p->set_if_label(1);
    p->set_downlink_key(key + 0x1000);
    p->set_local(local);
    p->set_care_of(coa);
    return s;
}

ApplyRequest batch(std::uint64_t generation, std::vector<DpSession> upserts,
                   std::vector<std::uint32_t> removes = {}) {
    ApplyRequest r;
    r.set_generation(generation);
    for (auto& s : upserts) {
        *r.add_changes()->mutable_upsert() = std::move(s);
    }
    for (auto id : removes) {
        r.add_changes()->set_remove(id);
    }
    return r;
}

std::uint64_t digest_of(const std::vector<DpSession>& v) {
    std::uint64_t d = 0;
    for (const auto& s : v) {
        d += hag::v1::session_digest(s);
    }
    return d;
}

}  // namespace

TEST_CASE("an applied batch programs the table and the digest", "[programmer]") {
    Env env("p_apply");
    auto a = session(1, 100, "2001:db8:1::/64");
    auto b = session(2, 200, "192.0.2.8/29", "192.0.2.254", "198.51.100.7");
    auto r = env.prog->apply(batch(5, {a, b}));
    REQUIRE(r);
    CHECK(r->generation() == 5);
    CHECK(r->sessions() == 2);
    CHECK(env.owner_of("2001:db8:1::42") == 1);
    CHECK(env.owner_of("192.0.2.9") == 2);
    CHECK(env.owner_of_key(200) == 2);
    const auto* c = env.table->config(1);
    REQUIRE(c != nullptr);
    CHECK(c->gre_sequence);
    CHECK(c->paths[0].downlink_key == 100 + 0x1000);
    CHECK(c->paths[0].live);
    CHECK(c->paths[0].port == 1);  // no port owns 2001:db8:ff::1: the first access port
    CHECK(c->paths[0].src_mac == MacAddr{2, 0, 0, 0, 0, 2});
    CHECK(c->paths[0].next_hop != NextHopTable::kNone);  // resolved at run time
    auto d = env.prog->digest();
    CHECK(d.generation() == 5);
    CHECK(d.sessions() == 2);
    CHECK(d.digest() == digest_of({a, b}));
    CHECK(env.prog->stats().batches_applied == 1);
}

TEST_CASE("a path leaves by the access port that owns its local address", "[programmer]") {
    Env env("p_port");
    REQUIRE(env.prog->apply(batch(1, {session(1, 1, "", "2001:db8:ff::2")})));
    CHECK(env.table->config(1)->paths[0].port == 2);
    CHECK(env.table->config(1)->paths[0].src_mac == MacAddr{2, 0, 0, 0, 0, 3});
}

TEST_CASE("generations only go up", "[programmer]") {
    Env env("p_gen");
    REQUIRE(env.prog->apply(batch(7, {session(1, 1, "2001:db8:1::/64")})));
    for (std::uint64_t g : {7u, 6u, 0u}) {
        auto r = env.prog->apply(batch(g, {session(2, 2, "2001:db8:2::/64")}));
        REQUIRE_FALSE(r);
        CHECK(r.error().code == ProgramError::kFailedPrecondition);
        CHECK_THAT(r.error().message, Catch::Contains("generation in force (7)"));
    }
    CHECK(env.table->size() == 1);
    CHECK(env.prog->digest().generation() == 7);
    CHECK(env.prog->stats().batches_rejected == 3);
    CHECK(env.prog->apply(batch(8, {})));  // an empty batch just moves the generation
    CHECK(env.prog->digest().generation() == 8);
}

TEST_CASE("a bad batch changes nothing and names the session", "[programmer]") {
    Env env("p_bad", 16);
    auto a = session(1, 100, "2001:db8:1::/64");
    auto b = session(2, 200, "2001:db8:2::/64");
    REQUIRE(env.prog->apply(batch(1, {a, b})));
    const auto before = env.prog->digest();
    const SessionConfig* a_cfg = env.table->config(1);
    const auto nh_in_use = env.next_hops->in_use().size();

    auto too_many_paths = session(3, 300, "");
    for (unsigned i = 2; i <= kMaxPaths + 1; ++i) {
        auto* p = too_many_paths.add_paths();
        *p = too_many_paths.paths(0);
        p->set_bid(i);
    }
    auto too_many_prefixes = session(3, 300, "2001:db8:30::/64");
    for (int i = 1; i <= static_cast<int>(kMaxPrefixes); ++i) {
        too_many_prefixes.add_prefixes(fmt::format("2001:db8:3{}::/64", i));
    }
    auto bad_prefix = session(3, 300, "2001:db8:3::1/64");  // host bits set
    auto bad_coa = session(3, 300, "", "2001:db8:ff::1", "not-an-address");
    auto mixed = session(3, 300, "", "2001:db8:ff::1", "198.51.100.1");
    auto no_path = session(3, 300, "");
    no_path.clear_paths();
    auto dup_bid = session(3, 300, "");
    *dup_bid.add_paths() = dup_bid.paths(0);
    auto big_label = session(3, 300, "");
    big_label.mutable_paths(0)->set_if_label(256);
    auto zero_bid = session(3, 300, "");
    zero_bid.mutable_paths(0)->set_bid(0);
    auto bad_mode = session(3, 300, "");
    bad_mode.set_striping(static_cast<hag::v1::StripingMode>(5));
    auto big_burst = session(3, 300, "");
    big_burst.set_striping(hag::v1::STRIPING_OVERFLOW);
    big_burst.set_overflow_burst_bytes(kMaxOverflowBurstBytes + 1);

    struct Case {
        const char* what;
        ApplyRequest req;
        const char* message;
    };
    std::vector<Case> cases = {
        {"id beyond capacity", batch(2, {session(3, 300, ""), session(16, 1600, "")}),
         "session 16: id beyond"},
        {"too many paths", batch(2, {too_many_paths}), "session 3: 9 paths"},
        {"too many prefixes", batch(2, {too_many_prefixes}), "session 3: 5 prefixes"},
        {"host bits", batch(2, {bad_prefix}), "session 3: prefix"},
        {"bad care-of", batch(2, {bad_coa}), "session 3 path 1: care_of"},
        {"families", batch(2, {mixed}), "different families"},
        {"no path", batch(2, {no_path}), "session 3: 0 paths"},
        {"BID twice", batch(2, {dup_bid}), "BID 1 used twice"},
        {"if_label", batch(2, {big_label}), "if_label 256"},
        {"BID 0", batch(2, {zero_bid}), "BID 0"},
        {"striping mode", batch(2, {bad_mode}), "session 3: striping 5 is not a striping mode"},
        {"overflow burst", batch(2, {big_burst}),
         "session 3: overflow_burst_bytes 16777217 is above 16777216"},
        {"remove unknown", batch(2, {session(3, 300, "")}, {9}), "remove of session 9"},
        {"key of another session", batch(2, {session(3, 100, "")}),
         "session 3: uplink GRE key 100 belongs to session 1"},
        {"prefix of another session", batch(2, {session(3, 300, "2001:db8:2:0::/64")}),
         "session 3: prefix 2001:db8:2::/64 belongs to session 2"},
        {"key twice in the batch", batch(2, {session(3, 300, ""), session(4, 300, "")}),
         "uplink GRE key 300 is also given to session 3"},
        {"prefix twice in the batch",
         batch(2, {session(3, 300, "2001:db8:9::/64"), session(4, 400, "2001:db8:9::/64")}),
         "prefix 2001:db8:9::/64 is also given to session 3"},
    };
    for (const auto& c : cases) {
        INFO(c.what);
        auto r = env.prog->apply(c.req);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == ProgramError::kInvalidArgument);
        CHECK_THAT(r.error().message, Catch::Contains(c.message));
        auto d = env.prog->digest();
        CHECK(d.digest() == before.digest());
        CHECK(d.generation() == 1);
        CHECK(env.table->size() == 2);
        CHECK(env.table->config(1) == a_cfg);  // not even re-published
        CHECK(env.table->config(3) == nullptr);
        CHECK(env.next_hops->in_use().size() == nh_in_use);  // nothing acquired stays
    }
    auto op_unset = batch(2, {});
    op_unset.add_changes();
    CHECK_FALSE(env.prog->apply(op_unset));
}

TEST_CASE("keys and prefixes move between sessions in one batch, in any order", "[programmer]") {
    Env env("p_move");
    REQUIRE(env.prog->apply(
        batch(1, {session(1, 100, "2001:db8:1::/64"), session(2, 200, "2001:db8:2::/64")})));
    // Session 3 takes session 1's key before session 1 lets go of it (later in the batch).
    auto r = env.prog->apply(
        batch(2, {session(3, 100, "2001:db8:3::/64"), session(1, 101, "2001:db8:1::/64")}));
    REQUIRE(r);
    CHECK(env.owner_of_key(100) == 3);
    CHECK(env.owner_of_key(101) == 1);
    // Sessions 1 and 2 swap keys and prefixes.
    REQUIRE(env.prog->apply(
        batch(3, {session(1, 200, "2001:db8:2::/64"), session(2, 101, "2001:db8:1::/64")})));
    CHECK(env.owner_of_key(200) == 1);
    CHECK(env.owner_of_key(101) == 2);
    CHECK(env.owner_of("2001:db8:2::5") == 1);
    CHECK(env.owner_of("2001:db8:1::5") == 2);
    // A removed session's key and prefix are free for another in the same batch.
    REQUIRE(env.prog->apply(batch(4, {session(4, 200, "2001:db8:2::/64")}, {1})));
    CHECK(env.owner_of_key(200) == 4);
    CHECK(env.owner_of("2001:db8:2::5") == 4);
    CHECK(env.table->config(1) == nullptr);
    // Upsert then remove in one batch: the session never existed; remove then upsert: replaced.
    REQUIRE(env.prog->apply(batch(5, {session(5, 500, "")}, {5})));
    CHECK(env.table->config(5) == nullptr);
    ApplyRequest rr;
    rr.set_generation(6);
    rr.add_changes()->set_remove(4);
    *rr.add_changes()->mutable_upsert() = session(4, 400, "2001:db8:4::/64");
    REQUIRE(env.prog->apply(rr));
    CHECK(env.owner_of_key(400) == 4);
    CHECK(env.owner_of_key(200) == UINT32_MAX);
    CHECK(env.owner_of("2001:db8:2::5") == UINT32_MAX);
    CHECK(env.prog->digest().digest() ==
          digest_of({session(2, 101, "2001:db8:1::/64"), session(3, 100, "2001:db8:3::/64"),
                     session(4, 400, "2001:db8:4::/64")}));
}

TEST_CASE("next hops are shared, and released with the paths that held them", "[programmer]") {
    Env env("p_nh");
    REQUIRE(env.prog->apply(batch(1, {session(1, 1, "", "2001:db8:ff::1", "2001:db8:aaaa::1"),
                                      session(2, 2, "", "2001:db8:ff::1", "2001:db8:aaaa::1")})));
    REQUIRE(env.next_hops->in_use().size() == 1);
    const auto i = env.next_hops->in_use()[0];
    CHECK(env.next_hops->entry(i).refs == 2);
    REQUIRE(env.prog->apply(batch(2, {}, {1})));
    CHECK(env.next_hops->entry(i).refs == 1);
    // Moving the care-of address: the new next hop is acquired, the old one released.
    REQUIRE(env.prog->apply(batch(3, {session(2, 2, "", "2001:db8:ff::1", "2001:db8:bbbb::1")})));
    REQUIRE(env.next_hops->in_use().size() == 1);
    CHECK(env.next_hops->entry(env.next_hops->in_use()[0]).addr ==
          parse_ip("2001:db8:bbbb::1").value());
    // An unchanged upsert touches nothing.
    const SessionConfig* c = env.table->config(2);
    REQUIRE(env.prog->apply(batch(4, {session(2, 2, "", "2001:db8:ff::1", "2001:db8:bbbb::1")})));
    CHECK(env.table->config(2) == c);
    CHECK(env.next_hops->entry(env.next_hops->in_use()[0]).refs == 1);
}

TEST_CASE("a resync makes the table exactly its set", "[programmer]") {
    Env env("p_resync");
    REQUIRE(env.prog->apply(
        batch(10, {session(1, 100, "2001:db8:1::/64"), session(2, 200, "2001:db8:2::/64"),
                   session(3, 300, "2001:db8:3::/64")})));
    const SessionConfig* kept = env.table->config(1);
    env.table->downlink_traffic(1, 0).packets.store(42);
    // Session 1 unchanged, 2 gives its prefix to the new session 4 and takes 3's key, 3 goes.
    std::vector<DpSession> set = {session(1, 100, "2001:db8:1::/64"), session(2, 300, ""),
                                  session(4, 400, "2001:db8:2::/64")};
    auto r = env.prog->resync(3, set);  // any generation > 0, even a lower one
    REQUIRE(r);
    CHECK(r->generation() == 3);
    CHECK(r->sessions() == 3);
    CHECK(env.table->config(1) == kept);  // untouched: it forwarded all along
    CHECK(env.table->totals(1).downlink_packets == 42);
    CHECK(env.table->config(3) == nullptr);
    CHECK(env.owner_of_key(300) == 2);
    CHECK(env.owner_of("2001:db8:2::1") == 4);
    CHECK(env.owner_of("2001:db8:3::1") == UINT32_MAX);
    CHECK(env.prog->digest().digest() == digest_of(set));
    CHECK(env.prog->stats().resyncs == 1);
    // Apply continues from the resync's generation.
    CHECK_FALSE(env.prog->apply(batch(3, {})));
    CHECK(env.prog->apply(batch(4, {})));

    SECTION("an invalid resync changes nothing") {
        const auto before = env.prog->digest();
        for (auto bad : std::vector<std::vector<DpSession>>{
                 {session(5, 500, ""), session(5, 501, "")},  // id twice
                 {session(5, 500, ""), session(6, 500, "")},  // key twice
                 {session(5, 500, "2001:db8:5::/64"), session(6, 600, "2001:db8:5::/64")},
                 {session(5, 500, "2001:db8:5::/129")},
                 {session(5, 500, ""), session(1'000'000, 501, "")},  // id beyond the capacity
                 // an unchanged session listed twice
                 {session(1, 100, "2001:db8:1::/64"), session(1, 100, "2001:db8:1::/64")}}) {
            CHECK_FALSE(env.prog->resync(9, bad));
            CHECK(env.prog->digest().digest() == before.digest());
            CHECK(env.prog->digest().generation() == 4);
            CHECK(env.table->size() == 3);
            CHECK(env.table->config(1) == kept);
        }
        CHECK_FALSE(env.prog->resync(0, set));
    }
    SECTION("an empty resync removes everything") {
        REQUIRE(env.prog->resync(1, {}));
        CHECK(env.table->size() == 0);
        CHECK(env.prog->digest().digest() == 0);
        CHECK(env.next_hops->in_use().empty());
    }
}

TEST_CASE("static sessions are the state at generation 0", "[programmer]") {
    Env env("p_static");
    auto s = session(1, 100, "2001:db8:1::/64");
    SessionConfig c;
    c.uplink_key = 100;
    c.n_paths = 1;
    c.paths[0].bid = 1;
    c.paths[0].local = parse_ip("2001:db8:ff::1").value();
    c.paths[0].coa = parse_ip("2001:db8:aaaa::1").value();
    c.n_prefixes = 1;
    c.prefixes[0] = parse_ip_prefix("2001:db8:1::/64").value();
    REQUIRE(env.prog->add_static(s, c));
    CHECK(env.prog->digest().generation() == 0);
    CHECK(env.prog->digest().digest() == hag::v1::session_digest(s));
    c.uplink_key = 101;  // same prefix, another id
    CHECK_FALSE(env.prog->add_static(session(2, 101, "2001:db8:1::/64"), c));
    REQUIRE(env.prog->resync(1, {session(7, 700, "")}));
    CHECK(env.table->config(1) == nullptr);
    CHECK(env.table->size() == 1);
}

TEST_CASE("sessions are listed in pages by id, with their counters", "[programmer]") {
    Env env("p_list");
    std::vector<DpSession> set;
    for (std::uint32_t id = 0; id < 25; ++id) {
        set.push_back(session(id, 1000 + id, ""));
    }
    REQUIRE(env.prog->resync(1, set));
    env.table->uplink_traffic(3, 0).bytes.store(1234);
    hag::v1::DpListRequest req;
    req.set_first_page(true);
    req.set_limit(10);
    auto page = env.prog->list(req);
    REQUIRE(page.sessions_size() == 10);
    CHECK(page.sessions(0).session().id() == 0);
    CHECK(page.sessions(3).uplink_bytes() == 1234);
    CHECK(page.more());
    std::uint32_t seen = 10;
    req.set_first_page(false);
    while (page.more()) {
        req.set_after_id(page.sessions(page.sessions_size() - 1).session().id());
        page = env.prog->list(req);
        seen += static_cast<std::uint32_t>(page.sessions_size());
    }
    CHECK(seen == 25);
    // Per-path counters, one per path in the session's order.
    env.table->downlink_traffic(3, 0).packets.store(77);
    env.table->downlink_traffic(3, 0).bytes.store(7700);
    req.set_first_page(true);
    req.set_limit(5);
    page = env.prog->list(req);
    REQUIRE(page.sessions(3).paths_size() == 1);
    CHECK(page.sessions(3).paths(0).bid() == 1);
    CHECK(page.sessions(3).paths(0).downlink_packets() == 77);
    CHECK(page.sessions(3).paths(0).downlink_bytes() == 7700);
    req.set_first_page(false);
    req.set_after_id(0);
    req.set_limit(0);                                  // default page: 100
    CHECK(env.prog->list(req).sessions_size() == 24);  // ids above 0
}

TEST_CASE("the main loop queue runs jobs on the thread that serves it", "[programmer]") {
    MainLoopQueue q;
    std::optional<std::thread::id> ran_on;
    std::optional<int> got;
    std::thread caller([&] {
        got = q.call([&] {
            ran_on = std::this_thread::get_id();
            return 7;
        });
    });
    for (int i = 0; i < 5000 && !q.run_pending(); ++i) {
        q.wait(std::chrono::milliseconds(1));
    }
    caller.join();
    CHECK(got == 7);
    CHECK(ran_on == std::this_thread::get_id());
    q.close();
    CHECK_FALSE(q.call([] { return 1; }).has_value());
}

TEST_CASE("a batch that runs out of next hops changes nothing", "[programmer]") {
    Env env("p_nhfull");  // 64 next hops
    REQUIRE(env.prog->apply(batch(1, {session(1, 1, "2001:db8:1::/64")})));
    const auto before = env.prog->digest();
    std::vector<DpSession> many;
    for (std::uint32_t id = 2; id < 12; ++id) {  // 10 sessions x 8 care-of addresses
        auto s = session(id, id, "");
        s.clear_paths();
        for (std::uint32_t b = 1; b <= kMaxPaths; ++b) {
            auto* p = s.add_paths();
            p->set_bid(b);
            p->set_live(true);
            p->set_local("2001:db8:ff::1");
            p->set_care_of(fmt::format("2001:db8:c{}::{}", id, b));
        }
        many.push_back(s);
    }
    auto r = env.prog->apply(batch(2, many));
    REQUIRE_FALSE(r);
    CHECK(r.error().code == ProgramError::kResourceExhausted);
    CHECK_THAT(r.error().message, Catch::Contains("next-hop table full"));
    CHECK(env.prog->digest().digest() == before.digest());
    CHECK(env.prog->digest().generation() == 1);
    CHECK(env.table->size() == 1);
    CHECK(env.next_hops->in_use().size() == 1);
}

TEST_CASE("striping settings reach the session table", "[programmer][striping]") {
    Env env("p_stripe");
    auto s = session(1, 100, "2001:db8:1::/64");
    s.set_striping(hag::v1::STRIPING_OVERFLOW);
    s.set_overflow_burst_bytes(20000);
    s.mutable_paths(0)->set_weight_kbps(8000);
    s.mutable_paths(0)->set_preference(2);
    auto* lte = s.add_paths();
    *lte = s.paths(0);
    lte->set_bid(2);
    lte->set_care_of("2001:db8:bbbb::1");
    lte->set_weight_kbps(50000);
    lte->set_rate_kbps(30000);
    lte->set_preference(1);
    REQUIRE(env.prog->apply(batch(1, {s})));
    const SessionConfig* c = env.table->config(1);
    REQUIRE(c != nullptr);
    CHECK(c->striping == StripingMode::kOverflow);
    CHECK(c->overflow_burst_bytes == 20000);
    CHECK(c->paths[1].rate_kbps == 30000);
    CHECK(c->paths[0].preference == 2);
    CHECK(c->plan.n_order == 2);
    CHECK(c->plan.order[0] == 1);  // preference 1 first
    CHECK(c->plan.rate_bytes[1] == 30000u * 125);
    CHECK(c->plan.burst_bytes[1] == 20000);
    // Reprogrammed with the first path down: a new plan with one usable path.
    s.mutable_paths(1)->set_live(false);
    REQUIRE(env.prog->apply(batch(2, {s})));
    CHECK(env.table->config(1)->plan.n_order == 1);
    CHECK(env.table->config(1)->plan.order[0] == 0);
    CHECK(env.table->config(1)->plan.version != c->plan.version);
}

namespace {

// Session `id` with a second (old) prefix anchored at 2001:db8:ee::1, keys 0x3003 / `dl_key`.
DpSession anchored(std::uint32_t id, std::uint32_t key, std::uint32_t dl_key,
                   const std::string& old_prefix = "2001:db8:a::/64") {
    auto s = session(id, key, "2001:db8:" + std::to_string(id) + "::/64");
    s.add_prefixes(old_prefix);
    auto* a = s.add_remote_anchors();
    a->set_prefix(old_prefix);
    a->set_local("2001:db8:ff::2");
    a->set_anchor("2001:db8:ee::1");
    a->set_uplink_key(0x3003);
    a->set_downlink_key(dl_key);
    return s;
}

}  // namespace

TEST_CASE("remote anchors: parsed, keys checked and moved, next hops released",
          "[programmer][relay]") {
    Env env("p_anchor");
    const auto nh_before = env.next_hops->in_use().size();
    REQUIRE(
        env.prog->apply(batch(1, {anchored(1, 100, 0x4004), session(2, 200, "2001:db8:2::/64")})));
    const SessionConfig* c = env.table->config(1);
    REQUIRE(c != nullptr);
    REQUIRE(c->n_anchors == 1);
    CHECK(c->anchors[0].port == 2);  // the port owning 2001:db8:ff::2
    CHECK(c->anchors[0].uplink_key == 0x3003);
    CHECK(c->anchors[0].anchor == parse_ip("2001:db8:ee::1").value());
    CHECK(c->anchors[0].next_hop != NextHopTable::kNone);  // resolved toward the anchor
    CHECK(env.owner_of_key(0x4004) == 1);

    struct Case {
        const char* what;
        DpSession s;
        const char* message;
    };
    auto not_own = anchored(3, 300, 0x5005);
    not_own.mutable_remote_anchors(0)->set_prefix("2001:db8:b::/64");
    auto families = anchored(3, 300, 0x5005);
    families.mutable_remote_anchors(0)->set_anchor("203.0.113.1");
    auto own_key = anchored(3, 300, 300);
    std::vector<Case> cases = {
        {"prefix not the session's", not_own, "is not one of the session's prefixes"},
        {"families", families, "different families"},
        {"the session's uplink key", own_key, "is the session's uplink_key"},
        {"another session's uplink key", anchored(3, 300, 200, "2001:db8:b::/64"),
         "session 3: remote anchor's downlink GRE key 200 belongs to session 2"},
        {"another session's downlink key", anchored(3, 300, 0x4004, "2001:db8:b::/64"),
         "downlink GRE key 16388 belongs to session 1"},
    };
    for (const auto& k : cases) {
        INFO(k.what);
        auto r = env.prog->apply(batch(2, {k.s}));
        REQUIRE_FALSE(r);
        CHECK(r.error().code == ProgramError::kInvalidArgument);
        CHECK_THAT(r.error().message, Catch::Contains(k.message));
        CHECK(env.table->config(3) == nullptr);
    }
    // The downlink key moves to another session in one batch (session 1 drops its anchor).
    REQUIRE(env.prog->apply(batch(
        3, {anchored(3, 300, 0x4004, "2001:db8:b::/64"), session(1, 100, "2001:db8:1::/64")})));
    CHECK(env.owner_of_key(0x4004) == 3);
    CHECK(env.table->config(1)->n_anchors == 0);
    // Removing the session frees the key and the anchor's next hop.
    REQUIRE(env.prog->apply(batch(4, {}, {3})));
    CHECK(env.owner_of_key(0x4004) == UINT32_MAX);
    env.rcu->synchronize();
    REQUIRE(env.prog->apply(batch(5, {}, {1, 2})));
    CHECK(env.next_hops->in_use().size() == nh_before);
}
