// The MAG role of hag-control (RFC 5213 §6, GRE keys RFC 5845): distributed anchoring
// (docs/scale-out.md) makes a node that serves a router which moved to it a MAG toward the
// node anchoring the router's old prefixes. One registration per mobile node: a PBU with the
// MN-ID, the old prefixes as Home Network Prefix options, this node's downlink GRE key, a
// Timestamp and this node's name as MAG Identifier; retransmitted with exponential backoff until
// a PBA answers it, refreshed before its lifetime ends, de-registered with lifetime 0.
//
// Pure logic like the LMA: no sockets, no clock. Bounded: at most max_registrations
// registrations, each retransmitted at most max_retransmissions times; a PBA is input (every
// field checked, anything unexpected ignored and counted). Not thread-safe (the signalling
// thread).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "binding_cache.hpp"
#include "hag/mh/mh.hpp"
#include "peer.hpp"

namespace hag::control {

struct MagOptions {
    std::string mag_id;  // MAG Identifier (RFC 8278) sent with every PBU: the node's name
    std::size_t max_registrations = 100'000;
    std::uint32_t max_retransmissions = 4;  // then the registration is given up
    Seconds initial_backoff = 1;            // doubled per retransmission (RFC 6275 §11.8)
    // Registrations keyed by relay_key(MN-ID, anchor address) (the CMD: one per anchor).
    bool keyed_by_anchor = false;
};

// How a registration names its prefixes and whom it is for (central mobility database mode,
// RFC 8885: a MAAR registers its local prefixes at the CMD, the CMD the anchored prefixes at
// their anchor for a serving MAAR).
struct MagFormat {
    enum class Prefixes : std::uint8_t {
        kHomeNetworkPrefix,  // distributed anchoring: HNP options (RFC 5213)
        kLocalPrefix,        // MAAR -> CMD: Local Prefix options (RFC 8885 §4.4)
        kAnchoredPrefix,     // CMD -> previous MAAR: Anchored Prefix options (§4.3)
    };
    Prefixes prefixes = Prefixes::kHomeNetworkPrefix;
    std::optional<Ipv6Address> serving;  // a Serving MAAR option (§4.6) with this address
    std::string mag_id;                  // MAG Identifier; empty = MagOptions::mag_id
    std::string mn_id;                   // MN-ID sent; empty = the registration's key
};

// What a PBA (or giving up) did to a registration.
struct MagEvent {
    enum class Kind : std::uint8_t {
        kRegistered,    // accepted (first time or a refresh): uplink_key from the anchor
        kRefused,       // the anchor refused it (status >= 128); the registration is dropped
        kGaveUp,        // no answer after every retransmission; dropped
        kDeregistered,  // the de-registration was acknowledged (or given up)
    };
    Kind kind = Kind::kRegistered;
    std::string nai;
    std::uint8_t status = 0;
    std::uint32_t uplink_key = 0;  // kRegistered: the anchor's GRE key option (0 = none)
    std::uint32_t lifetime_s = 0;  // kRegistered: granted lifetime
    std::string key;               // the registration's key (== nai unless keyed otherwise)
    Ipv6Address anchor{};          // whom it was registered at
    mh::Options options;           // kRegistered / kRefused: the PBA's options
};

class MagRole {
  public:
    explicit MagRole(MagOptions o) : opt_(std::move(o)) {}

    // Registers (or re-registers with new contents) `nai` at `anchor` (local = this node's
    // address, remote = the anchor's) for `prefixes`, asking for `lifetime_s`. Returns the PBU
    // to send, or nothing when the table is full (counted mag.table_full).
    std::optional<Outbound> start(const std::string& nai, const Peer& anchor,
                                  const std::vector<Prefix>& prefixes, std::uint32_t downlink_key,
                                  std::uint32_t lifetime_s, const LmaTime& t);
    // The same under `key` (several registrations of one mobile node, one per anchor: key =
    // relay_key(nai, anchor)), with the PBU's format.
    std::optional<Outbound> start(const std::string& key, const Peer& anchor,
                                  const std::vector<Prefix>& prefixes, std::uint32_t downlink_key,
                                  std::uint32_t lifetime_s, const LmaTime& t, const MagFormat& f);
    // Drops a registration without signalling (another node serves the mobile node now).
    bool forget(const std::string& key) { return regs_.erase(key) != 0; }
    static std::string relay_key(const std::string& nai, const Ipv6Address& anchor) {
        return nai + '\n' + std::string(anchor.begin(), anchor.end());
    }
    // De-registers `nai` (PBU with lifetime 0, retransmitted like a registration). Nothing
    // when it has no registration.
    std::optional<Outbound> stop(const std::string& nai, const LmaTime& t);
    // A Binding Acknowledgement from `from`: matched to a registration by its MN-ID option, the
    // anchor's address and the sequence number. Nothing for a PBA that matches none.
    std::optional<MagEvent> on_pba(const mh::BindingAcknowledgement& ba, const Peer& from,
                                   const LmaTime& t);
    // Once a second: retransmissions and refreshes due; events of registrations given up.
    std::vector<Outbound> tick(const LmaTime& t, std::vector<MagEvent>& events);

    [[nodiscard]] bool has(const std::string& nai) const { return regs_.contains(nai); }
    [[nodiscard]] std::size_t size() const noexcept { return regs_.size(); }
    [[nodiscard]] const std::map<std::string, std::uint64_t>& counters() const noexcept {
        return counters_;
    }
    // Sequence number of the PBU last sent for `nai` (tests).
    [[nodiscard]] std::optional<std::uint16_t> sequence(const std::string& nai) const;
    // Whether the registration under `key` is accepted (not pending, not de-registering).
    [[nodiscard]] bool registered(const std::string& key) const;

  private:
    enum class State : std::uint8_t { kPending, kRegistered, kDeregistering };
    struct Registration {
        Peer anchor;
        MagFormat format;
        std::vector<Prefix> prefixes;
        std::uint32_t downlink_key = 0;
        std::uint32_t lifetime_s = 0;  // asked for
        std::uint16_t sequence = 0;
        State state = State::kPending;
        bool refreshing = false;  // a registered binding's refresh is outstanding
        std::uint32_t retransmissions = 0;
        Seconds backoff = 1;
        Seconds next_at = 0;     // retransmission due (pending / de-registering / refreshing)
        Seconds refresh_at = 0;  // registered: refresh due
        Seconds expires_at = 0;  // registered: granted lifetime end
    };
    Outbound pbu(const std::string& nai, const Registration& r, const LmaTime& t) const;
    void sent(Registration& r, const LmaTime& t);
    void count(const std::string& n) { ++counters_[n]; }

    MagOptions opt_;
    std::map<std::string, Registration> regs_;  // by NAI
    std::uint16_t next_sequence_ = 1;
    std::map<std::string, std::uint64_t> counters_;
};

}  // namespace hag::control
