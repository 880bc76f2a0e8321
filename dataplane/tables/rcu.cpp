#include "tables/rcu.hpp"

#include <rte_errno.h>
#include <rte_malloc.h>

namespace hag::dp {

Result<std::unique_ptr<Rcu>, std::string> Rcu::create(std::uint32_t max_threads) {
    const std::size_t sz = rte_rcu_qsbr_get_memsize(max_threads);
    auto* v = static_cast<rte_rcu_qsbr*>(rte_zmalloc("hag_rcu", sz, RTE_CACHE_LINE_SIZE));
    if (v == nullptr) {
        return unexpected(std::string("cannot allocate the RCU variable: out of DPDK memory"));
    }
    if (rte_rcu_qsbr_init(v, max_threads) != 0) {
        rte_free(v);
        return unexpected(std::string("rte_rcu_qsbr_init failed: ") + rte_strerror(rte_errno));
    }
    return std::make_unique<Rcu>(Token{}, v);
}

Rcu::~Rcu() {
    // Readers are gone by now (workers are joined before tables are destroyed).
    for (auto& d : deferred_) {
        d.second();
    }
    rte_free(v_);
}

void Rcu::register_reader(std::uint32_t thread_id) {
    rte_rcu_qsbr_thread_register(v_, thread_id);
    rte_rcu_qsbr_thread_online(v_, thread_id);
}

void Rcu::unregister_reader(std::uint32_t thread_id) {
    rte_rcu_qsbr_thread_offline(v_, thread_id);
    rte_rcu_qsbr_thread_unregister(v_, thread_id);
}

void Rcu::defer(std::function<void()> free_fn) {
    deferred_.emplace_back(rte_rcu_qsbr_start(v_), std::move(free_fn));
}

std::size_t Rcu::reclaim() {
    std::size_t n = 0;
    while (!deferred_.empty() && rte_rcu_qsbr_check(v_, deferred_.front().first, false) == 1) {
        deferred_.front().second();
        deferred_.pop_front();
        ++n;
    }
    return n;
}

void Rcu::synchronize() {
    while (!deferred_.empty()) {
        rte_rcu_qsbr_check(v_, deferred_.front().first, true);
        reclaim();
    }
}

}  // namespace hag::dp
