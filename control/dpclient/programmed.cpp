#include "dpclient/programmed.hpp"

#include "dpclient/session_convert.hpp"
#include "hag/v1/dataplane_digest.hpp"

namespace hag::control::dpclient {

std::optional<std::uint64_t> ProgrammedSet::get(std::uint32_t id) const {
    auto it = by_id_.find(id);
    if (it == by_id_.end()) {
        return std::nullopt;
    }
    return it->second;
}

void ProgrammedSet::set(std::uint32_t id, std::uint64_t digest, bool flow_profile) {
    if (flow_profile) {
        flow_profiles_.insert(id);
    } else {
        flow_profiles_.erase(id);
    }
    auto [it, inserted] = by_id_.try_emplace(id, digest);
    if (!inserted) {
        sum_ -= it->second;
        it->second = digest;
    }
    sum_ += digest;
}

void ProgrammedSet::erase(std::uint32_t id) {
    auto it = by_id_.find(id);
    if (it != by_id_.end()) {
        sum_ -= it->second;
        by_id_.erase(it);
    }
    flow_profiles_.erase(id);
}

void ProgrammedSet::clear() {
    by_id_.clear();
    flow_profiles_.clear();
    sum_ = 0;
}

PlannedBatch plan_batch(const std::vector<std::uint32_t>& ids, const BindingCache& cache,
                        const ProgrammedSet& programmed, const RejectedMap& rejected,
                        const PolicySnapshot* policy) {
    PlannedBatch b;
    for (const std::uint32_t id : ids) {
        const std::optional<std::uint64_t> held = programmed.get(id);
        if (const Session* s = cache.at(id)) {
            v1::DpSession dp = to_dp_session(*s, id, policy);
            std::optional<v1::DpPolicyProfile> fp = flow_profile(*s, id, policy);
            const std::uint64_t d =
                v1::session_digest(dp) + (fp ? v1::profile_digest(*fp) : std::uint64_t{0});
            if (held == d) {
                continue;  // a refresh that changes nothing the data plane sees
            }
            if (auto r = rejected.find(id); r != rejected.end() && r->second == d) {
                continue;  // refused before, unchanged since
            }
            // The session's own profile goes first (the session names it), and goes away after
            // the session stops naming it.
            const bool had_profile = programmed.has_flow_profile(id);
            const bool with_profile = fp.has_value();
            if (fp) {
                *b.request.add_changes()->mutable_upsert_profile() = std::move(*fp);
            }
            *b.request.add_changes()->mutable_upsert() = std::move(dp);
            if (!with_profile && had_profile) {
                b.request.add_changes()->set_remove_profile(flow_profile_name(id));
            }
            b.effects.push_back({id, d, with_profile, 1 + (with_profile || had_profile ? 1 : 0)});
        } else if (held) {
            b.request.add_changes()->set_remove(id);
            const bool had_profile = programmed.has_flow_profile(id);
            if (had_profile) {
                b.request.add_changes()->set_remove_profile(flow_profile_name(id));
            }
            b.effects.push_back({id, std::nullopt, false, had_profile ? 2 : 1});
        }
    }
    return b;
}

void commit(const std::vector<PlannedChange>& effects, ProgrammedSet& programmed) {
    for (const auto& e : effects) {
        if (e.digest) {
            programmed.set(e.id, *e.digest, e.flow_profile);
        } else {
            programmed.erase(e.id);
        }
    }
}

}  // namespace hag::control::dpclient
