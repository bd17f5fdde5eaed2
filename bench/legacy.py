"""`ftprep run` against OpenAI's legacy `openai tools fine_tunes.prepare_data` (`make bench-legacy`).

The legacy tool is openai 0.28.1's (the last 0.x release; 1.x removed it), in a venv of its own
holding openai==0.28.1, pandas==2.1.1, numpy==1.26.4 and openpyxl==3.1.2 (--venv DIR; `make
bench-legacy` creates bench/.legacy-venv). The two run side by side on the same input:

1. The prompt/completion CSV of --rows rows, DATA/pc_<rows>.csv (bench/make_pc_csv.py, the file
   bench/scale.py uses), is generated unless already there.
2. Alternating, --repeat times, each in a fresh process (bench/scale.py's `measure()`):
   - `legacy`: `DIR/bin/openai tools fine_tunes.prepare_data -f COPY -q` on a fresh copy of the
     CSV in DATA/legacy_scratch/ (it writes COPY_prepared*.jsonl next to it), stdin from
     /dev/null, its stdout and stderr kept in DATA/legacy_scratch/stdout.txt and stderr.txt;
   - `ftprep`: `ftprep run` with count_tokens + dedupe + split on 2 workers (the `csv_300k` case
     of bench/scale.py), output in DATA/legacy_ftprep_out/.
3. For each: wall s, CPU s of the process tree, peak RSS of the largest process and of the tree
   (MiB), exit code, rows written (lines of the legacy *_prepared*.jsonl files; of ftprep's
   train and validation files). The best wall time of each counts; the ratios legacy/ftprep of
   the best runs are printed with a short table, and everything goes to
   bench/results/legacy-<rows>-<time>.json with the load average before and after.

Usage: python bench/legacy.py --venv DIR [--rows 300000] [--repeat 2] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale  # bench/ is on the path now
from scale import CDS, FTPREP, PY, RESULTS, ROOT, config, measure

# What each tool does that the other does not, in this comparison (from the legacy tool's
# source and probes; ftprep's from its stages' documentation).
NOTES = {
    "legacy": [
        "reads the whole CSV into one pandas DataFrame (pd.read_csv, dtype=str) and builds the "
        "whole output string in memory (DataFrame.to_json); single-threaded",
        "no tokenizer: its only length check is len(prompt) + len(completion) > 10000 characters",
        "runs 15 validators; with -q it applies every fix it recommends: drops empty "
        "completions (including pandas NA strings such as NA, None, null), drops exact "
        "duplicate prompt/completion pairs, drops rows over 10000 characters, lower-cases a "
        "whole column if more than a third of its cased letters are upper-case, cuts a common "
        "prompt prefix longer than 12 characters and a common completion prefix of 5 or more, "
        "appends a separator to every prompt when they share no suffix, appends an ending to "
        "every completion when they share none, and, when not every completion starts with a "
        "space, prepends one to each that does not (on bench/make_pc_csv.py's data: separator "
        "'\\n\\n###\\n\\n', ending '\\n' and the space; no row dropped, nothing lower-cased)",
        "splits into train/validation only when it infers a classification task (distinct "
        "completions < rows / 3); otherwise writes one <stem>_prepared.jsonl",
        "writes its report as prose on stdout; no machine-readable report",
    ],
    "ftprep": [
        "count_tokens: counts the tokens of every prompt and completion with o200k_base "
        "(target openai:gpt-4o-mini-2024-07-18) and writes them to metrics.parquet",
        "dedupe (exact): rejects records whose canonical content has the same 128-bit xxh3 "
        "hash as an earlier one, keeping the first",
        "split: always writes train.jsonl and validation.jsonl, round(0.2 * n) records to "
        "validation chosen by a seeded content hash (no cap)",
        "reads the CSV in byte ranges in 2 worker processes and streams its outputs; writes "
        "report.json, report.md, report.html, metrics.parquet and rejected.jsonl besides the "
        "data",
        "changes no text: no lower-casing, prefix cutting, separators or completion endings",
    ],
}


def lines(paths: list[Path]) -> int:
    n = 0
    for p in paths:
        with p.open("rb") as f:
            n += sum(1 for _ in f)
    return n


def run_legacy(venv: Path, csv: Path, scratch: Path) -> dict[str, Any]:
    """One run of the legacy tool on a fresh copy of `csv` in `scratch` (emptied first)."""
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    copy = scratch / csv.name
    shutil.copyfile(csv, copy)
    tool = str(venv / "bin" / "openai")
    # sh execs the tool itself (same pid): only the redirections are the shell's
    cmd = [
        "sh",
        "-c",
        'exec "$0" "$@" </dev/null >"$STDOUT" 2>"$STDERR"',
        tool,
        "tools",
        "fine_tunes.prepare_data",
        "-f",
        str(copy),
        "-q",
    ]
    out_txt, err_txt = scratch / "stdout.txt", scratch / "stderr.txt"
    env = {**os.environ, "STDOUT": str(out_txt), "STDERR": str(err_txt)}
    result = measure(cmd, env)
    written = sorted(scratch.glob(f"{copy.stem}_prepared*.jsonl"))
    stdout = out_txt.read_text(encoding="utf-8", errors="replace")
    stderr = err_txt.read_text(encoding="utf-8", errors="replace")
    result.update(
        {
            "rows_written": lines(written),
            "outputs": [p.name for p in written],
            "stdout_bytes": len(stdout.encode()),
            "stdout": stdout[:4000],
            "stderr_tail": stderr[-1000:],
        }
    )
    return result


def run_ftprep(cfg: Path, out: Path) -> dict[str, Any]:
    if out.exists():
        shutil.rmtree(out)
    cmd = [*FTPREP, "run", str(cfg), "--workers", "2", "--quiet", "--out", str(out)]
    result = measure(cmd)
    train = sorted(out.glob("train*.jsonl"))
    validation = sorted(out.glob("validation*.jsonl"))
    result.update(
        {
            "rows_written": lines(train + validation),
            "rows_train": lines(train),
            "rows_validation": lines(validation),
            "outputs": [p.name for p in train + validation],
        }
    )
    return result


KEYS = ["wall_s", "cpu_s", "peak_rss_largest_mib", "peak_rss_tree_mib"]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--venv", type=Path, required=True, help="venv holding openai==0.28.1")
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--data", type=Path, default=scale.DATA, help="data and outputs")
    args = parser.parse_args()
    venv = args.venv.resolve()
    if not (venv / "bin" / "openai").exists():
        parser.error(f"{venv}/bin/openai not found: create the venv (make bench-legacy)")
    data = args.data.resolve()
    data.mkdir(parents=True, exist_ok=True)
    scale.DATA = data  # where config() writes its YAML

    csv = data / f"pc_{args.rows}.csv"
    if not csv.exists():
        subprocess.run(
            [PY, str(ROOT / "bench" / "make_pc_csv.py"), str(csv), str(args.rows)], check=True
        )
    out = data / "legacy_ftprep_out"
    scratch = data / "legacy_scratch"
    cfg = config(csv, CDS, out)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in [str(ROOT), os.environ.get("PYTHONPATH", "")] if p
    )
    versions = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import openai, pandas, numpy, openpyxl, sys; print(sys.version.split()[0], "
            "openai.version.VERSION, pandas.__version__, numpy.__version__, "
            "openpyxl.__version__)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()

    runs: dict[str, list[dict[str, Any]]] = {"legacy": [], "ftprep": []}
    load_before = os.getloadavg()
    for _ in range(args.repeat):
        r = run_legacy(venv, csv, scratch)
        runs["legacy"].append(r)
        print(f"  legacy: {r['wall_s']:.2f} s, exit {r['exit']}", file=sys.stderr, flush=True)
        r = run_ftprep(cfg, out)
        runs["ftprep"].append(r)
        print(f"  ftprep: {r['wall_s']:.2f} s, exit {r['exit']}", file=sys.stderr, flush=True)
    load_after = os.getloadavg()

    best = {name: min(rs, key=lambda r: r["wall_s"]) for name, rs in runs.items()}
    ratios = {
        k: round(best["legacy"][k] / best["ftprep"][k], 2) if best["ftprep"][k] else None
        for k in KEYS
    }
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cores": os.cpu_count(),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
        "repeat": args.repeat,
        "input": str(csv.relative_to(ROOT)) if csv.is_relative_to(ROOT) else str(csv),
        "input_rows": args.rows,
        "input_mb": round(csv.stat().st_size / 1e6, 1),
        "legacy_env": dict(
            zip(["python", "openai", "pandas", "numpy", "openpyxl"], versions, strict=False)
        ),
        "legacy_command": "openai tools fine_tunes.prepare_data -f COPY -q </dev/null",
        "ftprep_command": "ftprep run CONFIG --workers 2 --quiet (count_tokens, dedupe, split)",
        "best": best,
        "runs": runs,
        "ratio_legacy_over_ftprep": ratios,
        "notes": NOTES,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    target = RESULTS / f"legacy-{args.rows}-{stamp}.json"
    target.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    print(
        f"{'tool':<8} {'wall s':>8} {'CPU s':>8} {'RSS max':>8} {'RSS tree':>9} "
        f"{'rows out':>9} exit  walls"
    )
    for name in ("legacy", "ftprep"):
        b = best[name]
        walls = ", ".join(f"{r['wall_s']:.2f}" for r in runs[name])
        print(
            f"{name:<8} {b['wall_s']:>8.2f} {b['cpu_s']:>8.1f} {b['peak_rss_largest_mib']:>8} "
            f"{b['peak_rss_tree_mib']:>9} {b['rows_written']:>9} {b['exit']:>4}  {walls}"
        )
    print(
        "legacy/ftprep: "
        + ", ".join(f"{k} {v}x" for k, v in ratios.items())
        + f"; load {result['load_before']} -> {result['load_after']}"
    )
    print(f"written: {target}")


if __name__ == "__main__":
    main()
