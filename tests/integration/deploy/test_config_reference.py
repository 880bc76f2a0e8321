#!/usr/bin/python3
"""docs/config-reference.md is current, and the generator copes with any schema.

1. The generator's output for proto/hag/v1/config.proto equals docs/config-reference.md (fails
   while the doc is stale: regenerate with `ninja -C build config-reference`).
2. Every field of every message of the real schema appears in the reference (by number).
3. A schema with constructs config.proto does not use yet (oneof, map, reserved, nested
   message and enum, a field added later) is rendered with all of them, and --check reports a
   stale file with exit 1.
usage: test_config_reference.py GENERATOR CONFIG_PROTO REFERENCE_MD
"""
import os
import re
import subprocess
import sys
import tempfile

GEN, PROTO, DOC = sys.argv[1:4]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def gen(*args):
    return subprocess.run([sys.executable, GEN, *args], capture_output=True, text=True,
                          timeout=60)


p = gen(PROTO, "--check", DOC)
sys.stdout.write(p.stdout[-4000:])
check(p.returncode == 0, f"{DOC} is current ({p.stderr.strip()})")

doc = open(DOC).read()
message = None
numbers = {}
for line in open(PROTO):
    m = re.match(r"^\s*message\s+(\w+)", line)
    if m:
        message = m.group(1)
    m = re.match(r"^\s*(?:repeated\s+|optional\s+)?(?:map<[^>]*>|[\w.]+)\s+(\w+)\s*=\s*(\d+)\s*;",
                 line)
    if m and message:
        numbers.setdefault(message, []).append((m.group(1), m.group(2)))
missing = [f"{msg}.{f}" for msg, fs in numbers.items() for f, n in fs
           if not re.search(rf"^\| `{f}` \| .* \| {n} \|", doc, re.M)]
check(not missing and sum(len(v) for v in numbers.values()) > 20,
      f"every field of the schema is in the reference (missing: {missing})")
for top in ("ControlConfig", "DataplaneConfig"):
    check(f"### {top}" in doc, f"{top} has a section")

SYNTHETIC = """
syntax = "proto3";
package hag.v1;

// ---------------------------------------------------------------------------------------------
// hag-control
// ---------------------------------------------------------------------------------------------

// The root.
message ControlConfig {
  reserved 30 to 34;
  string name = 1;  // a name
  // Where it goes.
  oneof target {
    string path = 2;
    uint32 port = 3;
  }
  map<string, uint32> weights = 4;  // per access
  Inner inner = 5;
  repeated Inner.Colour colours = 6;

  // The peer's address.
  string peer_ipv6 = 7;
  string peer_ipv4 = 8;
  uint32 peer_port = 9;             // default "<none>" & more
  optional bool persist = 35;       // added by someone else later
  message Inner {
    enum Colour {
      COLOUR_UNSPECIFIED = 0;
      RED = 1;    // DSL
      BLUE = 2;   // LTE
    }
    Colour colour = 1;
  }
}
"""
with tempfile.TemporaryDirectory(prefix="hag-cfgref-") as tmp:
    proto = os.path.join(tmp, "s.proto")
    with open(proto, "w") as f:
        f.write(SYNTHETIC)
    p = gen(proto)
    out = p.stdout
    print(out)
    check(p.returncode == 0, "synthetic schema renders")
    check("## hag-control" in out and "### ControlConfig" in out and "The root." in out,
          "section banner and message doc")
    check("| `path` | string | 2 | (one of `target`: Where it goes.) |" in out, "oneof field")
    check("map&lt;string,uint32&gt;" in out and "| 4 | per access |" in out, "map field")
    check("Reserved: `30 to 34`" in out, "reserved range")
    check("| `peer_ipv4` | string | 8 | (as `peer_ipv6`) |" in out,
          "an undocumented sibling shares the comment above it")
    check("| `peer_port` | uint32 | 9 | default \"&lt;none&gt;\" &amp; more |" in out,
          "HTML special characters escaped")
    check("| `persist` | optional bool | 35 | added by someone else later |" in out,
          "a field added later")
    check("### ControlConfig.Inner" in out and "### ControlConfig.Inner.Colour" in out and
          "| `BLUE` | 2 | LTE |" in out, "nested message and enum")
    check("| `inner` | [Inner](#controlconfiginner) | 5 |" in out, "message-typed field links")
    check("repeated [Inner.Colour](#controlconfiginnercolour)" in out,
          "qualified nested type links")
    stale = os.path.join(tmp, "ref.md")
    with open(stale, "w") as f:
        f.write(out.replace("per access", "per access (edited)"))
    p = gen(proto, "--check", stale)
    check(p.returncode == 1 and "stale" in p.stderr and "config-reference" in p.stderr,
          "--check: a stale file fails with how to regenerate")

if failures:
    print(f"{len(failures)} check(s) failed: {failures}")
    sys.exit(1)
print("all checks passed")
