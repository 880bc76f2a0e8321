#!/usr/bin/python3
"""Management API on TCP with TLS and client certificates (docs/management-api.md).

Certificates are made here with the openssl CLI: a CA, a server certificate for 127.0.0.1 and a
client certificate signed by it, and a second, unrelated CA with its own client certificate.
mgmt-test-server listens on 127.0.0.1 (an ephemeral port) with TLS required; hagctl is refused
without TLS, with TLS but no client certificate, and with the unrelated CA's certificate, and
served with the right one. No root needed.

usage: mgmt_tls_test.py HAGCTL MGMT_TEST_SERVER
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

HAGCTL, SERVER = sys.argv[1:3]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
            "-subj", f"/CN=hag test {name}", cwd=d)


def make_cert(d, name, ca, ext):
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write(ext + "\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
            cwd=d)


def main():
    if shutil.which("openssl") is None:
        print("FAIL openssl CLI not found (Debian package openssl; tools/quickstart installs it)")
        return 1
    d = tempfile.mkdtemp(prefix="hag-mgmt-tls-")
    srv = None
    try:
        make_ca(d, "ca")
        make_ca(d, "rogue-ca")
        make_cert(d, "server", "ca",
                  "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth")
        make_cert(d, "client", "ca", "extendedKeyUsage=clientAuth")
        make_cert(d, "rogue", "rogue-ca", "extendedKeyUsage=clientAuth")
        p = lambda n: os.path.join(d, n)  # noqa: E731
        srv = subprocess.Popen([SERVER, "127.0.0.1:0", "3", p("server.pem"), p("server.key"),
                                p("ca.pem")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True)
        check(srv.stdout.readline().strip() == "ready", "TLS server ready")
        port_line = srv.stdout.readline().split()
        check(len(port_line) == 2 and port_line[0] == "port", f"port printed ({port_line})")
        server = f"127.0.0.1:{port_line[1]}"

        def hagctl(*args):
            r = subprocess.run([HAGCTL, "--server", server, "--timeout", "5", *args],
                               capture_output=True, text=True, timeout=60)
            return r.returncode, r.stdout, r.stderr

        good = ["--tls-ca", p("ca.pem"), "--tls-cert", p("client.pem"), "--tls-key",
                p("client.key")]
        rc, out, err = hagctl(*good, "-o", "json", "bindings", "list")
        check(rc == 0 and json.loads(out or "{}").get("total_sessions") == "3",
              f"client with a certificate of the client CA: served ({rc} {err.strip()})")

        rc, out, err = hagctl("bindings", "list")
        check(rc != 0 and "user0" not in out, f"plaintext client refused (rc {rc})")

        rc, out, err = hagctl("--tls-ca", p("ca.pem"), "bindings", "list")
        check(rc != 0 and "user0" not in out, f"TLS client without a certificate refused (rc {rc})")

        rc, out, err = hagctl("--tls-ca", p("ca.pem"), "--tls-cert", p("rogue.pem"),
                              "--tls-key", p("rogue.key"), "bindings", "list")
        check(rc != 0 and "user0" not in out,
              f"client certificate of another CA refused (rc {rc})")

        rc, out, err = hagctl("--tls-ca", p("rogue-ca.pem"), "--tls-cert", p("client.pem"),
                              "--tls-key", p("client.key"), "bindings", "list")
        check(rc != 0, f"server not trusted by the client (wrong --tls-ca): no call (rc {rc})")

        rc, out, err = hagctl("--tls-ca", p("ca.pem"), "--tls-cert", p("client.pem"),
                              "--tls-key", p("client.key"), "--tls-server-name", "localhost",
                              "version")
        check(rc == 0, f"--tls-server-name localhost matches the certificate ({err.strip()})")
    finally:
        if srv is not None:
            srv.stdin.close()
            try:
                srv.wait(10)
            except subprocess.TimeoutExpired:
                srv.kill()
        shutil.rmtree(d, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
