// The run-to-completion worker: polls its RX queue of every port in bursts and runs the
// downlink and uplink stages, and sends what they made besides (ICMP errors toward the core,
// outer fragments) on its own TX queue of the port each packet leaves by; frames leaving a port
// with a VLAN get its tag here. The main lcore only does control-side work.
//
// Several workers (docs/dataplane.md#workers-and-ports): every session has exactly one owning
// worker, owner_of(session id) = id mod workers, which alone runs its downlink (scheduler state,
// GRE sequence numbers) and uplink (reorder buffer). A worker that receives a packet of another
// worker's session — RSS or the kernel's fan-out put it on its queue — hands it over through
// the owner's hand-over ring (Handoff) before any stage touches it; the owner takes it from
// there as if it had received it. With one worker nothing is steered.
#pragma once

#include <rte_ethdev.h>
#include <rte_ring.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "exception/punt.hpp"
#include "hag/result.hpp"
#include "multipath/reorder.hpp"
#include "pipeline/downlink_encap.hpp"
#include "pipeline/uplink_decap.hpp"
#include "runtime/limits.hpp"
#include "tables/rcu.hpp"
#include "telemetry/counter.hpp"

namespace hag::dp {

class Reassembly;  // pipeline/reassembly.hpp

// hag's own per-port counts of one worker (one writer; read by telemetry while running).
struct PortCounters {
    Counter rx;
    Counter tx;
    Counter tx_full;         // dropped because the TX ring was full
    Counter tx_vlan_errors;  // dropped: no room to add the port's VLAN tag
};

// Which worker owns a session: the only one that runs its stages.
inline std::uint16_t owner_of(std::uint32_t session, std::uint16_t workers) noexcept {
    return workers <= 1 ? 0 : static_cast<std::uint16_t>(session % workers);
}

// The hand-over rings of all workers: per worker one ring per direction, many producers (the
// other workers), one consumer (the owner). Frees what is still in them on destruction.
class Handoff {
  public:
    static Result<std::unique_ptr<Handoff>, std::string> create(std::uint16_t workers,
                                                                std::uint32_t ring_size,
                                                                const std::string& name);
    ~Handoff();
    Handoff(const Handoff&) = delete;
    Handoff& operator=(const Handoff&) = delete;
    Handoff() = default;

    [[nodiscard]] std::uint16_t workers() const noexcept { return n_; }
    [[nodiscard]] rte_ring* downlink(std::uint16_t w) const noexcept { return down_[w]; }
    [[nodiscard]] rte_ring* uplink(std::uint16_t w) const noexcept { return up_[w]; }
    // Outer fragments for the worker that reassembles their packet (fragment_parse.hpp's
    // hash of source, destination and identification, mod workers).
    [[nodiscard]] rte_ring* fragments(std::uint16_t w) const noexcept { return frag_[w]; }

  private:
    std::uint16_t n_ = 0;
    std::array<rte_ring*, kMaxWorkers> down_{};
    std::array<rte_ring*, kMaxWorkers> up_{};
    std::array<rte_ring*, kMaxWorkers> frag_{};
};

// Steering counters of one worker (one writer).
struct SteerCounters {
    Counter handed_downlink;  // packets of other workers' sessions given to their owner
    Counter handed_uplink;
    Counter received_downlink;  // packets other workers handed to this one
    Counter received_uplink;
    Counter handoff_full;  // dropped: the owner's hand-over ring was full
};

// An uplink route: inner destinations inside `prefix` leave by core egress `egress`.
struct CoreRoute {
    IpPrefix prefix;
    std::uint8_t egress = 0;
};

// A core port as an uplink route's egress: its MAC, and the next hop's (static, or resolved by
// family).
struct CoreEgress {
    std::uint16_t port = 0;
    MacAddr src_mac{};
    MacAddr static_mac{};  // zero = resolved
    NextHopTable::Index next_hop_v4 = NextHopTable::kNone;
    NextHopTable::Index next_hop_v6 = NextHopTable::kNone;
};

// The uplink routes toward core ports other than the first (core_routes; read-only while the
// workers run). Without routes everything leaves by the uplink stage's core port.
struct CoreRoutes {
    std::array<CoreRoute, kMaxCoreRoutes> routes{};
    std::uint16_t n_routes = 0;
    std::array<CoreEgress, kMaxPorts> egress{};
    std::uint16_t n_egress = 0;
    const NextHopTable* next_hops = nullptr;
};

inline constexpr std::uint16_t kNoQueue = 0xffff;

// A port besides the first core and the first access port.
struct ExtraPort {
    std::uint16_t id = 0;
    std::uint16_t vlan = 0;
    std::uint16_t rxq = kNoQueue;
    bool access = false;
    PortCounters counters;
    PuntCtx exc;
};

// One port as the worker loop sees it (built at start from the fields below).
struct PortView {
    std::uint16_t id = 0;
    std::uint16_t vlan = 0;
    std::uint16_t rxq = kNoQueue;
    bool access = false;
    PortCounters* counters = nullptr;
    PuntCtx* exc = nullptr;
};

// Cache-line aligned so that no two workers ever write the same line.
struct alignas(64) Worker {
    std::uint32_t rcu_thread = 0;
    // The first core and the first access port.
    std::uint16_t core_port = 0;
    std::uint16_t access_port = 0;
    // 802.1Q VLAN added to every frame sent on the port (0 = none; ports.vlan_id).
    std::uint16_t core_vlan = 0;
    std::uint16_t access_vlan = 0;
    // The RX queue of each port this worker polls (kNoQueue: none), and its TX queue on every
    // port.
    std::uint16_t core_rxq = 0;
    std::uint16_t access_rxq = 0;
    std::uint16_t txq = 0;
    // This worker's index (0 .. workers-1) and the hand-over rings; null = one worker, no
    // steering.
    std::uint16_t index = 0;
    const Handoff* handoff = nullptr;
    Rcu* rcu = nullptr;
    DownlinkCtx downlink;
    UplinkCtx uplink;
    // Uplink reorder, after uplink_decap; null = decapsulated packets go straight to the core.
    // Its sink is worker_send_core with this worker as the argument.
    Reorder* reorder = nullptr;
    // Outer fragment reassembly on access ports (pipeline/reassembly.hpp); null = off: fragments
    // take the usual path (punted when to an own address, else dropped by the uplink stage).
    // With several workers every fragment goes to the worker its packet's hash names (through
    // Handoff::fragments), which reassembles it and steers the whole packet like a received one.
    Reassembly* reassembly = nullptr;
    // Uplink routes to further core ports (null or empty: the first core port only).
    const CoreRoutes* routes = nullptr;
    PortCounters core, access;
    // Exception path of each port (disabled when its rings are null).
    PuntCtx core_exc, access_exc;
    // Ports beyond the first of each role.
    std::array<ExtraPort, kMaxPorts - 2> extra{};
    std::uint16_t n_extra = 0;
    SteerCounters steer;
    Counter route_no_next_hop;  // uplink packets dropped: their route's next hop is unresolved
    // Uplink TTL / hop limit: the inner packet is routed out of the tunnel, so it is decremented;
    // one that would reach 0 is dropped and answered with ICMP Time Exceeded toward the
    // subscriber (through the downlink stage, rate-limited by downlink.icmp_per_second).
    Counter uplink_ttl_expired;
    Counter uplink_time_exceeded_sent;
    std::uint64_t uplink_icmp_tat = 0;  // GCRA bucket of those ICMP errors (TSC)
    const std::atomic<bool>* stop = nullptr;
    // Sleep this long after kIdlePolls empty polls in a row; 0 = never sleep (poll mode).
    std::uint32_t idle_sleep_us = 0;

    // Filled by worker_main (prepare_worker) from the fields above.
    std::array<PortView, kMaxPorts> views{};
    std::uint16_t n_views = 0;
    std::array<std::uint8_t, RTE_MAX_ETHPORTS> view_of{};  // port id -> views index + 1

    // hag's counters of port `id` in this worker (null: not one of its ports).
    [[nodiscard]] const PortCounters* port_counters(std::uint16_t id) const noexcept;
};

inline constexpr std::uint32_t kIdlePolls = 256;

// Adds an 802.1Q tag with `vlan` to each frame that has no tag (802.1Q or 802.1ad) yet, in
// place; a frame without room for it is freed and counted (tx_vlan_errors). Compacts the rest
// to the front of pkts and returns how many.
std::uint16_t add_port_vlan(std::uint16_t vlan, rte_mbuf** pkts, std::uint16_t n, PortCounters& c);

// The session a received frame belongs to, as the stages will find it: downlink by inner
// destination, uplink by GRE key (by outer source without a key). False: none (malformed, not
// GRE, unknown), the receiving worker keeps it (its stage drops and counts it).
bool downlink_session(const SessionTable& t, const rte_mbuf* m, std::uint32_t& id) noexcept;
bool uplink_session(const SessionTable& t, const rte_mbuf* m, std::uint32_t& id) noexcept;

// Uplink TTL handling of a decapsulated packet (core Ethernet header at offset 0): decrements
// the inner TTL / hop limit (IPv4 checksum updated, RFC 1624) and returns true; when it would
// reach 0 returns false after turning `m` into an ICMP Time Exceeded toward the inner source
// (Ethernet + IP + ICMP, for the downlink stage; *icmp = true) or leaving it to be freed
// (*icmp = false: not answered, rate limit, no gateway address of the family). Frames that do
// not parse are left alone (true). `now` is the TSC for the rate limit: 0 = not read yet, then
// read here (once per burst when the caller keeps it) and only for a packet that expires.
bool uplink_ttl(Worker& w, rte_mbuf* m, std::uint64_t& now, bool* icmp) noexcept;

// Builds w.views from the port fields (worker_main calls it first).
void prepare_worker(Worker& w);

// Reorder::Sink of a worker: sends to the core port each packet leaves by (arg = Worker*).
void worker_send_core(void* arg, rte_mbuf** pkts, std::uint16_t n);

// Takes the outer fragments out of a burst received on an access port (reassembly on):
// reassembles this worker's, hands the others' to the worker that reassembles their packet;
// a packet a fragment completed takes that fragment's place. Returns how many stay in pkts.
std::uint16_t take_fragments(Worker& w, rte_mbuf** pkts, std::uint16_t n, std::uint64_t now);

// Runs until *w.stop; returns 0. Usable as an lcore function (arg = Worker*).
int worker_main(void* arg);

}  // namespace hag::dp
