#!/usr/bin/python3
"""bench-programming-smoke: runs tools/bench/programming --quick and checks that it ran and that
its numbers are sane (every session registered reached the data plane, rates > 0, the resync
carried them all and both sides agree afterwards). Never a speed threshold: the figures are for
docs/benchmarks.md, not for pass/fail. Root only (exit 77 otherwise).

usage: test_programming_bench.py SCRIPT BUILD_DIR
"""
import json
import os
import subprocess
import sys
import tempfile


def main():
    if os.geteuid() != 0:
        print("SKIPPED: tools/bench/programming needs root (CI runs as root)")
        return 77
    script, build = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory(prefix="hag-bench-prog-smoke-") as d:
        out = os.path.join(d, "r.json")
        r = subprocess.run([script, "--quick", "--build", build, "--json", out],
                           capture_output=True, text=True, timeout=400)
        print(r.stdout, r.stderr)
        if r.returncode != 0:
            print(f"FAIL: tools/bench/programming --quick exited {r.returncode}")
            return 1
        with open(out) as f:
            res = json.load(f)
    problems = []
    if res["accepted"] < 1:
        problems.append("nothing registered")
    if not res["e2e_sessions_per_s"] > 0 or not res["pba_per_s"] > 0:
        problems.append("a rate is not positive")
    if res["fill_sessions"] < res["resync_sessions"] * 9 // 10:
        problems.append(f"fill reached {res['fill_sessions']} of {res['resync_sessions']}")
    if res["resync_pusher_seconds"] is None or not res["resync_from_ready_seconds"] > 0:
        problems.append("no resync duration")
    if not sum(res["push_cpu_control"].values()) > 0 or not res["push_apply_call_s"] > 0:
        problems.append("no CPU time / Apply call time measured for the push phase")
    if not res["in_sync_after_resync"] or res["digest_mismatches"] != 0:
        problems.append("control and data plane differ after the resync")
    for p in problems:
        print("FAIL:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
