// hagctl: operator CLI of hag-control over the management gRPC API.
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <google/protobuf/text_format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include <fmt/format.h>

#include "format.hpp"
#include "hag/v1/dataplane.grpc.pb.h"
#include "hag/v1/management.grpc.pb.h"

namespace {

using hag::hagctl::describe_failure;

struct Globals {
    std::string server = "unix:/run/hag/control.sock";
    std::string dataplane = "unix:/run/hag/dataplane.sock";
    std::string output = "table";
    double timeout_s = 5.0;
    // TLS toward a management API on TCP (docs/management-api.md): all empty = plaintext.
    std::string tls_ca, tls_cert, tls_key, tls_server_name;
};

std::string read_file_or_exit(const std::string& path, const char* what) {
    std::ifstream in(path);
    if (!in) {
        std::fprintf(stderr, "hagctl: %s %s: %s\n", what, path.c_str(), std::strerror(errno));
        std::exit(2);
    }
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// Plaintext, or TLS with our certificate when --tls-ca is given (unix sockets: plaintext; their
// file permissions are the access control).
std::shared_ptr<grpc::ChannelCredentials> management_credentials(const Globals& g,
                                                                 grpc::ChannelArguments& args) {
    if (g.tls_ca.empty() || g.server.rfind("unix:", 0) == 0) {
        return grpc::InsecureChannelCredentials();
    }
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = read_file_or_exit(g.tls_ca, "--tls-ca");
    if (!g.tls_cert.empty()) {
        o.pem_cert_chain = read_file_or_exit(g.tls_cert, "--tls-cert");
    }
    if (!g.tls_key.empty()) {
        o.pem_private_key = read_file_or_exit(g.tls_key, "--tls-key");
    }
    if (!g.tls_server_name.empty()) {
        args.SetSslTargetNameOverride(g.tls_server_name);
    }
    return grpc::SslCredentials(o);
}

class Client {
  public:
    explicit Client(const Globals& g) : g_(g) {
        grpc::ChannelArguments args;
        args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
        auto creds = management_credentials(g, args);
        stub_ = hag::v1::Management::NewStub(grpc::CreateCustomChannel(g.server, creds, args));
    }
    void deadline(grpc::ClientContext& ctx) const {
        ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(static_cast<long>(g_.timeout_s * 1000)));
    }
    // Prints the failure and returns its exit code.
    int fail(const grpc::Status& s) const {
        auto f = describe_failure(s, g_.server);
        std::fprintf(stderr, "%s\n", f.message.c_str());
        return f.exit_code;
    }
    bool json() const { return g_.output == "json"; }
    hag::v1::Management::Stub& stub() { return *stub_; }

  private:
    const Globals& g_;
    std::unique_ptr<hag::v1::Management::Stub> stub_;
};

void out(const std::string& s) {
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
}

// A missing or forbidden unix socket gives a clearer message than gRPC's generic one.
bool socket_unusable(const std::string& target, const char* daemon) {
    if (target.rfind("unix:", 0) != 0) {
        return false;
    }
    struct stat st {};
    const std::string path = target.substr(5);
    if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) {
        std::fprintf(stderr,
                     "hagctl: cannot reach %s at %s: socket %s does not exist (is "
                     "%s running?)\n",
                     daemon, target.c_str(), path.c_str(), daemon);
        return true;
    }
    if (::access(path.c_str(), R_OK | W_OK) != 0) {
        std::fprintf(stderr,
                     "hagctl: cannot reach %s at %s: %s on %s (only the socket's owner "
                     "and group may connect)\n",
                     daemon, target.c_str(), std::strerror(errno), path.c_str());
        return true;
    }
    return false;
}

// hag-dataplane's DataplaneProgrammer, called directly.
class DpClient {
  public:
    explicit DpClient(const Globals& g) : g_(g) {
        grpc::ChannelArguments args;
        args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
        args.SetMaxReceiveMessageSize(64 << 20);
        stub_ = hag::v1::DataplaneProgrammer::NewStub(
            grpc::CreateCustomChannel(g.dataplane, grpc::InsecureChannelCredentials(), args));
    }
    void deadline(grpc::ClientContext& ctx) const {
        ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(static_cast<long>(g_.timeout_s * 1000)));
    }
    int fail(const grpc::Status& s) const {
        auto f = describe_failure(s, g_.dataplane, "hag-dataplane");
        std::fprintf(stderr, "%s\n", f.message.c_str());
        return f.exit_code;
    }
    hag::v1::DataplaneProgrammer::Stub& stub() { return *stub_; }

  private:
    const Globals& g_;
    std::unique_ptr<hag::v1::DataplaneProgrammer::Stub> stub_;
};

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"hagctl: operator CLI of hag-control (management gRPC API)"};
    app.require_subcommand(1);
    Globals g;
    app.add_option("-s,--server", g.server, "unix:/path or host:port")->capture_default_str();
    app.add_option(
        "--tls-ca", g.tls_ca,
        "TCP: PEM CA certificate(s) the server's certificate must chain to (enables TLS)");
    app.add_option("--tls-cert", g.tls_cert, "TCP with TLS: PEM client certificate")
        ->needs("--tls-ca");
    app.add_option("--tls-key", g.tls_key, "TCP with TLS: PEM private key of --tls-cert")
        ->needs("--tls-cert");
    app.add_option("--tls-server-name", g.tls_server_name,
                   "TCP with TLS: name to check in the server certificate instead of the host")
        ->needs("--tls-ca");
    app.add_option("-o,--output", g.output, "table or json")
        ->check(CLI::IsMember({"table", "json"}))
        ->capture_default_str();
    app.add_option("--timeout", g.timeout_s, "seconds to wait for each call")
        ->check(CLI::Range(0.1, 3600.0))
        ->capture_default_str();

    auto* bindings = app.add_subcommand("bindings", "binding cache")->require_subcommand(1);
    hag::v1::ListBindingsRequest list_req;
    auto* list = bindings->add_subcommand("list", "list bindings (filters combine with AND)");
    std::string nai, prefix, mag, coa, token;
    std::uint32_t limit = 0;
    bool all_pages = false;
    list->add_option("--nai", nai, "mobile node identifier");
    list->add_option("--prefix", prefix, "home network prefix, e.g. 2001:db8:1::/64");
    list->add_option("--mag", mag, "MAG identifier of any path");
    list->add_option("--coa", coa, "care-of address of any path");
    list->add_option("--limit", limit, "page size (1..10000, default 100)");
    list->add_option("--page-token", token, "token printed by the previous page");
    list->add_flag("--all", all_pages, "fetch every page");

    std::string show_nai;
    auto* show = bindings->add_subcommand("show", "show one binding");
    show->add_option("nai", show_nai, "mobile node identifier")->required();

    bool snapshot = false;
    auto* watch = bindings->add_subcommand("watch", "stream binding changes until interrupted");
    watch->add_flag("--snapshot", snapshot, "start with every existing binding");

    std::string del_nai;
    std::uint32_t del_bid = 0;
    auto* del = bindings->add_subcommand("delete", "delete a binding (sends revocations)");
    del->add_option("nai", del_nai, "mobile node identifier")->required();
    del->add_option("--bid", del_bid, "remove only the path with this binding identifier");

    auto* counters = app.add_subcommand("counters", "daemon counters");

    auto* pol = app.add_subcommand("policy", "flow policy")->require_subcommand(1);
    std::string pol_nai;
    std::uint32_t pol_session = 0, eval_session = 0;
    bool pol_no_counters = false;
    auto* pol_show = pol->add_subcommand(
        "show",
        "the whole policy, or a subscriber's profile resolved against its paths (with the data "
        "plane's per-rule counters)");
    pol_show->add_option("nai", pol_nai, "mobile node identifier");
    auto* pol_show_session = pol_show->add_option(
        "--session", pol_session,
        "a session by its id (hagctl dataplane policy): its merged profile, flow bindings "
        "included");
    pol_show->add_flag("--no-counters", pol_no_counters, "do not ask the data plane for counters");
    hag::v1::EvaluatePolicyRequest eval;
    std::string eval_proto = "tcp";
    std::uint32_t eval_spi = 0;
    auto* pol_test = pol->add_subcommand("test", "what the policy does with one packet");
    pol_test->add_option("nai", *eval.mutable_nai(), "mobile node identifier");
    auto* eval_session_opt = pol_test->add_option(
        "--session", eval_session,
        "a session by its id instead of a NAI: its merged profile, flow bindings included");

    // Run-time edits (docs/policy.md "Run-time edits"). Each builds one EditPolicyRequest.
    hag::v1::EditPolicyRequest edit;
    std::vector<CLI::App*> edit_cmds;
    std::uint64_t expected_version = 0;
    std::string e_name, e_profile, e_app, e_nai;
    std::vector<std::string> e_matches, e_rules, e_prefs;
    std::int32_t e_priority = 0;
    const auto edit_cmd = [&](CLI::App* parent, const char* name, const char* help) {
        auto* c = parent->add_subcommand(name, help);
        c->add_option("--expected-version", expected_version,
                      "refuse unless the policy is at this version (hagctl policy show)");
        edit_cmds.push_back(c);
        return c;
    };
    auto* pe_app = pol->add_subcommand("application", "add, replace or remove an application")
                       ->require_subcommand(1);
    for (const char* verb : {"add", "replace"}) {
        auto* c = edit_cmd(pe_app, verb,
                           "an application: its name and classifiers (any of them matches)");
        c->add_option("name", e_name, "application name")->required();
        c->add_option("--match", e_matches,
                      "a classifier in the configuration's syntax, e.g. 'protocol: 6 "
                      "remote_ports: \"80,443\"' (repeat: any matches)")
            ->required();
    }
    edit_cmd(pe_app, "remove", "an application no rule uses")
        ->add_option("name", e_name, "application name")
        ->required();
    auto* pe_rule = pol->add_subcommand("rule", "add, replace or remove a rule of a profile")
                        ->require_subcommand(1);
    for (const char* verb : {"add", "replace"}) {
        auto* c =
            edit_cmd(pe_rule, verb, "the rule of an application in a profile: its preference list");
        c->add_option("profile", e_profile, "profile name")->required();
        c->add_option("application", e_app, "application name")->required();
        c->add_option("preference", e_prefs, "label names in order, ending in DROP or STRIPE")
            ->required();
        c->add_option("--priority", e_priority, "higher first (default 0)");
    }
    {
        auto* c = edit_cmd(pe_rule, "remove", "the rule of an application in a profile");
        c->add_option("profile", e_profile, "profile name")->required();
        c->add_option("application", e_app, "application name")->required();
    }
    auto* pe_prof =
        pol->add_subcommand("profile", "add, replace or remove a profile")->require_subcommand(1);
    for (const char* verb : {"add", "replace"}) {
        auto* c = edit_cmd(pe_prof, verb, "a profile with its rules, in order");
        c->add_option("name", e_name, "profile name")->required();
        c->add_option("--rule", e_rules,
                      "APPLICATION=LABEL,...,DROP|STRIPE[@PRIORITY], e.g. HTTP=BLUE,RED,DROP "
                      "(repeat, in order)");
    }
    edit_cmd(pe_prof, "remove", "a profile that is not the default and assigned to no one")
        ->add_option("name", e_name, "profile name")
        ->required();
    auto* pe_def =
        pol->add_subcommand("default", "set or remove the default profile")->require_subcommand(1);
    edit_cmd(pe_def, "set", "the profile of subscribers that have none")
        ->add_option("profile", e_profile, "profile name")
        ->required();
    edit_cmd(pe_def, "remove", "no default profile: subscribers without one stripe");
    {
        auto* c = edit_cmd(pol, "assign", "a subscriber's profile (added or replaced)");
        c->add_option("nai", e_nai, "mobile node identifier")->required();
        c->add_option("profile", e_profile, "profile name")->required();
    }
    edit_cmd(pol, "unassign", "a subscriber back to the default profile")
        ->add_option("nai", e_nai, "mobile node identifier")
        ->required();
    edit_cmd(pol, "revert", "drop every run-time edit: the configuration file's policy again");
    pol_test->add_option("--protocol", eval_proto, "tcp, udp, esp, ah, sctp or a number")
        ->capture_default_str();
    pol_test
        ->add_option(
            "--remote-port",
            [&eval](const CLI::results_t& r) {
                eval.set_remote_port(static_cast<std::uint32_t>(std::stoul(r[0])));
                return true;
            },
            "the other end's port")
        ->check(CLI::Range(0, 65535));
    pol_test
        ->add_option(
            "--local-port",
            [&eval](const CLI::results_t& r) {
                eval.set_local_port(static_cast<std::uint32_t>(std::stoul(r[0])));
                return true;
            },
            "the subscriber's port")
        ->check(CLI::Range(0, 65535));
    pol_test->add_option("--remote", *eval.mutable_remote_address(), "the other end's address");
    pol_test->add_option("--local", *eval.mutable_local_address(),
                         "the subscriber's address (default: its first home prefix)");
    pol_test
        ->add_option(
            "--dscp",
            [&eval](const CLI::results_t& r) {
                eval.set_dscp(static_cast<std::uint32_t>(std::stoul(r[0])));
                return true;
            },
            "DSCP code point")
        ->check(CLI::Range(0, 63));
    auto* spi_opt = pol_test->add_option("--spi", eval_spi, "IPsec SPI");

    auto* dp = app.add_subcommand("dataplane", "hag-dataplane, over its programming socket")
                   ->require_subcommand(1)
                   ->fallthrough();
    app.add_option("--dataplane", g.dataplane, "hag-dataplane: unix:/path or host:port")
        ->capture_default_str();
    auto* dp_status = dp->add_subcommand("status", "generation, sessions, batches")->fallthrough();
    auto* dp_stats = dp->add_subcommand("stats", "data plane counters")->fallthrough();
    std::uint32_t dp_limit = 100, dp_after = 0;
    bool dp_all = false;
    std::string dp_nai;
    auto* dp_sessions =
        dp->add_subcommand("sessions", "programmed sessions with traffic counters")->fallthrough();
    auto* dp_paths = dp->add_subcommand("paths", "programmed paths, one row each")->fallthrough();
    auto* dp_policy =
        dp->add_subcommand("policy",
                           "flow policy per session: its profile, per-rule hits and drops")
            ->fallthrough();
    for (auto* sc : {dp_sessions, dp_paths, dp_policy}) {
        sc->add_option("--limit", dp_limit, "sessions per page (1..1000)")
            ->check(CLI::Range(1u, 1000u));
        sc->add_option("--after", dp_after, "start after this session id (from \"more:\")");
        sc->add_flag("--all", dp_all, "fetch every page");
        sc->add_option("--nai", dp_nai, "only this subscriber (fetches every page)");
    }
    auto* dp_check =
        dp->add_subcommand("check",
                           "compare hag-control's digest with the data plane's (exit 1: different)")
            ->fallthrough();
    auto* version = app.add_subcommand("version", "hagctl and hag-control versions");

    std::string log_daemon, log_level;
    auto* log_cmd = app.add_subcommand(
        "log-level", "show or set the log level of hag-control or hag-dataplane at run time");
    log_cmd->add_option("daemon", log_daemon, "control or dataplane")
        ->required()
        ->check(CLI::IsMember({"control", "dataplane"}));
    log_cmd->add_option(
        "level", log_level,
        "trace, debug, info, warn, error, critical or off (omit: show the level; the daemon "
        "checks it)");

    CLI11_PARSE(app, argc, argv);

    if (version->parsed()) {
        std::printf("hagctl %s\n", HAG_VERSION);
    }
    if (log_cmd->parsed()) {
        const bool to_dp = log_daemon == "dataplane";
        if (socket_unusable(to_dp ? g.dataplane : g.server,
                            to_dp ? "hag-dataplane" : "hag-control")) {
            return hag::hagctl::kExitUnreachable;
        }
        std::string level, previous;
        if (to_dp) {
            DpClient d(g);
            grpc::ClientContext ctx;
            d.deadline(ctx);
            hag::v1::DpLogLevelRequest req;
            req.set_level(log_level);
            hag::v1::DpLogLevelReply r;
            if (auto s = d.stub().SetLogLevel(&ctx, req, &r); !s.ok()) {
                return d.fail(s);
            }
            level = r.level();
            previous = r.previous();
        } else {
            Client c(g);
            grpc::ClientContext ctx;
            c.deadline(ctx);
            hag::v1::SetLogLevelRequest req;
            req.set_level(log_level);
            hag::v1::LogLevelReply r;
            if (auto s = c.stub().SetLogLevel(&ctx, req, &r); !s.ok()) {
                return c.fail(s);
            }
            level = r.level();
            previous = r.previous();
        }
        const std::string name = to_dp ? "hag-dataplane" : "hag-control";
        if (g.output == "json") {
            out(fmt::format("{{\"daemon\":\"{}\",\"level\":\"{}\",\"previous\":\"{}\"}}\n", name,
                            level, previous));
        } else if (log_level.empty()) {
            out(fmt::format("{}: log level {}\n", name, level));
        } else {
            out(fmt::format("{}: log level {} (was {})\n", name, level, previous));
        }
        return hag::hagctl::kExitOk;
    }
    if (dp->parsed()) {
        if (dp_check->parsed() && socket_unusable(g.server, "hag-control")) {
            return hag::hagctl::kExitUnreachable;
        }
        if (socket_unusable(g.dataplane, "hag-dataplane")) {
            return hag::hagctl::kExitUnreachable;
        }
        DpClient d(g);
        const bool json = g.output == "json";
        if (dp_status->parsed() || dp_stats->parsed()) {
            grpc::ClientContext ctx;
            d.deadline(ctx);
            hag::v1::DpStatusReply r;
            auto s = d.stub().Status(&ctx, {}, &r);
            if (!s.ok()) {
                return d.fail(s);
            }
            out(json                  ? hag::hagctl::to_json(r)
                : dp_status->parsed() ? hag::hagctl::dp_status_table(r)
                                      : hag::hagctl::dp_counters_table(r));
            return 0;
        }
        if (dp_sessions->parsed() || dp_paths->parsed() || dp_policy->parsed()) {
            hag::v1::DpListRequest req;
            req.set_limit(dp_limit);
            req.set_after_id(dp_after);
            req.set_first_page(dp_after == 0);
            dp_all = dp_all || !dp_nai.empty();
            hag::v1::DpListReply all;
            for (;;) {
                grpc::ClientContext ctx;
                d.deadline(ctx);
                hag::v1::DpListReply r;
                auto s = d.stub().ListSessions(&ctx, req, &r);
                if (!s.ok()) {
                    return d.fail(s);
                }
                all.mutable_sessions()->MergeFrom(r.sessions());
                all.set_more(r.more());
                if (!dp_all || !r.more() || r.sessions().empty()) {
                    break;
                }
                req.set_first_page(false);
                req.set_after_id(r.sessions(r.sessions_size() - 1).session().id());
            }
            if (!dp_nai.empty()) {
                hag::v1::DpListReply one;
                for (const auto& x : all.sessions()) {
                    if (x.session().nai() == dp_nai) {
                        *one.add_sessions() = x;
                    }
                }
                all = std::move(one);
            }
            out(json                    ? hag::hagctl::to_json(all)
                : dp_sessions->parsed() ? hag::hagctl::dp_sessions_table(all)
                : dp_policy->parsed()   ? hag::hagctl::dp_policy_table(all)
                                        : hag::hagctl::dp_paths_table(all));
            return 0;
        }
        // check: both sides at the same generation with nothing pending, then compare (a
        // few tries while changes are in flight).
        Client c(g);
        hag::v1::DataplaneSync ctl;
        hag::v1::DigestReply dr;
        for (int attempt = 0; attempt < 20; ++attempt) {
            if (attempt > 0) {
                std::this_thread::sleep_for(std::chrono::milliseconds(250));
            }
            {
                grpc::ClientContext ctx;
                c.deadline(ctx);
                auto s = c.stub().GetDataplaneSync(&ctx, {}, &ctl);
                if (!s.ok()) {
                    return c.fail(s);
                }
            }
            if (!ctl.configured()) {
                std::fprintf(stderr,
                             "hagctl: hag-control programs no data plane (no dataplane_socket in "
                             "its configuration)\n");
                return hag::hagctl::kExitError;
            }
            {
                grpc::ClientContext ctx;
                d.deadline(ctx);
                auto s = d.stub().Digest(&ctx, {}, &dr);
                if (!s.ok()) {
                    return d.fail(s);
                }
            }
            if (ctl.generation() == dr.generation() && ctl.pending() == 0 && ctl.connected()) {
                break;
            }
        }
        const auto r = hag::hagctl::dp_sync_check(ctl, dr);
        out(json ? r.json : r.text);
        return r.in_sync ? hag::hagctl::kExitOk : hag::hagctl::kExitError;
    }
    if (socket_unusable(g.server, "hag-control")) {
        return hag::hagctl::kExitUnreachable;
    }
    Client c(g);

    if (version->parsed()) {
        grpc::ClientContext ctx;
        c.deadline(ctx);
        hag::v1::VersionInfo v;
        auto s = c.stub().GetVersion(&ctx, {}, &v);
        if (!s.ok()) {
            return c.fail(s);
        }
        out(c.json() ? hag::hagctl::to_json(v)
                     : "hag-control " + v.version() + " (up " + std::to_string(v.uptime_seconds()) +
                           " s)\n");
        return 0;
    }
    for (CLI::App* ec : edit_cmds) {
        if (!ec->parsed()) {
            continue;
        }
        const std::string verb = ec->get_name();
        const std::string what = ec->get_parent()->get_name();
        using M = hag::v1::EditPolicyRequest;
        edit.set_mode(verb == "add"       ? M::ADD
                      : verb == "replace" ? M::REPLACE
                      : verb == "set"     ? M::SET
                      : verb == "assign"  ? M::SET
                                          : M::REMOVE);
        edit.set_expected_version(expected_version);
        if (what == "application") {
            auto* a = edit.mutable_application();
            a->set_name(e_name);
            for (const auto& m : e_matches) {
                if (!google::protobuf::TextFormat::ParseFromString(m, a->add_match())) {
                    std::fprintf(stderr,
                                 "hagctl: --match '%s' is not a classifier (TrafficClassifier "
                                 "fields as in the configuration: protocol, local_ports, "
                                 "remote_ports, local_prefixes, remote_prefixes, dscp, spi)\n",
                                 m.c_str());
                    return hag::hagctl::kExitError;
                }
            }
        } else if (what == "rule") {
            auto* r = edit.mutable_rule();
            r->set_profile(e_profile);
            r->mutable_rule()->set_application(e_app);
            r->mutable_rule()->set_priority(e_priority);
            for (const auto& p : e_prefs) {
                r->mutable_rule()->add_preference(p);
            }
        } else if (what == "profile") {
            auto* p = edit.mutable_profile();
            p->set_name(e_name);
            for (const auto& text : e_rules) {
                std::string why;
                auto r = hag::hagctl::parse_rule_shorthand(text, why);
                if (!r) {
                    std::fprintf(stderr, "hagctl: --rule '%s': %s\n", text.c_str(), why.c_str());
                    return hag::hagctl::kExitError;
                }
                *p->add_rules() = *r;
            }
        } else if (what == "default") {
            edit.set_default_profile(e_profile);
        } else if (verb == "assign" || verb == "unassign") {
            edit.mutable_assignment()->set_nai(e_nai);
            edit.mutable_assignment()->set_profile(e_profile);
        } else if (verb == "revert") {
            edit.set_revert(true);
        }
        grpc::ClientContext ctx;
        c.deadline(ctx);
        hag::v1::EditPolicyReply r;
        if (auto st = c.stub().EditPolicy(&ctx, edit, &r); !st.ok()) {
            return c.fail(st);
        }
        out(c.json() ? hag::hagctl::to_json(r) : hag::hagctl::policy_edit_line(r));
        return 0;
    }
    if (pol_show->parsed()) {
        grpc::ClientContext ctx;
        c.deadline(ctx);
        hag::v1::GetPolicyRequest req;
        req.set_nai(pol_nai);
        if (pol_show_session->count() > 0) {
            req.set_session(pol_session);
        }
        req.set_no_counters(pol_no_counters);
        hag::v1::PolicyView v;
        auto s = c.stub().GetPolicy(&ctx, req, &v);
        if (!s.ok()) {
            return c.fail(s);
        }
        out(c.json() ? hag::hagctl::to_json(v) : hag::hagctl::policy_text(v));
        return 0;
    }
    if (pol_test->parsed()) {
        static const std::pair<const char*, std::uint32_t> kNames[] = {
            {"tcp", 6},    {"udp", 17}, {"esp", 50},   {"ah", 51},
            {"sctp", 132}, {"icmp", 1}, {"icmpv6", 58}};
        bool known = false;
        for (const auto& [name, num] : kNames) {
            if (eval_proto == name) {
                eval.set_protocol(num);
                known = true;
            }
        }
        if (!known) {
            char* end = nullptr;
            const unsigned long n = std::strtoul(eval_proto.c_str(), &end, 10);
            if (eval_proto.empty() || *end != '\0' || n > 255) {
                std::fprintf(stderr,
                             "hagctl: --protocol '%s' is not tcp, udp, esp, ah, sctp, "
                             "icmp, icmpv6 or 0-255\n",
                             eval_proto.c_str());
                return hag::hagctl::kExitError;
            }
            eval.set_protocol(static_cast<std::uint32_t>(n));
        }
        if (spi_opt->count() > 0) {
            eval.set_spi(eval_spi);
        }
        if (eval_session_opt->count() > 0) {
            eval.set_session(eval_session);
        } else if (eval.nai().empty()) {
            std::fprintf(stderr, "hagctl: policy test needs a NAI or --session ID\n");
            return hag::hagctl::kExitError;
        }
        grpc::ClientContext ctx;
        c.deadline(ctx);
        hag::v1::PolicyDecision d;
        auto s = c.stub().EvaluatePolicy(&ctx, eval, &d);
        if (!s.ok()) {
            return c.fail(s);
        }
        out(c.json() ? hag::hagctl::to_json(d) : hag::hagctl::policy_decision_line(d));
        return 0;
    }
    if (counters->parsed()) {
        grpc::ClientContext ctx;
        c.deadline(ctx);
        hag::v1::Counters r;
        auto s = c.stub().GetCounters(&ctx, {}, &r);
        if (!s.ok()) {
            return c.fail(s);
        }
        out(c.json() ? hag::hagctl::to_json(r) : hag::hagctl::counters_table(r));
        return 0;
    }
    if (list->parsed()) {
        list_req.set_nai(nai);
        list_req.set_prefix(prefix);
        list_req.set_mag(mag);
        list_req.set_coa(coa);
        list_req.set_page_size(limit);
        list_req.set_page_token(token);
        hag::v1::ListBindingsResponse all;
        for (int page = 0;; ++page) {
            grpc::ClientContext ctx;
            c.deadline(ctx);
            hag::v1::ListBindingsResponse r;
            auto s = c.stub().ListBindings(&ctx, list_req, &r);
            if (!s.ok()) {
                return c.fail(s);
            }
            all.mutable_bindings()->MergeFrom(r.bindings());
            all.set_total_sessions(r.total_sessions());
            all.set_next_page_token(r.next_page_token());
            if (!all_pages || r.next_page_token().empty()) {
                break;
            }
            list_req.set_page_token(r.next_page_token());
        }
        out(c.json() ? hag::hagctl::to_json(all) : hag::hagctl::bindings_table(all));
        return 0;
    }
    if (show->parsed()) {
        grpc::ClientContext ctx;
        c.deadline(ctx);
        hag::v1::GetBindingRequest req;
        req.set_nai(show_nai);
        hag::v1::Binding b;
        auto s = c.stub().GetBinding(&ctx, req, &b);
        if (!s.ok()) {
            return c.fail(s);
        }
        out(c.json() ? hag::hagctl::to_json(b) : hag::hagctl::binding_detail(b));
        return 0;
    }
    if (del->parsed()) {
        grpc::ClientContext ctx;
        c.deadline(ctx);
        hag::v1::DeleteBindingRequest req;
        req.set_nai(del_nai);
        req.set_bid(del_bid);
        hag::v1::DeleteBindingResponse r;
        auto s = c.stub().DeleteBinding(&ctx, req, &r);
        if (!s.ok()) {
            return c.fail(s);
        }
        out(c.json() ? hag::hagctl::to_json(r) : hag::hagctl::delete_summary(del_nai, r));
        return 0;
    }
    if (watch->parsed()) {
        // No deadline on the stream itself; first wait (bounded) for the channel to connect so
        // an unreachable daemon still gives one clear line.
        grpc::ClientContext ctx;
        hag::v1::WatchBindingsRequest req;
        req.set_initial_snapshot(snapshot);
        auto reader = c.stub().WatchBindings(&ctx, req);
        hag::v1::BindingEvent ev;
        while (reader->Read(&ev)) {
            out(c.json() ? hag::hagctl::to_json(ev, false) : hag::hagctl::event_line(ev));
        }
        auto s = reader->Finish();
        if (!s.ok()) {
            return c.fail(s);
        }
        return 0;
    }
    return 0;
}
