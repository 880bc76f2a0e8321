// Run-time edits of the flow policy (core/policy_edit.hpp): each edit, each refusal, the
// overlay over a reloaded file, persistence of the overlay file.
#include <catch2/catch.hpp>

#include <unistd.h>
#include <filesystem>
#include <fstream>

#include <google/protobuf/text_format.h>

#include "core/config.hpp"
#include "core/policy_edit.hpp"

using namespace hag::control;
using Mode = hag::v1::EditPolicyRequest;
using Code = PolicyEditError::Code;

namespace {

const char* kFile = R"(
lma_addresses: "2001:db8::1"
hnp_pools { name: "p" prefix: "2001:db8:100::/40" assign_length: 64 }
policy {
  labels { name: "RED" access_technology: 3 }
  labels { name: "BLUE" access_technology: 8 }
  applications { name: "HTTP" match { protocol: 6 remote_ports: "80,443" } }
  applications { name: "SSH" match { protocol: 6 remote_ports: "22" } }
  applications { name: "VoIP" match { protocol: 17 remote_ports: "5060" } }
  profiles { name: "home"
    rules { application: "HTTP" preference: "BLUE" preference: "RED" preference: "DROP" }
    rules { application: "SSH" preference: "DROP" } }
  profiles { name: "dsl-only"
    rules { application: "HTTP" preference: "RED" preference: "STRIPE" } }
  profiles { name: "spare" }
  default_profile: "home"
}
subscribers { nai: "bob@example.net" profile { policy_profile: "dsl-only" } }
)";

hag::v1::ControlConfig file_config() {
    auto c = parse_control_config(kFile, "test.conf");
    if (!c) {
        for (const auto& e : c.error()) {
            FAIL(e.str());
        }
    }
    REQUIRE(c);
    return *c;
}

template <typename M>
M text(const char* t) {
    M m;
    REQUIRE(google::protobuf::TextFormat::ParseFromString(t, &m));
    return m;
}

hag::v1::EditPolicyRequest edit(const char* t) {
    return text<hag::v1::EditPolicyRequest>(t);
}

// Applies `e` to the overlay over the file; returns the error or updates `o`.
std::optional<PolicyEditError> run(const hag::v1::ControlConfig& part, hag::v1::PolicyOverlay& o,
                                   const hag::v1::EditPolicyRequest& e) {
    auto r = apply_edit(part, o, e);
    if (!r) {
        return r.error();
    }
    o = r->overlay;
    return std::nullopt;
}

std::shared_ptr<const PolicySnapshot> snapshot(const hag::v1::ControlConfig& part,
                                               const hag::v1::PolicyOverlay& o) {
    auto s = PolicySnapshot::build(apply_overlay(part, o));
    REQUIRE(s);
    return s;
}

std::string rules_of(const PolicySnapshot& s, const std::string& profile) {
    const auto* p = s.policy.find_profile(profile);
    REQUIRE(p != nullptr);
    std::string out;
    for (const auto& r : p->rules) {
        out += (out.empty() ? "" : " | ") + hag::policy::describe(s.policy, r);
    }
    return out;
}

struct TempDir {
    std::filesystem::path path;
    TempDir() {
        path = std::filesystem::temp_directory_path() /
               ("hag-policy-edit-" + std::to_string(::getpid()));
        std::filesystem::remove_all(path);
        std::filesystem::create_directories(path);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
};

}  // namespace

TEST_CASE("policy edits: add, replace and remove each kind of object") {
    const auto part = policy_part(file_config());
    hag::v1::PolicyOverlay o;

    // An application, then a rule that uses it.
    REQUIRE_FALSE(run(part, o, edit(R"(mode: ADD application { name: "Game"
                                         match { protocol: 17 remote_ports: "7000-7010" } })")));
    REQUIRE_FALSE(run(part, o, edit(R"(mode: ADD rule { profile: "home"
                                         rule { application: "Game" preference: "RED"
                                                preference: "DROP" } })")));
    auto s = snapshot(part, o);
    CHECK(rules_of(*s, "home") == "HTTP -> BLUE, RED, DROP | SSH -> DROP | Game -> RED, DROP");

    // Replace a rule in place; replace the application's classifiers.
    REQUIRE_FALSE(run(part, o, edit(R"(mode: REPLACE rule { profile: "home"
                                         rule { application: "SSH" preference: "RED"
                                                preference: "DROP" } })")));
    REQUIRE_FALSE(run(part, o, edit(R"(mode: REPLACE application { name: "Game"
                                         match { protocol: 17 remote_ports: "9000" } })")));
    s = snapshot(part, o);
    CHECK(rules_of(*s, "home") == "HTTP -> BLUE, RED, DROP | SSH -> RED, DROP | Game -> RED, DROP");
    CHECK(hag::policy::describe(s->policy.applications[*s->policy.find_application("Game")]) ==
          "Game: udp remote_ports=9000");

    // Remove the rule, then the application.
    REQUIRE_FALSE(run(part, o, edit(R"(mode: REMOVE rule { profile: "home"
                                         rule { application: "Game" } })")));
    REQUIRE_FALSE(run(part, o, edit(R"(mode: REMOVE application { name: "Game" })")));
    s = snapshot(part, o);
    CHECK_FALSE(s->policy.find_application("Game"));
    CHECK(o.applications_size() == 0);
    CHECK(o.removed_applications_size() == 0);  // it was never the file's

    // A profile: added, assigned, made the default, replaced.
    REQUIRE_FALSE(run(part, o, edit(R"(mode: ADD profile { name: "lte-first"
        rules { application: "HTTP" preference: "BLUE" preference: "STRIPE" } })")));
    REQUIRE_FALSE(run(part, o, edit(R"(mode: SET assignment { nai: "alice@example.net"
                                                              profile: "lte-first" })")));
    s = snapshot(part, o);
    CHECK(s->profile_for("alice@example.net")->name == "lte-first");
    CHECK(s->profile_for("carol@example.net")->name == "home");
    REQUIRE_FALSE(run(part, o, edit(R"(mode: REPLACE default_profile: "dsl-only")")));
    s = snapshot(part, o);
    CHECK(s->profile_for("carol@example.net")->name == "dsl-only");
    CHECK(s->default_profile == "dsl-only");

    // Assignments: bob's file profile replaced, then removed (back to the default).
    REQUIRE_FALSE(run(part, o, edit(R"(mode: REPLACE assignment { nai: "bob@example.net"
                                                                  profile: "home" })")));
    CHECK(snapshot(part, o)->profile_for("bob@example.net")->name == "home");
    REQUIRE_FALSE(run(part, o, edit(R"(mode: REMOVE assignment { nai: "bob@example.net" })")));
    CHECK(snapshot(part, o)->profile_for("bob@example.net")->name == "dsl-only");  // the default

    // The default removed: subscribers without a profile stripe.
    REQUIRE_FALSE(run(part, o, edit(R"(mode: REMOVE default_profile: "")")));
    s = snapshot(part, o);
    CHECK(s->profile_for("carol@example.net") == nullptr);
    CHECK(s->profile_for("alice@example.net")->name == "lte-first");

    // A file profile removed once nothing uses it.
    REQUIRE_FALSE(run(part, o, edit(R"(mode: REMOVE profile { name: "spare" })")));
    CHECK(snapshot(part, o)->policy.find_profile("spare") == nullptr);
    CHECK(o.removed_profiles_size() == 1);

    const auto lines = describe_overlay(part, o);
    CHECK(std::find(lines.begin(), lines.end(), "profile lte-first added") != lines.end());
    CHECK(std::find(lines.begin(), lines.end(), "profile spare removed") != lines.end());
    CHECK(std::find(lines.begin(), lines.end(), "default profile: none") != lines.end());

    // Revert: the file's policy again.
    REQUIRE_FALSE(run(part, o, edit("revert: true")));
    CHECK(o.ByteSizeLong() == 0);
    s = snapshot(part, o);
    CHECK(s->profile_for("alice@example.net")->name == "home");
    CHECK(s->policy.find_profile("spare") != nullptr);
}

TEST_CASE("policy edits: refused with the configuration's own checks, nothing changes") {
    const auto part = policy_part(file_config());
    hag::v1::PolicyOverlay o;
    const auto refused = [&](const char* t, Code code, const std::string& words) {
        INFO(t);
        const hag::v1::PolicyOverlay before = o;
        auto e = run(part, o, edit(t));
        REQUIRE(e);
        CHECK(e->code == code);
        INFO(e->message);
        CHECK(e->message.find(words) != std::string::npos);
        CHECK(o.SerializeAsString() == before.SerializeAsString());
    };
    // What the file would be refused for, in the file's words (naming the field).
    refused(R"(mode: ADD application { name: "Bad" match { protocol: 6 remote_ports: "80x" } })",
            Code::kInvalid, "remote_ports '80x' is not a port list");
    refused(R"(mode: ADD application { name: "Bad" match { protocol: 50 remote_ports: "80" } })",
            Code::kInvalid, "ports given but protocol 50 has none");
    refused(R"(mode: ADD application { name: "Bad" match { dscp: 64 } })", Code::kInvalid,
            "dscp 64 is not a code point");
    refused(R"(mode: ADD application { name: "Bad" match { remote_prefixes: "192.0.2.1/24" } })",
            Code::kInvalid, "remote_prefixes '192.0.2.1/24' is not an IPv4 or IPv6 prefix");
    refused(R"(mode: ADD application { name: "Bad" })", Code::kInvalid, "needs at least one match");
    refused(R"(mode: ADD application { name: "Bad" match { protocol: 6 spi: 5 } })", Code::kInvalid,
            "spi given but protocol 6");
    refused(R"(mode: ADD rule { profile: "home" rule { application: "VoIP" preference: "BLUE" } })",
            Code::kInvalid, "must end in DROP or STRIPE, not 'BLUE'");
    refused(R"(mode: ADD rule { profile: "home" rule { application: "VoIP"
                 preference: "DROP" preference: "BLUE" } })",
            Code::kInvalid, "DROP must be the last step");
    refused(R"(mode: ADD rule { profile: "home" rule { application: "VoIP"
                 preference: "GREEN" preference: "DROP" } })",
            Code::kInvalid, "no label 'GREEN' in policy.labels");
    refused(R"(mode: ADD rule { profile: "home" rule { application: "VoIP"
                 preference: "BLUE" preference: "BLUE" preference: "DROP" } })",
            Code::kInvalid, "label 'BLUE' listed twice");
    refused(R"(mode: ADD rule { profile: "home" rule { application: "Nope" preference: "DROP" } })",
            Code::kInvalid, "no application 'Nope' in policy.applications");
    refused(R"(mode: ADD profile { name: "x"
                 rules { application: "HTTP" preference: "DROP" }
                 rules { application: "HTTP" preference: "STRIPE" } })",
            Code::kInvalid, "already has a rule for application 'HTTP'");
    refused(R"(mode: ADD profile { name: "flows/7" })", Code::kInvalid,
            "flows/ are the sessions' flow binding profiles");
    refused(R"(mode: SET default_profile: "nope")", Code::kInvalid,
            "policy.default_profile: no profile 'nope' in policy.profiles");
    refused(R"(mode: SET assignment { nai: "alice@example.net" profile: "nope" })", Code::kInvalid,
            "subscriber 'alice@example.net' profile.policy_profile: no profile 'nope'");

    // Existence against the mode.
    refused(R"(mode: ADD application { name: "HTTP" match { protocol: 6 } })", Code::kExists,
            "application 'HTTP' exists");
    refused(R"(mode: REPLACE application { name: "FTP" match { protocol: 6 } })", Code::kNotFound,
            "no application 'FTP'");
    refused(R"(mode: REMOVE profile { name: "nope" })", Code::kNotFound, "no profile 'nope'");
    refused(R"(mode: ADD rule { profile: "home" rule { application: "SSH" preference: "DROP" } })",
            Code::kExists, "rule for application 'SSH' in profile 'home' exists");
    refused(R"(mode: REMOVE rule { profile: "home" rule { application: "VoIP" } })",
            Code::kNotFound, "no rule for application 'VoIP'");
    refused(R"(mode: ADD rule { profile: "nope" rule { application: "SSH" preference: "DROP" } })",
            Code::kNotFound, "no profile 'nope'");
    refused(R"(mode: ADD default_profile: "dsl-only")", Code::kExists, "default profile exists");
    refused(R"(mode: ADD assignment { nai: "bob@example.net" profile: "home" })", Code::kExists,
            "profile assignment for 'bob@example.net' exists");
    refused(R"(application { name: "X" match { protocol: 6 } })", Code::kInvalid,
            "mode: ADD, REPLACE, REMOVE or SET");
    refused(R"(mode: ADD)", Code::kInvalid, "no edit");

    // Removing what is still in use.
    refused(R"(mode: REMOVE profile { name: "home" })", Code::kInUse,
            "profile 'home' is the default profile");
    refused(R"(mode: REMOVE profile { name: "dsl-only" })", Code::kInUse,
            "profile 'dsl-only' is assigned to 1 subscriber(s) (bob@example.net)");
    refused(R"(mode: REMOVE application { name: "SSH" })", Code::kInUse,
            "application 'SSH' is used by rule 2 of profile 'home'");
    // Assigned at run time counts too.
    REQUIRE_FALSE(run(part, o, edit(R"(mode: SET assignment { nai: "alice@example.net"
                                                              profile: "spare" })")));
    refused(R"(mode: REMOVE profile { name: "spare" })", Code::kInUse,
            "assigned to 1 subscriber(s) (alice@example.net)");
}

TEST_CASE("policy edits: priorities order rules, equal priorities keep the list's order") {
    const auto part = policy_part(file_config());
    hag::v1::PolicyOverlay o;
    // Two overlapping rules: Web (all TCP 80) added with a priority above HTTP's.
    REQUIRE_FALSE(run(part, o, edit(R"(mode: ADD application { name: "Web"
                                         match { protocol: 6 remote_ports: "80" } })")));
    REQUIRE_FALSE(run(part, o, edit(R"(mode: ADD rule { profile: "home" rule {
        application: "Web" preference: "RED" preference: "DROP" priority: 5 } })")));
    auto s = snapshot(part, o);
    CHECK(rules_of(*s, "home") ==
          "Web -> RED, DROP (priority 5) | HTTP -> BLUE, RED, DROP | SSH -> DROP");
    hag::policy::FlowKey k;
    k.protocol = 6;
    k.remote_port = 80;
    const std::vector<hag::policy::Access> paths{{1, 0, 3, true}, {2, 0, 8, true}};
    const auto* home = s->policy.find_profile("home");
    CHECK(hag::policy::decide(s->policy, *home, k, paths).bid == 1);  // Web wins: RED
    // The same priority as HTTP's (0): the later rule loses the overlap.
    REQUIRE_FALSE(run(part, o, edit(R"(mode: REPLACE rule { profile: "home" rule {
        application: "Web" preference: "RED" preference: "DROP" } })")));
    s = snapshot(part, o);
    home = s->policy.find_profile("home");
    CHECK(rules_of(*s, "home") == "HTTP -> BLUE, RED, DROP | SSH -> DROP | Web -> RED, DROP");
    CHECK(hag::policy::decide(s->policy, *home, k, paths).bid == 2);  // HTTP wins: BLUE
}

TEST_CASE("PolicyEditor: versions, persistence, restart and reload with the overlay") {
    TempDir dir;
    const std::string path = overlay_path(dir.path.string());
    std::vector<std::shared_ptr<const PolicySnapshot>> installed;
    const auto install = [&](std::shared_ptr<const PolicySnapshot> p) {
        installed.push_back(std::move(p));
    };
    {
        PolicyEditor ed(install, path);
        REQUIRE(ed.start(file_config()));
        REQUIRE(installed.size() == 1);
        CHECK(ed.version() == 1);
        auto r = ed.edit(edit(R"(mode: REPLACE rule { profile: "home"
            rule { application: "SSH" preference: "RED" preference: "DROP" } })"));
        REQUIRE(r);
        CHECK(r->version() == 2);
        CHECK(r->persisted());
        CHECK(r->profiles_changed() == 1);
        CHECK(r->summary() == "rule SSH of profile home replaced");
        REQUIRE(installed.size() == 2);
        CHECK(installed.back()->version == 2);
        CHECK(installed.back()->runtime_profiles.count("home") == 1);
        CHECK(rules_of(*installed.back(), "home") == "HTTP -> BLUE, RED, DROP | SSH -> RED, DROP");
        // A refused edit installs nothing and keeps the version.
        CHECK_FALSE(ed.edit(edit(R"(mode: REMOVE profile { name: "home" })")));
        CHECK(installed.size() == 2);
        // Optimistic locking.
        auto stale = edit(R"(mode: SET assignment { nai: "carol@example.net" profile: "spare" })");
        stale.set_expected_version(1);
        auto e = ed.edit(stale);
        REQUIRE_FALSE(e);
        CHECK(e.error().code == Code::kVersion);
        stale.set_expected_version(2);
        REQUIRE(ed.edit(stale));
        CHECK(ed.version() == 3);
    }
    REQUIRE(std::filesystem::exists(path));
    {
        // A restart: the overlay comes back over the file.
        installed.clear();
        PolicyEditor ed(install, path);
        REQUIRE(ed.start(file_config()));
        CHECK(ed.version() == 4);
        REQUIRE(installed.size() == 1);
        CHECK(rules_of(*installed.back(), "home") == "HTTP -> BLUE, RED, DROP | SSH -> RED, DROP");
        CHECK(installed.back()->profile_for("carol@example.net")->name == "spare");

        // Reload with a changed file: the overlay stays on top of it (a new application in the
        // file is there; the run-time home profile still wins over the file's).
        auto next = file_config();
        *next.mutable_policy()->add_applications() = text<hag::v1::ApplicationClass>(
            R"(name: "DNS" match { protocol: 17 remote_ports: "53" })");
        REQUIRE(ed.reload(next));
        CHECK(ed.version() == 5);
        CHECK(installed.back()->policy.find_application("DNS"));
        CHECK(rules_of(*installed.back(), "home") == "HTTP -> BLUE, RED, DROP | SSH -> RED, DROP");

        // A file the overlay does not apply to (no 'spare' profile for carol): refused, the
        // running policy stays.
        auto changed = file_config();
        changed.mutable_policy()->mutable_profiles()->DeleteSubrange(2, 1);
        auto r = ed.reload(changed);
        REQUIRE_FALSE(r);
        CHECK(r.error().find("no profile 'spare'") != std::string::npos);
        CHECK(r.error().find("hagctl policy revert") != std::string::npos);
        CHECK(ed.version() == 5);

        // Revert: the file's policy, persisted as an empty overlay.
        REQUIRE(ed.edit(edit("revert: true")));
        CHECK(rules_of(*installed.back(), "home") == "HTTP -> BLUE, RED, DROP | SSH -> DROP");
        CHECK(installed.back()->runtime_edits.empty());
    }
    {
        // An overlay file that does not apply stops the start with a clear message.
        std::ofstream(path) << R"(assignments { nai: "x@example.net" profile: "gone" })";
        PolicyEditor ed(install, path);
        auto r = ed.start(file_config());
        REQUIRE_FALSE(r);
        CHECK(r.error().find("does not apply") != std::string::npos);
        CHECK(r.error().find(path) != std::string::npos);
        std::ofstream(path) << "not text format {";
        r = PolicyEditor(install, path).start(file_config());
        REQUIRE_FALSE(r);
        CHECK(r.error().find(path + ":1:") != std::string::npos);
    }
    {
        // Persistence off: edits apply, nothing is written.
        std::filesystem::remove(path);
        PolicyEditor ed(install, "");
        REQUIRE(ed.start(file_config()));
        auto r = ed.edit(edit(R"(mode: REMOVE default_profile: "")"));
        REQUIRE(r);
        CHECK_FALSE(r->persisted());
        CHECK_FALSE(std::filesystem::exists(path));
    }
}

TEST_CASE("PolicyEditor: the home agent's tunnel type stays in every snapshot it installs") {
    // home_agent.tunnel is programmed with the policy snapshot (IP-in-IP home registrations):
    // a snapshot built from the policy part alone must not turn it back into GRE.
    std::vector<std::shared_ptr<const PolicySnapshot>> installed;
    auto install = [&](std::shared_ptr<const PolicySnapshot> p) {
        installed.push_back(std::move(p));
    };
    auto cfg = file_config();
    cfg.mutable_home_agent()->set_tunnel(hag::v1::HOME_TUNNEL_IP_IN_IP);
    PolicyEditor ed(install, "");
    REQUIRE(ed.start(cfg));
    REQUIRE(installed.size() == 1);
    CHECK(installed.back()->home_ip_in_ip);
    REQUIRE(ed.edit(edit(R"(mode: REMOVE default_profile: "")")));
    REQUIRE(installed.size() == 2);
    CHECK(installed.back()->home_ip_in_ip);
}

namespace {

// What etcd keeps for a cluster (one key, a revision that grows with every write), shared by
// the OverlayStores of several editors, as the etcd store is by several nodes.
struct SharedKey {
    hag::v1::PolicyOverlay overlay;
    std::int64_t revision = 0;
    std::int64_t next = 100;
    bool down = false;
};

class SharedStore final : public OverlayStore {
  public:
    explicit SharedStore(SharedKey& k) : k_(k) {}
    hag::Result<Stored, std::string> read() override {
        if (k_.down) {
            return hag::unexpected(std::string("cannot read the shared key: down"));
        }
        return Stored{k_.overlay, k_.revision};
    }
    hag::Result<std::int64_t, WriteError> write(const hag::v1::PolicyOverlay& o,
                                                std::int64_t expected) override {
        if (k_.down) {
            return hag::unexpected(WriteError{false, "down"});
        }
        if (expected != k_.revision) {
            return hag::unexpected(WriteError{true, "changed"});
        }
        k_.overlay = o;
        k_.revision = ++k_.next;
        return k_.revision;
    }
    [[nodiscard]] std::string where() const override { return "the shared key"; }

  private:
    SharedKey& k_;
};

}  // namespace

TEST_CASE("PolicyEditor: edits shared by two nodes through one conditional store") {
    SharedKey key;
    std::vector<std::shared_ptr<const PolicySnapshot>> at_a, at_b;
    PolicyEditor a([&](auto p) { at_a.push_back(std::move(p)); }, "");
    PolicyEditor b([&](auto p) { at_b.push_back(std::move(p)); }, "");
    a.use_store(std::make_unique<SharedStore>(key));
    b.use_store(std::make_unique<SharedStore>(key));
    REQUIRE(a.start(file_config()));
    REQUIRE(b.start(file_config()));
    CHECK(a.where() == "the shared key");

    // An edit at a is stored; b adopts it at its next refresh, once.
    auto r = a.edit(edit(R"(mode: REPLACE rule { profile: "home"
        rule { application: "SSH" preference: "RED" preference: "DROP" } })"));
    REQUIRE(r);
    CHECK(r->persisted());
    CHECK(key.revision == 101);
    auto f = b.refresh();
    REQUIRE(f);
    CHECK(*f);
    CHECK(rules_of(*at_b.back(), "home") == "HTTP -> BLUE, RED, DROP | SSH -> RED, DROP");
    CHECK(b.version() >= a.version());
    f = b.refresh();
    REQUIRE(f);
    CHECK_FALSE(*f);
    const auto installs_b = at_b.size();

    // b edits next; a, which has not read it yet, edits too: refused (ABORTED), nothing of a's
    // edit is stored, and a now runs b's edit.
    REQUIRE(b.edit(edit(R"(mode: SET assignment { nai: "carol@example.net" profile: "spare" })")));
    auto lost =
        a.edit(edit(R"(mode: REMOVE rule { profile: "home" rule { application: "SSH" } })"));
    REQUIRE_FALSE(lost);
    CHECK(lost.error().code == Code::kVersion);
    CHECK(lost.error().message.find("another node") != std::string::npos);
    CHECK(at_a.back()->profile_for("carol@example.net")->name == "spare");
    CHECK(rules_of(*at_a.back(), "home") == "HTTP -> BLUE, RED, DROP | SSH -> RED, DROP");
    // Repeated, it applies on top of b's.
    REQUIRE(a.edit(edit(R"(mode: REMOVE rule { profile: "home" rule { application: "SSH" } })")));
    REQUIRE(b.refresh());
    CHECK(rules_of(*at_b.back(), "home") == "HTTP -> BLUE, RED, DROP");
    CHECK(at_b.back()->profile_for("carol@example.net")->name == "spare");
    CHECK(at_b.size() == installs_b + 2);

    // A node whose file lacks what the stored edits use does not start with them; a running
    // node refuses stored edits that do not apply (reported once per revision) and keeps its
    // policy.
    std::vector<std::shared_ptr<const PolicySnapshot>> at_c;
    PolicyEditor c([&](auto p) { at_c.push_back(std::move(p)); }, "");
    c.use_store(std::make_unique<SharedStore>(key));
    auto no_spare = file_config();
    no_spare.mutable_policy()->mutable_profiles()->DeleteSubrange(2, 1);
    auto st = c.start(no_spare);
    REQUIRE_FALSE(st);  // at start-up it does not run without them
    CHECK(st.error().find("does not apply") != std::string::npos);
    PolicyEditor d([&](auto p) { at_c.push_back(std::move(p)); }, "");
    d.use_store(std::make_unique<SharedStore>(key));
    REQUIRE(d.start(file_config()));
    REQUIRE(d.reload(file_config()));
    REQUIRE(a.edit(edit(R"(mode: SET assignment { nai: "dave@example.net" profile: "spare" })")));
    // d reloads a file without 'spare': refused, because the edits it runs use 'spare'.
    CHECK_FALSE(d.reload(no_spare));
    const auto vd = d.version();
    key.overlay.add_assignments()->set_nai("erin@example.net");
    key.overlay.mutable_assignments()->rbegin()->set_profile("nowhere");
    key.revision = ++key.next;
    auto refused = d.refresh();
    REQUIRE_FALSE(refused);
    CHECK_FALSE(refused.error().unreadable);
    CHECK(refused.error().message.find("no profile 'nowhere'") != std::string::npos);
    CHECK(d.version() == vd);
    auto again = d.refresh();  // the same revision: not reported again
    REQUIRE(again);
    CHECK_FALSE(*again);
    // The store unreachable: an error naming it; nothing changes.
    key.down = true;
    auto down = d.refresh();
    REQUIRE_FALSE(down);
    CHECK(down.error().unreadable);
    CHECK(down.error().message.find("cannot read") == 0);
    auto e = d.edit(edit(R"(mode: REMOVE default_profile: "")"));
    REQUIRE_FALSE(e);
    CHECK(e.error().code == Code::kInternal);
    CHECK(d.version() == vd);
}

TEST_CASE("PolicyEditor: path_mtus stay in every snapshot it installs") {
    // path_mtus are programmed with the policy snapshot (DpPath.mtu): an edit of the policy
    // must not drop them.
    std::vector<std::shared_ptr<const PolicySnapshot>> installed;
    auto install = [&](std::shared_ptr<const PolicySnapshot> p) {
        installed.push_back(std::move(p));
    };
    auto cfg = file_config();
    auto* m = cfg.add_path_mtus();
    m->set_access_technology(8);
    m->set_mtu(1420);
    PolicyEditor ed(install, "");
    REQUIRE(ed.start(cfg));
    REQUIRE(installed.size() == 1);
    Path lte;
    lte.access_technology = 8;
    CHECK(installed.back()->path_mtu_for(lte) == 1420);
    REQUIRE(ed.edit(edit(R"(mode: REMOVE default_profile: "")")));
    REQUIRE(installed.size() == 2);
    CHECK(installed.back()->path_mtu_for(lte) == 1420);
    Path dsl;
    dsl.access_technology = 3;
    CHECK(installed.back()->path_mtu_for(dsl) == 0);
}
