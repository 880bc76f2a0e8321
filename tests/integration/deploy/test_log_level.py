#!/usr/bin/python3
"""`hagctl log-level` changes the log level of a running hag-control and hag-dataplane.

hag-control: the real management service (mgmt-test-server) over a unix socket. hag-dataplane:
the real daemon on two net_null ports (EAL with --no-huge --no-pci, no
exception path), its DataplaneProgrammer on a unix socket. For each: show the level (info), set
debug (reply says "was info", the daemon logs the change), set error and then warn (the
warn-level change is not logged because info messages are now filtered: the level really
applies), an invalid level (the daemon answers INVALID_ARGUMENT, hagctl exits 1), JSON output, and an
unreachable daemon (exit 2, one line).
usage: test_log_level.py HAGCTL MGMT_TEST_SERVER HAG_DATAPLANE
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

HAGCTL, SERVER, DATAPLANE = sys.argv[1:4]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def hagctl(*args):
    p = subprocess.run([HAGCTL, "--timeout", "20", *args], capture_output=True, text=True,
                       timeout=60)
    return p.returncode, p.stdout, p.stderr


class Daemon:
    """A process whose stderr is collected by a thread (to look for log lines)."""

    def __init__(self, argv):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        self.err = []
        self.t = threading.Thread(target=self._drain, daemon=True)
        self.t.start()

    def _drain(self):
        for line in self.p.stderr:
            self.err.append(line)

    def wait_ready(self, seconds=60):
        deadline = time.monotonic() + seconds
        for _ in range(1000):
            line = self.p.stdout.readline()
            if line.strip() == "ready" or not line or time.monotonic() > deadline:
                return line.strip() == "ready"
        return False

    def logged(self, text, seconds=10):
        deadline = time.monotonic() + seconds
        for _ in range(200):
            if any(text in l for l in self.err):
                return True
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        return False

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def exercise(daemon, name, sock_opt, proc, logs_changes):
    rc, out, err = hagctl(*sock_opt, "log-level", daemon)
    check(rc == 0 and out.strip() == f"{name}: log level info", f"{daemon}: show level ({out}{err})")
    rc, out, err = hagctl(*sock_opt, "log-level", daemon, "debug")
    check(rc == 0 and out.strip() == f"{name}: log level debug (was info)",
          f"{daemon}: set debug ({out}{err})")
    if logs_changes:
        check(proc.logged("log level info -> debug"), f"{daemon}: change logged")
    rc, out, _ = hagctl(*sock_opt, "-o", "json", "log-level", daemon)
    doc = json.loads(out) if rc == 0 else {}
    check(doc == {"daemon": name, "level": "debug", "previous": "debug"},
          f"{daemon}: JSON shows debug ({out})")
    rc, out, _ = hagctl(*sock_opt, "log-level", daemon, "error")
    check(rc == 0 and "(was debug)" in out, f"{daemon}: set error")
    rc, out, _ = hagctl(*sock_opt, "log-level", daemon, "warn")
    check(rc == 0 and "log level warn (was error)" in out, f"{daemon}: set warn")
    if logs_changes:
        # The info line about error -> warn is filtered at warn: the level is in force.
        time.sleep(0.5)
        check(not proc.logged("log level error -> warn", seconds=0),
              f"{daemon}: info lines filtered at level warn")
        rc, out, _ = hagctl(*sock_opt, "log-level", daemon, "info")
        check(rc == 0 and proc.logged("log level warn -> info"),
              f"{daemon}: back to info, logged again")
    rc, out, err = hagctl(*sock_opt, "log-level", daemon, "loud")
    check(rc == 1 and "loud" in err and "expected trace" in err,
          f"{daemon}: invalid level refused by the daemon, exit 1 ({err.strip()})")
    rc, out, err = hagctl(*sock_opt, "log-level", daemon)
    check(rc == 0 and ("log level info" in out or not logs_changes),
          f"{daemon}: level unchanged by the refused call")


with tempfile.TemporaryDirectory(prefix="hag-loglevel-") as tmp:
    ctl_sock = "unix:" + os.path.join(tmp, "control.sock")
    dp_sock = "unix:" + os.path.join(tmp, "dataplane.sock")

    rc, _, err = hagctl("--server", ctl_sock, "log-level", "control", "debug")
    check(rc == 2 and "does not exist" in err, f"control unreachable: exit 2 ({err.strip()})")
    rc, _, err = hagctl("--dataplane", dp_sock, "log-level", "dataplane")
    check(rc == 2 and "hag-dataplane" in err, f"dataplane unreachable: exit 2 ({err.strip()})")
    rc, _, err = hagctl("log-level", "bogus")
    check(rc != 0, "unknown daemon refused")

    srv = Daemon([SERVER, ctl_sock, "1"])
    try:
        check(srv.wait_ready(), "mgmt-test-server ready")
        # mgmt-test-server sets up no logger of its own: spdlog's default one, level info.
        exercise("control", "hag-control", ["--server", ctl_sock], srv, logs_changes=False)
    finally:
        srv.p.stdin.close()
        srv.stop()

    cfg = os.path.join(tmp, "dataplane.conf")
    with open(cfg, "w") as f:
        f.write(f"""
log {{ level: "info" }}
eal_args: ["--no-huge", "--no-pci", "-m", "256", "--no-telemetry", "-l", "0-1",
           "--file-prefix", "hag-loglevel-{os.getpid()}"]
ports {{ name: "core" device: "net_null0" role: CORE next_hop_mac: "02:00:00:00:00:01" }}
ports {{ name: "access" device: "net_null1" role: ACCESS }}
exception_path: false
mbufs: 2047
max_sessions: 64
max_next_hops: 64
programmer_listen: "{dp_sock}"
idle_sleep_us: 20
""")
    dp = Daemon([DATAPLANE, "-c", cfg])
    try:
        check(dp.wait_ready(120), "hag-dataplane ready")
        exercise("dataplane", "hag-dataplane", ["--dataplane", dp_sock], dp, logs_changes=True)
    finally:
        dp.stop()
    print("".join(dp.err[-20:]))

if failures:
    print(f"{len(failures)} check(s) failed: {failures}")
    sys.exit(1)
print("all checks passed")
