// Signalling I/O over real UDP sockets on loopback (no root needed): datagrams in both UDP 5436
// framings reach the handler with the right peer, replies go back in the form the peer used,
// malformed datagrams are counted and never reach the LMA. (Raw MH sockets need root: they are
// exercised by tests/integration/control/lma_netns_test.py.)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <random>
#include <vector>

#include "core/signalling_io.hpp"
#include "hag/mh/mh.hpp"

using namespace hag;
using namespace hag::control;

namespace {

Ipv6Address mapped_loopback() {
    return CareOfAddress::from_ipv4({127, 0, 0, 1}).addr;
}

struct Client {
    int fd = -1;
    std::uint16_t port = 0;
    Client() {
        fd = ::socket(AF_INET, SOCK_DGRAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        socklen_t len = sizeof a;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
        timeval tv{2, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    ~Client() { ::close(fd); }
    void send(const std::vector<std::uint8_t>& b, std::uint16_t to) const {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(to);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::sendto(fd, b.data(), b.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a) ==
                static_cast<ssize_t>(b.size()));
    }
    std::vector<std::uint8_t> receive() const {
        std::vector<std::uint8_t> b(4096);
        const ssize_t n = ::recv(fd, b.data(), b.size(), 0);
        b.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
        return b;
    }
};

std::vector<std::uint8_t> heartbeat(std::uint32_t seq, bool response = false) {
    mh::Heartbeat hb;
    hb.sequence = seq;
    hb.response = response;
    return mh::encode(mh::Message{hb});
}

struct Received {
    std::vector<std::uint8_t> mh;
    Peer from;
};

// Opens SignallingIo on 127.0.0.1 at a free port (a few random tries).
std::unique_ptr<SignallingIo> open_io(boost::asio::io_context& io, std::vector<Received>& got,
                                      std::uint16_t& port) {
    std::mt19937 rng(std::random_device{}());
    for (int attempt = 0; attempt < 20; ++attempt) {
        port = static_cast<std::uint16_t>(20000 + rng() % 40000);
        auto r = SignallingIo::open(
            io, {"127.0.0.1"},
            [&got](std::span<const std::uint8_t> mh, const Peer& from) {
                got.push_back({{mh.begin(), mh.end()}, from});
            },
            port);
        if (r) {
            return std::move(*r);
        }
    }
    FAIL("no free UDP port on 127.0.0.1");
    return nullptr;
}

void run_until(boost::asio::io_context& io, const std::function<bool()>& done) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (!done() && std::chrono::steady_clock::now() < end) {
        io.run_for(std::chrono::milliseconds(10));
        io.restart();
    }
}

}  // namespace

TEST_CASE("UDP 5436: both framings in, replies in the peer's framing out") {
    boost::asio::io_context io;
    std::vector<Received> got;
    std::uint16_t port = 0;
    auto sio = open_io(io, got, port);
    REQUIRE(sio);
    const std::vector<std::string> want{fmt::format("127.0.0.1:{} (UDP)", port)};
    CHECK(sio->describe() == want);
    Client c;
    const Ipv6Address lo = mapped_loopback();

    // IPv6-header framing with inner addresses unlike the outer ones.
    Ipv6Address inner_src{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
    Ipv6Address inner_dst{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    c.send(mh::build_udp_signalling(heartbeat(7), false, inner_src, inner_dst), port);
    run_until(io, [&] { return !got.empty(); });
    REQUIRE(got.size() == 1);
    CHECK(got[0].from.udp);
    CHECK(got[0].from.remote == lo);
    CHECK(got[0].from.local == lo);
    CHECK(got[0].from.remote_port == c.port);
    auto m = mh::decode(got[0].mh);
    REQUIRE(m.ok());
    CHECK(std::get<mh::Heartbeat>(m->body).sequence == 7);

    sio->send(Outbound{got[0].from, mh::decode(heartbeat(7, true)).value()});
    auto reply = c.receive();
    auto p = mh::parse_udp_signalling(reply, lo, lo);
    REQUIRE(p.ok());
    CHECK_FALSE(p->bare);
    CHECK(p->inner_src == inner_dst);  // swapped: the LMA answers from where it was asked
    CHECK(p->inner_dst == inner_src);

    // Bare framing: the reply is bare too.
    got.clear();
    c.send(mh::build_udp_signalling(heartbeat(8), true, lo, lo), port);
    run_until(io, [&] { return !got.empty(); });
    REQUIRE(got.size() == 1);
    sio->send(Outbound{got[0].from, mh::decode(heartbeat(8, true)).value()});
    reply = c.receive();
    p = mh::parse_udp_signalling(reply, lo, lo);
    REQUIRE(p.ok());
    CHECK(p->bare);

    const auto before = sio->counters();
    CHECK(before.rx == 2);
    CHECK(before.tx == 2);
}

TEST_CASE("UDP 5436: malformed datagrams are counted, never delivered", "[hostile]") {
    boost::asio::io_context io;
    std::vector<Received> got;
    std::uint16_t port = 0;
    auto sio = open_io(io, got, port);
    REQUIRE(sio);
    Client c;
    const Ipv6Address lo = mapped_loopback();
    auto good = mh::build_udp_signalling(heartbeat(1), false, lo, lo);
    auto bad_sum = good;
    bad_sum.back() ^= 0xff;
    c.send(bad_sum, port);
    c.send({0x60, 0, 0}, port);  // truncated IPv6 header
    c.send(std::vector<std::uint8_t>(good.begin(), good.begin() + 44), port);  // length lies
    c.send({59}, port);                                                        // one octet
    c.send(good, port);  // and one good one after them
    run_until(io, [&] { return !got.empty(); });
    run_until(io, [&] { return sio->counters().rx_udp_bad >= 4; });
    CHECK(got.size() == 1);
    CHECK(sio->counters().rx_udp_bad == 4);
    CHECK(sio->counters().rx == 1);
}

TEST_CASE("open refuses addresses it cannot bind, naming them") {
    boost::asio::io_context io;
    auto none = SignallingIo::open(io, {}, [](auto, const Peer&) {});
    REQUIRE_FALSE(none);
    CHECK(none.error().find("no LMA address") != std::string::npos);
    auto junk = SignallingIo::open(io, {"not-an-address"}, [](auto, const Peer&) {});
    REQUIRE_FALSE(junk);
    CHECK(junk.error().find("not-an-address") != std::string::npos);
    auto foreign = SignallingIo::open(
        io, {"192.0.2.77"}, [](auto, const Peer&) {}, 45436);
    REQUIRE_FALSE(foreign);
    CHECK(foreign.error().find("not configured on this host") != std::string::npos);
}
