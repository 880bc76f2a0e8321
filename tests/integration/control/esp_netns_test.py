#!/usr/bin/python3
"""ESP-protected signalling (RFC 4303 + RFC 4106 AES-GCM, transport mode) between a MAG and
hag-control, checked against an independent implementation: scapy's IPsec (root only).

hag-control (namespace gw, LMA 2001:db8:1::1) has a pair of static SAs with the MAG
2001:db8:1::2 (config `esp { peers { ... } }`). In namespace mag, scapy:
1. builds a PBU, encrypts it with scapy's SecurityAssociation and sends the ESP packet on a raw
   protocol-50 socket; the PBA comes back in ESP, scapy decrypts it (so hag's ESP and its
   AES-GCM are right by another implementation's reading), its MH checksum is right and its
   status is 0; the binding is in hagctl;
2. receives a heartbeat request from hag-control in ESP and decrypts it;
3. sends the same ESP packet again (replayed), one with a flipped octet (forged), one with an
   unknown SPI, and the PBU in plain MH (refused: ESP is required from a peer with SAs):
   no answer to any, each counted by its reason in `hagctl counters`.

usage: esp_netns_test.py HAG_CONTROL HAGCTL
"""
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
from netns import Topology, require_root, sh  # noqa: E402

LMA6, MAG6 = "2001:db8:1::1", "2001:db8:1::2"
KEY_IN = "0f1e2d3c4b5a69788796a5b4c3d2e1f0deadbeef"    # MAG -> LMA: AES-128 key + salt
KEY_OUT = "00112233445566778899aabbccddeeff01020304"   # LMA -> MAG
SPI_IN, SPI_OUT = 0x1001, 0x2001

CONFIG = """
log {{ level: "info" }}
lma_addresses: "{lma6}"
hnp_pools {{ name: "residential" prefix: "2001:db8:100::/40" assign_length: 64 }}
default_profile {{ multipath: true gre_key_required: true max_paths: 4 max_lifetime_seconds: 3600 }}
allow_unknown_subscribers: true
mags {{ mag_id: "scapy-mag@example.net" allowed_nai: "scapy*" }}
management_socket: "{tmp}/control.sock"
state_directory: "{tmp}/state"
heartbeat_interval_seconds: 1
esp {{
  peers {{ address: "{mag6}" spi_in: {spi_in} key_in: "{key_in}" spi_out: {spi_out}
          key_out: "{key_out}" }}
}}
"""

PEER = r"""
import json, logging, socket, struct, sys, time
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
sys.path.insert(0, sys.argv[1])
from lma_netns_test import scapy_pbu, mh_checksum, ba_options
from scapy.layers.inet6 import IPv6
from scapy.layers.ipsec import ESP, SecurityAssociation
from scapy.packet import Raw

LMA6, MAG6 = sys.argv[2], sys.argv[3]
out_sa = SecurityAssociation(ESP, spi=int(sys.argv[4]), crypt_algo="AES-GCM",
                             crypt_key=bytes.fromhex(sys.argv[5]), auth_algo="NULL")
in_sa = SecurityAssociation(ESP, spi=int(sys.argv[6]), crypt_algo="AES-GCM",
                            crypt_key=bytes.fromhex(sys.argv[7]), auth_algo="NULL")
res = {}
esp = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 50)
esp.bind((MAG6, 0)); esp.settimeout(0.5)

def protected(mh):
    pkt = IPv6(src=MAG6, dst=LMA6, nh=135) / Raw(mh)
    return bytes(out_sa.encrypt(pkt))[40:]

def receive(want_type, seconds=3.0):
    # The next ESP packet from the LMA, decrypted by scapy: (mh type, mh bytes, checksum ok).
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            data, src = esp.recvfrom(4096)
        except socket.timeout:
            continue
        clear = in_sa.decrypt(IPv6(src=LMA6, dst=MAG6, nh=50) / ESP(data))
        mh = bytes(clear.payload)
        if clear.nh != 135 or len(mh) < 6:
            continue
        if want_type is None or mh[2] == want_type:
            return mh[2], mh, mh_checksum(LMA6, MAG6, mh) == 0
    return None, b"", False

pbu = scapy_pbu("scapy1@example.net", "scapy-mag@example.net", 1, 8, 100)
pbu = pbu[:4] + struct.pack("!H", mh_checksum(MAG6, LMA6, pbu)) + pbu[6:]
first = protected(pbu)
esp.sendto(first, (LMA6, 0))
t, mh, ck = receive(6)
res["pba"] = {"type": t, "checksum_ok": ck}
if t == 6:
    status, opts, seq = ba_options(mh)
    res["pba"].update({"status": status, "seq": seq})
t, mh, ck = receive(13, 4)  # hag-control's heartbeat request, protected
res["heartbeat"] = {"type": t, "checksum_ok": ck}

def silent(what, data, proto=50):
    s = esp if proto == 50 else socket.socket(socket.AF_INET6, socket.SOCK_RAW, 135)
    if proto != 50:
        s.setsockopt(socket.IPPROTO_IPV6, 7, 4)  # IPV6_CHECKSUM: the kernel fills it
        s.bind((MAG6, 0))
    s.sendto(data, (LMA6, 0))
    t, _, _ = receive(6, 1.5)
    res[what] = t is None

silent("replayed_unanswered", first)
forged = bytearray(protected(pbu)); forged[20] ^= 0x40
silent("forged_unanswered", bytes(forged))
wrong = bytearray(protected(pbu)); wrong[0:4] = struct.pack("!I", 0x7777)
silent("unknown_spi_unanswered", bytes(wrong))
plain = scapy_pbu("scapy1@example.net", "scapy-mag@example.net", 1, 8, 105)
silent("plain_unanswered", plain, proto=135)
print(json.dumps(res), flush=True)
"""


def main():
    require_root()
    control, hagctl = sys.argv[1], sys.argv[2]
    topo = Topology("esp")
    failures = []

    def check(cond, what):
        print(("ok   " if cond else "FAIL ") + what, flush=True)
        if not cond:
            failures.append(what)

    try:
        gw, mag = topo.ns("gw"), topo.ns("mag")
        for ns in (gw, mag):
            for conf in ("all", "default"):
                sh("sysctl", "-qw", f"net.ipv6.conf.{conf}.accept_dad=0", ns=ns)
        topo.veth(gw, "eth0", mag, "eth0")
        sh("ip", "-6", "addr", "add", LMA6 + "/64", "dev", "eth0", "nodad", ns=gw)
        sh("ip", "-6", "addr", "add", MAG6 + "/64", "dev", "eth0", "nodad", ns=mag)
        tmp = topo.tmpdir("hag-esp-")
        conf = os.path.join(tmp, "control.conf")
        with open(conf, "w") as f:
            f.write(CONFIG.format(lma6=LMA6, mag6=MAG6, tmp=tmp, spi_in=SPI_IN, spi_out=SPI_OUT,
                                  key_in=KEY_IN, key_out=KEY_OUT))
        r = subprocess.run([control, "--check-config", "-c", conf], capture_output=True,
                           text=True)
        check(r.returncode == 0, f"hag-control --check-config accepts the ESP peer {r.stderr}")
        bad = conf + ".bad"
        with open(bad, "w") as f:
            f.write(CONFIG.format(lma6=LMA6, mag6=MAG6, tmp=tmp, spi_in=17, spi_out=SPI_OUT,
                                  key_in=KEY_IN[:-2], key_out=KEY_OUT))
        r = subprocess.run([control, "--check-config", "-c", bad], capture_output=True,
                           text=True)
        check(r.returncode != 0 and "spi_in: 17 is reserved" in r.stderr and
              "key_in" in r.stderr, f"a reserved SPI and a short key are refused at their "
              f"lines: {r.stderr.strip()[:300]}")
        log = os.path.join(tmp, "control.log")
        p = topo.spawn_logged(gw, log, control, "-c", conf)
        from netns import wait_for_file_line
        check(wait_for_file_line(log, "hag-control ready", 30, p) is not None,
              "hag-control starts with ESP")
        r = subprocess.run(["ip", "netns", "exec", mag, "/usr/bin/python3", "-c", PEER, HERE,
                            LMA6, MAG6, str(SPI_IN), KEY_IN, str(SPI_OUT), KEY_OUT],
                           capture_output=True, text=True, timeout=60)
        print(r.stderr[-2000:])
        res = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {}
        print("scapy peer:", res)
        pba = res.get("pba", {})
        check(pba.get("type") == 6 and pba.get("checksum_ok") and pba.get("status") == 0,
              f"PBU in ESP (scapy) -> PBA in ESP, decrypted by scapy, checksum right, "
              f"status 0: {pba}")
        check(res.get("heartbeat", {}).get("type") == 13 and res["heartbeat"]["checksum_ok"],
              "hag-control's heartbeat request comes in ESP too, decrypted by scapy")
        for k in ("replayed_unanswered", "forged_unanswered", "unknown_spi_unanswered",
                  "plain_unanswered"):
            check(res.get(k) is True, f"{k.replace('_', ' ')}")
        r = subprocess.run(["ip", "netns", "exec", gw, hagctl, "-s", f"unix:{tmp}/control.sock",
                            "-o", "json", "counters"], capture_output=True, text=True)
        c = {x["name"]: int(x["value"]) for x in json.loads(r.stdout)["counters"]}
        print({k: v for k, v in c.items() if k.startswith("signalling.")})
        check(c.get("signalling.rx_esp", 0) == 1, "one ESP packet received and opened (the PBU; "
              "the replayed, forged and unknown-SPI ones were not)")
        check(c.get("signalling.tx_esp", 0) >= 2, "ESP sent (PBA, heartbeat requests)")
        for k in ("rx_esp_replayed", "rx_esp_auth_failed", "rx_esp_unknown_spi",
                  "rx_esp_required"):
            check(c.get("signalling." + k, 0) >= 1, f"counted: signalling.{k}")
        r = subprocess.run(["ip", "netns", "exec", gw, hagctl, "-s", f"unix:{tmp}/control.sock",
                            "bindings", "show", "scapy1@example.net"], capture_output=True,
                           text=True)
        check(r.returncode == 0 and "scapy-mag@example.net" in r.stdout,
              "the binding registered over ESP is in the cache")
    finally:
        topo.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
