"""Write a synthetic prompt/completion XLSX workbook of ROWS rows for speed and memory runs.

Usage: python bench/make_pc_xlsx.py OUT.xlsx [ROWS]   (default 100,000 rows; seeded, so the same
rows every time). The rows are bench/make_pc_csv.py's (prompts of 5-40 words, completions of
5-60, every 50th prompt with a newline), under a header `id, prompt, completion` with the row
number as an integer `id` cell; written with openpyxl's write-only mode, which stores the text
as inline strings (a spreadsheet program would use shared strings; both are read the same way).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from openpyxl import Workbook

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_pc_csv import pairs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("out", metavar="OUT.xlsx", help="the file to write (replaced)")
    parser.add_argument("rows", nargs="?", type=int, default=100_000, metavar="ROWS")
    args = parser.parse_args(argv)
    if not args.out.endswith(".xlsx"):
        parser.error(f"{args.out}: name the output file *.xlsx (a safeguard against typos)")
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("data")
    ws.append(["id", "prompt", "completion"])
    for i, (prompt, completion) in enumerate(pairs(args.rows), start=1):
        ws.append([i, prompt, completion])
    wb.save(args.out)
    print(f"{args.out}: {args.rows} rows")


if __name__ == "__main__":
    main()
