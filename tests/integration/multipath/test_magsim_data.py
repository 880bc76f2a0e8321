#!/usr/bin/python3
"""A home router with two accesses carries TCP through hag-control + hag-dataplane (root only).

Topology (network namespaces, veth pairs, documentation addresses):

  core ns              gw ns                              anet ns      cpe ns (hag-magsim --data)
  2001:db8:9999::1 -- core0 |hag-dataplane| acc0 -- a0 [br0] a1 -------- m0: dsl 2001:db8:aaaa::1 (bid 1)
                       hag-control: LMA 2001:db8:ff::1,      |                dsl 198.51.100.2 (bid 3)
                       192.0.2.1 on the hag-access TAP       a2 -- emu ns: e0 <hag-linkemu> e1
                                                                       -- m1: lte 2001:db8:bbbb::1 (bid 2)
                                                                 magsim0 tun: HNP::1

hag-magsim registers three accesses with hag-control (raw MH for the IPv6 CoAs, UDP 5436 for
the IPv4 one, through hag-dataplane's exception path); hag-control programs hag-dataplane over
its DataplaneProgrammer socket; magsim's data mode carries user traffic in GRE (key + sequence;
IPv4 outer header on bid 3) on all of them, the uplink split 2:1:1 by link metrics. The lte
access goes through hag-linkemu, which adds delay and reorders 5 % of the frames toward the
home router. Checked: TCP transfers core -> home router
and home router -> core arrive intact (SHA-256); the uplink used all three accesses; the
downlink arrived with the right keys; after `hagctl bindings delete --bid 1` magsim reports
bid 1 revoked, both transfers still work, the downlink moved to another access, and
hag-dataplane dropped nothing on the uplink (no unknown key or tunnel, no spoofed source: magsim
stopped using the revoked path), and what linkemu reordered on the downlink magsim's reorder
buffer held and put back in order. Throughput is printed, not asserted (the machine is shared).

usage: test_magsim_data.py HAG_CONTROL HAG_DATAPLANE HAG_MAGSIM LINKEMU HAGCTL
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from netns import Topology, require_root, sh, wait_for_line  # noqa: E402

LMA6, LMA4 = "2001:db8:ff::1", "192.0.2.1"
DSL6, LTE6, DSL4 = "2001:db8:aaaa::1", "2001:db8:bbbb::1", "198.51.100.2"
CORE6 = "2001:db8:9999::1"
PY = "/usr/bin/python3"
DELAY_MS = 5

CONTROL_CONF = """
log {{ level: "warn" }}
lma_addresses: "{lma6}"
lma_addresses: "{lma4}"
hnp_pools {{ name: "residential" prefix: "2001:db8:100::/40" assign_length: 64 }}
default_profile {{ multipath: true max_paths: 4 max_lifetime_seconds: 3600 }}
allow_unknown_subscribers: true
allow_unknown_mags: true
management_socket: "{tmp}/control.sock"
state_directory: "{tmp}/state"
dataplane_socket: "unix:{tmp}/programmer.sock"
heartbeat_interval_seconds: 0
"""

DATAPLANE_CONF = """
log {{ level: "info" }}
eal_args: ["--no-huge", "--no-pci", "-m", "512", "--file-prefix", "hag-itmp-{pid}",
           "-l", "0-1", "--log-level", "lib.*:warning", "--no-telemetry"]
ports {{ name: "core" device: "net_af_packet0,iface=core0" role: CORE
         next_hop_ipv6: "{core6}" addresses: "2001:db8:9999::fe" }}
ports {{ name: "access" device: "net_af_packet1,iface=acc0" role: ACCESS
         addresses: "{lma6}" addresses: "{lma4}" }}
mbufs: 8191
max_sessions: 1024
programmer_listen: "unix:{tmp}/programmer.sock"
idle_sleep_us: 20
"""

SERVER = r"""
import hashlib, socket, sys, time
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 7001)); s.listen(1); s.settimeout(30)
print("listening", flush=True)
c, _ = s.accept(); c.settimeout(30); h = hashlib.sha256(); n = 0; t0 = time.monotonic()
while True:
    d = c.recv(262144)
    if not d: break
    h.update(d); n += len(d)
print(n, h.hexdigest(), round(n * 8 / max(1e-6, time.monotonic() - t0) / 1e6, 1), flush=True)
"""
CLIENT = r"""
import hashlib, socket, sys
n = int(sys.argv[2]); block = bytes((i * 7 + 3) & 0xff for i in range(65536))
h = hashlib.sha256(); c = socket.create_connection((sys.argv[1], 7001), timeout=30); sent = 0
while sent < n:
    d = block[: min(len(block), n - sent)]; c.sendall(d); h.update(d); sent += len(d)
c.close(); print(sent, h.hexdigest())
"""


def transfer(failures, src_ns, dst_ns, dst, size, what):
    srv = subprocess.Popen(["ip", "netns", "exec", dst_ns, PY, "-c", SERVER, dst],
                           stdout=subprocess.PIPE, text=True)
    try:
        if not wait_for_line(srv, "listening", 10):
            failures.append(f"{what}: server did not start")
            return
        cli = subprocess.run(["ip", "netns", "exec", src_ns, PY, "-c", CLIENT, dst, str(size)],
                             capture_output=True, text=True, timeout=120)
        got = srv.communicate(timeout=60)[0].split()
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()
    sent = cli.stdout.split()
    print(f"{what}: sent {sent}, received {got}", flush=True)
    if len(got) != 3 or sent != got[:2]:
        failures.append(f"{what}: sent {sent} {cli.stderr.strip()}, received {got}")
    else:
        print(f"{what}: {got[2]} Mbit/s (python sockets, {size} octets)", flush=True)


def iperf(core, cpe, home):
    """iperf3 both ways for 3 s each, printed only (Debian iperf3; skipped when absent)."""
    if not shutil.which("iperf3"):
        print("iperf3 not installed: no iperf3 figures")
        return
    for what, server_ns, client_ns, addr, extra in (
            ("downlink", cpe, core, home, []), ("uplink", cpe, core, home, ["-R"])):
        srv = subprocess.Popen(["ip", "netns", "exec", server_ns, "iperf3", "-s", "-1", "-B",
                                addr], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        r = subprocess.run(["ip", "netns", "exec", client_ns, "iperf3", "-c", addr, "-t", "3",
                            "-J"] + extra, capture_output=True, text=True, timeout=30)
        try:
            end = json.loads(r.stdout)["end"]
            print(f"iperf3 TCP {what}: "
                  f"{end['sum_received']['bits_per_second'] / 1e6:.1f} Mbit/s received, "
                  f"{end['sum_sent'].get('retransmits', 0)} retransmits", flush=True)
        except (ValueError, KeyError):
            print(f"iperf3 {what}: no result ({r.stderr.strip()[:200]})")
        if srv.poll() is None:
            srv.kill()
        srv.wait()


def main():
    require_root()
    control, dataplane, magsim, linkemu, hagctl = sys.argv[1:6]
    topo = Topology("mp")
    core, gw, anet, emu, cpe = (topo.ns(n) for n in ("core", "gw", "anet", "emu", "cpe"))
    for ns in (core, gw, anet, emu, cpe):
        for conf in ("all", "default"):
            sh("sysctl", "-qw", f"net.ipv6.conf.{conf}.accept_dad=0", ns=ns)
    core_mac, _ = topo.veth(core, "eth0", gw, "core0")
    topo.veth(gw, "acc0", anet, "a0")
    topo.veth(anet, "a1", cpe, "m0")
    topo.veth(anet, "a2", emu, "e0")
    topo.veth(emu, "e1", cpe, "m1")
    # The gateway kernel stays off the DPDK ports (a NIC bound to vfio-pci is invisible to it).
    sh("sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1", ns=gw)
    for dev in ("core0", "acc0"):
        sh("sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1", ns=gw)
        sh("sysctl", "-qw", f"net.ipv4.conf.{dev}.rp_filter=1", ns=gw)
        sh("ip", "link", "set", "dev", dev, "arp", "off", ns=gw)
    sh("ip", "link", "add", "br0", "type", "bridge", ns=anet)
    for dev in ("a0", "a1", "a2"):
        sh("ip", "link", "set", dev, "master", "br0", ns=anet)
    sh("ip", "link", "set", "br0", "up", ns=anet)
    for dev in ("e0", "e1"):
        sh("sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1", ns=emu)
    # The core host routes the subscribers' prefixes to the gateway at the link's MTU (1500);
    # what does not fit the access links with 52 octets of IPv6 + GRE gets a Packet Too Big.
    sh("ip", "-6", "addr", "add", CORE6 + "/64", "dev", "eth0", "nodad", ns=core)
    sh("ip", "-6", "route", "add", "2001:db8:100::/40", "via", "2001:db8:9999::fe", ns=core)
    sh("ip", "-6", "addr", "add", DSL6 + "/64", "dev", "m0", "nodad", ns=cpe)
    sh("ip", "-6", "addr", "add", LTE6 + "/64", "dev", "m1", "nodad", ns=cpe)
    sh("ip", "-6", "route", "add", LMA6 + "/128", "dev", "m0", "metric", "1", ns=cpe)
    sh("ip", "-6", "route", "add", LMA6 + "/128", "dev", "m1", "metric", "2", ns=cpe)
    sh("ip", "addr", "add", DSL4 + "/24", "dev", "m0", ns=cpe)
    sh("ip", "route", "add", LMA4 + "/32", "dev", "m0", ns=cpe)

    tmp = topo.tmpdir("hag-itmp-")
    emu_stats = os.path.join(tmp, "linkemu.json")
    emu_p = topo.spawn(emu, linkemu, "--a", "e0", "--b", "e1", "--delay-ms", str(DELAY_MS),
                       "--jitter-ms", "1", "--reorder", "0.05", "--reorder-ba", "0",
                       "--stats", emu_stats, stdout=subprocess.PIPE)
    assert wait_for_line(emu_p, "ready", 20), "linkemu did not start"

    dconf = os.path.join(tmp, "dataplane.conf")
    with open(dconf, "w") as f:
        f.write(DATAPLANE_CONF.format(pid=os.getpid(), core6=CORE6, lma6=LMA6, lma4=LMA4,
                                      tmp=tmp))
    dp = topo.spawn(gw, dataplane, "-c", dconf, stdout=subprocess.PIPE)
    assert wait_for_line(dp, "ready", 60), "hag-dataplane did not start"
    sh("ip", "-6", "addr", "add", "2001:db8:9999::fe/64", "dev", "hag-core", "nodad", ns=gw)
    sh("ip", "-6", "addr", "add", LMA6 + "/128", "dev", "hag-access", "nodad", ns=gw)
    for net in ("2001:db8:aaaa::/64", "2001:db8:bbbb::/64"):
        sh("ip", "-6", "route", "add", net, "dev", "hag-access", ns=gw)
    sh("ip", "addr", "add", LMA4 + "/32", "dev", "hag-access", ns=gw)
    sh("ip", "route", "add", "198.51.100.0/24", "dev", "hag-access", ns=gw)

    cconf = os.path.join(tmp, "control.conf")
    with open(cconf, "w") as f:
        f.write(CONTROL_CONF.format(lma6=LMA6, lma4=LMA4, tmp=tmp))
    ctl = topo.spawn(gw, control, "-c", cconf, stdout=subprocess.PIPE)
    assert wait_for_line(ctl, "hag-control ready", 30), "hag-control did not start"

    mstats = os.path.join(tmp, "magsim.json")
    ms = subprocess.Popen(["ip", "netns", "exec", cpe, magsim, "register", "--lma", LMA6,
                           "--lma", LMA4, "--nai", "cpe1@example.net", "--access", "dsl:m0:1",
                           "--access", "lte:m1:2", "--access", "dsl4:m0:3",
                           "--link-metrics", "1:100000:20000", "--link-metrics", "2:50000:10000",
                           "--link-metrics", "3:100000:10000", "--data", "--tun", "magsim0",
                           "--route", "2001:db8:9999::/64", "--stats", mstats],
                          stdout=subprocess.PIPE, text=True)
    topo.procs.append(ms)
    failures = []
    lines = []
    end = time.monotonic() + 60
    while time.monotonic() < end:
        line = ms.stdout.readline()
        if not line:
            break
        print("magsim:", line.rstrip(), flush=True)
        lines.append(line)
        if "data mode: ready" in line:
            break
    hnps = re.findall(r"registration: accepted \(0\) hnp=([0-9a-f:]+)::/64", "".join(lines))
    if len(hnps) != 3 or len(set(hnps)) != 1:
        topo.stop(ms)
        print("FAIL: the three accesses registered with one HNP:", lines)
        return 1
    home = hnps[0] + "::1"

    # The session reaches hag-dataplane through hag-control: wait until ping passes.
    ok = False
    for _ in range(40):
        r = subprocess.run(["ip", "netns", "exec", core, "ping", "-6", "-c", "1", "-W", "1", home],
                           capture_output=True, text=True)
        if r.returncode == 0:
            ok = True
            break
        time.sleep(0.25)
    if not ok:
        failures.append(f"ping {home} from the core host never passed")
    else:
        transfer(failures, core, cpe, home, 20_000_000, "downlink TCP core -> home router")
        transfer(failures, cpe, core, CORE6, 20_000_000, "uplink TCP home router -> core")
        iperf(core, cpe, home)
        # The access that carried the downlink is revoked: magsim takes it out of the uplink
        # split, the data plane moves the downlink to another path.
        r = subprocess.run([hagctl, "-s", f"unix:{tmp}/control.sock", "bindings", "delete",
                            "cpe1@example.net", "--bid", "1"], capture_output=True, text=True,
                           timeout=30)
        print("hagctl bindings delete --bid 1:", r.returncode, r.stdout.strip(), r.stderr.strip())
        revoked = False
        end = time.monotonic() + 20
        while time.monotonic() < end and not revoked:
            line = ms.stdout.readline()
            print("magsim:", line.rstrip(), flush=True)
            revoked = "bid=1 revoked by LMA" in line
        if not revoked:
            failures.append("magsim did not report access bid=1 revoked")
        time.sleep(0.5)  # the data plane's programming follows the revocation
        transfer(failures, core, cpe, home, 5_000_000, "downlink TCP after revoking bid 1")
        transfer(failures, cpe, core, CORE6, 5_000_000, "uplink TCP after revoking bid 1")

    topo.stop(ms)
    for line in ms.stdout.read().splitlines():
        print("magsim:", line)
    topo.stop(emu_p)
    topo.stop(ctl)
    topo.stop(dp)
    out = dp.stdout.read()
    dstats = json.loads([l for l in out.splitlines() if l.startswith("{")][-1])
    with open(mstats) as f:
        m = json.load(f)
    with open(emu_stats) as f:
        e = json.load(f)
    print("magsim stats:", json.dumps(m))
    print("linkemu stats:", json.dumps(e))
    print("hag-dataplane uplink drops:", json.dumps(dstats["uplink"]["drops"]))
    acc = m["accesses"]
    if any(acc[b]["up_packets"] == 0 for b in ("1", "2", "3")):
        failures.append(f"uplink did not use all three accesses: {acc}")
    if acc["1"]["down_packets"] < 1000:
        failures.append(f"too little downlink GRE reached magsim on bid 1: {acc}")
    if acc["2"]["down_packets"] + acc["3"]["down_packets"] < 300:
        failures.append(f"downlink did not move to another access after the revocation: {acc}")
    for bid in ("1", "2", "3"):
        if any(acc[bid]["down_drops"].values()) or acc[bid]["down_wrong_source"]:
            failures.append(f"magsim dropped downlink GRE on bid {bid}: {acc[bid]}")
    # Nothing sent on the revoked path afterwards either (it would be dropped as an unknown
    # tunnel or spoofed outer source).
    if any(dstats["uplink"]["drops"].get(k) for k in ("unknown_key", "spoofed_inner_source",
                                                       "spoofed_outer_source", "unknown_tunnel")):
        failures.append(f"hag-dataplane uplink drops: {dstats['uplink']['drops']}")
    # After the revocation the downlink crossed linkemu, which reordered some of it toward the
    # home router: magsim's reorder buffer put those back in order.
    if e["a_to_b"]["reordered"] and not m["session"]["reordered"]:
        failures.append("linkemu reordered the downlink but magsim's reorder buffer held nothing")
    if e["a_to_b"]["forwarded"] == 0 or e["b_to_a"]["forwarded"] == 0:
        failures.append(f"linkemu forwarded nothing one way: {e}")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
