#!/usr/bin/python3
"""hag-magsim over real raw MH sockets between two network namespaces.

An independent LMA responder (this file, --responder mode, plain Python sockets) answers each
PBU with a PBA (HNP, uplink GRE key, BID) and drops the first PBU of BID 2 to force a
retransmission. hag-magsim registers one subscriber with two accesses (two veth links, two
CoAs), then de-registers one of them. Root only (exit 77 otherwise).
usage: magsim_netns_test.py HAG_MAGSIM
"""
import json
import os
import socket
import struct
import subprocess
import sys
import time

IPPROTO_MH = 135
IPV6_CHECKSUM = 7


def responder(log_path):
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_MH)
    s.setsockopt(socket.IPPROTO_IPV6, IPV6_CHECKSUM, 4)
    s.settimeout(1.0)
    dropped = set()
    deadline = time.time() + 60
    with open(log_path, "w") as log:
        while time.time() < deadline:
            try:
                data, addr = s.recvfrom(2048)
            except socket.timeout:
                continue
            if len(data) >= 12 and data[2] == 13:
                log.write(json.dumps({"heartbeat": struct.unpack("!I", data[8:12])[0],
                                      "src": addr[0], "flags": data[7]}) + "\n")
                log.flush()
                continue
            if len(data) < 12 or data[2] != 5:
                continue
            seq, = struct.unpack("!H", data[6:8])
            lifetime, = struct.unpack("!H", data[10:12])
            end = min(len(data), (data[1] + 1) * 8)
            opts, i = {}, 12
            while i < end:
                t = data[i]
                if t == 0:
                    i += 1
                    continue
                if i + 2 > end or i + 2 + data[i + 1] > end:
                    break
                opts.setdefault(t, data[i + 2:i + 2 + data[i + 1]])
                i += 2 + data[i + 1]
            bid = struct.unpack("!H", opts[35][:2])[0] if 35 in opts else 0
            rec = {"src": addr[0], "seq": seq, "lifetime": lifetime, "bid": bid,
                   "nai": opts.get(8, b"\x01")[1:].decode(errors="replace"),
                   "gre": struct.unpack("!I", opts[33][2:6])[0] if 33 in opts else None,
                   "mag": opts.get(64, b"\x01")[1:].decode(errors="replace"),
                   "att": opts[24][1] if 24 in opts else None,
                   "vendor": opts[19].hex() if 19 in opts else None}
            if bid == 2 and (bid, lifetime) not in dropped:
                dropped.add((bid, lifetime))
                rec["dropped"] = True
                log.write(json.dumps(rec) + "\n")
                log.flush()
                continue
            log.write(json.dumps(rec) + "\n")
            log.flush()
            hnp = bytes.fromhex("20010db8007700000000000000000000")
            pba = struct.pack("!BBBBH", 59, 5, 6, 0, 0)
            pba += struct.pack("!BBHH", 0, 0x20, seq, lifetime)
            pba += struct.pack("!BBBB", 22, 18, 0, 64) + hnp
            pba += bytes([1, 0])  # PadN(0): GRE key at 4n+2
            pba += struct.pack("!BBHI", 33, 6, 0, 0x100 + bid)
            pba += struct.pack("!BBHBB", 35, 4, bid, 0, 0)
            assert len(pba) == 48
            s.sendto(pba, (addr[0], 0))


def sh(*cmd):
    subprocess.run(cmd, check=True)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--responder":
        responder(sys.argv[2])
        return 0
    if os.geteuid() != 0:
        print("SKIP: needs root (network namespaces, raw MH sockets)")
        return 77
    magsim = sys.argv[1]
    tag = str(os.getpid())
    lma, mag = "hagmsl" + tag, "hagmsm" + tag
    log = f"/tmp/hag-magsim-responder-{tag}.log"
    failures = []

    def check(cond, what):
        print(("ok   " if cond else "FAIL ") + what)
        if not cond:
            failures.append(what)

    resp = None
    try:
        sh("ip", "netns", "add", lma)
        sh("ip", "netns", "add", mag)
        for n, (la, ma) in enumerate([("2001:db8:1::1", "2001:db8:1::2"),
                                      ("2001:db8:2::1", "2001:db8:2::2")]):
            sh("ip", "link", "add", f"l{n}", "netns", lma, "type", "veth", "peer", f"m{n}",
               "netns", mag)
            sh("ip", "-n", lma, "addr", "add", la + "/64", "dev", f"l{n}", "nodad")
            sh("ip", "-n", mag, "addr", "add", ma + "/64", "dev", f"m{n}", "nodad")
            sh("ip", "-n", lma, "link", "set", f"l{n}", "up")
            sh("ip", "-n", mag, "link", "set", f"m{n}", "up")
        sh("ip", "-n", lma, "link", "set", "lo", "up")
        sh("ip", "-n", mag, "link", "set", "lo", "up")
        resp = subprocess.Popen(["ip", "netns", "exec", lma, sys.executable, __file__,
                                 "--responder", log])
        time.sleep(1)
        base = ["ip", "netns", "exec", mag, magsim]
        common = ["--lma", "2001:db8:1::1", "--nai", "cpe1@example.net", "--mag-id",
                  "mag1@example.net"]
        r = subprocess.run(base + ["register"] + common +
                           ["--access", "dsl:2001:db8:1::2:1", "--access", "lte:m1:2",
                            "--down-kbps", "50000", "--up-kbps", "10000",
                            "--hold", "2", "--heartbeat", "1"],
                           capture_output=True, text=True, timeout=60)
        print(r.stdout, r.stderr)
        check(r.returncode == 0, "register exit 0")
        lines = [l for l in r.stdout.splitlines() if "registration: accepted" in l]
        check(len(lines) == 2, "two accesses accepted")
        check(all("hnp=2001:db8:77::/64" in l for l in lines), "HNP printed")
        check(any("bid=2 coa=2001:db8:2::2" in l and "uplink-gre-key=0x00000102" in l
                  for l in lines), "LTE access via m1's address, uplink key")

        r = subprocess.run(base + ["deregister"] + common + ["--access", "lte:2001:db8:2::2:2"],
                           capture_output=True, text=True, timeout=60)
        print(r.stdout, r.stderr)
        check(r.returncode == 0 and "de-registration: accepted" in r.stdout, "de-register BID 2")

        recs = [json.loads(l) for l in open(log)]
        hbs = [x for x in recs if "heartbeat" in x]
        check(len(hbs) >= 2 and {x["src"] for x in hbs} == {"2001:db8:1::2", "2001:db8:2::2"}
              and all(x["flags"] == 0 for x in hbs), "heartbeat requests from both CoAs")
        recs = [x for x in recs if "heartbeat" not in x]

        r = subprocess.run(base + ["load"] + common +
                           ["--access", "dsl:2001:db8:1::2:1", "--subscribers", "50",
                            "--rate", "200", "--duration", "1"],
                           capture_output=True, text=True, timeout=60)
        print(r.stdout, r.stderr)
        kv = dict(f.split("=") for f in r.stdout.split() if "=" in f)
        check(r.returncode == 0 and "p99" in kv and "pbu_per_s" in kv, "load report")
        check(int(kv.get("sent", 0)) == int(kv.get("accepted", -1)) + int(kv.get("rejected", 0))
              + int(kv.get("lost", 0)) and int(kv.get("accepted", 0)) > 0,
              "load counts add up, PBAs answered")
        load_nais = {json.loads(l).get("nai") for l in open(log)} - {"cpe1@example.net", None}
        check(load_nais == {f"load{i}@example.net" for i in range(50)}, "50 load subscribers")
        reg = [x for x in recs if x["lifetime"] > 0]
        check({(x["src"], x["bid"]) for x in reg} == {("2001:db8:1::2", 1), ("2001:db8:2::2", 2)},
              "PBUs from each CoA with its BID")
        bid2 = [x for x in reg if x["bid"] == 2]
        check(len(bid2) == 2 and bid2[0].get("dropped") and bid2[0]["seq"] == bid2[1]["seq"],
              "dropped PBU retransmitted with the same sequence")
        check(all(x["nai"] == "cpe1@example.net" and x["mag"] == "mag1@example.net" for x in recs),
              "MN-ID and MAG-ID")
        check([x["att"] for x in reg if not x.get("dropped")] == [3, 8], "ATT dsl=3 lte=8")
        check(all(x["vendor"] == "00007ed901" + "0000c35000002710" for x in reg),
              "link metrics vendor option")
        dereg = [x for x in recs if x["lifetime"] == 0 and not x.get("dropped")]
        check(len(dereg) == 1 and dereg[0]["bid"] == 2 and dereg[0]["vendor"] is None,
              "de-registration PBU lifetime 0")
    finally:
        if resp:
            resp.terminate()
            resp.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", lma])
        subprocess.run(["ip", "netns", "del", mag])
        if os.path.exists(log):
            os.unlink(log)
    return 1 if failures else 0


sys.exit(main())
