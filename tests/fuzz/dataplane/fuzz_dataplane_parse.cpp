// libFuzzer target: the data plane's fast-path header parsers (dataplane/pipeline/parse.hpp)
// over arbitrary frames — the uplink's GRE-in-IP (and GRE-in-UDP, NAT traversal, and IP-in-IP)
// parse with the inner IPv4/IPv6 header, and
// the downlink's Ethernet + IP classification parse. Besides memory safety (ASan/UBSan on an
// exact-size copy), checks the offsets they return lie inside the frame, and that a verdict
// depends only on the bytes the headers claim: appending bytes (Ethernet padding) changes
// nothing once a frame parses. The workers' steering keys (runtime/steer_parse.hpp) must name
// the session the stage will find: the GRE key (or, keyless, the outer source) of every frame
// the uplink accepts (keyless, also the inner destination a remote anchor's GRE is matched by),
// and the destination of every frame the downlink parses. The outer fragment
// parser (pipeline/fragment_parse.hpp, run before the exception path on access ports) must agree
// with the cheap first look, stay inside the frame, not depend on padding, hash every fragment of
// one packet alike, and see a fragment wherever the uplink's parser says kOuterFragment.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "pipeline/fragment_parse.hpp"
#include "pipeline/parse.hpp"
#include "runtime/steer_parse.hpp"

namespace {

using namespace hag::dp;

void require(bool ok) {
    if (!ok) {
        std::abort();
    }
}

// The 16-bit one's complement sum, folded, not inverted (what rte_raw_cksum returns).
std::uint16_t ones_sum(const std::uint8_t* p, std::size_t n) {
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i + 1 < n; i += 2) {
        sum += static_cast<std::uint32_t>(p[i] << 8 | p[i + 1]);
    }
    if (n % 2 != 0) {
        sum += static_cast<std::uint32_t>(p[n - 1] << 8);
    }
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return static_cast<std::uint16_t>(sum);
}

struct Verdict {
    GreParse gre;
    GreInIp g;
    L3Info inner;
    L2Info l2;
    L3Info l3;
};

Verdict parse_all(const std::vector<std::uint8_t>& f) {
    Verdict v{};
    const auto len = static_cast<std::uint16_t>(f.size());
    v.gre = parse_gre_in_ip(f.data(), len, v.g, ones_sum);
    if (v.gre == GreParse::kOk) {
        require(v.g.l2.l3_offset >= 14 && v.g.l2.l3_offset < v.g.gre_off);
        require((v.g.ipip ? v.g.gre_off == v.g.inner_off : v.g.gre_off + 4 <= v.g.inner_off) &&
                v.g.inner_off <= v.g.ip_end);
        require(!v.g.ipip || (!v.g.has_key && !v.g.has_seq && !v.g.udp &&
                              (v.g.outer.proto == kIpProtoIpInIp4) == (v.g.proto == kEtherIpv4)));
        require(v.g.ip_end <= len);
        require(v.g.proto == kEtherIpv4 || v.g.proto == kEtherIpv6);
        // GRE in UDP: outer IPv4 to the data port, the GRE header right after the UDP one.
        require(!v.g.udp || (v.g.outer.family == Family::kIpv4 && v.g.outer.proto == kIpProtoUdp &&
                             v.g.gre_off == v.g.l2.l3_offset + v.g.outer.header_len + 8 &&
                             get16(f.data() + v.g.gre_off - 6) == kDataUdpPort));
        require(v.g.udp || v.g.ipip || v.g.outer.proto == kIpProtoGre);
        v.inner = parse_gre_inner(f.data(), len, v.g);
        if (v.inner.ok) {
            require(v.inner.header_len >= 20 && v.inner.header_len <= v.inner.total_len);
            require(v.g.inner_off + v.inner.total_len <= v.g.ip_end);
            require(v.inner.family == (v.g.proto == kEtherIpv4 ? Family::kIpv4 : Family::kIpv6));
        }
    }
    // The uplink's TTL pass (runtime/worker.cpp): an untagged Ethernet header, then IP.
    if (len >= 14) {
        const std::uint16_t et = get16(f.data() + 12);
        require(l3_valid(f.data(), len, 14, et) == parse_l3(f.data(), len, 14, et).ok);
    }
    // The downlink: Ethernet, then the IP header the classifier reads.
    v.l2 = parse_l2(f.data(), len);
    if (v.l2.l3_offset != 0) {
        require(v.l2.l3_offset <= len && v.l2.l3_offset >= 14);
        v.l3 = parse_l3(f.data(), len, v.l2.l3_offset, v.l2.ether_type);
        require(l3_valid(f.data(), len, v.l2.l3_offset, v.l2.ether_type) == v.l3.ok);
        if (v.l3.ok) {
            require(v.l2.l3_offset + v.l3.total_len <= len);
            require(v.l3.header_len <= v.l3.total_len);
        }
    }
    return v;
}

bool same_l3(const L3Info& a, const L3Info& b) {
    return a.ok == b.ok && a.family == b.family && a.header_len == b.header_len &&
           a.total_len == b.total_len && a.proto == b.proto && a.src == b.src && a.dst == b.dst;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > 65535 - 64) {
        return 0;  // an mbuf segment holds at most 64 KiB
    }
    const std::vector<std::uint8_t> frame(data, data + size);
    const Verdict a = parse_all(frame);
    std::vector<std::uint8_t> padded = frame;
    padded.resize(size + 64, 0xa5);
    const Verdict b = parse_all(padded);
    if (a.gre == GreParse::kOk) {
        require(b.gre == GreParse::kOk && b.g.inner_off == a.g.inner_off && b.g.udp == a.g.udp &&
                b.g.udp_src == a.g.udp_src && b.g.ipip == a.g.ipip && b.g.ip_end == a.g.ip_end &&
                b.g.key == a.g.key && b.g.seq == a.g.seq && b.g.has_key == a.g.has_key &&
                b.g.has_seq == a.g.has_seq);
        require(same_l3(a.inner, b.inner));
    }
    if (a.l3.ok) {
        require(same_l3(a.l3, b.l3));
    }
    // A keepalive or a UDP error is a property of the headers, not of padding after them.
    if (a.gre == GreParse::kKeepalive || a.gre == GreParse::kUdpChecksum ||
        a.gre == GreParse::kUdpMalformed) {
        require(b.gre == a.gre);
    }
    // The workers steer by the key the stages look the session up by.
    const auto len = static_cast<std::uint16_t>(size);
    const SteerKey up = uplink_steer_key(frame.data(), len);
    if (a.gre == GreParse::kOk) {
        if (a.g.ipip) {
            if (a.inner.ok) {
                require(up.kind == SteerKey::Kind::kInnerSource && up.addr == a.inner.src);
            }
        } else if (a.g.has_key) {
            require(up.kind == SteerKey::Kind::kUplinkKey && up.key == a.g.key);
        } else {
            require(up.kind == SteerKey::Kind::kCareOf && up.addr == a.g.outer.src);
            // Keyless GRE from a remote anchor: the stage's fallback is the inner destination.
            if (a.inner.ok) {
                require(up.inner_dst == a.inner.dst);
            } else {
                require(up.inner_dst.family == Family::kNone);
            }
        }
    }
    if (a.gre == GreParse::kKeepalive) {
        require(up.kind == SteerKey::Kind::kNone);
    }
    // Outer fragments (reassembly on access ports).
    OuterFragment fa, fb;
    const FragParse fpa = parse_outer_fragment(frame.data(), len, fa);
    const FragParse fpb =
        parse_outer_fragment(padded.data(), static_cast<std::uint16_t>(padded.size()), fb);
    if (fpa != FragParse::kNone) {
        require(fpa == fpb);  // (padding may complete a truncated header, not the reverse)
        require(maybe_outer_fragment(frame.data(), len));
        require(fa.l2_len >= 14 && fa.l2_len + fa.l3_len <= len && fa.family == a.l3.family);
        require(fa.l2_len + fa.l3_len + fa.data_len <= len);
        require(reassembled_protocol(fa.proto));
        require(fa.hash == fb.hash && fa.offset == fb.offset && fa.data_len == fb.data_len &&
                fa.more == fb.more && fa.id == fb.id && fa.frame_end == fb.frame_end);
        require(fa.frame_end >= std::uint32_t{fa.l2_len} + fa.offset + fa.data_len);
        if (fpa == FragParse::kFragment) {
            require(fa.data_len > 0 && (!fa.more || fa.data_len % 8 == 0));
            require(fa.family == Family::kIpv6 || fa.offset + fa.data_len + fa.l3_len <= 65535);
        }
    }
    if (a.gre == GreParse::kOuterFragment && reassembled_protocol(a.g.outer.proto)) {
        require(fpa != FragParse::kNone);
    }
    if (!maybe_outer_fragment(frame.data(), len)) {
        require(fpa == FragParse::kNone);
    }
    const SteerKey down = downlink_steer_key(frame.data(), len);
    require((down.kind == SteerKey::Kind::kDestination) == a.l3.ok);
    if (a.l3.ok) {
        require(down.addr == a.l3.dst);
    }
    return 0;
}
