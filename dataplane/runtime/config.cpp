#include "runtime/config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <set>
#include <utility>

#include "hag/log/log.hpp"
#include "multipath/scheduler.hpp"
#include "programmer/path_encapsulation.hpp"
#include "runtime/limits.hpp"
#include "runtime/text.hpp"
#include "telemetry/metrics_server.hpp"

namespace hag::dp {

namespace {

// The CPUs of an lcore list like "0-3,6" (nullopt for forms not understood here: lcore-to-CPU
// maps with '@' or '(', which the EAL checks itself).
std::optional<std::set<unsigned>> lcore_list(const std::string& text) {
    std::set<unsigned> cpus;
    std::size_t i = 0;
    auto number = [&](unsigned& out) {
        if (i >= text.size() || text[i] < '0' || text[i] > '9')
            return false;
        out = 0;
        for (; i < text.size() && text[i] >= '0' && text[i] <= '9' && out < 100000; ++i)
            out = out * 10 + static_cast<unsigned>(text[i] - '0');
        return true;
    };
    while (i < text.size()) {
        unsigned a = 0, b = 0;
        if (!number(a))
            return std::nullopt;
        b = a;
        if (i < text.size() && text[i] == '-') {
            ++i;
            if (!number(b) || b < a || b - a > 4096)
                return std::nullopt;
        }
        for (unsigned c = a; c <= b; ++c)
            cpus.insert(c);
        if (i < text.size() && text[i++] != ',')
            return std::nullopt;
    }
    return cpus;
}

// The lcores eal_args give with -l / --lcores, if they are a plain list, and the index of the
// argument that names them.
std::optional<std::pair<std::set<unsigned>, int>> eal_lcores(const v1::DataplaneConfig& cfg) {
    const auto& a = cfg.eal_args();
    std::optional<std::set<unsigned>> cpus;
    for (int i = 0; i < a.size(); ++i) {
        const std::string& s = a.Get(i);
        if ((s == "-l" || s == "--lcores") && i + 1 < a.size()) {
            cpus = lcore_list(a.Get(i + 1));
        } else if (s.rfind("--lcores=", 0) == 0) {
            cpus = lcore_list(s.substr(9));
        } else if (s.rfind("-l", 0) == 0 && s.size() > 2 && s[2] != '-') {
            cpus = lcore_list(s.substr(2));
        } else {
            continue;
        }
        if (!cpus) {
            return std::nullopt;
        }
        return std::make_pair(*cpus, i);
    }
    return std::nullopt;
}

// A static session's remote_anchors (distributed anchoring, docs/dataplane.md#remote-anchors-
// distributed-anchoring).
void validate_remote_anchors(const v1::StaticSession& s, const config::ParseInfoTree* t,
                             const std::set<std::string>& names, bool exception,
                             const config::Reporter& at) {
    if (s.remote_anchors_size() > static_cast<int>(kMaxRemoteAnchors)) {
        at.at(t, s, "remote_anchors", -1,
              fmt::format("sessions.remote_anchors: at most {}", kMaxRemoteAnchors));
    }
    for (int j = 0; j < s.remote_anchors_size(); ++j) {
        const auto& a = s.remote_anchors(j);
        const auto* at_ = config::Reporter::nested(t, s, "remote_anchors", j);
        auto prefix = parse_ip_prefix(a.prefix());
        if (!prefix) {
            at.at(at_, a, "prefix", -1, "sessions.remote_anchors.prefix: " + prefix.error());
        } else {
            bool own = false;
            for (const auto& text : s.prefixes()) {
                auto p = parse_ip_prefix(text);
                own = own || (p && *p == *prefix);
            }
            if (!own) {
                at.at(at_, a, "prefix", -1,
                      fmt::format("sessions.remote_anchors.prefix: '{}' is not one of the "
                                  "session's prefixes",
                                  a.prefix()));
            }
        }
        auto local = parse_ip(a.local());
        auto anchor = parse_ip(a.anchor());
        if (!local)
            at.at(at_, a, "local", -1, "sessions.remote_anchors.local: " + local.error());
        if (!anchor)
            at.at(at_, a, "anchor", -1, "sessions.remote_anchors.anchor: " + anchor.error());
        if (local && anchor && local->family != anchor->family) {
            at.at(at_, a, "anchor", -1,
                  "sessions.remote_anchors: local and anchor differ in address family");
        }
        if (a.downlink_key() != 0 && a.downlink_key() == s.uplink_key()) {
            at.at(at_, a, "downlink_key", -1,
                  "sessions.remote_anchors.downlink_key: the session's uplink_key");
        }
        if (a.next_hop_mac().empty()) {
            if (!exception) {
                at.at(at_, a, "next_hop_mac", -1,
                      "sessions.remote_anchors.next_hop_mac: needed when exception_path is false");
            }
        } else if (auto m = parse_mac(a.next_hop_mac()); !m) {
            at.at(at_, a, "next_hop_mac", -1, "sessions.remote_anchors.next_hop_mac: " + m.error());
        }
        if (names.count(a.port()) == 0) {
            at.at(at_, a, "port", -1,
                  fmt::format("sessions.remote_anchors.port: no port named '{}'", a.port()));
        }
    }
}

// workers, handoff_ring and core_routes (docs/dataplane.md#workers-and-ports); fills defaults.
void validate_workers(v1::DataplaneConfig& cfg, const config::ParseInfoTree* tree,
                      const config::Reporter& at) {
    if (cfg.workers() > kMaxWorkers) {
        at.at(tree, cfg, "workers", -1,
              fmt::format("workers: {} is more than {}", cfg.workers(), kMaxWorkers));
    } else if (auto lcores = eal_lcores(cfg);
               lcores && cfg.workers() > 1 && lcores->first.size() < cfg.workers() + 1) {
        at.at(tree, cfg, "workers", -1,
              fmt::format("workers: {} worker(s) need {} lcores in eal_args (the main lcore and "
                          "one per worker); the lcore list gives {}",
                          cfg.workers(), cfg.workers() + 1, lcores->first.size()));
    }
    const std::uint32_t ring = cfg.handoff_ring();
    if (ring != 0 && (ring < 256 || ring > 65536 || (ring & (ring - 1)) != 0)) {
        at.at(tree, cfg, "handoff_ring", -1,
              fmt::format("handoff_ring: {} must be a power of two in 256-65536", ring));
    }
    for (int i = 0; i < cfg.core_routes_size(); ++i) {
        const auto& r = cfg.core_routes(i);
        const auto* t = config::Reporter::nested(tree, cfg, "core_routes", i);
        if (auto pr = parse_ip_prefix(r.prefix()); !pr) {
            at.at(t, r, "prefix", -1, "core_routes.prefix: " + pr.error());
        }
        bool found = false;
        for (const auto& p : cfg.ports()) {
            found |= p.name() == r.port() && p.role() == v1::PortConfig::CORE;
        }
        if (!found) {
            at.at(t, r, "port", -1,
                  fmt::format("core_routes.port: '{}' is not a CORE port", r.port()));
        }
    }
    if (cfg.core_routes_size() > static_cast<int>(kMaxCoreRoutes)) {
        at.at(tree, cfg, "core_routes", kMaxCoreRoutes,
              fmt::format("core_routes: at most {} routes", kMaxCoreRoutes));
    }
    if (cfg.workers() == 0)
        cfg.set_workers(1);
    if (cfg.handoff_ring() == 0)
        cfg.set_handoff_ring(4096);
}

// reorder { ... }: checks, then fills the defaults (docs/dataplane.md#reorder).
void validate_reorder(v1::DataplaneConfig& cfg, const config::ParseInfoTree* tree,
                      const config::Reporter& at) {
    auto& r = *cfg.mutable_reorder();
    const auto* t = config::Reporter::nested(tree, cfg, "reorder", -1);
    const std::uint32_t mbufs = cfg.mbufs() == 0 ? 16383 : cfg.mbufs();
    if (r.timeout_us() == 0)
        r.set_timeout_us(5000);
    if (r.timeout_us() < 100 || r.timeout_us() > 1'000'000) {
        at.at(t, r, "timeout_us", -1,
              fmt::format("reorder.timeout_us: {} is not within 100-1000000", r.timeout_us()));
    }
    if (!r.has_min_timeout_us())
        r.set_min_timeout_us(std::min<std::uint32_t>(1000, r.timeout_us()));
    if (r.min_timeout_us() == 0 || r.min_timeout_us() > r.timeout_us()) {
        at.at(t, r, "min_timeout_us", -1,
              fmt::format("reorder.min_timeout_us: {} must be within 1-timeout_us ({})",
                          r.min_timeout_us(), r.timeout_us()));
    }
    if (r.session_packets() == 0)
        r.set_session_packets(256);
    if (const auto v = r.session_packets(); v < 8 || v > 4096 || (v & (v - 1)) != 0) {
        at.at(t, r, "session_packets", -1,
              fmt::format("reorder.session_packets: {} must be a power of two in 8-4096", v));
    }
    if (r.global_packets() == 0) {
        // A quarter of the mbufs, at most 4096, at least one session's worth. Checked like a
        // given value below: with very few mbufs even one session's worth does not fit (the
        // default must not be something the same file, printed back, would refuse).
        r.set_global_packets(
            std::max(r.session_packets(), std::min<std::uint32_t>(4096, mbufs / 4)));
        if (r.global_packets() > mbufs / 2) {
            at.file(
                fmt::format("mbufs: {} leave no room for one session's reorder buffer "
                            "(reorder.session_packets {} needs at least {} mbufs): raise "
                            "mbufs or lower reorder.session_packets",
                            mbufs, r.session_packets(), 2 * r.session_packets()));
        }
    } else if (r.global_packets() < r.session_packets() || r.global_packets() > mbufs / 2) {
        at.at(t, r, "global_packets", -1,
              fmt::format("reorder.global_packets: {} must be within session_packets ({}) and "
                          "half the mbufs ({}): held packets must not starve reception",
                          r.global_packets(), r.session_packets(), mbufs / 2));
    }
    if (r.buffers() == 0)
        r.set_buffers(1024);
    if (r.buffers() > 65536) {
        at.at(t, r, "buffers", -1, fmt::format("reorder.buffers: {} is above 65536", r.buffers()));
    }
    if (!r.has_enabled())
        r.set_enabled(true);
    if (r.late_policy() == v1::ReorderConfig::LATE_DEFAULT)
        r.set_late_policy(v1::ReorderConfig::DROP);
}

// reassembly { ... }: checks, then the defaults (docs/dataplane.md#outer-fragment-reassembly).
void validate_reassembly(v1::DataplaneConfig& cfg, const config::ParseInfoTree* tree,
                         const config::Reporter& at) {
    auto& r = *cfg.mutable_reassembly();
    const auto* t = config::Reporter::nested(tree, cfg, "reassembly", -1);
    const std::uint32_t mbufs = cfg.mbufs() == 0 ? 16383 : cfg.mbufs();
    const std::uint32_t workers = cfg.workers() == 0 ? 1 : cfg.workers();
    // A packet waiting for its last fragment holds at most 7 (rte_ip_frag keeps 8 per packet).
    constexpr std::uint32_t kHeld = 7;
    if (!r.has_enabled())
        r.set_enabled(true);
    if (r.timeout_ms() == 0)
        r.set_timeout_ms(1000);
    if (r.timeout_ms() < 10 || r.timeout_ms() > 30000) {
        at.at(t, r, "timeout_ms", -1,
              fmt::format("reassembly.timeout_ms: {} is not within 10-30000", r.timeout_ms()));
    }
    if (r.max_packets() == 0) {
        r.set_max_packets(
            std::clamp<std::uint32_t>(mbufs / (8 * kHeld * std::max(1u, workers)), 16, 1024));
        if (r.enabled() && workers * r.max_packets() * kHeld > mbufs / 2) {
            at.file(
                fmt::format("mbufs: {} are too few for outer fragment reassembly ({} "
                            "worker(s) x 16 packets x 7 fragments must be at most half "
                            "of them): raise mbufs or set reassembly {{ enabled: false }}",
                            mbufs, workers));
        }
    } else if (r.max_packets() > 65536 ||
               (r.enabled() && std::uint64_t{workers} * r.max_packets() * kHeld > mbufs / 2)) {
        at.at(t, r, "max_packets", -1,
              fmt::format("reassembly.max_packets: {} must be within 1-65536 and workers ({}) "
                          "x max_packets x 7 within half the mbufs ({}): held fragments must "
                          "not starve reception",
                          r.max_packets(), workers, mbufs / 2));
    }
}

// mtu_action, icmp_errors_per_second, dscp: checks, then the defaults.
void validate_downlink(v1::DataplaneConfig& cfg, const config::ParseInfoTree* tree,
                       const config::Reporter& at) {
    if (!v1::MtuAction_IsValid(cfg.mtu_action())) {
        at.at(tree, cfg, "mtu_action", -1,
              fmt::format("mtu_action: {} is not PACKET_TOO_BIG or FRAGMENT",
                          static_cast<int>(cfg.mtu_action())));
    } else if (cfg.mtu_action() == v1::MTU_ACTION_DEFAULT) {
        cfg.set_mtu_action(v1::PACKET_TOO_BIG);
    }
    if (!cfg.has_icmp_errors_per_second()) {
        cfg.set_icmp_errors_per_second(100);
    } else if (cfg.icmp_errors_per_second() > 100000) {
        at.at(tree, cfg, "icmp_errors_per_second", -1,
              fmt::format("icmp_errors_per_second: {} is above 100000",
                          cfg.icmp_errors_per_second()));
    }
    auto& d = *cfg.mutable_dscp();
    const auto* t = config::Reporter::nested(tree, cfg, "dscp", -1);
    if (!v1::DscpConfig::Mode_IsValid(d.mode())) {
        at.at(t, d, "mode", -1,
              fmt::format("dscp.mode: {} is not COPY, FIXED or MAP", static_cast<int>(d.mode())));
    } else if (d.mode() == v1::DscpConfig::MODE_DEFAULT) {
        d.set_mode(v1::DscpConfig::COPY);
    }
    if (d.value() > 63) {
        at.at(t, d, "value", -1, fmt::format("dscp.value: {} is above 63", d.value()));
    }
    if (d.mode() != v1::DscpConfig::MAP && d.map_size() > 0) {
        at.at(t, d, "map", 0, "dscp.map: only with mode MAP");
    }
    std::set<std::uint32_t> seen;
    for (int i = 0; i < d.map_size(); ++i) {
        const auto& e = d.map(i);
        const auto* et = config::Reporter::nested(t, d, "map", i);
        if (e.inner() > 63 || e.outer() > 63) {
            at.at(et, e, e.inner() > 63 ? "inner" : "outer", -1,
                  fmt::format("dscp.map: code points are 0-63 ({} -> {})", e.inner(), e.outer()));
        } else if (!seen.insert(e.inner()).second) {
            at.at(et, e, "inner", -1, fmt::format("dscp.map: {} mapped twice", e.inner()));
        }
    }
}

void validate(v1::DataplaneConfig& cfg, const config::ParseInfoTree* tree,
              const config::Reporter& at) {
    const bool exception = !cfg.has_exception_path() || cfg.exception_path();
    std::set<std::string> names;
    int access = 0, core = 0;
    for (int i = 0; i < cfg.ports_size(); ++i) {
        const auto& p = cfg.ports(i);
        const auto* t = config::Reporter::nested(tree, cfg, "ports", i);
        if (p.name().empty()) {
            at.at(tree, cfg, "ports", i, "ports: a port needs a name");
        } else if (!names.insert(p.name()).second) {
            at.at(t, p, "name", -1, fmt::format("ports.name: '{}' used twice", p.name()));
        }
        if (p.device().empty()) {
            at.at(tree, cfg, "ports", i, "ports: a port needs a device (PCI address or vdev)");
        }
        if (p.role() == v1::PortConfig::ACCESS) {
            ++access;
        } else if (p.role() == v1::PortConfig::CORE) {
            ++core;
            if (p.next_hop_mac().empty() &&
                (!exception || (p.next_hop_ipv6().empty() && p.next_hop_ipv4().empty()))) {
                at.at(tree, cfg, "ports", i,
                      fmt::format("ports: core port '{}' needs next_hop_ipv6 / next_hop_ipv4 "
                                  "(resolved by the exception path) or a static next_hop_mac",
                                  p.name()));
            }
        } else {
            at.at(tree, cfg, "ports", i,
                  fmt::format("ports: port '{}' needs role ACCESS or CORE", p.name()));
        }
        if (!p.next_hop_mac().empty()) {
            if (auto m = parse_mac(p.next_hop_mac()); !m) {
                at.at(t, p, "next_hop_mac", -1, "ports.next_hop_mac: " + m.error());
            }
        }
        const std::string tap = p.tap_name().empty() ? "hag-" + p.name() : p.tap_name();
        if (exception && tap.size() > 15) {
            at.at(t, p, p.tap_name().empty() ? "name" : "tap_name", -1,
                  fmt::format("ports: TAP name '{}' is longer than 15 characters; set tap_name",
                              tap));
        }
        for (int j = 0; j < p.addresses_size(); ++j) {
            if (auto a = parse_ip(p.addresses(j)); !a) {
                at.at(t, p, "addresses", j, "ports.addresses: " + a.error());
            }
        }
        for (const char* f : {"next_hop_ipv6", "next_hop_ipv4"}) {
            const bool v6 = std::string(f) == "next_hop_ipv6";
            const std::string& text = v6 ? p.next_hop_ipv6() : p.next_hop_ipv4();
            if (text.empty()) {
                continue;
            }
            auto a = parse_ip(text);
            if (!a || a->family != (v6 ? Family::kIpv6 : Family::kIpv4)) {
                at.at(t, p, f, -1,
                      fmt::format("ports.{}: '{}' is not an {} address", f, text,
                                  v6 ? "IPv6" : "IPv4"));
            }
        }
        if (p.vlan_id() > 4094) {
            at.at(
                t, p, "vlan_id", -1,
                fmt::format("ports.vlan_id: {} is not within 1-4094 (0 = untagged)", p.vlan_id()));
        }
        for (const char* f : {"rx_ring", "tx_ring"}) {
            const auto v = std::string(f) == "rx_ring" ? p.rx_ring() : p.tx_ring();
            if (v != 0 && (v < 64 || v > 16384 || (v & (v - 1)) != 0)) {
                at.at(t, p, f, -1,
                      fmt::format("ports.{}: {} must be a power of two in 64-16384", f, v));
            }
        }
    }
    if (cfg.ports_size() > 0 && (access < 1 || core < 1)) {
        at.file(
            fmt::format("ports: at least one ACCESS and one CORE port are required (found {} and "
                        "{})",
                        access, core));
    } else if (cfg.ports_size() == 0) {
        at.file("ports: at least one ACCESS and one CORE port are required");
    } else if (cfg.ports_size() > static_cast<int>(kMaxPorts)) {
        at.file(
            fmt::format("ports: {} ports; at most {} are supported", cfg.ports_size(), kMaxPorts));
    }
    validate_workers(cfg, tree, at);
    if (cfg.access_mtu() != 0 && (cfg.access_mtu() < 1280 || cfg.access_mtu() > 9000)) {
        at.at(tree, cfg, "access_mtu", -1,
              fmt::format("access_mtu: {} is not within 1280-9000", cfg.access_mtu()));
    }
    std::set<std::uint32_t> ids;
    for (int i = 0; i < cfg.sessions_size(); ++i) {
        const auto& s = cfg.sessions(i);
        const auto* t = config::Reporter::nested(tree, cfg, "sessions", i);
        if (!ids.insert(s.id()).second) {
            at.at(t, s, "id", -1, fmt::format("sessions.id: {} used twice", s.id()));
        }
        if (s.paths_size() == 0 || s.paths_size() > static_cast<int>(kMaxPaths)) {
            at.at(tree, cfg, "sessions", i, fmt::format("sessions: 1-{} paths needed", kMaxPaths));
        }
        if (s.prefixes_size() > static_cast<int>(kMaxPrefixes)) {
            at.at(tree, cfg, "sessions", i,
                  fmt::format("sessions: at most {} prefixes", kMaxPrefixes));
        }
        if (!v1::StripingMode_IsValid(s.striping())) {
            at.at(t, s, "striping", -1,
                  fmt::format("sessions.striping: {} is not a striping mode (STRIPING_WEIGHTED, "
                              "STRIPING_OVERFLOW)",
                              static_cast<int>(s.striping())));
        }
        if (s.overflow_burst_bytes() > kMaxOverflowBurstBytes) {
            at.at(t, s, "overflow_burst_bytes", -1,
                  fmt::format("sessions.overflow_burst_bytes: {} is above {}",
                              s.overflow_burst_bytes(), kMaxOverflowBurstBytes));
        }
        for (int j = 0; j < s.prefixes_size(); ++j) {
            if (auto p = parse_ip_prefix(s.prefixes(j)); !p) {
                at.at(t, s, "prefixes", j, "sessions.prefixes: " + p.error());
            }
        }
        for (int j = 0; j < s.paths_size(); ++j) {
            const auto& p = s.paths(j);
            const auto* pt = config::Reporter::nested(t, s, "paths", j);
            auto local = parse_ip(p.local());
            auto coa = parse_ip(p.care_of());
            if (!local)
                at.at(pt, p, "local", -1, "sessions.paths.local: " + local.error());
            if (!coa)
                at.at(pt, p, "care_of", -1, "sessions.paths.care_of: " + coa.error());
            if (local && coa && local->family != coa->family) {
                at.at(pt, p, "care_of", -1,
                      "sessions.paths: local and care_of differ in address family");
            } else if (coa) {
                PathConfig encap;
                if (auto r = parse_path_encapsulation(p.udp_port(), static_cast<int>(p.tunnel()),
                                                      p.mtu(), coa->family, encap);
                    !r) {
                    const char* field = r.error().rfind("mtu", 0) == 0      ? "mtu"
                                        : r.error().rfind("tunnel", 0) == 0 ? "tunnel"
                                                                            : "udp_port";
                    at.at(pt, p, field, -1, "sessions.paths: " + r.error());
                }
            }
            if (p.next_hop_mac().empty()) {
                if (!exception) {
                    at.at(pt, p, "next_hop_mac", -1,
                          "sessions.paths.next_hop_mac: needed when exception_path is false");
                }
            } else if (auto m = parse_mac(p.next_hop_mac()); !m) {
                at.at(pt, p, "next_hop_mac", -1, "sessions.paths.next_hop_mac: " + m.error());
            }
            if (names.count(p.port()) == 0) {
                at.at(pt, p, "port", -1,
                      fmt::format("sessions.paths.port: no port named '{}'", p.port()));
            }
        }
        validate_remote_anchors(s, t, names, exception, at);
    }
    if (cfg.has_telemetry()) {
        const auto& tc = cfg.telemetry();
        const auto* tt = config::Reporter::nested(tree, cfg, "telemetry", -1);
        if (!tc.metrics_listen().empty()) {
            if (auto a = parse_listen_address(tc.metrics_listen()); !a) {
                at.at(tt, tc, "metrics_listen", -1, "telemetry.metrics_listen: " + a.error());
            }
        }
        if (tc.metrics_sessions() > 10000) {
            at.at(tt, tc, "metrics_sessions", -1,
                  fmt::format("telemetry.metrics_sessions: {} is above 10000",
                              tc.metrics_sessions()));
        }
        if (tc.metrics_timeout_ms() != 0 &&
            (tc.metrics_timeout_ms() < 100 || tc.metrics_timeout_ms() > 60000)) {
            at.at(tt, tc, "metrics_timeout_ms", -1,
                  fmt::format("telemetry.metrics_timeout_ms: {} is not within 100-60000",
                              tc.metrics_timeout_ms()));
        }
    }
    if (!cfg.telemetry().has_metrics_sessions())
        cfg.mutable_telemetry()->set_metrics_sessions(100);
    if (cfg.telemetry().metrics_timeout_ms() == 0)
        cfg.mutable_telemetry()->set_metrics_timeout_ms(2000);
    if (const auto r = cfg.exception_ring();
        r != 0 && (r < 64 || r > 65536 || (r & (r - 1)) != 0)) {
        at.at(tree, cfg, "exception_ring", -1,
              fmt::format("exception_ring: {} must be a power of two in 64-65536", r));
    }
    if (!cfg.has_programmer_listen()) {
        cfg.set_programmer_listen("unix:/run/hag/dataplane.sock");
    } else if (const std::string& l = cfg.programmer_listen(); !l.empty()) {
        const bool is_unix = l.rfind("unix:", 0) == 0;
        if (is_unix ? (l.size() == 5 || l.size() - 5 >= 108 || l[5] != '/')
                    : !parse_listen_address(l)) {
            at.at(tree, cfg, "programmer_listen", -1,
                  fmt::format("programmer_listen: '{}' is neither unix:/absolute/path (under 108 "
                              "characters) nor ADDRESS:PORT",
                              l));
        }
    }
    if (cfg.idle_sleep_us() > 100000) {
        at.at(tree, cfg, "idle_sleep_us", -1,
              fmt::format("idle_sleep_us: {} is above 100000 (100 ms)", cfg.idle_sleep_us()));
    }
    if (!cfg.log().level().empty()) {
        if (auto l = hag::log::parse_level(cfg.log().level()); !l) {
            at.at(config::Reporter::nested(tree, cfg, "log", -1), cfg.log(), "level", -1,
                  "log.level: " + l.error());
        }
    }
    if (!cfg.log().format().empty()) {
        if (auto f = hag::log::parse_format(cfg.log().format()); !f) {
            at.at(config::Reporter::nested(tree, cfg, "log", -1), cfg.log(), "format", -1,
                  "log.format: " + f.error());
        }
    }
    if (auto lcores = eal_lcores(cfg); lcores && lcores->first.size() < 2) {
        at.at(tree, cfg, "eal_args", lcores->second,
              "eal_args: the lcore list gives one lcore; hag-dataplane needs a main lcore and a "
              "worker lcore (e.g. \"-l\", \"0-1\")");
    }
    validate_reorder(cfg, tree, at);
    validate_reassembly(cfg, tree, at);
    validate_downlink(cfg, tree, at);
    if (cfg.max_next_hops() == 0)
        cfg.set_max_next_hops(65536);
    if (cfg.exception_ring() == 0)
        cfg.set_exception_ring(1024);
    if (cfg.mbufs() == 0)
        cfg.set_mbufs(16383);
    if (cfg.max_sessions() == 0)
        cfg.set_max_sessions(1'000'000);
    if (cfg.access_mtu() == 0)
        cfg.set_access_mtu(1500);
    if (cfg.log().level().empty())
        cfg.mutable_log()->set_level("info");
    if (cfg.log().format().empty())
        cfg.mutable_log()->set_format("text");
}

}  // namespace

ReorderSettings reorder_settings(const v1::DataplaneConfig& cfg) {
    const auto& r = cfg.reorder();
    ReorderSettings s;
    s.enabled = r.enabled();
    s.timeout_us = r.timeout_us();
    s.min_timeout_us = r.min_timeout_us();
    s.session_packets = r.session_packets();
    s.global_packets = r.global_packets();
    s.buffers = r.buffers();
    s.forward_late = r.late_policy() == v1::ReorderConfig::FORWARD;
    return s;
}

ReassemblySettings reassembly_settings(const v1::DataplaneConfig& cfg) {
    const auto& r = cfg.reassembly();
    ReassemblySettings s;
    s.enabled = !r.has_enabled() || r.enabled();
    s.max_packets = r.max_packets() != 0 ? r.max_packets() : 256;
    s.timeout_ms = r.timeout_ms() != 0 ? r.timeout_ms() : 1000;
    return s;
}

void apply_downlink_settings(const v1::DataplaneConfig& cfg, DownlinkCtx& ctx) {
    ctx.access_mtu = static_cast<std::uint16_t>(cfg.access_mtu() != 0 ? cfg.access_mtu() : 1500);
    ctx.mtu_action =
        cfg.mtu_action() == v1::FRAGMENT ? MtuAction::kFragment : MtuAction::kPacketTooBig;
    ctx.icmp_per_second = cfg.has_icmp_errors_per_second() ? cfg.icmp_errors_per_second() : 100;
    ctx.dscp = dscp_identity();
    const auto& d = cfg.dscp();
    if (d.mode() == v1::DscpConfig::FIXED) {
        ctx.dscp.fill(static_cast<std::uint8_t>(d.value() & 63));
    } else if (d.mode() == v1::DscpConfig::MAP) {
        for (const auto& e : d.map())
            ctx.dscp[e.inner() & 63] = static_cast<std::uint8_t>(e.outer() & 63);
    }
    ctx.icmp_src_v4 = ctx.icmp_src_v6 = IpAddr{};
    auto take = [&ctx](const std::string& text) {
        auto a = parse_ip(text);
        if (!a)
            return;
        IpAddr& slot = a->family == Family::kIpv6 ? ctx.icmp_src_v6 : ctx.icmp_src_v4;
        if (slot.family == Family::kNone)
            slot = *a;
    };
    for (const bool core_first : {true, false}) {
        for (const auto& p : cfg.ports()) {
            if ((p.role() == v1::PortConfig::CORE) == core_first) {
                for (const auto& a : p.addresses())
                    take(a);
            }
        }
    }
    for (const auto& s : cfg.sessions())
        for (const auto& p : s.paths())
            take(p.local());
}

std::uint16_t port_vlan(const v1::DataplaneConfig& cfg, v1::PortConfig::Role role) {
    for (const auto& p : cfg.ports())
        if (p.role() == role)
            return static_cast<std::uint16_t>(p.vlan_id());
    return 0;
}

Result<v1::DataplaneConfig, config::Errors> parse_dataplane_config(std::string_view text,
                                                                   const std::string& file) {
    v1::DataplaneConfig cfg;
    config::ParseInfoTree tree;
    if (auto r = config::parse_text(text, file, cfg, tree); !r) {
        return unexpected(r.error());
    }
    config::Errors errors;
    validate(cfg, &tree, config::Reporter(file, errors));
    if (!errors.empty()) {
        return unexpected(std::move(errors));
    }
    return cfg;
}

Result<v1::DataplaneConfig, config::Errors> load_dataplane_config(const std::string& path) {
    auto text = config::read_file(path);
    if (!text) {
        return unexpected(text.error());
    }
    return parse_dataplane_config(*text, path);
}

}  // namespace hag::dp
