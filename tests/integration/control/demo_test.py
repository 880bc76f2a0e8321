#!/usr/bin/python3
"""`tools/quickstart demo`'s signalling part runs and shows what it promises (root only).

usage: demo_test.py DEMO_SCRIPT BUILD_DIR
"""
import os
import subprocess
import sys

if os.geteuid() != 0:
    print("SKIPPED: the demo creates network namespaces and needs root")
    sys.exit(77)
demo, build = sys.argv[1], sys.argv[2]
r = subprocess.run(["/usr/bin/python3", demo, build], capture_output=True, text=True, timeout=120)
print(r.stdout, r.stderr)
want = ["registration: accepted", "1 binding(s) shown", "de-registration: accepted",
        "1 revocation(s) sent", "revoked by LMA (trigger 1)", "Binding Update",
        "Binding Revocation Acknowledge"]
missing = [w for w in want if w not in r.stdout]
if r.returncode != 0 or missing:
    print(f"FAIL: exit {r.returncode}, missing {missing}")
    sys.exit(1)
print("ok   demo shows registration, hagctl view, de-registration, revocation, the wire")
