// The flow-policy model: classifiers, preference lists, availability, the example.
#include <catch2/catch.hpp>

#include "hag/policy/policy.hpp"

using namespace hag;
using namespace hag::policy;

namespace {

net::Ipv6Address v6(const char* t) {
    return *net::parse_ipv6_address(t);
}
net::Ipv6Address v4(const char* t) {
    return net::ipv4_mapped(*net::parse_ipv4_address(t));
}

FlowKey tcp(std::uint16_t remote_port, std::uint16_t local_port = 40000) {
    FlowKey k;
    k.local = v6("2001:db8:1::10");
    k.remote = v6("2001:db8:99::1");
    k.protocol = kProtoTcp;
    k.local_port = local_port;
    k.remote_port = remote_port;
    return k;
}

FlowKey udp(std::uint16_t remote_port, std::uint16_t local_port = 40000) {
    FlowKey k = tcp(remote_port, local_port);
    k.protocol = kProtoUdp;
    return k;
}

FlowKey esp(std::uint32_t spi) {
    FlowKey k = tcp(0, 0);
    k.protocol = kProtoEsp;
    k.spi = spi;
    return k;
}

Classifier proto_ports(std::uint8_t proto, std::vector<PortRange> remote) {
    Classifier c;
    c.protocol = proto;
    c.remote_ports = std::move(remote);
    return c;
}

Step access(std::size_t label) {
    return {Step::Kind::kAccess, label};
}
constexpr Step kDropStep{Step::Kind::kDrop, 0};
constexpr Step kStripeStep{Step::Kind::kStripe, 0};

// The table: RED = DSL (If-Label 1), BLUE = LTE (If-Label 2).
//   HTTP: BLUE, RED, DROP   IPsec: RED, BLUE, DROP   SSH: DROP   SIP/RTP: BLUE, DROP
Policy example() {
    Policy p;
    p.labels = {{"RED", 1, std::nullopt}, {"BLUE", 2, std::nullopt}};
    Classifier ike = proto_ports(kProtoUdp, {{500, 500}, {4500, 4500}});
    Classifier esp_c;
    esp_c.protocol = kProtoEsp;
    Classifier rtp;
    rtp.protocol = kProtoUdp;
    rtp.local_ports = {{10000, 20000}};
    p.applications = {
        {"HTTP", {proto_ports(kProtoTcp, {{80, 80}, {443, 443}})}},
        {"IPsec", {esp_c, ike}},
        {"SSH", {proto_ports(kProtoTcp, {{22, 22}})}},
        {"SIP/RTP", {proto_ports(kProtoUdp, {{5060, 5061}}), rtp}},
    };
    Profile prof{"home", {}};
    prof.rules = {
        {0, {access(1), access(0), kDropStep}, 0},
        {1, {access(0), access(1), kDropStep}, 0},
        {2, {kDropStep}, 0},
        {3, {access(1), kDropStep}, 0},
    };
    p.profiles.push_back(prof);
    p.default_profile = 0;
    return p;
}

const std::vector<Access> kBoth = {{1, 1, 3, true}, {2, 2, 8, true}};
const std::vector<Access> kDslDown = {{1, 1, 3, false}, {2, 2, 8, true}};
const std::vector<Access> kLteDown = {{1, 1, 3, true}, {2, 2, 8, false}};
const std::vector<Access> kNone = {{1, 1, 3, false}, {2, 2, 8, false}};

Decision path(std::uint16_t bid, int rule, int step) {
    return {Decision::Kind::kPath, bid, rule, step};
}
Decision drop(int rule, int step) {
    return {Decision::Kind::kDrop, 0, rule, step};
}

}  // namespace

TEST_CASE("the example table: each application on its access, in every availability", "[policy]") {
    const Policy p = example();
    const Profile& prof = p.profiles[0];
    // Both up: first choice.
    CHECK(decide(p, prof, tcp(443), kBoth) == path(2, 0, 0));          // HTTP -> BLUE
    CHECK(decide(p, prof, esp(0x1234), kBoth) == path(1, 1, 0));       // IPsec -> RED
    CHECK(decide(p, prof, udp(4500), kBoth) == path(1, 1, 0));         // IKE NAT-T -> RED
    CHECK(decide(p, prof, tcp(22), kBoth) == drop(2, 0));              // SSH -> DROP
    CHECK(decide(p, prof, udp(5060), kBoth) == path(2, 3, 0));         // SIP -> BLUE
    CHECK(decide(p, prof, udp(3478, 15000), kBoth) == path(2, 3, 0));  // RTP -> BLUE
    // DSL (RED) down.
    CHECK(decide(p, prof, tcp(80), kDslDown) == path(2, 0, 0));
    CHECK(decide(p, prof, esp(1), kDslDown) == path(2, 1, 1));  // IPsec falls to BLUE
    CHECK(decide(p, prof, udp(5060), kDslDown) == path(2, 3, 0));
    // LTE (BLUE) down.
    CHECK(decide(p, prof, tcp(80), kLteDown) == path(1, 0, 1));  // HTTP falls to RED
    CHECK(decide(p, prof, esp(1), kLteDown) == path(1, 1, 0));
    CHECK(decide(p, prof, udp(5060), kLteDown) == drop(3, 1));  // VoIP never over DSL
    CHECK(decide(p, prof, tcp(22), kLteDown) == drop(2, 0));
    // Nothing up: every list ends in DROP.
    CHECK(decide(p, prof, tcp(80), kNone) == drop(0, 2));
    // No rule: striped.
    CHECK(decide(p, prof, tcp(25), kBoth) == Decision{});
    CHECK(decide(p, prof, udp(53), kBoth).kind == Decision::Kind::kStripe);
}

TEST_CASE(
    "a WLAN + LTE router: the tunnel per application when both are up, WLAN down, "
    "LTE down",
    "[policy]") {
    Policy p;
    p.labels = {{"WLAN", std::nullopt, 4}, {"LTE", std::nullopt, 8}};  // by access technology
    p.applications = {{"video", {proto_ports(kProtoTcp, {{443, 443}})}},
                      {"voice", {proto_ports(kProtoUdp, {{5060, 5060}})}},
                      {"bulk", {proto_ports(kProtoTcp, {{873, 873}})}}};
    Profile prof{"wlan-lte", {}};
    prof.rules = {{0, {access(0), access(1), kDropStep}, 0},
                  {1, {access(1), access(0), kDropStep}, 0},
                  {2, {access(0), kStripeStep}, 0}};
    p.profiles.push_back(prof);
    const std::vector<Access> both = {{7, 0, 4, true}, {9, 0, 8, true}};
    const std::vector<Access> wlan_down = {{7, 0, 4, false}, {9, 0, 8, true}};
    const std::vector<Access> lte_down = {{7, 0, 4, true}, {9, 0, 8, false}};
    const Profile& pr = p.profiles[0];
    CHECK(decide(p, pr, tcp(443), both).bid == 7);
    CHECK(decide(p, pr, udp(5060), both).bid == 9);
    CHECK(decide(p, pr, tcp(873), both).bid == 7);
    CHECK(decide(p, pr, tcp(443), wlan_down).bid == 9);
    CHECK(decide(p, pr, udp(5060), wlan_down).bid == 9);
    CHECK(decide(p, pr, tcp(873), wlan_down).kind == Decision::Kind::kStripe);
    CHECK(decide(p, pr, tcp(443), lte_down).bid == 7);
    CHECK(decide(p, pr, udp(5060), lte_down).bid == 7);
    CHECK(decide(p, pr, tcp(873), lte_down).bid == 7);
}

TEST_CASE("classifier fields: prefixes both ways, DSCP, SPI, IPv4", "[policy]") {
    Classifier c;
    c.remote_prefixes = {*parse_prefix("198.51.100.0/24")};
    c.local_prefixes = {*parse_prefix("192.0.2.0/25")};
    FlowKey k;
    k.local = v4("192.0.2.7");
    k.remote = v4("198.51.100.200");
    CHECK(c.matches(k));
    k.remote = v4("198.51.101.1");
    CHECK_FALSE(c.matches(k));
    k.remote = v4("198.51.100.1");
    k.local = v4("192.0.2.200");  // outside /25
    CHECK_FALSE(c.matches(k));
    // An IPv6 packet never matches an IPv4 prefix.
    k.local = v6("2001:db8::7");
    CHECK_FALSE(c.matches(k));

    Classifier d;
    d.dscp = {46, 34};
    k.dscp = 46;
    CHECK(d.matches(k));
    k.dscp = 0;
    CHECK_FALSE(d.matches(k));

    Classifier s;
    s.protocol = kProtoEsp;
    s.spi = 0xdeadbeef;
    CHECK(s.matches(esp(0xdeadbeef)));
    CHECK_FALSE(s.matches(esp(0xdeadbeee)));
    FlowKey no_spi = esp(1);
    no_spi.spi.reset();
    CHECK_FALSE(s.matches(no_spi));
    CHECK(Classifier{}.matches(tcp(1)));  // empty classifier: everything
}

TEST_CASE("priorities decide overlaps; equal priorities keep file order", "[policy]") {
    Policy p;
    p.labels = {{"A", 1, std::nullopt}, {"B", 2, std::nullopt}};
    p.applications = {{"web", {proto_ports(kProtoTcp, {{80, 80}})}},
                      {"any-tcp", {Classifier{kProtoTcp, {}, {}, {}, {}, {}, {}}}}};
    Profile prof{"x", {}};
    prof.rules = {{1, {access(1), kDropStep}, 0}, {0, {access(0), kDropStep}, 0}};
    p.profiles.push_back(prof);
    // File order: any-tcp first, so web traffic goes to B.
    CHECK(decide(p, p.profiles[0], tcp(80), kBoth).bid == 2);
    // web with a higher priority wins its overlap.
    p.profiles[0].rules[1].priority = 10;
    sort_rules(p.profiles[0]);
    CHECK(decide(p, p.profiles[0], tcp(80), kBoth).bid == 1);
    CHECK(decide(p, p.profiles[0], tcp(81), kBoth).bid == 2);
}

TEST_CASE("several live paths with one label: the lowest BID, so a flow stays put", "[policy]") {
    Policy p = example();
    const std::vector<Access> two_lte = {{5, 2, 8, true}, {3, 2, 8, true}, {1, 1, 3, true}};
    CHECK(decide(p, p.profiles[0], tcp(80), two_lte).bid == 3);
}

TEST_CASE("describe() names the rule and the step", "[policy]") {
    const Policy p = example();
    CHECK(describe(p, p.profiles[0].rules[0]) == "HTTP -> BLUE, RED, DROP");
    CHECK(describe(p, p.profiles[0], decide(p, p.profiles[0], tcp(80), kLteDown)) ==
          "path bid=1 (rule 1: HTTP -> BLUE, RED, DROP; step 2 = RED)");
    CHECK(describe(p, p.profiles[0], Decision{}) == "stripe (no rule matched)");
    CHECK(describe(p.labels[1]) == "BLUE: if_label=2");
    CHECK(describe(p.applications[1]) == "IPsec: esp | udp remote_ports=500,4500");
    CHECK(describe(p.applications[3]) ==
          "SIP/RTP: udp remote_ports=5060-5061 | udp local_ports=10000-20000");
    Application v4{"lan", {Classifier{}}};
    v4.any_of[0].remote_prefixes = {*parse_prefix("198.51.100.0/24"),
                                    *parse_prefix("2001:db8::/32")};
    v4.any_of[0].dscp = {46};
    v4.any_of[0].spi = 255;
    CHECK(describe(v4) == "lan: remote=198.51.100.0/24,2001:db8::/32 dscp=46 spi=0xff");
    CHECK(describe(Application{"all", {Classifier{}}}) == "all: any");
}

TEST_CASE("port lists and prefixes: strict text", "[policy][hostile]") {
    CHECK(parse_ports("80") == std::vector<PortRange>{{80, 80}});
    CHECK(parse_ports("80,443,8000-8080") ==
          std::vector<PortRange>{{80, 80}, {443, 443}, {8000, 8080}});
    CHECK(parse_ports("0-65535") == std::vector<PortRange>{{0, 65535}});
    for (const char* bad :
         {"", ",", "80,", ",80", "65536", "080", "8080-80", "-", "1-", "-1", "1--2", " 80", "80 ",
          "0x50", "+80", "99999999999999999999", "80,,443", "1-2-3"}) {
        INFO(bad);
        CHECK_FALSE(parse_ports(bad).has_value());
    }
    CHECK(parse_prefix("2001:db8::/32")->length == 32);
    CHECK(parse_prefix("192.0.2.0/24")->length == 120);
    CHECK(parse_prefix("192.0.2.1")->length == 128);
    CHECK(parse_prefix("2001:db8::1")->length == 128);
    for (const char* bad : {"", "/", "2001:db8::1/32", "192.0.2.1/24", "192.0.2.0/33",
                            "2001:db8::/129", "nonsense", "192.0.2.0/", "/24"}) {
        INFO(bad);
        CHECK_FALSE(parse_prefix(bad).has_value());
    }
}
