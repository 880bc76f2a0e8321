// What the management service needs from the control core. The daemon implements it over its
// thread-safe facade; CacheBackend (cache_backend.hpp) implements it over a BindingCache guarded
// by a mutex. All calls may come from gRPC threads concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/binding_cache.hpp"
#include "core/policy.hpp"
#include "core/policy_edit.hpp"
#include "hag/result.hpp"
#include "hag/v1/dataplane.pb.h"
#include "hag/v1/management.pb.h"

namespace hag::control::mgmt {

// Filters combine with AND; an empty optional does not filter.
struct BindingFilter {
    std::optional<std::string> nai;
    std::optional<Prefix> prefix;
    std::optional<std::string> mag;
    std::optional<CareOfAddress> coa;
    [[nodiscard]] bool matches(const Session& s) const;
};

struct BindingPage {
    std::vector<Session> sessions;
    std::uint64_t next_cursor = 0;  // 0 = no more pages
    std::uint64_t total = 0;        // sessions in the cache
};

struct DeleteOutcome {
    std::uint32_t paths_removed = 0;
    bool session_removed = false;
    std::uint32_t revocations_sent = 0;
};

// What the data plane pusher has programmed (one consistent snapshot).
struct DataplaneSync {
    std::string target;
    bool connected = false;
    std::uint64_t generation = 0;
    std::uint32_t sessions = 0;
    std::uint64_t digest = 0;
    std::uint64_t pending = 0;
    std::uint32_t rejected = 0;
    std::uint64_t resync_hold_ms = 0;  // start-up hold in force: remaining time
};

using WatchCallback = std::function<void(CacheEvent::Kind, const Session&)>;

class Backend {
  public:
    virtual ~Backend() = default;
    virtual BindingPage list(const BindingFilter& f, std::uint64_t cursor, std::size_t limit) = 0;
    virtual std::optional<Session> get(const std::string& nai) = 0;
    // bid == 0: the whole session.
    virtual Result<DeleteOutcome, CacheError> remove(const std::string& nai, std::uint16_t bid) = 0;
    virtual std::vector<std::pair<std::string, std::uint64_t>> counters() = 0;
    // Registers a watcher; returns its id. Callbacks run on the core's thread: keep them short.
    virtual std::uint64_t subscribe(WatchCallback cb) = 0;
    virtual void unsubscribe(std::uint64_t id) = 0;
    // Monotonic seconds (the clock of Path::expires_at).
    virtual Seconds now() = 0;
    // The data plane pusher's state; nullopt when no data plane is configured.
    virtual std::optional<DataplaneSync> dataplane_sync() { return std::nullopt; }
    // The flow policy in force; nullptr when none is configured.
    virtual std::shared_ptr<const PolicySnapshot> policy() { return nullptr; }
    // Cluster binding store (docs/scale-out.md): the node serving a binding and its anchor;
    // nullopt with the embedded store.
    struct Placement {
        std::string node;
        std::string anchor;
    };
    virtual std::optional<Placement> placement(const std::string& /*nai*/) { return std::nullopt; }
    // A run-time edit of the flow policy (core/policy_edit.hpp); refused when this backend has
    // no policy editor.
    virtual Result<v1::EditPolicyReply, PolicyEditError> edit_policy(const v1::EditPolicyRequest&) {
        return unexpected(PolicyEditError{PolicyEditError::Code::kUnavailable,
                                          "this server takes no run-time policy edits"});
    }
    // The session in slot `id` (the data plane's session id), with that id.
    virtual std::optional<Session> get_by_id(std::uint32_t) { return std::nullopt; }
    // The slot of `nai`'s session.
    virtual std::optional<std::uint32_t> session_id(const std::string&) { return std::nullopt; }
    // For each profile name, the id of one session that the data plane classifies with it
    // (visits at most `max_sessions` sessions).
    virtual std::map<std::string, std::uint32_t> profile_sessions(const PolicySnapshot&,
                                                                  std::size_t) {
        return {};
    }
    // The data plane's flow policy counters of session `id` (its profile's per-rule counters);
    // nullopt without a data plane, when it cannot be reached or does not hold the session.
    virtual std::optional<v1::DpPolicyStats> dataplane_policy_stats(std::uint32_t) {
        return std::nullopt;
    }
};

}  // namespace hag::control::mgmt
