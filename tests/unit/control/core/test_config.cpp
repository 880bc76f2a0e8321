#include <catch2/catch.hpp>

#include "core/config.hpp"

using namespace hag::control;

namespace {
std::string errors_of(std::string_view text) {
    auto r = parse_control_config(text, "t.conf");
    if (r.ok()) {
        return "";
    }
    std::string out;
    for (const auto& e : r.error()) {
        out += e.str() + "\n";
    }
    return out;
}
}  // namespace

TEST_CASE("a good configuration parses and gets defaults", "[config]") {
    auto r = parse_control_config(R"(
lma_addresses: "2001:db8::1"
lma_addresses: "192.0.2.1"
hnp_pools { name: "cpe" prefix: "2001:db8:100::/40" assign_length: 64 }
default_profile { multipath: true max_paths: 4 }
subscribers { nai: "cpe-0001@hag.example" profile { multipath: false } }
subscribers { nai: "cpe-0002@hag.example" profile { striping: STRIPING_OVERFLOW overflow_burst_bytes: 30000 primary_access_technology: 8 } }
mags { mag_id: "mag1@hag.example" source_addresses: "2001:db8:a::1" allowed_nai: "cpe-*" }
)",
                                  "t.conf");
    REQUIRE(r.ok());
    CHECK(r->limits().max_sessions() == 1'000'000);
    CHECK(r->management_socket() == "/run/hag/control.sock");
    CHECK(r->heartbeat_interval_seconds() == 30);
    CHECK(r->log().level() == "info");
    CHECK(r->log().format() == "text");
    CHECK(r->limits().global_pbu_per_second() == 20000);
    CHECK(r->limits().global_pbu_burst() == 40000);
    auto p = effective_profile(*r, "cpe-0001@hag.example");
    CHECK_FALSE(p.multipath());
    CHECK(p.max_paths() == 4);
    CHECK(p.hnp_pool() == "cpe");
    CHECK(p.max_lifetime_seconds() == 3600);
    CHECK(effective_profile(*r, "other").multipath());
    CHECK(p.striping() == hag::v1::STRIPING_WEIGHTED);  // the default
    CHECK(p.overflow_burst_bytes() == 0);
    auto o = effective_profile(*r, "cpe-0002@hag.example");
    CHECK(o.striping() == hag::v1::STRIPING_OVERFLOW);
    CHECK(o.overflow_burst_bytes() == 30000);
    CHECK(o.primary_access_technology() == 8);
}

TEST_CASE("striping settings are checked", "[config]") {
    auto e = errors_of(R"(lma_addresses: "2001:db8::1"
default_profile { striping: 4 }
subscribers { nai: "a" profile {
  overflow_burst_bytes: 16777217
  primary_access_technology: 300 } }
)");
    CHECK(e.find("t.conf:2:") != std::string::npos);
    CHECK(e.find("default_profile.striping: 4 is not a striping mode") != std::string::npos);
    CHECK(e.find("t.conf:4:3:") != std::string::npos);
    CHECK(e.find("overflow_burst_bytes: 16777217 is above 16777216") != std::string::npos);
    CHECK(e.find("t.conf:5:3:") != std::string::npos);
    CHECK(e.find("primary_access_technology: 300 is not within 0-255") != std::string::npos);
    CHECK(errors_of("lma_addresses: \"2001:db8::1\"\ndefault_profile { striping: FASTEST }\n")
              .find("FASTEST") != std::string::npos);
}

TEST_CASE("path_mtus: MTU 1280-9216, ATT and If-Label 0-255, at file:line", "[config]") {
    CHECK(errors_of(R"(lma_addresses: "2001:db8::1"
path_mtus { access_technology: 8 mtu: 1420 }
path_mtus { if_label: 3 mtu: 9216 }
path_mtus { mtu: 1280 }
)")
              .empty());
    auto e = errors_of(R"(lma_addresses: "2001:db8::1"
path_mtus { access_technology: 8 mtu: 1279 }
path_mtus { if_label: 256 mtu: 1400 }
path_mtus { access_technology: 1 }
path_mtus { mtu: 9217 }
)");
    INFO(e);
    CHECK(e.find("t.conf:2:") != std::string::npos);
    CHECK(e.find("path_mtus.mtu: 1279 is not within 1280-9216") != std::string::npos);
    CHECK(e.find("t.conf:3:") != std::string::npos);
    CHECK(e.find("path_mtus: access_technology and if_label are 0-255") != std::string::npos);
    CHECK(e.find("path_mtus.mtu: 0 is not within 1280-9216") != std::string::npos);
    CHECK(e.find("path_mtus.mtu: 9217 is not within 1280-9216") != std::string::npos);
}

TEST_CASE("syntax errors and unknown fields name file:line:column", "[config]") {
    auto e = errors_of("lma_addresses: \"2001:db8::1\"\n\nbogus_field: 3\n");
    CHECK(e.find("t.conf:3:") != std::string::npos);
    CHECK(e.find("bogus_field") != std::string::npos);
    e = errors_of("hnp_pools { name: \"x\" prefix: \"2001:db8::/40\" assign_length: 64\n");
    CHECK(e.find("t.conf:2:") != std::string::npos);
}

TEST_CASE("semantic errors name the line of the offending field", "[config]") {
    auto e = errors_of(R"(lma_addresses: "2001:db8::1"
hnp_pools {
  name: "a"
  prefix: "2001:db8:100::/40x"
  assign_length: 64
}
)");
    CHECK(e.find("t.conf:4:3: hnp_pools.prefix:") != std::string::npos);

    e = errors_of(R"(lma_addresses: "2001:db8::1"
hnp_pools { name: "a" prefix: "2001:db8:100::/40" assign_length: 80 }
hnp_pools { name: "b" prefix: "2001:db8:100::/48" assign_length: 64 }
lma_addresses: "not-an-address"
default_profile { max_paths: 0 hnp_pool: "zzz" }
log { level: "loud" }
)");
    CHECK(e.find("t.conf:2:") != std::string::npos);
    CHECK(e.find("assign_length: 80") != std::string::npos);
    CHECK(e.find("t.conf:3:") != std::string::npos);
    CHECK(e.find("overlaps pool 'a'") != std::string::npos);
    CHECK(e.find("t.conf:4:") != std::string::npos);
    CHECK(e.find("not-an-address") != std::string::npos);
    CHECK(e.find("max_paths: 0") != std::string::npos);
    CHECK(e.find("no pool named 'zzz'") != std::string::npos);
    CHECK(e.find("log.level: 'loud'") != std::string::npos);

    // The log format: text or json, refused at its line otherwise.
    e = errors_of(R"(lma_addresses: "2001:db8::1"
log {
  level: "debug"
  format: "yaml"
}
)");
    CHECK(e.find("t.conf:4:3: log.format: unknown log format 'yaml' (expected text or json)") !=
          std::string::npos);

    // A MAG's allowed prefixes are prefixes; the global rate limit gets its defaults.
    e = errors_of(R"(lma_addresses: "2001:db8::1"
mags {
  mag_id: "m"
  allowed_prefixes: "2001:db8:100::/56"
  allowed_prefixes: "2001:db8:100::/129"
}
)");
    CHECK(e.find("t.conf:5:3: mags.allowed_prefixes:") != std::string::npos);
    CHECK(e.find("t.conf:4:") == std::string::npos);

    // The flow policy is checked with the rest of the file, at its own lines.
    e = errors_of(R"(lma_addresses: "2001:db8::1"
hnp_pools { name: "a" prefix: "2001:db8:100::/40" assign_length: 64 }
policy {
  labels { name: "DSL" access_technology: 3 }
  applications { name: "web" match { protocol: 6 remote_ports: "80" } }
  profiles { name: "p" rules { application: "web" preference: "DSL" } }
}
subscribers { nai: "x@example.net" profile { policy_profile: "gone" } }
)");
    CHECK(e.find("t.conf:6:") != std::string::npos);
    CHECK(e.find("must end in DROP or STRIPE, not 'DSL'") != std::string::npos);
    CHECK(e.find("t.conf:8:") != std::string::npos);
    CHECK(e.find("subscribers.profile.policy_profile: no profile 'gone'") != std::string::npos);

    CHECK(errors_of("").find("lma_addresses: at least one") != std::string::npos);
    CHECK(errors_of("lma_addresses: \"2001:db8::1\"\nallow_unknown_subscribers: true\n")
              .find("needs at least one hnp_pools") != std::string::npos);
}

TEST_CASE("address and prefix text forms are strict", "[config]") {
    CHECK(parse_prefix("2001:db8::/32").ok());
    CHECK_FALSE(parse_prefix("2001:db8::1/32").ok());  // host bits
    CHECK_FALSE(parse_prefix("2001:db8::/129").ok());
    CHECK_FALSE(parse_prefix("2001:db8::/").ok());
    CHECK_FALSE(parse_prefix("2001:db8::").ok());
    CHECK_FALSE(parse_prefix("192.0.2.0/24").ok());
    CHECK(parse_address("192.0.2.1")->is_ipv4());
    CHECK_FALSE(parse_address("2001:db8::1")->is_ipv4());
    CHECK_FALSE(parse_address("2001:db8::1 ").ok());
    CHECK_FALSE(parse_address("").ok());
}

TEST_CASE("dataplane_socket: empty (no data plane), unix path or host:port", "[config]") {
    auto r = parse_control_config("lma_addresses: \"2001:db8::1\"\n", "t.conf");
    REQUIRE(r.ok());
    CHECK(r->dataplane_socket().empty());
    for (const char* good : {"unix:/run/hag/dataplane.sock", "/run/hag/dataplane.sock",
                             "127.0.0.1:9471", "[::1]:9471", "localhost:1"}) {
        INFO(good);
        CHECK(errors_of(std::string("lma_addresses: \"2001:db8::1\"\ndataplane_socket: \"") + good +
                        "\"\n") == "");
    }
    for (const char* bad : {"unix:", "unix:relative.sock", "dataplane.sock", "host:", ":80",
                            "host:0", "host:65536", "host:http"}) {
        INFO(bad);
        const auto e = errors_of(
            std::string("lma_addresses: \"2001:db8::1\"\ndataplane_socket: \"") + bad + "\"\n");
        CHECK(e.find("t.conf:2:") != std::string::npos);
        CHECK(e.find("dataplane_socket") != std::string::npos);
    }
}

TEST_CASE("dataplane_resync_hold_seconds: heartbeat interval x missed limit, or as given",
          "[config]") {
    auto hold = [](const std::string& extra) {
        auto r = parse_control_config("lma_addresses: \"2001:db8::1\"\n" + extra, "t.conf");
        REQUIRE(r.ok());
        return r->dataplane_resync_hold_seconds();
    };
    CHECK(hold("") == 90);
    CHECK(hold("heartbeat_interval_seconds: 10\nheartbeat_missed_limit: 4\n") == 40);
    CHECK(hold("heartbeat_interval_seconds: 0\n") == 90);
    CHECK(hold("heartbeat_interval_seconds: 3000\nheartbeat_missed_limit: 5\n") == 3600);
    CHECK(hold("dataplane_resync_hold_seconds: 0\n") == 0);
    CHECK(hold("dataplane_resync_hold_seconds: 3600\n") == 3600);
    const auto e =
        errors_of("lma_addresses: \"2001:db8::1\"\ndataplane_resync_hold_seconds: 3601\n");
    CHECK(e.find("t.conf:2:") != std::string::npos);
    CHECK(e.find("not within 0-3600") != std::string::npos);
}

TEST_CASE("persistence and management TLS options: defaults and checks", "[config]") {
    auto r = parse_control_config("lma_addresses: \"2001:db8::1\"\n", "t.conf");
    REQUIRE(r.ok());
    CHECK(r->persistence());
    CHECK(r->state_directory() == "/var/lib/hag");
    CHECK(r->state_fsync() == "always");
    CHECK(r->state_snapshot_interval_seconds() == 300);
    CHECK(r->state_snapshot_log_bytes() == 64ull << 20);
    CHECK_FALSE(r->state_discard_corrupt());
    auto off =
        parse_control_config("lma_addresses: \"2001:db8::1\"\npersistence: false\n", "t.conf");
    REQUIRE(off.ok());
    CHECK_FALSE(off->persistence());
    CHECK(errors_of("lma_addresses: \"2001:db8::1\"\nstate_fsync: \"sometimes\"\n")
              .find("t.conf:2:") != std::string::npos);
    CHECK(errors_of("lma_addresses: \"2001:db8::1\"\nstate_directory: \"var/lib\"\n")
              .find("absolute") != std::string::npos);
    CHECK(errors_of("lma_addresses: \"2001:db8::1\"\nmanagement_tls_cert: \"/c.pem\"\n")
              .find("all three or none") != std::string::npos);
    CHECK(errors_of("lma_addresses: \"2001:db8::1\"\nmanagement_tls_cert: \"/c.pem\"\n"
                    "management_tls_key: \"/k.pem\"\nmanagement_tls_client_ca: \"/ca.pem\"\n")
              .empty());
}

TEST_CASE("store: embedded by default, etcd checked", "[config]") {
    auto r = parse_control_config("lma_addresses: \"2001:db8::1\"\n", "t.conf");
    REQUIRE(r.ok());
    CHECK(r->store().backend() == "embedded");
    CHECK(r->store().etcd_prefix() == "/hag/");
    CHECK(r->store().etcd_timeout_ms() == 1000);
    auto e = parse_control_config(
        "lma_addresses: \"2001:db8::1\"\n"
        "store { backend: \"etcd\" etcd_endpoints: \"[2001:db8::5]:2379\" node_name: \"n1\" }\n",
        "t.conf");
    REQUIRE(e.ok());
    CHECK(e->store().node_name() == "n1");
    auto host = parse_control_config(
        "lma_addresses: \"2001:db8::1\"\n"
        "store { backend: \"etcd\" etcd_endpoints: \"127.0.0.1:2379\" }\n",
        "t.conf");
    REQUIRE(host.ok());
    CHECK_FALSE(host->store().node_name().empty());  // the host name
    const std::string base = "lma_addresses: \"2001:db8::1\"\n";
    CHECK(errors_of(base + "store { backend: \"zookeeper\" }\n").find("t.conf:2:") !=
          std::string::npos);
    CHECK(errors_of(base + "store { backend: \"etcd\" }\n").find("at least one") !=
          std::string::npos);
    CHECK(errors_of(base + "store { backend: \"etcd\" etcd_endpoints: \"http://a:1\" }\n")
              .find("not host:port") != std::string::npos);
    CHECK(errors_of(base + "store { backend: \"etcd\" etcd_endpoints: \"a:70000\" }\n")
              .find("not host:port") != std::string::npos);
    CHECK(
        errors_of(base + "store { backend: \"etcd\" etcd_endpoints: \"a:1\" node_name: \"a b\" }\n")
            .find("node_name") != std::string::npos);
    CHECK(errors_of(base +
                    "store { backend: \"etcd\" etcd_endpoints: \"a:1\" etcd_tls_cert: \"/c\" }\n")
              .find("both or neither") != std::string::npos);
    CHECK(errors_of(base + "store { uplink_gre_key_min: 10 uplink_gre_key_max: 5 }\n")
              .find("above") != std::string::npos);
    CHECK(r->store().policy_poll_ms() == 2000);
    CHECK(errors_of(base + "store { policy_poll_ms: 99 }\n").find("100-600000") !=
          std::string::npos);
    CHECK(errors_of(base + "store { policy_poll_ms: 600001 }\n").find("100-600000") !=
          std::string::npos);
    CHECK(errors_of(base + "store { policy_poll_ms: 100 }\n").empty());

    // Distributed anchoring: node_address is one of lma_addresses; the liveness lease 3-60 s.
    CHECK(e->store().node_lease_seconds() == 6);
    CHECK_FALSE(e->store().distributed_anchoring());
    const std::string etcd = "store { backend: \"etcd\" etcd_endpoints: \"a:1\" ";
    auto da = parse_control_config(
        base + etcd + "distributed_anchoring: true node_address: \"2001:db8::1\" }\n", "t.conf");
    REQUIRE(da.ok());
    CHECK(da->store().distributed_anchoring());
    CHECK(errors_of(base + etcd + "distributed_anchoring: true }\n").find("node_address") !=
          std::string::npos);
    CHECK(errors_of(base + etcd + "distributed_anchoring: true node_address: \"2001:db8::9\" }\n")
              .find("one of lma_addresses") != std::string::npos);
    CHECK(errors_of(base + etcd + "node_lease_seconds: 2 }\n").find("3-60") != std::string::npos);
    CHECK(errors_of(base + etcd + "node_lease_seconds: 61 }\n").find("3-60") != std::string::npos);
}

TEST_CASE("central_db: defaults and every check, at their lines", "[config]") {
    const std::string base = "lma_addresses: \"2001:db8::1\"\n";
    auto off = parse_control_config(base, "t.conf");
    REQUIRE(off.ok());
    CHECK(off->central_db().role() == hag::v1::CENTRAL_DB_OFF);
    auto maar =
        parse_control_config(base +
                                 "central_db { role: CENTRAL_DB_MAAR node_name: \"hag-a\"\n"
                                 "  node_address: \"2001:db8::1\" cmd_address: \"2001:db8::d\" }\n",
                             "t.conf");
    REQUIRE(maar.ok());
    CHECK(maar->central_db().timeout_ms() == 3000);
    auto cmd = parse_control_config(
        base +
            "central_db { role: CENTRAL_DB_CMD maars { name: \"hag-a\" address: "
            "\"2001:db8::a\" } timeout_ms: 500 }\n",
        "t.conf");
    REQUIRE(cmd.ok());
    CHECK(cmd->central_db().timeout_ms() == 500);
    // A MAAR without its name, with a node_address not among lma_addresses, without a CMD.
    CHECK(errors_of(base + "central_db { role: CENTRAL_DB_MAAR\n node_address: \"2001:db8::1\"\n"
                           " cmd_address: \"2001:db8::d\" }\n")
              .find("central_db.node_name") != std::string::npos);
    CHECK(errors_of(base + "central_db { role: CENTRAL_DB_MAAR node_name: \"a\"\n"
                           " node_address: \"2001:db8::2\"\n cmd_address: \"2001:db8::d\" }\n")
              .find("t.conf:3:") != std::string::npos);
    CHECK(errors_of(base + "central_db { role: CENTRAL_DB_MAAR node_name: \"a\"\n"
                           " node_address: \"2001:db8::1\"\n cmd_address: \"2001:db8::1\" }\n")
              .find("t.conf:4:") != std::string::npos);
    CHECK(errors_of(base + "central_db { role: CENTRAL_DB_MAAR node_name: \"a\"\n"
                           " node_address: \"2001:db8::1\" }\n")
              .find("cmd_address") != std::string::npos);
    // A CMD without MAARs, with one listed twice, with a bad address.
    CHECK(errors_of(base + "central_db { role: CENTRAL_DB_CMD }\n").find("at least one MAAR") !=
          std::string::npos);
    CHECK(errors_of(base + "central_db { role: CENTRAL_DB_CMD\n"
                           " maars { name: \"a\" address: \"2001:db8::a\" }\n"
                           " maars { name: \"a\" address: \"2001:db8::b\" }\n}\n")
              .find("listed twice") != std::string::npos);
    CHECK(errors_of(base + "central_db { role: CENTRAL_DB_CMD\n"
                           " maars { name: \"a\" address: \"192.0.2.1\" }\n}\n")
              .find("not an IPv6") != std::string::npos);
    CHECK(errors_of(base + "central_db { role: CENTRAL_DB_CMD timeout_ms: 50\n"
                           " maars { name: \"a\" address: \"2001:db8::a\" } }\n")
              .find("timeout_ms") != std::string::npos);
    // Not with etcd.
    CHECK(errors_of(base + "store { backend: \"etcd\" etcd_endpoints: \"a:1\" }\n"
                           "central_db { role: CENTRAL_DB_CMD\n"
                           " maars { name: \"a\" address: \"2001:db8::a\" } }\n")
              .find("not with store.backend etcd") != std::string::npos);
}
