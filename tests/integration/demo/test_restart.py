#!/usr/bin/python3
"""Restarts under traffic, measured: packets lost and time to full state (root only).

The demo's gateway (tools/demo/gateway.py: hag-dataplane, hag-control with its persistent
binding cache, hag-magsim as a DSL + LTE home router in data mode) carries a steady UDP stream
from the core host to the home router, each datagram numbered. While it runs:

1. hag-control is killed with SIGKILL and started again. The data plane keeps forwarding on
   its own; the restarted hag-control restores its binding cache from disk and resyncs the
   data plane with the same state. Checked: not one datagram lost, the digests agree again.
2. hag-dataplane is killed with SIGKILL and started again. Forwarding stops until it is back;
   hag-control notices the new data plane and resyncs it. Measured and printed: datagrams
   lost, the outage (last datagram before, first after), and the time from the restart to the
   digests agreeing (full state). Checked: traffic resumes and the digests agree.

The figures go to docs/reliability.md; none is asserted as a time (the machine is shared).

usage: test_restart.py BUILD_DIR
"""
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "tools", "demo"))
import gateway  # noqa: E402

RATE = 400  # datagrams per second

def main():
    if os.geteuid() != 0:
        print("SKIPPED: needs root (network namespaces); CI runs as root")
        return 77
    g = gateway.Gateway(sys.argv[1], capture=False)
    failures = []

    def check(cond, what):
        print(("ok   " if cond else "FAIL ") + what, flush=True)
        if not cond:
            failures.append(what)

    try:
        g.start(step=lambda t: print("==>", t, flush=True))
        check(g.ping(), "ping through the gateway")
        check(g.wait_in_sync(), "control and data plane digests agree")

        print("==> 1. kill -9 hag-control under traffic, start it again", flush=True)
        st = gateway.UdpStream(g, RATE, 8)
        time.sleep(2)
        g.kill("control")
        time.sleep(1)
        t_restart = time.monotonic()
        g.start_control()
        synced = g.wait_in_sync(30)
        t_sync = time.monotonic() - t_restart
        sent, seen = st.result()
        lost = sent - len(seen)
        control = {"sent": sent, "lost": lost, "in_sync_s": round(t_sync, 2)}
        print(f"  hag-control restart: {sent} datagrams sent at {RATE}/s, {lost} lost; "
              f"restarted control in sync with the data plane {t_sync:.2f} s after its start",
              flush=True)
        check(synced, "the restarted hag-control (cache restored from disk) agrees with the "
              "data plane")
        check(lost == 0, f"no datagram lost across the hag-control restart ({lost} lost)")

        print("==> 2. kill -9 hag-dataplane under traffic, start it again", flush=True)
        st = gateway.UdpStream(g, RATE, 12)
        time.sleep(2)
        t_kill = time.monotonic()
        g.kill("dataplane")
        g.start_dataplane()
        t_up = time.monotonic()
        synced = g.wait_in_sync(60)
        t_full = time.monotonic() - t_up
        sent, seen = st.result()
        seqs = sorted(seen)
        lost = sent - len(seen)
        # The outage: the longest run of missing numbers, as time at the sender's rate.
        gap, before, after = 0, None, None
        for a, b in zip(seqs, seqs[1:]):
            if b - a - 1 > gap:
                gap, before, after = b - a - 1, a, b
        resumed = bool(seqs) and seqs[-1] > sent * 0.8
        outage = (seen[after] - seen[before]) if gap else 0.0
        print(f"  hag-dataplane restart: {sent} datagrams sent, {lost} lost; outage "
              f"{outage:.2f} s (last datagram before the kill to the first after); "
              f"process start to ready {t_up - t_kill:.2f} s, ready to full state (digests "
              f"agree) {t_full:.2f} s", flush=True)
        check(synced, "hag-control resynced the restarted data plane (digests agree)")
        check(resumed, "traffic resumed after the data plane restart")
        check(g.ping(), "ping through the gateway at the end")
        print(json.dumps({"rate_per_s": RATE, "control_restart": control,
                          "dataplane_restart": {"sent": sent, "lost": lost,
                                                "outage_s": round(outage, 2),
                                                "start_s": round(t_up - t_kill, 2),
                                                "full_state_s": round(t_full, 2)}}))
    except (RuntimeError, AssertionError) as e:
        check(False, str(e))
    finally:
        g.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
