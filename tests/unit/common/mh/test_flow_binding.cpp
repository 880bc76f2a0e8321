// RFC 6089 flow bindings and RFC 6088 traffic selectors: layouts, round trips, hostile input,
// and the translation to policy classifiers.
#include <catch2/catch.hpp>

#include <random>

#include "hag/mh/flow_binding.hpp"
#include "hag/mh/mh.hpp"
#include "hag/net/address.hpp"

using namespace hag;
using namespace hag::mh;
using Bytes = std::vector<std::uint8_t>;

namespace {

net::Ipv6Address v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
    return net::ipv4_mapped({a, b, c, d});
}
net::Ipv6Address v6(const char* s) {
    return *net::parse_ipv6_address(s);
}

}  // namespace

TEST_CASE("IPv4 traffic selector: RFC 6088 layout", "[mh][flow]") {
    // UDP from 192.0.2.1-192.0.2.9 source port 5060 to anything.
    TrafficSelector ts;
    ts.source = Range<net::Ipv6Address>{v4(192, 0, 2, 1), v4(192, 0, 2, 9)};
    ts.source_port = Range<std::uint16_t>{5060, 5060};
    ts.protocol = Range<std::uint8_t>{17, 17};
    const Bytes want{1,    0,                               // TS Format 1, Reserved
                     0xc2, 0x08, 0x00, 0x00,                // A B G M
                     192,  0,    2,    1,    192, 0, 2, 9,  // start / end source address
                     0x13, 0xc4,                            // start source port 5060
                     17};                                   // start protocol
    CHECK(encode_traffic_selector(ts) == want);
    auto back = decode_traffic_selector(want);
    REQUIRE(back.ok());
    CHECK(*back == ts);
    CHECK(describe(ts) == "ipv4 protocol=17 src=192.0.2.1-192.0.2.9 sport=5060");
}

TEST_CASE("IPv6 traffic selector: RFC 6088 layout", "[mh][flow]") {
    TrafficSelector ts;
    ts.ipv6 = true;
    ts.destination = Range<net::Ipv6Address>{v6("2001:db8::1"), v6("2001:db8::1")};
    ts.spi = Range<std::uint32_t>{0x1000, 0x1000};
    ts.flow_label = Range<std::uint32_t>{1, 0xfffff};
    ts.destination_port = Range<std::uint16_t>{10000, 20000};
    ts.ds = Range<std::uint8_t>{0xb8, 0xb8};
    ts.protocol = Range<std::uint8_t>{50, 51};
    const Bytes b = encode_traffic_selector(ts);
    REQUIRE(b.size() == 2 + 4 + 16 + 4 + 8 + 4 + 1 + 2);
    CHECK(b[0] == 2);
    // C, E, G, H, K, L, M, O, P
    CHECK(b[2] == 0x2b);  // C(2) E(4) G(6) H(7): 0010 1011
    CHECK(b[3] == 0x3b);  // K(10) L(11) M(12) O(14) P(15): 0011 1011
    auto back = decode_traffic_selector(b);
    REQUIRE(back.ok());
    CHECK(*back == ts);
}

TEST_CASE("traffic selectors: hostile input fails cleanly", "[mh][flow][hostile]") {
    auto status = [](const Bytes& b) {
        auto r = decode_traffic_selector(b);
        REQUIRE_FALSE(r.ok());
        return r.error().status;
    };
    CHECK(status({}) == FlowStatus::kMalformed);
    CHECK(status({1}) == FlowStatus::kMalformed);
    CHECK(status({3, 0, 0, 0, 0, 0}) == FlowStatus::kTsFormatNotSupported);
    CHECK(status({1, 0, 0, 0}) == FlowStatus::kMalformed);                         // no flags
    CHECK(status({1, 0, 0x80, 0, 0, 0, 192, 0, 2}) == FlowStatus::kMalformed);     // short address
    CHECK(status({1, 0, 0x40, 0, 0, 0, 192, 0, 2, 1}) == FlowStatus::kMalformed);  // B without A
    CHECK(status({1, 0, 0xc0, 0, 0, 0, 192, 0, 2, 9, 192, 0, 2, 1}) ==
          FlowStatus::kMalformed);                                   // end below start
    CHECK(status({1, 0, 0, 0, 0, 0, 7}) == FlowStatus::kMalformed);  // trailing octet
    CHECK(status({2, 0, 0x02, 0, 0, 0, 0x00, 0x10, 0, 0}) ==
          FlowStatus::kMalformed);  // flow label above 20 bits
    // No flags: matches everything, both families.
    CHECK(decode_traffic_selector(Bytes{1, 0, 0, 0, 0, 0}).ok());
    CHECK(decode_traffic_selector(Bytes{2, 0, 0, 0, 0, 0}).ok());
    // Reserved bits are ignored.
    CHECK(decode_traffic_selector(Bytes{1, 0, 0, 0x03, 0xff, 0xff}).ok());

    // Random bytes: never a crash; what decodes re-encodes to the same selector.
    std::mt19937 rng(6088);
    for (int i = 0; i < 20000; ++i) {
        Bytes b(rng() % 48);
        for (auto& x : b) {
            x = static_cast<std::uint8_t>(rng());
        }
        if (!b.empty()) {
            b[0] = static_cast<std::uint8_t>(1 + rng() % 2);
        }
        auto r = decode_traffic_selector(b);
        if (r.ok()) {
            auto again = decode_traffic_selector(encode_traffic_selector(*r));
            REQUIRE(again.ok());
            CHECK(*again == *r);
            (void)describe(*r);
            (void)classifiers_of(*r);
        }
    }
}

TEST_CASE("flow bindings: Flow Identification with BID Reference and selector", "[mh][flow]") {
    FlowBinding b;
    b.fid = 1;
    b.priority = 10;
    b.bids = {2, 1};
    TrafficSelector ts;
    ts.protocol = Range<std::uint8_t>{17, 17};
    ts.source_port = Range<std::uint16_t>{5060, 5061};
    b.selector = ts;
    const FlowIdentification o = flow_identification(b);
    CHECK(o.status == 0);
    CHECK(o.bid_references() == std::vector<std::uint16_t>{2, 1});
    auto back = parse_flow_binding(o);
    REQUIRE(back.ok());
    CHECK(*back == b);
    CHECK_FALSE(back->discard());

    // Through a whole PBU and back, with a Pad1 and a PadN sub-option in between.
    FlowIdentification padded = o;
    padded.sub_options.insert(padded.sub_options.begin() + 1, FlowSubOption{kFlowSubPad1, {}});
    padded.sub_options.insert(padded.sub_options.begin() + 1, FlowSubOption{kFlowSubPadN, {0, 0}});
    BindingUpdate u;
    u.proxy = u.ack = true;
    u.lifetime = 60;
    u.options = {MobileNodeIdentifier{1, {'a'}}, padded, FlowSummary{{1}}};
    auto m = decode(encode(Message{u}));
    REQUIRE(m.ok());
    const auto& opts = m->options();
    const auto* fi = find_option<FlowIdentification>(opts);
    REQUIRE(fi != nullptr);
    CHECK(*fi == padded);
    auto parsed = parse_flow_binding(*fi);
    REQUIRE(parsed.ok());
    CHECK(*parsed == b);

    // Discard: no BID Reference.
    FlowBinding d;
    d.fid = 2;
    d.selector = TrafficSelector{};
    auto pd = parse_flow_binding(flow_identification(d));
    REQUIRE(pd.ok());
    CHECK(pd->discard());

    // Replies: status, the BIDs echoed when accepted only.
    CHECK(flow_reply(b, FlowStatus::kSuccess).bid_references() == b.bids);
    const auto rej = flow_reply(b, FlowStatus::kBidNotFound);
    CHECK(rej.status == 131);
    CHECK(rej.sub_options.empty());
    CHECK(flow_status_name(131) == "BID not found");
    CHECK(flow_status_name(133) == "traffic selector format not supported");
}

TEST_CASE("flow bindings: malformed requests", "[mh][flow][hostile]") {
    FlowIdentification o;
    o.fid = 3;
    o.sub_options = {{kFlowSubBidReference, {0, 1}}, {kFlowSubBidReference, {0, 2}}};
    CHECK(parse_flow_binding(o).error().status == FlowStatus::kMalformed);
    o.sub_options = {{kFlowSubBidReference, {0, 1, 0, 1}}};
    CHECK(parse_flow_binding(o).error().status == FlowStatus::kMalformed);
    o.sub_options = {{kFlowSubTrafficSelector, {1, 0, 0, 0, 0, 0}},
                     {kFlowSubTrafficSelector, {1, 0, 0, 0, 0, 0}}};
    CHECK(parse_flow_binding(o).error().status == FlowStatus::kMalformed);
    o.sub_options = {{kFlowSubTrafficSelector, {9, 0, 0, 0, 0, 0}}};
    CHECK(parse_flow_binding(o).error().status == FlowStatus::kTsFormatNotSupported);
    o.sub_options = {{kFlowSubBidReference, {}}};
    CHECK(parse_flow_binding(o).error().status == FlowStatus::kMalformed);
    // Unknown sub-options are skipped.
    o.sub_options = {{9, {1, 2, 3}}, {kFlowSubBidReference, {0, 7}}};
    REQUIRE(parse_flow_binding(o).ok());
    CHECK(parse_flow_binding(o)->bids == std::vector<std::uint16_t>{7});

    // The generic decoder: Pad1 is one octet; a sub-option past the end is refused.
    auto bu = [](const Bytes& opt) {
        Bytes m(opt.size() + 12, 0);
        const std::uint8_t head[12] = {59, 0, 5, 0, 0, 0, 0, 1, 0x82, 0, 0, 10};
        for (std::size_t i = 0; i < m.size(); ++i) {
            m[i] = i < 12 ? head[i] : opt[i - 12];
        }
        while (m.size() % 8 != 0) {
            m.push_back(0);
        }
        m[1] = static_cast<std::uint8_t>(m.size() / 8 - 1);
        return m;
    };
    auto ok = decode(bu({45, 7, 0, 1, 0, 0, 0, 0, 0}));
    REQUIRE(ok.ok());
    const auto* fi = find_option<FlowIdentification>(ok->options());
    REQUIRE(fi != nullptr);
    CHECK(fi->sub_options.size() == 1);
    CHECK_FALSE(decode(bu({45, 8, 0, 1, 0, 0, 0, 0, 0, 5})).ok());
}

TEST_CASE("flow bindings: selectors as policy classifiers", "[mh][flow][policy]") {
    TrafficSelector ts;
    ts.protocol = Range<std::uint8_t>{6, 17};
    ts.source_port = Range<std::uint16_t>{22, 22};
    ts.destination = Range<net::Ipv6Address>{v4(192, 0, 2, 0), v4(192, 0, 2, 255)};
    ts.ds = Range<std::uint8_t>{0xb8, 0xbb};  // DSCP 46 only
    auto cs = classifiers_of(ts);
    REQUIRE(cs);
    REQUIRE(cs->size() == 12);  // protocols 6..17
    const policy::Classifier& c = cs->front();
    CHECK(c.protocol == 6);
    CHECK(c.remote_ports == std::vector<policy::PortRange>{{22, 22}});
    REQUIRE(c.local_prefixes.size() == 1);
    CHECK(c.local_prefixes[0].length == 96 + 24);
    CHECK(c.dscp == std::vector<std::uint8_t>{46});
    policy::FlowKey k;
    k.protocol = 6;
    k.remote_port = 22;
    k.local = v4(192, 0, 2, 7);
    k.dscp = 46;
    CHECK(c.matches(k));
    k.local = v4(192, 0, 3, 7);
    CHECK_FALSE(c.matches(k));

    std::string why;
    TrafficSelector fl;
    fl.ipv6 = true;
    fl.flow_label = Range<std::uint32_t>{1, 1};
    CHECK_FALSE(classifiers_of(fl, &why));
    CHECK(why.find("flow label") != std::string::npos);
    TrafficSelector spi;
    spi.spi = Range<std::uint32_t>{1, 2};
    CHECK_FALSE(classifiers_of(spi));
}

TEST_CASE("address ranges as prefixes", "[mh][flow]") {
    auto ps = range_to_prefixes(v6("2001:db8::1"), v6("2001:db8::6"));
    // ::1/128, ::2/127, ::4/127, ::6/128
    REQUIRE(ps.size() == 4);
    CHECK(net::format(ps[0]) == "2001:db8::1/128");
    CHECK(net::format(ps[1]) == "2001:db8::2/127");
    CHECK(net::format(ps[2]) == "2001:db8::4/127");
    CHECK(net::format(ps[3]) == "2001:db8::6/128");
    auto all = range_to_prefixes(v6("::"), v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    REQUIRE(all.size() == 1);
    CHECK(all[0].length == 0);
    auto worst = range_to_prefixes(v6("::1"), v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"));
    CHECK(worst.size() == 254);
    CHECK(range_to_prefixes(v6("::2"), v6("::1")).empty());
    // Random ranges: the prefixes tile the range exactly (checked at its ends and in between).
    std::mt19937 rng(7);
    for (int i = 0; i < 200; ++i) {
        net::Ipv6Address a = v6("2001:db8::"), b = a;
        a[15] = static_cast<std::uint8_t>(rng());
        a[14] = static_cast<std::uint8_t>(rng() % 4);
        b[15] = static_cast<std::uint8_t>(rng());
        b[14] = static_cast<std::uint8_t>(rng() % 4);
        if (b < a) {
            std::swap(a, b);
        }
        const auto p = range_to_prefixes(a, b);
        REQUIRE_FALSE(p.empty());
        CHECK(p.front().address == a);
        for (unsigned v = 0; v < 1024; ++v) {
            net::Ipv6Address x = a;
            x[14] = static_cast<std::uint8_t>(v >> 8);
            x[15] = static_cast<std::uint8_t>(v);
            int in = 0;
            for (const auto& q : p) {
                in += net::contains(q, x) ? 1 : 0;
            }
            CHECK(in == ((a <= x && x <= b) ? 1 : 0));
        }
    }
}
