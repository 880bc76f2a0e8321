// hagctl output for given responses: tables, JSON, error lines and exit codes.
#include <google/protobuf/util/json_util.h>

#include <catch2/catch.hpp>

#include "format.hpp"

using namespace hag::hagctl;

namespace {

hag::v1::ListBindingsResponse sample() {
    hag::v1::ListBindingsResponse r;
    auto* b = r.add_bindings();
    b->set_nai("alice@example.net");
    b->add_home_prefixes("2001:db8:1::/64");
    b->set_uplink_gre_key(0x1001);
    auto* p1 = b->add_paths();
    p1->set_bid(1);
    p1->set_mag_id("mag-dsl");
    p1->set_coa("2001:db8:a::1");
    p1->set_access_technology(3);
    p1->set_downlink_gre_key(0x2001);
    p1->set_live(true);
    p1->set_expires_in_seconds(3600);
    auto* p2 = b->add_paths();
    p2->set_bid(2);
    p2->set_mag_id("mag-lte");
    p2->set_coa("192.0.2.7");
    p2->set_access_technology(8);
    p2->set_downlink_gre_key(0x2002);
    p2->set_if_label(2);
    p2->set_expires_in_seconds(10);
    r.set_total_sessions(5);
    r.set_next_page_token("1f");
    return r;
}

}  // namespace

TEST_CASE("render_table aligns columns") {
    CHECK(render_table({{"A", "BB", "C"}, {"xxx", "y", "z"}}) == "A    BB  C\nxxx  y   z\n");
    CHECK(render_table({}) == "");
}

TEST_CASE("bindings_table prints one row per path and the paging hint") {
    const std::string t = bindings_table(sample());
    const std::string expected =
        "NAI                HOME PREFIX      UL-KEY      BID  ACCESS       MAG      COA          "
        "  DL-KEY      LABEL  LIVE  EXPIRES\n"
        "alice@example.net  2001:db8:1::/64  0x00001001  1    ethernet     mag-dsl  2001:db8:a::1"
        "  0x00002001  0      yes   3600s\n"
        "                                                2    3gpp-eutran  mag-lte  192.0.2.7    "
        "  0x00002002  2      no    10s\n"
        "1 binding(s) shown, 5 session(s) in the cache\n"
        "more: --page-token 1f\n";
    CHECK(t == expected);
    hag::v1::ListBindingsResponse empty;
    empty.set_total_sessions(3);
    CHECK(bindings_table(empty) == "no bindings match (3 session(s) in the cache)\n");
}

TEST_CASE("bindings_table and binding_detail show the serving node and the anchor") {
    auto r = sample();
    r.mutable_bindings(0)->set_serving_node("hag-b");
    r.mutable_bindings(0)->set_anchor_node("hag-a");
    const std::string t = bindings_table(r);
    CHECK(t.rfind("NAI                HOME PREFIX      UL-KEY      NODE   ANCHOR  BID  ACCESS",
                  0) == 0);
    CHECK(t.find("alice@example.net  2001:db8:1::/64  0x00001001  hag-b  hag-a   1    ethernet") !=
          std::string::npos);
    // The second path's row leaves every binding column blank.
    CHECK(
        t.find(
            "\n                                                               2    3gpp-eutran") !=
        std::string::npos);
    const std::string d = binding_detail(r.bindings(0));
    CHECK(d.find("Served by node:  hag-b\n") != std::string::npos);
    CHECK(d.find("Anchor node:     hag-a\n") != std::string::npos);
    // Without the cluster store: no such columns or rows.
    CHECK(bindings_table(sample()).find("NODE") == std::string::npos);
    CHECK(binding_detail(sample().bindings(0)).find("Served by") == std::string::npos);
}

TEST_CASE("distributed anchoring: ANCHOR per home prefix, prefix anchor rows, relay paths") {
    auto r = sample();
    auto* b = r.mutable_bindings(0);
    b->add_home_prefixes("2001:db8:2::/64");
    b->set_serving_node("hag-b");
    b->set_anchor_node("hag-b");
    auto* pa = b->add_prefix_anchors();
    pa->set_prefix("2001:db8:1::/64");
    pa->set_anchor_node("hag-a");
    pa->set_anchor_address("2001:db8::a");
    pa->set_uplink_key(0x3003);
    pa->set_downlink_key(0x4004);
    const std::string t = bindings_table(r);
    CHECK(t.find("2001:db8:1::/64,2001:db8:2::/64  0x00001001  hag-b  hag-a,hag-b  1") !=
          std::string::npos);
    const std::string d = binding_detail(r.bindings(0));
    CHECK(d.find("Prefix anchor:   2001:db8:1::/64 at hag-a (2001:db8::a), relayed: uplink key "
                 "0x00003003, downlink key 0x00004004\n") != std::string::npos);
    pa->set_uplink_key(0);
    CHECK(binding_detail(r.bindings(0)).find("(not registered there)") != std::string::npos);
    // At the anchor: the path of the node serving the subscriber.
    b->mutable_paths(0)->set_relay(true);
    b->mutable_paths(0)->set_mag_id("hag-b");
    CHECK(bindings_table(r).find("hag-b (hag node)") != std::string::npos);
}

TEST_CASE("binding_detail shows the session and its paths") {
    const std::string t = binding_detail(sample().bindings(0));
    CHECK(t.rfind("NAI:             alice@example.net\n", 0) == 0);
    CHECK(t.find("Home prefixes:   2001:db8:1::/64\n") != std::string::npos);
    CHECK(t.find("Uplink GRE key:  0x00001001\n") != std::string::npos);
    CHECK(t.find("Paths:           2\n") != std::string::npos);
    CHECK(t.find("\nBID  ACCESS       MAG      COA") != std::string::npos);
    CHECK(t.find("2    3gpp-eutran  mag-lte  192.0.2.7") != std::string::npos);
}

TEST_CASE("JSON output uses proto field names and round-trips") {
    const auto r = sample();
    const std::string j = to_json(r);
    CHECK(j.find("\"next_page_token\": \"1f\"") != std::string::npos);
    CHECK(j.find("\"downlink_gre_key\": 8194") != std::string::npos);
    CHECK(j.find("\"if_label\": 0") != std::string::npos);  // defaults printed
    CHECK(j.back() == '\n');
    hag::v1::ListBindingsResponse back;
    REQUIRE(google::protobuf::util::JsonStringToMessage(j, &back).ok());
    CHECK(back.SerializeAsString() == r.SerializeAsString());
    const std::string compact = to_json(r, false);
    CHECK(compact.find('\n') == compact.size() - 1);
}

TEST_CASE("event, counters and delete lines") {
    hag::v1::BindingEvent e;
    e.set_kind(hag::v1::BindingEvent::REMOVED);
    e.set_unix_time_ms(1700000000123);
    *e.mutable_binding() = sample().bindings(0);
    CHECK(event_line(e) ==
          "1700000000123 REMOVED nai=alice@example.net prefixes=2001:db8:1::/64 "
          "paths=[1@2001:db8:a::1 2@192.0.2.7]\n");
    hag::v1::Counters c;
    auto* x = c.add_counters();
    x->set_name("bindings.sessions");
    x->set_value(12);
    CHECK(counters_table(c) == "COUNTER            VALUE\nbindings.sessions  12\n");
    hag::v1::DeleteBindingResponse d;
    d.set_paths_removed(2);
    d.set_session_removed(true);
    d.set_revocations_sent(2);
    CHECK(delete_summary("bob", d) ==
          "bob: 2 path(s) removed, session removed, 2 revocation(s) sent\n");
}

TEST_CASE("failures map to one line and an exit code") {
    auto f = describe_failure({grpc::StatusCode::UNAVAILABLE, "connect failed"}, "unix:/x.sock");
    CHECK(f.exit_code == kExitUnreachable);
    CHECK(f.message == "hagctl: cannot reach hag-control at unix:/x.sock: connect failed");
    f = describe_failure({grpc::StatusCode::DEADLINE_EXCEEDED, ""}, "[::1]:50051");
    CHECK(f.exit_code == kExitUnreachable);
    CHECK(f.message.find("no answer before the deadline") != std::string::npos);
    f = describe_failure({grpc::StatusCode::NOT_FOUND, "no binding for NAI 'x'"}, "s");
    CHECK(f.exit_code == kExitError);
    CHECK(f.message == "hagctl: not found: no binding for NAI 'x'");
    f = describe_failure({grpc::StatusCode::INVALID_ARGUMENT, "prefix: bad"}, "s");
    CHECK(f.exit_code == kExitError);
    CHECK(f.message == "hagctl: invalid argument: prefix: bad");
    f = describe_failure({grpc::StatusCode::FAILED_PRECONDITION, "profile 'x' is in use"}, "s");
    CHECK(f.exit_code == kExitError);
    CHECK(f.message == "hagctl: refused: profile 'x' is in use");
    f = describe_failure({grpc::StatusCode::ALREADY_EXISTS, "application 'y' exists"}, "s");
    CHECK(f.message == "hagctl: already exists: application 'y' exists");
}

TEST_CASE("hagctl policy: counters, run-time edits, the --rule shorthand") {
    hag::v1::PolicyView v;
    v.set_nai("alice@example.net");
    v.set_has_profile(true);
    auto* p = v.add_profiles();
    p->set_name("home");
    p->set_counters(true);
    p->set_runtime(true);
    auto* r = p->add_rules();
    r->set_application("HTTP");
    r->add_preference("BLUE");
    r->add_preference("DROP");
    r->set_resolved("path bid=2 (BLUE)");
    r->set_hits(937);
    r->set_drops(4);
    const std::string t = policy_text(v);
    INFO(t);
    CHECK(t.find("subscriber alice@example.net, profile home (edited at run time)") == 0);
    CHECK(t.find("HITS  DROPS  UL-FORBIDDEN") != std::string::npos);
    CHECK(t.find("path bid=2 (BLUE)  937   4      0") != std::string::npos);

    v.clear_nai();
    v.set_version(3);
    v.add_runtime_edits("profile home replaced");
    r->set_text("HTTP -> BLUE, DROP");
    const std::string all = policy_text(v);
    INFO(all);
    CHECK(all.find("  HTTP -> BLUE, DROP   [hits 937 drops 4 uplink-forbidden 0]") !=
          std::string::npos);
    CHECK(all.find("policy version 3; run-time edits over the configuration file:\n  profile "
                   "home replaced") != std::string::npos);

    std::string why;
    auto rule = parse_rule_shorthand("SIP/RTP=BLUE,RED,DROP@-5", why);
    REQUIRE(rule);
    CHECK(rule->application() == "SIP/RTP");
    CHECK(rule->preference_size() == 3);
    CHECK(rule->priority() == -5);
    CHECK_FALSE(parse_rule_shorthand("HTTP", why));
    CHECK_FALSE(parse_rule_shorthand("=DROP", why));
    CHECK_FALSE(parse_rule_shorthand("HTTP=BLUE,,DROP", why));
    CHECK_FALSE(parse_rule_shorthand("HTTP=BLUE,", why));
    CHECK_FALSE(parse_rule_shorthand("HTTP=DROP@x", why));
    CHECK_FALSE(parse_rule_shorthand("HTTP=DROP@99999999999", why));
    CHECK_FALSE(parse_rule_shorthand("HTTP=@1", why));
}

TEST_CASE("hagctl dataplane: sessions, paths, status tables") {
    hag::v1::DpListReply r;
    auto* x = r.add_sessions();
    auto* s = x->mutable_session();
    s->set_id(7);
    s->set_nai("cpe1@example.net");
    s->set_uplink_key(0x101);
    s->add_prefixes("2001:db8:100::/64");
    for (int b = 1; b <= 2; ++b) {
        auto* p = s->add_paths();
        p->set_bid(static_cast<std::uint32_t>(b));
        p->set_live(b == 1);
        p->set_if_label(static_cast<std::uint32_t>(b));
        p->set_access_technology(b == 1 ? 3 : 8);
        p->set_downlink_key(0x2000u + static_cast<std::uint32_t>(b));
        p->set_weight_kbps(b == 1 ? 50000 : 0);
        p->set_local("2001:db8::1");
        p->set_care_of(b == 1 ? "2001:db8:a::2" : "192.0.2.7");
    }
    x->set_downlink_packets(12);
    x->set_uplink_bytes(3400);
    auto* ps = x->add_paths();
    ps->set_bid(1);
    ps->set_downlink_packets(9);
    ps->set_downlink_bytes(9000);
    ps = x->add_paths();
    ps->set_bid(2);
    ps->set_downlink_packets(3);
    ps->set_downlink_bytes(300);
    x->mutable_reorder()->set_lost(4);
    x->mutable_reorder()->set_timeouts(3);
    auto* pr = x->add_path_reorder();
    pr->set_bid(1);
    pr->set_seq_gaps(11);
    pr->set_reordered(22);
    pr->set_late(33);
    pr->set_timed_out(44);
    r.set_more(true);
    const auto t = dp_sessions_table(r);
    CHECK(t.find("ID  NAI               PREFIXES           UL-KEY      PATHS") == 0);
    CHECK(t.find("7   cpe1@example.net  2001:db8:100::/64  0x00000101  1/2 live  12") !=
          std::string::npos);
    CHECK(t.find("more: --after 7") != std::string::npos);
    const auto p = dp_paths_table(r);
    CHECK(p.find("7   cpe1@example.net  1    ethernet     1      yes   2001:db8::1  "
                 "2001:db8:a::2  0x00002001  50000 kbit/s") != std::string::npos);
    CHECK(p.find("192.0.2.7") != std::string::npos);
    // Striping and per-path counters: weighted (no rate, no preference), then the counters.
    CHECK(p.find("STRIPING  RATE  PREF  DL-PKTS  DL-BYTES  UL-PKTS  UL-BYTES") !=
          std::string::npos);
    CHECK(p.find("50000 kbit/s  weighted  -     -     9        9000      0        0") !=
          std::string::npos);
    CHECK(p.find("weighted  -     -     3        300") != std::string::npos);
    CHECK(t.find("weighted") != std::string::npos);
    s->set_striping(hag::v1::STRIPING_OVERFLOW);
    s->set_overflow_burst_bytes(20000);
    s->mutable_paths(1)->set_preference(1);
    const auto o = dp_paths_table(r);
    CHECK(o.find("overflow/20000B  50000 kbit/s  0     9") != std::string::npos);
    CHECK(o.find("overflow/20000B  unlimited     1     3") != std::string::npos);
    CHECK(p.find("UL-GAPS  UL-REORDERED  UL-LATE  UL-TIMED-OUT") != std::string::npos);
    CHECK(p.find("11       22            33       44") != std::string::npos);
    CHECK(t.find("UL-LOST  UL-TIMEOUTS  UL-DUPS") != std::string::npos);
    CHECK(dp_sessions_table({}) == "no sessions\n");
    CHECK(dp_paths_table({}) == "no paths\n");

    hag::v1::DpStatusReply st;
    st.set_sessions(3);
    st.set_max_sessions(1000);
    auto* c = st.add_counters();
    c->set_name("port.access.rx");
    c->set_value(5);
    CHECK(dp_status_table(st).find("Generation:        0 (never programmed)") != std::string::npos);
    CHECK(dp_status_table(st).find("3 of 1000") != std::string::npos);
    CHECK(dp_counters_table(st).find("port.access.rx  5") != std::string::npos);
}

TEST_CASE("hagctl dataplane check: in sync or DIFFERENT") {
    hag::v1::DataplaneSync ctl;
    ctl.set_configured(true);
    ctl.set_connected(true);
    ctl.set_generation(9);
    ctl.set_sessions(2);
    ctl.set_digest(0xabc);
    hag::v1::DigestReply dp;
    dp.set_generation(9);
    dp.set_sessions(2);
    dp.set_digest(0xabc);
    auto c = dp_sync_check(ctl, dp);
    CHECK(c.in_sync);
    CHECK(c.text == "in sync (2 sessions, digest 0000000000000abc, generation 9)\n");
    CHECK(c.json.find("\"in_sync\": true") != std::string::npos);
    dp.set_sessions(1);
    dp.set_digest(0xab);
    c = dp_sync_check(ctl, dp);
    CHECK_FALSE(c.in_sync);
    CHECK(c.text.rfind("DIFFERENT (control 2 sessions digest 0000000000000abc generation 9, data "
                       "plane 1 sessions digest 00000000000000ab generation 9)",
                       0) == 0);
    CHECK(c.json.find("\"in_sync\": false") != std::string::npos);
    // Same digests, but a session the data plane refused: not in sync.
    dp.set_sessions(2);
    dp.set_digest(0xabc);
    ctl.set_rejected(1);
    c = dp_sync_check(ctl, dp);
    CHECK_FALSE(c.in_sync);
    CHECK(c.text.find("1 session(s) refused") != std::string::npos);
}

TEST_CASE("unreachable data plane names hag-dataplane") {
    auto f = describe_failure({grpc::StatusCode::UNAVAILABLE, "connect failed"},
                              "unix:/run/hag/dataplane.sock", "hag-dataplane");
    CHECK(f.exit_code == kExitUnreachable);
    CHECK(f.message ==
          "hagctl: cannot reach hag-dataplane at unix:/run/hag/dataplane.sock: connect failed");
}

TEST_CASE("binding_detail shows the IPv4 home address and a NATed path") {
    auto b = sample().bindings(0);
    b.set_ipv4_home_address("203.0.113.130/32");
    b.mutable_paths(1)->set_nat(true);
    b.mutable_paths(1)->set_nat_port(40123);
    b.mutable_paths(1)->set_mag_coa("192.0.2.66");
    const std::string t = binding_detail(b);
    CHECK(t.find("IPv4 home address:  203.0.113.130/32\n") != std::string::npos);
    CHECK(t.find("192.0.2.7:40123 (NAT, MAG 192.0.2.66)") != std::string::npos);
}
