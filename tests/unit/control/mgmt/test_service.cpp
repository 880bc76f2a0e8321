// ManagementService handlers against a real BindingCache behind CacheBackend.
#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <set>

#include <google/protobuf/text_format.h>

#include "core/policy_edit.hpp"
#include "hag/log/log.hpp"
#include "hag/mh/flow_binding.hpp"
#include "mgmt/cache_backend.hpp"
#include "mgmt/convert.hpp"
#include "mgmt/service.hpp"

using namespace hag::control;
using namespace hag::control::mgmt;

namespace {

Session make_session(const std::string& nai, std::uint8_t n, int paths) {
    Session s;
    s.nai = nai;
    s.home_prefixes.push_back(*parse_prefix("2001:db8:" + std::to_string(n) + "::/64"));
    s.uplink_gre_key = 0x1000 + n;
    for (int i = 1; i <= paths; ++i) {
        Path p;
        p.bid = static_cast<std::uint16_t>(n * 10 + i);  // (MAG, BID) is unique
        p.mag_id = "mag" + std::to_string(i);
        p.coa = *parse_coa("2001:db8:ff" + std::to_string(i) + "::" + std::to_string(n));
        p.access_technology = static_cast<std::uint8_t>(i == 1 ? 3 : 8);
        p.downlink_gre_key = 0x2000u + n * 16 + i;
        p.expires_at = 100 + i;
        s.paths.push_back(p);
    }
    return s;
}

struct Fixture {
    BindingCache cache;
    std::vector<std::pair<std::string, std::uint16_t>> revoked;
    CacheBackend backend{cache,
                         [this](const Session& s, const Path& p) {
                             revoked.emplace_back(s.nai, p.bid);
                             return true;
                         },
                         [] { return Seconds{40}; }};
    ManagementService svc{backend};
    grpc::ServerContext ctx;

    Fixture() {
        backend.with_cache([](BindingCache& c) {
            REQUIRE(c.insert(make_session("alice@example.net", 1, 2)));
            REQUIRE(c.insert(make_session("bob@example.net", 2, 1)));
            REQUIRE(c.insert(make_session("carol@example.net", 3, 1)));
            return 0;
        });
    }
};

}  // namespace

TEST_CASE("parse_prefix and parse_coa accept valid text and reject the rest") {
    auto p = parse_prefix("2001:db8:1::/64");
    REQUIRE(p);
    CHECK(p->length == 64);
    CHECK(p->addr[0] == 0x20);
    CHECK(p->addr[5] == 0x01);
    for (const char* bad :
         {"", "/64", "2001:db8::", "2001:db8::/", "2001:db8::/129", "2001:db8::/64x",
          "2001:db8::/-1", "nonsense/64", "10.0.0.0/33", "10.0.0/8"}) {
        CHECK_FALSE(parse_prefix(bad));
    }
    // An IPv4 home address or prefix (RFC 5844) is held IPv4-mapped, as in the binding cache.
    auto p4 = parse_prefix("203.0.113.130/32");
    REQUIRE(p4);
    CHECK(p4->length == 128);
    CHECK(to_string(*p4) == "203.0.113.130/32");
    auto c4 = parse_coa("192.0.2.7");
    REQUIRE(c4);
    CHECK(c4->is_ipv4());
    CHECK(to_string(*c4) == "192.0.2.7");
    CHECK(parse_coa("2001:db8::1"));
    CHECK_FALSE(parse_coa("2001:db8::1::2"));
    CHECK_FALSE(parse_coa("192.0.2.300"));
}

TEST_CASE("ListBindings returns all sessions with paths converted") {
    Fixture f;
    hag::v1::ListBindingsRequest req;
    hag::v1::ListBindingsResponse resp;
    REQUIRE(f.svc.ListBindings(&f.ctx, &req, &resp).ok());
    CHECK(resp.total_sessions() == 3);
    REQUIRE(resp.bindings_size() == 3);
    CHECK(resp.next_page_token().empty());
    const hag::v1::Binding* alice = nullptr;
    for (const auto& b : resp.bindings()) {
        if (b.nai() == "alice@example.net") {
            alice = &b;
        }
    }
    REQUIRE(alice != nullptr);
    REQUIRE(alice->home_prefixes_size() == 1);
    CHECK(alice->home_prefixes(0) == "2001:db8:1::/64");
    CHECK(alice->uplink_gre_key() == 0x1001);
    REQUIRE(alice->paths_size() == 2);
    CHECK(alice->paths(0).bid() == 11);
    CHECK(alice->paths(0).mag_id() == "mag1");
    CHECK(alice->paths(0).coa() == "2001:db8:ff1::1");
    CHECK(alice->paths(0).access_technology() == 3);
    CHECK(alice->paths(0).downlink_gre_key() == 0x2011);
    CHECK(alice->paths(0).expires_in_seconds() == 61);
    CHECK(alice->paths(1).expires_in_seconds() == 62);
}

TEST_CASE("ListBindings filters by NAI, prefix, MAG and CoA") {
    Fixture f;
    auto run = [&](auto set) {
        hag::v1::ListBindingsRequest req;
        set(req);
        hag::v1::ListBindingsResponse resp;
        REQUIRE(f.svc.ListBindings(&f.ctx, &req, &resp).ok());
        std::vector<std::string> nais;
        for (const auto& b : resp.bindings()) {
            nais.push_back(b.nai());
        }
        std::sort(nais.begin(), nais.end());
        return nais;
    };
    using V = std::vector<std::string>;
    CHECK(run([](auto& r) { r.set_nai("bob@example.net"); }) == V{"bob@example.net"});
    CHECK(run([](auto& r) { r.set_nai("nobody"); }).empty());
    CHECK(run([](auto& r) { r.set_prefix("2001:db8:3::/64"); }) == V{"carol@example.net"});
    CHECK(run([](auto& r) { r.set_prefix("2001:db8:3::/56"); }).empty());
    CHECK(run([](auto& r) { r.set_mag("mag2"); }) == V{"alice@example.net"});
    CHECK(run([](auto& r) { r.set_mag("mag1"); }) ==
          V{"alice@example.net", "bob@example.net", "carol@example.net"});
    CHECK(run([](auto& r) { r.set_coa("2001:db8:ff1::2"); }) == V{"bob@example.net"});
    CHECK(run([](auto& r) {
              r.set_nai("bob@example.net");
              r.set_mag("mag2");
          }).empty());
}

TEST_CASE("ListBindings pages through every session exactly once") {
    BindingCache cache;
    CacheBackend backend(cache, nullptr, [] { return Seconds{0}; });
    ManagementService svc(backend);
    grpc::ServerContext ctx;
    constexpr int kN = 2500;
    backend.with_cache([&](BindingCache& c) {
        for (int i = 0; i < kN; ++i) {
            Session s;
            s.nai = "user" + std::to_string(i);
            Prefix p;
            p.addr = {0x20,
                      0x01,
                      0x0d,
                      0xb8,
                      static_cast<std::uint8_t>(i >> 8),
                      static_cast<std::uint8_t>(i & 0xff)};
            p.length = 64;
            s.home_prefixes.push_back(p);
            Path path;
            path.bid = static_cast<std::uint16_t>(i + 1);
            path.mag_id = fmt::format("m{}", i % 7);
            s.paths.push_back(path);
            REQUIRE(c.insert(s));
        }
        return 0;
    });
    for (std::uint32_t page_size : {1000u, 999u}) {
        std::set<std::string> seen;
        hag::v1::ListBindingsRequest req;
        req.set_page_size(page_size);
        int pages = 0;
        do {
            hag::v1::ListBindingsResponse resp;
            REQUIRE(svc.ListBindings(&ctx, &req, &resp).ok());
            CHECK(resp.bindings_size() <= static_cast<int>(page_size));
            for (const auto& b : resp.bindings()) {
                CHECK(seen.insert(b.nai()).second);
            }
            req.set_page_token(resp.next_page_token());
            REQUIRE(++pages < 100);
        } while (!req.page_token().empty());
        CHECK(seen.size() == kN);
    }
    // A filtered walk (MAG) also pages and finds each match once.
    std::set<std::string> seen;
    hag::v1::ListBindingsRequest req;
    req.set_mag("m3");
    req.set_page_size(50);
    int pages = 0;
    do {
        hag::v1::ListBindingsResponse resp;
        REQUIRE(svc.ListBindings(&ctx, &req, &resp).ok());
        for (const auto& b : resp.bindings()) {
            CHECK(b.paths(0).mag_id() == "m3");
            CHECK(seen.insert(b.nai()).second);
        }
        req.set_page_token(resp.next_page_token());
        REQUIRE(++pages < 1000);
    } while (!req.page_token().empty());
    CHECK(seen.size() == (kN + 3) / 7);
}

TEST_CASE("ListBindings rejects bad fields with INVALID_ARGUMENT") {
    Fixture f;
    auto code = [&](auto set) {
        hag::v1::ListBindingsRequest req;
        set(req);
        hag::v1::ListBindingsResponse resp;
        auto s = f.svc.ListBindings(&f.ctx, &req, &resp);
        CHECK(resp.bindings_size() == 0);
        return std::make_pair(s.error_code(), s.error_message());
    };
    auto [c1, m1] = code([](auto& r) { r.set_prefix("2001:db8::/200"); });
    CHECK(c1 == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(m1.find("prefix") != std::string::npos);
    auto [c2, m2] = code([](auto& r) { r.set_coa("not-an-address"); });
    CHECK(c2 == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(m2.find("coa") != std::string::npos);
    auto [c3, m3] = code([](auto& r) { r.set_page_size(kMaxPageSize + 1); });
    CHECK(c3 == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(m3.find("page_size") != std::string::npos);
    for (const char* bad : {"zz", "-1", "0", " 1", "1 ", "ffffffffffffffffffff"}) {
        auto [c4, m4] = code([&](auto& r) { r.set_page_token(bad); });
        CHECK(c4 == grpc::StatusCode::INVALID_ARGUMENT);
        CHECK(m4.find("page_token") != std::string::npos);
    }
}

TEST_CASE("GetBinding returns one session or NOT_FOUND") {
    Fixture f;
    hag::v1::GetBindingRequest req;
    hag::v1::Binding b;
    req.set_nai("alice@example.net");
    REQUIRE(f.svc.GetBinding(&f.ctx, &req, &b).ok());
    CHECK(b.nai() == "alice@example.net");
    CHECK(b.paths_size() == 2);
    req.set_nai("mallory@example.net");
    CHECK(f.svc.GetBinding(&f.ctx, &req, &b).error_code() == grpc::StatusCode::NOT_FOUND);
    req.set_nai("");
    CHECK(f.svc.GetBinding(&f.ctx, &req, &b).error_code() == grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_CASE("DeleteBinding removes one path or the session and revokes each removed path") {
    Fixture f;
    hag::v1::DeleteBindingRequest req;
    hag::v1::DeleteBindingResponse resp;
    req.set_nai("alice@example.net");
    req.set_bid(12);
    REQUIRE(f.svc.DeleteBinding(&f.ctx, &req, &resp).ok());
    CHECK(resp.paths_removed() == 1);
    CHECK_FALSE(resp.session_removed());
    CHECK(resp.revocations_sent() == 1);
    CHECK(f.revoked ==
          std::vector<std::pair<std::string, std::uint16_t>>{{"alice@example.net", 12}});
    REQUIRE(f.backend.get("alice@example.net"));
    CHECK(f.backend.get("alice@example.net")->paths.size() == 1);

    req.set_bid(12);
    CHECK(f.svc.DeleteBinding(&f.ctx, &req, &resp).error_code() == grpc::StatusCode::NOT_FOUND);
    req.set_bid(70000);
    CHECK(f.svc.DeleteBinding(&f.ctx, &req, &resp).error_code() ==
          grpc::StatusCode::INVALID_ARGUMENT);

    req.set_nai("bob@example.net");
    req.set_bid(0);
    resp.Clear();
    REQUIRE(f.svc.DeleteBinding(&f.ctx, &req, &resp).ok());
    CHECK(resp.paths_removed() == 1);
    CHECK(resp.session_removed());
    CHECK_FALSE(f.backend.get("bob@example.net"));
    CHECK(f.svc.DeleteBinding(&f.ctx, &req, &resp).error_code() == grpc::StatusCode::NOT_FOUND);

    hag::v1::Counters counters;
    REQUIRE(f.svc.GetCounters(&f.ctx, nullptr, &counters).ok());
    std::map<std::string, std::uint64_t> m;
    for (const auto& c : counters.counters()) {
        m[c.name()] = c.value();
    }
    CHECK(m["bindings.sessions"] == 2);
    CHECK(m["mgmt.deletes"] == 2);
    CHECK(m["mgmt.revocations_sent"] == 2);
}

namespace {

// RED = DSL (ATT 3), BLUE = LTE (ATT 8); alice's paths are bid 11 (DSL) and 12 (LTE).
std::shared_ptr<const PolicySnapshot> example_policy() {
    hag::v1::ControlConfig cfg;
    REQUIRE(google::protobuf::TextFormat::ParseFromString(R"(
policy {
  labels { name: "RED" access_technology: 3 }
  labels { name: "BLUE" access_technology: 8 }
  applications { name: "HTTP" match { protocol: 6 remote_ports: "80,443" } }
  applications { name: "SSH" match { protocol: 6 remote_ports: "22" } }
  applications { name: "VoIP" match { protocol: 17 remote_ports: "5060" } }
  profiles { name: "home"
    rules { application: "HTTP" preference: "BLUE" preference: "RED" preference: "DROP" }
    rules { application: "SSH" preference: "DROP" }
    rules { application: "VoIP" preference: "BLUE" preference: "DROP" } }
  profiles { name: "dsl-only"
    rules { application: "HTTP" preference: "RED" preference: "STRIPE" } }
  default_profile: "home"
}
subscribers { nai: "bob@example.net" profile { policy_profile: "dsl-only" } }
)",
                                                          &cfg));
    auto snap = PolicySnapshot::build(cfg);
    REQUIRE(snap);
    return snap;
}

}  // namespace

TEST_CASE("GetPolicy shows the policy, and a subscriber's rules resolved against its paths") {
    Fixture f;
    hag::v1::GetPolicyRequest req;
    hag::v1::PolicyView v;
    CHECK(f.svc.GetPolicy(&f.ctx, &req, &v).error_code() == grpc::StatusCode::FAILED_PRECONDITION);

    f.backend.set_policy(example_policy());
    v.Clear();
    REQUIRE(f.svc.GetPolicy(&f.ctx, &req, &v).ok());
    REQUIRE(v.profiles_size() == 2);
    CHECK(v.default_profile() == "home");
    CHECK(v.labels(1) == "BLUE: access_technology=8");
    CHECK(v.applications(0) == "HTTP: tcp remote_ports=80,443");
    CHECK(v.profiles(0).rules(0).text() == "HTTP -> BLUE, RED, DROP");

    req.set_nai("alice@example.net");
    v.Clear();
    REQUIRE(f.svc.GetPolicy(&f.ctx, &req, &v).ok());
    REQUIRE(v.profiles_size() == 1);
    CHECK(v.profiles(0).name() == "home");
    CHECK(v.profiles(0).rules(0).resolved() == "path bid=12 (BLUE)");
    CHECK(v.profiles(0).rules(0).bid() == 12);
    CHECK(v.profiles(0).rules(1).resolved() == "DROP");

    // LTE goes down (heartbeats): HTTP falls back to DSL, VoIP is dropped.
    f.backend.with_cache([](BindingCache& c) {
        auto s = *c.find("alice@example.net");
        for (auto& p : s.paths) {
            p.live = p.bid != 12;
        }
        REQUIRE(c.update(s));
        return 0;
    });
    v.Clear();
    REQUIRE(f.svc.GetPolicy(&f.ctx, &req, &v).ok());
    CHECK(v.profiles(0).rules(0).resolved() == "path bid=11 (RED)");
    CHECK(v.profiles(0).rules(2).resolved() == "DROP");

    // bob has his own profile.
    req.set_nai("bob@example.net");
    v.Clear();
    REQUIRE(f.svc.GetPolicy(&f.ctx, &req, &v).ok());
    CHECK(v.profiles(0).name() == "dsl-only");
    CHECK(v.profiles(0).rules(0).resolved() == "path bid=21 (RED)");

    req.set_nai("nobody@example.net");
    CHECK(f.svc.GetPolicy(&f.ctx, &req, &v).error_code() == grpc::StatusCode::NOT_FOUND);
}

TEST_CASE("EvaluatePolicy decides for one packet and validates its fields") {
    Fixture f;
    f.backend.set_policy(example_policy());
    hag::v1::EvaluatePolicyRequest req;
    hag::v1::PolicyDecision d;
    req.set_nai("alice@example.net");
    req.set_protocol(6);
    req.set_remote_port(443);
    REQUIRE(f.svc.EvaluatePolicy(&f.ctx, &req, &d).ok());
    CHECK(d.action() == "path");
    CHECK(d.bid() == 12);
    CHECK(d.profile() == "home");
    CHECK(d.text() == "path bid=12 (rule 1: HTTP -> BLUE, RED, DROP; step 1 = BLUE)");

    req.set_remote_port(22);
    REQUIRE(f.svc.EvaluatePolicy(&f.ctx, &req, &d).ok());
    CHECK(d.action() == "drop");
    req.set_remote_port(25);
    REQUIRE(f.svc.EvaluatePolicy(&f.ctx, &req, &d).ok());
    CHECK(d.action() == "stripe");
    CHECK(d.text() == "stripe (no rule matched)");

    hag::v1::EvaluatePolicyRequest bad = req;
    bad.set_protocol(256);
    CHECK(f.svc.EvaluatePolicy(&f.ctx, &bad, &d).error_code() ==
          grpc::StatusCode::INVALID_ARGUMENT);
    bad = req;
    bad.set_dscp(64);
    CHECK(f.svc.EvaluatePolicy(&f.ctx, &bad, &d).error_code() ==
          grpc::StatusCode::INVALID_ARGUMENT);
    bad = req;
    bad.set_remote_port(70000);
    CHECK(f.svc.EvaluatePolicy(&f.ctx, &bad, &d).error_code() ==
          grpc::StatusCode::INVALID_ARGUMENT);
    bad = req;
    bad.set_remote_address("not-an-address");
    CHECK(f.svc.EvaluatePolicy(&f.ctx, &bad, &d).error_code() ==
          grpc::StatusCode::INVALID_ARGUMENT);
    bad = req;
    bad.clear_nai();
    CHECK(f.svc.EvaluatePolicy(&f.ctx, &bad, &d).error_code() ==
          grpc::StatusCode::INVALID_ARGUMENT);
    bad = req;
    bad.set_nai("nobody@example.net");
    CHECK(f.svc.EvaluatePolicy(&f.ctx, &bad, &d).error_code() == grpc::StatusCode::NOT_FOUND);
}

TEST_CASE("SetLogLevel reports, changes and validates the log level") {
    Fixture f;
    hag::log::init("test-mgmt", spdlog::level::info);
    hag::v1::SetLogLevelRequest req;
    hag::v1::LogLevelReply r;
    REQUIRE(f.svc.SetLogLevel(&f.ctx, &req, &r).ok());  // empty: report only
    CHECK(r.level() == "info");
    CHECK(r.previous() == "info");

    req.set_level("trace");
    REQUIRE(f.svc.SetLogLevel(&f.ctx, &req, &r).ok());
    CHECK(r.level() == "trace");
    CHECK(r.previous() == "info");
    CHECK(spdlog::default_logger_raw()->should_log(spdlog::level::trace));

    req.set_level("TRACE");  // names are lower case
    auto s = f.svc.SetLogLevel(&f.ctx, &req, &r);
    CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(s.error_message().find("TRACE") != std::string::npos);
    CHECK(hag::log::current_level() == "trace");  // unchanged
    hag::log::init("test-mgmt", spdlog::level::info);
}

TEST_CASE("EditPolicy: run-time edits through the management API, and the session views") {
    Fixture f;
    hag::v1::ControlConfig cfg;
    REQUIRE(google::protobuf::TextFormat::ParseFromString(R"(
policy {
  labels { name: "RED" access_technology: 3 }
  labels { name: "BLUE" access_technology: 8 }
  applications { name: "HTTP" match { protocol: 6 remote_ports: "80,443" } }
  applications { name: "SSH" match { protocol: 6 remote_ports: "22" } }
  profiles { name: "home"
    rules { application: "HTTP" preference: "BLUE" preference: "RED" preference: "DROP" }
    rules { application: "SSH" preference: "DROP" } }
  default_profile: "home"
}
)",
                                                          &cfg));
    // Without an editor the server refuses edits.
    hag::v1::EditPolicyRequest req;
    hag::v1::EditPolicyReply r;
    REQUIRE(google::protobuf::TextFormat::ParseFromString(
        R"(mode: REPLACE rule { profile: "home" rule { application: "HTTP" preference: "RED"
           preference: "DROP" } })",
        &req));
    CHECK(f.svc.EditPolicy(&f.ctx, &req, &r).error_code() == grpc::StatusCode::UNIMPLEMENTED);

    int installs = 0;
    PolicyEditor editor(
        [&](std::shared_ptr<const PolicySnapshot> p) {
            ++installs;
            f.backend.set_policy(std::move(p));
        },
        "");
    REQUIRE(editor.start(cfg));
    f.backend.set_policy_editor(&editor);

    hag::v1::EvaluatePolicyRequest ev;
    ev.set_nai("alice@example.net");
    ev.set_protocol(6);
    ev.set_remote_port(80);
    hag::v1::PolicyDecision d;
    REQUIRE(f.svc.EvaluatePolicy(&f.ctx, &ev, &d).ok());
    CHECK(d.bid() == 12);  // BLUE (LTE)

    // HTTP moved to RED: the next evaluation sees it, the view says it was edited.
    REQUIRE(f.svc.EditPolicy(&f.ctx, &req, &r).ok());
    CHECK(r.version() == 2);
    CHECK(r.summary() == "rule HTTP of profile home replaced");
    CHECK(installs == 2);
    REQUIRE(f.svc.EvaluatePolicy(&f.ctx, &ev, &d).ok());
    CHECK(d.bid() == 11);  // RED (DSL)
    hag::v1::GetPolicyRequest gq;
    hag::v1::PolicyView v;
    REQUIRE(f.svc.GetPolicy(&f.ctx, &gq, &v).ok());
    CHECK(v.version() == 2);
    REQUIRE(v.runtime_edits_size() == 1);
    CHECK(v.runtime_edits(0) == "profile home replaced");
    CHECK(v.profiles(0).runtime());
    CHECK_FALSE(v.profiles(0).counters());  // no data plane here

    // Refusals map to status codes, with the field named.
    const auto status = [&](const char* t) {
        hag::v1::EditPolicyRequest e;
        REQUIRE(google::protobuf::TextFormat::ParseFromString(t, &e));
        hag::v1::EditPolicyReply rr;
        return f.svc.EditPolicy(&f.ctx, &e, &rr);
    };
    auto st =
        status(R"(mode: ADD application { name: "X" match { protocol: 6 remote_ports: "0x50" } })");
    CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(st.error_message().find("remote_ports '0x50'") != std::string::npos);
    CHECK(status(R"(mode: ADD application { name: "SSH" match { protocol: 6 } })").error_code() ==
          grpc::StatusCode::ALREADY_EXISTS);
    CHECK(status(R"(mode: REMOVE profile { name: "nope" })").error_code() ==
          grpc::StatusCode::NOT_FOUND);
    st = status(R"(mode: REMOVE profile { name: "home" })");
    CHECK(st.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
    CHECK(st.error_message().find("default profile") != std::string::npos);
    CHECK(status(R"(mode: SET default_profile: "home" expected_version: 1)").error_code() ==
          grpc::StatusCode::ABORTED);
    CHECK(installs == 2);

    // A session by id: without flow bindings its profile is the operator's; with them, the
    // merged flows/<id> profile the data plane classifies with.
    const auto id = f.backend.session_id("alice@example.net");
    REQUIRE(id);
    gq.set_session(*id);
    v.Clear();
    REQUIRE(f.svc.GetPolicy(&f.ctx, &gq, &v).ok());
    CHECK(v.nai() == "alice@example.net");
    CHECK_FALSE(v.merged());
    CHECK(v.profiles(0).name() == "home");

    f.backend.with_cache([](BindingCache& c) {
        auto s = *c.find("alice@example.net");
        FlowBindingEntry fb;
        fb.fid = 1;
        fb.priority = 1;
        fb.bids = {12};
        // IPv4 selector (RFC 6088 format 1) of downlink TCP from port 80.
        hag::mh::TrafficSelector ts;
        ts.protocol = hag::mh::Range<std::uint8_t>{6, 6};
        ts.source_port = hag::mh::Range<std::uint16_t>{80, 80};
        const auto bytes = hag::mh::encode_traffic_selector(ts);
        fb.selector.assign(bytes.begin(), bytes.end());
        s.flows.push_back(fb);
        REQUIRE(c.update(s));
        return 0;
    });
    v.Clear();
    REQUIRE(f.svc.GetPolicy(&f.ctx, &gq, &v).ok());
    CHECK(v.merged());
    CHECK(v.profiles(0).name() == "flows/" + std::to_string(*id));
    REQUIRE(v.profiles(0).rules_size() == 3);  // flow 1, then home's HTTP and SSH
    CHECK(v.profiles(0).rules(0).application() == "flow 1");
    CHECK(v.profiles(0).rules(0).resolved() == "path bid=12 (bid 12)");
    // policy test --session: HTTP from port 80 follows the binding (BLUE, bid 12), not the
    // operator's edited rule (RED).
    hag::v1::EvaluatePolicyRequest es = ev;
    es.clear_nai();
    es.set_session(*id);
    REQUIRE(f.svc.EvaluatePolicy(&f.ctx, &es, &d).ok());
    CHECK(d.bid() == 12);
    CHECK(d.profile() == "flows/" + std::to_string(*id));
    REQUIRE(f.svc.EvaluatePolicy(&f.ctx, &ev, &d).ok());  // by NAI: the operator's profile
    CHECK(d.bid() == 11);
    es.set_session(9999);
    CHECK(f.svc.EvaluatePolicy(&f.ctx, &es, &d).error_code() == grpc::StatusCode::NOT_FOUND);
}
