#!/usr/bin/python3
"""hag-dataplane programmed over its DataplaneProgrammer socket, with traffic following.

Topology as in test_exception_path.py (network namespaces, veth pairs, documentation addresses,
no MAC configured anywhere: hag resolves the care-of address through its access TAP):

  core host ns            gateway ns (hag-dataplane, no static session)    home router ns
  2001:db8:9999::1  ---- core0 | net_af_packet | acc0 ----   2001:db8:aaaa::1 (CoA)
                                                             gre_peer.py (TUN + raw GRE)
                                                             2001:db8:1::42 on the TUN

A C++ test client (dp_program_client, built with the tests; the system Python has no grpcio)
talks to the unix socket. Checked: a session applied over the API carries traffic both ways to
the userspace GRE peer; a second batch moves it to another downlink key and traffic follows; a
batch with a key collision is refused (INVALID_ARGUMENT naming the session) and changes
nothing; an old generation is refused (FAILED_PRECONDITION); a removed session stops
forwarding; a resync (in chunks, at a lower generation) replaces everything and traffic flows
again; an aborted or invalid resync changes nothing; Digest always equals the digest the client
computes from the sessions it sent; ListSessions pages and counts; Status; socket mode 0660.
"""
import json
import os
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from netns import Topology, require_root, sh, udp_count, wait_for_line  # noqa: E402

DATAPLANE, GRE_PEER, CLIENT = sys.argv[1], sys.argv[2], sys.argv[3]
UPLINK_KEY, DOWNLINK_KEY, DOWNLINK_KEY_2 = 0x1001, 0x2002, 0x3003

def session(sid, uplink_key, prefixes, downlink_key, care_of="2001:db8:aaaa::1",
            local="2001:db8:ff::1"):
    prefixes = " ".join(f'prefixes: "{p}"' for p in prefixes)
    return (f'{{ id: {sid} nai: "cpe{sid}@example.net" uplink_key: {uplink_key} gre_sequence: true '
            f'{prefixes} paths {{ bid: 1 live: true if_label: 1 downlink_key: {downlink_key} '
            f'weight_kbps: 50000 local: "{local}" care_of: "{care_of}" }} }}')

class Api:
    def __init__(self, target, tmp):
        self.target, self.tmp, self.n = target, tmp, 0

    def _file(self, text):
        self.n += 1
        path = os.path.join(self.tmp, f"req{self.n}.txt")
        with open(path, "w") as f:
            f.write(text)
        return path

    def call(self, *args):
        r = subprocess.run([CLIENT, self.target, *args], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"dp_program_client {args}: {r.returncode} {r.stderr}")
        return json.loads(r.stdout)

    def apply(self, generation, upserts=(), removes=()):
        text = f"generation: {generation}\n"
        text += "".join(f"changes {{ upsert {s} }}\n" for s in upserts)
        text += "".join(f"changes {{ remove: {i} }}\n" for i in removes)
        return self.call("apply", self._file(text))

    def set_file(self, generation, sessions):
        return self._file(f"generation: {generation}\n" +
                          "".join(f"sessions {s}\n" for s in sessions))

    def resync(self, generation, sessions, *extra):
        return self.call("resync", self.set_file(generation, sessions), *extra)

    def local_digest(self, sessions):
        return int(self.call("local-digest", self.set_file(0, sessions))["digest"])

    def digest(self):
        d = self.call("digest")["reply"]
        return int(d["generation"]), int(d["sessions"]), int(d["digest"])

def run(ns, *cmd, timeout=30):
    return subprocess.run(("ip", "netns", "exec", ns) + cmd, capture_output=True, text=True,
                          timeout=timeout)

def ping_ok(core, tries=20):
    """True as soon as one ping through the tunnel answers (next hops may need resolving)."""
    for _ in range(tries):
        if run(core, "ping", "-6", "-c", "1", "-W", "1", "2001:db8:1::42").returncode == 0:
            return True
    return False

def udp_both_ways(core, cpe):
    return [udp_count(src_ns, dst_ns, dst, 100, 500)
            for src_ns, dst_ns, dst in ((core, cpe, "2001:db8:1::42"),
                                        (cpe, core, "2001:db8:9999::1"))]

def main():
    require_root()
    topo = Topology("dq")
    core, gw, cpe = topo.ns("core"), topo.ns("gw"), topo.ns("cpe")
    topo.veth(core, "eth0", gw, "core0")
    topo.veth(cpe, "eth0", gw, "acc0")
    # The gateway kernel stays off the veth ends (as with a NIC bound to vfio-pci).
    for dev in ("core0", "acc0"):
        sh("sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1", ns=gw)
        sh("ip", "link", "set", "dev", dev, "arp", "off", ns=gw)
    sh("ip", "-6", "addr", "add", "2001:db8:9999::1/64", "dev", "eth0", "nodad", ns=core)
    sh("ip", "-6", "route", "add", "2001:db8:1::/64", "via", "2001:db8:9999::fe", ns=core)
    sh("ip", "-6", "addr", "add", "2001:db8:aaaa::1/64", "dev", "eth0", "nodad", ns=cpe)
    sh("ip", "-6", "route", "add", "2001:db8:ff::1/128", "dev", "eth0", ns=cpe)

    tmp = topo.tmpdir("hag-it-")
    sock = os.path.join(tmp, "dataplane.sock")
    conf = os.path.join(tmp, "dataplane.conf")
    with open(conf, "w") as f:
        f.write(f"""
log {{ level: "info" }}
eal_args: ["--no-huge", "--no-pci", "-m", "512", "--file-prefix", "hag-itq-{os.getpid()}",
           "-l", "0-1", "--log-level", "lib.*:warning", "--no-telemetry"]
ports {{ name: "core" device: "net_af_packet0,iface=core0" role: CORE
         next_hop_ipv6: "2001:db8:9999::1" addresses: "2001:db8:9999::fe" }}
ports {{ name: "access" device: "net_af_packet1,iface=acc0" role: ACCESS
         addresses: "2001:db8:ff::1" }}
mbufs: 8191
max_sessions: 1024
programmer_listen: "unix:{sock}"
idle_sleep_us: 20
""")
    sh(DATAPLANE, "--check-config", "-c", conf)
    dp = topo.spawn(gw, DATAPLANE, "-c", conf, stdout=subprocess.PIPE)
    assert wait_for_line(dp, "ready", 60), "hag-dataplane did not start"
    sh("ip", "-6", "addr", "add", "2001:db8:9999::fe/64", "dev", "hag-core", "nodad", ns=gw)
    sh("ip", "-6", "addr", "add", "2001:db8:ff::1/128", "dev", "hag-access", "nodad", ns=gw)
    sh("ip", "-6", "route", "add", "2001:db8:aaaa::/64", "dev", "hag-access", ns=gw)

    failures = []

    def check(cond, what):
        if not cond:
            failures.append(what)
            print("FAIL:", what, flush=True)

    api = Api(f"unix:{sock}", tmp)
    mode = stat.S_IMODE(os.stat(sock).st_mode)
    check(stat.S_ISSOCK(os.stat(sock).st_mode) and mode == 0o660, f"socket mode {oct(mode)}")
    st = api.call("status")
    check(st["ok"] and int(st["reply"]["generation"]) == 0 and st["reply"]["sessions"] == 0,
          f"fresh status {st}")

    # 1. A session applied over the API carries traffic both ways.
    s10 = session(10, UPLINK_KEY, ["2001:db8:1::/64"], DOWNLINK_KEY)
    r = api.apply(1, [s10])
    check(r["ok"] and int(r["reply"]["generation"]) == 1 and r["reply"]["sessions"] == 1,
          f"apply 1: {r}")
    check(api.digest() == (1, 1, api.local_digest([s10])), "digest after apply 1")
    peer_stats = os.path.join(tmp, "peer1.json")
    peer = topo.spawn(cpe, GRE_PEER, "--tun", "hagtun", "--tun-addr", "2001:db8:1::42/64",
                      "--route", "2001:db8:9999::/64", "--local", "2001:db8:aaaa::1",
                      "--remote", "2001:db8:ff::1", "--out-key", hex(UPLINK_KEY),
                      "--in-key", hex(DOWNLINK_KEY), "--stats", peer_stats, stdout=subprocess.PIPE)
    assert wait_for_line(peer, "ready", 20), "gre_peer did not start"
    check(ping_ok(core), "ping through the programmed session")
    down, up = udp_both_ways(core, cpe)
    check(down >= 95 and up >= 95, f"UDP through the programmed session: {down}/100 down, {up}/100 up")
    topo.stop(peer)
    with open(peer_stats) as f:
        p1 = json.load(f)
    check(p1["rx"] >= 95 and p1["rx_bad_key"] == 0 and p1["first_seq"] == 0,
          f"peer 1 saw hag's key {hex(DOWNLINK_KEY)} and sequence from 0: {p1}")

    # 2. The session moves to another downlink key; a peer expecting the new key gets traffic.
    s10b = session(10, UPLINK_KEY, ["2001:db8:1::/64"], DOWNLINK_KEY_2)
    r = api.apply(2, [s10b])
    check(r["ok"] and int(r["reply"]["generation"]) == 2, f"apply 2: {r}")
    peer_stats = os.path.join(tmp, "peer2.json")
    peer = topo.spawn(cpe, GRE_PEER, "--tun", "hagtun", "--tun-addr", "2001:db8:1::42/64",
                      "--route", "2001:db8:9999::/64", "--local", "2001:db8:aaaa::1",
                      "--remote", "2001:db8:ff::1", "--out-key", hex(UPLINK_KEY),
                      "--in-key", hex(DOWNLINK_KEY_2), "--stats", peer_stats,
                      stdout=subprocess.PIPE)
    assert wait_for_line(peer, "ready", 20), "gre_peer did not start"
    check(ping_ok(core), "ping after the move to another downlink key")
    down, up = udp_both_ways(core, cpe)
    check(down >= 95 and up >= 95, f"UDP after the key move: {down}/100 down, {up}/100 up")

    # 3. A bad batch (session 11 takes session 10's uplink key) changes nothing.
    before = api.digest()
    s11 = session(11, UPLINK_KEY, ["2001:db8:2::/64"], 0x4004, care_of="2001:db8:aaaa::2")
    s12 = session(12, 0x5005, ["2001:db8:3::/64"], 0x5006, care_of="2001:db8:aaaa::3")
    r = api.apply(3, [s12, s11])
    check(not r["ok"] and r["code"] == "INVALID_ARGUMENT" and "session 11" in r["message"]
          and "belongs to session 10" in r["message"], f"colliding batch: {r}")
    r = api.apply(3, [s12], removes=[99])
    check(not r["ok"] and r["code"] == "INVALID_ARGUMENT" and "session 99" in r["message"],
          f"remove of an unknown session: {r}")
    check(api.digest() == before, "a refused batch changed the digest")
    # 4. The generation rule.
    r = api.apply(2, [s12])
    check(not r["ok"] and r["code"] == "FAILED_PRECONDITION", f"old generation: {r}")
    check(api.digest() == before, "an old generation changed the digest")
    check(ping_ok(core, tries=3), "traffic after refused batches")

    # 5. Removing the session stops forwarding.
    r = api.apply(3, removes=[10])
    check(r["ok"] and r["reply"]["sessions"] == 0, f"remove: {r}")
    check(not ping_ok(core, tries=3), "ping still answered after the session was removed")
    check(api.digest() == (3, 0, 0), f"digest after remove: {api.digest()}")

    # 6. A resync in chunks of one, at a lower generation, replaces everything.
    s20 = session(20, UPLINK_KEY, ["2001:db8:1::/64"], DOWNLINK_KEY_2)
    s21 = session(21, 0x6006, ["2001:db8:21::/64", "192.0.2.8/29"], 0x6007,
                  care_of="2001:db8:aaaa::21")
    s22 = session(22, 0x7007, [], 0x7008, care_of="2001:db8:aaaa::22")
    r = api.resync(1, [s20, s21, s22], "1")
    check(r["ok"] and int(r["reply"]["generation"]) == 1 and r["reply"]["sessions"] == 3,
          f"resync: {r}")
    check(api.digest() == (1, 3, api.local_digest([s20, s21, s22])), "digest after resync")
    check(ping_ok(core), "ping after the resync")
    down, up = udp_both_ways(core, cpe)
    check(down >= 95 and up >= 95, f"UDP after the resync: {down}/100 down, {up}/100 up")
    # ... and another one that drops 22 and changes 21, while 20 forwards on, untouched.
    s21b = session(21, 0x6006, ["2001:db8:21::/64"], 0x6007, care_of="2001:db8:aaaa::21")
    r = api.resync(5, [s21b, s20], "5")
    check(r["ok"] and r["reply"]["sessions"] == 2, f"second resync: {r}")
    check(api.digest() == (5, 2, api.local_digest([s20, s21b])), "digest after the second resync")
    # 7. An aborted and an invalid resync change nothing.
    before = api.digest()
    r = api.resync(9, [s22], "1", "--abort")
    check(not r["ok"] and r["code"] == "ABORTED", f"aborted resync: {r}")
    bad = session(23, 0x6006, [], 1, care_of="2001:db8:aaaa::23")  # 21's key
    r = api.resync(9, [s20, s21b, bad], "2")
    check(not r["ok"] and r["code"] == "INVALID_ARGUMENT" and "session 23" in r["message"],
          f"invalid resync: {r}")
    r = api.resync(9, [s20, session(24, 1, ["2001:db8::/200"], 1)], "1")
    check(not r["ok"] and r["code"] == "INVALID_ARGUMENT" and "session 24" in r["message"],
          f"resync with a bad prefix: {r}")
    check(api.digest() == before, "a refused resync changed the digest")
    check(ping_ok(core, tries=3), "traffic after refused resyncs")

    # 8. ListSessions pages (of 2) by id, with counters; Status.
    ls = api.call("list")
    ids = [s["session"]["id"] for s in ls["reply"]["sessions"]] if ls["ok"] else []
    check(ids == [20, 21], f"listed sessions {ids}")
    if ids == [20, 21]:
        s = ls["reply"]["sessions"][0]
        check(int(s["downlink_packets"]) >= 1 and int(s["uplink_packets"]) >= 1,
              f"session 20 counters {s}")
        check(s["session"]["paths"][0]["downlink_key"] == DOWNLINK_KEY_2, f"session 20 {s}")
    st = api.call("status")["reply"]
    counters = {c["name"]: int(c["value"]) for c in st["counters"]}
    check(int(st["generation"]) == 5 and st["sessions"] == 2 and st["max_sessions"] == 1024 and
          int(st["batches_applied"]) == 3 and int(st["batches_rejected"]) >= 5 and
          int(st["resyncs"]) == 2, f"status {st}")
    check(counters.get('hag_stage_packets_total{stage="downlink_encap"}', 0) >= 200,
          f"status counters {counters}")

    topo.stop(peer)
    topo.stop(dp)
    out = dp.stdout.read()
    stats = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    print("hag-dataplane:", json.dumps(stats))
    with open(peer_stats) as f:
        p2 = json.load(f)
    print("gre_peer (second key):", json.dumps(p2))
    check(p2["rx_bad_key"] == 0 and p2["rx"] >= 190, f"peer 2 saw only the new key: {p2}")
    check(stats["downlink"]["drops"]["no_subscriber"] >= 1,
          "no downlink packet was dropped while no session was programmed")
    check(not os.path.exists(sock), "the socket file outlived hag-dataplane")

    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0

if __name__ == "__main__":
    sys.exit(main())
