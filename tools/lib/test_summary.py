#!/usr/bin/python3
"""Tally meson testlog.json files (and `--failed TEXT` items) into the closing line `tests: N passed, M failed[, K skipped]`.

Exit status 1 when any test failed, timed out or errored, or when a log is missing (a suite that
did not run is a failure, not a silent pass).
"""
import json
import sys

passed = failed = skipped = 0
failures = []
args = sys.argv[1:]
paths = []
while args:  # --failed TEXT: a failure found outside meson (e.g. sanitizer reports of daemons)
    a = args.pop(0)
    if a == "--failed" and args:
        failed += 1
        failures.append(args.pop(0))
    else:
        paths.append(a)
for path in paths:
    try:
        with open(path, encoding="utf-8") as f:
            lines = [l for l in f if l.strip()]
    except OSError as e:
        failed += 1
        failures.append(f"{path}: no test log ({e.strerror})")
        continue
    for line in lines:
        t = json.loads(line)
        r = t.get("result", "")
        name = f"{t.get('suite', [''])[0] if t.get('suite') else ''} / {t.get('name')}"
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
            print(f"skipped: {name}")
        else:
            failed += 1
            failures.append(f"{name}: {r}")

for f in failures:
    print(f"FAILED: {f}")
line = f"tests: {passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(1 if failed or passed == 0 else 0)
