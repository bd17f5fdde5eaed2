"""Run a command and report the peak resident memory of its whole process tree.

Usage: python bench/peak_memory.py -- COMMAND ...
Polls /proc every 0.1 s and sums the RSS of the command and all its descendants (the parent
and its worker processes together), which is what the machine must hold.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time


def tree_rss_bytes(root: int) -> int:
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def main() -> None:
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print((__doc__ or "").strip())
        sys.exit(0 if args else 2)
    if args[0] == "--":
        args = args[1:]
    start = time.perf_counter()
    proc = subprocess.Popen(args)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss_bytes(proc.pid))
        time.sleep(0.1)
    wall = time.perf_counter() - start
    print(f"exit {proc.returncode}; wall {wall:.1f} s; peak RSS of the process tree {peak / 2**20:.0f} MiB")
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
