#!/usr/bin/python3
"""Generates docs/config-reference.md from proto/hag/v1/config.proto.

  config_reference.py CONFIG_PROTO                  print the reference on stdout
  config_reference.py CONFIG_PROTO --output FILE    write it
  config_reference.py CONFIG_PROTO --check FILE     exit 1 when FILE differs (stale)

The .proto comments are the documentation: a comment block right above a message, enum or field
describes it, and so does a `//` comment at the end of the field's line. Section banners
(`// ----` lines around a title) become headings. Whatever fields, messages, enums, oneofs,
maps or reserved ranges the file has are listed; nothing here knows the schema's field names.
Regenerate with: ninja -C build config-reference
"""
import argparse
import difflib
import re
import sys

FIELD_RE = re.compile(
    r"^(?:(repeated|optional)\s+)?(map\s*<\s*[\w.]+\s*,\s*[\w.]+\s*>|[\w.]+)\s+(\w+)\s*=\s*(\d+)"
    r"\s*(?:\[[^\]]*\])?\s*;")
ENUM_VALUE_RE = re.compile(r"^(\w+)\s*=\s*(-?\d+)\s*(?:\[[^\]]*\])?\s*;")
SCALARS = {"double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64",
           "fixed32", "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes"}


class Node:
    def __init__(self, kind, name, doc, parent=None):
        self.kind, self.name, self.doc, self.parent = kind, name, doc, parent
        self.items = []      # fields / enum values, in file order
        self.children = []   # nested messages and enums
        self.reserved = []
        self.section = None

    @property
    def full(self):
        return f"{self.parent.full}.{self.name}" if self.parent and self.parent.kind != "file" \
            else self.name


def split_comment(line):
    """(code, trailing comment) of one line; // inside strings is not expected in a schema."""
    if "//" in line:
        i = line.index("//")
        return line[:i].rstrip(), line[i + 2:].strip()
    return line.rstrip(), None


def parse(text):
    root = Node("file", "", [])
    stack = [root]
    pending = []       # comment lines above the next declaration
    section = None
    banner = False
    oneof = None
    shared = None      # field whose leading comment also covers the fields right below it
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            pending = []
            shared = None
            continue
        if line.startswith("//"):
            body = line[2:].strip()
            if re.fullmatch(r"-{10,}", body) and stack[-1] is root:
                banner = not banner  # opening or closing line of a section banner
                pending = []
                continue
            if banner:
                section = body
                continue
            pending.append(body)
            continue
        banner = False
        code, trailing = split_comment(line)
        doc = pending + ([trailing] if trailing else [])
        pending = []
        m = re.match(r"^(message|enum)\s+(\w+)\s*\{", code)
        if m:
            n = Node(m.group(1), m.group(2), doc, stack[-1])
            n.section = section
            stack[-1].children.append(n)
            stack.append(n)
            continue
        m = re.match(r"^oneof\s+(\w+)\s*\{", code)
        if m:
            oneof = (m.group(1), " ".join(doc))
            continue
        if code.startswith("}"):
            if oneof:
                oneof = None
            elif len(stack) > 1:
                stack.pop()
            continue
        if code.startswith("reserved"):
            stack[-1].reserved.append(code[len("reserved"):].strip().rstrip(";").strip())
            continue
        if re.match(r"^(syntax|package|import|option)\b", code):
            continue
        cur = stack[-1]
        if cur.kind == "enum":
            m = ENUM_VALUE_RE.match(code)
            if m:
                cur.items.append({"name": m.group(1), "number": int(m.group(2)), "doc": doc})
            continue
        m = FIELD_RE.match(code)
        if m and cur.kind == "message":
            # An undocumented field right below a documented sibling of the same type and name
            # stem (next_hop_ipv6 / next_hop_ipv4) shares its comment.
            stem = m.group(3).rsplit("_", 1)[0] if "_" in m.group(3) else None
            if doc and not trailing:
                shared = (m.group(3), m.group(2), stem)
            elif not doc and shared and shared[1:] == (m.group(2), stem) and stem:
                doc = [f"(as `{shared[0]}`)"]
            else:
                shared = None
            cur.items.append({"label": m.group(1) or "", "type": re.sub(r"\s+", "", m.group(2)),
                              "name": m.group(3), "number": int(m.group(4)), "doc": doc,
                              "oneof": oneof})
    return root


def all_nodes(node):
    for c in node.children:
        yield c
        yield from all_nodes(c)


def anchor(name):
    return name.lower().replace(".", "")


def md(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace(
        "|", "\\|")


def type_cell(item, known):
    t = item["type"]
    if t.startswith("map<"):
        shown = t.replace("<", "&lt;").replace(">", "&gt;")
    elif t in SCALARS:
        shown = t
    else:
        target = known.get(t) or known.get(t.split(".")[-1])
        shown = f"[{t}](#{anchor(target)})" if target else t
    if item["label"] == "repeated":
        shown = "repeated " + shown
    elif item["label"] == "optional":
        shown = "optional " + shown
    return shown


def render(root, source):
    nodes = list(all_nodes(root))
    known = {}
    for n in nodes:
        known[n.full] = n.full
        known.setdefault(n.name, n.full)
    out = [
        "# Configuration reference",
        "",
        f"Generated from `{source}` by `tools/lib/config_reference.py` — do not edit by hand;",
        "run `ninja -C build config-reference` after changing the schema (the test",
        "`deploy-config-reference` fails while this file is stale).",
        "",
        "Both daemons read protobuf text format: `hag-control` a `ControlConfig`",
        "(default `/etc/hag/control.conf`), `hag-dataplane` a `DataplaneConfig` (default",
        "`/etc/hag/dataplane.conf`). Unknown or invalid fields are errors with file:line; check a",
        "file without starting anything with `hag-control --check-config -c FILE` or",
        "`hag-dataplane --check-config -c FILE`. Annotated examples: [examples/](examples/)",
        "(docs/deployment.md says which to start from).",
        "",
        "Scalars left out take the default given in the description (proto3: 0, \"\" and false",
        "otherwise); `optional` marks fields whose absence differs from zero.",
        "",
        "## Contents",
        "",
    ]
    section = None
    for n in nodes:
        if n.parent is root:
            if n.section != section and n.section:
                out.append(f"- {n.section}")
                section = n.section
            out.append(f"  - [{n.full}](#{anchor(n.full)})" if section else
                       f"- [{n.full}](#{anchor(n.full)})")
    section = None
    for n in nodes:
        if n.parent is root and n.section != section and n.section:
            out += ["", f"## {n.section}"]
            section = n.section
        out += ["", f"### {n.full}", ""]
        if n.doc:
            out += [" ".join(n.doc), ""]
        if n.kind == "enum":
            out += ["| value | number | description |", "|---|---|---|"]
            for v in n.items:
                out.append(f"| `{v['name']}` | {v['number']} | {md(' '.join(v['doc']))} |")
        else:
            if not n.items:
                out.append("No fields.")
            else:
                out += ["| field | type | number | description |", "|---|---|---|---|"]
                for f in n.items:
                    d = " ".join(f["doc"])
                    if f["oneof"]:
                        name, odoc = f["oneof"]
                        d = f"(one of `{name}`{': ' + odoc if odoc else ''}) {d}".strip()
                    out.append(f"| `{f['name']}` | {type_cell(f, known)} | {f['number']} | "
                               f"{md(d)} |")
        if n.reserved:
            out += ["", "Reserved: " + "; ".join(f"`{r}`" for r in n.reserved)]
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("proto")
    ap.add_argument("--output")
    ap.add_argument("--check", metavar="FILE")
    ap.add_argument("--source-name", default="proto/hag/v1/config.proto")
    a = ap.parse_args()
    with open(a.proto) as f:
        doc = render(parse(f.read()), a.source_name)
    if a.check:
        try:
            with open(a.check) as f:
                have = f.read()
        except OSError as e:
            print(f"{a.check}: {e}", file=sys.stderr)
            return 1
        if have != doc:
            sys.stdout.writelines(difflib.unified_diff(
                have.splitlines(True), doc.splitlines(True), a.check, "generated"))
            print(f"{a.check} is stale: regenerate it with `ninja -C build config-reference` "
                  f"(or tools/lib/config_reference.py {a.source_name} --output {a.check})",
                  file=sys.stderr)
            return 1
        print(f"{a.check} is up to date")
        return 0
    if a.output:
        with open(a.output, "w") as f:
            f.write(doc)
    else:
        sys.stdout.write(doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
