#!/usr/bin/python3
"""tools/hag-setup-host on this machine and on a made-up sysfs tree.

On the real host (read only: check, plan, apply --dry-run): the NIC report matches the host's
network PCI devices (here: the only NIC carries the default route, so "no NIC available"), binding
the default-route interface is refused with its reasons (default route, SSH session, addresses)
and exit 3, a virtual interface is refused as "not a PCI device", a hugepage plan prints the
commands and changes nothing. On a fake sysfs (HAG_SETUP_SYSFS / HAG_SETUP_PROCFS): a free NIC
with the IOMMU on may be bound (the plan names dpdk-devbind.py --bind=vfio-pci), the same NIC with
the IOMMU off is refused, apply --hugepages writes nr_hugepages, cpu-advice derives isolcpus from
a configuration's lcores.
usage: test_setup_host.py TOOL EXAMPLES_DIR
"""
import glob
import json
import os
import subprocess
import sys
import tempfile

TOOL, EXAMPLES = sys.argv[1:3]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def run(*args, env=None):
    e = dict(os.environ)
    e.pop("SSH_CONNECTION", None)
    e.update(env or {})
    p = subprocess.run([TOOL, *args], capture_output=True, text=True, timeout=60, env=e)
    return p.returncode, p.stdout + p.stderr


def default_route_iface():
    out = subprocess.run(["ip", "-j", "route", "show", "default"], capture_output=True,
                         text=True).stdout
    routes = json.loads(out) if out.strip() else []
    return routes[0]["dev"] if routes else None


# --- the real host, read only -----------------------------------------------------------------
nr_before = open("/proc/sys/vm/nr_hugepages").read()
rc, out = run("check")
print(out)
check(rc in (0, 1), f"check exit 0 or 1 (got {rc})")
check("hugepages" in out and "IOMMU" in out and "vfio-pci" in out and "dpdk-devbind" in out,
      "check reports hugepages, IOMMU, vfio-pci, dpdk-devbind")
net_pci = [d for d in glob.glob("/sys/bus/pci/devices/*")
           if open(d + "/class").read().startswith("0x02")]
dev = default_route_iface()
if not net_pci:
    check("no network PCI device on this host" in out, "no NIC at all: said so")
elif dev and len(net_pci) == 1 and os.path.realpath(f"/sys/class/net/{dev}/device").find(
        os.path.basename(net_pci[0])) >= 0:
    check("no NIC available for the data plane" in out and "carries the default route" in out,
          "the only NIC carries the default route: 'no NIC available' said, with the reason")
    check(rc == 1, "check exit 1 (not ready)")

if dev:
    rc, out = run("plan", "--bind", dev)
    print(out)
    check(rc == 3 and "REFUSED" in out and "carries the default route" in out,
          f"binding {dev} (default route) refused, exit 3")
    check("nothing was changed" in out, "refusal says nothing was changed")
    addrs = json.loads(subprocess.run(["ip", "-j", "addr", "show", dev], capture_output=True,
                                      text=True).stdout)[0].get("addr_info", [])
    local = [a["local"] for a in addrs if a.get("scope") != "link"]
    if local and os.path.exists(f"/sys/class/net/{dev}/device"):
        rc, out = run("plan", "--bind", dev,
                      env={"SSH_CONNECTION": f"198.51.100.7 50022 {local[0]} 22"})
        check(rc == 3 and "carries an SSH session" in out and "is up with addresses" in out,
              "SSH session and addresses named among the reasons")
        rc, out = run("apply", "--bind", dev, "--dry-run")
        check(rc == 3 and "REFUSED" in out, "apply --dry-run refuses the same way")

rc, out = run("plan", "--bind", "lo")
check(rc == 3 and "not a PCI device" in out, "loopback: not a PCI device, exit 3")
rc, out = run("plan", "--bind", "0000:ff:1f.7")
check(rc == 3 and "no such PCI device" in out, "unknown PCI address refused")
rc, out = run("plan")
check(rc == 2 and "nothing to do" in out, "plan with no action: usage error 2")

rc, out = run("plan", "--hugepages", "64", "--persist")
print(out)
check(rc == 0 and "nr_hugepages" in out and "vm.nr_hugepages = 64" in out and
      "dry run: nothing was changed" in out, "hugepage plan shows runtime and sysctl.d steps")
rc, out = run("apply", "--hugepages", "64", "--dry-run")
check(rc == 0 and "dry run" in out, "apply --dry-run")
check(open("/proc/sys/vm/nr_hugepages").read() == nr_before, "host hugepages unchanged")
check(not os.path.exists("/etc/sysctl.d/80-hag-hugepages.conf"), "no sysctl.d file written")

# --- cpu-advice from the example configurations -------------------------------------------------
large = os.path.join(EXAMPLES, "large", "hag-dataplane.conf")
with tempfile.TemporaryDirectory(prefix="hag-setup-") as tmp:
    # A fake host with 16 CPUs, isolation for none.
    sysfs = os.path.join(tmp, "sys")
    procfs = os.path.join(tmp, "proc")

    def put(path, text):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)

    put(f"{sysfs}/devices/system/cpu/online", "0-15\n")
    put(f"{sysfs}/devices/system/cpu/isolated", "\n")
    put(f"{sysfs}/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "0\n")
    put(f"{sysfs}/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages", "0\n")
    pci = f"{sysfs}/bus/pci/devices/0000:3b:00.0"
    put(f"{pci}/class", "0x020000\n")
    put(f"{pci}/vendor", "0x8086\n")
    put(f"{pci}/device", "0x1572\n")
    os.makedirs(f"{sysfs}/bus/pci/drivers/i40e")
    os.symlink(f"{sysfs}/bus/pci/drivers/i40e", f"{pci}/driver")
    put(f"{procfs}/mounts", "nodev /dev/hugepages hugetlbfs rw 0 0\n")
    put(f"{procfs}/meminfo", "Hugepagesize:       2048 kB\n")
    env = {"HAG_SETUP_SYSFS": sysfs, "HAG_SETUP_PROCFS": procfs}

    rc, out = run("cpu-advice", "--config", large, env=env)
    print(out)
    check(rc == 0 and "main lcore 1, worker lcores 2" in out and
          "isolcpus=2 nohz_full=2 rcu_nocbs=2" in out,
          "cpu-advice: isolcpus from the large example's lcores (main 1, worker 2)")
    many = os.path.join(tmp, "many.conf")
    put(many, 'eal_args: ["-l", "0,3-5,7", "--main-lcore", "3"]\n')
    rc, out = run("cpu-advice", "--config", many, env=env)
    check(rc == 0 and "isolcpus=0,4-5,7" in out and "CPU 0 is a worker" in out,
          "cpu-advice: lcore list with ranges, --main-lcore, CPU 0 warned about")
    put(many, 'eal_args: "-c 0x6"\n')
    rc, out = run("cpu-advice", "--config", many, env=env)
    check(rc == 0 and "main lcore 1, worker lcores 2" in out, "cpu-advice: -c mask")
    put(many, 'eal_args: ["-l", "14-17"]\n')
    rc, out = run("cpu-advice", "--config", many, env=env)
    check(rc == 1 and "16-17 are not online" in out, "cpu-advice: lcores beyond the host's CPUs")
    put(f"{sysfs}/devices/system/cpu/isolated", "2-9\n")
    rc, out = run("cpu-advice", "--config", large, env=env)
    check(rc == 0 and "are isolated" in out, "cpu-advice: isolated CPUs recognised")
    bad = os.path.join(tmp, "nolcores.conf")
    put(bad, 'eal_args: ["--in-memory"]\n')
    rc, out = run("cpu-advice", "--config", bad, env=env)
    check(rc == 2 and "set no lcores" in out, "config without -l: clear error")

    # IOMMU off: the free NIC is listed but binding is refused.
    rc, out = run("check", env=env)
    print(out)
    check("0000:3b:00.0" in out and "may be bound" in out, "fake NIC listed as bindable")
    check("IOMMU off" in out and "1 GiB pages are offered" in out, "IOMMU off, 1G advice")
    rc, out = run("plan", "--bind", "0000:3b:00.0", env=env)
    check(rc == 3 and "the IOMMU is off" in out, "bind refused while the IOMMU is off")

    # IOMMU on, vfio-pci loaded: the plan binds with dpdk-devbind.py.
    os.makedirs(f"{sysfs}/kernel/iommu_groups/17/devices")
    os.symlink(f"{sysfs}/kernel/iommu_groups/17", f"{pci}/iommu_group")
    os.makedirs(f"{sysfs}/bus/pci/drivers/vfio-pci")
    rc, out = run("plan", "--bind", "0000:3b:00.0", "--persist", env=env)
    print(out)
    check(rc == 0 and "--bind=vfio-pci 0000:3b:00.0" in out and "driverctl" in out,
          "bind plan: dpdk-devbind.py --bind=vfio-pci, driverctl advice for --persist")
    rc, out = run("plan", "--unbind", "0000:3b:00.0", "--driver", "i40e", env=env)
    check(rc == 0 and "--bind=i40e 0000:3b:00.0" in out, "unbind back to the kernel driver")
    rc, out = run("plan", "--hugepages", "4", "--hugepage-size", "1G", env=env)
    check(rc == 3 and "hugepagesz=1G" in out, "1G pages at run time refused with boot advice")

    if os.geteuid() == 0:
        rc, out = run("apply", "--hugepages", "8", env=env)
        print(out)
        got = open(f"{sysfs}/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages").read()
        check(got == "8\n", "apply wrote nr_hugepages")
        check(rc == 0 and "done" in out, "apply done, exit 0")
        rc, out = run("apply", "--hugepages", "8", env=env)
        check(rc == 0 and "already 8" in out and "nothing to change" in out,
              "apply again: idempotent")
    else:
        print("skip apply on the fake tree: not root")

if failures:
    print(f"{len(failures)} check(s) failed: {failures}")
    sys.exit(1)
print("all checks passed")
