// hag-gen: DPDK traffic generator for hag's benchmarks (docs/benchmarks.md#hag-gen).
//
//   hag-gen pcap --direction downlink|uplink --subscribers N --packets P --out FILE [profile]
//   hag-gen live --direction downlink|uplink --subscribers N --vdev SPEC [--rx-port 1]
//                [--seconds S | --count C] [--pps R] [profile]      (JSON report on stdout)
//   hag-gen sessions --subscribers N [--paths K] [--ipv4]           (what the sessions are)
//
// profile: --sizes 64|imix|SIZE:WEIGHT,... --family 6|4|46 --paths K --path-weights 1,3
//          --skew 0,4 --permille P --loss-permille L --seed S
#include <fmt/format.h>
#include <rte_eal.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <sstream>

#include "bench/subscribers.hpp"
#include "gen.hpp"
#include "hag/net/address.hpp"
#include "live.hpp"
#include "runtime/eal_cleanup.hpp"

namespace {

using namespace hag::gen;
namespace bench = hag::dp::bench;

std::vector<std::uint32_t> parse_list(const std::string& s) {
    std::vector<std::uint32_t> out;
    std::stringstream in(s);
    for (std::string item; std::getline(in, item, ',');) {
        out.push_back(static_cast<std::uint32_t>(std::stoul(item)));
    }
    return out;
}

std::string addr(const hag::dp::IpAddr& a) {
    if (a.family == hag::dp::Family::kIpv4) {
        return hag::net::format(
            hag::net::Ipv4Address{a.bytes[0], a.bytes[1], a.bytes[2], a.bytes[3]});
    }
    return hag::net::format(a.bytes);
}

struct ProfileArgs {
    std::string direction = "downlink", sizes = "64", family = "6", path_weights, skew;
    Profile p;
};

void add_profile(CLI::App* c, ProfileArgs& a) {
    c->add_option("--direction", a.direction, "downlink or uplink")
        ->check(CLI::IsMember({"downlink", "uplink"}));
    c->add_option("--subscribers", a.p.subscribers, "subscribers 0..N-1 (bench/subscribers.hpp)");
    c->add_option("--sizes", a.sizes, "64, imix, or SIZE:WEIGHT,... (even sizes 64..1500)");
    c->add_option("--family", a.family, "6, 4 or 46 (both, alternating per subscriber)")
        ->check(CLI::IsMember({"6", "4", "46"}));
    c->add_option("--paths", a.p.paths, "uplink: care-of addresses per session (1-8)");
    c->add_option("--path-weights", a.path_weights, "uplink: share of each path, e.g. 1,3");
    c->add_option("--skew", a.skew, "uplink: delay of each path in packet slots, e.g. 0,4");
    c->add_option("--permille", a.p.permille, "uplink: packets swapped with the session's next");
    c->add_option("--loss-permille", a.p.loss_permille, "uplink: numbers never sent");
    c->add_option("--seed", a.p.seed, "order of subscribers, sizes and paths");
}

hag::Result<Profile, std::string> finish(ProfileArgs& a) {
    Profile p = a.p;
    p.direction = a.direction == "uplink" ? Direction::kUplink : Direction::kDownlink;
    auto sizes = parse_sizes(a.sizes);
    if (!sizes) {
        return hag::unexpected(sizes.error());
    }
    p.sizes = *sizes;
    p.ipv6 = a.family != "4";
    p.ipv4 = a.family != "6";
    try {
        if (!a.path_weights.empty()) {
            p.path_weights = parse_list(a.path_weights);
        }
        if (!a.skew.empty()) {
            p.skew = parse_list(a.skew);
        }
    } catch (const std::exception&) {
        return hag::unexpected(std::string("--path-weights / --skew: comma-separated numbers"));
    }
    if (auto v = validate(p); !v) {
        return hag::unexpected(v.error());
    }
    return p;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"hag-gen: traffic generator for hag's benchmarks (docs/benchmarks.md)"};
    app.require_subcommand(1);

    ProfileArgs pa, la;
    auto* pc = app.add_subcommand("pcap", "write a pcap (for net_pcap rx_pcap=,infinite_rx=1)");
    add_profile(pc, pa);
    std::uint64_t packets = 0;
    std::string out;
    pc->add_option("--packets", packets, "frames (default: one per subscriber)");
    pc->add_option("--out", out, "pcap file")->required();

    auto* lc = app.add_subcommand("live", "send over a DPDK port, receive, report JSON");
    add_profile(lc, la);
    LiveOptions lo;
    lc->add_option("--vdev", lo.vdevs, "EAL --vdev (repeatable), e.g. net_ring0");
    lc->add_option("--eal-args", lo.eal_args, "other EAL arguments");
    lc->add_option("--lcores", lo.lcores, "EAL -l");
    lc->add_option("--tx-port", lo.tx_port, "port id to send on");
    lc->add_option("--rx-port", lo.rx_port, "port id to receive on (default: the TX port)");
    lc->add_option("--seconds", lo.seconds, "sending time");
    lc->add_option("--count", lo.count, "packets to send (0: until --seconds)");
    lc->add_option("--pps", lo.pps, "offered rate (0: as fast as the port takes them)");
    lc->add_option("--drain", lo.drain_seconds, "seconds to keep receiving after the last send");

    auto* sc = app.add_subcommand("sessions", "print the sessions the traffic belongs to (JSON)");
    std::uint32_t s_subs = 4;
    unsigned s_paths = 1;
    bool s_v4 = false;
    sc->add_option("--subscribers", s_subs, "subscribers 0..N-1")
        ->check(CLI::Range(1u, bench::kMaxSubscribers));
    sc->add_option("--paths", s_paths, "paths per session")->check(CLI::Range(1u, 8u));
    sc->add_flag("--ipv4", s_v4, "with the IPv4 home address");
    CLI11_PARSE(app, argc, argv);

    if (pc->parsed()) {
        auto p = finish(pa);
        if (!p) {
            std::fprintf(stderr, "hag-gen: %s\n", p.error().c_str());
            return 2;
        }
        if (auto r = write_pcap(out, *p, packets ? packets : p->subscribers); !r) {
            std::fprintf(stderr, "hag-gen: %s\n", r.error().c_str());
            return 1;
        }
        return 0;
    }
    if (lc->parsed()) {
        auto p = finish(la);
        if (!p) {
            std::fprintf(stderr, "hag-gen: %s\n", p.error().c_str());
            return 2;
        }
        auto r = run_live(*p, lo);
        hag::dp::eal_cleanup();  // a no-op error when the EAL did not start
        if (!r) {
            std::fprintf(stderr, "hag-gen: %s\n", r.error().c_str());
            return 1;
        }
        std::printf("%s\n", to_json(*r, *p).c_str());
        return 0;
    }
    // sessions: one JSON object per line.
    for (std::uint32_t i = 0; i < s_subs; ++i) {
        const auto c =
            bench::session_config(i, 0, {}, s_paths, hag::dp::StripingMode::kWeighted, s_v4);
        std::string prefixes, paths;
        for (unsigned k = 0; k < c.n_prefixes; ++k) {
            prefixes += fmt::format("{}\"{}/{}\"", k ? "," : "", addr(c.prefixes[k].addr),
                                    c.prefixes[k].length);
        }
        for (unsigned k = 0; k < c.n_paths; ++k) {
            paths +=
                fmt::format("{}{{\"bid\":{},\"coa\":\"{}\",\"downlink_key\":{}}}", k ? "," : "",
                            c.paths[k].bid, addr(c.paths[k].coa), c.paths[k].downlink_key);
        }
        std::printf("{\"subscriber\":%u,\"uplink_key\":%u,\"prefixes\":[%s],\"paths\":[%s]}\n", i,
                    c.uplink_key, prefixes.c_str(), paths.c_str());
    }
    return 0;
}
