#!/usr/bin/python3
"""Flow policy with real traffic: the hybrid-access table (issue #8) through hag-control +
hag-dataplane + hag-magsim's data mode, links taken down and up (root only).

Topology (as multipath-magsim-data's, without the link emulator):

  core ns              gw ns                              anet ns      cpe ns (hag-magsim --data)
  2001:db8:9999::1 -- core0 |hag-dataplane| acc0 -- a0 [br0] a1 -- m0: dsl 2001:db8:aaaa::1 (bid 1, ATT 3)
                       hag-control (policy below)            a2 -- m1: lte 2001:db8:bbbb::1 (bid 2, ATT 8)

Policy (docs/policy.md): HTTP -> LTE, DSL, DROP; IPsec -> DSL, LTE, DROP; SSH -> DROP;
SIP -> LTE, DROP; the rest striped. Heartbeats every second (one miss takes a path down), so
cutting a2 in the access bridge takes the LTE path down within about two seconds, and putting it
back brings it up. magsim sends its uplink on DSL only (--pin-bid 1), so cutting LTE loses no
uplink. Checked in each state with the data plane's per-path and per-rule counters
(`hagctl dataplane paths|policy -o json`):
  both up:  HTTP (TCP from core port 80) arrives, all on LTE; SSH (TCP 22) never connects and
            its rule counts the drops (and the uplink SYNs as forbidden); SIP (UDP from 5060)
            arrives, all on LTE; IPsec (raw ESP) arrives on DSL;
  LTE down: HTTP arrives, all on DSL; SIP is dropped, counted on its rule; ESP still on DSL;
  LTE up:   HTTP back on LTE only.
Then run-time edits (docs/policy.md#run-time-edits): `hagctl policy show` carries the data
plane's per-rule counters; an invalid edit is refused with its reason; `hagctl policy rule
replace home HTTP RED BLUE DROP` moves the next HTTP transfer to DSL; hag-control restarts
(state directory in the test's temporary directory) and HTTP stays on DSL; `hagctl policy
revert` puts it back on LTE.
Then RFC 6089 flow bindings (docs/policy.md#flow-bindings): hag-magsim restarts with
--flow game=udp:7000>2 --flow sip=udp:5060>drop (no --pin-bid). hag-control accepts both
(the PBA's Flow Identification statuses), shows them with the binding (`hagctl bindings show`)
and programs the session's own profile, flows/<id>, merged with "home". Checked: UDP port 7000
goes on LTE both ways (downlink by the data plane, uplink by hag-magsim's mirror; the rest of
the uplink would be split); SIP, which "home" sends on LTE, is discarded both ways (the data
plane's rule "flow 2" counts the downlink drops, hag-magsim's up_flow_dropped the uplink ones).

usage: test_policy_traffic.py HAG_CONTROL HAG_DATAPLANE HAG_MAGSIM HAGCTL
"""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from netns import Topology, require_root, sh, udp_count, wait_for_line  # noqa: E402

LMA6 = "2001:db8:ff::1"
DSL6, LTE6 = "2001:db8:aaaa::1", "2001:db8:bbbb::1"
CORE6 = "2001:db8:9999::1"
PY = "/usr/bin/python3"

CONTROL_CONF = """
log {{ level: "warn" }}
lma_addresses: "{lma6}"
hnp_pools {{ name: "residential" prefix: "2001:db8:100::/40" assign_length: 64 }}
default_profile {{ multipath: true max_paths: 4 max_lifetime_seconds: 3600 }}
allow_unknown_subscribers: true
allow_unknown_mags: true
management_socket: "{tmp}/control.sock"
state_directory: "{tmp}/state"
state_fsync: "none"
dataplane_socket: "unix:{tmp}/programmer.sock"
heartbeat_interval_seconds: 1
heartbeat_missed_limit: 1
policy {{
  labels {{ name: "RED"  access_technology: 3 }}
  labels {{ name: "BLUE" access_technology: 8 }}
  applications {{ name: "HTTP"  match {{ protocol: 6 remote_ports: "80,443" }} }}
  applications {{ name: "IPsec" match {{ protocol: 50 }} }}
  applications {{ name: "SSH"   match {{ protocol: 6 remote_ports: "22" }} }}
  applications {{ name: "SIP"   match {{ protocol: 17 remote_ports: "5060-5061" }} }}
  profiles {{
    name: "home"
    rules {{ application: "HTTP"  preference: "BLUE" preference: "RED" preference: "DROP" }}
    rules {{ application: "IPsec" preference: "RED" preference: "BLUE" preference: "DROP" }}
    rules {{ application: "SSH"   preference: "DROP" }}
    rules {{ application: "SIP"   preference: "BLUE" preference: "DROP" }}
  }}
  default_profile: "home"
}}
"""

DATAPLANE_CONF = """
log {{ level: "info" }}
eal_args: ["--no-huge", "--no-pci", "-m", "512", "--file-prefix", "hag-itpol-{pid}",
           "-l", "0-1", "--log-level", "lib.*:warning", "--no-telemetry"]
ports {{ name: "core" device: "net_af_packet0,iface=core0" role: CORE
         next_hop_ipv6: "{core6}" addresses: "2001:db8:9999::fe" }}
ports {{ name: "access" device: "net_af_packet1,iface=acc0" role: ACCESS addresses: "{lma6}" }}
mbufs: 8191
max_sessions: 64
programmer_listen: "unix:{tmp}/programmer.sock"
idle_sleep_us: 20
"""

# A TCP server on the core host: sends `size` octets to whoever connects, then closes.
TCP_SERVER = r"""
import socket, sys
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1); s.settimeout(20)
print("listening", flush=True)
try:
    c, _ = s.accept()
except socket.timeout:
    print("no connection", flush=True); sys.exit(0)
c.sendall(bytes(int(sys.argv[3]))); c.close(); print("sent", flush=True)
"""
# The home side's client: connects, reads to the end; prints the octets or "failed".
TCP_CLIENT = r"""
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
    n = 0
    while True:
        d = c.recv(65536)
        if not d: break
        n += len(d)
    print(n)
except OSError as e:
    print("failed", e)
"""
# Datagrams from the core host: UDP from port 5060, or raw ESP (SPI 0x100).
SENDER = r"""
import socket, struct, sys, time
kind, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
if kind == "udp":
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind(("", 5060))
    for i in range(n):
        s.sendto(b"INVITE sip:x %d" % i, (dst, 5060)); time.sleep(0.002)
else:
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 50)
    for i in range(n):
        s.sendto(struct.pack("!II", 0x100, i + 1) + bytes(32), (dst, 0)); time.sleep(0.002)
"""
RECEIVER = r"""
import socket, sys
kind, dst = sys.argv[1], sys.argv[2]
if kind == "udp":
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind((dst, 5060))
else:
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 50)
s.settimeout(1.5); n = 0
print("ready", flush=True)
try:
    while True:
        s.recvfrom(2000); n += 1
except socket.timeout:
    pass
print(n, flush=True)
"""


class Check:
    def __init__(self, hagctl, tmp):
        self.hagctl, self.tmp, self.failures = hagctl, tmp, []

    def fail(self, what):
        print("FAIL:", what, flush=True)
        self.failures.append(what)

    def dp(self, what):
        r = subprocess.run([self.hagctl, "--dataplane", f"unix:{self.tmp}/programmer.sock",
                            "dataplane", what, "--all", "-o", "json"],
                           capture_output=True, text=True, timeout=20)
        return json.loads(r.stdout)["sessions"]

    def downlink(self):
        """{bid: downlink packets} of the one session."""
        s = self.dp("paths")[0]
        return {p["bid"]: int(p["downlink_packets"]) for p in s["paths"]}

    def live(self):
        """{bid: live} of the one session."""
        s = self.dp("paths")[0]
        return {p["bid"]: p["live"] for p in s["session"]["paths"]}

    def uplink(self):
        """{bid: uplink packets} of the one session."""
        s = self.dp("paths")[0]
        return {p["bid"]: int(p.get("uplink_packets", 0)) for p in s["paths"]}

    def rules(self):
        """{application: (hits, drops, uplink_forbidden)} of the session's profile."""
        s = self.dp("policy")[0]
        return {r["application"]: (int(r["hits"]), int(r["drops"]), int(r["uplink_forbidden"]))
                for r in s["policy"]["rules"]}


def delta(before, after):
    return {b: after[b] - before.get(b, 0) for b in after}


def http(core, cpe, home, size=300_000):
    srv = subprocess.Popen(["ip", "netns", "exec", core, PY, "-c", TCP_SERVER, CORE6, "80",
                            str(size)], stdout=subprocess.PIPE, text=True)
    try:
        if not wait_for_line(srv, "listening", 15):
            return "server did not start"
        r = subprocess.run(["ip", "netns", "exec", cpe, PY, "-c", TCP_CLIENT, CORE6, "80", "10"],
                           capture_output=True, text=True, timeout=60)
        return r.stdout.strip()
    finally:
        srv.kill()
        srv.wait()


def ssh(core, cpe):
    srv = subprocess.Popen(["ip", "netns", "exec", core, PY, "-c", TCP_SERVER, CORE6, "22",
                            "1000"], stdout=subprocess.PIPE, text=True)
    try:
        if not wait_for_line(srv, "listening", 15):
            return "server did not start"
        r = subprocess.run(["ip", "netns", "exec", cpe, PY, "-c", TCP_CLIENT, CORE6, "22", "3"],
                           capture_output=True, text=True, timeout=60)
        return r.stdout.strip()
    finally:
        srv.kill()
        srv.wait()


def datagrams(kind, core, cpe, home, n):
    rcv = subprocess.Popen(["ip", "netns", "exec", cpe, PY, "-c", RECEIVER, kind, home],
                           stdout=subprocess.PIPE, text=True)
    if rcv.stdout.readline().strip() != "ready":
        rcv.wait(timeout=20)
        return 0
    sh(PY, "-c", SENDER, kind, home, str(n), ns=core)
    return int(rcv.communicate(timeout=20)[0].strip() or 0)


def wait_live(c, bid, want, timeout=8):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if c.live().get(bid, False) == want:
            return True
        time.sleep(0.2)
    return False


def main():
    require_root()
    control, dataplane, magsim, hagctl = sys.argv[1:5]
    topo = Topology("policydp")
    core, gw, anet, cpe = (topo.ns(n) for n in ("core", "gw", "anet", "cpe"))
    for ns in (core, gw, anet, cpe):
        for conf in ("all", "default"):
            sh("sysctl", "-qw", f"net.ipv6.conf.{conf}.accept_dad=0", ns=ns)
    topo.veth(core, "eth0", gw, "core0")
    topo.veth(gw, "acc0", anet, "a0")
    topo.veth(anet, "a1", cpe, "m0")
    topo.veth(anet, "a2", cpe, "m1")
    for dev in ("core0", "acc0"):
        sh("sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1", ns=gw)
        sh("ip", "link", "set", "dev", dev, "arp", "off", ns=gw)
    sh("ip", "link", "add", "br0", "type", "bridge", ns=anet)
    for dev in ("a0", "a1", "a2"):
        sh("ip", "link", "set", dev, "master", "br0", ns=anet)
    sh("ip", "link", "set", "br0", "up", ns=anet)
    sh("ip", "-6", "addr", "add", CORE6 + "/64", "dev", "eth0", "nodad", ns=core)
    sh("ip", "-6", "route", "add", "2001:db8:100::/40", "via", "2001:db8:9999::fe", "mtu", "1400",
       ns=core)
    sh("ip", "-6", "addr", "add", DSL6 + "/64", "dev", "m0", "nodad", ns=cpe)
    sh("ip", "-6", "addr", "add", LTE6 + "/64", "dev", "m1", "nodad", ns=cpe)
    sh("ip", "-6", "route", "add", LMA6 + "/128", "dev", "m0", "metric", "1", ns=cpe)
    sh("ip", "-6", "route", "add", LMA6 + "/128", "dev", "m1", "metric", "2", ns=cpe)

    tmp = topo.tmpdir("hag-itpol-")
    dconf = os.path.join(tmp, "dataplane.conf")
    with open(dconf, "w") as f:
        f.write(DATAPLANE_CONF.format(pid=os.getpid(), core6=CORE6, lma6=LMA6, tmp=tmp))
    dp = topo.spawn(gw, dataplane, "-c", dconf, stdout=subprocess.PIPE)
    assert wait_for_line(dp, "ready", 60), "hag-dataplane did not start"
    sh("ip", "-6", "addr", "add", "2001:db8:9999::fe/64", "dev", "hag-core", "nodad", ns=gw)
    sh("ip", "-6", "addr", "add", LMA6 + "/128", "dev", "hag-access", "nodad", ns=gw)
    for net in ("2001:db8:aaaa::/64", "2001:db8:bbbb::/64"):
        sh("ip", "-6", "route", "add", net, "dev", "hag-access", ns=gw)

    cconf = os.path.join(tmp, "control.conf")
    with open(cconf, "w") as f:
        f.write(CONTROL_CONF.format(lma6=LMA6, tmp=tmp))
    ctl = topo.spawn(gw, control, "-c", cconf, stdout=subprocess.PIPE)
    assert wait_for_line(ctl, "hag-control ready", 30), "hag-control did not start"

    ms = subprocess.Popen(["ip", "netns", "exec", cpe, magsim, "register", "--lma", LMA6,
                           "--nai", "cpe1@example.net", "--access", "dsl:m0:1",
                           "--access", "lte:m1:2", "--data", "--tun", "magsim0", "--pin-bid", "1",
                           "--route", "2001:db8:9999::/64"],
                          stdout=subprocess.PIPE, text=True)
    topo.procs.append(ms)
    lines = []
    end = time.monotonic() + 60
    while time.monotonic() < end:
        line = ms.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "data mode: ready" in line:
            break
    hnps = re.findall(r"registration: accepted \(0\) hnp=([0-9a-f:]+)::/64", "".join(lines))
    if len(hnps) != 2 or len(set(hnps)) != 1:
        print("FAIL: the two accesses registered with one HNP:", lines)
        return 1
    home = hnps[0] + "::1"
    # magsim's output is not read from here on: keep its pipe drained.
    subprocess.Popen(["cat"], stdin=ms.stdout, stdout=subprocess.DEVNULL)

    c = Check(hagctl, tmp)
    ok = False
    for _ in range(40):
        r = subprocess.run(["ip", "netns", "exec", core, "ping", "-6", "-c", "1", "-W", "1", home],
                           capture_output=True, text=True)
        if r.returncode == 0:
            ok = True
            break
        time.sleep(0.25)
    if not ok:
        c.fail(f"ping {home} from the core host never passed")
        return 1
    if not (wait_live(c, 1, True) and wait_live(c, 2, True)):
        c.fail(f"both paths live: {c.live()}")

    # ---- both up ----
    d0 = c.downlink()
    got = http(core, cpe, home)
    d1 = c.downlink()
    print("both up, HTTP:", got, "downlink by bid", delta(d0, d1), flush=True)
    if got != "300000":
        c.fail(f"HTTP with both up: {got}")
    if delta(d0, d1)[1] != 0 or delta(d0, d1)[2] < 100:
        c.fail(f"HTTP with both up not all on LTE (bid 2): {delta(d0, d1)}")
    r0 = c.rules()
    got = ssh(core, cpe)
    r1 = c.rules()
    print("both up, SSH:", got, "rules", r1["SSH"], flush=True)
    if not got.startswith("failed"):
        c.fail(f"SSH connected: {got}")
    if r1["SSH"][1] - r0["SSH"][1] < 1 or r1["SSH"][2] - r0["SSH"][2] < 1:
        c.fail(f"SSH drops / forbidden uplink not counted: {r0['SSH']} -> {r1['SSH']}")
    d0 = c.downlink()
    n = datagrams("udp", core, cpe, home, 50)
    d1 = c.downlink()
    print("both up, SIP:", n, "of 50, downlink by bid", delta(d0, d1), flush=True)
    if n < 45 or delta(d0, d1)[1] != 0 or delta(d0, d1)[2] < n:
        c.fail(f"SIP with both up: {n} of 50 arrived, downlink by bid {delta(d0, d1)}")
    d0 = c.downlink()
    n = datagrams("esp", core, cpe, home, 50)
    d1 = c.downlink()
    print("both up, ESP:", n, "of 50, downlink by bid", delta(d0, d1), flush=True)
    if n < 45 or delta(d0, d1)[2] != 0 or delta(d0, d1)[1] < n:
        c.fail(f"IPsec with both up: {n} of 50 arrived, downlink by bid {delta(d0, d1)}")

    # ---- LTE down ----
    sh("ip", "link", "set", "a2", "down", ns=anet)
    if not wait_live(c, 2, False):
        c.fail("the LTE path did not go down")
    d0 = c.downlink()
    r0 = c.rules()
    got = http(core, cpe, home)
    d1 = c.downlink()
    print("LTE down, HTTP:", got, "downlink by bid", delta(d0, d1), flush=True)
    if got != "300000" or delta(d0, d1)[2] != 0 or delta(d0, d1)[1] < 100:
        c.fail(f"HTTP with LTE down: {got}, downlink by bid {delta(d0, d1)}")
    n = datagrams("udp", core, cpe, home, 50)
    r1 = c.rules()
    print("LTE down, SIP:", n, "of 50; SIP drops", r1["SIP"][1] - r0["SIP"][1], flush=True)
    if n != 0 or r1["SIP"][1] - r0["SIP"][1] < 50:
        c.fail(f"SIP with LTE down: {n} arrived, rule drops {r0['SIP']} -> {r1['SIP']}")
    n = datagrams("esp", core, cpe, home, 20)
    if n < 18:
        c.fail(f"IPsec with LTE down: {n} of 20 arrived")

    # ---- LTE up again ----
    sh("ip", "link", "set", "a2", "up", ns=anet)
    if not wait_live(c, 2, True):
        c.fail("the LTE path did not come back")
    d0 = c.downlink()
    got = http(core, cpe, home)
    d1 = c.downlink()
    print("LTE up, HTTP:", got, "downlink by bid", delta(d0, d1), flush=True)
    if got != "300000" or delta(d0, d1)[1] != 0 or delta(d0, d1)[2] < 100:
        c.fail(f"HTTP with LTE back: {got}, downlink by bid {delta(d0, d1)}")

    r = subprocess.run([hagctl, "--dataplane", f"unix:{tmp}/programmer.sock", "dataplane",
                        "policy"], capture_output=True, text=True, timeout=20)
    print(r.stdout)
    ctl = runtime_edit(c, topo, control, cconf, ctl, gw, core, cpe, home)
    topo.stop(ms)
    flow_bindings(c, topo, magsim, hagctl, tmp, core, cpe, home)
    topo.stop(ctl)
    topo.stop(dp)
    return 1 if c.failures else 0


def runtime_edit(c, topo, control, cconf, ctl, gw, core, cpe, home):
    """`hagctl policy` edits at run time move real traffic, survive a hag-control restart, and
    `hagctl policy revert` brings the file's policy back (docs/policy.md#run-time-edits)."""
    def hag(*args):
        return subprocess.run([c.hagctl, "--server", f"unix:{c.tmp}/control.sock",
                               "--dataplane", f"unix:{c.tmp}/programmer.sock", *args],
                              capture_output=True, text=True, timeout=20)

    def show(*args):
        r = hag("-o", "json", "policy", "show", *args)
        try:
            return json.loads(r.stdout)
        except ValueError:
            c.fail(f"hagctl policy show {args}: {r.stdout} {r.stderr}")
            return {}

    def http_on(bid, when):
        # The edit reaches the data plane with the pusher's resync: wait for the new rule.
        end = time.monotonic() + 10
        want = "BLUE" if bid == 2 else "RED"
        while time.monotonic() < end:
            v = show("cpe1@example.net")
            rules = {r["application"]: r for r in v.get("profiles", [{}])[0].get("rules", [])}
            if rules.get("HTTP", {}).get("preference", [""])[0] == want and \
                    hag("dataplane", "check").returncode == 0:
                break
            time.sleep(0.2)
        d0 = c.downlink()
        got = http(core, cpe, home)
        d1 = c.downlink()
        print(f"{when}, HTTP:", got, "downlink by bid", delta(d0, d1), flush=True)
        other = 1 if bid == 2 else 2
        if got != "300000" or delta(d0, d1)[other] != 0 or delta(d0, d1)[bid] < 100:
            c.fail(f"HTTP {when}: {got}, downlink by bid {delta(d0, d1)} (wanted bid {bid})")

    # The data plane's counters in `hagctl policy show` (the subscriber's and the whole policy).
    v = show("cpe1@example.net")
    prof = v.get("profiles", [{}])[0]
    rules = {r["application"]: r for r in prof.get("rules", [])}
    if not prof.get("counters") or int(rules.get("HTTP", {}).get("hits", 0)) < 100 or \
            int(rules.get("SIP", {}).get("drops", 0)) < 50:
        c.fail(f"hagctl policy show NAI without the data plane's counters: {prof}")
    v = show()
    if not v.get("profiles") or not v["profiles"][0].get("counters"):
        c.fail(f"hagctl policy show without the data plane's counters: {v}")
    print(hag("policy", "show", "cpe1@example.net").stdout, flush=True)

    # A refused edit names the field and changes nothing.
    r = hag("policy", "rule", "replace", "home", "HTTP", "RED", "BLUE")
    print("refused edit:", r.returncode, r.stderr.strip(), flush=True)
    if r.returncode != 1 or "must end in DROP or STRIPE" not in r.stderr:
        c.fail(f"an invalid edit was not refused with its reason: {r.returncode} {r.stderr}")

    # HTTP to DSL first: the next connection goes on DSL.
    r = hag("policy", "rule", "replace", "home", "HTTP", "RED", "BLUE", "DROP")
    print(r.stdout, r.stderr, flush=True)
    if r.returncode != 0 or "rule HTTP of profile home replaced" not in r.stdout:
        c.fail(f"hagctl policy rule replace: {r.returncode} {r.stdout} {r.stderr}")
    http_on(1, "after the run-time edit (HTTP -> RED, BLUE, DROP)")

    # hag-control restarts: the edit comes back from the state directory.
    topo.stop(ctl)
    ctl = topo.spawn(gw, control, "-c", cconf, stdout=subprocess.PIPE)
    if not wait_for_line(ctl, "hag-control ready", 30):
        c.fail("hag-control did not restart")
        return ctl
    if not (wait_live(c, 1, True) and wait_live(c, 2, True)):
        c.fail(f"both paths live after the restart: {c.live()}")
    v = show()
    if "profile home replaced" not in v.get("runtime_edits", []):
        c.fail(f"the run-time edit did not survive the restart: {v.get('runtime_edits')}")
    http_on(1, "after a hag-control restart")

    # Back to the file's policy.
    r = hag("policy", "revert")
    if r.returncode != 0:
        c.fail(f"hagctl policy revert: {r.stdout} {r.stderr}")
    http_on(2, "after hagctl policy revert")
    return ctl


def flow_bindings(c, topo, magsim, hagctl, tmp, core, cpe, home):
    """The same subscriber again, now signalling RFC 6089 flow bindings."""
    stats = os.path.join(tmp, "magsim-flows.json")
    ms = subprocess.Popen(["ip", "netns", "exec", cpe, magsim, "register", "--lma", LMA6,
                           "--nai", "cpe1@example.net", "--access", "dsl:m0:1",
                           "--access", "lte:m1:2", "--data", "--tun", "magsim0",
                           "--route", "2001:db8:9999::/64", "--stats", stats,
                           "--flow", "game=udp:7000>2", "--flow", "sip=udp:5060>drop"],
                          stdout=subprocess.PIPE, text=True)
    topo.procs.append(ms)
    lines = []
    end = time.monotonic() + 60
    while time.monotonic() < end:
        line = ms.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "data mode: ready" in line:
            break
    out = "".join(lines)
    print(out, end="", flush=True)
    # The second PBU (bid 2) carries both bindings; both accepted.
    if "bid=2 flow bindings: fid 1: flow binding successful (0), fid 2: flow binding " \
       "successful (0)" not in out:
        c.fail("the PBA did not accept both flow bindings")
    subprocess.Popen(["cat"], stdin=ms.stdout, stdout=subprocess.DEVNULL)
    r = subprocess.run([hagctl, "--server", f"unix:{tmp}/control.sock", "bindings", "show",
                        "cpe1@example.net"], capture_output=True, text=True, timeout=20)
    print(r.stdout, flush=True)
    if "Flow bindings (RFC 6089)" not in r.stdout or "forward bid 2" not in r.stdout or \
       "discard" not in r.stdout:
        c.fail(f"hagctl bindings show: {r.stdout} {r.stderr}")
    if not (wait_live(c, 1, True) and wait_live(c, 2, True)):
        c.fail(f"both paths live again: {c.live()}")
    # The session's own profile is programmed once the PBA is out: wait for its rules.
    end = time.monotonic() + 10
    while time.monotonic() < end and "flow 1" not in c.rules():
        time.sleep(0.2)
    # UDP 7000 both ways on LTE.
    d0 = c.downlink()
    n = udp_count(core, cpe, home, 50, 200, sport=7000)
    d1 = c.downlink()
    print("flow bindings, UDP 7000 down:", n, "of 50, by bid", delta(d0, d1), flush=True)
    if n < 45 or delta(d0, d1).get(1, 0) != 0 or delta(d0, d1).get(2, 0) < n:
        c.fail(f"UDP 7000 downlink not on LTE: {n} of 50, by bid {delta(d0, d1)}")
    u0 = c.uplink()
    n = udp_count(cpe, core, CORE6, 50, 200)
    u1 = c.uplink()
    print("flow bindings, UDP 7000 up:", n, "of 50, by bid", delta(u0, u1), flush=True)
    if n < 45 or delta(u0, u1).get(1, 0) > 2 or delta(u0, u1).get(2, 0) < n:
        c.fail(f"UDP 7000 uplink not on LTE: {n} of 50, by bid {delta(u0, u1)}")
    # SIP discarded both ways ("home" alone would send it on LTE).
    r0 = c.rules()
    n = datagrams("udp", core, cpe, home, 30)
    r1 = c.rules()
    print("flow bindings, SIP down:", n, "of 30; flow 2", r0.get("flow 2"), "->",
          r1.get("flow 2"), flush=True)
    if n != 0 or r1["flow 2"][1] - r0["flow 2"][1] < 30:
        c.fail(f"SIP downlink not discarded: {n} arrived, rule {r0.get('flow 2')} -> "
               f"{r1.get('flow 2')}")
    sh(PY, "-c", SENDER, "udp", CORE6, "20", ns=cpe)
    topo.stop(ms)
    try:
        with open(stats) as f:
            st = json.load(f)["session"]
    except (OSError, ValueError, KeyError) as e:
        c.fail(f"hag-magsim stats: {e}")
        return
    print("hag-magsim uplink: pinned", st["up_flow_pinned"], "dropped", st["up_flow_dropped"],
          flush=True)
    if st["up_flow_dropped"] < 20 or st["up_flow_pinned"] < 45:
        c.fail(f"hag-magsim's uplink mirror: {st}")


if __name__ == "__main__":
    sys.exit(main())
