#!/usr/bin/python3
"""pktgen-lua-syntax: every tools/pktgen/*.lua parses (luac5.4 -p). pktgen-dpdk itself is not
packaged by Debian, so the scripts' pktgen calls are not exercised here (tools/pktgen/README.md).

usage: test_pktgen_lua.py LUAC DIR
"""
import glob
import os
import shutil
import subprocess
import sys

luac, d = sys.argv[1], sys.argv[2]
if not shutil.which(luac):
    print(f"FAIL: {luac} not found (Debian package lua5.4, in tools/quickstart's PACKAGES)")
    sys.exit(1)
scripts = sorted(glob.glob(os.path.join(d, "*.lua")))
if len(scripts) < 3:
    print(f"FAIL: expected downlink.lua, uplink.lua and hag_common.lua in {d}: {scripts}")
    sys.exit(1)
for s in scripts:
    r = subprocess.run([luac, "-p", s], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"FAIL: {s}: {r.stderr}")
        sys.exit(1)
print("pktgen scripts parse:", ", ".join(os.path.basename(s) for s in scripts))
