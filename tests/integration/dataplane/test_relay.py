#!/usr/bin/python3
"""Distributed anchoring's data plane relay (issue 14, docs/scale-out.md): a router that moved
to this node keeps an old prefix anchored at another node, and hag-dataplane relays that
prefix's traffic between the router's tunnel and a GRE tunnel to the anchor.

  router ns (cpe)                 gateway ns (hag-dataplane, 2 workers)       anchor ns (anc)
  gre_peer.py, CoA 2001:db8:aaaa::1 -- acc0 | access  2001:db8:ff::1          gre_peer.py
  2001:db8:a::42 on its TUN                 | anchor  2001:db8:ff::2 | acc1 -- 2001:db8:eeee::1
  (the old prefix 2001:db8:a::/64)                                            2001:db8:9998::1 on
                                                                              its TUN (a host
                                                                              behind anchor A)

The session (static in the configuration first, then programmed over DataplaneProgrammer by
dp_program_client) holds the new prefix
2001:db8:1::/64 and the old one, with a remote anchor for the old one: uplink key 0x3003
toward the anchor, downlink key 0x4004 from it. Both GRE peers are independent userspace
endpoints (tests/integration/lib/gre_peer.py). Checked: UDP from the router's old address to
the host behind the anchor arrives (relay up, the anchor's peer sees key 0x3003), and UDP from
there to the router's old address arrives (relay down, the router's peer sees its own downlink
key); the session's relay counters count them; a second session taking the anchor's downlink
key is refused (INVALID_ARGUMENT); once the remote anchor is removed, the anchor's GRE is
dropped.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from netns import Topology, require_root, sh, udp_count, wait_for_line  # noqa: E402

DATAPLANE, GRE_PEER, CLIENT = sys.argv[1], sys.argv[2], sys.argv[3]
ROUTER_UL, ROUTER_DL, ANCHOR_UL, ANCHOR_DL = 0x1001, 0x2002, 0x3003, 0x4004
COA, ANCHOR = "2001:db8:aaaa::1", "2001:db8:eeee::1"
LOCAL, LOCAL_TO_ANCHOR = "2001:db8:ff::1", "2001:db8:ff::2"


def session(anchor=True, sid=7, uplink_key=ROUTER_UL, coa=COA):
    ra = (f'remote_anchors {{ prefix: "2001:db8:a::/64" local: "{LOCAL_TO_ANCHOR}" '
          f'anchor: "{ANCHOR}" uplink_key: {ANCHOR_UL} downlink_key: {ANCHOR_DL} }}'
          if anchor else "")
    return (f'{{ id: {sid} nai: "router@example.net" uplink_key: {uplink_key} gre_sequence: true '
            f'prefixes: "2001:db8:1::/64" prefixes: "2001:db8:a::/64" '
            f'paths {{ bid: 1 live: true downlink_key: {ROUTER_DL} local: "{LOCAL}" '
            f'care_of: "{coa}" }} {ra} }}')


def main():
    require_root()
    topo = Topology("rl")
    core, gw, cpe, anc = topo.ns("core"), topo.ns("gw"), topo.ns("cpe"), topo.ns("anc")
    core_mac, _ = topo.veth(core, "eth0", gw, "core0")
    cpe_mac, gw_acc_mac = topo.veth(cpe, "eth0", gw, "acc0")
    anc_mac, gw_anc_mac = topo.veth(anc, "eth0", gw, "acc1")
    for dev in ("core0", "acc0", "acc1"):
        sh("sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1", ns=gw)
    for ns, addr, gw_addr, mac in ((cpe, COA, LOCAL, gw_acc_mac),
                                   (anc, ANCHOR, LOCAL_TO_ANCHOR, gw_anc_mac)):
        sh("ip", "-6", "addr", "add", addr + "/64", "dev", "eth0", "nodad", ns=ns)
        sh("ip", "-6", "route", "add", gw_addr + "/128", "dev", "eth0", ns=ns)
        sh("ip", "-6", "neigh", "replace", gw_addr, "lladdr", mac, "dev", "eth0", ns=ns)

    tmp = topo.tmpdir("hag-it-")
    sock = os.path.join(tmp, "dataplane.sock")
    conf = os.path.join(tmp, "dataplane.conf")
    with open(conf, "w") as f:
        f.write(f"""
log {{ level: "info" }}
eal_args: ["--no-huge", "--no-pci", "-m", "512", "--file-prefix", "hag-itrl-{os.getpid()}",
           "--lcores", "(0-2)@(0-1)", "--log-level", "lib.*:warning", "--no-telemetry"]
workers: 2
ports {{ name: "core" device: "net_af_packet0,iface=core0" role: CORE next_hop_mac: "{core_mac}" }}
ports {{ name: "access" device: "net_af_packet1,iface=acc0" role: ACCESS
         next_hop_mac: "{cpe_mac}" addresses: "{LOCAL}" }}
ports {{ name: "anchors" device: "net_af_packet2,iface=acc1" role: ACCESS
         next_hop_mac: "{anc_mac}" addresses: "{LOCAL_TO_ANCHOR}" }}
mbufs: 8191
max_sessions: 64
programmer_listen: "unix:{sock}"
exception_path: false
idle_sleep_us: 20
sessions {{ id: 7 uplink_key: {ROUTER_UL} prefixes: "2001:db8:1::/64" prefixes: "2001:db8:a::/64"
  paths {{ bid: 1 local: "{LOCAL}" care_of: "{COA}" downlink_key: {ROUTER_DL} port: "access"
          next_hop_mac: "{cpe_mac}" }}
  remote_anchors {{ prefix: "2001:db8:a::/64" local: "{LOCAL_TO_ANCHOR}" anchor: "{ANCHOR}"
                   uplink_key: {ANCHOR_UL} downlink_key: {ANCHOR_DL} port: "anchors"
                   next_hop_mac: "{anc_mac}" }} }}
""")
    sh(DATAPLANE, "--check-config", "-c", conf)
    dp = topo.spawn(gw, DATAPLANE, "-c", conf, stdout=subprocess.PIPE)
    assert wait_for_line(dp, "ready", 60), "hag-dataplane did not start"

    failures = []

    def check(cond, what):
        if not cond:
            failures.append(what)
            print("FAIL:", what, flush=True)

    n = [0]

    def call(*args, text=None):
        if text is not None:
            n[0] += 1
            path = os.path.join(tmp, f"req{n[0]}.txt")
            with open(path, "w") as f:
                f.write(text)
            args = args + (path,)
        r = subprocess.run([CLIENT, f"unix:{sock}", *args], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, f"dp_program_client {args}: {r.returncode} {r.stderr}"
        return json.loads(r.stdout)

    stats = {}
    peers = {}
    for name, ns, args in (
            ("router", cpe, ["--tun-addr", "2001:db8:a::42/64", "--route", "2001:db8:9998::/64",
                             "--local", COA, "--remote", LOCAL, "--out-key", hex(ROUTER_UL),
                             "--in-key", hex(ROUTER_DL)]),
            ("anchor", anc, ["--tun-addr", "2001:db8:9998::1/64", "--route", "2001:db8:a::/64",
                             "--local", ANCHOR, "--remote", LOCAL_TO_ANCHOR, "--out-key",
                             hex(ANCHOR_DL), "--in-key", hex(ANCHOR_UL), "--no-seq"])):
        stats[name] = os.path.join(tmp, f"{name}.json")
        peers[name] = topo.spawn(ns, GRE_PEER, "--tun", "hagtun", "--stats", stats[name], *args,
                                 stdout=subprocess.PIPE)
        assert wait_for_line(peers[name], "ready", 20), f"gre_peer {name} did not start"

    # The static session of the configuration, then the same session programmed over the API.
    up = udp_count(cpe, anc, "2001:db8:9998::1", 50, 200)
    down = udp_count(anc, cpe, "2001:db8:a::42", 50, 200)
    check(up >= 45 and down >= 45, f"static session: relay up {up}/50, down {down}/50")
    r = call("apply", text=f"generation: 1\nchanges {{ upsert {session()} }}\n")
    check(r["ok"], f"apply with a remote anchor: {r}")
    up2 = udp_count(cpe, anc, "2001:db8:9998::1", 100, 200)
    down2 = udp_count(anc, cpe, "2001:db8:a::42", 100, 200)
    check(up2 >= 95, f"router -> anchor through the relay: {up2}/100")
    check(down2 >= 95, f"anchor -> router through the relay: {down2}/100")
    up, down = up + up2, down + down2

    listed = call("list")
    s = [x for x in listed["reply"]["sessions"] if x["session"]["id"] == 7]
    check(len(s) == 1 and int(s[0]["relay_uplink_packets"]) >= up and
          int(s[0]["relay_downlink_packets"]) >= down and
          int(s[0]["relay_uplink_bytes"]) > 0 and
          len(s[0]["session"]["remote_anchors"]) == 1, f"relay counters: {s}")

    # The stage's global counters, as in /metrics.
    counters = {c["name"]: int(c["value"]) for c in call("status")["reply"]["counters"]}
    ev = 'hag_stage_events_total{stage="uplink_decap",event="%s"}'
    check(counters.get(ev % "relay_uplink_packets", 0) >= up and
          counters.get(ev % "relay_downlink_packets", 0) >= down,
          f"relay events: {[(k, v) for k, v in counters.items() if 'relay' in k]}")

    # Another session may not take the anchor's downlink key.
    r = call("apply", text=f"generation: 2\nchanges {{ upsert "
                           f"{session(False, 8, ANCHOR_DL, '2001:db8:aaaa::2')} }}\n")
    check(not r["ok"] and r["code"] == "INVALID_ARGUMENT" and "belongs to session 7" in r["message"],
          f"a session taking the anchor's key: {r}")

    # Without the remote anchor, the anchor's GRE is dropped (its key is gone).
    r = call("apply", text=f"generation: 3\nchanges {{ upsert {session(False)} }}\n")
    check(r["ok"], f"apply without the remote anchor: {r}")
    down = udp_count(anc, cpe, "2001:db8:a::42", 20, 200)
    check(down == 0, f"anchor -> router after the remote anchor went: {down}/20")

    for name, p in peers.items():
        topo.stop(p)
        with open(stats[name]) as f:
            st = json.load(f)
        print(name, st, flush=True)
        check(st["rx_bad_key"] == 0, f"{name} peer saw a wrong key: {st}")
    topo.stop(dp)
    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
