#include "telemetry/prometheus.hpp"

#include <cmath>
#include <cstdio>

namespace hag::dp::prom {

namespace {

bool is_alpha(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_digit(char c) noexcept {
    return c >= '0' && c <= '9';
}

}  // namespace

bool valid_metric_name(std::string_view name) noexcept {
    if (name.empty() || !(is_alpha(name[0]) || name[0] == ':')) {
        return false;
    }
    for (char c : name) {
        if (!(is_alpha(c) || is_digit(c) || c == ':')) {
            return false;
        }
    }
    return true;
}

bool valid_label_name(std::string_view name) noexcept {
    if (name.empty() || !is_alpha(name[0])) {
        return false;
    }
    for (char c : name) {
        if (!(is_alpha(c) || is_digit(c))) {
            return false;
        }
    }
    return true;
}

namespace {
// The exposition format's escapes: backslash and newline everywhere, the double quote inside
// label values only; other control characters become '?'.
void append_escaped(std::string& out, std::string_view text, bool quote) {
    for (char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '"' && quote) {
            out += "\\\"";
        } else if (c == '\n') {
            out += "\\n";
        } else if (u < 0x20 || u == 0x7f) {
            out += '?';
        } else {
            out += c;
        }
    }
}
}  // namespace

void append_label_value(std::string& out, std::string_view value) {
    append_escaped(out, value, true);
}

void append_help(std::string& out, std::string_view help) {
    append_escaped(out, help, false);
}

std::string escape_label_value(std::string_view value) {
    std::string out;
    append_label_value(out, value);
    return out;
}

void Writer::family(std::string_view name, std::string_view type, std::string_view help) {
    if (!valid_metric_name(name)) {
        return;
    }
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    append_help(out_, help);
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
}

bool Writer::labels(std::string_view name, std::initializer_list<Label> labels) {
    if (!valid_metric_name(name)) {
        return false;
    }
    for (const auto& l : labels) {
        if (!valid_label_name(l.name)) {
            return false;
        }
    }
    out_ += name;
    if (labels.size() > 0) {
        out_ += '{';
        bool first = true;
        for (const auto& l : labels) {
            if (!first) {
                out_ += ',';
            }
            first = false;
            out_ += l.name;
            out_ += "=\"";
            append_label_value(out_, l.value);
            out_ += '"';
        }
        out_ += '}';
    }
    out_ += ' ';
    return true;
}

void Writer::sample(std::string_view name, std::initializer_list<Label> labels,
                    std::uint64_t value) {
    if (this->labels(name, labels)) {
        out_ += std::to_string(value);
        out_ += '\n';
    }
}

void Writer::sample(std::string_view name, std::initializer_list<Label> labels, double value) {
    if (!this->labels(name, labels)) {
        return;
    }
    if (std::isnan(value)) {
        out_ += "NaN";
    } else if (std::isinf(value)) {
        out_ += value > 0 ? "+Inf" : "-Inf";
    } else {
        char buf[64];
        const int n = std::snprintf(buf, sizeof buf, "%.10g", value);
        out_.append(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    }
    out_ += '\n';
}

}  // namespace hag::dp::prom
