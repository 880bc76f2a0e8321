#!/usr/bin/python3
"""Central mobility database mode (RFC 8885, docs/scale-out.md): a CMD and two MAARs, no etcd.

Topology: tests/integration/lib/hagcluster.py (nodes a and b each with a fake data plane, the
CMD node "cmd" without one, the routers in "cpe", which forwards between the nodes' links).
Steps:
1. hag-magsim registers cpe0 at a: a registers it at the CMD, then answers with P_A;
2. the router moves to b: b registers at the CMD, which relays to a (Serving MAAR b); b's PBA
   carries P_A then P_B;
3. a's binding has one path to hag-b (care-of b's address, b's downlink key), a's fake data
   plane tunnels the session to b; b's binding and fake data plane have the remote anchor P_A
   at a with a's uplink key;
4. hagctl at the CMD: NODE hag-b, ANCHOR hag-a,hag-b;
5. the router de-registers at b: the CMD de-registers at a; a's binding is gone, P_A free.
Root only (exit 77 otherwise).

usage: cmd_test.py HAG_CONTROL HAG_MAGSIM HAGCTL FAKE_DATAPLANE
"""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import hagcluster  # noqa: E402
import netns  # noqa: E402

wait_for = hagcluster.wait_for

MAARS = {
    "a": {"lma": "2001:db8:1::1", "cpe": "2001:db8:1::2", "etcd": "2001:db8:e0::1",
          "pool": "2001:db8:100::/48", "kmin": 1, "kmax": 99999},
    "b": {"lma": "2001:db8:2::1", "cpe": "2001:db8:2::2", "etcd": "2001:db8:e1::1",
          "pool": "2001:db8:200::/48", "kmin": 100000, "kmax": 199999},
}
CMD = {"lma": "2001:db8:3::1", "cpe": "2001:db8:3::2", "etcd": "2001:db8:e2::1"}
NODES = hagcluster.central_db_nodes(MAARS, CMD)

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def main():
    netns.require_root()
    control, magsim, hagctl, fake_exe = sys.argv[1:5]
    started = time.monotonic()
    cl = hagcluster.Cluster("cmd14", NODES, hagcluster.central_db_config(), control, hagctl,
                            fake_exe, check, route_between_nodes=True, tls=False)

    def magsim_run(cmd, n, i):
        r = subprocess.run(["ip", "netns", "exec", cl.cpe, magsim, cmd, "--lma",
                            NODES[n]["lma"], "--nai", f"cpe{i}@example.net", "--mag-id",
                            f"mag{i}@example.net", "--access", f"dsl:{NODES[n]['cpe']}:1"],
                           capture_output=True, text=True, timeout=30)
        print(r.stdout.strip(), r.stderr.strip(), flush=True)
        return r

    def dp_sessions(n):
        doc = cl.hag(n, "dataplane", "sessions", "--all") or {}
        return {x["session"].get("nai"): x["session"] for x in doc.get("sessions", [])
                if "session" in x}

    try:
        for n in ("cmd", "a", "b"):
            cl.start(n)

        # 1. Registered at a (through the CMD).
        r = magsim_run("register", "a", 0)
        m = re.search(r"hnp=(\S+)", r.stdout)
        check(r.returncode == 0 and m is not None, "cpe0 registered at a")
        p_a = m.group(1) if m else "?"
        check(p_a.startswith("2001:db8:100:"), f"its prefix {p_a} is of a's pool")
        d = cl.bindings("cmd").get("cpe0@example.net") or {}
        check(d.get("serving_node") == "hag-a",
              f"the CMD's directory: served by hag-a ({d.get('serving_node')})")
        key_a = int(cl.bindings("a").get("cpe0@example.net", {}).get("uplink_gre_key", 0))

        # 2. The router moves to b.
        r = magsim_run("register", "b", 0)
        m = re.search(r"hnps=(\S+)", r.stdout)
        hnps = m.group(1).split(",") if m else []
        check(r.returncode == 0 and len(hnps) == 2 and hnps[0] == p_a and
              hnps[1].startswith("2001:db8:200:"),
              f"b's PBA carries the old prefix first, then b's ({hnps})")

        # 3. a: one path to b; its data plane tunnels the session to b.
        ab = cl.bindings("a").get("cpe0@example.net") or {}
        path = (ab.get("paths") or [{}])[0]
        check(len(ab.get("paths", [])) == 1 and path.get("relay") is True and
              path.get("mag_id") == "hag-b" and path.get("coa") == MAARS["b"]["lma"] and
              ab.get("home_prefixes") == [p_a],
              f"a's binding: one path to hag-b at {path.get('coa')}, {ab.get('home_prefixes')}")
        dl_key = int(path.get("downlink_gre_key", 0))
        check(dl_key >= 100000, f"the downlink key {dl_key} is b's")

        def a_dp():
            s = dp_sessions("a").get("cpe0@example.net")
            return s if s and any(p.get("care_of") == MAARS["b"]["lma"] and
                                  int(p.get("downlink_key", 0)) == dl_key
                                  for p in s.get("paths", [])) else None
        check(wait_for(a_dp, 10) is not None, "a's data plane tunnels cpe0 to b")
        bb = cl.bindings("b").get("cpe0@example.net") or {}
        pa = (bb.get("prefix_anchors") or [{}])[0]
        check(pa.get("prefix") == p_a and pa.get("anchor_address") == MAARS["a"]["lma"] and
              int(pa.get("uplink_key", 0)) == key_a and int(pa.get("downlink_key", 0)) == dl_key,
              f"b's binding: {p_a} anchored at a with a's uplink key ({pa})")

        def b_dp():
            s = dp_sessions("b").get("cpe0@example.net") or {}
            ra = s.get("remote_anchors") or []
            return ra if ra and int(ra[0].get("uplink_key", 0)) != 0 else None
        ra = (wait_for(b_dp, 10) or [{}])[0]
        check(ra.get("prefix") == p_a and ra.get("local") == MAARS["b"]["lma"] and
              ra.get("anchor") == MAARS["a"]["lma"] and int(ra.get("uplink_key", 0)) == key_a and
              int(ra.get("downlink_key", 0)) == dl_key, f"b's data plane: remote anchor {ra}")

        # 4. hagctl at the CMD.
        table = cl.hag_text("cmd", "bindings", "list")
        print(table, flush=True)
        check(re.search(r"cpe0@example\.net\s+\S+\s+\S+\s+hag-b\s+hag-a,hag-b", table) is not None,
              "hagctl bindings list at the CMD: NODE hag-b, ANCHOR hag-a,hag-b")
        c = cl.counters("cmd")
        check(c.get("cmd.moved") == 1 and c.get("cmd.registered") == 1,
              f"the CMD counted cmd.registered 1, cmd.moved 1 ({c.get('cmd.registered')}, "
              f"{c.get('cmd.moved')})")

        # 5. De-registration at b reaches a through the CMD.
        r = magsim_run("deregister", "b", 0)
        check(r.returncode == 0, "cpe0 de-registered at b")
        check(wait_for(lambda: "cpe0@example.net" not in cl.bindings("a"), 10),
              "the CMD de-registered P_A at a: a's binding is gone")
        check(wait_for(lambda: cl.counters("a").get("pool.pool-a.in_use") == 0, 5),
              "P_A is free in a's pool")
        check("cpe0@example.net" not in cl.bindings("cmd"), "the CMD's directory entry is gone")
        print(f"test time {time.monotonic() - started:.1f} s", flush=True)
    finally:
        cl.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
