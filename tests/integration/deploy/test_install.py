#!/usr/bin/python3
"""`meson install --destdir` puts every deployment file in place, the units verify, and the
hagctl completion completes.

Installs the build into a temporary DESTDIR (no rebuild), then checks: the daemons, hagctl and
hag-setup-host are there and executable; the units, sysusers.d entry, bash completion, docs,
example configurations and observability files are where docs/deployment.md says; the units
name the installed binaries and the configured sysconfdir; `systemd-analyze verify` accepts both
units (with their paths pointed into DESTDIR); the completion offers hagctl's real subcommands
(compared with `hagctl --help`) and the log-level words.
usage: test_install.py BUILD_DIR PREFIX BINDIR SBINDIR DATADIR SYSCONFDIR
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

BUILD, PREFIX, BINDIR, SBINDIR, DATADIR, SYSCONFDIR = sys.argv[1:7]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def under(base, d):
    return d if os.path.isabs(d) else os.path.join(base, d)


bindir, sbindir = under(PREFIX, BINDIR), under(PREFIX, SBINDIR)
datadir, sysconfdir = under(PREFIX, DATADIR), under(PREFIX, SYSCONFDIR)
docdir = os.path.join(datadir, "doc", "hag")
unitdir = os.path.join(PREFIX, "lib", "systemd", "system")

with tempfile.TemporaryDirectory(prefix="hag-install-") as dest:
    p = subprocess.run(["meson", "install", "-C", BUILD, "--no-rebuild", "--quiet",
                        "--destdir", dest], capture_output=True, text=True, timeout=240)
    check(p.returncode == 0, f"meson install --destdir ({p.stderr.strip()[-500:]})")

    def D(path):
        return dest + path

    for exe in ("hag-control", "hag-dataplane", "hagctl"):
        f = D(os.path.join(bindir, exe))
        check(os.path.isfile(f) and os.access(f, os.X_OK), f"{bindir}/{exe} installed")
    f = D(os.path.join(sbindir, "hag-setup-host"))
    check(os.path.isfile(f) and os.access(f, os.X_OK), f"{sbindir}/hag-setup-host executable")
    expected = [
        os.path.join(unitdir, "hag-dataplane.service"),
        os.path.join(unitdir, "hag-control.service"),
        os.path.join(PREFIX, "lib", "sysusers.d", "hag.conf"),
        os.path.join(datadir, "bash-completion", "completions", "hagctl"),
    ] + [os.path.join(docdir, d) for d in (
        "README.md", "architecture.md", "deployment.md", "operations.md", "troubleshooting.md",
        "observability.md", "config-reference.md",
        "examples/observability/prometheus.yml",
        "examples/observability/grafana-hag-dataplane.json")]
    for d in ("lab-single-nic", "two-nics-vlans", "ipv4-transport", "large"):
        expected += [os.path.join(docdir, "examples", d, f"hag-{x}.conf")
                     for x in ("control", "dataplane")]
    for f in expected:
        check(os.path.isfile(D(f)), f"{f} installed")

    units = {}
    for u in ("hag-dataplane", "hag-control"):
        path = D(os.path.join(unitdir, f"{u}.service"))
        text = open(path).read() if os.path.exists(path) else ""
        units[u] = text
        check(text and not re.search(r"@[a-z_]+@", text),
              f"{u}.service: every @variable@ substituted")
        check(f"ExecStart={bindir}/{u} -c {sysconfdir}/hag/" in text,
              f"{u}.service runs {bindir}/{u} with {sysconfdir}/hag/...")
        check(f"ExecStartPre={bindir}/{u} --check-config" in text,
              f"{u}.service checks its configuration first")
        check("RuntimeDirectory=hag" in text and "RuntimeDirectoryPreserve=yes" in text,
              f"{u}.service: RuntimeDirectory=hag, kept when the other unit stops")
        check("Restart=on-failure" in text and "NoNewPrivileges=yes" in text,
              f"{u}.service: restart policy and sandboxing")
    check("After=hag-dataplane.service" in units["hag-control"] and
          "Wants=hag-dataplane.service" in units["hag-control"],
          "hag-control ordered after and wanting hag-dataplane")
    check("CAP_NET_ADMIN" in units["hag-dataplane"] and "char-vfio" in units["hag-dataplane"],
          "hag-dataplane keeps CAP_NET_ADMIN and vfio devices")
    check("User=hag" in units["hag-control"] and
          "CapabilityBoundingSet=CAP_NET_RAW" in units["hag-control"],
          "hag-control unprivileged with CAP_NET_RAW only")

    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        check(False, "systemd-analyze present (Debian package systemd; tools/quickstart installs it)")
    else:
        # The units as they would be on the host, with paths pointed into DESTDIR so the
        # executables and config files exist.
        vdir = os.path.join(dest, "verify")
        os.makedirs(vdir)
        os.makedirs(D(os.path.join(sysconfdir, "hag")), exist_ok=True)
        for x in ("control", "dataplane"):
            shutil.copy(D(os.path.join(docdir, "examples", "large", f"hag-{x}.conf")),
                        D(os.path.join(sysconfdir, "hag", f"{x}.conf")))
        for u, text in units.items():
            text = text.replace(f"{bindir}/", D(bindir) + "/").replace(
                f"{sysconfdir}/hag/", D(sysconfdir) + "/hag/")
            with open(os.path.join(vdir, f"{u}.service"), "w") as f:
                f.write(text)
        p = subprocess.run([analyze, "verify", "--man=no",
                            os.path.join(vdir, "hag-dataplane.service"),
                            os.path.join(vdir, "hag-control.service")],
                           capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, SYSTEMD_LOG_LEVEL="notice"))
        out = (p.stdout + p.stderr).strip()
        print(out)
        # Findings about the units themselves name them; other units of the host are not ours.
        ours = [l for l in out.splitlines() if "hag-" in l]
        check(p.returncode == 0 and not ours, f"systemd-analyze verify: no findings ({ours})")
        # The check can fail: a misspelt key in a copy of the unit is reported.
        bad = os.path.join(vdir, "hag-bad.service")
        with open(bad, "w") as f:
            f.write(units["hag-control"].replace("Restart=on-failure", "Restrat=on-failure"))
        p = subprocess.run([analyze, "verify", "--man=no", bad], capture_output=True, text=True,
                           timeout=120)
        check("Restrat" in p.stdout + p.stderr, "systemd-analyze verify reports a misspelt key")
        p = subprocess.run([analyze, "security", "--offline=yes", "--no-pager",
                            os.path.join(vdir, "hag-control.service")],
                           capture_output=True, text=True, timeout=120)
        m = re.search(r"Overall exposure level for \S+: ([\d.]+)", p.stdout + p.stderr)
        if m:
            print(f"systemd-analyze security: hag-control exposure {m.group(1)}")
            check(float(m.group(1)) <= 5.0, f"hag-control exposure {m.group(1)} <= 5.0 (OK/MEDIUM)")

    # Completion: source the installed file and complete a few command lines.
    comp = D(os.path.join(datadir, "bash-completion", "completions", "hagctl"))
    hagctl = D(os.path.join(bindir, "hagctl"))

    def complete(*words):
        script = (f"source {comp}\nCOMP_WORDS=(hagctl {' '.join(words)})\n"
                  f"COMP_CWORD={len(words)}\nCOMP_LINE=\"${{COMP_WORDS[*]}}\"\n"
                  f"PATH={os.path.dirname(hagctl)}:$PATH\n_hagctl\necho \"${{COMPREPLY[*]}}\"\n")
        p = subprocess.run(["bash", "--norc", "-c", script], capture_output=True, text=True,
                           timeout=30)
        return p.stdout.split()

    helptext = subprocess.run([hagctl, "--help"], capture_output=True, text=True).stdout
    subs = set(re.findall(r"^\s{2}([a-z][a-z-]+)\s{2,}", helptext.split("Subcommands:")[-1],
                          re.M))
    got = set(complete('""'))
    check(subs and subs <= got, f"completion offers hagctl's subcommands {sorted(subs)} ({sorted(got)})")
    check(set(complete("log-level", '""')) == {"control", "dataplane"}, "log-level daemons")
    check("debug" in complete("log-level", "dataplane", '""'), "log-level levels")
    check(set(complete("dataplane", '""')) == {"status", "stats", "sessions", "paths", "check"},
          "dataplane subcommands")
    check(set(complete("policy", '""')) == {"show", "test", "application", "rule", "profile",
                                             "default", "assign", "unassign", "revert"},
          "policy subcommands")
    check(set(complete("policy", "rule", '""')) == {"add", "replace", "remove"},
          "policy rule edits")
    check(complete("-o", '""') == ["table", "json"], "-o values")
    check(complete("bindings", "li") == ["list"], "prefix completion")

if failures:
    print(f"{len(failures)} check(s) failed: {failures}")
    sys.exit(1)
print("all checks passed")
