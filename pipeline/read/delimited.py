"""CSV and TSV files: the csv module over the decoded text stream, one record per data row.

- Encoding: `pipeline.read.encoding.detect` (BOM, strict UTF-8, chardet, or the override).
- Delimiter: ``input.delimiter`` if set. Otherwise "," for CSV and a tab for TSV, unless the
  header line does not contain it: then `csv.Sniffer` chooses among ``, ; TAB |``.
- Line endings: CRLF, LF, CR and mixtures; a quoted field keeps its newline characters exactly
  as in the file (the normalize stage turns CRLF into LF later).
- The first row is the header. Names are stripped of a BOM and whitespace; an empty name
  becomes ``column_N`` (N = 1-based position, so a header ending with a delimiter has a real
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
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

from pipeline.errors import PipelineError
from pipeline.read.base import RawRow, ReadOptions, ReadStats
from pipeline.read.encoding import detect, open_text

SNIFF_CHARS = 64 * 1024  # characters read to find the header line and sniff the delimiter
SNIFF_DELIMITERS = ",;\t|"
FIELD_SIZE_LIMIT = 16 * 1024 * 1024  # csv's default (131,072 characters) is too small
MALFORMED = "row_malformed"


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


class _Lines:
    """Iterates a text stream by physical line, keeping the lines of the current row."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._buffer: list[str] = []

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = next(self._stream)
        self._buffer.append(line)
        return line

    def take(self) -> str:
        """The raw text read since the last call."""
        text = "".join(self._buffer)
        self._buffer.clear()
        return text


def _lines_text(start: int, end: int) -> str:
    return f"line {start}" if end <= start else f"lines {start}-{end}"


def _hint(error: csv.Error) -> str:
    text = str(error)
    if "unexpected end of data" in text:
        return "; a quoted field is never closed"
    if "expected after" in text:
        return '; text follows a closing quote (write a quote inside a quoted field as "")'
    if "field larger than field limit" in text:
        return "; a quoted field is probably never closed"
    return ""


def _read_delimited(
    path: Path, opts: ReadOptions, stats: ReadStats, default: str
) -> Iterator[RawRow]:
    path = Path(path)
    detected = detect(path, opts.encoding)
    stats.encoding = detected.encoding
    stats.bom_removed = detected.bom_removed
    stats.confidence = detected.confidence

    if opts.delimiter:
        delimiter = opts.delimiter  # an explicit setting is never second-guessed
    else:
        with open_text(path, detected) as f:
            delimiter = choose_delimiter(f.read(SNIFF_CHARS), default)
    if len(delimiter) != 1:
        raise PipelineError(
            f"{path}: input.delimiter must be one character, got {delimiter!r}; "
            "use '\\t' for a tab."
        )
    stats.delimiter = delimiter

    if csv.field_size_limit() < FIELD_SIZE_LIMIT:
        csv.field_size_limit(FIELD_SIZE_LIMIT)

    with open_text(path, detected) as f:
        lines = _Lines(f)
        reader = csv.reader(lines, delimiter=delimiter, strict=True)
        header: list[str] | None = None
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                raw = lines.take()
                where = _lines_text(start, reader.line_num)
                if header is None:
                    raise PipelineError(
                        f"{path}: cannot parse the header row ({where}): {e}{_hint(e)}."
                    ) from None
                yield RawRow(
                    line=start,
                    reason=MALFORMED,
                    message=f"cannot parse the row ({where}): {e}{_hint(e)}",
                    raw=raw.rstrip("\r\n"),
                )
                continue
            except UnicodeDecodeError as e:  # only if the file changed after detection
                raise PipelineError(
                    f"{path}: does not decode as {detected.encoding} near line {start} ({e}). "
                    "Set `input.encoding: <name>` in the config."
                ) from None
            lines.take()

            if not fields:
                stats.blank_lines += 1
                continue
            if header is None:
                header = clean_header(fields)
                stats.columns = header
                continue
            if all(v == "" for v in fields):
                stats.empty_rows += 1
                continue
            if len(fields) != len(header):
                end = reader.line_num
                span = (
                    f" ({_lines_text(start, end)}: is a quote unbalanced?)" if end > start else ""
                )
                yield RawRow(
                    line=start,
                    reason=MALFORMED,
                    message=(
                        f"expected {len(header)} fields (as in the header), got {len(fields)}{span}"
                    ),
                    raw=delimiter.join(fields),
                )
                continue
            yield RawRow(line=start, record=dict(zip(header, fields, strict=True)))


def read_csv(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[RawRow]:
    """Rows of a CSV file (default delimiter ",")."""
    return _read_delimited(path, opts, stats, ",")


def read_tsv(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[RawRow]:
    """Rows of a TSV file (default delimiter TAB)."""
    return _read_delimited(path, opts, stats, "\t")
