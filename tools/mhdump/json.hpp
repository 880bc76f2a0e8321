// A minimal JSON object writer for `hag-mhdump decode --json` (output only, no parsing).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hag::mhdump {

// Escapes a string for a JSON string literal (quotes included in the result).
std::string json_quote(std::string_view s);

// Keys are appended in call order; the caller does not repeat keys.
class JsonObject {
  public:
    JsonObject& num(std::string_view key, std::uint64_t v);
    JsonObject& boolean(std::string_view key, bool v);
    JsonObject& str(std::string_view key, std::string_view v);
    JsonObject& strings(std::string_view key, const std::vector<std::string>& v);
    JsonObject& objects(std::string_view key, const std::vector<JsonObject>& v);
    [[nodiscard]] std::string dump() const;

  private:
    void key(std::string_view k);
    std::string body_;
};

}  // namespace hag::mhdump
