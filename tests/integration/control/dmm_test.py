#!/usr/bin/python3
"""Distributed anchoring (docs/scale-out.md): a router moves from node A to node B and keeps its
old prefix anchored at A, with a new prefix of B; B is a MAG toward A.

Topology: tests/integration/lib/hagcluster.py (etcd started by the test, nodes a and b each with
a fake data plane, the routers in "cpe", which forwards between the nodes' links so that the
nodes signal to each other). Both nodes run with store.distributed_anchoring.
Steps:
1. hag-magsim registers cpe0 at a: prefix P_A (a's pool);
2. the router moves: it registers at b (same NAI and MAG identifier, b's link): b's PBA carries
   P_A then a new prefix P_B of b's pool;
3. b registered P_A at a as a MAG: a's binding of cpe0 has one path, MAG hag-b, care-of b's
   address, downlink key = b's; a's data plane tunnels cpe0 to b with that key;
4. b's binding lists P_A anchored at hag-a and registered there (uplink key = a's key for
   cpe0), P_B at hag-b; b's data plane has the session with remote_anchors {P_A, local b,
   anchor a, uplink key a's, downlink key b's}; hagctl's ANCHOR column says hag-a,hag-b;
5. the router de-registers at b: b de-registers P_A at a; a's binding is gone, P_A is free;
6. node a killed (its liveness key ends with its lease): cpe1, registered at a before, moves
   to b: taken over as without distributed anchoring (its own prefix only, no new one).
The data planes are fakes (the DataplaneProgrammer test server): what is asserted is what
hag-control programs; the relay itself is hag-dataplane's (docs/dataplane.md).
Root only (exit 77 otherwise).

usage: dmm_test.py HAG_CONTROL HAG_MAGSIM HAGCTL FAKE_DATAPLANE
"""
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

NODES = {
    "a": {"lma": "2001:db8:1::1", "cpe": "2001:db8:1::2", "etcd": "2001:db8:e0::1",
          "pool": "2001:db8:100::/48", "kmin": 1, "kmax": 99999},
    "b": {"lma": "2001:db8:2::1", "cpe": "2001:db8:2::2", "etcd": "2001:db8:e1::1",
          "pool": "2001:db8:200::/48", "kmin": 100000, "kmax": 199999},
}

CONFIG = hagcluster.node_config("/hag-dmm-test/", hagcluster.DMM_STORE)

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def main():
    netns.require_root()
    control, magsim, hagctl, fake_exe = sys.argv[1:5]
    if shutil.which("etcd") is None:
        print("FAIL etcd not installed (Debian etcd-server; tools/quickstart installs it)")
        return 1
    started = time.monotonic()
    cl = hagcluster.Cluster("dmm", NODES, CONFIG, control, hagctl, fake_exe, check,
                            route_between_nodes=True)

    def magsim_run(cmd, n, i):
        r = subprocess.run(["ip", "netns", "exec", cl.cpe, magsim, cmd, "--lma",
                            NODES[n]["lma"], "--nai", f"cpe{i}@example.net", "--mag-id",
                            f"mag{i}@example.net", "--access", f"dsl:{NODES[n]['cpe']}:1"],
                           capture_output=True, text=True, timeout=30)
        print(r.stdout.strip(), flush=True)
        return r

    def dp_sessions(n):
        doc = cl.hag(n, "dataplane", "sessions", "--all") or {}
        return {x["session"].get("nai"): x["session"] for x in doc.get("sessions", [])
                if "session" in x}

    try:
        cl.start_etcd()
        check(wait_for(cl.etcd_ready, 15), "etcd started")
        for n in NODES:
            cl.start(n)

        # 1. Registered at a.
        r = magsim_run("register", "a", 0)
        m = re.search(r"hnp=(\S+)", r.stdout)
        check(r.returncode == 0 and m is not None, "cpe0 registered at a")
        p_a = m.group(1) if m else "?"
        check(p_a.startswith("2001:db8:100:"), f"its prefix {p_a} is of a's pool")
        key_a = int(cl.bindings("a").get("cpe0@example.net", {}).get("uplink_gre_key", 0))

        # 2. The router moves to b.
        r = magsim_run("register", "b", 0)
        m = re.search(r"hnps=(\S+)", r.stdout)
        hnps = m.group(1).split(",") if m else []
        check(r.returncode == 0 and len(hnps) == 2 and hnps[0] == p_a and
              hnps[1].startswith("2001:db8:200:"),
              f"b's PBA carries the old prefix first, then a new one of b's pool ({hnps})")
        p_b = hnps[1] if len(hnps) == 2 else "?"

        # 3. a keeps P_A anchored, tunnelled to b.
        def a_relayed():
            b = cl.bindings("a").get("cpe0@example.net")
            return b if b and len(b.get("paths", [])) == 1 and \
                b["paths"][0].get("mag_id") == "hag-b" else None
        ab = wait_for(a_relayed, 10) or {}
        path = (ab.get("paths") or [{}])[0]
        check(path.get("relay") is True and path.get("coa") == NODES["b"]["lma"] and
              ab.get("home_prefixes") == [p_a],
              f"a's binding of cpe0: one path to hag-b at {path.get('coa')}, {ab.get('home_prefixes')}")
        check(ab.get("serving_node") == "hag-b" and ab.get("anchor_node") == "hag-a",
              f"hagctl at a: served by hag-b, anchored at hag-a ({ab.get('serving_node')}, "
              f"{ab.get('anchor_node')})")
        dl_key = int(path.get("downlink_gre_key", 0))
        check(dl_key >= 100000, f"the downlink key {dl_key} is b's")

        def a_dp():
            s = dp_sessions("a").get("cpe0@example.net")
            return s if s and any(p.get("care_of") == NODES["b"]["lma"] and
                                  int(p.get("downlink_key", 0)) == dl_key
                                  for p in s.get("paths", [])) else None
        check(wait_for(a_dp, 10) is not None,
              "a's data plane tunnels cpe0 to b with b's downlink key")

        # 4. b: per-prefix anchors, registered at a; the data plane's relay.
        def b_registered():
            b = cl.bindings("b").get("cpe0@example.net") or {}
            pa = b.get("prefix_anchors") or [{}]
            return b if int(pa[0].get("uplink_key", 0)) != 0 else None
        bb = wait_for(b_registered, 10) or {}
        pa = (bb.get("prefix_anchors") or [{}])[0]
        check(pa.get("prefix") == p_a and pa.get("anchor_node") == "hag-a" and
              pa.get("anchor_address") == NODES["a"]["lma"] and
              int(pa.get("uplink_key", 0)) == key_a and int(pa.get("downlink_key", 0)) == dl_key,
              f"b's binding: {p_a} anchored at hag-a, registered there ({pa})")
        check(bb.get("home_prefixes") == [p_a, p_b] and bb.get("serving_node") == "hag-b" and
              bb.get("anchor_node") == "hag-b",
              f"b's binding: {bb.get('home_prefixes')}, served by {bb.get('serving_node')}, "
              f"anchor {bb.get('anchor_node')}")
        table = cl.hag_text("b", "bindings", "list")
        check(re.search(r"cpe0@example\.net\s+\S+\s+\S+\s+hag-b\s+hag-a,hag-b", table) is not None,
              "hagctl bindings list at b: ANCHOR hag-a,hag-b")

        def b_dp():
            s = dp_sessions("b").get("cpe0@example.net") or {}
            ra = s.get("remote_anchors") or []
            return ra if ra and int(ra[0].get("uplink_key", 0)) != 0 else None
        ra = (wait_for(b_dp, 10) or [{}])[0]
        check(ra.get("prefix") == p_a and ra.get("local") == NODES["b"]["lma"] and
              ra.get("anchor") == NODES["a"]["lma"] and int(ra.get("uplink_key", 0)) == key_a and
              int(ra.get("downlink_key", 0)) == dl_key,
              f"b's data plane: remote anchor {ra}")
        c = cl.counters("b")
        check(c.get("anchoring.moved_in") == 1 and c.get("cluster.takeovers", 0) == 0,
              f"b counted anchoring.moved_in 1, no takeover ({c.get('anchoring.moved_in')}, "
              f"{c.get('cluster.takeovers')})")

        # 5. De-registration at b reaches a.
        r = magsim_run("deregister", "b", 0)
        check(r.returncode == 0, "cpe0 de-registered at b")
        check(wait_for(lambda: "cpe0@example.net" not in cl.bindings("a"), 10),
              "b de-registered P_A at a: a's binding is gone")
        check(wait_for(lambda: cl.counters("a").get("pool.pool-a.in_use") == 0, 5),
              "P_A is free in a's pool")

        # 6. A dead anchor: takeover as before.
        r = magsim_run("register", "a", 1)
        m = re.search(r"hnp=(\S+)", r.stdout)
        p1 = m.group(1) if m else "?"
        os.kill(cl.daemons["a"].pid, signal.SIGKILL)
        cl.daemons["a"].wait()
        time.sleep(4)  # a's liveness lease (node_lease_seconds 3) ends
        r = magsim_run("register", "b", 1)
        m = re.search(r"hnp=(\S+)", r.stdout)
        check(r.returncode == 0 and m is not None and m.group(1) == p1 and "hnps=" not in r.stdout,
              f"a dead: cpe1 taken over by b with its prefix {p1} only")
        c = cl.counters("b")
        check(c.get("cluster.takeovers") == 1, f"cluster.takeovers {c.get('cluster.takeovers')}")
        print(f"test time {time.monotonic() - started:.1f} s", flush=True)
    finally:
        cl.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
