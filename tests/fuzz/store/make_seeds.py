#!/usr/bin/env python3
"""Writes the seed corpus of fuzz-store: small log and snapshot files in hag's store format
(control/core/store_format.hpp) and a cluster store binding value (cluster_record.hpp). Run from this directory: ./make_seeds.py"""
import os
import struct


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def header(kind: int, gen: int, restart: int) -> bytes:
    magic = b"HAGWAL\x00\x01" if kind == 1 else b"HAGSNP\x00\x01"
    h = magic + struct.pack("<HHIQI", 1, kind, 0, gen, restart)
    return h + struct.pack("<I", crc32c(h))


def record(payload: bytes) -> bytes:
    return struct.pack("<II", len(payload), crc32c(payload)) + payload


def s16(b: bytes) -> bytes:
    return struct.pack("<H", len(b)) + b


def put(nai: str, n: int, nat: bool = False, delegated: tuple = (), anchors: tuple = ()) -> bytes:
    p = b"\x01" + s16(nai.encode())
    p += struct.pack("<H", 1) + bytes.fromhex("20010db8010000%02x" % n) + bytes(8) + b"\x40"
    p += struct.pack("<IHQ", 1000 + n, 7, 0x0123456789ABCDEF)
    p += struct.pack("<H", 2)
    for bid, coa in ((1, bytes.fromhex("20010db8000a0000000000000000000" + "7")),
                     (2, bytes(10) + b"\xff\xff" + bytes([192, 0, 2, n]))):
        p += struct.pack("<H", bid) + s16(b"mag-%d" % n) + coa + bytes(16)
        p += struct.pack("<BBIIBHQ", 4, bid, 77, 50000, 1, 7, 1_800_000_000)
    if nat:
        # Extension 1 (NAT traversal): per path flag, observed port, the MAG's CoA.
        ext = b"\x00" + struct.pack("<H", 0) + bytes(16)
        ext += b"\x01" + struct.pack("<H", 40123) + bytes(10) + b"\xff\xff" + bytes([192, 0, 2, 66])
        p += b"\x01" + struct.pack("<H", len(ext)) + ext
    if delegated:
        # Extension 2 (delegated prefixes, RFC 7148): per prefix the address and its length.
        ext = b"".join(addr + bytes([length]) for addr, length in delegated)
        p += b"\x02" + struct.pack("<H", len(ext)) + ext
    if anchors:
        # Extension 5 (distributed anchoring, docs/scale-out.md): per prefix anchored at another
        # node: prefix, length, the anchor's address, ours, uplink key, downlink key, node name.
        ext = b"".join(pfx + bytes([length]) + anchor + local + struct.pack("<II", up, down) +
                       bytes([len(node)]) + node
                       for pfx, length, anchor, local, up, down, node in anchors)
        p += b"\x05" + struct.pack("<H", len(ext)) + ext
    return record(p)


def delete(nai: str) -> bytes:
    return record(b"\x02" + s16(nai.encode()))


def end(count: int) -> bytes:
    return record(b"\x03" + struct.pack("<Q", count))


seeds = {
    "log-empty": header(1, 1, 5),
    "log-puts": header(1, 2, 5) + put("cpe1@hag.example", 1) + put("cpe2@hag.example", 2),
    "log-put-delete": header(1, 3, 5) + put("cpe1@hag.example", 1) + delete("cpe1@hag.example"),
    "log-torn": (header(1, 4, 5) + put("cpe1@hag.example", 1) + put("cpe2@hag.example", 2))[:-9],
    "snapshot": header(2, 5, 5) + put("cpe1@hag.example", 1) + put("cpe3@hag.example", 3) + end(2),
    "snapshot-empty": header(2, 6, 5) + end(0),
    "log-put-nat": header(1, 7, 5) + put("cpe4@hag.example", 4, nat=True),
    # 2001:db8:d00:100::/56 and 192.0.2.128/28 (IPv4-mapped: length 96 + 28).
    "log-put-nat-dmnp": header(1, 8, 5) + put(
        "cpe5@hag.example", 5, nat=True,
        delegated=((bytes.fromhex("20010db80d000100") + bytes(8), 56),
                   (bytes(10) + b"\xff\xff" + bytes([192, 0, 2, 128]), 124))),
    # A binding value of the cluster store (control/core/cluster_record.hpp): "HAGB", version,
    # serving node and anchor names, then a PUT record.
    "cluster-value": b"HAGB\x01" + b"\x06node-b" + b"\x06node-a" + put("cpe6@hag.example", 6),
    # The same, served and anchored at node-b, its old prefix 2001:db8:100:7::/64 at node-a.
    "cluster-value-anchors": b"HAGB\x01" + b"\x06node-b" + b"\x06node-b" + put(
        "cpe7@hag.example", 7,
        anchors=((bytes.fromhex("20010db801000007") + bytes(8), 64,
                  bytes.fromhex("20010db8") + bytes(11) + b"\x0a",
                  bytes.fromhex("20010db8") + bytes(11) + b"\x0b", 7, 1000008, b"node-a"),)),
}
os.makedirs("corpus", exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join("corpus", name), "wb") as f:
        f.write(data)
