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
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pipeline.reasons import check


@dataclass(frozen=True)
class RawRow:
    """One source record, or the reason it could not be read."""

    line: int
    record: dict[str, Any] | None = None
    raw: str | None = None  # the raw text when the row could not be parsed
    reason: str | None = None  # read-level reject code (json_invalid, row_malformed, ...)
    message: str | None = None

    def __post_init__(self) -> None:
        if self.reason is not None:
            check(self.reason)


@dataclass(frozen=True)
class ReadOptions:
    """The `input:` options a reader needs."""

    encoding: str = "auto"  # "auto" or a Python codec name
    sheet: str | None = None  # XLSX sheet; None = the first
    delimiter: str | None = None  # CSV/TSV; None = "," for csv, "\t" for tsv, or sniffed


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

    def as_dict(self) -> dict[str, Any]:
        return {
            "encoding": self.encoding,
            "bom_removed": self.bom_removed,
            "confidence": self.confidence,
            "blank_lines": self.blank_lines,
            "empty_rows": self.empty_rows,
            "delimiter": self.delimiter,
            "sheet": self.sheet,
        }


class Reader(Protocol):
    def __call__(self, path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[RawRow]: ...
