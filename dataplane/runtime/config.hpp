// hag-dataplane configuration: hag.v1.DataplaneConfig in protobuf text format, validated with
// file:line:column errors, defaults filled in.
#pragma once

#include <string>

#include "hag/config/textproto.hpp"
#include "hag/v1/config.pb.h"
#include "multipath/reorder.hpp"

namespace hag::dp {

Result<v1::DataplaneConfig, config::Errors> parse_dataplane_config(std::string_view text,
                                                                   const std::string& file);
Result<v1::DataplaneConfig, config::Errors> load_dataplane_config(const std::string& path);
// The validated `reorder` block as the reorder stage takes it.
ReorderSettings reorder_settings(const v1::DataplaneConfig& cfg);

}  // namespace hag::dp
