"""What every reader yields: raw source rows with their location, plus per-file statistics.

A reader turns one file into `RawRow`s in source order. It never maps columns (that is
`pipeline.read.mapping`) and never raises for bad data: a row it cannot use becomes a
`RawRow` with a reason code. It raises `PipelineError` only when the file as a whole cannot
be read (no encoding decodes it, no sheet of that name, not a JSON array ...).

Locations (`RawRow.line`), each what the format's own tools show:
- JSONL: 1-based physical line;
- CSV/TSV: 1-based physical line where the record starts (the header is line 1);
- XLSX: 1-based sheet row number, as Excel shows it;
- JSON array and Parquet: 0-based index (``data[i]``, ``table.slice(i, 1)``).

Outside the readers a location is what a person can open in an editor: `to_record`
(`pipeline.read.plan`) turns a JSON array's or Parquet file's index into its 1-based record
number (`RECORD_NUMBERED`), and every output labels it `record_number` / "record N", never
`line` (`pipeline.records.where`; docs/decisions.md, "Locations").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pipeline.configdoc import ConfigValueError, doc
from pipeline.reasons import check, check_warning

MiB = 1 << 20
# formats whose records have no line of their own: located by 1-based record number
RECORD_NUMBERED = frozenset({"json", "parquet"})


@dataclass(frozen=True)
class RawRow:
    """One source record, or the reason it could not be read."""

    line: int
    record: dict[str, Any] | None = None
    # the raw text when the row could not be parsed; or, for a parsed JSON Lines row, the
    # line's bytes when `record` is exactly what orjson makes of them (what the spool keeps
    # as the record's original, `pipeline.write.spool`)
    raw: str | bytes | None = None
    reason: str | None = None  # read-level reject code (json_invalid, row_malformed, ...)
    message: str | None = None
    warning: tuple[str, str] | None = None  # (code, message) of a kept record the reader changed

    def __post_init__(self) -> None:
        if self.reason is not None:
            check(self.reason)
        if self.warning is not None:
            check_warning(self.warning[0])


def depth_over(value: Any, limit: int) -> bool:
    """Whether objects and arrays nest deeper than `limit` levels in `value` (no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item if isinstance(v, dict | list))
    return False


@dataclass(frozen=True)
class Limits:
    """What one input may cost: past a record limit the record is rejected, past a file limit
    the file is refused (exit 2), before the reader spends the time or memory."""

    max_record_bytes: int = doc(
        "Longest JSONL line, CSV/TSV physical line or field, or XLSX/XLS/ODS cell text, in bytes "
        "(characters for text not in UTF-8). A longer record is rejected `record_too_large` "
        "without being held in memory. 16 MiB.",
        16 * MiB,
    )
    max_json_depth: int = doc(
        "Deepest nesting of objects and arrays in one JSON or JSONL record (the record itself "
        "is level 1). A deeper record is rejected `json_too_deep`; at most 200, as ftprep must "
        "be able to write every record back as JSON.",
        64,
    )
    max_xlsx_unpacked_bytes: int = doc(
        "XLSX and ODS: the most the workbook's parts may unpack to, summed from the zip directory "
        "before anything is parsed. Past it the file is refused. 1 GiB.",
        1024 * MiB,
    )
    max_xlsx_ratio: int = doc(
        "XLSX and ODS: the highest unpacked/packed size ratio of a part larger than 1 MiB unpacked (a "
        "zip bomb); real workbooks stay under about 20.",
        100,
    )
    max_xlsx_shared_strings: int = doc(
        "XLSX: the most shared strings (distinct cell texts), counted before the workbook is "
        "opened: openpyxl holds them all in memory.",
        2_000_000,
    )
    max_xlsx_cells: int = doc(
        "XLSX, XLS and ODS: the most cells (rows x header columns) read from the sheet; past it the file is "
        "refused.",
        20_000_000,
    )

    def __post_init__(self) -> None:
        for name in (
            "max_record_bytes",
            "max_xlsx_unpacked_bytes",
            "max_xlsx_ratio",
            "max_xlsx_shared_strings",
            "max_xlsx_cells",
        ):
            if getattr(self, name) < 1:
                raise ConfigValueError(name, f"{getattr(self, name)}; expected >= 1")
        if not 1 <= self.max_json_depth <= 200:
            raise ConfigValueError(
                "max_json_depth", f"{self.max_json_depth}; expected a whole number in [1, 200]"
            )


@dataclass(frozen=True)
class ReadOptions:
    """The `input:` options a reader needs."""

    encoding: str = "auto"  # "auto" or a Python codec name
    sheet: str | None = None  # XLSX sheet; None = the first
    delimiter: str | None = None  # CSV/TSV; None = "," for csv, "\t" for tsv, or sniffed
    encoding_errors: str = "reject"  # reject | replace | strict (pipeline.read.encoding)
    limits: Limits = field(default_factory=Limits)
    header: str | bool = "auto"  # CSV/TSV/sheets: True, False, or "auto" (pipeline.read.header)
    records: str | None = None  # JSON: the key or dotted path of the array of records


@dataclass
class ReadStats:
    """Facts about one input file, filled in by its reader and shown in report.json."""

    encoding: str | None = None
    bom_removed: bool = False
    confidence: float | None = None  # detection confidence; 1.0 for a BOM or valid UTF-8
    blank_lines: int = 0  # JSONL/CSV blank lines skipped
    empty_rows: int = 0  # CSV/XLSX rows with every cell empty, skipped
    columns: list[str] = field(default_factory=list)  # header / keys seen (first records)
    delimiter: str | None = None
    sheet: str | None = None
    header: bool | None = None  # CSV/TSV/sheets: whether row 1 was taken as the header
    header_from: str | None = None  # "config" (input.header) or "detected"
    format_from: str | None = None  # "config", "extension" or "content"
    warnings: list[dict[str, str]] = field(default_factory=list)  # file-level: code, message
    bom_len: int = 0  # CSV/TSV: bytes of BOM skipped (not reported; for the byte ranges)
    invalid: bool = False  # CSV/TSV: the file holds bytes that do not decode (not reported)

    def warn(self, code: str, message: str) -> None:
        """A file-level warning (a documented code): kept in the report with the file."""
        check_warning(code)
        if not any(w["code"] == code for w in self.warnings):
            self.warnings.append({"code": code, "message": message})

    def as_dict(self) -> dict[str, Any]:
        return {
            "encoding": self.encoding,
            "bom_removed": self.bom_removed,
            "confidence": self.confidence,
            "blank_lines": self.blank_lines,
            "empty_rows": self.empty_rows,
            "delimiter": self.delimiter,
            "sheet": self.sheet,
            "header": self.header,
            "header_from": self.header_from,
            "format_from": self.format_from,
            "warnings": list(self.warnings),
        }


class Reader(Protocol):
    def __call__(self, path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[RawRow]: ...
