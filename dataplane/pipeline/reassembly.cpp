// rte_ip_frag_table_del_expired_entries is experimental in DPDK 22.11; this file alone uses it.
#define ALLOW_EXPERIMENTAL_API 1

#include "pipeline/reassembly.hpp"

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ip.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "pipeline/packet.hpp"

namespace hag::dp {

namespace {

constexpr std::uint32_t kBucketEntries = 8;  // associativity; two buckets per key

std::uint32_t pow2_at_least(std::uint32_t v) {
    std::uint32_t p = 1;
    while (p < v) {
        p <<= 1;
    }
    return p;
}

}  // namespace

Result<std::unique_ptr<Reassembly>, std::string> Reassembly::create(const ReassemblySettings& s,
                                                                    rte_mempool* pool,
                                                                    std::uint64_t tsc_hz) {
    if (s.max_packets == 0 || s.max_packets > 65536 || s.timeout_ms == 0 || pool == nullptr) {
        return unexpected(fmt::format("reassembly: max_packets {} / timeout_ms {} out of range",
                                      s.max_packets, s.timeout_ms));
    }
    auto r = std::make_unique<Reassembly>(Token{});
    // rte_ip_frag hashes each key to two buckets of kBucketEntries: buckets for twice the
    // packets keep collisions rare while max_packets bounds what is held.
    const std::uint32_t buckets =
        std::max<std::uint32_t>(1, pow2_at_least(s.max_packets) / kBucketEntries);
    const std::uint64_t cycles = tsc_hz * s.timeout_ms / 1000;
    r->tbl_ =
        rte_ip_frag_table_create(buckets, kBucketEntries, s.max_packets, cycles, SOCKET_ID_ANY);
    if (r->tbl_ == nullptr) {
        return unexpected(fmt::format("reassembly: cannot create a table for {} packets: {}",
                                      s.max_packets, rte_strerror(rte_errno)));
    }
    r->pool_ = pool;
    r->max_frame_ = rte_pktmbuf_data_room_size(pool) - RTE_PKTMBUF_HEADROOM;
    return r;
}

Reassembly::~Reassembly() {
    rte_ip_frag_free_death_row(&dr_, 0);
    if (tbl_ != nullptr) {
        rte_ip_frag_table_destroy(tbl_);  // frees the fragments it holds
    }
}

void Reassembly::free_death_row(ReassemblyDrop why) noexcept {
    if (dr_.cnt != 0) {
        count(why, dr_.cnt);
        rte_ip_frag_free_death_row(&dr_, 0);
    }
}

// A reassembled chain as one segment: into the first segment when it has the room
// (rte_pktmbuf_linearize), else copied into a fresh mbuf. Null (chain freed) when neither works.
rte_mbuf* Reassembly::linear(rte_mbuf* m) noexcept {
    if (m->nb_segs == 1 || rte_pktmbuf_linearize(m) == 0) {
        return m;
    }
    rte_mbuf* c = rte_pktmbuf_alloc(pool_);
    char* d =
        c != nullptr ? rte_pktmbuf_append(c, static_cast<std::uint16_t>(m->pkt_len)) : nullptr;
    const void* got = d != nullptr ? rte_pktmbuf_read(m, 0, m->pkt_len, d) : nullptr;
    if (got == nullptr) {
        if (c != nullptr) {
            rte_pktmbuf_free(c);
        }
        rte_pktmbuf_free(m);
        count(ReassemblyDrop::kNoMbuf);
        return nullptr;
    }
    if (got != d) {
        std::memcpy(d, got, m->pkt_len);  // contiguous after all: read returned a pointer into m
    }
    c->port = m->port;
    set_l2_l3_len(c, m->l2_len, m->l3_len);
    rte_pktmbuf_free(m);
    return c;
}

rte_mbuf* Reassembly::add(rte_mbuf* m, FragParse verdict, const OuterFragment& f,
                          std::uint64_t now) noexcept {
    ++cycles.packets;
    if (verdict == FragParse::kMalformed) {
        count(ReassemblyDrop::kMalformed);
        rte_pktmbuf_free(m);
        return nullptr;
    }
    if (verdict == FragParse::kAtomic) {
        // RFC 6946: a whole packet with a Fragment header; drop the header (8 octets after the
        // fixed IPv6 header) by moving Ethernet and IPv6 8 octets on.
        auto* p = rte_pktmbuf_mtod(m, std::uint8_t*);
        std::uint8_t* ip = p + f.l2_len;
        ip[6] = f.proto;
        put16(ip + 4, static_cast<std::uint16_t>(get16(ip + 4) - 8));
        std::memmove(p + 8, p, f.l2_len + 40u);
        rte_pktmbuf_adj(m, 8);
        count(ReassemblyEvent::kAtomic);
        return m;
    }
    if (f.frame_end > max_frame_) {
        count(ReassemblyDrop::kOversize);
        rte_pktmbuf_free(m);
        return nullptr;
    }
    // What timed out goes first (and is counted so), so that rte_ip_frag never frees a stale
    // entry inside the call below.
    expire(now);
    set_l2_l3_len(m, f.l2_len, f.l3_len);
    auto* ip = rte_pktmbuf_mtod_offset(m, std::uint8_t*, f.l2_len);
    const std::uint32_t before = dr_.cnt;
    rte_mbuf* whole = nullptr;
    if (f.family == Family::kIpv4) {
        whole = rte_ipv4_frag_reassemble_packet(tbl_, &dr_, m, now,
                                                reinterpret_cast<rte_ipv4_hdr*>(ip));
    } else {
        whole =
            rte_ipv6_frag_reassemble_packet(tbl_, &dr_, m, now, reinterpret_cast<rte_ipv6_hdr*>(ip),
                                            reinterpret_cast<rte_ipv6_fragment_ext*>(ip + 40));
    }
    // No stale entry was freed here (expire above): one fragment on the
    // death row is `m` refused for want of an entry; more is a set rte_ip_frag gave up.
    const std::uint32_t dropped = dr_.cnt - before;
    if (dropped != 0) {
        free_death_row(dropped == 1 && dr_.row[before] == m ? ReassemblyDrop::kTableFull
                                                            : ReassemblyDrop::kInvalid);
    }
    if (whole == nullptr) {
        return nullptr;
    }
    whole = linear(whole);
    if (whole == nullptr) {
        return nullptr;
    }
    if (f.family == Family::kIpv4) {
        // rte_ip_frag leaves the header checksum 0 (offload style); the kernel (a punted
        // packet) and the core want a correct one.
        auto* h = rte_pktmbuf_mtod_offset(whole, std::uint8_t*, f.l2_len);
        const auto ihl = static_cast<std::uint16_t>((h[0] & 0x0f) * 4);
        put16(h + 10, 0);
        const auto c = static_cast<std::uint16_t>(~rte_raw_cksum(h, ihl));
        std::memcpy(h + 10, &c, sizeof c);
    }
    count(ReassemblyEvent::kReassembled);
    return whole;
}

void Reassembly::expire(std::uint64_t now) noexcept {
    // del_expired stops when the death row could overflow: free it and go on (bounded: each
    // round frees at least one packet's fragments or ends).
    for (int round = 0; round < 64; ++round) {
        rte_ip_frag_table_del_expired_entries(tbl_, &dr_, now);
        if (dr_.cnt == 0) {
            return;
        }
        free_death_row(ReassemblyDrop::kTimedOut);
    }
}

}  // namespace hag::dp
