// The RFC 5844 / RFC 5555 options hag-control uses for IPv4 home addresses and NAT traversal:
// IPv4 Home Address Request (36), Reply (37), Default-Router Address (38), IPv4 Care-of Address
// (32), NAT Detection (31). Layouts by hand, every wrong length, reserved bits, random bytes.
#include <catch2/catch.hpp>

#include <random>

#include "hag/mh/mh.hpp"

using namespace hag::mh;

namespace {

// A PBU (sequence 1, P set, lifetime 10) whose options are `opts`, padded with Pad1.
Bytes pbu(const Bytes& opts) {
    Bytes b{59, 0, 5, 0, 0, 0, 0, 1, 0x02, 0, 0, 10};
    for (auto x : opts)
        b.push_back(x);
    while (b.size() % 8)
        b.push_back(0);
    b[1] = static_cast<std::uint8_t>(b.size() / 8 - 1);
    return b;
}

template <typename T>
T only(const Bytes& opts) {
    auto m = decode(pbu(opts));
    REQUIRE(m.ok());
    REQUIRE(m->options().size() == 1);
    const T* o = std::get_if<T>(&m->options()[0]);
    REQUIRE(o != nullptr);
    return *o;
}

}  // namespace

TEST_CASE("IPv4 options decode from hand-written bytes", "[mh][ipv4]") {
    // Request: prefix length 24 in the top six bits, the two low bits and the next octet
    // reserved (ignored), address.
    auto req = only<Ipv4HomeAddressRequest>({36, 6, 24 << 2 | 3, 0xff, 198, 51, 100, 0});
    CHECK(req.prefix_length == 24);
    CHECK(req.address == Ipv4{198, 51, 100, 0});
    // Reply: status, prefix length (top six bits of the second octet), address.
    auto rep = only<Ipv4HomeAddressReply>({37, 6, 132, 32 << 2, 203, 0, 113, 5});
    CHECK(rep.status == 132);
    CHECK(rep.prefix_length == 32);
    CHECK(rep.address == Ipv4{203, 0, 113, 5});
    auto dr = only<Ipv4DefaultRouterAddress>({38, 6, 0, 0, 203, 0, 113, 129});
    CHECK(dr.address == Ipv4{203, 0, 113, 129});
    auto coa = only<Ipv4CareOfAddress>({32, 6, 0, 0, 192, 0, 2, 66});
    CHECK(coa.address == Ipv4{192, 0, 2, 66});
    auto nat = only<NatDetection>({31, 6, 0x80, 0, 0, 0, 0, 30});
    CHECK(nat.udp_encapsulation_required);
    CHECK(nat.refresh_time == 30);
    nat = only<NatDetection>({31, 6, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff});
    CHECK_FALSE(nat.udp_encapsulation_required);  // reserved bits are not the F flag
    CHECK(nat.refresh_time == 0xffffffffu);
}

TEST_CASE("IPv4 options encode as RFC 5844 lays them out", "[mh][ipv4]") {
    BindingAcknowledgement ba;
    ba.sequence = 7;
    ba.options = {Ipv4HomeAddressReply{0, 32, {203, 0, 113, 130}},
                  Ipv4DefaultRouterAddress{{203, 0, 113, 129}}, NatDetection{false, 5}};
    const Bytes b = encode(Message{ba});
    auto find = [&](std::uint8_t type) {
        for (std::size_t i = 12; i + 1 < b.size();) {
            if (b[i] == 0) {
                ++i;
                continue;
            }
            if (b[i] == type) {
                return Bytes(b.begin() + static_cast<long>(i),
                             b.begin() + static_cast<long>(i) + 2 + b[i + 1]);
            }
            i += 2 + b[i + 1];
        }
        return Bytes{};
    };
    CHECK(find(37) == Bytes{37, 6, 0, 32 << 2, 203, 0, 113, 130});
    CHECK(find(38) == Bytes{38, 6, 0, 0, 203, 0, 113, 129});
    CHECK(find(31) == Bytes{31, 6, 0, 0, 0, 0, 0, 5});
    auto again = decode(b);
    REQUIRE(again.ok());
    CHECK(*again == Message{ba});
}

TEST_CASE("IPv4 options of every wrong length are refused", "[mh][ipv4][hostile]") {
    for (std::uint8_t type : {31, 32, 36, 37, 38}) {
        for (std::uint8_t len = 0; len <= 24; ++len) {
            if (len == 6) {
                continue;
            }
            Bytes opts{type, len};
            for (std::uint8_t i = 0; i < len; ++i)
                opts.push_back(static_cast<std::uint8_t>(0xa0 + i));
            auto m = decode(pbu(opts));
            INFO("type " << int(type) << " length " << int(len));
            REQUIRE_FALSE(m.ok());
            CHECK(m.error().code == DecodeErrorCode::kOptionBadLength);
        }
        // Truncated: the length runs past the message.
        Bytes b = pbu({type, 6, 0, 0});
        b.resize(14);  // the header says 16 octets; the option data is cut short
        CHECK_FALSE(decode(b).ok());
    }
}

TEST_CASE("random option data of the right length decodes and round-trips", "[mh][ipv4][hostile]") {
    std::mt19937 rng(5844);
    for (int n = 0; n < 2000; ++n) {
        const std::uint8_t types[] = {31, 32, 36, 37, 38};
        Bytes opts{types[n % 5], 6};
        for (int i = 0; i < 6; ++i)
            opts.push_back(static_cast<std::uint8_t>(rng()));
        auto m = decode(pbu(opts));
        REQUIRE(m.ok());
        auto again = decode(encode(*m));
        REQUIRE(again.ok());
        CHECK(*again == *m);
        (void)describe(*m);
    }
}
