// hag-control configuration: protobuf text format validated against hag.v1.ControlConfig
// (proto/hag/v1/config.proto). Every error names file:line:column.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "binding_cache.hpp"
#include "hag/result.hpp"
#include "hag/v1/config.pb.h"

namespace hag::control {

struct ConfigError {
    std::string file;
    int line = 0;    // 1-based; 0 when the error concerns the file as a whole
    int column = 0;  // 1-based
    std::string message;
    [[nodiscard]] std::string str() const;  // "file:line:col: message"
};
using ConfigErrors = std::vector<ConfigError>;

// Parses and validates; on success, defaults are filled in (see config.proto comments).
Result<v1::ControlConfig, ConfigErrors> parse_control_config(std::string_view text,
                                                             const std::string& file_name);
Result<v1::ControlConfig, ConfigErrors> load_control_config(const std::string& path);

// Strict text forms used by the configuration and the management API.
Result<Prefix, std::string> parse_prefix(std::string_view text);          // IPv6 "addr/len"
Result<CareOfAddress, std::string> parse_address(std::string_view text);  // IPv6 or IPv4

// The effective profile of a subscriber: its own fields over the default profile's, over the
// built-in defaults.
v1::SubscriberProfile effective_profile(const v1::ControlConfig& cfg, std::string_view nai);

}  // namespace hag::control
