#!/usr/bin/python3
"""Every example configuration under docs/examples passes its daemon's --check-config, and
--check-config reports broken files with file:line and exit 1 without starting anything.

hag-control files are *control*.conf, hag-dataplane files *dataplane*.conf; each deployment
directory (lab-single-nic, two-nics-vlans, ipv4-transport, large) has one of each. Broken
variants: an unknown field, a bad address, a missing file, a syntax error. hag-dataplane's check
must not start the EAL: it runs as a user without hugepages and leaves no DPDK runtime
directory behind.
usage: test_config_examples.py HAG_CONTROL HAG_DATAPLANE EXAMPLES_DIR
"""
import glob
import os
import subprocess
import sys
import tempfile

CONTROL, DATAPLANE, EXAMPLES = sys.argv[1:4]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def run(binary, path):
    p = subprocess.run([binary, "--check-config", "-c", path], capture_output=True, text=True,
                       timeout=60)
    return p.returncode, p.stdout + p.stderr


files = sorted(glob.glob(os.path.join(EXAMPLES, "**", "*.conf"), recursive=True))
check(len(files) >= 10, f"example files found ({len(files)})")
for d in ("lab-single-nic", "two-nics-vlans", "ipv4-transport", "large"):
    for f in ("hag-control.conf", "hag-dataplane.conf"):
        check(os.path.exists(os.path.join(EXAMPLES, d, f)), f"{d}/{f} exists")

for path in files:
    name = os.path.relpath(path, EXAMPLES)
    binary = CONTROL if "control" in os.path.basename(path) else DATAPLANE
    rc, out = run(binary, path)
    check(rc == 0 and "configuration OK" in out, f"{name}: {os.path.basename(binary)} "
          f"--check-config OK ({out.strip()})")
    text = open(path).read()
    check(text.lstrip().startswith("#") and text.count("#") >= 5,
          f"{name}: annotated (comments)")

with tempfile.TemporaryDirectory(prefix="hag-cfg-") as tmp:
    base = os.path.join(EXAMPLES, "two-nics-vlans")
    for daemon, binary in (("control", CONTROL), ("dataplane", DATAPLANE)):
        good = open(os.path.join(base, f"hag-{daemon}.conf")).read().splitlines()
        # An unknown field on line 3 (after two comment lines of ours).
        bad = os.path.join(tmp, f"unknown-{daemon}.conf")
        with open(bad, "w") as f:
            f.write("\n".join(["# broken", "# on purpose", "no_such_field: 1"] + good) + "\n")
        rc, out = run(binary, bad)
        check(rc == 1 and f"{bad}:3" in out and "no_such_field" in out,
              f"{daemon}: unknown field -> exit 1 with file:line ({out.strip()[:200]})")
        # A syntax error.
        bad = os.path.join(tmp, f"syntax-{daemon}.conf")
        with open(bad, "w") as f:
            f.write("log { level: \"info\"\n")
        rc, out = run(binary, bad)
        check(rc == 1 and bad in out, f"{daemon}: syntax error -> exit 1 naming the file")
        # A missing file.
        rc, out = run(binary, os.path.join(tmp, "absent.conf"))
        check(rc == 1 and "absent.conf" in out, f"{daemon}: missing file -> exit 1")
    # Semantic errors of each daemon.
    bad = os.path.join(tmp, "bad-address-control.conf")
    with open(bad, "w") as f:
        f.write('lma_addresses: "2001:db8::zz"\n')
    rc, out = run(CONTROL, bad)
    check(rc == 1 and f"{bad}:1" in out, f"control: bad address -> exit 1 at line 1 ({out.strip()})")
    bad = os.path.join(tmp, "bad-port-dataplane.conf")
    with open(bad, "w") as f:
        f.write('eal_args: ["-l", "0-1"]\nports { name: "a" device: "net_null0" role: ACCESS }\n'
                'ports { name: "c" device: "net_null1" role: CORE\n'
                '        next_hop_ipv4: "192.0.2.300" }\n')
    rc, out = run(DATAPLANE, bad)
    check(rc == 1 and f"{bad}:4" in out and "next_hop_ipv4" in out,
          f"dataplane: bad next hop -> exit 1 at line 4 ({out.strip()})")

    # No EAL: a PCI device that does not exist, no hugepages, an unprivileged user: still OK,
    # and no DPDK runtime directory for the file prefix appears.
    cfg = os.path.join(tmp, "eal-dataplane.conf")
    prefix = f"hag-check-{os.getpid()}"
    with open(cfg, "w") as f:
        f.write(f'eal_args: ["-l", "0-1", "--file-prefix", "{prefix}"]\n'
                'ports { name: "a" device: "0000:ff:1f.7" role: ACCESS }\n'
                'ports { name: "c" device: "0000:ff:1f.6" role: CORE next_hop_ipv6: "2001:db8::1" }\n'
                'idle_sleep_us: 20\n')
    os.chmod(tmp, 0o755)
    os.chmod(cfg, 0o644)
    cmd = [DATAPLANE, "--check-config", "-c", cfg]
    if os.geteuid() == 0:
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    check(p.returncode == 0 and "configuration OK" in p.stdout,
          f"check without EAL: nonexistent NICs, unprivileged ({(p.stdout + p.stderr).strip()})")
    check(not any(os.path.exists(d) for d in (f"/var/run/dpdk/{prefix}",
                                              f"/tmp/dpdk/{prefix}")),
          "no DPDK runtime directory created")

if failures:
    print(f"{len(failures)} check(s) failed: {failures}")
    sys.exit(1)
print("all checks passed")
