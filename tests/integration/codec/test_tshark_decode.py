#!/usr/bin/python3
"""hag-mhdump's sample PBU/PBA exchange, written as a pcap, dissected by tshark (an independent
decoder): no malformed packets or expert errors, and the fields tshark knows match the sample.

Usage: test_tshark_decode.py PATH_TO_HAG_MHDUMP   (or HAG_MHDUMP in the environment)
Exits 77 (skipped) when tshark is not installed. tshark 4.0 does not dissect options 44, 45, 63
and 64: they must show up as unknown options, not as malformed ones.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

MHDUMP = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("HAG_MHDUMP", "")
failures = []

# What `hag-mhdump sample` puts on the wire (docs/tools-mhdump.md).
EXPECTED = [
    # (mh type, sequence, lifetime, flags set, status, GRE key, BID, HI, ATT)
    (5, 1, 900, {"a", "p", "t"}, None, 0x00001001, 1, 1, 3),
    (6, 1, 900, {"p", "t"}, 0, 0x00002001, 1, 1, 3),
    (5, 2, 900, {"a", "p", "t"}, None, 0x00001002, 2, 1, 8),
    (6, 2, 900, {"p", "t"}, 0, 0x00002002, 2, 1, 8),
]
NAI = "cpe-0001@hag.example"


def check(what, got, want):
    if got != want:
        failures.append(f"{what}: got {got!r}, want {want!r}")


SEVERITY_WARNING = 0x00600000  # epan/proto.h PI_WARN; PI_ERROR is 0x00800000, PI_NOTE 0x00400000


def severities(node):
    """All _ws.expert.severity values anywhere in a tshark JSON tree."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "_ws.expert.severity":
                yield v
            else:
                yield from severities(v)
    elif isinstance(node, list):
        for v in node:
            yield from severities(v)


def tshark(*args):
    # tshark warns when run as root but reads files fine; -o avoids loading user preferences.
    env = dict(os.environ, WIRESHARK_RUN_FROM_BUILD_DIRECTORY="0")
    out = subprocess.run(["tshark", "-n", *args], capture_output=True, text=True, timeout=120,
                         env=env)
    if out.returncode != 0:
        sys.exit(f"tshark {' '.join(args)} failed ({out.returncode}): {out.stderr}")
    return out.stdout


def check_checksums_with_scapy(pcap):
    """tshark does not verify the MH checksum: scapy recomputes it over the pseudo-header."""
    import logging
    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
    from scapy.layers.inet6 import IPv6, in6_chksum
    from scapy.utils import rdpcap
    for i, p in enumerate(rdpcap(pcap)):
        ip = p[IPv6]
        mh = bytes(ip.payload)
        check(f"#{i} MH checksum verifies", in6_chksum(135, ip, mh), 0)
        check(f"#{i} hop limit", ip.hlim, 64)


def main():
    if shutil.which("tshark") is None:
        print("tshark not installed: skipped")
        return 77
    if not MHDUMP or not os.access(MHDUMP, os.X_OK):
        sys.exit(f"hag-mhdump not found: pass its path as argument ({MHDUMP!r})")
    with tempfile.TemporaryDirectory(prefix="hag-tshark-") as tmp:
        pcap = os.path.join(tmp, "sample.pcap")
        subprocess.run([MHDUMP, "pcap", pcap], check=True, timeout=30)

        verbose = tshark("-r", pcap, "-V")
        # Undissected options (63, 64) are expert *notes* ("IE data not dissected yet"): allowed.
        for bad in ("Malformed", "[Expert Info (Error", "[Expert Info (Warning"):
            if bad in verbose:
                lines = [ln for ln in verbose.splitlines() if bad in ln]
                failures.append(f"tshark -V reports {bad!r}: {lines[:3]}")
        # The Mobility Header is dissected inside the IPv6 tree ("    Mobile IPv6" on its own line).
        mh_trees = [ln for ln in verbose.splitlines() if ln.strip() == "Mobile IPv6"]
        check("Mobility Header trees", len(mh_trees), len(EXPECTED))

        fields = ["mip6.mhtype", "mip6.bu.seqnr", "mip6.ba.seqnr", "mip6.bu.lifetime",
                  "mip6.ba.lifetime", "mip6.bu.a_flag", "mip6.bu.p_flag", "mip6.bu.t_flag",
                  "mip6.bu.h_flag", "mip6.ba.p_flag", "mip6.ba.t_flag", "mip6.ba.k_flag",
                  "mip6.ba.status", "mip6.gre_key", "mip6.bi.bid", "mip6.hi", "mip6.att",
                  "mip6.mnid.identifier", "ipv6.nxt"]
        args = ["-r", pcap, "-T", "fields", "-E", "separator=|", "-E", "occurrence=f"]
        for f in fields:
            args += ["-e", f]
        rows = [ln.split("|") for ln in tshark(*args).splitlines()]
        check("packets", len(rows), len(EXPECTED))
        for i, (row, exp) in enumerate(zip(rows, EXPECTED)):
            v = dict(zip(fields, row))
            mh, seq, life, flags, status, key, bid, hi, att = exp
            check(f"#{i} next header", v["ipv6.nxt"], "135")
            check(f"#{i} mh type", v["mip6.mhtype"], str(mh))
            kind = "bu" if mh == 5 else "ba"
            check(f"#{i} sequence", v[f"mip6.{kind}.seqnr"], str(seq))
            check(f"#{i} lifetime", v[f"mip6.{kind}.lifetime"], str(life))
            for flag in ("a", "p", "t", "h") if kind == "bu" else ("p", "t", "k"):
                want = "1" if flag in flags else "0"
                got = v[f"mip6.{kind}.{flag}_flag"]
                check(f"#{i} flag {flag}", "1" if got in ("1", "True") else "0", want)
            if status is not None:
                check(f"#{i} status", v["mip6.ba.status"], str(status))
            check(f"#{i} GRE key", int(v["mip6.gre_key"], 0), key)
            check(f"#{i} BID", v["mip6.bi.bid"], str(bid))
            check(f"#{i} HI", v["mip6.hi"], str(hi))
            check(f"#{i} ATT", v["mip6.att"], str(att))
            check(f"#{i} MN-ID", v["mip6.mnid.identifier"], NAI)

        # JSON output: every packet parses as JSON and has a mip6 layer.
        packets = json.loads(tshark("-r", pcap, "-T", "json"))
        check("json packets", len(packets), len(EXPECTED))
        for i, p in enumerate(packets):
            layers = p["_source"]["layers"]
            if "mipv6" not in layers.get("ipv6", {}):
                failures.append(f"#{i}: no mipv6 tree under ipv6 in tshark JSON")
            if "_ws.malformed" in json.dumps(layers):
                failures.append(f"#{i}: tshark JSON has a malformed entry")
            bad = [s for s in severities(layers) if int(s) >= SEVERITY_WARNING]
            if bad:
                failures.append(f"#{i}: tshark JSON has expert warnings/errors {bad}")

        check_checksums_with_scapy(pcap)

    for f in failures:
        print("FAIL:", f)
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
