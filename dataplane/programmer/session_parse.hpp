// DpSession (hag/v1/dataplane.proto) -> SessionConfig (tables/session_table.hpp), the part that
// needs no table: text addresses and prefixes parsed, limits checked, the access port of each
// path chosen. Stateless and read-only after construction, so gRPC threads may call it
// concurrently (Resync checks every chunk as it arrives, before the main lcore sees it).
//
// A path leaves by the access port whose configured `addresses` contain its `local` address,
// else by the first access port. Its next hop is attached later, on the main lcore
// (attach_path_next_hop in exception/resolver.hpp).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "hag/result.hpp"
#include "hag/v1/config.pb.h"
#include "hag/v1/dataplane.pb.h"
#include "runtime/ports.hpp"
#include "tables/session_table.hpp"

namespace hag::dp {

struct ParsedSession {
    std::uint32_t id = 0;
    SessionConfig cfg;                                          // next hops not attached yet
    std::array<const Port*, kMaxPaths> ports{};                 // the access port of each path
    std::array<const Port*, kMaxRemoteAnchors> anchor_ports{};  // of each remote anchor
};

class SessionParser {
  public:
    // `ports`: every port of the data plane (only ACCESS ones carry paths); `capacity`: the
    // session table's, ids must be below it.
    SessionParser(const v1::DataplaneConfig& cfg, std::vector<Port> ports, std::uint32_t capacity);

    // Errors name the session id and the field: "session 7 path 2: care_of '...': ...".
    [[nodiscard]] Result<ParsedSession, std::string> parse(const v1::DpSession& s) const;
    [[nodiscard]] std::uint32_t capacity() const noexcept { return capacity_; }

  private:
    [[nodiscard]] const Port* port_for(const IpAddr& local) const noexcept;
    // DpSession.remote_anchors (distributed anchoring) into out.cfg.anchors.
    [[nodiscard]] Result<void, std::string> parse_anchors(const v1::DpSession& s,
                                                          ParsedSession& out) const;

    std::vector<Port> ports_;
    std::vector<std::pair<IpAddr, std::size_t>> own_;  // configured address -> index in ports_
    const Port* first_access_ = nullptr;
    std::uint32_t capacity_;
};

// The exact-match identity of a prefix, for collision checks ("2001:db8::/64" and
// "2001:db8:0::/64" are one prefix).
std::string prefix_identity(const IpPrefix& p);

}  // namespace hag::dp
