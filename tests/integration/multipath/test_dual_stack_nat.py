#!/usr/bin/python3
"""Dual stack and NAT (issue 10): an IPv4-only LTE access behind a Linux NAT bonded with an IPv6
DSL access; an IPv4 home address; IPv4 and IPv6 both ways; a second home router behind the same
NAT (root only).

  core ns                          gw ns                            anet ns       cpe ns (hag-magsim --data)
  2001:db8:9999::1  -- core0 |hag-dataplane| acc0 -- a0 [br0] a1 ------------- m0: DSL 2001:db8:aaaa::1 (bid 1)
  203.0.113.1/25       hag-control: LMA 2001:db8:ff::1,  a2 -- nat ns: n0 198.51.100.2 (masquerade)
                       192.0.2.1 (UDP 5436, data 5437)                 n1 192.0.2.65/26 -- m1: LTE 192.0.2.66 (bid 2)
                                                                     magsim0 tun: HNP::1, IPv4 HoA/32
                                                                       n2 192.0.2.193/26 -- cpe2 ns m1: LTE 192.0.2.194
                                                                                           (bid 1, IPv4 only)

hag-magsim registers DSL over raw MH and LTE over UDP 5436 through the NAT, both asking for an
IPv4 home address (RFC 5844); hag-control assigns 203.0.113.130 from its IPv4 pool, sees the LTE
PBU come from the NAT's address while its IPv4 Care-of Address option says 192.0.2.66, marks the
path NATed (observed address and port) and answers with a NAT Detection option; it programs
hag-dataplane with the IPv4 home address as a /32 and the LTE path's CoA as the NAT's address and
its UDP port as the observed port. User data crosses the NAT as IPv4 / UDP (gateway port 5437,
the router's signalling port) / GRE, kept alive by magsim's keepalives; a second home router
behind the same NAT does the same at its own mapped port — what GRE over Linux conntrack, which
maps GRE by address only, cannot do for two routers. The NAT maps router 2's data (to port
5437) to port 40000, not to the port of its signalling: hag-dataplane learns that port from the
GRE-in-UDP data with the session's key (NAT rebinding, `nat_port_learned`) and sends router 2's
downlink there.
Checked: the binding shows the IPv4 home address and the NATed path (hagctl); UDP over IPv4 and
IPv6 both ways reaches the other side, for both routers; hag-dataplane counted octets on both
paths both ways (the session stripes over the NATed IPv4 path and the IPv6 one); a flow the
policy pins to LTE goes over the NATed path only; the data plane's LTE paths carry the NAT's
ports; it decapsulated UDP and counted keepalives without any UDP or spoofing drop; magsim used
UDP on the NATed accesses and dropped no downlink GRE.

usage: test_dual_stack_nat.py HAG_CONTROL HAG_DATAPLANE HAG_MAGSIM HAGCTL
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from netns import Topology, require_root, sh, wait_for_line  # noqa: E402

LMA6, LMA4 = "2001:db8:ff::1", "192.0.2.1"
DSL6 = "2001:db8:aaaa::1"
NAT_PUBLIC, NAT_INSIDE, LTE4 = "198.51.100.2", "192.0.2.65", "192.0.2.66"
CORE6, CORE4, CORE_GW4 = "2001:db8:9999::1", "203.0.113.1", "203.0.113.126"
HOA4 = "203.0.113.130"  # first address of the IPv4 pool (.128 network, .129 router)
NAI = "cpe1@example.net"
NAI2 = "cpe2@example.net"
NAT_INSIDE2, LTE4_2 = "192.0.2.193", "192.0.2.194"
DATA_PORT2 = 40000  # the NAT's port for router 2's data (its signalling keeps its own port)
PY = "/usr/bin/python3"

CONTROL_CONF = """
log {{ level: "info" }}
lma_addresses: "{lma6}"
lma_addresses: "{lma4}"
hnp_pools {{ name: "residential" prefix: "2001:db8:100::/40" assign_length: 64 }}
ipv4_pools {{ name: "home4" prefix: "203.0.113.128/25" }}
default_profile {{ multipath: true max_paths: 4 max_lifetime_seconds: 3600 }}
allow_unknown_subscribers: true
allow_unknown_mags: true
management_socket: "{tmp}/control.sock"
state_directory: "{tmp}/state"
dataplane_socket: "unix:{tmp}/programmer.sock"
heartbeat_interval_seconds: 1
nat_refresh_seconds: 5
policy {{
  labels {{ name: "DSL" access_technology: 3 }}
  labels {{ name: "LTE" access_technology: 8 }}
  applications {{ name: "probe" match {{ protocol: 17 local_ports: "7002" }} }}
  profiles {{ name: "home" rules {{ application: "probe" preference: "LTE" preference: "DROP" }} }}
  default_profile: "home"
}}
"""

DATAPLANE_CONF = """
log {{ level: "info" }}
eal_args: ["--no-huge", "--no-pci", "-m", "512", "--file-prefix", "hag-v4nat-{pid}",
           "-l", "0-1", "--log-level", "lib.*:warning", "--no-telemetry"]
ports {{ name: "core" device: "net_af_packet0,iface=core0" role: CORE
         next_hop_ipv6: "{core6}" next_hop_ipv4: "{core4}"
         addresses: "2001:db8:9999::fe" addresses: "{core_gw4}" }}
ports {{ name: "access" device: "net_af_packet1,iface=acc0" role: ACCESS
         addresses: "{lma6}" addresses: "{lma4}" }}
mbufs: 8191
max_sessions: 64
programmer_listen: "unix:{tmp}/programmer.sock"
idle_sleep_us: 20
"""

UDP_RECV = """
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2]))); s.settimeout(3); n = 0
print("ready", flush=True)
try:
    while True:
        s.recvfrom(2000); n += 1
except socket.timeout:
    pass
print(n)
"""
UDP_SEND = """
import socket, sys, time
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
if sys.argv[5]: s.bind((sys.argv[5], 0))
for i in range(int(sys.argv[3])):
    s.sendto(b"x" * int(sys.argv[4]), (sys.argv[1], int(sys.argv[2])))
    if i % 20 == 19: time.sleep(0.01)
"""


def udp(src_ns, dst_ns, dst, count=200, size=600, src=None, port=7000):
    """`count` datagrams from src_ns to [dst]:port in dst_ns; returns how many arrived."""
    rcv = subprocess.Popen(["ip", "netns", "exec", dst_ns, PY, "-c", UDP_RECV, dst, str(port)],
                           stdout=subprocess.PIPE, text=True)
    if rcv.stdout.readline().strip() != "ready":
        rcv.wait(timeout=20)
        return 0
    sh(PY, "-c", UDP_SEND, dst, str(port), str(count), str(size), src or "", ns=src_ns)
    return int(rcv.communicate(timeout=20)[0].strip() or 0)


def ping(ns, addr, tries=40):
    for _ in range(tries):
        r = subprocess.run(["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", addr],
                           capture_output=True, text=True)
        if r.returncode == 0:
            return True
        time.sleep(0.25)
    return False


def main():
    require_root()
    control, dataplane, magsim, hagctl = sys.argv[1:5]
    topo = Topology("v4nat")
    try:
        return run(topo, control, dataplane, magsim, hagctl)
    finally:
        topo.close()


def run(topo, control, dataplane, magsim, hagctl):
    core, gw, anet, nat, cpe, cpe2 = (topo.ns(n)
                                      for n in ("core", "gw", "anet", "nat", "cpe", "cpe2"))
    for ns in (core, gw, anet, nat, cpe, cpe2):
        for conf in ("all", "default"):
            sh("sysctl", "-qw", f"net.ipv6.conf.{conf}.accept_dad=0", ns=ns)
    topo.veth(core, "eth0", gw, "core0")
    topo.veth(gw, "acc0", anet, "a0")
    topo.veth(anet, "a1", cpe, "m0")
    topo.veth(anet, "a2", nat, "n0")
    topo.veth(nat, "n1", cpe, "m1")
    topo.veth(nat, "n2", cpe2, "m1")
    # The gateway kernel stays off the DPDK ports (a NIC bound to vfio-pci is invisible to it):
    # without rp_filter it would take IPv4 signalling arriving on acc0 a second time.
    sh("sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1", ns=gw)
    for dev in ("core0", "acc0"):
        sh("sysctl", "-qw", f"net.ipv4.conf.{dev}.rp_filter=1", ns=gw)
        sh("sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1", ns=gw)
        sh("ip", "link", "set", "dev", dev, "arp", "off", ns=gw)
    sh("ip", "link", "add", "br0", "type", "bridge", ns=anet)
    for dev in ("a0", "a1", "a2"):
        sh("ip", "link", "set", dev, "master", "br0", ns=anet)
    sh("ip", "link", "set", "br0", "up", ns=anet)
    # Core host: both families routed to the gateway.
    sh("ip", "-6", "addr", "add", CORE6 + "/64", "dev", "eth0", "nodad", ns=core)
    sh("ip", "-6", "route", "add", "2001:db8:100::/40", "via", "2001:db8:9999::fe", ns=core)
    sh("ip", "addr", "add", CORE4 + "/25", "dev", "eth0", ns=core)
    sh("ip", "route", "add", "203.0.113.128/25", "via", CORE_GW4, ns=core)
    # DSL: IPv6 only, on the access network.
    sh("ip", "-6", "addr", "add", DSL6 + "/64", "dev", "m0", "nodad", ns=cpe)
    sh("ip", "-6", "route", "add", LMA6 + "/128", "dev", "m0", ns=cpe)
    sh("sysctl", "-qw", "net.ipv6.conf.m1.disable_ipv6=1", ns=cpe)
    # LTE: IPv4 only, a private address behind the NAT (nftables masquerade).
    sh("ip", "addr", "add", LTE4 + "/26", "dev", "m1", ns=cpe)
    sh("ip", "route", "add", LMA4 + "/32", "via", NAT_INSIDE, "dev", "m1", ns=cpe)
    sh("ip", "addr", "add", NAT_INSIDE + "/26", "dev", "n1", ns=nat)
    sh("ip", "addr", "add", NAT_PUBLIC + "/24", "dev", "n0", ns=nat)
    # The second home router: LTE only, behind the same NAT.
    sh("ip", "addr", "add", LTE4_2 + "/26", "dev", "m1", ns=cpe2)
    sh("ip", "route", "add", LMA4 + "/32", "via", NAT_INSIDE2, "dev", "m1", ns=cpe2)
    sh("ip", "addr", "add", NAT_INSIDE2 + "/26", "dev", "n2", ns=nat)
    sh("ip", "route", "add", LMA4 + "/32", "dev", "n0", ns=nat)
    sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=nat)
    subprocess.run(["ip", "netns", "exec", nat, "nft", "-f", "-"], check=True, text=True,
                   input="table ip v4nat {\n chain post {\n"
                         "  type nat hook postrouting priority 100;\n"
                         # Router 2's data gets another outside port than its signalling.
                         f"  oifname \"n0\" ip saddr {LTE4_2} udp dport 5437 "
                         f"masquerade to :{DATA_PORT2}\n"
                         "  oifname \"n0\" masquerade\n }\n}\n")

    tmp = topo.tmpdir("hag-v4nat-")
    with open(os.path.join(tmp, "dataplane.conf"), "w") as f:
        f.write(DATAPLANE_CONF.format(pid=os.getpid(), core6=CORE6, core4=CORE4,
                                      core_gw4=CORE_GW4, lma6=LMA6, lma4=LMA4, tmp=tmp))
    dp = topo.spawn(gw, dataplane, "-c", os.path.join(tmp, "dataplane.conf"),
                    stdout=subprocess.PIPE)
    assert wait_for_line(dp, "ready", 60), "hag-dataplane did not start"
    sh("ip", "-6", "addr", "add", "2001:db8:9999::fe/64", "dev", "hag-core", "nodad", ns=gw)
    sh("ip", "addr", "add", CORE_GW4 + "/25", "dev", "hag-core", ns=gw)
    sh("ip", "-6", "addr", "add", LMA6 + "/128", "dev", "hag-access", "nodad", ns=gw)
    sh("ip", "-6", "route", "add", "2001:db8:aaaa::/64", "dev", "hag-access", ns=gw)
    sh("ip", "addr", "add", LMA4 + "/32", "dev", "hag-access", ns=gw)
    sh("ip", "route", "add", "198.51.100.0/24", "dev", "hag-access", ns=gw)

    with open(os.path.join(tmp, "control.conf"), "w") as f:
        f.write(CONTROL_CONF.format(lma6=LMA6, lma4=LMA4, tmp=tmp))
    ctl = topo.spawn(gw, control, "-c", os.path.join(tmp, "control.conf"),
                     stdout=subprocess.PIPE)
    assert wait_for_line(ctl, "hag-control ready", 30), "hag-control did not start"

    ms = subprocess.Popen(["ip", "netns", "exec", cpe, magsim, "register", "--lma", LMA6,
                           "--lma", LMA4, "--nai", NAI, "--access", "dsl:m0:1",
                           "--access", "lte4:m1:2", "--ipv4-hoa", "--heartbeat", "1",
                           "--link-metrics", "1:50000:20000", "--link-metrics", "2:50000:20000",
                           "--data", "--tun", "magsim0", "--route", "2001:db8:9999::/64",
                           "--route", "203.0.113.0/25",
                           "--stats", os.path.join(tmp, "magsim.json")],
                          stdout=subprocess.PIPE, text=True)
    topo.procs.append(ms)
    failures, lines = [], []
    end = time.monotonic() + 60
    while time.monotonic() < end:
        line = ms.stdout.readline()
        if not line:
            break
        print("magsim:", line.rstrip(), flush=True)
        lines.append(line)
        if "data mode: ready" in line:
            break
    text = "".join(lines)
    if "data mode: ready" not in text:
        print("FAIL: magsim did not reach data mode")
        return 1
    if f"ipv4-hoa={HOA4}/32 status=0 default-router=203.0.113.129" not in text:
        failures.append("magsim did not get the IPv4 home address and default router")
    if "nat-detected" not in text:
        failures.append("the LTE PBA carried no NAT Detection option")
    hnp = [l.split("hnp=")[1].split()[0] for l in lines if "accepted (0) hnp=" in l][0]
    home6 = hnp.split("/")[0].rstrip(":") + "::1"

    def ctl_json(*args):
        r = subprocess.run(["ip", "netns", "exec", gw, hagctl, "-s", f"unix:{tmp}/control.sock",
                            "--dataplane", f"unix:{tmp}/programmer.sock", "-o", "json", *args],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"hagctl {args}: {r.stderr}")
        return json.loads(r.stdout)

    b = ctl_json("bindings", "show", NAI)
    print("binding:", json.dumps(b), flush=True)
    paths = {int(p["bid"]): p for p in b.get("paths", [])}
    if b.get("ipv4_home_address") != HOA4 + "/32" or HOA4 + "/32" not in b.get("home_prefixes", []):
        failures.append(f"binding without the IPv4 home address: {b}")
    lte = paths.get(2, {})
    if not (lte.get("nat") and lte.get("coa") == NAT_PUBLIC and lte.get("mag_coa") == LTE4
            and int(lte.get("nat_port", 0)) != 0):
        failures.append(f"LTE path not shown NATed at {NAT_PUBLIC} (MAG {LTE4}): {lte}")
    if paths.get(1, {}).get("nat"):
        failures.append("the DSL path is shown NATed")

    # The second router behind the same NAT: LTE (IPv4 over UDP 5436) only.
    ms2 = subprocess.Popen(["ip", "netns", "exec", cpe2, magsim, "register", "--lma", LMA4,
                            "--nai", NAI2, "--mag-id", "mag2@example.net",
                            "--access", "lte4:m1:1", "--ipv4-hoa",
                            "--heartbeat", "1", "--data", "--tun", "magsim0",
                            "--route", "203.0.113.0/25",
                            "--stats", os.path.join(tmp, "magsim2.json")],
                           stdout=subprocess.PIPE, text=True)
    topo.procs.append(ms2)
    lines2 = []
    end = time.monotonic() + 60
    while time.monotonic() < end:
        line = ms2.stdout.readline()
        if not line:
            break
        print("magsim2:", line.rstrip(), flush=True)
        lines2.append(line)
        if "data mode: ready" in line:
            break
    text2 = "".join(lines2)
    hoa4_2 = text2.split("ipv4-hoa=")[1].split("/")[0] if "ipv4-hoa=" in text2 else None
    if "data mode: ready" not in text2 or not hoa4_2 or "nat-detected" not in text2:
        failures.append(f"the second router behind the NAT did not register: {text2}")
    b2 = ctl_json("bindings", "show", NAI2)
    lte2 = {int(p["bid"]): p for p in b2.get("paths", [])}.get(1, {})
    if not (lte2.get("nat") and lte2.get("coa") == NAT_PUBLIC and lte2.get("mag_coa") == LTE4_2
            and int(lte2.get("nat_port", 0)) not in (0, int(lte.get("nat_port", 0)), DATA_PORT2)):
        failures.append(f"router 2's path not NATed at its own port: {lte2} (router 1: {lte})")

    # Uplink first (magsim's keepalives have opened the NAT's UDP mapping already).
    if not ping(cpe, CORE4):
        failures.append(f"ping {CORE4} from the home router (IPv4 HoA) never passed")
    if not ping(core, HOA4):
        failures.append(f"ping {HOA4} (IPv4 home address) from the core host never passed")
    if not ping(core, home6):
        failures.append(f"ping {home6} from the core host never passed")
    counts = {
        "IPv4 downlink": udp(core, cpe, HOA4),
        "IPv4 uplink": udp(cpe, core, CORE4, src=HOA4),
        "IPv6 downlink": udp(core, cpe, home6),
        "IPv6 uplink": udp(cpe, core, CORE6, src=home6),
    }
    if hoa4_2:
        if not ping(cpe2, CORE4):
            failures.append(f"ping {CORE4} from the second router never passed")
        counts["router 2 IPv4 downlink"] = udp(core, cpe2, hoa4_2)
        counts["router 2 IPv4 uplink"] = udp(cpe2, core, CORE4, src=hoa4_2)
        # Router 1 still works with router 2's mapping in the NAT.
        counts["IPv4 downlink again"] = udp(core, cpe, HOA4, port=7003)
    print("UDP datagrams received of 200:", counts, flush=True)
    for what, n in counts.items():
        if n < 180:  # a few may fall to reordering timeouts on a loaded machine
            failures.append(f"{what}: {n} of 200 datagrams arrived")

    def dp_session(nai=NAI):
        out = ctl_json("dataplane", "sessions", "--all")
        out = out.get("sessions", []) if isinstance(out, dict) else out
        for x in out:
            if x.get("session", {}).get("nai", x.get("nai")) == nai:
                return x
        return {}

    def dp_bytes():
        return {int(p["bid"]): int(p.get("downlink_bytes", 0))
                for p in dp_session().get("paths", [])}

    # Policy: the flow policy pins "probe" (UDP to the home router's port 7002) to the LTE
    # access, the NATed IPv4 path, for IPv4 traffic as for any other.
    before = dp_bytes()
    pinned = udp(core, cpe, HOA4, count=100, port=7002)
    after = dp_bytes()
    moved = {b: after.get(b, 0) - before.get(b, 0) for b in (1, 2)}
    print(f"pinned probe: {pinned} of 100 arrived, downlink octets by path {moved}", flush=True)
    if pinned < 90 or moved[2] < 90 * 600 or moved[1] > moved[2] // 10:
        failures.append(f"the probe flow was not pinned to the NATed LTE path: {pinned}, {moved}")

    dps = dp_session()
    print("data plane session:", json.dumps(dps), flush=True)
    cfg = dps.get("session", {})
    if HOA4 + "/32" not in cfg.get("prefixes", []):
        failures.append(f"the data plane session lacks {HOA4}/32: {cfg}")
    lte_cfg = [p for p in cfg.get("paths", []) if int(p.get("bid", 0)) == 2]
    if (not lte_cfg or lte_cfg[0].get("care_of") != NAT_PUBLIC
            or int(lte_cfg[0].get("udp_port", 0)) != int(lte.get("nat_port", -1))):
        failures.append(f"the data plane's LTE path is not at the NAT's address and port: "
                        f"{lte_cfg}")
    cfg2 = dp_session(NAI2).get("session", {})
    lte2_cfg = cfg2.get("paths", [{}])[0] if cfg2.get("paths") else {}
    if int(lte2_cfg.get("udp_port", 0)) != int(lte2.get("nat_port", -1)):
        failures.append(f"router 2's data plane path is not at its NAT port: {cfg2}")
    by_bid = {int(p["bid"]): p for p in dps.get("paths", [])}
    for bid in (1, 2):
        p = by_bid.get(bid, {})
        if int(p.get("downlink_bytes", 0)) == 0 or int(p.get("uplink_bytes", 0)) == 0:
            failures.append(f"no octets both ways on path {bid} in hag-dataplane: {p}")

    topo.stop(ms)
    topo.stop(ms2)
    with open(os.path.join(tmp, "magsim.json")) as f:
        m = json.load(f)
    print("magsim stats:", json.dumps(m))
    for bid in ("1", "2"):
        acc = m["accesses"][bid]
        if any(acc["down_drops"].values()) or acc["down_wrong_source"]:
            failures.append(f"magsim dropped downlink GRE on bid {bid}: {acc}")
    if not m["accesses"]["2"].get("udp") or m["accesses"]["1"].get("udp"):
        failures.append("magsim router 1 did not use UDP on (only) its NATed access")
    if m["accesses"]["2"].get("keepalives", 0) < 1:
        failures.append("magsim router 1 sent no NAT keepalive")
    if hoa4_2:
        with open(os.path.join(tmp, "magsim2.json")) as f:
            m2 = json.load(f)
        print("magsim2 stats:", json.dumps(m2))
        acc = m2["accesses"]["1"]
        if not acc.get("udp") or any(acc["down_drops"].values()) or acc["down_wrong_source"]:
            failures.append(f"magsim router 2: no UDP or downlink drops: {acc}")
    topo.stop(ctl)
    topo.stop(dp)
    exit_json = [l for l in dp.stdout.read().splitlines() if l.startswith("{")]
    up = json.loads(exit_json[-1]).get("uplink", {}) if exit_json else {}
    print("data plane uplink:", json.dumps(up), flush=True)
    ev, drops = up.get("events", {}), up.get("drops", {})
    if ev.get("udp_decapsulated", 0) < 180 or ev.get("nat_keepalive", 0) < 2:
        failures.append(f"the data plane decapsulated too little UDP or saw no keepalives: {ev}")
    # Router 2's data port was learnt from its data (router 1's data comes from its signalled
    # port: nothing to learn there). Router 2's downlink above could only arrive through it.
    if hoa4_2 and ev.get("nat_port_learned", 0) < 1:
        failures.append(f"the data plane learnt no NAT data port: {ev}")
    for reason in ("udp_malformed", "udp_checksum", "spoofed_outer_source"):
        if drops.get(reason, 0) != 0:
            failures.append(f"the data plane dropped uplink for {reason}: {drops}")
    for f in failures:
        print("FAIL:", f)
    if not failures:
        print("PASS")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
