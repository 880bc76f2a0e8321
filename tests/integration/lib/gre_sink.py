#!/usr/bin/python3
"""Counts GRE packets (RFC 2784 / 2890) arriving for one or more local addresses, for tests.

One raw IPv6 socket (protocol 47) per --local address, each bound to it, so a packet is counted
at the care-of address it was sent to. Nothing is decapsulated or answered. Per address it
records the packets, the inner bytes, the keys seen and every sequence number in arrival order.
Prints "gre_sink: ready" when listening; on SIGTERM or SIGINT writes the JSON to --stats and exits.
"""
import argparse
import json
import select
import signal
import socket
import struct
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--local", action="append", required=True, help="care-of address to count")
    ap.add_argument("--stats", required=True)
    a = ap.parse_args()
    socks = {}
    for addr in a.local:
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 47)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)  # a busy host: do not drop
        s.bind((addr, 0))
        socks[s] = addr
    stats = {addr: {"packets": 0, "bytes": 0, "keys": [], "seqs": [], "malformed": 0}
             for addr in a.local}
    running = True

    def stop(*_):
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("gre_sink: ready", flush=True)
    while running:
        try:
            ready, _, _ = select.select(list(socks), [], [], 0.2)
        except InterruptedError:
            continue
        for s in ready:
            data = s.recv(65535)  # IPv6 raw sockets deliver the payload: GRE onward
            st = stats[socks[s]]
            if len(data) < 4:
                st["malformed"] += 1
                continue
            flags, _ = struct.unpack("!HH", data[:4])
            off = 4 + (4 if flags & 0x8000 else 0)
            if flags & 0x2000:
                if len(data) < off + 4:
                    st["malformed"] += 1
                    continue
                key = struct.unpack("!I", data[off:off + 4])[0]
                if key not in st["keys"]:
                    st["keys"].append(key)
                off += 4
            if flags & 0x1000:
                if len(data) < off + 4:
                    st["malformed"] += 1
                    continue
                st["seqs"].append(struct.unpack("!I", data[off:off + 4])[0])
                off += 4
            st["packets"] += 1
            st["bytes"] += len(data) - off
    with open(a.stats, "w") as f:
        json.dump(stats, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
