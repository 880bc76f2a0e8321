// Delegated mobile network prefixes (RFC 7148): the prefixes a mobile router (the CPE) routes
// to its LAN, granted by the LMA when a PBU carries Delegated Mobile Network Prefix options
// (type 55). IPv6 and IPv4 prefixes come from their own pools (ControlConfig.dmnp_pools) or from
// a subscriber's static list (Subscriber.delegated_prefixes). IPv4 prefixes are held as
// IPv4-mapped IPv6 prefixes (::ffff:192.0.2.128/124 for 192.0.2.128/28), as care-of addresses
// are. Pure logic, owned by the LMA on the signalling thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "allocators.hpp"
#include "binding_cache.hpp"
#include "hag/mh/mh.hpp"
#include "hag/v1/config.pb.h"

namespace hag::control {

// "2001:db8:d00::/56" or "192.0.2.128/28" (IPv4 as IPv4-mapped, length + 96).
Result<Prefix, std::string> parse_prefix_any(std::string_view text);
// The inverse: IPv4-mapped prefixes of length >= 96 as dotted-quad prefixes.
std::string prefix_text_any(const Prefix& p);
[[nodiscard]] bool prefix_is_ipv4(const Prefix& p) noexcept;

// One Delegated Mobile Network Prefix option of a PBU: a zero prefix asks for any prefix of
// that family (RFC 7148 §3.1.2; its length, when not 0, is a hint the LMA may ignore), a
// non-zero one for exactly that prefix.
struct DmnpRequest {
    bool ipv4 = false;
    std::optional<Prefix> specific;  // IPv4 mapped
};
// The requests of a PBU's options. A malformed option (host bits set, prefix longer than the
// family) comes back as nullopt: the PBU is refused NOT_AUTHORIZED_FOR_DELEGATED_MNP.
std::optional<std::vector<DmnpRequest>> dmnp_requests(const mh::Options& opts);

mh::DelegatedMobileNetworkPrefix to_option(const Prefix& p);

// The LMA's DMNP pools and decisions.
class DmnpPools {
  public:
    DmnpPools() = default;
    explicit DmnpPools(const v1::ControlConfig& cfg);

    struct Grant {
        std::vector<Prefix> prefixes;  // the session's delegated prefixes after this PBU
        std::vector<Prefix> claimed;   // newly taken from pools (undo() on a later refusal)
    };
    struct Refusal {
        std::uint8_t status = 0;  // BA status: 177, 178 or 130
        std::string why;
    };
    // Decides the delegated prefixes of a session that holds `current` and asks for
    // `requests`: a request already satisfied by `current` keeps it; an "any" request takes the
    // subscriber's next unused static prefix of its family, else one from the profile's pool; a
    // specific request is granted when it is a static prefix of the subscriber or (with
    // allow_requested_dmnp) a free prefix of the pool. `in_use_elsewhere(p)` says whether
    // another session holds p (static prefixes are not in any pool).
    Result<Grant, Refusal> decide(const std::vector<DmnpRequest>& requests,
                                  const std::vector<Prefix>& current,
                                  const v1::SubscriberProfile& prof, const v1::Subscriber* sub,
                                  const std::function<bool(const Prefix&)>& in_use_elsewhere);
    void undo(const std::vector<Prefix>& claimed);
    // A prefix a session gave up or that was restored: returned to / taken from its pool (no-op
    // for prefixes outside every pool).
    void release(const Prefix& p);
    Result<void, std::string> claim(const Prefix& p);
    [[nodiscard]] bool covered(const Prefix& p) const noexcept;
    [[nodiscard]] const std::vector<PrefixPool>& pools() const noexcept { return pools_; }

  private:
    PrefixPool* named(const std::string& name);
    std::vector<PrefixPool> pools_;
};

}  // namespace hag::control
