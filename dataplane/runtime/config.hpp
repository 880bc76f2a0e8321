// hag-dataplane configuration: hag.v1.DataplaneConfig in protobuf text format, validated with
// file:line:column errors, defaults filled in.
#pragma once

#include <string>

#include "hag/config/textproto.hpp"
#include "hag/v1/config.pb.h"
#include "multipath/reorder.hpp"
#include "pipeline/downlink_encap.hpp"
#include "pipeline/reassembly_settings.hpp"

namespace hag::dp {

Result<v1::DataplaneConfig, config::Errors> parse_dataplane_config(std::string_view text,
                                                                   const std::string& file);
Result<v1::DataplaneConfig, config::Errors> load_dataplane_config(const std::string& path);
// The validated `reorder` block as the reorder stage takes it.
ReorderSettings reorder_settings(const v1::DataplaneConfig& cfg);
// The validated `reassembly` block.
ReassemblySettings reassembly_settings(const v1::DataplaneConfig& cfg);
// Sets the downlink stage's configured parts from the validated config: access_mtu,
// mtu_action, the DSCP map, the ICMP error rate and source addresses (the core port's first
// address of each family, else any port's, else a static path's local address).
void apply_downlink_settings(const v1::DataplaneConfig& cfg, DownlinkCtx& ctx);
// The VLAN of the first port with `role` (0 = none).
std::uint16_t port_vlan(const v1::DataplaneConfig& cfg, v1::PortConfig::Role role);

}  // namespace hag::dp
