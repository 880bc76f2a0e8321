#!/usr/bin/python3
"""The signalling part of the hag demo: a real hag-control and a simulated home router.

Two network namespaces: "gw" runs hag-control (LMA 2001:db8:1::1 and 192.0.2.1); "cpe" is a home
router with a DSL line (veth, 2001:db8:1::2) and an LTE link (veth, 2001:db8:2::2), simulated by
hag-magsim. The home router registers both accesses with link metrics, the operator looks at the
binding with hagctl, the LTE link is dropped, the operator revokes the binding, and tshark shows
what crossed the wire. Everything is removed again at the end.

usage: signalling.py BUILD_DIR
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
CONTROL = os.path.join(BUILD, "control", "hag-control")
MAGSIM = os.path.join(BUILD, "tools", "magsim", "hag-magsim")
HAGCTL = os.path.join(BUILD, "tools", "hagctl", "hagctl")
TAG = str(os.getpid() % 100000)
GW, CPE = f"hag-demo-gw-{TAG}", f"hag-demo-cpe-{TAG}"

CONFIG = """
log {{ level: "info" }}
lma_addresses: "2001:db8:1::1"
lma_addresses: "192.0.2.1"
hnp_pools {{ name: "residential" prefix: "2001:db8:100::/40" assign_length: 56 }}
default_profile {{ multipath: true gre_key_required: true max_paths: 4 max_lifetime_seconds: 3600 }}
subscribers {{ nai: "home-0001@isp.example" }}
mags {{ mag_id: "cpe-0001@isp.example" allowed_nai: "home-0001@isp.example" }}
management_socket: "{sock}"
state_directory: "{state}"
heartbeat_interval_seconds: 5
"""


def step(text):
    print(f"\n==> {text}", flush=True)


def sh(*cmd, ns=None, check=True, quiet=False):
    if ns:
        cmd = ("ip", "netns", "exec", ns) + cmd
    r = subprocess.run(cmd, text=True, capture_output=True)
    if check and r.returncode != 0:
        sys.exit(f"demo: {' '.join(cmd)} failed: {r.stderr.strip()}")
    if not quiet and r.stdout:
        print(r.stdout, end="", flush=True)
    return r


def main():
    if os.geteuid() != 0:
        sys.exit("demo: needs root (network namespaces, raw sockets); run as root")
    for exe in (CONTROL, MAGSIM, HAGCTL):
        if not os.access(exe, os.X_OK):
            sys.exit(f"demo: {exe} is not built (hag-control needs -Dcontrol=enabled)")
    work = tempfile.mkdtemp(prefix="hag-demo-")
    sock = os.path.join(work, "control.sock")
    conf = os.path.join(work, "control.conf")
    with open(conf, "w") as f:
        f.write(CONFIG.format(sock=sock, state=os.path.join(work, "state")))
    procs = []
    try:
        for ns in (GW, CPE):
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
            for c in ("all", "default"):
                sh("sysctl", "-qw", f"net.ipv6.conf.{c}.accept_dad=0", ns=ns)
        for gw_if, cpe_if, gw_a, cpe_a in (("dsl0", "dsl", "2001:db8:1::1", "2001:db8:1::2"),
                                           ("lte0", "lte", "2001:db8:2::1", "2001:db8:2::2")):
            sh("ip", "link", "add", gw_if, "netns", GW, "type", "veth", "peer", cpe_if,
               "netns", CPE)
            sh("ip", "addr", "add", gw_a + "/64", "dev", gw_if, "nodad", ns=GW)
            sh("ip", "addr", "add", cpe_a + "/64", "dev", cpe_if, "nodad", ns=CPE)
            sh("ip", "link", "set", gw_if, "up", ns=GW)
            sh("ip", "link", "set", cpe_if, "up", ns=CPE)
        sh("ip", "addr", "add", "192.0.2.1/24", "dev", "dsl0", ns=GW)

        step("hag-control starts in namespace gw (LMA 2001:db8:1::1, 192.0.2.1)")
        cap = subprocess.Popen(["ip", "netns", "exec", GW, "tshark", "-q", "-i", "any", "-f",
                                "ip6 proto 135", "-w", os.path.join(work, "wire.pcap")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(cap)
        log = open(os.path.join(work, "control.log"), "w")
        ctl = subprocess.Popen(["ip", "netns", "exec", GW, CONTROL, "-c", conf],
                               stdout=subprocess.PIPE, stderr=log, text=True)
        procs.append(ctl)
        if ctl.stdout.readline().strip() != "hag-control ready":
            sys.exit("demo: hag-control did not start; see " + log.name)
        pcap = os.path.join(work, "wire.pcap")
        deadline = time.time() + 10
        while time.time() < deadline and not os.path.exists(pcap):  # capture running
            time.sleep(0.1)
        time.sleep(0.5)

        step("the home router registers its DSL and LTE accesses (hag-magsim, real PBU/PBA)")
        sim = subprocess.Popen(["ip", "netns", "exec", CPE, MAGSIM, "register",
                                "--lma", "2001:db8:1::1", "--nai", "home-0001@isp.example",
                                "--mag-id", "cpe-0001@isp.example",
                                "--access", "dsl:dsl:1", "--access", "lte:lte:2",
                                "--down-kbps", "100000", "--up-kbps", "40000",
                                "--hold", "30", "--heartbeat", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(sim)
        for _ in range(2):
            print("  cpe: " + sim.stdout.readline().rstrip(), flush=True)

        hagctl = [HAGCTL, "-s", "unix:" + sock]
        step("the operator's view: hagctl bindings list")
        sh(*hagctl, "bindings", "list")

        step("the LTE link goes away: the home router de-registers BID 2")
        sh("ip", "netns", "exec", CPE, MAGSIM, "deregister", "--lma", "2001:db8:1::1",
           "--nai", "home-0001@isp.example", "--mag-id", "cpe-0001@isp.example",
           "--access", "lte:2001:db8:2::2:2")
        sh(*hagctl, "bindings", "show", "home-0001@isp.example")

        step("the operator revokes the binding: hagctl bindings delete (Binding Revocation, RFC 5846)")
        sh(*hagctl, "bindings", "delete", "home-0001@isp.example")
        deadline = time.time() + 5
        while time.time() < deadline:
            line = sim.stdout.readline()
            if not line:
                break
            print("  cpe: " + line.rstrip(), flush=True)
            if "revoked" in line:
                break

        step("counters (hagctl counters)")
        r = sh(*hagctl, "counters", quiet=True)
        keep = ("COUNTER", "pbu.", "pba.status", "revocation.", "heartbeat.", "signalling.rx ",
                "signalling.tx ", "bindings.")
        for line in r.stdout.splitlines():
            if line.startswith(keep) and not line.rstrip().endswith(" 0"):
                print("  " + line)

        step("what crossed the wire, decoded by tshark (an independent dissector)")
        time.sleep(0.5)
        cap.send_signal(signal.SIGINT)
        cap.wait(timeout=10)
        r = subprocess.run(["tshark", "-r", os.path.join(work, "wire.pcap"), "-o",
                            'gui.column.format:"No.","%m","Source","%s","Destination","%d",'
                            '"Info","%i"'], text=True, capture_output=True)
        lines = r.stdout.splitlines()
        print("\n".join("  " + line for line in lines[:24]) if lines else "  (nothing captured)")

        ctl.send_signal(signal.SIGTERM)
        ctl.wait(timeout=10)
        print("\nThe data plane, forwarding and traffic join this demo when hag-control programs "
              "hag-dataplane (issue 6).\nLogs of this run: " + log.name)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for ns in (GW, CPE):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
