#!/usr/bin/python3
"""hag-gen-smoke: tools/hag-gen writes pcaps whose frames decode (scapy, an independent decoder)
to the benchmark sessions' traffic — each uplink frame's GRE key, care-of address (the path's)
and inner source belong to one subscriber, each session's sequence numbers come once each, the
payload stamp names the same flow and number — and its live mode gets every packet back over a
net_ring loopback. Tiny counts; no timing asserted.

usage: test_hag_gen.py HAG_GEN
"""
import ipaddress
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def sub_of_prefix(addr):
    b = ipaddress.IPv6Address(addr).packed
    return ((int.from_bytes(b[4:6], "big") - 0x100) << 16) | int.from_bytes(b[6:8], "big")


def path_coa(i, k):
    """dataplane/bench/subscribers.hpp path_coa()."""
    group = 0x0c0a if k == 0 else 0x0d00 + k
    return str(ipaddress.IPv6Address(f"2001:db8:{group:x}::{i >> 16:x}:{i & 0xffff:x}"))


def stamp(raw):
    """(flow, seq, tsc) from the frame's last 20 octets, or None (tools/hag-gen/stamp.hpp)."""
    if len(raw) < 20 or raw[-20:-16] != b"hgn1":
        return None
    return (int.from_bytes(raw[-16:-12], "big"), int.from_bytes(raw[-12:-8], "big"),
            int.from_bytes(raw[-8:], "big"))


def main():
    gen = sys.argv[1]
    from scapy.all import GRE, IP, IPv6, UDP, rdpcap
    with tempfile.TemporaryDirectory(prefix="hag-gen-smoke-") as work:
        down = os.path.join(work, "down.pcap")
        subprocess.run([gen, "pcap", "--direction", "downlink", "--subscribers", "8",
                        "--family", "46", "--sizes", "imix", "--packets", "96", "--out", down],
                       check=True)
        sizes, fams, seqs = defaultdict(int), defaultdict(int), defaultdict(list)
        for p in rdpcap(down):
            raw = bytes(p)
            sizes[len(raw)] += 1
            if p.haslayer(IP):
                fams[4] += 1
                a = ipaddress.IPv4Address(p[IP].dst)
                i = int(a) - int(ipaddress.IPv4Address("198.18.0.0"))
                if p[IP].src != "198.51.100.1" or not 0 <= i < 8 or p[UDP].dport != 9:
                    fail(f"downlink IPv4 frame: {p.summary()}")
                flow = i << 1 | 1
            else:
                fams[6] += 1
                i = sub_of_prefix(p[IPv6].dst)
                if p[IPv6].src != "2001:db8:ffff::1" or not 0 <= i < 8:
                    fail(f"downlink IPv6 frame: {p.summary()}")
                flow = i << 1
            st = stamp(raw)
            if len(raw) >= 82 or p.haslayer(IP):
                if st is None or st[0] != flow:
                    fail(f"downlink frame of subscriber {i}: stamp {st}, flow {flow}")
                seqs[flow].append(st[1])
        if set(sizes) != {64, 594, 1400} or sizes[64] != 56 or fams[4] != 48:
            fail(f"downlink sizes {dict(sizes)}, families {dict(fams)}")
        for flow, v in seqs.items():
            if v != sorted(v) or len(set(v)) != len(v):
                fail(f"downlink flow {flow}: numbers {v}")

        up = os.path.join(work, "up.pcap")
        subprocess.run([gen, "pcap", "--direction", "uplink", "--subscribers", "4", "--paths",
                        "2", "--path-weights", "1,1", "--permille", "100", "--skew", "0,2",
                        "--loss-permille", "50", "--sizes", "128", "--packets", "400", "--out",
                        up], check=True)
        per_sub, per_path, reordered = defaultdict(list), defaultdict(int), 0
        for p in rdpcap(up):
            g = p[GRE]
            if not (g.key_present and g.seqnum_present):
                fail(f"uplink frame without key or sequence: {p.summary()}")
            inner = g.payload
            i = sub_of_prefix(inner[IPv6].src)
            if g.key != 0x10000000 + i or p[IPv6].dst != "2001:db8:a::1":
                fail(f"uplink key {g.key:#x} for subscriber {i}")
            k = [k for k in (0, 1) if path_coa(i, k) == p[IPv6].src]
            if not k:
                fail(f"uplink CoA {p[IPv6].src} is not one of subscriber {i}'s")
            per_path[k[0]] += 1
            st = stamp(bytes(p))
            if st is None or st[0] != i << 1 or st[1] != g.sequence_number or st[2] != 0:
                fail(f"uplink stamp {st} vs GRE sequence {g.sequence_number}")
            v = per_sub[i]
            reordered += 1 if v and g.sequence_number < max(v) else 0
            v.append(g.sequence_number)
        if sorted(per_sub) != [0, 1, 2, 3] or min(per_path.values()) < 150:
            fail(f"uplink subscribers {sorted(per_sub)}, per path {dict(per_path)}")
        gaps = 0
        for i, v in per_sub.items():
            if len(set(v)) != len(v):
                fail(f"subscriber {i}: a number twice: {v}")
            gaps += max(v) + 1 - len(v)
        if reordered == 0 or gaps == 0:
            fail(f"uplink: {reordered} reordered, {gaps} numbers missing: permutation/loss absent")

        # sessions: the description the pcaps' traffic belongs to.
        r = subprocess.run([gen, "sessions", "--subscribers", "3", "--paths", "2", "--ipv4"],
                           capture_output=True, text=True, check=True)
        for i, line in enumerate(r.stdout.splitlines()):
            s = json.loads(line)
            want_prefixes = [str(ipaddress.IPv6Network(f"2001:db8:100:{i:x}::/64")),
                             f"198.18.0.{i}/32"]
            if (s["subscriber"] != i or s["uplink_key"] != 0x10000000 + i or
                    s["prefixes"] != want_prefixes or
                    [p["coa"] for p in s["paths"]] != [path_coa(i, 0), path_coa(i, 1)] or
                    any(p["downlink_key"] != 0x20000000 + i for p in s["paths"])):
                fail(f"hag-gen sessions, subscriber {i}: {line}")

        # live: over a net_ring loopback (EAL --no-huge --no-pci), every packet back in order.
        r = subprocess.run([gen, "live", "--direction", "uplink", "--subscribers", "16",
                            "--paths", "2", "--sizes", "128:3,1400", "--family", "46",
                            "--vdev", "net_ring0", "--count", "5000", "--seconds", "0",
                            "--drain", "0.1"], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            fail(f"hag-gen live: {r.returncode} {r.stderr}")
        res = json.loads(r.stdout)
        if (res["sent"] != 5000 or res["received"] != 5000 or res["lost"] != 0 or
                res["reordered"] != 0 or res["gap_numbers"] != 0 or res["stamped"] != 5000 or
                res["latency_ns"]["max"] <= 0):
            fail(f"hag-gen live: {res}")
        print("hag-gen smoke: pcaps decode to the sessions' traffic; live loopback",
              json.dumps(res))


if __name__ == "__main__":
    main()
