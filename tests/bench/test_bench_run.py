#!/usr/bin/python3
"""bench-run-smoke: tools/bench/run all --smoke (tiny counts, a fraction of a second per run)
writes JSON with a row for every scenario, each row with every field, sane values (rates > 0,
no drop of the valid traffic, PBAs accepted), and a PNG plot. No speed threshold.

usage: test_bench_run.py SCRIPT BUILD_DIR
"""
import json
import os
import subprocess
import sys
import tempfile

SCENARIOS = ["downlink", "striped", "uplink", "reorder", "policy", "scale", "updates",
             "signalling"]
FIELDS = ["scenario", "run", "subscribers", "mpps", "testpmd_mpps", "ratio_to_testpmd",
          "ratio_to_reference", "reference", "cycles_per_packet", "stage_cycles_per_packet",
          "testpmd_cycles_per_packet", "memory_bytes_per_subscriber", "worker_cpu_share",
          "unexpected_drops", "pbu_per_s", "p50_ms", "p99_ms", "target", "target_met",
          "loadavg"]


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def main():
    script, build = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory(prefix="hag-bench-run-smoke-") as work:
        out, png = os.path.join(work, "bench.json"), os.path.join(work, "bench.png")
        r = subprocess.run([sys.executable, script, "all", "--smoke", "--build", build,
                            "--json", out, "--plot", png], capture_output=True, text=True,
                           timeout=360)
        print(r.stdout[-4000:])
        if r.returncode != 0:
            fail(f"exit {r.returncode}: {r.stderr[-3000:]}")
        with open(out) as f:
            res = json.load(f)
        with open(png, "rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                fail("the plot is not a PNG")
    rows = res["rows"]
    for key in ("date", "machine", "nice", "loadavg_start", "loadavg_end"):
        if key not in res:
            fail(f"JSON without {key}")
    seen = {r["scenario"] for r in rows}
    if seen != set(SCENARIOS):
        fail(f"scenarios in the JSON: {sorted(seen)}")
    for row in rows:
        missing = [k for k in FIELDS if k not in row]
        if missing:
            fail(f"row {row.get('scenario')}/{row.get('run')} lacks {missing}")
        if len(row["loadavg"]) != 3:
            fail(f"row {row['run']}: load average {row['loadavg']}")
        if row["scenario"] == "signalling":
            if not row["pbu_per_s"] or row["pbu_per_s"] <= 0 or row["p99_ms"] is None:
                fail(f"signalling row: {row}")
            continue
        if not row["mpps"] or row["mpps"] <= 0 or not row["testpmd_mpps"] or \
                row["testpmd_mpps"] <= 0 or row["ratio_to_testpmd"] is None:
            fail(f"forwarding row without rates: {row}")
        # The reorder's 5 ms gap timeout can expire while the worker is off its CPU, and the
        # missing packet is then dropped as late (docs/benchmarks.md): timing, not a fault.
        if row["unexpected_drops"] != 0 and row["scenario"] != "reorder":
            fail(f"valid traffic dropped: {row}")
        if row["cycles_per_packet"] is None or row["cycles_per_packet"] <= 0:
            fail(f"no cycles per packet: {row}")
        if row["memory_bytes_per_subscriber"] is None:
            fail(f"no memory per subscriber: {row}")
    striped = [r for r in rows if r["scenario"] == "striped"]
    scale = [r for r in rows if r["scenario"] == "scale"]
    if len(striped) != 2 or any(r["ratio_to_reference"] is None for r in striped):
        fail(f"striped rows: {striped}")
    if len(scale) < 2 or scale[-1]["target_met"] is None:
        fail(f"scale rows: {scale}")
    reorder = [r for r in rows if r["scenario"] == "reorder"][0]
    if reorder["reorder_held"] <= 0:
        fail(f"the reorder scenario held nothing: {reorder}")
    print(f"bench run smoke: {len(rows)} rows, {len(seen)} scenarios, JSON and PNG written")


if __name__ == "__main__":
    main()
