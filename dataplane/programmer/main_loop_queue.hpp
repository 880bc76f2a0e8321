// Hands work from other threads (gRPC) to the main lcore, the one writer of the tables: a
// mutex-protected queue of jobs that the main loop runs between its other duties. Callers wait
// for their job's result; workers never see this queue.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>

namespace hag::dp {

class MainLoopQueue {
  public:
    // Any thread: runs `fn` on the main lcore and returns its result, or nullopt when the queue
    // is closed (shutting down) before the job ran.
    template <typename F>
    std::optional<std::invoke_result_t<F>> call(F fn) {
        using R = std::invoke_result_t<F>;
        auto task = std::make_shared<std::packaged_task<R()>>(std::move(fn));
        std::future<R> result = task->get_future();
        {
            std::lock_guard lock(mu_);
            if (closed_) {
                return std::nullopt;
            }
            jobs_.emplace_back([task] { (*task)(); });
        }
        cv_.notify_one();
        try {
            return result.get();
        } catch (const std::future_error&) {  // broken promise: dropped by close()
            return std::nullopt;
        }
    }

    // Main lcore: runs the jobs queued now; true if there were any.
    bool run_pending() {
        std::deque<std::function<void()>> jobs;
        {
            std::lock_guard lock(mu_);
            jobs.swap(jobs_);
        }
        for (auto& j : jobs) {
            j();
        }
        return !jobs.empty();
    }

    // Main lcore: sleeps until a job arrives or `timeout` passes.
    void wait(std::chrono::milliseconds timeout) {
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, timeout, [this] { return !jobs_.empty() || closed_; });
    }

    // Refuses new jobs and drops queued ones (their callers get nullopt).
    void close() {
        std::deque<std::function<void()>> dropped;
        {
            std::lock_guard lock(mu_);
            closed_ = true;
            dropped.swap(jobs_);
        }
        cv_.notify_all();
    }

  private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_;
    bool closed_ = false;
};

}  // namespace hag::dp
