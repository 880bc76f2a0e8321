#!/usr/bin/python3
"""hag-dataplane forwards real traffic both ways between a core host and a home router.

Topology (network namespaces, veth pairs, documentation addresses):

  core host ns            gateway ns (hag-dataplane)              home router ns
  2001:db8:9999::1  ---- core port | net_af_packet | access port ---- 2001:db8:aaaa::1 (CoA)
                                                                     gre_peer.py (TUN + raw GRE)
                                                                     2001:db8:1::42 on the TUN

The home router's GRE endpoint is gre_peer.py, independent of hag's code (the kernel here has
no ip6gre). Checked: ping, UDP both ways, a TCP transfer, GRE key and sequence numbers seen by
the peer, and hag's own counters.

MTU: every link is 1500, the home router's TUN too, so a full-size inner packet does not fit
the access link with 52 octets of outer IPv6 + GRE. With the default mtu_action hag answers
with ICMPv6 Packet Too Big (MTU 1448): a large ping from the core host is told so, and the TCP
transfer (MSS 1440) completes by path MTU discovery. Then hag restarts with mtu_action FRAGMENT
and a 1500-octet UDP datagram reaches the home router in two outer fragments that its kernel
reassembles.
"""
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from netns import Topology, require_root, sh, udp_count, wait_for_line  # noqa: E402

DATAPLANE, GRE_PEER = sys.argv[1], sys.argv[2]
UPLINK_KEY, DOWNLINK_KEY = 0x1001, 0x2002


def write_conf(conf, tmp, core_host_mac, cpe_mac, extra=""):
    with open(conf, "w") as f:
        f.write(f"""
log {{ level: "info" }}
eal_args: ["--no-huge", "--no-pci", "-m", "512", "--file-prefix", "hag-it-{os.getpid()}",
           "-l", "0-1", "--log-level", "lib.*:warning", "--no-telemetry"]
ports {{ name: "core" device: "net_af_packet0,iface=core0" role: CORE next_hop_mac: "{core_host_mac}"
        addresses: "2001:db8:9999::fe" }}
ports {{ name: "access" device: "net_af_packet1,iface=acc0" role: ACCESS }}
mbufs: 8191
max_sessions: 1024
programmer_listen: "unix:{tmp}/programmer.sock"
idle_sleep_us: 20
sessions {{
  id: 1 uplink_key: {UPLINK_KEY} prefixes: "2001:db8:1::/64"
  paths {{ bid: 1 local: "2001:db8:ff::1" care_of: "2001:db8:aaaa::1" downlink_key: {DOWNLINK_KEY}
          port: "access" next_hop_mac: "{cpe_mac}" }}
}}
{extra}
""")


def exit_stats(topo, dp):
    topo.stop(dp)
    out = dp.stdout.read()
    return json.loads([l for l in out.splitlines() if l.startswith("{")][-1])


def main():
    require_root()
    topo = Topology("dp")
    core, gw, cpe = topo.ns("core"), topo.ns("gw"), topo.ns("cpe")
    core_host_mac, gw_core_mac = topo.veth(core, "eth0", gw, "core0")
    cpe_mac, gw_access_mac = topo.veth(cpe, "eth0", gw, "acc0")

    sh("ip", "-6", "addr", "add", "2001:db8:9999::1/64", "dev", "eth0", "nodad", ns=core)
    sh("ip", "-6", "route", "add", "2001:db8:1::/64", "via", "2001:db8:9999::fe", ns=core)
    sh("ip", "-6", "neigh", "add", "2001:db8:9999::fe", "lladdr", gw_core_mac, "dev", "eth0", ns=core)
    sh("ip", "-6", "addr", "add", "2001:db8:aaaa::1/64", "dev", "eth0", "nodad", ns=cpe)
    sh("ip", "-6", "route", "add", "2001:db8:ff::1/128", "dev", "eth0", ns=cpe)
    sh("ip", "-6", "neigh", "add", "2001:db8:ff::1", "lladdr", gw_access_mac, "dev", "eth0", ns=cpe)

    tmp = topo.tmpdir("hag-it-")
    conf = os.path.join(tmp, "dataplane.conf")
    write_conf(conf, tmp, core_host_mac, cpe_mac)
    sh(DATAPLANE, "--check-config", "-c", conf)
    dp = topo.spawn(gw, DATAPLANE, "-c", conf, stdout=subprocess.PIPE)
    assert wait_for_line(dp, "ready", 60), "hag-dataplane did not start"
    stats_file = os.path.join(tmp, "peer.json")
    peer = topo.spawn(cpe, GRE_PEER, "--tun", "hagtun", "--tun-addr", "2001:db8:1::42/64",
                      "--route", "2001:db8:9999::/64", "--local", "2001:db8:aaaa::1",
                      "--remote", "2001:db8:ff::1", "--out-key", hex(UPLINK_KEY),
                      "--in-key", hex(DOWNLINK_KEY), "--stats", stats_file, "--mtu", "1500",
                      stdout=subprocess.PIPE)
    assert wait_for_line(peer, "ready", 20), "gre_peer did not start"
    time.sleep(0.5)

    failures = []

    # 1. ping from the core host to the home router through the tunnel, and back.
    rc = subprocess.run(["ip", "netns", "exec", core, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2",
                         "2001:db8:1::42"], capture_output=True, text=True)
    if rc.returncode != 0:
        failures.append(f"ping core -> home router failed: {rc.stdout} {rc.stderr}")

    # 2. UDP both ways: 200 datagrams each, counted by a receiver on the other side.
    for src_ns, dst_ns, dst in ((core, cpe, "2001:db8:1::42"), (cpe, core, "2001:db8:9999::1")):
        got = udp_count(src_ns, dst_ns, dst, 200, 900)
        if got < 190:  # a veth ring may drop a few under a burst; most must arrive
            failures.append(f"UDP to {dst}: {got} of 200 datagrams arrived")

    # 3. TCP: 2 MB from the core host to the home router, bytes verified.
    tcp_server = """
import socket, hashlib, sys
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("2001:db8:1::42", 7001)); s.listen(1); s.settimeout(20)
c, _ = s.accept(); c.settimeout(20); h = hashlib.sha256(); n = 0
while True:
    d = c.recv(65536)
    if not d: break
    h.update(d); n += len(d)
print(n, h.hexdigest())
"""
    tcp_client = """
import socket, hashlib
data = bytes(range(256)) * 8192
c = socket.create_connection(("2001:db8:1::42", 7001), timeout=20); c.sendall(data); c.close()
print(len(data), hashlib.sha256(data).hexdigest())
"""
    srv = subprocess.Popen(["ip", "netns", "exec", cpe, "/usr/bin/python3", "-c", tcp_server],
                           stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    sent = subprocess.run(["ip", "netns", "exec", core, "/usr/bin/python3", "-c", tcp_client],
                          capture_output=True, text=True, timeout=60).stdout.strip()
    received = srv.communicate(timeout=60)[0].strip()
    if not sent or sent != received:
        failures.append(f"TCP transfer: sent '{sent}', received '{received}'")
    # ... which needed path MTU discovery: the core host learned 1448 from hag's Packet Too Big.
    route = subprocess.run(["ip", "netns", "exec", core, "ip", "-6", "route", "get",
                            "2001:db8:1::42"], capture_output=True, text=True).stdout
    if "mtu 1448" not in route:
        failures.append(f"the core host did not learn the path MTU 1448: {route.strip()}")

    # 4. A large ping with DF is answered by a Packet Too Big from the gateway (the echo reply
    # would come back in outer fragments, which hag's uplink does not take: not waited for).
    sh("ip", "-6", "route", "flush", "cache", ns=core)
    rc = subprocess.run(["ip", "netns", "exec", core, "ping", "-6", "-c", "1", "-W", "1", "-M", "do",
                         "-s", "1452", "2001:db8:1::42"], capture_output=True, text=True)
    if "mtu=1448" not in rc.stdout + rc.stderr:
        failures.append(f"large ping: no Packet Too Big with mtu=1448: {rc.stdout} {rc.stderr}")

    stats = exit_stats(topo, dp)
    print("hag-dataplane:", json.dumps(stats))
    ev = stats["downlink"]["events"]
    if ev["packet_too_big_sent"] < 2 or stats["downlink"]["drops"]["too_big"] < 2:
        failures.append(f"hag sent {ev['packet_too_big_sent']} Packet Too Big, expected 2 or more")

    # 5. mtu_action FRAGMENT: a 1500-octet packet leaves in two outer fragments, the home
    # router's kernel reassembles them, the datagram arrives whole.
    write_conf(conf, tmp, core_host_mac, cpe_mac, "mtu_action: FRAGMENT")
    sh(DATAPLANE, "--check-config", "-c", conf)
    dp2 = topo.spawn(gw, DATAPLANE, "-c", conf, stdout=subprocess.PIPE)
    assert wait_for_line(dp2, "ready", 60), "hag-dataplane (FRAGMENT) did not start"
    time.sleep(0.5)
    sh("ip", "-6", "route", "flush", "cache", ns=core)
    recv = """
import socket, sys, hashlib
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind(("2001:db8:1::42", 7002))
s.settimeout(10); print("ready", flush=True)
sizes = []
try:
    while len(sizes) < 3:
        d = s.recv(65535); sizes.append((len(d), hashlib.sha256(d).hexdigest()[:16]))
except socket.timeout:
    pass
print(sizes)
"""
    send = """
import socket, time, hashlib
d = bytes(i % 251 for i in range(1452))
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
for _ in range(3):
    s.sendto(d, ("2001:db8:1::42", 7002)); time.sleep(0.1)
print([(len(d), hashlib.sha256(d).hexdigest()[:16])] * 3)
"""
    rcv = subprocess.Popen(["ip", "netns", "exec", cpe, "/usr/bin/python3", "-c", recv],
                           stdout=subprocess.PIPE, text=True)
    if rcv.stdout.readline().strip() == "ready":
        expect = subprocess.run(["ip", "netns", "exec", core, "/usr/bin/python3", "-c", send],
                                capture_output=True, text=True, timeout=30).stdout.strip()
        got = rcv.communicate(timeout=30)[0].strip()
        if got != expect:
            failures.append(f"FRAGMENT: sent {expect}, the home router received {got}")
    else:
        rcv.kill()
        failures.append("FRAGMENT: the receiver did not start")
    stats2 = exit_stats(topo, dp2)
    print("hag-dataplane (FRAGMENT):", json.dumps(stats2))
    ev2 = stats2["downlink"]["events"]
    if ev2["fragmented"] != 3 or ev2["fragments"] != 6:
        failures.append(f"FRAGMENT: hag fragmented {ev2['fragmented']} packets into "
                        f"{ev2['fragments']} fragments, expected 3 into 6")

    topo.stop(peer)
    with open(stats_file) as f:
        pstats = json.load(f)
    print("gre_peer:", json.dumps(pstats))

    if pstats["rx_bad_key"] or pstats["rx_no_key"] or pstats["rx_no_seq"] or pstats["rx_malformed"]:
        failures.append(f"peer saw bad GRE from hag: {pstats}")
    # Once, where the restarted hag (FRAGMENT) began its sequence space at 0 again.
    if pstats["rx_seq_backwards"] != 1:
        failures.append(f"downlink sequence numbers went backwards {pstats['rx_seq_backwards']} "
                        "times (expected once, at the restart)")
    if pstats["first_seq"] != 0:
        failures.append(f"first downlink sequence number {pstats['first_seq']}, expected 0")
    if stats["downlink"]["encapsulated"] < 200 or stats["uplink"]["decapsulated"] < 200:
        failures.append("hag counted too few packets")
    if stats["downlink"]["encapsulated"] != pstats["rx"] + pstats["rx_bad_key"]:
        # everything hag encapsulated reached the peer (no loss on a veth at this rate)
        print(f"note: encapsulated {stats['downlink']['encapsulated']}, peer received {pstats['rx']}")
    if stats["uplink"]["drops"]["spoofed_inner_source"] or stats["uplink"]["drops"]["unknown_key"]:
        failures.append(f"uplink drops: {stats['uplink']['drops']}")
    if stats["sessions"]["1"]["downlink_packets"] != stats["downlink"]["encapsulated"]:
        failures.append("per-session downlink counter disagrees with the stage counter")

    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
