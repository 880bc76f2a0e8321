// hag-magsim data mode without I/O: the downlink GRE check (hostile input included), the uplink
// GRE header, the weighted uplink split and the downlink reorder buffer.
#include <catch2/catch.hpp>

#include <chrono>
#include <random>
#include <vector>

#include "data.hpp"
#include "hag/net/builders.hpp"

using namespace hag;
using magsim::DownlinkDrop;
using magsim::Reorderer;
using Bytes = std::vector<std::uint8_t>;
using namespace std::chrono_literals;

namespace {

const net::Ipv6Address kLma6{0x20, 0x01, 0x0d, 0xb8, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
const net::Ipv6Address kCoa6{0x20, 0x01, 0x0d, 0xb8, 0, 0xaa, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
const net::Ipv4Address kLma4{192, 0, 2, 1};
const net::Ipv4Address kCoa4{198, 51, 100, 2};

// An inner IPv6 packet (no next header) with `n` octets of payload.
Bytes inner6(std::size_t n = 8) {
    Bytes b(40 + n, 0xab);
    b[0] = 0x60;
    b[4] = static_cast<std::uint8_t>(n >> 8);
    b[5] = static_cast<std::uint8_t>(n);
    b[6] = 59;
    return b;
}

// What a raw IPv6 protocol-47 socket delivers: GRE onward (the IPv6 header stripped).
Bytes gre6(std::optional<std::uint32_t> key, std::optional<std::uint32_t> seq, const Bytes& in) {
    auto p = net::build_gre_ipv6(kLma6, kCoa6, key, seq, in);
    return Bytes(p.begin() + 40, p.end());
}

}  // namespace

TEST_CASE("parse_downlink accepts GRE with the access's key, over IPv6 and IPv4") {
    const auto in = inner6();
    const auto six = gre6(0x1234, 7, in);
    auto r = magsim::parse_downlink(six, false, 0x1234);
    REQUIRE(r.packet);
    CHECK(r.packet->sequence == 7u);
    CHECK(Bytes(r.packet->inner.begin(), r.packet->inner.end()) == in);

    const auto four = net::build_gre_ipv4(kLma4, kCoa4, 0x1234, std::nullopt, in);
    auto r4 = magsim::parse_downlink(four, true, 0x1234);
    REQUIRE(r4.packet);
    CHECK(!r4.packet->sequence);
    CHECK(r4.packet->inner.size() == in.size());
}

TEST_CASE("parse_downlink refuses wrong or missing keys and bad protocol types") {
    const auto in = inner6();
    CHECK(magsim::parse_downlink(gre6(0x1235, 1, in), false, 0x1234).drop == DownlinkDrop::bad_key);
    CHECK(!magsim::parse_downlink(gre6(0x1235, 1, in), false, 0x1234).packet);
    CHECK(magsim::parse_downlink(gre6(std::nullopt, 1, in), false, 0x1234).drop ==
          DownlinkDrop::no_key);
    // Protocol type says IPv6, the inner packet is IPv4.
    auto wrong = gre6(0x1234, 1, in);
    wrong[12] = 0x45;
    CHECK(magsim::parse_downlink(wrong, false, 0x1234).drop == DownlinkDrop::bad_protocol);
    // Transparent Ethernet bridging is not the home router's.
    auto teb = gre6(0x1234, 1, in);
    teb[2] = 0x65;
    teb[3] = 0x58;
    CHECK(magsim::parse_downlink(teb, false, 0x1234).drop == DownlinkDrop::bad_protocol);
    // GRE with nothing after the header.
    CHECK(magsim::parse_downlink(gre6(0x1234, 1, {}), false, 0x1234).drop ==
          DownlinkDrop::bad_protocol);
}

TEST_CASE("parse_downlink: hostile input never reads past the buffer") {
    const auto in = inner6();
    const auto six = gre6(0x1234, 7, in);
    // Every truncation of the GRE header is malformed; of the inner packet, still delivered
    // (the tun gets what arrived; the inner header is the host stack's to check).
    for (std::size_t n = 0; n < 12; ++n) {
        auto r = magsim::parse_downlink(std::span(six.data(), n), false, 0x1234);
        CHECK(!r.packet);
        CHECK(r.drop == DownlinkDrop::malformed);
    }
    const auto four = net::build_gre_ipv4(kLma4, kCoa4, 0x1234, 3, in);
    for (std::size_t n = 0; n < 20 + 12; ++n) {
        CHECK(!magsim::parse_downlink(std::span(four.data(), n), true, 0x1234).packet);
    }
    // IPv4: not GRE, a fragment, a total length past the buffer, IHL below 5.
    auto udp = four;
    udp[9] = 17;
    udp[10] = udp[11] = 0;  // checksum no longer matters: recompute below
    {
        std::uint32_t sum = 0;
        for (int i = 0; i < 20; i += 2) {
            sum += static_cast<std::uint32_t>(udp[i] << 8 | udp[i + 1]);
        }
        while (sum >> 16) {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        udp[10] = static_cast<std::uint8_t>(~sum >> 8);
        udp[11] = static_cast<std::uint8_t>(~sum);
    }
    CHECK(magsim::parse_downlink(udp, true, 0x1234).drop == DownlinkDrop::not_gre);
    auto longer = four;
    longer[3] = static_cast<std::uint8_t>(longer[3] + 1);
    CHECK(!magsim::parse_downlink(longer, true, 0x1234).packet);
    auto ihl = four;
    ihl[0] = 0x44;
    CHECK(!magsim::parse_downlink(ihl, true, 0x1234).packet);
    // GRE version 1, reserved bits, routing bit.
    for (std::uint8_t b1 : {0x01, 0x02, 0x07}) {
        auto v = six;
        v[1] = static_cast<std::uint8_t>(v[1] | b1);
        CHECK(!magsim::parse_downlink(v, false, 0x1234).packet);
    }
    auto routing = six;
    routing[0] |= 0x40;
    CHECK(!magsim::parse_downlink(routing, false, 0x1234).packet);
    // Random bytes: no crash, and anything accepted lies within the buffer.
    std::mt19937 rng(7);
    for (int i = 0; i < 20000; ++i) {
        Bytes b(rng() % 80);
        for (auto& x : b) {
            x = static_cast<std::uint8_t>(rng());
        }
        if (!b.empty() && (i & 1)) {
            b[0] = 0x30;  // K and S set: reach the key check more often
        }
        const bool v4 = (i & 2) != 0;
        auto r = magsim::parse_downlink(b, v4, 0);
        if (r.packet) {
            CHECK(r.packet->inner.data() >= b.data());
            CHECK(r.packet->inner.data() + r.packet->inner.size() <= b.data() + b.size());
        }
    }
}

TEST_CASE("write_uplink_gre: K and S, protocol from the inner version; round trip") {
    std::array<std::uint8_t, magsim::kUplinkGreHeaderLength> h{};
    const auto in = inner6();
    REQUIRE(magsim::write_uplink_gre(h, 0x01020304, 0xfffffffe, in));
    CHECK(h ==
          std::array<std::uint8_t, 12>{0x30, 0x00, 0x86, 0xdd, 1, 2, 3, 4, 0xff, 0xff, 0xff, 0xfe});
    Bytes pkt(h.begin(), h.end());
    pkt.insert(pkt.end(), in.begin(), in.end());
    auto r = magsim::parse_downlink(pkt, false, 0x01020304);
    REQUIRE(r.packet);
    CHECK(r.packet->sequence == 0xfffffffeu);
    Bytes v4{0x45, 0, 0, 20};
    REQUIRE(magsim::write_uplink_gre(h, 1, 2, v4));
    CHECK(h[2] == 0x08);
    CHECK(h[3] == 0x00);
    CHECK(!magsim::write_uplink_gre(h, 1, 2, Bytes{}));
    CHECK(!magsim::write_uplink_gre(h, 1, 2, Bytes{0x50}));
}

TEST_CASE("UplinkScheduler splits bytes by weight and adapts to a dropped access") {
    magsim::UplinkScheduler s({20000, 10000, 0});
    s.set_live(2, false);
    std::array<std::uint64_t, 3> bytes{};
    for (int i = 0; i < 3000; ++i) {
        auto p = s.pick(1000);
        REQUIRE(p);
        bytes[*p] += 1000;
    }
    CHECK(bytes[2] == 0);
    // 2:1 within one packet.
    CHECK(bytes[0] >= 2 * bytes[1] - 2000);
    CHECK(bytes[0] <= 2 * bytes[1] + 2000);
    s.set_live(0, false);
    for (int i = 0; i < 100; ++i) {
        CHECK(s.pick(1500) == std::optional<std::size_t>(1));
    }
    s.set_live(1, false);
    CHECK(!s.pick(100));
    // Back: the live set changed, so nobody catches up with a burst; weight 0 counts as 1.
    s.set_live(0, true);
    s.set_live(2, true);
    std::array<int, 3> n{};
    for (int i = 0; i < 20002; ++i) {
        ++n[*s.pick(100)];
    }
    CHECK(n[1] == 0);
    CHECK(n[2] >= 1);
    CHECK(n[2] <= 2);
}

TEST_CASE("UplinkScheduler pinned: that access while it is live, else the others") {
    magsim::UplinkScheduler s({1, 1});
    s.pin(1);
    for (int i = 0; i < 10; ++i) {
        CHECK(s.pick(100) == std::optional<std::size_t>(1));
    }
    s.set_live(1, false);
    CHECK(s.pick(100) == std::optional<std::size_t>(0));
    s.set_live(1, true);
    CHECK(s.pick(100) == std::optional<std::size_t>(1));
}

namespace {

struct Sink {
    std::vector<std::uint32_t> got;
    void operator()(std::span<const std::uint8_t> p) {
        REQUIRE(p.size() == 4);
        got.push_back(static_cast<std::uint32_t>(p[0]) << 24 | p[1] << 16 | p[2] << 8 | p[3]);
    }
};

Bytes packet(std::uint32_t seq) {
    return Bytes{static_cast<std::uint8_t>(seq >> 24), static_cast<std::uint8_t>(seq >> 16),
                 static_cast<std::uint8_t>(seq >> 8), static_cast<std::uint8_t>(seq)};
}

}  // namespace

TEST_CASE("Reorderer delivers in order across a swap, holding what is ahead") {
    Reorderer r(8, 10ms, 64);
    Sink sink;
    const auto t = Reorderer::Clock::now();
    for (std::uint32_t s : {100u, 102u, 103u, 101u, 104u}) {
        r.push(s, packet(s), t, [&](auto p) { sink(p); });
    }
    CHECK(sink.got == std::vector<std::uint32_t>{100, 101, 102, 103, 104});
    CHECK(r.counters().reordered == 2);
    CHECK(r.counters().in_order == 3);
    CHECK(r.held() == 0);
    CHECK(!r.deadline());
}

TEST_CASE("Reorderer gives a gap up after the timeout; the straggler is late") {
    Reorderer r(8, 10ms, 64);
    Sink sink;
    auto deliver = [&](auto p) { sink(p); };
    const auto t = Reorderer::Clock::now();
    r.push(0, packet(0), t, deliver);
    CHECK(r.push(2, packet(2), t, deliver) == Reorderer::Outcome::held);
    CHECK(r.push(2, packet(2), t, deliver) == Reorderer::Outcome::duplicate);
    r.expire(t + 5ms, deliver);
    CHECK(sink.got == std::vector<std::uint32_t>{0});
    REQUIRE(r.deadline());
    CHECK(*r.deadline() == t + 10ms);
    r.expire(t + 10ms, deliver);
    CHECK(sink.got == std::vector<std::uint32_t>{0, 2});
    CHECK(r.counters().lost == 1);
    CHECK(r.push(1, packet(1), t + 11ms, deliver) == Reorderer::Outcome::late);
    CHECK(sink.got == std::vector<std::uint32_t>{0, 2, 1});
    CHECK(r.counters().late == 1);
    CHECK(r.counters().duplicate == 1);
}

TEST_CASE("Reorderer skips a gap at once when every live access has passed it") {
    Reorderer r(16, 1000ms, 64);
    r.set_accesses(2);
    Sink sink;
    auto deliver = [&](auto p) { sink(p); };
    const auto t = Reorderer::Clock::now();
    auto arrive = [&](std::size_t access, std::uint32_t s) {
        r.arrived(access, s);
        const auto o = r.push(s, packet(s), t, deliver);
        r.skip_passed(t, deliver);
        return o;
    };
    arrive(0, 0);
    arrive(1, 1);
    // 2 is lost; 3 arrives on access 0. Access 1 has delivered nothing after 2 yet and could
    // still deliver it: wait.
    CHECK(arrive(0, 3) == Reorderer::Outcome::held);
    CHECK(sink.got == std::vector<std::uint32_t>{0, 1});
    // Access 1 delivers 4: both accesses are past 2, so 2 is lost: 3 and 4 go at once.
    arrive(1, 4);
    CHECK(sink.got == std::vector<std::uint32_t>{0, 1, 3, 4});
    CHECK(r.counters().lost == 1);
    CHECK(r.held() == 0);
    // A gap only a dead access could fill is given up when it goes down.
    CHECK(arrive(0, 6) == Reorderer::Outcome::held);  // 5 missing, access 1 still at 4
    CHECK(sink.got.size() == 4);
    r.set_live(1, false);
    r.skip_passed(t, deliver);
    CHECK(sink.got == std::vector<std::uint32_t>{0, 1, 3, 4, 6});
    CHECK(r.counters().lost == 2);
    // With one live access, its own next number settles a gap at once.
    arrive(0, 8);
    CHECK(sink.got.back() == 8);
    CHECK(r.counters().lost == 3);
}

TEST_CASE("Reorderer: an access that never delivered keeps gaps waiting for the timeout") {
    Reorderer r(16, 10ms, 64);
    r.set_accesses(2);
    Sink sink;
    auto deliver = [&](auto p) { sink(p); };
    const auto t = Reorderer::Clock::now();
    r.arrived(0, 0);
    r.push(0, packet(0), t, deliver);
    r.arrived(0, 2);
    CHECK(r.push(2, packet(2), t, deliver) == Reorderer::Outcome::held);
    r.skip_passed(t, deliver);
    CHECK(sink.got == std::vector<std::uint32_t>{0});
    r.expire(t + 10ms, deliver);
    CHECK(sink.got == std::vector<std::uint32_t>{0, 2});
}

TEST_CASE("Reorderer: a packet beyond the window flushes, sequence numbers wrap") {
    Reorderer r(4, 1000ms, 64);
    Sink sink;
    auto deliver = [&](auto p) { sink(p); };
    const auto t = Reorderer::Clock::now();
    r.push(0xfffffffe, packet(0xfffffffe), t, deliver);
    r.push(0, packet(0), t, deliver);  // 0xffffffff missing: held
    r.push(1, packet(1), t, deliver);
    CHECK(sink.got == std::vector<std::uint32_t>{0xfffffffe});
    r.push(5, packet(5), t, deliver);  // 6 ahead of 0xffffffff: window 4 overrun
    CHECK(sink.got == std::vector<std::uint32_t>{0xfffffffe, 0, 1});
    CHECK(r.counters().lost >= 1);
    r.push(2, packet(2), t, deliver);
    r.push(3, packet(3), t, deliver);
    r.push(4, packet(4), t, deliver);
    CHECK(sink.got == std::vector<std::uint32_t>{0xfffffffe, 0, 1, 2, 3, 4, 5});
    CHECK(r.held() == 0);
    // Far ahead with nothing held: jump, counting the skipped numbers.
    const auto lost = r.counters().lost;
    r.push(1000, packet(1000), t, deliver);
    CHECK(sink.got.back() == 1000u);
    CHECK(r.counters().lost == lost + (1000 - 6));
}

TEST_CASE("Reorderer under random shuffles within the window: every packet once, in order") {
    std::mt19937 rng(3);
    Reorderer r(64, 1000ms, 64);
    Sink sink;
    std::vector<std::uint32_t> seqs(5000);
    for (std::uint32_t i = 0; i < seqs.size(); ++i) {
        seqs[i] = 0xffffff00u + i;  // crosses the wrap
    }
    // Displace each packet by at most 16 positions.
    for (std::size_t i = 0; i + 16 < seqs.size(); i += 16) {
        std::shuffle(seqs.begin() + static_cast<long>(i), seqs.begin() + static_cast<long>(i) + 16,
                     rng);
    }
    // The first must be first (it sets the expected number).
    std::iter_swap(seqs.begin(),
                   std::min_element(seqs.begin(), seqs.begin() + 16, [](auto a, auto b) {
                       return static_cast<std::int32_t>(a - b) < 0;
                   }));
    const auto t = Reorderer::Clock::now();
    for (auto s : seqs) {
        r.push(s, packet(s), t, [&](auto p) { sink(p); });
    }
    REQUIRE(sink.got.size() == seqs.size());
    for (std::size_t i = 0; i < sink.got.size(); ++i) {
        CHECK(sink.got[i] == static_cast<std::uint32_t>(0xffffff00u + i));
    }
    CHECK(r.counters().lost == 0);
    CHECK(r.counters().late == 0);
}
