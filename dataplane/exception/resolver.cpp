#include "exception/resolver.hpp"

#include <linux/neighbour.h>
#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include "runtime/text.hpp"

namespace hag::dp {

IpAddr next_hop_address(const v1::PortConfig& port, const IpAddr& dst) {
    const std::string& via =
        dst.family == Family::kIpv4 ? port.next_hop_ipv4() : port.next_hop_ipv6();
    if (!via.empty()) {
        if (auto a = parse_ip(via); a && a->family == dst.family) {
            return *a;
        }
    }
    return dst;
}

namespace {

const v1::PortConfig* port_config(const v1::DataplaneConfig& cfg, const std::string& name) {
    for (const auto& p : cfg.ports()) {
        if (p.name() == name) {
            return &p;
        }
    }
    return nullptr;
}

}  // namespace

Result<NextHopTable::Index, std::string> acquire_next_hop(NextHopTable& table,
                                                          const v1::DataplaneConfig& cfg,
                                                          const Port& port, const IpAddr& dst) {
    const v1::PortConfig* pc = port_config(cfg, port.name);
    if (pc == nullptr) {
        return unexpected(fmt::format("no port '{}'", port.name));
    }
    return table.acquire(port.id, next_hop_address(*pc, dst));
}

Result<void, std::string> attach_path_next_hop(PathConfig& path, const Port& port,
                                               const MacAddr* path_mac, NextHopTable& table,
                                               const v1::DataplaneConfig& cfg) {
    path.port = port.id;
    path.src_mac = port.mac;
    path.next_hop = NextHopTable::kNone;
    path.next_hop_mac = {};
    const MacAddr zero{};
    if (path_mac != nullptr && *path_mac != zero) {
        path.next_hop_mac = *path_mac;
        return {};
    }
    if (port.next_hop_mac != zero) {
        path.next_hop_mac = port.next_hop_mac;
        return {};
    }
    auto nh = acquire_next_hop(table, cfg, port, path.coa);
    if (!nh) {
        return unexpected(nh.error());
    }
    path.next_hop = *nh;
    return {};
}

Result<void, std::string> attach_anchor_next_hop(RemoteAnchorConfig& anchor, const Port& port,
                                                 const MacAddr* mac, NextHopTable& table,
                                                 const v1::DataplaneConfig& cfg) {
    anchor.port = port.id;
    anchor.src_mac = port.mac;
    anchor.next_hop = NextHopTable::kNone;
    anchor.next_hop_mac = {};
    const MacAddr zero{};
    if (mac != nullptr && *mac != zero) {
        anchor.next_hop_mac = *mac;
        return {};
    }
    if (port.next_hop_mac != zero) {
        anchor.next_hop_mac = port.next_hop_mac;
        return {};
    }
    auto nh = acquire_next_hop(table, cfg, port, anchor.anchor);
    if (!nh) {
        return unexpected(nh.error());
    }
    anchor.next_hop = *nh;
    return {};
}

void release_path_next_hops(const SessionConfig& s, NextHopTable& table) {
    for (unsigned i = 0; i < s.n_paths; ++i) {
        if (s.paths[i].next_hop != NextHopTable::kNone) {
            table.release(s.paths[i].next_hop);
        }
    }
    for (unsigned i = 0; i < s.n_anchors; ++i) {
        if (s.anchors[i].next_hop != NextHopTable::kNone) {
            table.release(s.anchors[i].next_hop);
        }
    }
}

Result<void, std::string> acquire_core_next_hops(NextHopTable& table,
                                                 const v1::DataplaneConfig& cfg, const Port& core,
                                                 UplinkCtx& uplink) {
    const v1::PortConfig* pc = port_config(cfg, core.name);
    if (pc == nullptr || !pc->next_hop_mac().empty()) {
        return {};
    }
    for (const std::string* text : {&pc->next_hop_ipv4(), &pc->next_hop_ipv6()}) {
        if (text->empty()) {
            continue;
        }
        auto a = parse_ip(*text);
        if (!a) {
            return unexpected(fmt::format("port {}: {}", core.name, a.error()));
        }
        auto i = table.acquire(core.id, *a);
        if (!i) {
            return unexpected(i.error());
        }
        (a->family == Family::kIpv4 ? uplink.core_next_hop_v4 : uplink.core_next_hop_v6) = *i;
    }
    return {};
}

Resolver::Resolver(NextHopTable& table, std::unique_ptr<NeighbourSocket> sock)
    : table_(table), sock_(std::move(sock)), last_ask_(table.capacity(), 0) {}

void Resolver::add_port(std::uint16_t port, int tap_ifindex, std::string name) {
    ports_.push_back({port, tap_ifindex, std::move(name)});
}

int Resolver::ifindex_of(std::uint16_t port) const noexcept {
    for (const auto& p : ports_) {
        if (p.port == port) {
            return p.ifindex;
        }
    }
    return 0;
}

const std::string& Resolver::name_of(std::uint16_t port) const noexcept {
    static const std::string unknown = "?";
    for (const auto& p : ports_) {
        if (p.port == port) {
            return p.name;
        }
    }
    return unknown;
}

void Resolver::on_event(const NeighbourEvent& ev) {
    for (const auto& p : ports_) {
        if (p.ifindex != ev.ifindex) {
            continue;
        }
        const NextHopTable::Index i = table_.find(p.port, ev.addr);
        if (i == NextHopTable::kNone) {
            return;
        }
        MacAddr old{};
        const bool had = table_.mac(i, old);
        if (ev.usable()) {
            if (!had || old != ev.mac) {
                table_.set_mac(i, ev.mac);
                spdlog::info("next hop {} on port {}: {}", to_string(ev.addr), p.name,
                             to_string(ev.mac));
            }
        } else if (ev.removed) {
            last_ask_[i] = 0;  // keep the MAC, ask the kernel again at the next scan
        } else if ((ev.state & NUD_FAILED) != 0 && had) {
            table_.clear_mac(i);
            spdlog::warn("next hop {} on port {}: resolution failed, packets to it are dropped",
                         to_string(ev.addr), p.name);
        }
        return;
    }
}

void Resolver::service(std::uint64_t now_ms) {
    if (!dumped_) {
        dumped_ = true;
        if (auto r = sock_->request_dump(); !r) {
            spdlog::warn("{}", r.error());
        }
    }
    sock_->poll([this](const NeighbourEvent& ev) { on_event(ev); });
    if (now_ms < next_scan_) {
        return;
    }
    next_scan_ = now_ms + 100;
    for (const NextHopTable::Index i : table_.in_use()) {
        const auto& e = table_.entry(i);
        const int ifindex = ifindex_of(e.port);
        if (ifindex == 0) {
            continue;
        }
        MacAddr m{};
        const bool resolved = table_.mac(i, m);
        const std::uint64_t due =
            resolved ? kRefreshMs : (table_.wanted(i) ? kRetryWantedMs : kRetryIdleMs);
        if (last_ask_[i] != 0 && now_ms - last_ask_[i] < due) {
            continue;
        }
        (void)table_.take_wanted(i);
        last_ask_[i] = now_ms == 0 ? 1 : now_ms;
        ++triggers_;
        if (!resolved) {  // the kernel may know it already (and then sends no event)
            if (auto r = sock_->query(ifindex, e.addr); !r) {
                spdlog::warn("next hop {} on port {}: {}", to_string(e.addr), name_of(e.port),
                             r.error());
            }
        }
        if (auto r = sock_->resolve(ifindex, e.addr); !r) {
            spdlog::warn("next hop {} on port {}: {}", to_string(e.addr), name_of(e.port),
                         r.error());
        }
    }
}

std::string Resolver::json() const {
    std::string s = fmt::format(R"({{"triggers":{},"malformed":{},"overruns":{},"entries":[)",
                                triggers_, sock_->malformed(), sock_->overruns());
    bool first = true;
    for (const NextHopTable::Index i : table_.in_use()) {
        const auto& e = table_.entry(i);
        MacAddr m{};
        const bool resolved = table_.mac(i, m);
        s += fmt::format(R"({}{{"port":"{}","address":"{}","mac":{}}})", first ? "" : ",",
                         name_of(e.port), to_string(e.addr),
                         resolved ? fmt::format("\"{}\"", to_string(m)) : std::string("null"));
        first = false;
    }
    return s + "]}";
}

}  // namespace hag::dp
