#!/usr/bin/python3
"""hag-magsim over real raw MH sockets and UDP 5436 between two network namespaces.

IPv6: an independent LMA responder (this file, --responder mode, plain Python sockets) answers
each PBU with a PBA (HNP, uplink GRE key, BID) and drops the first PBU of BID 2 to force a
retransmission. hag-magsim registers one subscriber with two accesses (two veth links, two
CoAs), then de-registers one of them.

IPv4: a fake LMA built on scapy (--udp-responder mode, a real UDP socket on port 5436) checks
the framing hag uses (inner IPv6 header with IPv4-mapped addresses, MH checksum over them) and
answers in the same framing: a PBA with a bad checksum first (magsim must drop it), then the good
one; it ignores the first 3 heartbeat requests of one access (magsim reports the LMA unreachable,
then reachable again) and revokes the other access with a BRI (magsim must send a BRA and stop
refreshing that access). Root only (exit 77 otherwise).
usage: magsim_netns_test.py HAG_MAGSIM
"""
import json
import os
import signal
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


LMA4 = "203.0.113.1"  # the LMA's IPv4 signalling address (on lo, reached over either link)
MAG4_LTE, MAG4_DSL = "192.0.2.2", "198.51.100.2"
NAI = "cpe1@example.net"


def mh_options(mh, start):
    """Mobility options of an MH from offset start: {type: data} (first of each type)."""
    end = min(len(mh), (mh[1] + 1) * 8)
    opts, i = {}, start
    while i < end:
        if mh[i] == 0:
            i += 1
            continue
        if i + 2 > end or i + 2 + mh[i + 1] > end:
            break
        opts.setdefault(mh[i], mh[i + 2:i + 2 + mh[i + 1]])
        i += 2 + mh[i + 1]
    return opts


def mh_pad(mh):
    """Pads an MH to a multiple of 8 octets (Pad1 / PadN) and sets Header Len."""
    mh = bytearray(mh)
    need = -len(mh) % 8
    if need == 1:
        mh += b"\x00"
    elif need:
        mh += bytes([1, need - 2]) + bytes(need - 2)
    mh[1] = len(mh) // 8 - 1
    return bytes(mh)


def udp_responder(log_path):
    """Fake LMA on UDP 5436: scapy frames and checks; one JSON line per event in log_path."""
    from scapy.layers.inet6 import IPv6, MIP6MH_BU, in6_chksum
    from scapy.packet import Raw

    def frame(mh, mag):
        """IPv6 header (IPv4-mapped LMA -> MAG) + MH with the checksum scapy computes."""
        ip = IPv6(src="::ffff:" + LMA4, dst="::ffff:" + mag, hlim=255, nh=135) / Raw(mh)
        ck = in6_chksum(135, ip[Raw], mh)
        mh = mh[:4] + ck.to_bytes(2, "big") + mh[6:]
        return bytes(IPv6(src="::ffff:" + LMA4, dst="::ffff:" + mag, hlim=255, nh=135) / Raw(mh))

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((LMA4, 5436))
    s.settimeout(0.5)
    hb_count, bri_seq, bad_sent = {}, None, False
    deadline = time.time() + 60
    with open(log_path, "w") as log:
        def rec(**kw):
            log.write(json.dumps(kw) + "\n")
            log.flush()

        while time.time() < deadline:
            try:
                data, (src, sport) = s.recvfrom(4096)
            except socket.timeout:
                continue
            pkt = IPv6(data)
            mh = data[40:]
            frame_ok = (len(data) >= 48 and pkt.version == 6 and pkt.tc == 0 and pkt.fl == 0
                        and pkt.plen == len(data) - 40 and pkt.nh == 135 and pkt.hlim == 255
                        and pkt.src == "::ffff:" + src and pkt.dst == "::ffff:" + LMA4)
            cksum_ok = len(mh) >= 6 and in6_chksum(135, pkt.payload, mh) == 0
            base = dict(src=src, sport=sport, frame_ok=frame_ok, cksum_ok=cksum_ok,
                        mhtype=mh[2] if len(mh) > 2 else None)
            if not (frame_ok and cksum_ok):
                rec(kind="bad", **base)
                continue
            if mh[2] == 5:
                bu = MIP6MH_BU(mh)
                opts = mh_options(mh, 12)
                bid = struct.unpack("!H", opts[35][:2])[0] if 35 in opts else 0
                rec(kind="pbu", seq=bu.seq, proxy="P" in bu.flags, lifetime=bu.mhtime, bid=bid,
                    nai=opts.get(8, b"\x01")[1:].decode(errors="replace"),
                    hi=opts[23][1] if 23 in opts else None,
                    coa4=socket.inet_ntoa(opts[32][2:6]) if 32 in opts else None, **base)
                hnp = bytes.fromhex("20010db8008800000000000000000000")
                pba = struct.pack("!BBBBH", 59, 0, 6, 0, 0)
                pba += struct.pack("!BBHH", 0, 0x20, bu.seq, bu.mhtime)
                pba += struct.pack("!BBBB", 22, 18, 0, 64) + hnp
                pba += bytes([1, 0])  # PadN(0): GRE key at 4n+2
                pba += struct.pack("!BBHI", 33, 6, 0, 0x200 + bid)
                pba += struct.pack("!BBHBB", 35, 4, bid, 0, 0)
                good = frame(mh_pad(pba), src)
                if src == MAG4_LTE and not bad_sent:
                    bad_sent = True
                    bad = bytearray(good)
                    bad[44] ^= 0x5a  # the MH checksum
                    s.sendto(bytes(bad), (src, sport))
                s.sendto(good, (src, sport))
            elif mh[2] == 13:
                seq, = struct.unpack("!I", mh[8:12])
                hb_count[src] = hb_count.get(src, 0) + 1
                n = hb_count[src]
                answered = not (src == MAG4_LTE and n <= 3)
                rec(kind="heartbeat", seq=seq, flags=mh[7], n=n, answered=answered, **base)
                if mh[7] & 0x01:
                    continue  # a response: nothing to answer
                if answered:
                    hbr = struct.pack("!BBBBHBBI", 59, 1, 13, 0, 0, 0, 0x01, seq)
                    s.sendto(frame(mh_pad(hbr), src), (src, sport))
                if src == MAG4_DSL and n == 2 and bri_seq is None:
                    bri_seq = 0x4242
                    nai = NAI.encode()
                    bri = struct.pack("!BBBBHBBHBB", 59, 0, 16, 0, 0, 1, 1, bri_seq, 0x80, 0)
                    bri += bytes([8, 1 + len(nai), 1]) + nai
                    s.sendto(frame(mh_pad(bri), src), (src, sport))
                    rec(kind="bri", seq=bri_seq, dst=src, dport=sport)
            elif mh[2] == 16:
                opts = mh_options(mh, 12)
                rec(kind="bra", br_type=mh[6], status=mh[7], seq=struct.unpack("!H", mh[8:10])[0],
                    flags=mh[10], nai=opts.get(8, b"\x01")[1:].decode(errors="replace"), **base)
            else:
                rec(kind="other", **base)


def sh(*cmd):
    subprocess.run(cmd, check=True)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--responder":
        responder(sys.argv[2])
        return 0
    if len(sys.argv) == 3 and sys.argv[1] == "--udp-responder":
        udp_responder(sys.argv[2])
        return 0
    if os.geteuid() != 0:
        print("SKIP: needs root (network namespaces, raw MH sockets)")
        return 77
    magsim = sys.argv[1]
    tag = str(os.getpid())
    lma, mag = "hagmsl" + tag, "hagmsm" + tag
    log = f"/tmp/hag-magsim-responder-{tag}.log"
    log4 = f"/tmp/hag-magsim-udp-responder-{tag}.log"
    failures = []

    def check(cond, what):
        print(("ok   " if cond else "FAIL ") + what)
        if not cond:
            failures.append(what)

    resp = resp4 = None
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
        # IPv4: the LMA's signalling address on lo, one /24 per link; the MAG sends from each
        # access's address over that access's link (source routing, as a hybrid CPE does).
        sh("ip", "-n", lma, "addr", "add", LMA4 + "/32", "dev", "lo")
        for n, (la, ma) in enumerate([("192.0.2.1", MAG4_LTE), ("198.51.100.1", MAG4_DSL)]):
            sh("ip", "-n", lma, "addr", "add", la + "/24", "dev", f"l{n}")
            sh("ip", "-n", mag, "addr", "add", ma + "/24", "dev", f"m{n}")
            sh("ip", "-n", mag, "rule", "add", "from", ma, "table", str(100 + n))
            sh("ip", "-n", mag, "route", "add", LMA4, "via", la, "dev", f"m{n}", "table",
               str(100 + n))
        resp = subprocess.Popen(["ip", "netns", "exec", lma, sys.executable, __file__,
                                 "--responder", log])
        resp4 = subprocess.Popen(["ip", "netns", "exec", lma, "/usr/bin/python3", __file__,
                                  "--udp-responder", log4])
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

        # --deregister-at-end when SIGTERM ends the hold: the de-registration still goes out.
        p = subprocess.Popen(base + ["register", "--lma", "2001:db8:1::1", "--nai",
                                     "cpe2@example.net", "--mag-id", "mag1@example.net",
                                     "--access", "dsl:2001:db8:1::2:1", "--hold", "60",
                                     "--deregister-at-end"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def cpe2(lifetime0):
            return [x for x in (json.loads(l) for l in open(log))
                    if x.get("nai") == "cpe2@example.net" and "heartbeat" not in x
                    and not x.get("dropped") and (x["lifetime"] == 0) == lifetime0]
        deadline = time.monotonic() + 20
        while not cpe2(False) and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.1)
        check(bool(cpe2(False)), "SIGTERM case: registered")
        time.sleep(0.3)  # the PBA is in
        p.send_signal(signal.SIGTERM)
        try:
            out, err = p.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        print(out, err)
        check(p.returncode == 0 and "stop requested: de-registering" in out
              and "de-registration: accepted" in out,
              f"SIGTERM case: exit 0 after de-registering (exit {p.returncode})")
        dr = cpe2(True)
        check(len(dr) == 1 and dr[0]["src"] == "2001:db8:1::2" and dr[0]["bid"] == 1,
              "SIGTERM case: one PBU with lifetime 0 from the access's CoA")

        # IPv4 transport (UDP 5436) against the scapy LMA.
        r = subprocess.run(base + ["register", "--lma", "2001:db8:1::1", "--lma", LMA4,
                                   "--nai", NAI, "--mag-id", "mag1@example.net",
                                   "--access", f"lte:{MAG4_LTE}:2", "--access", "dsl4:m1:1",
                                   "--lifetime", "8", "--hold", "9", "--heartbeat", "1",
                                   "--deregister-at-end"],
                           capture_output=True, text=True, timeout=90)
        print(r.stdout, r.stderr)
        out = r.stdout.splitlines()
        check(r.returncode == 0, "IPv4: register exit 0 (a revocation is no failure)")
        check(any(l.startswith(f"access lte bid=2 coa={MAG4_LTE} registration: accepted (0) "
                               "hnp=2001:db8:88::/64 uplink-gre-key=0x00000202") for l in out),
              "IPv4: literal IPv4 CoA registered over UDP")
        check(any(l.startswith(f"access dsl bid=1 coa={MAG4_DSL} registration: accepted (0)")
                  for l in out), "IPv4: dsl4:m1 used m1's IPv4 address")
        check(f"access lte bid=2: dropped UDP datagram from {LMA4}:5436: bad mobility header "
              "checksum" in out, "IPv4: PBA with a bad checksum dropped with a message")
        check(out.count("access dsl bid=1 revoked by LMA (trigger 1)") == 1,
              "IPv4: revocation printed once")
        lost = [i for i, l in enumerate(out)
                if l == "access lte bid=2: LMA not responding to heartbeats"]
        back = [i for i, l in enumerate(out) if l == "access lte bid=2: LMA reachable again"]
        check(len(lost) == 1 and len(back) == 1 and lost[0] < back[0],
              "IPv4: unreachable after 3 missed heartbeats, then reachable again")
        check(not any("dsl bid=1" in l and "heartbeats" in l for l in out),
              "IPv4: answered access never reported unreachable")

        ev = [json.loads(l) for l in open(log4)]
        check(not [e for e in ev if e["kind"] in ("bad", "other")],
              "IPv4: every datagram from magsim has the hag framing and a valid MH checksum")
        pbus = [e for e in ev if e["kind"] == "pbu"]
        check(all(e["proxy"] and e["nai"] == NAI and e["coa4"] == e["src"] for e in pbus)
              and len(pbus) >= 2, "IPv4: PBUs carry P, the NAI and the IPv4 CoA option")
        lte = [e for e in pbus if e["src"] == MAG4_LTE]
        check([(e["lifetime"] > 0, e["hi"]) for e in lte] == [(True, 1), (True, 5), (False, 1)]
              and all(e["bid"] == 2 for e in lte),
              "IPv4: lte registered, re-registered (HI 5), de-registered")
        bri = [e for e in ev if e["kind"] == "bri"]
        bra = [e for e in ev if e["kind"] == "bra"]
        check(len(bri) == 1 and len(bra) == 1, "IPv4: one BRI, one BRA")
        if bri and bra:
            a = bra[0]
            check(a["src"] == MAG4_DSL and a["sport"] == bri[0]["dport"] and a["br_type"] == 2
                  and a["seq"] == bri[0]["seq"] and a["status"] == 0 and a["flags"] & 0x80
                  and a["nai"] == NAI,
                  "IPv4: BRA from the revoked access: same sequence, status 0, P, MN-ID echoed")
            after = ev[ev.index(a) + 1:]
            check(not [e for e in after if e.get("src") == MAG4_DSL],
                  "IPv4: nothing more from the revoked access (no heartbeat, PBU)")
            check(len([e for e in pbus if e["src"] == MAG4_DSL]) == 1,
                  "IPv4: revoked access neither re-registered nor de-registered")
        hbs = [e for e in ev if e["kind"] == "heartbeat" and e["src"] == MAG4_LTE]
        check(len(hbs) >= 5 and all(e["flags"] == 0 for e in hbs),
              "IPv4: heartbeat requests over UDP")
    finally:
        for p in (resp, resp4):
            if p:
                p.terminate()
                p.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", lma])
        subprocess.run(["ip", "netns", "del", mag])
        for f in (log, log4):
            if os.path.exists(f):
                os.unlink(f)
    return 1 if failures else 0


sys.exit(main())
