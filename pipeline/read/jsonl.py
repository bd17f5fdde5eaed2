"""JSONL: one JSON object per line; blank lines skipped and counted; a bad line is a record.

UTF-8 files (with or without BOM) are split into byte ranges that end on a newline, and each
worker reads its own range (`plan_ranges`, `read_range`): the parent never parses them. Files
in other encodings are read sequentially through the decoder (`read`). Either way a line longer
than `input.limits.max_record_bytes` is skipped over, never held in memory.

Reason codes: `json_invalid` (the line is not valid JSON; the message is the parser's),
`record_not_object` (valid JSON, but not an object), `encoding_invalid` (the line holds bytes
that do not decode; the message has the byte offset), `record_too_large` (the line is longer
than `max_record_bytes`), `json_too_deep` (nested deeper than `max_json_depth`). Warning code:
`encoding_replaced` (with `input.encoding_errors: replace`).

An integer too long for 64 bits is kept exact (a line holding one is parsed again by the
standard library): a field that is written then fails `record_unserializable` instead of
turning silently into a float.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import orjson

from pipeline.jsonnum import exact, has_long_number
from pipeline.read.base import RawRow, ReadOptions, ReadStats, depth_over
from pipeline.read.encoding import (
    ESCAPE,
    escape_at,
    escaped_bytes,
    first_escape,
    invalid_message,
    note_confidence,
    replace_escapes,
)

_BLOCK = 1 << 22
_DEFAULT = ReadOptions()
def too_large(lineno: int, offset: int, size: int, limit: int, unit: str = "bytes") -> RawRow:
    """The reject of a record longer than `max_record_bytes` (its text is not kept)."""
    return RawRow(
        lineno,
        reason="record_too_large",
        message=(
            f"line {lineno} (byte offset {offset}) is {size} {unit} long, more than "
            f"input.limits.max_record_bytes ({limit}); it was not read. Split or shorten the "
            "record, or raise the limit"
        ),
    )


def too_deep(lineno: int, raw: str, limit: int, what: str = "line") -> RawRow:
    """The reject of a record nested deeper than `max_json_depth`."""
    return RawRow(
        lineno,
        raw=raw,
        reason="json_too_deep",
        message=(
            f"{what} {lineno} nests objects and arrays more than {limit} levels deep "
            "(input.limits.max_json_depth); flatten the record or raise the limit"
        ),
    )


def _parsed(text: bytes | str, lineno: int, opts: ReadOptions) -> RawRow:
    """The row of one non-blank line of valid text."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        if exc.msg.startswith("depth limit"):
            return too_deep(lineno, raw.rstrip("\r\n"), opts.limits.max_json_depth)
        return RawRow(
            lineno,
            raw=raw.rstrip("\r\n"),
            reason="json_invalid",
            message=f"not valid JSON at column {exc.colno}: {exc.msg}; fix or remove the line",
        )
    exactly = True
    if has_long_number(text if isinstance(text, bytes) else text.encode()):
        value = exact(text, value)
        exactly = False
    if not isinstance(value, dict):
        return RawRow(
            lineno,
            raw=_dumped(value, text),
            reason="record_not_object",
            message=f"line {lineno} is a JSON {type(value).__name__}, expected an object",
        )
    limit = opts.limits.max_json_depth
    if _brackets(text) > limit and depth_over(value, limit):  # the count is cheap, the walk not
        return too_deep(lineno, _text(text), limit)
    if exactly and isinstance(text, bytes):
        return RawRow(lineno, record=value, raw=text.rstrip(b"\r\n"))
    return RawRow(lineno, record=value)


def _brackets(text: bytes | str) -> int:
    if isinstance(text, bytes):
        return text.count(b"{") + text.count(b"[")
    return text.count("{") + text.count("[")


def _dumped(value: object, text: bytes | str) -> str:
    """A non-object value as compact JSON (its line, when too deep to write back)."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return _text(text)


def _text(line: bytes | str) -> str:
    return (line.decode("utf-8", "replace") if isinstance(line, bytes) else line).rstrip("\r\n")


def parse_line(
    line: bytes | str,
    lineno: int,
    offset: int = 0,
    opts: ReadOptions = _DEFAULT,
    encoding: str = "utf-8",
) -> RawRow | None:
    """The row for one physical line starting at byte `offset`, or None for a blank line.

    `line` is bytes (UTF-8) or text decoded with the escape handler (other encodings).
    """
    if not line.strip():
        return None
    row = _parsed(line, lineno, opts)
    if row.reason != "json_invalid":
        return row
    text = line.decode("utf-8", ESCAPE) if isinstance(line, bytes) else line
    if first_escape(text) is None:
        return row  # invalid JSON, but valid text
    if opts.encoding_errors == "replace":
        fixed, n = replace_escapes(text)
        row = _parsed(fixed, lineno, opts)
        message = f"{n} byte(s) that are not valid {encoding} replaced by U+FFFD"
        if row.record is None:
            return row
        return RawRow(lineno, record=row.record, warning=("encoding_replaced", message))
    at = escape_at(text, encoding)
    assert at is not None
    return RawRow(
        lineno,
        raw=replace_escapes(text)[0].rstrip("\r\n"),
        reason="encoding_invalid",
        message=invalid_message(encoding, lineno, offset + at[0], at[1]),
    )


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


def byte_lines(
    f: IO[bytes], start: int, end: int, max_bytes: int
) -> Iterator[tuple[int, bytes | None, int]]:
    """`(offset, line, size)` of each line in bytes [start, end), without its newline.

    `line` is None for a line longer than `max_bytes`: it is read through in blocks and never
    held in memory whole.
    """
    f.seek(start)
    pos = offset = start  # bytes read so far; where the unfinished line starts
    carry: list[bytes] = []
    carried = 0
    too_long = False
    while pos < end:
        block = f.read(min(_BLOCK, end - pos))
        if not block:
            break
        pos += len(block)
        parts = block.split(b"\n")
        for part in parts[:-1]:
            size = carried + len(part)
            if too_long or size > max_bytes:
                yield offset, None, size
            elif carry:
                carry.append(part)
                yield offset, b"".join(carry), size
            else:
                yield offset, part, size
            offset += size + 1
            carry, carried, too_long = [], 0, False
        last = parts[-1]
        if last:
            carried += len(last)
            if too_long or carried > max_bytes:
                too_long, carry = True, []
            else:
                carry.append(last)
    if carried:  # a last line without a newline
        yield offset, None if too_long else b"".join(carry), carried


def read_range(
    path: Path, start: int, end: int, first_line: int, opts: ReadOptions = _DEFAULT
) -> Iterator[RawRow | None]:
    """Rows of one byte range of a UTF-8 file; None stands for a blank line (counted by caller)."""
    limit = opts.limits.max_record_bytes
    with open(path, "rb") as f:
        for lineno, (offset, line, size) in enumerate(
            byte_lines(f, start, end, limit), start=first_line
        ):
            if line is None:
                yield too_large(lineno, offset, size, limit)
            else:
                yield parse_line(line, lineno, offset, opts)


def _text_lines(
    text: IO[str], encoding: str, start: int, max_chars: int, track: bool
) -> Iterator[tuple[int, str | None, int]]:
    """`(byte offset, line, characters)` of a decoded stream; None for a line too long.

    Byte offsets are counted only when `track` (a file with bytes that do not decode).
    """
    offset = start
    while True:
        line = text.readline(max_chars + 1)
        if not line:
            return
        size = len(line)
        nbytes = escaped_bytes(line, encoding) if track else 0
        if size > max_chars and not line.endswith("\n"):
            while True:  # read through the rest of the line
                more = text.readline(1 << 20)
                size += len(more)
                nbytes += escaped_bytes(more, encoding) if track else 0
                if not more or more.endswith("\n"):
                    break
            yield offset, None, size
        else:
            yield offset, line, size
        offset += nbytes


def read(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[RawRow]:
    """All rows of a JSONL file in any encoding, read sequentially (used for non-UTF-8 files)."""
    from pipeline.read.encoding import detect

    detected = detect(path, opts.encoding, opts.encoding_errors)
    stats.encoding = detected.encoding
    stats.bom_removed = detected.bom_removed
    stats.confidence = detected.confidence
    note_confidence(path, detected, stats)
    limit = opts.limits.max_record_bytes
    track = detected.invalid is not None
    with open(path, "rb") as raw:
        raw.seek(detected.bom_len)
        text = io.TextIOWrapper(
            raw, encoding=detected.encoding, errors=detected.errors, newline="\n"
        )
        lines = _text_lines(text, detected.encoding, detected.bom_len, limit, track)
        for lineno, (offset, line, size) in enumerate(lines, start=1):
            if line is None:
                yield too_large(lineno, offset, size, limit, "characters")
                continue
            row = parse_line(line, lineno, offset, opts, detected.encoding)
            if row is None:
                stats.blank_lines += 1
            else:
                yield row
