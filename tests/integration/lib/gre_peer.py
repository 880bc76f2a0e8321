#!/usr/bin/python3
"""A userspace GRE tunnel endpoint: the home router's side of a hag tunnel, for tests.

This machine's kernel has no gre/ip6gre devices, so the independent GRE peer is this program:
a TUN device carries the inner packets, a raw IPv6 socket (protocol 47) carries GRE (RFC 2784 /
2890) with a key and sequence numbers. Nothing here comes from hag's code.

On SIGTERM or SIGINT it writes its counters as JSON to --stats and exits.
"""
import argparse
import fcntl
import ipaddress
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tun", required=True)
    ap.add_argument("--tun-addr", action="append", default=[], help="address/len on the TUN")
    ap.add_argument("--route", action="append", default=[], help="prefix routed into the TUN")
    ap.add_argument("--local", required=True, help="our tunnel (care-of) address")
    ap.add_argument("--remote", required=True, help="the gateway's tunnel address")
    ap.add_argument("--out-key", type=lambda s: int(s, 0), help="key we stamp (uplink)")
    ap.add_argument("--in-key", type=lambda s: int(s, 0), help="key we expect (downlink)")
    ap.add_argument("--no-seq", action="store_true", help="send without sequence numbers")
    ap.add_argument("--mtu", type=int, default=1400, help="MTU of the TUN")
    ap.add_argument("--stats", required=True)
    a = ap.parse_args()

    tun = open_tun(a.tun)
    # No link-local address on the TUN: router solicitations and MLD reports from it would be
    # tunnelled with a source outside the subscriber's prefixes.
    subprocess.run(["sysctl", "-qw", f"net.ipv6.conf.{a.tun}.addr_gen_mode=1"], check=True)
    for addr in a.tun_addr:
        extra = ["nodad"] if ":" in addr else []
        subprocess.run(["ip", "addr", "add", addr, "dev", a.tun] + extra, check=True)
    subprocess.run(["ip", "link", "set", a.tun, "up", "mtu", str(a.mtu)], check=True)
    for r in a.route:
        subprocess.run(["ip", "route", "add", r, "dev", a.tun], check=True)

    raw = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 47)
    raw.bind((a.local, 0))
    stats = {"tx": 0, "rx": 0, "rx_bad_key": 0, "rx_no_key": 0, "rx_no_seq": 0,
             "rx_seq_backwards": 0, "rx_malformed": 0, "first_seq": None, "last_seq": None}
    seq = 0
    running = True

    def stop(*_):
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("gre_peer: ready", flush=True)
    while running:
        try:
            r, _, _ = select.select([tun, raw], [], [], 0.2)
        except InterruptedError:
            continue
        if tun in r:
            pkt = os.read(tun, 65535)
            proto = 0x0800 if pkt[0] >> 4 == 4 else 0x86DD
            flags = 0
            hdr = b""
            if a.out_key is not None:
                flags |= 0x2000
                hdr += struct.pack("!I", a.out_key)
            if not a.no_seq:
                flags |= 0x1000
                hdr += struct.pack("!I", seq)
                seq = (seq + 1) & 0xFFFFFFFF
            raw.sendto(struct.pack("!HH", flags, proto) + hdr + pkt, (a.remote, 0))
            stats["tx"] += 1
        if raw in r:
            data = raw.recv(65535)  # IPv6 raw sockets deliver the payload: GRE onward
            if len(data) < 4:
                stats["rx_malformed"] += 1
                continue
            flags, proto = struct.unpack("!HH", data[:4])
            off = 4
            if flags & 0x8000:
                off += 4
            key = None
            if flags & 0x2000:
                key = struct.unpack("!I", data[off:off + 4])[0]
                off += 4
            if flags & 0x1000:
                s = struct.unpack("!I", data[off:off + 4])[0]
                off += 4
                if stats["last_seq"] is not None and s <= stats["last_seq"]:
                    stats["rx_seq_backwards"] += 1
                if stats["first_seq"] is None:
                    stats["first_seq"] = s
                stats["last_seq"] = s
            else:
                stats["rx_no_seq"] += 1
            if key is None:
                stats["rx_no_key"] += 1
            elif a.in_key is not None and key != a.in_key:
                stats["rx_bad_key"] += 1
                continue
            if proto not in (0x0800, 0x86DD) or off > len(data):
                stats["rx_malformed"] += 1
                continue
            os.write(tun, data[off:])
            stats["rx"] += 1
    with open(a.stats, "w") as f:
        json.dump(stats, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
