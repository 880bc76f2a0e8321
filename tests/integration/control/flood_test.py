#!/usr/bin/python3
"""A flood of PBUs for unknown subscribers from spoofed sources against the running hag-control.

Topology: namespace "lma" runs hag-control (LMA 2001:db8:1::1 on l0); namespace "edge" holds the
MAGs (2001:db8:1::2 listed in the configuration, 2001:db8:1::3 and ::4 not listed) and the
flooder. The flooder writes whole Ethernet frames on an AF_PACKET socket: PBUs (MH checksum
right) for unknown subscribers, each from its own source in 2001:db8:ff::/48 (routed back to the
edge namespace, which drops the replies), as fast as Python sends them, for a bounded time.

During the flood:
- a MAG listed in mags.source_addresses registers a subscriber;
- a MAG that had a PBU accepted before the flood registers another one;
both within magsim's retransmissions: the global rate limit meters only the sources nobody has
vouched for (docs/reliability.md). After it: hag-control is alive, holds only the real sessions,
its memory grew by a bounded amount, every refusal was counted and answered at most once, its log
stayed bounded, and a MAG that was never seen before registers.
Root only (exit 77 otherwise).

usage: flood_test.py HAG_CONTROL HAG_MAGSIM HAGCTL
"""
import json
import os
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import netns  # noqa: E402

LMA6 = "2001:db8:1::1"
LISTED, PROVEN, NEWCOMER = "2001:db8:1::2", "2001:db8:1::3", "2001:db8:1::4"
FLOOD_SECONDS = 4.0
SOURCES = 100_000  # more than the 65,536 per-source buckets hag-control keeps
GLOBAL_RATE = 2000

CONFIG = """
lma_addresses: "{lma6}"
hnp_pools {{ name: "residential" prefix: "2001:db8:100::/40" assign_length: 64 }}
default_profile {{ multipath: true max_paths: 4 max_lifetime_seconds: 3600 }}
subscribers {{ nai: "cpe1@example.net" }}
subscribers {{ nai: "cpe2@example.net" }}
subscribers {{ nai: "cpe3@example.net" }}
subscribers {{ nai: "cpe4@example.net" }}
allow_unknown_mags: true
mags {{ mag_id: "listed@example.net" source_addresses: "{listed}" }}
management_socket: "{sock}"
state_directory: "{state}"
limits {{ global_pbu_per_second: {rate} global_pbu_burst: {rate} }}
"""

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def option(otype, data):
    return bytes([otype, len(data)]) + data


def pbu_mh(nai, seq):
    """A PBU's MH bytes (checksum zero): MN-ID, HNP ::/0, HI, ATT, MAG Identifier."""
    opts = (option(8, b"\x01" + nai) + option(22, bytes(18)) + option(23, b"\x00\x01") +
            option(24, b"\x00\x03") + option(64, b"\x01flood@example.net"))
    body = struct.pack("!HBBH", seq, 0x82, 0, 100) + opts  # seq, A+P flags, lifetime
    total = 6 + len(body)
    pad = (-total) % 8
    if pad == 1:
        body += b"\x00"
    elif pad:
        body += bytes([1, pad - 2]) + bytes(pad - 2)
    total = 6 + len(body)
    return struct.pack("!BBBBH", 59, total // 8 - 1, 5, 0, 0) + body


def flood(dev, dst_mac, src_mac, out_path):
    """Runs inside the edge namespace: sends for FLOOD_SECONDS, writes what it sent."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((dev, 0))
    eth = bytes.fromhex(dst_mac.replace(":", "")) + bytes.fromhex(src_mac.replace(":", "")) + \
        b"\x86\xdd"
    dst = socket.inet_pton(socket.AF_INET6, LMA6)
    frames = []
    for i in range(SOURCES):
        src = socket.inet_pton(socket.AF_INET6, "2001:db8:ff::")[:10] + \
            struct.pack("!IH", i >> 16, i & 0xFFFF)
        mh = pbu_mh(b"unknown-%08d@example.net" % i, i & 0xFFFF)
        c = checksum(src + dst + struct.pack("!I3xB", len(mh), 135) + mh)
        mh = mh[:4] + struct.pack("!H", c) + mh[6:]
        ip6 = struct.pack("!IHBB", 6 << 28, len(mh), 135, 64) + src + dst
        frames.append(eth + ip6 + mh)
    # Tell the parent the frames are built (it starts the MAGs once the flood is on).
    print("ready", flush=True)
    sent = sent_bytes = 0
    end = time.monotonic() + FLOOD_SECONDS
    while time.monotonic() < end:
        for f in frames[sent % SOURCES:sent % SOURCES + 1000]:
            try:
                s.send(f)
            except OSError:  # a full transmit queue: the flood goes on
                continue
            sent += 1
            sent_bytes += len(f) - 14 - 40
    with open(out_path, "w") as f:
        json.dump({"sent": sent, "mh_bytes": sent_bytes}, f)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "--flood":
        flood(*sys.argv[2:6])
        return 0
    netns.require_root()
    control, magsim, hagctl = sys.argv[1:4]
    topo = netns.Topology("flood")
    lma, edge = topo.ns("lma"), topo.ns("edge")
    for ns in (lma, edge):
        for conf in ("all", "default"):
            netns.sh("sysctl", "-qw", f"net.ipv6.conf.{conf}.accept_dad=0", ns=ns)
    lma_mac, edge_mac = topo.veth(lma, "l0", edge, "m0")
    netns.sh("ip", "addr", "add", LMA6 + "/64", "dev", "l0", "nodad", ns=lma)
    for a in (LISTED, PROVEN, NEWCOMER):
        netns.sh("ip", "addr", "add", a + "/64", "dev", "m0", "nodad", ns=edge)
    # Replies to the spoofed sources go to the edge, which does not forward them.
    netns.sh("ip", "-6", "route", "add", "2001:db8:ff::/48", "via", LISTED, ns=lma)
    work = topo.tmpdir("hag-flood-test-")
    sock = os.path.join(work, "control.sock")
    conf = os.path.join(work, "control.conf")
    with open(conf, "w") as f:
        f.write(CONFIG.format(lma6=LMA6, listed=LISTED, sock=sock, rate=GLOBAL_RATE,
                              state=os.path.join(work, "state")))
    log_path = os.path.join(work, "control.log")
    log = open(log_path, "w+")
    daemon = subprocess.Popen(["ip", "netns", "exec", lma, control, "-c", conf],
                              stdout=subprocess.PIPE, stderr=log, text=True)
    topo.procs.append(daemon)

    def hag(*args):
        r = subprocess.run([hagctl, "-s", "unix:" + sock, "-o", "json"] + list(args),
                           capture_output=True, text=True, timeout=30)
        return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else None

    def counters():
        c = hag("counters") or {"counters": []}
        return {x["name"]: int(x["value"]) for x in c["counters"]}

    def register(src, nai, mag):
        return subprocess.Popen(
            ["ip", "netns", "exec", edge, magsim, "register", "--lma", LMA6, "--nai", nai,
             "--mag-id", mag, "--access", f"dsl:{src}:1", "--hold", "1", "--heartbeat", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def accepted(p, what):
        out, _ = p.communicate(timeout=60)
        ok = p.returncode == 0 and "registration: accepted" in out
        check(ok, what + ("" if ok else f": {out.strip()}"))

    try:
        check(daemon.stdout.readline().strip() == "hag-control ready", "daemon ready")
        # Before the flood: a MAG that is not listed has a PBU accepted, which vouches for it.
        accepted(register(PROVEN, "cpe2@example.net", "proven@example.net"),
                 "before the flood: cpe2 registered by an unlisted MAG")
        time.sleep(0.5)  # let its bucket refill
        before = counters()
        rss0 = rss_kb(daemon.pid)
        log.flush()
        lines0 = sum(1 for _ in open(log_path))

        out_path = os.path.join(work, "flood.json")
        flooder = subprocess.Popen(["ip", "netns", "exec", edge, sys.executable, __file__,
                                    "--flood", "m0", lma_mac, edge_mac, out_path],
                                   stdout=subprocess.PIPE, text=True)
        topo.procs.append(flooder)
        check(flooder.stdout.readline().strip() == "ready", "flooder built its frames")
        t_flood = time.monotonic()
        deadline = t_flood + FLOOD_SECONDS
        while counters().get("mh.rate_limited_global", 0) == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        during = counters().get("mh.rate_limited_global", 0)
        check(during > 0, f"the flood is over the global limit ({during} dropped so far)")
        # During the flood: the listed MAG and the proven source register new subscribers (the
        # latter under another MAG identifier: one (MAG, BID) pair is one home router).
        listed = register(LISTED, "cpe1@example.net", "listed@example.net")
        proven = register(PROVEN, "cpe3@example.net", "proven-b@example.net")
        accepted(listed, "during the flood: the listed MAG registered cpe1")
        accepted(proven, "during the flood: the MAG with a session registered cpe3")
        check(time.monotonic() < deadline,
              "both registrations were done while the flood still ran")
        flooder.wait(timeout=FLOOD_SECONDS + 60)
        with open(out_path) as f:
            sent = json.load(f)
        time.sleep(0.5)
        after = counters()
        rss1 = rss_kb(daemon.pid)
        log.flush()
        lines = sum(1 for _ in open(log_path)) - lines0

        def delta(name):
            return after.get(name, 0) - before.get(name, 0)

        print(f"flood: {sent['sent']} PBUs from {SOURCES} sources in {FLOOD_SECONDS:.0f} s; "
              f"hag-control received {delta('mh.received')}, dropped "
              f"{delta('mh.rate_limited_global')} (global) + {delta('mh.rate_limited')} "
              f"(per source), refused {delta('pbu.refused.unknown_subscriber')} unknown; "
              f"RSS {rss0} -> {rss1} kB; {lines} log lines", flush=True)
        check(daemon.poll() is None, "hag-control survived the flood")
        check(delta("mh.received") > 10 * GLOBAL_RATE,
              "hag-control received far more than its global limit")
        check(delta("mh.rate_limited_global") > 0, "the global limit dropped the excess")
        refused = delta("pbu.refused.unknown_subscriber")
        check(0 < refused <= GLOBAL_RATE * (FLOOD_SECONDS + 2) + GLOBAL_RATE,
              f"unknown-subscriber refusals bounded by the global limit ({refused})")
        check(delta("pba.status.152") == refused, "one PBA per refusal, no more")
        check(delta("mh.global_limit_exempt") >= 2,
              "the MAGs' PBUs were exempt from the global limit")
        s = hag("bindings", "list") or {}
        nais = sorted(x.get("nai", "") for x in s.get("bindings", []))
        check(nais == ["cpe1@example.net", "cpe2@example.net", "cpe3@example.net"],
              f"only the real sessions exist ({nais[:5]})")
        check(after.get("mh.rate_limit_overflow", 0) > 0 or rss1 - rss0 < 65536,
              "per-source state bounded (overflow bucket in use)")
        # 65,536 buckets of ~100 bytes plus hash nodes: a few MB; ASan's redzones and its
        # 8 MB quarantine (tools/quickstart) at most double that.
        check(rss1 - rss0 < 64 * 1024, f"memory grew by {(rss1 - rss0) // 1024} MB (< 64 MB)")
        # Refusals at most 10 lines/s, the limit warnings at most 1/s each.
        check(lines <= (FLOOD_SECONDS + 3) * 13 + 10, f"log bounded ({lines} lines)")
        # After the flood: a MAG never seen before is served (the global bucket refilled).
        time.sleep(1.0)
        accepted(register(NEWCOMER, "cpe4@example.net", "new@example.net"),
                 "after the flood: a new MAG registered cpe4")
    finally:
        topo.stop(daemon)
        if failures:
            print(f"{len(failures)} check(s) failed; hag-control log (last 30 lines):")
            with open(log_path) as f:
                print("".join(f.readlines()[-30:]))
        topo.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
