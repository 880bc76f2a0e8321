// The pusher (control/dpclient/pusher.hpp) against an in-process fake data plane on a unix
// socket: resync on connect, deltas, back-pressure, data plane restart, refused sessions.
#include <catch2/catch.hpp>

#include <unistd.h>
#include <chrono>
#include <filesystem>
#include <thread>

#include "dpclient/pusher.hpp"
#include "dpclient/session_convert.hpp"
#include "fake_dataplane.hpp"
#include "hag/v1/dataplane_digest.hpp"
#include "mgmt/convert.hpp"

using namespace hag::control;
using namespace std::chrono_literals;

namespace {

Session make(int n) {
    Session s;
    s.nai = "user" + std::to_string(n) + "@example.net";
    s.home_prefixes.push_back(*mgmt::parse_prefix("2001:db8:" + std::to_string(n + 1) + "::/64"));
    s.uplink_gre_key = 0x100u + static_cast<std::uint32_t>(n);
    for (int b = 1; b <= 2; ++b) {
        Path p;
        p.bid = static_cast<std::uint16_t>(b);
        p.mag_id = "mag" + std::to_string(n);
        p.coa = *mgmt::parse_coa("2001:db8:ff" + std::to_string(b) + "::" + std::to_string(n + 1));
        p.local = *mgmt::parse_coa("2001:db8::1");
        p.downlink_gre_key = 0x2000u + static_cast<std::uint32_t>(n);
        p.expires_at = 100;
        s.paths.push_back(p);
    }
    return s;
}

// Polls `pred` every 10 ms for at most `limit` (a bound, not a timing assertion).
template <typename P>
bool eventually(P pred, std::chrono::milliseconds limit = 20s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        if (pred()) {
            return true;
        }
        std::this_thread::sleep_for(10ms);
    }
    return pred();
}

struct Fixture {
    std::filesystem::path dir;
    std::string listen;
    BindingCache cache{1000};
    mgmt::CacheBackend backend{cache, nullptr, [] { return Seconds{0}; }};

    Fixture() {
        char tmpl[] = "/tmp/hag-pusher-test-XXXXXX";
        dir = ::mkdtemp(tmpl);
        listen = "unix:" + (dir / "dp.sock").string();
    }
    ~Fixture() { std::filesystem::remove_all(dir); }

    dpclient::PusherOptions options() const {
        dpclient::PusherOptions o;
        o.target = listen;
        o.batch_size = 50;
        o.resync_chunk = 7;  // several chunks even for small tables
        o.digest_interval = 200ms;
        o.backoff_min = 10ms;
        o.backoff_max = 100ms;
        return o;
    }
    void insert(int n) {
        backend.with_cache([&](BindingCache& c) {
            REQUIRE(c.insert(make(n)));
            return 0;
        });
    }
    // The fake holds exactly the cache, as the pusher would convert it, and the pusher agrees.
    bool in_sync(hag::test::FakeDataplane& fake, dpclient::Pusher& p) {
        std::uint64_t want = 0;
        const std::size_t n = backend.with_cache([&](BindingCache& c) {
            c.for_each_page(0, c.size() + 1, [&](const Session& s) {
                want += hag::v1::session_digest(dpclient::to_dp_session(s, *c.session_id(s.nai)));
            });
            return c.size();
        });
        const auto snap = fake.snapshot();
        const auto st = p.status();
        return snap.sessions.size() == n && snap.digest == want && st.sessions == n &&
               st.digest == want && st.pending == 0 && st.generation == snap.generation;
    }
};

}  // namespace

TEST_CASE("pusher: resync on connect, then deltas; digests agree") {
    Fixture f;
    for (int i = 0; i < 20; ++i) {
        f.insert(i);
    }
    hag::test::FakeDataplane fake;
    auto server = hag::test::start_fake_dataplane(fake, f.listen);
    REQUIRE(server);
    dpclient::Pusher pusher(f.backend, f.options());
    pusher.start();
    REQUIRE(eventually([&] { return f.in_sync(fake, pusher); }));
    auto snap = fake.snapshot();
    CHECK(snap.resyncs == 1);
    CHECK(snap.applied.empty());
    const auto id3 = *f.cache.session_id(make(3).nai);
    REQUIRE(snap.sessions.count(id3) == 1);
    CHECK(snap.sessions[id3].nai() == make(3).nai);
    CHECK(snap.sessions[id3].paths_size() == 2);
    CHECK(snap.sessions[id3].prefixes(0) == "2001:db8:4::/64");

    // Changes: one insert, one liveness change, one removal.
    f.insert(100);
    f.backend.with_cache([&](BindingCache& c) {
        REQUIRE(c.set_path_live(make(3).nai, 2, false));
        REQUIRE(c.remove(make(5).nai));
        return 0;
    });
    REQUIRE(eventually([&] { return f.in_sync(fake, pusher); }));
    snap = fake.snapshot();
    CHECK(snap.resyncs == 1);
    CHECK_FALSE(snap.sessions[id3].paths(1).live());
    CHECK(snap.sessions.size() == 20);
    std::size_t upserts = 0, removes = 0;
    for (const auto& b : snap.applied) {
        for (const auto& c : b.changes()) {
            (c.has_upsert() ? upserts : removes)++;
        }
    }
    CHECK(upserts == 2);
    CHECK(removes == 1);
    // Generations strictly increase (the fake refuses anything else).
    for (std::size_t i = 1; i < snap.applied.size(); ++i) {
        CHECK(snap.applied[i].generation() > snap.applied[i - 1].generation());
    }
    const auto st = pusher.status();
    CHECK(st.connected);
    CHECK(st.resyncs == 1);
    CHECK(st.digest_mismatches == 0);
    REQUIRE(eventually([&] { return pusher.status().digest_checks >= 2; }));
    CHECK(pusher.status().digest_mismatches == 0);
}

TEST_CASE("pusher: while a batch is in flight, changes only mark sessions dirty") {
    Fixture f;
    for (int i = 0; i < 10; ++i) {
        f.insert(i);
    }
    hag::test::FakeDataplane fake;
    auto server = hag::test::start_fake_dataplane(fake, f.listen);
    dpclient::Pusher pusher(f.backend, f.options());
    pusher.start();
    REQUIRE(eventually([&] { return f.in_sync(fake, pusher); }));

    fake.hold();
    f.backend.with_cache([&](BindingCache& c) { return c.set_path_live(make(0).nai, 1, false); });
    REQUIRE(eventually([&] { return fake.applies_waiting() == 1; }));
    // 10,000 changes to the 10 sessions while the data plane does not answer: the signalling
    // side never waits, and at most one pending entry per session accumulates.
    const auto t0 = std::chrono::steady_clock::now();
    for (int round = 0; round < 1000; ++round) {
        f.backend.with_cache([&](BindingCache& c) {
            for (int i = 0; i < 10; ++i) {
                REQUIRE(c.set_path_live(make(i).nai, 2, round % 2 == 0));  // ends down
            }
            return 0;
        });
    }
    const auto spent = std::chrono::steady_clock::now() - t0;
    CHECK(pusher.status().pending == 10);
    CHECK(fake.applies_waiting() == 1);
    const auto batches_before = fake.snapshot().applied.size();
    fake.release();
    REQUIRE(eventually([&] { return f.in_sync(fake, pusher); }));
    // The held batch plus one batch with the coalesced changes.
    CHECK(fake.snapshot().applied.size() == batches_before + 2);
    CHECK(pusher.status().resyncs == 1);
    INFO("10,000 cache changes took " << std::chrono::duration<double>(spent).count() << " s");
}

TEST_CASE("pusher: data plane restarted -> full resync; started late -> connects") {
    Fixture f;
    for (int i = 0; i < 30; ++i) {
        f.insert(i);
    }
    dpclient::Pusher pusher(f.backend, f.options());
    pusher.start();  // nothing listens yet
    REQUIRE(eventually([&] { return pusher.status().errors >= 2; }));
    CHECK_FALSE(pusher.status().connected);
    f.insert(30);
    {
        hag::test::FakeDataplane fake;
        auto server = hag::test::start_fake_dataplane(fake, f.listen);
        REQUIRE(eventually([&] { return f.in_sync(fake, pusher); }));
        CHECK(fake.snapshot().sessions.size() == 31);
        server->Shutdown(std::chrono::system_clock::now());
    }
    // Changes while the data plane is away wait as dirty ids.
    f.backend.with_cache([&](BindingCache& c) { return c.remove(make(0).nai); });
    f.insert(31);
    hag::test::FakeDataplane fresh;  // restarted: empty table, generation 0
    auto server = hag::test::start_fake_dataplane(fresh, f.listen);
    REQUIRE(eventually([&] { return f.in_sync(fresh, pusher); }));
    CHECK(fresh.snapshot().resyncs == 1);
    CHECK(fresh.snapshot().sessions.size() == 31);
    CHECK(pusher.status().resyncs == 2);
    CHECK(pusher.status().connected);
}

TEST_CASE("pusher: a restarted data plane that reconnects in between is resynced") {
    Fixture f;
    for (int i = 0; i < 5; ++i) {
        f.insert(i);
    }
    auto fake = std::make_unique<hag::test::FakeDataplane>();
    auto server = hag::test::start_fake_dataplane(*fake, f.listen);
    dpclient::Pusher pusher(f.backend, f.options());
    pusher.start();
    REQUIRE(eventually([&] { return f.in_sync(*fake, pusher); }));
    // Restart with no change in the cache meanwhile: the digest check finds the empty table.
    server->Shutdown(std::chrono::system_clock::now());
    server.reset();
    fake = std::make_unique<hag::test::FakeDataplane>();
    server = hag::test::start_fake_dataplane(*fake, f.listen);
    REQUIRE(eventually([&] { return f.in_sync(*fake, pusher); }));
    CHECK(fake->snapshot().sessions.size() == 5);
    CHECK(pusher.status().resyncs == 2);
}

TEST_CASE("pusher: a session the data plane refuses does not block the others") {
    Fixture f;
    hag::test::FakeDataplane fake;
    fake.refuse_nai("user7@");
    auto server = hag::test::start_fake_dataplane(fake, f.listen);
    dpclient::Pusher pusher(f.backend, f.options());
    pusher.start();
    REQUIRE(eventually([&] { return pusher.status().connected; }));
    f.backend.with_cache([&](BindingCache& c) {
        for (int i = 0; i < 10; ++i) {
            REQUIRE(c.insert(make(i)));
        }
        return 0;
    });
    REQUIRE(eventually([&] { return fake.snapshot().sessions.size() == 9; }));
    REQUIRE(eventually([&] { return pusher.status().refused_now == 1; }));
    const auto st = pusher.status();
    CHECK(st.rejected == 1);
    CHECK(st.sessions == 9);
    CHECK(st.digest == fake.snapshot().digest);
    // Once the session changes and the data plane accepts it, it is programmed.
    fake.refuse_nai("");
    f.backend.with_cache([&](BindingCache& c) { return c.set_path_live(make(7).nai, 1, false); });
    REQUIRE(eventually([&] { return f.in_sync(fake, pusher); }));
    CHECK(pusher.status().refused_now == 0);
    CHECK(pusher.status().resyncs == 1);
}

namespace {

// What an earlier hag-control left in `fake`: sessions 0..n-1 of another cache, programmed by a
// pusher that is gone now (as after kill -9 of hag-control).
void program_earlier_control(Fixture& f, hag::test::FakeDataplane& fake, int n) {
    BindingCache old_cache{1000};
    mgmt::CacheBackend old_backend{old_cache, nullptr, [] { return Seconds{0}; }};
    old_backend.with_cache([&](BindingCache& c) {
        for (int i = 0; i < n; ++i) {
            REQUIRE(c.insert(make(i)));
        }
        return 0;
    });
    dpclient::Pusher old(old_backend, f.options());
    old.start();
    REQUIRE(eventually([&] {
        return old.status().connected && old.status().sessions == static_cast<std::uint64_t>(n);
    }));
    old.stop();
    REQUIRE(fake.snapshot().sessions.size() == static_cast<std::size_t>(n));
}

}  // namespace

TEST_CASE("pusher: start-up hold keeps an earlier control's state until the cache is restored") {
    Fixture f;
    hag::test::FakeDataplane fake;
    auto server = hag::test::start_fake_dataplane(fake, f.listen);
    program_earlier_control(f, fake, 3);
    const auto before = fake.snapshot();
    REQUIRE(before.sessions.size() == 3);
    REQUIRE(before.generation > 0);

    auto o = f.options();
    o.resync_hold = 60s;  // a bound far beyond the test: only the events below end it
    dpclient::Pusher pusher(f.backend, o);
    pusher.start();
    REQUIRE(eventually([&] { return pusher.status().holding; }));
    CHECK(pusher.status().held_sessions == 3);
    CHECK(pusher.status().holds == 1);
    CHECK_FALSE(pusher.status().connected);
    // Registrations during the hold (fewer than the data plane holds) wait as dirty ids; the
    // data plane keeps the earlier state meanwhile.
    f.insert(10);
    f.insert(11);
    std::this_thread::sleep_for(500ms);  // several hold rounds (200 ms each)
    auto snap = fake.snapshot();
    CHECK(snap.resyncs == before.resyncs);
    CHECK(snap.applied.size() == before.applied.size());
    CHECK(snap.digest == before.digest);
    CHECK(pusher.status().holding);
    CHECK(pusher.status().pending == 2);
    // The cache is restored (as persistence would do): one resync brings the data plane to the
    // cache, the changes of the hold included.
    pusher.cache_restored();
    REQUIRE(eventually([&] { return f.in_sync(fake, pusher); }));
    snap = fake.snapshot();
    CHECK(snap.resyncs == before.resyncs + 1);
    CHECK(snap.sessions.size() == 2);
    CHECK(snap.applied.size() == before.applied.size());
    CHECK_FALSE(pusher.status().holding);
    CHECK(pusher.status().resyncs == 1);
}

TEST_CASE("pusher: start-up hold ends once the cache holds as many sessions as the data plane") {
    Fixture f;
    hag::test::FakeDataplane fake;
    auto server = hag::test::start_fake_dataplane(fake, f.listen);
    program_earlier_control(f, fake, 3);
    const auto before = fake.snapshot();
    auto o = f.options();
    o.resync_hold = 60s;
    dpclient::Pusher pusher(f.backend, o);
    pusher.start();
    REQUIRE(eventually([&] { return pusher.status().holding; }));
    f.insert(0);
    f.insert(1);
    std::this_thread::sleep_for(300ms);
    CHECK(fake.snapshot().resyncs == before.resyncs);
    f.insert(2);  // the third MAG is back
    REQUIRE(eventually([&] { return f.in_sync(fake, pusher); }));
    CHECK(fake.snapshot().resyncs == before.resyncs + 1);
    CHECK_FALSE(pusher.status().holding);
    // Deltas follow as usual.
    f.insert(3);
    REQUIRE(eventually([&] { return f.in_sync(fake, pusher); }));
    CHECK(fake.snapshot().sessions.size() == 4);
}

TEST_CASE("pusher: start-up hold ends when its time is over; no hold for a fresh data plane") {
    Fixture f;
    {
        hag::test::FakeDataplane fake;
        auto server = hag::test::start_fake_dataplane(fake, f.listen);
        program_earlier_control(f, fake, 3);
        auto o = f.options();
        o.resync_hold = 700ms;
        dpclient::Pusher pusher(f.backend, o);
        pusher.start();
        REQUIRE(eventually([&] { return pusher.status().holds == 1; }));
        // The empty cache replaces the earlier state once the hold is over.
        REQUIRE(eventually([&] { return f.in_sync(fake, pusher); }));
        CHECK(fake.snapshot().sessions.empty());
        CHECK_FALSE(pusher.status().holding);
        server->Shutdown(std::chrono::system_clock::now());
    }
    {
        hag::test::FakeDataplane fresh;  // generation 0: nothing to keep
        auto server = hag::test::start_fake_dataplane(fresh, f.listen);
        f.insert(5);
        auto o = f.options();
        o.resync_hold = 60s;
        dpclient::Pusher pusher(f.backend, o);
        pusher.start();
        REQUIRE(eventually([&] { return f.in_sync(fresh, pusher); }));
        CHECK(pusher.status().holds == 0);
    }
    {
        // Restored before start(): no hold at all, even with an earlier state.
        hag::test::FakeDataplane fake;
        auto server = hag::test::start_fake_dataplane(fake, f.listen);
        program_earlier_control(f, fake, 3);
        auto o = f.options();
        o.resync_hold = 60s;
        dpclient::Pusher pusher(f.backend, o);
        pusher.cache_restored();
        pusher.start();
        REQUIRE(eventually([&] { return f.in_sync(fake, pusher); }));
        CHECK(pusher.status().holds == 0);
        CHECK(fake.snapshot().sessions.size() == 1);
    }
}

TEST_CASE("pusher: the flow policy's profiles go with the resync; a new policy resyncs") {
    Fixture f;
    for (int i = 0; i < 10; ++i) {
        f.insert(i);
    }
    auto policy_with = [](const std::vector<std::string>& profiles, const std::string& dflt) {
        hag::v1::ControlConfig cfg;
        auto* pol = cfg.mutable_policy();
        auto* red = pol->add_labels();
        red->set_name("RED");
        red->set_access_technology(3);
        auto* app = pol->add_applications();
        app->set_name("SSH");
        auto* m = app->add_match();
        m->set_protocol(6);
        m->add_remote_ports("22");
        for (const auto& name : profiles) {
            auto* prof = pol->add_profiles();
            prof->set_name(name);
            auto* r = prof->add_rules();
            r->set_application("SSH");
            r->add_preference("DROP");
        }
        pol->set_default_profile(dflt);
        auto snap = PolicySnapshot::build(cfg);
        REQUIRE(snap != nullptr);
        return snap;
    };
    f.backend.set_policy(policy_with({"home"}, "home"));
    hag::test::FakeDataplane fake;
    auto server = hag::test::start_fake_dataplane(fake, f.listen);
    REQUIRE(server);
    dpclient::Pusher pusher(f.backend, f.options());
    pusher.start();
    auto synced = [&](const std::string& profile, std::size_t profiles, std::size_t sessions = 10) {
        const auto snap = fake.snapshot();
        const auto st = pusher.status();
        if (snap.profiles.size() != profiles || st.profiles != profiles || st.pending != 0 ||
            snap.sessions.size() != sessions || st.digest != snap.digest ||
            st.generation != snap.generation) {
            return false;
        }
        for (const auto& [id, s] : snap.sessions) {
            if (s.policy_profile() != profile) {
                return false;
            }
        }
        return true;
    };
    REQUIRE(eventually([&] { return synced("home", 1); }));
    CHECK(fake.snapshot().profiles.at("home").rules(0).application() == "SSH");
    // A reload: two profiles, the default is now "office".
    f.backend.set_policy(policy_with({"home", "office"}, "office"));
    pusher.policy_changed();
    REQUIRE(eventually([&] { return synced("office", 2); }));
    CHECK(fake.snapshot().resyncs == 2);
    // Deltas after it name the new profile; digests keep agreeing.
    f.insert(50);
    REQUIRE(eventually([&] {
        const auto snap = fake.snapshot();
        return snap.sessions.size() == 11 && pusher.status().pending == 0 &&
               pusher.status().digest == snap.digest;
    }));
    const auto id50 = *f.cache.session_id(make(50).nai);
    CHECK(fake.snapshot().sessions.at(id50).policy_profile() == "office");
    REQUIRE(eventually([&] { return pusher.status().digest_checks >= 2; }));
    CHECK(pusher.status().digest_mismatches == 0);
    // No policy any more: profiles go, sessions name none.
    f.backend.set_policy(nullptr);
    pusher.policy_changed();
    REQUIRE(eventually([&] { return synced("", 0, 11); }));
}
