#!/usr/bin/python3
"""PBU and PBA built by scapy (an encoder nobody here wrote), decoded by hag-mhdump --json.

Usage: test_scapy_pbu.py PATH_TO_HAG_MHDUMP   (or HAG_MHDUMP in the environment)
Options scapy has no class for are given as raw option bytes (MIP6OptUnknown).
"""
import json
import os
import struct
import subprocess
import sys

import logging
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.layers.inet6 import (IPv6, MIP6MH_BA, MIP6MH_BU, MIP6OptMNID,  # noqa: E402
                                MIP6OptMobNetPrefix, MIP6OptUnknown)

MHDUMP = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("HAG_MHDUMP", "")
SRC, DST = "2001:db8:a::1", "2001:db8:f::1"
failures = []


def check(what, got, want):
    if got != want:
        failures.append(f"{what}: got {got!r}, want {want!r}")


def raw(otype, data):
    return MIP6OptUnknown(otype=otype, odata=data)


def decode(mh_bytes):
    out = subprocess.run([MHDUMP, "decode", "--json", "--hex", mh_bytes.hex()],
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        print(out.stdout, out.stderr)
        sys.exit(f"hag-mhdump decode failed with status {out.returncode}")
    return json.loads(out.stdout)


def options_by_type(msg):
    """Options of the decoded message keyed by type (padding is not listed)."""
    got = {}
    for o in msg["options"]:
        got.setdefault(o["type"], []).append(o)
    return got


def mh_bytes(pkt):
    # Serialise through an IPv6 header so scapy fills the MH checksum over the pseudo-header.
    return bytes(IPv6(src=SRC, dst=DST) / pkt)[40:]


def pbu():
    bu = MIP6MH_BU(seq=4242, flags=0, mhtime=0x0384, reserved=0)
    # A 0x8000, P 0x0200 are scapy flags; T 0x0080 and B 0x0040 live in scapy's 9-bit reserved.
    bu.flags = "AP"
    bu.reserved = 0x0080 | 0x0040
    bu.options = [
        MIP6OptMNID(subtype=1, id=b"cpe-0001@hag.example"),
        MIP6OptMobNetPrefix(otype=22, plen=64, prefix="2001:db8:1::"),
        raw(23, bytes([0, 1])),                       # Handoff Indicator: new attach
        raw(24, bytes([0, 3])),                       # ATT: 802.3 (DSL line)
        raw(27, struct.pack("!Q", 0xE9A1B2C300000000)),  # Timestamp (NTP)
        raw(33, struct.pack("!HI", 0, 0x00010001)),   # GRE Key (downlink)
        raw(35, struct.pack("!HBB", 1, 0, 0x05)),     # BID 1, status 0, H=0, BID-PRI 5
        raw(63, bytes([3, 1, 1, 0x00])),              # MAG Multipath-Binding: If-ATT 3, label 1, BID 1
        raw(64, bytes([1]) + b"mag-1@hag.example"),   # MAG Identifier (NAI)
        raw(19, struct.pack("!IB", 32473, 1) + bytes.fromhex("00003e80000007d00019")),  # vendor
    ]
    return mh_bytes(bu)


def test_pbu():
    m = decode(pbu())
    check("PBU mh_type", m["mh_type"], 5)
    check("PBU sequence", m["sequence"], 4242)
    check("PBU lifetime", m["lifetime"], 0x0384)
    check("PBU flags", sorted(m["flags"]), sorted(["A", "P", "T", "B"]))
    opts = options_by_type(m)
    check("PBU option types", sorted(opts), [8, 19, 22, 23, 24, 27, 33, 35, 63, 64])
    check("MN-ID subtype", opts[8][0]["subtype"], 1)
    check("MN-ID", opts[8][0]["identifier"], "cpe-0001@hag.example")
    check("HNP", opts[22][0]["prefix"], "2001:db8:1::/64")
    check("HI", opts[23][0]["handoff_indicator"], 1)
    check("ATT", opts[24][0]["access_technology_type"], 3)
    check("Timestamp", opts[27][0]["timestamp"], 0xE9A1B2C300000000)
    check("GRE key", opts[33][0]["gre_key"], 0x00010001)
    check("BID", opts[35][0]["binding_id"], 1)
    check("BID status", opts[35][0]["status"], 0)
    check("BID H", opts[35][0]["h"], False)
    check("BID priority", opts[35][0]["priority"], 5)
    check("MMB If-ATT", opts[63][0]["if_att"], 3)
    check("MMB If-Label", opts[63][0]["if_label"], 1)
    check("MMB Binding-Id", opts[63][0]["binding_id"], 1)
    check("MMB B", opts[63][0]["b"], False)
    check("MMB O", opts[63][0]["o"], False)
    check("MAG-ID subtype", opts[64][0]["subtype"], 1)
    check("MAG-ID", opts[64][0]["identifier"], "mag-1@hag.example")
    check("VSO vendor", opts[19][0]["vendor_id"], 32473)
    check("VSO subtype", opts[19][0]["subtype"], 1)
    check("VSO data", opts[19][0]["data"], "00003e80000007d00019")


def test_pba():
    ba = MIP6MH_BA(status=0, flags="KP", seq=4242, mhtime=0x0384)
    ba.options = [
        MIP6OptMNID(subtype=1, id=b"cpe-0001@hag.example"),
        MIP6OptMobNetPrefix(otype=22, plen=64, prefix="2001:db8:1::"),
        raw(23, bytes([0, 1])),
        raw(24, bytes([0, 3])),
        raw(27, struct.pack("!Q", 0xE9A1B2C300000000)),
        raw(33, struct.pack("!HI", 0, 0x00020002)),   # GRE Key (uplink, LMA allocated)
    ]
    m = decode(mh_bytes(ba))
    check("PBA mh_type", m["mh_type"], 6)
    check("PBA status", m["status"], 0)
    check("PBA sequence", m["sequence"], 4242)
    check("PBA lifetime", m["lifetime"], 0x0384)
    check("PBA flags", sorted(m["flags"]), ["K", "P"])
    opts = options_by_type(m)
    check("PBA option types", sorted(opts), [8, 22, 23, 24, 27, 33])
    check("PBA HNP", opts[22][0]["prefix"], "2001:db8:1::/64")
    check("PBA GRE key", opts[33][0]["gre_key"], 0x00020002)

    reject = MIP6MH_BA(status=180, flags="P", seq=7, mhtime=0)
    r = decode(mh_bytes(reject))
    check("PBA reject status", r["status"], 180)
    check("PBA reject sequence", r["sequence"], 7)


def test_bad_checksum_reported():
    b = bytearray(pbu())
    b[4] ^= 0xff  # the JSON carries the checksum as received: it cannot be verified without
    m = decode(bytes(b))  # the addresses, so decoding still succeeds
    check("checksum as received", m["checksum"], b[4] << 8 | b[5])


def test_malformed_is_an_error():
    """A PBU whose Header Len claims more than is there: exit status 1 and a typed error."""
    b = bytearray(pbu())
    b[1] += 1
    out = subprocess.run([MHDUMP, "decode", "--json", "--hex", bytes(b).hex()],
                         capture_output=True, text=True, timeout=30)
    check("malformed exit status", out.returncode, 1)
    check("malformed: nothing on stdout", out.stdout, "")
    if "length" not in out.stderr.lower():
        failures.append(f"malformed: error does not name the length problem: {out.stderr!r}")
    bad_hex = subprocess.run([MHDUMP, "decode", "--hex", "3b0"], capture_output=True, text=True,
                             timeout=30)
    check("bad hex exit status", bad_hex.returncode, 2)


if __name__ == "__main__":
    if not MHDUMP or not os.access(MHDUMP, os.X_OK):
        sys.exit(f"hag-mhdump not found: pass its path as argument ({MHDUMP!r})")
    test_pbu()
    test_pba()
    test_bad_checksum_reported()
    test_malformed_is_an_error()
    for f in failures:
        print("FAIL:", f)
    print(f"{len(failures)} failure(s)")
    sys.exit(1 if failures else 0)
