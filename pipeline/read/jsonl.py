"""JSONL: one JSON object per line; blank lines skipped and counted; a bad line is a record.

UTF-8 files (with or without BOM) are split into byte ranges that end on a newline, and each
worker reads its own range (`plan_ranges`, `read_range`): the parent never parses them. Files
in other encodings are read sequentially through the decoder (`read`).

Reason codes: `json_invalid` (the line is not valid JSON; the message is the parser's),
`record_not_object` (valid JSON, but not an object).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import orjson

from pipeline.read.base import RawRow, ReadOptions, ReadStats

_BLOCK = 1 << 22


def parse_line(line: bytes | str, lineno: int) -> RawRow | None:
    """The row for one physical line, or None for a blank line."""
    if not line.strip():
        return None
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raw = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
        return RawRow(
            lineno,
            raw=raw.rstrip("\r\n"),
            reason="json_invalid",
            message=f"not valid JSON at column {exc.colno}: {exc.msg}; fix or remove the line",
        )
    if not isinstance(value, dict):
        return RawRow(
            lineno,
            raw=orjson.dumps(value).decode(),
            reason="record_not_object",
            message=f"line {lineno} is a JSON {type(value).__name__}, expected an object",
        )
    return RawRow(lineno, record=value)


def plan_ranges(path: Path, start: int, chunk_bytes: int) -> list[tuple[int, int, int]]:
    """Byte ranges `(start, end, first_line)` of about `chunk_bytes`, each ending on a newline."""
    ranges: list[tuple[int, int, int]] = []
    size = os.path.getsize(path)
    pos, line = start, 1
    with open(path, "rb") as f:
        while pos < size:
            end = min(pos + chunk_bytes, size)
            f.seek(pos)
            newlines, left = 0, end - pos
            while left > 0:
                buf = f.read(min(left, _BLOCK))
                newlines += buf.count(b"\n")
                left -= len(buf)
            if end < size:
                f.seek(end - 1)
                if f.read(1) != b"\n":
                    while True:  # carry on to the end of the current line
                        buf = f.read(65536)
                        if not buf:
                            end = size
                            break
                        i = buf.find(b"\n")
                        if i >= 0:
                            end += i + 1
                            newlines += 1
                            break
                        end += len(buf)
            ranges.append((pos, end, line))
            line += newlines
            pos = end
    return ranges


def read_range(path: Path, start: int, end: int, first_line: int) -> Iterator[RawRow | None]:
    """Rows of one byte range of a UTF-8 file; None stands for a blank line (counted by caller)."""
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(end - start)
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for i, line in enumerate(lines):
        yield parse_line(line, first_line + i)


def read(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[RawRow]:
    """All rows of a JSONL file in any encoding, read sequentially (used for non-UTF-8 files)."""
    from pipeline.read.encoding import detect

    detected = detect(path, opts.encoding)
    stats.encoding = detected.encoding
    stats.bom_removed = detected.bom_removed
    stats.confidence = detected.confidence
    with open(path, "rb") as raw:
        raw.seek(detected.bom_len)
        text = io.TextIOWrapper(raw, encoding=detected.encoding, errors="strict", newline="\n")
        for lineno, line in enumerate(text, start=1):
            row = parse_line(line, lineno)
            if row is None:
                stats.blank_lines += 1
            else:
                yield row
