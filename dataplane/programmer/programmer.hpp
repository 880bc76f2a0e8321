// The data plane's side of DataplaneProgrammer (hag/v1/dataplane.proto, docs/programming.md):
// batches and full resyncs checked as a whole, then applied to the SessionTable all or nothing.
//
// Main lcore only (the tables' one writer): gRPC threads hand requests over through a
// MainLoopQueue (programmer/main_loop_queue.hpp). Besides the tables it keeps, per session id,
// the DpSession last applied (for Digest and ListSessions), the running digest (sum of
// session_digest, hag/v1/dataplane_digest.hpp) and the generation in force.
//
// Flow policy profiles (DpPolicyProfile) are compiled here, on the main lcore, before anything
// is published; a batch's profiles are published before its sessions (which name them), and a
// failure puts the replaced profiles back. The digest covers profiles too.
//
// How a change reaches the table without a collision on the way (SessionTable refuses a key or
// prefix another session holds): sessions that go are removed first; sessions that stay but
// give a key or prefix to another session are re-published without it; then every new config
// is published. A session present before and after keeps forwarding throughout; an unchanged
// one is not touched at all.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "hag/result.hpp"
#include "hag/v1/config.pb.h"
#include "hag/v1/dataplane.pb.h"
#include "policy/policy_table.hpp"
#include "programmer/session_parse.hpp"
#include "tables/next_hop_table.hpp"
#include "tables/session_table.hpp"

namespace hag::dp {

struct ProgramError {
    enum Code { kInvalidArgument, kFailedPrecondition, kResourceExhausted, kInternal };
    Code code = kInvalidArgument;
    std::string message;
};

struct ProgrammerStats {
    std::uint64_t generation = 0;  // 0 = never programmed since start
    std::uint32_t sessions = 0;
    std::uint32_t max_sessions = 0;
    std::uint64_t batches_applied = 0;
    std::uint64_t batches_rejected = 0;
    std::uint64_t resyncs = 0;
    std::uint64_t busy_us = 0;  // main lcore time in apply() and resync(), in total
};

class Programmer {
  public:
    // `policies`: the flow policy profiles sessions may name; null = profiles are refused.
    Programmer(SessionTable& sessions, NextHopTable& next_hops, const v1::DataplaneConfig& cfg,
               std::vector<Port> ports, PolicyTable* policies = nullptr);
    Programmer(const Programmer&) = delete;
    Programmer& operator=(const Programmer&) = delete;

    // Thread-safe: gRPC threads check sessions with it before handing them over.
    [[nodiscard]] const SessionParser& parser() const noexcept { return parser_; }

    // A static session of the configuration file (generation stays 0). `cfg` has its next
    // hops attached already (attach_path_next_hop); they become the programmer's to release.
    Result<void, std::string> add_static(const v1::DpSession& s, const SessionConfig& cfg);

    Result<v1::ApplyReply, ProgramError> apply(const v1::ApplyRequest& req);
    // The table becomes exactly `sessions`; generation becomes `generation` (any value > 0).
    // The table becomes exactly `sessions` and the flow policy profiles exactly `profiles`. The
    // sessions are taken (moved into the programmer's store): pass an rvalue to avoid a copy.
    Result<v1::ApplyReply, ProgramError> resync(
        std::uint64_t generation, std::vector<v1::DpSession> sessions,
        const std::vector<v1::DpPolicyProfile>& profiles = {});
    [[nodiscard]] v1::DigestReply digest() const;
    [[nodiscard]] v1::DpListReply list(const v1::DpListRequest& req) const;
    [[nodiscard]] ProgrammerStats stats() const;
    // A request refused before it reached the main lcore (a bad resync chunk): counted, logged.
    void note_rejected(const std::string& why);

  private:
    struct Stored {
        v1::DpSession session;
        std::uint64_t hash = 0;  // session_digest(session)
    };
    // One session id's final state in a change: `session` null = removed.
    struct Target {
        std::uint32_t id = 0;
        const v1::DpSession* session = nullptr;
        SessionConfig cfg;  // parsed; next hops attached by change() unless `attached`
        std::array<const Port*, kMaxPaths> ports{};
        bool attached = false;
        v1::DpSession* take = nullptr;  // `session`, to be moved into storage (a resync's)
        std::array<const Port*, kMaxRemoteAnchors> anchor_ports{};  // of cfg.anchors
    };

    Result<void, ProgramError> check_collisions(const std::vector<Target>& targets) const;
    Result<void, ProgramError> change(std::vector<Target>& targets);
    // Publishes (id, config) pairs (null config = remove) in the collision-free order.
    Result<void, std::string> transition(
        const std::vector<std::pair<std::uint32_t, const SessionConfig*>>& steps);
    Result<void, ProgramError> reject(ProgramError e);

    // Flow policy profiles of a batch: name -> the profile it ends with (null = removed).
    using ProfileChanges = std::map<std::string, const v1::DpPolicyProfile*>;
    struct Compiled {
        std::string name;
        std::unique_ptr<CompiledProfile> profile;  // null: removed
        const v1::DpPolicyProfile* source = nullptr;
    };
    // Checks the profiles against the sessions the batch ends with, compiles the changed ones.
    Result<std::vector<Compiled>, ProgramError> prepare_profiles(
        const ProfileChanges& changes, const std::vector<Target>& targets) const;
    // Publishes the profiles, then the sessions (change()); all or nothing.
    Result<void, ProgramError> commit(std::vector<Compiled>& profiles,
                                      std::vector<Target>& targets);
    void policy_stats(const v1::DpSession& s, const SessionState& st,
                      v1::DpSessionStats& out) const;

    SessionTable& table_;
    NextHopTable& next_hops_;
    PolicyTable* policies_;
    struct StoredProfile {
        v1::DpPolicyProfile profile;
        std::uint64_t hash = 0;  // profile_digest(profile)
    };
    std::map<std::string, StoredProfile> profiles_;
    const v1::DataplaneConfig& cfg_;
    SessionParser parser_;
    std::map<std::uint32_t, Stored> sessions_;  // by id: ListSessions pages in id order
    std::unordered_map<std::uint32_t, std::uint32_t> key_owner_;              // uplink key -> id
    std::unordered_map<IpPrefix, std::uint32_t, IpPrefixHash> prefix_owner_;  // prefix -> id
    std::uint64_t digest_ = 0;
    std::uint64_t generation_ = 0;
    std::uint64_t applied_ = 0, rejected_ = 0, resyncs_ = 0;
    std::uint64_t busy_us_ = 0;
};

}  // namespace hag::dp
