#!/usr/bin/python3
"""The binding cache survives kill -9 of hag-control (docs/reliability.md).

Topology: namespace "lma" runs hag-control (LMA 2001:db8:1::1, state directory in a temporary
directory, a fake data plane on a unix socket); namespace "cpe" has two accesses, dsl (veth m0,
2001:db8:1::2) and lte (veth m1, 2001:db8:2::2). Steps:

1. hag-magsim registers 10 subscribers over both accesses (two paths each) one by one, and a
   load of 300 more (the load mode registers each over its first access: one path); scapy registers one more with a PBU without Timestamp option
   (sequence 1000), so that only the sequence number protects it against replay;
2. the bindings are listed with hagctl (keys, prefixes, sequence numbers, paths);
3. hag-control is killed with SIGKILL (no shutdown code runs) and started again;
4. `hagctl bindings list` shows every binding with the same keys, prefixes, sequence numbers,
   paths and a remaining lifetime no longer than before; the fake data plane received a resync
   of all of them and `hagctl dataplane check` says in sync;
5. the scapy PBU replayed (same sequence) is refused with 135 SEQUENCE_NUMBER_OUT_OF_WINDOW and
   carries the preserved sequence number; the next sequence number is accepted;
6. hag-magsim re-registers a subscriber normally;
7. hag-control is killed with SIGKILL again in the middle of a load of 4,000 registrations and
   started again: every subscriber whose PBA hag-magsim received is in the restored cache.
Prints `bindings lost across kill -9: N of M` and `acknowledged bindings lost across kill -9
during a load: N of M` (the figures in docs/reliability.md).
Root only (exit 77 otherwise).

usage: persistence_test.py HAG_CONTROL HAG_MAGSIM HAGCTL FAKE_DATAPLANE
"""
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import netns  # noqa: E402

import logging  # noqa: E402
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.layers.inet6 import IPv6, MIP6MH_BA, MIP6MH_BU, MIP6OptMNID, MIP6OptUnknown  # noqa

IPPROTO_MH = 135
IPV6_CHECKSUM = 7
LMA6 = "2001:db8:1::1"
DSL6, LTE6 = "2001:db8:1::2", "2001:db8:2::2"
SCAPY_NAI = "scapy-persist@example.net"

CONFIG = """
log {{ level: "info" }}
lma_addresses: "{lma6}"
hnp_pools {{ name: "residential" prefix: "2001:db8:100::/40" assign_length: 64 }}
default_profile {{ multipath: true max_paths: 4 max_lifetime_seconds: 3600 }}
allow_unknown_subscribers: true
allow_unknown_mags: true
limits {{ max_sessions: 10000 per_mag_pbu_per_second: 20000 }}
management_socket: "{sock}"
dataplane_socket: "unix:{dpsock}"
heartbeat_interval_seconds: 0
state_directory: "{state}"
"""

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
        opt(22, bytes([0, 0]) + bytes(16)),             # HNP ::/0: assign one
        opt(23, bytes([0, 1])),                         # Handoff Indicator: new attach
        opt(24, bytes([0, 3])),                         # Access Technology Type
        opt(33, struct.pack("!HI", 0, 0x5C0000AA)),     # GRE key: downlink
        opt(35, struct.pack("!HBB", 1, 0, 0)),          # Binding Identifier 1
        opt(63, bytes([3, 1, 1, 0])),                   # MAG Multipath-Binding
        opt(64, bytes([1]) + b"scapy-mag@example.net"), # MAG Identifier (NAI)
    ]
    mh = bytes(IPv6(src="::", dst="::") / bu)[40:]
    return mh[:4] + b"\0\0" + mh[6:]


def scapy_send(seq):
    """Runs inside the cpe namespace: one PBU over raw MH from the DSL CoA; prints the PBA's
    status and sequence number as JSON."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_MH)
    s.setsockopt(socket.IPPROTO_IPV6, IPV6_CHECKSUM, 4)
    s.bind((DSL6, 0))
    s.settimeout(5)
    s.sendto(pbu_without_timestamp(SCAPY_NAI, seq), (LMA6, 0))
    end = time.monotonic() + 10
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
    topo = netns.Topology("persist")
    lma, cpe = topo.ns("lma"), topo.ns("cpe")
    for ns in (lma, cpe):
        for conf in ("all", "default"):
            netns.sh("sysctl", "-qw", f"net.ipv6.conf.{conf}.accept_dad=0", ns=ns)
    topo.veth(lma, "l0", cpe, "m0")
    topo.veth(lma, "l1", cpe, "m1")
    for ns, dev, addr in [(lma, "l0", LMA6 + "/64"), (cpe, "m0", DSL6 + "/64"),
                          (lma, "l1", "2001:db8:2::1/64"), (cpe, "m1", LTE6 + "/64")]:
        netns.sh("ip", "addr", "add", addr, "dev", dev, "nodad", ns=ns)
    work = tempfile.mkdtemp(prefix="hag-persist-test-")
    sock = os.path.join(work, "control.sock")
    dpsock = os.path.join(work, "dataplane.sock")
    state = os.path.join(work, "state")
    conf = os.path.join(work, "control.conf")
    with open(conf, "w") as f:
        f.write(CONFIG.format(lma6=LMA6, sock=sock, dpsock=dpsock, state=state))
    log = open(os.path.join(work, "control.log"), "w+")

    def start_control():
        d = subprocess.Popen(["ip", "netns", "exec", lma, control, "-c", conf],
                             stdout=subprocess.PIPE, stderr=log, text=True)
        topo.procs.append(d)
        check(d.stdout.readline().strip() == "hag-control ready", "hag-control ready")
        return d

    def run(*args):
        return subprocess.run([hagctl, "-s", "unix:" + sock, "--dataplane", "unix:" + dpsock,
                               *args], capture_output=True, text=True, timeout=60)

    def js(*args):
        r = run("-o", "json", *args)
        return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else None

    def bindings():
        """NAI -> what must survive: prefixes, uplink key, sequence, paths (and lifetimes)."""
        doc = js("bindings", "list", "--all") or {"bindings": []}
        out = {}
        for b in doc["bindings"]:
            paths = sorted((p["bid"], p["mag_id"], p["coa"], p["access_technology"],
                            p["if_label"], p["downlink_gre_key"], p["weight_kbps"])
                           for p in b["paths"])
            left = {p["bid"]: int(p.get("expires_in_seconds", 0)) for p in b["paths"]}
            out[b["nai"]] = ((tuple(b.get("home_prefixes", [])), b.get("uplink_gre_key"),
                              b.get("last_sequence"), tuple(paths)), left)
        return out

    def counters():
        c = js("counters") or {"counters": []}
        return {x["name"]: int(x["value"]) for x in c["counters"]}

    def wait_for(pred, seconds):
        end = time.time() + seconds
        while time.time() < end:
            v = pred()
            if v:
                return v
            time.sleep(0.2)
        return pred()

    def scapy(seq):
        r = subprocess.run(["ip", "netns", "exec", cpe, sys.executable, __file__, "--scapy",
                            str(seq)], capture_output=True, text=True, timeout=60)
        try:
            return json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            print(r.stdout, r.stderr)
            return {"status": None}

    fake = subprocess.Popen([fake_exe, "unix:" + dpsock], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    topo.procs.append(fake)
    check(fake.stdout.readline().strip() == "ready", "fake data plane ready")
    try:
        daemon = start_control()
        sim = ["ip", "netns", "exec", cpe, magsim]
        accesses = ["--access", f"dsl:{DSL6}:1", "--access", f"lte:{LTE6}:2"]
        ok = 0
        for i in range(10):
            r = subprocess.run(sim + ["register", "--lma", LMA6, "--nai", f"cpe{i}@example.net",
                                      "--mag-id", f"mag{i}@example.net"] + accesses,
                               capture_output=True, text=True, timeout=60)
            ok += r.returncode == 0
        check(ok == 10, f"magsim registered 10 subscribers over two accesses ({ok})")
        r = subprocess.run(sim + ["load", "--lma", LMA6, "--access", f"dsl:{DSL6}:1"] +
                           ["--subscribers", "300", "--rate", "2000", "--duration", "1"],
                           capture_output=True, text=True, timeout=120)
        print(r.stdout.strip(), r.stderr.strip())
        a = scapy(1000)
        check(a["status"] == 0, f"scapy PBU without timestamp, sequence 1000: accepted ({a})")

        before = bindings()
        two_paths = sum(1 for v in before.values() if len(v[0][3]) == 2)
        check(len(before) >= 300, f"{len(before)} bindings before the kill")
        check(two_paths == 10, f"{two_paths} of them with two paths")
        check(before.get(SCAPY_NAI, ((None, None, None),))[0][2] == 1000,
              "the scapy session's sequence number is 1000")
        check(wait_for(lambda: run("dataplane", "check").returncode == 0, 30),
              "data plane in sync before the kill")

        # kill -9: no shutdown path runs; only what was committed before each PBA survives.
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.wait()
        check(daemon.returncode == -signal.SIGKILL, "hag-control killed with SIGKILL")
        daemon = start_control()

        after = bindings()
        lost = [n for n in before if n not in after]
        changed = [n for n in before if n in after and after[n][0] != before[n][0]]
        longer = [n for n in before if n in after and
                  any(after[n][1].get(b, 0) > before[n][1][b] for b in before[n][1])]
        print(f"bindings lost across kill -9: {len(lost)} of {len(before)}", flush=True)
        check(not lost, f"no binding lost ({lost[:5]})")
        check(not changed, f"keys, prefixes, sequence numbers and paths unchanged ({changed[:3]})")
        check(not longer, f"no lifetime grew across the restart ({longer[:3]})")
        check(len(after) == len(before), f"same number of bindings ({len(after)})")
        c = counters()
        check(c.get("sessions.restored") == len(before),
              f"sessions.restored counts them ({c.get('sessions.restored')})")
        check(c.get("pool.residential.in_use") == len(before),
              "restored prefixes are reserved in their pool")
        check(c.get("gre_keys.in_use") == len(before), "restored GRE keys are reserved")
        check(wait_for(lambda: run("dataplane", "check").returncode == 0, 30),
              "data plane resynced with the restored cache, in sync")
        st = js("dataplane", "status")
        check(st is not None and int(st.get("sessions", 0)) == len(before),
              "the data plane holds every restored session")

        a = scapy(1000)
        check(a["status"] == 135 and a["seq"] == 1000,
              f"replayed PBU (sequence 1000) refused: 135 carrying 1000 ({a})")
        a = scapy(1001)
        check(a["status"] == 0, f"next sequence number 1001 accepted ({a})")

        r = subprocess.run(sim + ["register", "--lma", LMA6, "--nai", "cpe3@example.net",
                                  "--mag-id", "mag3@example.net"] + accesses,
                           capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, "magsim re-registers a restored subscriber normally")
        b = bindings().get("cpe3@example.net")
        check(b is not None and b[0][0] == before["cpe3@example.net"][0][0] and
              b[0][1] == before["cpe3@example.net"][0][1],
              "the re-registration kept the restored prefix and uplink key")
        r = subprocess.run(sim + ["register", "--lma", LMA6, "--nai", "new@example.net",
                                  "--mag-id", "magnew@example.net"] + accesses,
                           capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, "a new subscriber registers after the restart")
        nb = bindings().get("new@example.net")
        used = {v[0][0] for n, v in before.items()}
        check(nb is not None and nb[0][0] not in used,
              "the new subscriber got a prefix no restored session holds")

        # 7. kill -9 in the middle of a registration load: every subscriber whose PBA magsim
        # received is there after the restart (the PBA is sent only once the binding is on disk).
        accepted_file = os.path.join(work, "accepted.txt")
        load = subprocess.Popen(sim + ["load", "--lma", LMA6, "--access", f"dsl:{DSL6}:1",
                                       "--subscribers", "4000", "--rate", "2000",
                                       "--duration", "2", "--nai-prefix", "crash",
                                       "--accepted-file", accepted_file],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        topo.procs.append(load)

        def acked():
            try:
                with open(accepted_file) as f:
                    return len(f.readlines())
            except OSError:
                return 0
        wait_for(lambda: acked() >= 300, 30)
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.wait()
        out, _ = load.communicate(timeout=60)
        print(out.strip())
        with open(accepted_file) as f:
            acknowledged = {line.strip() for line in f if line.strip()}
        daemon = start_control()
        restored = bindings()
        lost = sorted(acknowledged - set(restored))
        print(f"acknowledged bindings lost across kill -9 during a load: {len(lost)} of "
              f"{len(acknowledged)}", flush=True)
        check(300 <= len(acknowledged) < 4000,
              f"the kill came in the middle of the load ({len(acknowledged)} of 4000 acked)")
        check(not lost, f"no acknowledged binding lost ({lost[:5]})")
        check(wait_for(lambda: run("dataplane", "check").returncode == 0, 30),
              "data plane in sync after the second restart")
    finally:
        log.seek(0)
        text = log.read()
        print("---- hag-control log (last 30 lines) ----")
        print("\n".join(text.splitlines()[-30:]))
        topo.close()
        subprocess.run(["rm", "-rf", work])
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--scapy":
        sys.exit(scapy_send(int(sys.argv[2])))
    sys.exit(main())
