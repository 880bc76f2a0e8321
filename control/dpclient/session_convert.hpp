// Binding cache sessions as the data plane's DpSession (proto/hag/v1/dataplane.proto).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/binding_cache.hpp"
#include "core/policy.hpp"
#include "hag/v1/dataplane.pb.h"

namespace hag::control::dpclient {

// "2001:db8:1::/64"; an IPv4-mapped prefix (::ffff:a.b.c.d/96+n) as "a.b.c.d/n".
std::string prefix_text(const Prefix& p);

// The session in slot `id` as the data plane programs it: prefixes and addresses as text (IPv4
// dotted quad for IPv4-mapped addresses), paths in BID order, sequence numbers on downlink, the
// session's striping mode and overflow burst; in overflow mode, paths of the primary access
// technology get preference 0 and the others 1. With a flow policy, policy_profile names the
// profile the subscriber uses (PolicySnapshot::profile_for), programmed by policy_profiles().
v1::DpSession to_dp_session(const Session& s, std::uint32_t id,
                            const PolicySnapshot* policy = nullptr);

// The name of the profile of session `id`'s flow bindings: "flows/<id>".
std::string flow_profile_name(std::uint32_t id);

// Session `id`'s own profile when it has RFC 6089 flow bindings (docs/policy.md#flow-bindings),
// else nullopt. Its rules: the rules of the profile the subscriber uses with a priority above 0,
// then one rule per flow binding in (FID-PRI, FID) order (the referenced BIDs' paths as access
// steps, by If-Label and access technology, then DROP; a discard binding: DROP), then the
// profile's other rules. to_dp_session names it instead of the subscriber's profile.
std::optional<v1::DpPolicyProfile> flow_profile(const Session& s, std::uint32_t id,
                                                const PolicySnapshot* policy);

// Every profile of the policy as the data plane is programmed with it (empty without a policy).
std::vector<v1::DpPolicyProfile> policy_profiles(const PolicySnapshot* policy);

}  // namespace hag::control::dpclient
