"""`ftprep run` against its floor, measured in the same run (`make bench`, `make bench-quick`).

1. Generates its data deterministically under bench/data/ (no downloads), unless already there:
   a chat JSONL of --mb MB and one of a tenth of that (bench/make_chat_jsonl.py), and
   prompt/completion CSVs of 300,000 and --csv-rows rows (bench/make_pc_csv.py), and a
   prompt/completion XLSX workbook of --xlsx-rows rows (bench/make_pc_xlsx.py; the same rows).
2. Times, each in a fresh process, alternating, --repeat times (the best wall time counts):
   - `floor`: bench/floor.py (read, orjson, xxh3, o200k encode_ordinary, write; 2 processes);
   - `cds`: ftprep run, count_tokens + dedupe + split, 2 workers, and 1 worker;
   - `cds_small`: the same on the tenth-size file (memory must not grow with the input);
   - `full`: the full chat pipeline (normalize_text, require_fields, validate_schema,
     count_tokens, token_limit, dedupe, split, dataset_limits), 2 workers;
   - `dask`: cds on the Dask engine (a LocalCluster of 2 processes), when installed;
   - `csv_300k`, `csv_big`: the CSVs with count_tokens + dedupe + split, 2 workers;
   - `xlsx`: the workbook with count_tokens + dedupe + split, 2 workers, and `xlsx_read`: the
     XLSX reader alone over it (the parent's share of that run: it reads every row itself).
3. For each: wall s, CPU s of the whole process tree (pool and cluster processes included;
   sampled every 50 ms with psutil, the parent's own from its rusage), peak RSS of the largest
   process and of the tree, peak PSS of the tree (pages shared between processes, such as the
   tokenizer the workers inherit from their forkserver, counted once), MB/s of input and the wall ratio to the floor of the same run
   (for the chat inputs the floor reads; the others give their wall time next to it).
   JSON goes to bench/results/scale-<mb>mb-<time>.json; a short table to stdout.

Timing is noisy when other jobs share the machine: the load average is recorded before and
after; compare ratios, which are measured side by side.

Usage: python bench/scale.py [--mb 300] [--csv-rows 1000000] [--xlsx-rows 100000] [--repeat 2]
       [--only NAME,...] [--data DIR]
       [--baseline DIR]   (each case also run with another checkout, e.g. the main branch)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"  # --data DIR elsewhere
RESULTS = ROOT / "bench" / "results"
PY = sys.executable
FTPREP = [str(Path(PY).parent / "ftprep")]  # the console script of this environment

CDS = ["count_tokens", "dedupe", "split"]
FULL = [
    "normalize_text",
    "require_fields",
    "validate_schema",
    "count_tokens",
    "token_limit",
    "dedupe",
    "split",
    "dataset_limits",
]


# every row of one file through its reader, in one process, nothing else (`xlsx_read`)
READ_ONLY = (
    "import sys; from pipeline.read import read_rows; "
    "from pipeline.read.base import ReadOptions, ReadStats; from pathlib import Path; "
    "p = Path(sys.argv[1]); "
    "n = sum(1 for _ in read_rows(p, p.suffix[1:], ReadOptions(), ReadStats())); "
    "print(n)"
)


def _pss(pid: int) -> int:
    """A process's proportional set size in bytes (0 when it is gone or the kernel lacks it)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def measure(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `args`; wall, CPU of the process tree, peak RSS of its largest process and of it."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    root = psutil.Process(proc.pid)
    cpu: dict[int, float] = {}
    peak_one = peak_tree = peak_parent = peak_pss = 0
    while proc.poll() is None:
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            break
        tree = pss_tree = 0
        for p in procs:
            try:
                rss = p.memory_info().rss
                times = p.cpu_times()
            except psutil.Error:
                continue
            cpu[p.pid] = times.user + times.system
            tree += rss
            pss_tree += _pss(p.pid)
            if p.pid == proc.pid:
                peak_parent = max(peak_parent, rss)
            peak_one = max(peak_one, rss)
        peak_tree = max(peak_tree, tree)
        peak_pss = max(peak_pss, pss_tree)
        time.sleep(0.05)
    wall = time.perf_counter() - start
    _out, err = proc.communicate()
    return {
        "wall_s": round(wall, 3),
        # each process's own user + system time, as last seen (at most 50 ms before it ended);
        # not rusage of children: a pool worker reaped by its parent would count twice, and
        # the forkserver's are never reaped by the command
        "cpu_s": round(sum(cpu.values()), 2),
        "peak_rss_largest_mib": round(peak_one / 2**20),
        "peak_rss_parent_mib": round(peak_parent / 2**20),
        "peak_rss_tree_mib": round(peak_tree / 2**20),
        # the tree's own memory: RSS counts a page the workers share with their forkserver
        # (the tokenizer it loaded for them) once per process, PSS divides it between them
        "peak_pss_tree_mib": round(peak_pss / 2**20),
        "exit": proc.returncode,
        "stderr_tail": err.decode(errors="replace")[-300:] if proc.returncode > 1 else "",
    }


def config(path: Path, stages: list[str], out: Path) -> Path:
    lines = ["input:", f"  paths: [{path}]", "stages:"]
    for name in stages:
        lines.append(f"  - name: {name}")
        if name in ("count_tokens", "token_limit", "dataset_limits"):
            lines.append("    target: openai:gpt-4o-mini-2024-07-18")
    lines += ["output:", f"  dir: {out}"]
    cfg = DATA / f"scale_{path.stem}_{len(stages)}.yaml"
    cfg.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return cfg


def data_files(mb: int, csv_rows: int, xlsx_rows: int) -> dict[str, Path]:
    return {
        "chat": DATA / f"chat_{mb}mb.jsonl",
        "chat_small": DATA / f"chat_{max(1, mb // 10)}mb.jsonl",
        "csv_300k": DATA / "pc_300000.csv",
        "csv_big": DATA / f"pc_{csv_rows}.csv",
        "xlsx": DATA / f"pc_{xlsx_rows}.xlsx",
    }


def generate(files: dict[str, Path], needed: set[Path], args: argparse.Namespace) -> None:
    """Write the `needed` data files that are not there yet."""
    mb, csv_rows, xlsx_rows = args.mb, args.csv_rows, args.xlsx_rows
    for key, path in files.items():
        if path.exists() or path not in needed:
            continue
        if key.startswith("chat"):
            size = mb if key == "chat" else max(1, mb // 10)
            script = [str(ROOT / "bench" / "make_chat_jsonl.py"), str(path), str(size)]
        elif key == "xlsx":
            script = [str(ROOT / "bench" / "make_pc_xlsx.py"), str(path), str(xlsx_rows)]
        else:
            rows = 300_000 if key == "csv_300k" else csv_rows
            script = [str(ROOT / "bench" / "make_pc_csv.py"), str(path), str(rows)]
        subprocess.run([PY, *script], check=True)


def cases(files: dict[str, Path], out: Path) -> dict[str, tuple[list[str], Path]]:
    chat, small = files["chat"], files["chat_small"]
    run = [*FTPREP, "run"]
    o = ["--quiet", "--out", str(out)]
    found: dict[str, tuple[list[str], Path]] = {
        "floor": ([PY, str(ROOT / "bench" / "floor.py"), str(chat), "--workers", "2"], chat),
        "cds": ([*run, str(config(chat, CDS, out)), "--workers", "2", *o], chat),
        "cds_1worker": ([*run, str(config(chat, CDS, out)), "--workers", "1", *o], chat),
        "cds_small": ([*run, str(config(small, CDS, out)), "--workers", "2", *o], small),
        "full": ([*run, str(config(chat, FULL, out)), "--workers", "2", *o], chat),
        "csv_300k": (
            [*run, str(config(files["csv_300k"], CDS, out)), "--workers", "2", *o],
            files["csv_300k"],
        ),
        "csv_big": (
            [*run, str(config(files["csv_big"], CDS, out)), "--workers", "2", *o],
            files["csv_big"],
        ),
    }
    if files["csv_big"] == files["csv_300k"]:
        del found["csv_big"]
    found["xlsx"] = (
        [*run, str(config(files["xlsx"], CDS, out)), "--workers", "2", *o],
        files["xlsx"],
    )
    found["xlsx_read"] = ([PY, "-c", READ_ONLY, str(files["xlsx"])], files["xlsx"])
    try:
        import distributed  # noqa: F401

        found["dask"] = (
            [*run, str(config(chat, CDS, out)), "--workers", "2", "--engine", "dask", *o],
            chat,
        )
    except ImportError:
        pass
    return found


def main() -> None:
    global DATA
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--mb", type=int, default=300, help="size of the chat JSONL (MB)")
    parser.add_argument("--csv-rows", type=int, default=1_000_000)
    parser.add_argument("--xlsx-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--only", help="comma-separated case names (floor always runs)")
    parser.add_argument("--data", type=Path, help=f"where data and outputs go (default {DATA})")
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="another checkout of ftprep: each case also runs with it first on the path "
        "(as NAME@baseline), side by side in the same run",
    )
    args = parser.parse_args()
    if args.data is not None:
        DATA = args.data.resolve()

    files = data_files(args.mb, args.csv_rows, args.xlsx_rows)
    DATA.mkdir(parents=True, exist_ok=True)
    out = DATA / "scale_out"
    todo = cases(files, out)
    if args.only:
        keep = {"floor", *args.only.split(",")}
        todo = {k: v for k, v in todo.items() if k in keep}
    generate(files, {path for _cmd, path in todo.values()}, args)
    env_path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    os.environ["PYTHONPATH"] = env_path.rstrip(os.pathsep)
    envs: dict[str, dict[str, str] | None] = dict.fromkeys(todo)
    if args.baseline:
        base = str(Path(args.baseline).resolve())
        for name in [n for n in todo if n != "floor"]:
            todo[f"{name}@baseline"] = todo[name]
            envs[f"{name}@baseline"] = {**os.environ, "PYTHONPATH": base}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in todo}
    load_before = os.getloadavg()
    for _ in range(args.repeat):
        for name, (cmd, _path) in todo.items():
            result = measure(cmd, envs[name])
            runs[name].append(result)
            print(f"  {name}: {result['wall_s']:.2f} s", file=sys.stderr, flush=True)
    best = {name: min(rs, key=lambda r: r["wall_s"]) for name, rs in runs.items()}
    floor_wall = best["floor"]["wall_s"]
    rows = []
    for name, (_cmd, path) in todo.items():
        b = best[name]
        rows.append(
            {
                "case": name,
                "input": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path),
                "input_mb": round(path.stat().st_size / 1e6, 1),
                **{k: v for k, v in b.items() if k != "stderr_tail"},
                "mb_per_s": round(path.stat().st_size / 1e6 / b["wall_s"], 1),
                "ratio_to_floor": round(b["wall_s"] / floor_wall, 2)
                if path == files["chat"]
                else None,
                "walls": [r["wall_s"] for r in runs[name]],
                "stderr_tail": b["stderr_tail"],
            }
        )
    derived: dict[str, Any] = {}
    by = {r["case"]: r for r in rows}
    if "cds" in by and "cds_1worker" in by:
        derived["scaling_1_to_2_workers"] = round(
            by["cds_1worker"]["wall_s"] / by["cds"]["wall_s"], 2
        )
    if "cds" in by and "cds_small" in by:
        derived["memory_ratio_largest"] = round(
            by["cds"]["peak_rss_largest_mib"] / by["cds_small"]["peak_rss_largest_mib"], 2
        )
        derived["memory_ratio_parent"] = round(
            by["cds"]["peak_rss_parent_mib"] / by["cds_small"]["peak_rss_parent_mib"], 2
        )
        derived["memory_ratio_tree"] = round(
            by["cds"]["peak_rss_tree_mib"] / by["cds_small"]["peak_rss_tree_mib"], 2
        )
        derived["memory_ratio_pss_tree"] = round(
            by["cds"]["peak_pss_tree_mib"] / max(1, by["cds_small"]["peak_pss_tree_mib"]), 2
        )
    if "xlsx" in by and "xlsx_read" in by:
        derived["xlsx_read_share"] = round(by["xlsx_read"]["wall_s"] / by["xlsx"]["wall_s"], 2)
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cores": os.cpu_count(),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "repeat": args.repeat,
        "rows": rows,
        "derived": derived,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    target = RESULTS / f"scale-{args.mb}mb-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}.json"
    target.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"{'case':<20} {'MB':>7} {'wall s':>8} {'ratio':>6} {'CPU s':>8} {'RSS max':>8} "
        f"{'parent':>7} {'RSS tree':>9} {'PSS tree':>9} {'MB/s':>7} exit"
    )
    for r in rows:
        ratio = f"{r['ratio_to_floor']:.2f}" if r["ratio_to_floor"] is not None else "-"
        print(
            f"{r['case']:<20} {r['input_mb']:>7.1f} {r['wall_s']:>8.2f} {ratio:>6} "
            f"{r['cpu_s']:>8.1f} {r['peak_rss_largest_mib']:>8} {r['peak_rss_parent_mib']:>7} "
            f"{r['peak_rss_tree_mib']:>9} {r.get('peak_pss_tree_mib', '-'):>9} "
            f"{r['mb_per_s']:>7.1f} {r['exit']}"
        )
    print(f"derived: {derived}; load {result['load_before']} -> {result['load_after']}")
    print(f"written: {target}")


if __name__ == "__main__":
    main()
