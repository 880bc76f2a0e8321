#!/usr/bin/python3
"""Soak: churn and traffic for a bounded time, then everything must still agree (root only).

On the demo's gateway (tools/demo/gateway.py), while a numbered UDP stream runs from the core
host to the DSL + LTE home router, rounds of churn follow each other until the time is up:

- registrations and re-registrations: hag-magsim's load mode registers 300 more subscribers
  (load<i>@example.net) at 300 PBU/s; every round registers them again;
- handoffs: the load alternates its care-of address between the DSL and the LTE side, so each
  round moves every load subscriber's path to a new CoA;
- revocations: hagctl deletes a few load subscribers (Binding Revocation to their MAG);
- de-registrations: hag-magsim de-registers a few (lifetime 0);
- path flaps: the home router's DSL or LTE access is cut in the access network until both ends
  notice (heartbeats), then restored.

At the end: hag-control's and hag-dataplane's digests agree, the data plane holds as many
sessions as the binding cache, the prefix pool's use equals the sessions, every PBU received
was either accepted or rejected, the home router's traffic flows, and the resident memory of
both daemons did not grow between the middle and the end of the run (a plateau, not a leak:
growth within 10 % + 4 MiB). Figures are printed (docs/reliability.md).

Length: HAG_SOAK_SECONDS (default 30, the CI run; issue 12's full soak: 600).

usage: test_soak.py BUILD_DIR
"""
import os
import random
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "tools", "demo"))
import gateway  # noqa: E402
from gateway import DSL, LTE, LMA6  # noqa: E402

LOAD_SUBSCRIBERS = 300
RATE = 200  # stream datagrams per second
# A second care-of address on each side of the home router carries the load's signalling.
LOAD_COAS = {"DSL": "2001:db8:aaaa::100", "LTE": "2001:db8:bbbb::100"}

CONTROL_EXTRA = """
allow_unknown_subscribers: true
allow_unknown_mags: true
limits { per_mag_pbu_per_second: 100000 }
"""


def main():
    if os.geteuid() != 0:
        print("SKIPPED: needs root (network namespaces); CI runs as root")
        return 77
    seconds = float(os.environ.get("HAG_SOAK_SECONDS", "30"))
    g = gateway.Gateway(sys.argv[1], capture=False, control_extra=CONTROL_EXTRA)
    failures = []
    rng = random.Random(7)

    def check(cond, what):
        print(("ok   " if cond else "FAIL ") + what, flush=True)
        if not cond:
            failures.append(what)

    def magsim(*args, timeout=60):
        return subprocess.run(["ip", "netns", "exec", g.ns["cpe"], g.magsim_exe, *args],
                              capture_output=True, text=True, timeout=timeout)

    try:
        g.start(step=lambda t: print("==>", t, flush=True))
        for i, (name, coa) in enumerate(LOAD_COAS.items()):
            gateway.sh("ip", "-6", "addr", "add", coa + "/64", "dev", f"m{i}", "nodad",
                       ns=g.ns["cpe"])
        check(g.ping(), "ping through the gateway before the soak")
        stream = gateway.UdpStream(g, RATE, seconds + 15)
        t_end = time.monotonic() + seconds
        rounds, revoked, deregistered, flaps = 0, 0, 0, 0
        rss = []  # (hag-control KiB, hag-dataplane KiB) after each round
        while time.monotonic() < t_end:
            rounds += 1
            side = "DSL" if rounds % 2 else "LTE"
            coa = LOAD_COAS[side]
            r = magsim("load", "--lma", LMA6, "--access", f"{side.lower()}:{coa}:1",
                       "--subscribers", str(LOAD_SUBSCRIBERS), "--rate", "300",
                       "--duration", str(LOAD_SUBSCRIBERS / 300), "--retransmissions", "2")
            tail = (r.stdout.strip().splitlines() or [""])[-1]
            print(f"  round {rounds}: load via {side} ({coa}): exit {r.returncode}; {tail}",
                  flush=True)
            for k in rng.sample(range(LOAD_SUBSCRIBERS), 3):
                if g.hagctl("bindings", "delete", f"load{k}@example.net",
                            check=False).returncode == 0:
                    revoked += 1
            for k in rng.sample(range(LOAD_SUBSCRIBERS), 3):
                r = magsim("deregister", "--lma", LMA6, "--nai", f"load{k}@example.net",
                           "--mag-id", f"load{k}-mag1@example.net", "--access",
                           f"{side.lower()}:{coa}:1", "--retransmissions", "1")
                deregistered += r.returncode == 0
            a = DSL if rounds % 2 else LTE
            g.set_access(a, False)
            down = g.wait_live({x.bid: x is not a for x in g.accesses}, 15)
            g.set_access(a, True)
            up = g.wait_live({x.bid: True for x in g.accesses}, 15)
            flaps += down and up
            if not (down and up):
                check(False, f"round {rounds}: {a.name} flap seen down={down} up={up}")
            rss.append((g.rss_kib("control"), g.rss_kib("dataplane")))
        sent, seen = stream.result()
        print(f"  {rounds} rounds in {seconds:.0f} s: {rounds * LOAD_SUBSCRIBERS} load "
              f"registrations, {revoked} revocations, {deregistered} de-registrations, "
              f"{flaps} access flaps; home router stream: {len(seen)} of {sent} datagrams "
              f"arrived ({sent - len(seen)} lost, during the flaps until heartbeats noticed)",
              flush=True)

        # Everything must agree once the churn stops.
        check(g.wait_in_sync(10), "hag-control's and hag-dataplane's digests agree after the soak")
        cache = g.hagctl_json("bindings", "list", "--all", "--limit", "10000")
        sessions = len(cache.get("bindings", cache.get("sessions", [])))
        dp = g.hagctl_json("dataplane", "status")
        dp_sessions = int(dp.get("sessions", -1))
        check(sessions == dp_sessions,
              f"the data plane holds as many sessions as the binding cache ({dp_sessions} vs "
              f"{sessions})")
        c = g.counters()
        pool = c.get("pool.residential.in_use", -1)
        check(pool == sessions, f"prefixes in use ({pool}) = sessions ({sessions})")
        check(c.get("pbu.received", 0) == c.get("pbu.accepted", 0) + c.get("pbu.rejected", 0),
              f"every PBU accepted or rejected: received {c.get('pbu.received')}, accepted "
              f"{c.get('pbu.accepted')}, rejected {c.get('pbu.rejected')}")
        check(g.ping(), "ping through the gateway after the soak")
        tail_ok = sent > 0 and max(seen, default=-1) > sent - RATE * 5
        check(tail_ok, "the home router's stream still arrives at the end")
        mid = rss[len(rss) // 2] if rss else (0, 0)
        last = rss[-1] if rss else (0, 0)
        for i, name in enumerate(("hag-control", "hag-dataplane")):
            print(f"  {name} resident memory per round (MiB): "
                  + " ".join(f"{r[i] / 1024:.1f}" for r in rss), flush=True)
            check(last[i] <= mid[i] * 1.10 + 4096,
                  f"{name} memory flat from the middle to the end of the soak "
                  f"({mid[i] / 1024:.1f} -> {last[i] / 1024:.1f} MiB)")
        check(rounds >= 2, f"at least two rounds of churn ran ({rounds})")
        print("  PBA status codes sent: " + ", ".join(
            f"{k[len('pba.status.'):]}: {v}" for k, v in sorted(c.items())
            if k.startswith("pba.status.")), flush=True)
    except (RuntimeError, AssertionError, subprocess.TimeoutExpired) as e:
        check(False, str(e))
    finally:
        g.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
