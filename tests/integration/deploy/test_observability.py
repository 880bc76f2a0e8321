#!/usr/bin/python3
"""The Grafana dashboard and the Prometheus scrape example match what hag-dataplane exports.

- grafana-hag-dataplane.json parses, every panel has a query, panel ids are unique, and every
  hag_* metric name in a query is one the data plane really renders (the names are read from
  dataplane/telemetry/*.cpp, not listed here);
- every exported metric family is documented in docs/observability.md, and so is every DPDK
  telemetry command (/hag/...) the data plane registers;
- prometheus.yml scrapes /metrics on the port the examples' telemetry.metrics_listen uses.
usage: test_observability.py OBSERVABILITY_DIR TELEMETRY_SRC_DIR DOCS_DIR
"""
import glob
import json
import os
import re
import sys

OBS, SRC, DOCS = sys.argv[1:4]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


exported = set()
commands = set()
for path in glob.glob(os.path.join(SRC, "*.cpp")):
    text = open(path).read()
    exported |= set(re.findall(r'"(hag_[a-z0-9_]+)"', text))
    commands |= set(re.findall(r'rte_telemetry_register_cmd\(\s*"(/hag/[a-z_/]+)"', text))
check(len(exported) >= 20, f"metric names found in the telemetry sources ({len(exported)})")
check(len(commands) >= 3, f"telemetry commands found ({sorted(commands)})")

dash = json.load(open(os.path.join(OBS, "grafana-hag-dataplane.json")))
check(dash.get("title") and dash.get("uid") and isinstance(dash.get("panels"), list),
      "dashboard has title, uid, panels")
ids = [p["id"] for p in dash["panels"]]
check(len(ids) == len(set(ids)), "panel ids unique")
used = set()
for p in dash["panels"]:
    exprs = [t.get("expr", "") for t in p.get("targets", [])]
    check(exprs and all(exprs), f"panel '{p['title']}' has queries")
    for e in exprs:
        check(e.count("(") == e.count(")") and e.count("{") == e.count("}"),
              f"balanced brackets: {e}")
        used |= set(re.findall(r"\bhag_[a-z0-9_]+", e))
for v in dash.get("templating", {}).get("list", []):
    used |= set(re.findall(r"\bhag_[a-z0-9_]+", str(v.get("query", ""))))
unknown = sorted(used - exported)
check(not unknown, f"dashboard uses only exported metrics (unknown: {unknown})")
check(len(used) >= 10, f"dashboard covers the main families ({len(used)} used)")

doc = open(os.path.join(DOCS, "observability.md")).read()
undocumented = sorted(m for m in exported if m not in doc)
check(not undocumented, f"every metric documented in observability.md ({undocumented})")
missing_cmds = sorted(c for c in commands if c not in doc)
check(not missing_cmds, f"every /hag telemetry command documented ({missing_cmds})")

prom = open(os.path.join(OBS, "prometheus.yml")).read()
check("job_name: hag-dataplane" in prom and "metrics_path: /metrics" in prom,
      "prometheus.yml has the hag-dataplane job")
ports = set(re.findall(r'metrics_listen:\s*"[^"]*:(\d+)"',
                       "".join(open(f).read() for f in glob.glob(
                           os.path.join(OBS, "..", "*", "hag-dataplane.conf")))))
check(ports == {"9470"}, f"examples listen on 9470 ({ports})")
check('"127.0.0.1:9470"' in prom, "prometheus.yml scrapes 127.0.0.1:9470")
check("\t" not in prom, "no tabs in YAML")

if failures:
    print(f"{len(failures)} check(s) failed: {failures}")
    sys.exit(1)
print("all checks passed")
