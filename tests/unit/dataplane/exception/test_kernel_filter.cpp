// Exception path, kernel -> port: the kernel's ICMPv6 Parameter Problem (code 2) for a Binding
// Update's Home Address option is recognised in real mbufs and dropped; everything that only
// looks like it, and every truncated or inconsistent frame, is left to leave.
#include <catch2/catch.hpp>

#include <array>
#include <cstring>
#include <random>
#include <vector>

#include "../eal_fixture.hpp"
#include "exception/kernel_filter.hpp"

using namespace hag::dp;
using Bytes = std::vector<std::uint8_t>;

namespace {

using Addr = std::array<std::uint8_t, 16>;
const Addr kHomeAgent{0x20, 0x01, 0x0d, 0xb8, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
const Addr kCareOf{0x20, 0x01, 0x0d, 0xb8, 0xaa, 0xaa, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
const Addr kHome{0x20, 0x01, 0x0d, 0xb8, 0x01, 0xff, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5};
const Addr kOther{0x20, 0x01, 0x0d, 0xb8, 0xbb, 0xbb, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9};

exc::OwnAddresses own() {
    exc::OwnAddresses o;
    o.add(kHomeAgent.data(), 16);
    const std::uint8_t v4[4] = {192, 0, 2, 254};
    o.add(v4, 4);
    return o;
}

void put16(Bytes& b, std::uint32_t v) {
    b.push_back(static_cast<std::uint8_t>(v >> 8));
    b.push_back(static_cast<std::uint8_t>(v));
}
void put(Bytes& b, const Addr& a) {
    const std::size_t at = b.size();
    b.resize(at + a.size());
    std::copy(a.begin(), a.end(), b.begin() + static_cast<std::ptrdiff_t>(at));
}
Bytes cat(Bytes a, const Bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

Bytes ipv6(const Addr& src, const Addr& dst, std::uint8_t next, const Bytes& rest) {
    Bytes b{0x60, 0, 0, 0};
    put16(b, static_cast<std::uint32_t>(rest.size()));
    b.push_back(next);
    b.push_back(64);
    put(b, src);
    put(b, dst);
    return cat(b, rest);
}

// A destination-options header with PadN then the Home Address option at 8n+6 (RFC 6275
// §6.3): 24 octets, the option at offset 6.
Bytes dest_opts(std::uint8_t next, std::uint8_t option = exc::kHomeAddressOption,
                std::uint8_t option_len = 16) {
    Bytes b{next, 2, 1, 2, 0, 0, option, option_len};
    put(b, kHome);
    b.resize(24, 0);
    return b;
}

// A Binding Update (RFC 6275 §6.1.7), payload proto 59, 16 octets.
Bytes bu() {
    return Bytes{59, 1, 5, 0, 0, 0, 0, 1, 0, 0, 0xa0, 0, 0, 0x19, 0, 0};
}

// What the kernel sends: IPv6 (home agent -> care-of) / ICMPv6 Parameter Problem / the BU.
Bytes parameter_problem(const Bytes& invoking, std::uint32_t pointer, std::uint8_t code = 2,
                        std::uint8_t type = 4, const Addr& src = kHomeAgent,
                        const Addr& dst = kCareOf) {
    Bytes icmp{type, code, 0x12, 0x34};
    icmp.push_back(static_cast<std::uint8_t>(pointer >> 24));
    icmp.push_back(static_cast<std::uint8_t>(pointer >> 16));
    icmp.push_back(static_cast<std::uint8_t>(pointer >> 8));
    icmp.push_back(static_cast<std::uint8_t>(pointer));
    return ipv6(src, dst, 58, cat(icmp, invoking));
}

Bytes eth(int vlans = 0) {
    Bytes b{0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2};
    for (int i = 0; i < vlans; ++i) {
        put16(b, i == 0 && vlans == 2 ? 0x88A8 : 0x8100);
        put16(b, static_cast<std::uint32_t>(100 + i));
    }
    put16(b, 0x86DD);
    return b;
}

const Bytes kBu = ipv6(kCareOf, kHomeAgent, 60, cat(dest_opts(135), bu()));
constexpr std::uint32_t kPointer = 40 + 6;  // the option's type octet in the invoking packet

bool suppressed(const Bytes& frame) {
    rte_mbuf* m = test::mbuf_from(frame);
    REQUIRE(m != nullptr);
    const exc::OwnAddresses o = own();
    const bool s = exc::suppress_from_kernel(rte_pktmbuf_mtod(m, const std::uint8_t*),
                                             rte_pktmbuf_data_len(m), o);
    rte_pktmbuf_free(m);
    return s;
}

}  // namespace

TEST_CASE("kernel filter: the Parameter Problem for a BU's Home Address option is dropped",
          "[exception][kernel_filter]") {
    test::ensure_eal();
    CHECK(suppressed(cat(eth(), parameter_problem(kBu, kPointer))));
    CHECK(suppressed(cat(eth(1), parameter_problem(kBu, kPointer))));
    CHECK(suppressed(cat(eth(2), parameter_problem(kBu, kPointer))));
    // A BU under ESP (the Home Address option outside it, hag-control's userspace ESP).
    const Bytes esp{0, 0, 0x30, 1, 0, 0, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd};
    CHECK(suppressed(
        cat(eth(),
            parameter_problem(ipv6(kCareOf, kHomeAgent, 60, cat(dest_opts(50), esp)), kPointer))));
    // The option first (no PadN before it), padding after.
    Bytes first{135, 2, exc::kHomeAddressOption, 16};
    put(first, kHome);
    first.insert(first.end(), {1, 2, 0, 0});
    CHECK(suppressed(
        cat(eth(), parameter_problem(ipv6(kCareOf, kHomeAgent, 60, cat(first, bu())), 40 + 2))));
    // Behind hop-by-hop and routing headers, the pointer counting them.
    const Bytes hbh{43, 0, 1, 4, 0, 0, 0, 0};
    const Bytes rh{60, 0, 0, 0, 0, 0, 0, 0};
    CHECK(
        suppressed(cat(eth(), parameter_problem(ipv6(kCareOf, kHomeAgent, 0,
                                                     cat(cat(hbh, rh), cat(dest_opts(135), bu()))),
                                                kPointer + 16))));
    // The kernel quotes as much as fits: a quote cut after the destination options is enough.
    Bytes cut = kBu;
    cut.resize(40 + 24);
    CHECK(suppressed(cat(eth(), parameter_problem(cut, kPointer))));
    // Ethernet padding after the packet changes nothing.
    Bytes padded = cat(eth(), parameter_problem(kBu, kPointer));
    padded.resize(padded.size() + 30, 0);
    CHECK(suppressed(padded));
}

TEST_CASE("kernel filter: everything else leaves as the kernel sent it",
          "[exception][kernel_filter]") {
    test::ensure_eal();
    const Bytes e = eth();
    // Other ICMPv6 types and codes.
    CHECK_FALSE(suppressed(cat(e, parameter_problem(kBu, kPointer, 1))));
    CHECK_FALSE(suppressed(cat(e, parameter_problem(kBu, kPointer, 0))));
    CHECK_FALSE(suppressed(cat(e, parameter_problem(kBu, kPointer, 2, 1))));    // unreachable
    CHECK_FALSE(suppressed(cat(e, parameter_problem(kBu, kPointer, 2, 128))));  // echo request
    // Not from an own address; not to the packet's source; a quote not addressed to the error's
    // source.
    CHECK_FALSE(suppressed(cat(e, parameter_problem(kBu, kPointer, 2, 4, kOther))));
    CHECK_FALSE(suppressed(cat(e, parameter_problem(kBu, kPointer, 2, 4, kHomeAgent, kOther))));
    const Bytes elsewhere = ipv6(kCareOf, kOther, 60, cat(dest_opts(135), bu()));
    CHECK_FALSE(suppressed(cat(e, parameter_problem(elsewhere, kPointer, 2, 4, kHomeAgent))));
    // The pointer on the PadN, inside the option, on the header, past it, far away.
    for (std::uint32_t p : {40u, 41u, 42u, 43u, 47u, 48u, 62u, 64u, 70u, 0xffffffffu, 0u}) {
        INFO("pointer " << p);
        CHECK_FALSE(suppressed(cat(e, parameter_problem(kBu, p))));
    }
    // Another unknown option (type 0xC2 class "discard and send"), a Home Address option of the
    // wrong length, the option in a hop-by-hop header, destination options before UDP.
    CHECK_FALSE(suppressed(
        cat(e, parameter_problem(ipv6(kCareOf, kHomeAgent, 60, cat(dest_opts(135, 0xc2), bu())),
                                 kPointer))));
    Bytes short_hao{135, 1, 1, 0, exc::kHomeAddressOption, 8, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0};
    CHECK_FALSE(suppressed(
        cat(e, parameter_problem(ipv6(kCareOf, kHomeAgent, 60, cat(short_hao, bu())), 40 + 4))));
    CHECK_FALSE(suppressed(cat(
        e, parameter_problem(ipv6(kCareOf, kHomeAgent, 0, cat(dest_opts(135), bu())), kPointer))));
    const Bytes udp{0x15, 0x3c, 0x15, 0x3c, 0, 8, 0, 0};
    CHECK_FALSE(suppressed(cat(
        e, parameter_problem(ipv6(kCareOf, kHomeAgent, 60, cat(dest_opts(17), udp)), kPointer))));
    // The quote is not IPv6; the quote is cut inside the option.
    Bytes v4 = kBu;
    v4[0] = 0x45;
    CHECK_FALSE(suppressed(cat(e, parameter_problem(v4, kPointer))));
    Bytes cut = kBu;
    cut.resize(40 + 20);
    CHECK_FALSE(suppressed(cat(e, parameter_problem(cut, kPointer))));
    // Not IPv6 at all, or IPv6 that is not ICMPv6 directly.
    Bytes v4frame = cat(e, parameter_problem(kBu, kPointer));
    v4frame[12] = 0x08;
    v4frame[13] = 0x00;
    CHECK_FALSE(suppressed(v4frame));
}

TEST_CASE("kernel filter: truncated, inconsistent and random frames are never dropped",
          "[exception][kernel_filter][hostile]") {
    test::ensure_eal();
    const Bytes good = cat(eth(1), parameter_problem(kBu, kPointer));
    REQUIRE(suppressed(good));
    // Every truncation of the frame, the IP lengths left as they claim.
    for (std::size_t len = 0; len < good.size(); ++len) {
        INFO("length " << len << " of " << good.size());
        CHECK_FALSE(
            suppressed(Bytes(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(len))));
    }
    // The outer payload length larger than the frame, and too small for a quote.
    Bytes lie = good;
    lie[18 + 4] = 0x40;
    CHECK_FALSE(suppressed(lie));
    lie = good;
    lie[18 + 4] = 0;
    lie[18 + 5] = 40;
    CHECK_FALSE(suppressed(lie));
    // The quote's destination options header longer than the quote; a quote that claims to be
    // shorter than its headers.
    lie = good;
    lie[18 + 48 + 40 + 1] = 200;
    CHECK_FALSE(suppressed(lie));
    lie = good;
    lie[18 + 48 + 4] = 0;
    lie[18 + 48 + 5] = 8;
    CHECK_FALSE(suppressed(lie));
    // An option length that runs past its header.
    lie = good;
    lie[18 + 48 + 40 + 7] = 40;
    CHECK_FALSE(suppressed(lie));
    // Nine destination-options headers in front: more than the walk follows.
    Bytes many;
    for (int i = 0; i < 9; ++i) {
        many.insert(many.end(), {60, 0, 1, 4, 0, 0, 0, 0});
    }
    CHECK_FALSE(suppressed(cat(eth(), parameter_problem(ipv6(kCareOf, kHomeAgent, 60,
                                                             cat(many, cat(dest_opts(135), bu()))),
                                                        kPointer + 72))));

    // Random mutations of the good frame: never a crash (sanitizers quiet), and whatever is
    // dropped still has the kernel error's fixed fields.
    std::mt19937 rng(10);
    const exc::OwnAddresses o = own();
    std::size_t dropped = 0;
    for (int i = 0; i < 100000; ++i) {
        Bytes f = good;
        f.resize(rng() % (f.size() + 8));
        for (int k = 0; k < 3 && !f.empty(); ++k) {
            f[rng() % f.size()] = static_cast<std::uint8_t>(rng());
        }
        if (exc::suppress_from_kernel(f.data(), f.size(), o)) {
            ++dropped;
            REQUIRE(f.size() >= 18 + 48 + 40);
            CHECK(f[18 + 40] == 4);
            CHECK(f[18 + 41] == 2);
        }
    }
    CHECK(dropped > 0);
}
