#!/usr/bin/python3
"""Distributed anchoring with real data planes and traffic (issue 14, docs/scale-out.md): a home
router moves from node A to node B; its old flow (an address in A's prefix) keeps working
through A -> inter-anchor GRE -> B -> the router's tunnel, both ways; a new flow with an address
in B's prefix goes through B only.

Topology: tests/integration/lib/hagcluster.py with dataplane (etcd with TLS started by the
test; nodes a, b and c (like b, 2001:db8:300::/48, ::c) each run hag-control and its own hag-dataplane on net_af_packet veths):

  core ns: br0 2001:db8:9999::1          node a: core0 |hag-dataplane| acc0    cpe ns: br0
  (the core host; routes a's pool  --- c0           core gw ::a, LMA        m0 --  2001:db8:aaaa::1
  2001:db8:100::/48 to a, b's pool --- c1   node b: core gw ::b, LMA        m1 --  hag-magsim --data
  2001:db8:200::/48 to b: the                 2001:db8:aaaa::b                      (tun magsim0)
  operator's routing)                         (a: 2001:db8:aaaa::a)

The nodes' access ports and the router share one link (cpe's bridge): the router's tunnel and
the GRE between the anchors cross it. Steps:
1. hag-magsim (data mode) registers cpe0 at a: prefix P_A; a UDP echo flow core host:40000 <->
   P_A::1:7000 carries 50 datagrams each way, none lost;
2. the router moves: magsim is killed (SIGKILL: it lost the link, no de-registration) and
   registers again at b (same NAI and MAG identifier): b's PBA carries P_A first, then P_B of
   b's pool; a's binding has one path, to hag-b; b's data plane session has the remote anchor
   with a's uplink key;
3. the same flow (same addresses and ports, the same echo socket in the router): once it passes
   again (the move: loss tolerated until then, bounded), 50 datagrams each way, none lost,
   through a (a's session counters moved by at least 50 each way) and b's relay (relay
   counters at least 50 each way);
4. a new flow core host:40001 <-> P_B::1:7001: 50 datagrams each way, none lost, b's session
   counters moved by at least 50 each way, a's did not move, b's relay counters did not move;
5. node b dies (kill -9 of hag-control, its data plane stopped); after its liveness lease the
   router registers at c, which takes b's binding over and registers the old prefix at a
   again: c's PBA carries P_A first, a's binding's one path points at hag-c, the old flow
   echoes 50 of 50 through a and c's relay; the core host then routes b's pool to c (the
   operator's routing) and the P_B flow echoes 50 of 50 through c's session (not its relay,
   not a).
Root only (exit 77 otherwise); etcd required (Debian etcd-server).

usage: dmm_traffic_test.py HAG_CONTROL HAG_DATAPLANE HAG_MAGSIM HAGCTL
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import hagcluster  # noqa: E402
import netns  # noqa: E402

wait_for = hagcluster.wait_for
PY = "/usr/bin/python3"
NAI = "cpe0@example.net"
COA = "2001:db8:aaaa::1"
CORE = "2001:db8:9999::1"
COUNT = 50

NODES = {
    "a": {"lma": "2001:db8:aaaa::a", "core_gw": "2001:db8:9999::a", "etcd": "2001:db8:e0::1",
          "pool": "2001:db8:100::/48", "kmin": 1, "kmax": 99999},
    "b": {"lma": "2001:db8:aaaa::b", "core_gw": "2001:db8:9999::b", "etcd": "2001:db8:e1::1",
          "pool": "2001:db8:200::/48", "kmin": 100000, "kmax": 199999},
    "c": {"lma": "2001:db8:aaaa::c", "core_gw": "2001:db8:9999::c", "etcd": "2001:db8:e2::1",
          "pool": "2001:db8:300::/48", "kmin": 200000, "kmax": 299999},
}

CONFIG = hagcluster.node_config("/hag-dmm-traffic-test/", hagcluster.DMM_STORE)

# Each node's hag-dataplane configuration (the flows: hagcluster.Traffic).
DATAPLANE_CONFIG = hagcluster.TRAFFIC_DATAPLANE_CONFIG

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def main():
    netns.require_root()
    control, dataplane, magsim, hagctl = sys.argv[1:5]
    if shutil.which("etcd") is None:
        print("FAIL etcd not installed (Debian etcd-server; tools/quickstart installs it)")
        return 1
    started = time.monotonic()
    cl = hagcluster.Cluster("dmmtr", NODES, CONFIG, control, hagctl, None, check,
                            dataplane=dataplane, dataplane_config=DATAPLANE_CONFIG,
                            router_coa=COA, core_host=CORE)
    topo = cl.topo
    for n, cfg in NODES.items():
        netns.sh("ip", "-6", "route", "add", cfg["pool"], "via", cfg["core_gw"], ns=cl.core)
    magsims = []

    def magsim_start(n):
        log = os.path.join(cl.work, f"magsim-{len(magsims)}.log")
        p = topo.spawn_logged(cl.cpe, log, magsim, "register", "--lma", NODES[n]["lma"],
                              "--nai", NAI, "--mag-id", "mag0@example.net", "--access",
                              "dsl:br0:1", "--data", "--tun", "magsim0", "--route",
                              CORE.rsplit(":", 1)[0] + ":/64")
        magsims.append(p)
        ready = netns.wait_for_file_line(log, "data mode: ready", 20, p)
        with open(log) as f:
            text = f.read()
        print(text.strip(), flush=True)
        return p, ready is not None, text

    tr = hagcluster.Traffic(cl, check, CORE, NAI, COUNT, PY)
    echo, flow, passes, session, counts, moved = (tr.echo, tr.flow, tr.passes, tr.session,
                                                  tr.counts, tr.moved)

    try:
        cl.start_etcd()
        check(wait_for(cl.etcd_ready, 15), "etcd started")
        for n in NODES:
            cl.start(n)

        # 1. Registered at a; the old flow.
        ms, ready, text = magsim_start("a")
        m = re.search(r"hnp=(\S+)", text)
        check(ready and m is not None, "cpe0 registered at a (data mode)")
        p_a = m.group(1) if m else "2001:db8:100::/64"
        check(p_a.startswith("2001:db8:100:"), f"its prefix {p_a} is of a's pool")
        old = p_a.split("/")[0] + "1"
        echo(old, 7000)
        check(passes(old, 7000, 40000, 15), f"the old flow to [{old}]:7000 passes through a")
        r = flow(old, 7000, 40000)
        check(r["echoed"] == COUNT, f"old flow at a: {r['echoed']}/{COUNT} echoed")
        base = r["server"]

        # 2. The router moves to b.
        ms.send_signal(signal.SIGKILL)
        ms.wait()
        ms, ready, text = magsim_start("b")
        m = re.search(r"hnps=(\S+)", text)
        hnps = m.group(1).split(",") if m else []
        check(ready and len(hnps) == 2 and hnps[0] == p_a and hnps[1].startswith("2001:db8:200:"),
              f"b's PBA carries the old prefix first, then a new one of b's pool ({hnps})")
        p_b = hnps[1] if len(hnps) == 2 else "2001:db8:200::/64"

        def a_relayed():
            b = cl.bindings("a").get(NAI)
            return b if b and len(b.get("paths", [])) == 1 and \
                b["paths"][0].get("mag_id") == "hag-b" else None
        ab = wait_for(a_relayed, 10) or {}
        path = (ab.get("paths") or [{}])[0]
        check(path.get("coa") == NODES["b"]["lma"] and ab.get("home_prefixes") == [p_a],
              f"a's binding of cpe0: one path to hag-b at {path.get('coa')}, "
              f"{ab.get('home_prefixes')}")

        def b_dp():
            ra = session("b").get("session", {}).get("remote_anchors") or []
            return ra if ra and int(ra[0].get("uplink_key", 0)) != 0 else None
        ra = (wait_for(b_dp, 10) or [{}])[0]
        check(ra.get("prefix") == p_a and ra.get("anchor") == NODES["a"]["lma"],
              f"b's data plane relays {p_a} to a: {ra}")

        # 3. The old flow after the move: through a, the anchors' GRE and b.
        a0, b0 = counts("a"), counts("b")
        check(passes(old, 7000, 40000, 15), "the old flow passes again after the move")
        r = flow(old, 7000, 40000)
        a1, b1 = counts("a"), counts("b")
        check(r["echoed"] == COUNT, f"old flow after the move: {r['echoed']}/{COUNT} echoed")
        check(r["server"] - base >= COUNT,
              f"the router's echo socket received {r['server'] - base} since the move began")
        check(moved(a0, a1, "downlink_packets") >= COUNT and
              moved(a0, a1, "uplink_packets") >= COUNT,
              f"a's session carried it: {a0} -> {a1}")
        check(moved(b0, b1, "relay_downlink_packets") >= COUNT and
              moved(b0, b1, "relay_uplink_packets") >= COUNT,
              f"b's relay carried it: {b0} -> {b1}")

        # 4. A new flow with an address of P_B: b only.
        new = p_b.split("/")[0] + "1"
        netns.sh("ip", "-6", "addr", "add", new + "/64", "dev", "magsim0", "nodad", ns=cl.cpe)
        echo(new, 7001)
        check(passes(new, 7001, 40001, 15), f"the new flow to [{new}]:7001 passes")
        a0, b0 = counts("a"), counts("b")
        r = flow(new, 7001, 40001)
        a1, b1 = counts("a"), counts("b")
        check(r["echoed"] == COUNT, f"new flow: {r['echoed']}/{COUNT} echoed")
        check(moved(b0, b1, "downlink_packets") >= COUNT and
              moved(b0, b1, "uplink_packets") >= COUNT, f"b's session carried it: {b0} -> {b1}")
        check(a0 == a1, f"a's session did not move: {a0} -> {a1}")
        check(moved(b0, b1, "relay_downlink_packets") == 0 and
              moved(b0, b1, "relay_uplink_packets") == 0, "b's relay counters did not move")

        # 5. Node b dies (kill -9 of its hag-control; its data plane stops with it); once its
        # liveness lease has ended the router registers at c, which takes b's binding over
        # and registers the old prefix at a again: the old flow goes a -> c -> router.
        cl.daemons["b"].send_signal(signal.SIGKILL)
        cl.daemons["b"].wait()
        topo.stop(cl.dps["b"], 10)
        ms.send_signal(signal.SIGKILL)
        ms.wait()
        time.sleep(4)  # b's liveness lease (node_lease_seconds 3) ends
        ms, ready, text = magsim_start("c")
        m = re.search(r"hnps=(\S+)", text)
        hnps_c = m.group(1).split(",") if m else []
        check(ready and hnps_c[:1] == [p_a],
              f"c's PBA carries the old prefix first ({hnps_c})")

        def a_relayed_c():
            b = cl.bindings("a").get(NAI)
            return b if b and len(b.get("paths", [])) == 1 and \
                b["paths"][0].get("mag_id") == "hag-c" else None
        ab = wait_for(a_relayed_c, 10) or {}
        path = (ab.get("paths") or [{}])[0]
        check(path.get("coa") == NODES["c"]["lma"] and ab.get("home_prefixes") == [p_a],
              f"a's binding of cpe0: one path to hag-c at {path.get('coa')}")
        check(passes(old, 7000, 40000, 15), "the old flow passes again after the takeover")
        a0, c0 = counts("a"), counts("c")
        r = flow(old, 7000, 40000)
        a1, c1 = counts("a"), counts("c")
        check(r["echoed"] == COUNT, f"old flow through a and c: {r['echoed']}/{COUNT} echoed")
        check(moved(a0, a1, "downlink_packets") >= COUNT and
              moved(a0, a1, "uplink_packets") >= COUNT,
              f"a's session carried it: {a0} -> {a1}")
        check(moved(c0, c1, "relay_downlink_packets") >= COUNT and
              moved(c0, c1, "relay_uplink_packets") >= COUNT,
              f"c's relay carried it: {c0} -> {c1}")
        # b's prefix, taken over by c: the operator routes it to c now; the new flow goes
        # through c's session, not its relay, and not through a.
        netns.sh("ip", "-6", "route", "replace", NODES["b"]["pool"], "via",
                 NODES["c"]["core_gw"], ns=cl.core)
        netns.sh("ip", "-6", "addr", "add", new + "/64", "dev", "magsim0", "nodad", ns=cl.cpe)
        check(passes(new, 7001, 40001, 15), "the new flow passes through c")
        a0, c0 = counts("a"), counts("c")
        r = flow(new, 7001, 40001)
        a1, c1 = counts("a"), counts("c")
        check(r["echoed"] == COUNT, f"new flow through c: {r['echoed']}/{COUNT} echoed")
        check(moved(c0, c1, "downlink_packets") >= COUNT and
              moved(c0, c1, "uplink_packets") >= COUNT and
              moved(c0, c1, "relay_downlink_packets") == 0 and
              moved(c0, c1, "relay_uplink_packets") == 0 and a0 == a1,
              f"c's session carried it, not its relay, not a: c {c0} -> {c1}, a {a0} -> {a1}")
        print(f"test time {time.monotonic() - started:.1f} s", flush=True)
    finally:
        for p in magsims:
            topo.stop(p, 5)
        cl.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
