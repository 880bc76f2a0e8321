"""Helpers shared by the benchmark scripts in tools/bench/ (dataplane, pbu, programming, run)."""
import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys


def prioritise(nice):
    """In a child before exec: `nice` for the process. With autogroup scheduling
    (kernel.sched_autogroup_enabled) a nice value only weighs against the same session's
    processes, so the child starts a session of its own and gives its autogroup the same nice."""
    os.setsid()
    try:
        with open("/proc/self/autogroup", "w") as f:
            f.write(str(nice))
    except OSError:
        pass
    os.nice(nice)


def loadavg():
    """The 1, 5 and 15 minute load averages."""
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def load_script(name):
    """Imports the benchmark script tools/bench/NAME (no .py suffix) as a module, so that `run`
    reuses its functions instead of copying them."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name)
    loader = importlib.machinery.SourceFileLoader(f"hag_bench_{name}", path)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def hugepages_free_mib():
    """MiB of free 2 MB hugepages usable by DPDK: 0 unless a hugetlbfs of that page size is
    mounted (the EAL looks for one in /proc/mounts) and pages are reserved
    (/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)."""
    try:
        with open("/proc/mounts") as f:
            mounts = [line.split() for line in f]
        with open("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages") as f:
            free = int(f.read())
    except (OSError, ValueError):
        return 0
    default_2m = True
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("Hugepagesize:"):
                    default_2m = line.split()[1] == "2048"
    except OSError:
        pass
    for m in mounts:
        if len(m) > 3 and m[2] == "hugetlbfs":
            opts = m[3].split(",")
            size = next((o.split("=", 1)[1] for o in opts if o.startswith("pagesize=")), None)
            if size in ("2M", "2048k") or (size is None and default_2m):
                return free * 2
    return 0


def use_hugepages(mode, memory_mib):
    """Whether the EAL of a forwarding run gets hugepages: mode "on", "off" or "auto" (when
    hugepages_free_mib() covers -m memory_mib plus a little)."""
    if mode == "off":
        return False
    ok = hugepages_free_mib() >= memory_mib + 64
    if mode == "on" and not ok:
        raise SystemExit(f"--hugepages on: {memory_mib} MiB of free 2 MB hugepages needed on a "
                         "mounted hugetlbfs (see docs/benchmarks.md)")
    return ok


def eal_memory_args(huge):
    """EAL options for the memory mode: hugepages (files unlinked once mapped, nothing left
    behind in the hugetlbfs) or --no-huge (4 kB pages)."""
    return ["--huge-unlink"] if huge else ["--no-huge"]



def bench_build(root, targets, jobs=2):
    """The optimised build the forwarding figures come from: ROOT/build-bench, meson buildtype
    release (-O3, NDEBUG), configured on first use, then `targets` built with ninja -j jobs.
    werror is off there: GCC 12 at -O3 warns falsely in code the benchmarks do not measure
    (-Warray-bounds inside std::vector inserts in common/). Returns the directory."""
    d = os.path.join(root, "build-bench")
    if not os.path.exists(os.path.join(d, "build.ninja")):
        print(f"configuring {d} (meson buildtype release)", file=sys.stderr, flush=True)
        subprocess.run(["meson", "setup", d, root, "-Dbuildtype=release", "-Dwerror=false"],
                       check=True, stdout=subprocess.DEVNULL)
    print(f"building {' '.join(targets)} in {d}", file=sys.stderr, flush=True)
    r = subprocess.run(["ninja", "-C", d, f"-j{jobs}", *targets], capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise SystemExit(f"building the benchmark in {d} failed:\n{r.stdout[-3000:]}")
    return d


def buildtype(build_dir):
    """meson's buildtype and optimization level of a build directory, e.g. "release (-O3)",
    or None when it is not a meson build directory."""
    try:
        with open(os.path.join(build_dir, "meson-info", "intro-buildoptions.json")) as f:
            opts = {o["name"]: o["value"] for o in json.load(f)}
    except (OSError, ValueError, KeyError):
        return None
    return f"{opts.get('buildtype')} (-O{opts.get('optimization')})"
