// Binding cache session -> DpSession (control/dpclient/session_convert.hpp).
#include <catch2/catch.hpp>

#include <map>

#include "dpclient/programmed.hpp"
#include "dpclient/session_convert.hpp"
#include "hag/mh/flow_binding.hpp"
#include "hag/v1/dataplane_digest.hpp"
#include "hag/v1/policy_dp.hpp"
#include "mgmt/convert.hpp"

using namespace hag::control;

namespace {

Path path(std::uint16_t bid, const char* coa, const char* local) {
    Path p;
    p.bid = bid;
    p.mag_id = "mag";
    p.coa = *mgmt::parse_coa(coa);
    p.local = *mgmt::parse_coa(local);
    p.access_technology = bid == 1 ? 3 : 8;
    p.if_label = static_cast<std::uint8_t>(bid);
    p.downlink_gre_key = 0x2000u + bid;
    p.weight_kbps = 1000u * bid;
    p.live = bid != 3;
    p.last_sequence = 77;
    p.expires_at = 1234;
    return p;
}

Session session() {
    Session s;
    s.nai = "cpe1@example.net";
    s.home_prefixes = {*mgmt::parse_prefix("2001:db8:100::/64"),
                       *mgmt::parse_prefix("::ffff:192.0.2.8/125")};
    s.uplink_gre_key = 0x1001;
    s.last_sequence = 9;
    s.paths = {path(3, "2001:db8:c::2", "2001:db8::1"), path(1, "192.0.2.2", "192.0.2.1"),
               path(2, "2001:db8:b::2", "2001:db8::1")};
    return s;
}

}  // namespace

TEST_CASE("a session becomes a DpSession: text addresses, paths in BID order") {
    const auto d = dpclient::to_dp_session(session(), 42);
    CHECK(d.id() == 42);
    CHECK(d.nai() == "cpe1@example.net");
    CHECK(d.uplink_key() == 0x1001);
    CHECK(d.gre_sequence());
    REQUIRE(d.prefixes_size() == 2);
    CHECK(d.prefixes(0) == "2001:db8:100::/64");
    CHECK(d.prefixes(1) == "192.0.2.8/29");  // IPv4-mapped prefix as IPv4
    REQUIRE(d.paths_size() == 3);
    CHECK(d.paths(0).bid() == 1);
    CHECK(d.paths(1).bid() == 2);
    CHECK(d.paths(2).bid() == 3);
    const auto& p1 = d.paths(0);
    CHECK(p1.care_of() == "192.0.2.2");  // IPv4-mapped CoA as a dotted quad
    CHECK(p1.local() == "192.0.2.1");
    CHECK(p1.live());
    CHECK(p1.if_label() == 1);
    CHECK(p1.access_technology() == 3);
    CHECK(p1.downlink_key() == 0x2001);
    CHECK(p1.weight_kbps() == 1000);
    CHECK(d.paths(1).care_of() == "2001:db8:b::2");
    CHECK(d.paths(1).local() == "2001:db8::1");
    CHECK_FALSE(d.paths(2).live());
}

TEST_CASE("the session's striping goes along; overflow fills the primary technology first") {
    auto s = session();
    auto d = dpclient::to_dp_session(s, 1);
    CHECK(d.striping() == hag::v1::STRIPING_WEIGHTED);
    CHECK(d.overflow_burst_bytes() == 0);
    for (const auto& p : d.paths()) {
        CHECK(p.preference() == 0);
    }
    s.striping = 1;
    s.overflow_burst_bytes = 30000;
    s.primary_access_technology = 8;  // BIDs 2 and 3 (ATT 8) before BID 1 (ATT 3)
    d = dpclient::to_dp_session(s, 1);
    CHECK(d.striping() == hag::v1::STRIPING_OVERFLOW);
    CHECK(d.overflow_burst_bytes() == 30000);
    CHECK(d.paths(0).preference() == 1);
    CHECK(d.paths(1).preference() == 0);
    CHECK(d.paths(2).preference() == 0);
}

TEST_CASE("a NATed IPv4 path carries the NAT's observed port as its UDP port") {
    auto s = session();
    auto d = dpclient::to_dp_session(s, 1);
    for (const auto& p : d.paths()) {
        CHECK(p.udp_port() == 0);
    }
    s.paths[1].nat = true;  // BID 1, IPv4 CoA (the NAT's address)
    s.paths[1].nat_port = 40123;
    s.paths[1].mag_coa = *mgmt::parse_coa("192.0.2.66");
    d = dpclient::to_dp_session(s, 1);
    CHECK(d.paths(0).udp_port() == 40123);
    CHECK(d.paths(0).care_of() == "192.0.2.2");
    CHECK(d.paths(1).udp_port() == 0);
    // NATed without a port (not over UDP): no UDP encapsulation.
    s.paths[1].nat_port = 0;
    CHECK(dpclient::to_dp_session(s, 1).paths(0).udp_port() == 0);
}

TEST_CASE("home registrations without GRE keys are IP-in-IP when the home agent says so") {
    Session s = session();
    s.uplink_gre_key = 0;
    for (auto& p : s.paths) {
        p.mag_id = s.nai;  // a home registration: the mobile node is its own "MAG"
        p.downlink_gre_key = 0;
    }
    hag::v1::ControlConfig cfg;
    auto gre = PolicySnapshot::build(cfg);
    REQUIRE(gre != nullptr);
    const auto with_gre = dpclient::to_dp_session(s, 1, gre.get());
    for (const auto& p : with_gre.paths()) {
        CHECK(p.tunnel() == hag::v1::TUNNEL_GRE);
    }
    cfg.mutable_home_agent()->set_tunnel(hag::v1::HOME_TUNNEL_IP_IN_IP);
    auto ipip = PolicySnapshot::build(cfg);
    REQUIRE(ipip != nullptr);
    const auto with_ipip = dpclient::to_dp_session(s, 1, ipip.get());
    for (const auto& p : with_ipip.paths()) {
        CHECK(p.tunnel() == hag::v1::TUNNEL_IP_IN_IP);
    }
    CHECK(hag::v1::session_digest(dpclient::to_dp_session(s, 1, gre.get())) !=
          hag::v1::session_digest(dpclient::to_dp_session(s, 1, ipip.get())));
    // A mobile node that negotiated GRE keys keeps GRE; so do PMIPv6 sessions.
    Session keyed = s;
    keyed.uplink_gre_key = 0x1001;
    CHECK(dpclient::to_dp_session(keyed, 1, ipip.get()).paths(0).tunnel() == hag::v1::TUNNEL_GRE);
    CHECK(dpclient::to_dp_session(session(), 1, ipip.get()).paths(0).tunnel() ==
          hag::v1::TUNNEL_GRE);
}

TEST_CASE("path_mtus give each path its tunnel MTU: first match by ATT and If-Label, else 0") {
    const Session s = session();  // BID 1: ATT 3, If-Label 1; BID 2: ATT 8, label 2; BID 3: 8, 3
    hag::v1::ControlConfig cfg;
    auto none = PolicySnapshot::build(cfg);
    REQUIRE(none != nullptr);
    const auto plain = dpclient::to_dp_session(s, 1, none.get());
    for (const auto& p : plain.paths()) {
        CHECK(p.mtu() == 0);  // the data plane's access port MTU
    }
    auto* lte_label3 = cfg.add_path_mtus();  // ATT 8 with If-Label 3 only
    lte_label3->set_access_technology(8);
    lte_label3->set_if_label(3);
    lte_label3->set_mtu(1400);
    auto* lte = cfg.add_path_mtus();  // the rest of ATT 8
    lte->set_access_technology(8);
    lte->set_mtu(1420);
    auto* label1 = cfg.add_path_mtus();  // If-Label 1, any ATT
    label1->set_if_label(1);
    label1->set_mtu(1492);
    auto snap = PolicySnapshot::build(cfg);
    REQUIRE(snap != nullptr);
    const auto dp = dpclient::to_dp_session(s, 1, snap.get());
    std::map<std::uint32_t, std::uint32_t> mtus;
    for (const auto& p : dp.paths()) {
        mtus[p.bid()] = p.mtu();
    }
    CHECK(mtus == std::map<std::uint32_t, std::uint32_t>{{1, 1492}, {2, 1420}, {3, 1400}});
    // An MTU change reaches the data plane: the digest differs.
    CHECK(hag::v1::session_digest(dp) != hag::v1::session_digest(plain));
    // A catch-all entry first wins for every path.
    hag::v1::ControlConfig all;
    all.add_path_mtus()->set_mtu(1300);
    auto catch_all = PolicySnapshot::build(all);
    REQUIRE(catch_all != nullptr);
    const auto all_1300 = dpclient::to_dp_session(s, 1, catch_all.get());
    for (const auto& p : all_1300.paths()) {
        CHECK(p.mtu() == 1300);
    }
}

TEST_CASE("prefix text") {
    CHECK(dpclient::prefix_text(*mgmt::parse_prefix("2001:db8::/32")) == "2001:db8::/32");
    CHECK(dpclient::prefix_text(*mgmt::parse_prefix("::ffff:198.51.100.7/128")) ==
          "198.51.100.7/32");
    CHECK(dpclient::prefix_text(*mgmt::parse_prefix("::ffff:0.0.0.0/96")) == "0.0.0.0/0");
    // Shorter than /96: not an IPv4 prefix.
    CHECK(dpclient::prefix_text(*mgmt::parse_prefix("::/64")) == "::/64");
}

TEST_CASE("what the data plane does not see does not change the digest") {
    Session a = session();
    Session b = a;
    b.last_sequence = 10;
    b.last_timestamp = 99;
    for (auto& p : b.paths) {
        p.expires_at += 3600;  // a re-registration
        p.last_sequence += 1;
        p.mag_id = "other";
    }
    CHECK(hag::v1::session_digest(dpclient::to_dp_session(a, 1)) ==
          hag::v1::session_digest(dpclient::to_dp_session(b, 1)));
    b.paths[1].live = false;  // BID 1
    CHECK(hag::v1::session_digest(dpclient::to_dp_session(a, 1)) !=
          hag::v1::session_digest(dpclient::to_dp_session(b, 1)));
    CHECK(hag::v1::session_digest(dpclient::to_dp_session(a, 1)) !=
          hag::v1::session_digest(dpclient::to_dp_session(a, 2)));
}

TEST_CASE("with a flow policy, a session names its profile and every profile is converted") {
    hag::v1::ControlConfig cfg;
    auto* pol = cfg.mutable_policy();
    auto* red = pol->add_labels();
    red->set_name("RED");
    red->set_access_technology(3);
    auto* app = pol->add_applications();
    app->set_name("SSH");
    auto* m = app->add_match();
    m->set_protocol(6);
    m->add_remote_ports("22");
    m->add_remote_prefixes("198.51.100.0/24");
    for (const char* name : {"home", "office"}) {
        auto* prof = pol->add_profiles();
        prof->set_name(name);
        auto* r = prof->add_rules();
        r->set_application("SSH");
        r->add_preference("RED");
        r->add_preference("DROP");
    }
    pol->set_default_profile("home");
    pol->set_forbidden_uplink(hag::v1::PolicyConfig::FORBIDDEN_UPLINK_DROP);
    auto* sub = cfg.add_subscribers();
    sub->set_nai("other@example.net");
    sub->mutable_profile()->set_policy_profile("office");
    const auto snap = PolicySnapshot::build(cfg);
    REQUIRE(snap != nullptr);
    CHECK(snap->drop_forbidden_uplink);

    CHECK(dpclient::to_dp_session(session(), 1, snap.get()).policy_profile() == "home");
    Session other = session();
    other.nai = "other@example.net";
    CHECK(dpclient::to_dp_session(other, 2, snap.get()).policy_profile() == "office");
    CHECK(dpclient::to_dp_session(session(), 1).policy_profile().empty());

    const auto profiles = dpclient::policy_profiles(snap.get());
    REQUIRE(profiles.size() == 2);
    const auto& p = profiles[0];
    CHECK(p.name() == "home");
    CHECK(p.drop_forbidden_uplink());
    REQUIRE(p.rules_size() == 1);
    CHECK(p.rules(0).application() == "SSH");
    REQUIRE(p.rules(0).match_size() == 1);
    CHECK(p.rules(0).match(0).protocol() == 6);
    CHECK(p.rules(0).match(0).remote_ports(0).first() == 22);
    CHECK(p.rules(0).match(0).remote_prefixes(0) == "198.51.100.0/24");
    REQUIRE(p.rules(0).preference_size() == 2);
    CHECK(p.rules(0).preference(0).access_technology() == 3);
    CHECK(p.rules(0).preference(0).label() == "RED");
    CHECK(p.rules(0).preference(1).kind() == hag::v1::DpPolicyStep::DROP);
    CHECK(dpclient::policy_profiles(nullptr).empty());
}

TEST_CASE("flow bindings: the session's own profile, merged by priority, in the Apply", "[flow]") {
    hag::v1::ControlConfig cfg;
    auto* pol = cfg.mutable_policy();
    auto* red = pol->add_labels();
    red->set_name("RED");
    red->set_access_technology(3);
    for (const char* name : {"SSH", "WEB"}) {
        auto* app = pol->add_applications();
        app->set_name(name);
        auto* m = app->add_match();
        m->set_protocol(6);
        m->add_remote_ports(name == std::string("SSH") ? "22" : "80");
    }
    auto* prof = pol->add_profiles();
    prof->set_name("home");
    auto* r1 = prof->add_rules();
    r1->set_application("WEB");
    r1->add_preference("RED");
    r1->add_preference("DROP");
    auto* r2 = prof->add_rules();
    r2->set_application("SSH");
    r2->add_preference("DROP");
    r2->set_priority(10);
    pol->set_default_profile("home");
    const auto snap = PolicySnapshot::build(cfg);
    REQUIRE(snap != nullptr);

    Session s = session();
    CHECK_FALSE(dpclient::flow_profile(s, 5, snap.get()));
    hag::mh::TrafficSelector ts;
    ts.protocol = hag::mh::Range<std::uint8_t>{17, 17};
    ts.source_port = hag::mh::Range<std::uint16_t>{5060, 5060};
    const auto sel = hag::mh::encode_traffic_selector(ts);
    s.flows = {FlowBindingEntry{1, 1, {2, 9, 1}, sel}, FlowBindingEntry{2, 2, {}, sel}};
    const auto fp = dpclient::flow_profile(s, 5, snap.get());
    REQUIRE(fp);
    CHECK(fp->name() == "flows/5");
    CHECK(dpclient::to_dp_session(s, 5, snap.get()).policy_profile() == "flows/5");
    // SSH (priority 10) first, the bindings, then WEB.
    REQUIRE(fp->rules_size() == 4);
    CHECK(fp->rules(0).application() == "SSH");
    CHECK(fp->rules(1).application() == "flow 1");
    CHECK(fp->rules(2).application() == "flow 2");
    CHECK(fp->rules(3).application() == "WEB");
    const auto& f1 = fp->rules(1);
    REQUIRE(f1.match_size() == 1);
    CHECK(f1.match(0).protocol() == 17);
    CHECK(f1.match(0).remote_ports(0).first() == 5060);
    // BID 9 is not registered: skipped. BID 2 = If-Label 2 / ATT 8, BID 1 = 1 / 3.
    REQUIRE(f1.preference_size() == 3);
    CHECK(f1.preference(0).if_label() == 2);
    CHECK(f1.preference(0).access_technology() == 8);
    CHECK(f1.preference(1).if_label() == 1);
    CHECK(f1.preference(2).kind() == hag::v1::DpPolicyStep::DROP);
    REQUIRE(fp->rules(2).preference_size() == 1);
    CHECK(fp->rules(2).preference(0).kind() == hag::v1::DpPolicyStep::DROP);
    // The model accepts it as the data plane will.
    CHECK(hag::policy::from_dp_profile(*fp).ok());

    // The Apply: the profile before the session; when the bindings go, its remove after.
    BindingCache cache(16);
    REQUIRE(cache.insert(s));
    const std::uint32_t id = *cache.session_id(s.nai);
    dpclient::ProgrammedSet programmed;
    auto b = dpclient::plan_batch({id}, cache, programmed, {}, snap.get());
    REQUIRE(b.request.changes_size() == 2);
    CHECK(b.request.changes(0).upsert_profile().name() == dpclient::flow_profile_name(id));
    CHECK(b.request.changes(1).upsert().policy_profile() == dpclient::flow_profile_name(id));
    REQUIRE(b.effects.size() == 1);
    CHECK(b.effects[0].changes == 2);
    dpclient::commit(b.effects, programmed);
    CHECK(programmed.flow_profiles() == 1);
    CHECK(programmed.digest() ==
          hag::v1::session_digest(dpclient::to_dp_session(s, id, snap.get())) +
              hag::v1::profile_digest(*dpclient::flow_profile(s, id, snap.get())));
    // Nothing changed: nothing to send.
    CHECK(dpclient::plan_batch({id}, cache, programmed, {}, snap.get()).effects.empty());
    s.flows.clear();
    REQUIRE(cache.update(s));
    b = dpclient::plan_batch({id}, cache, programmed, {}, snap.get());
    REQUIRE(b.request.changes_size() == 2);
    CHECK(b.request.changes(0).upsert().policy_profile() == "home");
    CHECK(b.request.changes(1).remove_profile() == dpclient::flow_profile_name(id));
    dpclient::commit(b.effects, programmed);
    CHECK(programmed.flow_profiles() == 0);
    // A removed session with bindings: the session, then its profile.
    s.flows = {FlowBindingEntry{1, 1, {2}, sel}};
    REQUIRE(cache.update(s));
    dpclient::commit(dpclient::plan_batch({id}, cache, programmed, {}, snap.get()).effects,
                     programmed);
    REQUIRE(cache.remove(s.nai));
    b = dpclient::plan_batch({id}, cache, programmed, {}, snap.get());
    REQUIRE(b.request.changes_size() == 2);
    CHECK(b.request.changes(0).remove() == id);
    CHECK(b.request.changes(1).remove_profile() == dpclient::flow_profile_name(id));
}

TEST_CASE("remote anchors (distributed anchoring) become DpRemoteAnchor entries") {
    Session s = session();
    RemoteAnchor a;
    a.prefix = *mgmt::parse_prefix("2001:db8:100::/64");
    a.node = "hag-a";
    a.anchor = *mgmt::parse_coa("2001:db8:1::1");
    a.local = *mgmt::parse_coa("2001:db8:2::1");
    a.uplink_key = 0x3003;
    a.downlink_key = 0x4004;
    s.remote_anchors = {a};
    const auto d = dpclient::to_dp_session(s, 7);
    REQUIRE(d.remote_anchors_size() == 1);
    const auto& r = d.remote_anchors(0);
    CHECK(r.prefix() == "2001:db8:100::/64");
    CHECK(r.local() == "2001:db8:2::1");
    CHECK(r.anchor() == "2001:db8:1::1");
    CHECK(r.uplink_key() == 0x3003);
    CHECK(r.downlink_key() == 0x4004);
    CHECK(dpclient::to_dp_session(session(), 7).remote_anchors_size() == 0);
}
