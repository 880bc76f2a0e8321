#!/usr/bin/python3
"""bench-ab-smoke: runs tools/bench/dataplane-ab on a tiny setting (1,000 subscribers, 2 rounds,
2-second runs) with one build under two names and checks what it reports, never a speed
threshold: every run forwarded the valid traffic without an unexpected drop, each build has one
ratio per round, the builds' order alternates between rounds, the summary is the median of the
rounds; and that a malformed --build or a directory without hag-dp-bench is refused with a clear
message.

usage: test_dataplane_ab.py SCRIPT BUILD_DIR
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def main():
    script, build = sys.argv[1], sys.argv[2]
    for bad, why in ((["--build", "nodir"], "NAME=DIR expected"),
                     (["--build", "x=/nonexistent"], "no hag-dp-bench there"),
                     (["--build", f"x={build}", "--seconds", "1"], "--seconds must be >= 2")):
        r = subprocess.run([script, *bad], capture_output=True, text=True, timeout=60)
        if r.returncode == 0 or why not in r.stderr:
            fail(f"{bad}: exit {r.returncode}, stderr {r.stderr[-500:]!r}")
    if os.geteuid() != 0:
        print("SKIP: needs root (DPDK EAL); CI runs as root")
        sys.exit(77)
    with tempfile.TemporaryDirectory(prefix="hag-ab-smoke-") as work:
        out = os.path.join(work, "ab.json")
        r = subprocess.run([script, "--build", f"one={build}", "--build", f"two={build}",
                            "--rounds", "2", "--subscribers", "1000", "--seconds", "2",
                            "--warmup", "0.2", "--directions", "downlink", "--workdir", work,
                            "--json", out], capture_output=True, text=True, timeout=200)
        print(r.stdout)
        if r.returncode != 0:
            fail(f"dataplane-ab exited {r.returncode}: {r.stderr[-3000:]}")
        with open(out) as f:
            res = json.load(f)
    runs = res["runs"]
    if [(x["round"], x["build"]) for x in runs] != [(1, "one"), (1, "two"), (2, "two"), (2, "one")]:
        fail(f"order of the runs: {[(x['round'], x['build']) for x in runs]}")
    for x in runs:
        h = x["hag"]
        if not (x["testpmd_pps"] > 0 and h["forwarded"] > 0 and x["ratio"] > 0):
            fail(f"run {x['round']} {x['build']}: testpmd {x['testpmd_pps']}, hag {h['forwarded']}")
        if h["unexpected_drops"] != 0 or h["subscribers"] != 1000:
            fail(f"run {x['round']} {x['build']}: drops {h['drops']}, {h['subscribers']} subscribers")
        if abs(x["ratio"] - h["forwarded_pps"] / x["testpmd_pps"]) > 1e-9:
            fail(f"ratio {x['ratio']} is not hag's rate / testpmd's of the round")
    for name in ("one", "two"):
        v = [x["ratio"] for x in runs if x["build"] == name]
        if abs(res["summary"]["downlink"][name] - statistics.median(v)) > 1e-9:
            fail(f"summary of {name}: {res['summary']} against {v}")
        if f"downlink {name}: median" not in r.stdout:
            fail(f"no summary line for {name}")
    print("PASS: bench-ab-smoke (figures above are informative only)")


if __name__ == "__main__":
    main()
