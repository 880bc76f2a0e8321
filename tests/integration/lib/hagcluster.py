"""Several hag-control nodes sharing an etcd started by the test (docs/scale-out.md).

Topology (namespaces made here, removed by close()):
  "etcd": an etcd of its own (temporary data directory, its loopback for the peer port),
          reached by node i over a link, etcd side 2001:db8:e<i>::1, node side ...::2; with
          tls (the default) its clients use TLS with client-certificate authentication, from
          a CA made here with openssl (certificates in the work directory);
  one namespace per node: its LMA address on a link to "cpe", its own fake data plane (the
          DataplaneProgrammer test server) on a unix socket;
  "cpe":  the home routers, one address towards each node. With route_between_nodes, cpe
          forwards between the node links and every node routes the other nodes' LMA /64s
          through it (node-to-node signalling, distributed anchoring).
Used by cluster_test.py and dmm_test.py.
"""
import json
import os
import shutil
import subprocess
import sys
import time

import netns

ETCD_PORT = 2379


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certs(d, etcd_addresses):
    """A CA, etcd's server certificate (the addresses the nodes dial), a client certificate,
    and a second CA ("rogue-ca") that signed nothing etcd trusts."""
    for ca in ("ca", "rogue-ca"):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-days", "2",
                "-subj", f"/CN=hag cluster test {ca}", cwd=d)
    sans = ",".join(["IP:127.0.0.1"] + [f"IP:{a}" for a in etcd_addresses])
    for name, ext in (("etcd", f"subjectAltName={sans}\nextendedKeyUsage=serverAuth"),
                      ("client", "extendedKeyUsage=clientAuth")):
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(ext + "\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile",
                f"{name}.ext", cwd=d)


def wait_for(pred, seconds):
    end = time.time() + seconds
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    return pred()


class Cluster:
    """nodes: {name: {"lma", "cpe", "etcd", ...}}; config: a str.format template filled with
    name, lma, sock, dpsock, etcd, port, tls (the store's etcd_tls_* lines) and each node's own
    entries."""

    def __init__(self, tag, nodes, config, control, hagctl, fake_exe, check,
                 route_between_nodes=False, tls=True):
        self.nodes, self.config, self.control, self.hagctl = nodes, config, control, hagctl
        self.fake_exe, self.check = fake_exe, check
        self.etcd_exe = shutil.which("etcd")
        self.topo = netns.Topology(tag)
        self.ens, self.cpe = self.topo.ns("etcd"), self.topo.ns("cpe")
        self.ns = {n: self.topo.ns(n) for n in nodes}
        self.daemons, self.logs, self.socks = {}, {}, {}
        self.etcd = None
        topo = self.topo
        for n in list(self.ns.values()) + [self.ens, self.cpe]:
            for conf in ("all", "default"):
                netns.sh("sysctl", "-qw", f"net.ipv6.conf.{conf}.accept_dad=0", ns=n)
        for i, (n, cfg) in enumerate(nodes.items()):
            topo.veth(self.ns[n], "l0", self.cpe, f"m{i}")
            netns.sh("ip", "addr", "add", cfg["lma"] + "/64", "dev", "l0", "nodad", ns=self.ns[n])
            netns.sh("ip", "addr", "add", cfg["cpe"] + "/64", "dev", f"m{i}", "nodad",
                     ns=self.cpe)
            topo.veth(self.ns[n], "e0", self.ens, f"e{i}")
            node_side = cfg["etcd"][:-1] + "2"
            netns.sh("ip", "addr", "add", node_side + "/64", "dev", "e0", "nodad", ns=self.ns[n])
            netns.sh("ip", "addr", "add", cfg["etcd"] + "/64", "dev", f"e{i}", "nodad",
                     ns=self.ens)
        if route_between_nodes:
            netns.sh("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1", ns=self.cpe)
            for n, cfg in nodes.items():
                for m, other in nodes.items():
                    if m != n:
                        netns.sh("ip", "-6", "route", "add", other["lma"] + "/64", "via",
                                 cfg["cpe"], ns=self.ns[n])
        self.work = topo.tmpdir("hag-cluster-test-")
        self.tls = tls
        if tls:
            make_certs(self.work, [c["etcd"] for c in nodes.values()])
        self.etcd_log = open(os.path.join(self.work, "etcd.log"), "w+")
        for n, cfg in nodes.items():
            sock = os.path.join(self.work, f"control-{n}.sock")
            dpsock = os.path.join(self.work, f"dataplane-{n}.sock")
            self.socks[n] = (sock, dpsock)
            with open(os.path.join(self.work, f"control-{n}.conf"), "w") as f:
                f.write(config.format(name=n, sock=sock, dpsock=dpsock, port=ETCD_PORT,
                                      tls=self.tls_config(), **cfg))
            fake = subprocess.Popen([fake_exe, "unix:" + dpsock], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True)
            topo.procs.append(fake)
            check(fake.stdout.readline().strip() == "ready", f"fake data plane of node {n} ready")
            self.logs[n] = open(os.path.join(self.work, f"control-{n}.log"), "w+")

    def pem(self, name):
        return os.path.join(self.work, name)

    def tls_config(self, ca="ca.pem", client=True):
        """The store's TLS lines for a node's configuration ("" without tls)."""
        if not self.tls:
            return ""
        lines = [f'  etcd_tls_ca: "{self.pem(ca)}"']
        if client:
            lines += [f'  etcd_tls_cert: "{self.pem("client.pem")}"',
                      f'  etcd_tls_key: "{self.pem("client.key")}"']
        return "\n".join(lines)

    # --- etcd ---
    def start_etcd(self):
        scheme = "https" if self.tls else "http"
        urls = ",".join([f"{scheme}://127.0.0.1:{ETCD_PORT}"] +
                        [f"{scheme}://[{c['etcd']}]:{ETCD_PORT}" for c in self.nodes.values()])
        tls = ["--cert-file", self.pem("etcd.pem"), "--key-file", self.pem("etcd.key"),
               "--client-cert-auth", "--trusted-ca-file", self.pem("ca.pem")] if self.tls else []
        p = subprocess.Popen(
            ["ip", "netns", "exec", self.ens, self.etcd_exe, "--name", "test",
             "--data-dir", os.path.join(self.work, "etcd"), "--listen-client-urls", urls,
             "--advertise-client-urls", f"{scheme}://127.0.0.1:{ETCD_PORT}", *tls,
             "--listen-peer-urls", "http://127.0.0.1:2380",
             "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
             "--initial-cluster", "test=http://127.0.0.1:2380"],
            stdout=self.etcd_log, stderr=subprocess.STDOUT)
        self.topo.procs.append(p)
        self.etcd = p
        return p

    def etcd_ready(self):
        if self.tls:
            ctx = (f"c=ssl.create_default_context(cafile={self.pem('ca.pem')!r});"
                   f"c.load_cert_chain({self.pem('client.pem')!r},{self.pem('client.key')!r});")
            url, kw = f"https://127.0.0.1:{ETCD_PORT}/health", ",context=c"
        else:
            ctx, url, kw = "", f"http://127.0.0.1:{ETCD_PORT}/health", ""
        r = subprocess.run(["ip", "netns", "exec", self.ens, sys.executable, "-c",
                            "import ssl,urllib.request,sys;" + ctx +
                            f"sys.exit(0 if b'true' in urllib.request.urlopen("
                            f"{url!r},timeout=1{kw}).read() else 1)"],
                           capture_output=True, timeout=10)
        return r.returncode == 0

    # --- nodes ---
    def start(self, n):
        d = subprocess.Popen(["ip", "netns", "exec", self.ns[n], self.control, "-c",
                              os.path.join(self.work, f"control-{n}.conf")],
                             stdout=subprocess.PIPE, stderr=self.logs[n], text=True)
        self.topo.procs.append(d)
        self.check(d.stdout.readline().strip() == "hag-control ready", f"node {n} ready")
        self.daemons[n] = d
        return d

    def hag(self, n, *args):
        sock, dpsock = self.socks[n]
        r = subprocess.run([self.hagctl, "-s", "unix:" + sock, "--dataplane", "unix:" + dpsock,
                            "-o", "json", *args], capture_output=True, text=True, timeout=30)
        return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else None

    def hag_text(self, n, *args):
        sock, dpsock = self.socks[n]
        r = subprocess.run([self.hagctl, "-s", "unix:" + sock, "--dataplane", "unix:" + dpsock,
                            *args], capture_output=True, text=True, timeout=30)
        return r.stdout

    def bindings(self, n):
        doc = self.hag(n, "bindings", "list", "--all") or {"bindings": []}
        return {b["nai"]: b for b in doc["bindings"]}

    def counters(self, n):
        c = self.hag(n, "counters") or {"counters": []}
        return {x["name"]: int(x["value"]) for x in c["counters"]}

    def close(self, tail=15):
        for n, log in self.logs.items():
            log.seek(0)
            print(f"---- node {n} log (last {tail} lines) ----")
            print("\n".join(log.read().splitlines()[-tail:]))
        for d in self.daemons.values():
            self.topo.stop(d, 5)
        if self.etcd is not None:
            self.topo.stop(self.etcd, 5)
        self.topo.close()
