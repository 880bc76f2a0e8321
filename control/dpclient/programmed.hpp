// What hag-control believes the data plane holds: per session id, the digest
// (hag/v1/dataplane_digest.hpp) of the DpSession it last programmed, and their sum. The sum is
// what DataplaneProgrammer.Digest must answer when both sides agree.
//
// plan_batch() turns dirty session ids into one ApplyRequest against this view: a session in
// the cache becomes an upsert unless the data plane already holds exactly it; a session gone
// from the cache becomes a remove only if the data plane holds it (the data plane refuses
// removes of unknown ids). The view changes only when the data plane acknowledged the batch
// (commit()).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/binding_cache.hpp"
#include "core/policy.hpp"
#include "hag/v1/dataplane.pb.h"

namespace hag::control::dpclient {

class ProgrammedSet {
  public:
    [[nodiscard]] std::optional<std::uint64_t> get(std::uint32_t id) const;
    // `flow_profile`: the data plane also holds the session's own profile (flow_profile_name),
    // whose digest is part of `digest`.
    void set(std::uint32_t id, std::uint64_t digest, bool flow_profile = false);
    void erase(std::uint32_t id);
    void clear();
    [[nodiscard]] std::size_t size() const noexcept { return by_id_.size(); }
    [[nodiscard]] bool has_flow_profile(std::uint32_t id) const {
        return flow_profiles_.count(id) != 0;
    }
    // Sessions' own profiles held (RFC 6089 flow bindings).
    [[nodiscard]] std::size_t flow_profiles() const noexcept { return flow_profiles_.size(); }
    // Sum modulo 2^64 of the digests held.
    [[nodiscard]] std::uint64_t digest() const noexcept { return sum_; }

  private:
    std::unordered_map<std::uint32_t, std::uint64_t> by_id_;
    std::unordered_set<std::uint32_t> flow_profiles_;
    std::uint64_t sum_ = 0;
};

// One planned change and its effect on the ProgrammedSet once acknowledged.
struct PlannedChange {
    std::uint32_t id = 0;
    std::optional<std::uint64_t> digest;  // upsert with this digest; nullopt = remove
    bool flow_profile = false;            // upsert: with the session's own profile
    int changes = 1;  // request changes it spans (its profile's upsert / remove too)
};

struct PlannedBatch {
    v1::ApplyRequest request;            // generation left 0: the pusher sets it
    std::vector<PlannedChange> effects;  // one per change, in the same order
};

// Sessions the data plane refused (id -> digest of the refused version): not offered again
// until the session changes.
using RejectedMap = std::unordered_map<std::uint32_t, std::uint64_t>;

// Plans the changes for `ids` (run under the cache lock: `cache` is read).
// `policy`: the flow policy last programmed (names each session's profile); may be null.
PlannedBatch plan_batch(const std::vector<std::uint32_t>& ids, const BindingCache& cache,
                        const ProgrammedSet& programmed, const RejectedMap& rejected,
                        const PolicySnapshot* policy = nullptr);

// Applies an acknowledged batch's effects.
void commit(const std::vector<PlannedChange>& effects, ProgrammedSet& programmed);

}  // namespace hag::control::dpclient
