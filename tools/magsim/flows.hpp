// hag-magsim flow bindings (RFC 6089, docs/magsim.md "Flow bindings"): what the home router
// asks the LMA for, and the same choice mirrored on its own uplink.
//
// A flow is "NAME=PROTO[:PORT[-PORT]]>BID[,BID...]" or "NAME=PROTO[:PORT[-PORT]]>drop": PROTO
// is tcp, udp, esp, ah, sctp or a number, PORT the other end's (the server's) port. The home
// router signals it as a Flow Identification whose traffic selector describes a downlink packet
// (source port = PORT), FID and FID-PRI = its position (1, 2, ...).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hag/mh/flow_binding.hpp"
#include "hag/policy/policy.hpp"

namespace hag::magsim {

struct FlowSpec {
    std::string name;
    mh::FlowBinding binding;
};

// One spec; nullopt (with `why`) when malformed. `index` (0-based) gives the FID / FID-PRI.
std::optional<FlowSpec> parse_flow(std::string_view text, std::size_t index,
                                   std::string* why = nullptr);
// A file of specs, one a line; '#' starts a comment. Errors name the line.
std::optional<std::vector<FlowSpec>> read_flows_file(const std::string& path, std::string* why);

// The bindings to signal with a PBU when `registered(bid)` says which BIDs are (or are being)
// registered: each binding references the registered BIDs among its own, in order; a binding
// left with none is not signalled (discard bindings always are).
std::vector<mh::FlowBinding> flows_to_signal(const std::vector<FlowSpec>& specs,
                                             const std::function<bool(std::uint16_t)>& registered);

// The uplink mirror: the same bindings classify packets from the LAN (the subscriber is the
// source), in FID-PRI order; the first match decides.
class UplinkFlows {
  public:
    explicit UplinkFlows(const std::vector<FlowSpec>& specs);
    struct Choice {
        bool drop = false;
        std::uint16_t bid = 0;  // when !drop
        std::size_t flow = 0;   // index of the deciding binding
    };
    // nullopt: no binding matches (the normal scheduler picks). A matching binding whose BIDs
    // are all down drops the packet. `ip`: the IP packet.
    [[nodiscard]] std::optional<Choice> decide(
        std::span<const std::uint8_t> ip, const std::function<bool(std::uint16_t)>& live) const;
    [[nodiscard]] bool empty() const noexcept { return flows_.empty(); }

  private:
    struct Flow {
        std::vector<policy::Classifier> any_of;
        std::vector<std::uint16_t> bids;
    };
    std::vector<Flow> flows_;
};

// The subscriber-side key of an uplink IP packet; nullopt when it is not IPv4 / IPv6.
std::optional<policy::FlowKey> uplink_key(std::span<const std::uint8_t> ip);

}  // namespace hag::magsim
