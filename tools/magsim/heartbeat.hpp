// Heartbeat bookkeeping of one access (RFC 5847 §3): how many Heartbeat Requests this simulator
// sent without a response. A request counts as missed when the next one is due and it is still
// unanswered; after kMissedLimit missed requests the LMA is reported unreachable (once), and the
// first response after that reports it reachable again.
#pragma once

#include <cstdint>

namespace hag::magsim {

class HeartbeatTracker {
  public:
    static constexpr unsigned kMissedLimit = 3;
    enum class Event : std::uint8_t { kNone, kUnreachable, kReachableAgain };

    // A request with `sequence` is being sent now.
    Event on_request_sent(std::uint32_t sequence) noexcept;
    // A response arrived; responses to requests not sent (or already answered) are ignored.
    Event on_response(std::uint32_t sequence) noexcept;

    [[nodiscard]] unsigned missed() const noexcept { return missed_; }
    [[nodiscard]] bool unreachable() const noexcept { return unreachable_; }

  private:
    std::uint32_t first_unanswered_ = 0;  // oldest request sent since the last response
    std::uint32_t last_sent_ = 0;
    bool outstanding_ = false;
    bool any_sent_ = false;
    unsigned missed_ = 0;
    bool unreachable_ = false;
};

}  // namespace hag::magsim
