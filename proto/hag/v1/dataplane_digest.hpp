// The state digest of DataplaneProgrammer.Digest (proto/hag/v1/dataplane.proto): the sum, modulo
// 2^64, of a 64-bit FNV-1a hash of each session's (and flow policy profile's) deterministic
// serialization. Order-independent,
// so either side can compute it from its own table in any order and keep it up to date in O(1)
// per change (subtract the old session's hash, add the new one's).
#pragma once

#include <cstdint>

#include "hag/v1/dataplane.pb.h"

namespace hag::v1 {

std::uint64_t session_digest(const DpSession& s);
// A flow policy profile's share of the same sum: the same hash from another starting value, so
// a profile never hashes like a session.
std::uint64_t profile_digest(const DpPolicyProfile& p);

}  // namespace hag::v1
