#!/usr/bin/python3
"""Removes DPDK EAL runtime directories of hag processes that are gone.

Each DPDK primary process keeps /var/run/dpdk/<file-prefix>/ (config, fbarray and socket files)
and holds a write lock on its `config` file while it runs. hag's programs remove their own at a
clean exit (dataplane/runtime/eal_cleanup.hpp); a process killed with SIGKILL, as some tests
do on purpose, leaves it behind. This removes every `hag*` directory whose `config` nobody
locks (or that has none), and leaves alone any other prefix and any live process's directory.

usage: dpdk_runtime_sweep.py [RUNTIME_DIR]   (default /var/run/dpdk)
"""
import fcntl
import os
import shutil
import sys


def in_use(d):
    cfg = os.path.join(d, "config")
    try:
        fd = os.open(cfg, os.O_RDWR)
    except FileNotFoundError:
        return False
    except OSError:
        return True  # cannot tell: keep it
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False  # nobody holds it (our lock goes with the close)
    except OSError:
        return True
    finally:
        os.close(fd)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "/var/run/dpdk"
    if not os.path.isdir(root):
        return 0
    removed = kept = 0
    for name in sorted(os.listdir(root)):
        d = os.path.join(root, name)
        if not name.startswith("hag") or not os.path.isdir(d) or os.path.islink(d):
            continue
        if in_use(d):
            kept += 1
            continue
        shutil.rmtree(d, ignore_errors=True)
        removed += 1
    print(f"dpdk runtime directories: {removed} left by hag processes removed, {kept} in use")
    return 0


if __name__ == "__main__":
    sys.exit(main())
