// hag-magsim: MAG/CPE simulator. Sends real PBUs from each access's care-of address — over
// IPPROTO_MH raw sockets for IPv6 CoAs, over UDP 5436 for IPv4 CoAs (RFC 5844) — waits for PBAs
// with retransmission, re-registers before expiry, sends and answers heartbeats, acknowledges
// Binding Revocation Indications, de-registers; `load` measures PBU/s and PBA latency percentiles.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <thread>
#include <tuple>

#include "data_path.hpp"
#include "hag/mh/home_address.hpp"
#include "hag/mh/timestamp.hpp"
#include "hag/mh/udp_transport.hpp"
#include "hag/net/address.hpp"
#include "heartbeat.hpp"
#include "pbu.hpp"

namespace asio = boost::asio;
using raw = asio::generic::raw_protocol;
using dgram = asio::generic::datagram_protocol;
using Clock = std::chrono::steady_clock;
using hag::magsim::HeartbeatTracker;

namespace {

volatile sig_atomic_t g_stop = 0;
bool g_stop_load() {
    return g_stop != 0;
}

std::optional<hag::mh::Ipv6> parse6(const std::string& s) {
    hag::mh::Ipv6 a{};
    if (inet_pton(AF_INET6, s.c_str(), a.data()) != 1) {
        return std::nullopt;
    }
    return a;
}

std::optional<hag::mh::Ipv4> parse4(const std::string& s) {
    hag::mh::Ipv4 a{};
    if (inet_pton(AF_INET, s.c_str(), a.data()) != 1) {
        return std::nullopt;
    }
    return a;
}

std::string str6(const hag::mh::Ipv6& a) {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(AF_INET6, a.data(), buf, sizeof buf);
    return buf;
}

std::string str4(const hag::mh::Ipv4& a) {
    char buf[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, a.data(), buf, sizeof buf);
    return buf;
}

// The CoA of an access: the address itself, or the first global IPv6 (first IPv4) address of the
// interface.
template <typename Addr>
std::optional<Addr> resolve_coa(const std::string& iface_or_coa) {
    constexpr bool v4 = std::is_same_v<Addr, hag::mh::Ipv4>;
    Addr literal{};
    if (inet_pton(v4 ? AF_INET : AF_INET6, iface_or_coa.c_str(), literal.data()) == 1) {
        return literal;
    }
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) {
        return std::nullopt;
    }
    std::optional<Addr> out;
    for (ifaddrs* i = list; i != nullptr && !out; i = i->ifa_next) {
        if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != (v4 ? AF_INET : AF_INET6) ||
            iface_or_coa != i->ifa_name) {
            continue;
        }
        Addr a{};
        if constexpr (v4) {
            const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
            std::memcpy(a.data(), &sin->sin_addr, 4);
        } else {
            const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
            if (IN6_IS_ADDR_LINKLOCAL(&sin6->sin6_addr)) {
                continue;
            }
            std::memcpy(a.data(), &sin6->sin6_addr, 16);
        }
        out = a;
    }
    freeifaddrs(list);
    return out;
}

// A socket address (IPv6 for raw MH, IPv4 + port for UDP): where to send, where it came from.
struct Peer {
    sockaddr_storage ss{};
    socklen_t len = 0;
};

Peer peer6(const hag::mh::Ipv6& a) {
    Peer p;
    auto* sa = reinterpret_cast<sockaddr_in6*>(&p.ss);
    sa->sin6_family = AF_INET6;
    std::memcpy(&sa->sin6_addr, a.data(), 16);
    p.len = sizeof(sockaddr_in6);
    return p;
}

Peer peer4(const hag::mh::Ipv4& a, std::uint16_t port) {
    Peer p;
    auto* sa = reinterpret_cast<sockaddr_in*>(&p.ss);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(port);
    std::memcpy(&sa->sin_addr, a.data(), 4);
    p.len = sizeof(sockaddr_in);
    return p;
}

hag::mh::Ipv4 peer_ipv4(const Peer& p) {
    hag::mh::Ipv4 a{};
    std::memcpy(a.data(), &reinterpret_cast<const sockaddr_in*>(&p.ss)->sin_addr, 4);
    return a;
}

std::string peer_text(const Peer& p) {
    if (p.ss.ss_family == AF_INET) {
        return str4(peer_ipv4(p)) + ":" +
               std::to_string(ntohs(reinterpret_cast<const sockaddr_in*>(&p.ss)->sin_port));
    }
    hag::mh::Ipv6 a{};
    std::memcpy(a.data(), &reinterpret_cast<const sockaddr_in6*>(&p.ss)->sin6_addr, 16);
    return str6(a);
}

// One access of one subscriber: its socket (bound to the CoA), sequence and state. IPv6 CoAs use
// a raw MH socket, IPv4 CoAs a UDP socket (any port) that talks to the LMA's port 5436.
struct Access {
    hag::magsim::AccessSpec spec;
    hag::mh::Ipv6 coa6{};
    hag::mh::Ipv4 coa4{};
    std::unique_ptr<raw::socket> raw_sock;  // MN mode: protocol 43 (BAs with a Type 2 header)
    std::unique_ptr<raw::socket> mn_out;    // MN mode: IPPROTO_RAW, whole IPv6 packets
    std::unique_ptr<dgram::socket> udp_sock;
    std::uint16_t sequence = 0;
    std::uint32_t downlink_key = 0;
    std::optional<hag::magsim::PbaSummary> last;
    HeartbeatTracker heartbeats;
    bool revoked = false;  // by a Binding Revocation Indication: no more PBUs or heartbeats
    std::uint32_t down_kbps = 0, up_kbps = 0;  // link metrics sent in the PBU
    std::string device;                        // data mode: bound to this interface
    // Receive state (the socket has one receive outstanding while the simulator waits).
    std::array<std::uint8_t, 2048> buf{};
    raw::endpoint raw_from;
    dgram::endpoint udp_from;
    std::optional<std::uint16_t> awaited_seq;  // PBA being waited for
    std::optional<hag::magsim::PbaSummary> awaited;

    [[nodiscard]] bool ipv4() const { return spec.ipv4; }
    [[nodiscard]] std::string coa_text() const { return ipv4() ? str4(coa4) : str6(coa6); }
    [[nodiscard]] std::string name() const {
        return "access " + spec.kind + " bid=" + std::to_string(spec.bid);
    }
};

struct Options {
    std::vector<std::string> lma;  // one IPv6 and/or one IPv4 address
    std::uint16_t udp_port = hag::mh::kPmipUdpPort;
    std::string nai = "cpe1@example.net";
    std::string mag_id = "mag1@example.net";
    std::vector<std::string> accesses;
    unsigned lifetime = 3600;
    unsigned max_retx = 5;
    unsigned hold_s = 0;       // keep serving this long after registering
    unsigned heartbeat_s = 0;  // 0 = send no heartbeats
    std::uint32_t down_kbps = 0;
    std::uint32_t up_kbps = 0;
    std::vector<std::string> link_metrics;  // BID:DOWN_KBPS:UP_KBPS, per access
    bool data = false;                      // data mode: tun + GRE on every access
    bool ipv4_hoa = false;                  // ask for an IPv4 home address (RFC 5844)
    hag::magsim::DataOptions data_options;
    std::vector<std::string> dmnp;        // Delegated Mobile Network Prefix requests (RFC 7148)
    std::string mn_home_address;          // MN mode: the home address (MIPv6 home registration)
    std::string mn_tunnel = "gre";        // MN mode: "gre" (GRE Key option) or "ipip"
    std::vector<std::string> flow_texts;  // --flow NAME=PROTO[:PORT[-PORT]]>BIDS|drop
    std::string flows_file;               // --flows FILE
    std::vector<hag::magsim::FlowSpec> flows;  // both, parsed (RFC 6089 flow bindings)
};

// "BID:DOWN:UP" -> (bid, down, up).
std::optional<std::tuple<std::uint16_t, std::uint32_t, std::uint32_t>> parse_link_metrics(
    const std::string& text) {
    unsigned bid = 0;
    unsigned long down = 0, up = 0;
    char tail = 0;
    if (std::sscanf(text.c_str(), "%u:%lu:%lu%c", &bid, &down, &up, &tail) != 3 || bid == 0 ||
        bid > 255 || down > 0xffffffffUL || up > 0xffffffffUL) {
        return std::nullopt;
    }
    return std::make_tuple(static_cast<std::uint16_t>(bid), static_cast<std::uint32_t>(down),
                           static_cast<std::uint32_t>(up));
}

class Sim {
  public:
    Sim(asio::io_context& io, Options o) : io_(io), o_(std::move(o)) {}

    bool open() {
        for (const auto& text : o_.lma) {
            if (auto a6 = parse6(text); a6 && !lma6_) {
                lma6_ = a6;
            } else if (auto a4 = parse4(text); a4 && !lma4_) {
                lma4_ = a4;
            } else {
                std::fprintf(stderr,
                             "hag-magsim: --lma %s: expected one IPv6 and/or one IPv4 address\n",
                             text.c_str());
                return false;
            }
        }
        if (!o_.mn_home_address.empty()) {
            hoa_ = parse6(o_.mn_home_address);
            if (!hoa_) {
                std::fprintf(stderr, "hag-magsim: --mn %s: not an IPv6 address\n",
                             o_.mn_home_address.c_str());
                return false;
            }
        }
        for (const auto& m : o_.link_metrics) {
            if (!parse_link_metrics(m)) {
                std::fprintf(stderr,
                             "hag-magsim: --link-metrics %s: expected BID:DOWN_KBPS:UP_KBPS\n",
                             m.c_str());
                return false;
            }
        }
        std::uint32_t key = 0x10000 + (static_cast<std::uint32_t>(::getpid()) & 0xffff) * 16;
        for (const auto& text : o_.accesses) {
            auto spec = hag::magsim::parse_access(text);
            if (!spec) {
                std::fprintf(stderr, "hag-magsim: --access %s: expected KIND[4]:IFACE_OR_COA:BID\n",
                             text.c_str());
                return false;
            }
            auto a = std::make_unique<Access>();
            a->spec = *spec;
            a->downlink_key = ++key;
            a->down_kbps = o_.down_kbps;
            a->up_kbps = o_.up_kbps;
            for (const auto& m : o_.link_metrics) {
                if (auto lm = parse_link_metrics(m); lm && std::get<0>(*lm) == spec->bid) {
                    a->down_kbps = std::get<1>(*lm);
                    a->up_kbps = std::get<2>(*lm);
                }
            }
            // In data mode an access given by interface name keeps to that interface: its
            // signalling and its GRE leave by it whatever the routing table prefers.
            if (o_.data && !parse6(spec->iface_or_coa) && !parse4(spec->iface_or_coa)) {
                a->device = spec->iface_or_coa;
            }
            if (spec->ipv4 ? !lma4_ : !lma6_) {
                std::fprintf(stderr, "hag-magsim: --access %s needs an %s --lma\n", text.c_str(),
                             spec->ipv4 ? "IPv4" : "IPv6");
                return false;
            }
            if (!(spec->ipv4 ? open_udp(*a, text) : open_raw(*a, text))) {
                return false;
            }
            accesses_.push_back(std::move(a));
        }
        if (accesses_.empty()) {
            std::fprintf(stderr, "hag-magsim: at least one --access is needed\n");
            return false;
        }
        return true;
    }

    // Keeps a receive outstanding on every access from now on (register / deregister modes).
    void start_receiving() {
        for (auto& a : accesses_) {
            arm(*a);
        }
    }

    // Sends a PBU on each access and waits for its PBA, retransmitting from 1 s with
    // exponential backoff (RFC 6275 §11.8) up to max_retx times. Returns false when any
    // access got no PBA or a rejection. Revoked accesses are left alone.
    bool signal_all(std::uint16_t lifetime_s, std::uint8_t handoff) {
        bool ok = true;
        for (auto& a : accesses_) {
            if (!a->revoked) {
                ok &= signal(*a, lifetime_s, handoff);
            }
        }
        return ok;
    }

    bool signal(Access& a, std::uint16_t lifetime_s, std::uint8_t handoff) {
        auto p = pbu_params(a, o_.nai, ++a.sequence, lifetime_s, a.downlink_key);
        p.handoff = handoff;
        // Flow bindings reference the BIDs registered so far and this one.
        p.flows = hag::magsim::flows_to_signal(o_.flows, [&](std::uint16_t bid) {
            if (bid == a.spec.bid) {
                return true;
            }
            return std::any_of(accesses_.begin(), accesses_.end(), [&](const auto& x) {
                return x->spec.bid == bid && !x->revoked && x->last && x->last->status < 128 &&
                       x->last->lifetime_s > 0;
            });
        });
        std::chrono::milliseconds timeout(1000);
        a.awaited_seq = p.sequence;
        a.awaited.reset();
        for (unsigned attempt = 0; attempt <= o_.max_retx && !g_stop; ++attempt) {
            p.timestamp = hag::mh::timestamp_now();
            if (!send(a, hag::magsim::build_pbu(p), lma_peer(a))) {
                a.awaited_seq.reset();
                return false;
            }
            run_until(Clock::now() + timeout, [&] { return a.awaited.has_value(); });
            if (a.awaited) {
                a.last = a.awaited;
                a.awaited_seq.reset();
                print(a, lifetime_s == 0);
                return a.last->status < 128;
            }
            timeout = std::min(timeout * 2, std::chrono::milliseconds(32000));
        }
        a.awaited_seq.reset();
        std::printf("%s coa=%s: no PBA after %u retransmission(s)\n", a.name().c_str(),
                    a.coa_text().c_str(), o_.max_retx);
        std::fflush(stdout);
        return false;
    }

    // RFC 5847 §5.2: a Restart Counter that changed means the LMA restarted and lost its
    // bindings. True once per change: the caller re-registers.
    bool take_lma_restart() {
        const bool r = lma_restarted_;
        lma_restarted_ = false;
        return r;
    }

    // Answers heartbeats and revocations until `until` (or a stop signal).
    void serve_until(Clock::time_point until) {
        run_until(until, [] { return false; });
    }

    // The smallest lifetime granted to an access that is still registered.
    // The shortest NAT refresh time (s) an LMA gave an access behind a NAT, 0 = none: the
    // registrations are refreshed that often to keep the NAT's mapping.
    [[nodiscard]] std::uint32_t nat_refresh() const {
        std::uint32_t r = 0;
        for (const auto& a : accesses_) {
            if (!a->revoked && a->last && a->last->nat_refresh_s && *a->last->nat_refresh_s != 0) {
                r = r == 0 ? *a->last->nat_refresh_s : std::min(r, *a->last->nat_refresh_s);
            }
        }
        return r;
    }

    [[nodiscard]] std::uint32_t granted_lifetime(std::uint32_t requested) const {
        std::uint32_t granted = requested;
        for (const auto& a : accesses_) {
            if (!a->revoked && a->last) {
                granted = std::min(granted, a->last->lifetime_s);
            }
        }
        return granted;
    }

    // Sends a Heartbeat request (RFC 5847 §5.1) to the LMA from every access not revoked, and
    // reports an access whose LMA left kMissedLimit requests unanswered.
    void send_heartbeats() {
        if (hoa_) {
            return;  // MN mode: a mobile node sends no heartbeats (RFC 5847 is PMIPv6's)
        }
        ++hb_sequence_;
        for (auto& a : accesses_) {
            if (a->revoked) {
                continue;
            }
            if (a->heartbeats.on_request_sent(hb_sequence_) ==
                HeartbeatTracker::Event::kUnreachable) {
                std::printf("%s: LMA not responding to heartbeats\n", a->name().c_str());
                std::fflush(stdout);
                if (on_reachability) {
                    on_reachability(a->spec.bid, false);
                }
            }
            hag::mh::Heartbeat hb;
            hb.sequence = hb_sequence_;
            send(*a, hag::mh::Message{hb}, lma_peer(*a));
        }
    }

    // Load mode: PBUs for `subscribers` NAIs (load<i>@example.net, MAG load<i>-<mag-id>) on the
    // first access, paced at
    // `rate` per second for `duration_s`, then up to 2 s for late PBAs. Prints PBU/s achieved and
    // PBA latency percentiles. Returns false when no PBA came back.
    // accepted_file: when set, the NAI of every subscriber a PBA accepted, one a line, written
    // as each PBA arrives (so what the LMA acknowledged survives this process being stopped).
    bool run_load(unsigned subscribers, double rate, double duration_s,
                  const std::string& nai_prefix, const std::string& accepted_file) {
        std::FILE* accepted_out = nullptr;
        if (!accepted_file.empty()) {
            accepted_out = std::fopen(accepted_file.c_str(), "w");
            if (accepted_out == nullptr) {
                std::fprintf(stderr, "hag-magsim: %s: %s\n", accepted_file.c_str(),
                             std::strerror(errno));
                return false;
            }
        }
        const std::unique_ptr<std::FILE, int (*)(std::FILE*)> accepted_guard(accepted_out,
                                                                             &std::fclose);
        Access& a = *accesses_.front();
        if (a.raw_sock) {
            a.raw_sock->non_blocking(true);
        } else {
            a.udp_sock->non_blocking(true);
        }
        // PBAs arrive faster than one loop turn at high rates: give the kernel room to queue.
        const int rcvbuf = 16 << 20;
        const int fd = a.raw_sock ? a.raw_sock->native_handle() : a.udp_sock->native_handle();
        if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0) {
            (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        }
        std::vector<std::optional<Clock::time_point>> sent_at(65536);
        std::vector<std::uint32_t> index_at(65536);
        std::vector<double> latency_ms;
        std::uint64_t sent = 0, rejected = 0;
        const auto start = Clock::now();
        const auto stop_sending = start + std::chrono::duration_cast<Clock::duration>(
                                              std::chrono::duration<double>(duration_s));
        auto next = start;
        const auto gap =
            std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate));
        std::uint16_t seq = 0;
        Clock::time_point last_send = start;
        Clock::time_point last_pba = start;
        bool idle = false;
        while (!g_stop_load()) {
            if (idle) {
                ::usleep(50);
                idle = false;
            }
            const auto now = Clock::now();
            if (now >= stop_sending + std::chrono::seconds(2) ||
                (now >= stop_sending && latency_ms.size() + rejected >= sent)) {
                break;
            }
            while (now < stop_sending && next <= now) {
                const std::string index = std::to_string(sent % subscribers);
                auto p =
                    pbu_params(a, nai_prefix + index + "@example.net", ++seq,
                               static_cast<std::uint16_t>(std::min(o_.lifetime, 65535u * 4)),
                               a.downlink_key + static_cast<std::uint32_t>(sent % subscribers));
                // One MAG per home router, as deployed: the LMA keys paths by (MAG, BID).
                p.mag_id = nai_prefix + index + "-" + o_.mag_id;
                p.timestamp = hag::mh::timestamp_now();
                if (!send(a, hag::magsim::build_pbu(p), lma_peer(a), true)) {
                    return false;
                }
                sent_at[seq] = Clock::now();
                index_at[seq] = static_cast<std::uint32_t>(sent % subscribers);
                last_send = Clock::now();
                ++sent;
                next += gap;
            }
            // Read what has arrived; sleep only when idle.
            boost::system::error_code ec;
            auto m = receive_now(a, ec);
            if (ec == asio::error::would_block) {
                idle = true;
                continue;
            }
            if (!m) {
                continue;
            }
            auto s = hag::magsim::summarize_pba(*m);
            if (!s || !sent_at[s->sequence]) {
                continue;
            }
            const auto t = *sent_at[s->sequence];
            sent_at[s->sequence].reset();
            if (s->status >= 128) {
                ++rejected;
                continue;
            }
            last_pba = Clock::now();
            latency_ms.push_back(std::chrono::duration<double, std::milli>(last_pba - t).count());
            if (accepted_out != nullptr) {
                std::fprintf(accepted_out, "%s%u@example.net\n", nai_prefix.c_str(),
                             index_at[s->sequence]);
                std::fflush(accepted_out);
            }
        }
        const double secs =
            std::max(1e-6, std::chrono::duration<double>(last_send - start).count());
        std::sort(latency_ms.begin(), latency_ms.end());
        auto pct = [&](double q) {
            if (latency_ms.empty()) {
                return 0.0;
            }
            const std::size_t i =
                std::min(latency_ms.size() - 1, static_cast<std::size_t>(q * latency_ms.size()));
            return latency_ms[i];
        };
        std::printf(
            "load: sent=%llu accepted=%zu rejected=%llu lost=%llu pbu_per_s=%.1f "
            "accepted_per_s=%.1f pba_latency_ms p50=%.3f p90=%.3f p99=%.3f\n",
            static_cast<unsigned long long>(sent), latency_ms.size(),
            static_cast<unsigned long long>(rejected),
            static_cast<unsigned long long>(sent - latency_ms.size() - rejected),
            static_cast<double>(sent) / secs,
            static_cast<double>(latency_ms.size()) /
                std::max(1e-6, std::chrono::duration<double>(last_pba - start).count()),
            pct(0.50), pct(0.90), pct(0.99));
        std::fflush(stdout);
        return !latency_ms.empty();
    }

    // Data mode, after registration: the tun device and GRE on every accepted access (IPv6 or
    // IPv4 outer header as the CoA), the tun's address from the first HNP (interface id ::1).
    hag::Result<std::unique_ptr<hag::magsim::DataPath>, std::string> open_data() {
        std::vector<hag::magsim::DataAccess> list;
        auto opts = o_.data_options;
        bool have_hnp = false;
        bool have_hoa4 = false;
        for (const auto& a : accesses_) {
            if (!a->last || a->last->status >= 128 || a->revoked) {
                continue;
            }
            hag::magsim::DataAccess d;
            d.name = a->name();
            d.bid = a->spec.bid;
            d.ipv4 = a->ipv4();
            d.coa6 = a->coa6;
            d.coa4 = a->coa4;
            if (lma6_) {
                d.lma6 = *lma6_;
            }
            if (lma4_) {
                d.lma4 = *lma4_;
            }
            d.device = a->device;
            d.uplink_key = a->last->uplink_gre_key;
            d.downlink_key = a->downlink_key;
            d.weight = a->up_kbps;
            // MN mode without a GRE key in the BA: RFC 6275's IPv6-in-IPv6 tunnel.
            d.ipip = hoa_.has_value() && !d.ipv4 && o_.mn_tunnel == "ipip" &&
                     a->last->uplink_gre_key == 0;
            // The LMA detected a NAT (NAT Detection option in the PBA): user data in UDP from
            // the signalling socket's port, kept alive at the refresh time it gave.
            if (d.ipv4 && a->udp_sock && a->last->nat_refresh_s) {
                sockaddr_in local{};
                socklen_t len = sizeof local;
                if (::getsockname(a->udp_sock->native_handle(), reinterpret_cast<sockaddr*>(&local),
                                  &len) == 0) {
                    d.udp = true;
                    d.udp_port = ntohs(local.sin_port);
                    d.keepalive_s = *a->last->nat_refresh_s;
                }
            }
            list.push_back(d);
            if (!opts.lan_dev.empty() && opts.lan_addresses.empty()) {
                // Delegated prefixes to the LAN: the router is the first address of each.
                for (const auto& text : a->last->dmnp) {
                    if (auto p6 = hag::net::parse_ipv6_prefix(text)) {
                        auto addr = p6->address;
                        addr[15] |= 1;
                        opts.lan_addresses.push_back(hag::net::format(addr) + "/" +
                                                     std::to_string(p6->length));
                    } else if (auto p4 = hag::net::parse_ipv4_prefix(text)) {
                        auto addr = p4->address;
                        addr[3] |= 1;
                        opts.lan_addresses.push_back(hag::net::format(addr) + "/" +
                                                     std::to_string(p4->length));
                    }
                }
            }
            if (auto hnp = hag::net::parse_ipv6_prefix(a->last->hnp); hnp && !have_hnp) {
                have_hnp = true;
                auto addr = hnp->address;
                addr[15] |= 1;
                opts.tun_addresses.insert(
                    opts.tun_addresses.begin(),
                    hag::net::format(addr) + "/" + std::to_string(hnp->length));
            }
            // The IPv4 home address (RFC 5844) goes on the tun as a /32: the host's source for
            // IPv4 traffic routed into it (the rest of an assigned IPv4 prefix is the LAN's).
            if (a->last->ipv4_hoa && a->last->ipv4_hoa_status == 0 && !have_hoa4) {
                if (auto p4 = hag::net::parse_ipv4_prefix(*a->last->ipv4_hoa)) {
                    have_hoa4 = true;
                    opts.tun_addresses.push_back(hag::net::format(p4->address) + "/32");
                }
            }
        }
        if (list.empty()) {
            return hag::unexpected(std::string("no registered access"));
        }
        if (hoa_) {
            opts.tun_addresses.insert(opts.tun_addresses.begin(), str6(*hoa_) + "/128");
        }
        return hag::magsim::DataPath::open(opts, std::move(list));
    }

    // Called when an access is revoked (data mode: its uplink share moves to the others).
    std::function<void(std::uint16_t)> on_revoked;
    // Called when an access's LMA stops answering heartbeats (false) and answers again (true).
    std::function<void(std::uint16_t, bool)> on_reachability;

  private:
    void bind_device(Access& a, int fd, boost::system::error_code& ec) {
        if (ec || a.device.empty()) {
            return;
        }
        if (::setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, a.device.c_str(), a.device.size()) != 0) {
            ec.assign(errno, boost::system::system_category());
        }
    }

    bool open_raw(Access& a, const std::string& text) {
        auto coa = resolve_coa<hag::mh::Ipv6>(a.spec.iface_or_coa);
        if (!coa) {
            std::fprintf(stderr, "hag-magsim: --access %s: no IPv6 address for %s\n", text.c_str(),
                         a.spec.iface_or_coa.c_str());
            return false;
        }
        a.coa6 = *coa;
        boost::system::error_code ec;
        a.raw_sock = std::make_unique<raw::socket>(io_);
        a.raw_sock->open(raw(AF_INET6, IPPROTO_MH), ec);
        if (!ec && hoa_) {
            return open_mn(a);
        }
        if (!ec) {
            // The kernel fills the MH checksum at offset 4 (RFC 3542 IPV6_CHECKSUM).
            int off = 4;
            if (::setsockopt(a.raw_sock->native_handle(), IPPROTO_IPV6, IPV6_CHECKSUM, &off,
                             sizeof off) != 0) {
                ec.assign(errno, boost::system::system_category());
            }
        }
        bind_device(a, a.raw_sock->native_handle(), ec);
        if (!ec) {
            const Peer local = peer6(a.coa6);
            a.raw_sock->bind(raw::endpoint(&local.ss, local.len, IPPROTO_MH), ec);
        }
        if (ec) {
            std::fprintf(stderr, "hag-magsim: raw MH socket on %s: %s%s\n", str6(a.coa6).c_str(),
                         ec.message().c_str(),
                         ec.value() == EPERM ? " (needs root or CAP_NET_RAW)" : "");
            return false;
        }
        return true;
    }

    // MN mode: a kernel without MIP6 neither sends a Home Address option nor accepts a Type 2
    // Routing Header. BUs leave as whole IPv6 packets on an IPPROTO_RAW socket; BAs are read on
    // a raw socket of protocol 43, which gets its copy before the kernel drops the packet.
    bool open_mn(Access& a) {
        boost::system::error_code ec;
        a.raw_sock->close(ec);
        a.raw_sock->open(raw(AF_INET6, hag::mh::kIpProtoRouting), ec);
        bind_device(a, a.raw_sock->native_handle(), ec);
        if (!ec) {
            const Peer local = peer6(a.coa6);
            a.raw_sock->bind(raw::endpoint(&local.ss, local.len, hag::mh::kIpProtoRouting), ec);
        }
        if (!ec) {
            a.mn_out = std::make_unique<raw::socket>(io_);
            a.mn_out->open(raw(AF_INET6, IPPROTO_RAW), ec);
            bind_device(a, a.mn_out->native_handle(), ec);
        }
        if (ec) {
            std::fprintf(stderr, "hag-magsim: MN sockets on %s: %s\n", str6(a.coa6).c_str(),
                         ec.message().c_str());
            return false;
        }
        return true;
    }

    bool open_udp(Access& a, const std::string& text) {
        auto coa = resolve_coa<hag::mh::Ipv4>(a.spec.iface_or_coa);
        if (!coa) {
            std::fprintf(stderr, "hag-magsim: --access %s: no IPv4 address for %s\n", text.c_str(),
                         a.spec.iface_or_coa.c_str());
            return false;
        }
        a.coa4 = *coa;
        boost::system::error_code ec;
        a.udp_sock = std::make_unique<dgram::socket>(io_);
        a.udp_sock->open(dgram(AF_INET, IPPROTO_UDP), ec);
        bind_device(a, a.udp_sock->native_handle(), ec);
        if (!ec) {
            // Data mode behind a NAT binds its UDP data socket to the same address and port
            // (so the NAT maps both flows to one port): both sockets need SO_REUSEADDR.
            const int one = 1;
            if (::setsockopt(a.udp_sock->native_handle(), SOL_SOCKET, SO_REUSEADDR, &one,
                             sizeof one) != 0) {
                ec = boost::system::error_code(errno, boost::system::system_category());
            }
        }
        if (!ec) {
            const Peer local = peer4(a.coa4, 0);  // any source port
            a.udp_sock->bind(dgram::endpoint(&local.ss, local.len, IPPROTO_UDP), ec);
        }
        if (ec) {
            std::fprintf(stderr, "hag-magsim: UDP socket on %s: %s\n", str4(a.coa4).c_str(),
                         ec.message().c_str());
            return false;
        }
        return true;
    }

    [[nodiscard]] Peer lma_peer(const Access& a) const {
        return a.ipv4() ? peer4(*lma4_, o_.udp_port) : peer6(*lma6_);
    }

    hag::magsim::PbuParams pbu_params(const Access& a, std::string nai, std::uint16_t seq,
                                      std::uint16_t lifetime_s, std::uint32_t key) const {
        hag::magsim::PbuParams p;
        p.nai = std::move(nai);
        p.mag_id = o_.mag_id;
        p.access = a.spec;
        p.sequence = seq;
        p.lifetime_s = lifetime_s;
        p.downlink_gre_key = key;
        p.down_kbps = a.down_kbps;
        p.up_kbps = a.up_kbps;
        if (a.ipv4()) {
            p.coa4 = a.coa4;
        }
        if (o_.ipv4_hoa) {
            p.ipv4_hoa = hag::mh::Ipv4{};  // 0.0.0.0: assign one (RFC 5844 §3.1)
        }
        p.mobile_node = hoa_.has_value();
        p.gre_key = !p.mobile_node || o_.mn_tunnel != "ipip";
        for (const auto& text : o_.dmnp) {
            if (auto d = hag::magsim::parse_dmnp_request(text)) {
                p.dmnp.push_back(*d);
            }
        }
        return p;
    }

    // Sends one message from `a` to `to`: raw MH (checksum by the kernel) or UDP with the inner
    // IPv6 header (checksum here, over the IPv4-mapped addresses of both ends).
    bool send(Access& a, const hag::mh::Message& m, const Peer& to, bool tolerate_full = false) {
        auto wire = hag::mh::encode(m);
        boost::system::error_code ec;
        if (a.mn_out) {
            // IPv6 header from the CoA, Destination Options with the Home Address option, the BU
            // with its checksum over the home address (RFC 6275 §6.1.1).
            hag::mh::Ipv6 dst{};
            std::memcpy(dst.data(), &reinterpret_cast<const sockaddr_in6*>(&to.ss)->sin6_addr, 16);
            hag::mh::set_checksum(wire, *hoa_, dst);
            auto pkt = hag::mh::build_home_address_header(*hoa_, hag::mh::kIpProtoMobility);
            pkt.insert(pkt.end(), wire.begin(), wire.end());
            auto ip6 =
                hag::mh::build_ipv6_header(a.coa6, dst, hag::mh::kIpProtoDstOpts, pkt.size());
            ip6.insert(ip6.end(), pkt.begin(), pkt.end());
            a.mn_out->send_to(asio::buffer(ip6), raw::endpoint(&to.ss, to.len, IPPROTO_RAW), 0, ec);
        } else if (a.raw_sock) {
            a.raw_sock->send_to(asio::buffer(wire), raw::endpoint(&to.ss, to.len, IPPROTO_MH), 0,
                                ec);
        } else {
            const auto payload =
                hag::mh::build_udp_signalling(std::move(wire), false, hag::net::ipv4_mapped(a.coa4),
                                              hag::net::ipv4_mapped(peer_ipv4(to)));
            a.udp_sock->send_to(asio::buffer(payload), dgram::endpoint(&to.ss, to.len, IPPROTO_UDP),
                                0, ec);
        }
        if (ec && !(tolerate_full && ec == asio::error::would_block)) {
            std::fprintf(stderr, "hag-magsim: send from %s to %s: %s\n", a.coa_text().c_str(),
                         peer_text(to).c_str(), ec.message().c_str());
            return false;
        }
        return true;
    }

    // Decodes what arrived on `a`: a raw MH as is, a UDP datagram after checking its framing and
    // MH checksum (a bad one is reported and dropped).
    std::optional<hag::mh::Message> decode_received(Access& a, std::size_t n, const Peer& from) {
        std::span<const std::uint8_t> mh_bytes(a.buf.data(), n);
        if (a.udp_sock) {
            auto f = hag::mh::parse_udp_signalling(mh_bytes, hag::net::ipv4_mapped(peer_ipv4(from)),
                                                   hag::net::ipv4_mapped(a.coa4));
            if (!f) {
                std::printf("%s: dropped UDP datagram from %s: %s\n", a.name().c_str(),
                            peer_text(from).c_str(),
                            std::string(hag::mh::to_string(f.error())).c_str());
                std::fflush(stdout);
                return std::nullopt;
            }
            mh_bytes = f->mh;
        }
        if (a.mn_out) {
            // MN mode: a Type 2 Routing Header for our home address, then the mobility header
            // with its checksum over the home address as the final destination.
            auto rh = hag::mh::parse_type2_routing_header(mh_bytes);
            hag::mh::Ipv6 src{};
            std::memcpy(src.data(), &reinterpret_cast<const sockaddr_in6*>(&from.ss)->sin6_addr,
                        16);
            const char* why = !rh                         ? "not a type 2 header"
                              : rh->home_address != *hoa_ ? "another home address"
                              : rh->next_header != hag::mh::kIpProtoMobility
                                  ? "not a mobility header"
                              : !hag::mh::checksum_ok(rh->payload, src, *hoa_) ? "bad checksum"
                                                                               : nullptr;
            if (why != nullptr) {
                std::printf("%s: dropped routing header packet from %s: %s\n", a.name().c_str(),
                            peer_text(from).c_str(), why);
                std::fflush(stdout);
                return std::nullopt;
            }
            mh_bytes = rh->payload;
        }
        auto m = hag::mh::decode(mh_bytes);
        if (!m) {
            std::printf("%s: dropped mobility header from %s: %s\n", a.name().c_str(),
                        peer_text(from).c_str(), m.error().str().c_str());
            std::fflush(stdout);
            return std::nullopt;
        }
        return std::move(*m);
    }

    // Load mode: one non-blocking receive.
    std::optional<hag::mh::Message> receive_now(Access& a, boost::system::error_code& ec) {
        std::size_t n = 0;
        Peer from;
        if (a.raw_sock) {
            n = a.raw_sock->receive_from(asio::buffer(a.buf), a.raw_from, 0, ec);
            std::memcpy(&from.ss, a.raw_from.data(), a.raw_from.size());
            from.len = static_cast<socklen_t>(a.raw_from.size());
        } else {
            n = a.udp_sock->receive_from(asio::buffer(a.buf), a.udp_from, 0, ec);
            std::memcpy(&from.ss, a.udp_from.data(), a.udp_from.size());
            from.len = static_cast<socklen_t>(a.udp_from.size());
        }
        if (ec) {
            return std::nullopt;
        }
        return decode_received(a, n, from);
    }

    void arm(Access& a) {
        auto done = [this, &a](const boost::system::error_code& ec, std::size_t n) {
            if (ec == asio::error::operation_aborted) {
                return;
            }
            if (!ec) {
                Peer from;
                const void* data = a.raw_sock ? a.raw_from.data() : a.udp_from.data();
                const std::size_t size = a.raw_sock ? a.raw_from.size() : a.udp_from.size();
                std::memcpy(&from.ss, data, std::min(size, sizeof from.ss));
                from.len = static_cast<socklen_t>(size);
                if (auto m = decode_received(a, n, from)) {
                    on_message(a, *m, from);
                }
            }
            arm(a);
        };
        if (a.raw_sock) {
            a.raw_sock->async_receive_from(asio::buffer(a.buf), a.raw_from, done);
        } else {
            a.udp_sock->async_receive_from(asio::buffer(a.buf), a.udp_from, done);
        }
    }

    // Runs the I/O until `done()` or `until` or a stop signal.
    template <typename Done>
    void run_until(Clock::time_point until, Done done) {
        while (!done() && !g_stop && Clock::now() < until) {
            io_.restart();
            io_.run_one_until(std::min(until, Clock::now() + std::chrono::milliseconds(200)));
        }
    }

    void on_message(Access& a, const hag::mh::Message& m, const Peer& from) {
        if (auto s = hag::magsim::summarize_pba(m)) {
            if (a.awaited_seq && s->sequence == *a.awaited_seq) {
                a.awaited = s;
            }
            return;
        }
        if (const auto* hb = std::get_if<hag::mh::Heartbeat>(&m.body)) {
            if (const auto* rc = hag::mh::find_option<hag::mh::RestartCounter>(hb->options)) {
                note_restart_counter(a, rc->value);
            }
            if (!hb->response) {
                hag::mh::Heartbeat r;
                r.response = true;
                r.sequence = hb->sequence;
                send(a, hag::mh::Message{r}, from);
            } else if (a.heartbeats.on_response(hb->sequence) ==
                       HeartbeatTracker::Event::kReachableAgain) {
                std::printf("%s: LMA reachable again\n", a.name().c_str());
                std::fflush(stdout);
                if (on_reachability && !a.revoked) {
                    on_reachability(a.spec.bid, true);
                }
            }
            return;
        }
        if (const auto* br = std::get_if<hag::mh::BindingRevocation>(&m.body);
            br != nullptr && br->br_type == hag::mh::kBrTypeIndication) {
            on_revocation(a, *br, from);
        }
    }

    // RFC 5846 §9 (MAG side): acknowledge, then forget the binding. The BRI names the binding by
    // MN-ID and, with several CoAs, by Binding Identifier; without a BID it is the access the
    // BRI came to, with the G flag all accesses of this simulator.
    void on_revocation(Access& a, const hag::mh::BindingRevocation& bri, const Peer& from) {
        send(a, hag::magsim::build_bra(bri, 0), from);
        const auto* id = hag::mh::find_option<hag::mh::MobileNodeIdentifier>(bri.options);
        if (id != nullptr && std::string(id->identifier.begin(), id->identifier.end()) != o_.nai) {
            std::printf("%s: revocation for unknown MN-ID %s acknowledged, nothing revoked\n",
                        a.name().c_str(),
                        std::string(id->identifier.begin(), id->identifier.end()).c_str());
            std::fflush(stdout);
            return;
        }
        std::vector<Access*> targets;
        const auto bids = hag::mh::find_options<hag::mh::BindingIdentifier>(bri.options);
        for (auto& x : accesses_) {
            const bool named = std::any_of(bids.begin(), bids.end(),
                                           [&](const auto* b) { return b->bid == x->spec.bid; });
            if (bri.global || named || (bids.empty() && x.get() == &a)) {
                targets.push_back(x.get());
            }
        }
        for (Access* t : targets) {
            if (!t->revoked) {
                t->revoked = true;
                if (on_revoked) {
                    on_revoked(t->spec.bid);
                }
                std::printf("%s revoked by LMA (trigger %u)\n", t->name().c_str(),
                            bri.trigger_or_status);
                std::fflush(stdout);
            }
        }
    }

    void print(const Access& a, bool dereg) const {
        const auto& s = *a.last;
        std::printf(
            "%s coa=%s %s: %s (%u) hnp=%s uplink-gre-key=0x%08x downlink-gre-key=0x%08x "
            "lifetime=%us%s\n",
            a.name().c_str(), a.coa_text().c_str(), dereg ? "de-registration" : "registration",
            s.status_name.c_str(), s.status, s.hnp.c_str(), s.uplink_gre_key, a.downlink_key,
            s.lifetime_s,
            [&] {
                std::string d;
                for (const auto& x : s.dmnp) {
                    d += (d.empty() ? " dmnp=" : ",") + x;
                }
                return d;
            }()
                .c_str());
        if (s.hnps.size() > 1) {
            std::string h;
            for (const auto& x : s.hnps) {
                h += (h.empty() ? "" : ",") + x;
            }
            std::printf("%s hnps=%s\n", a.name().c_str(), h.c_str());
        }
        if (s.nat_refresh_s) {
            std::printf("%s nat-detected refresh=%us\n", a.name().c_str(), *s.nat_refresh_s);
        }
        if (s.ipv4_hoa) {
            std::printf("%s ipv4-hoa=%s status=%u default-router=%s\n", a.name().c_str(),
                        s.ipv4_hoa->c_str(), s.ipv4_hoa_status, s.ipv4_router.c_str());
        }
        if (!s.flows.empty()) {
            std::string f;
            for (const auto& [fid, status] : s.flows) {
                f += fmt::format("{}fid {}: {} ({})", f.empty() ? "" : ", ", fid,
                                 hag::mh::flow_status_name(status), status);
            }
            std::printf("%s flow bindings: %s\n", a.name().c_str(), f.c_str());
        }
        std::fflush(stdout);
    }

    asio::io_context& io_;
    Options o_;
    std::optional<hag::mh::Ipv6> lma6_;
    std::optional<hag::mh::Ipv4> lma4_;
    std::optional<hag::mh::Ipv6> hoa_;               // MN mode
    std::vector<std::unique_ptr<Access>> accesses_;  // stable addresses: receives refer to them
    std::uint32_t hb_sequence_ = 0;
    std::optional<std::uint32_t> lma_restart_counter_;  // as last seen in a heartbeat
    bool lma_restarted_ = false;

    void note_restart_counter(const Access& a, std::uint32_t value) {
        if (lma_restart_counter_ && *lma_restart_counter_ != value) {
            std::printf("%s: LMA restarted (restart counter %u -> %u): re-registering\n",
                        a.name().c_str(), *lma_restart_counter_, value);
            std::fflush(stdout);
            lma_restarted_ = true;
        }
        lma_restart_counter_ = value;
    }
};

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "hag-magsim: MAG/CPE simulator for hag-control (PBU/PBA over raw MH sockets or UDP 5436)"};
    app.require_subcommand(1);
    Options o;
    auto add_common = [&](CLI::App* c) {
        c->add_option("--lma", o.lma,
                      "LMA address: IPv6 (raw MH) and/or IPv4 (UDP 5436); give it twice for both")
            ->required()
            ->expected(1, 2);
        c->add_option("--udp-port", o.udp_port, "LMA UDP port for IPv4 accesses")
            ->capture_default_str();
        c->add_option("--nai", o.nai, "subscriber NAI (MN-ID)")->capture_default_str();
        c->add_option("--mag-id", o.mag_id, "MAG Identifier (NAI)")->capture_default_str();
        c->add_option("--access", o.accesses,
                      "KIND[4]:IFACE_OR_COA:BID, repeatable (KIND: dsl, lte, wlan, ethernet; an "
                      "IPv4 CoA or the suffix 4 selects IPv4 / UDP 5436)")
            ->required();
        c->add_option("--mn", o.mn_home_address,
                      "MN mode: be a MIPv6 mobile node with this home address (BUs with a Home "
                      "Address option from each access's care-of address, one BID per access)");
        c->add_option("--mn-tunnel", o.mn_tunnel,
                      "MN mode: gre (BUs offer a GRE Key option, RFC 5845) or ipip (no GRE Key "
                      "option: RFC 6275's IPv6-in-IPv6 tunnel when the BA carries no key)")
            ->check(CLI::IsMember({"gre", "ipip"}))
            ->capture_default_str();
        c->add_option("--retransmissions", o.max_retx, "PBU retransmissions (1 s, doubling)")
            ->capture_default_str();
        c->add_flag("--ipv4-hoa", o.ipv4_hoa,
                    "ask for an IPv4 home address (RFC 5844 IPv4 Home Address Request, "
                    "0.0.0.0); in data mode it goes on the tun");
    };
    auto* reg = app.add_subcommand("register", "register every access, print each PBA");
    add_common(reg);
    reg->add_option("--lifetime", o.lifetime, "requested lifetime (s)")->capture_default_str();
    reg->add_option("--hold", o.hold_s,
                    "stay for this many seconds: answer heartbeats and revocations, re-register "
                    "at 80% of the granted lifetime");
    reg->add_option("--down-kbps", o.down_kbps, "link metric: downlink rate");
    reg->add_option("--up-kbps", o.up_kbps, "link metric: uplink rate");
    reg->add_option("--heartbeat", o.heartbeat_s,
                    "during --hold, send a Heartbeat request every this many seconds");
    reg->add_option("--link-metrics", o.link_metrics,
                    "BID:DOWN_KBPS:UP_KBPS, repeatable: that access's link metrics (instead of "
                    "--down-kbps/--up-kbps); in data mode the uplink weights");
    bool dereg_at_end = false;
    reg->add_flag("--deregister-at-end", dereg_at_end, "de-register after --hold");
    auto& d = o.data_options;
    reg->add_flag("--data", o.data,
                  "data mode: after registering, carry user traffic between a tun device and "
                  "GRE on every access until --hold ends (no --hold: until SIGINT/SIGTERM)");
    reg->add_option("--tun", d.tun, "data mode: tun device name")->capture_default_str();
    reg->add_option("--tun-mtu", d.mtu, "data mode: tun MTU")->capture_default_str();
    reg->add_option("--tun-addr", d.tun_addresses,
                    "data mode: more ADDR/LEN on the tun (HNP::1 is always there)");
    reg->add_option("--route", d.routes, "data mode: prefix routed into the tun, repeatable");
    reg->add_option("--pin-bid", d.pin_bid,
                    "data mode: uplink on this access only while it is live (default: split by "
                    "uplink weight)");
    reg->add_option("--reorder-window", d.reorder_window, "data mode: downlink reorder buffer")
        ->check(CLI::Range(2u, 4096u))
        ->capture_default_str();
    reg->add_option("--reorder-timeout-ms", d.reorder_timeout_ms,
                    "data mode: a downlink gap is given up after this long")
        ->check(CLI::Range(1u, 10000u))
        ->capture_default_str();
    reg->add_option("--stats", d.stats_file, "data mode: counters as JSON to this file at exit");
    reg->add_option("--dmnp", o.dmnp,
                    "ask for a delegated prefix (RFC 7148), repeatable: any (IPv6), any4 (IPv4), "
                    "::/56 (any, length hint) or a specific prefix")
        ->check([](const std::string& v) {
            return hag::magsim::parse_dmnp_request(v) ? std::string()
                                                      : "not any, any4 or a prefix: " + v;
        });
    reg->add_option("--lan-dev", d.lan_dev,
                    "data mode: the LAN device behind the router; each delegated prefix's first "
                    "address goes on it");
    reg->add_option("--flow", o.flow_texts,
                    "RFC 6089 flow binding, repeatable: NAME=PROTO[:PORT[-PORT]]>BID[,BID...] or "
                    "NAME=PROTO[:PORT[-PORT]]>drop (PORT: the other end's); signalled in the "
                    "PBUs and, in data mode, applied to the uplink");
    reg->add_option("--flows", o.flows_file, "flow bindings from a file, one --flow a line");
    auto* dereg = app.add_subcommand("deregister", "de-register the given accesses (lifetime 0)");
    add_common(dereg);
    auto* load = app.add_subcommand("load", "signalling load: PBU/s and PBA latency");
    add_common(load);
    unsigned subscribers = 1000;
    double rate = 1000, duration = 10;
    load->add_option("--subscribers", subscribers, "distinct NAIs")
        ->check(CLI::Range(1u, 10000000u))
        ->capture_default_str();
    load->add_option("--rate", rate, "PBUs per second")
        ->check(CLI::Range(1.0, 1e6))
        ->capture_default_str();
    load->add_option("--duration", duration, "seconds of sending")
        ->check(CLI::Range(0.1, 86400.0))
        ->capture_default_str();
    std::string load_prefix = "load", accepted_file;
    load->add_option("--nai-prefix", load_prefix, "NAIs are <prefix><i>@example.net")
        ->capture_default_str();
    load->add_option("--accepted-file", accepted_file,
                     "write the NAI of each accepted PBA to this file, one a line, as it arrives");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;  // --help: 0; bad arguments: 2 as documented
    }

    {
        std::string why;
        if (!o.flows_file.empty()) {
            auto f = hag::magsim::read_flows_file(o.flows_file, &why);
            if (!f) {
                std::fprintf(stderr, "hag-magsim: %s\n", why.c_str());
                return 2;
            }
            o.flows = std::move(*f);
        }
        for (const auto& t : o.flow_texts) {
            auto f = hag::magsim::parse_flow(t, o.flows.size(), &why);
            if (!f) {
                std::fprintf(stderr, "hag-magsim: %s\n", why.c_str());
                return 2;
            }
            o.flows.push_back(std::move(*f));
        }
        o.data_options.flows = o.flows;
    }
    ::signal(SIGINT, [](int) { g_stop = 1; });
    ::signal(SIGTERM, [](int) { g_stop = 1; });
    asio::io_context io;
    Sim sim(io, o);
    if (!sim.open()) {
        return 2;
    }
    if (load->parsed()) {
        return sim.run_load(subscribers, rate, duration, load_prefix, accepted_file) ? 0 : 1;
    }
    sim.start_receiving();
    if (dereg->parsed()) {
        return sim.signal_all(0, 1) ? 0 : 1;
    }
    if (o.lifetime > 65535 * 4) {
        std::fprintf(stderr, "hag-magsim: --lifetime above %u\n", 65535 * 4);
        return 2;
    }
    if (!sim.signal_all(static_cast<std::uint16_t>(o.lifetime), 1)) {
        return 1;
    }
    std::unique_ptr<hag::magsim::DataPath> data;
    std::atomic<bool> data_stop{false};
    std::thread data_thread;
    if (o.data) {
        auto opened = sim.open_data();
        if (!opened) {
            std::fprintf(stderr, "hag-magsim: data mode: %s\n", opened.error().c_str());
            return 2;
        }
        data = std::move(*opened);
        sim.on_revoked = [&data](std::uint16_t bid) { data->set_live(bid, false); };
        sim.on_reachability = [&data](std::uint16_t bid, bool up) { data->set_live(bid, up); };
        data_thread = std::thread([&] { data->run(data_stop); });
        std::printf("data mode: ready\n");
        std::fflush(stdout);
        if (o.hold_s == 0) {
            o.hold_s = 100U * 365 * 86400;  // until a signal
        }
    }
    // Stops the data thread and prints its counters (once, on every way out below).
    auto finish_data = [&] {
        if (data_thread.joinable()) {
            data_stop = true;
            data_thread.join();
            data->report();
        }
    };
    const auto end = Clock::now() + std::chrono::seconds(o.hold_s);
    auto next_hb = Clock::now();
    while (!g_stop && Clock::now() < end) {
        const std::uint32_t granted = std::max<std::uint32_t>(sim.granted_lifetime(o.lifetime), 1);
        std::uint64_t refresh_ms = granted * 800ULL;
        if (const std::uint32_t nat = sim.nat_refresh(); nat != 0) {
            refresh_ms = std::min<std::uint64_t>(refresh_ms, nat * 1000ULL);
        }
        const auto refresh = std::min(end, Clock::now() + std::chrono::milliseconds(refresh_ms));
        while (!g_stop && Clock::now() < refresh) {
            if (o.heartbeat_s != 0 && Clock::now() >= next_hb) {
                sim.send_heartbeats();
                next_hb = Clock::now() + std::chrono::seconds(o.heartbeat_s);
            }
            sim.serve_until(std::min(refresh, o.heartbeat_s != 0 ? next_hb : refresh));
            if (!g_stop && sim.take_lma_restart()) {
                (void)sim.signal_all(static_cast<std::uint16_t>(o.lifetime), 1);
            }
        }
        if (!g_stop && Clock::now() < end &&
            !sim.signal_all(static_cast<std::uint16_t>(o.lifetime), 5)) {
            finish_data();
            return 1;
        }
    }
    finish_data();
    if (dereg_at_end) {
        // SIGINT / SIGTERM end the hold, not the de-registration: the stop flag is cleared so
        // that its PBUs go out (bounded by --retransmissions; a second signal aborts them).
        if (g_stop != 0) {
            std::printf("stop requested: de-registering\n");
            std::fflush(stdout);
            g_stop = 0;
        }
        return sim.signal_all(0, 1) ? 0 : 1;
    }
    return 0;
}
