"""XLSX workbooks: one sheet, read row by row with openpyxl in read-only mode.

- The sheet is ``input.sheet`` (an unknown name fails, listing the sheets) or the first one.
- The header is the first non-empty row (with ``input.header: auto``, when
  `pipeline.read.header` finds it looks like one), cleaned like a CSV header
  (`pipeline.read.delimited.clean_header`); empty cells after its last name are not columns.
  Without a header that row is a record, and the columns are ``column_1``, ``column_2`` ... as
  wide as the widest of the first rows.
- Cells become the text a person sees: int ``1`` -> ``"1"``, float ``1.0`` -> ``"1"``, other
  floats their shortest repr, bool -> ``"TRUE"``/``"FALSE"``, datetime -> ISO 8601 (the date
  only when the time is midnight), empty -> ``""``; strings as they are. Formulas give their
  cached value (``data_only=True``).
- A row shorter than the header is padded with ``""``; a value beyond the header's columns
  rejects the row as ``row_malformed``.
- Empty rows are skipped and counted in ``stats.empty_rows`` (rows after the last non-empty
  row are not counted: they are usually formatting, not data).
- ``RawRow.line`` is the sheet row number as Excel shows it (1-based).

openpyxl parses XML with defusedxml (an entity bomb is refused), and read-only mode streams the
sheet. Before openpyxl sees the file, `check_archive` refuses a workbook (exit 2) whose parts
unpack to more than ``input.limits.max_xlsx_unpacked_bytes``, or a part over 1 MiB that unpacks
more than ``max_xlsx_ratio`` times its packed size (a zip bomb), or that holds more than
``max_xlsx_shared_strings`` shared strings; sizes come from the zip directory, and a part that
unpacks to more than its directory entry says fails its CRC check. While reading, more than
``max_xlsx_cells`` cells refuse the file, and a row with a cell longer than ``max_record_bytes``
is rejected ``record_too_large``.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Iterator, Sequence
from itertools import chain, islice
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException

from pipeline.errors import PipelineError
from pipeline.read.base import Limits, RawRow, ReadOptions, ReadStats
from pipeline.read.delimited import clean_header
from pipeline.read.header import SAMPLE_ROWS, decide
from pipeline.read.header import numbered as numbered_names

MALFORMED = "row_malformed"
TOO_LARGE = "record_too_large"
RATIO_FLOOR = 1 << 20  # parts smaller than this unpacked are not ratio-checked
_SHARED = "xl/sharedStrings.xml"
_BAD_FILE = (zipfile.BadZipFile, InvalidFileException, KeyError, ParseError, ValueError, EOFError)


def cell_text(value: Any) -> str:
    """A cell value as the text a person sees in the spreadsheet."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # before int: bool is an int
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _refuse(path: Path, problem: str, key: str) -> PipelineError:
    return PipelineError(
        f"{path}: refused before reading: {problem} (input.limits.{key}). If the workbook is "
        f"genuine, raise input.limits.{key}, or export the sheet as CSV."
    )


def check_archive(path: Path, limits: Limits) -> None:
    """Refuse a workbook that would cost more than `limits` to read, from its zip directory."""
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            total = sum(i.file_size for i in infos)
            if total > limits.max_xlsx_unpacked_bytes:
                raise _refuse(
                    path,
                    f"its parts unpack to {total} bytes, more than "
                    f"{limits.max_xlsx_unpacked_bytes}",
                    "max_xlsx_unpacked_bytes",
                )
            for i in infos:
                ratio = i.file_size / max(i.compress_size, 1)
                if i.file_size > RATIO_FLOOR and ratio > limits.max_xlsx_ratio:
                    raise _refuse(
                        path,
                        f"part {i.filename} unpacks {ratio:.0f} times its size in the file "
                        f"({i.compress_size} -> {i.file_size} bytes), more than "
                        f"{limits.max_xlsx_ratio}: a zip bomb?",
                        "max_xlsx_ratio",
                    )
            shared = next((i for i in infos if i.filename.lower() == _SHARED.lower()), None)
            if shared is not None:
                n = _count_shared(z, shared, limits.max_xlsx_shared_strings)
                if n > limits.max_xlsx_shared_strings:
                    raise _refuse(
                        path,
                        f"more than {limits.max_xlsx_shared_strings} shared strings",
                        "max_xlsx_shared_strings",
                    )
    except OSError as e:
        raise PipelineError(f"{path}: cannot open the file: {e.strerror or e}") from None
    except (zipfile.BadZipFile, EOFError, ValueError) as e:
        raise PipelineError(
            f"{path}: not a readable XLSX workbook ({type(e).__name__}: {e}). Save it from "
            "the spreadsheet program as .xlsx or export it as CSV."
        ) from None


def _count_shared(z: zipfile.ZipFile, info: zipfile.ZipInfo, stop: int) -> int:
    """Shared strings (`<si>` elements) in the part, streamed; stops counting past `stop`."""
    n = 0
    tail = b""
    with z.open(info) as f:
        while n <= stop:
            block = f.read(1 << 20)
            if not block:
                break
            data = tail + block
            n += data.count(b"<si>") + data.count(b"<si ")
            tail = data[-3:]  # too short to hold a whole `<si>`: never counted twice
    return n


def _is_empty(values: Sequence[Any]) -> bool:
    return all(v is None or v == "" for v in values)


def read(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[RawRow]:
    """Rows of one sheet of an XLSX workbook."""
    path = Path(path)
    stats.encoding = None  # binary format
    limits = opts.limits
    check_archive(path, limits)
    try:
        # a file object, not the path: openpyxl refuses a name not ending in .xlsx, and a
        # misnamed workbook is read as what its content is (`pipeline.read.sniff`)
        f = path.open("rb")
    except OSError as e:
        raise PipelineError(f"{path}: cannot open the file: {e.strerror or e}") from None
    try:
        wb = load_workbook(f, read_only=True, data_only=True)
    except OSError as e:
        f.close()
        raise PipelineError(f"{path}: cannot open the file: {e.strerror or e}") from None
    except _BAD_FILE as e:
        f.close()
        raise PipelineError(
            f"{path}: not a readable XLSX workbook ({type(e).__name__}: {e}). Save it from "
            "the spreadsheet program as .xlsx or export it as CSV."
        ) from None
    try:
        if opts.sheet is None:
            ws = wb.worksheets[0]
        elif opts.sheet in wb.sheetnames:
            ws = wb[opts.sheet]
        else:
            sheets = ", ".join(repr(n) for n in wb.sheetnames)
            raise PipelineError(
                f"{path}: no sheet named {opts.sheet!r}; input.sheet must be one of: {sheets}."
            )
        stats.sheet = ws.title
        if hasattr(ws, "reset_dimensions"):
            ws.reset_dimensions()  # do not trust the stored dimensions: read every row

        numbered = enumerate(ws.iter_rows(values_only=True), start=1)
        try:
            yield from sheet_rows(path, ws.title, numbered, opts, stats)
        except _BAD_FILE as e:
            raise PipelineError(
                f"{path}: the workbook is damaged: sheet {ws.title!r} cannot be read "
                f"({type(e).__name__}: {e}). Re-save it from the spreadsheet program."
            ) from None
    finally:
        wb.close()
        f.close()


def _counted(
    path: Path, title: str, numbered: Iterator[tuple[int, Sequence[Any]]], limits: Limits
) -> Iterator[tuple[int, Sequence[Any]]]:
    """The sheet's rows, refusing the file past ``max_xlsx_cells`` cells."""
    cells = 0
    for number, values in numbered:
        cells += max(1, len(values))
        if cells > limits.max_xlsx_cells:
            raise _refuse(
                path,
                f"sheet {title!r} has more than {limits.max_xlsx_cells} cells (row {number})",
                "max_xlsx_cells",
            )
        yield number, values


def _filled(
    numbered: Iterator[tuple[int, Sequence[Any]]], stats: ReadStats
) -> Iterator[tuple[int, Sequence[Any]]]:
    """The non-empty rows; empty rows between them are counted in ``stats.empty_rows``."""
    pending_empty = 0  # empty rows seen since the last non-empty row
    for number, values in numbered:
        if _is_empty(values):
            pending_empty += 1
            continue
        stats.empty_rows += pending_empty
        pending_empty = 0
        yield number, values


def sheet_rows(
    path: Path,
    title: str,
    numbered: Iterator[tuple[int, Sequence[Any]]],
    opts: ReadOptions,
    stats: ReadStats,
) -> Iterator[RawRow]:
    """The records of a sheet's `(row number, cell values)`, by the rules of this module (the
    XLSX reader and `pipeline.read.calamine` share them)."""
    limits = opts.limits
    rows = _filled(_counted(path, title, numbered, limits), stats)
    ahead = list(islice(rows, SAMPLE_ROWS + 1))  # row 1 and the rows it is compared with
    if not ahead:
        return
    texts_ahead = [[cell_text(v) for v in values] for _n, values in ahead]
    has_header = decide(opts.header, texts_ahead[0], texts_ahead[1:], stats)
    first_names = list(texts_ahead[0])
    while first_names and not first_names[-1].strip():
        first_names.pop()
    if has_header:
        header = clean_header(first_names)
        ahead = ahead[1:]
    else:  # row 1 is a record: the widest of the first rows names the columns
        width = max(_width(values) for _n, values in ahead)
        header = numbered_names(width)
    stats.columns = header
    width = len(header)
    for number, values in chain(ahead, rows):
        extra = [
            f"{get_column_letter(i + 1)}{number}"
            for i, v in enumerate(values[width:], start=width)
            if v is not None and v != ""
        ]
        texts = [cell_text(v) for v in values]
        longest = max(map(len, texts), default=0)
        if longest > limits.max_record_bytes:
            yield RawRow(
                line=number,
                reason=TOO_LARGE,
                message=(
                    f"row {number} has a cell of {longest} characters, more than "
                    f"input.limits.max_record_bytes ({limits.max_record_bytes})"
                ),
            )
            continue
        if extra:
            yield RawRow(
                line=number,
                reason=MALFORMED,
                message=(
                    f"the header has {width} columns but the row has values beyond "
                    f"them, in {', '.join(extra)}"
                ),
                raw="\t".join(texts),
            )
            continue
        texts = texts[:width] + [""] * (width - len(texts))
        yield RawRow(line=number, record=dict(zip(header, texts, strict=True)))


def _width(values: Sequence[Any]) -> int:
    """Columns up to the last filled cell."""
    n = len(values)
    while n and (values[n - 1] is None or values[n - 1] == ""):
        n -= 1
    return n


read_xlsx = read
