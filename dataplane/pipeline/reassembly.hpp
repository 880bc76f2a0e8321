// Outer fragment reassembly on the uplink (docs/dataplane.md#outer-fragment-reassembly).
//
// Access links with a small MTU fragment the home router's tunnel packets (GRE, GRE in UDP, IP
// in IP, over IPv4 or IPv6). The uplink stage parses whole packets only, so each worker puts
// fragments back together first, with DPDK's rte_ip_frag: a table per worker (bounded:
// max_packets packets in reassembly, each at most RTE_LIBRTE_IP_FRAG_MAX_FRAG = 8 fragments),
// a timeout, and the death row freed after every call. What comes out is one linear mbuf, as
// the stages expect; it then goes through the exception path and the uplink like any received
// frame (a reassembled UDP 5436 PBU is punted whole).
//
// Hostile input: fragments are checked before the table sees them (fragment_parse.hpp:
// empty, misaligned, past 65535 octets: `malformed`; a packet larger than one mbuf:
// `oversize`); overlapping or duplicated fragments, more than 8, or a set with a hole are
// given up whole by rte_ip_frag (`invalid`); a full table drops the new fragment
// (`table_full`); what does not complete in time is freed (`timed_out`). Every dropped fragment
// is counted once under one reason.
//
// One object per worker, used by that worker only (no locks); its counters are read by
// telemetry.
#pragma once

#include <rte_ip_frag.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <cstdint>
#include <memory>
#include <string>

#include "hag/result.hpp"
#include "pipeline/fragment_parse.hpp"
#include "pipeline/reassembly_settings.hpp"
#include "pipeline/stage.hpp"

namespace hag::dp {

#define HAG_REASSEMBLY_DROPS(X)                                                                  \
    X(kMalformed, "malformed",                                                                   \
      "a fragment with no data, a length not a multiple of 8 before the last, or data past "     \
      "65535 octets")                                                                            \
    X(kOversize, "oversize",                                                                     \
      "a fragment of a packet larger than one mbuf (the largest packet hag reassembles)")        \
    X(kTableFull, "table_full", "no free entry: max_packets packets were already in reassembly") \
    X(kInvalid, "invalid",                                                                       \
      "fragments of a packet given up: overlapping, a duplicate first or last fragment, more "   \
      "than 8 fragments, or a hole")                                                             \
    X(kTimedOut, "timed_out", "fragments of a packet that did not complete within timeout_ms")   \
    X(kNoMbuf, "no_mbuf", "a reassembled packet dropped: no mbuf to make it one segment")        \
    X(kHandoffFull, "handoff_full",                                                              \
      "a fragment dropped: the ring of the worker that reassembles its packet was full")

HAG_DECLARE_DROPS(ReassemblyDrop, HAG_REASSEMBLY_DROPS)

#define HAG_REASSEMBLY_EVENTS(X)                                                                \
    X(kReassembled, "reassembled", "packets put back together from their fragments")            \
    X(kAtomic, "atomic_fragments",                                                              \
      "IPv6 atomic fragments (offset 0, no more fragments), taken as whole packets (RFC 6946)") \
    X(kHanded, "handed", "fragments handed to the worker that reassembles their packet")        \
    X(kReceived, "received", "fragments taken over from other workers")

HAG_DECLARE_DROPS(ReassemblyEvent, HAG_REASSEMBLY_EVENTS)

class Reassembly {
  public:
    // A table for settings.max_packets packets; reassembled packets that do not fit in the
    // first fragment's mbuf are copied into one from `pool`, whose data room bounds the size
    // of a reassembled frame.
    static Result<std::unique_ptr<Reassembly>, std::string> create(const ReassemblySettings& s,
                                                                   rte_mempool* pool,
                                                                   std::uint64_t tsc_hz);
    ~Reassembly();  // frees every fragment still held
    Reassembly(const Reassembly&) = delete;
    Reassembly& operator=(const Reassembly&) = delete;

    // A frame parse_outer_fragment called kFragment, kAtomic or kMalformed (`f` what it
    // found; `now` in TSC cycles). Returns the whole packet, one segment, l2 header first,
    // when `m` completed it (an atomic fragment comes back at once without its Fragment
    // header); otherwise null: `m` is held, or it was dropped and counted.
    rte_mbuf* add(rte_mbuf* m, FragParse verdict, const OuterFragment& f,
                  std::uint64_t now) noexcept;
    // Frees the fragments of packets older than the timeout (cheap when there are none: one
    // look at the oldest). Call once per poll iteration.
    void expire(std::uint64_t now) noexcept;

    // The largest frame (Ethernet header included) a reassembled packet may be.
    [[nodiscard]] std::uint32_t max_frame() const noexcept { return max_frame_; }

    ReassemblyDropCounters drops{};
    ReassemblyEventCounters events{};
    StageCycles cycles;  // packets = fragments that entered

    void count(ReassemblyEvent e, std::uint64_t n = 1) noexcept {
        events[static_cast<std::size_t>(e)] += n;
    }
    void count(ReassemblyDrop d, std::uint64_t n = 1) noexcept {
        drops[static_cast<std::size_t>(d)] += n;
    }

  private:
    struct Token {
        explicit Token() = default;
    };

  public:
    explicit Reassembly(Token) {}

  private:
    rte_mbuf* linear(rte_mbuf* m) noexcept;
    void free_death_row(ReassemblyDrop why) noexcept;

    rte_ip_frag_tbl* tbl_ = nullptr;
    rte_ip_frag_death_row dr_{};
    rte_mempool* pool_ = nullptr;
    std::uint32_t max_frame_ = 0;
};

}  // namespace hag::dp
