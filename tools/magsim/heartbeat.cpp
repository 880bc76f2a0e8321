#include "heartbeat.hpp"

namespace hag::magsim {

HeartbeatTracker::Event HeartbeatTracker::on_request_sent(std::uint32_t sequence) noexcept {
    Event ev = Event::kNone;
    if (outstanding_) {
        ++missed_;
        if (missed_ >= kMissedLimit && !unreachable_) {
            unreachable_ = true;
            ev = Event::kUnreachable;
        }
    } else {
        first_unanswered_ = sequence;
    }
    outstanding_ = true;
    any_sent_ = true;
    last_sent_ = sequence;
    return ev;
}

HeartbeatTracker::Event HeartbeatTracker::on_response(std::uint32_t sequence) noexcept {
    // Sequence numbers of one run grow from 1 and a run never wraps 2^32 heartbeats; a late
    // response to any unanswered request still shows that the LMA is alive.
    if (!any_sent_ || !outstanding_ || sequence < first_unanswered_ || sequence > last_sent_) {
        return Event::kNone;
    }
    outstanding_ = false;
    missed_ = 0;
    if (unreachable_) {
        unreachable_ = false;
        return Event::kReachableAgain;
    }
    return Event::kNone;
}

}  // namespace hag::magsim
