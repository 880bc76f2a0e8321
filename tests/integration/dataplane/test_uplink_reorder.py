#!/usr/bin/python3
"""hag-dataplane puts a session's uplink back in GRE sequence order (docs/dataplane.md#reorder).

Topology (network namespaces, veth pairs, documentation addresses):

  core host ns            gateway ns (hag-dataplane)              home router ns
  2001:db8:9999::1  ---- core port | net_af_packet | access port ---- CoA 2001:db8:aaaa::1 (DSL)
  UDP receiver                                                        CoA 2001:db8:bbbb::1 (LTE)
                                                                      scapy sender

The home router is scapy (independent of hag's code): one session, two paths, one GRE sequence
space. Each path delivers its own packets in order, but the paths are interleaved block-wise
(DSL's four numbers before LTE's four), one LTE packet is lost, and at the end the LTE path
goes silent after a loss so that only the timeout can release what waits. The core host's
receiver must see the inner UDP payloads (their sequence numbers) strictly in order, with
exactly the lost ones missing, and hag's counters must say what happened.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from netns import Topology, require_root, sh, wait_for_line  # noqa: E402

DATAPLANE = sys.argv[1]
UPLINK_KEY = 0x1001
DSL, LTE = "2001:db8:aaaa::1", "2001:db8:bbbb::1"
LOST_BLOCKWISE = 29       # an LTE number, lost: both paths pass it, skipped at once
LOST_AT_END = 64          # lost on LTE, which then stays silent: released by the timeout

RECEIVER = """
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("2001:db8:9999::1", 7000)); s.settimeout(4); got = []
print("listening", flush=True)
try:
    while True:
        d, _ = s.recvfrom(2000); got.append(int(d.split(b" ")[1]))
except socket.timeout:
    pass
print(" ".join(map(str, got)), flush=True)
"""

SENDER = """
import sys
from scapy.all import Ether, IPv6, GRE, UDP, Raw, sendp
gw_mac, key, plan = sys.argv[1], int(sys.argv[2], 0), sys.argv[3]
frames = []
for item in plan.split(","):
    coa, seq = item.split("/")
    frames.append(Ether(dst=gw_mac) / IPv6(src=coa, dst="2001:db8:ff::1") /
                  GRE(key_present=1, seqnum_present=1, key=key, sequence_number=int(seq)) /
                  IPv6(src="2001:db8:1::42", dst="2001:db8:9999::1") / UDP(sport=7000, dport=7000) /
                  Raw(b"seq %d end" % int(seq)))
sendp(frames, iface="eth0", verbose=False)
"""


def plan():
    """(care-of address, sequence number) in the order the home router's paths deliver them."""
    out = []
    for block in range(8):                           # 0..63, DSL evens then LTE odds
        base = block * 8
        out += [(DSL, base + i) for i in (0, 2, 4, 6)]
        out += [(LTE, base + i) for i in (1, 3, 5, 7) if base + i != LOST_BLOCKWISE]
    out += [(DSL, 65), (DSL, 66)]                    # 64 lost on LTE; LTE stays silent
    return out


def main():
    require_root()
    topo = Topology("ro")
    core, gw, cpe = topo.ns("core"), topo.ns("gw"), topo.ns("cpe")
    core_host_mac, gw_core_mac = topo.veth(core, "eth0", gw, "core0")
    cpe_mac, gw_access_mac = topo.veth(cpe, "eth0", gw, "acc0")
    sh("ip", "-6", "addr", "add", "2001:db8:9999::1/64", "dev", "eth0", "nodad", ns=core)
    for coa in (DSL, LTE):
        sh("ip", "-6", "addr", "add", coa + "/64", "dev", "eth0", "nodad", ns=cpe)

    tmp = topo.tmpdir("hag-it-")
    conf = os.path.join(tmp, "dataplane.conf")
    with open(conf, "w") as f:
        f.write(f"""
log {{ level: "info" }}
eal_args: ["--no-huge", "--no-pci", "-m", "512", "--file-prefix", "hag-it-{os.getpid()}",
           "-l", "0-1", "--log-level", "lib.*:warning", "--no-telemetry"]
ports {{ name: "core" device: "net_af_packet0,iface=core0" role: CORE next_hop_mac: "{core_host_mac}" }}
ports {{ name: "access" device: "net_af_packet1,iface=acc0" role: ACCESS }}
mbufs: 8191
max_sessions: 1024
programmer_listen: ""
exception_path: false
idle_sleep_us: 20
reorder {{ timeout_us: 20000 min_timeout_us: 20000 }}
sessions {{
  id: 1 uplink_key: {UPLINK_KEY} prefixes: "2001:db8:1::/64"
  paths {{ bid: 1 local: "2001:db8:ff::1" care_of: "{DSL}" downlink_key: 0x2001
          port: "access" next_hop_mac: "{cpe_mac}" }}
  paths {{ bid: 2 local: "2001:db8:ff::1" care_of: "{LTE}" downlink_key: 0x2002
          port: "access" next_hop_mac: "{cpe_mac}" }}
}}
""")
    sh(DATAPLANE, "--check-config", "-c", conf)
    dp = topo.spawn(gw, DATAPLANE, "-c", conf, stdout=subprocess.PIPE)
    assert wait_for_line(dp, "ready", 60), "hag-dataplane did not start"
    rcv = topo.spawn(core, "/usr/bin/python3", "-c", RECEIVER, stdout=subprocess.PIPE)
    assert wait_for_line(rcv, "listening", 20), "receiver did not start"
    time.sleep(0.3)

    items = plan()
    sh("/usr/bin/python3", "-c", SENDER, gw_access_mac, hex(UPLINK_KEY),
       ",".join(f"{c}/{s}" for c, s in items), ns=cpe, timeout=60)
    got = [int(x) for x in rcv.communicate(timeout=30)[0].split("\n")[-2].split()]
    topo.stop(dp)
    stats = json.loads([l for l in dp.stdout.read().splitlines() if l.startswith("{")][-1])
    print("received:", got)
    print("hag-dataplane:", json.dumps(stats))

    failures = []
    want = sorted(s for _, s in items)
    if got != want:
        failures.append(f"core receiver saw {got}, expected {want} (in order, "
                        f"{LOST_BLOCKWISE} and {LOST_AT_END} missing)")
    ev = stats.get("reorder", {}).get("events", {})
    if ev.get("lost") != 2:
        failures.append(f"reorder lost {ev.get('lost')}, expected 2")
    if ev.get("gaps_timed_out") != 1:
        failures.append(f"reorder gaps_timed_out {ev.get('gaps_timed_out')}, expected 1 (the end)")
    if not ev.get("gaps_skipped"):
        failures.append("no gap was skipped at once although both paths passed the lost number")
    if ev.get("held", 0) < 20:
        failures.append(f"only {ev.get('held')} packets held: the interleaving did not reorder")
    session = stats["sessions"]["1"]
    if session["reorder"]["lost"] != 2 or session["reorder"]["timeouts"] != 1:
        failures.append(f"session reorder counters: {session['reorder']}")
    dsl = session["paths"]["1"]
    if dsl["reordered"] < 20 or dsl["timed_out"] != 2:
        failures.append(f"DSL path counters: {dsl} (65 and 66 waited for the timeout)")
    if stats["reorder"]["drops"]["late"] or stats["reorder"]["drops"]["duplicate"]:
        failures.append(f"reorder drops: {stats['reorder']['drops']}")

    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
