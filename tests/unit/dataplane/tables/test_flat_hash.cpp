// FlatHash (tables/flat_hash.hpp): against std::unordered_map under random operations, bounded
// probes, a clear refusal when full, and a reader thread racing the writer's inserts, updates
// and deletes on a real DPDK EAL with a real RCU QSBR variable.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstring>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

#include "../eal_fixture.hpp"
#include "tables/flat_hash.hpp"

using namespace hag::dp;

namespace {

using H16 = FlatHash<16>;
using H4 = FlatHash<4>;

H16::Key key16(std::uint64_t a, std::uint64_t b = 0) {
    H16::Key k{};
    std::memcpy(k.data(), &a, 8);
    std::memcpy(k.data() + 8, &b, 8);
    return k;
}

H4::Key key4(std::uint32_t a) {
    H4::Key k{};
    std::memcpy(k.data(), &a, 4);
    return k;
}

std::unique_ptr<Rcu> make_rcu() {
    test::ensure_eal();
    return std::move(Rcu::create(4).value());
}

// Random adds (new keys and overwrites), removes (present and absent) and lookups, checked
// against std::unordered_map after every operation, then every key of the model and a range of
// absent ones, through lookup and lookup_bulk.
template <typename H, typename MakeKey>
void property(const char* name, std::uint32_t entries, std::uint64_t key_space, MakeKey make_key,
              std::uint32_t seed) {
    auto rcu = make_rcu();
    auto h = std::move(H::create(name, entries, *rcu).value());
    std::unordered_map<std::uint64_t, std::uint32_t> model;
    std::mt19937_64 rng(seed);
    for (int op = 0; op < 60000; ++op) {
        const std::uint64_t k = rng() % key_space;
        const unsigned what = static_cast<unsigned>(rng() % 10);
        if (what < 5) {
            if (model.size() >= entries && model.count(k) == 0) {
                continue;  // stay within the sizing
            }
            const auto v = static_cast<std::uint32_t>(rng() % (H::kMaxValue + 1ULL));
            auto r = h->add(make_key(k), v);
            INFO((r.ok() ? std::string() : r.error()));
            REQUIRE(r.ok());
            model[k] = v;
        } else if (what < 8) {
            CHECK(h->remove(make_key(k)) == (model.erase(k) == 1));
        } else {
            std::uint32_t v = 0;
            const auto it = model.find(k);
            REQUIRE(h->lookup(make_key(k), v) == (it != model.end()));
            if (it != model.end()) {
                CHECK(v == it->second);
            }
        }
        REQUIRE(h->size() == model.size());
    }
    // Every key of the model and as many others (mostly absent), 64 at a time in bulk.
    std::vector<std::uint64_t> probe;
    for (const auto& [k, v] : model) {
        probe.push_back(k);
        probe.push_back(rng() % key_space);
    }
    for (std::size_t base = 0; base < probe.size(); base += H::kBulkMax) {
        typename H::Key keys[H::kBulkMax];
        const typename H::Key* ptrs[H::kBulkMax];
        std::uint32_t values[H::kBulkMax];
        unsigned n = 0;
        for (; n < H::kBulkMax && base + n < probe.size(); ++n) {
            keys[n] = make_key(probe[base + n]);
            ptrs[n] = &keys[n];
        }
        const std::uint64_t found = h->lookup_bulk(ptrs, n, values);
        for (unsigned i = 0; i < n; ++i) {
            const auto it = model.find(probe[base + i]);
            REQUIRE(((found >> i) & 1) == (it != model.end() ? 1U : 0U));
            if (it != model.end()) {
                CHECK(values[i] == it->second);
            }
        }
    }
    CHECK(h->max_reach() < H::kMaxProbe);
    rcu->synchronize();
}

}  // namespace

TEST_CASE("FlatHash answers as std::unordered_map under random operations", "[tables][flat]") {
    // Dense small key spaces (many overwrites, removes of present keys, deleted slots reused
    // after their grace period) and sparse ones, both key sizes.
    property<H16>(
        "fh_p16a", 2000, 3000, [](std::uint64_t k) { return key16(k, k * 7); }, 1);
    property<H16>(
        "fh_p16b", 500, 1u << 20, [](std::uint64_t k) { return key16(k << 40, 0); }, 2);
    property<H4>(
        "fh_p4a", 2000, 3000, [](std::uint64_t k) { return key4(static_cast<std::uint32_t>(k)); },
        3);
    property<H4>(
        "fh_p4b", 500, 1u << 30,
        [](std::uint64_t k) { return key4(static_cast<std::uint32_t>(k * 2654435761u)); }, 4);
}

TEST_CASE("FlatHash holds its sizing with bounded probes and refuses, never loops, when full",
          "[tables][flat]") {
    auto rcu = make_rcu();
    auto h = std::move(H16::create("fh_full", 100000, *rcu).value());
    for (std::uint32_t i = 0; i < 100000; ++i) {
        REQUIRE(h->add(key16(0x20010db800000000ULL + i, 0), i).ok());
    }
    CHECK(h->size() == 100000);
    CHECK(h->max_reach() < H16::kMaxProbe);
    std::uint32_t v = 0;
    for (std::uint32_t i = 0; i < 100000; i += 97) {
        REQUIRE(h->lookup(key16(0x20010db800000000ULL + i, 0), v));
        CHECK(v == i);
    }
    // Fill up: adds eventually fail with a message (no free slot in the window), and the
    // table stays correct for what it holds.
    std::uint32_t added = 0;
    std::string why;
    for (std::uint32_t i = 0; i < 1000000; ++i) {
        auto r = h->add(key16(i, 1), i);
        if (!r) {
            why = r.error();
            break;
        }
        ++added;
    }
    CHECK(why.find("table full") != std::string::npos);
    CHECK(added < h->buckets() * H16::kSlots);
    CHECK(h->lookup(key16(0x20010db800000000ULL + 5, 0), v));
    CHECK(v == 5);
    CHECK_FALSE(h->add(key16(1, 2), H16::kMaxValue + 1).ok());
    // Removing frees room again once the grace period is over (no reader registered: at once).
    for (std::uint32_t i = 0; i < added; ++i) {
        REQUIRE(h->remove(key16(i, 1)));
    }
    CHECK(h->size() == 100000);
    CHECK(h->add(key16(7, 7), 7).ok());
}

TEST_CASE("FlatHash readers never miss stable keys nor see wrong values while the writer churns",
          "[tables][flat][rcu]") {
    auto rcu = make_rcu();
    // Small (2048 buckets): churned keys share buckets and spill over with stable ones, deleted
    // slots are recycled, reaches grow and shrink.
    auto h = std::move(H16::create("fh_race", 4000, *rcu).value());
    constexpr std::uint32_t kStable = 2000;
    for (std::uint32_t i = 0; i < kStable; ++i) {
        REQUIRE(h->add(key16(i, 0xabc), i).ok());
    }
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> lookups{0}, failures{0}, wrong{0};
    rcu->register_reader(0);
    std::thread reader([&] {
        std::uint32_t i = 0;
        std::mt19937 rng(9);
        while (!stop.load(std::memory_order_relaxed)) {
            // A stable key: always found, with its value.
            std::uint32_t v = 0;
            const std::uint32_t k = i % kStable;
            if (!h->lookup(key16(k, 0xabc), v) || v != k) {
                failures.fetch_add(1, std::memory_order_relaxed);
            }
            // A churned key: absent, or present with the one value it ever has (its key's
            // number in the low half, the round in the high half).
            const std::uint32_t c = rng() % 4000;
            if (h->lookup(key16(c, 0xdef), v) && (v & 0xffff) != c) {
                wrong.fetch_add(1, std::memory_order_relaxed);
            }
            // And in bulk.
            H16::Key keys[8];
            const H16::Key* ptrs[8];
            std::uint32_t vals[8];
            for (unsigned j = 0; j < 8; ++j) {
                keys[j] = key16((k + j * 211) % kStable, 0xabc);
                ptrs[j] = &keys[j];
            }
            const std::uint64_t found = h->lookup_bulk(ptrs, 8, vals);
            for (unsigned j = 0; j < 8; ++j) {
                if (((found >> j) & 1) == 0 || vals[j] != (k + j * 211) % kStable) {
                    failures.fetch_add(1, std::memory_order_relaxed);
                }
            }
            lookups.fetch_add(1, std::memory_order_relaxed);
            if (++i % 32 == 0) {
                rcu->quiescent(0);
            }
        }
        rcu->unregister_reader(0);
    });
    // The writer adds, updates and removes up to 1,500 other keys in rounds.
    for (std::uint32_t round = 0; round < 40; ++round) {
        for (std::uint32_t c = round % 3; c < 4000; c += 3) {
            auto r = h->add(key16(c, 0xdef), c | round << 16);
            INFO((r.ok() ? std::string() : r.error()));
            REQUIRE(r.ok());
        }
        for (std::uint32_t c = round % 3; c < 4000; c += 6) {
            REQUIRE(h->add(key16(c, 0xdef), c | (round + 100) << 16).ok());
        }
        for (std::uint32_t c = round % 3; c < 4000; c += 3) {
            REQUIRE(h->remove(key16(c, 0xdef)));
        }
        h->reclaim();
    }
    while (lookups.load() < 50000) {
        std::this_thread::yield();
    }
    stop = true;
    reader.join();
    CHECK(failures.load() == 0);
    CHECK(wrong.load() == 0);
    CHECK(h->size() == kStable);
    CHECK(h->max_reach() < H16::kMaxProbe);
}
