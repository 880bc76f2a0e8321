#!/usr/bin/python3
"""The end-to-end suite's main test: `tools/quickstart demo` itself, run as a test (root only).

tools/demo/demo.py builds the complete gateway in namespaces (hag-dataplane on virtual devices,
hag-control, hag-magsim as a home router with DSL and LTE behind tbf rates and hag-linkemu delay)
and checks what it prints: both accesses registered with real PBU/PBA, the digests of control
and data plane agree, ping and TCP both ways, both paths carry the bonded traffic, the bonded
downlink beats the best single access by more than 10 % (a ratio of two rates measured in the
same run, not a time limit), each access cut is noticed by both ends and the traffic moves to
the other one, the flow policy switches (SIP/RTP stays on LTE without DSL and is dropped without
LTE), and tshark decodes every captured signalling packet (PBU, PBA, heartbeats) without a
malformed field. Any broken promise makes the demo exit 1; this test also checks the output has
each section and that nothing is left behind.

usage: test_demo.py DEMO_PY BUILD_DIR
"""
import os
import subprocess
import sys

if os.geteuid() != 0:
    print("SKIPPED: the demo creates network namespaces and needs root "
          "(CI runs as root; run `sudo meson test ...` locally)")
    sys.exit(77)
demo, build = sys.argv[1], sys.argv[2]
suffix = f"demotest{os.getpid() % 100000}"
r = subprocess.run(["/usr/bin/python3", demo, build, "--suffix", suffix], capture_output=True,
                   text=True, timeout=400)
print(r.stdout, r.stderr, flush=True)
failures = []
if r.returncode != 0:
    failures.append(f"the demo exited {r.returncode}")
for want in ("registration: accepted (0)", "1 binding(s) shown", "bonded pipe",
             "downlink core -> home:", "uplink home -> core:", "downlink over DSL alone",
             "downlink over LTE alone", "DSL + LTE bonded", "SIP/RTP: 50 datagrams",
             "SSH: the home router's connection", "path MTU:", "Heartbeat:",
             "malformed or in error: 0", "demo: done"):
    if want not in r.stdout:
        failures.append(f"the output lacks {want!r}")
left = [n for n in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                  text=True).stdout.split() if n.endswith("-" + suffix)]
if left or os.path.exists(f"/run/hag-{suffix}"):
    failures.append(f"left behind: namespaces {left}, /run/hag-{suffix}")
for f in failures:
    print("FAIL:", f)
if not failures:
    print("ok   the demo ran end to end and kept every promise")
sys.exit(1 if failures else 0)
