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
}
