// LMA processing (RFC 5213 §5.3) with multiple care-of addresses (RFC 5648, RFC 8278), GRE keys
// (RFC 5845), link metrics, heartbeats (RFC 5847) and binding revocation (RFC 5846).
//
// Pure logic: no sockets and no clock. The daemon hands in received mobility headers with the
// addresses they came on and the time, and sends what comes back. Owns the prefix pools and the
// GRE key allocator; mutates the BindingCache it is given (and releases a session's prefixes
// and key whenever the cache drops the session, whoever removed it). Not thread-safe: the
// daemon calls it from one thread, or under one lock.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "allocators.hpp"
#include "binding_cache.hpp"
#include "config.hpp"
#include "dmnp.hpp"
#include "hag/mh/mh.hpp"
#include "hag/v1/config.pb.h"
#include "mag.hpp"
#include "peer.hpp"

namespace hag::control {

// A BA status as log lines say it: its RFC name, or "status-N" for a number without one.
std::string ba_status_name(std::uint8_t status);

// Link metrics (hag's own format, docs/control.md): Vendor-Specific Mobility Option (RFC 5094),
// vendor 32473 (RFC 5612 documentation enterprise number), sub-type 1, data = downlink kbps (4)
// + uplink kbps (4), network order.
inline constexpr std::uint32_t kLinkMetricsVendorId = 32473;
inline constexpr std::uint8_t kLinkMetricsSubtype = 1;

// RFC 5846 §6.1 revocation trigger values used here.
inline constexpr std::uint8_t kRevocationTriggerUnspecified = 0;
inline constexpr std::uint8_t kRevocationTriggerAdministrative = 1;

// NAI text for logs and keys (MN-ID, MAG Identifier): printable ASCII and UTF-8 kept, control
// characters refused, 1-255 octets.
std::optional<std::string> identifier_text(const mh::Bytes& id);

class Lma {
  public:
    // cfg must come from parse_control_config (validated, defaults filled in).
    // restart_counter goes into Restart Counter options of heartbeats (RFC 5847 §5.2).
    Lma(v1::ControlConfig cfg, BindingCache& cache, std::uint32_t restart_counter = 1);
    Lma(const Lma&) = delete;
    Lma& operator=(const Lma&) = delete;

    // A received mobility header (checksum already verified by the transport). Returns what
    // to send back: a PBA, a heartbeat response, a Binding Error, or nothing.
    std::vector<Outbound> receive(std::span<const std::uint8_t> mh, const Peer& from,
                                  const LmaTime& t);
    // A decoded message (receive() after decoding; tests call it directly).
    std::vector<Outbound> handle(const mh::Message& m, const Peer& from, const LmaTime& t);
    // Once a second or so: lifetime expiry, heartbeat requests and misses, BRI retransmission.
    std::vector<Outbound> tick(const LmaTime& t);
    // The central mobility database's deadlines only (CMD: anchors that did not answer within
    // central_db.timeout_ms; MAAR: router PBAs held that long), without tick()'s other work.
    // The daemon calls it every central_db_tick_ms() so that a timeout is kept to within a
    // quarter of itself, not to tick()'s second.
    std::vector<Outbound> tick_central_db(const LmaTime& t);
    // How often tick_central_db is worth calling: a quarter of the timeout, 50 ms to 1 s; 0
    // without a central database role.
    [[nodiscard]] std::int64_t central_db_tick_ms() const noexcept;

    // A Binding Revocation Indication for one path (or, path == nullptr, for every path of
    // the session, one BRI per path), remembered for retransmission until acknowledged. Does not
    // touch the cache (the caller removes the binding).
    std::vector<Outbound> revoke(const Session& s, const Path* path, std::uint8_t trigger,
                                 const LmaTime& t);

    // New configuration: subscribers, MAGs, limits and profiles take effect for the next
    // PBU. Sessions holding prefixes of a pool that is gone are revoked and removed.
    std::vector<Outbound> reload(v1::ControlConfig cfg, const LmaTime& t);

    // A session recovered from the binding cache store (path expiries on the monotonic clock):
    // claims its prefixes in their pools (prefixes outside every pool, e.g. static ones, need no
    // claim) and its uplink GRE key, inserts it into the cache and resumes heartbeats to its
    // care-of addresses. Its sequence numbers and timestamp come back as stored, so replayed
    // PBUs are still refused. On error nothing is changed.
    Result<void, std::string> restore(Session s, const LmaTime& t);
    [[nodiscard]] std::uint32_t restart_counter() const noexcept { return restart_counter_; }

    // Cluster binding store (docs/scale-out.md): asked for a subscriber's binding when a PBU
    // names a subscriber this node does not serve. Returns the binding (path expiries on the
    // monotonic clock) another node wrote, none, or an error (the store cannot be read: the
    // PBU is dropped without a reply, the MAG retransmits).
    // An error a loader or peer check returns when the answer is being read off the
    // signalling thread (cluster_lookups.hpp): the PBU is dropped here without a reply or a
    // log line, counted `cluster.lookups_deferred`; the daemon holds it and hands it in again
    // once the answer is in.
    static constexpr std::string_view kDeferred = "lookup deferred";
    using BindingLoader =
        std::function<Result<std::optional<Session>, std::string>(const std::string& nai)>;
    void set_binding_loader(BindingLoader l) { loader_ = std::move(l); }

    // Distributed anchoring (docs/scale-out.md, store.distributed_anchoring).
    struct AnchorPeer {
        std::string node;
        Ipv6Address address{};
    };
    // Asked right after the loader returned a binding: its anchor when that is another node and
    // alive (its liveness key names its address), else none (the binding is taken over); an
    // error (the store cannot be read) drops the PBU.
    using AnchorResolver =
        std::function<Result<std::optional<AnchorPeer>, std::string>(const std::string& nai)>;
    void set_anchor_resolver(AnchorResolver r) { anchor_resolver_ = std::move(r); }
    // Whether a PBU with MAG Identifier `mag_id` from `from` comes from another live hag node of
    // the cluster acting as a MAG (its liveness key holds that address); an error drops the PBU.
    using PeerCheck = std::function<Result<bool, std::string>(const std::string& mag_id,
                                                              const Ipv6Address& from)>;
    void set_peer_check(PeerCheck c) { peer_check_ = std::move(c); }
    [[nodiscard]] const MagRole& mag() const noexcept { return mag_; }
    // Central mobility database mode (central_db, RFC 8885, docs/scale-out.md): the CMD's
    // registrations at the previous anchors, and the router PBAs a MAAR holds until the CMD
    // answers.
    [[nodiscard]] const MagRole& cmd_relays() const noexcept { return relay_; }
    [[nodiscard]] std::size_t held_replies() const noexcept { return held_.size(); }
    [[nodiscard]] std::size_t cmd_transactions() const noexcept { return txns_.size(); }

    // Cluster store: prefixes and GRE keys of this node's pools and key range that a binding
    // served by ANOTHER node holds (it took the binding over from here, or this node restarted
    // while the other held them) stay claimed here — held elsewhere — so this node never hands
    // them out twice. A hold lasts until the binding's expiry as last read (monotonic; at
    // least 10 s after `now`); then foreign_due() names it once and the daemon reads the binding
    // again: recheck_foreign() renews the hold with what the binding holds now, or ends it when the
    // binding is gone. Taking the binding over (or anchoring it again) ends its hold first.
    void hold_foreign(const Session& s, Seconds now);
    [[nodiscard]] std::vector<std::string> foreign_due(Seconds now);
    // `now_there`: the binding as read (monotonic expiries; none when gone or expired), or
    // an error (kept, read again in 10 s).
    void recheck_foreign(const std::string& nai,
                         const Result<std::optional<Session>, std::string>& now_there, Seconds now);
    [[nodiscard]] std::size_t foreign_holds() const noexcept { return foreign_.size(); }
    // Whether a binding of another node holds anything of this configuration's pools or key
    // range (what hold_foreign() would claim): the start-up scan keeps only those.
    static std::function<bool(const Session&)> foreign_filter(const v1::ControlConfig& cfg);

    [[nodiscard]] std::vector<std::pair<std::string, std::uint64_t>> counters() const;
    [[nodiscard]] const v1::ControlConfig& config() const noexcept { return cfg_; }
    [[nodiscard]] std::size_t pending_revocations() const noexcept { return pending_.size(); }
    // Sources with a rate-limit bucket now (at most kMaxBuckets + 1).
    [[nodiscard]] std::size_t rate_limit_sources() const noexcept { return buckets_.size(); }

  private:
    struct ForeignHold {
        std::vector<Prefix> prefixes;   // claimed in pools_
        std::vector<Prefix> delegated;  // claimed in dmnp_
        std::vector<std::uint32_t> keys;
        Seconds expires = 0;
        bool checking = false;  // named by foreign_due(), answer awaited
    };
    void drop_foreign(const std::string& nai);  // releases the hold's claims
    std::map<std::string, ForeignHold, std::less<>> foreign_;

    struct Bucket {
        double tokens = 0;
        std::int64_t last_ms = 0;
        // A source with an accepted PBU (or listed in mags.source_addresses): not under the
        // global limit and never swept, so a flood from other sources cannot starve it.
        bool proven = false;
    };
    struct PeerState {
        Peer peer;
        std::uint32_t missed = 0;
        std::optional<std::uint32_t> outstanding;  // heartbeat sequence awaiting a response
        bool down = false;
        Seconds next_heartbeat = 0;
    };
    struct PendingRevocation {
        Outbound bri;
        std::uint32_t retries_left = 0;
        Seconds next_at = 0;
        Seconds backoff = 1;
        std::string nai;
        std::uint16_t bid = 0;
    };
    // What a (P)BU decided: the (P)BA's contents beyond its status.
    struct PbuOutcome {
        std::uint16_t sequence = 0;  // the PBA's sequence number
        std::uint16_t lifetime_units = 0;
        std::vector<Prefix> prefixes;
        std::vector<Prefix> delegated;  // RFC 7148
        std::optional<std::uint32_t> uplink_key;
        std::string nai;
        std::uint16_t bid = 0;
        bool tlv_unsupported = false;
        bool drop = false;      // no reply at all (the cluster store could not be read)
        bool deferred = false;  // dropped for now: held until a cluster store read is in
        // IPv4 home address (RFC 5844): asked for by the PBU, what was assigned (IPv4-mapped),
        // its default router, or the Reply option's status when it was refused.
        const mh::Ipv4HomeAddressRequest* ipv4_request = nullptr;
        std::optional<Prefix> ipv4_home;
        std::optional<CareOfAddress> ipv4_router;
        std::uint8_t ipv4_reply_status = 0;
        bool nat = false;  // NAT detected: the PBA carries a NAT Detection option
        std::vector<mh::Option> flow_replies;  // RFC 6089 Flow Identification replies
    };

    enum class Admit { kOk, kMagLimit, kGlobalLimit };
    static constexpr std::size_t kMaxBuckets = 65536;  // per-source buckets kept at most
    static constexpr const char* kOverflowBucket = "overflow";
    static bool take_token(Bucket& b, double rate, double burst, std::int64_t now_ms);
    static std::unordered_set<std::string> listed_sources(const v1::ControlConfig& cfg);
    Admit admit(const Peer& from, const LmaTime& t);
    // A refused PBU's log line: at most 10 a second; the next line logged says how many were
    // left out (a flood must not flood the log too).
    void log_refusal(const LmaTime& t, std::string line);
    std::vector<Outbound> handle_pbu(const mh::BindingUpdate& bu, const Peer& from,
                                     const LmaTime& t);
    std::uint8_t process_pbu(const mh::BindingUpdate& bu, const Peer& from, const LmaTime& t,
                             PbuOutcome& out);
    // A PBU from another hag node as a MAG (distributed anchoring): the prefixes it names stay
    // anchored here, the subscriber's paths become one path to that node.
    // With `anchored` (central mobility database mode: the CMD relays a serving MAAR's
    // registration): those prefixes, and the path goes to `coa`.
    std::uint8_t process_peer_pbu(const mh::BindingUpdate& bu, const Peer& from, const LmaTime& t,
                                  const std::string& nai, const std::string& mag_id,
                                  PbuOutcome& out, const std::vector<Prefix>* anchored = nullptr,
                                  const Ipv6Address* coa = nullptr);
    // A router moved here from a live anchor: a session with the old prefixes (registered at
    // the anchor through the MAG role) and a new one of this node. False: take it over instead.
    bool adopt_moved(const Session& old, const AnchorPeer& anchor, const Peer& from,
                     const v1::SubscriberProfile& prof, std::uint32_t lifetime_s, const LmaTime& t);
    void handle_pba(const mh::BindingAcknowledgement& ba, const Peer& from, const LmaTime& t);
    // Central mobility database mode (lma_cmd.cpp).
    enum class CdRole : std::uint8_t { kOff, kCmd, kMaar };
    struct CmdTxn {  // CMD: a serving MAAR's registration waiting for previous anchors
        Peer serving;
        std::uint16_t sequence = 0;
        std::uint16_t lifetime_units = 0;
        std::vector<Prefix> local;
        std::vector<Ipv6Address> waiting;  // anchors not answered yet
        std::int64_t deadline_ms = 0;
        std::uint64_t timestamp = 0;  // of the PBU (echoed)
    };
    struct HeldReply {  // MAAR: a router's PBA waiting for the CMD's answer
        Outbound pba;
        std::uint16_t sequence = 0;
        std::int64_t deadline_ms = 0;
    };
    std::vector<Outbound> cmd_handle_pbu(const mh::BindingUpdate& bu, const Peer& from,
                                         const LmaTime& t);
    Outbound cmd_reply(const std::string& nai, const Peer& to, std::uint8_t status,
                       std::uint16_t sequence, std::uint16_t lifetime_units,
                       const std::vector<Prefix>& local, std::uint64_t timestamp);
    void cmd_relay_event(const MagEvent& ev, const LmaTime& t);
    void cmd_drop_anchor(const std::string& nai, const Ipv6Address& anchor, const char* counter);
    void cmd_finish(const std::string& nai, const Ipv6Address& anchor);
    [[nodiscard]] const std::string* cmd_maar_name(const Ipv6Address& a) const;
    // MAAR: a router's accepted registration: held (and registered at the CMD) or sent.
    std::vector<Outbound> maar_after_pbu(const std::string& nai, std::uint16_t sequence,
                                         std::vector<Outbound> replies, std::uint32_t lifetime_s,
                                         const LmaTime& t);
    std::vector<Prefix> maar_local_prefixes(const Session& s) const;
    void maar_cmd_event(const MagEvent& ev, const LmaTime& t);
    void maar_release_held(const std::string& nai, const char* counter);
    std::uint8_t maar_relay_pbu(const mh::BindingUpdate& bu, const Peer& from, const LmaTime& t,
                                const std::string& nai, const std::string& mag_id, PbuOutcome& out);
    void cmd_tick(const LmaTime& t);
    void apply_mag_event(const MagEvent& ev);
    std::uint8_t deregister(const mh::BindingUpdate& bu, const std::string& nai,
                            const std::string& mag_id, std::uint16_t bid, bool bulk,
                            PbuOutcome& out);
    // MIPv6 home agent (lma_home.cpp): a BU that came with a Home Address option.
    std::vector<Outbound> handle_home_bu(const mh::BindingUpdate& bu, const Peer& from,
                                         const LmaTime& t);
    std::uint8_t process_home_bu(const mh::BindingUpdate& bu, const Peer& from, const LmaTime& t,
                                 PbuOutcome& out);
    std::vector<Outbound> handle_heartbeat(const mh::Heartbeat& hb, const Peer& from,
                                           const LmaTime& t);
    void handle_revocation_ack(const mh::BindingRevocation& br, const Peer& from);
    void set_peer_live(const Ipv6Address& coa, bool live);
    void touch_peer(const CareOfAddress& coa, const Peer& from, const LmaTime& t);
    PrefixPool* pool_named(const std::string& name);
    // The IPv4 default router (RFC 5844 §3.3) for an IPv4 home address: that of the IPv4 pool
    // it lies in, else none.
    [[nodiscard]] std::optional<CareOfAddress> ipv4_router_for(const Prefix& home) const;
    void release(const Session& s);
    void count(const std::string& name, std::uint64_t n = 1) { counters_[name] += n; }

    v1::ControlConfig cfg_;
    SubscriberIndex subscribers_;  // into cfg_
    BindingCache& cache_;
    std::uint32_t restart_counter_;
    std::vector<PrefixPool> pools_;
    GreKeyAllocator keys_;
    DmnpPools dmnp_;  // delegated mobile network prefixes (RFC 7148)
    std::unordered_map<std::string, Bucket> buckets_;  // per MAG source address
    std::unordered_set<std::string> listed_sources_;   // every mags.source_addresses entry
    Bucket global_bucket_;  // every source together; full at the first message
    bool global_bucket_ready_ = false;
    std::int64_t last_bucket_sweep_ms_ = -1'000'000;
    std::int64_t last_refusal_log_ms_ = -1'000'000;
    std::uint32_t refusal_lines_ = 0;  // logged in the current second
    std::uint64_t refusals_not_logged_ = 0;
    std::map<Ipv6Address, PeerState> peers_;  // per path care-of address
    std::deque<std::pair<Seconds, Ipv6Address>> heartbeat_queue_;
    std::map<std::uint16_t, PendingRevocation> pending_;  // by BRI sequence number
    std::uint16_t bri_sequence_ = 0;
    std::uint32_t heartbeat_sequence_ = 0;
    std::map<std::string, std::uint64_t> counters_;
    BindingLoader loader_;
    AnchorResolver anchor_resolver_;
    PeerCheck peer_check_;
    MagRole mag_;
    CdRole cd_role_ = CdRole::kOff;
    std::vector<std::pair<std::string, Ipv6Address>> cmd_maars_;  // CMD: name, address
    Ipv6Address cmd_address_{};                                   // MAAR
    Ipv6Address node_address_{};                                  // MAAR
    std::int64_t cd_timeout_ms_ = 3000;
    MagRole relay_;                                  // CMD: registrations at the anchors
    std::map<std::string, CmdTxn> txns_;             // CMD: by NAI
    std::map<std::string, HeldReply> held_;          // MAAR: by NAI
    std::map<std::string, std::uint32_t> cmd_keys_;  // MAAR: relay downlink key per NAI
    std::vector<Outbound> mag_out_;  // MAG role PBUs to send with the next reply or tick
    Seconds last_now_ = 0;           // of the last PBU or tick (for cache observers)
    std::uint64_t last_timestamp_ = 0;
    std::int64_t last_limit_log_ms_ = -1'000'000;
    std::int64_t last_decode_log_ms_ = -1'000'000;
};

}  // namespace hag::control
