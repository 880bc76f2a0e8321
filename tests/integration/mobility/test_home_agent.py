#!/usr/bin/python3
"""MIPv6 home agent (RFC 6275 home registration, RFC 5648 multiple CoAs) end to end (root only).

The demo's gateway (tools/demo/gateway.py: hag-dataplane on virtual devices, hag-control) with
home_agent enabled; the subscriber has a static home prefix. hag-magsim in MN mode (--mn HOA)
registers two care-of addresses (DSL and LTE, one BID each): its BUs carry the Home Address
destination option and no GRE Key option (`--mn-tunnel ipip`), hag-control's BAs a Type 2
Routing Header and, as `home_agent.tunnel` is IP_IN_IP, no GRE key; data mode then carries the
home address's traffic in RFC 6275's IPv6-in-IPv6 tunnel over both. Checked: both BIDs
accepted, `hagctl bindings show` lists two paths, the digests agree, the data plane's paths are
IP-in-IP, ping and UDP both ways between the core host and the home address, magsim's accesses
were IP-in-IP and dropped nothing.

scapy, as an independent encoder, then sends its own BU (IPv6 / Destination Options with HAO /
MH BU with a BID option) for a second mobile node from the DSL care-of address, and dissects the
reply it sniffs: a BA with status 0 behind a Type 2 Routing Header carrying the home address,
the right sequence number and a valid checksum (scapy recomputes it over the home address).
A BU with a bad checksum, one with two Home Address options and one for a home address no
subscriber has get nothing / status 133. A third mobile node has static ESP keys (RFC 3776 style,
hag-control's userspace ESP keyed by the home address): scapy's IPsec encrypts its BU (Home
Address option outside ESP) and decrypts the BA behind the Type 2 Routing Header; a plain BU
from that home address gets nothing. No ICMPv6 Parameter Problem reaches scapy's mobile node
(the kernel sends one per BU, code 2 for the Home Address option; hag-dataplane drops them, and
its exit counters show how many). Finally a Home Agent Address Discovery request (ICMPv6
144) gets a reply (145) listing the configured address.

usage: test_home_agent.py BUILD_DIR
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "tools", "demo"))
import gateway  # noqa: E402
from netns import udp_count  # noqa: E402

HOA = "2001:db8:1ff:1::5"       # magsim's home address (inside the core host's route)
HOA2 = "2001:db8:1ff:2::7"      # scapy's mobile node
HOA3 = "2001:db8:1ff:3::3"      # scapy's mobile node with ESP (static keys)
SPI_IN, SPI_OUT = 0x3001, 0x4001
KEY_IN = "00112233445566778899aabbccddeeff01020304"   # AES-128 key + 4 octets of salt
KEY_OUT = "ffeeddccbbaa99887766554433221100a1a2a3a4"
# Two accesses without delay, shaped generously: the test is about signalling and routing.
DSL = gateway.Access("DSL", "dsl", 1, "2001:db8:aaaa::1", 100000, 100000, 0)
LTE = gateway.Access("LTE", "lte", 2, "2001:db8:bbbb::1", 50000, 50000, 0)

SCAPY = r"""
import sys, threading, time
from scapy.all import *
conf.verb = 0
coa, ha, hoa, mode = sys.argv[1:5]
got = []
def sniffer():
    # The BA, and any ICMPv6 Parameter Problem from the home agent: the kernel's (code 2, for
    # the Home Address option) would leave the TAP before the BA, so it is seen if it passes.
    got.extend(sniff(iface="m0", timeout=3, lfilter=lambda p: IPv6 in p and p[IPv6].src == ha
                     and (IPv6ExtHdrRouting in p or ICMPv6ParamProblem in p),
                     stop_filter=lambda p: IPv6ExtHdrRouting in p))
pp = sum(1 for p in got if ICMPv6ParamProblem in p)
t = threading.Thread(target=sniffer); t.start(); time.sleep(1)
bid = MIP6OptUnknown(otype=35, olen=4, odata=b"\x00\x01\x00\x00")
gre = MIP6OptUnknown(otype=33, olen=6, odata=b"\x00\x00\x00\x00\x0b\xad")  # RFC 5845 GRE Key
mnid = MIP6OptMNID(id=b"mn2@example.net")
pkt = (IPv6(src=coa, dst=ha) / IPv6ExtHdrDestOpt(options=[HAO(hoa=hoa)]) /
       MIP6MH_BU(seq=4242, flags="AH", mhtime=25, options=[bid, gre]))
wire = bytearray(raw(pkt))
if mode == "badsum":
    wire[-1] ^= 0xff
elif mode == "twohao":
    # Two Home Address options: well formed as IPv6, refused by hag's parser.
    wire = bytearray(raw(IPv6(src=coa, dst=ha) /
                         IPv6ExtHdrDestOpt(options=[HAO(hoa=hoa), HAO(hoa=hoa)]) /
                         MIP6MH_BU(seq=4242, flags="AH", mhtime=25, options=[bid, gre])))
if mode == "esp":
    # RFC 3776: ESP in transport mode between home address and home agent, the Home Address
    # option outside it; the MH checksum over the home address.
    from scapy.layers.ipsec import ESP, SecurityAssociation
    out_sa = SecurityAssociation(ESP, spi=int(sys.argv[5]), crypt_algo="AES-GCM",
                                 crypt_key=bytes.fromhex(sys.argv[6]), auth_algo="NULL")
    in_sa = SecurityAssociation(ESP, spi=int(sys.argv[7]), crypt_algo="AES-GCM",
                                crypt_key=bytes.fromhex(sys.argv[8]), auth_algo="NULL")
    mh = raw(IPv6(src=hoa, dst=ha) / MIP6MH_BU(seq=4242, flags="AH", mhtime=25,
                                                 options=[bid, gre]))[40:]
    esp = bytes(out_sa.encrypt(IPv6(src=hoa, dst=ha, nh=135) / Raw(mh)))[40:]
    wire = raw(IPv6(src=coa, dst=ha) / IPv6ExtHdrDestOpt(nh=50, options=[HAO(hoa=hoa)]) /
               Raw(esp))
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.sendto(bytes(wire), (ha, 0))
t.join()
if mode == "esp":
    for p in got:
        if IPv6ExtHdrRouting not in p:
            continue
        rh = p[IPv6ExtHdrRouting]
        if rh.nh != 50:
            continue
        clear = in_sa.decrypt(IPv6(src=ha, dst=hoa, nh=50) / ESP(raw(rh.payload)))
        ba = IPv6(raw(IPv6(src=ha, dst=hoa) / MIP6MH_BA(raw(clear.payload))))
        want = ba[MIP6MH_BA].cksum
        del ba[MIP6MH_BA].cksum
        ok = IPv6(raw(ba))[MIP6MH_BA].cksum == want
        print("esp-ba status=%d seq=%d hoa=%s checksum=%s" % (
            ba[MIP6MH_BA].status, ba[MIP6MH_BA].seq, rh.addresses[0], "ok" if ok else "bad"))
        sys.exit(0)
    print("no-ba"); sys.exit(0)
bas = [p for p in got if MIP6MH_BA in p]
if not bas:
    print("no-ba"); sys.exit(0)
p = bas[0]
rh = p[IPv6ExtHdrRouting]
again = IPv6(raw(p[IPv6]))
want = again[MIP6MH_BA].cksum
del again[MIP6MH_BA].cksum
ok = IPv6(raw(again))[MIP6MH_BA].cksum == want
print("ba status=%d seq=%d rh_type=%d segleft=%d hoa=%s checksum=%s parameter_problems=%d" % (
    p[MIP6MH_BA].status, p[MIP6MH_BA].seq, rh.type, rh.segleft, rh.addresses[0],
    "ok" if ok else "bad", pp))
"""

HAAD = r"""
import sys, threading, time
from scapy.all import *
conf.verb = 0
coa, ha = sys.argv[1:3]
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.settimeout(5)
s.sendto(raw(ICMPv6HAADRequest(id=0x4242))[:8], (ha, 0))
while True:
    data, _ = s.recvfrom(2000)
    if data[0] == 145:
        r = ICMPv6HAADReply(data)
        print("haad id=%#x addresses=%s" % (r.id, ",".join(r.addresses)))
        break
"""


def main():
    if os.geteuid() != 0:
        print("SKIPPED: needs root (network namespaces); CI runs as root")
        return 77
    g = gateway.Gateway(
        sys.argv[1], suffix=f"ha{os.getpid() % 100000}", accesses=(DSL, LTE),
        capture=False, subscriber_extra='home_prefixes: "2001:db8:1ff:1::/64" ',
        control_extra=('subscribers { nai: "mn2@example.net" home_prefixes: "2001:db8:1ff:2::/64" }\n'
                       'subscribers { nai: "mn3@example.net" home_prefixes: "2001:db8:1ff:3::/64" }\n'
                       f'home_agent {{ enabled: true discovery_addresses: "{gateway.LMA6}" '
                       'tunnel: HOME_TUNNEL_IP_IN_IP }\n'
                       f'esp {{ peers {{ address: "{HOA3}" spi_in: {SPI_IN} key_in: "{KEY_IN}" '
                       f'spi_out: {SPI_OUT} key_out: "{KEY_OUT}" }} }}\n'),
        magsim_extra=("--mn", HOA, "--mn-tunnel", "ipip"))
    failures = []

    def check(cond, what):
        print(("ok   " if cond else "FAIL ") + what, flush=True)
        if not cond:
            failures.append(what)

    try:
        g.build_topology()
        g.start_dataplane()
        g.start_control()
        g.start_magsim()
        cpe, core = g.ns["cpe"], g.ns["core"]
        with open(os.path.join(g.tmp, "magsim.log")) as f:
            log = f.read()
        accepted = [line for line in log.splitlines() if "registration: accepted (0)" in line]
        check(len(accepted) == 2, f"hag-magsim (MN mode): both care-of addresses accepted "
              f"({len(accepted)} BA lines)")
        b = g.binding()
        coas = sorted((int(p["bid"]), p["coa"]) for p in b.get("paths", []))
        check(coas == [(1, DSL.coa), (2, LTE.coa)], f"hagctl bindings show: {coas}")
        check(b.get("home_prefixes") == ["2001:db8:1ff:1::/64"],
              f"home prefix {b.get('home_prefixes')}")
        check(g.wait_in_sync(), "control and data plane digests agree")

        g.home = HOA
        check(g.ping(), f"core host -> home address {HOA} (ping: both directions)")
        down = udp_count(core, cpe, HOA, 200, 800)
        check(down >= 190, f"UDP core -> mobile node: {down} of 200")
        up = udp_count(cpe, core, gateway.CORE6, 200, 800)
        check(up >= 190, f"UDP mobile node -> core: {up} of 200")
        dps = g.dp_session()
        tunnels = [p.get("tunnel", "TUNNEL_GRE") for p in dps.get("session", {}).get("paths", [])]
        check(tunnels == ["TUNNEL_IP_IN_IP"] * 2, f"the data plane's paths are IP-in-IP: {tunnels}")
        octets = {int(p["bid"]): (int(p.get("downlink_bytes", 0)), int(p.get("uplink_bytes", 0)))
                  for p in dps.get("paths", [])}
        check(len(octets) == 2 and all(d > 0 and u > 0 for d, u in octets.values()),
              f"IPv6-in-IPv6 octets both ways on both paths: {octets}")

        def scapy(mode, hoa=HOA2):
            r = subprocess.run(["ip", "netns", "exec", cpe, gateway.PY, "-c", SCAPY,
                                DSL.coa, gateway.LMA6, hoa, mode, str(SPI_IN), KEY_IN,
                                str(SPI_OUT), KEY_OUT],
                               capture_output=True, text=True, timeout=60)
            out = r.stdout.strip().splitlines()
            return out[-1] if out else r.stderr.strip()[-300:]

        line = scapy("good")
        check(line == f"ba status=0 seq=4242 rh_type=2 segleft=1 hoa={HOA2} checksum=ok "
              "parameter_problems=0",
              f"scapy BU with HAO -> {line} (no ICMPv6 Parameter Problem reached the mobile node)")
        b2 = g.hagctl_json("bindings", "show", "mn2@example.net")
        check([p["coa"] for p in b2.get("paths", [])] == [DSL.coa],
              f"scapy's mobile node registered: {b2.get('paths')}")
        check(scapy("badsum") == "no-ba", "a BU with a bad checksum gets no BA")
        check(scapy("twohao") == "no-ba", "two Home Address options: no BA")
        line = scapy("good", "2001:db8:1ff:9::9")
        check(line.startswith("ba status=133 ") and line.endswith(" parameter_problems=0"),
              f"an unknown home address: {line}")
        line = scapy("esp", HOA3)
        check(line == f"esp-ba status=0 seq=4242 hoa={HOA3} checksum=ok",
              f"BU in ESP (static keys, scapy's IPsec) -> BA in ESP: {line}")
        check(scapy("good", HOA3) == "no-ba",
              "a plain BU from a home address with SAs is refused (ESP required)")
        counters = {c["name"]: int(c["value"]) for c in g.hagctl_json("counters")["counters"]}
        check(counters.get("signalling.rx_home_bad_checksum", 0) >= 1 and
              counters.get("signalling.rx_home_malformed", 0) >= 1,
              "hostile BUs counted: rx_home_bad_checksum "
              f"{counters.get('signalling.rx_home_bad_checksum')}, rx_home_malformed "
              f"{counters.get('signalling.rx_home_malformed')}")

        r = subprocess.run(["ip", "netns", "exec", cpe, gateway.PY, "-c", HAAD, DSL.coa,
                            gateway.LMA6], capture_output=True, text=True, timeout=30)
        check(r.stdout.strip() == f"haad id=0x4242 addresses={gateway.LMA6}",
              f"home agent address discovery: {r.stdout.strip() or r.stderr.strip()[-200:]}")
        g.stop("magsim")
        with open(os.path.join(g.tmp, "magsim.json")) as f:
            accs = json.load(f)["accesses"]
        check(all(a.get("ipip") and not any(a["down_drops"].values()) and a["down_packets"] > 0
                  for a in accs.values()) and len(accs) == 2,
              f"magsim's accesses were IPv6-in-IPv6 and dropped nothing: {accs}")
        # The kernel (no CONFIG_IPV6_MIP6) answered the BUs with Parameter Problems; the data
        # plane dropped them on their way out (exception/kernel_filter.hpp): magsim's two BUs,
        # scapy's good ones and those with a bad checksum or unknown address at least.
        g.stop("dataplane")
        with open(os.path.join(g.tmp, "dataplane.log")) as f:
            exit_json = [ln for ln in f.read().splitlines() if ln.startswith("{")]
        acc = json.loads(exit_json[-1])["exception"]["ports"]["access"] if exit_json else {}
        check(acc.get("param_problem_suppressed", 0) >= 4,
              "the kernel's Parameter Problems for the Home Address option suppressed by the "
              f"data plane: {acc.get('param_problem_suppressed')}")
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        failures.append(str(e))
        print("FAIL", e, flush=True)
    finally:
        g.close()
    print("home-agent: " + ("all checks passed" if not failures else f"{len(failures)} failed"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
