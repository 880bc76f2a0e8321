// Flow policy profiles of the data plane (issue #8, docs/dataplane.md "Flow policy"): each
// profile compiled into one rte_acl context shared by every session that uses it, the rules'
// preference lists, and per-rule counters.
//
// Threading rule: one writer, the main lcore, compiles (rte_acl_build runs there, never on a
// worker) and publishes a profile into its slot with one atomic store; readers (workers) load
// the slot per packet. A replaced or removed profile is freed after an RCU grace period
// (tables/rcu.hpp), so a worker that loaded it before the swap finishes its burst on it.
// Forwarding never stops for a policy change. Sessions name their profile by slot index
// (SessionConfig::policy; 0 = none), so replacing a profile changes it for all of them at once.
#pragma once

#include <rte_acl.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "hag/result.hpp"
#include "hag/v1/dataplane.pb.h"
#include "policy/flow_key.hpp"
#include "tables/rcu.hpp"

namespace hag::dp {

inline constexpr std::uint16_t kMaxPolicyProfiles = 1024;  // slots 1..1023 (0 = no policy)
inline constexpr unsigned kMaxPolicySteps = 8;             // access steps per rule
inline constexpr std::uint32_t kMaxAclRules = 1u << 17;    // expanded ACL rules per profile

struct PolicyStep {
    bool has_if_label = false;
    bool has_access_technology = false;
    std::uint8_t if_label = 0;
    std::uint8_t access_technology = 0;
};

enum class PolicyTerminal : std::uint8_t { kDrop, kStripe };

struct PolicyRule {
    std::uint8_t n_steps = 0;
    std::array<PolicyStep, kMaxPolicySteps> steps{};
    PolicyTerminal terminal = PolicyTerminal::kDrop;
};

// Shared by the workers serving the profile's sessions: relaxed atomics (counts).
struct alignas(32) PolicyRuleCounters {
    std::atomic<std::uint64_t> hits{0};
    std::atomic<std::uint64_t> drops{0};
    std::atomic<std::uint64_t> uplink_forbidden{0};
};

struct CompiledProfile {
    CompiledProfile() = default;
    ~CompiledProfile();
    CompiledProfile(const CompiledProfile&) = delete;
    CompiledProfile& operator=(const CompiledProfile&) = delete;

    std::string name;
    rte_acl_ctx* acl = nullptr;  // null when the profile has no rules
    std::vector<PolicyRule> rules;
    std::vector<std::string> applications;  // per rule, for counters' names
    std::unique_ptr<PolicyRuleCounters[]> counters;
    std::uint32_t acl_rules = 0;  // expanded ACL rules
    bool drop_forbidden_uplink = false;

    // Index of the first matching rule, or -1. Reader side; no allocation.
    [[nodiscard]] int classify(const PolicyKey& key) const noexcept {
        if (acl == nullptr) {
            return -1;
        }
        const std::uint8_t* data[1] = {reinterpret_cast<const std::uint8_t*>(&key)};
        std::uint32_t result = 0;
        if (rte_acl_classify(acl, data, &result, 1, 1) != 0 || result == 0) {
            return -1;
        }
        return static_cast<int>(result - 1);
    }
    // A burst's keys in one rte_acl_classify call (its vector paths work on several packets at
    // once): rule[i] = index of the first matching rule of keys[i], or -1. Reader side.
    void classify_burst(const PolicyKey* const* keys, int* rule, unsigned n) const noexcept {
        for (unsigned i = 0; i < n; ++i) {
            rule[i] = -1;
        }
        if (acl == nullptr || n == 0) {
            return;
        }
        constexpr unsigned kChunk = 64;
        for (unsigned base = 0; base < n; base += kChunk) {
            const unsigned k = n - base < kChunk ? n - base : kChunk;
            const std::uint8_t* data[kChunk];
            std::uint32_t results[kChunk];
            for (unsigned i = 0; i < k; ++i) {
                data[i] = reinterpret_cast<const std::uint8_t*>(keys[base + i]);
                results[i] = 0;
            }
            if (rte_acl_classify(acl, data, results, k, 1) != 0) {
                continue;
            }
            for (unsigned i = 0; i < k; ++i) {
                rule[base + i] = results[i] == 0 ? -1 : static_cast<int>(results[i] - 1);
            }
        }
    }
};

// DpPolicyProfile -> CompiledProfile: checked (hag/v1/policy_dp.hpp), classifiers expanded into
// ACL rules (ports x prefixes x DSCP runs), the context built. Main lcore; may take a while for
// thousands of rules (rte_acl_build), which is why it never runs on a worker.
Result<std::unique_ptr<CompiledProfile>, std::string> compile_profile(const v1::DpPolicyProfile& p);

class PolicyTable {
  public:
    explicit PolicyTable(Rcu& rcu);
    ~PolicyTable();
    PolicyTable(const PolicyTable&) = delete;
    PolicyTable& operator=(const PolicyTable&) = delete;

    // ---- writer (main lcore) ----
    [[nodiscard]] std::uint16_t find(const std::string& name) const noexcept;  // 0 = none
    [[nodiscard]] std::uint32_t free_slots() const noexcept {
        return static_cast<std::uint32_t>(kMaxPolicyProfiles - 1 - by_name_.size());
    }
    // Publishes `p` under its name (a new slot, or the slot of the profile it replaces) and
    // returns the slot and the replaced profile (nullptr if new); the caller either hands the
    // replaced one to retire() or puts it back with restore() (all-or-nothing batches).
    // Error only when no slot is free.
    Result<std::pair<std::uint16_t, std::unique_ptr<CompiledProfile>>, std::string> publish(
        std::unique_ptr<CompiledProfile> p);
    void restore(std::uint16_t slot, std::unique_ptr<CompiledProfile> old);  // old null = unused
    void retire(std::unique_ptr<CompiledProfile> old);  // freed after a grace period
    void remove(const std::string& name);
    [[nodiscard]] std::uint32_t size() const noexcept {
        return static_cast<std::uint32_t>(by_name_.size());
    }

    // ---- readers ----
    [[nodiscard]] const CompiledProfile* get(std::uint16_t slot) const noexcept {
        return slot < kMaxPolicyProfiles ? slots_[slot].load(std::memory_order_acquire) : nullptr;
    }

  private:
    Rcu& rcu_;
    std::unique_ptr<std::atomic<const CompiledProfile*>[]> slots_;
    std::unordered_map<std::string, std::uint16_t> by_name_;
    std::unordered_map<std::uint16_t, std::unique_ptr<CompiledProfile>> owned_;
};

}  // namespace hag::dp
