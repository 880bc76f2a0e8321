// hag-magsim: MAG/CPE simulator. Sends real PBUs over IPPROTO_MH raw sockets from each access's
// care-of address, waits for PBAs with retransmission, re-registers before expiry, answers
// heartbeats, de-registers; `load` measures PBU/s and PBA latency percentiles.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/asio.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>

#include "hag/mh/timestamp.hpp"
#include "pbu.hpp"

namespace asio = boost::asio;
using raw = asio::generic::raw_protocol;
using Clock = std::chrono::steady_clock;

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

std::string str6(const hag::mh::Ipv6& a) {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(AF_INET6, a.data(), buf, sizeof buf);
    return buf;
}

// The CoA of an access: the address itself, or the first global IPv6 address of the interface.
std::optional<hag::mh::Ipv6> resolve_coa(const std::string& iface_or_coa) {
    if (auto a = parse6(iface_or_coa)) {
        return a;
    }
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) {
        return std::nullopt;
    }
    std::optional<hag::mh::Ipv6> out;
    for (ifaddrs* i = list; i != nullptr && !out; i = i->ifa_next) {
        if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET6 ||
            iface_or_coa != i->ifa_name) {
            continue;
        }
        const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
        if (IN6_IS_ADDR_LINKLOCAL(&sin6->sin6_addr)) {
            continue;
        }
        hag::mh::Ipv6 a{};
        std::memcpy(a.data(), &sin6->sin6_addr, 16);
        out = a;
    }
    freeifaddrs(list);
    return out;
}

raw::endpoint endpoint6(const hag::mh::Ipv6& a) {
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    std::memcpy(&sa.sin6_addr, a.data(), 16);
    return raw::endpoint(&sa, sizeof sa, IPPROTO_MH);
}

// One access of one subscriber: its socket (bound to the CoA), sequence and state.
struct Access {
    hag::magsim::AccessSpec spec;
    hag::mh::Ipv6 coa{};
    std::unique_ptr<raw::socket> sock;
    std::uint16_t sequence = 0;
    std::uint32_t downlink_key = 0;
    std::optional<hag::magsim::PbaSummary> last;
};

struct Options {
    std::string lma;
    std::string nai = "cpe1@example.net";
    std::string mag_id = "mag1@example.net";
    std::vector<std::string> accesses;
    unsigned lifetime = 3600;
    unsigned max_retx = 5;
    double reregister_s = 0;  // 0 = register once and exit
    unsigned hold_s = 0;
    unsigned heartbeat_s = 0;  // 0 = send no heartbeats      // keep answering heartbeats for this
                               // long after registering
    std::uint32_t down_kbps = 0;
    std::uint32_t up_kbps = 0;
};

class Sim {
  public:
    Sim(asio::io_context& io, Options o) : io_(io), o_(std::move(o)) {}

    bool open() {
        auto lma = parse6(o_.lma);
        if (!lma) {
            std::fprintf(stderr, "hag-magsim: --lma %s is not an IPv6 address\n", o_.lma.c_str());
            return false;
        }
        lma_ = *lma;
        std::uint32_t key = 0x10000 + (static_cast<std::uint32_t>(::getpid()) & 0xffff) * 16;
        for (const auto& text : o_.accesses) {
            auto spec = hag::magsim::parse_access(text);
            if (!spec) {
                std::fprintf(stderr, "hag-magsim: --access %s: expected KIND:IFACE_OR_COA:BID\n",
                             text.c_str());
                return false;
            }
            auto coa = resolve_coa(spec->iface_or_coa);
            if (!coa) {
                std::fprintf(stderr, "hag-magsim: --access %s: no IPv6 address for %s\n",
                             text.c_str(), spec->iface_or_coa.c_str());
                return false;
            }
            Access a;
            a.spec = *spec;
            a.coa = *coa;
            a.downlink_key = ++key;
            boost::system::error_code ec;
            a.sock = std::make_unique<raw::socket>(io_);
            a.sock->open(raw(AF_INET6, IPPROTO_MH), ec);
            if (!ec) {
                // The kernel fills the MH checksum at offset 4 (RFC 3542 IPV6_CHECKSUM).
                int off = 4;
                if (::setsockopt(a.sock->native_handle(), IPPROTO_IPV6, IPV6_CHECKSUM, &off,
                                 sizeof off) != 0) {
                    ec.assign(errno, boost::system::system_category());
                }
            }
            if (!ec) {
                a.sock->bind(endpoint6(a.coa), ec);
            }
            if (ec) {
                std::fprintf(stderr, "hag-magsim: raw MH socket on %s: %s%s\n", str6(a.coa).c_str(),
                             ec.message().c_str(),
                             ec.value() == EPERM ? " (needs root or CAP_NET_RAW)" : "");
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

    // Sends a PBU on each access and waits for its PBA, retransmitting from 1 s with
    // exponential backoff (RFC 6275 §11.8) up to max_retx times. Returns false when any
    // access got no PBA or a rejection.
    bool signal_all(std::uint16_t lifetime_s, std::uint8_t handoff) {
        bool ok = true;
        for (auto& a : accesses_) {
            ok &= signal(a, lifetime_s, handoff);
        }
        return ok;
    }

    bool signal(Access& a, std::uint16_t lifetime_s, std::uint8_t handoff) {
        hag::magsim::PbuParams p;
        p.nai = o_.nai;
        p.mag_id = o_.mag_id;
        p.access = a.spec;
        p.sequence = ++a.sequence;
        p.lifetime_s = lifetime_s;
        p.downlink_gre_key = a.downlink_key;
        p.handoff = handoff;
        p.down_kbps = o_.down_kbps;
        p.up_kbps = o_.up_kbps;
        std::chrono::milliseconds timeout(1000);
        for (unsigned attempt = 0; attempt <= o_.max_retx; ++attempt) {
            p.timestamp = hag::mh::timestamp_now();
            const auto wire = hag::mh::encode(hag::magsim::build_pbu(p));
            boost::system::error_code ec;
            a.sock->send_to(asio::buffer(wire), endpoint6(lma_), 0, ec);
            if (ec) {
                std::fprintf(stderr, "hag-magsim: send from %s: %s\n", str6(a.coa).c_str(),
                             ec.message().c_str());
                return false;
            }
            if (auto pba = wait_pba(a, p.sequence, timeout)) {
                a.last = pba;
                print(a, lifetime_s == 0);
                return pba->status < 128;
            }
            timeout = std::min(timeout * 2, std::chrono::milliseconds(32000));
        }
        std::printf("access %s bid=%u coa=%s: no PBA after %u retransmission(s)\n",
                    a.spec.kind.c_str(), a.spec.bid, str6(a.coa).c_str(), o_.max_retx);
        return false;
    }

    // Answers heartbeats and drops anything else until `until`.
    void serve_until(Clock::time_point until) {
        for (auto& a : accesses_) {
            while (Clock::now() < until) {
                auto m = receive(
                    a, std::chrono::duration_cast<std::chrono::milliseconds>(std::min(
                           until - Clock::now(), Clock::duration(std::chrono::seconds(1)))));
                (void)m;
                if (accesses_.size() > 1) {
                    break;  // round-robin over accesses
                }
            }
        }
    }
    std::vector<Access>& accesses() { return accesses_; }

    // Sends a Heartbeat request (RFC 5847 §5.1) to the LMA from every access.
    void send_heartbeats() {
        ++hb_sequence_;
        for (auto& a : accesses_) {
            hag::mh::Heartbeat hb;
            hb.sequence = hb_sequence_;
            const auto wire = hag::mh::encode(hag::mh::Message{hb});
            boost::system::error_code ec;
            a.sock->send_to(asio::buffer(wire), endpoint6(lma_), 0, ec);
        }
    }

    // Load mode: PBUs for `subscribers` NAIs (load<i>@example.net, MAG load<i>-<mag-id>) on the
    // first access, paced at
    // `rate` per second for `duration_s`, then up to 2 s for late PBAs. Prints PBU/s achieved and
    // PBA latency percentiles. Returns false when no PBA came back.
    bool run_load(unsigned subscribers, double rate, double duration_s) {
        Access& a = accesses_.front();
        a.sock->non_blocking(true);
        // PBAs arrive faster than one loop turn at high rates: give the kernel room to queue.
        const int rcvbuf = 16 << 20;
        if (::setsockopt(a.sock->native_handle(), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf,
                         sizeof rcvbuf) != 0) {
            (void)::setsockopt(a.sock->native_handle(), SOL_SOCKET, SO_RCVBUF, &rcvbuf,
                               sizeof rcvbuf);
        }
        std::vector<std::optional<Clock::time_point>> sent_at(65536);
        std::vector<double> latency_ms;
        std::uint64_t sent = 0, rejected = 0;
        const auto start = Clock::now();
        const auto stop_sending = start + std::chrono::duration_cast<Clock::duration>(
                                              std::chrono::duration<double>(duration_s));
        auto next = start;
        const auto gap =
            std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate));
        std::uint16_t seq = 0;
        std::array<std::uint8_t, 2048> buf{};
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
                hag::magsim::PbuParams p;
                const std::string index = std::to_string(sent % subscribers);
                p.nai = "load" + index + "@example.net";
                // One MAG per home router, as deployed: the LMA keys paths by (MAG, BID).
                p.mag_id = "load" + index + "-" + o_.mag_id;
                p.access = a.spec;
                p.sequence = ++seq;
                p.lifetime_s = static_cast<std::uint16_t>(std::min(o_.lifetime, 65535u * 4));
                p.downlink_gre_key =
                    a.downlink_key + static_cast<std::uint32_t>(sent % subscribers);
                p.timestamp = hag::mh::timestamp_now();
                const auto wire = hag::mh::encode(hag::magsim::build_pbu(p));
                boost::system::error_code ec;
                a.sock->send_to(asio::buffer(wire), endpoint6(lma_), 0, ec);
                if (ec && ec != asio::error::would_block) {
                    std::fprintf(stderr, "hag-magsim: send: %s\n", ec.message().c_str());
                    return false;
                }
                sent_at[seq] = Clock::now();
                last_send = Clock::now();
                ++sent;
                next += gap;
            }
            // Read what has arrived (bounded, so sending keeps its pace); sleep only when idle.
            raw::endpoint from;
            boost::system::error_code ec;
            const std::size_t n = a.sock->receive_from(asio::buffer(buf), from, 0, ec);
            if (ec == asio::error::would_block) {
                idle = true;
                continue;
            }
            if (ec) {
                continue;
            }
            auto m = hag::mh::decode({buf.data(), n});
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

  private:
    // Receives one message on `a` within `timeout`; answers heartbeat requests on the way.
    std::optional<hag::mh::Message> receive(Access& a, std::chrono::milliseconds timeout) {
        std::array<std::uint8_t, 2048> buf{};
        std::optional<hag::mh::Message> out;
        bool done = false;
        raw::endpoint from;
        asio::steady_timer t(io_, timeout);
        t.async_wait([&](const boost::system::error_code& ec) {
            if (!ec) {
                a.sock->cancel();
            }
        });
        a.sock->async_receive_from(asio::buffer(buf), from,
                                   [&](const boost::system::error_code& ec, std::size_t n) {
                                       t.cancel();
                                       done = true;
                                       if (ec) {
                                           return;
                                       }
                                       auto m = hag::mh::decode({buf.data(), n});
                                       if (m) {
                                           out = std::move(*m);
                                       }
                                   });
        io_.restart();
        io_.run();
        (void)done;
        if (out) {
            if (const auto* hb = std::get_if<hag::mh::Heartbeat>(&out->body);
                hb != nullptr && !hb->response) {
                hag::mh::Heartbeat r;
                r.response = true;
                r.sequence = hb->sequence;
                const auto wire = hag::mh::encode(hag::mh::Message{r});
                boost::system::error_code ec;
                a.sock->send_to(asio::buffer(wire), from, 0, ec);
            }
        }
        return out;
    }

    std::optional<hag::magsim::PbaSummary> wait_pba(Access& a, std::uint16_t seq,
                                                    std::chrono::milliseconds timeout) {
        const auto deadline = Clock::now() + timeout;
        while (Clock::now() < deadline) {
            auto m = receive(
                a, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
            if (!m) {
                continue;
            }
            auto s = hag::magsim::summarize_pba(*m);
            if (s && s->sequence == seq) {
                return s;
            }
        }
        return std::nullopt;
    }

    void print(const Access& a, bool dereg) const {
        const auto& s = *a.last;
        std::printf(
            "access %s bid=%u coa=%s %s: %s (%u) hnp=%s uplink-gre-key=0x%08x "
            "downlink-gre-key=0x%08x lifetime=%us\n",
            a.spec.kind.c_str(), a.spec.bid, str6(a.coa).c_str(),
            dereg ? "de-registration" : "registration", s.status_name.c_str(), s.status,
            s.hnp.c_str(), s.uplink_gre_key, a.downlink_key, s.lifetime_s);
        std::fflush(stdout);
    }

    asio::io_context& io_;
    Options o_;
    hag::mh::Ipv6 lma_{};
    std::vector<Access> accesses_;
    std::uint32_t hb_sequence_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"hag-magsim: MAG/CPE simulator for hag-control (PBU/PBA over raw MH sockets)"};
    app.require_subcommand(1);
    Options o;
    auto add_common = [&](CLI::App* c) {
        c->add_option("--lma", o.lma, "LMA IPv6 address")->required();
        c->add_option("--nai", o.nai, "subscriber NAI (MN-ID)")->capture_default_str();
        c->add_option("--mag-id", o.mag_id, "MAG Identifier (NAI)")->capture_default_str();
        c->add_option("--access", o.accesses,
                      "KIND:IFACE_OR_COA:BID, repeatable (KIND: dsl, "
                      "lte, wlan, ethernet)")
            ->required();
        c->add_option("--retransmissions", o.max_retx, "PBU retransmissions (1 s, doubling)")
            ->capture_default_str();
    };
    auto* reg = app.add_subcommand("register", "register every access, print each PBA");
    add_common(reg);
    reg->add_option("--lifetime", o.lifetime, "requested lifetime (s)")->capture_default_str();
    reg->add_option("--hold", o.hold_s,
                    "stay for this many seconds: answer heartbeats and re-register at 80% of "
                    "the granted lifetime");
    reg->add_option("--down-kbps", o.down_kbps, "link metric: downlink rate");
    reg->add_option("--up-kbps", o.up_kbps, "link metric: uplink rate");
    reg->add_option("--heartbeat", o.heartbeat_s,
                    "during --hold, send a Heartbeat request every this many seconds");
    bool dereg_at_end = false;
    reg->add_flag("--deregister-at-end", dereg_at_end, "de-register after --hold");
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
    CLI11_PARSE(app, argc, argv);

    ::signal(SIGINT, [](int) { g_stop = 1; });
    ::signal(SIGTERM, [](int) { g_stop = 1; });
    asio::io_context io;
    Sim sim(io, o);
    if (!sim.open()) {
        return 2;
    }
    if (dereg->parsed()) {
        return sim.signal_all(0, 1) ? 0 : 1;
    }
    if (load->parsed()) {
        return sim.run_load(subscribers, rate, duration) ? 0 : 1;
    }
    if (o.lifetime > 65535 * 4) {
        std::fprintf(stderr, "hag-magsim: --lifetime above %u\n", 65535 * 4);
        return 2;
    }
    if (!sim.signal_all(static_cast<std::uint16_t>(o.lifetime), 1)) {
        return 1;
    }
    const auto end = Clock::now() + std::chrono::seconds(o.hold_s);
    while (!g_stop && Clock::now() < end) {
        std::uint32_t granted = o.lifetime;
        for (const auto& a : sim.accesses()) {
            granted = std::min(granted, a.last ? a.last->lifetime_s : granted);
        }
        const auto refresh =
            std::min(end, Clock::now() + std::chrono::milliseconds(granted * 800ULL));
        auto next_hb = Clock::now();
        while (!g_stop && Clock::now() < refresh) {
            if (o.heartbeat_s != 0 && Clock::now() >= next_hb) {
                sim.send_heartbeats();
                next_hb = Clock::now() + std::chrono::seconds(o.heartbeat_s);
            }
            sim.serve_until(std::min(refresh, Clock::now() + std::chrono::seconds(1)));
        }
        if (!g_stop && Clock::now() < end &&
            !sim.signal_all(static_cast<std::uint16_t>(o.lifetime), 5)) {
            return 1;
        }
    }
    if (dereg_at_end) {
        return sim.signal_all(0, 1) ? 0 : 1;
    }
    return 0;
}
