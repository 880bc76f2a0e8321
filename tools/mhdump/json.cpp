#include "json.hpp"

#include <cstdio>

namespace hag::mhdump {

std::string json_quote(std::string_view s) {
    std::string out = "\"";
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u >= 0x7f) {
            // Non-ASCII octets are escaped one by one: identifiers are octet strings, not UTF-8.
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(u));
            out += buf;
        } else {
            out += c;
        }
    }
    out += '"';
    return out;
}

void JsonObject::key(std::string_view k) {
    if (!body_.empty()) {
        body_ += ", ";
    }
    body_ += json_quote(k);
    body_ += ": ";
}

JsonObject& JsonObject::num(std::string_view k, std::uint64_t v) {
    key(k);
    body_ += std::to_string(v);
    return *this;
}

JsonObject& JsonObject::boolean(std::string_view k, bool v) {
    key(k);
    body_ += v ? "true" : "false";
    return *this;
}

JsonObject& JsonObject::str(std::string_view k, std::string_view v) {
    key(k);
    body_ += json_quote(v);
    return *this;
}

JsonObject& JsonObject::strings(std::string_view k, const std::vector<std::string>& v) {
    key(k);
    body_ += '[';
    for (std::size_t i = 0; i < v.size(); ++i) {
        body_ += (i ? ", " : "") + json_quote(v[i]);
    }
    body_ += ']';
    return *this;
}

JsonObject& JsonObject::objects(std::string_view k, const std::vector<JsonObject>& v) {
    key(k);
    body_ += '[';
    for (std::size_t i = 0; i < v.size(); ++i) {
        body_ += (i ? ", " : "") + v[i].dump();
    }
    body_ += ']';
    return *this;
}

std::string JsonObject::dump() const {
    return "{" + body_ + "}";
}

}  // namespace hag::mhdump
