"""CSV/TSV read by the workers: byte ranges at record boundaries, parsed with pyarrow.csv.

The parent reads the start of the file (`pipeline.read.delimited`: encoding, delimiter, header,
columns) and cuts it into byte ranges (`plan_ranges`): each ends right after a newline byte
outside quotes, told by the parity of the quote bytes counted from the first byte at C speed
(`bytes.count`). It never parses the rows. Each worker reads its range itself (`read_range`):

- **fast path**: the range is checked against the strict CSV grammar (`grammar`: a quote opens
  a field only at its start, closes it only before a delimiter, a newline or the end, ``""``
  inside; one regular expression, ~1 GB/s) and parsed by `pyarrow.csv.read_csv`, every column
  as text, nulls off. Rows start on the physical line counted from the newlines in the values.
- **fallback**: when the range does not pass the grammar check, when pyarrow refuses it (a row
  with another number of fields), when it holds blank lines, a record near
  `input.limits.max_record_bytes`, or bytes that do not decode, the range is read by the
  sequential `csv`-module reader of `pipeline.read.delimited`, so messages and rejects are
  exactly the sequential ones. A malformed record can run past the range's end (an unclosed
  quote reads on): the fallback then reads on to the next range start it reaches at a record
  boundary and says where it stopped (`Reached`), and the runner drops the units it covered.

A file is split only in an encoding where the bytes of a newline, a quote and the delimiter
never occur inside a multi-byte character (`byte_splittable`); other files (UTF-16, UTF-32,
ISO-2022 ...) are read by the parent as before.
"""

from __future__ import annotations

import codecs
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pipeline.read.base import RawRow, ReadOptions, ReadStats
from pipeline.read.delimited import Where, parse_rows
from pipeline.read.encoding import ESCAPE

_BLOCK = 1 << 22

# ASCII bytes that may be a second (third, fourth) byte of a multi-byte character, for the
# multi-byte encodings whose other bytes are all >= 0x80 (tests/test_csv_ranges.py checks each
# table against the codec). UTF-8 and the EUC family use only bytes >= 0x80 in a character.
_TRAIL_ASCII: dict[str, frozenset[int]] = {
    "utf-8": frozenset(),
    "euc_jp": frozenset(),
    "euc_jis_2004": frozenset(),
    "euc_jisx0213": frozenset(),
    "euc_kr": frozenset(),
    "gb2312": frozenset(range(0x40, 0x7F)),
    "gbk": frozenset(range(0x40, 0x7F)),
    "gb18030": frozenset(range(0x30, 0x3A)) | frozenset(range(0x40, 0x7F)),
    "big5": frozenset(range(0x40, 0x7F)),
    "big5hkscs": frozenset(range(0x40, 0x7F)),
    "cp950": frozenset(range(0x40, 0x7F)),
    "shift_jis": frozenset(range(0x40, 0x7F)),
    "cp932": frozenset(range(0x40, 0x7F)),
    "shift_jis_2004": frozenset(range(0x40, 0x7F)),
    "shift_jisx0213": frozenset(range(0x40, 0x7F)),
    "cp949": frozenset(range(0x41, 0x5B)) | frozenset(range(0x61, 0x7B)),
}


@lru_cache(maxsize=64)
def _single_byte(encoding: str) -> bool:
    """Whether every byte is one character (or an error) on its own: never the start of a
    longer sequence, never a shift into another state."""
    try:
        decoder = codecs.getincrementaldecoder(encoding)("strict")
    except LookupError:
        return False
    for b in range(256):
        decoder.reset()
        try:
            text = decoder.decode(bytes([b]))
        except UnicodeDecodeError:
            continue
        if len(text) != 1 or decoder.getstate()[0]:
            return False
    return True


def byte_splittable(encoding: str, delimiter: str) -> bool:
    """Whether a file in `encoding` can be cut and parsed by bytes: newline, quote and
    `delimiter` are each one ASCII byte, and none can be part of another character."""
    if len(delimiter) != 1 or delimiter in '"\r\n' or not delimiter.isascii():
        return False
    structure = '\r\n"' + delimiter
    try:
        if structure.encode(encoding) != structure.encode("ascii"):
            return False
    except (LookupError, UnicodeError):
        return False
    name = codecs.lookup(encoding).name
    if name in _TRAIL_ASCII:
        return not any(ord(c) in _TRAIL_ASCII[name] for c in structure)
    return _single_byte(name)


def _lines_in(data: bytes) -> int:
    """Physical line ends in `data`: CRLF, LF and CR, as `io` reads with ``newline=""``."""
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


def plan_ranges(
    path: Path, start: int, chunk_bytes: int, size: int | None = None
) -> list[tuple[int, int, int]]:
    """Byte ranges `(start, end, first_line)` of about `chunk_bytes`, each ending right after a
    newline byte at which an even number of quote bytes lies before it (from `start`); the
    first holds the first non-blank line (the header). A range never splits a CRLF."""
    size = os.path.getsize(path) if size is None else size
    ranges: list[tuple[int, int, int]] = []
    with open(path, "rb") as f:
        f.seek(start)
        head = f.read(1 << 16)
    content = len(head) - len(head.lstrip(b"\r\n"))  # blank lines before the first row
    pos, line = start, 1
    parity = 0  # quote bytes before `pos`, mod 2
    with open(path, "rb") as f:
        while pos < size:
            target = min(size, pos + max(1, chunk_bytes, content + 1 if not ranges else 1))
            f.seek(pos)
            quotes = lines = 0
            left = target - pos
            last = b""
            while left > 0:
                buf = f.read(min(left, _BLOCK))
                if not buf:
                    break
                quotes += buf.count(b'"')
                lines += _lines_in(buf) - (1 if last == b"\r" and buf[:1] == b"\n" else 0)
                last = buf[-1:]
                left -= len(buf)
            end = target
            # carry on to a newline outside quotes (and past the LF of a CRLF)
            if end < size and not (last == b"\n" and (parity + quotes) % 2 == 0):
                end, more_quotes, more_lines = _next_boundary(
                    f, end, size, (parity + quotes) % 2, last
                )
                quotes += more_quotes
                lines += more_lines
            ranges.append((pos, end, line))
            parity = (parity + quotes) % 2
            line += lines
            pos = end
    return ranges


def _next_boundary(
    f: io.BufferedReader, pos: int, size: int, parity: int, last: bytes
) -> tuple[int, int, int]:
    """From `pos` (the byte before it is `last`, the quote parity there `parity`), the offset
    just after the next LF with an even quote parity before it, and the quotes and lines read
    to reach it (the end of the file if there is none)."""
    f.seek(pos)
    quotes = lines = 0
    while pos < size:
        buf = f.read(65536)
        if not buf:
            break
        joined = 1 if last == b"\r" and buf[:1] == b"\n" else 0  # a CRLF across reads
        i = 0
        while (j := buf.find(b"\n", i)) >= 0:
            parity ^= buf.count(b'"', i, j) & 1
            if parity == 0:
                seen = buf[: j + 1]
                return pos + j + 1, quotes + seen.count(b'"'), lines + _lines_in(seen) - joined
            i = j + 1
        parity ^= buf.count(b'"', i) & 1
        quotes += buf.count(b'"')
        lines += _lines_in(buf) - joined
        last = buf[-1:]
        pos += len(buf)
    return size, quotes, lines


@lru_cache(maxsize=16)
def grammar(delimiter: str) -> re.Pattern[bytes]:
    """The strict CSV grammar over bytes: a quote only opens a field at its start and closes
    it only before the delimiter, a newline or the end; ``""`` inside a quoted field."""
    d = re.escape(delimiter.encode("ascii"))
    return re.compile(
        rb'[^"]*+(?:(?:\A|(?<=[' + d + rb'\r\n]))"(?:[^"]*+"")*+[^"]*+"(?=[' + d + rb"\r\n]|\Z)"
        rb'[^"]*+)*+'
    )


@dataclass(frozen=True)
class CsvPlan:
    """What a worker needs to read a range of one CSV/TSV file (decided by the parent)."""

    encoding: str
    delimiter: str
    columns: tuple[str, ...]
    has_header: bool
    first: int  # byte offset of the first range (past the BOM)
    size: int
    starts: tuple[int, ...]  # every range's start
    invalid: bool = False  # the file holds bytes that do not decode (input.encoding_errors)


@dataclass
class Reached:
    """Where a range's reading ended: its end, or a later range start (fallback only)."""

    offset: int = -1
    fast: bool = False


def read_range(
    path: Path,
    span: tuple[int, int, int],
    plan: CsvPlan,
    opts: ReadOptions,
    stats: ReadStats,
    reached: Reached,
) -> Iterator[RawRow]:
    """Rows of one byte range; blank lines and empty rows are counted in `stats`."""
    rows = _fast(path, span, plan, opts, stats)
    if rows is not None:
        reached.offset, reached.fast = span[1], True
        yield from rows
        return
    yield from _fallback(path, span, plan, opts, stats, reached)


def _fast(
    path: Path, span: tuple[int, int, int], plan: CsvPlan, opts: ReadOptions, stats: ReadStats
) -> list[RawRow] | None:
    """The rows of a range that passes the strict grammar, parsed by pyarrow; None when the
    range needs the sequential reader."""
    start, end, first_line = span
    if plan.invalid or end - start >= opts.limits.max_record_bytes:
        return None
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(end - start)
    if grammar(plan.delimiter).fullmatch(data) is None:
        return None
    physical = _lines_in(data) + (0 if data.endswith((b"\n", b"\r")) or not data else 1)
    if codecs.lookup(plan.encoding).name != "utf-8":
        data = data.decode(plan.encoding).encode("utf-8")
    n = len(plan.columns)
    columns = _parse(data, plan.delimiter, n)
    if columns is None:
        return None
    nrows = len(columns[0]) if columns else 0
    if physical == nrows:
        spans = None
    else:
        spans = [1] * nrows
        for values in columns:
            for i, v in enumerate(values):
                if "\n" in v or "\r" in v:
                    spans[i] += _lines_in(v.encode("utf-8"))
        if sum(spans) != physical:
            return None  # blank lines (pyarrow skips them): the sequential reader counts them
    header = list(plan.columns)
    rows: list[RawRow] = []
    line = first_line
    skip_header = plan.has_header and start == plan.first
    for i, fields in enumerate(zip(*columns, strict=True)):
        at = line
        line += 1 if spans is None else spans[i]
        if skip_header:
            skip_header = False
            continue
        if not any(fields):
            stats.empty_rows += 1
            continue
        rows.append(RawRow(line=at, record=dict(zip(header, fields, strict=True))))
    return rows


def _parse(data: bytes, delimiter: str, n: int) -> list[list[str]] | None:
    """The columns of UTF-8 CSV `data` as text (pyarrow), or None if it refuses the data."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    names = [f"c{i}" for i in range(n)]
    try:
        table = pcsv.read_csv(
            io.BytesIO(data),
            read_options=pcsv.ReadOptions(
                column_names=names, use_threads=False, block_size=max(1 << 20, len(data) + 1)
            ),
            parse_options=pcsv.ParseOptions(
                delimiter=delimiter,
                quote_char='"',
                double_quote=True,
                escape_char=False,
                newlines_in_values=True,
                ignore_empty_lines=True,
            ),
            convert_options=pcsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowException):
        return None
    return [table.column(i).to_pylist() for i in range(n)]


def _fallback(
    path: Path,
    span: tuple[int, int, int],
    plan: CsvPlan,
    opts: ReadOptions,
    stats: ReadStats,
    reached: Reached,
) -> Iterator[RawRow]:
    """The range read by the sequential `csv`-module reader, on past its end if a record
    runs over it, to the first range start reached at a record boundary."""
    start, end, first_line = span
    starts = frozenset(plan.starts)
    where = Where(start, first_line)
    reached.offset = plan.size
    first = start == plan.first
    raw = open(path, "rb")  # noqa: SIM115 - closed with the text stream
    try:
        raw.seek(start)
        text = io.TextIOWrapper(
            raw, encoding=plan.encoding, errors=ESCAPE if plan.invalid else "strict", newline=""
        )
    except BaseException:
        raw.close()
        raise
    with text:
        stopped = False

        def stop(offset: int) -> bool:
            nonlocal stopped
            stopped = offset >= end and offset in starts
            return stopped

        yield from parse_rows(
            path,
            text,
            where,
            plan.delimiter,
            opts,
            stats,
            plan.has_header,
            plan.encoding if plan.invalid else None,
            header=None if first else list(plan.columns),
            stop=stop,
            encoding=plan.encoding,
        )
        if stopped:
            reached.offset = where.offset
