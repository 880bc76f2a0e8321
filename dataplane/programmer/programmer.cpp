#include "programmer/programmer.hpp"

#include <google/protobuf/util/message_differencer.h>
#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include <chrono>
#include <optional>
#include <unordered_set>

#include "exception/resolver.hpp"
#include "hag/v1/dataplane_digest.hpp"
#include "runtime/text.hpp"

namespace hag::dp {

namespace {

std::string prefix_text(const IpPrefix& p) {
    return fmt::format("{}/{}", to_string(p.addr), p.length);
}

// The stored session equals `s` (the hash first: cheaper than a field-by-field compare).
template <typename Stored>
bool same(const Stored& stored, const v1::DpSession& s) {
    return stored.hash == v1::session_digest(s) &&
           google::protobuf::util::MessageDifferencer::Equals(stored.session, s);
}

// Adds the time from construction to destruction to `total` (microseconds).
class BusyTimer {
  public:
    explicit BusyTimer(std::uint64_t& total) : total_(total) {}
    ~BusyTimer() {
        total_ += static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                                 std::chrono::steady_clock::now() - t0_)
                                                 .count());
    }
    BusyTimer(const BusyTimer&) = delete;
    BusyTimer& operator=(const BusyTimer&) = delete;

  private:
    std::uint64_t& total_;
    std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
};

// Calls f(key) for every non-zero GRE key the session takes from the shared key space: its
// uplink key and its remote anchors' downlink keys.
template <typename F>
void for_each_key(const SessionConfig& c, F&& f) {
    if (c.uplink_key != 0) {
        f(c.uplink_key);
    }
    for (unsigned i = 0; i < c.n_anchors; ++i) {
        if (c.anchors[i].downlink_key != 0) {
            f(c.anchors[i].downlink_key);
        }
    }
}

constexpr std::uint32_t kDefaultPage = 100;
constexpr std::uint32_t kMaxPage = 1000;

}  // namespace

Programmer::Programmer(SessionTable& sessions, NextHopTable& next_hops,
                       const v1::DataplaneConfig& cfg, std::vector<Port> ports,
                       PolicyTable* policies)
    : table_(sessions),
      next_hops_(next_hops),
      policies_(policies),
      cfg_(cfg),
      parser_(cfg, std::move(ports), sessions.capacity()) {}

Result<void, ProgramError> Programmer::reject(ProgramError e) {
    ++rejected_;
    spdlog::warn("programming rejected: {}", e.message);
    return unexpected(std::move(e));
}

Result<void, std::string> Programmer::add_static(const v1::DpSession& s, const SessionConfig& cfg) {
    std::vector<Target> targets(1);
    targets[0].id = s.id();
    targets[0].session = &s;
    targets[0].cfg = cfg;
    targets[0].attached = true;
    if (s.id() >= table_.capacity()) {
        release_path_next_hops(cfg, next_hops_);
        return unexpected(fmt::format("session {}: id beyond the table capacity", s.id()));
    }
    if (auto r = check_collisions(targets); !r) {
        release_path_next_hops(cfg, next_hops_);
        return unexpected(r.error().message);
    }
    if (auto r = change(targets); !r) {
        return unexpected(r.error().message);
    }
    return {};
}

Result<void, ProgramError> Programmer::check_collisions(const std::vector<Target>& targets) const {
    std::unordered_set<std::uint32_t> ids;
    ids.reserve(targets.size());
    for (const auto& t : targets) {
        ids.insert(t.id);
    }
    std::unordered_map<std::uint32_t, std::uint32_t> keys;
    std::unordered_map<IpPrefix, std::uint32_t, IpPrefixHash> prefixes;
    keys.reserve(targets.size());
    prefixes.reserve(targets.size());
    for (const auto& t : targets) {
        if (t.session == nullptr) {
            continue;
        }
        // The uplink key and the remote anchors' downlink keys: one key space.
        std::optional<ProgramError> bad;
        for_each_key(t.cfg, [&](std::uint32_t k) {
            if (bad) {
                return;
            }
            const char* what =
                k == t.cfg.uplink_key ? "uplink GRE key" : "remote anchor's downlink GRE key";
            if (auto [it, fresh] = keys.emplace(k, t.id); !fresh) {
                bad = ProgramError{ProgramError::kInvalidArgument,
                                   fmt::format("session {}: {} {} is also given to session {}",
                                               t.id, what, k, it->second)};
            } else if (auto o = key_owner_.find(k);
                       o != key_owner_.end() && o->second != t.id && ids.count(o->second) == 0) {
                bad = ProgramError{ProgramError::kInvalidArgument,
                                   fmt::format("session {}: {} {} belongs to session {}", t.id,
                                               what, k, o->second)};
            }
        });
        if (bad) {
            return unexpected(std::move(*bad));
        }
        for (unsigned i = 0; i < t.cfg.n_prefixes; ++i) {
            const IpPrefix& id = t.cfg.prefixes[i];
            if (auto [it, fresh] = prefixes.emplace(id, t.id); !fresh) {
                return unexpected(
                    ProgramError{ProgramError::kInvalidArgument,
                                 fmt::format("session {}: prefix {} is also given to session {}",
                                             t.id, prefix_text(t.cfg.prefixes[i]), it->second)});
            }
            if (auto o = prefix_owner_.find(id);
                o != prefix_owner_.end() && o->second != t.id && ids.count(o->second) == 0) {
                return unexpected(
                    ProgramError{ProgramError::kInvalidArgument,
                                 fmt::format("session {}: prefix {} belongs to session {}", t.id,
                                             prefix_text(t.cfg.prefixes[i]), o->second)});
            }
        }
    }
    return {};
}

Result<void, std::string> Programmer::transition(
    const std::vector<std::pair<std::uint32_t, const SessionConfig*>>& steps) {
    // Who holds each key and prefix once all steps are done.
    std::unordered_map<std::uint32_t, std::uint32_t> final_key;
    std::unordered_map<IpPrefix, std::uint32_t, IpPrefixHash> final_prefix;
    final_key.reserve(steps.size());
    final_prefix.reserve(steps.size());
    for (const auto& [id, c] : steps) {
        if (c == nullptr) {
            continue;
        }
        for_each_key(*c, [&](std::uint32_t k) { final_key[k] = id; });
        for (unsigned i = 0; i < c->n_prefixes; ++i) {
            final_prefix[c->prefixes[i]] = id;
        }
    }
    // 1. Sessions that go.
    for (const auto& [id, c] : steps) {
        if (c == nullptr && table_.config(id) != nullptr) {
            if (auto r = table_.remove(id); !r) {
                return unexpected(fmt::format("session {}: {}", id, r.error()));
            }
        }
    }
    // 2. Sessions that stay but give a key or prefix away: re-published without it.
    for (const auto& [id, c] : steps) {
        const SessionConfig* cur = c != nullptr ? table_.config(id) : nullptr;
        if (cur == nullptr) {
            continue;
        }
        SessionConfig interim = *cur;
        bool changed = false;
        if (auto it = final_key.find(cur->uplink_key);
            cur->uplink_key != 0 && it != final_key.end() && it->second != id) {
            interim.uplink_key = 0;
            changed = true;
        }
        interim.n_prefixes = 0;
        for (unsigned i = 0; i < cur->n_prefixes; ++i) {
            auto it = final_prefix.find(cur->prefixes[i]);
            if (it != final_prefix.end() && it->second != id) {
                changed = true;
            } else {
                interim.prefixes[interim.n_prefixes++] = cur->prefixes[i];
            }
        }
        // Remote anchors whose downlink key or prefix goes to another session go meanwhile.
        interim.n_anchors = 0;
        for (unsigned i = 0; i < cur->n_anchors; ++i) {
            const std::uint32_t k = cur->anchors[i].downlink_key;
            auto kit = final_key.find(k);
            auto pit = final_prefix.find(cur->anchors[i].prefix);
            if ((k != 0 && kit != final_key.end() && kit->second != id) ||
                (pit != final_prefix.end() && pit->second != id)) {
                changed = true;
            } else {
                interim.anchors[interim.n_anchors++] = cur->anchors[i];
            }
        }
        if (changed) {
            if (auto r = table_.upsert(id, interim); !r) {
                return unexpected(fmt::format("session {}: {}", id, r.error()));
            }
        }
    }
    // 3. Every new config.
    for (const auto& [id, c] : steps) {
        if (c != nullptr) {
            if (auto r = table_.upsert(id, *c); !r) {
                return unexpected(fmt::format("session {}: {}", id, r.error()));
            }
        }
    }
    return {};
}

Result<void, ProgramError> Programmer::change(std::vector<Target>& targets) {
    auto release_new = [&] {
        for (const auto& t : targets) {
            if (t.session != nullptr) {
                release_path_next_hops(t.cfg, next_hops_);
            }
        }
    };
    // Next hops of the new paths (shared with the old config's when equal: reference-counted).
    for (auto& t : targets) {
        if (t.session == nullptr || t.attached) {
            continue;
        }
        for (unsigned i = 0; i < t.cfg.n_paths; ++i) {
            PathConfig& pc = t.cfg.paths[i];
            if (auto r = attach_path_next_hop(pc, *t.ports[i], nullptr, next_hops_, cfg_); !r) {
                release_new();
                return unexpected(
                    ProgramError{ProgramError::kResourceExhausted,
                                 fmt::format("session {} path {}: {}", t.id, pc.bid, r.error())});
            }
        }
        for (unsigned i = 0; i < t.cfg.n_anchors; ++i) {
            RemoteAnchorConfig& a = t.cfg.anchors[i];
            if (auto r = attach_anchor_next_hop(a, *t.anchor_ports[i], nullptr, next_hops_, cfg_);
                !r) {
                release_new();
                return unexpected(ProgramError{ProgramError::kResourceExhausted,
                                               fmt::format("session {} remote anchor {}: {}", t.id,
                                                           to_string(a.anchor), r.error())});
            }
        }
        t.attached = true;
    }
    // The configs in force before, copied only for the ids that have one (a resync into an
    // empty table copies nothing): olds[old_at[i]] is target i's.
    std::vector<std::uint32_t> old_at(targets.size(), UINT32_MAX);
    std::vector<SessionConfig> olds;
    std::vector<std::pair<std::uint32_t, const SessionConfig*>> steps, undo;
    steps.reserve(targets.size());
    for (std::size_t i = 0; i < targets.size(); ++i) {
        if (const SessionConfig* c = table_.config(targets[i].id); c != nullptr) {
            old_at[i] = static_cast<std::uint32_t>(olds.size());
            olds.push_back(*c);
        }
        steps.emplace_back(targets[i].id,
                           targets[i].session != nullptr ? &targets[i].cfg : nullptr);
    }
    auto old = [&](std::size_t i) -> const SessionConfig* {
        return old_at[i] == UINT32_MAX ? nullptr : &olds[old_at[i]];
    };
    if (auto r = transition(steps); !r) {
        undo.reserve(targets.size());
        for (std::size_t i = 0; i < targets.size(); ++i) {
            undo.emplace_back(targets[i].id, old(i));
        }
        if (auto u = transition(undo); !u) {
            spdlog::critical(
                "programming: cannot restore the sessions after '{}': {}; a resync "
                "is needed",
                r.error(), u.error());
        }
        release_new();
        return unexpected(
            ProgramError{ProgramError::kResourceExhausted, r.error() + " (nothing changed)"});
    }
    // Committed: the old configs' next hops go, the bookkeeping follows.
    for (std::size_t i = 0; i < targets.size(); ++i) {
        const std::uint32_t id = targets[i].id;
        if (const SessionConfig* o = old(i)) {
            release_path_next_hops(*o, next_hops_);
            for_each_key(*o, [&](std::uint32_t key) {
                if (auto k = key_owner_.find(key); k != key_owner_.end() && k->second == id) {
                    key_owner_.erase(k);
                }
            });
            for (unsigned p = 0; p < o->n_prefixes; ++p) {
                auto po = prefix_owner_.find(o->prefixes[p]);
                if (po != prefix_owner_.end() && po->second == id) {
                    prefix_owner_.erase(po);
                }
            }
        }
        if (auto it = sessions_.find(id); it != sessions_.end()) {
            digest_ -= it->second.hash;
            sessions_.erase(it);
        }
    }
    for (const auto& t : targets) {
        if (t.session == nullptr) {
            continue;
        }
        for_each_key(t.cfg, [&](std::uint32_t key) { key_owner_[key] = t.id; });
        for (unsigned p = 0; p < t.cfg.n_prefixes; ++p) {
            prefix_owner_[t.cfg.prefixes[p]] = t.id;
        }
        const std::uint64_t h = v1::session_digest(*t.session);
        digest_ += h;
        // A resync's sessions are ours to take (no copy of their strings).
        sessions_.emplace_hint(sessions_.end(), t.id,
                               Stored{t.take != nullptr ? std::move(*t.take) : *t.session, h});
    }
    return {};
}

Result<v1::ApplyReply, ProgramError> Programmer::apply(const v1::ApplyRequest& req) {
    const BusyTimer busy(busy_us_);
    if (req.generation() <= generation_) {
        auto r = reject({ProgramError::kFailedPrecondition,
                         fmt::format("generation {} is not above the generation in force ({})",
                                     req.generation(), generation_)});
        return unexpected(r.error());
    }
    // The state the batch ends in, change by change: id -> session (null: removed).
    std::map<std::uint32_t, const v1::DpSession*> final;
    std::unordered_map<std::uint32_t, ParsedSession> parsed;
    ProfileChanges profile_changes;
    for (int i = 0; i < req.changes_size(); ++i) {
        const v1::DpChange& ch = req.changes(i);
        if (ch.has_upsert_profile()) {
            profile_changes[ch.upsert_profile().name()] = &ch.upsert_profile();
        } else if (ch.op_case() == v1::DpChange::kRemoveProfile) {
            const std::string& name = ch.remove_profile();
            auto f = profile_changes.find(name);
            const bool exists =
                f != profile_changes.end() ? f->second != nullptr : profiles_.count(name) != 0;
            if (!exists) {
                auto r = reject({ProgramError::kInvalidArgument,
                                 fmt::format("change #{}: remove of policy profile '{}': no such "
                                             "profile",
                                             i, name)});
                return unexpected(r.error());
            }
            profile_changes[name] = nullptr;
        } else if (ch.has_upsert()) {
            auto p = parser_.parse(ch.upsert());
            if (!p) {
                auto r = reject(
                    {ProgramError::kInvalidArgument, fmt::format("change #{}: {}", i, p.error())});
                return unexpected(r.error());
            }
            final[ch.upsert().id()] = &ch.upsert();
            parsed.insert_or_assign(ch.upsert().id(), std::move(*p));
        } else if (ch.op_case() == v1::DpChange::kRemove) {
            const std::uint32_t id = ch.remove();
            auto f = final.find(id);
            const bool exists = f != final.end() ? f->second != nullptr : sessions_.count(id) != 0;
            if (!exists) {
                auto r = reject(
                    {ProgramError::kInvalidArgument,
                     fmt::format("change #{}: remove of session {}: no such session", i, id)});
                return unexpected(r.error());
            }
            final[id] = nullptr;
        } else {
            auto r = reject({ProgramError::kInvalidArgument,
                             fmt::format("change #{}: neither upsert nor remove", i)});
            return unexpected(r.error());
        }
    }
    std::vector<Target> targets;
    targets.reserve(final.size());
    for (const auto& [id, s] : final) {
        auto stored = sessions_.find(id);
        if (s == nullptr) {
            if (stored != sessions_.end()) {
                targets.push_back({id, nullptr, {}, {}, false});
            }
            continue;
        }
        if (stored != sessions_.end() && same(stored->second, *s)) {
            continue;  // unchanged: not touched
        }
        ParsedSession& p = parsed.at(id);
        targets.push_back({id, s, p.cfg, p.ports, false});
        targets.back().anchor_ports = p.anchor_ports;
    }
    if (auto r = check_collisions(targets); !r) {
        auto e = reject(r.error());
        return unexpected(e.error());
    }
    auto prepared = prepare_profiles(profile_changes, targets);
    if (!prepared) {
        auto e = reject(prepared.error());
        return unexpected(e.error());
    }
    if (auto r = commit(*prepared, targets); !r) {
        auto e = reject(r.error());
        return unexpected(e.error());
    }
    generation_ = req.generation();
    ++applied_;
    v1::ApplyReply reply;
    reply.set_generation(generation_);
    reply.set_sessions(table_.size());
    return reply;
}

Result<v1::ApplyReply, ProgramError> Programmer::resync(
    std::uint64_t generation, std::vector<v1::DpSession> sessions,
    const std::vector<v1::DpPolicyProfile>& profiles) {
    const BusyTimer busy(busy_us_);
    if (generation == 0) {
        auto r = reject({ProgramError::kInvalidArgument, "resync: generation must be above 0"});
        return unexpected(r.error());
    }
    ProfileChanges profile_changes;
    for (const auto& p : profiles) {
        if (!profile_changes.emplace(p.name(), &p).second) {
            auto r =
                reject({ProgramError::kInvalidArgument,
                        fmt::format("policy profile '{}': listed twice in the resync", p.name())});
            return unexpected(r.error());
        }
    }
    for (const auto& [name, stored] : profiles_) {
        profile_changes.emplace(name, nullptr);  // not in the resync: removed
    }
    // Ids below the capacity (beyond it, parse() refuses the session).
    std::vector<bool> listed(table_.capacity(), false);
    std::vector<Target> targets;
    targets.reserve(sessions.size() + sessions_.size());
    for (auto& s : sessions) {
        if (s.id() < listed.size() && listed[s.id()]) {
            auto r = reject({ProgramError::kInvalidArgument,
                             fmt::format("session {}: listed twice in the resync", s.id())});
            return unexpected(r.error());
        }
        if (s.id() < listed.size()) {
            listed[s.id()] = true;
        }
        auto stored = sessions_.find(s.id());
        if (stored != sessions_.end() && same(stored->second, s)) {
            continue;  // unchanged: not touched (and checked when it was stored)
        }
        auto p = parser_.parse(s);
        if (!p) {
            auto r = reject({ProgramError::kInvalidArgument, p.error()});
            return unexpected(r.error());
        }
        targets.push_back({s.id(), &s, p->cfg, p->ports, false, &s});
        targets.back().anchor_ports = p->anchor_ports;
    }
    for (const auto& [id, st] : sessions_) {
        if (id >= listed.size() || !listed[id]) {
            targets.push_back({id, nullptr, {}, {}, false});
        }
    }
    if (auto r = check_collisions(targets); !r) {
        auto e = reject(r.error());
        return unexpected(e.error());
    }
    auto prepared = prepare_profiles(profile_changes, targets);
    if (!prepared) {
        auto e = reject(prepared.error());
        return unexpected(e.error());
    }
    if (auto r = commit(*prepared, targets); !r) {
        auto e = reject(r.error());
        return unexpected(e.error());
    }
    generation_ = generation;
    ++resyncs_;
    spdlog::info("resync: generation {}, {} session(s), {} changed or removed", generation,
                 table_.size(), targets.size());
    v1::ApplyReply reply;
    reply.set_generation(generation_);
    reply.set_sessions(table_.size());
    return reply;
}

v1::DigestReply Programmer::digest() const {
    v1::DigestReply r;
    r.set_generation(generation_);
    r.set_sessions(static_cast<std::uint32_t>(sessions_.size()));
    r.set_digest(digest_);
    r.set_profiles(static_cast<std::uint32_t>(profiles_.size()));
    return r;
}

v1::DpListReply Programmer::list(const v1::DpListRequest& req) const {
    v1::DpListReply r;
    std::uint32_t limit = req.limit() == 0 ? kDefaultPage : std::min(req.limit(), kMaxPage);
    auto it = req.first_page() ? sessions_.begin() : sessions_.upper_bound(req.after_id());
    for (; it != sessions_.end() && limit > 0; ++it, --limit) {
        auto* out = r.add_sessions();
        *out->mutable_session() = it->second.session;
        const SessionState& st = table_.state(it->first);
        const SessionTotals totals = table_.totals(it->first);
        out->set_downlink_packets(totals.downlink_packets);
        out->set_downlink_bytes(totals.downlink_bytes);
        out->set_uplink_packets(totals.uplink_packets);
        out->set_uplink_bytes(totals.uplink_bytes);
        out->set_relay_uplink_packets(st.relay_uplink_packets.load(std::memory_order_relaxed));
        out->set_relay_uplink_bytes(st.relay_uplink_bytes.load(std::memory_order_relaxed));
        out->set_relay_downlink_packets(st.relay_downlink_packets.load(std::memory_order_relaxed));
        out->set_relay_downlink_bytes(st.relay_downlink_bytes.load(std::memory_order_relaxed));
        const auto& paths = it->second.session.paths();
        for (int i = 0; i < paths.size() && i < static_cast<int>(kMaxPaths); ++i) {
            auto* ps = out->add_paths();
            ps->set_bid(paths[i].bid());
            const auto pi = static_cast<unsigned>(i);
            const PathTraffic& down = table_.downlink_traffic(it->first, pi);
            const PathCounts up = table_.uplink_counts(it->first, pi);
            ps->set_downlink_packets(down.packets.load(std::memory_order_relaxed));
            ps->set_downlink_bytes(down.bytes.load(std::memory_order_relaxed));
            ps->set_uplink_packets(up.packets);
            ps->set_uplink_bytes(up.bytes);
        }
        auto* ro = out->mutable_reorder();
        ro->set_lost(st.reorder_lost.load(std::memory_order_relaxed));
        ro->set_timeouts(st.reorder_timeouts.load(std::memory_order_relaxed));
        ro->set_duplicates(st.reorder_duplicates.load(std::memory_order_relaxed));
        ro->set_overflow(st.reorder_overflow.load(std::memory_order_relaxed));
        for (int i = 0; i < paths.size() && i < static_cast<int>(kMaxPaths); ++i) {
            auto* pr = out->add_path_reorder();
            pr->set_bid(paths[i].bid());
            pr->set_seq_gaps(st.path_seq_gaps[i].load(std::memory_order_relaxed));
            pr->set_reordered(st.path_reordered[i].load(std::memory_order_relaxed));
            pr->set_late(st.path_late[i].load(std::memory_order_relaxed));
            pr->set_timed_out(st.path_timed_out[i].load(std::memory_order_relaxed));
        }
        policy_stats(it->second.session, st, *out);
    }
    r.set_more(it != sessions_.end());
    return r;
}

Result<std::vector<Programmer::Compiled>, ProgramError> Programmer::prepare_profiles(
    const ProfileChanges& changes, const std::vector<Target>& targets) const {
    std::vector<Compiled> out;
    auto invalid = [](std::string m) {
        return unexpected(ProgramError{ProgramError::kInvalidArgument, std::move(m)});
    };
    // The profiles the batch ends with.
    auto present = [&](const std::string& name) {
        if (auto c = changes.find(name); c != changes.end()) {
            return c->second != nullptr;
        }
        return profiles_.count(name) != 0;
    };
    std::unordered_map<std::uint32_t, const v1::DpSession*> changed;
    for (const auto& t : targets) {
        changed[t.id] = t.session;
        if (t.session != nullptr && !t.session->policy_profile().empty()) {
            if (policies_ == nullptr) {
                return invalid(fmt::format("session {}: this data plane has no flow policy", t.id));
            }
            if (!present(t.session->policy_profile())) {
                return invalid(fmt::format("session {}: policy profile '{}' is not programmed",
                                           t.id, t.session->policy_profile()));
            }
        }
    }
    std::uint32_t fresh = 0;
    for (const auto& [name, p] : changes) {
        if (p == nullptr) {
            // Removed: no session may still use it.
            for (const auto& [id, stored] : sessions_) {
                if (changed.count(id) == 0 && stored.session.policy_profile() == name) {
                    return invalid(
                        fmt::format("policy profile '{}': still used by session {}", name, id));
                }
            }
            out.push_back({name, nullptr, nullptr});
            continue;
        }
        if (policies_ == nullptr) {
            return invalid(
                fmt::format("policy profile '{}': this data plane has no flow policy", name));
        }
        if (auto st = profiles_.find(name);
            st != profiles_.end() && st->second.hash == v1::profile_digest(*p) &&
            google::protobuf::util::MessageDifferencer::Equals(st->second.profile, *p)) {
            continue;  // unchanged: its counters keep counting
        }
        auto c = compile_profile(*p);
        if (!c) {
            return invalid(c.error());
        }
        fresh += policies_->find(name) == 0 ? 1 : 0;
        out.push_back({name, std::move(*c), p});
    }
    if (policies_ != nullptr && fresh > policies_->free_slots()) {
        return unexpected(ProgramError{
            ProgramError::kResourceExhausted,
            fmt::format("{} new policy profiles, room for {}", fresh, policies_->free_slots())});
    }
    return out;
}

Result<void, ProgramError> Programmer::commit(std::vector<Compiled>& profiles,
                                              std::vector<Target>& targets) {
    std::vector<std::pair<std::uint16_t, std::unique_ptr<CompiledProfile>>> replaced;
    auto undo = [&] {
        for (auto it = replaced.rbegin(); it != replaced.rend(); ++it) {
            policies_->restore(it->first, std::move(it->second));
        }
    };
    for (auto& c : profiles) {
        if (c.profile == nullptr) {
            continue;
        }
        auto r = policies_->publish(std::move(c.profile));
        if (!r) {
            undo();
            return unexpected(ProgramError{ProgramError::kResourceExhausted, r.error()});
        }
        replaced.push_back(std::move(*r));
    }
    for (auto& t : targets) {
        if (t.session != nullptr) {
            t.cfg.policy = t.session->policy_profile().empty()
                               ? 0
                               : policies_->find(t.session->policy_profile());
        }
    }
    if (auto r = change(targets); !r) {
        undo();
        return r;
    }
    for (auto& [slot, old] : replaced) {
        policies_->retire(std::move(old));
    }
    for (auto& c : profiles) {
        if (auto it = profiles_.find(c.name); it != profiles_.end()) {
            digest_ -= it->second.hash;
            profiles_.erase(it);
        }
        if (c.source == nullptr) {
            policies_->remove(c.name);
            continue;
        }
        const std::uint64_t h = v1::profile_digest(*c.source);
        digest_ += h;
        profiles_.emplace(c.name, StoredProfile{*c.source, h});
    }
    return {};
}

void Programmer::policy_stats(const v1::DpSession& s, const SessionState& st,
                              v1::DpSessionStats& out) const {
    if (s.policy_profile().empty()) {
        return;
    }
    auto* ps = out.mutable_policy();
    ps->set_profile(s.policy_profile());
    ps->set_drops(st.policy_drops.load(std::memory_order_relaxed));
    ps->set_pinned(st.policy_pinned.load(std::memory_order_relaxed));
    ps->set_uplink_forbidden(st.uplink_forbidden.load(std::memory_order_relaxed));
    const CompiledProfile* prof =
        policies_ != nullptr ? policies_->get(policies_->find(s.policy_profile())) : nullptr;
    if (prof == nullptr) {
        return;
    }
    for (std::size_t i = 0; i < prof->rules.size(); ++i) {
        auto* r = ps->add_rules();
        r->set_application(prof->applications[i]);
        r->set_hits(prof->counters[i].hits.load(std::memory_order_relaxed));
        r->set_drops(prof->counters[i].drops.load(std::memory_order_relaxed));
        r->set_uplink_forbidden(prof->counters[i].uplink_forbidden.load(std::memory_order_relaxed));
    }
}

void Programmer::note_rejected(const std::string& why) {
    (void)reject({ProgramError::kInvalidArgument, why});
}

ProgrammerStats Programmer::stats() const {
    return {generation_, table_.size(), table_.capacity(), applied_, rejected_, resyncs_, busy_us_};
}

}  // namespace hag::dp
