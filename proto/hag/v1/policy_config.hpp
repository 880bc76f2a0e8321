// The flow policy of a configuration file (v1::PolicyConfig) compiled into the policy model
// (hag/policy/policy.hpp), with every problem reported at its place in the file.
#pragma once

#include <optional>

#include "hag/config/textproto.hpp"
#include "hag/policy/policy.hpp"
#include "hag/v1/config.pb.h"

namespace hag::policy {

// Validates and converts `cfg`. Errors go to `report` at the offending field (`tree` may be
// null: errors then have no line); nullopt when there was any.
std::optional<Policy> compile_policy(const v1::PolicyConfig& cfg, const config::ParseInfoTree* tree,
                                     const config::Reporter& report);

}  // namespace hag::policy
