// hag-control configuration: protobuf text format validated against hag.v1.ControlConfig
// (proto/hag/v1/config.proto). Every error names file:line:column.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "binding_cache.hpp"
#include "hag/config/textproto.hpp"
#include "hag/result.hpp"
#include "hag/v1/config.pb.h"

namespace hag::control {

using ConfigError = config::Error;  // "file:line:col: message"
using ConfigErrors = config::Errors;

// Parses and validates; on success, defaults are filled in (see config.proto comments).
Result<v1::ControlConfig, ConfigErrors> parse_control_config(std::string_view text,
                                                             const std::string& file_name);
Result<v1::ControlConfig, ConfigErrors> load_control_config(const std::string& path);

// Strict text forms used by the configuration and the management API.
Result<Prefix, std::string> parse_prefix(std::string_view text);          // IPv6 "addr/len"
Result<CareOfAddress, std::string> parse_address(std::string_view text);  // IPv6 or IPv4
// IPv4 "a.b.c.d/len" (or, with bare_is_host, "a.b.c.d" as a /32), held IPv4-mapped
// (::ffff:a.b.c.d, length 96 + len) as IPv4 home addresses are in the binding cache.
Result<Prefix, std::string> parse_ipv4_prefix(std::string_view text, bool bare_is_host = false);
// Whether a prefix is an IPv4 one held IPv4-mapped (inside ::ffff:0:0/96).
bool is_ipv4_prefix(const Prefix& p) noexcept;
// The default router of an IPv4 pool (Ipv4Pool.default_router, else the pool's first address),
// IPv4-mapped.
Result<CareOfAddress, std::string> ipv4_pool_router(const v1::Ipv4Pool& pool);

// The flow policy checks of the configuration, shared by the file and run-time edits
// (core/policy_edit.hpp), so both refuse the same mistakes with the same words:
// `prof.policy_profile` must name a profile of `policy` (`where` starts the message).
void check_policy_profile(const v1::PolicyConfig& policy, const v1::SubscriberProfile& prof,
                          const config::ParseInfoTree* tree, const config::Reporter& at,
                          std::string_view where);
// The policy part of a configuration (policy, default_profile.policy_profile, subscribers'
// policy_profile): compile_policy and check_policy_profile; every error's message (no lines),
// empty when there was none.
std::vector<std::string> check_policy(const v1::ControlConfig& part);

// The effective profile of a subscriber: its own fields over the default profile's, over the
// built-in defaults. `sub` may be null (a subscriber not listed).
v1::SubscriberProfile effective_profile(const v1::ControlConfig& cfg, const v1::Subscriber* sub);
v1::SubscriberProfile effective_profile(const v1::ControlConfig& cfg, std::string_view nai);

// Listed subscribers by NAI (a hash map: configurations may list millions). Points into `cfg`,
// which must outlive the index and stay unchanged.
class SubscriberIndex {
  public:
    SubscriberIndex() = default;
    explicit SubscriberIndex(const v1::ControlConfig& cfg);
    [[nodiscard]] const v1::Subscriber* find(std::string_view nai) const;

  private:
    std::unordered_map<std::string_view, const v1::Subscriber*> by_nai_;
};

}  // namespace hag::control
