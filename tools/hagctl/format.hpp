// hagctl output: human tables and JSON for management API responses. Pure functions, tested.
#pragma once

#include <grpcpp/support/status.h>

#include <optional>
#include <string>
#include <string_view>

#include "hag/v1/dataplane.pb.h"
#include "hag/v1/management.pb.h"

namespace hag::hagctl {

// Exit codes: 0 success, 1 the daemon answered with an error, 2 the daemon is unreachable.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUnreachable = 2;

// Fixed-width text table (columns separated by two spaces, header row first).
std::string render_table(const std::vector<std::vector<std::string>>& rows);

std::string access_type_name(std::uint32_t att);  // ATT value (RFC 5213 §8.5) as text

std::string bindings_table(const hag::v1::ListBindingsResponse& r);
std::string binding_detail(const hag::v1::Binding& b);
std::string event_line(const hag::v1::BindingEvent& e);
std::string counters_table(const hag::v1::Counters& c);
// `hagctl policy show [NAI]` and `hagctl policy test`.
std::string policy_text(const hag::v1::PolicyView& v);
std::string policy_decision_line(const hag::v1::PolicyDecision& d);
std::string policy_edit_line(const hag::v1::EditPolicyReply& r);
// `--rule APPLICATION=LABEL,...,DROP|STRIPE[@PRIORITY]` of `hagctl policy profile add`.
// nullopt with `error` set when it is not of that form (names are checked by hag-control).
std::optional<hag::v1::PolicyRule> parse_rule_shorthand(std::string_view text, std::string& error);
std::string delete_summary(const std::string& nai, const hag::v1::DeleteBindingResponse& r);

// hag-dataplane (DataplaneProgrammer), `hagctl dataplane ...`.
std::string dp_status_table(const hag::v1::DpStatusReply& r);
std::string dp_counters_table(const hag::v1::DpStatusReply& r);
std::string dp_sessions_table(const hag::v1::DpListReply& r);
std::string dp_paths_table(const hag::v1::DpListReply& r);
// `hagctl dataplane policy`: one row per rule of each session's profile (the profile's
// counters), and the session's own policy counters.
std::string dp_policy_table(const hag::v1::DpListReply& r);

// `hagctl dataplane check`: control's view against the data plane's digest.
struct SyncCheck {
    bool in_sync = false;  // same sessions and digest, nothing refused
    std::string text;      // one or two lines
    std::string json;
};
SyncCheck dp_sync_check(const hag::v1::DataplaneSync& control, const hag::v1::DigestReply& dp);

// One JSON document (pretty when `pretty`), proto field names, defaults printed.
std::string to_json(const google::protobuf::Message& m, bool pretty = true);

// Error text and exit code for a failed call to `server`.
struct Failure {
    std::string message;
    int exit_code;
};
// `daemon` names what was called ("hag-control", "hag-dataplane").
Failure describe_failure(const grpc::Status& s, const std::string& server,
                         const std::string& daemon = "hag-control");

}  // namespace hag::hagctl
