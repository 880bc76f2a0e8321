#!/usr/bin/python3
"""hag-control programs a real hag-dataplane; subscribers registered by hag-magsim get traffic.

Topology (network namespaces, veth pairs, documentation addresses only):

  core host ns           gateway ns                                          home router ns
  2001:db8:9999::1 -- core0 | hag-dataplane (net_af_packet) | acc0 --  2001:db8:aaaa::1 (CoA)
                           hag-core TAP 2001:db8:9999::fe                 hag-magsim (MAG)
                           hag-access TAP 2001:db8:ff::1 (LMA)            gre_peer.py (TUN + GRE)
                           hag-control: signalling on 2001:db8:ff::1,
                           programs hag-dataplane over its unix socket

Signalling takes the production path: hag-magsim's PBUs cross hag-dataplane's access port, are
punted to the hag-access TAP, and reach hag-control's raw MH socket; PBAs go back the same way.
The home router's tunnel end is a Linux kernel ip6gre tunnel with keys and sequence numbers
(okey = the uplink key, ikey = the downlink key, oseq / iseq) where the kernel has ip6gre, and
otherwise its substitute, tests/integration/lib/gre_peer.py (userspace GRE on a TUN device; the
development and CI kernels have no GRE): either way an implementation independent of hag,
started with the keys and prefix that `hagctl bindings show` reports. The log says which.

Checked, with `hagctl dataplane check` (digests of control and data plane) at each step:
1. a registration is programmed; UDP both ways and a TCP transfer (echoed) cross the tunnel;
2. kill -9 hag-dataplane, restart it: hag-control resyncs, the data plane's digest equals the
   one before the kill, traffic resumes;
3. kill -9 hag-control (hag-magsim paused so nobody re-registers): the data plane keeps its
   last state and forwards; hag-control restarted holds the state (start-up hold, counter
   dataplane.holding, the digest unchanged) and traffic still flows; hag-magsim resumed sees
   the new restart counter in a heartbeat and re-registers, which ends the hold: one resync,
   digests agree, traffic flows (with the keys hagctl now reports);
4. a burst of registrations (hag-magsim load mode) converges: the data plane holds as many
   sessions as the binding cache and the digests agree.
Root only (exit 77 otherwise).

usage: test_control_dataplane.py HAG_DATAPLANE HAG_CONTROL HAG_MAGSIM HAGCTL GRE_PEER [BURST]
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from netns import Topology, require_root, sh, udp_count, wait_for_line  # noqa: E402

PY = "/usr/bin/python3"
LMA6, COA6, CORE6 = "2001:db8:ff::1", "2001:db8:aaaa::1", "2001:db8:9999::1"
POOL = "2001:db8:100::/40"

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def wait_for(pred, seconds, step=0.25):
    """Polls pred until it returns something true, at most `seconds` (a bound, not a timing
    assertion); returns the last value."""
    end = time.monotonic() + seconds
    v = pred()
    while not v and time.monotonic() < end:
        time.sleep(step)
        v = pred()
    return v


# TCP echo through the tunnel: the core host echoes what the home router sends.
TCP_SERVER = r"""
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 7001)); s.listen(1); s.settimeout(30)
print("listening", flush=True)
c, _ = s.accept(); c.settimeout(30)
while True:
    b = c.recv(65536)
    if not b:
        break
    c.sendall(b)
c.close()
"""
TCP_CLIENT = r"""
import hashlib, os, socket, sys, threading
data = os.urandom(int(sys.argv[2]))
c = socket.create_connection((sys.argv[1], 7001), timeout=30)
got = bytearray()
def rd():
    while True:
        b = c.recv(65536)
        if not b:
            break
        got.extend(b)
t = threading.Thread(target=rd); t.start()
c.sendall(data); c.shutdown(socket.SHUT_WR); t.join(60)
print(len(got), hashlib.sha256(bytes(got)).hexdigest() == hashlib.sha256(data).hexdigest())
"""


class Setup:
    def __init__(self, args):
        self.dataplane, self.control, self.magsim, self.hagctl_path, self.gre_peer = args[:5]
        self.burst = int(args[5]) if len(args) > 5 else 5000
        self.topo = Topology("e2e")
        t = self.topo
        self.core, self.gw, self.cpe = t.ns("core"), t.ns("gw"), t.ns("cpe")
        t.veth(self.core, "eth0", self.gw, "core0")
        t.veth(self.cpe, "eth0", self.gw, "acc0")
        for dev in ("core0", "acc0"):  # the gateway kernel stays off hag's ports
            sh("sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1", ns=self.gw)
            sh("ip", "link", "set", "dev", dev, "arp", "off", ns=self.gw)
        for ns in (self.gw, self.cpe):
            for conf in ("all", "default"):
                sh("sysctl", "-qw", f"net.ipv6.conf.{conf}.accept_dad=0", ns=ns)
        sh("ip", "-6", "addr", "add", CORE6 + "/64", "dev", "eth0", "nodad", ns=self.core)
        sh("ip", "-6", "route", "add", POOL, "via", "2001:db8:9999::fe", ns=self.core)
        sh("ip", "-6", "addr", "add", COA6 + "/64", "dev", "eth0", "nodad", ns=self.cpe)
        sh("ip", "-6", "route", "add", LMA6 + "/128", "dev", "eth0", ns=self.cpe)
        self.tmp = tempfile.mkdtemp(prefix="hag-e2e-")
        self.dpsock = os.path.join(self.tmp, "dataplane.sock")
        self.ctlsock = os.path.join(self.tmp, "control.sock")
        self.dp = self.daemon = self.sim = self.peer = None
        self.dp_runs = 0
        self.control_log = open(os.path.join(self.tmp, "control.log"), "w+")
        self.sim_lines = []
        self.peer_key = None
        self.peer_n = 0
        self.kernel = None  # the kernel has ip6gre (probed on first use)

    # -- processes ------------------------------------------------------------------------
    def start_dataplane(self):
        self.dp_runs += 1
        conf = os.path.join(self.tmp, f"dataplane{self.dp_runs}.conf")
        with open(conf, "w") as f:
            f.write(f"""
log {{ level: "info" }}
eal_args: ["--no-huge", "--no-pci", "-m", "512", "--file-prefix",
           "hag-e2e-{os.getpid()}-{self.dp_runs}", "-l", "0-1", "--log-level", "lib.*:warning",
           "--no-telemetry"]
ports {{ name: "core" device: "net_af_packet0,iface=core0" role: CORE
         next_hop_ipv6: "{CORE6}" addresses: "2001:db8:9999::fe" }}
ports {{ name: "access" device: "net_af_packet1,iface=acc0" role: ACCESS addresses: "{LMA6}" }}
mbufs: 8191
max_sessions: {max(1024, 2 * self.burst + 64)}
programmer_listen: "unix:{self.dpsock}"
idle_sleep_us: 20
""")
        self.dp = self.topo.spawn(self.gw, self.dataplane, "-c", conf, stdout=subprocess.PIPE)
        assert wait_for_line(self.dp, "ready", 60), "hag-dataplane did not start"
        threading.Thread(target=lambda p=self.dp: [None for _ in p.stdout], daemon=True).start()
        sh("ip", "-6", "addr", "add", "2001:db8:9999::fe/64", "dev", "hag-core", "nodad", ns=self.gw)
        sh("ip", "-6", "addr", "add", LMA6 + "/128", "dev", "hag-access", "nodad", ns=self.gw)
        sh("ip", "-6", "route", "add", "2001:db8:aaaa::/64", "dev", "hag-access", ns=self.gw)

    def start_control(self):
        conf = os.path.join(self.tmp, "control.conf")
        with open(conf, "w") as f:
            f.write(f"""
log {{ level: "info" }}
lma_addresses: "{LMA6}"
hnp_pools {{ name: "residential" prefix: "{POOL}" assign_length: 64 }}
default_profile {{ multipath: true max_paths: 4 max_lifetime_seconds: 3600 }}
allow_unknown_subscribers: true
allow_unknown_mags: true
limits {{ max_sessions: {2 * self.burst + 64} per_mag_pbu_per_second: 20000 }}
management_socket: "{self.ctlsock}"
dataplane_socket: "unix:{self.dpsock}"
heartbeat_interval_seconds: 5
dataplane_resync_hold_seconds: 120
# Persistence off: this test exercises the start-up hold (an empty cache after kill -9); the
# restored-cache path is control-persistence's.
persistence: false
""")
        self.daemon = subprocess.Popen(["ip", "netns", "exec", self.gw, self.control, "-c", conf],
                                       stdout=subprocess.PIPE, stderr=self.control_log, text=True)
        self.topo.procs.append(self.daemon)
        check(self.daemon.stdout.readline().strip() == "hag-control ready", "hag-control ready")

    def start_magsim(self):
        self.sim = subprocess.Popen(
            ["ip", "netns", "exec", self.cpe, self.magsim, "register", "--lma", LMA6,
             "--nai", "cpe1@example.net", "--mag-id", "mag1@example.net",
             "--access", f"dsl:{COA6}:1", "--down-kbps", "50000", "--up-kbps", "10000",
             "--hold", "3600", "--heartbeat", "1", "--retransmissions", "10"],
            stdout=subprocess.PIPE, text=True)
        self.topo.procs.append(self.sim)

        def read():
            for line in self.sim.stdout:
                self.sim_lines.append(line.strip())
                print("magsim:", line.strip(), flush=True)
        threading.Thread(target=read, daemon=True).start()

    def kernel_gre(self):
        """True when this kernel can make an ip6gre device (probed once, in the cpe namespace)."""
        if self.kernel is None:
            r = subprocess.run(["ip", "netns", "exec", self.cpe, "ip", "link", "add", "hagprobe",
                                "type", "ip6gre", "local", COA6, "remote", LMA6],
                               capture_output=True, text=True)
            self.kernel = r.returncode == 0
            if self.kernel:
                sh("ip", "link", "del", "hagprobe", ns=self.cpe)
                print("home router data plane: the kernel's ip6gre (keys, sequence numbers)")
            else:
                print("home router data plane: this kernel has no ip6gre "
                      f"({r.stderr.strip()}); using its substitute, gre_peer.py")
        return self.kernel

    def start_peer(self, binding):
        """The home router's tunnel with the binding's keys; made again only when they or the
        prefix change."""
        hnp = binding["home_prefixes"][0].split("/")[0]
        key = (hnp, binding["uplink_gre_key"], binding["paths"][0]["downlink_gre_key"])
        if self.peer_key == key:
            return
        self.peer_n += 1
        self.peer_key = key
        self.host = hnp + "42"  # 2001:db8:100:: + 42
        if self.kernel_gre():
            sh("ip", "link", "del", "hagtun", ns=self.cpe, check=False, capture=True)
            sh("ip", "link", "add", "hagtun", "type", "ip6gre", "local", COA6, "remote", LMA6,
               "okey", str(key[1]), "ikey", str(key[2]), "oseq", "iseq", ns=self.cpe)
            sh("ip", "link", "set", "hagtun", "mtu", "1400", "up", ns=self.cpe)
            sh("ip", "-6", "addr", "add", self.host + "/64", "dev", "hagtun", "nodad",
               ns=self.cpe)
            sh("ip", "-6", "route", "add", "2001:db8:9999::/64", "dev", "hagtun", ns=self.cpe)
            print(f"kernel ip6gre: {self.host}, uplink key {hex(key[1])}, "
                  f"downlink key {hex(key[2])}")
            return
        if self.peer is not None:
            self.topo.stop(self.peer)
        self.peer = self.topo.spawn(
            self.cpe, self.gre_peer, "--tun", "hagtun", "--tun-addr", self.host + "/64",
            "--route", "2001:db8:9999::/64", "--local", COA6, "--remote", LMA6,
            "--out-key", hex(key[1]), "--in-key", hex(key[2]),
            "--stats", os.path.join(self.tmp, f"peer{self.peer_n}.json"), stdout=subprocess.PIPE)
        assert wait_for_line(self.peer, "ready", 20), "gre_peer did not start"
        print(f"gre_peer: {self.host}, uplink key {hex(key[1])}, downlink key {hex(key[2])}")

    # -- hagctl ---------------------------------------------------------------------------
    def hagctl(self, *args, timeout=60):
        return subprocess.run([self.hagctl_path, "-s", "unix:" + self.ctlsock,
                               "--dataplane", "unix:" + self.dpsock] + list(args),
                              capture_output=True, text=True, timeout=timeout)

    def js(self, *args):
        r = self.hagctl("-o", "json", *args)
        try:
            return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else None
        except json.JSONDecodeError:
            return None

    def counters(self):
        c = self.js("counters") or {"counters": []}
        return {x["name"]: int(x["value"]) for x in c["counters"]}

    def dp_digest(self):
        """(generation, sessions, digest) the data plane reports, from hagctl's check."""
        r = self.hagctl("-o", "json", "dataplane", "check")
        try:
            d = json.loads(r.stdout)["dataplane"]
        except (json.JSONDecodeError, KeyError):
            return None
        return int(d.get("generation", 0)), int(d.get("sessions", 0)), int(d.get("digest", 0))

    def dp_state(self):
        """(generation, sessions as programmed) from the data plane alone (hag-control may be
        down): its Status and ListSessions, traffic counters left out."""
        st = self.js("dataplane", "status")
        ls = self.js("dataplane", "sessions", "--all", "--limit", "1000")
        if st is None or ls is None:
            return None
        return int(st.get("generation", 0)), [x["session"] for x in ls.get("sessions", [])]

    def in_sync(self):
        r = self.hagctl("dataplane", "check")
        return r.returncode == 0 and r.stdout.startswith("in sync")

    def binding(self):
        b = self.js("bindings", "show", "cpe1@example.net")
        return b if b and b.get("paths") and b.get("home_prefixes") else None

    # -- traffic --------------------------------------------------------------------------
    def ping(self, tries=20):
        for _ in range(tries):
            r = subprocess.run(["ip", "netns", "exec", self.core, "ping", "-6", "-c", "1", "-W",
                                "1", self.host], capture_output=True, timeout=10)
            if r.returncode == 0:
                return True
        return False

    def udp(self, n=100):
        down = udp_count(self.core, self.cpe, self.host, n, 500)
        up = udp_count(self.cpe, self.core, CORE6, n, 500)
        return down, up

    def tcp(self, size=512 * 1024):
        srv = subprocess.Popen(["ip", "netns", "exec", self.core, PY, "-c", TCP_SERVER, CORE6],
                               stdout=subprocess.PIPE, text=True)
        self.topo.procs.append(srv)
        srv.stdout.readline()
        r = subprocess.run(["ip", "netns", "exec", self.cpe, PY, "-c", TCP_CLIENT, CORE6,
                            str(size)], capture_output=True, text=True, timeout=90)
        self.topo.stop(srv)
        out = r.stdout.split()
        return r.returncode == 0 and len(out) == 2 and int(out[0]) == size and out[1] == "True"

    def traffic(self, what):
        check(self.ping(), f"{what}: ping through the tunnel")
        down, up = self.udp()
        check(down >= 95 and up >= 95, f"{what}: UDP {down}/100 down, {up}/100 up")


def main():
    require_root()
    s = Setup(sys.argv[1:])
    try:
        run(s)
    finally:
        s.control_log.seek(0)
        print("---- hag-control log (last 60 lines, registrations left out) ----")
        lines = [l for l in s.control_log.read().splitlines() if "registered from MAG" not in l]
        print("\n".join(lines[-60:]))
        s.topo.close()
        subprocess.run(["rm", "-rf", s.tmp])
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


def run(s):
    s.start_dataplane()
    s.start_control()
    check(wait_for(lambda: s.counters().get("dataplane.connected") == 1, 20),
          "hag-control connected to hag-dataplane")

    # 1. Registration -> programmed -> traffic both ways, UDP and TCP.
    s.start_magsim()
    b = wait_for(s.binding, 30)
    if not check(b is not None, "hag-magsim registered cpe1 through the data plane's exception path"):
        return
    check(wait_for(s.in_sync, 20), "hagctl dataplane check: in sync after the registration")
    s.start_peer(b)
    s.traffic("registered")
    check(s.tcp(), "registered: TCP transfer of 512 KiB echoed intact through the tunnel")
    before = s.dp_digest()
    print("data plane (generation, sessions, digest):", before)
    check(before is not None and before[1] == 1, "the data plane holds one session")

    # 2. kill -9 hag-dataplane, restart: state returns, traffic resumes.
    s.dp.kill()
    s.dp.wait()
    check(wait_for(lambda: s.counters().get("dataplane.connected") == 0, 20),
          "hag-control sees the data plane gone")
    s.start_dataplane()
    after = wait_for(lambda: (lambda d: d if d and d[1:] == before[1:] else None)(s.dp_digest()),
                     60)
    print("restarted data plane:", after)
    check(after is not None, "restarted data plane: same sessions and digest as before the kill")
    check(wait_for(s.in_sync, 20), "in sync after the data plane restart")
    s.traffic("after the data plane restart")
    check(s.tcp(), "after the data plane restart: TCP transfer echoed intact")

    # 3. kill -9 hag-control. hag-magsim is paused so that nothing re-registers meanwhile.
    held = s.dp_digest()
    held_state = s.dp_state()
    generation_before = held[0]
    s.sim.send_signal(signal.SIGSTOP)
    s.daemon.kill()
    s.daemon.wait()
    s.traffic("hag-control down")
    check(held_state is not None and len(held_state[1]) == 1 and s.dp_state() == held_state,
          "hag-control down: the data plane keeps its state (generation, sessions)")
    s.start_control()
    check(wait_for(lambda: s.counters().get("dataplane.holding") == 1, 20),
          "restarted hag-control: start-up hold (counter dataplane.holding = 1)")
    r = s.hagctl("dataplane", "check")
    print(r.stdout, r.stderr)
    check(r.returncode == 1 and "start-up hold" in r.stdout,
          "hagctl dataplane check reports the hold (exit 1)")
    check(s.dp_digest() == held, "during the hold: the data plane's state is unchanged")
    s.traffic("during the start-up hold")
    check(s.dp_digest() == held, "still unchanged after the traffic")
    sim_lines = len(s.sim_lines)
    s.sim.send_signal(signal.SIGCONT)
    check(wait_for(lambda: any("LMA restarted" in l for l in s.sim_lines[sim_lines:]), 30),
          "hag-magsim saw the new restart counter in a heartbeat")
    check(wait_for(lambda: s.counters().get("dataplane.holding") == 0 and
                   s.counters().get("dataplane.resyncs") == 1, 30),
          "re-registration ended the hold: one resync")
    check(wait_for(s.in_sync, 20), "in sync after the control restart")
    now = s.dp_digest()
    print("after the control restart:", now)
    check(now is not None and now[1] == 1 and now[0] != generation_before,
          "the data plane holds the re-registered session at a new generation")
    b = wait_for(s.binding, 10)
    s.start_peer(b)
    s.traffic("after the control restart")
    check(s.tcp(), "after the control restart: TCP transfer echoed intact")

    # 4. A burst of registrations converges.
    r = subprocess.run(["ip", "netns", "exec", s.cpe, s.magsim, "load", "--lma", LMA6,
                        "--access", f"dsl:{COA6}:1", "--subscribers", str(s.burst),
                        "--rate", str(max(1, s.burst // 2)), "--duration", "2"],
                       capture_output=True, text=True, timeout=120)
    print(r.stdout, r.stderr)
    total = wait_for(lambda: s.counters().get("bindings.sessions", 0), 5)
    check(total > s.burst * 9 // 10, f"load registered most of {s.burst} subscribers ({total})")
    ok = wait_for(lambda: s.in_sync() and s.counters().get("dataplane.pending") == 0, 120, 1)
    c = s.counters()
    d = s.dp_digest()
    print({k: v for k, v in c.items() if k.startswith("dataplane.")}, d)
    check(ok and d is not None and d[1] == c.get("bindings.sessions") == c.get("dataplane.sessions"),
          "burst converged: data plane sessions == binding cache sessions, digests equal")
    check(c.get("dataplane.digest_mismatches", 1) == 0, "no digest mismatch on the way")
    s.traffic("after the burst")


if __name__ == "__main__":
    sys.exit(main())
