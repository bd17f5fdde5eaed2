"""Old Excel workbooks (.xls, OLE2/BIFF) and OpenDocument spreadsheets (.ods), read with
python-calamine (a binding to the Rust calamine reader).

Everything after opening is the XLSX reader's (`pipeline.read.xlsx.sheet_rows`): the sheet
(``input.sheet`` or the first), the header (``input.header``), cell text (`xlsx.cell_text`:
int ``1`` and float ``1.0`` -> ``"1"``, dates as ISO text, booleans ``TRUE``/``FALSE``),
formulas as the value the file stores for them, empty rows, ``row_malformed`` and
``record_too_large``, and ``input.limits.max_xlsx_cells``. ``RawRow.line`` is the sheet row
number as the spreadsheet shows it: calamine starts a sheet at its first used cell, so rows
and columns before it are counted back in.

Bounded reading: an .ods file is a zip archive and gets the XLSX checks first
(`xlsx.check_archive`: unpacked size and ratio); an .xls file is not compressed, so its
size on disk bounds what it holds. calamine reads a whole sheet into memory before the first
row is handed out.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.read.base import RawRow, ReadOptions, ReadStats
from pipeline.read.xlsx import check_archive, sheet_rows

_NAMES = {"xls": "Excel 97-2003 (.xls) workbook", "ods": "OpenDocument (.ods) spreadsheet"}


def _numbered(sheet: Any) -> Iterator[tuple[int, Sequence[Any]]]:
    """`(row number, values)` as the spreadsheet shows them (1-based, column A first)."""
    first_row, first_col = sheet.start or (0, 0)
    lead: list[Any] = [""] * first_col
    rows = iter(sheet.iter_rows())
    first = next(rows, None)
    if first is None:
        return
    # python-calamine 0.9 yields the empty rows above the first used one (but not the empty
    # columns left of it); a version that starts at the first used row yields a filled row
    # first, since that row holds a value by definition
    if first_row and all(v is None or v == "" for v in first):
        first_row = 0
    yield first_row + 1, lead + list(first)
    for i, values in enumerate(rows, start=first_row + 2):
        yield i, lead + list(values)


def read_workbook(path: Path, opts: ReadOptions, stats: ReadStats, fmt: str) -> Iterator[RawRow]:
    """Rows of one sheet of an .xls or .ods workbook."""
    from python_calamine import CalamineError, CalamineWorkbook

    path = Path(path)
    stats.encoding = None  # binary format
    what = _NAMES[fmt]
    if fmt == "ods":
        check_archive(path, opts.limits)
    try:
        # from the bytes, not the path: calamine would pick its reader by the file name, and a
        # misnamed file is read as what its content is (`pipeline.read.sniff`)
        with path.open("rb") as f:
            wb = CalamineWorkbook.from_filelike(f)
    except OSError as e:
        raise PipelineError(f"{path}: cannot open the file: {e.strerror or e}") from None
    except (CalamineError, ValueError) as e:
        raise PipelineError(
            f"{path}: not a readable {what} ({type(e).__name__}: {e}). Re-save it from the "
            "spreadsheet program, or export the sheet as CSV."
        ) from None
    try:
        names = list(wb.sheet_names)
        if opts.sheet is not None and opts.sheet not in names:
            sheets = ", ".join(repr(n) for n in names)
            raise PipelineError(
                f"{path}: no sheet named {opts.sheet!r}; input.sheet must be one of: {sheets}."
            )
        if not names:
            raise PipelineError(f"{path}: an {what} with no sheet.")
        title = opts.sheet if opts.sheet is not None else names[0]
        try:
            sheet = wb.get_sheet_by_name(title)
        except (CalamineError, ValueError) as e:
            raise PipelineError(
                f"{path}: the workbook is damaged: sheet {title!r} cannot be read "
                f"({type(e).__name__}: {e}). Re-save it from the spreadsheet program."
            ) from None
        stats.sheet = title
        yield from sheet_rows(path, title, _numbered(sheet), opts, stats)
    finally:
        wb.close()


def read_xls(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[RawRow]:
    """Rows of one sheet of an .xls workbook."""
    return read_workbook(path, opts, stats, "xls")


def read_ods(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[RawRow]:
    """Rows of one sheet of an .ods spreadsheet."""
    return read_workbook(path, opts, stats, "ods")
