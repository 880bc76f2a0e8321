"""Helpers shared by the benchmark scripts in tools/bench/ (dataplane, pbu, programming, run)."""
import importlib.machinery
import importlib.util
import os


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
