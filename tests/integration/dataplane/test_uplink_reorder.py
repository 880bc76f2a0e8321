#!/usr/bin/python3
"""hag-dataplane puts a session's uplink back in GRE sequence order (docs/dataplane.md#reorder).

Topology (network namespaces, veth pairs, documentation addresses):

  core host ns            gateway ns (hag-dataplane)              home router ns
  2001:db8:9999::1  ---- core port | net_af_packet | access port ---- CoA 2001:db8:aaaa::1 (DSL)
  UDP receiver                                                        CoA 2001:db8:bbbb::1 (LTE)
                                                                      scapy sender

With `--workers-ports` (test dataplane-workers-two-access-ports) the same runs with two workers
and two access ports: DSL arrives on acc0, LTE on acc1, each port with two RX queues that the
kernel's fan-out fills, so the session's two paths reach different workers and only the
session's owner may put them back in order; then UDP from the core host to two sessions (one
striped over both access ports) must leave by both access ports, and the exit JSON's per-worker
counters must show both workers at work and every hand-over taken over.

Then outer fragment reassembly (docs/dataplane.md#outer-fragment-reassembly): the home router
(scapy's fragment6, as an access link with a small MTU would) sends GRE packets over IPv6 cut
into fragments, some in reverse order, on both paths, plus a set with a duplicate first
fragment; the core host must receive every inner datagram whole and byte for byte, none of the
hostile set, and hag's counters must show the reassembly (with two workers: fragments handed
to the worker their packet's hash names, all taken over). IPv4 outer fragments are not sent
here: net_af_packet asks the kernel to defragment IPv4 before its fan-out, so they would reach
hag whole; the unit test dataplane-reassembly covers them.

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
WORKERS_PORTS = "--workers-ports" in sys.argv[2:]
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
from scapy.all import Ether, IPv6, GRE, UDP, Raw, conf
gw_mac, key, plan = sys.argv[1], int(sys.argv[2], 0), sys.argv[3]
# coa=iface=gateway MAC: which interface each care-of address sends from (two access ports).
ifaces = dict((a.split("=")[0], a.split("=")[1:]) for a in sys.argv[4:])
socks, frames = {}, []
for item in plan.split(","):  # all frames built first, then sent back to back
    coa, seq = item.split("/")
    iface, dst = ifaces.get(coa, ["eth0", gw_mac])
    if iface not in socks:
        socks[iface] = conf.L2socket(iface=iface)
    frames.append((socks[iface], bytes(
        Ether(dst=dst) / IPv6(src=coa, dst="2001:db8:ff::1") /
        GRE(key_present=1, seqnum_present=1, key=key, sequence_number=int(seq)) /
        IPv6(src="2001:db8:1::42", dst="2001:db8:9999::1") /
        UDP(sport=7000, dport=7000) / Raw(b"seq %d end" % int(seq)))))
for sock, frame in frames:
    sock.send(frame)
for s in socks.values():
    s.close()
"""

# Fragmented GRE: datagram i (port 7001) of 1200 octets in GRE over IPv6, the outer packet cut
# by fragment6 into fragments of at most 600 octets, every other packet's in reverse order;
# then one packet whose first fragment comes twice (given up whole, "invalid").
FRAG_RECEIVER = """
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("2001:db8:9999::1", 7001)); s.settimeout(3); ok, bad = [], 0
print("listening", flush=True)
try:
    while True:
        d, _ = s.recvfrom(4000)
        i = int(d.split(b" ")[1])
        if d == b"frag %d " % i + bytes([i % 251]) * 1200: ok.append(i)
        else: bad += 1
except socket.timeout:
    pass
print("ok", " ".join(map(str, sorted(ok))), "bad", bad, flush=True)
"""
FRAG_SENDER = """
import sys
from scapy.all import (Ether, IPv6, IPv6ExtHdrFragment, GRE, UDP, Raw, conf, fragment6)
key, n = int(sys.argv[1], 0), int(sys.argv[2])
paths = [a.split("=") for a in sys.argv[3:]]  # coa=iface=gateway MAC
socks = {}
def frags(i, coa, ident):
    inner = (IPv6(src="2001:db8:1::42", dst="2001:db8:9999::1") / UDP(sport=7001, dport=7001) /
             Raw(b"frag %d " % i + bytes([i % 251]) * 1200))
    outer = (IPv6(src=coa, dst="2001:db8:ff::1") / IPv6ExtHdrFragment(id=ident) /
             GRE(key_present=1, key=key) / inner)
    return fragment6(outer, 600)
for i in range(n + 1):
    coa, iface, mac = paths[i % len(paths)]
    if iface not in socks:
        socks[iface] = conf.L2socket(iface=iface)
    fs = frags(i, coa, 0x7000 + i)
    if i == n:
        fs = [fs[0]] + list(fs)          # hostile: a duplicate first fragment
    elif i % 2:
        fs = list(reversed(fs))
    for f in fs:
        socks[iface].send(Ether(dst=mac) / f)
for s in socks.values():
    s.close()
print(len(fs), flush=True)
"""
FRAG_PACKETS = 20

# Downlink from the core host: UDP from many source ports (the kernel's fan-out spreads the
# flows over both RX queues of the core port) to both sessions.
DOWNLINK = """
import socket, sys, time
n = 0
for rnd in range(int(sys.argv[1])):
    for port in range(20000, 20032):
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind(("2001:db8:9999::1", port))
        for dst in ("2001:db8:1::42", "2001:db8:2::42"):
            s.sendto(b"d" * 200, (dst, 9000)); n += 1
        s.close()
    time.sleep(0.01)
print(n, flush=True)
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
    topo = Topology("wk" if WORKERS_PORTS else "ro")
    core, gw, cpe = topo.ns("core"), topo.ns("gw"), topo.ns("cpe")
    core_host_mac, gw_core_mac = topo.veth(core, "eth0", gw, "core0")
    cpe_mac, gw_access_mac = topo.veth(cpe, "eth0", gw, "acc0")
    sh("ip", "-6", "addr", "add", "2001:db8:9999::1/64", "dev", "eth0", "nodad", ns=core)
    # Two access ports: LTE's care-of address sits behind a second veth (acc1 / eth1).
    lte_mac, gw_lte_mac, lte_dev, lte_port = cpe_mac, gw_access_mac, "eth0", "access"
    if WORKERS_PORTS:
        lte_mac, gw_lte_mac = topo.veth(cpe, "eth1", gw, "acc1")
        lte_dev, lte_port = "eth1", "lte"
    for coa, dev in ((DSL, "eth0"), (LTE, lte_dev)):
        sh("ip", "-6", "addr", "add", coa + "/64", "dev", dev, "nodad", ns=cpe)
    # Two workers on a host that may have two CPUs: three lcores floating over CPUs 0-1.
    LCORES = '"--lcores", "(0-2)@(0-1)"' if WORKERS_PORTS else '"-l", "0-1"'
    many = ""
    if WORKERS_PORTS:
        many = f"""workers: 2
ports {{ name: "lte" device: "net_af_packet2,iface=acc1" role: ACCESS }}
sessions {{ id: 2 uplink_key: 0x1002 prefixes: "2001:db8:2::/64"
  paths {{ bid: 1 local: "2001:db8:ff::1" care_of: "{DSL}" downlink_key: 0x3001
          port: "access" next_hop_mac: "{cpe_mac}" }} }}
"""

    tmp = topo.tmpdir("hag-it-")
    conf = os.path.join(tmp, "dataplane.conf")
    with open(conf, "w") as f:
        f.write(f"""
log {{ level: "info" }}
eal_args: ["--no-huge", "--no-pci", "-m", "512", "--file-prefix", "hag-it-{os.getpid()}",
           {LCORES}, "--log-level", "lib.*:warning",
           "--no-telemetry"]
ports {{ name: "core" device: "net_af_packet0,iface=core0" role: CORE next_hop_mac: "{core_host_mac}" }}
ports {{ name: "access" device: "net_af_packet1,iface=acc0" role: ACCESS }}
mbufs: 8191
max_sessions: 1024
programmer_listen: ""
exception_path: false
idle_sleep_us: 20
reorder {{ timeout_us: 200000 min_timeout_us: 200000 }}
sessions {{
  id: 1 uplink_key: {UPLINK_KEY} prefixes: "2001:db8:1::/64"
  paths {{ bid: 1 local: "2001:db8:ff::1" care_of: "{DSL}" downlink_key: 0x2001
          port: "access" next_hop_mac: "{cpe_mac}" }}
  paths {{ bid: 2 local: "2001:db8:ff::1" care_of: "{LTE}" downlink_key: 0x2002
          port: "{lte_port}" next_hop_mac: "{lte_mac}" }}
}}
{many}""")
    sh(DATAPLANE, "--check-config", "-c", conf)
    dp = topo.spawn(gw, DATAPLANE, "-c", conf, stdout=subprocess.PIPE)
    assert wait_for_line(dp, "ready", 60), "hag-dataplane did not start"
    rcv = topo.spawn(core, "/usr/bin/python3", "-c", RECEIVER, stdout=subprocess.PIPE)
    assert wait_for_line(rcv, "listening", 20), "receiver did not start"
    time.sleep(0.3)

    items = plan()
    sh("/usr/bin/python3", "-c", SENDER, gw_access_mac, hex(UPLINK_KEY),
       ",".join(f"{c}/{s}" for c, s in items), f"{LTE}={lte_dev}={gw_lte_mac}", ns=cpe,
       timeout=60)
    got = [int(x) for x in rcv.communicate(timeout=30)[0].split("\n")[-2].split()]

    # Outer fragments: reassembled by hag, the inner datagrams reach the core host whole.
    frcv = topo.spawn(core, "/usr/bin/python3", "-c", FRAG_RECEIVER, stdout=subprocess.PIPE)
    assert wait_for_line(frcv, "listening", 20), "fragment receiver did not start"
    sh("/usr/bin/python3", "-c", FRAG_SENDER, hex(UPLINK_KEY), str(FRAG_PACKETS),
       f"{DSL}=eth0={gw_access_mac}", f"{LTE}={lte_dev}={gw_lte_mac}", ns=cpe, timeout=60)
    frag_out = frcv.communicate(timeout=30)[0].split("\n")[-2].split()
    frag_ok = [int(x) for x in frag_out[1:frag_out.index("bad")]]
    frag_bad = int(frag_out[-1])
    sent_down = 0
    if WORKERS_PORTS:
        sh("ip", "-6", "neigh", "replace", "2001:db8:9999::fe", "lladdr", gw_core_mac, "dev",
           "eth0", ns=core)
        sh("ip", "-6", "route", "add", "2001:db8::/46", "via", "2001:db8:9999::fe", ns=core)
        sent_down = int(sh("/usr/bin/python3", "-c", DOWNLINK, "5", ns=core, capture=True,
                           timeout=60).split()[-1])
        time.sleep(0.5)
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
    dsl, lte = session["paths"]["1"], session["paths"]["2"]
    # One worker sees the paths in the order the router sent them: DSL's evens wait for LTE's
    # odds. With two workers, one path reaches the session's owner through the hand-over ring,
    # so which path's packets wait depends on the workers' timing: count both paths then.
    held = dsl["reordered"] + (lte["reordered"] if WORKERS_PORTS else 0)
    if held < 20 or dsl["timed_out"] != 2:
        failures.append(f"path counters: DSL {dsl}, LTE {lte} (DSL's evens or, with two "
                        f"workers, either path's packets waited; 65 and 66 for the timeout)")
    if stats["reorder"]["drops"]["late"] or stats["reorder"]["drops"]["duplicate"]:
        failures.append(f"reorder drops: {stats['reorder']['drops']}")

    failures += check_reassembly(stats, frag_ok, frag_bad)
    if WORKERS_PORTS:
        failures += check_workers_ports(stats, sent_down)

    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


def check_reassembly(stats, ok, bad):
    """Every fragmented datagram whole at the core host, the hostile set dropped, counters."""
    out = []
    print("fragments: datagrams whole at the core host:", ok, "damaged:", bad)
    if ok != list(range(FRAG_PACKETS)) or bad:
        out.append(f"fragmented GRE: core host got {ok} intact ({bad} damaged), expected "
                   f"0..{FRAG_PACKETS - 1} and not the hostile one")
    r = stats.get("reassembly")
    if r is None:
        return out + ["no reassembly stage in the exit JSON"]
    if r["reassembled"] != FRAG_PACKETS:
        out.append(f"reassembled {r['reassembled']}, expected {FRAG_PACKETS}: {r}")
    if r["drops"]["invalid"] < 2:  # the duplicate first fragment gives its set up
        out.append(f"the duplicated first fragment was not given up: {r}")
    for reason in ("malformed", "oversize", "table_full", "no_mbuf", "handoff_full"):
        if r["drops"][reason]:
            out.append(f"reassembly drops {reason}: {r}")
    ev = r["events"]
    if ev["handed"] != ev["received"] or (WORKERS_PORTS and ev["handed"] == 0):
        out.append(f"fragment hand-over: {ev}")
    return out


def check_workers_ports(stats, sent_down):
    """Two workers, two access ports: both at work, hand-overs all taken over."""
    out = []
    ws = stats.get("worker_stats", [])
    if len(ws) != 2 or stats.get("workers") != 2:
        return [f"expected two workers, got {stats.get('workers')}: {ws}"]
    for w in ws:
        if w["rx"] == 0:
            out.append(f"worker {w['worker']} received nothing: {ws}")
        if w["handoff_full"]:
            out.append(f"worker {w['worker']} dropped hand-overs: {w}")
    handed = sum(w["handed_downlink"] + w["handed_uplink"] for w in ws)
    received = sum(w["received_downlink"] + w["received_uplink"] for w in ws)
    if handed == 0 or handed != received:
        out.append(f"hand-overs: {handed} handed, {received} taken over")
    ports = stats["ports"]
    down = stats["downlink"]
    encapsulated = down["encapsulated"]
    # What the core host sent may lose a little in the af_packet rings of a busy host.
    if encapsulated < sent_down * 0.9:
        out.append(f"downlink: {encapsulated} of {sent_down} encapsulated ({down})")
    if ports["access"]["tx"] == 0 or ports["lte"]["tx"] == 0:
        out.append(f"the downlink did not leave by both access ports: {ports}")
    if ports["access"]["tx"] + ports["lte"]["tx"] != encapsulated:
        out.append(f"access ports sent {ports['access']['tx']} + {ports['lte']['tx']}, "
                   f"{encapsulated} encapsulated")
    if ports["lte"]["rx"] == 0:
        out.append(f"nothing received on the second access port: {ports}")
    print("workers:", ws)
    return out


if __name__ == "__main__":
    sys.exit(main())
