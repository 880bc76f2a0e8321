#!/usr/bin/python3
"""hag-dataplane's counters are readable while it forwards, and they match the traffic sent.

Same topology as test_gre_forwarding.py (core host, gateway running hag-dataplane on
net_af_packet, home router with the userspace GRE peer). While UDP crosses both ways, the test
reads the Prometheus endpoint (HTTP on the gateway's loopback) and the DPDK telemetry socket
(/hag/... commands, spoken here with a plain SOCK_SEQPACKET client, not DPDK's script), and
checks: counters only grow while traffic runs; per-session, per-path and per-stage deltas equal
the packets and inner bytes sent; both interfaces and the exit JSON agree; the HTTP server
answers garbage with 4xx and keeps serving; --stats-interval logs its summary line.
"""
import json
import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from netns import Topology, require_root, sh, wait_for_line  # noqa: E402

DATAPLANE, GRE_PEER = sys.argv[1], sys.argv[2]
UPLINK_KEY, DOWNLINK_KEY = 0x1001, 0x2002
METRICS_PORT = 9470
N = 300            # datagrams each way
PAYLOAD = 700      # UDP payload bytes
INNER = 40 + 8 + PAYLOAD  # inner IPv6 packet bytes, what hag's byte counters count

# Runs inside the gateway namespace: HTTP requests to the metrics endpoint. argv: a JSON list of
# raw requests (strings); prints a JSON list of raw answers.
HTTP_CLIENT = r"""
import json, socket, sys
out = []
for req in json.loads(sys.argv[1]):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=10)
    try:
        s.sendall(req.encode("latin-1"))
        data = b""
        while True:
            d = s.recv(65536)
            if not d: break
            data += d
    except OSError as e:
        data = ("ERROR " + str(e)).encode()
    s.close()
    out.append(data.decode("latin-1"))
print(json.dumps(out))
"""


class Telemetry:
    """A DPDK telemetry v2 client: SOCK_SEQPACKET, one JSON answer per command."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.s.settimeout(10)
        self.s.connect(path)
        self.info = json.loads(self.s.recv(16384).decode())

    def __call__(self, cmd):
        self.s.send(cmd.encode())
        return json.loads(self.s.recv(1 << 16).decode())[cmd.split(",")[0]]


def http(gw, requests):
    out = subprocess.run(["ip", "netns", "exec", gw, "/usr/bin/python3", "-c", HTTP_CLIENT,
                          json.dumps(requests), str(METRICS_PORT)],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return json.loads(out)


def scrape(gw):
    answer = http(gw, ["GET /metrics HTTP/1.0\r\n\r\n"])[0]
    head, _, body = answer.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.0 200"), head
    return parse_prometheus(body)


def parse_prometheus(text):
    """{(name, frozenset(labels)): value}; checks every family has HELP and TYPE first."""
    metrics, typed = {}, set()
    line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
    label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("#") or not line:
            continue
        m = line_re.match(line)
        assert m, f"not exposition format: {line!r}"
        assert m.group(1) in typed, f"sample before its # TYPE: {line!r}"
        labels = frozenset(label_re.findall(m.group(2) or ""))
        metrics[(m.group(1), labels)] = float(m.group(3))
    return metrics


def value(metrics, name, **labels):
    return metrics.get((name, frozenset(labels.items())), None)


def main():
    require_root()
    topo = Topology("dpt")
    core, gw, cpe = topo.ns("core"), topo.ns("gw"), topo.ns("cpe")
    core_host_mac, gw_core_mac = topo.veth(core, "eth0", gw, "core0")
    cpe_mac, gw_access_mac = topo.veth(cpe, "eth0", gw, "acc0")
    sh("ip", "-6", "addr", "add", "2001:db8:9999::1/64", "dev", "eth0", "nodad", ns=core)
    sh("ip", "-6", "route", "add", "2001:db8:1::/64", "via", "2001:db8:9999::fe", ns=core)
    sh("ip", "-6", "neigh", "add", "2001:db8:9999::fe", "lladdr", gw_core_mac, "dev", "eth0", ns=core)
    sh("ip", "-6", "addr", "add", "2001:db8:aaaa::1/64", "dev", "eth0", "nodad", ns=cpe)
    sh("ip", "-6", "route", "add", "2001:db8:ff::1/128", "dev", "eth0", ns=cpe)
    sh("ip", "-6", "neigh", "add", "2001:db8:ff::1", "lladdr", gw_access_mac, "dev", "eth0", ns=cpe)

    tmp = topo.tmpdir("hag-it-")
    prefix = f"hag-itt-{os.getpid()}"
    conf = os.path.join(tmp, "dataplane.conf")
    with open(conf, "w") as f:
        f.write(f"""
log {{ level: "info" }}
eal_args: ["--no-huge", "--no-pci", "-m", "512", "--file-prefix", "{prefix}",
           "-l", "0-1", "--log-level", "lib.*:warning"]
ports {{ name: "core" device: "net_af_packet0,iface=core0" role: CORE next_hop_mac: "{core_host_mac}" }}
ports {{ name: "access" device: "net_af_packet1,iface=acc0" role: ACCESS }}
mbufs: 8191
max_sessions: 1024
programmer_listen: "unix:{tmp}/programmer.sock"
idle_sleep_us: 20
telemetry {{ metrics_listen: "127.0.0.1:{METRICS_PORT}" }}
sessions {{
  id: 1 uplink_key: {UPLINK_KEY} prefixes: "2001:db8:1::/64"
  paths {{ bid: 1 local: "2001:db8:ff::1" care_of: "2001:db8:aaaa::1" downlink_key: {DOWNLINK_KEY}
          port: "access" next_hop_mac: "{cpe_mac}" }}
}}
""")
    log_path = os.path.join(tmp, "dataplane.log")
    log = open(log_path, "w")
    dp = subprocess.Popen(["ip", "netns", "exec", gw, DATAPLANE, "-c", conf, "--stats-interval", "1"],
                          stdout=subprocess.PIPE, stderr=log, text=True)
    topo.procs.append(dp)
    assert wait_for_line(dp, "ready", 60), "hag-dataplane did not start"
    peer = topo.spawn(cpe, GRE_PEER, "--tun", "hagtun", "--tun-addr", "2001:db8:1::42/64",
                      "--route", "2001:db8:9999::/64", "--local", "2001:db8:aaaa::1",
                      "--remote", "2001:db8:ff::1", "--out-key", hex(UPLINK_KEY),
                      "--in-key", hex(DOWNLINK_KEY), "--stats", os.path.join(tmp, "peer.json"),
                      stdout=subprocess.PIPE)
    assert wait_for_line(peer, "ready", 20), "gre_peer did not start"
    time.sleep(0.5)
    failures = []

    def check(ok, what):
        if not ok:
            failures.append(what)

    tel = Telemetry(f"/var/run/dpdk/{prefix}/dpdk_telemetry.v2")
    check("/hag/ports" in json.dumps(tel("/")), "/ does not list /hag/ports")
    before_prom = scrape(gw)
    before_tel = tel("/hag/session,1")

    recv_code = """
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 7000)); s.settimeout(3); n = 0
try:
    while True:
        s.recvfrom(2000); n += 1
except socket.timeout:
    pass
print(n)
"""
    send_code = f"""
import socket, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
for i in range({N}):
    s.sendto(b"x" * {PAYLOAD}, (sys.argv[1], 7000))
    if i % 10 == 9: time.sleep(0.02)
"""
    # Both directions at once, while the counters are read over and over.
    receivers = [subprocess.Popen(["ip", "netns", "exec", ns, "/usr/bin/python3", "-c", recv_code, dst],
                                  stdout=subprocess.PIPE, text=True)
                 for ns, dst in ((cpe, "2001:db8:1::42"), (core, "2001:db8:9999::1"))]
    time.sleep(0.3)
    senders = [subprocess.Popen(["ip", "netns", "exec", ns, "/usr/bin/python3", "-c", send_code, dst])
               for ns, dst in ((core, "2001:db8:1::42"), (cpe, "2001:db8:9999::1"))]
    last, reads = None, 0
    while any(s.poll() is None for s in senders) and reads < 200:
        m = scrape(gw)
        st = tel("/hag/stages")
        ports = tel("/hag/ports")
        cur = (value(m, "hag_stage_forwarded_packets_total", stage="downlink_encap"),
               st["uplink_decap"]["forwarded"], ports["core"]["worker_rx_packets"])
        if last is not None:
            check(all(c >= p for c, p in zip(cur, last)), f"a counter went down: {last} -> {cur}")
        last, reads = cur, reads + 1
    for s in senders:
        s.wait(timeout=60)
    got = [int(r.communicate(timeout=30)[0].strip() or 0) for r in receivers]
    print(f"read the counters {reads} times while traffic ran; received {got} of {N} each way")
    check(reads >= 2, f"only {reads} reads while traffic ran")
    check(min(got) >= N - 10, f"too much loss: {got}")

    after_prom = scrape(gw)
    after_tel = tel("/hag/session,1")

    def delta(name, **labels):
        return value(after_prom, name, **labels) - (value(before_prom, name, **labels) or 0)

    for direction, received in (("downlink", got[0]), ("uplink", got[1])):
        pk = delta("hag_session_packets_total", session="1", direction=direction)
        by = delta("hag_session_bytes_total", session="1", direction=direction)
        check(received <= pk <= N and pk == N, f"{direction}: session counted {pk} packets, sent {N}, received {received}")
        check(by == pk * INNER, f"{direction}: session counted {by} bytes for {pk} packets of {INNER}")
        check(delta("hag_path_packets_total", session="1", bid="1", direction=direction) == pk,
              f"{direction}: path packets disagree with the session's")
        check(delta("hag_path_bytes_total", session="1", bid="1", direction=direction) == by,
              f"{direction}: path bytes disagree with the session's")
        tpk = after_tel[f"{direction}_packets"] - before_tel[f"{direction}_packets"]
        check(tpk == pk, f"{direction}: telemetry says {tpk} packets, Prometheus {pk}")
        check(after_tel["path_1"][f"{direction}_bytes"] - before_tel["path_1"][f"{direction}_bytes"] == by,
              f"{direction}: telemetry path bytes disagree")
    check(delta("hag_stage_forwarded_packets_total", stage="downlink_encap") == N,
          "downlink_encap forwarded delta is not what was sent")
    check(delta("hag_stage_forwarded_packets_total", stage="uplink_decap") >= N,
          "uplink_decap forwarded fewer than were sent")
    check(delta("hag_port_worker_rx_packets_total", port="core", role="core") >= N, "core worker rx")
    check(delta("hag_port_worker_tx_packets_total", port="access", role="access") >= N, "access worker tx")
    check(delta("hag_port_rx_packets_total", port="core", role="core") >= N, "core ethdev rx")
    check(delta("hag_port_tx_bytes_total", port="access", role="access") >= N * (14 + 40 + 12 + INNER),
          "access ethdev tx bytes below the encapsulated traffic")
    check(value(after_prom, "hag_stage_cycles_per_packet", stage="downlink_encap") > 0, "no cycles counted")
    check(value(after_prom, "hag_sessions") == 1, "hag_sessions is not 1")
    check(value(after_prom, "hag_stage_drops_total", stage="uplink_decap", reason="unknown_key") == 0,
          "unknown_key drops")

    # Telemetry and Prometheus agree. The kernel behind the exception-path TAPs may still send
    # (ND, MLD) after the test traffic stopped, so the scrape must lie between two telemetry reads.
    ports = tel("/hag/ports")
    m = scrape(gw)
    ports_after = tel("/hag/ports")
    for name in ("core", "access"):
        prom = value(m, "hag_port_worker_rx_packets_total", port=name, role=name)
        check(ports[name]["worker_rx_packets"] <= prom <= ports_after[name]["worker_rx_packets"],
              f"port {name}: telemetry and Prometheus disagree")
    drops_before = tel("/hag/drops")
    m = scrape(gw)
    drops = tel("/hag/drops")
    check(drops_before["downlink_encap"]["no_subscriber"] <=
          value(m, "hag_stage_drops_total", stage="downlink_encap", reason="no_subscriber") <=
          drops["downlink_encap"]["no_subscriber"], "drops disagree")
    check(tel("/hag/drops,uplink_decap")["unknown_key"] == 0, "/hag/drops,uplink_decap")
    sess = tel("/hag/sessions,5")
    check(sess["count"] == 1 and sess["capacity"] == 1024 and "1" in sess, f"/hag/sessions: {sess}")
    check(tel("/hag/session,99") is None, "/hag/session,99 should be null")
    check(tel("/hag/session,abc") is None, "/hag/session,abc should be null")
    check(tel("/hag/sessions,100000") is None, "/hag/sessions,100000 should be null")

    # Hostile HTTP: each gets a 4xx or a close, and the server keeps serving.
    answers = http(gw, ["POST /metrics HTTP/1.0\r\n\r\n", "GET /nope HTTP/1.0\r\n\r\n",
                        "GET /metrics HTTP/2.0\r\n\r\n", "\x00\x01garbage\r\n\r\n",
                        "GET /" + "a" * 5000 + " HTTP/1.0\r\n\r\n",
                        "GET /metrics HTTP/1.1\r\n" + "X-A: b\r\n" * 2000 + "\r\n",
                        "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"])
    codes = [a.split(" ")[1] if a.startswith("HTTP/1.0 ") else a[:40] for a in answers]
    check(codes == ["405", "404", "505", "400", "414", "431", "200"], f"HTTP answers: {codes}")

    sh("ip", "netns", "exec", core, "true")
    time.sleep(1.2)  # one more --stats-interval period
    topo.stop(peer)
    topo.stop(dp)
    final = json.loads([l for l in dp.stdout.read().splitlines() if l.startswith("{")][-1])
    check(final["sessions"]["1"]["downlink_packets"] >= after_tel["downlink_packets"],
          "exit JSON below the last telemetry read")
    log.close()
    with open(log_path) as f:
        summaries = [l for l in f if "stats:" in l and "downlink_encap fwd" in l]
    print("last summary:", summaries[-1].strip() if summaries else None)
    check(len(summaries) >= 2, "--stats-interval 1 logged fewer than two summaries")

    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
