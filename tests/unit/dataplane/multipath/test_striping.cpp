// Downlink striping (multipath/scheduler.hpp) through the real downlink stage: real EAL, real
// mbufs, a real SessionTable. Overflow mode is driven with a fake clock through stripe_pick.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <random>
#include <vector>

#include "../eal_fixture.hpp"
#include "multipath/scheduler.hpp"
#include "pipeline/downlink_encap.hpp"

using namespace hag::dp;
using Bytes = std::vector<std::uint8_t>;

namespace {

const MacAddr kGwMac{0x02, 0, 0, 0, 0, 0x01};
const MacAddr kCpeMac{0x02, 0, 0, 0, 0, 0x02};

std::array<std::uint8_t, 16> a6(std::uint16_t g2, std::uint16_t last) {
    return {0x20,
            0x01,
            0x0d,
            0xb8,
            static_cast<std::uint8_t>(g2 >> 8),
            static_cast<std::uint8_t>(g2),
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            static_cast<std::uint8_t>(last >> 8),
            static_cast<std::uint8_t>(last)};
}

void put16(Bytes& b, std::uint16_t v) {
    b.push_back(static_cast<std::uint8_t>(v >> 8));
    b.push_back(static_cast<std::uint8_t>(v));
}
std::uint32_t get32(const std::uint8_t* p) {
    return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}

// Ethernet + IPv6 + UDP toward the subscriber's HNP 2001:db8:1::/64; inner IP bytes = 48 + payload.
Bytes frame(std::size_t payload) {
    Bytes b{0x02, 0, 0, 0, 0, 0x03, 0x02, 0, 0, 0, 0, 0x04};
    put16(b, 0x86DD);
    b.push_back(0x60);
    b.push_back(0);
    b.push_back(0);
    b.push_back(0);
    put16(b, static_cast<std::uint16_t>(8 + payload));
    b.push_back(17);
    b.push_back(64);
    const auto src = a6(0x9999, 1), dst = a6(1, 0x42);
    b.insert(b.end(), src.begin(), src.end());
    b.insert(b.end(), dst.begin(), dst.end());
    put16(b, 4000);
    put16(b, 5000);
    put16(b, static_cast<std::uint16_t>(8 + payload));
    put16(b, 0);
    b.resize(b.size() + payload, 0x5a);
    return b;
}

// A session (id 3) with `weights.size()` IPv6 paths; path i has BID i+1, downlink key 0x100+i.
SessionConfig session(const std::vector<std::uint32_t>& weights,
                      StripingMode mode = StripingMode::kWeighted) {
    SessionConfig c;
    c.striping = mode;
    c.n_paths = static_cast<std::uint8_t>(weights.size());
    for (std::size_t i = 0; i < weights.size(); ++i) {
        auto& p = c.paths[i];
        p.bid = static_cast<std::uint16_t>(i + 1);
        p.downlink_key = static_cast<std::uint32_t>(0x100 + i);
        p.weight = weights[i];
        p.local = IpAddr::v6(a6(0xff, 1));
        p.coa = IpAddr::v6(a6(0xaaaa, static_cast<std::uint16_t>(i + 1)));
        p.port = static_cast<std::uint16_t>(i);
        p.src_mac = kGwMac;
        p.next_hop_mac = kCpeMac;
    }
    c.n_prefixes = 1;
    c.prefixes[0] = {IpAddr::v6(a6(1, 0)), 64};
    return c;
}

struct Fixture {
    std::unique_ptr<Rcu> rcu;
    std::unique_ptr<SessionTable> t;
    DownlinkCtx dl;
    std::vector<std::uint32_t> seqs;               // in output order
    std::vector<std::uint32_t> keys;               // downlink key of each, in output order
    std::map<std::uint32_t, std::uint64_t> bytes;  // inner bytes by downlink key
    std::map<std::uint32_t, std::uint64_t> packets;
    std::mt19937 rng{7};

    explicit Fixture(const SessionConfig& c) {
        test::ensure_eal();
        static int n = 0;
        rcu = std::move(Rcu::create(2).value());
        t = std::move(SessionTable::create("mp" + std::to_string(n++), 16, *rcu).value());
        dl.sessions = dl.sessions_rw = t.get();
        REQUIRE(t->upsert(3, c).ok());
    }
    ~Fixture() { rcu->synchronize(); }

    // Sends `count` packets in bursts of 32, payload sizes uniform in [min, max].
    void send(std::size_t count, std::size_t min = 0, std::size_t max = 1400) {
        std::uniform_int_distribution<std::size_t> size(min, max);
        std::vector<rte_mbuf*> burst;
        while (count > 0) {
            burst.clear();
            for (; count > 0 && burst.size() < 32; --count) {
                rte_mbuf* m = test::mbuf_from(frame(size(rng)));
                REQUIRE(m != nullptr);
                burst.push_back(m);
            }
            const auto kept =
                downlink_encap(dl, burst.data(), static_cast<std::uint16_t>(burst.size()));
            REQUIRE(kept == burst.size());
            for (std::uint16_t i = 0; i < kept; ++i) {
                const auto* p = rte_pktmbuf_mtod(burst[i], const std::uint8_t*);
                const std::uint8_t* gre = p + 14 + 40;
                REQUIRE((gre[0] & 0x30) == 0x30);  // K and S
                const std::uint32_t key = get32(gre + 4);
                seqs.push_back(get32(gre + 8));
                keys.push_back(key);
                const auto inner = rte_pktmbuf_pkt_len(burst[i]) - (14 + 40 + 12);
                bytes[key] += inner;
                ++packets[key];
                CHECK(burst[i]->port == key - 0x100);
                rte_pktmbuf_free(burst[i]);
            }
        }
    }
    std::uint64_t total_bytes() const {
        std::uint64_t s = 0;
        for (const auto& [k, v] : bytes)
            s += v;
        return s;
    }
    // Every sequence number 0..N-1 once, in order of output (one space across all paths).
    void check_one_sequence_space() const {
        for (std::size_t i = 0; i < seqs.size(); ++i) {
            if (seqs[i] != i) {
                FAIL("sequence " << seqs[i] << " at position " << i);
            }
        }
    }
};

// Byte shares by key match weights within 1 % (relative to each path's expected share).
void check_shares(const Fixture& fx, const std::vector<std::uint32_t>& weights) {
    double sum = 0;
    for (auto w : weights)
        sum += w;
    const double total = static_cast<double>(fx.total_bytes());
    for (std::size_t i = 0; i < weights.size(); ++i) {
        const double want = weights[i] / sum;
        const auto it = fx.bytes.find(static_cast<std::uint32_t>(0x100 + i));
        const double got = it == fx.bytes.end() ? 0.0 : static_cast<double>(it->second) / total;
        INFO("path " << i << " weight " << weights[i] << ": share " << got << ", expected "
                     << want);
        CHECK(std::fabs(got - want) <= 0.01 * want);
    }
}

}  // namespace

TEST_CASE("weighted striping follows the weights within 1% over 100k packets", "[striping]") {
    for (const std::vector<std::uint32_t>& w :
         {std::vector<std::uint32_t>{30000, 10000}, std::vector<std::uint32_t>{50000, 30000, 7000},
          std::vector<std::uint32_t>{1000, 2000, 3000, 4000},
          std::vector<std::uint32_t>{100000, 16000, 2000, 900}}) {
        Fixture fx(session(w));
        fx.send(100'000);
        check_shares(fx, w);
        fx.check_one_sequence_space();
        // The per-path counters of the session say the same as the wire.
        std::uint64_t pkts = 0;
        for (std::size_t i = 0; i < w.size(); ++i) {
            const PathTraffic& t = fx.t->downlink_traffic(3, static_cast<unsigned>(i));
            CHECK(t.bytes.load() == fx.bytes[static_cast<std::uint32_t>(0x100 + i)]);
            CHECK(t.packets.load() == fx.packets[static_cast<std::uint32_t>(0x100 + i)]);
            pkts += t.packets.load();
        }
        CHECK(pkts == 100'000);
        CHECK(fx.t->totals(3).downlink_packets == 100'000);
    }
}

TEST_CASE(
    "weighted striping: all weights zero share equally; a zero weight among weights is "
    "unused",
    "[striping]") {
    {
        Fixture fx(session({0, 0, 0}));
        fx.send(30'000);
        check_shares(fx, {1, 1, 1});
    }
    {
        Fixture fx(session({5000, 0, 5000}));
        fx.send(10'000);
        CHECK(fx.packets.count(0x101) == 0);
        check_shares(fx, {1, 0, 1});
    }
}

TEST_CASE("weighted striping interleaves packets rather than bursting", "[striping]") {
    Fixture fx(session({1000, 1000}));
    fx.send(1000, 1000, 1000);  // 1048-byte inner packets, equal weights
    // A path sends while its deficit lasts, and gets one quantum (1536 bytes) per turn: never
    // more than two of these packets in a row.
    std::size_t longest = 0, run = 0;
    for (std::size_t i = 0; i < fx.keys.size(); ++i) {
        run = i > 0 && fx.keys[i] == fx.keys[i - 1] ? run + 1 : 1;
        longest = std::max(longest, run);
    }
    CHECK(longest <= 2);
    CHECK(fx.t->downlink_traffic(3, 0).packets.load() >= 499);  // equal shares, within one
    CHECK(fx.t->downlink_traffic(3, 1).packets.load() >= 499);  // packet
}

TEST_CASE("a path going down mid-stream: the others take its share on the next packet",
          "[striping]") {
    Fixture fx(session({4000, 2000, 2000}));
    fx.send(20'000);
    check_shares(fx, {4000, 2000, 2000});
    const auto before = fx.packets;

    SessionConfig c = *fx.t->config(3);
    c.paths[1].live = false;
    REQUIRE(fx.t->upsert(3, c).ok());
    fx.bytes.clear();
    fx.packets.clear();
    fx.send(20'000);
    CHECK(fx.packets.count(0x101) == 0);  // not one packet after the swap
    check_shares(fx, {4000, 0, 2000});
    fx.check_one_sequence_space();  // 0..39999 across the swap: no gap, no duplicate

    // It comes back (re-registration): shares as at first.
    c.paths[1].live = true;
    REQUIRE(fx.t->upsert(3, c).ok());
    fx.bytes.clear();
    fx.packets.clear();
    fx.send(20'000);
    check_shares(fx, {4000, 2000, 2000});
    fx.check_one_sequence_space();
    CHECK(before.at(0x101) > 0);

    // Down to one live path: everything there, no scheduler state touched.
    c.paths[0].live = false;
    c.paths[1].live = false;
    REQUIRE(fx.t->upsert(3, c).ok());
    fx.packets.clear();
    fx.send(1000);
    CHECK(fx.packets.size() == 1);
    CHECK(fx.packets[0x102] == 1000);
    CHECK(fx.t->config(3)->plan.n_order == 1);
}

TEST_CASE("a single path is unchanged: first live path, no scheduler state", "[striping]") {
    Fixture fx(session({7000}));
    fx.send(5000);
    CHECK(fx.packets[0x100] == 5000);
    CHECK(fx.t->state(3).stripe.version == 0);  // the scheduler never ran
    fx.check_one_sequence_space();
    for (auto mode : {StripingMode::kWeighted, StripingMode::kOverflow}) {
        Fixture two(session({1000, 1000}, mode));
        SessionConfig c = *two.t->config(3);
        c.paths[0].live = false;
        REQUIRE(two.t->upsert(3, c).ok());
        two.send(1000);
        CHECK(two.packets[0x101] == 1000);
        CHECK(two.t->state(3).stripe.version == 0);
    }
}

namespace {

// Offers `pps` packets of `size` inner bytes per second for `seconds` on a fake clock of 1 GHz;
// returns the bytes each path index got.
std::vector<std::uint64_t> offer(const SessionConfig& c, StripeState& st, std::uint64_t& now,
                                 double pps, std::uint32_t size, double seconds) {
    constexpr std::uint64_t kHz = 1'000'000'000;
    std::vector<std::uint64_t> got(c.n_paths, 0);
    const auto gap = static_cast<std::uint64_t>(kHz / pps);
    const auto n = static_cast<std::uint64_t>(pps * seconds);
    for (std::uint64_t i = 0; i < n; ++i) {
        now += gap;
        got[stripe_pick(c, st, size, now, kHz)] += size;
    }
    return got;
}

}  // namespace

TEST_CASE("overflow striping keeps the primary at its rate and spills the rest", "[striping]") {
    test::ensure_eal();
    auto rcu = std::move(Rcu::create(1).value());
    auto t = std::move(SessionTable::create("mpo", 8, *rcu).value());
    // DSL (BID 1) 8 Mbit/s = 1e6 bytes/s, LTE (BID 2) unlimited by rate.
    SessionConfig c = session({8000, 0}, StripingMode::kOverflow);
    REQUIRE(t->upsert(1, c).ok());
    const SessionConfig& cfg = *t->config(1);
    CHECK(cfg.plan.burst_bytes[0] == 10'000);  // default: 10 ms at the rate
    StripeState st;
    std::uint64_t now = 5'000'000'000;

    // Below the rate: everything on the primary.
    auto got = offer(cfg, st, now, 500, 1000, 2.0);  // 0.5e6 bytes/s
    CHECK(got[0] == 1'000'000);
    CHECK(got[1] == 0);

    // Three times the rate for 4 s: the primary carries its rate (plus at most its burst).
    got = offer(cfg, st, now, 3000, 1000, 4.0);
    INFO("primary " << got[0] << " overflow " << got[1]);
    CHECK(got[0] >= 4'000'000 * 0.99);
    CHECK(got[0] <= 4'000'000 + 10'000 + 1000);
    CHECK(got[0] + got[1] == 12'000'000);

    // Idle for a while: the bucket holds no more than its burst.
    now += 10'000'000'000;
    got = offer(cfg, st, now, 1'000'000, 1000, 0.001);  // 1000 packets within 1 ms
    CHECK(got[0] <= 10'000 + 1000 + 1000);
    CHECK(got[0] >= 10'000);

    rcu->synchronize();
}

TEST_CASE("overflow striping: preference order, a configured burst, three paths", "[striping]") {
    test::ensure_eal();
    auto rcu = std::move(Rcu::create(1).value());
    auto t = std::move(SessionTable::create("mpo3", 8, *rcu).value());
    // Path 2 preferred (2 Mbit/s), then path 0 (4 Mbit/s, rate_kbps over weight), then path 1.
    SessionConfig c = session({999, 50000, 2000}, StripingMode::kOverflow);
    c.paths[2].preference = 1;
    c.paths[0].preference = 2;
    c.paths[0].rate_kbps = 4000;
    c.paths[1].preference = 3;
    c.overflow_burst_bytes = 4000;
    REQUIRE(t->upsert(1, c).ok());
    const SessionConfig& cfg = *t->config(1);
    REQUIRE(cfg.plan.n_order == 3);
    CHECK(cfg.plan.order[0] == 2);
    CHECK(cfg.plan.order[1] == 0);
    CHECK(cfg.plan.order[2] == 1);
    StripeState st;
    std::uint64_t now = 1;
    // 20 Mbit/s offered (2.5e6 bytes/s) for 2 s: 0.25e6 B/s on path 2, 0.5e6 on path 0, the
    // rest on path 1 (its 50 Mbit/s rate is not reached, and it is the last anyway).
    auto got = offer(cfg, st, now, 2500, 1000, 2.0);
    CHECK(got[2] >= 500'000 * 0.99);
    CHECK(got[2] <= 500'000 + 4000 + 1000);
    CHECK(got[0] >= 1'000'000 * 0.99);
    CHECK(got[0] <= 1'000'000 + 4000 + 1000);
    CHECK(got[0] + got[1] + got[2] == 5'000'000);

    // The preferred path goes down: path 0 is now the primary.
    c.paths[2].live = false;
    REQUIRE(t->upsert(1, c).ok());
    got = offer(*t->config(1), st, now, 2500, 1000, 2.0);
    CHECK(got[2] == 0);
    CHECK(got[0] >= 1'000'000 * 0.99);
    CHECK(got[0] <= 1'000'000 + 4000 + 1000);
    rcu->synchronize();
}

TEST_CASE("the session table refuses bad striping settings", "[striping]") {
    test::ensure_eal();
    auto rcu = std::move(Rcu::create(1).value());
    auto t = std::move(SessionTable::create("mpv", 8, *rcu).value());
    SessionConfig c = session({1, 2});
    c.striping = static_cast<StripingMode>(7);
    auto r = t->upsert(1, c);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error() == "session 1: unknown striping mode 7");
    c.striping = StripingMode::kOverflow;
    c.overflow_burst_bytes = kMaxOverflowBurstBytes + 1;
    r = t->upsert(1, c);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().find("overflow burst") != std::string::npos);
    c.overflow_burst_bytes = kMaxOverflowBurstBytes;
    CHECK(t->upsert(1, c).ok());
    rcu->synchronize();
}
