"""The complete hag gateway in network namespaces: the demo's and the end-to-end suite's topology.

  core ns                 gw ns                                   anet ns         cpe ns (home router)
  2001:db8:9999::1 -- core0 |hag-dataplane| acc0 -- a0 [br0] a1 --------(tbf)--- m0  DSL 2001:db8:aaaa::1
  (server, iperf3)     hag-control (LMA 2001:db8:ff::1)   a2 -(tbf)- emu ns --- m1  LTE 2001:db8:bbbb::1
                       hagctl                                  hag-linkemu         hag-magsim --data
                                                               (delay, jitter)     magsim0 tun: HNP::1

hag-dataplane runs on virtual devices (net_af_packet on the veths core0 and acc0: no NIC, no
hugepages); its exception path hands signalling to the kernel TAP hag-access, where hag-control
terminates PMIPv6. hag-magsim is the home router: it registers the DSL and the LTE access with
real PBU/PBA (link metrics give the striping weights), answers and sends heartbeats, and in data
mode carries the home network's traffic in GRE (key + sequence number) over both accesses,
reordering the downlink. Each access has a rate (tbf, both directions) and LTE a delay and
jitter (hag-linkemu, the project's link emulator: this kernel has no netem).

Used by tools/demo/demo.py and tests/integration/demo/. Only documentation addresses.
"""
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration", "lib"))
from netns import Topology, sh, udp_count, wait_for_file_line  # noqa: E402

PY = "/usr/bin/python3"
LMA6 = "2001:db8:ff::1"
CORE6 = "2001:db8:9999::1"
CORE_GW6 = "2001:db8:9999::fe"
POOL = "2001:db8:100::/40"
NAI = "home-0001@isp.example"
MAG_ID = "cpe-0001@isp.example"


class Access:
    """One access of the home router: name, BID, CoA, rates (kbit/s), one-way delay (ms)."""

    def __init__(self, name, kind, bid, coa, down_kbps, up_kbps, delay_ms, jitter_ms=0.0):
        self.name, self.kind, self.bid, self.coa = name, kind, bid, coa
        self.down_kbps, self.up_kbps = down_kbps, up_kbps
        self.delay_ms, self.jitter_ms = delay_ms, jitter_ms


# The default home router: a DSL line and an LTE link with more delay.
DSL = Access("DSL", "dsl", 1, "2001:db8:aaaa::1", 20000, 5000, 0)
LTE = Access("LTE", "lte", 2, "2001:db8:bbbb::1", 10000, 5000, 15, 2)

CONTROL_CONF = """
# hag-control for the demo gateway (written by tools/demo/gateway.py)
log {{ level: "info" }}
lma_addresses: "{lma6}"
hnp_pools {{ name: "residential" prefix: "{pool}" assign_length: 64 }}
default_profile {{ multipath: true gre_key_required: true max_paths: 4 max_lifetime_seconds: 3600 {profile_extra}}}
subscribers {{ nai: "{nai}" {subscriber_extra}}}
mags {{ mag_id: "{mag_id}" allowed_nai: "{nai}" }}
management_socket: "{tmp}/control.sock"
state_directory: "{tmp}/state"
dataplane_socket: "unix:{tmp}/dataplane.sock"
heartbeat_interval_seconds: 1
heartbeat_missed_limit: 2
policy {{
  labels {{ name: "RED"  access_technology: 3 }}
  labels {{ name: "BLUE" access_technology: 8 }}
  applications {{ name: "HTTP"  match {{ protocol: 6 remote_ports: "80,443" }} }}
  applications {{ name: "IPsec" match {{ protocol: 50 }}
                               match {{ protocol: 17 remote_ports: "500,4500" }} }}
  applications {{ name: "SSH"   match {{ protocol: 6 remote_ports: "22" }} }}
  applications {{ name: "SIP/RTP" match {{ protocol: 17 remote_ports: "5060-5061" }}
                                 match {{ protocol: 17 local_ports: "10000-20000" dscp: 46 }} }}
  profiles {{
    name: "home"
    rules {{ application: "HTTP"    preference: "BLUE" preference: "RED"  preference: "DROP" }}
    rules {{ application: "IPsec"   preference: "RED"  preference: "BLUE" preference: "DROP" }}
    rules {{ application: "SSH"     preference: "DROP" }}
    rules {{ application: "SIP/RTP" preference: "BLUE" preference: "DROP" }}
  }}
  default_profile: "home"
}}
"""

DATAPLANE_CONF = """
# hag-dataplane for the demo gateway (written by tools/demo/gateway.py): virtual devices only
log {{ level: "info" }}
eal_args: ["--no-huge", "--no-pci", "-m", "512", "--file-prefix", "hag-{suffix}",
           "-l", "0-1", "--log-level", "lib.*:warning", "--no-telemetry"]
ports {{ name: "core" device: "net_af_packet0,iface=core0" role: CORE
         next_hop_ipv6: "{core6}" addresses: "{core_gw6}" }}
ports {{ name: "access" device: "net_af_packet1,iface=acc0" role: ACCESS addresses: "{lma6}" }}
mbufs: 8191
max_sessions: 1024
programmer_listen: "unix:{tmp}/dataplane.sock"
idle_sleep_us: 20
# DSL and LTE differ by tens of milliseconds (delay plus queueing): wait up to 100 ms for a gap.
reorder {{ timeout_us: 100000 }}
"""


class Gateway:
    """Builds the topology and starts the daemons; every method raises RuntimeError with a
    clear message when something does not come up."""

    def __init__(self, build, suffix=None, workdir=None, accesses=(DSL, LTE), capture=True,
                 control_extra="", profile_extra="", magsim_extra=(), subscriber_extra=""):
        self.build = build
        self.control_exe = os.path.join(build, "control", "hag-control")
        self.dataplane_exe = os.path.join(build, "dataplane", "hag-dataplane")
        self.magsim_exe = os.path.join(build, "tools", "magsim", "hag-magsim")
        self.linkemu_exe = os.path.join(build, "tools", "linkemu", "hag-linkemu")
        self.hagctl_exe = os.path.join(build, "tools", "hagctl", "hagctl")
        for exe in (self.control_exe, self.dataplane_exe, self.magsim_exe, self.linkemu_exe,
                    self.hagctl_exe):
            if not os.access(exe, os.X_OK):
                raise RuntimeError(f"{exe} is not built")
        self.topo = Topology("gw", suffix)
        self.accesses = list(accesses)
        self.capture = capture
        self.workdir = workdir  # None: a new temporary directory
        self.control_extra = control_extra  # more hag-control configuration (text format)
        self.profile_extra = profile_extra  # more default_profile fields
        self.subscriber_extra = subscriber_extra  # more fields of the subscriber's entry
        self.magsim_extra = list(magsim_extra)  # more hag-magsim arguments
        self.tmp = None
        self.home = None      # the home router's address in its HNP (HNP::1)
        self.hnp = None
        self.ns = {}
        self.procs = {}
        self.starts = {}

    # ---- set-up ---------------------------------------------------------------------------
    def access_port(self, a):
        """The bridge port in anet toward access a (taking it down cuts the access)."""
        return f"a{self.accesses.index(a) + 1}"

    def build_topology(self):
        t = self.topo
        for role in ("core", "gw", "anet", "emu", "cpe"):
            self.ns[role] = t.ns(role)
            for conf in ("all", "default"):
                sh("sysctl", "-qw", f"net.ipv6.conf.{conf}.accept_dad=0", ns=self.ns[role])
        core, gw, anet, emu, cpe = (self.ns[r] for r in ("core", "gw", "anet", "emu", "cpe"))
        if self.workdir:
            os.makedirs(self.workdir, mode=0o700)
            t.dirs.append(self.workdir)
            self.tmp = self.workdir
        else:
            self.tmp = t.tmpdir("hag-gw-")
        t.veth(core, "eth0", gw, "core0")
        t.veth(gw, "acc0", anet, "a0")
        # The gateway's kernel stays off the DPDK ports (a NIC bound to vfio-pci is invisible
        # to it): no addresses, no ARP, no IPv6 on core0 / acc0.
        for dev in ("core0", "acc0"):
            sh("sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1", ns=gw)
            sh("ip", "link", "set", "dev", dev, "arp", "off", ns=gw)
        sh("ip", "link", "add", "br0", "type", "bridge", ns=anet)
        sh("ip", "link", "set", "a0", "master", "br0", ns=anet)
        for i, a in enumerate(self.accesses):
            port, cpe_dev = self.access_port(a), f"m{i}"
            if a.delay_ms or a.jitter_ms:
                t.veth(anet, port, emu, f"e{i}a")
                t.veth(emu, f"e{i}b", cpe, cpe_dev)
                for dev in (f"e{i}a", f"e{i}b"):
                    sh("sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1", ns=emu)
            else:
                t.veth(anet, port, cpe, cpe_dev)
            sh("ip", "link", "set", port, "master", "br0", ns=anet)
            # Rates: the downlink on the access network's port toward the home router, the
            # uplink on the home router's own interface (tbf; the kernel's netem is absent).
            shape(anet, port, a.down_kbps)
            shape(cpe, cpe_dev, a.up_kbps)
            sh("ip", "-6", "addr", "add", a.coa + "/64", "dev", cpe_dev, "nodad", ns=cpe)
            sh("ip", "-6", "route", "add", LMA6 + "/128", "dev", cpe_dev, "metric", str(i + 1),
               ns=cpe)
        sh("ip", "link", "set", "br0", "up", ns=anet)
        # The core host routes the subscribers' prefixes to the gateway (a packet too big for
        # the tunnel gets an ICMPv6 Packet Too Big from hag-dataplane: path MTU discovery).
        sh("ip", "-6", "addr", "add", CORE6 + "/64", "dev", "eth0", "nodad", ns=core)
        sh("ip", "-6", "route", "add", POOL, "via", CORE_GW6, ns=core)

    def start_linkemu(self):
        for i, a in enumerate(self.accesses):
            if not (a.delay_ms or a.jitter_ms):
                continue
            log = os.path.join(self.tmp, f"linkemu-{a.name.lower()}.log")
            p = self.topo.spawn_logged(
                self.ns["emu"], log, self.linkemu_exe, "--a", f"e{i}a", "--b", f"e{i}b",
                "--delay-ms", str(a.delay_ms), "--jitter-ms", str(a.jitter_ms),
                "--stats", os.path.join(self.tmp, f"linkemu-{a.name.lower()}.json"))
            if not wait_for_file_line(log, "ready", 20, p):
                raise RuntimeError(f"hag-linkemu for {a.name} did not start; see {log}")
            self.procs[f"linkemu-{a.name}"] = p

    def start_capture(self):
        """Every signalling packet the gateway's kernel sees (raw MH on hag-access)."""
        if not self.capture:
            return
        pcap = os.path.join(self.tmp, "signalling.pcap")
        p = self.topo.spawn_logged(self.ns["gw"], os.path.join(self.tmp, "tshark.log"),
                                   "tshark", "-q", "-i", "hag-access", "-f", "ip6 proto 135",
                                   "-w", pcap)
        if not wait_for_file_line(os.path.join(self.tmp, "tshark.log"), "Capturing on", 20, p):
            raise RuntimeError("tshark did not start capturing on hag-access")
        self.procs["tshark"] = p

    def start_dataplane(self):
        conf = os.path.join(self.tmp, "dataplane.conf")
        with open(conf, "w") as f:
            f.write(DATAPLANE_CONF.format(suffix=self.topo.suffix, core6=CORE6,
                                          core_gw6=CORE_GW6, lma6=LMA6, tmp=self.tmp))
        log = self.next_log("dataplane")
        p = self.topo.spawn_logged(self.ns["gw"], log, self.dataplane_exe, "-c", conf)
        if not wait_for_file_line(log, "ready", 60, p):
            raise RuntimeError(f"hag-dataplane did not start; see {log}")
        self.procs["dataplane"] = p
        gw = self.ns["gw"]
        # The exception path's TAPs: the kernel (and hag-control) own the gateway's addresses.
        # "replace": after a restart the kernel may still be removing the old TAPs' state.
        sh("ip", "-6", "addr", "replace", CORE_GW6 + "/64", "dev", "hag-core", "nodad", ns=gw)
        sh("ip", "-6", "addr", "replace", LMA6 + "/128", "dev", "hag-access", "nodad", ns=gw)
        for a in self.accesses:
            sh("ip", "-6", "route", "replace", a.coa.rsplit("::", 1)[0] + "::/64", "dev",
               "hag-access", ns=gw)

    def next_log(self, name):
        """name.log for a daemon's first start, name-2.log for the second, ... (a restart must
        not find the previous run's "ready" line)."""
        self.starts[name] = self.starts.get(name, 0) + 1
        n = self.starts[name]
        return os.path.join(self.tmp, f"{name}.log" if n == 1 else f"{name}-{n}.log")

    def kill(self, name):
        """kill -9 of a daemon (no goodbye: what a crash looks like)."""
        p = self.procs.pop(name, None)
        if p is not None and p.poll() is None:
            p.kill()
            p.wait()

    def start_control(self):
        conf = os.path.join(self.tmp, "control.conf")
        with open(conf, "w") as f:
            f.write(CONTROL_CONF.format(lma6=LMA6, pool=POOL, nai=NAI, mag_id=MAG_ID,
                                        tmp=self.tmp, profile_extra=self.profile_extra,
                                        subscriber_extra=self.subscriber_extra) +
                    self.control_extra)
        log = self.next_log("control")
        p = self.topo.spawn_logged(self.ns["gw"], log, self.control_exe, "-c", conf)
        if not wait_for_file_line(log, "hag-control ready", 30, p):
            raise RuntimeError(f"hag-control did not start; see {log}")
        self.procs["control"] = p

    def start_magsim(self):
        cmd = [self.magsim_exe, "register", "--lma", LMA6, "--nai", NAI, "--mag-id", MAG_ID,
               "--heartbeat", "1", "--data", "--tun", "magsim0", "--route", CORE6 + "/64",
               "--reorder-window", "1024", "--stats", os.path.join(self.tmp, "magsim.json")]
        for i, a in enumerate(self.accesses):
            cmd += ["--access", f"{a.kind}:m{i}:{a.bid}",
                    "--link-metrics", f"{a.bid}:{a.down_kbps}:{a.up_kbps}"]
        cmd += self.magsim_extra
        log = os.path.join(self.tmp, "magsim.log")
        p = self.topo.spawn_logged(self.ns["cpe"], log, *cmd)
        self.procs["magsim"] = p
        if not wait_for_file_line(log, "data mode: ready", 60, p):
            raise RuntimeError(f"hag-magsim did not register; see {log}")
        with open(log) as f:
            text = f.read()
        hnps = set()
        for line in text.splitlines():
            if "registration: accepted (0) hnp=" in line:
                hnps.add(line.split("hnp=")[1].split()[0])
        if len(hnps) != 1:
            raise RuntimeError(f"expected one home network prefix for both accesses: {text}")
        self.hnp = hnps.pop()
        self.home = self.hnp.split("/")[0].rstrip(":") + "::1"

    def start(self, step=lambda text: None):
        step("network namespaces: core host, gateway, access network, home router "
             f"({', '.join(describe(a) for a in self.accesses)})")
        self.build_topology()
        self.start_linkemu()
        step("hag-dataplane starts on virtual devices (net_af_packet on veths, --no-huge)")
        self.start_dataplane()
        self.start_capture()
        step("hag-control starts: LMA " + LMA6 + ", programs hag-dataplane over gRPC")
        self.start_control()
        step(f"the home router registers {' and '.join(a.name for a in self.accesses)} "
             "(hag-magsim: real PBU/PBA through the data plane's exception path)")
        self.start_magsim()

    # ---- inspection -----------------------------------------------------------------------
    def hagctl(self, *args, timeout=30, check=True):
        cmd = ["ip", "netns", "exec", self.ns["gw"], self.hagctl_exe, "-s",
               f"unix:{self.tmp}/control.sock", "--dataplane", f"unix:{self.tmp}/dataplane.sock",
               *args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"hagctl {' '.join(args)}: {r.stderr.strip() or r.stdout.strip()}")
        return r

    def hagctl_json(self, *args):
        return json.loads(self.hagctl("-o", "json", *args).stdout)

    def binding(self):
        return self.hagctl_json("bindings", "show", NAI)

    def paths_live(self):
        """{bid: live} as hag-control sees them."""
        b = self.binding()
        return {int(p["bid"]): bool(p.get("live", False)) for p in b.get("paths", [])}

    def dp_session(self):
        """The subscriber's session in hag-dataplane (counters per path, reorder)."""
        out = self.hagctl_json("dataplane", "sessions", "--all")
        sessions = out.get("sessions", []) if isinstance(out, dict) else out
        return sessions[0] if sessions else {}

    def dp_path_bytes(self):
        """{bid: (downlink octets, uplink octets)} from hag-dataplane's counters."""
        s = self.dp_session()
        return {int(p["bid"]): (int(p.get("downlink_bytes", 0)), int(p.get("uplink_bytes", 0)))
                for p in s.get("paths", [])}

    def dp_policy(self):
        """(pinned, dropped) downlink packets of the subscriber by its flow policy."""
        p = self.dp_session().get("policy", {})
        return int(p.get("pinned", 0)), int(p.get("drops", 0))

    def dp_path_packets(self):
        """{bid: downlink packets} from hag-dataplane's counters."""
        s = self.dp_session()
        return {int(p["bid"]): int(p.get("downlink_packets", 0)) for p in s.get("paths", [])}

    def udp_from_port(self, sport, count=50):
        """`count` UDP datagrams from the core host's port `sport` to the home router (an
        application the flow policy knows by its port); returns how many arrived."""
        return udp_count(self.ns["core"], self.ns["cpe"], self.home, count, 160, sport)

    def tcp_connect(self, port, seconds=2.0):
        """The home router opens a TCP connection to the core host's `port` (a listener is
        there): True when it is established."""
        srv = subprocess.Popen(["ip", "netns", "exec", self.ns["core"], PY, "-c", _LISTEN, CORE6,
                                str(port)], stdout=subprocess.PIPE, text=True)
        try:
            if srv.stdout.readline().strip() != "ready":
                return False
            r = subprocess.run(["ip", "netns", "exec", self.ns["cpe"], PY, "-c", _CONNECT, CORE6,
                                str(port), str(seconds)], capture_output=True, text=True,
                               timeout=seconds + 20)
            return r.stdout.strip() == "connected"
        finally:
            srv.kill()
            srv.wait()

    def ping(self, tries=40):
        for _ in range(tries):
            r = subprocess.run(["ip", "netns", "exec", self.ns["core"], "ping", "-6", "-c", "1",
                                "-W", "1", self.home], capture_output=True, text=True)
            if r.returncode == 0:
                return True
            time.sleep(0.25)
        return False

    def wait_live(self, want, seconds=20):
        """Waits until hag-control's path states equal want ({bid: live}); True when they do."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.paths_live() == want:
                return True
            time.sleep(0.25)
        return False

    def wait_in_sync(self, seconds=60):
        """Waits until `hagctl dataplane check` finds hag-control's and hag-dataplane's digests
        equal; True when they are."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.hagctl("dataplane", "check", check=False).returncode == 0:
                return True
            time.sleep(0.1)
        return False

    def set_access(self, a, up):
        """Cuts an access (or restores it) in the access network, both directions."""
        sh("ip", "link", "set", self.access_port(a), "up" if up else "down", ns=self.ns["anet"])

    def iperf(self, downlink=True, seconds=4, streams=4):
        """TCP, `streams` connections in parallel as a home's traffic is, for `seconds` (after
        one second of slow start, not counted) between the core host and the home router; returns (Mbit/s received, retransmits, {bid: octets per second
        through hag-dataplane on that path over the whole run})."""
        srv = subprocess.Popen(["ip", "netns", "exec", self.ns["cpe"], "iperf3", "-s", "-1",
                                "-B", self.home], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        try:
            before, t0 = self.dp_path_bytes(), time.monotonic()
            r = None
            for _ in range(20):  # the server binds in a moment
                time.sleep(0.25)
                r = subprocess.run(["ip", "netns", "exec", self.ns["core"], "iperf3", "-c",
                                    self.home, "-t", str(seconds), "-O", "1", "-P", str(streams), "-J"] +
                                   ([] if downlink else ["-R"]),
                                   capture_output=True, text=True, timeout=seconds + 30)
                if r.returncode == 0 or "Connection refused" not in (r.stdout + r.stderr):
                    break
            after, elapsed = self.dp_path_bytes(), time.monotonic() - t0
        finally:
            if srv.poll() is None:
                srv.kill()
            srv.wait()
        try:
            end = json.loads(r.stdout)["end"]
            mbps = end["sum_received"]["bits_per_second"] / 1e6
            retrans = end["sum_sent"].get("retransmits", 0)
        except (ValueError, KeyError, TypeError):
            raise RuntimeError(f"iperf3 gave no result: {(r.stdout + r.stderr)[-300:]}")
        k = 0 if downlink else 1
        rate = {bid: (after[bid][k] - before.get(bid, (0, 0))[k]) / elapsed for bid in after}
        return mbps, retrans, rate

    def rss_kib(self, name):
        """Resident memory of a daemon (KiB), from /proc (`ip netns exec` execs the daemon, so
        the process is the daemon itself)."""
        with open(f"/proc/{self.procs[name].pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def counters(self):
        return {c["name"]: int(c["value"]) for c in self.hagctl_json("counters")["counters"]}

    def pcap(self):
        return os.path.join(self.tmp, "signalling.pcap")

    def stop_capture(self):
        p = self.procs.pop("tshark", None)
        if p is not None:
            p.send_signal(2)  # SIGINT: tshark finishes the file
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop(self, name):
        p = self.procs.pop(name, None)
        if p is not None:
            self.topo.stop(p)

    def close(self):
        self.topo.close()

    def detach(self):
        self.topo.detach()


_SENDER = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
rate, seconds = int(sys.argv[2]), float(sys.argv[3]); n = int(rate * seconds)
t0 = time.monotonic()
for i in range(n):
    d = t0 + i / rate - time.monotonic()
    if d > 0: time.sleep(d)
    try: s.sendto(i.to_bytes(4, "big") + b"x" * 96, (sys.argv[1], 7000))
    except OSError: pass
print(n, flush=True)
"""
_RECEIVER = r"""
import json, socket, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 7000)); s.settimeout(1)
print("ready", flush=True)
# Until the stream's end plus 4 s, or 4 s of silence after it began and ended; an outage in
# the middle (an access cut, a restart) does not end it.
end, seen, last = time.monotonic() + float(sys.argv[2]), {}, None
while True:
    try:
        d, _ = s.recvfrom(2000)
        last = time.monotonic()
        seen.setdefault(int.from_bytes(d[:4], "big"), last)
    except socket.timeout:
        now = time.monotonic()
        if now > end or (now > end - 4 and last is not None and now - last > 4):
            break
print(json.dumps({str(k): v for k, v in seen.items()}))
"""


_LISTEN = r"""
import socket, sys
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(4)
print("ready", flush=True)
s.settimeout(30)
try:
    while True:
        s.accept()
except socket.timeout:
    pass
"""
_CONNECT = r"""
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
    print("connected")
except OSError as e:
    print("failed", e)
"""


class UdpStream:
    """Numbered UDP datagrams from the core host to the home router, `rate` per second for
    `seconds`; result() gives (sent, {number: arrival time})."""

    def __init__(self, g, rate, seconds):
        self.seconds = seconds
        self.rcv = subprocess.Popen(["ip", "netns", "exec", g.ns["cpe"], PY, "-c", _RECEIVER,
                                     g.home, str(seconds + 8)], stdout=subprocess.PIPE,
                                    text=True)
        if self.rcv.stdout.readline().strip() != "ready":
            raise RuntimeError("the UDP receiver in the home router did not start")
        self.snd = subprocess.Popen(["ip", "netns", "exec", g.ns["core"], PY, "-c", _SENDER,
                                     g.home, str(rate), str(seconds)],
                                    stdout=subprocess.PIPE, text=True)

    def result(self):
        sent = int(self.snd.communicate(timeout=self.seconds + 60)[0].strip() or 0)
        seen = json.loads(self.rcv.communicate(timeout=60)[0])
        return sent, {int(k): v for k, v in seen.items()}


def shape(ns, dev, kbps):
    """tbf on dev's egress: kbps, a burst of a few milliseconds, at most 50 ms of queue."""
    burst = max(16000, kbps * 1000 // 8 // 200)  # 5 ms of rate, at least 16 kB
    sh("tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", f"{kbps}kbit", "burst",
       str(burst), "latency", "50ms", ns=ns)


def describe(a):
    d = f"{a.name} {a.down_kbps // 1000}/{a.up_kbps // 1000} Mbit/s"
    if a.delay_ms:
        d += f" +{a.delay_ms:g} ms"
    return d


def pcap_check(pcap):
    """tshark's verdict on a capture: (number of mobility messages by type, list of problems:
    malformed packets and expert errors)."""
    r = subprocess.run(["tshark", "-r", pcap, "-T", "fields", "-e", "mip6.mhtype",
                        "-e", "_ws.malformed", "-e", "_ws.expert.severity"],
                       capture_output=True, text=True, timeout=60)
    types, problems = {}, []
    for n, line in enumerate(r.stdout.splitlines(), 1):
        fields = line.split("\t") + ["", "", ""]
        for t in filter(None, fields[0].split(",")):
            types[t] = types.get(t, 0) + 1
        if fields[1]:
            problems.append(f"frame {n}: malformed")
        # Expert severity: 8388608 = error (note/chat/warn are not malformations).
        if "8388608" in fields[2].split(","):
            problems.append(f"frame {n}: expert error")
    if r.returncode != 0:
        problems.append(f"tshark failed: {r.stderr.strip()[:200]}")
    return types, problems
