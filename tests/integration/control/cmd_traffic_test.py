#!/usr/bin/python3
"""The central mobility database (CMD) mode with real data planes and traffic (issue 14,
RFC 8885, docs/scale-out.md): a home router moves from MAAR a to MAAR b and back; the CMD
keeps where each prefix is anchored and relays the registrations; old flows keep their
address through a GRE tunnel between the MAARs, new flows go through the serving MAAR only.

Topology: tests/integration/lib/hagcluster.py's CmdCluster (no etcd): MAARs a and b each run
hag-control and their own hag-dataplane on net_af_packet veths; the CMD runs hag-control only
(no data plane, no pool), its address on the access link:

  core ns: br0 2001:db8:9999::1         MAAR a: core0 |hag-dataplane| acc0     cpe ns: br0
  (the core host; routes a's pool --- c0          core gw ::a, LMA ::a     m0 -- 2001:db8:aaaa::1
  2001:db8:100::/48 to a, b's pool --- c1  MAAR b: core gw ::b, LMA ::b     m1 -- hag-magsim --data
  2001:db8:200::/48 to b)                                                          (tun magsim0)
                                        CMD: hag-control, 2001:db8:aaaa::c0 mcmd --

Steps:
1. hag-magsim (data mode) registers cpe0 at a: prefix P_A; a UDP echo flow core host:40000
   <-> P_A::1:7000 carries 50 datagrams each way, none lost;
2. the router moves to b (magsim killed with SIGKILL and registered again at b, same NAI and
   MAG identifier): b's PBA carries P_A first, then P_B of b's pool; hagctl at the CMD shows
   cpe0 served by hag-b with P_A anchored at hag-a and P_B at hag-b; a's binding has one path,
   to hag-b; b's data plane session has the remote anchor (P_A at a) with a's uplink key; the
   old flow (same addresses, ports and echo socket) passes again — loss tolerated only until
   its first datagram is back — then 50 of 50 each way through a's session (counters >= 50
   each way) and b's relay (relay counters >= 50 each way); a new flow core host:40001 <->
   P_B::1:7001 echoes 50 of 50 through b's session only (a's session and b's relay counters
   unchanged);
3. the router moves back to a (magsim killed, registered again at a): a's PBA carries P_A and
   P_B; b's binding has one path, to hag-a; a's data plane relays P_B to b; the P_A flow
   echoes 50 of 50 directly through a's session (b's counters unchanged); the P_B flow
   echoes 50 of 50 core -> b -> GRE -> a -> router (b's session counters and a's relay
   counters >= 50 each way);
4. magsim de-registers at a (`hag-magsim deregister` once the data-mode magsim is stopped):
   the de-registration reaches the CMD
   (its directory forgets cpe0) and b (b's binding gone); a's binding gone.
Root only (exit 77 otherwise).

usage: cmd_traffic_test.py HAG_CONTROL HAG_DATAPLANE HAG_MAGSIM HAGCTL
"""
import json
import os
import re
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
CMD_ADDRESS = "2001:db8:aaaa::c0"
COUNT = 50

MAARS = {
    "a": {"lma": "2001:db8:aaaa::a", "core_gw": "2001:db8:9999::a",
          "pool": "2001:db8:100::/48", "kmin": 1, "kmax": 99999},
    "b": {"lma": "2001:db8:aaaa::b", "core_gw": "2001:db8:9999::b",
          "pool": "2001:db8:200::/48", "kmin": 100000, "kmax": 199999},
}

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
    started = time.monotonic()
    cl = hagcluster.CmdCluster("cmdtr", MAARS, control, hagctl, check, dataplane,
                               DATAPLANE_CONFIG, COA, CORE, cmd_name="cmd",
                               cmd_address=CMD_ADDRESS)
    topo = cl.topo
    for n, cfg in MAARS.items():
        netns.sh("ip", "-6", "route", "add", cfg["pool"], "via", cfg["core_gw"], ns=cl.core)
    magsims = []

    def magsim_start(n):
        log = os.path.join(cl.work, f"magsim-{len(magsims)}.log")
        p = topo.spawn_logged(cl.cpe, log, magsim, "register", "--lma", MAARS[n]["lma"],
                              "--nai", NAI, "--mag-id", "mag0@example.net", "--access",
                              "dsl:br0:1", "--data", "--tun", "magsim0", "--route",
                              CORE.rsplit(":", 1)[0] + ":/64")
        magsims.append(p)
        ready = netns.wait_for_file_line(log, "data mode: ready", 20, p)
        with open(log) as f:
            text = f.read()
        print(text.strip(), flush=True)
        return p, ready is not None, text

    def magsim_kill(p):
        """The router loses its link: no de-registration."""
        p.send_signal(signal.SIGKILL)
        p.wait()

    def prefixes(text):
        m = re.search(r"hnps=(\S+)", text) or re.search(r"hnp=(\S+)", text)
        return m.group(1).split(",") if m else []

    def addr(prefix):
        return prefix.split("/")[0] + "1"

    def tun_addresses(*addrs):
        """The router uses these addresses on its tun (magsim gives it the first HNP's ::1)."""
        for a in addrs:
            netns.sh("ip", "-6", "addr", "replace", a + "/64", "dev", "magsim0", "nodad",
                     ns=cl.cpe)

    tr = hagcluster.Traffic(cl, check, CORE, NAI, COUNT, PY)
    echo, flow, passes, session, counts, moved = (tr.echo, tr.flow, tr.passes, tr.session,
                                                  tr.counts, tr.moved)

    def relayed_to(n, peer):
        """n's binding of cpe0 when it has one path, to MAAR peer (the CMD's relayed PBU)."""
        def f():
            b = cl.bindings(n).get(NAI)
            return b if b and len(b.get("paths", [])) == 1 and \
                b["paths"][0].get("mag_id") == f"hag-{peer}" and \
                b["paths"][0].get("relay") is True else None
        return wait_for(f, 10) or {}

    def remote_anchor(n, prefix, anchor):
        """n's data plane relays prefix to MAAR anchor, registered there (uplink key set)."""
        def f():
            for ra in session(n).get("session", {}).get("remote_anchors") or []:
                if ra.get("prefix") == prefix and ra.get("anchor") == MAARS[anchor]["lma"] \
                        and int(ra.get("uplink_key", 0)) != 0:
                    return ra
            return None
        return wait_for(f, 10) or {}

    def directory():
        """The CMD's entry of cpe0 (hagctl at the CMD, JSON)."""
        return cl.bindings("cmd").get(NAI) or {}

    def cmd_table():
        """hagctl bindings list at the CMD, cpe0's row: (serving node, {prefix: anchor node})
        from its HOME PREFIX, NODE and ANCHOR columns."""
        table = cl.hag_text("cmd", "bindings", "list")
        m = re.search(r"cpe0@example\.net\s+(\S+)\s+\S+\s+(\S+)\s+(\S+)", table)
        if not m:
            print(table, flush=True)
            return None, {}
        return m.group(2), dict(zip(m.group(1).split(","), m.group(3).split(",")))

    def served_by(node, anchors):
        """Until the CMD shows cpe0 served by node with these prefix anchors (bounded)."""
        want = (node, anchors)
        got = wait_for(lambda: cmd_table() == want and want, 5) or cmd_table()
        check(got == want and directory().get("serving_node") == node,
              f"hagctl at the CMD: cpe0 served by {node}, anchors {anchors} ({got})")

    try:
        for n in cl.ns:
            cl.start(n)
        if failures:  # e.g. a hag-control without the central_db mode: its log says why
            return 1

        # 1. Registered at a; the old flow.
        ms, ready, text = magsim_start("a")
        hnps = prefixes(text)
        check(ready and len(hnps) == 1, f"cpe0 registered at a (data mode): {hnps}")
        p_a = hnps[0] if hnps else "2001:db8:100::/64"
        check(p_a.startswith("2001:db8:100:"), f"its prefix {p_a} is of a's pool")
        old = addr(p_a)
        echo(old, 7000)
        check(passes(old, 7000, 40000, 15), f"the old flow to [{old}]:7000 passes through a")
        r = flow(old, 7000, 40000)
        check(r["echoed"] == COUNT, f"old flow at a: {r['echoed']}/{COUNT} echoed")
        base = r["server"]
        served_by("hag-a", {p_a: "hag-a"})

        # 2. The router moves to b.
        magsim_kill(ms)
        ms, ready, text = magsim_start("b")
        hnps = prefixes(text)
        check(ready and len(hnps) == 2 and hnps[0] == p_a and hnps[1].startswith("2001:db8:200:"),
              f"b's PBA carries the old prefix first, then a new one of b's pool ({hnps})")
        p_b = hnps[1] if len(hnps) == 2 else "2001:db8:200::/64"
        new = addr(p_b)
        served_by("hag-b", {p_a: "hag-a", p_b: "hag-b"})
        ab = relayed_to("a", "b")
        path = (ab.get("paths") or [{}])[0]
        check(path.get("coa") == MAARS["b"]["lma"] and ab.get("home_prefixes") == [p_a],
              f"a's binding of cpe0: one path to hag-b at {path.get('coa')}, "
              f"{ab.get('home_prefixes')}")
        ra = remote_anchor("b", p_a, "a")
        check(ra.get("prefix") == p_a, f"b's data plane relays {p_a} to a: {ra}")

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

        tun_addresses(old, new)
        echo(new, 7001)
        check(passes(new, 7001, 40001, 15), f"the new flow to [{new}]:7001 passes")
        a0, b0 = counts("a"), counts("b")
        r = flow(new, 7001, 40001)
        a1, b1 = counts("a"), counts("b")
        check(r["echoed"] == COUNT, f"new flow at b: {r['echoed']}/{COUNT} echoed")
        check(moved(b0, b1, "downlink_packets") >= COUNT and
              moved(b0, b1, "uplink_packets") >= COUNT, f"b's session carried it: {b0} -> {b1}")
        check(a0 == a1, f"a's session did not move: {a0} -> {a1}")
        check(moved(b0, b1, "relay_downlink_packets") == 0 and
              moved(b0, b1, "relay_uplink_packets") == 0, "b's relay counters did not move")

        # 3. The router moves back to a: P_A direct, P_B through b's GRE to a.
        magsim_kill(ms)
        ms, ready, text = magsim_start("a")
        hnps = prefixes(text)
        check(ready and sorted(hnps) == sorted([p_a, p_b]),
              f"a's PBA carries both prefixes ({hnps})")
        served_by("hag-a", {p_a: "hag-a", p_b: "hag-b"})
        bb = relayed_to("b", "a")
        path = (bb.get("paths") or [{}])[0]
        check(path.get("coa") == MAARS["a"]["lma"] and bb.get("home_prefixes") == [p_b],
              f"b's binding of cpe0: one path to hag-a at {path.get('coa')}, "
              f"{bb.get('home_prefixes')}")
        ra = remote_anchor("a", p_b, "b")
        check(ra.get("prefix") == p_b, f"a's data plane relays {p_b} to b: {ra}")
        tun_addresses(old, new)

        check(passes(old, 7000, 40000, 15), "the old flow passes at a again")
        a0, b0 = counts("a"), counts("b")
        r = flow(old, 7000, 40000)
        a1, b1 = counts("a"), counts("b")
        check(r["echoed"] == COUNT, f"old flow back at a: {r['echoed']}/{COUNT} echoed ({r})")
        check(moved(a0, a1, "downlink_packets") >= COUNT and
              moved(a0, a1, "uplink_packets") >= COUNT and
              moved(a0, a1, "relay_downlink_packets") == 0 and
              moved(a0, a1, "relay_uplink_packets") == 0,
              f"a's session carried it directly: {a0} -> {a1}")
        check(b0 == b1, f"b's counters did not move: {b0} -> {b1}")

        check(passes(new, 7001, 40001, 15), "the P_B flow passes through b and a")
        a0, b0 = counts("a"), counts("b")
        r = flow(new, 7001, 40001)
        a1, b1 = counts("a"), counts("b")
        check(r["echoed"] == COUNT, f"P_B flow via b and a: {r['echoed']}/{COUNT} echoed")
        check(moved(b0, b1, "downlink_packets") >= COUNT and
              moved(b0, b1, "uplink_packets") >= COUNT,
              f"b's session carried it: {b0} -> {b1}")
        check(moved(a0, a1, "relay_downlink_packets") >= COUNT and
              moved(a0, a1, "relay_uplink_packets") >= COUNT,
              f"a's relay carried it: {a0} -> {a1}")

        # 4. De-registration at a (the data-mode magsim stopped, then `hag-magsim deregister`).
        magsim_kill(ms)
        r = subprocess.run(["ip", "netns", "exec", cl.cpe, magsim, "deregister", "--lma",
                            MAARS["a"]["lma"], "--nai", NAI, "--mag-id", "mag0@example.net",
                            "--access", "dsl:br0:1"], capture_output=True, text=True, timeout=30)
        print(r.stdout.strip(), r.stderr.strip(), flush=True)
        check(r.returncode == 0, f"cpe0 de-registered at a (exit {r.returncode})")
        check(wait_for(lambda: NAI not in cl.bindings("a"), 10), "a's binding of cpe0 ended")
        check(wait_for(lambda: NAI not in cl.bindings("b"), 10), "b's binding of cpe0 ended")
        check(wait_for(lambda: not directory(), 10), "the CMD forgot cpe0")
        print(f"test time {time.monotonic() - started:.1f} s", flush=True)
    finally:
        for p in magsims:
            topo.stop(p, 5)
        cl.close(tail=40 if failures else 15)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
