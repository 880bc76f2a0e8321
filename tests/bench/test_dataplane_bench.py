#!/usr/bin/python3
"""bench-smoke: runs tools/bench/dataplane --quick and checks that it ran and that its numbers are
sane (every rate > 0, no drop of the valid traffic, updates applied, none refused). Never a speed
threshold: the figures themselves are for docs/benchmarks.md, not for pass/fail.

Also dissects the first frames of the generated pcaps with scapy (an independent decoder): sizes,
headers, and that each uplink frame's GRE key, care-of address and inner source belong to the same
synthetic subscriber, as the anti-spoofing check requires. And hag-dp-bench misses (random line
reads) answers with a figure per mode, and refuses an empty region.

usage: test_dataplane_bench.py SCRIPT BUILD_DIR
"""
import ipaddress
import json
import math
import os
import subprocess
import sys
import tempfile


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def subscriber_of_prefix(addr):
    """Index i of 2001:db8:(0x100 + i / 65536):(i % 65536)::/64 (dataplane/bench/subscribers.hpp)."""
    b = ipaddress.IPv6Address(addr).packed
    return ((int.from_bytes(b[4:6], "big") - 0x100) << 16) | int.from_bytes(b[6:8], "big")


def check_pcaps(work):
    from scapy.all import GRE, IPv6, UDP, PcapReader
    with PcapReader(os.path.join(work, "downlink.pcap")) as r:
        for k, p in zip(range(5), r):
            if len(p) != 64 or not p.haslayer(UDP):
                fail(f"downlink frame {k}: {len(p)} octets, {p.summary()}")
            if p[IPv6].src != "2001:db8:ffff::1" or p[IPv6].dst.split(":")[:2] != ["2001", "db8"]:
                fail(f"downlink frame {k}: addresses {p[IPv6].src} -> {p[IPv6].dst}")
    with PcapReader(os.path.join(work, "uplink.pcap")) as r:
        for k, p in zip(range(5), r):
            if len(p) != 116 or not p.haslayer(GRE):
                fail(f"uplink frame {k}: {len(p)} octets, {p.summary()}")
            g = p[GRE]
            if not (g.key_present and g.seqnum_present) or g.chksum_present or g.proto != 0x86DD:
                fail(f"uplink frame {k}: GRE flags/protocol {g.summary()}")
            inner = g[IPv6]
            i = subscriber_of_prefix(inner.src)
            coa = ipaddress.IPv6Address(p[IPv6].src).packed
            if g.key != 0x10000000 + i or int.from_bytes(coa[12:16], "big") != i or \
                    coa[:6] != ipaddress.IPv6Address("2001:db8:c0a::").packed[:6]:
                fail(f"uplink frame {k}: key {g.key:#x}, care-of {p[IPv6].src}, inner source "
                     f"{inner.src} are not one subscriber")
            if p[IPv6].dst != "2001:db8:a::1" or inner.dst != "2001:db8:ffff::1":
                fail(f"uplink frame {k}: destinations {p[IPv6].dst}, {inner.dst}")


def check_misses(binary):
    """hag-dp-bench misses: one figure per mode, each a positive number of cycles; a region of
    0 MB is refused with CLI11's message."""
    r = subprocess.run([binary, "misses", "--megabytes", "4", "--reads", "65536"],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        fail(f"misses exited {r.returncode}: {r.stderr[-2000:]}")
    m = json.loads(r.stdout)
    modes = {"none", "prefetch", "prefetch_ahead", "prefetch_work", "prefetch_ahead_work",
             "work_only", "two_lines"}
    if m["megabytes"] != 4 or set(m["cycles_per_read"]) != modes or \
            not all(v > 0 for v in m["cycles_per_read"].values()):
        fail(f"misses: {m}")
    r = subprocess.run([binary, "misses", "--megabytes", "0"], capture_output=True, text=True,
                       timeout=60)
    if r.returncode == 0 or "megabytes" not in r.stderr:
        fail(f"misses --megabytes 0: exit {r.returncode}, {r.stderr[-500:]!r}")


def main():
    script, build = sys.argv[1], sys.argv[2]
    if os.geteuid() != 0:
        print("SKIP: needs root (DPDK EAL); CI runs as root")
        sys.exit(77)
    with tempfile.TemporaryDirectory(prefix="hag-bench-smoke-") as work:
        out = os.path.join(work, "result.json")
        r = subprocess.run([script, "--quick", "--build", build, "--json", out,
                            "--workdir", work], capture_output=True, text=True, timeout=170)
        print(r.stdout)
        if r.returncode != 0:
            fail(f"tools/bench/dataplane exited {r.returncode}: {r.stderr[-3000:]}")
        check_pcaps(work)
        with open(out) as f:
            res = json.load(f)
    for d in ("downlink", "uplink"):
        if not res["testpmd"][d]["pps"] > 0:
            fail(f"testpmd {d}: rate {res['testpmd'][d]['pps']}")
    for k in ("downlink", "uplink", "downlink_updates"):
        h = res["hag"][k]
        if not (h["forwarded"] > 0 and h["forwarded_pps"] > 0 and h["rx_pps"] > 0):
            fail(f"hag {k}: nothing forwarded: {h}")
        if h["unexpected_drops"] != 0 or h["rx_nombuf"] != 0:
            fail(f"hag {k}: drops {h['drops']}, tx_full {h['tx_full']}, "
                 f"rx_nombuf {h['rx_nombuf']}")
        if h["subscribers"] != 10000 or h["progress"]["samples"] == 0:
            fail(f"hag {k}: {h['subscribers']} subscribers, {h['progress']}")
        if not res["ratios"][k]["vs_testpmd"] > 0:
            fail(f"hag {k}: ratio {res['ratios'][k]}")
    u = res["hag"]["downlink_updates"]["updates"]
    if u["applied"] == 0 or u["refused"] != 0:
        fail(f"updates: {u}")
    if res["hag"]["downlink"]["updates"]["applied"] != 0:
        fail("updates applied in the run without updates")
    # "own": the main lcore thread's CPU time per upsert, reported next to the wall-clock time.
    own = u.get("longest_upsert_own_us")
    if not (isinstance(own, (int, float)) and math.isfinite(own) and own > 0 and
            isinstance(u.get("upserts_over_1ms_own"), int) and
            0 < u["mean_upsert_us"] <= u["longest_upsert_us"]):
        fail(f"upsert times: {u}")
    check_misses(os.path.join(build, "dataplane", "bench", "hag-dp-bench"))
    print("PASS: bench-smoke (figures above are informative only)")


if __name__ == "__main__":
    main()
