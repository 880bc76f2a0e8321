#!/usr/bin/python3
"""Writes the seed corpus of fuzz-dataplane-parse (corpus/): frames as the access and core
ports see them. Run from this directory; the output is committed."""
import os
import struct


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(proto, payload, src=bytes([192, 0, 2, 2]), dst=bytes([192, 0, 2, 1]), frag=0x4000):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, frag, 64, proto, 0, src, dst)
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload


def ipv6(nh, payload, src=b"\x20\x01\x0d\xb8" + bytes(11) + b"\x02",
         dst=b"\x20\x01\x0d\xb8" + bytes(11) + b"\x01"):
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), nh, 64, src, dst) + payload


def udp(data=b"hello"):
    return struct.pack("!HHHH", 5000, 5001, 8 + len(data), 0) + data


def gre(proto, inner, key=None, seq=None, checksum=False):
    flags = (0x8000 if checksum else 0) | (0x2000 if key is not None else 0) | \
        (0x1000 if seq is not None else 0)
    h = struct.pack("!HH", flags, proto)
    opt = b""
    if checksum:
        opt += b"\0\0\0\0"
    if key is not None:
        opt += struct.pack("!I", key)
    if seq is not None:
        opt += struct.pack("!I", seq)
    g = h + opt + inner
    if checksum:
        g = g[:4] + struct.pack("!H", csum(g)) + g[6:]
    return g


def eth(ethertype, payload, tags=()):
    hdr = bytes.fromhex("020000000001020000000002")
    for t in tags:
        hdr += struct.pack("!HH", t, 100)
    return hdr + struct.pack("!H", ethertype) + payload


inner6 = ipv6(17, udp())
inner4 = ipv4(17, udp(), src=bytes([198, 51, 100, 7]), dst=bytes([203, 0, 113, 9]))
def udp4_data(payload, sport=40123, dport=5437, src=bytes([198, 51, 100, 2]),
              dst=bytes([192, 0, 2, 1]), checksum=True):
    """UDP to the data port (NAT traversal): the payload is a GRE header and the inner packet."""
    u = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    if checksum:
        c = csum(src + dst + struct.pack("!BBH", 0, 17, len(u)) + u) or 0xFFFF
        u = u[:6] + struct.pack("!H", c) + u[8:]
    return ipv4(17, u, src=src, dst=dst)


def frag6(nh, payload, off, more, ident=0x1234):
    """An IPv6 fragment (Fragment header right after the fixed header) of `payload`."""
    return ipv6(44, struct.pack("!BBHI", nh, 0, off | more, ident) + payload)


big_gre = gre(0x86DD, ipv6(17, udp(bytes(range(256)) * 5)), key=0x5C000003, seq=11)
big4 = ipv4(47, big_gre)


seeds = {
    "gre4-key-seq-inner6": eth(0x0800, ipv4(47, gre(0x86DD, inner6, key=0x5C000001, seq=7))),
    "gre6-csum-inner4-vlan": eth(0x86DD, ipv6(47, gre(0x0800, inner4, checksum=True)),
                                 tags=(0x8100,)),
    "gre4-keyless-inner4": eth(0x0800, ipv4(47, gre(0x0800, inner4))),
    "gre4-fragment-qinq": eth(0x0800, ipv4(47, gre(0x0800, inner4), frag=0x2000),
                              tags=(0x88A8, 0x8100)),
    "gre4-padded": eth(0x0800, ipv4(47, gre(0x86DD, inner6, key=1))) + bytes(18),
    "udp4-gre-key-seq-inner4": eth(0x0800, udp4_data(gre(0x0800, inner4, key=0x5C000002,
                                                         seq=3))),
    "udp4-gre-nocsum-inner6": eth(0x0800, udp4_data(gre(0x86DD, inner6, key=9, seq=1),
                                                   checksum=False)),
    "udp4-keepalive": eth(0x0800, udp4_data(b"\xff")),
    "udp4-other-port": eth(0x0800, udp4_data(gre(0x0800, inner4, key=1), dport=5436)),
    "ip6ip6": eth(0x86DD, ipv6(41, inner6)),
    "ip4ip6-vlan": eth(0x86DD, ipv6(4, inner4), tags=(0x8100,)),
    "ip4ip4": eth(0x0800, ipv4(4, inner4)),
    "ip6ip4-truncated": eth(0x0800, ipv4(41, inner6[:30])),
    # Distributed anchoring: GRE from a remote anchor, keyed (its downlink key) and keyless
    # with a checksum and a sequence number (steered by the inner destination).
    "relay-anchor-gre6-key-inner6": eth(0x86DD, ipv6(47, gre(0x86DD, inner6, key=0x4004))),
    "relay-anchor-gre4-keyless-csum-seq-inner4": eth(0x0800, ipv4(47, gre(0x0800, inner4, seq=5,
                                                                           checksum=True))),
    "relay-anchor-gre6-keyless-inner-truncated": eth(0x86DD, ipv6(47, gre(0x86DD, inner6[:20]))),
    "down-udp4": eth(0x0800, inner4),
    "down-udp6": eth(0x86DD, inner6),
    # Outer fragments, as a small-MTU access link cuts tunnel packets (reassembly).
    "frag6-gre-first": eth(0x86DD, frag6(47, big_gre[:512], 0, 1)),
    "frag6-gre-last": eth(0x86DD, frag6(47, big_gre[512:], 512, 0)),
    "frag6-atomic": eth(0x86DD, frag6(47, gre(0x86DD, inner6, key=2), 0, 0)),
    "frag6-misaligned": eth(0x86DD, frag6(47, big_gre[:100], 0, 1)),
    "frag4-gre-middle-vlan": eth(0x0800, ipv4(47, big_gre[512:1024], frag=0x2000 | 64),
                                 tags=(0x8100,)),
    "frag4-udp-first": eth(0x0800, ipv4(17, udp4_data(big_gre)[20:20 + 256], frag=0x2000)),
    "frag4-icmp": eth(0x0800, ipv4(1, bytes(64), frag=0x2000)),
    "frag4-past-65535": eth(0x0800, ipv4(47, bytes(64), frag=0x1FFF)),
}
os.makedirs("corpus", exist_ok=True)
for name, frame in seeds.items():
    with open(os.path.join("corpus", name), "wb") as f:
        f.write(frame)
