// The sessions changed since they were last pushed to the data plane, by session id (cache
// slot). Marking an id that is already dirty does nothing: any number of changes to one session
// between two pushes become one change, and the set never holds more entries than there are
// session slots (back-pressure without an unbounded queue). Ids leave in the order they were
// first marked. Not thread-safe: the pusher guards it with its mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

namespace hag::control::dpclient {

class DirtySet {
  public:
    // Returns true when `id` was not dirty before.
    bool mark(std::uint32_t id);
    // Removes and returns up to `max` ids, oldest first.
    std::vector<std::uint32_t> take(std::size_t max);
    void clear();
    [[nodiscard]] std::size_t size() const noexcept { return order_.size(); }
    [[nodiscard]] bool empty() const noexcept { return order_.empty(); }
    [[nodiscard]] bool contains(std::uint32_t id) const noexcept {
        return id < flag_.size() && flag_[id];
    }

  private:
    std::vector<bool> flag_;  // grows to the highest id marked (< the cache's max_sessions)
    std::deque<std::uint32_t> order_;
};

}  // namespace hag::control::dpclient
