// hagctl output: human tables and JSON for management API responses. Pure functions, tested.
#pragma once

#include <grpcpp/support/status.h>

#include <string>

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
std::string delete_summary(const std::string& nai, const hag::v1::DeleteBindingResponse& r);

// One JSON document (pretty when `pretty`), proto field names, defaults printed.
std::string to_json(const google::protobuf::Message& m, bool pretty = true);

// Error text and exit code for a failed call to `server`.
struct Failure {
    std::string message;
    int exit_code;
};
Failure describe_failure(const grpc::Status& s, const std::string& server);

}  // namespace hag::hagctl
