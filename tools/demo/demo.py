#!/usr/bin/python3
"""The hag demo: a complete hybrid access gateway in network namespaces, with real traffic.

A home router with a DSL line and an LTE link (rates from tbf, LTE delay from hag-linkemu)
registers both accesses with hag-control (real PBU/PBA through hag-dataplane's exception path);
hag-control programs hag-dataplane, which runs on virtual devices. Then, all measured in this
run: the binding table, TCP through the bonded pipe both ways with the share of each path and
the reorder counters of both ends, each access alone, the flow policy switching when an access
goes down, and what tshark decodes of the signalling on the wire.

usage: demo.py BUILD_DIR [--keep]
       demo.py BUILD_DIR --stop

  --keep   leave the namespaces and daemons running to explore (hagctl, tcpdump); --stop
           removes them

It exits 1 when the gateway does not do what the demo says (each such problem is printed with
`!!`); tests/integration/demo runs it as the end-to-end test.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gateway  # noqa: E402
from gateway import DSL, LTE, NAI  # noqa: E402

# Namespaces hag-<role>-<suffix> (fixed, so an operator can type them) and the directory with
# configs, sockets, logs and captures: /run/hag-<suffix>. The test gives a suffix of its own.
SUFFIX = "demo"
IPERF_SECONDS = 4

failures = []


class Steps:
    def __init__(self, total):
        self.n, self.total, self.t0 = 0, total, time.monotonic()

    def __call__(self, text):
        self.n += 1
        print(f"\n==> [{self.n}/{self.total} {time.monotonic() - self.t0:5.1f}s] {text}",
              flush=True)


def check(cond, what):
    """A promise of the demo; with --check a broken one fails the run."""
    if not cond:
        failures.append(what)
        print(f"  !! {what}", flush=True)
    return cond


def indent(text, prefix="  "):
    return "\n".join(prefix + line for line in text.rstrip("\n").splitlines())


def mbit(octets, seconds):
    return octets * 8 / seconds / 1e6


def stop_leftovers(suffix, workdir):
    """Removes a demo left running with --keep (or killed half-way)."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    names = [line.split()[0] for line in out.splitlines()
             if line.split() and line.split()[0].endswith("-" + suffix)
             and line.split()[0].startswith("hag-")]
    for ns in names:
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                              text=True).stdout.split()
        for pid in pids:
            subprocess.run(["kill", "-TERM", pid], capture_output=True)
    if names:
        time.sleep(1)
    for ns in names:
        for pid in subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                                  text=True).stdout.split():
            subprocess.run(["kill", "-KILL", pid], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    shutil.rmtree(workdir, ignore_errors=True)
    return names


def magsim_saw(g, text, seconds):
    """Waits until hag-magsim's log has a new line containing text."""
    log = os.path.join(g.tmp, "magsim.log")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with open(log, errors="replace") as f:
            lines = f.read().splitlines()
        if any(text in line for line in lines[g.magsim_lines:]):
            g.magsim_lines = len(lines)
            return True
        time.sleep(0.2)
    return False


def policy_table(g):
    r = g.hagctl("policy", "show", NAI)
    return r.stdout


def take_down(g, a):
    """Cuts access a; waits for both ends to notice (heartbeats, RFC 5847)."""
    t0 = time.monotonic()
    g.set_access(a, False)
    want = {x.bid: x is not a for x in g.accesses}
    control = g.wait_live(want, 20)
    control_s = time.monotonic() - t0
    cpe = magsim_saw(g, f"bid={a.bid}: LMA not responding", 20)
    print(f"  {a.name} cut in the access network: hag-control marked path bid={a.bid} DOWN "
          f"after {control_s:.1f} s (missed heartbeats); the home router stopped using it "
          f"after {time.monotonic() - t0:.1f} s", flush=True)
    check(control and cpe, f"{a.name} down was noticed by hag-control ({control}) and the "
          f"home router ({cpe})")


def bring_up(g, a):
    t0 = time.monotonic()
    g.set_access(a, True)
    ok = g.wait_live({x.bid: True for x in g.accesses}, 20)
    cpe = magsim_saw(g, f"bid={a.bid}: LMA reachable again", 20)
    print(f"  {a.name} restored: path bid={a.bid} up again after {time.monotonic() - t0:.1f} s",
          flush=True)
    check(ok and cpe, f"{a.name} came back (hag-control {ok}, home router {cpe})")


def policy_traffic(g, state, sip_on):
    """SIP (UDP from the core's port 5060) and SSH (the home router connecting to port 22) as
    the data plane's flow policy handles them now; sip_on: the access SIP must use (None:
    dropped)."""
    before, (pinned0, dropped0) = g.dp_path_packets(), g.dp_policy()
    got = g.udp_from_port(5060, 50)
    after, (pinned1, dropped1) = g.dp_path_packets(), g.dp_policy()
    moved = {a.name: after.get(a.bid, 0) - before.get(a.bid, 0) for a in g.accesses}
    where = ", ".join(f"{n} {v}" for n, v in moved.items())
    print(f"  [{state}] SIP/RTP: 50 datagrams from port 5060, {got} arrived; pinned by the "
          f"policy {pinned1 - pinned0}, dropped by it {dropped1 - dropped0}; downlink packets "
          f"per path meanwhile (any traffic): {where}", flush=True)
    # Other packets may cross meanwhile (the end of an earlier TCP connection): the policy's
    # own counters say what happened to the 50, the path counters where they went.
    if sip_on is None:
        check(got == 0 and dropped1 - dropped0 >= 50,
              f"[{state}] SIP/RTP dropped by its rule (BLUE, DROP): {got} arrived, "
              f"{dropped1 - dropped0} dropped")
    else:
        check(got >= 45 and pinned1 - pinned0 >= 50 and moved[sip_on.name] >= 50,
              f"[{state}] SIP/RTP pinned to {sip_on.name}: {got} arrived, "
              f"{pinned1 - pinned0} pinned, {moved}")
    ssh = g.tcp_connect(22)
    print(f"  [{state}] SSH: the home router's connection to port 22 "
          f"{'was established' if ssh else 'failed (rule SSH: DROP)'}", flush=True)
    check(not ssh, f"[{state}] SSH is dropped by the policy")


def run(g, args, steps):
    g.magsim_lines = 0
    g.start(step=steps)
    print(indent("".join(line for line in open(os.path.join(g.tmp, "magsim.log"))
                         if "registration:" in line)), flush=True)
    check(len(g.paths_live()) == 2, "both accesses registered")

    steps("the operator's view: hagctl bindings list / hagctl dataplane paths")
    print(indent(g.hagctl("bindings", "list").stdout))
    print(indent(g.hagctl("dataplane", "paths").stdout))
    check(g.hagctl("dataplane", "check", check=False).returncode == 0,
          "hag-control's and hag-dataplane's digests agree")

    steps(f"traffic: the core host reaches the home router ({g.home}) through the gateway")
    ok = check(g.ping(), f"ping from the core host to {g.home}")
    if not ok:
        return
    r = subprocess.run(["ip", "netns", "exec", g.ns["core"], "ping", "-6", "-c", "5", "-i",
                        "0.2", g.home], capture_output=True, text=True)
    print(indent(r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr))
    # A full-size packet does not fit the tunnel: hag-dataplane answers Packet Too Big.
    subprocess.run(["ip", "netns", "exec", g.ns["core"], "ping", "-6", "-c", "2", "-i", "0.3",
                    "-W", "1", "-s", "1452", "-M", "do", g.home], capture_output=True, text=True)
    route = subprocess.run(["ip", "netns", "exec", g.ns["core"], "ip", "-6", "route", "get",
                            g.home], capture_output=True, text=True).stdout
    m = re.search(r"mtu (\d+)", route)
    print(f"  path MTU: a 1500-octet ping got ICMPv6 Packet Too Big from the gateway; the core "
          f"host now uses {m.group(1) if m else '?'} toward the home router (1500 - 52 octets "
          f"of IPv6 + GRE)", flush=True)
    check(m is not None and int(m.group(1)) < 1500,
          "path MTU discovery through the gateway (Packet Too Big)")

    steps(f"bonded pipe: TCP (iperf3, 4 connections, {IPERF_SECONDS} s each way) over DSL + LTE")
    results = {}
    for downlink in (True, False):
        what = "downlink core -> home" if downlink else "uplink home -> core"
        mbps, retr, moved = g.iperf(downlink, IPERF_SECONDS)
        results["bonded down" if downlink else "bonded up"] = mbps
        total = sum(moved.values()) or 1
        shares = ", ".join(f"{a.name} {mbit(moved.get(a.bid, 0), 1):.1f} Mbit/s "
                           f"({100 * moved.get(a.bid, 0) / total:.0f} %)" for a in g.accesses)
        print(f"  {what}: {mbps:.1f} Mbit/s TCP goodput, {retr} retransmissions; "
              f"per path (hag-dataplane counters): {shares}", flush=True)
        check(all(moved.get(a.bid, 0) > 0 for a in g.accesses),
              f"the bonded {what} used both paths")
    s = g.dp_session()
    ro = s.get("reorder", {})
    held = {int(p["bid"]): int(p.get("reordered", 0)) for p in s.get("path_reorder", [])}
    print(f"  uplink reorder at hag-dataplane: held and put back in order "
          f"{', '.join(f'{a.name} {held.get(a.bid, 0)}' for a in g.accesses)} packets; "
          f"gaps given up {ro.get('lost', '0')}, timeouts {ro.get('timeouts', '0')}, "
          f"duplicates {ro.get('duplicates', '0')}", flush=True)

    steps("flow policy in the data plane: SIP pinned to LTE, SSH dropped, the rest striped")
    policy_traffic(g, "both up", sip_on=LTE)
    policies = {"both up": policy_table(g)}

    steps("each access alone: LTE cut (DSL only), then DSL cut (LTE only)")
    for cut, alone in ((LTE, DSL), (DSL, LTE)):
        take_down(g, cut)
        policies[f"{cut.name} down"] = policy_table(g)
        if cut is LTE:
            policy_traffic(g, "LTE down", sip_on=None)
        mbps, retr, moved = g.iperf(True, IPERF_SECONDS)
        results[f"{alone.name} alone"] = mbps
        print(f"  downlink over {alone.name} alone: {mbps:.1f} Mbit/s, {retr} retransmissions",
              flush=True)
        check(moved.get(cut.bid, 0) == 0 and moved.get(alone.bid, 0) > 0,
              f"with {cut.name} down the downlink used {alone.name} only: {moved}")
        bring_up(g, cut)

    steps("the bonded rate against each access alone (downlink, measured above)")
    best = max(results["DSL alone"], results["LTE alone"])
    rows = [("DSL alone", results["DSL alone"], f"{DSL.down_kbps // 1000} Mbit/s line"),
            ("LTE alone", results["LTE alone"],
             f"{LTE.down_kbps // 1000} Mbit/s line, +{LTE.delay_ms:g} ms"),
            ("DSL + LTE bonded", results["bonded down"], "striped by weight, reordered")]
    print(f"  {'':18} {'TCP Mbit/s':>10}  {'x best single':>13}  link")
    for name, v, note in rows:
        print(f"  {name:18} {v:10.1f}  {v / best if best else 0:13.2f}  {note}")
    check(results["bonded down"] > 1.1 * best,
          f"the bonded downlink ({results['bonded down']:.1f} Mbit/s) beats the best single "
          f"access ({best:.1f} Mbit/s) by more than 10 %")

    steps("flow policy (hagctl policy show): where each application goes as accesses fail")
    for state, table in policies.items():
        print(f"  -- {state}")
        print(indent(table, "     "))
    print("  -- the data plane's counters (hagctl dataplane policy)")
    print(indent(g.hagctl("dataplane", "policy", "--nai", NAI).stdout, "     "))
    sip = {k: re.search(r"^SIP/RTP .*$", v, re.M) for k, v in policies.items()}
    check(sip["DSL down"] and "bid=2" in sip["DSL down"].group(0),
          "SIP/RTP stays on LTE when DSL is down")
    check(sip["LTE down"] and "DROP" in sip["LTE down"].group(0),
          "SIP/RTP is dropped when LTE is down (its list is LTE, DROP)")

    steps("signalling on the wire, decoded by tshark (an independent dissector)")
    g.stop_capture()
    types, problems = gateway.pcap_check(g.pcap())
    names = {"5": "PBU", "6": "PBA", "13": "Heartbeat", "16": "Binding Revocation"}
    print("  " + ", ".join(f"{names.get(t, 'type ' + t)}: {n}" for t, n in sorted(
        types.items(), key=lambda kv: int(kv[0]))) + f"; malformed or in error: {len(problems)}")
    for p in problems[:10]:
        print("  " + p)
    check(types.get("5", 0) >= 2 and types.get("6", 0) >= 2 and types.get("13", 0) > 0,
          f"the capture holds PBUs, PBAs and heartbeats: {types}")
    check(not problems, "tshark decodes every signalling packet without error")
    if not args.keep:
        g.stop("magsim")  # writes its counters
        stats = os.path.join(g.tmp, "magsim.json")
        if os.path.exists(stats):
            with open(stats) as f:
                m = json.load(f)["session"]
            print(f"  downlink reorder at the home router (hag-magsim): in order {m['in_order']}, "
                  f"held and put back {m['reordered']}, lost {m['lost']}, late {m['late']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--stop", action="store_true")
    ap.add_argument("--suffix", default=SUFFIX, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("demo: needs root (network namespaces, raw sockets); run as root")
    workdir = f"/run/hag-{args.suffix}"
    left = stop_leftovers(args.suffix, workdir)
    if args.stop:
        print(f"demo: removed {len(left)} namespace(s)" if left else "demo: nothing running")
        return 0
    if left:
        print(f"demo: removed a previous demo's namespaces ({', '.join(left)})")
    steps = Steps(12 if args.keep else 13)
    g = gateway.Gateway(args.build, suffix=args.suffix, workdir=workdir)
    t0 = time.monotonic()
    try:
        run(g, args, steps)
    except RuntimeError as e:
        check(False, str(e))
    except KeyboardInterrupt:
        print("\ndemo: interrupted, cleaning up", flush=True)
        g.close()
        return 130
    if args.keep and not failures:
        g.detach()
        hagctl = f"ip netns exec {g.ns['gw']} {os.path.abspath(g.hagctl_exe)}"
        print(f"""
==> left running (--keep). Explore, then remove it all with: tools/quickstart demo --stop
  {hagctl} -s unix:{workdir}/control.sock bindings list
  {hagctl} --dataplane unix:{workdir}/dataplane.sock dataplane paths
  {hagctl} -s unix:{workdir}/control.sock policy show {NAI}
  ip netns exec {g.ns['gw']} tcpdump -ni hag-access      # signalling (the exception path)
  ip netns exec {g.ns['anet']} tcpdump -ni a1             # GRE on the DSL access
  ip netns exec {g.ns['core']} iperf3 -c {g.home}          # (start iperf3 -s in {g.ns['cpe']})
  logs and configs: {workdir}/""")
    else:
        if not args.keep:
            steps("cleaning up: daemons stopped, namespaces removed")
        g.close()
    print(f"\ndemo: {'done' if not failures else 'FAILED'} in {time.monotonic() - t0:.0f} s" +
          (f" ({len(failures)} problem(s): {'; '.join(failures)})" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
