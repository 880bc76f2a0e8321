#include <catch2/catch.hpp>

#include <cstring>
#include <random>

#include "golden.hpp"
#include "hag/mh/mh.hpp"

using namespace hag::mh;
using Bytes = std::vector<std::uint8_t>;

namespace {

Ipv6 v6(std::uint8_t last) {
    return {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last};
}
Bytes text(const char* s) {
    return Bytes(s, s + std::strlen(s));
}

Message golden_pbu_message() {
    BindingUpdate u;
    u.sequence = 0x1234;
    u.ack = u.proxy = u.tlv_header = true;
    u.lifetime = 150;
    u.options = {MobileNodeIdentifier{1, text("cpe@x")},
                 HomeNetworkPrefix{64, {0x20, 0x01, 0x0d, 0xb8, 0, 1}},
                 HandoffIndicatorOption{1},
                 AccessTechnologyTypeOption{4},
                 Timestamp{0x0102030405060708ull},
                 GreKey{0xdeadbeef},
                 BindingIdentifier{1, 0, false, 5, std::nullopt, std::nullopt},
                 MagMultipathBinding{4, 42, 1, false, false},
                 MagIdentifier{1, text("mag")}};
    return Message{u};
}

DecodeErrorCode code_of(const Bytes& b) {
    auto r = decode(b);
    REQUIRE_FALSE(r.ok());
    return r.error().code;
}

// Every option type, for round trips.
Options all_options() {
    FlowIdentification fid{
        7,
        3,
        1,
        0,
        {{kFlowSubBidReference, {0, 1, 0, 2}}, {kFlowSubTrafficSelector, {2, 0, 9, 9}}, {9, {}}}};
    return {AlternateCareOfAddress{v6(1)},
            MobileNodeIdentifier{1, text("cpe-0001@hag.example")},
            VendorSpecific{3561, 1, {0, 0, 0x4e, 0x20}},
            HomeNetworkPrefix{56, v6(0)},
            HandoffIndicatorOption{5},
            AccessTechnologyTypeOption{8},
            MnLinkLayerIdentifier{{0x02, 0, 0, 0, 0, 1}},
            LinkLocalAddress{{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}},
            Timestamp{0xe5f0a1b2c3d4e5f6ull},
            RestartCounter{9},
            Ipv4HomeAddress{24, true, {192, 0, 2, 1}},
            Ipv4AddressAcknowledgement{0, 24, {192, 0, 2, 1}},
            NatDetection{true, 110},
            Ipv4CareOfAddress{{198, 51, 100, 7}},
            GreKey{0x12345678},
            BindingIdentifier{2, 0, true, 127, std::nullopt, std::nullopt},
            BindingIdentifier{3, 0, false, 1, Ipv4{203, 0, 113, 9}, std::nullopt},
            BindingIdentifier{4, 1, false, 0, std::nullopt, v6(4)},
            Ipv4HomeAddressRequest{32, {0, 0, 0, 0}},
            Ipv4HomeAddressReply{0, 32, {192, 0, 2, 77}},
            Ipv4DefaultRouterAddress{{192, 0, 2, 254}},
            Ipv4DhcpSupportMode{true},
            FlowSummary{{7, 8, 9}},
            fid,
            DelegatedMobileNetworkPrefix{
                false, 56, {0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
            DelegatedMobileNetworkPrefix{true, 28, {192, 0, 2, 16}},
            MagMultipathBinding{8, 2, 2, true, false},
            MagMultipathBinding{3, 1, 1, false, true},
            MagIdentifier{1, text("mag-7@hag.example")},
            AnchoredPrefix{64, v6(0)},
            LocalPrefix{64, v6(0)},
            PreviousMaarAddress{64, v6(5), v6(0)},
            ServingMaarAddress{v6(6)},
            DlifLinkLocalAddress{{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}},
            DlifLinkLayerAddress{{0x02, 0, 0, 0, 0, 2}},
            RawOption{200, {1, 2, 3}},
            RawOption{201, {}}};
}

}  // namespace

TEST_CASE("golden PBU: encoder output is the hand-written bytes, decoder reads them back",
          "[mh][golden]") {
    const Message m = golden_pbu_message();
    CHECK(encode(m) == golden::kPbu);
    auto d = decode(golden::kPbu);
    REQUIRE(d.ok());
    CHECK(*d == m);
    CHECK(d->mh_type() == MhType::kBindingUpdate);
    const auto& u = std::get<BindingUpdate>(d->body);
    CHECK(u.sequence == 0x1234);
    CHECK(u.lifetime == 150);
    CHECK(u.proxy);
    CHECK(find_option<GreKey>(u.options)->key == 0xdeadbeef);
    CHECK(find_option<MagMultipathBinding>(u.options)->if_label == 42);
}

TEST_CASE("golden PBA and heartbeat", "[mh][golden]") {
    BindingAcknowledgement a;
    a.status = 0;
    a.proxy = a.tlv_header = true;
    a.sequence = 0x1234;
    a.lifetime = 150;
    a.options = {MobileNodeIdentifier{1, text("cpe@x")},
                 HomeNetworkPrefix{64, {0x20, 0x01, 0x0d, 0xb8, 0, 1}}, GreKey{0x101}};
    CHECK(encode(Message{a}) == golden::kPba);
    REQUIRE(decode(golden::kPba).ok());
    CHECK(*decode(golden::kPba) == Message{a});

    Heartbeat h;
    h.sequence = 7;
    h.options = {RestartCounter{3}};
    CHECK(encode(Message{h}) == golden::kHeartbeat);
    CHECK(*decode(golden::kHeartbeat) == Message{h});
}

TEST_CASE("every option round-trips, aligned as its RFC asks", "[mh][roundtrip]") {
    for (const auto& o : all_options()) {
        BindingUpdate u;
        u.sequence = 1;
        u.options = {o};
        const Bytes b = encode(Message{u});
        INFO(describe(o));
        CHECK(b.size() % 8 == 0);
        CHECK(b[1] == b.size() / 8 - 1);
        auto d = decode(b);
        REQUIRE(d.ok());
        CHECK(d->options() == Options{o});
        CHECK(option_type(o) != 0);
    }
    // All of them in one message, twice over, each at its alignment.
    Options many = all_options();
    Options twice = many;
    twice.insert(twice.end(), many.begin(), many.end());
    BindingUpdate u;
    u.options = twice;
    const Bytes b = encode(Message{u});
    auto d = decode(b);
    REQUIRE(d.ok());
    CHECK(d->options() == twice);
}

TEST_CASE("every message type round-trips", "[mh][roundtrip]") {
    BindingUpdate u;
    u.sequence = 65535;
    u.ack = u.home_registration = u.link_local_compat = u.key_mgmt = u.map_registration = true;
    u.mobile_router = u.proxy = u.force_udp = u.tlv_header = u.bulk = true;
    u.lifetime = 65535;
    BindingAcknowledgement a;
    a.status = static_cast<std::uint8_t>(BaStatus::kCannotSupportMultipathBinding);
    a.key_mgmt = a.mobile_router = a.proxy = a.tlv_header = a.bulk = true;
    a.sequence = 9;
    a.lifetime = 1;
    BindingError e;
    e.status = kBeUnrecognizedMhType;
    e.home_address = v6(9);
    Heartbeat h;
    h.unsolicited = true;
    h.response = true;
    h.sequence = 0xffffffff;
    BindingRevocation ind;
    ind.br_type = kBrTypeIndication;
    ind.trigger_or_status = 2;
    ind.sequence = 77;
    ind.proxy = ind.global = ind.vendor = true;
    ind.options = {MobileNodeIdentifier{1, text("cpe@x")}};
    BindingRevocation ack;
    ack.br_type = kBrTypeAcknowledgement;
    ack.trigger_or_status = 0;
    ack.sequence = 77;
    ack.proxy = true;
    for (const Message& m :
         {Message{u}, Message{a}, Message{e}, Message{h}, Message{ind}, Message{ack}}) {
        auto d = decode(encode(m));
        REQUIRE(d.ok());
        CHECK(*d == m);
        CHECK_FALSE(describe(m).empty());
    }
}

TEST_CASE("hostile framing is refused with its reason", "[mh][hostile]") {
    CHECK(code_of({}) == DecodeErrorCode::kTooShort);
    CHECK(code_of({59, 0, 5, 0, 0}) == DecodeErrorCode::kTooShort);
    Bytes b = golden::kPbu;
    b[0] = 58;
    CHECK(code_of(b) == DecodeErrorCode::kBadPayloadProto);
    CHECK(reaction_to(decode(b).error()).action == ReceiverAction::kParameterProblem);

    b = golden::kPbu;
    b[1] = 12;  // claims 104 octets, has 96
    CHECK(code_of(b) == DecodeErrorCode::kLengthPastEnd);
    b = golden::kPbu;
    b[1] = 255;
    CHECK(code_of(b) == DecodeErrorCode::kLengthPastEnd);
    b = golden::kPbu;
    b.push_back(0);
    CHECK(code_of(b) == DecodeErrorCode::kTrailingData);

    // A BU of 8 octets (header len 0) is shorter than its 12-octet minimum.
    const Bytes short_bu{59, 0, 5, 0, 0, 0, 0, 1};
    CHECK(code_of(short_bu) == DecodeErrorCode::kTooShortForType);
    {
        auto r = decode(short_bu);
        const Reaction re = reaction_to(r.error());
        CHECK(re.action == ReceiverAction::kParameterProblem);
        CHECK(re.pointer == 1);
    }
    // A Binding Error needs 24 octets.
    CHECK(code_of({59, 1, 7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}) ==
          DecodeErrorCode::kTooShortForType);
    // Unknown MH type (Home Test Init, type 1, is not processed by an LMA).
    const Bytes hoti{59, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    CHECK(code_of(hoti) == DecodeErrorCode::kUnknownType);
    CHECK(reaction_to(decode(hoti).error()).action == ReceiverAction::kBindingErrorUnknownType);
    CHECK(code_of({59, 1, 99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}) ==
          DecodeErrorCode::kUnknownType);
}

namespace {
// A BU whose options area (offset 12..15) is the given 4 octets.
Bytes bu_with(std::initializer_list<std::uint8_t> opts16) {
    Bytes b{59, 1, 5, 0, 0, 0, 0, 1, 0x02, 0, 0, 10};
    for (auto x : opts16)
        b.push_back(x);  // (vector::insert trips GCC 12's -Warray-bounds)
    return b;
}
Bytes bu_options(const Bytes& opts) {
    Bytes b{59, 0, 5, 0, 0, 0, 0, 1, 0x02, 0, 0, 10};
    for (auto x : opts)
        b.push_back(x);
    while (b.size() % 8)
        b.push_back(0);  // Pad1s
    b[1] = static_cast<std::uint8_t>(b.size() / 8 - 1);
    return b;
}
}  // namespace

TEST_CASE("hostile options are refused with their reason", "[mh][hostile]") {
    // Pad1 everywhere, including as the very last octet: fine.
    auto ok = decode(bu_with({0, 0, 0, 0}));
    REQUIRE(ok.ok());
    CHECK(ok->options().empty());
    CHECK(decode(bu_with({1, 1, 0, 0})).ok());  // PadN(1) then Pad1
    // An option type octet as the last octet: no room for its length.
    CHECK(code_of(bu_with({0, 0, 0, 33})) == DecodeErrorCode::kOptionTruncated);
    // Length past the end.
    CHECK(code_of(bu_with({33, 6, 0, 0})) == DecodeErrorCode::kOptionLengthPastEnd);
    CHECK(code_of(bu_with({1, 3, 0, 0})) == DecodeErrorCode::kOptionLengthPastEnd);  // PadN too
    CHECK(code_of(bu_with({200, 255, 0, 0})) == DecodeErrorCode::kOptionLengthPastEnd);
    // Zero-length NAI (subtype only) and a MN-ID with no subtype.
    CHECK(code_of(bu_options({8, 1, 1})) == DecodeErrorCode::kZeroLengthIdentifier);
    CHECK(code_of(bu_options({8, 0})) == DecodeErrorCode::kOptionBadLength);
    CHECK(code_of(bu_options({64, 1, 1})) == DecodeErrorCode::kZeroLengthIdentifier);
    // HNP with the wrong length, and with a prefix length past 128.
    Bytes hnp17{22, 17, 0, 64};
    hnp17.resize(2 + 17, 0);
    CHECK(code_of(bu_options(hnp17)) == DecodeErrorCode::kOptionBadLength);
    Bytes hnp129{22, 18, 0, 129};
    hnp129.resize(2 + 18, 0);
    CHECK(code_of(bu_options(hnp129)) == DecodeErrorCode::kBadPrefixLength);
    // Fixed lengths.
    CHECK(code_of(bu_options({33, 5, 0, 0, 0, 0, 1})) ==
          DecodeErrorCode::kOptionBadLength);  // GRE key
    CHECK(code_of(bu_options({35, 6, 0, 1, 0, 0, 0, 0})) ==
          DecodeErrorCode::kOptionBadLength);                                     // BID
    CHECK(code_of(bu_options({23, 1, 1})) == DecodeErrorCode::kOptionBadLength);  // HI
    CHECK(code_of(bu_options({27, 4, 0, 0, 0, 0})) ==
          DecodeErrorCode::kOptionBadLength);  // Timestamp
    CHECK(code_of(bu_options({19, 4, 0, 0, 0, 1})) == DecodeErrorCode::kOptionBadLength);  // vendor
    CHECK(code_of(bu_options({44, 3, 0, 1, 2})) ==
          DecodeErrorCode::kOptionBadLength);  // flow summary
    CHECK(
        code_of(bu_options({55, 18, 0x80, 24, 192, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})) ==
        DecodeErrorCode::kOptionBadLength);  // DMNP V set with an IPv6-sized prefix
    CHECK(code_of(bu_options({55, 6, 0x80, 33, 192, 0, 2, 0})) ==
          DecodeErrorCode::kBadPrefixLength);
    // MAG Multipath-Binding with both B and O.
    CHECK(code_of(bu_options({63, 4, 1, 1, 1, 0xc0})) == DecodeErrorCode::kMultipathBAndO);
    CHECK(decode(bu_options({63, 4, 1, 1, 1, 0x80})).ok());
    CHECK(code_of(bu_options({63, 3, 1, 1, 1})) == DecodeErrorCode::kOptionBadLength);
    // Flow Identification: sub-option past the end of its option, odd BID reference list.
    CHECK(code_of(bu_options({45, 9, 0, 1, 0, 0, 1, 0, 2, 4, 0})) ==
          DecodeErrorCode::kFlowSubOptionMalformed);
    CHECK(code_of(bu_options({45, 8, 0, 1, 0, 0, 1, 0, 2, 1})) ==
          DecodeErrorCode::kFlowSubOptionMalformed);
    CHECK(code_of(bu_options({45, 7, 0, 1, 0, 0, 1, 0, 2})) ==
          DecodeErrorCode::kFlowSubOptionMalformed);
    CHECK(code_of(bu_options({45, 5, 0, 1, 0, 0, 1})) == DecodeErrorCode::kOptionBadLength);
    // Every error names where it is.
    auto r = decode(bu_options({33, 5, 0, 0, 0, 0, 1}));
    CHECK(r.error().offset == 12);
    CHECK(r.error().str().find("GRE Key") != std::string::npos);
}

TEST_CASE("every truncation and corruption of valid messages decodes or fails cleanly",
          "[mh][hostile]") {
    std::mt19937 rng(42);
    for (const Bytes* g : {&golden::kPbu, &golden::kPba, &golden::kHeartbeat}) {
        for (std::size_t len = 0; len <= g->size(); ++len) {
            Bytes t(g->begin(), g->begin() + static_cast<long>(len));
            (void)decode(t);  // as cut
            if (len >= 8) {   // and with Header Len made to fit, so the options get parsed
                t.resize(len / 8 * 8);
                t[1] = static_cast<std::uint8_t>(t.size() / 8 - 1);
                auto r = decode(t);
                if (r.ok()) {
                    CHECK(decode(encode(*r)).ok());
                }
            }
        }
        for (int i = 0; i < 20000; ++i) {
            Bytes c = *g;
            for (int k = 0, n = 1 + static_cast<int>(rng() % 3); k < n; ++k) {
                c[6 + rng() % (c.size() - 6)] = static_cast<std::uint8_t>(rng());
            }
            auto r = decode(c);
            if (r.ok()) {
                auto again = decode(encode(*r));
                REQUIRE(again.ok());
                CHECK(*again == *r);
            }
        }
    }
}

TEST_CASE("MH checksum over the IPv6 pseudo-header", "[mh][checksum]") {
    Bytes b = golden::kPbu;
    const hag::net::Ipv6Address src = v6(1), dst = v6(2);
    CHECK_FALSE(checksum_ok(b, src, dst));
    set_checksum(b, src, dst);
    CHECK(checksum_ok(b, src, dst));
    CHECK((b[4] != 0 || b[5] != 0));
    b[20] ^= 1;
    CHECK_FALSE(checksum_ok(b, src, dst));
    CHECK_FALSE(checksum_ok(Bytes{59, 0}, src, dst));
}

TEST_CASE("descriptions name the fields an operator reads", "[mh][describe]") {
    const std::string d = describe(golden_pbu_message());
    CHECK(d.find("Proxy Binding Update seq 4660 flags APT lifetime 150 (600 s)") !=
          std::string::npos);
    CHECK(d.find("\"cpe@x\"") != std::string::npos);
    CHECK(d.find("Home Network Prefix 2001:db8:1::/64") != std::string::npos);
    CHECK(d.find("GRE Key 3735928559") != std::string::npos);
    CHECK(d.find("MAG Multipath-Binding If-ATT 4") != std::string::npos);
    CHECK(to_string(BaStatus::kCannotSupportMultipathBinding) ==
          "CANNOT_SUPPORT_MULTIPATH_BINDING");
    CHECK(static_cast<int>(BaStatus::kCannotSupportMultipathBinding) == 180);
    CHECK(static_cast<int>(BaStatus::kMagNotAuthorizedForProxyReg) == 154);
    CHECK(static_cast<int>(BaStatus::kGreKeyOptionRequired) == 163);
}

// RFC 8885 §4.3-4.8 option layouts, written by hand: a PBA carrying Previous MAAR (67, length
// 34: reserved, prefix length, P-MAAR address, prefix) and a DLIF Link-Layer Address (70:
// 2 reserved octets, then the address), then hostile lengths of each option 65-70.
TEST_CASE("RFC 8885 options: hand-written bytes and hostile lengths", "[mh][rfc8885]") {
    Bytes pba = {
        59, 0, 6, 0, 0, 0,     // header len (set below), type 6
        0, 0x20, 0, 9, 0, 10,  // status 0, P, seq 9, lifetime 10
        1, 2, 0, 0,            // offset 12: PadN(2) to 8n+4 (offset 16)
        67, 34, 0, 64,         // offset 16: Previous MAAR, prefix length 64
        0x20, 0x01, 0x0d, 0xb8, 0, 0xa, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,  // P-MAAR address
        0x20, 0x01, 0x0d, 0xb8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,    // prefix
        70, 8, 0, 0, 2, 0, 0, 0, 0, 9,  // offset 52: DLIF Link-Layer Address
                                        // 02:00:00:00:00:09
        1, 0,                           // offset 62: PadN(0) to 64
    };
    pba[1] = static_cast<std::uint8_t>(pba.size() / 8 - 1);
    REQUIRE(pba.size() % 8 == 0);
    auto d = decode(pba);
    REQUIRE(d.ok());
    const auto* ba = std::get_if<BindingAcknowledgement>(&d->body);
    REQUIRE(ba != nullptr);
    const auto* pm = find_option<PreviousMaarAddress>(ba->options);
    REQUIRE(pm != nullptr);
    CHECK(pm->prefix_length == 64);
    CHECK(pm->address[5] == 0xa);
    CHECK(pm->address[15] == 1);
    CHECK(pm->prefix[4] == 1);
    const auto* ll = find_option<DlifLinkLayerAddress>(ba->options);
    REQUIRE(ll != nullptr);
    CHECK(ll->address == Bytes{2, 0, 0, 0, 0, 9});
    // The encoder writes the same option bytes back (its own padding may differ).
    const Bytes again = encode(*d);
    auto d2 = decode(again);
    REQUIRE(d2.ok());
    CHECK(*d2 == *d);

    // Every option 65-70 with every length 0-40: decoded when the length is its own, refused
    // (never a crash, never an out-of-bounds read) otherwise.
    for (std::uint8_t type = 65; type <= 70; ++type) {
        for (std::uint8_t len = 0; len <= 40; ++len) {
            Bytes m = {59, 0, 6, 0, 0, 0, 0, 0x20, 0, 1, 0, 1, type, len};
            for (std::uint8_t i = 0; i < len; ++i) {
                m.push_back(static_cast<std::uint8_t>(i == 1 ? 200 : i));  // a bad prefix length
            }
            while (m.size() % 8 != 0) {
                m.push_back(0);  // Pad1
            }
            m[1] = static_cast<std::uint8_t>(m.size() / 8 - 1);
            auto r = decode(m);
            const bool own = (type == 65 || type == 66)   ? len == 18
                             : type == 67                 ? len == 34
                             : (type == 68 || type == 69) ? len == 16
                                                          : len >= 3;
            // Prefix options carry prefix length 200 at data offset 1: refused too.
            const bool prefix_checked = type == 65 || type == 66 || type == 67;
            INFO("type " << int(type) << " length " << int(len));
            CHECK(r.ok() == (own && !prefix_checked));
        }
    }
}
