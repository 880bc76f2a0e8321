// Prometheus text rendering: the exposition format's escaping and grammar, and the metric
// families hag exports from a snapshot.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <sstream>

#include "telemetry/prometheus.hpp"
#include "telemetry/render.hpp"

using namespace hag::dp;

TEST_CASE("label values and help text are escaped as the format requires", "[prometheus]") {
    CHECK(prom::escape_label_value("plain") == "plain");
    CHECK(prom::escape_label_value("a\"b") == "a\\\"b");
    CHECK(prom::escape_label_value("a\\b") == "a\\\\b");
    CHECK(prom::escape_label_value("a\nb") == "a\\nb");
    CHECK(prom::escape_label_value(std::string_view("a\0b\r\x7f", 5)) == "a?b??");
    CHECK(prom::escape_label_value("\\\"\n") == "\\\\\\\"\\n");
    std::string help;
    prom::append_help(help, "say \"hi\"\\\nnext");
    CHECK(help == "say \"hi\"\\\\\\nnext");  // quotes stay as they are in HELP
}

TEST_CASE("names follow the format's grammar; bad ones are skipped, not emitted", "[prometheus]") {
    CHECK(prom::valid_metric_name("hag_port_rx_packets_total"));
    CHECK(prom::valid_metric_name("hag:rule_1"));
    CHECK(!prom::valid_metric_name(""));
    CHECK(!prom::valid_metric_name("1abc"));
    CHECK(!prom::valid_metric_name("hag-port"));
    CHECK(prom::valid_label_name("_x1"));
    CHECK(!prom::valid_label_name("a:b"));
    CHECK(!prom::valid_label_name("9"));
    prom::Writer w;
    w.family("bad-name", "counter", "x");
    w.sample("bad-name", {}, std::uint64_t{1});
    w.sample("good", {{"bad label", "v"}}, std::uint64_t{1});
    CHECK(w.text().empty());
}

TEST_CASE("families and samples", "[prometheus]") {
    prom::Writer w;
    w.family("hag_x_total", "counter", "Things.\nCounted.");
    w.sample("hag_x_total", {{"port", "a\"b"}, {"reason", "c\\d"}},
             std::uint64_t{18446744073709551615u});
    w.sample("hag_x_total", {}, std::uint64_t{0});
    w.family("hag_g", "gauge", "A gauge.");
    w.sample("hag_g", {}, 85.25);
    w.sample("hag_g", {{"k", "nan"}}, std::numeric_limits<double>::quiet_NaN());
    w.sample("hag_g", {{"k", "inf"}}, std::numeric_limits<double>::infinity());
    CHECK(w.text() ==
          "# HELP hag_x_total Things.\\nCounted.\n"
          "# TYPE hag_x_total counter\n"
          "hag_x_total{port=\"a\\\"b\",reason=\"c\\\\d\"} 18446744073709551615\n"
          "hag_x_total 0\n"
          "# HELP hag_g A gauge.\n"
          "# TYPE hag_g gauge\n"
          "hag_g 85.25\n"
          "hag_g{k=\"nan\"} NaN\n"
          "hag_g{k=\"inf\"} +Inf\n");
}

namespace {

Snapshot sample_snapshot() {
    Snapshot s;
    s.tsc_hz = 2'000'000'000;
    s.workers = 2;
    PortSnapshot p;
    p.name = "core \"uplink\"\\\n";  // hostile name: must stay one well-formed line
    p.id = 0;
    p.role = "core";
    p.has_ethdev = true;
    p.rx_packets = 10;
    p.worker_rx = 9;
    p.tx_ring_full = 1;
    s.ports.push_back(p);
    PortSnapshot q;
    q.name = "access";
    q.id = 1;
    q.role = "access";  // no ethdev stats: only hag's own series
    q.worker_tx = 7;
    s.ports.push_back(q);
    StageSnapshot st;
    st.name = "downlink_encap";
    st.packets = 4;
    st.forwarded = 3;
    st.cycles = 400;
    st.bursts = 2;
    st.drops = {{"no_subscriber", "no prefix", 1}, {"too_big", "mtu", 0}};
    s.stages.push_back(st);
    s.has_sessions = true;
    s.sessions = 1;
    s.session_capacity = 1024;
    SessionSnapshot ss;
    ss.id = 42;
    ss.downlink_packets = 3;
    ss.downlink_bytes = 300;
    ss.uplink_packets = 5;
    ss.uplink_bytes = 500;
    ss.paths.push_back({1, 0, true, "2001:db8:aaaa::1", 3, 300, 5, 500});
    s.top_sessions.push_back(ss);
    return s;
}

}  // namespace

TEST_CASE("a snapshot renders as well-formed exposition text", "[prometheus]") {
    const std::string text = render_prometheus(sample_snapshot());
    // Every line is a comment or `name{labels} value`; every family has HELP then TYPE.
    std::istringstream in(text);
    std::string line, family;
    int samples = 0;
    while (std::getline(in, line)) {
        REQUIRE(!line.empty());
        if (line.rfind("# HELP ", 0) == 0) {
            family = line.substr(7, line.find(' ', 7) - 7);
            continue;
        }
        if (line.rfind("# TYPE ", 0) == 0) {
            REQUIRE(line.substr(7, family.size()) == family);
            continue;
        }
        INFO(line);
        REQUIRE(line.rfind(family, 0) == 0);
        REQUIRE(line.find('\r') == std::string::npos);
        ++samples;
    }
    CHECK(samples > 30);
    CHECK(text.find("hag_port_rx_packets_total{port=\"core \\\"uplink\\\"\\\\\\n\",role=\"core\"} "
                    "10\n") != std::string::npos);
    CHECK(text.find("hag_port_rx_packets_total{port=\"access\"") == std::string::npos);
    CHECK(text.find("hag_port_worker_tx_packets_total{port=\"access\",role=\"access\"} 7\n") !=
          std::string::npos);
    CHECK(text.find("hag_port_tx_ring_full_drops_total{port=\"core \\\"uplink\\\"\\\\\\n\","
                    "role=\"core\"} 1\n") != std::string::npos);
    CHECK(
        text.find("hag_stage_drops_total{stage=\"downlink_encap\",reason=\"no_subscriber\"} 1\n") !=
        std::string::npos);
    CHECK(text.find("hag_stage_drops_total{stage=\"downlink_encap\",reason=\"too_big\"} 0\n") !=
          std::string::npos);
    CHECK(text.find("hag_stage_cycles_per_packet{stage=\"downlink_encap\"} 100\n") !=
          std::string::npos);
    CHECK(text.find("hag_session_bytes_total{session=\"42\",direction=\"uplink\"} 500\n") !=
          std::string::npos);
    CHECK(
        text.find("hag_path_packets_total{session=\"42\",bid=\"1\",direction=\"downlink\"} 3\n") !=
        std::string::npos);
    CHECK(text.find("hag_sessions 1\n") != std::string::npos);
    CHECK(text.find("# TYPE hag_sessions gauge\n") != std::string::npos);
}

TEST_CASE("the exit JSON and the summary line", "[render]") {
    const Snapshot s = sample_snapshot();
    const std::string j = render_json(s);
    CHECK(j.find("\"downlink\":{\"stage\":\"downlink_encap\",\"packets\":4,\"encapsulated\":3,"
                 "\"drops\":{\"no_subscriber\":1,\"too_big\":0}") != std::string::npos);
    CHECK(j.find("\"core \\\"uplink\\\"\\\\\\u000a\":{\"id\":0") != std::string::npos);
    CHECK(j.find("\"42\":{\"downlink_packets\":3") != std::string::npos);
    Snapshot prev = s;
    prev.ports[0].worker_rx = 5;
    const std::string line = render_summary(s, &prev, 2.0);
    CHECK(line.find("rx 9 (2/s)") != std::string::npos);
    CHECK(line.find("downlink_encap fwd 3 drop 1 100.0 cyc/pkt (no_subscriber=1)") !=
          std::string::npos);
}
