// The flow policy's configuration form: compiled into the model, every mistake reported at its
// line.
#include <catch2/catch.hpp>

#include "hag/v1/policy_config.hpp"

using namespace hag;
using namespace hag::policy;

namespace {

struct Compiled {
    std::optional<Policy> policy;
    std::string errors;  // one per line
};

Compiled compile(const std::string& text) {
    v1::PolicyConfig cfg;
    config::ParseInfoTree tree;
    Compiled out;
    if (auto r = config::parse_text(text, "policy.conf", cfg, tree); !r) {
        for (const auto& e : r.error()) {
            out.errors += e.str() + "\n";
        }
        return out;
    }
    config::Errors errors;
    out.policy = compile_policy(cfg, &tree, config::Reporter("policy.conf", errors));
    for (const auto& e : errors) {
        out.errors += e.str() + "\n";
    }
    return out;
}

constexpr const char* kExample = R"(
labels { name: "RED"  if_label: 1 }
labels { name: "BLUE" if_label: 2 }
applications { name: "HTTP"  match { protocol: 6 remote_ports: "80,443" } }
applications { name: "IPsec" match { protocol: 50 } match { protocol: 17 remote_ports: "500" remote_ports: "4500" } }
applications { name: "SSH"   match { protocol: 6 remote_ports: "22" } }
applications { name: "SIP/RTP" match { protocol: 17 remote_ports: "5060-5061" }
                               match { protocol: 17 local_ports: "10000-20000" dscp: 46 } }
profiles {
  name: "home"
  rules { application: "HTTP"    preference: "BLUE" preference: "RED" preference: "DROP" }
  rules { application: "IPsec"   preference: "RED" preference: "BLUE" preference: "DROP" }
  rules { application: "SSH"     preference: "DROP" }
  rules { application: "SIP/RTP" preference: "BLUE" preference: "DROP" priority: 10 }
}
default_profile: "home"
)";

}  // namespace

TEST_CASE("the example policy compiles and decides", "[policy][config]") {
    const Compiled c = compile(kExample);
    INFO(c.errors);
    REQUIRE(c.policy);
    const Policy& p = *c.policy;
    REQUIRE(p.default_profile == 0u);
    const Profile& prof = p.profiles[0];
    REQUIRE(prof.rules.size() == 4);
    CHECK(describe(p, prof.rules[0]) == "SIP/RTP -> BLUE, DROP (priority 10)");  // sorted first
    CHECK(describe(p, prof.rules[1]) == "HTTP -> BLUE, RED, DROP");

    const std::vector<Access> both = {{1, 1, 3, true}, {2, 2, 8, true}};
    FlowKey k;
    k.protocol = kProtoTcp;
    k.remote_port = 443;
    CHECK(decide(p, prof, k, both).bid == 2);
    k.protocol = kProtoUdp;
    k.remote_port = 4500;
    CHECK(decide(p, prof, k, both).bid == 1);
    k.remote_port = 9;
    k.local_port = 15000;
    k.dscp = 46;
    CHECK(decide(p, prof, k, both).bid == 2);  // RTP
    k.dscp = 0;
    CHECK(decide(p, prof, k, both).kind == Decision::Kind::kStripe);  // not RTP without EF
}

TEST_CASE("every policy mistake is reported with its line", "[policy][config][hostile]") {
    const Compiled c = compile(R"(
labels { name: "RED" if_label: 1 }
labels { name: "RED" if_label: 2 }
labels { name: "drop" if_label: 3 }
labels { name: "ANY" }
labels { name: "BIG" if_label: 300 }
applications { name: "web" match { protocol: 6 remote_ports: "80-" } }
applications { name: "web" match { protocol: 1 remote_ports: "1" } }
applications { name: "esp" match { protocol: 6 spi: 5 } }
applications { name: "pfx" match { remote_prefixes: "192.0.2.1/24" dscp: 64 } }
applications { name: "empty" }
profiles {
  name: "p"
  rules { application: "nope" preference: "DROP" }
  rules { application: "web" preference: "RED" }
  rules { application: "web" preference: "DROP" preference: "RED" }
  rules { application: "web" preference: "GREEN" preference: "STRIPE" }
  rules { application: "web" preference: "RED" preference: "RED" preference: "DROP" }
  rules { application: "web" }
}
profiles { name: "p" }
profiles { name: "flows/1" }
default_profile: "missing"
)");
    CHECK_FALSE(c.policy);
    const std::string& e = c.errors;
    INFO(e);
    CHECK(e.find("policy.conf:3:") != std::string::npos);
    CHECK(e.find("policy.labels: 'RED' defined twice") != std::string::npos);
    CHECK(e.find("name 'drop' is empty or reserved") != std::string::npos);
    CHECK(e.find("'ANY': needs if_label or access_technology") != std::string::npos);
    CHECK(e.find("if_label 300 is above 255") != std::string::npos);
    CHECK(e.find("remote_ports '80-' is not a port list") != std::string::npos);
    CHECK(e.find("policy.applications: 'web' defined twice") != std::string::npos);
    CHECK(e.find("ports given but protocol 1 has none") != std::string::npos);
    CHECK(e.find("spi given but protocol 6") != std::string::npos);
    CHECK(e.find("'192.0.2.1/24' is not an IPv4 or IPv6 prefix") != std::string::npos);
    CHECK(e.find("dscp 64 is not a code point") != std::string::npos);
    CHECK(e.find("'empty': needs at least one match") != std::string::npos);
    CHECK(e.find("no application 'nope'") != std::string::npos);
    CHECK(e.find("must end in DROP or STRIPE, not 'RED'") != std::string::npos);
    CHECK(e.find("DROP must be the last step") != std::string::npos);
    CHECK(e.find("no label 'GREEN'") != std::string::npos);
    CHECK(e.find("label 'RED' listed twice") != std::string::npos);
    CHECK(e.find("preference is empty") != std::string::npos);
    CHECK(e.find("policy.profiles: 'p' defined twice") != std::string::npos);
    CHECK(e.find("no profile 'missing'") != std::string::npos);
    CHECK(e.find("policy.conf:16:") != std::string::npos);  // the second rule of 'web'
    CHECK(e.find("rule 3 (web): the profile already has a rule for application 'web'") !=
          std::string::npos);
    CHECK(e.find("'flows/1': names starting with flows/ are the sessions' flow binding "
                 "profiles") != std::string::npos);
}

TEST_CASE("an empty policy is valid and has no default profile", "[policy][config]") {
    const Compiled c = compile("");
    REQUIRE(c.policy);
    CHECK_FALSE(c.policy->default_profile);
}
