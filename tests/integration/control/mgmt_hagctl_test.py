#!/usr/bin/python3
"""hagctl and server reflection against a management server over a unix socket.

Runs mgmt-test-server (the real service over an in-process binding cache with 3 seeded
sessions of two paths each), then checks hagctl's JSON and table output, filters, paging,
delete of one path and of a session, NOT_FOUND and INVALID_ARGUMENT exit codes, an
unreachable daemon (missing socket, dead TCP port) -> one line and exit 2, and the
reflection client listing and describing hag.v1.Management.
usage: mgmt_hagctl_test.py HAGCTL SERVER REFLECTION_CLIENT
"""
import json
import os
import subprocess
import sys
import tempfile

HAGCTL, SERVER, REFL = sys.argv[1:4]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def hagctl(sock, *args):
    p = subprocess.run([HAGCTL, "--server", sock, "--timeout", "20", *args],
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


with tempfile.TemporaryDirectory(prefix="hag-mgmt-") as tmp:
    sock = "unix:" + os.path.join(tmp, "control.sock")
    srv = subprocess.Popen([SERVER, sock, "3"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           text=True)
    try:
        check(srv.stdout.readline().strip() == "ready", "server ready")
        mode = os.stat(sock[5:]).st_mode & 0o7777
        check(mode == 0o660, f"socket mode 0660 (got {oct(mode)})")

        rc, out, err = hagctl(sock, "-o", "json", "bindings", "list")
        check(rc == 0, f"list json rc 0 ({err.strip()})")
        doc = json.loads(out)
        check(doc["total_sessions"] == "3", "total_sessions 3")
        nais = sorted(b["nai"] for b in doc["bindings"])
        check(nais == [f"user{i}@example.net" for i in range(3)], "three NAIs")
        check(all(len(b["paths"]) == 2 for b in doc["bindings"]), "two paths each")

        rc, out, _ = hagctl(sock, "-o", "json", "bindings", "show", "user1@example.net")
        b = json.loads(out)
        check(rc == 0 and b["home_prefixes"] == ["2001:db8:1001::/64"], "show prefix")
        check([p["coa"] for p in b["paths"]] == ["2001:db8:ff01::2", "2001:db8:ff02::2"],
              "show CoAs")
        check([p["access_technology"] for p in b["paths"]] == [3, 8], "show ATT")

        rc, out, _ = hagctl(sock, "-o", "json", "bindings", "list", "--coa", "2001:db8:ff02::3")
        check(rc == 0 and [x["nai"] for x in json.loads(out)["bindings"]] ==
              ["user2@example.net"], "filter by CoA")
        rc, out, _ = hagctl(sock, "-o", "json", "bindings", "list", "--prefix",
                            "2001:db8:1000::/64")
        check([x["nai"] for x in json.loads(out)["bindings"]] == ["user0@example.net"],
              "filter by prefix")

        rc, out, _ = hagctl(sock, "-o", "json", "bindings", "list", "--limit", "2")
        page1 = json.loads(out)
        check(len(page1["bindings"]) == 2 and page1["next_page_token"] != "", "page 1 of 2")
        rc, out, _ = hagctl(sock, "-o", "json", "bindings", "list", "--limit", "2",
                            "--page-token", page1["next_page_token"])
        page2 = json.loads(out)
        got = sorted(x["nai"] for x in page1["bindings"] + page2["bindings"])
        check(got == nais and page2["next_page_token"] == "", "pages cover all once")
        rc, out, _ = hagctl(sock, "-o", "json", "bindings", "list", "--limit", "1", "--all")
        check(sorted(x["nai"] for x in json.loads(out)["bindings"]) == nais, "--all pages")

        rc, out, _ = hagctl(sock, "bindings", "list")
        check(rc == 0 and out.startswith("NAI ") and "user0@example.net" in out and
              "3 binding(s) shown" in out, "table output")

        rc, out, err = hagctl(sock, "bindings", "list", "--prefix", "2001:db8::/300")
        check(rc == 1 and err.startswith("hagctl: invalid argument: prefix"), "bad prefix rc 1")
        rc, out, err = hagctl(sock, "bindings", "show", "nobody@example.net")
        check(rc == 1 and "not found" in err, "show unknown rc 1")

        # watch: the snapshot, then the REMOVED event of a delete made while watching.
        w = subprocess.Popen([HAGCTL, "--server", sock, "-o", "json", "bindings", "watch",
                              "--snapshot"], stdout=subprocess.PIPE, text=True)
        try:
            snap = [json.loads(w.stdout.readline()) for _ in range(3)]
            check(sorted(e["binding"]["nai"] for e in snap) == nais and
                  all(e["kind"] == "ADDED" for e in snap), "watch snapshot")
            hagctl(sock, "bindings", "delete", "user0@example.net")
            ev = json.loads(w.stdout.readline())
            check(ev["kind"] == "REMOVED" and ev["binding"]["nai"] == "user0@example.net",
                  "watch sees the delete")
        finally:
            w.terminate()
            w.wait(timeout=20)
        nais.remove("user0@example.net")

        rc, out, _ = hagctl(sock, "-o", "json", "bindings", "delete", "user1@example.net",
                            "--bid", "2")
        d = json.loads(out)
        check(rc == 0 and d["paths_removed"] == 1 and not d["session_removed"] and
              d["revocations_sent"] == 1, "delete one path")
        rc, out, _ = hagctl(sock, "-o", "json", "bindings", "show", "user1@example.net")
        check([p["bid"] for p in json.loads(out)["paths"]] == [1], "one path left")
        rc, out, _ = hagctl(sock, "bindings", "delete", "user1@example.net")
        check(rc == 0 and "session removed" in out, "delete session")
        rc, _, _ = hagctl(sock, "bindings", "show", "user1@example.net")
        check(rc == 1, "deleted session gone")

        rc, out, _ = hagctl(sock, "-o", "json", "counters")
        c = {x["name"]: x["value"] for x in json.loads(out)["counters"]}
        check(rc == 0 and c.get("bindings.sessions") == "1" and c.get("mgmt.deletes") == "3",
              "counters")
        rc, out, _ = hagctl(sock, "version")
        check(rc == 0 and "hag-control" in out, "version")

        # File permissions are the access control: an unprivileged user is refused.
        if os.geteuid() == 0 and os.path.exists("/usr/bin/setpriv"):
            os.chmod(tmp, 0o755)
            p = subprocess.run(["/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                                "--clear-groups", HAGCTL, "--server", sock, "bindings", "list"],
                               capture_output=True, text=True, timeout=60)
            check(p.returncode == 2 and "Permission denied" in p.stderr,
                  f"other user refused by socket mode ({p.stderr.strip()})")
            # The kernel enforces it too (not only hagctl's pre-check).
            p = subprocess.run(["/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                                "--clear-groups", sys.executable, "-c",
                                "import socket,sys; s=socket.socket(socket.AF_UNIX); "
                                "s.connect(sys.argv[1])", sock[5:]],
                               capture_output=True, text=True, timeout=60)
            check(p.returncode != 0 and "PermissionError" in p.stderr,
                  "kernel refuses connect() for another user")
            os.chmod(tmp, 0o700)
        else:
            print("skip other-user check (needs root and setpriv)")

        r = subprocess.run([REFL, sock], capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, f"reflection client rc 0 ({r.stderr.strip()})")
        check("service hag.v1.Management" in r.stdout, "reflection lists hag.v1.Management")
        check("rpc WatchBindings(hag.v1.WatchBindingsRequest) returns (stream "
              "hag.v1.BindingEvent)" in r.stdout, "reflection describes WatchBindings")
    finally:
        srv.stdin.close()
        try:
            srv.wait(timeout=20)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait()

    missing = "unix:" + os.path.join(tmp, "absent.sock")
    rc, out, err = hagctl(missing, "bindings", "list")
    check(rc == 2 and len(err.strip().splitlines()) == 1 and "cannot reach hag-control" in err,
          f"missing socket -> one line, exit 2 ({err.strip()})")
    rc, out, err = hagctl("127.0.0.1:1", "bindings", "watch")
    check(rc == 2 and "cannot reach hag-control" in err, "dead TCP port -> exit 2")

sys.exit(1 if failures else 0)
