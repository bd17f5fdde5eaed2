"""Write a synthetic prompt/completion CSV of ROWS rows for speed and memory runs.

Usage: python bench/make_pc_csv.py OUT.csv [ROWS]   (default 300,000 rows; seeded, so the same
file every time). Prompts of 5-40 words, completions of 5-60; every 50th prompt holds a
quoted newline, as exports from spreadsheets do.
"""

from __future__ import annotations

import argparse
import csv
import random
from collections.abc import Iterator

WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "data",
    "engineers",
    "prepare",
    "training",
    "sets",
    "for",
    "models",
    "that",
    "answer",
    "questions",
    "about",
    "invoices",
    "refunds",
    "shipping",
    "and",
    "accounts",
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("out", metavar="OUT.csv", help="the file to write (replaced)")
    parser.add_argument("rows", nargs="?", type=int, default=300_000, metavar="ROWS")
    args = parser.parse_args(argv)
    if not args.out.endswith(".csv"):
        parser.error(f"{args.out}: name the output file *.csv (a safeguard against typos)")
    with open(args.out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["prompt", "completion"])
        w.writerows(pairs(args.rows))
    print(f"{args.out}: {args.rows} rows")


def pairs(rows: int) -> Iterator[tuple[str, str]]:
    """`rows` (prompt, completion) pairs, the same every time (seeded)."""
    rng = random.Random(7)
    for i in range(rows):
        prompt = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 40)))
        if i % 50 == 0:
            prompt += '\nsecond line, "quoted"'
        completion = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 60)))
        yield prompt, completion


if __name__ == "__main__":
    main()
