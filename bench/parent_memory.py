"""Where the parent process of `ftprep run` holds its memory, step by step.

Runs `ftprep run CONFIG` in this process (as the CLI does) with each end-of-run step of
`pipeline.runner` wrapped: before and after it, the process's resident memory (VmRSS), its
peak so far (VmHWM, reset before each step through /proc/self/clear_refs where the kernel
allows it, so each step's own peak shows), pyarrow's memory pool (`pa.total_allocated_bytes`)
and, with --tracemalloc, the Python heap's current and peak size (traced from the start:
slower, and the parent only waits while the workers run). One line per step to stdout, and
the table as JSON with --json.

Usage: python bench/parent_memory.py CONFIG [--workers 2] [--out DIR] [--tracemalloc] [--json F]
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

# the end-of-run steps, as `pipeline.runner` names them (those it does not have are skipped)
STEPS = (
    "_execute",
    "_decide",
    "write_splits",
    "write_metrics",
    "read_metrics",  # before the report's statistics were streamed
    "assess_run",
)
# steps the runner imports when it needs them: wrapped in their own modules
LATE_STEPS = (
    ("pipeline.report.stats", "ReportColumns.from_parquet"),
    ("pipeline.report.stats", "token_section"),
    ("pipeline.report.stats", "message_section"),
    ("pipeline.report.files", "write_reports"),
    ("pipeline.report.json_report", "write"),
    ("pipeline.report.markdown", "render_markdown"),
    ("pipeline.report.html", "render_html"),
)


def _status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    return out


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _pool() -> int:
    import pyarrow as pa

    return int(pa.total_allocated_bytes())


MIB = 2**20
rows: list[dict[str, Any]] = []
key_table: dict[str, int] = {}


def _key_table(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`_decide`, noting the bytes of the per-record arrays the units handed back (the spool's
    lines, output bytes and positions, the dataset stages' keys) and of the decisions."""

    @functools.wraps(fn)
    def wrapper(results: list[Any], *args: Any, **kwargs: Any) -> Any:
        spooled = sum(
            getattr(r.spooled, n).nbytes
            for r in results
            for n in ("kept_lines", "kept_bytes", "kept_ords")
        )
        keys = sum(v.nbytes for r in results for v in r.keys.values())
        decisions, info = fn(results, *args, **kwargs)
        key_table.update(
            kept=sum(r.spooled.kept for r in results),
            spool_bytes=spooled,
            key_bytes=keys,
            destination_bytes=int(decisions.dest.nbytes),
        )
        return decisions, info

    return wrapper


def _wrap(name: str, fn: Callable[..., Any], traced: bool) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        before = _status()
        peak_reset = _reset_peak()
        if traced:
            tracemalloc.reset_peak()
            heap_before = tracemalloc.get_traced_memory()[0]
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        seconds = time.perf_counter() - start
        after = _status()
        row = {
            "step": name,
            "s": round(seconds, 2),
            "rss_before_mib": round(before["VmRSS"] / MIB, 1),
            "rss_after_mib": round(after["VmRSS"] / MIB, 1),
            # the step's own peak when the peak could be reset, else the process's so far
            "peak_mib": round(after["VmHWM"] / MIB, 1),
            "peak_is_step_own": peak_reset,
            "arrow_pool_after_mib": round(_pool() / MIB, 1),
        }
        if traced:
            current, peak = tracemalloc.get_traced_memory()
            row["heap_before_mib"] = round(heap_before / MIB, 1)
            row["heap_after_mib"] = round(current / MIB, 1)
            row["heap_peak_mib"] = round(peak / MIB, 1)
        rows.append(row)
        return result

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--json", help="write the table here as JSON")
    args = parser.parse_args()
    if args.tracemalloc:
        tracemalloc.start()

    import pipeline.runner as runner
    from pipeline.config import load_config, with_overrides

    runner._decide = _key_table(runner._decide)
    for name in STEPS:
        if hasattr(runner, name):
            setattr(runner, name, _wrap(name, getattr(runner, name), args.tracemalloc))
    for module_name, name in LATE_STEPS:
        owner: Any = importlib.import_module(module_name)
        if "." in name:  # a class's method
            cls_name, name = name.split(".")
            owner = getattr(owner, cls_name, None)
        if hasattr(owner, name):
            label = f"{module_name.rsplit('.', 1)[1]}.{name}"
            wrapped = _wrap(label, getattr(owner, name), args.tracemalloc)
            setattr(owner, name, staticmethod(wrapped) if isinstance(owner, type) else wrapped)
    cfg = with_overrides(load_config(args.config), (), args.out, args.workers, None)
    start = time.perf_counter()
    runner.run(cfg)
    wall = time.perf_counter() - start
    final = _status()
    print(f"{'step':<22} {'s':>6} {'RSS before':>10} {'after':>7} {'peak':>7} {'arrow':>6}", end="")
    print(f" {'heap before':>11} {'after':>7} {'peak':>7}" if args.tracemalloc else "")
    for r in rows:
        line = (
            f"{r['step']:<22} {r['s']:>6} {r['rss_before_mib']:>10} {r['rss_after_mib']:>7} "
            f"{r['peak_mib']:>7} {r['arrow_pool_after_mib']:>6}"
        )
        if args.tracemalloc:
            line += f" {r['heap_before_mib']:>11} {r['heap_after_mib']:>7} {r['heap_peak_mib']:>7}"
        print(line)
    print(f"wall {wall:.1f} s; final RSS {final['VmRSS'] / MIB:.0f} MiB (MiB throughout)")
    if key_table.get("kept"):
        per = {k: round(v / key_table["kept"], 1) for k, v in key_table.items() if k != "kept"}
        print(f"key table of {key_table['kept']} kept records, bytes per record: {per}")
    if args.json:
        doc = {"wall_s": wall, "steps": rows, "key_table": key_table}
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
