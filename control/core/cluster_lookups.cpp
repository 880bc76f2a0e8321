#include "cluster_lookups.hpp"

#include <spdlog/spdlog.h>

#include <utility>

namespace hag::control {

using Clock = std::chrono::steady_clock;

ClusterLookups::ClusterLookups(Backend b, Deliver d, unsigned threads)
    : backend_(std::move(b)), deliver_(std::move(d)) {
    for (unsigned i = 0; i < std::max(1u, threads); ++i) {
        threads_.emplace_back([this] { run(); });
    }
}

ClusterLookups::~ClusterLookups() {
    {
        std::lock_guard lk(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) {
        t.join();
    }
}

ClusterLookups::Wait ClusterLookups::enqueue(Kind k, const std::string& key,
                                             const HeldMessage* msg) {
    Key id{k, key};
    auto it = pending_.find(id);
    if (it == pending_.end()) {
        if (pending_.size() >= kMaxKeys && k != Kind::kKeepAlive) {
            ++counters_.full;
            return Wait::kFull;
        }
        it = pending_.emplace(id, Pending{}).first;
        queue_.push_back(std::move(id));
        cv_.notify_one();
    }
    if (msg != nullptr) {
        auto& held = it->second.held;
        if (held.size() >= kHeldPerKey) {
            held.erase(held.begin());  // the oldest: the MAG has retransmitted since
            ++counters_.held_dropped;
        }
        held.push_back(*msg);
        ++counters_.held;
    }
    return Wait::kQueued;
}

void ClusterLookups::sweep(Clock::time_point now) {
    if (now - last_sweep_ < std::chrono::seconds(1)) {
        return;
    }
    last_sweep_ = now;
    std::erase_if(bindings_, [&](const auto& e) { return now - e.second.at > kAnswerSeconds; });
    std::erase_if(live_, [&](const auto& e) {
        return now - e.second.at > (e.second.value ? kLivenessSeconds : kAnswerSeconds);
    });
}

std::variant<ClusterLookups::BindingAnswer, ClusterLookups::Wait> ClusterLookups::binding(
    const std::string& nai, const HeldMessage& msg) {
    std::lock_guard lk(mu_);
    const auto now = Clock::now();
    sweep(now);
    if (auto it = bindings_.find(nai); it != bindings_.end()) {
        const bool fresh = now - it->second.at <= kAnswerSeconds;
        BindingAnswer a = std::move(it->second.value);
        bindings_.erase(it);
        if (fresh) {
            return a;
        }
    }
    return enqueue(Kind::kBinding, nai, &msg);
}

std::optional<ClusterLookups::LivenessAnswer> ClusterLookups::liveness_if_known(
    const std::string& node) {
    std::lock_guard lk(mu_);
    const auto now = Clock::now();
    sweep(now);
    auto it = live_.find(node);
    if (it == live_.end()) {
        return std::nullopt;
    }
    if (!it->second.value) {  // an error is handed to one asker
        LivenessAnswer a = std::move(it->second.value);
        live_.erase(it);
        return a;
    }
    if (now - it->second.at <= kLivenessSeconds) {
        return it->second.value;
    }
    live_.erase(it);
    return std::nullopt;
}

std::variant<ClusterLookups::LivenessAnswer, ClusterLookups::Wait> ClusterLookups::liveness(
    const std::string& node, const HeldMessage& msg) {
    if (auto a = liveness_if_known(node)) {
        return std::move(*a);
    }
    std::lock_guard lk(mu_);
    return enqueue(Kind::kLiveness, node, &msg);
}

void ClusterLookups::read_binding(const std::string& nai,
                                  std::function<void(const BindingAnswer&)> done) {
    std::lock_guard lk(mu_);
    if (enqueue(Kind::kRead, nai, nullptr) == Wait::kQueued) {
        pending_[Key{Kind::kRead, nai}].done.push_back(std::move(done));
    } else {
        done(BindingAnswer(unexpected(std::string("too many cluster store reads waiting"))));
    }
}

void ClusterLookups::keep_alive() {
    std::lock_guard lk(mu_);
    (void)enqueue(Kind::kKeepAlive, "", nullptr);
}

ClusterLookups::Counters ClusterLookups::counters() const {
    std::lock_guard lk(mu_);
    return counters_;
}

std::size_t ClusterLookups::waiting() const {
    std::lock_guard lk(mu_);
    return pending_.size();
}

void ClusterLookups::run() {
    for (;;) {
        Key job;
        {
            std::unique_lock lk(mu_);
            cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
            if (stop_) {
                return;
            }
            job = std::move(queue_.front());
            queue_.pop_front();
        }
        const auto& [kind, key] = job;
        if (kind == Kind::kKeepAlive) {
            auto r = backend_.keep_alive ? backend_.keep_alive() : Result<void, std::string>{};
            if (!r) {
                spdlog::warn("cluster: {}", r.error());
            }
            std::lock_guard lk(mu_);
            ++counters_.keep_alives;
            counters_.keep_alive_errors += r ? 0 : 1;
            pending_.erase(job);
            continue;
        }
        if (kind == Kind::kRead) {
            const BindingAnswer r = backend_.load(key);
            std::vector<std::function<void(const BindingAnswer&)>> done;
            {
                std::lock_guard lk(mu_);
                ++counters_.reads;
                counters_.read_errors += r ? 0 : 1;
                if (auto it = pending_.find(job); it != pending_.end()) {
                    done = std::move(it->second.done);
                    pending_.erase(it);
                }
            }
            for (auto& d : done) {
                d(r);
            }
            continue;
        }
        std::optional<BindingAnswer> binding;
        std::optional<std::pair<std::string, LivenessAnswer>> live;
        std::uint64_t reads = 0, errors = 0;
        if (kind == Kind::kBinding) {
            binding = backend_.load(key);
            ++reads;
            errors += *binding ? 0 : 1;
            if (*binding && **binding && backend_.anchor_of && backend_.node_address) {
                if (std::string anchor = backend_.anchor_of(key); !anchor.empty()) {
                    live.emplace(anchor, backend_.node_address(anchor));
                    ++reads;
                    errors += live->second ? 0 : 1;
                }
            }
        } else {
            live.emplace(key, backend_.node_address(key));
            ++reads;
            errors += live->second ? 0 : 1;
        }
        std::vector<HeldMessage> ready;
        {
            std::lock_guard lk(mu_);
            const auto now = Clock::now();
            counters_.reads += reads;
            counters_.read_errors += errors;
            if (binding) {
                bindings_.insert_or_assign(key, Answer<BindingAnswer>{std::move(*binding), now});
            }
            if (live) {
                live_.insert_or_assign(live->first,
                                       Answer<LivenessAnswer>{std::move(live->second), now});
            }
            if (auto it = pending_.find(job); it != pending_.end()) {
                ready = std::move(it->second.held);
                pending_.erase(it);
            }
            counters_.delivered += ready.size();
        }
        if (!ready.empty()) {
            deliver_(std::move(ready));
        }
    }
}

}  // namespace hag::control
