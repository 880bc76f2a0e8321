#!/usr/bin/python3
"""The commands the operator docs show work.

1. Every `$ ` line in a fenced block of docs/operations.md, troubleshooting.md, deployment.md
   and observability.md is run with bash, in document order, against fresh daemons per file: the
   real management service (mgmt-test-server, seeded with user0..2@example.net behind mag0..2)
   and a running hag-dataplane on net_null ports. `hagctl` reaches them through a wrapper on
   PATH that adds --server / --dataplane; /etc/hag/{control,dataplane}.conf are copies of the
   two-nics-vlans examples. Expected exit status 0, or N when the line ends in `# exit N`.
2. A fenced block right after `<!-- test: run -->` is run as one bash script (exit 0).
3. Every hagctl invocation anywhere in the docs' code (not only `$ ` lines) names real
   subcommands and options: `hagctl ARGS --help` must succeed.
Commands that need a real host (systemctl, journalctl, dpdk-telemetry.py, ip, curl) are not
`$ ` lines in the docs.
usage: test_docs_commands.py DOCS_DIR HAGCTL MGMT_TEST_SERVER HAG_DATAPLANE HAG_CONTROL SETUP_HOST
"""
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

DOCS, HAGCTL, SERVER, DATAPLANE, CONTROL, SETUP = sys.argv[1:7]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def blocks(text):
    """(preceded by the run marker, [lines]) of each fenced block."""
    out, cur, marker, prev = [], None, False, ""
    for line in text.splitlines():
        if line.strip().startswith("```"):
            if cur is None:
                cur, marker = [], prev.strip() == "<!-- test: run -->"
            else:
                out.append((marker, cur))
                cur = None
            continue
        if cur is not None:
            cur.append(line)
        elif line.strip():
            prev = line
    return out


def start_daemons(tmp):
    ctl = "unix:" + os.path.join(tmp, "control.sock")
    dps = "unix:" + os.path.join(tmp, "dataplane.sock")
    srv = subprocess.Popen([SERVER, ctl, "3"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           text=True)
    ok = srv.stdout.readline().strip() == "ready"
    cfg = os.path.join(tmp, "dp-run.conf")
    with open(cfg, "w") as f:
        f.write(f"""
eal_args: ["--no-huge", "--no-pci", "-m", "256", "--no-telemetry", "-l", "0-1",
           "--file-prefix", "hag-docs-{os.getpid()}-{os.path.basename(tmp)}"]
ports {{ name: "core" device: "net_null0" role: CORE next_hop_mac: "02:00:00:00:00:01" }}
ports {{ name: "access" device: "net_null1" role: ACCESS }}
exception_path: false
mbufs: 2047
max_sessions: 64
max_next_hops: 64
programmer_listen: "{dps}"
idle_sleep_us: 20
""")
    dp = subprocess.Popen([DATAPLANE, "-c", cfg], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 120
    line = ""
    for _ in range(1000):
        line = dp.stdout.readline()
        if line.strip() == "ready" or not line or time.monotonic() > deadline:
            break
    return srv, dp, ctl, dps, ok and line.strip() == "ready"


def stop(srv, dp):
    srv.stdin.close()
    for p in (srv, dp):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def make_env(tmp, ctl, dps):
    bindir = os.path.join(tmp, "bin")
    os.makedirs(bindir, exist_ok=True)
    with open(os.path.join(bindir, "hagctl"), "w") as f:
        f.write(f"""#!/bin/bash
extra=()
[[ " $* " == *" --server "* || " $* " == *" -s "* ]] || extra+=(--server {shlex.quote(ctl)})
[[ " $* " == *" --dataplane "* ]] || extra+=(--dataplane {shlex.quote(dps)})
exec {shlex.quote(HAGCTL)} --timeout 20 "${{extra[@]}}" "$@"
""")
    for name, target in (("hag-control", CONTROL), ("hag-dataplane", DATAPLANE),
                         ("hag-setup-host", SETUP)):
        os.symlink(os.path.abspath(target), os.path.join(bindir, name))
    for f in os.listdir(bindir):
        os.chmod(os.path.join(bindir, f), 0o755)
    return dict(os.environ, PATH=bindir + ":" + os.environ["PATH"])


def localise(cmd, etc):
    return cmd.replace("/etc/hag/", etc + "/")


ran = 0
for name in ("operations.md", "troubleshooting.md", "deployment.md", "observability.md"):
    text = open(os.path.join(DOCS, name)).read()
    bl = blocks(text)
    dollar = [l.strip() for _, b in bl for l in b if l.strip().startswith("$ ")]
    scripts = [b for marker, b in bl if marker]
    if not dollar and not scripts:
        continue
    with tempfile.TemporaryDirectory(prefix="hag-docs-") as tmp:
        etc = os.path.join(tmp, "etc")
        os.makedirs(etc)
        for x in ("control", "dataplane"):
            shutil.copy(os.path.join(DOCS, "examples", "two-nics-vlans", f"hag-{x}.conf"),
                        os.path.join(etc, f"{x}.conf"))
        srv, dp, ctl, dps, ok = start_daemons(tmp)
        try:
            check(ok, f"{name}: daemons ready")
            env = make_env(tmp, ctl, dps)
            for line in dollar:
                cmd = line[2:]
                m = re.search(r"#\s*exit\s+(\d+)\s*$", cmd)
                want = int(m.group(1)) if m else 0
                p = subprocess.run(["bash", "-c", localise(cmd, etc)], capture_output=True,
                                   text=True, timeout=60, env=env)
                ran += 1
                check(p.returncode == want,
                      f"{name}: `{cmd}` exit {p.returncode} (want {want})"
                      + ("" if p.returncode == want else f": {(p.stdout + p.stderr).strip()[:300]}"))
            for b in scripts:
                script = localise("\n".join(b), etc)
                p = subprocess.run(["bash", "-eo", "pipefail", "-c", script],
                                   capture_output=True, text=True, timeout=120, env=env)
                ran += 1
                check(p.returncode == 0, f"{name}: script block starting `{b[0]}` "
                      f"({(p.stdout + p.stderr).strip()[:300]})")
        finally:
            stop(srv, dp)
check(ran >= 20, f"{ran} documented commands run")

# Every hagctl invocation in any doc's code names real subcommands and options.
seen = set()
for path in glob.glob(os.path.join(DOCS, "*.md")):
    for _, b in blocks(open(path).read()):
        for line in b:
            # Command positions only: line start, or after a pipe, && or ;.
            for m in re.finditer(r"(?:^\s*(?:\$\s+)?|[|;&]\s*)hagctl((?:\s+[^\s|;&#`)]+)*)",
                                 line):
                args = m.group(1).split()
                if not args or any("$" in a or a.startswith(("<", "'")) or a in ("...", "NAI")
                                   for a in args):
                    continue
                key = " ".join(args)
                if key in seen:
                    continue
                seen.add(key)
                p = subprocess.run([HAGCTL, *args, "--help"], capture_output=True, text=True,
                                   timeout=30)
                check(p.returncode == 0, f"{os.path.basename(path)}: `hagctl {key}` parses "
                      f"({p.stderr.strip()[:200]})")
check(len(seen) >= 10, f"{len(seen)} distinct hagctl invocations checked")

# Relative links between the docs (and from the top-level README) lead somewhere.
broken = []
for path in glob.glob(os.path.join(DOCS, "*.md")) + [os.path.join(DOCS, "..", "README.md")]:
    for m in re.finditer(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", open(path).read()):
        link = m.group(1)
        if not re.match(r"^[a-z]+:", link) and not os.path.exists(
                os.path.join(os.path.dirname(path), link)):
            broken.append(f"{os.path.basename(path)}: {link}")
check(not broken, f"relative links resolve ({broken})")

if failures:
    print(f"{len(failures)} check(s) failed: {failures}")
    sys.exit(1)
print("all checks passed")
