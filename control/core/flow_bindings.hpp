// RFC 6089 flow bindings signalled in a PBU: the session's flow binding list and the Flow
// Identification replies of the PBA (docs/policy.md#flow-bindings).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/binding_cache.hpp"
#include "hag/mh/options.hpp"

namespace hag::control {

inline constexpr std::size_t kMaxFlowBindings = 64;     // per session
inline constexpr std::size_t kMaxFlowExpansion = 1024;  // prefixes x prefixes x DSCPs a binding
inline constexpr std::size_t kMaxFlowBids = 7;  // BIDs per binding (data plane: 8 steps a rule)

// Applies the PBU's Flow Identification and Flow Summary options to `s`, whose paths are
// already those after the PBU. A PBU with neither leaves the bindings as they are; one with
// any replaces them with the set it names: each Flow Identification with a traffic selector
// adds or replaces its FID, one without changes the BIDs / priority of a FID the session has,
// each FID of a Flow Summary keeps its binding. Returns one Flow Identification reply per FID
// named (status 0 = accepted; RFC 6089 codes otherwise). `count` counts outcomes.
std::vector<mh::Option> apply_flow_options(Session& s, const mh::Options& opts,
                                           const std::function<void(const std::string&)>& count);

// "fid 1 prio 1 udp sport=5060 -> bid 2, 1" / "... -> discard".
std::string describe(const FlowBindingEntry& f);

}  // namespace hag::control
