"""Write a synthetic chat JSONL of about SIZE bytes (default 1 GB) for memory and speed runs.

Usage: python bench/make_chat_jsonl.py OUT.jsonl [SIZE_MB]   (--help: the options)
About 60% English, 25% Chinese, 15% mixed, 2% exact duplicates; deterministic (seeded).
"""

from __future__ import annotations

import argparse
import random

import orjson

EN = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "data", "engineers", "prepare", "training", "sets"]
ZH = list("数据工程师准备训练集时需要检查编码去重切分以及每个样本的长度限制和价格估算")


def text(rng: random.Random, n: int) -> str:
    r = rng.random()
    if r < 0.6:
        return " ".join(rng.choice(EN) for _ in range(n))
    if r < 0.85:
        return "".join(rng.choice(ZH) for _ in range(n * 2))
    return " ".join(rng.choice(EN) if i % 2 else rng.choice(ZH) for i in range(n))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("out", metavar="OUT.jsonl", help="the file to write (replaced)")
    parser.add_argument(
        "size_mb", nargs="?", type=float, default=1000.0, metavar="SIZE_MB",
        help="about how many megabytes (10^6 bytes) to write (default: 1000)",
    )
    args = parser.parse_args(argv)
    if not args.out.endswith((".jsonl", ".ndjson")):
        parser.error(f"{args.out}: name the output file *.jsonl (a safeguard against typos)")
    if args.size_mb <= 0:
        parser.error("SIZE_MB must be > 0")
    out = args.out
    target = int(args.size_mb * 1_000_000)
    rng = random.Random(42)
    written = 0
    previous: list[bytes] = []
    with open(out, "wb") as f:
        i = 0
        while written < target:
            if previous and rng.random() < 0.02:
                line = rng.choice(previous)
            else:
                rec = {
                    "id": i,
                    "messages": [
                        {"role": "system", "content": text(rng, 8)},
                        {"role": "user", "content": text(rng, 40)},
                        {"role": "assistant", "content": text(rng, 90)},
                    ],
                }
                line = orjson.dumps(rec) + b"\n"
                if len(previous) < 1000:
                    previous.append(line)
            f.write(line)
            written += len(line)
            i += 1
    print(f"{out}: {written} bytes, {i} lines")


if __name__ == "__main__":
    main()
