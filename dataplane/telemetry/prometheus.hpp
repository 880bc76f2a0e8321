// Prometheus text exposition format (version 0.0.4): a writer for metric families and samples.
//
//   # HELP hag_stage_drops_total Packets a stage dropped, by reason.
//   # TYPE hag_stage_drops_total counter
//   hag_stage_drops_total{stage="uplink_decap",reason="unknown_key"} 3
//
// Label values are escaped as the format requires (backslash, double quote, line feed); other
// control characters, which no label of ours should carry, become '?'. Names are checked
// against the format's grammar: a bad name is a bug, and the writer skips the sample rather
// than emit a line a scraper would reject.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace hag::dp::prom {

struct Label {
    std::string_view name;
    std::string_view value;
};

[[nodiscard]] bool valid_metric_name(std::string_view name) noexcept;  // [a-zA-Z_:][a-zA-Z0-9_:]*
[[nodiscard]] bool valid_label_name(std::string_view name) noexcept;   // [a-zA-Z_][a-zA-Z0-9_]*
void append_label_value(std::string& out, std::string_view value);     // escaped, no quotes
void append_help(std::string& out, std::string_view help);             // escaped
[[nodiscard]] std::string escape_label_value(std::string_view value);

class Writer {
  public:
    // Starts a family; every sample of it must follow before the next family.
    void family(std::string_view name, std::string_view type, std::string_view help);
    void sample(std::string_view name, std::initializer_list<Label> labels, std::uint64_t value);
    void sample(std::string_view name, std::initializer_list<Label> labels, double value);
    [[nodiscard]] const std::string& text() const noexcept { return out_; }
    std::string take() { return std::move(out_); }

  private:
    bool labels(std::string_view name, std::initializer_list<Label> labels);
    std::string out_;
};

}  // namespace hag::dp::prom
