"""Benchmark: `ftprep run` with `dedupe` in `mode: near` against `mode: exact`, in one run.

Usage: python bench/dedupe_bench.py [--records 1000000] [--workers N] [--repeat 1]

Generates short prompt/completion records (JSONL in bench/data/, gitignored; ~10% Chinese, 3%
exact duplicates, 3% near duplicates: case and punctuation changed, or a word appended) once,
then runs the same pipeline twice, `dedupe` exact and `dedupe` near, each in its own
`ftprep run` process. Prints each wall time, the ratio near / exact (target <= 1.5) of the
best run of each, the peak RSS of the largest process (getrusage of the children of a wrapper
started per run) and of the whole process tree (parent and workers, polled every 50 ms), and
the stage's reports.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
sys.path.insert(0, str(HERE))
from peak_memory import tree_rss_bytes  # noqa: E402

TARGET_RATIO = 1.5
# Runs a command and prints the peak RSS of its largest process (getrusage of the children:
# the ftprep parent and, through the pool, its workers), in KiB.
_WRAPPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(code)\n"
)


def generate(path: Path, n: int, seed: int = 7) -> None:
    """n short records, deterministic; written to a temporary file and renamed."""
    rng = np.random.default_rng(seed)
    syllables = [a + b for a in "bcdfghjklmnprstvwz" for b in ("a", "e", "i", "o", "u", "ai", "ou")]
    lengths = rng.integers(1, 4, 20_000)
    picks = rng.integers(0, len(syllables), (20_000, 3))
    vocab = np.array(["".join(syllables[p] for p in picks[i, : lengths[i]]) for i in range(20_000)])
    han = np.array([chr(c) for c in rng.integers(0x4E00, 0x4E00 + 3000, 3000)])
    kind = rng.random(n)  # < 0.03 exact duplicate, < 0.06 near duplicate, else fresh
    chinese = rng.random(n) < 0.10
    tmp = path.with_suffix(".tmp")
    records: list[tuple[str, str]] = []
    with open(tmp, "wb") as f:
        for i in range(n):
            if i > 100 and kind[i] < 0.06:
                prompt, completion = records[int(rng.integers(0, len(records)))]
                if kind[i] >= 0.03:  # near: punctuation and case, or one more word
                    if rng.random() < 0.5:
                        prompt = prompt.capitalize() + "?"
                    else:
                        completion = completion + " " + str(vocab[int(rng.integers(0, 20_000))])
            elif chinese[i]:
                prompt = "".join(han[rng.integers(0, 3000, int(rng.integers(12, 30)))])
                completion = "".join(han[rng.integers(0, 3000, int(rng.integers(8, 24)))])
            else:
                prompt = " ".join(vocab[rng.integers(0, 20_000, int(rng.integers(8, 18)))])
                completion = " ".join(vocab[rng.integers(0, 20_000, int(rng.integers(6, 14)))])
            if len(records) < 200_000:
                records.append((prompt, completion))
            else:
                records[int(rng.integers(0, 200_000))] = (prompt, completion)
            f.write(orjson.dumps({"prompt": prompt, "completion": completion}) + b"\n")
    tmp.rename(path)


def run_mode(mode: str, data: Path, workers: int | None) -> dict[str, object]:
    """One `ftprep run` in a child process: wall time, peak RSS, the dedupe report."""
    out = DATA / f"out_{mode}"
    config = DATA / f"dedupe_{mode}.json"  # JSON is YAML
    runner = {"workers": workers} if workers else {}
    config.write_text(
        json.dumps(
            {
                "input": {"paths": [str(data)]},
                "stages": [{"name": "dedupe", "mode": mode}],
                "output": {"dir": str(out)},
                "runner": runner,
            }
        )
    )
    ftprep = Path(sys.executable).with_name("ftprep")
    start = time.perf_counter()
    # a fresh wrapper per run, so that its getrusage(RUSAGE_CHILDREN) is this run's alone
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRAPPER, str(ftprep), "run", str(config), "--quiet"],
        stdout=subprocess.PIPE,
    )
    tree_peak = 0
    while proc.poll() is None:
        tree_peak = max(tree_peak, tree_rss_bytes(proc.pid))
        time.sleep(0.05)
    wall = time.perf_counter() - start
    assert proc.stdout is not None
    max_process_kib = int(proc.stdout.read().split()[-1])
    if proc.returncode:
        raise SystemExit(f"ftprep run failed for mode {mode} (exit {proc.returncode})")
    report = orjson.loads((out / "report.json").read_bytes())
    return {
        "wall": wall,
        "max_process_mib": max_process_kib / 1024,
        "tree_peak_mib": tree_peak / 2**20,
        "report": report["dataset"]["dedupe"],
        "totals": report["totals"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=None, help="default: one per core")
    parser.add_argument("--repeat", type=int, default=1, help="runs per mode; the best is kept")
    args = parser.parse_args()
    DATA.mkdir(exist_ok=True)
    data = DATA / f"dedupe_{args.records}.jsonl"
    if not data.exists():
        start = time.perf_counter()
        generate(data, args.records)
        print(f"generated {data} in {time.perf_counter() - start:.1f} s")
    size = data.stat().st_size
    print(
        f"{args.records} records, {size / 2**20:.0f} MiB, workers {args.workers or os.cpu_count()}"
    )
    results: dict[str, dict[str, object]] = {}
    for _ in range(args.repeat):
        for mode in ("exact", "near"):
            r = run_mode(mode, data, args.workers)
            best = results.get(mode)
            if best is None or float(r["wall"]) < float(best["wall"]):  # type: ignore[arg-type]
                results[mode] = r
            print(
                f"{mode:>5}: wall {r['wall']:.1f} s, peak RSS: largest process "
                f"{r['max_process_mib']:.0f} MiB, process tree {r['tree_peak_mib']:.0f} MiB; "
                f"totals {r['totals']}"
            )
    exact, near = results["exact"], results["near"]
    ratio = float(near["wall"]) / float(exact["wall"])  # type: ignore[arg-type]
    rep = near["report"]
    assert isinstance(rep, dict)
    print(
        f"near report: {rep['near_duplicates']} near duplicates in {rep['clusters']} clusters, "
        f"{rep['candidate_pairs']} candidate pairs, {rep['verified_pairs']} verified, "
        f"LSH {rep['lsh_bands']} bands x {rep['lsh_rows']} rows, "
        f"{rep['key_bytes_per_record']} key bytes per record"
    )
    erep = exact["report"]
    assert isinstance(erep, dict)
    print(f"exact report: {erep['duplicates']} duplicates in {erep['classes']} classes")
    verdict = "ok" if ratio <= TARGET_RATIO else f"OVER the {TARGET_RATIO}x target"
    print(
        f"ratio near / exact: {ratio:.2f} ({verdict}); exact {exact['wall']:.1f} s, "
        f"near {near['wall']:.1f} s"
    )


if __name__ == "__main__":
    main()
