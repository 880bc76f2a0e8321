// hag-mhdump's view of a decoded Mobility Header: the codec's description, or JSON of its fields.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "hag/result.hpp"

namespace hag::mhdump {

// The codec's human-readable description, or its typed error as text.
Result<std::string, std::string> describe(std::span<const std::uint8_t> mh);
// A JSON object of the decoded fields (docs/tools-mhdump.md), or the codec's error as text.
Result<std::string, std::string> to_json(std::span<const std::uint8_t> mh);

}  // namespace hag::mhdump
