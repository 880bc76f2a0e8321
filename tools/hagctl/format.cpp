#include "format.hpp"

#include <fmt/format.h>

#include <google/protobuf/util/json_util.h>
#include <cerrno>
#include <cstdint>
#include <cstdlib>

#include <algorithm>

namespace hag::hagctl {

std::string render_table(const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> width;
    for (const auto& r : rows) {
        width.resize(std::max(width.size(), r.size()), 0);
        for (std::size_t i = 0; i < r.size(); ++i) {
            width[i] = std::max(width[i], r[i].size());
        }
    }
    std::string out;
    for (const auto& r : rows) {
        std::string line;
        for (std::size_t i = 0; i < r.size(); ++i) {
            line += r[i];
            if (i + 1 < r.size()) {
                line.append(width[i] - r[i].size() + 2, ' ');
            }
        }
        out += line + "\n";
    }
    return out;
}

std::string access_type_name(std::uint32_t att) {
    switch (att) {
        case 0:
            return "-";
        case 1:
            return "virtual";
        case 2:
            return "ppp";
        case 3:
            return "ethernet";
        case 4:
            return "wlan";
        case 5:
            return "wimax";
        case 6:
            return "3gpp-geran";
        case 7:
            return "3gpp-utran";
        case 8:
            return "3gpp-eutran";
        default:
            return std::to_string(att);
    }
}

namespace {

std::string join(const google::protobuf::RepeatedPtrField<std::string>& v) {
    std::string s;
    for (const auto& x : v) {
        s += (s.empty() ? "" : ",") + x;
    }
    return s.empty() ? "-" : s;
}

std::vector<std::string> path_header() {
    return {"BID", "ACCESS", "MAG", "COA", "DL-KEY", "LABEL", "LIVE", "EXPIRES"};
}

std::vector<std::string> path_cells(const hag::v1::BindingPath& p) {
    return {
        std::to_string(p.bid()),
        access_type_name(p.access_technology()),
        p.mag_id().empty() ? "-" : (p.relay() ? p.mag_id() + " (hag node)" : p.mag_id()),
        p.nat() ? fmt::format("{}:{} (NAT, MAG {})", p.coa(), p.nat_port(), p.mag_coa()) : p.coa(),
        fmt::format("0x{:08x}", p.downlink_gre_key()),
        std::to_string(p.if_label()),
        p.live() ? "yes" : "no",
        fmt::format("{}s", p.expires_in_seconds())};
}

// The ANCHOR column: the node anchoring each home prefix, in the order of HOME PREFIX
// (distributed anchoring: an old prefix at another node, the others at anchor_node).
std::string prefix_anchors(const hag::v1::Binding& b) {
    if (b.prefix_anchors().empty()) {
        return b.anchor_node().empty() ? "-" : b.anchor_node();
    }
    std::string out;
    for (const auto& p : b.home_prefixes()) {
        std::string node = b.anchor_node().empty() ? "-" : b.anchor_node();
        for (const auto& a : b.prefix_anchors()) {
            if (a.prefix() == p) {
                node = a.anchor_node();
            }
        }
        out += (out.empty() ? "" : ",") + node;
    }
    return out;
}

}  // namespace

std::string bindings_table(const hag::v1::ListBindingsResponse& r) {
    if (r.bindings().empty()) {
        return fmt::format("no bindings match ({} session(s) in the cache)\n", r.total_sessions());
    }
    std::vector<std::vector<std::string>> rows;
    auto h = path_header();
    // A DELEGATED column (RFC 7148 prefixes) only when a binding shown has one.
    const bool delegated = std::any_of(r.bindings().begin(), r.bindings().end(), [](const auto& b) {
        return b.delegated_prefixes_size() > 0;
    });
    // NODE and ANCHOR columns (cluster binding store, docs/scale-out.md) only when a binding
    // shown has them.
    const bool cluster = std::any_of(r.bindings().begin(), r.bindings().end(),
                                     [](const auto& b) { return !b.serving_node().empty(); });
    auto lead = [&](const hag::v1::Binding& b) {
        std::vector<std::string> c{b.nai(), join(b.home_prefixes())};
        if (delegated) {
            c.push_back(b.delegated_prefixes().empty() ? "-" : join(b.delegated_prefixes()));
        }
        c.push_back(fmt::format("0x{:08x}", b.uplink_gre_key()));
        if (cluster) {
            c.push_back(b.serving_node().empty() ? "-" : b.serving_node());
            c.push_back(prefix_anchors(b));
        }
        return c;
    };
    std::vector<std::string> lead_head{"NAI", "HOME PREFIX"};
    if (delegated) {
        lead_head.push_back("DELEGATED");
    }
    lead_head.push_back("UL-KEY");
    if (cluster) {
        lead_head.push_back("NODE");
        lead_head.push_back("ANCHOR");
    }
    const std::size_t lead_cells = lead_head.size();
    h.insert(h.begin(), lead_head.begin(), lead_head.end());
    rows.push_back(h);
    for (const auto& b : r.bindings()) {
        bool first = true;
        for (const auto& p : b.paths()) {
            auto cells = path_cells(p);
            if (first) {
                auto l = lead(b);
                cells.insert(cells.begin(), l.begin(), l.end());
            } else {
                cells.insert(cells.begin(), lead_cells, std::string());
            }
            first = false;
            rows.push_back(std::move(cells));
        }
        if (b.paths().empty()) {
            rows.push_back(lead(b));
        }
    }
    std::string out = render_table(rows);
    out += fmt::format("{} binding(s) shown, {} session(s) in the cache\n", r.bindings_size(),
                       r.total_sessions());
    if (!r.next_page_token().empty()) {
        out += fmt::format("more: --page-token {}\n", r.next_page_token());
    }
    return out;
}

std::string binding_detail(const hag::v1::Binding& b) {
    std::vector<std::vector<std::string>> head{{"NAI:", b.nai()},
                                               {"Home prefixes:", join(b.home_prefixes())}};
    if (!b.ipv4_home_address().empty()) {  // RFC 5844; the row only when there is one
        head.push_back({"IPv4 home address:", b.ipv4_home_address()});
    }
    if (!b.delegated_prefixes().empty()) {
        head.push_back({"Delegated prefixes:", join(b.delegated_prefixes())});
    }
    head.push_back({"Uplink GRE key:", fmt::format("0x{:08x}", b.uplink_gre_key())});
    head.push_back({"Last sequence:", std::to_string(b.last_sequence())});
    if (!b.serving_node().empty()) {  // cluster binding store (docs/scale-out.md)
        head.push_back({"Served by node:", b.serving_node()});
        head.push_back({"Anchor node:", b.anchor_node()});
    }
    // Distributed anchoring: where each home prefix is anchored.
    for (const auto& a : b.prefix_anchors()) {
        head.push_back(
            {"Prefix anchor:",
             fmt::format("{} at {} ({}), relayed: uplink key 0x{:08x}{}, downlink key "
                         "0x{:08x}",
                         a.prefix(), a.anchor_node(), a.anchor_address(), a.uplink_key(),
                         a.uplink_key() == 0 ? " (not registered there)" : "", a.downlink_key())});
    }
    head.push_back({"Paths:", std::to_string(b.paths_size())});
    std::string out = render_table(head);
    if (!b.paths().empty()) {
        std::vector<std::vector<std::string>> rows{path_header()};
        for (const auto& p : b.paths()) {
            rows.push_back(path_cells(p));
        }
        out += "\n" + render_table(rows);
    }
    if (!b.flow_bindings().empty()) {
        std::vector<std::vector<std::string>> rows{
            {"FID", "PRIORITY", "SELECTOR", "ACTION", "NOW"}};
        for (const auto& f : b.flow_bindings()) {
            std::string action = "discard";
            if (!f.discard()) {
                action = "forward bid";
                for (int i = 0; i < f.bids_size(); ++i) {
                    action += fmt::format("{}{}", i == 0 ? " " : ", ", f.bids(i));
                }
            }
            rows.push_back({std::to_string(f.fid()), std::to_string(f.priority()), f.selector(),
                            action, f.now()});
        }
        out += "\nFlow bindings (RFC 6089):\n" + render_table(rows);
    }
    return out;
}

std::string event_line(const hag::v1::BindingEvent& e) {
    std::string paths;
    for (const auto& p : e.binding().paths()) {
        paths += fmt::format("{}{}@{}", paths.empty() ? "" : " ", p.bid(), p.coa());
    }
    return fmt::format("{} {} nai={} prefixes={} paths=[{}]\n", e.unix_time_ms(),
                       hag::v1::BindingEvent::Kind_Name(e.kind()), e.binding().nai(),
                       join(e.binding().home_prefixes()), paths);
}

std::string counters_table(const hag::v1::Counters& c) {
    std::vector<std::vector<std::string>> rows{{"COUNTER", "VALUE"}};
    for (const auto& x : c.counters()) {
        rows.push_back({x.name(), std::to_string(x.value())});
    }
    return render_table(rows);
}

std::string delete_summary(const std::string& nai, const hag::v1::DeleteBindingResponse& r) {
    return fmt::format("{}: {} path(s) removed{}, {} revocation(s) sent\n", nai, r.paths_removed(),
                       r.session_removed() ? ", session removed" : "", r.revocations_sent());
}

std::string dp_status_table(const hag::v1::DpStatusReply& r) {
    return render_table({{"Version:", r.version().empty() ? "-" : r.version()},
                         {"Uptime:", fmt::format("{} s", r.uptime_seconds())},
                         {"Generation:", r.generation() == 0 ? "0 (never programmed)"
                                                             : std::to_string(r.generation())},
                         {"Sessions:", fmt::format("{} of {}", r.sessions(), r.max_sessions())},
                         {"Batches applied:", std::to_string(r.batches_applied())},
                         {"Batches rejected:", std::to_string(r.batches_rejected())},
                         {"Resyncs:", std::to_string(r.resyncs())}});
}

std::string dp_counters_table(const hag::v1::DpStatusReply& r) {
    std::vector<std::vector<std::string>> rows{{"COUNTER", "VALUE"}};
    for (const auto& x : r.counters()) {
        rows.push_back({x.name(), std::to_string(x.value())});
    }
    return render_table(rows);
}

namespace {
std::string striping_name(const hag::v1::DpSession& s) {
    switch (s.striping()) {
        case hag::v1::STRIPING_WEIGHTED:
            return "weighted";
        case hag::v1::STRIPING_OVERFLOW:
            return s.overflow_burst_bytes() == 0
                       ? "overflow"
                       : fmt::format("overflow/{}B", s.overflow_burst_bytes());
        default:
            return fmt::format("mode-{}", static_cast<int>(s.striping()));
    }
}
}  // namespace

std::string dp_sessions_table(const hag::v1::DpListReply& r) {
    if (r.sessions().empty()) {
        return "no sessions\n";
    }
    std::vector<std::vector<std::string>> rows{{"ID", "NAI", "PREFIXES", "UL-KEY", "PATHS",
                                                "DL-PKTS", "DL-BYTES", "UL-PKTS", "UL-BYTES",
                                                "STRIPING", "UL-LOST", "UL-TIMEOUTS", "UL-DUPS"}};
    for (const auto& x : r.sessions()) {
        const auto& s = x.session();
        std::size_t live = 0;
        for (const auto& p : s.paths()) {
            live += p.live() ? 1 : 0;
        }
        rows.push_back(
            {std::to_string(s.id()), s.nai().empty() ? "-" : s.nai(), join(s.prefixes()),
             fmt::format("0x{:08x}", s.uplink_key()),
             fmt::format("{}/{} live", live, s.paths_size()), std::to_string(x.downlink_packets()),
             std::to_string(x.downlink_bytes()), std::to_string(x.uplink_packets()),
             std::to_string(x.uplink_bytes()), striping_name(s), std::to_string(x.reorder().lost()),
             std::to_string(x.reorder().timeouts()), std::to_string(x.reorder().duplicates())});
    }
    std::string out = render_table(rows);
    // Distributed anchoring: prefixes relayed to the node that anchors them.
    for (const auto& x : r.sessions()) {
        for (const auto& a : x.session().remote_anchors()) {
            out += fmt::format(
                "session {}: {} anchored at {} (from {}, keys up {} down {}); relayed up {} pkts "
                "{} B, down {} pkts {} B\n",
                x.session().id(), a.prefix(), a.anchor(), a.local(), a.uplink_key(),
                a.downlink_key(), x.relay_uplink_packets(), x.relay_uplink_bytes(),
                x.relay_downlink_packets(), x.relay_downlink_bytes());
        }
    }
    out += fmt::format("{} session(s) shown\n", r.sessions_size());
    if (r.more()) {
        out += fmt::format("more: --after {}\n", r.sessions(r.sessions_size() - 1).session().id());
    }
    return out;
}

std::string dp_policy_table(const hag::v1::DpListReply& r) {
    std::vector<std::vector<std::string>> sess{
        {"ID", "NAI", "PROFILE", "PINNED", "POLICY-DROPS", "UL-FORBIDDEN"}};
    std::vector<std::vector<std::string>> rules{
        {"ID", "NAI", "PROFILE", "RULE", "APPLICATION", "HITS", "DROPS", "UL-FORBIDDEN"}};
    for (const auto& x : r.sessions()) {
        const auto& s = x.session();
        const std::string nai = s.nai().empty() ? "-" : s.nai();
        if (!x.has_policy()) {
            sess.push_back({std::to_string(s.id()), nai, "-", "-", "-", "-"});
            continue;
        }
        const auto& p = x.policy();
        sess.push_back({std::to_string(s.id()), nai, p.profile(), std::to_string(p.pinned()),
                        std::to_string(p.drops()), std::to_string(p.uplink_forbidden())});
        for (int i = 0; i < p.rules_size(); ++i) {
            const auto& ru = p.rules(i);
            rules.push_back({std::to_string(s.id()), nai, p.profile(), std::to_string(i + 1),
                             ru.application(), std::to_string(ru.hits()),
                             std::to_string(ru.drops()), std::to_string(ru.uplink_forbidden())});
        }
    }
    if (sess.size() == 1) {
        return "no sessions\n";
    }
    std::string out = render_table(sess);
    if (rules.size() > 1) {
        out += "\nrules (counters of the profile, summed over its sessions):\n";
        out += render_table(rules);
    }
    if (r.more()) {
        out += fmt::format("more: --after {}\n", r.sessions(r.sessions_size() - 1).session().id());
    }
    return out;
}

std::string dp_paths_table(const hag::v1::DpListReply& r) {
    std::vector<std::vector<std::string>> rows{
        {"ID",       "NAI",     "BID",      "ACCESS",   "LABEL",        "LIVE",    "LOCAL",
         "COA",      "DL-KEY",  "WEIGHT",   "STRIPING", "RATE",         "PREF",    "DL-PKTS",
         "DL-BYTES", "UL-PKTS", "UL-BYTES", "UL-GAPS",  "UL-REORDERED", "UL-LATE", "UL-TIMED-OUT"}};
    for (const auto& x : r.sessions()) {
        const auto& s = x.session();
        for (int i = 0; i < s.paths_size(); ++i) {
            const auto& p = s.paths(i);
            // Counters of this path (same order as the session's paths; absent from an older
            // data plane).
            const hag::v1::DpPathStats* c =
                i < x.paths_size() && x.paths(i).bid() == p.bid() ? &x.paths(i) : nullptr;
            auto count = [c](std::uint64_t v) { return c == nullptr ? "-" : std::to_string(v); };
            // Reorder counters of this path (same position), if the data plane sent them.
            const hag::v1::DpPathReorderStats none;
            const auto& ro = i < x.path_reorder_size() ? x.path_reorder(i) : none;
            const bool overflow = s.striping() == hag::v1::STRIPING_OVERFLOW;
            const std::uint32_t rate = p.rate_kbps() != 0 ? p.rate_kbps() : p.weight_kbps();
            rows.push_back({std::to_string(s.id()),
                            s.nai().empty() ? "-" : s.nai(),
                            std::to_string(p.bid()),
                            access_type_name(p.access_technology()),
                            std::to_string(p.if_label()),
                            p.live() ? "yes" : "no",
                            p.local().empty() ? "-" : p.local(),
                            p.care_of(),
                            fmt::format("0x{:08x}", p.downlink_key()),
                            p.weight_kbps() == 0 ? "-" : fmt::format("{} kbit/s", p.weight_kbps()),
                            striping_name(s),
                            !overflow   ? "-"
                            : rate == 0 ? "unlimited"
                                        : fmt::format("{} kbit/s", rate),
                            overflow ? std::to_string(p.preference()) : "-",
                            count(c ? c->downlink_packets() : 0),
                            count(c ? c->downlink_bytes() : 0),
                            count(c ? c->uplink_packets() : 0),
                            count(c ? c->uplink_bytes() : 0),
                            std::to_string(ro.seq_gaps()),
                            std::to_string(ro.reordered()),
                            std::to_string(ro.late()),
                            std::to_string(ro.timed_out())});
        }
    }
    if (rows.size() == 1) {
        return "no paths\n";
    }
    std::string out = render_table(rows);
    if (r.more()) {
        out += fmt::format("more: --after {}\n", r.sessions(r.sessions_size() - 1).session().id());
    }
    return out;
}

SyncCheck dp_sync_check(const hag::v1::DataplaneSync& control, const hag::v1::DigestReply& dp) {
    SyncCheck c;
    const bool same = control.digest() == dp.digest() && control.sessions() == dp.sessions();
    c.in_sync = same && control.rejected() == 0;
    if (same) {
        c.text = fmt::format("in sync ({} sessions, digest {:016x}, generation {})\n",
                             dp.sessions(), dp.digest(), dp.generation());
    } else {
        c.text = fmt::format(
            "DIFFERENT (control {} sessions digest {:016x} generation {}, data plane {} sessions "
            "digest {:016x} generation {})\n",
            control.sessions(), control.digest(), control.generation(), dp.sessions(), dp.digest(),
            dp.generation());
    }
    if (control.rejected() != 0) {
        c.text += fmt::format(
            "{} session(s) refused by the data plane are not programmed (see hag-control's log)\n",
            control.rejected());
    }
    if (control.resync_hold_ms() != 0) {
        c.text += fmt::format(
            "hag-control is in its start-up hold: the data plane keeps an earlier hag-control's "
            "sessions for at most {} s more (docs/programming.md)\n",
            (control.resync_hold_ms() + 999) / 1000);
    } else if (!control.connected()) {
        c.text += "hag-control is not connected to the data plane (reconnecting)\n";
    }
    std::string cj = to_json(control, false), dj = to_json(dp, false);
    cj.pop_back();
    dj.pop_back();
    c.json = fmt::format("{{\"in_sync\": {}, \"control\": {}, \"dataplane\": {}}}\n",
                         c.in_sync ? "true" : "false", cj, dj);
    return c;
}

std::string to_json(const google::protobuf::Message& m, bool pretty) {
    google::protobuf::util::JsonPrintOptions o;
    o.add_whitespace = pretty;
    o.preserve_proto_field_names = true;
    o.always_print_primitive_fields = true;
    std::string out;
    (void)google::protobuf::util::MessageToJsonString(m, &out, o);
    if (out.empty() || out.back() != '\n') {
        out += "\n";
    }
    return out;
}

Failure describe_failure(const grpc::Status& s, const std::string& server,
                         const std::string& daemon) {
    switch (s.error_code()) {
        case grpc::StatusCode::UNAVAILABLE:
        case grpc::StatusCode::DEADLINE_EXCEEDED:
            return {fmt::format("hagctl: cannot reach {} at {}: {}", daemon, server,
                                s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED
                                    ? "no answer before the deadline"
                                    : s.error_message()),
                    kExitUnreachable};
        case grpc::StatusCode::NOT_FOUND:
            return {"hagctl: not found: " + s.error_message(), kExitError};
        case grpc::StatusCode::INVALID_ARGUMENT:
            return {"hagctl: invalid argument: " + s.error_message(), kExitError};
        case grpc::StatusCode::PERMISSION_DENIED:
            return {"hagctl: permission denied: " + s.error_message(), kExitError};
        case grpc::StatusCode::ALREADY_EXISTS:
            return {"hagctl: already exists: " + s.error_message(), kExitError};
        case grpc::StatusCode::FAILED_PRECONDITION:
            return {"hagctl: refused: " + s.error_message(), kExitError};
        case grpc::StatusCode::ABORTED:
            return {"hagctl: conflict: " + s.error_message(), kExitError};
        default:
            return {fmt::format("hagctl: error {}: {}", static_cast<int>(s.error_code()),
                                s.error_message()),
                    kExitError};
    }
}

std::string policy_text(const hag::v1::PolicyView& v) {
    std::string out;
    if (!v.nai().empty()) {
        const std::string who = v.has_session()
                                    ? fmt::format("session {} ({})", v.session(), v.nai())
                                    : "subscriber " + v.nai();
        if (!v.has_profile()) {
            return who + ": no policy profile applies; every flow is striped over the live paths\n";
        }
        const auto& prof = v.profiles(0);
        out += who + ", profile " + prof.name() +
               (v.merged() ? " (its flow bindings merged with the operator's profile)" : "") +
               (prof.runtime() ? " (edited at run time)" : "") + "\n";
        std::vector<std::vector<std::string>> rows{
            {"APPLICATION", "PREFERENCE", "PRIORITY", "NOW"}};
        if (prof.counters()) {
            rows[0].insert(rows[0].end(), {"HITS", "DROPS", "UL-FORBIDDEN"});
        }
        for (const auto& r : prof.rules()) {
            std::string pref;
            for (const auto& p : r.preference()) {
                pref += (pref.empty() ? "" : ", ") + p;
            }
            rows.push_back({r.application(), pref, std::to_string(r.priority()), r.resolved()});
            if (prof.counters()) {
                rows.back().insert(rows.back().end(),
                                   {std::to_string(r.hits()), std::to_string(r.drops()),
                                    std::to_string(r.uplink_forbidden())});
            }
        }
        out += render_table(rows);
        if (!prof.counters()) {
            out += "(no data plane counters for this profile)\n";
        }
        return out;
    }
    out += "labels:\n";
    for (const auto& l : v.labels()) {
        out += "  " + l + "\n";
    }
    out += "applications:\n";
    for (const auto& a : v.applications()) {
        out += "  " + a + "\n";
    }
    for (const auto& p : v.profiles()) {
        out += "profile " + p.name() + (p.name() == v.default_profile() ? " (default)" : "") +
               (p.runtime() ? " (edited at run time)" : "") + ":\n";
        for (const auto& r : p.rules()) {
            out += "  " + r.text();
            if (p.counters()) {
                out += fmt::format("   [hits {} drops {} uplink-forbidden {}]", r.hits(), r.drops(),
                                   r.uplink_forbidden());
            }
            out += "\n";
        }
    }
    if (v.default_profile().empty()) {
        out += "no default profile: subscribers without one are striped\n";
    }
    out += fmt::format("policy version {}", v.version());
    if (v.runtime_edits().empty()) {
        out += " (the configuration file's; no run-time edits)\n";
    } else {
        out += "; run-time edits over the configuration file:\n";
        for (const auto& e : v.runtime_edits()) {
            out += "  " + e + "\n";
        }
    }
    return out;
}

std::optional<hag::v1::PolicyRule> parse_rule_shorthand(std::string_view text, std::string& error) {
    const auto eq = text.find('=');
    if (eq == std::string_view::npos || eq == 0) {
        error = "expected APPLICATION=LABEL,...,DROP|STRIPE[@PRIORITY]";
        return std::nullopt;
    }
    hag::v1::PolicyRule r;
    r.set_application(std::string(text.substr(0, eq)));
    std::string_view list = text.substr(eq + 1);
    if (const auto at = list.rfind('@'); at != std::string_view::npos) {
        const std::string prio(list.substr(at + 1));
        char* end = nullptr;
        errno = 0;
        const long v = std::strtol(prio.c_str(), &end, 10);
        if (prio.empty() || *end != '\0' || errno != 0 || v < INT32_MIN || v > INT32_MAX) {
            error = "the priority after @ is not a 32-bit integer";
            return std::nullopt;
        }
        r.set_priority(static_cast<std::int32_t>(v));
        list = list.substr(0, at);
    }
    while (!list.empty()) {
        const auto comma = list.find(',');
        const std::string_view step = list.substr(0, comma);
        if (step.empty()) {
            error = "an empty preference step";
            return std::nullopt;
        }
        r.add_preference(std::string(step));
        if (comma == std::string_view::npos) {
            break;
        }
        list = list.substr(comma + 1);
        if (list.empty()) {
            error = "an empty preference step";
            return std::nullopt;
        }
    }
    if (r.preference().empty()) {
        error = "no preference list after =";
        return std::nullopt;
    }
    return r;
}

// `hagctl policy add|replace|remove ...`: the edit's outcome.
std::string policy_edit_line(const hag::v1::EditPolicyReply& r) {
    return fmt::format("policy version {}: {}{}\n", r.version(), r.summary(),
                       r.persisted() ? "" : " (not persisted: persistence is off)");
}

std::string policy_decision_line(const hag::v1::PolicyDecision& d) {
    return (d.profile().empty() ? std::string() : "profile " + d.profile() + ": ") + d.text() +
           "\n";
}

}  // namespace hag::hagctl
