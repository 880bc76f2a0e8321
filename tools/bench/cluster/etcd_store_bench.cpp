// hag-etcd-bench: the write rate of hag-control's cluster binding store (EtcdStore) against an
// etcd, through the same code hag-control uses (not a test; figures for docs/scale-out.md).
//
//   hag-etcd-bench ENDPOINT SESSIONS BATCH
//
// Registers SESSIONS bindings (put + commit every BATCH changes: BATCH 1 is one registration
// per etcd transaction, larger BATCHes are hag-control's group commit under load), then
// re-registers them all (a handoff: the same key written again, conditional on its revision),
// reads each back as a takeover would (one request per key), then removes them. Prints one JSON
// object with the rates.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/etcd_store.hpp"
#include "hag/net/address.hpp"

using namespace hag::control;

namespace {

Session make_session(std::uint32_t i, Seconds expires) {
    Session s;
    s.nai = fmt::format("bench{}@example.net", i);
    Ipv6Address a = *hag::net::parse_ipv6_address("2001:db8:100::");
    a[4] = static_cast<std::uint8_t>(i >> 16);
    a[5] = static_cast<std::uint8_t>(i >> 8);
    a[6] = static_cast<std::uint8_t>(i);
    s.home_prefixes.push_back(Prefix{a, 64});
    s.uplink_gre_key = i + 1;
    s.last_sequence = 1;
    for (std::uint16_t bid = 1; bid <= 2; ++bid) {
        Path p;
        p.bid = bid;
        p.mag_id = fmt::format("mag{}@example.net", i);
        p.coa = CareOfAddress{*hag::net::parse_ipv6_address("2001:db8:a::7")};
        p.local = CareOfAddress{*hag::net::parse_ipv6_address("2001:db8::1")};
        p.downlink_gre_key = 77;
        p.expires_at = expires;
        s.paths.push_back(p);
    }
    return s;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: hag-etcd-bench ENDPOINT SESSIONS BATCH\n");
        return 2;
    }
    const std::uint32_t n = static_cast<std::uint32_t>(std::strtoul(argv[2], nullptr, 10));
    const std::uint32_t batch =
        std::max<std::uint32_t>(1, static_cast<std::uint32_t>(std::strtoul(argv[3], nullptr, 10)));
    spdlog::set_level(spdlog::level::warn);  // no line per loaded binding
    store::EtcdOptions o;
    o.endpoint = argv[1];
    o.prefix = "/hag-bench/";
    o.node = "bench";
    o.timeout = std::chrono::milliseconds(10000);
    store::Recovery rec;
    auto st = store::EtcdStore::open(o, rec);
    if (!st) {
        std::fprintf(stderr, "hag-etcd-bench: %s\n", st.error().c_str());
        return 1;
    }
    auto& s = **st;
    const std::int64_t to_wall = std::chrono::duration_cast<std::chrono::seconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count();
    auto phase = [&](const char* name, auto&& change) -> double {
        const auto t = std::chrono::steady_clock::now();
        for (std::uint32_t i = 0; i < n; ++i) {
            change(i);
            if ((i + 1) % batch == 0 || i + 1 == n) {
                if (auto r = s.commit(); !r) {
                    std::fprintf(stderr, "hag-etcd-bench: %s: %s\n", name, r.error().c_str());
                    std::exit(1);
                }
            }
        }
        return n / seconds_since(t);
    };
    // Lifetimes spread over 10 minutes, as registrations arriving over time would be.
    const double reg = phase("register", [&](std::uint32_t i) {
        s.put(make_session(i, static_cast<Seconds>(600 + i % 600)), to_wall);
    });
    const double handoff = phase("handoff", [&](std::uint32_t i) {
        auto x = make_session(i, static_cast<Seconds>(600 + i % 600));
        x.last_sequence = 2;
        x.paths[0].coa = CareOfAddress{*hag::net::parse_ipv6_address("2001:db8:b::7")};
        s.put(x, to_wall);
    });
    // A takeover's lookup: one read per PBU, on the signalling thread (commits do nothing here).
    const double load = phase("load", [&](std::uint32_t i) {
        auto r = s.load(fmt::format("bench{}@example.net", i));
        if (!r || !*r) {
            std::fprintf(stderr, "hag-etcd-bench: load: %s\n", r ? "missing" : r.error().c_str());
            std::exit(1);
        }
    });
    const double del =
        phase("remove", [&](std::uint32_t i) { s.remove(fmt::format("bench{}@example.net", i)); });
    std::map<std::string, std::uint64_t> c;
    s.add_counters(c);
    std::printf(
        "{\"sessions\": %u, \"batch\": %u, \"register_per_s\": %.0f, \"handoff_per_s\": %.0f, "
        "\"load_per_s\": %.0f, \"remove_per_s\": %.0f, \"etcd_requests\": %llu, "
        "\"lease_grants\": %llu}\n",
        n, batch, reg, handoff, load, del,
        static_cast<unsigned long long>(c["cluster.etcd_requests"]),
        static_cast<unsigned long long>(c["cluster.lease_grants"]));
    return 0;
}
