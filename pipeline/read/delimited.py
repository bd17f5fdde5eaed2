"""CSV and TSV files: the csv module over the decoded text stream, one record per data row.

- Encoding: `pipeline.read.encoding.detect` (BOM, strict UTF-8, chardet, or the override).
- Delimiter: ``input.delimiter`` if set. Otherwise "," for CSV and a tab for TSV, unless the
  header line does not contain it: then `csv.Sniffer` chooses among ``, ; TAB |``.
- Line endings: CRLF, LF, CR and mixtures; a quoted field keeps its newline characters exactly
  as in the file (the normalize stage turns CRLF into LF later).
- The first row is the header when ``input.header`` is true, or, with ``auto`` (the default),
  when `pipeline.read.header` finds it looks like one; otherwise it is a record and the columns
  are ``column_1``, ``column_2`` ... (its width). Names are stripped of a BOM and whitespace;
  an empty name becomes ``column_N`` (N = 1-based position, so a header ending with a delimiter has a real
  last column, ``column_5`` for ``a,b,c,d,``); a repeated name gets ``_2``, ``_3`` ...
- Each data row becomes ``{header: value}`` with str values (an empty cell is ``""``).
- A row whose field count differs from the header's is rejected as ``row_malformed``, with
  ``raw`` = its fields joined by the delimiter. Columns are never shifted or padded.
- Quoting is parsed strictly (``strict=True``): a quoted field that is never closed, or text
  after a closing quote (``"ab"cd``), rejects that row as ``row_malformed`` with ``raw`` = its
  physical lines, and reading goes on at the next line. A header that cannot be parsed fails.
- Blank lines are skipped and counted (``stats.blank_lines``); rows whose every field is empty
  are skipped and counted (``stats.empty_rows``).
- ``RawRow.line`` is the 1-based physical line where the record starts (the header is line 1).

A run reads most files in the workers, by byte ranges (`pipeline.read.csv_ranges`): this
module decides the encoding, delimiter and header from the start of the file, and its
`parse_rows` is the exact reference the ranges fall back to.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from pipeline.errors import PipelineError
from pipeline.read.base import RawRow, ReadOptions, ReadStats
from pipeline.read.encoding import (
    detect,
    escape_at,
    escaped_bytes,
    first_escape,
    invalid_message,
    note_confidence,
    open_text,
    replace_escapes,
)
from pipeline.read.header import SAMPLE_ROWS, decide, numbered

SNIFF_CHARS = 64 * 1024  # characters read to find the header line and sniff the delimiter
SNIFF_DELIMITERS = ",;\t|"
MALFORMED = "row_malformed"
TOO_LARGE = "record_too_large"


def clean_header(names: Iterable[str]) -> list[str]:
    """Header names as records use them: stripped, never empty, never repeated.

    An empty name becomes ``column_N`` (N = 1-based position); the second ``x`` becomes
    ``x_2``, the third ``x_3`` (skipping any suffix that is already a name).
    """
    cleaned = [str(n).replace("\ufeff", "").strip() for n in names]
    cleaned = [n or f"column_{i}" for i, n in enumerate(cleaned, start=1)]
    taken = set(cleaned)
    seen: set[str] = set()
    out: list[str] = []
    for name in cleaned:
        if name in seen:
            k = 2
            while f"{name}_{k}" in taken:
                k += 1
            name = f"{name}_{k}"
            taken.add(name)
        seen.add(name)
        out.append(name)
    return out


def _header_line(sample: str) -> str:
    """The first non-blank physical line of ``sample``."""
    for line in sample.splitlines():
        if line.strip():
            return line
    return ""


def choose_delimiter(sample: str, default: str) -> str:
    """``default`` if the header line contains it, else the sniffed delimiter.

    Falls back to the candidate that is most frequent in the header line when the sniffer
    cannot decide, and to ``default`` when the header contains no candidate at all (a
    one-column file).
    """
    header = _header_line(sample)
    if default in header:
        return default
    present = [c for c in SNIFF_DELIMITERS if c in header]
    if not present:
        return default
    # Sniff complete lines only: a cut-off last line would skew the counts.
    cut = max(sample.rfind("\n"), sample.rfind("\r"))
    text = sample[: cut + 1] if cut > 0 else sample
    try:
        sniffed = csv.Sniffer().sniff(text, delimiters=SNIFF_DELIMITERS).delimiter
    except csv.Error:
        sniffed = ""
    if sniffed in present:
        return sniffed
    return max(present, key=header.count)


class _LineTooLong(Exception):
    """A physical line longer than `max_record_bytes` (read through, not kept)."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


class _Lines:
    """Iterates a text stream by physical line, keeping the lines of the current row.

    Counts the lines handed out, and, when `encoding` is given (a file with bytes that do not
    decode), the byte offset where the current row starts. A line longer than `max_chars`
    raises `_LineTooLong` after it has been read through.
    """

    def __init__(self, stream: TextIO, max_chars: int, encoding: str | None, start: int) -> None:
        self._stream = stream
        self._buffer: list[str] = []
        self._max = max_chars
        self._encoding = encoding
        self.count = 0  # physical lines read
        self.offset = start  # byte offset of the row being read (tracked with `encoding` only)

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = self._stream.readline(self._max + 1)
        if not line:
            raise StopIteration
        self.count += 1
        self._buffer.append(line)
        if len(line) > self._max and not line.endswith(("\n", "\r")):
            size = len(line)
            while True:
                more = self._stream.readline(1 << 20)
                size += len(more)
                if self._encoding is not None:
                    self._buffer.append(more)
                if not more or more.endswith(("\n", "\r")):
                    break
            raise _LineTooLong(size)
        return line

    def take(self) -> str:
        """The raw text read since the last call."""
        text = "".join(self._buffer)
        self._buffer.clear()
        if self._encoding is not None:
            self.offset += escaped_bytes(text, self._encoding)
        return text


def _lines_text(start: int, end: int) -> str:
    return f"line {start}" if end <= start else f"lines {start}-{end}"


def _hint(error: csv.Error) -> str:
    text = str(error)
    if "unexpected end of data" in text:
        return "; a quoted field is never closed"
    if "expected after" in text:
        return '; text follows a closing quote (write a quote inside a quoted field as "")'
    return ""


def _read_delimited(
    path: Path, opts: ReadOptions, stats: ReadStats, default: str
) -> Iterator[RawRow]:
    path = Path(path)
    detected = detect(path, opts.encoding, opts.encoding_errors)
    stats.encoding = detected.encoding
    stats.bom_removed = detected.bom_removed
    stats.confidence = detected.confidence
    stats.bom_len = detected.bom_len
    stats.invalid = detected.invalid is not None

    note_confidence(path, detected, stats)
    with open_text(path, detected) as f:
        sample = f.read(SNIFF_CHARS)
    # an explicit setting is never second-guessed
    delimiter = opts.delimiter or choose_delimiter(sample, default)
    if len(delimiter) != 1:
        raise PipelineError(
            f"{path}: input.delimiter must be one character, got {delimiter!r}; "
            "use '\\t' for a tab."
        )
    stats.delimiter = delimiter
    first, below = first_rows(sample, delimiter, complete=len(sample) < SNIFF_CHARS)
    has_header = decide(opts.header, first, below, stats) if first else opts.header is not False

    tracked = detected.encoding if detected.invalid is not None else None
    with open_text(path, detected) as f:
        yield from parse_rows(
            path,
            f,
            Where(detected.bom_len, 1),
            delimiter,
            opts,
            stats,
            has_header,
            tracked,
            encoding=detected.encoding,
        )


@dataclass
class Where:
    """Where reading starts (`offset`, the byte offset; `line`, its 1-based physical line),
    and, after `parse_rows` stopped early, the byte offset of the next record (`offset`)."""

    offset: int
    line: int


def parse_rows(
    path: Path,
    f: TextIO,
    where: Where,
    delimiter: str,
    opts: ReadOptions,
    stats: ReadStats,
    has_header: bool,
    tracked: str | None,
    *,
    header: list[str] | None = None,
    stop: Callable[[int], bool] | None = None,
    encoding: str = "utf-8",
) -> Iterator[RawRow]:
    """The rows of the text stream `f`, which starts at a record start, at `where`.

    `tracked` is the encoding of a file with bytes that do not decode (offsets in messages,
    the escaped bytes found); `header` is the file's columns when `f` starts after its first
    row. `encoding` is the file's. With `stop`, the byte offset of each record start is given to
    it before the record is read: when it says so, reading ends there (`where.offset`).
    """
    limit = opts.limits.max_record_bytes
    csv.field_size_limit(limit)  # in characters: csv's default (131,072) is too small
    lines = _Lines(f, limit, encoding if tracked or stop else None, where.offset)
    lines.count = where.line - 1
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    while True:
        start = lines.count + 1
        offset = lines.offset
        if stop is not None and stop(offset):
            where.offset = offset
            return
        try:
            fields = next(reader)
        except StopIteration:
            break
        except (csv.Error, _LineTooLong) as e:
            raw = lines.take()
            span = _lines_text(start, lines.count)
            if header is None and has_header:
                raise PipelineError(
                    f"{path}: cannot parse the header row ({span}): {_problem(e, limit)}."
                ) from None
            too_large = isinstance(e, _LineTooLong) or "field larger" in str(e)
            yield RawRow(
                line=start,
                reason=TOO_LARGE if too_large else MALFORMED,
                message=(
                    f"cannot parse the row ({span}, byte offset {offset}): {_problem(e, limit)}"
                    if too_large and tracked
                    else f"cannot parse the row ({span}): {_problem(e, limit)}"
                ),
                raw=None if isinstance(e, _LineTooLong) else _raw_of(raw, too_large),
            )
            continue
        except UnicodeDecodeError as e:  # only if the file changed after detection
            raise PipelineError(
                f"{path}: does not decode as {encoding} near line {start} ({e}). "
                "Set `input.encoding: <name>` in the config."
            ) from None
        raw = lines.take()
        warning = None
        if tracked and first_escape(raw) is not None:
            at = escape_at(raw, tracked)
            assert at is not None
            if header is None and has_header and opts.encoding_errors == "reject":
                raise PipelineError(
                    f"{path}: the header row ({_lines_text(start, lines.count)}) holds "
                    f"bytes that are not valid {tracked}: byte {at[1]} at byte "
                    f"offset {offset + at[0]}. Fix the header, or set "
                    "`input.encoding_errors: replace`."
                )
            if opts.encoding_errors == "reject":
                yield RawRow(
                    line=start,
                    reason="encoding_invalid",
                    message=invalid_message(
                        tracked, start, offset + at[0], at[1], "the row at line"
                    ),
                    raw=replace_escapes(raw)[0].rstrip("\r\n"),
                )
                continue
            fixed = [replace_escapes(v) for v in fields]
            fields = [v for v, _n in fixed]
            n = sum(k for _v, k in fixed)
            warning = (
                "encoding_replaced",
                f"{n} byte(s) that are not valid {tracked} replaced by U+FFFD",
            )

        if not fields:
            stats.blank_lines += 1
            continue
        if header is None and has_header:
            header = clean_header(fields)
            stats.columns = header
            continue
        if header is None:  # no header: row 1 is a record, its width names the columns
            header = numbered(len(fields))
            stats.columns = header
        if all(v == "" for v in fields):
            stats.empty_rows += 1
            continue
        if len(fields) != len(header):
            end = lines.count
            span = f" ({_lines_text(start, end)}: is a quote unbalanced?)" if end > start else ""
            yield RawRow(
                line=start,
                reason=MALFORMED,
                message=(
                    f"expected {len(header)} fields (as in the header), got {len(fields)}{span}"
                ),
                raw=delimiter.join(fields),
            )
            continue
        yield RawRow(line=start, record=dict(zip(header, fields, strict=True)), warning=warning)


def first_rows(sample: str, delimiter: str, complete: bool) -> tuple[list[str], list[list[str]]]:
    """Row 1 and the next `header.SAMPLE_ROWS` non-blank rows of the start of a file (parsed
    leniently; a cut-off last line is left out unless `sample` is the whole file)."""
    if not complete:
        cut = max(sample.rfind("\n"), sample.rfind("\r"))
        sample = sample[: cut + 1] if cut > 0 else sample
    rows: list[list[str]] = []
    try:
        for fields in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter):
            if fields and any(v.strip() for v in fields):
                rows.append(fields)
            if len(rows) > SAMPLE_ROWS:
                break
    except csv.Error:
        pass  # judged on the rows before the one that does not parse
    if not rows:
        return [], []
    return rows[0], rows[1:]


def _problem(error: Exception, limit: int) -> str:
    if isinstance(error, _LineTooLong):
        return (
            f"a line of {error.size} characters, more than input.limits.max_record_bytes "
            f"({limit}); it was not read"
        )
    if "field larger" in str(error):
        return (
            f"a field longer than input.limits.max_record_bytes ({limit} characters), or a "
            "quoted field that is never closed"
        )
    assert isinstance(error, csv.Error)
    return f"{error}{_hint(error)}"


def _raw_of(raw: str, too_large: bool) -> str:
    """The raw text of a row that could not be parsed; its start only when it is too large."""
    raw = raw.rstrip("\r\n")
    return raw[:1000] + "…" if too_large and len(raw) > 1000 else raw


def read_csv(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[RawRow]:
    """Rows of a CSV file (default delimiter ",")."""
    return _read_delimited(path, opts, stats, ",")


def read_tsv(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[RawRow]:
    """Rows of a TSV file (default delimiter TAB)."""
    return _read_delimited(path, opts, stats, "\t")
