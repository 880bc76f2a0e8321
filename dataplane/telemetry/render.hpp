// A Snapshot as operators read it: Prometheus text (the /metrics endpoint), one JSON object
// (printed at exit), one log line (--stats-interval). Metric names are listed in
// docs/dataplane.md.
#pragma once

#include <string>

#include "telemetry/snapshot.hpp"

namespace hag::dp {

[[nodiscard]] std::string render_prometheus(const Snapshot& s);
[[nodiscard]] std::string render_json(const Snapshot& s);
// `prev` (may be null) is the snapshot `seconds` earlier: rates are computed from it.
[[nodiscard]] std::string render_summary(const Snapshot& s, const Snapshot* prev, double seconds);
void append_json_string(std::string& out, std::string_view s);

}  // namespace hag::dp
