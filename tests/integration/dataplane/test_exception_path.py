#!/usr/bin/python3
"""hag-dataplane's exception path and next-hop resolution, with no MAC address configured.

Topology (network namespaces, veth pairs, documentation addresses):

  core host ns                 gateway ns (hag-dataplane)                  home router ns
  2001:db8:9999::1    ---- core0 | net_af_packet | acc0 ----     2001:db8:aaaa::1 (CoA)
  192.0.2.1                hag-core TAP: 2001:db8:9999::fe,             gre_peer.py (TUN + raw GRE)
                                         192.0.2.254                    2001:db8:1::42 on the TUN
                           hag-access TAP: 2001:db8:ff::1 (tunnel)

The kernel of the gateway namespace does not answer on the veth ends (IPv6 and ARP off there,
strict reverse-path filtering for IPv4; hag's AF_PACKET sockets still get every frame): whatever
answers for the gateway's addresses answers through hag's TAPs. Nobody has a static neighbour entry, and the config has no
MAC: the core host and the home router find the gateway by ND/ARP through the exception path,
and hag finds them (core next hop, care-of address) through the kernel's neighbour table.

Checked: ping (IPv6 and IPv4) to the gateway's own addresses from both sides; a UDP datagram to
port 5436 and a Mobility Header packet from the home router reach sockets in the gateway
namespace, and their replies come back (also a UDP 5436 datagram larger than the link MTU,
which the home router's kernel fragments: hag reassembles it and punts it whole); user traffic still crosses the GRE tunnel both ways;
hag's counters show what was punted and which next hops it resolved to which MAC.

With `--workers-routes` (test dataplane-exception-path-workers) the same runs with two workers
(each port with two af_packet queues that the kernel's fan-out fills) and a second core port
toward a second core host (2001:db8:8888::1, `core_routes` 2001:db8:8888::/64 -> core2, its
next hop resolved through the TAP hag-core2): ping to the gateway's addresses on all three
ports, UDP 5436 signalling from 16 source ports (spread over both workers) each answered, the
Mobility Header exchange, and traffic both ways between the home router and each core host,
which must enter and leave by that host's core port. Both workers must have punted frames.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from netns import Topology, require_root, sh, udp_count, wait_for_line  # noqa: E402

DATAPLANE, GRE_PEER = sys.argv[1], sys.argv[2]
WORKERS_ROUTES = "--workers-routes" in sys.argv[3:]
MANY = 16  # UDP 5436 exchanges from as many source ports (--workers-routes)
UPLINK_KEY, DOWNLINK_KEY = 0x1001, 0x2002
PY = "/usr/bin/python3"

# A UDP or Mobility Header exchange: the server (gateway namespace) answers one datagram.
SERVER = r"""
import socket, sys
kind, addr = sys.argv[1], sys.argv[2]
many = int(sys.argv[3]) if len(sys.argv) > 3 else 1
if kind in ("udp", "udpbig"):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind((addr, 5436))
else:
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 135); s.bind((addr, 0))
s.settimeout(20)
print("listening", flush=True)
ports = set()
while len(ports) < many:
    data, peer = s.recvfrom(4000)
    udp = kind != "mh"
    reply = b"reply:" + data if udp else bytes([59, 1, 6, 0, 0, 0]) + data[6:]
    s.sendto(reply, peer if udp else (peer[0], 0))
    ports.add(peer[1] if udp else 0)
    print("got", data[:32].hex(), len(data), "from", peer[0], flush=True)
"""
CLIENT = r"""
import socket, sys
kind, src, dst = sys.argv[1], sys.argv[2], sys.argv[3]
many = int(sys.argv[4]) if len(sys.argv) > 4 else 1
answered = 0
for n in range(many):  # each from its own source port (several workers: spread by fan-out)
    if kind in ("udp", "udpbig"):
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind((src, 0))
        # udpbig: larger than the link MTU, so the home router's kernel fragments it (hag
        # reassembles it and punts it whole; the reply leaves the TAP in fragments).
        msg = b"pbu-over-udp" + (b"." * 1800 if kind == "udpbig" else b"")
        to = (dst, 5436)
    else:
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 135); s.bind((src, 0))
        # Binding Update shape (RFC 6275 6.1.7): proto 59, length 1, type 5, checksum 0, seq 7.
        msg, to = bytes([59, 1, 5, 0, 0, 0, 0, 7, 0x80, 0, 0, 10, 0, 0, 0, 0]), (dst, 0)
    s.settimeout(5 if n == 0 else 2)
    for attempt in range(5):  # the first may wait for neighbour discovery
        s.sendto(msg, to)
        try:
            data, peer = s.recvfrom(4000)
            print("reply", data[:32].hex(), len(data), "from", peer[0]); answered += 1; break
        except socket.timeout:
            continue
    s.close()
print("answered", answered, flush=True)
"""


def run(ns, *cmd, timeout=30):
    return subprocess.run(("ip", "netns", "exec", ns) + cmd, capture_output=True, text=True,
                          timeout=timeout)


def ping(ns, addr, count=3):
    fam = "-4" if "." in addr else "-6"
    return run(ns, "ping", fam, "-c", str(count), "-i", "0.2", "-W", "2", addr)


def exchange(failures, gw, cpe, kind, gw_addr, cpe_addr, many=1):
    srv = subprocess.Popen(["ip", "netns", "exec", gw, PY, "-c", SERVER, kind, gw_addr,
                            str(many)], stdout=subprocess.PIPE, text=True)
    try:
        assert wait_for_line(srv, "listening", 10), f"{kind} server did not start"
        cli = run(cpe, PY, "-c", CLIENT, kind, cpe_addr, gw_addr, str(many), timeout=90)
        got = srv.communicate(timeout=30)[0]
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()
    print(f"{kind}: gateway socket: {got.strip()!r}; home router: {cli.stdout.strip()!r}")
    if f"answered {many}" not in cli.stdout:
        failures.append(f"{kind}: {many} exchanges, {cli.stdout.split()[-1:]} answered")
    if f"from {cpe_addr}" not in got:
        failures.append(f"{kind} signalling from the home router did not reach the gateway socket")
    if f"from {gw_addr}" not in cli.stdout:
        failures.append(f"{kind} reply from the gateway socket did not reach the home router "
                        f"({cli.stdout} {cli.stderr})")


def main():
    require_root()
    topo = Topology("dw" if WORKERS_ROUTES else "dx")
    core, gw, cpe = topo.ns("core"), topo.ns("gw"), topo.ns("cpe")
    core_host_mac, _ = topo.veth(core, "eth0", gw, "core0")
    cpe_mac, _ = topo.veth(cpe, "eth0", gw, "acc0")
    gw_devs = ["core0", "acc0"]
    if WORKERS_ROUTES:
        core2 = topo.ns("core2")
        core2_host_mac, _ = topo.veth(core2, "eth0", gw, "core1")
        gw_devs.append("core1")
    # The gateway's kernel must not answer on the veth ends itself (a NIC bound to vfio-pci is
    # invisible to it): no IPv6 and no ARP there, and IPv4 to the gateway's addresses arriving
    # there fails the strict reverse-path check. hag's AF_PACKET sockets still get every frame.
    sh("sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1", ns=gw)
    for dev in gw_devs:
        sh("sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1", ns=gw)
        sh("sysctl", "-qw", f"net.ipv4.conf.{dev}.rp_filter=1", ns=gw)
        sh("ip", "link", "set", "dev", dev, "arp", "off", ns=gw)

    sh("ip", "-6", "addr", "add", "2001:db8:9999::1/64", "dev", "eth0", "nodad", ns=core)
    sh("ip", "addr", "add", "192.0.2.1/24", "dev", "eth0", ns=core)
    sh("ip", "-6", "route", "add", "2001:db8:1::/64", "via", "2001:db8:9999::fe", ns=core)
    sh("ip", "-6", "addr", "add", "2001:db8:aaaa::1/64", "dev", "eth0", "nodad", ns=cpe)
    sh("ip", "-6", "route", "add", "2001:db8:ff::1/128", "dev", "eth0", ns=cpe)
    lcores, extra = '"-l", "0-1"', ""
    if WORKERS_ROUTES:
        sh("ip", "-6", "addr", "add", "2001:db8:8888::1/64", "dev", "eth0", "nodad", ns=core2)
        sh("ip", "-6", "route", "add", "2001:db8:1::/64", "via", "2001:db8:8888::fe", ns=core2)
        # Two workers on a host that may have two CPUs: three lcores floating over CPUs 0-1.
        lcores = '"--lcores", "(0-2)@(0-1)"'
        extra = """workers: 2
ports { name: "core2" device: "net_af_packet2,iface=core1" role: CORE
        next_hop_ipv6: "2001:db8:8888::1" addresses: "2001:db8:8888::fe" }
core_routes { prefix: "2001:db8:8888::/64" port: "core2" }
"""

    tmp = topo.tmpdir("hag-it-")
    conf = os.path.join(tmp, "dataplane.conf")
    with open(conf, "w") as f:
        f.write(f"""
log {{ level: "info" }}
eal_args: ["--no-huge", "--no-pci", "-m", "512", "--file-prefix", "hag-itx-{os.getpid()}",
           {lcores}, "--log-level", "lib.*:warning", "--no-telemetry"]
ports {{ name: "core" device: "net_af_packet0,iface=core0" role: CORE
         next_hop_ipv6: "2001:db8:9999::1" next_hop_ipv4: "192.0.2.1"
         addresses: "2001:db8:9999::fe" addresses: "192.0.2.254" }}
ports {{ name: "access" device: "net_af_packet1,iface=acc0" role: ACCESS }}
mbufs: 8191
max_sessions: 1024
programmer_listen: "unix:{tmp}/programmer.sock"
idle_sleep_us: 20
sessions {{
  id: 1 uplink_key: {UPLINK_KEY} prefixes: "2001:db8:1::/64"
  paths {{ bid: 1 local: "2001:db8:ff::1" care_of: "2001:db8:aaaa::1" downlink_key: {DOWNLINK_KEY}
          port: "access" }}
}}
{extra}""")
    sh(DATAPLANE, "--check-config", "-c", conf)
    dp = topo.spawn(gw, DATAPLANE, "-c", conf, stdout=subprocess.PIPE)
    assert wait_for_line(dp, "ready", 60), "hag-dataplane did not start"
    # The TAPs exist now; give them the gateway's addresses (an operator would use persistent
    # TAPs configured by the system).
    sh("ip", "-6", "addr", "add", "2001:db8:9999::fe/64", "dev", "hag-core", "nodad", ns=gw)
    sh("ip", "addr", "add", "192.0.2.254/24", "dev", "hag-core", ns=gw)
    sh("ip", "-6", "addr", "add", "2001:db8:ff::1/128", "dev", "hag-access", "nodad", ns=gw)
    sh("ip", "-6", "route", "add", "2001:db8:aaaa::/64", "dev", "hag-access", ns=gw)
    targets = [(core, "2001:db8:9999::fe"), (core, "192.0.2.254"), (cpe, "2001:db8:ff::1")]
    if WORKERS_ROUTES:
        sh("ip", "-6", "addr", "add", "2001:db8:8888::fe/64", "dev", "hag-core2", "nodad", ns=gw)
        targets.append((core2, "2001:db8:8888::fe"))

    failures = []

    # 1. The gateway's own addresses answer ping from both sides (ND/ARP and ICMP punted).
    for ns, addr in targets:
        ok = False
        for _ in range(10):  # the first attempts may run into neighbour discovery
            r = ping(ns, addr, count=1)
            if r.returncode == 0:
                ok = True
                break
        r = ping(ns, addr)
        if not ok or r.returncode != 0:
            failures.append(f"ping {addr} from {ns}: {r.stdout} {r.stderr}")

    # 2. Signalling from the home router reaches sockets in the gateway namespace, and back.
    exchange(failures, gw, cpe, "udp", "2001:db8:ff::1", "2001:db8:aaaa::1",
             MANY if WORKERS_ROUTES else 1)
    exchange(failures, gw, cpe, "mh", "2001:db8:ff::1", "2001:db8:aaaa::1")
    # A fragmented PBU over UDP: reassembled by hag, punted whole, answered.
    exchange(failures, gw, cpe, "udpbig", "2001:db8:ff::1", "2001:db8:aaaa::1")

    # 3. User traffic through the tunnel, with next hops resolved by hag (none configured).
    stats_file = os.path.join(tmp, "peer.json")
    peer = topo.spawn(cpe, GRE_PEER, "--tun", "hagtun", "--tun-addr", "2001:db8:1::42/64",
                      "--route", "2001:db8:9999::/64", "--route", "2001:db8:8888::/64",
                      "--local", "2001:db8:aaaa::1",
                      "--remote", "2001:db8:ff::1", "--out-key", hex(UPLINK_KEY),
                      "--in-key", hex(DOWNLINK_KEY), "--stats", stats_file,
                      stdout=subprocess.PIPE)
    assert wait_for_line(peer, "ready", 20), "gre_peer did not start"
    ok = False
    for _ in range(20):  # until both next hops are resolved
        if ping(core, "2001:db8:1::42", count=1).returncode == 0:
            ok = True
            break
    r = ping(core, "2001:db8:1::42", count=5)
    if not ok or r.returncode != 0:
        failures.append(f"ping core -> home router through the tunnel: {r.stdout} {r.stderr}")
    flows = [(core, cpe, "2001:db8:1::42"), (cpe, core, "2001:db8:9999::1")]
    if WORKERS_ROUTES:
        # The second core host, both ways: its uplink is routed out of core2 (core_routes),
        # its downlink enters there.
        ok = False
        for _ in range(20):  # until core2's next hop is resolved
            if ping(core2, "2001:db8:1::42", count=1).returncode == 0:
                ok = True
                break
        if not ok:
            failures.append("ping core2 -> home router through the tunnel failed")
        flows += [(core2, cpe, "2001:db8:1::42"), (cpe, core2, "2001:db8:8888::1")]
    for src_ns, dst_ns, dst in flows:
        got = udp_count(src_ns, dst_ns, dst, 100, 500)
        if got < 95:
            failures.append(f"UDP to {dst} from {src_ns}: {got} of 100 datagrams arrived")

    topo.stop(peer)
    topo.stop(dp)
    out = dp.stdout.read()
    stats = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    print("hag-dataplane:", json.dumps(stats))
    exc = stats["exception"]
    resolved = {(e["port"], e["address"]): e["mac"] for e in exc["next_hops"]["entries"]}
    expect = {("core", "2001:db8:9999::1"): core_host_mac, ("core", "192.0.2.1"): core_host_mac,
              ("access", "2001:db8:aaaa::1"): cpe_mac}
    if WORKERS_ROUTES:
        expect[("core2", "2001:db8:8888::1")] = core2_host_mac
        failures += check_workers_routes(stats)
    for key, mac in expect.items():
        if resolved.get(key) != mac:
            failures.append(f"next hop {key}: hag has {resolved.get(key)}, expected {mac}")
    core_p, acc_p = exc["ports"]["core"]["punted"], exc["ports"]["access"]["punted"]
    for name, value in (("core nd", core_p["nd"]), ("core arp", core_p["arp"]),
                        ("core icmp", core_p["icmp"]), ("access nd", acc_p["nd"]),
                        ("access icmp", acc_p["icmp"]), ("access udp_5436", acc_p["udp_5436"]),
                        ("access mobility_header", acc_p["mobility_header"])):
        if value < 1:
            failures.append(f"nothing punted as {name}")
    for port in ("core", "access"):
        p = exc["ports"][port]
        if p["to_tap"] < 1 or p["from_tap"] < 1 or p["to_port"] < 1:
            failures.append(f"{port}: exception path idle both ways? {p}")
        if p["ring_full"] or p["tap_write_errors"]:
            failures.append(f"{port}: exception path drops {p}")
    r = stats.get("reassembly", {})
    if r.get("reassembled", 0) < 1 or acc_p["udp_5436"] < 2:
        failures.append(f"the fragmented UDP 5436 datagram was not reassembled and punted: {r}")
    if stats["uplink"]["decapsulated"] < 100 or stats["downlink"]["encapsulated"] < 100:
        failures.append("hag forwarded too little user traffic")

    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


def check_workers_routes(stats):
    """Two workers both punting; each core host's traffic by its own core port."""
    out = []
    ws = stats.get("worker_stats", [])
    if stats.get("workers") != 2 or len(ws) != 2:
        return [f"expected two workers: {ws}"]
    by_worker = stats["exception"]["ports"]["access"]["punted_by_worker"]
    print("access punted by worker:", by_worker, "workers:", ws)
    if len(by_worker) != 2 or min(by_worker) == 0:
        out.append(f"access port: frames punted by worker {by_worker}: not both workers")
    ports = stats["ports"]
    # UDP from the home router to 2001:db8:8888::1 (100) and ping replies leave by core2 only;
    # core2's downlink (100 UDP and the pings) enters there.
    if ports["core2"]["tx"] < 100 or ports["core2"]["rx"] < 100:
        out.append(f"core2 carried too little: {ports['core2']}")
    if ports["core"]["tx"] < 100 or ports["core"]["rx"] < 100:
        out.append(f"core carried too little: {ports['core']}")
    for w in ws:
        if w["route_no_next_hop"] > 5 or w["handoff_full"]:
            out.append(f"worker {w['worker']}: {w}")
    return out


if __name__ == "__main__":
    sys.exit(main())
