// RCU quiescent-state based reclamation (rte_rcu_qsbr) for the data plane's tables.
//
// Threading rule: the main lcore is the only writer of every table. Workers (readers) call
// `quiescent(thread_id)` after each burst, outside any table reference. Memory a writer
// unlinks is handed to `defer()` and freed by `reclaim()` once every registered reader has
// reported quiescent since.
#pragma once

#include <rte_rcu_qsbr.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "hag/result.hpp"

namespace hag::dp {

class Rcu {
  public:
    static Result<std::unique_ptr<Rcu>, std::string> create(std::uint32_t max_threads);
    ~Rcu();
    Rcu(const Rcu&) = delete;
    Rcu& operator=(const Rcu&) = delete;

    [[nodiscard]] rte_rcu_qsbr* qsbr() const noexcept { return v_; }

    // Reader side.
    void register_reader(std::uint32_t thread_id);
    void unregister_reader(std::uint32_t thread_id);
    void quiescent(std::uint32_t thread_id) noexcept { rte_rcu_qsbr_quiescent(v_, thread_id); }

    // Writer side: `free_fn` runs once all readers have passed a quiescent state.
    void defer(std::function<void()> free_fn);
    // Frees what is safe to free now; returns how many were freed. Non-blocking.
    std::size_t reclaim();
    // Blocks until every deferred item is freed (shutdown, tests).
    void synchronize();
    [[nodiscard]] std::size_t pending() const noexcept { return deferred_.size(); }

  private:
    struct Token {
        explicit Token() = default;
    };

  public:
    Rcu(Token, rte_rcu_qsbr* v) : v_(v) {}

  private:
    rte_rcu_qsbr* v_;
    std::deque<std::pair<std::uint64_t, std::function<void()>>> deferred_;
};

}  // namespace hag::dp
