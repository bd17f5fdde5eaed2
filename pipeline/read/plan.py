"""From config to canonical batches: plan the inputs, cut work units, map rows to records.

1. `plan_inputs`: every input file is opened, its encoding detected and its columns mapped
   before any batch runs, so a mapping problem stops the run at once (exit 2).
2. `iter_units`: UTF-8 JSONL, and CSV/TSV in an encoding that can be cut by bytes
   (`pipeline.read.csv_ranges`), are cut into byte ranges that each worker reads itself; other
   formats are read here, lazily, and handed out in batches of rows.
3. `unit_batches` (in the worker): a unit's rows become batches of canonical records
   (`pipeline.records`). A row the reader could not use, or one that does not fit the file's
   shape, stays in the batch, rejected by the `read` pseudo-stage with its reason code.

Reason codes: `shape_invalid` (a record that does not fit its file's shape), plus the readers'
own (`json_invalid`, `record_not_object`, `row_malformed`, `encoding_invalid`,
`record_too_large`, `json_too_deep`, ...). Warning code: `encoding_replaced` (the reader's);
file-level warnings, kept in the report with their file and logged once here:
`format_from_content`, `header_guessed`, `header_mismatch`, `encoding_uncertain`.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.config import Config
from pipeline.errors import PipelineError
from pipeline.read import detect_format, expand_inputs, read_rows
from pipeline.read.base import RECORD_NUMBERED, RawRow, ReadOptions, ReadStats
from pipeline.read.mapping import Mapping, ShapeError, resolve
from pipeline.read.remote import renamed

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.read.csv_ranges import CsvPlan, Reached

log = logging.getLogger("ftprep")
SAMPLE_ROWS = 1000
READ_STAGE = "read"


@dataclass
class InputFile:
    index: int
    path: Path
    fmt: str
    mapping: Mapping
    ranges: list[tuple[int, int, int]] | None = None  # UTF-8 JSONL, CSV/TSV: read by the workers
    csv: CsvPlan | None = None  # how the workers read the ranges of a CSV/TSV file
    stats: ReadStats = field(default_factory=ReadStats)
    how: str = "extension"  # how the format was decided: config, extension or content
    format_warning: str | None = None  # the format_from_content message, if any
    url: str | None = None  # the URL `path` was copied from (`pipeline.read.remote`)

    @property
    def source(self) -> str:
        return self.url or str(self.path)


@dataclass(frozen=True)
class Unit:
    """One piece of work: a byte range of a JSONL or CSV/TSV file, or rows the parent read."""

    index: int
    file_index: int
    source: str
    path: str
    mapping: Mapping
    rows: tuple[RawRow, ...] | None = None
    byte_range: tuple[int, int, int] | None = None
    opts: ReadOptions = field(default_factory=ReadOptions)
    by_record: bool = False  # located by 1-based record number (`RECORD_NUMBERED`), not line
    csv: CsvPlan | None = None  # a CSV/TSV byte range: how to read it


def plan_inputs(
    cfg: Config, fetch_to: Path | None = None, *, log_warnings: bool = True
) -> list[InputFile]:
    """Open every input, detect its format and encoding and map its columns (PipelineError on
    problems). File-level warnings (format, header, encoding) are logged here, once a file,
    unless the caller shows them itself (`log_warnings=False`: `ftprep check`'s verdict).
    URL inputs are copied into `fetch_to` first (`pipeline.read.remote`)."""
    inputs = []
    opts = read_options(cfg)
    files = expand_inputs(cfg.input.paths, cfg.input.format, fetch_to)
    for i, (path, source) in enumerate(files):
        try:
            fmt, how, format_warning = detect_format(path, cfg.input.format)
            if fmt == "jsonl":
                inp = _plan_jsonl(i, path, cfg, opts, how, format_warning)
            else:
                keys, stats, sample = sample_file(path, fmt, opts, how, format_warning)
                mapping = resolve(cfg.input.columns, keys, str(path), _records_of(sample))
                inp = InputFile(i, path, fmt, mapping, how=how, format_warning=format_warning)
                inp.stats = stats
                if fmt in ("csv", "tsv"):
                    _plan_delimited(inp, cfg, opts)
        except PipelineError as exc:  # a URL's copy is named by its URL
            raise renamed(exc, {str(path): source}) from None
        inp.url = source if source != str(path) else None
        for w in inp.stats.warnings if log_warnings else ():
            log.warning("warning: %s: %s: %s", inp.source, w["code"], w["message"])
        inputs.append(inp)
    return inputs


def sample_file(
    path: Path, fmt: str, opts: ReadOptions, how: str = "extension", warning: str | None = None
) -> tuple[list[str], ReadStats, list[RawRow]]:
    """The columns or keys of a file's first records, what reading them found (encoding,
    delimiter, sheet, header, warnings), and the records."""
    stats = _new_stats(how, warning)
    rows = read_rows(path, fmt, opts, stats)
    try:
        sample = list(islice(rows, SAMPLE_ROWS))
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()
    return stats.columns or _keys_of(sample), stats, sample


def _new_stats(how: str, warning: str | None) -> ReadStats:
    stats = ReadStats(format_from=how)
    if warning is not None:
        stats.warn("format_from_content", warning)
    return stats


def _records_of(rows: list[RawRow]) -> list[dict[str, Any]]:
    return [row.record for row in rows if row.record is not None]


def read_options(cfg: Config) -> ReadOptions:
    return ReadOptions(
        encoding=cfg.input.encoding,
        sheet=cfg.input.sheet,
        delimiter=cfg.input.delimiter,
        encoding_errors=cfg.input.encoding_errors,
        limits=cfg.input.limits,
        header=cfg.input.header,
        records=cfg.input.records,
    )


def _keys_of(rows: list[RawRow]) -> list[str]:
    keys: dict[str, None] = {}
    for row in rows:
        if row.record is not None:
            keys.update(dict.fromkeys(row.record))
    return list(keys)


def _plan_jsonl(
    i: int, path: Path, cfg: Config, opts: ReadOptions, how: str, warning: str | None
) -> InputFile:
    from pipeline.read.encoding import detect, note_confidence
    from pipeline.read.jsonl import byte_lines, parse_line, plan_ranges

    detected = detect(path, cfg.input.encoding, cfg.input.encoding_errors)
    stats = _new_stats(how, warning)
    stats.encoding = detected.encoding
    stats.bom_removed = detected.bom_removed
    stats.confidence = detected.confidence
    note_confidence(path, detected, stats)
    utf8 = detected.encoding.replace("_", "-").lower() in ("utf-8", "utf8", "utf-8-sig", "ascii")
    sample: list[RawRow] = []
    if utf8:
        with open(path, "rb") as f:
            end = os.path.getsize(path)
            limit = opts.limits.max_record_bytes
            for lineno, (offset, line, _size) in enumerate(
                byte_lines(f, detected.bom_len, end, limit), start=1
            ):
                row = None if line is None else parse_line(line, lineno, offset, opts)
                if row is not None:
                    sample.append(row)
                if len(sample) >= SAMPLE_ROWS:
                    break
    else:
        rows = read_rows(path, "jsonl", opts, ReadStats())
        sample = list(islice(rows, SAMPLE_ROWS))
        rows.close()  # type: ignore[attr-defined]
    mapping = resolve(cfg.input.columns, _keys_of(sample), str(path), _records_of(sample))
    ranges = plan_ranges(path, detected.bom_len, _chunk_bytes(path, cfg)) if utf8 else None
    return InputFile(
        i, path, "jsonl", mapping, ranges=ranges, stats=stats, how=how, format_warning=warning
    )


def _plan_delimited(inp: InputFile, cfg: Config, opts: ReadOptions) -> None:
    """Byte ranges for the workers when the file's encoding and delimiter allow cutting it
    by bytes (`pipeline.read.csv_ranges`); otherwise the parent reads it as before. The
    sample's counts of blank lines and empty rows are dropped: the workers count them all."""
    from pipeline.read.csv_ranges import CsvPlan, byte_splittable, plan_ranges

    stats = inp.stats
    if not stats.columns or stats.encoding is None or stats.delimiter is None:
        return
    if not byte_splittable(stats.encoding, stats.delimiter):
        return
    size = os.path.getsize(inp.path)
    ranges = plan_ranges(inp.path, stats.bom_len, _chunk_bytes(inp.path, cfg), size)
    inp.ranges = ranges
    inp.csv = CsvPlan(
        encoding=stats.encoding,
        delimiter=stats.delimiter,
        columns=tuple(stats.columns),
        has_header=bool(stats.header),
        first=stats.bom_len,
        size=size,
        starts=tuple(r[0] for r in ranges),
        invalid=stats.invalid,
    )
    stats.blank_lines = stats.empty_rows = 0


def _chunk_bytes(path: Path, cfg: Config) -> int:
    """Byte-range size: `runner.chunk_bytes`, smaller for a file that would give each worker
    fewer than four ranges (so two workers are not left waiting on one long range)."""
    workers = cfg.runner.workers or os.cpu_count() or 1
    spread = max(1 << 20, os.path.getsize(path) // (4 * workers))
    return min(cfg.runner.chunk_bytes, spread)


def iter_units(inputs: list[InputFile], cfg: Config) -> Iterator[Unit]:
    """Work units in source order: byte ranges, or rows of the other files read here, lazily."""
    opts = read_options(cfg)
    n = 0
    for inp in inputs:
        if inp.ranges is not None:
            for r in inp.ranges:
                yield Unit(
                    n,
                    inp.index,
                    inp.source,
                    str(inp.path),
                    inp.mapping,
                    byte_range=r,
                    opts=opts,
                    csv=inp.csv,
                )
                n += 1
            continue
        inp.stats = _new_stats(inp.how, inp.format_warning)
        rows = read_rows(inp.path, inp.fmt, opts, inp.stats)
        while True:
            chunk = tuple(islice(rows, cfg.runner.batch_size))
            if not chunk:
                break
            yield Unit(
                n,
                inp.index,
                inp.source,
                str(inp.path),
                inp.mapping,
                rows=chunk,
                by_record=inp.fmt in RECORD_NUMBERED,
            )
            n += 1


def _unit_rows(unit: Unit, counts: ReadStats, reached: Reached) -> Iterator[RawRow]:
    if unit.rows is not None:
        yield from unit.rows
        return
    assert unit.byte_range is not None
    if unit.csv is not None:
        from pipeline.read.csv_ranges import read_range as read_csv_range

        yield from read_csv_range(
            Path(unit.path), unit.byte_range, unit.csv, unit.opts, counts, reached
        )
        return
    from pipeline.read.jsonl import read_range

    start, end, first_line = unit.byte_range
    for row in read_range(Path(unit.path), start, end, first_line, unit.opts):
        if row is None:
            counts.blank_lines += 1
        else:
            yield row


def to_record(unit: Unit, row: RawRow, ordinal: int) -> dict[str, Any]:
    """The canonical record of one raw row (rejected by `read` when it cannot be one). Its
    `_line` is the location people see: the reader's line, or for a `by_record` unit the
    1-based record number of the reader's 0-based index (the one place it is converted)."""
    rec: dict[str, Any] = {
        "_source": unit.source,
        "_line": row.line + 1 if unit.by_record else row.line,
        "_ord": ordinal,
        "_record": row.record,
        "_raw": row.raw,
        "kind": unit.mapping.kind,
    }
    if row.reason is not None:
        rec["_read_problem"] = (row.reason, row.message)
        return rec
    if row.warning is not None:
        rec["_warnings"] = (row.warning,)
    assert row.record is not None
    try:
        rec.update(unit.mapping.apply(row.record))
    except ShapeError as exc:
        rec["_read_problem"] = (
            "shape_invalid",
            f"does not fit the {unit.mapping.shape} shape: {exc}",
        )
    return rec


def read_stage(batch: pd.DataFrame, _cfg: Any = None) -> tuple[pd.DataFrame, Counter[str]]:
    """The `read` pseudo-stage: reject the rows the reader or the mapping could not use."""
    from pipeline.records import drop_where

    changes: Counter[str] = Counter()
    for warnings in batch["_warnings"]:
        for code, _message in warnings or ():
            if code == "encoding_replaced":
                changes["encoding_replaced"] += 1
    problems = batch["_read_problem"]
    has = problems.notna()
    if not has.any():
        return batch, changes
    out = batch.copy()
    codes = problems.map(lambda p: p[0] if isinstance(p, tuple) else None)
    messages = problems.map(lambda p: p[1] if isinstance(p, tuple) else None)
    for code in dict.fromkeys(codes[has]):
        drop_where(out, codes == code, code, messages)
    return out, changes


class UnitReader:
    """Canonical batches of one unit, `batch_size` records each; counts the blank lines and
    empty rows, and, for a CSV/TSV range, says where its reading ended (`reached`)."""

    def __init__(self, unit: Unit, batch_size: int) -> None:
        from pipeline.read.csv_ranges import Reached

        self.unit = unit
        self.batch_size = batch_size
        self._counts = ReadStats()
        self.reached = Reached()

    @property
    def blank_lines(self) -> int:
        return self._counts.blank_lines

    @property
    def empty_rows(self) -> int:
        return self._counts.empty_rows

    def __iter__(self) -> Iterator[pd.DataFrame]:
        from pipeline.records import make_batch

        rows = _unit_rows(self.unit, self._counts, self.reached)
        ordinal = 0
        while True:
            chunk = list(islice(rows, self.batch_size))
            if not chunk:
                return
            records = [to_record(self.unit, row, ordinal + i) for i, row in enumerate(chunk)]
            ordinal += len(records)
            yield make_batch(records)
