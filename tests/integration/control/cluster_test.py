#!/usr/bin/python3
"""Two hag-control nodes share their bindings through etcd (docs/scale-out.md).

Topology (namespaces made here, removed at exit):
  "etcd": an etcd started by this test (temporary data directory, its own loopback for its
          peer port) reachable from the nodes over two links, 2001:db8:e0::1 and 2001:db8:e1::1,
          with TLS and client-certificate authentication (a CA made by this test with openssl);
  "a":    hag-control node hag-a, LMA 2001:db8:1::1, pool 2001:db8:100::/48, GRE keys 1-99999,
          a fake data plane (the DataplaneProgrammer test server) on a unix socket;
  "b":    hag-control node hag-b, LMA 2001:db8:2::1, pool 2001:db8:200::/48, GRE keys
          100000-199999, its own fake data plane;
  "cpe":  the home routers: 2001:db8:1::2 towards a, 2001:db8:2::2 towards b.
Steps:
0. a node with a CA etcd's certificate does not chain to, and a node without a client
   certificate, do not start (etcd unreachable: a clear error, exit status 1);
1. hag-magsim registers 5 subscribers at node a; scapy registers one more with a PBU without
   Timestamp option (sequence 1000: only its sequence number protects it against replay);
2. hagctl at a lists them: served by hag-a, anchored at hag-a;
3. node a is killed (SIGKILL);
4. every router re-registers at node b (the same MAG identifiers and BIDs, its other address);
5. hagctl at b lists every binding with the prefix and uplink GRE key it had at a, served by
   hag-b, anchored at hag-a; the replayed scapy PBU (sequence 1000) is refused by b with 135
   carrying 1000, sequence 1001 is accepted; b's data plane holds every session;
6. etcd is killed: b acknowledges nothing it cannot write (the PBA is withheld, counted); etcd
   restarted on the same data directory: the next PBU is written and answered;
7. node b is restarted (SIGTERM): it restores every binding it serves from etcd;
8. node a starts again: it restores none of them (b serves them all now) but keeps their
   prefixes and GRE keys claimed; a new subscriber registers at a and gets none of them; with etcd frozen (SIGSTOP) its router moves to b: b holds the PBU while a
   lookup thread waits for etcd, hagctl at b answers meanwhile and shows it held, and the PBU
   is answered once etcd runs again (SIGCONT);
9. a run-time policy edit (hagctl policy) at b reaches a through etcd; an edit at a made
   before a has read b's next one is refused (ABORTED) and a then runs b's.
Prints `bindings lost across the failover: N of M`. Root only (exit 77 otherwise).

usage: cluster_test.py HAG_CONTROL HAG_MAGSIM HAGCTL FAKE_DATAPLANE
"""
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import hagcluster  # noqa: E402
import netns  # noqa: E402

import logging  # noqa: E402
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.layers.inet6 import IPv6, MIP6MH_BA, MIP6MH_BU, MIP6OptMNID, MIP6OptUnknown  # noqa

IPPROTO_MH = 135
IPV6_CHECKSUM = 7
NODES = {
    "a": {"lma": "2001:db8:1::1", "cpe": "2001:db8:1::2", "etcd": "2001:db8:e0::1",
          "pool": "2001:db8:100::/48", "kmin": 1, "kmax": 99999},
    "b": {"lma": "2001:db8:2::1", "cpe": "2001:db8:2::2", "etcd": "2001:db8:e1::1",
          "pool": "2001:db8:200::/48", "kmin": 100000, "kmax": 199999},
}
SCAPY_NAI = "scapy-cluster@example.net"
SUBSCRIBERS = 5

CONFIG = hagcluster.node_config("/hag-test/", "  etcd_timeout_ms: 5000\n")

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def pbu_without_timestamp(nai, seq):
    """A PBU (scapy) with no Timestamp option: the LMA checks its sequence number."""
    opt = lambda t, d: MIP6OptUnknown(otype=t, odata=d)  # noqa: E731
    bu = MIP6MH_BU(seq=seq, flags="AP", mhtime=900, reserved=0)
    bu.options = [
        MIP6OptMNID(subtype=1, id=nai.encode()),
        opt(22, bytes([0, 0]) + bytes(16)),             # HNP ::/0: assign one (or keep it)
        opt(23, bytes([0, 1])),                         # Handoff Indicator
        opt(24, bytes([0, 3])),                         # Access Technology Type
        opt(33, struct.pack("!HI", 0, 0x5C0000AA)),     # GRE key: downlink
        opt(35, struct.pack("!HBB", 1, 0, 0)),          # Binding Identifier 1
        opt(63, bytes([3, 1, 1, 0])),                   # MAG Multipath-Binding
        opt(64, bytes([1]) + b"scapy-mag@example.net"), # MAG Identifier (NAI)
    ]
    mh = bytes(IPv6(src="::", dst="::") / bu)[40:]
    return mh[:4] + b"\0\0" + mh[6:]


def scapy_send(src, dst, seq, tries):
    """Runs inside the cpe namespace: one PBU over raw MH; prints the PBA's status and
    sequence number as JSON."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_MH)
    s.setsockopt(socket.IPPROTO_IPV6, IPV6_CHECKSUM, 4)
    s.bind((src, 0))
    s.settimeout(2)
    for _ in range(tries):  # like a MAG: retransmit when no reply came
        s.sendto(pbu_without_timestamp(SCAPY_NAI, seq), (dst, 0))
        end = time.monotonic() + 2
        while time.monotonic() < end:
            try:
                data = s.recv(2048)
            except socket.timeout:
                break
            if len(data) >= 12 and data[2] == 6:  # Binding Acknowledgement
                ba = MIP6MH_BA(data)
                print(json.dumps({"status": ba.status, "seq": ba.seq}))
                return 0
    print(json.dumps({"status": None}))
    return 0


def main():
    netns.require_root()
    control, magsim, hagctl, fake_exe = sys.argv[1:5]
    if shutil.which("etcd") is None:
        print("FAIL etcd not installed (Debian etcd-server; tools/quickstart installs it)")
        return 1
    if shutil.which("openssl") is None:
        print("FAIL openssl CLI not found (Debian package openssl; tools/quickstart installs it)")
        return 1
    started = time.monotonic()
    cl = hagcluster.Cluster("clu", NODES, CONFIG, control, hagctl, fake_exe, check)
    cpe, daemons = cl.cpe, cl.daemons
    etcd = cl.start_etcd()
    etcd_ready, wait_for, start, hag, bindings = (cl.etcd_ready, hagcluster.wait_for, cl.start,
                                                  cl.hag, cl.bindings)
    check(wait_for(etcd_ready, 15), "etcd started on the test's loopback and links (TLS)")

    def scapy(n, seq, tries=3):
        r = subprocess.run(["ip", "netns", "exec", cpe, sys.executable, __file__, "--scapy",
                            NODES[n]["cpe"], NODES[n]["lma"], str(seq), str(tries)],
                           capture_output=True, text=True, timeout=30)
        try:
            return json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            print(r.stdout, r.stderr)
            return {"status": None}

    def counters(n):
        c = hag(n, "counters") or {"counters": []}
        return {x["name"]: int(x["value"]) for x in c["counters"]}

    def register(n, i):
        r = subprocess.run(["ip", "netns", "exec", cpe, magsim, "register", "--lma",
                            NODES[n]["lma"], "--nai", f"cpe{i}@example.net", "--mag-id",
                            f"mag{i}@example.net", "--access", f"dsl:{NODES[n]['cpe']}:1"],
                           capture_output=True, text=True, timeout=30)
        return r.returncode == 0

    def refused(what, tls):
        """hag-control at node a with this TLS set-up: must not start (etcd unreachable)."""
        conf = os.path.join(cl.work, "control-bad.conf")
        cfg = NODES["a"]
        with open(conf, "w") as f:
            f.write(CONFIG.format(name="a", sock=os.path.join(cl.work, "bad.sock"),
                                  dpsock=cl.socks["a"][1], port=hagcluster.ETCD_PORT, tls=tls,
                                  **cfg))
        r = subprocess.run(["ip", "netns", "exec", cl.ns["a"], control, "-c", conf],
                           capture_output=True, text=True, timeout=30)
        check(r.returncode == 1 and "cannot read from etcd" in r.stderr and
              "hag-control ready" not in r.stdout,
              f"{what}: hag-control does not start (rc {r.returncode}, "
              f"{r.stderr.strip().splitlines()[-1:] if r.stderr.strip() else ''})")

    try:
        refused("etcd's certificate from an untrusted CA", cl.tls_config(ca="rogue-ca.pem"))
        refused("no client certificate", cl.tls_config(client=False))
        for n in NODES:
            start(n)
        ok = sum(register("a", i) for i in range(SUBSCRIBERS))
        check(ok == SUBSCRIBERS, f"magsim registered {ok} of {SUBSCRIBERS} subscribers at a")
        r = scapy("a", 1000)
        check(r["status"] == 0, f"scapy PBU without timestamp, sequence 1000, at a ({r})")
        before = bindings("a")
        check(len(before) == SUBSCRIBERS + 1, f"node a serves {len(before)} bindings")
        check(all(b.get("serving_node") == "hag-a" and b.get("anchor_node") == "hag-a"
                  for b in before.values()), "hagctl at a: served by hag-a, anchored at hag-a")
        check(before.get(SCAPY_NAI, {}).get("last_sequence") == 1000,
              "the scapy binding's sequence number is 1000")

        os.kill(daemons["a"].pid, signal.SIGKILL)
        daemons["a"].wait()
        check(daemons["a"].returncode == -signal.SIGKILL, "node a killed with SIGKILL")

        ok = sum(register("b", i) for i in range(SUBSCRIBERS))
        check(ok == SUBSCRIBERS, f"the routers re-registered at b ({ok} of {SUBSCRIBERS})")
        r = scapy("b", 1000)
        check(r["status"] == 135 and r["seq"] == 1000,
              f"the replayed PBU (sequence 1000) is refused by b: 135 carrying 1000 ({r})")
        r = scapy("b", 1001)
        check(r["status"] == 0, f"sequence 1001 accepted by b ({r})")

        after = bindings("b")
        lost = [x for x in before if x not in after]
        print(f"bindings lost across the failover: {len(lost)} of {len(before)}", flush=True)
        check(not lost, f"no binding lost ({lost})")
        same = [x for x in before if x in after and
                after[x].get("home_prefixes") == before[x].get("home_prefixes") and
                after[x].get("uplink_gre_key") == before[x].get("uplink_gre_key")]
        check(len(same) == len(before), f"prefixes and uplink GRE keys preserved ({len(same)})")
        check(all(b.get("serving_node") == "hag-b" and b.get("anchor_node") == "hag-a"
                  for b in after.values()), "hagctl at b: served by hag-b, anchored at hag-a")
        check(after.get(SCAPY_NAI, {}).get("last_sequence") == 1001,
              "the scapy binding's sequence number went on from 1000 to 1001")
        c = hag("b", "counters") or {"counters": []}
        c = {x["name"]: int(x["value"]) for x in c["counters"]}
        check(c.get("cluster.takeovers") == len(before),
              f"cluster.takeovers counts them ({c.get('cluster.takeovers')})")
        check(wait_for(lambda: (hag("b", "dataplane", "status") or {}).get("sessions") ==
                       len(before), 10), "node b's data plane holds every session")

        # etcd unreachable: nothing is acknowledged that is not in etcd (the PBA is withheld,
        # the MAG retransmits); once etcd is back the change is written and answered.
        os.kill(etcd.pid, signal.SIGKILL)
        etcd.wait()
        r = scapy("b", 1002, tries=1)
        check(r["status"] is None, f"etcd down: no PBA for sequence 1002 ({r})")
        c = hag("b", "counters") or {"counters": []}
        c = {x["name"]: int(x["value"]) for x in c["counters"]}
        check(c.get("store.replies_withheld", 0) >= 1 and c.get("store.commit_failures", 0) >= 1,
              f"counted: store.replies_withheld {c.get('store.replies_withheld')}, "
              f"store.commit_failures {c.get('store.commit_failures')}")
        etcd = cl.start_etcd()
        check(wait_for(etcd_ready, 15), "etcd restarted (same data directory)")
        # The retransmission is answered: accepted, or — when the withheld change is already in
        # the cache (and written to etcd since) — 135 carrying that sequence number, after
        # which the MAG's next PBU is accepted.
        r = scapy("b", 1003)
        check(r["status"] == 0 or (r["status"] == 135 and r["seq"] == 1003),
              f"etcd back: the retransmitted sequence 1003 is answered ({r})")
        r = scapy("b", 1004)
        check(r["status"] == 0, f"etcd back: sequence 1004 accepted ({r})")
        check(bindings("b").get(SCAPY_NAI, {}).get("last_sequence") == 1004,
              "the binding's sequence number is 1004")

        # Node b restarted: it restores the bindings it serves from etcd, anchors included.
        cl.topo.stop(daemons["b"], 10)
        start("b")
        again = bindings("b")
        check(len(again) == len(before) and
              all(b.get("serving_node") == "hag-b" and b.get("anchor_node") == "hag-a"
                  for b in again.values()),
              f"node b restarted: it restores its {len(again)} bindings from etcd")

        start("a")
        check(len(bindings("a")) == 0, "node a back: it restores none (b serves them now)")
        new_ok = register("a", 99)
        nb = bindings("a").get("cpe99@example.net", {})
        check(new_ok and nb.get("serving_node") == "hag-a" and
              int(nb.get("uplink_gre_key", 0)) < 100000,
              "a new subscriber at a gets a key from a's range")
        # a restarted with nothing of its own, but b holds six bindings with prefixes and keys
        # of a's pool and range: a keeps them claimed and hands out neither again.
        held_by_b = {p for x in again.values() for p in x.get("home_prefixes", [])}
        keys_b = {int(x.get("uplink_gre_key", 0)) for x in again.values()}
        check(counters("a").get("cluster.foreign_holds") == len(before),
              f"a holds the {len(before)} prefixes / keys b's bindings have "
              f"(cluster.foreign_holds {counters('a').get('cluster.foreign_holds')})")
        check(not set(nb.get("home_prefixes", [])) & held_by_b and
              int(nb.get("uplink_gre_key", 0)) not in keys_b,
              f"cpe99 at a got prefix {nb.get('home_prefixes')} and key "
              f"{nb.get('uplink_gre_key')}, none of them b's ({sorted(held_by_b)})")

        # Reads of etcd a PBU needs do not hold up the signalling thread: with etcd frozen
        # (SIGSTOP), the router of cpe99 moving to b has its PBU held while a lookup thread
        # waits for etcd; the management API still answers (before, the signalling thread held
        # the binding cache while it read) and shows the PBU held; once etcd runs again the
        # held PBU is processed and answered.
        os.kill(etcd.pid, signal.SIGSTOP)
        try:
            mover = subprocess.Popen(
                ["ip", "netns", "exec", cpe, magsim, "register", "--lma", NODES["b"]["lma"],
                 "--nai", "cpe99@example.net", "--mag-id", "mag99@example.net", "--access",
                 f"dsl:{NODES['b']['cpe']}:1"], stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True)
            held = wait_for(lambda: counters("b").get("cluster.lookups_waiting", 0) >= 1, 4)
            c = counters("b")
            check(held and c.get("cluster.lookups_held", 0) >= 1,
                  f"etcd frozen: b holds the PBU of cpe99 and answers hagctl meanwhile "
                  f"(lookups_waiting {c.get('cluster.lookups_waiting')}, held "
                  f"{c.get('cluster.lookups_held')})")
        finally:
            os.kill(etcd.pid, signal.SIGCONT)
        out, _ = mover.communicate(timeout=60)
        nb = bindings("b").get("cpe99@example.net", {})
        check(mover.returncode == 0 and nb.get("serving_node") == "hag-b" and
              nb.get("anchor_node") == "hag-a",
              f"etcd running again: the held PBU is answered, b serves cpe99 "
              f"(magsim rc {mover.returncode}: {out.strip().splitlines()[-1:]})")
        c = counters("b")
        check(c.get("cluster.lookups_delivered", 0) >= 1 and
              c.get("cluster.lookups_waiting", 1) == 0,
              f"counted: cluster.lookups_delivered {c.get('cluster.lookups_delivered')}")
        # Run-time policy edits are the cluster's: one key in etcd, read by every node.
        def policy(n, *args):
            sock, dpsock = cl.socks[n]
            return subprocess.run([hagctl, "-s", "unix:" + sock, "policy", *args],
                                  capture_output=True, text=True, timeout=30)

        def applications(n):
            return [a.split(":")[0] for a in (hag(n, "policy", "show") or {}).get(
                "applications", [])]

        r = policy("b", "application", "add", "GAME", "--match",
                   'protocol: 17 remote_ports: "7000-7010"')
        check(r.returncode == 0, f"policy edit at b: application GAME added ({r.stderr.strip()})")
        check(wait_for(lambda: "GAME" in applications("a"), 10),
              f"node a adopts b's edit from etcd ({applications('a')})")
        r = policy("b", "application", "add", "MAIL", "--match", 'protocol: 6 remote_ports: "25"')
        check(r.returncode == 0, "a second edit at b: application MAIL added")
        r = policy("a", "application", "add", "DNS", "--match", 'protocol: 17 remote_ports: "53"')
        if r.returncode == 0:
            # a had already read MAIL (its poll came first): DNS went on top of it.
            check("MAIL" in applications("a"), "a's edit was made on top of b's")
        else:
            check("another node" in r.stderr, f"a's edit over a stale policy is refused: "
                  f"{r.stderr.strip()}")
            check("MAIL" in applications("a"), "a now runs b's edit")
        check(wait_for(lambda: set(applications("a")) == set(applications("b")), 10),
              f"both nodes run the same policy ({applications('a')} / {applications('b')})")
        print(f"test time {time.monotonic() - started:.1f} s", flush=True)
    finally:
        cl.close()
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--scapy":
        sys.exit(scapy_send(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])))
    sys.exit(main())
