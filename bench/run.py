"""Benchmark token counting against its floor, measured in the same run (`make bench`).

1. Generates `bench/data/chat_50mb.jsonl` (synthetic chat, English, Chinese and mixed; seeded,
   via bench/make_chat_jsonl.py) unless it is already there.
2. Floor: a bare loop of `enc.encode_ordinary` over every message content string (held in
   memory). Stage: the `count_tokens` stage over the same records, in batches of
   `runner.batch_size` (built before timing). Each is timed REPEAT times, alternating; the best
   CPU time (`time.process_time`, steadier than wall time when other jobs share the machine)
   of each counts. Prints the ratio stage / floor (goal: at most 1.2), wall times, the load
   average and peak RSS.
3. A full `ftprep run` with `count_tokens` over the file with `--workers 1` and `--workers 2`:
   wall time, MB/s of file and the peak RSS of the whole process tree.

Usage: .venv/bin/python bench/run.py [--mb 50] [--encoding o200k_base] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from peak_memory import tree_rss_bytes  # noqa: E402

from pipeline.records import make_batch  # noqa: E402
from pipeline.stages.count_tokens import CountTokensConfig, count_tokens  # noqa: E402
from pipeline.tokens import get_encoding  # noqa: E402

BATCH = 10_000  # the runner's default batch_size


def generate(mb: int) -> Path:
    path = DATA / f"chat_{mb}mb.jsonl"
    if path.exists() and path.stat().st_size >= mb * 1_000_000:
        print(f"data: {path} exists ({path.stat().st_size:,} bytes), reused")
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "make_chat_jsonl.py"), str(path), str(mb)],
        check=True,
    )
    return path


def load(path: Path) -> tuple[list[str], list[object]]:
    strings: list[str] = []
    batches = []
    rows: list[dict[str, object]] = []
    with open(path, "rb") as f:
        for i, line in enumerate(f):
            record = orjson.loads(line)
            messages = record["messages"]
            strings.extend(m["content"] for m in messages)
            rows.append({"kind": "chat", "messages": messages, "_line": i + 1, "_ord": i})
            if len(rows) == BATCH:
                batches.append(make_batch(rows))
                rows = []
    if rows:
        batches.append(make_batch(rows))
    return strings, batches


def floor(strings: list[str], encoding: str) -> tuple[float, float, int]:
    """(CPU s, wall s, tokens) of the bare loop."""
    encode = get_encoding(encoding).encode_ordinary
    cpu, wall = time.process_time(), time.perf_counter()
    tokens = 0
    for s in strings:
        tokens += len(encode(s))
    return time.process_time() - cpu, time.perf_counter() - wall, tokens


def stage(batches: list[object], encoding: str) -> tuple[float, float]:
    """(CPU s, wall s) of the count_tokens stage over every batch."""
    cfg = CountTokensConfig(encoding=encoding)  # type: ignore[arg-type]
    cpu, wall = time.process_time(), time.perf_counter()
    for batch in batches:
        _out, _changes = count_tokens(batch, cfg)  # type: ignore[arg-type]
    return time.process_time() - cpu, time.perf_counter() - wall


def full_run(path: Path, workers: int, encoding: str) -> tuple[float, int, int]:
    config = DATA / "bench_count_tokens.yaml"
    config.write_text(
        f"input:\n  paths: [{path}]\nstages:\n  - name: count_tokens\n    encoding: {encoding}\n"
        f"output:\n  dir: {DATA / 'out'}\n",
        encoding="utf-8",
    )
    ftprep = Path(sys.executable).parent / "ftprep"
    args = [str(ftprep), "run", str(config), "--quiet", "--workers", str(workers)]
    args += ["--out", str(DATA / f"out_w{workers}")]
    start = time.perf_counter()
    proc = subprocess.Popen(args)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss_bytes(proc.pid))
        time.sleep(0.05)
    return time.perf_counter() - start, peak, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--encoding", default="o200k_base", choices=["o200k_base", "cl100k_base"])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    path = generate(args.mb)
    size = path.stat().st_size
    strings, batches = load(path)
    content_mb = sum(len(s.encode("utf-8")) for s in strings) / 1e6
    get_encoding(args.encoding).encode_ordinary("warm up")
    floors: list[tuple[float, float]] = []
    stages: list[tuple[float, float]] = []
    tokens = 0
    for _ in range(args.repeat):
        cpu, wall, tokens = floor(strings, args.encoding)
        floors.append((cpu, wall))
        stages.append(stage(batches, args.encoding))
    (floor_cpu, floor_wall), (stage_cpu, stage_wall) = min(floors), min(stages)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{path.name}: {size / 1e6:.1f} MB, {len(strings):,} strings, {content_mb:.1f} MB of "
        f"content, {tokens:,} {args.encoding} tokens; load average {os.getloadavg()[0]:.2f} "
        f"on {os.cpu_count()} cores"
    )
    print(
        f"floor (encode_ordinary loop): {floor_cpu:.2f} CPU s ({floor_wall:.2f} s wall), "
        f"{content_mb / floor_cpu:.1f} MB/s"
    )
    print(
        f"count_tokens stage:           {stage_cpu:.2f} CPU s ({stage_wall:.2f} s wall), "
        f"{content_mb / stage_cpu:.1f} MB/s"
    )
    ratio = stage_cpu / floor_cpu
    verdict = "ok" if ratio <= 1.2 else "OVER the 1.2x goal"
    print(
        f"ratio stage / floor: {ratio:.2f}x ({verdict}); CPU s per run: floor "
        f"{[round(c, 2) for c, _ in floors]}, stage {[round(c, 2) for c, _ in stages]}"
    )
    print(f"peak RSS of this process (records held in memory): {rss:.0f} MiB")
    del strings, batches
    for workers in (1, 2):
        wall, peak, code = full_run(path, workers, args.encoding)
        print(
            f"ftprep run, count_tokens, --workers {workers}: {wall:.2f} s, "
            f"{size / 1e6 / wall:.1f} MB/s of file, peak RSS of the process tree "
            f"{peak / 2**20:.0f} MiB, exit {code}"
        )


if __name__ == "__main__":
    main()
