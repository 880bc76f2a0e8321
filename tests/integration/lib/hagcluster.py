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
With dataplane (the hag-dataplane executable) each node runs a real data plane instead of the
fake, on virtual devices (net_af_packet on veths, --no-huge), as tools/demo/gateway.py does:
  "cpe":  a bridge br0 joining every node's access port (acc0), the router's care-of address
          router_coa on it: one access link shared by the router and the nodes, whose LMA
          addresses are on that /64 (the inter-anchor GRE crosses it too);
  "core": a bridge br0 joining every node's core port (core0), the core host's address
          core_host on it; each node's config entry names its core_gw (on core_host's /64).
  The node's kernel owns its addresses on the data plane's exception-path TAPs (hag-access:
  the LMA address, hag-core: core_gw), as on a gateway whose NICs are bound to DPDK.
Used by cluster_test.py, dmm_test.py and dmm_traffic_test.py.

CmdCluster: the central mobility database mode (RFC 8885, docs/scale-out.md), no etcd: MAAR
nodes each with hag-control and a real hag-dataplane as above (the "cpe" and "core" bridges),
and a CMD node running hag-control only, its address cmd_address on the access link (a veth
into the "cpe" bridge), where the MAARs reach it through their data planes' exception paths.
Used by cmd_traffic_test.py.
"""
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time

import netns

ETCD_PORT = 2379


def node_config(etcd_prefix, store_extra=""):
    """hag-control's configuration of a cluster node, as a template Cluster fills (name, lma,
    pool, kmin, kmax, sock, dpsock, etcd, port, tls); `store_extra` adds lines to its store
    block (themselves templates: braces doubled)."""
    return ("""log {{ level: "info" }}
lma_addresses: "{lma}"
hnp_pools {{ name: "pool-{name}" prefix: "{pool}" assign_length: 64 }}
default_profile {{ multipath: true max_paths: 4 max_lifetime_seconds: 3600 }}
allow_unknown_subscribers: true
allow_unknown_mags: true
management_socket: "{sock}"
dataplane_socket: "unix:{dpsock}"
heartbeat_interval_seconds: 0
timestamp_window_ms: 10000
store {{
  backend: "etcd"
  etcd_endpoints: "[{etcd}]:{port}"
  etcd_prefix: \"""" + etcd_prefix + """\"
{tls}
  node_name: "hag-{name}"
  uplink_gre_key_min: {kmin}
  uplink_gre_key_max: {kmax}
""" + store_extra + "}}\n")


# Distributed anchoring on (the DMM tests).
DMM_STORE = """  distributed_anchoring: true
  node_address: "{lma}"
  node_lease_seconds: 3
"""


# hag-control of a central mobility database mode node (no etcd, no persistence), a template
# CmdCluster fills (name, lma, sock, dpsock, state, central_db, and the node's own entries).
# A MAAR: its pool, GRE key range, data plane; the CMD: no pool, no data plane.
CMD_MAAR_CONFIG = """log {{ level: "info" }}
lma_addresses: "{lma}"
hnp_pools {{ name: "pool-{name}" prefix: "{pool}" assign_length: 64 }}
default_profile {{ multipath: true max_paths: 4 max_lifetime_seconds: 3600 }}
allow_unknown_subscribers: true
allow_unknown_mags: true
management_socket: "{sock}"
dataplane_socket: "unix:{dpsock}"
heartbeat_interval_seconds: 0
timestamp_window_ms: 10000
persistence: false
state_directory: "{state}"
store {{
  node_name: "hag-{name}"
  uplink_gre_key_min: {kmin}
  uplink_gre_key_max: {kmax}
}}
{central_db}
"""

CMD_CMD_CONFIG = """log {{ level: "info" }}
lma_addresses: "{lma}"
allow_unknown_mags: true
management_socket: "{sock}"
heartbeat_interval_seconds: 0
timestamp_window_ms: 10000
persistence: false
state_directory: "{state}"
store {{ node_name: "hag-{name}" }}
{central_db}
"""


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
    """nodes: {name: {"lma", "cpe", "etcd", ...}} ("core_gw" instead of "cpe" with
    dataplane); config: a str.format template filled with name, lma, sock, dpsock, etcd, port,
    tls (the store's etcd_tls_* lines) and each node's own entries. With dataplane,
    dataplane_config is hag-dataplane's template (see start_dataplane), router_coa and
    core_host the addresses of the cpe and core bridges."""

    def __init__(self, tag, nodes, config, control, hagctl, fake_exe, check,
                 route_between_nodes=False, tls=True, dataplane=None, dataplane_config=None,
                 router_coa=None, core_host=None):
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
        self.dataplane, self.core = dataplane, None
        self.router_coa, self.core_host = router_coa, core_host
        self.dps, self.dplogs = {}, {}
        if dataplane:
            self.core = topo.ns("core")
            netns.sh("sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", ns=self.core)
            for ns in (self.cpe, self.core):
                netns.sh("ip", "link", "add", "br0", "type", "bridge", ns=ns)
        for i, (n, cfg) in enumerate(nodes.items()):
            if dataplane:
                topo.veth(self.ns[n], "acc0", self.cpe, f"m{i}")
                topo.veth(self.ns[n], "core0", self.core, f"c{i}")
                netns.sh("ip", "link", "set", f"m{i}", "master", "br0", ns=self.cpe)
                netns.sh("ip", "link", "set", f"c{i}", "master", "br0", ns=self.core)
                # The node's kernel stays off the DPDK ports.
                for dev in ("core0", "acc0"):
                    netns.sh("sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1",
                             ns=self.ns[n])
                    netns.sh("ip", "link", "set", "dev", dev, "arp", "off", ns=self.ns[n])
            else:
                topo.veth(self.ns[n], "l0", self.cpe, f"m{i}")
                netns.sh("ip", "addr", "add", cfg["lma"] + "/64", "dev", "l0", "nodad",
                         ns=self.ns[n])
                netns.sh("ip", "addr", "add", cfg["cpe"] + "/64", "dev", f"m{i}", "nodad",
                         ns=self.cpe)
            topo.veth(self.ns[n], "e0", self.ens, f"e{i}")
            node_side = cfg["etcd"][:-1] + "2"
            netns.sh("ip", "addr", "add", node_side + "/64", "dev", "e0", "nodad", ns=self.ns[n])
            netns.sh("ip", "addr", "add", cfg["etcd"] + "/64", "dev", f"e{i}", "nodad",
                     ns=self.ens)
        if dataplane:
            for ns, addr in ((self.cpe, router_coa), (self.core, core_host)):
                netns.sh("ip", "link", "set", "br0", "up", ns=ns)
                netns.sh("ip", "-6", "addr", "add", addr + "/64", "dev", "br0", "nodad", ns=ns)
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
            self.logs[n] = open(os.path.join(self.work, f"control-{n}.log"), "w+")
            if dataplane:
                self.start_dataplane(n, dataplane_config)
                continue
            fake = subprocess.Popen([fake_exe, "unix:" + dpsock], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True)
            topo.procs.append(fake)
            check(fake.stdout.readline().strip() == "ready", f"fake data plane of node {n} ready")
        for n in self.dps:
            self.dataplane_ready(n)

    # --- real data planes ---
    def start_dataplane(self, n, template):
        """Starts node n's hag-dataplane (template: a str.format text filled with name,
        suffix, dpsock, core_host and the node's entries); dataplane_ready() waits for it."""
        conf = os.path.join(self.work, f"dataplane-{n}.conf")
        with open(conf, "w") as f:
            f.write(template.format(name=n, suffix=self.topo.suffix, dpsock=self.socks[n][1],
                                    core_host=self.core_host, **self.nodes[n]))
        log = os.path.join(self.work, f"dataplane-{n}.log")
        self.dplogs[n] = log
        self.dps[n] = self.topo.spawn_logged(self.ns[n], log, self.dataplane, "-c", conf)

    def dataplane_ready(self, n):
        ok = netns.wait_for_file_line(self.dplogs[n], "ready", 60, self.dps[n])
        self.check(ok, f"hag-dataplane of node {n} ready")
        if not ok:
            raise RuntimeError(f"hag-dataplane of node {n} did not start; see {self.dplogs[n]}")
        cfg, ns = self.nodes[n], self.ns[n]
        access = ipaddress.ip_interface(self.router_coa + "/64").network
        netns.sh("ip", "-6", "addr", "replace", cfg["core_gw"] + "/64", "dev", "hag-core",
                 "nodad", ns=ns)
        netns.sh("ip", "-6", "addr", "replace", cfg["lma"] + "/128", "dev", "hag-access",
                 "nodad", ns=ns)
        netns.sh("ip", "-6", "route", "replace", str(access), "dev", "hag-access", ns=ns)

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
        for n, path in self.dplogs.items():
            with open(path, errors="replace") as f:
                print(f"---- node {n} data plane log (last {tail} lines) ----")
                print("\n".join(f.read().splitlines()[-tail:]))
        for d in self.daemons.values():
            self.topo.stop(d, 5)
        for d in self.dps.values():  # SIGTERM: DPDK removes its runtime files
            self.topo.stop(d, 10)
        if self.etcd is not None:
            self.topo.stop(self.etcd, 5)
        self.topo.close()


class CmdCluster(Cluster):
    """The central mobility database mode's cluster (no etcd): maars {name: {"lma", "core_gw",
    "pool", "kmin", "kmax"}} each with hag-control and its own hag-dataplane (dataplane_config:
    its template, as Cluster's), and the CMD node cmd_name at cmd_address (on the access link,
    router_coa's /64), hag-control only. With central_db false the nodes run without a
    central_db block (plain LMAs: the topology alone). Methods as Cluster's (start, hag,
    bindings, counters, close); the CMD's name is cmd_name in them."""

    def __init__(self, tag, maars, control, hagctl, check, dataplane, dataplane_config,
                 router_coa, core_host, cmd_name="cmd", cmd_address=None, central_db=True,
                 timeout_ms=3000, maar_config=CMD_MAAR_CONFIG, cmd_config=CMD_CMD_CONFIG):
        self.nodes, self.control, self.hagctl, self.check = maars, control, hagctl, check
        self.cmd_name, self.cmd_address = cmd_name, cmd_address
        self.topo = netns.Topology(tag)
        topo = self.topo
        self.cpe, self.core = topo.ns("cpe"), topo.ns("core")
        self.ns = {n: topo.ns(n) for n in maars}
        self.ns[cmd_name] = topo.ns(cmd_name)
        self.daemons, self.logs, self.socks = {}, {}, {}
        self.etcd, self.ens, self.tls = None, None, False
        self.dataplane, self.router_coa, self.core_host = dataplane, router_coa, core_host
        self.dps, self.dplogs = {}, {}
        for n in list(self.ns.values()) + [self.cpe, self.core]:
            for conf in ("all", "default"):
                netns.sh("sysctl", "-qw", f"net.ipv6.conf.{conf}.accept_dad=0", ns=n)
        for ns in (self.cpe, self.core):
            netns.sh("ip", "link", "add", "br0", "type", "bridge", ns=ns)
        for i, n in enumerate(maars):
            topo.veth(self.ns[n], "acc0", self.cpe, f"m{i}")
            topo.veth(self.ns[n], "core0", self.core, f"c{i}")
            netns.sh("ip", "link", "set", f"m{i}", "master", "br0", ns=self.cpe)
            netns.sh("ip", "link", "set", f"c{i}", "master", "br0", ns=self.core)
            for dev in ("core0", "acc0"):  # the node's kernel stays off the DPDK ports
                netns.sh("sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1", ns=self.ns[n])
                netns.sh("ip", "link", "set", "dev", dev, "arp", "off", ns=self.ns[n])
        # The CMD: a kernel address on the access link.
        topo.veth(self.ns[cmd_name], "l0", self.cpe, "mcmd")
        netns.sh("ip", "link", "set", "mcmd", "master", "br0", ns=self.cpe)
        netns.sh("ip", "-6", "addr", "add", cmd_address + "/64", "dev", "l0", "nodad",
                 ns=self.ns[cmd_name])
        for ns, addr in ((self.cpe, router_coa), (self.core, core_host)):
            netns.sh("ip", "link", "set", "br0", "up", ns=ns)
            netns.sh("ip", "-6", "addr", "add", addr + "/64", "dev", "br0", "nodad", ns=ns)
        self.work = topo.tmpdir("hag-cmd-cluster-test-")
        t = f"  timeout_ms: {timeout_ms}\n"
        maar_lines = "".join(f'  maars {{ name: "hag-{n}" address: "{c["lma"]}" }}\n'
                             for n, c in maars.items())
        blocks = {cmd_name: "central_db {\n  role: CENTRAL_DB_CMD\n" + maar_lines + t + "}"}
        for n, c in maars.items():
            blocks[n] = ("central_db {\n  role: CENTRAL_DB_MAAR\n"
                         f'  node_name: "hag-{n}"\n  node_address: "{c["lma"]}"\n'
                         f'  cmd_address: "{cmd_address}"\n' + t + "}")
        for n in self.ns:
            sock = os.path.join(self.work, f"control-{n}.sock")
            dpsock = os.path.join(self.work, f"dataplane-{n}.sock")
            state = os.path.join(self.work, f"state-{n}")
            self.socks[n] = (sock, dpsock)
            cfg = maars.get(n, {"lma": cmd_address})
            template = maar_config if n in maars else cmd_config
            with open(os.path.join(self.work, f"control-{n}.conf"), "w") as f:
                f.write(template.format(name=n, sock=sock, dpsock=dpsock, state=state,
                                        central_db=blocks[n] if central_db else "", **cfg))
            self.logs[n] = open(os.path.join(self.work, f"control-{n}.log"), "w+")
        for n in maars:
            self.start_dataplane(n, dataplane_config)
        for n in maars:
            self.dataplane_ready(n)


def central_db_config():
    """hag-control's configuration of a node in the central mobility database mode (no etcd;
    docs/scale-out.md), a template Cluster fills like node_config's; each node's entries add
    "central" (the central_db block's contents), "pools" (its hnp_pools lines, "" for the CMD)
    and "dp" ("dataplane_socket", or a comment for the CMD, which has no data plane)."""
    return """log {{ level: "info" }}
lma_addresses: "{lma}"
{pools}
default_profile {{ multipath: true max_paths: 4 max_lifetime_seconds: 3600 }}
allow_unknown_mags: true
management_socket: "{sock}"
{dp}: "unix:{dpsock}"
heartbeat_interval_seconds: 0
timestamp_window_ms: 10000
persistence: false
store {{ uplink_gre_key_min: {kmin} uplink_gre_key_max: {kmax} }}
central_db {{ {central} }}
"""


def central_db_nodes(maars, cmd):
    """Node entries for Cluster: `maars` {name: {"lma", "cpe", "etcd", "pool", "kmin", "kmax"}}
    and `cmd` ({"lma", "cpe", "etcd"}) become MAARs registering at a CMD node named "cmd"."""
    nodes = {}
    for n, cfg in maars.items():
        nodes[n] = dict(cfg, dp="dataplane_socket",
                        pools=f'hnp_pools {{ name: "pool-{n}" prefix: "{cfg["pool"]}" '
                              f'assign_length: 64 }}\nallow_unknown_subscribers: true',
                        central=f'role: CENTRAL_DB_MAAR node_name: "hag-{n}" '
                                f'node_address: "{cfg["lma"]}" cmd_address: "{cmd["lma"]}"')
    listed = " ".join(f'maars {{ name: "hag-{n}" address: "{cfg["lma"]}" }}'
                      for n, cfg in maars.items())
    nodes["cmd"] = dict(cmd, dp="# the CMD has no data plane; not used", pools="", kmin=1,
                        kmax=99999, central="role: CENTRAL_DB_CMD " + listed)
    return nodes


# Shared by the traffic tests with real data planes (control-dmm-traffic, control-cmd-traffic):
# each node's hag-dataplane configuration, the router's UDP echo and the core host's client.
TRAFFIC_DATAPLANE_CONFIG = """
log {{ level: "info" }}
eal_args: ["--no-huge", "--no-pci", "-m", "512", "--file-prefix", "hag-{suffix}-{name}",
           "-l", "0-1", "--log-level", "lib.*:warning", "--no-telemetry"]
ports {{ name: "core" device: "net_af_packet0,iface=core0" role: CORE
         next_hop_ipv6: "{core_host}" addresses: "{core_gw}" }}
ports {{ name: "access" device: "net_af_packet1,iface=acc0" role: ACCESS addresses: "{lma}" }}
mbufs: 8191
max_sessions: 64
programmer_listen: "unix:{dpsock}"
idle_sleep_us: 20
"""

# The router's end of a flow: echoes every datagram with its number and how many it has
# received so far (bound before its address exists: the tun comes and goes with magsim).
ECHO_SCRIPT = r"""
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, 78, 1)  # IPV6_FREEBIND
s.bind((sys.argv[1], int(sys.argv[2]))); s.settimeout(120)
print("ready", flush=True)
n = 0
while True:
    d, peer = s.recvfrom(2000)
    n += 1
    try: s.sendto(d[:4] + n.to_bytes(4, "big"), peer)
    except OSError: pass
"""

# The core host's end: `count` numbered datagrams from [CORE]:sport, 20 ms apart; prints how
# many echoes came back and the highest count the router reported.
CLIENT_SCRIPT = r"""
import json, socket, sys, time
dst, port, sport, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[5], sport)); s.settimeout(0.02)
echoed, server = set(), 0
def drain():
    global server
    try:
        while True:
            d = s.recv(2000)
            echoed.add(int.from_bytes(d[:4], "big")); server = max(server, int.from_bytes(d[4:8], "big"))
    except (socket.timeout, BlockingIOError):
        pass
for i in range(count):
    try: s.sendto(i.to_bytes(4, "big") + b"x" * 60, (dst, port))
    except OSError: pass
    drain()
end = time.monotonic() + 2
while len(echoed) < count and time.monotonic() < end:
    drain()
print(json.dumps({"echoed": len(echoed), "server": server}))
"""


class Traffic:
    """UDP flows between the core host and the home router of a traffic test (`cl` a Cluster
    or CmdCluster with data planes): an echo server on the router, a numbered client on the
    core host, and the router's session as each node's data plane reports it."""

    def __init__(self, cl, check, core, nai, count, py="/usr/bin/python3"):
        self.cl, self.check, self.core, self.nai, self.count, self.py = (
            cl, check, core, nai, count, py)

    def echo(self, addr, port):
        p = subprocess.Popen(["ip", "netns", "exec", self.cl.cpe, self.py, "-c", ECHO_SCRIPT,
                              addr, str(port)], stdout=subprocess.PIPE, text=True)
        self.cl.topo.procs.append(p)
        self.check(p.stdout.readline().strip() == "ready", f"echo server on [{addr}]:{port}")

    def flow(self, addr, port, sport, count=None):
        count = self.count if count is None else count
        r = subprocess.run(["ip", "netns", "exec", self.cl.core, self.py, "-c", CLIENT_SCRIPT,
                            addr, str(port), str(sport), str(count), self.core],
                           capture_output=True, text=True, timeout=60)
        try:
            return json.loads(r.stdout)
        except ValueError:
            print("client:", r.stdout, r.stderr)
            return {"echoed": 0, "server": 0}

    def passes(self, addr, port, sport, seconds):
        """Until one datagram goes there and back (bounded): the end of a move."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.flow(addr, port, sport, 1)["echoed"] == 1:
                return True
        return False

    def session(self, n):
        doc = self.cl.hag(n, "dataplane", "sessions", "--all") or {}
        for x in doc.get("sessions", []):
            if x.get("session", {}).get("nai") == self.nai:
                return x
        return {}

    def counts(self, n):
        s = self.session(n)
        return {k: int(s.get(k, 0)) for k in (
            "downlink_packets", "uplink_packets", "relay_uplink_packets",
            "relay_downlink_packets")}

    @staticmethod
    def moved(before, after, key):
        return after[key] - before[key]
