#!/usr/bin/python3
"""hag-linkemu between two namespaces adds the delay and loss it is asked for (root only).

Topology: left ns eth0 (2001:db8:1::1) -- e0 [emu ns: hag-linkemu] e1 -- eth0 right ns
(2001:db8:1::2), static neighbour entries (no ND through a lossy link).

Checked, loosely (the machine is shared): with 20 ms each way, ping's RTT is at least 40 ms and
not absurdly more; with 20 % loss each way, between 65 % and 92 % of 1000 UDP datagrams arrive
and linkemu's own loss counter is near 20 %; linkemu's counters add up.

usage: test_linkemu.py HAG_LINKEMU
"""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from netns import Topology, require_root, sh, udp_count, wait_for_line  # noqa: E402

LEFT, RIGHT = "2001:db8:1::1", "2001:db8:1::2"


def main():
    require_root()
    linkemu = sys.argv[1]
    topo = Topology("le")
    left, emu, right = topo.ns("left"), topo.ns("emu"), topo.ns("right")
    lmac, _ = topo.veth(left, "eth0", emu, "e0")
    _, rmac = topo.veth(emu, "e1", right, "eth0")
    for dev in ("e0", "e1"):
        sh("sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1", ns=emu)
    sh("ip", "-6", "addr", "add", LEFT + "/64", "dev", "eth0", "nodad", ns=left)
    sh("ip", "-6", "addr", "add", RIGHT + "/64", "dev", "eth0", "nodad", ns=right)
    sh("ip", "-6", "neigh", "add", RIGHT, "lladdr", rmac, "dev", "eth0", ns=left)
    sh("ip", "-6", "neigh", "add", LEFT, "lladdr", lmac, "dev", "eth0", ns=right)
    tmp = topo.tmpdir("hag-linkemu-")
    failures = []

    def start(*args):
        stats = os.path.join(tmp, f"stats{len(topo.procs)}.json")
        p = topo.spawn(emu, linkemu, "--a", "e0", "--b", "e1", "--stats", stats, *args,
                       stdout=subprocess.PIPE)
        assert wait_for_line(p, "ready", 20), "hag-linkemu did not start"
        return p, stats

    def stop(p, stats):
        topo.stop(p)
        with open(stats) as f:
            return json.load(f)

    # 1. Delay: 20 ms each way.
    p, stats = start("--delay-ms", "20")
    r = subprocess.run(["ip", "netns", "exec", left, "ping", "-6", "-c", "20", "-i", "0.05", "-W",
                        "2", RIGHT], capture_output=True, text=True, timeout=60)
    m = re.search(r"= ([\d.]+)/([\d.]+)/([\d.]+)", r.stdout)
    s = stop(p, stats)
    print("delay 20 ms each way:", m.group(0) if m else r.stdout, json.dumps(s), flush=True)
    if not m:
        failures.append(f"ping through linkemu failed: {r.stdout} {r.stderr}")
    else:
        rtt_min, rtt_avg = float(m.group(1)), float(m.group(2))
        if rtt_min < 40.0:
            failures.append(f"RTT {rtt_min} ms below the 40 ms linkemu adds")
        if rtt_avg > 40.0 + 200.0:
            failures.append(f"RTT {rtt_avg} ms far above 40 ms")
    if s["a_to_b"]["forwarded"] < 20 or s["b_to_a"]["forwarded"] < 20:
        failures.append(f"linkemu forwarded too little: {s}")

    # 2. Loss: 20 % each way (UDP one way: 20 % of the datagrams).
    p, stats = start("--loss", "0.2", "--seed", "7")
    got = udp_count(left, right, RIGHT, 1000, 200)
    s = stop(p, stats)
    print(f"loss 20 %: {got} of 1000 arrived;", json.dumps(s), flush=True)
    if not 650 <= got <= 920:
        failures.append(f"{got} of 1000 datagrams arrived with 20 % loss")
    ab = s["a_to_b"]
    if ab["received"] < 1000 or not 0.12 <= ab["lost"] / ab["received"] <= 0.28:
        failures.append(f"linkemu's loss counter: {ab}")
    if ab["lost"] + ab["forwarded"] + ab["queue_full"] + ab["send_errors"] != ab["received"]:
        failures.append(f"linkemu's counters do not add up: {ab}")

    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
