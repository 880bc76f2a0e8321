// Golden Mobility Header byte vectors, written by hand from the RFC layouts (not produced by the
// encoder), shared by the codec tests.
#pragma once

#include <cstdint>
#include <vector>

namespace hag::mh::golden {

// PBU (RFC 5213 §8.1): seq 0x1234, flags A P T, lifetime 150 (600 s), options MN-ID "cpe@x",
// HNP 2001:db8:1::/64, HI 1, ATT 4, Timestamp, GRE key 0xdeadbeef, BID 1 priority 5,
// MAG Multipath-Binding (If-ATT 4, If-Label 42, Binding-Id 1), MAG Identifier "mag".
inline const std::vector<std::uint8_t> kPbu = {
    59,   11,   5,    0,    0,    0,     // MH: payload proto, header len 11 (96 octets), type 5
    0x12, 0x34, 0x82, 0x80, 0x00, 0x96,  // seq, flags A|P|T, lifetime
    8,    6,    1,    'c',  'p',  'e',  '@',  'x',  // offset 12: MN-ID (no alignment)
    22,   18,   0,    64,                           // offset 20 (8n+4): HNP
    0x20, 0x01, 0x0d, 0xb8, 0,    1,    0,    0,    0, 0,
    0,    0,    0,    0,    0,    0,    23,   2,    0, 1,  // offset 40: Handoff Indicator 1
    24,   2,    0,    4,                                   // offset 44: ATT 4
    1,    0,                                               // offset 48: PadN(0) to reach 8n+2
    27,   8,    1,    2,    3,    4,    5,    6,    7, 8,  // offset 50: Timestamp
    1,    0,                                               // offset 60: PadN(0) to reach 4n+2
    33,   6,    0,    0,    0xde, 0xad, 0xbe, 0xef,        // offset 62: GRE key
    35,   4,    0,    1,    0,    5,                       // offset 70: BID 1, status 0, priority 5
    1,    4,    0,    0,    0,    0,                       // offset 76: PadN(4) to reach 8n+2
    63,   4,    4,    42,   1,    0,                       // offset 82: MAG Multipath-Binding
    64,   4,    1,    'm',  'a',  'g',                     // offset 88: MAG Identifier
    1,    0,                                               // offset 94: PadN(0) to 96
};

// PBA (RFC 5213 §8.2): status 0, flags P T, seq 0x1234, lifetime 150, options MN-ID, HNP and the
// uplink GRE key 0x101.
inline const std::vector<std::uint8_t> kPba = {
    59,   6,    6,    0,    0,    0,               // header len 6 (56 octets), type 6
    0,    0x30, 0x12, 0x34, 0x00, 0x96,            // status, flags P|T, seq, lifetime
    8,    6,    1,    'c',  'p',  'e',  '@', 'x',  // offset 12: MN-ID
    22,   18,   0,    64,                          // offset 20: HNP
    0x20, 0x01, 0x0d, 0xb8, 0,    1,    0,   0,   0,
    0,    0,    0,    0,    0,    0,    0,   1,   0,  // offset 40: PadN(0) to 4n+2
    33,   6,    0,    0,    0,    0,    1,   1,       // offset 42: GRE key 0x101
    1,    4,    0,    0,    0,    0,                  // offset 50: PadN(4) to 56
};

// Heartbeat request (RFC 5847 §5.1), seq 7, with a Restart Counter 3 at 4n+2.
inline const std::vector<std::uint8_t> kHeartbeat = {
    59, 2, 13, 0, 0, 0,        // header len 2 (24 octets), type 13
    0,  0, 0,  0, 0, 7,        // reserved, flags, sequence
    1,  0,                     // offset 12: PadN(0) to 4n+2
    28, 6, 0,  0, 0, 0, 0, 3,  // offset 14: Restart Counter
    1,  0,                     // offset 22: PadN(0) to 24
};

}  // namespace hag::mh::golden
