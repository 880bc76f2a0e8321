#!/usr/bin/python3
"""hag-control as a PMIPv6 LMA between real namespaces, checked through hagctl.

Topology: namespace "lma" runs hag-control (LMA 2001:db8:1::1 and 192.0.2.1); namespace "cpe"
is a home router with two accesses: dsl (veth m0, 2001:db8:1::2 and 192.0.2.2) and lte (veth
m1, 2001:db8:2::2). Peers: hag-magsim (two CoAs of one subscriber: register, re-register,
heartbeats, drop one access, de-register) and scapy (an encoder nobody here wrote: PBU over raw
MH and over UDP 5436, a refused MAG, hostile datagrams, a revocation answered with a BRA).
hag-control logs JSON (--log-format json): every line of its stderr must parse as one JSON
object, including the line naming a subscriber whose NAI holds quotes and invalid UTF-8.
Root only (exit 77 otherwise).

usage: lma_netns_test.py HAG_CONTROL HAG_MAGSIM HAGCTL
"""
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import netns  # noqa: E402

import logging  # noqa: E402
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.layers.inet6 import (IPv6, MIP6MH_BA, MIP6MH_BU, MIP6OptMNID,  # noqa: E402
                                MIP6OptUnknown)

IPPROTO_MH = 135
IPV6_CHECKSUM = 7
LMA6, LMA4 = "2001:db8:1::1", "192.0.2.1"
# An NAI a hostile MAG may send: quotes, a backslash, braces, bytes that are not UTF-8.
HOSTILE_NAI = b'evil"}{\\\xff\xc3(\xe2\x82@example.net'
# ... and how the JSON log line gives it back (each byte that is not UTF-8 becomes U+FFFD).
HOSTILE_LOGGED = 'evil"}{\\\ufffd\ufffd(\ufffd\ufffd@example.net'
DSL6, LTE6, DSL4 = "2001:db8:1::2", "2001:db8:2::2", "192.0.2.2"

CONFIG = """
log {{ level: "debug" }}
lma_addresses: "{lma6}"
lma_addresses: "{lma4}"
hnp_pools {{ name: "residential" prefix: "2001:db8:100::/40" assign_length: 64 }}
default_profile {{ multipath: true gre_key_required: true max_paths: 4 max_lifetime_seconds: 3600 }}
allow_unknown_subscribers: true
mags {{ mag_id: "mag1@example.net" allowed_nai: "cpe*" }}
mags {{ mag_id: "scapy-mag@example.net" allowed_nai: "scapy*" }}
management_socket: "{sock}"
state_directory: "{state}"
heartbeat_interval_seconds: 1
heartbeat_missed_limit: 2
revocation_retries: 3
policy {{
  labels {{ name: "RED" access_technology: 3 }}
  labels {{ name: "BLUE" access_technology: 8 }}
  applications {{ name: "HTTP" match {{ protocol: 6 remote_ports: "80,443" }} }}
  applications {{ name: "SIP" match {{ protocol: 17 remote_ports: "5060" }} }}
  profiles {{ name: "home"
    rules {{ application: "HTTP" preference: "BLUE" preference: "RED" preference: "DROP" }}
    rules {{ application: "SIP" preference: "BLUE" preference: "DROP" }} }}
  default_profile: "home"
}}
"""

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def raw_opt(otype, data):
    return MIP6OptUnknown(otype=otype, odata=data)


def rfc5213_timestamp():
    t = time.time()
    return (int(t) << 16) | int((t - int(t)) * 65536)


def scapy_pbu(nai, mag, bid, att, seq, lifetime_units=100, label=1):
    """The MH bytes of a PBU built by scapy, checksum zero (the sender fills it)."""
    bu = MIP6MH_BU(seq=seq, flags="AP", mhtime=lifetime_units, reserved=0)
    bu.options = [
        MIP6OptMNID(subtype=1, id=nai if isinstance(nai, bytes) else nai.encode()),
        raw_opt(22, bytes([0, 0]) + bytes(16)),            # HNP ::/0: assign one
        raw_opt(23, bytes([0, 1])),                        # Handoff Indicator: new attach
        raw_opt(24, bytes([0, att])),                      # Access Technology Type
        raw_opt(27, struct.pack("!Q", rfc5213_timestamp())),
        raw_opt(33, struct.pack("!HI", 0, 0x5C000000 + bid)),  # GRE key: downlink
        raw_opt(35, struct.pack("!HBB", bid, 0, 0)),       # Binding Identifier
        raw_opt(63, bytes([att, label, bid, 0])),          # MAG Multipath-Binding
        raw_opt(64, bytes([1]) + mag.encode()),            # MAG Identifier (NAI)
    ]
    mh = bytes(IPv6(src="::", dst="::") / bu)[40:]
    return mh[:4] + b"\0\0" + mh[6:]


def mh_checksum(src, dst, mh):
    """RFC 6275 §6.1.1: the Internet checksum over the IPv6 pseudo-header and the MH."""
    data = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst) +
            struct.pack("!I3xB", len(mh), 135) + mh)
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ba_options(ba_bytes):
    """(status, {type: [data]}) of a PBA, read with scapy and a bounds-checked TLV walk."""
    ba = MIP6MH_BA(ba_bytes)
    opts, i, end = {}, 12, min(len(ba_bytes), (ba_bytes[1] + 1) * 8)
    while i < end:
        if ba_bytes[i] == 0:
            i += 1
            continue
        if i + 2 > end or i + 2 + ba_bytes[i + 1] > end:
            break
        opts.setdefault(ba_bytes[i], []).append(ba_bytes[i + 2:i + 2 + ba_bytes[i + 1]])
        i += 2 + ba_bytes[i + 1]
    return ba.status, opts, ba.seq


def scapy_peer(mode, out_path):
    """Runs inside the cpe namespace. Writes one JSON object with what it saw."""
    res = {}
    # 1. PBU over raw MH from the LTE CoA (kernel fills the checksum, RFC 3542).
    s6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_MH)
    s6.setsockopt(socket.IPPROTO_IPV6, IPV6_CHECKSUM, 4)
    s6.bind((LTE6, 0))
    s6.settimeout(3)

    def ask6(pbu):
        s6.sendto(pbu, (LMA6, 0))
        while True:
            data, addr = s6.recvfrom(4096)
            if len(data) > 2 and data[2] == 6:
                return ba_options(data)

    if mode == "register":
        st, opts, _ = ask6(scapy_pbu("scapy1@example.net", "scapy-mag@example.net", 1, 8, 100))
        res["raw_status"] = st
        res["raw_hnp"] = opts[22][0].hex() if 22 in opts else None
        res["raw_gre"] = struct.unpack("!I", opts[33][0][2:6])[0] if 33 in opts else None
        res["raw_bid"] = struct.unpack("!H", opts[35][0][:2])[0] if 35 in opts else None
        # Refused: a MAG registering a subscriber it is not authorised for (RFC 5213: 154).
        st, _, _ = ask6(scapy_pbu("cpe9@example.net", "scapy-mag@example.net", 1, 8, 101))
        res["unauthorised_status"] = st
        # The same MAG with an NAI full of quotes and invalid UTF-8: refused, logged as JSON.
        st, _, _ = ask6(scapy_pbu(HOSTILE_NAI, "scapy-mag@example.net", 1, 8, 103))
        res["hostile_nai_status"] = st
        # Missing Handoff Indicator: a PBU without option 23 (RFC 5213: 161).
        pbu = bytes(IPv6(src="::", dst="::") / MIP6MH_BU(seq=102, flags="AP", mhtime=10, options=[
            MIP6OptMNID(subtype=1, id=b"scapy2@example.net"), raw_opt(24, bytes([0, 8])),
            raw_opt(64, bytes([1]) + b"scapy-mag@example.net")]))[40:]
        st, _, _ = ask6(pbu[:4] + b"\0\0" + pbu[6:])
        res["missing_hi_status"] = st

        # 2. The same over IPv4: UDP 5436, inner IPv6 header (IPv4-mapped) + MH.
        s4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s4.bind((DSL4, 0))
        s4.settimeout(3)
        pbu = scapy_pbu("scapy4@example.net", "scapy-mag@example.net", 3, 3, 7)
        src, dst = "::ffff:" + DSL4, "::ffff:" + LMA4
        pbu = pbu[:4] + struct.pack("!H", mh_checksum(src, dst, pbu)) + pbu[6:]
        dgram = bytes(IPv6(src=src, dst=dst, nh=135, hlim=255) / MIP6MH_BU(pbu))
        s4.sendto(dgram, (LMA4, 5436))
        try:
            reply, _ = s4.recvfrom(4096)
        except socket.timeout:
            reply = b""
            res["udp_timeout"] = True
        inner = IPv6(reply) if len(reply) > 40 else IPv6()
        res["udp_inner"] = [inner.version, inner.nh, inner.src, inner.dst, inner.plen,
                            len(reply) - 40]
        st, opts, seq = ba_options(reply[40:]) if len(reply) > 52 else (None, {}, None)
        res["udp_status"], res["udp_seq"] = st, seq
        res["udp_hnp"] = opts[22][0].hex() if 22 in opts else None
        # Hostile datagrams: bad checksum, truncated IPv6 header, an MH that lies about its
        # length (checksum right). None may get an answer or hurt the daemon.
        bad = bytearray(dgram)
        bad[-1] ^= 0xFF
        s4.sendto(bytes(bad), (LMA4, 5436))
        s4.sendto(dgram[:30], (LMA4, 5436))
        liar = bytearray(pbu)
        liar[1] = 200  # header length far past the end
        liar[4:6] = b"\0\0"
        liar[4:6] = struct.pack("!H", mh_checksum(src, dst, bytes(liar)))
        s4.sendto(struct.pack("!IHBB", 0x60000000, len(liar), 135, 255) +
                  socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
                  + bytes(liar), (LMA4, 5436))
        # Only heartbeat requests (MH type 13) may arrive now: the LMA checks the new IPv4 CoA.
        res["hostile_answer"] = None
        s4.settimeout(0.5)
        for _ in range(6):
            try:
                extra, _ = s4.recvfrom(4096)
            except socket.timeout:
                continue
            if len(extra) < 43 or extra[42] != 13:
                res["hostile_answer"] = extra.hex()
    elif mode == "revocation":
        # Wait for the BRI the operator's delete triggers, answer it with a BRA.
        deadline = time.time() + 15
        s6.settimeout(1)
        while time.time() < deadline and "bri" not in res:
            try:
                data, addr = s6.recvfrom(4096)
            except socket.timeout:
                continue
            if len(data) >= 12 and data[2] == 16 and data[6] == 1:  # BR type 1: indication
                seq = struct.unpack("!H", data[8:10])[0]
                res["bri"] = {"src": addr[0], "seq": seq, "trigger": data[7],
                              "flags": data[10]}
                bra = bytearray(struct.pack("!BBBBHBBHBB", 59, 1, 16, 0, 0, 2, 0, seq, 0, 0))
                bra += bytes(4)  # pad to 16 octets (length 1)
                s6.sendto(bytes(bra), (addr[0], 0))
    with open(out_path, "w") as f:
        json.dump(res, f)


def check_json_log(path):
    """Every stderr line of hag-control: strict UTF-8, one JSON object with the five fields."""
    with open(path, "rb") as f:
        raw = f.read()
    lines = raw.split(b"\n")
    check(lines[-1] == b"" and len(lines) > 10, "JSON log: %d lines, each ends in a newline"
          % (len(lines) - 1))
    bad, levels, messages = [], set(), []
    for n, line in enumerate(lines[:-1]):
        try:
            obj = json.loads(line.decode("utf-8", errors="strict"))
            ok = (isinstance(obj, dict) and
                  set(obj) == {"time", "level", "logger", "message", "pid"} and
                  obj["logger"] == "hag-control" and isinstance(obj["pid"], int) and
                  len(obj["time"]) == 27 and obj["time"].endswith("Z"))
            levels.add(obj.get("level"))
            messages.append(obj.get("message", ""))
        except ValueError:
            ok = False
        if not ok:
            bad.append((n, line[:200]))
    check(not bad, "JSON log: every line is one JSON object (bad: %r)" % bad[:3])
    check({"info", "error"} <= levels, "JSON log: levels %s" % sorted(levels))
    check(any(HOSTILE_LOGGED in m for m in messages),
          "JSON log: the hostile NAI comes back with quotes intact and U+FFFD for bad bytes")
    check(any("reload:" in m for m in messages), "JSON log: reload errors logged")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--scapy":
        scapy_peer(sys.argv[2], sys.argv[3])
        return 0
    netns.require_root()
    control, magsim, hagctl = sys.argv[1:4]
    topo = netns.Topology("lma")
    lma, cpe = topo.ns("lma"), topo.ns("cpe")
    for ns in (lma, cpe):  # no DAD: a tentative link-local address delays ND by seconds
        for conf in ("all", "default"):
            netns.sh("sysctl", "-qw", f"net.ipv6.conf.{conf}.accept_dad=0", ns=ns)
    topo.veth(lma, "l0", cpe, "m0")
    topo.veth(lma, "l1", cpe, "m1")
    for ns, dev, addr in [(lma, "l0", LMA6 + "/64"), (cpe, "m0", DSL6 + "/64"),
                          (lma, "l1", "2001:db8:2::1/64"), (cpe, "m1", LTE6 + "/64")]:
        netns.sh("ip", "addr", "add", addr, "dev", dev, "nodad", ns=ns)
    netns.sh("ip", "addr", "add", LMA4 + "/24", "dev", "l0", ns=lma)
    netns.sh("ip", "addr", "add", DSL4 + "/24", "dev", "m0", ns=cpe)
    work = tempfile.mkdtemp(prefix="hag-lma-test-")
    sock = os.path.join(work, "control.sock")
    conf = os.path.join(work, "control.conf")
    with open(conf, "w") as f:
        f.write(CONFIG.format(lma6=LMA6, lma4=LMA4, sock=sock,
                              state=os.path.join(work, "state")))
    log = open(os.path.join(work, "control.log"), "w+")
    daemon = subprocess.Popen(["ip", "netns", "exec", lma, control, "-c", conf,
                               "--log-format", "json"],
                              stdout=subprocess.PIPE, stderr=log, text=True)
    topo.procs.append(daemon)

    def hag(*args):
        r = subprocess.run([hagctl, "-s", "unix:" + sock, "-o", "json"] + list(args),
                           capture_output=True, text=True, timeout=30)
        return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else None

    def session(nai):
        return hag("bindings", "show", nai)

    def counters():
        c = hag("counters") or {"counters": []}
        return {x["name"]: int(x["value"]) for x in c["counters"]}

    def wait_for(pred, seconds):
        end = time.time() + seconds
        while time.time() < end:
            v = pred()
            if v:
                return v
            time.sleep(0.2)
        return pred()

    def scapy(mode):
        out = os.path.join(work, f"scapy-{mode}.json")
        p = subprocess.Popen(["ip", "netns", "exec", cpe, sys.executable, __file__, "--scapy",
                              mode, out])
        topo.procs.append(p)
        return p, out

    try:
        check(daemon.stdout.readline().strip() == "hag-control ready", "daemon ready")
        sim = ["ip", "netns", "exec", cpe, magsim]
        common = ["--lma", LMA6, "--nai", "cpe1@example.net", "--mag-id", "mag1@example.net"]

        # Register two CoAs; hold 9 s with an 8 s lifetime: re-registration at 80%.
        reg = subprocess.Popen(sim + ["register"] + common +
                               ["--access", f"dsl:{DSL6}:1", "--access", "lte:m1:2",
                                "--lifetime", "8", "--hold", "9", "--heartbeat", "0",
                                "--down-kbps", "50000", "--up-kbps", "10000"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        s = wait_for(lambda: (lambda x: x if x and len(x["paths"]) == 2 else None)(
            session("cpe1@example.net")), 10)
        check(s is not None, "hagctl shows cpe1 with two paths")
        if s:
            paths = {p["bid"]: p for p in s["paths"]}
            check(paths[1]["coa"] == DSL6 and paths[2]["coa"] == LTE6, "CoAs per BID")
            check(paths[1]["access_technology"] == 3 and paths[2]["access_technology"] == 8,
                  "access technology types")
            check(paths[1]["if_label"] == 1 and paths[2]["if_label"] == 2, "If-Labels")
            check(all(p["weight_kbps"] == 50000 for p in paths.values()),
                  "link metrics stored as weight")
            check(len(s["home_prefixes"]) == 1 and s["home_prefixes"][0].startswith("2001:db8:1")
                  and s["home_prefixes"][0].endswith("/64"), "one HNP from the pool")
            check(s["uplink_gre_key"] != 0 and {p["downlink_gre_key"] for p in paths.values()}
                  != {0}, "GRE keys recorded")
        time.sleep(3)
        s = session("cpe1@example.net")
        check(s is not None and all(p["live"] for p in s["paths"]),
              "paths live while magsim answers heartbeats")
        # Flow policy against the registered paths: HTTP and SIP on LTE (BID 2).
        pv = hag("policy", "show", "cpe1@example.net")
        rules = {r["application"]: r for r in pv["profiles"][0]["rules"]} if pv else {}
        check(rules.get("HTTP", {}).get("resolved") == "path bid=2 (BLUE)" and
              rules.get("SIP", {}).get("resolved") == "path bid=2 (BLUE)",
              "policy: HTTP and SIP resolve to the LTE path while both are up")
        d = hag("policy", "test", "cpe1@example.net", "--protocol", "udp", "--remote-port",
                "5060")
        check(d is not None and d.get("action") == "path" and d.get("bid") == 2,
              "policy test: a SIP packet goes on BID 2")
        out, err = reg.communicate(timeout=30)
        print(out, err)
        acc = [l for l in out.splitlines() if "accepted" in l]
        check(reg.returncode == 0 and len(acc) >= 4, "registration and re-registration accepted")
        c = counters()
        check(c.get("heartbeat.response_received", 0) >= 2, "heartbeat responses counted")

        # magsim is gone: heartbeats go unanswered and the paths go down.
        s = wait_for(lambda: (lambda x: x if x and not any(p["live"] for p in x["paths"])
                              else None)(session("cpe1@example.net")), 8)
        check(s is not None, "paths marked down after missed heartbeats")
        pv = hag("policy", "show", "cpe1@example.net")
        rules = {r["application"]: r for r in pv["profiles"][0]["rules"]} if pv else {}
        check(rules.get("HTTP", {}).get("resolved") == "DROP",
              "policy: with every path down, HTTP's list ends in DROP")

        # Drop one access.
        r = subprocess.run(sim + ["deregister"] + common + ["--access", f"lte:{LTE6}:2"],
                           capture_output=True, text=True, timeout=30)
        print(r.stdout, r.stderr)
        check(r.returncode == 0, "de-register LTE path accepted")
        s = session("cpe1@example.net")
        check(s is not None and [p["bid"] for p in s["paths"]] == [1], "one path left (BID 1)")

        # scapy as the MAG: raw MH and UDP 5436, refusals, hostile datagrams.
        p, out_path = scapy("register")
        p.wait(timeout=60)
        res = json.load(open(out_path)) if os.path.exists(out_path) else {}
        print(res)
        check(res.get("raw_status") == 0, "scapy PBU over raw MH accepted")
        check(res.get("raw_hnp", "") and res["raw_hnp"][2:4] == "40", "PBA carries a /64 HNP")
        check(res.get("raw_bid") == 1 and res.get("raw_gre"), "PBA echoes BID, gives GRE key")
        check(res.get("unauthorised_status") == 154, "unauthorised MAG refused (154)")
        check(res.get("hostile_nai_status") == 154, "hostile NAI refused (154)")
        check(res.get("missing_hi_status") == 161, "missing handoff indicator refused (161)")
        check(res.get("udp_status") == 0 and res.get("udp_seq") == 7,
              "scapy PBU over UDP 5436 accepted")
        check(res.get("udp_inner", [0])[:4] == [6, 135, "::ffff:" + LMA4, "::ffff:" + DSL4]
              and res["udp_inner"][4] == res["udp_inner"][5], "PBA framed with inner IPv6")
        check(res.get("hostile_answer", "x") is None, "no answer to hostile datagrams")
        s4 = session("scapy4@example.net")
        check(s4 is not None and s4["paths"][0]["coa"] == DSL4, "IPv4 CoA in the cache")
        c = counters()
        check(c.get("signalling.rx_udp_malformed", 0) >= 2, "malformed UDP framing counted")
        check(c.get("pba.status.154", 0) == 2 and c.get("pba.status.161", 0) == 1,
              "status counters")
        check(c.get("pbu.refused.mag_subscriber", 0) == 2,
              "refusals counted by reason (pbu.refused.mag_subscriber)")

        # hagctl log-level with JSON logs: the level changes, the lines stay JSON.
        lv = hag("log-level", "control", "info")
        check(lv is not None and lv.get("level") == "info" and lv.get("previous") == "debug",
              "hagctl log-level control info (was debug)")

        # hag-magsim over IPv4 (UDP 5436) against the real LMA.
        r = subprocess.run(sim + ["register", "--lma", LMA4, "--nai", "cpe4@example.net",
                                  "--mag-id", "mag1@example.net", "--access", f"dsl:{DSL4}:1"],
                           capture_output=True, text=True, timeout=30)
        print(r.stdout, r.stderr)
        s = session("cpe4@example.net")
        check(r.returncode == 0 and "registration: accepted" in r.stdout and s is not None
              and s["paths"][0]["coa"] == DSL4, "magsim over UDP 5436 registered (IPv4 CoA)")

        # Operator deletes a binding: BRI to the CoA, acknowledged by scapy.
        p, out_path = scapy("revocation")
        time.sleep(1)
        d = hag("bindings", "delete", "scapy1@example.net")
        p.wait(timeout=30)
        res = json.load(open(out_path)) if os.path.exists(out_path) else {}
        print(res)
        check(res.get("bri", {}).get("src") == LMA6, "BRI from the LMA address")
        check(res.get("bri", {}).get("trigger") == 1 and res["bri"]["flags"] & 0x80,
              "BRI: administrative trigger, P (proxy) flag")
        check(session("scapy1@example.net") is None, "deleted binding is gone")
        check(wait_for(lambda: counters().get("revocation.acknowledged", 0) >= 1, 5),
              "BRA matched the BRI")
        del d

        # De-register the last path: the session goes away.
        r = subprocess.run(sim + ["deregister"] + common + ["--access", f"dsl:{DSL6}:1"],
                           capture_output=True, text=True, timeout=30)
        check(r.returncode == 0 and session("cpe1@example.net") is None,
              "de-registering the last path removes the session")

        # Reload (SIGHUP) with a broken file keeps running; SIGTERM exits cleanly.
        with open(conf, "a") as f:
            f.write("\nthis is not a field\n")
        os.kill(daemon.pid, signal.SIGHUP)  # `ip netns exec` execs: the pid is hag-control's
        time.sleep(1)
        check(daemon.poll() is None and session("scapy4@example.net") is not None,
              "bad reload keeps the daemon and its bindings")
        topo.stop(daemon)
        check(daemon.returncode == 0, "SIGTERM: exit 0")
    finally:
        log.seek(0)
        text = log.read()
        print("---- hag-control log (last 60 lines) ----")
        print("\n".join(text.splitlines()[-60:]))
        check("reload:" in text and "error" in text, "reload errors logged")
        check_json_log(os.path.join(work, "control.log"))
        topo.close()
        subprocess.run(["rm", "-rf", work])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
