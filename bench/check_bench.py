"""`ftprep check` on a generated chat JSONL against a floor loop measured in the same run.

The floor: for every line, `orjson.loads` and o200k `encode_ordinary` of every message content
(what a checker that counts every token must at least do), in one process. The check:
`pipeline.checks.check_files` as `ftprep check` calls it (the streaming path), with one process
and with its default (`pipeline.checks.auto_workers`: 2 processes for a file of 8 MB or more on
2 cores), and, with --inspect, the pipeline's batch loop for the same file. The three are timed
in turn, --repeat rounds, and each keeps its best time, so a burst of load on a shared machine
hits all of them alike. Prints the wall and CPU seconds of each and the ratios check / floor
(CPU: of the busier process, for the default).

Usage: python bench/check_bench.py [--lines 100000] [--repeat 3] [--inspect] [--keep PATH]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET = "openai:gpt-4o-mini-2024-07-18"
WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "data", "engineers", "prepare", "training", "sets"]


def generate(path: Path, lines: int, seed: int = 42) -> None:
    """A chat file of `lines` records (system, user, assistant), about 60 tokens each."""
    rng = random.Random(seed)
    with open(path, "wb") as f:
        for i in range(lines):
            def text(n: int) -> str:
                return " ".join(rng.choice(WORDS) for _ in range(n))

            rec = {
                "messages": [
                    {"role": "system", "content": "You answer questions about data."},
                    {"role": "user", "content": f"{i}: {text(rng.randint(5, 25))}?"},
                    {"role": "assistant", "content": text(rng.randint(10, 40))},
                ]
            }
            f.write(orjson.dumps(rec) + b"\n")


def floor(path: Path) -> int:
    from pipeline.tokens import get_encoding

    encode = get_encoding("o200k_base").encode_ordinary
    n = 0
    with open(path, "rb") as f:
        for line in f:
            for m in orjson.loads(line)["messages"]:
                n += len(encode(m["content"]))
    return n


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def best_in_turn(
    fns: dict[str, Callable[[], object]], repeat: int
) -> dict[str, tuple[float, float, float]]:
    """Per function, over `repeat` rounds that run each once in turn: the best wall time, and
    the CPU seconds of this process and of its children in that round. On a loaded machine
    the CPU seconds say what the work costs; the wall time what a user waits."""
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            before, start = os.times(), time.perf_counter()
            fn()
            wall, after = time.perf_counter() - start, os.times()
            own = after.user - before.user + after.system - before.system
            children = (
                after.children_user - before.children_user
                + after.children_system - before.children_system
            )
            runs[name].append((wall, own, children))
    return {name: min(r) for name, r in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000, help="records to generate (default 100000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, best kept (default 3)")
    parser.add_argument("--inspect", action="store_true", help="also time the pipeline's batch loop")
    parser.add_argument("--keep", type=Path, help="write the generated file here and keep it")
    args = parser.parse_args()

    from pipeline.checks import auto_workers, check_files
    from pipeline.tokens import get_encoding

    get_encoding("o200k_base")  # loading the encoding is not what is measured
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "chat.jsonl"
        generate(path, args.lines)
        (verdict,) = check_files([str(path)], TARGET)  # warm-up, and proof it checks something
        assert verdict.records == args.lines and verdict.errors == 0, verdict.problems[:3]
        t = best_in_turn(
            {
                "floor": lambda: floor(path),
                "one": lambda: check_files([str(path)], TARGET, workers=1),
                "default": lambda: check_files([str(path)], TARGET),
            },
            args.repeat,
        )
        n = auto_workers(path)
        default = f"default ({n} process{'es' * (n > 1)})"
        print(f"{args.lines} lines, {path.stat().st_size / 1e6:.1f} MB")
        print(f"{'':58} {'wall':>7} {'CPU':>7} {'child CPU':>9}")
        for name, label in (
            ("floor", "floor (orjson.loads + o200k encode_ordinary per content)"),
            ("one", "ftprep check, 1 process"),
            ("default", "ftprep check, " + default),
        ):
            wall, own, child = t[name]
            print(f"{label:58} {wall:6.2f}s {own:6.2f}s {child:8.2f}s")
        floor_wall, floor_cpu = t["floor"][0], t["floor"][1]
        print(f"ratio check / floor, wall: {t['one'][0] / floor_wall:.2f} (1 process), "
              f"{t['default'][0] / floor_wall:.2f} ({default})")
        longest = max(t["default"][1], t["default"][2])  # the busier of parent and child
        print(f"ratio check / floor, CPU:  {t['one'][1] / floor_cpu:.2f} (1 process), "
              f"{longest / floor_cpu:.2f} ({default}: the busier process)")
        t_floor = floor_wall
        if args.inspect:
            t_inspect = best(lambda: check_files([str(path)], TARGET, stream=False), 1)
            print(f"{'ftprep check (pipeline batch loop, 1 worker)':58} {t_inspect:6.2f}s")
            print(f"ratio batch loop / floor: {t_inspect / t_floor:.2f}")


if __name__ == "__main__":
    main()
