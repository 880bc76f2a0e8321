// The flow policy as the data plane is programmed with it (hag/v1/dataplane.proto
// DpPolicyProfile): one profile with its rules, applications and labels inlined, so the data
// plane needs nothing else to classify. Both directions: hag-control converts its model
// (hag/policy/policy.hpp) to DpPolicyProfile; the data plane converts it back into a model
// holding exactly that profile (checked as the configuration is: the data plane trusts nothing
// it is sent).
#pragma once

#include <string>

#include "hag/policy/policy.hpp"
#include "hag/result.hpp"
#include "hag/v1/dataplane.pb.h"

namespace hag::policy {

// `profile` of `policy` (rules in the order they apply).
v1::DpPolicyProfile to_dp_profile(const Policy& policy, const Profile& profile,
                                  bool drop_forbidden_uplink);

// A model with one profile (index 0), one application per rule and one label per distinct
// access step; errors name the rule and field.
Result<Policy, std::string> from_dp_profile(const v1::DpPolicyProfile& p);

// "2001:db8::/32"; an IPv4-mapped prefix as "192.0.2.0/24".
std::string prefix_text(const net::Ipv6Prefix& p);

}  // namespace hag::policy
