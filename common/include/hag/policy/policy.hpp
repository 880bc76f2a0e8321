// Flow policy: which access an application's packets use.
//
// The operator names accesses by colour (labels matched against the If-Label and the access
// technology a path registered with), names applications by traffic classifiers, and gives each
// application an ordered preference list of labels that ends in DROP or STRIPE. A profile is a
// list of such rules; a subscriber uses its own profile or the default one. For one packet, the
// first rule (highest priority, then declaration order) whose application matches decides: the
// first label in its list that has a live path wins; when none has, the list's terminal step
// applies (DROP: the packet is dropped; STRIPE: it is striped over the live paths). A packet no
// rule matches is striped.
//
// Classifiers are written from the subscriber's side, so one rule covers both directions:
// "local" is the subscriber's address / port (uplink source, downlink destination), "remote"
// the other end's. IPv4 addresses are held as IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) and
// IPv4 prefixes as /96+n prefixes of that form.
//
// This is the model shared by hag-control (configuration, management API, flow bindings),
// hag-magsim (the home router mirrors the policy on its uplink) and, compiled to a classifier,
// the data plane. It is plain data and pure functions: no I/O, no locks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "hag/net/address.hpp"

namespace hag::policy {

inline constexpr std::uint8_t kProtoTcp = 6;
inline constexpr std::uint8_t kProtoUdp = 17;
inline constexpr std::uint8_t kProtoEsp = 50;
inline constexpr std::uint8_t kProtoAh = 51;

// What the classifier sees of one packet, from the subscriber's side.
struct FlowKey {
    net::Ipv6Address local{};      // subscriber's address (IPv4 mapped)
    net::Ipv6Address remote{};     // the other end's (IPv4 mapped)
    std::uint8_t protocol = 0;     // IP protocol / IPv6 upper-layer next header
    std::uint16_t local_port = 0;  // TCP / UDP / SCTP ports; 0 when the protocol has none
    std::uint16_t remote_port = 0;
    std::uint8_t dscp = 0;             // 0..63
    std::optional<std::uint32_t> spi;  // ESP / AH security parameter index
};

struct PortRange {
    std::uint16_t first = 0;
    std::uint16_t last = 0;  // inclusive
    [[nodiscard]] bool contains(std::uint16_t p) const noexcept { return first <= p && p <= last; }
    friend bool operator==(const PortRange&, const PortRange&) = default;
};

// All given fields must match (AND); a list matches when any element does; an empty list or an
// absent field matches anything.
struct Classifier {
    std::optional<std::uint8_t> protocol;
    std::vector<PortRange> local_ports;
    std::vector<PortRange> remote_ports;
    std::vector<net::Ipv6Prefix> local_prefixes;
    std::vector<net::Ipv6Prefix> remote_prefixes;
    std::vector<std::uint8_t> dscp;  // code points 0..63
    std::optional<std::uint32_t> spi;
    [[nodiscard]] bool matches(const FlowKey& k) const noexcept;
};

struct Application {
    std::string name;
    std::vector<Classifier> any_of;  // matches when any classifier does
    [[nodiscard]] bool matches(const FlowKey& k) const noexcept;
};

// An access colour. A path carries the label when every given field equals the path's.
struct Label {
    std::string name;
    std::optional<std::uint8_t> if_label;  // RFC 8278 If-Label
    std::optional<std::uint8_t>
        access_technology;  // RFC 5213 ATT (3 802.3, 4 802.11, 8 E-UTRAN...)
};

struct Step {
    enum class Kind : std::uint8_t { kAccess, kStripe, kDrop };
    Kind kind = Kind::kDrop;
    std::size_t label = 0;  // index into Policy::labels when kind == kAccess
    friend bool operator==(const Step&, const Step&) = default;
};

struct Rule {
    std::size_t application = 0;   // index into Policy::applications
    std::vector<Step> preference;  // access steps, then exactly one terminal (DROP / STRIPE)
    std::int32_t priority = 0;     // higher first; equal priorities keep declaration order
};

struct Profile {
    std::string name;
    std::vector<Rule> rules;  // kept sorted: priority descending, then declaration order
};

struct Policy {
    std::vector<Label> labels;
    std::vector<Application> applications;
    std::vector<Profile> profiles;
    std::optional<std::size_t> default_profile;  // index into profiles

    [[nodiscard]] const Profile* find_profile(std::string_view name) const noexcept;
    [[nodiscard]] std::optional<std::size_t> find_label(std::string_view name) const noexcept;
    [[nodiscard]] std::optional<std::size_t> find_application(std::string_view name) const noexcept;
};

// One path of a session as the policy sees it.
struct Access {
    std::uint16_t bid = 0;
    std::uint8_t if_label = 0;
    std::uint8_t access_technology = 0;
    bool live = true;
};

[[nodiscard]] bool carries(const Label& label, const Access& a) noexcept;

struct Decision {
    enum class Kind : std::uint8_t {
        kPath,    // send on path `bid` only (pinned: never striped)
        kStripe,  // stripe over the live paths
        kDrop,    // drop (counted against `rule`)
    };
    Kind kind = Kind::kStripe;
    std::uint16_t bid = 0;  // kPath
    // Index of the deciding rule in the profile, or -1 when no rule matched (striped).
    std::int32_t rule = -1;
    // Index of the preference step that decided (the terminal when no access was live).
    std::int32_t step = -1;
    friend bool operator==(const Decision&, const Decision&) = default;
};

// What a rule's preference list gives with these accesses (rule and step set; no matching).
[[nodiscard]] Decision resolve(const Policy& policy, const Rule& rule,
                               std::span<const Access> accesses) noexcept;

// Decides for one packet. `accesses` are the session's paths in any order; among several live
// paths that carry the winning label the lowest BID wins (deterministic, so one flow stays on
// one path).
[[nodiscard]] Decision decide(const Policy& policy, const Profile& profile, const FlowKey& key,
                              std::span<const Access> accesses) noexcept;

// Sorts the rules of `p` by priority (descending), stable.
void sort_rules(Profile& p);

// "HTTP -> BLUE, RED, DROP" style text of a rule and of a decision, for logs, hagctl and docs.
[[nodiscard]] std::string describe(const Policy& policy, const Rule& rule);
[[nodiscard]] std::string describe(const Policy& policy, const Profile& profile, const Decision& d);

// "RED: if_label=1", "LTE: access_technology=8".
[[nodiscard]] std::string describe(const Label& label);
// "HTTP: tcp remote_ports=80,443 | udp remote_ports=500,4500".
[[nodiscard]] std::string describe(const Application& app);

// Port-list text: "80", "8000-8080", "80,443,8000-8080". Strict: decimal, no spaces, no leading
// zeros, first <= last. nullopt on any error.
[[nodiscard]] std::optional<std::vector<PortRange>> parse_ports(std::string_view text);
// IPv4 or IPv6 prefix (or a bare address = host prefix) as a mapped IPv6 prefix; host bits must
// be clear.
[[nodiscard]] std::optional<net::Ipv6Prefix> parse_prefix(std::string_view text);

}  // namespace hag::policy
