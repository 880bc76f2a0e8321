// hag-magsim's PBU: encode what it builds, decode with the codec, assert every field.
#include <catch2/catch.hpp>

#include "flows.hpp"
#include "hag/mh/timestamp.hpp"
#include "pbu.hpp"

using namespace hag;

TEST_CASE("parse_access splits kind, interface or CoA, and BID") {
    auto a = magsim::parse_access("dsl:2001:db8:a::2:1");
    REQUIRE(a);
    CHECK(a->kind == "dsl");
    CHECK(a->iface_or_coa == "2001:db8:a::2");
    CHECK(a->bid == 1);
    auto b = magsim::parse_access("lte:veth1:2");
    REQUIRE(b);
    CHECK(b->iface_or_coa == "veth1");
    CHECK(b->bid == 2);
    for (const char* bad : {"", "dsl", "dsl:eth0", ":eth0:1", "dsl::1", "dsl:eth0:0",
                            "dsl:eth0:256", "dsl:eth0:x", "dsl:eth0:1x"}) {
        CHECK_FALSE(magsim::parse_access(bad));
    }
}

TEST_CASE("build_pbu carries every option the LMA needs") {
    magsim::PbuParams p;
    p.nai = "cpe1@example.net";
    p.mag_id = "mag1@example.net";
    p.access = *magsim::parse_access("lte:2001:db8:b::2:2");
    p.sequence = 7;
    p.lifetime_s = 3600;
    p.downlink_gre_key = 0xabcdef01;
    p.timestamp = 0x0123456789abcdefULL;
    p.down_kbps = 50000;
    p.up_kbps = 10000;
    const auto wire = mh::encode(magsim::build_pbu(p));
    CHECK(wire.size() % 8 == 0);
    auto m = mh::decode(wire);
    REQUIRE(m);
    const auto* bu = std::get_if<mh::BindingUpdate>(&m->body);
    REQUIRE(bu != nullptr);
    CHECK(bu->proxy);
    CHECK(bu->ack);
    CHECK(bu->home_registration);
    CHECK(bu->sequence == 7);
    CHECK(bu->lifetime == 900);
    const auto& o = bu->options;
    const auto* id = mh::find_option<mh::MobileNodeIdentifier>(o);
    REQUIRE(id);
    CHECK(id->subtype == mh::kMnIdSubtypeNai);
    CHECK(std::string(id->identifier.begin(), id->identifier.end()) == "cpe1@example.net");
    const auto* hnp = mh::find_option<mh::HomeNetworkPrefix>(o);
    REQUIRE(hnp);
    CHECK(hnp->prefix_length == 0);
    REQUIRE(mh::find_option<mh::HandoffIndicatorOption>(o));
    CHECK(mh::find_option<mh::HandoffIndicatorOption>(o)->value == 1);
    REQUIRE(mh::find_option<mh::AccessTechnologyTypeOption>(o));
    CHECK(mh::find_option<mh::AccessTechnologyTypeOption>(o)->value == 8);
    REQUIRE(mh::find_option<mh::Timestamp>(o));
    CHECK(mh::find_option<mh::Timestamp>(o)->value == 0x0123456789abcdefULL);
    REQUIRE(mh::find_option<mh::GreKey>(o));
    CHECK(mh::find_option<mh::GreKey>(o)->key == 0xabcdef01);
    REQUIRE(mh::find_option<mh::BindingIdentifier>(o));
    CHECK(mh::find_option<mh::BindingIdentifier>(o)->bid == 2);
    const auto* mmb = mh::find_option<mh::MagMultipathBinding>(o);
    REQUIRE(mmb);
    CHECK(mmb->if_att == 8);
    CHECK(mmb->if_label == 2);
    CHECK(mmb->binding_id == 2);
    CHECK_FALSE(mmb->overwrite);
    const auto* mag = mh::find_option<mh::MagIdentifier>(o);
    REQUIRE(mag);
    CHECK(std::string(mag->identifier.begin(), mag->identifier.end()) == "mag1@example.net");
    const auto* vs = mh::find_option<mh::VendorSpecific>(o);
    REQUIRE(vs);
    CHECK(vs->vendor_id == magsim::kLinkMetricsVendorId);
    CHECK(vs->subtype == magsim::kLinkMetricsSubtype);
    CHECK(vs->data == mh::Bytes{0x00, 0x00, 0xc3, 0x50, 0x00, 0x00, 0x27, 0x10});
}

TEST_CASE("a de-registration PBU has lifetime 0 and no link metrics") {
    magsim::PbuParams p;
    p.nai = "cpe1@example.net";
    p.mag_id = "mag1";
    p.access = *magsim::parse_access("dsl:eth0:1");
    p.lifetime_s = 0;
    auto m = mh::decode(mh::encode(magsim::build_pbu(p)));
    REQUIRE(m);
    const auto& bu = std::get<mh::BindingUpdate>(m->body);
    CHECK(bu.lifetime == 0);
    CHECK(mh::find_option<mh::VendorSpecific>(bu.options) == nullptr);
    CHECK(mh::find_option<mh::AccessTechnologyTypeOption>(bu.options)->value == 3);
}

TEST_CASE("summarize_pba reads status, HNP, uplink key and BID") {
    mh::BindingAcknowledgement ba;
    ba.proxy = true;
    ba.sequence = 9;
    ba.lifetime = 900;
    ba.status = 0;
    mh::HomeNetworkPrefix h;
    h.prefix_length = 64;
    h.prefix = {0x20, 0x01, 0x0d, 0xb8, 0, 1};
    ba.options.push_back(h);
    ba.options.push_back(mh::GreKey{0x55});
    mh::BindingIdentifier b;
    b.bid = 2;
    ba.options.push_back(b);
    auto m = mh::decode(mh::encode(mh::Message{ba}));
    REQUIRE(m);
    auto s = magsim::summarize_pba(*m);
    REQUIRE(s);
    CHECK(s->sequence == 9);
    CHECK(s->status_name == "accepted");
    CHECK(s->lifetime_s == 3600);
    CHECK(s->hnp == "2001:db8:1::/64");
    CHECK(s->uplink_gre_key == 0x55);
    CHECK(s->bid == 2);
    CHECK(magsim::ba_status_name(130) == "insufficient-resources");
    CHECK(magsim::ba_status_name(200) == "status-200");
    CHECK_FALSE(magsim::summarize_pba(mh::Message{mh::Heartbeat{}}));
}

TEST_CASE("RFC 5213 timestamps: 48 bits of Unix seconds, 16 bits of fraction") {
    using namespace std::chrono;
    const auto t = system_clock::time_point(seconds(1'700'000'000) + milliseconds(500));
    CHECK(mh::timestamp_from(t) == ((std::uint64_t{1'700'000'000} << 16) | 0x8000));
    CHECK((mh::timestamp_now() >> 16) > 1'577'836'800ULL);  // after 2020-01-01
}

TEST_CASE("--dmnp requests: any, any4, length hints, specific prefixes; bad ones refused") {
    using hag::magsim::dmnp_text;
    using hag::magsim::parse_dmnp_request;
    auto any = parse_dmnp_request("any");
    REQUIRE(any);
    CHECK_FALSE(any->ipv4);
    CHECK(any->prefix == hag::mh::Bytes(16, 0));
    auto any4 = parse_dmnp_request("any4");
    REQUIRE(any4);
    CHECK(any4->ipv4);
    CHECK(any4->prefix == hag::mh::Bytes(4, 0));
    auto hint = parse_dmnp_request("::/56");
    REQUIRE(hint);
    CHECK(hint->prefix_length == 56);
    auto v4 = parse_dmnp_request("192.0.2.144/28");
    REQUIRE(v4);
    CHECK(v4->ipv4);
    CHECK(dmnp_text(*v4) == "192.0.2.144/28");
    CHECK(dmnp_text(*parse_dmnp_request("2001:db8:d00:200::/56")) == "2001:db8:d00:200::/56");
    for (const char* bad : {"", "anything", "2001:db8::/129", "192.0.2.0/33",
                            "2001:db8::", "2001:db8::/", "2001:db8::/5x", "300.0.0.0/8"}) {
        CHECK_FALSE(parse_dmnp_request(bad));
    }
    // Sent with registrations only; the PBA's granted prefixes are summarised.
    hag::magsim::PbuParams p;
    p.nai = "cpe1@example.net";
    p.mag_id = "mag1@example.net";
    p.access = *hag::magsim::parse_access("dsl:2001:db8:a::1:1");
    p.dmnp = {*any, *v4};
    auto bu = std::get<hag::mh::BindingUpdate>(hag::magsim::build_pbu(p).body);
    CHECK(hag::mh::find_options<hag::mh::DelegatedMobileNetworkPrefix>(bu.options).size() == 2);
    p.lifetime_s = 0;
    bu = std::get<hag::mh::BindingUpdate>(hag::magsim::build_pbu(p).body);
    CHECK(hag::mh::find_options<hag::mh::DelegatedMobileNetworkPrefix>(bu.options).empty());
    hag::mh::BindingAcknowledgement ba;
    ba.proxy = true;
    ba.options.push_back(*v4);
    auto s = hag::magsim::summarize_pba(hag::mh::Message{ba});
    REQUIRE(s);
    CHECK(s->dmnp == std::vector<std::string>{"192.0.2.144/28"});
}

TEST_CASE("MN mode: a home registration BU (A, H, no P) with MN-ID, BID and GRE key only") {
    hag::magsim::PbuParams p;
    p.nai = "mn1@example.net";
    p.access = *hag::magsim::parse_access("lte:2001:db8:b::1:2");
    p.sequence = 9;
    p.downlink_gre_key = 0x1234;
    p.mobile_node = true;
    auto bu = std::get<hag::mh::BindingUpdate>(hag::magsim::build_pbu(p).body);
    CHECK(bu.ack);
    CHECK(bu.home_registration);
    CHECK_FALSE(bu.proxy);
    CHECK(bu.sequence == 9);
    REQUIRE(bu.options.size() == 3);
    CHECK(hag::mh::find_option<hag::mh::MobileNodeIdentifier>(bu.options) != nullptr);
    REQUIRE(hag::mh::find_option<hag::mh::BindingIdentifier>(bu.options) != nullptr);
    CHECK(hag::mh::find_option<hag::mh::BindingIdentifier>(bu.options)->bid == 2);
    CHECK(hag::mh::find_option<hag::mh::GreKey>(bu.options)->key == 0x1234);
    CHECK(hag::mh::find_option<hag::mh::HomeNetworkPrefix>(bu.options) == nullptr);
}

TEST_CASE("flow specs: syntax, FIDs, selectors", "[flow]") {
    std::string why;
    auto f = magsim::parse_flow("sip=udp:5060-5061>2,1", 0, &why);
    REQUIRE(f);
    CHECK(f->name == "sip");
    CHECK(f->binding.fid == 1);
    CHECK(f->binding.priority == 1);
    CHECK(f->binding.bids == std::vector<std::uint16_t>{2, 1});
    REQUIRE(f->binding.selector);
    CHECK(mh::describe(*f->binding.selector) == "ipv4 protocol=17 sport=5060-5061");
    auto d = magsim::parse_flow("ssh=tcp:22>drop", 4);
    REQUIRE(d);
    CHECK(d->binding.fid == 5);
    CHECK(d->binding.discard());
    auto esp = magsim::parse_flow("vpn=esp>1", 0);
    REQUIRE(esp);
    CHECK(mh::describe(*esp->binding.selector) == "ipv4 protocol=50");
    for (const char* bad : {"", "x", "=udp>1", "a=udp", "a=xyz>1", "a=udp:70000>1", "a=udp:9-8>1",
                            "a=esp:5>1", "a=udp:1>", "a=udp:1>0", "a=udp:1>1,1", "a=udp:1>x"}) {
        CHECK_FALSE(magsim::parse_flow(bad, 0, &why));
    }
    CHECK(why.find("flow 'a=udp:1>x'") == 0);
}

TEST_CASE("flows_to_signal references registered BIDs only; build_pbu carries them", "[flow]") {
    std::vector<magsim::FlowSpec> specs{*magsim::parse_flow("a=udp:1>2,1", 0),
                                        *magsim::parse_flow("b=udp:2>2", 1),
                                        *magsim::parse_flow("c=udp:3>drop", 2)};
    auto only1 = magsim::flows_to_signal(specs, [](std::uint16_t b) { return b == 1; });
    REQUIRE(only1.size() == 2);
    CHECK(only1[0].bids == std::vector<std::uint16_t>{1});
    CHECK(only1[1].discard());
    auto all = magsim::flows_to_signal(specs, [](std::uint16_t) { return true; });
    REQUIRE(all.size() == 3);

    magsim::PbuParams p;
    p.nai = "cpe1@example.net";
    p.mag_id = "mag1@example.net";
    p.access = *magsim::parse_access("lte:2001:db8:b::2:2");
    p.flows = all;
    auto m = mh::decode(mh::encode(magsim::build_pbu(p)));
    REQUIRE(m);
    const auto fis = mh::find_options<mh::FlowIdentification>(m->options());
    REQUIRE(fis.size() == 3);
    auto b0 = mh::parse_flow_binding(*fis[0]);
    REQUIRE(b0.ok());
    CHECK(*b0 == all[0]);

    // The PBA's replies are summarized.
    mh::BindingAcknowledgement ba;
    ba.options.push_back(mh::flow_reply(all[0], mh::FlowStatus::kSuccess));
    ba.options.push_back(mh::flow_reply(all[1], mh::FlowStatus::kBidNotFound));
    auto sum = magsim::summarize_pba(mh::Message{ba});
    REQUIRE(sum);
    CHECK(sum->flows == std::vector<std::pair<std::uint16_t, std::uint8_t>>{{1, 0}, {2, 131}});
}

namespace {

std::vector<std::uint8_t> udp6(std::uint16_t sport, std::uint16_t dport) {
    std::vector<std::uint8_t> p(48, 0);
    p[0] = 0x60;
    p[5] = 8;
    p[6] = 17;
    p[7] = 64;
    p[8] = 0x20;
    p[9] = 0x01;
    p[24] = 0x20;
    p[25] = 0x01;
    p[40] = static_cast<std::uint8_t>(sport >> 8);
    p[41] = static_cast<std::uint8_t>(sport);
    p[42] = static_cast<std::uint8_t>(dport >> 8);
    p[43] = static_cast<std::uint8_t>(dport);
    p[45] = 8;
    return p;
}

}  // namespace

TEST_CASE("uplink mirror: first matching binding, first live BID, drop", "[flow]") {
    std::vector<magsim::FlowSpec> specs{*magsim::parse_flow("game=udp:7000>2,1", 0),
                                        *magsim::parse_flow("sip=udp:5060>drop", 1)};
    magsim::UplinkFlows up(specs);
    bool two_live = true;
    auto live = [&](std::uint16_t b) { return b == 1 || two_live; };
    // Uplink: the subscriber is the source, the other end's port is the destination port.
    auto c = up.decide(udp6(40000, 7000), live);
    REQUIRE(c);
    CHECK_FALSE(c->drop);
    CHECK(c->bid == 2);
    two_live = false;
    c = up.decide(udp6(40000, 7000), live);
    REQUIRE(c);
    CHECK(c->bid == 1);
    c = up.decide(udp6(40000, 5060), live);
    REQUIRE(c);
    CHECK(c->drop);
    CHECK(c->flow == 1);
    CHECK_FALSE(up.decide(udp6(7000, 40000), live));  // local port 7000: not this flow
    CHECK_FALSE(up.decide({}, live));
    CHECK_FALSE(up.decide(std::vector<std::uint8_t>(10, 0x45), live));
    auto truncated = udp6(1, 7000);
    truncated.resize(44);
    (void)up.decide(truncated, live);  // a bad length: no crash
}
