"""Network namespaces and veth pairs for integration tests, removed again on exit.

Every name carries a per-run suffix so parallel tests do not collide. Only documentation
addresses are used by the tests that build on this.
"""
import atexit
import os
import signal
import subprocess
import shutil
import sys
import tempfile
import time

SKIP = 77  # meson: test skipped


def require_root():
    if os.geteuid() != 0:
        print("SKIPPED: this test creates network namespaces and needs root "
              "(CI runs as root; run `sudo meson test ...` locally)")
        sys.exit(SKIP)


def sh(*cmd, check=True, capture=False, ns=None, timeout=30):
    if ns:
        cmd = ("ip", "netns", "exec", ns) + tuple(cmd)
    r = subprocess.run(cmd, check=False, text=True, timeout=timeout,
                       stdout=subprocess.PIPE if capture else None,
                       stderr=subprocess.PIPE if capture else None)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr or ''}")
    return r.stdout if capture else r.returncode


class Topology:
    def __init__(self, tag, suffix=None):
        """Names are hag-<name>-<tag><pid>, or hag-<name>-<suffix> when a suffix is given (a
        fixed name the operator can type, as the demo's)."""
        self.suffix = suffix if suffix is not None else f"{tag}{os.getpid() % 100000}"
        self.namespaces = []
        self.procs = []
        self.dirs = []
        atexit.register(self.close)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    def ns(self, name):
        full = f"hag-{name}-{self.suffix}"
        sh("ip", "netns", "add", full)
        self.namespaces.append(full)
        sh("ip", "link", "set", "lo", "up", ns=full)
        return full

    def tmpdir(self, prefix):
        """A temporary directory removed by close() (at exit, also on failure)."""
        d = tempfile.mkdtemp(prefix=prefix)
        self.dirs.append(d)
        return d

    def veth(self, a_ns, a_name, b_ns, b_name):
        """A veth pair between two namespaces; returns the MAC addresses (a, b)."""
        tmp_a, tmp_b = f"va{self.suffix}", f"vb{self.suffix}"
        sh("ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b)
        sh("ip", "link", "set", tmp_a, "netns", a_ns, "name", a_name)
        sh("ip", "link", "set", tmp_b, "netns", b_ns, "name", b_name)
        for ns, dev in ((a_ns, a_name), (b_ns, b_name)):
            sh("ip", "link", "set", dev, "up", ns=ns)
            # DPDK on af_packet sees what the kernel hands it: no partial checksums, no GRO.
            sh("ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off",
               ns=ns, check=False, capture=True)
        return self.mac(a_ns, a_name), self.mac(b_ns, b_name)

    @staticmethod
    def mac(ns, dev):
        out = sh("cat", f"/sys/class/net/{dev}/address", ns=ns, capture=True)
        return out.strip()

    def spawn(self, ns, *cmd, stdout=None):
        p = subprocess.Popen(("ip", "netns", "exec", ns) + tuple(cmd), stdout=stdout,
                             stderr=None, text=True)
        self.procs.append(p)
        return p

    def spawn_logged(self, ns, log, *cmd):
        """Starts cmd in ns with stdout and stderr appended to the file `log`, in a session of
        its own (so it can outlive this process, see detach())."""
        with open(log, "a") as out:
            p = subprocess.Popen(("ip", "netns", "exec", ns) + tuple(cmd), stdout=out,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True)
        self.procs.append(p)
        return p

    def detach(self):
        """Leaves namespaces, processes and directories in place: close() forgets them."""
        self.procs, self.namespaces, self.dirs = [], [], []

    def stop(self, p, timeout=15):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.procs = []
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], check=False)
        self.namespaces = []
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)
        self.dirs = []


def wait_for_file_line(path, text, timeout=30, proc=None):
    """Waits until the file `path` has a line containing text; returns that line, or None on
    timeout or when proc (if given) exits first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(path, errors="replace") as f:
                for line in f:
                    if text in line:
                        return line.rstrip("\n")
        except FileNotFoundError:
            pass
        if proc is not None and proc.poll() is not None:
            return None
        time.sleep(0.1)
    return None


def wait_for_line(p, text, timeout=30):
    """Reads p.stdout until a line containing text; returns False on timeout or exit."""
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not sel.select(timeout=max(0.0, end - time.monotonic())):
            continue
        line = p.stdout.readline()
        if not line:
            return False
        if text in line:
            return True
    return False


_UDP_RECV = """
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 7000)); s.settimeout(3); n = 0
print("ready", flush=True)
try:
    while True:
        s.recvfrom(2000); n += 1
except socket.timeout:
    pass
print(n)
"""
_UDP_SEND = """
import socket, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
if int(sys.argv[4]): s.bind(("::", int(sys.argv[4])))
for i in range(int(sys.argv[2])):
    s.sendto(b"x" * int(sys.argv[3]), (sys.argv[1], 7000))
    if i % 20 == 19: time.sleep(0.01)
"""


def udp_count(src_ns, dst_ns, dst, count, size, sport=0):
    """Sends `count` UDP datagrams of `size` octets from src_ns (from port `sport`, 0: any) to
    [dst]:7000, where a receiver in dst_ns counts them (until 3 s of silence); returns how many
    arrived."""
    py = "/usr/bin/python3"
    rcv = subprocess.Popen(["ip", "netns", "exec", dst_ns, py, "-c", _UDP_RECV, dst],
                           stdout=subprocess.PIPE, text=True)
    # Send only once the receiver is bound (starting Python can take a while on a busy host).
    if rcv.stdout.readline().strip() != "ready":
        rcv.wait(timeout=20)
        return 0
    sh(py, "-c", _UDP_SEND, dst, str(count), str(size), str(sport), ns=src_ns)
    return int(rcv.communicate(timeout=20)[0].strip() or 0)
