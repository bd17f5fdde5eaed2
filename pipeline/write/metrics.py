"""metrics.parquet: one row per input record, with where it went and the stages' m_* metrics.

Workers keep, per batch, a small frame of every record's `_ord`, `_line`, reason, stage,
warning codes and `m_*` columns (`metrics_frame`) and write, per unit, a parquet part of them
in their scratch folder (`write_part`), with the type class of each metric column. The parent
never holds them all: `write_metrics` streams the parts, in unit order, adds each kept record's
destination from the dataset decisions, and appends them to the file in row groups of
`ROW_GROUP` rows (the same row groups whatever the units, so the file does not depend on the
worker count). Column types are fixed by rule (text, int64, float64 or bool) over the whole
file, never inferred from one batch, so the file is byte-identical whatever the batch size,
worker count or engine. The report streams the file back (`pipeline.report.stats`); with
expectation suites, `read_kept` reads the kept records' rows of the columns they name.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipeline.dataset import REJECTED, Decisions
from pipeline.records import METRIC_PREFIX, where

if TYPE_CHECKING:
    import pyarrow as pa

SPLIT_NAMES = np.array(["train", "validation", "rejected"], dtype=object)
TEXT_COLUMNS = ("id", "source", "split", "reason", "stage", "warnings")
# `line` for line-located inputs, `record_number` for JSON arrays and Parquet (the other null)
FIXED = ("id", "source", "line", "record_number", "split", "reason", "stage", "warnings")
ROW_GROUP = 65_536
# the type class of a metric column over some rows: what its present values are
BOOL, INT, FLOAT, NONE = "bool", "int", "float", "none"


def metrics_frame(batch: pd.DataFrame) -> pd.DataFrame:
    """The metrics rows of one batch (every record, kept or rejected)."""
    metric_cols = [c for c in batch.columns if str(c).startswith(METRIC_PREFIX)]
    metrics = batch[["_ord", "_line", "_reason", "_stage", *metric_cols]].copy()
    metrics["_warning_codes"] = [
        ",".join(code for code, _message in ws) if ws else None for ws in batch["_warnings"]
    ]
    return metrics


def _present(values: list[Any]) -> list[Any]:
    return [None if v is None or v != v else v for v in values]


def _class(values: list[Any]) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return NONE
    if all(isinstance(v, bool | np.bool_) for v in present):
        return BOOL
    if all(
        isinstance(v, int | np.integer) or (isinstance(v, float) and v.is_integer())
        for v in present
    ):  # counts stay whole numbers even where a rejected row left a gap (NaN)
        return INT
    return FLOAT


def _merged(classes: Iterable[str]) -> str:
    """The class of a column over the whole file from its classes per unit."""
    seen = {c for c in classes if c != NONE}
    if seen == {BOOL}:
        return BOOL
    return FLOAT if FLOAT in seen else INT


def _arrow_type(cls: str) -> pa.DataType:
    import pyarrow as pa

    return {BOOL: pa.bool_(), INT: pa.int64(), FLOAT: pa.float64()}[cls]


def write_part(frames: list[pd.DataFrame], path: Path) -> dict[str, str]:
    """Write one unit's metrics rows to a parquet part; return each metric column's class."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    m = pd.concat(frames, ignore_index=True)
    columns: dict[str, pa.Array] = {
        "_ord": pa.array(m["_ord"].to_numpy(dtype=np.int64)),
        "_line": pa.array(m["_line"].to_numpy(dtype=np.int64)),
    }
    for name in ("_reason", "_stage", "_warning_codes"):
        columns[name] = pa.array(_present(m[name].tolist()), type=pa.string())
    classes: dict[str, str] = {}
    for name in (c for c in m.columns if str(c).startswith(METRIC_PREFIX)):
        column = m[name]
        if pd.api.types.is_integer_dtype(column.dtype) and not column.hasnans:
            classes[str(name)] = INT  # the common case (token counts): no walk in Python
            columns[str(name)] = pa.array(column.to_numpy(dtype=np.int64))
            continue
        values = _present(column.tolist())
        cls = classes[str(name)] = _class(values)
        if cls == INT:
            values = [None if v is None else int(v) for v in values]
        columns[str(name)] = pa.array(values, type=_arrow_type(BOOL if cls == NONE else cls))
    pq.write_table(pa.table(columns), path)
    return classes


def write_metrics(
    units: Iterable[tuple[str, str, dict[str, str], np.ndarray, bool]],
    decisions: Decisions,
    path: Path,
    chunk_rows: int = 10_000,
) -> None:
    """Write the file from `(source, part path, metric classes, kept ordinals, by record)` per
    unit, in order (a unit without records has no part: ""). Each part is removed once read.
    A unit `by record` (a JSON array or Parquet input) has its locations in `record_number`
    and a null `line`; any other has them in `line` and a null `record_number`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    units = list(units)
    merged: dict[str, list[str]] = {}
    for _source, _part, classes, _kept, _by_record in units:
        for name, cls in classes.items():
            merged.setdefault(name, []).append(cls)
    metric_names = sorted(merged)
    types = {name: _arrow_type(_merged(merged[name])) for name in metric_names}
    schema = pa.schema(
        [
            *((n, pa.string() if n in TEXT_COLUMNS else pa.int64()) for n in FIXED),
            *((n.removeprefix(METRIC_PREFIX), types[n]) for n in metric_names),
        ]
    )
    writer = _GroupWriter(path, schema, chunk_rows)
    g = 0
    for source, part, _classes, kept_ords, by_record in units:
        if not part:
            continue
        m = pq.read_table(part)
        os.unlink(part)
        n = m.num_rows
        split = np.full(n, "rejected", dtype=object)
        reason = np.asarray(m["_reason"].to_pylist(), dtype=object)
        stage = np.asarray(m["_stage"].to_pylist(), dtype=object)
        warnings = np.asarray(m["_warning_codes"].to_pylist(), dtype=object)
        ords = m["_ord"].to_numpy()
        order = np.argsort(ords, kind="stable")
        rows = order[np.searchsorted(ords, kept_ords, sorter=order)]
        dest = decisions.dest[g : g + len(kept_ords)]
        split[rows] = SPLIT_NAMES[dest]
        for i in np.flatnonzero(dest == REJECTED).tolist():
            stage[rows[i]], reason[rows[i]], _msg = decisions.reasons[g + i]
        for key in range(g, g + len(kept_ords)):
            if key in decisions.warnings:  # warnings a dataset decision attached
                i = rows[key - g]
                codes = [c for c, _m in decisions.warnings[key]]
                warnings[i] = ",".join([*(warnings[i].split(",") if warnings[i] else ()), *codes])
        g += len(kept_ords)
        lines = m["_line"].to_numpy()
        located = pa.array(lines, type=pa.int64())
        absent = pa.nulls(n, type=pa.int64())
        columns: list[pa.Array] = [
            pa.array([where(source, ln, by_record) for ln in lines.tolist()], type=pa.string()),
            pa.array([source] * n, type=pa.string()),
            absent if by_record else located,
            located if by_record else absent,
            pa.array(split.tolist(), type=pa.string()),
            pa.array(reason.tolist(), type=pa.string()),
            pa.array(stage.tolist(), type=pa.string()),
            pa.array(warnings.tolist(), type=pa.string()),
        ]
        for name in metric_names:
            if name in m.column_names:
                columns.append(m[name].cast(types[name]).combine_chunks())
            else:
                columns.append(pa.nulls(n, type=types[name]))
        writer.write(pa.Table.from_arrays(columns, schema=schema))
    writer.close()
    pa.default_memory_pool().release_unused()  # the parts' and row groups' pages


class _GroupWriter:
    """Appends tables to a parquet file in row groups of exactly ROW_GROUP rows (the last one
    smaller), whatever the tables' sizes. The rows reach the parquet writer in pieces of
    `chunk_rows` counted from the first row: where the writer cuts its pages depends on the
    pieces it is given, so the file's bytes do not depend on how the input was cut into units
    (a CSV read by the parent in units of `runner.batch_size` rows gives the same bytes as one
    read in byte ranges)."""

    def __init__(self, path: Path, schema: pa.Schema, chunk_rows: int = 10_000) -> None:
        import pyarrow.parquet as pq

        self.writer = pq.ParquetWriter(path, schema)
        self.schema = schema
        self.pending: list[pa.Table] = []
        self.rows = 0
        self.chunk_rows = max(1, chunk_rows)
        self.written = 0  # rows handed to the parquet writer

    def write(self, table: pa.Table) -> None:
        self.pending.append(table)
        self.rows += table.num_rows
        if self.rows >= ROW_GROUP:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        import pyarrow as pa

        table = pa.concat_tables(self.pending) if self.pending else self.schema.empty_table()
        full = table.num_rows if final else table.num_rows - table.num_rows % ROW_GROUP
        if full:
            self.writer.write_table(self._pieces(table.slice(0, full)), row_group_size=ROW_GROUP)
            self.written += full
        rest = table.slice(full)
        self.pending = [rest] if rest.num_rows else []
        self.rows = rest.num_rows

    def _pieces(self, table: pa.Table) -> pa.Table:
        """`table` re-cut at the multiples of `chunk_rows` of the rows written so far."""
        import pyarrow as pa

        whole = table.combine_chunks()
        cuts = [0]
        at = self.chunk_rows - self.written % self.chunk_rows
        while at < whole.num_rows:
            cuts.append(at)
            at += self.chunk_rows
        cuts.append(whole.num_rows)
        return pa.concat_tables(whole.slice(a, b - a) for a, b in pairwise(cuts))

    def close(self) -> None:
        self._flush(final=True)
        self.writer.close()


KEPT = ("train", "validation")


def read_kept(path: Path, columns: Sequence[str] | None) -> tuple[pd.DataFrame, list[str]]:
    """The kept records' rows (split train or validation) of the metrics file, as expectation
    suites read them: the `columns` it has, in its order (None: every column), and the names of
    all its columns. Read a batch of rows at a time, the rejected rows dropped as they pass.
    Each column has the pandas type a read of the whole file gives it: an integer column with a
    null in any row is float, a boolean one object, even when no kept row has the null."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as file:
        schema = file.schema_arrow
        chosen = [n for n in schema.names if columns is None or n in columns]
        nulls = dict.fromkeys(chosen, False)
        kept = pa.array(KEPT)
        parts = []
        for batch in file.iter_batches(batch_size=ROW_GROUP, columns=chosen):
            for name in chosen:
                nulls[name] = nulls[name] or batch.column(name).null_count > 0
            if "split" in chosen:
                batch = batch.filter(pc.is_in(batch.column("split"), value_set=kept))
            parts.append(batch)
    table = pa.Table.from_batches(parts, schema=pa.schema([schema.field(n) for n in chosen]))
    del parts
    frame = table.to_pandas(self_destruct=True)  # each column let go once converted
    for name in chosen:
        if nulls[name] and not frame[name].isna().any():
            kind = schema.field(name).type
            if pa.types.is_integer(kind):
                frame[name] = frame[name].astype(np.float64)
            elif pa.types.is_boolean(kind):
                frame[name] = frame[name].astype(object)
    del table
    pa.default_memory_pool().release_unused()
    return frame, list(schema.names)
