#include "dpclient/dirty_set.hpp"

#include <algorithm>

namespace hag::control::dpclient {

bool DirtySet::mark(std::uint32_t id) {
    if (id >= flag_.size()) {
        flag_.resize(static_cast<std::size_t>(id) + 1, false);
    }
    if (flag_[id]) {
        return false;
    }
    flag_[id] = true;
    order_.push_back(id);
    return true;
}

std::vector<std::uint32_t> DirtySet::take(std::size_t max) {
    std::vector<std::uint32_t> out;
    out.reserve(std::min(max, order_.size()));
    while (!order_.empty() && out.size() < max) {
        const std::uint32_t id = order_.front();
        order_.pop_front();
        flag_[id] = false;
        out.push_back(id);
    }
    return out;
}

void DirtySet::clear() {
    order_.clear();
    std::fill(flag_.begin(), flag_.end(), false);
}

}  // namespace hag::control::dpclient
