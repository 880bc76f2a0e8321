// Backend over a BindingCache guarded by one mutex. The owner mutates the cache only through
// with_cache() so that management readers see a consistent cache. Deletions call the revoker
// (the daemon sends Binding Revocation Indications there) once per removed path.
#pragma once

#include <map>
#include <mutex>

#include "mgmt/backend.hpp"

namespace hag::control::mgmt {

class CacheBackend final : public Backend {
  public:
    using Revoker = std::function<bool(const Session&, const Path&)>;  // true = BRI sent
    using Clock = std::function<Seconds()>;

    CacheBackend(BindingCache& cache, Revoker revoker, Clock clock);

    BindingPage list(const BindingFilter& f, std::uint64_t cursor, std::size_t limit) override;
    std::optional<Session> get(const std::string& nai) override;
    Result<DeleteOutcome, CacheError> remove(const std::string& nai, std::uint16_t bid) override;
    std::vector<std::pair<std::string, std::uint64_t>> counters() override;
    std::uint64_t subscribe(WatchCallback cb) override;
    void unsubscribe(std::uint64_t id) override;
    Seconds now() override { return clock_(); }
    std::shared_ptr<const PolicySnapshot> policy() override {
        std::lock_guard lock(policy_mu_);
        return policy_;
    }
    Result<v1::EditPolicyReply, PolicyEditError> edit_policy(
        const v1::EditPolicyRequest& req) override {
        if (editor_ == nullptr) {
            return Backend::edit_policy(req);
        }
        return editor_->edit(req);
    }
    std::optional<Session> get_by_id(std::uint32_t id) override;
    std::optional<std::uint32_t> session_id(const std::string& nai) override;
    std::map<std::string, std::uint32_t> profile_sessions(const PolicySnapshot& policy,
                                                          std::size_t max_sessions) override;
    // Run-time policy edits go to `editor` (owned by the caller; null: refused).
    void set_policy_editor(PolicyEditor* editor) { editor_ = editor; }
    // Replaces the policy (start-up and reload); readers keep the one they hold.
    void set_policy(std::shared_ptr<const PolicySnapshot> p) {
        std::lock_guard lock(policy_mu_);
        policy_ = std::move(p);
    }

    // Runs fn(cache) under the lock (cache observers fire inside, under the lock too).
    template <typename F>
    auto with_cache(F&& fn) {
        std::lock_guard lock(mu_);
        return fn(cache_);
    }
    // Adds to a named counter (shown by GetCounters).
    void count(const std::string& name, std::uint64_t n = 1);

  private:
    std::mutex policy_mu_;
    std::shared_ptr<const PolicySnapshot> policy_;
    PolicyEditor* editor_ = nullptr;
    std::recursive_mutex mu_;
    BindingCache& cache_;
    Revoker revoker_;
    Clock clock_;
    std::map<std::string, std::uint64_t> counters_;
    std::mutex watch_mu_;
    std::map<std::uint64_t, WatchCallback> watchers_;
    std::uint64_t next_watch_id_ = 1;
};

}  // namespace hag::control::mgmt
