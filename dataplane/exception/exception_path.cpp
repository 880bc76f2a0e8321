#include "exception/exception_path.hpp"

#include <rte_errno.h>
#include <rte_mbuf.h>
#include <spdlog/spdlog.h>
#include <sys/uio.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>

#include "runtime/text.hpp"

namespace hag::dp {

namespace {

constexpr unsigned kBurst = 32;
constexpr unsigned kDefaultRing = 1024;

// Writes one frame (all its segments) to the TAP; false when the kernel refused it.
bool write_frame(int fd, const rte_mbuf* m) {
    iovec iov[16];
    int n = 0;
    for (const rte_mbuf* s = m; s != nullptr; s = s->next) {
        if (n == 16) {
            return false;
        }
        iov[n].iov_base = rte_pktmbuf_mtod(s, void*);
        iov[n].iov_len = rte_pktmbuf_data_len(s);
        ++n;
    }
    return ::writev(fd, iov, n) == static_cast<ssize_t>(rte_pktmbuf_pkt_len(m));
}

}  // namespace

Result<exc::OwnAddresses, std::string> own_addresses(const v1::DataplaneConfig& cfg) {
    exc::OwnAddresses own;
    auto add = [&own](const std::string& text) -> Result<void, std::string> {
        auto a = parse_ip(text);
        if (!a) {
            return unexpected(a.error());
        }
        if (!own.add(a->bytes.data(), a->family == Family::kIpv4 ? 4 : 16)) {
            return unexpected(
                fmt::format("more than {} own addresses of one family", exc::OwnAddresses::kMax));
        }
        return {};
    };
    for (const auto& p : cfg.ports()) {
        for (const auto& a : p.addresses()) {
            if (auto r = add(a); !r) {
                return unexpected(fmt::format("port {}: {}", p.name(), r.error()));
            }
        }
    }
    for (const auto& s : cfg.sessions()) {
        for (const auto& p : s.paths()) {
            if (auto r = add(p.local()); !r) {
                return unexpected(fmt::format("session {}: {}", s.id(), r.error()));
            }
        }
    }
    return own;
}

Result<std::unique_ptr<ExceptionPath>, std::string> ExceptionPath::open(
    const v1::DataplaneConfig& cfg, const Ports& ports, NextHopTable& next_hops,
    rte_mempool* pool) {
    auto own = own_addresses(cfg);
    if (!own) {
        return unexpected(own.error());
    }
    auto sock = NeighbourSocket::open();
    if (!sock) {
        return unexpected(sock.error());
    }
    auto ep = std::make_unique<ExceptionPath>(Token{}, *own, pool);
    ep->resolver_ = std::make_unique<Resolver>(next_hops, std::move(*sock));
    const unsigned ring = cfg.exception_ring() ? cfg.exception_ring() : kDefaultRing;
    for (const auto& pc : cfg.ports()) {
        const Port* port = ports.by_name(pc.name());
        if (port == nullptr) {
            return unexpected(fmt::format("exception path: no port '{}'", pc.name()));
        }
        const std::string tap_name = pc.tap_name().empty() ? "hag-" + pc.name() : pc.tap_name();
        auto tap = Tap::open(tap_name, port->mac);
        if (!tap) {
            return unexpected(fmt::format("port '{}': {}", pc.name(), tap.error()));
        }
        PortPath pp;
        pp.port = port->id;
        pp.name = pc.name();
        const std::string to = fmt::format("hag_exc_to_k{}", port->id);
        const std::string from = fmt::format("hag_exc_from_k{}", port->id);
        pp.to_kernel = rte_ring_create(to.c_str(), ring, SOCKET_ID_ANY, RING_F_SC_DEQ);
        pp.from_kernel =
            rte_ring_create(from.c_str(), ring, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
        if (pp.to_kernel == nullptr || pp.from_kernel == nullptr) {
            rte_ring_free(pp.to_kernel);
            rte_ring_free(pp.from_kernel);
            return unexpected(fmt::format("port '{}': cannot create the exception rings: {}",
                                          pc.name(), rte_strerror(rte_errno)));
        }
        ep->resolver_->add_port(port->id, (*tap)->ifindex(), pc.name());
        spdlog::info("port {}: exception path on TAP {} (ifindex {}), rings of {}", pc.name(),
                     (*tap)->name(), (*tap)->ifindex(), ring);
        pp.tap = std::move(*tap);
        ep->ports_.push_back(std::move(pp));
    }
    return ep;
}

ExceptionPath::~ExceptionPath() {
    for (auto& p : ports_) {
        for (rte_ring* r : {p.to_kernel, p.from_kernel}) {
            void* m = nullptr;
            while (rte_ring_dequeue(r, &m) == 0) {
                rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
            }
            rte_ring_free(r);
        }
    }
}

void ExceptionPath::attach_worker(std::uint16_t port, PuntCtx& c) const {
    for (const auto& p : ports_) {
        if (p.port == port) {
            c.own = &own_;
            c.to_kernel = p.to_kernel;
            c.from_kernel = p.from_kernel;
        }
    }
}

bool ExceptionPath::service(std::uint64_t now_ms) {
    bool busy = false;
    for (auto& p : ports_) {
        void* objs[kBurst];
        const unsigned n = rte_ring_dequeue_burst(p.to_kernel, objs, kBurst, nullptr);
        for (unsigned i = 0; i < n; ++i) {
            auto* m = static_cast<rte_mbuf*>(objs[i]);
            if (write_frame(p.tap->fd(), m)) {
                ++p.to_tap;
            } else {
                ++p.tap_write_errors;
            }
            rte_pktmbuf_free(m);
        }
        busy = busy || n > 0;
        for (unsigned i = 0; i < kBurst; ++i) {
            rte_mbuf* m = rte_pktmbuf_alloc(pool_);
            if (m == nullptr) {
                ++p.no_mbuf;
                break;
            }
            const std::uint16_t room = rte_pktmbuf_tailroom(m);
            const ssize_t r = ::read(p.tap->fd(), rte_pktmbuf_mtod(m, void*), room);
            if (r <= 0) {
                rte_pktmbuf_free(m);
                break;  // EAGAIN: nothing more
            }
            busy = true;
            if (r >= room) {
                ++p.from_tap_oversize;  // possibly truncated
                rte_pktmbuf_free(m);
                continue;
            }
            m->data_len = static_cast<std::uint16_t>(r);
            m->pkt_len = static_cast<std::uint32_t>(r);
            m->port = p.port;
            ++p.from_tap;
            if (exc::suppress_from_kernel(rte_pktmbuf_mtod(m, const std::uint8_t*),
                                          static_cast<std::size_t>(r), own_)) {
                ++p.param_problem_suppressed;
                rte_pktmbuf_free(m);
                continue;
            }
            if (rte_ring_sp_enqueue(p.from_kernel, m) != 0) {
                ++p.from_tap_ring_full;
                rte_pktmbuf_free(m);
            }
        }
    }
    resolver_->service(now_ms);
    return busy;
}

std::string ExceptionPath::json(
    const std::map<std::uint16_t, std::vector<const PuntCtx*>>& workers) const {
    std::string s = "{\"ports\":{";
    bool first = true;
    for (const auto& p : ports_) {
        std::array<std::uint64_t, static_cast<std::size_t>(exc::Punt::kCount)> punted{};
        std::uint64_t ring_full = 0, to_port = 0;
        std::string by_worker;  // frames each worker punted, in worker order
        if (auto it = workers.find(p.port); it != workers.end()) {
            for (const PuntCtx* w : it->second) {
                std::uint64_t mine = 0;
                for (std::size_t k = 0; k < punted.size(); ++k) {
                    punted[k] += w->punted[k];
                    mine += w->punted[k];
                }
                by_worker += fmt::format("{}{}", by_worker.empty() ? "" : ",", mine);
                ring_full += w->ring_full;
                to_port += w->from_kernel_frames;
            }
        }
        std::string kinds;
        for (std::size_t k = 1; k < punted.size(); ++k) {
            kinds += fmt::format("{}\"{}\":{}", k > 1 ? "," : "", exc::Punt_names[k], punted[k]);
        }
        s += fmt::format(R"({}"{}":{{"tap":"{}","punted":{{{}}},"punted_by_worker":[{}],)"
                         R"("ring_full":{},"to_tap":{},)"
                         R"("tap_write_errors":{},"from_tap":{},"from_tap_ring_full":{},)"
                         R"("from_tap_oversize":{},"no_mbuf":{},"param_problem_suppressed":{},)"
                         R"("to_port":{}}})",
                         first ? "" : ",", p.name, p.tap->name(), kinds, by_worker, ring_full,
                         p.to_tap, p.tap_write_errors, p.from_tap, p.from_tap_ring_full,
                         p.from_tap_oversize, p.no_mbuf, p.param_problem_suppressed, to_port);
        first = false;
    }
    return s + "},\"next_hops\":" + resolver_->json() + "}";
}

}  // namespace hag::dp
