#!/usr/bin/python3
"""A delegated /56 (RFC 7148) routed to a LAN host behind the home router (root only).

The demo's gateway (tools/demo/gateway.py) with one DSL access: hag-magsim asks for a delegated
prefix (--dmnp any), hag-control grants a /56 from its dmnp_pools and programs it into
hag-dataplane with the session, magsim puts the prefix's first address on its LAN device
(--lan-dev). A LAN host in its own namespace takes the LAST address but one of the /56 (so the
whole prefix, not a /64 of it, is routed). Checked: the PBA and `hagctl bindings show` carry the
/56, the data plane's session holds it, the digests agree, and traffic flows both ways between
the core host and the LAN host (ping each way, UDP each way) through hag-dataplane's GRE and
magsim's tun.

usage: test_dmnp_lan.py BUILD_DIR
"""
import ipaddress
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "tools", "demo"))
import gateway  # noqa: E402
from netns import sh, udp_count  # noqa: E402

DMNP_POOL = "2001:db8:d00::/48"
# One DSL access, shaped generously: the test is about routing, not rates.
DSL = gateway.Access("DSL", "dsl", 1, "2001:db8:aaaa::1", 100000, 100000, 0)


def main():
    if os.geteuid() != 0:
        print("SKIPPED: needs root (network namespaces); CI runs as root")
        return 77
    g = gateway.Gateway(
        sys.argv[1], suffix=f"dm{os.getpid() % 100000}", accesses=(DSL,), capture=False,
        control_extra=f'dmnp_pools {{ name: "lan6" prefix: "{DMNP_POOL}" assign_length: 56 }}\n',
        profile_extra='dmnp_pool: "lan6" ',
        magsim_extra=("--dmnp", "any", "--lan-dev", "lan0"))
    failures = []

    def check(cond, what):
        print(("ok   " if cond else "FAIL ") + what, flush=True)
        if not cond:
            failures.append(what)

    try:
        g.build_topology()
        cpe, core = g.ns["cpe"], g.ns["core"]
        lan = g.topo.ns("lan")
        g.topo.veth(cpe, "lan0", lan, "eth0")
        sh("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1", ns=cpe)
        sh("ip", "-6", "route", "add", DMNP_POOL, "via", gateway.CORE_GW6, ns=core)
        g.start_dataplane()
        g.start_control()
        g.start_magsim()
        with open(os.path.join(g.tmp, "magsim.log")) as f:
            log = f.read()
        granted = [line.split("dmnp=")[1].split()[0] for line in log.splitlines()
                   if "registration: accepted" in line and "dmnp=" in line]
        check(len(granted) == 1, f"the PBA grants one delegated prefix: {granted}")
        if not granted:
            return 1
        prefix = ipaddress.ip_network(granted[0])
        check(prefix.prefixlen == 56 and prefix.subnet_of(ipaddress.ip_network(DMNP_POOL)),
              f"{prefix} is a /56 of {DMNP_POOL}")
        b = g.binding()
        check(b.get("delegated_prefixes") == [str(prefix)],
              f"hagctl bindings show: delegated_prefixes {b.get('delegated_prefixes')}")
        check(g.wait_in_sync(), "control and data plane digests agree")
        dp_prefixes = g.dp_session().get("session", {}).get("prefixes", [])
        check(str(prefix) in dp_prefixes, f"the data plane's session holds {prefix}: {dp_prefixes}")

        # The LAN host: the last address but one of the /56, default route via the router.
        host = str(prefix.network_address + prefix.num_addresses - 2)
        router = str(prefix.network_address + 1)
        sh("ip", "-6", "addr", "add", f"{host}/{prefix.prefixlen}", "dev", "eth0", "nodad", ns=lan)
        sh("ip", "-6", "route", "add", "default", "via", router, ns=lan)
        print(f"==> LAN host {host} behind the home router ({router} on lan0)", flush=True)

        def ping(ns, dst):
            for _ in range(20):
                r = subprocess.run(["ip", "netns", "exec", ns, "ping", "-6", "-c", "1", "-W", "1",
                                    dst], capture_output=True, text=True)
                if r.returncode == 0:
                    return True
            return False

        check(ping(core, host), f"core host -> LAN host {host} (ping: both directions)")
        check(ping(lan, gateway.CORE6), f"LAN host -> core host {gateway.CORE6} (ping)")
        down = udp_count(core, lan, host, 200, 800)
        check(down >= 190, f"UDP core -> LAN host: {down} of 200 datagrams")
        up = udp_count(lan, core, gateway.CORE6, 200, 800)
        check(up >= 190, f"UDP LAN host -> core: {up} of 200 datagrams")
        # An address outside the /56 (the next /56) is not this subscriber's: nothing arrives.
        outside = str(prefix.network_address + prefix.num_addresses + 2)
        r = subprocess.run(["ip", "netns", "exec", core, "ping", "-6", "-c", "1", "-W", "1",
                            outside], capture_output=True, text=True)
        check(r.returncode != 0, f"{outside} (outside the /56) is not routed to the session")
    except RuntimeError as e:
        failures.append(str(e))
        print("FAIL", e, flush=True)
    finally:
        g.close()
    print("dmnp-lan: " + ("all checks passed" if not failures else f"{len(failures)} failed"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
