"""metrics.parquet: one row per input record, with where it went and the stages' m_* metrics.

Workers keep, per batch, a small frame of every record's `_ord`, `_line`, reason, stage,
warning codes and `m_*` columns (`metrics_frame`); the parent adds each kept record's
destination from the dataset decisions and writes the table. Column types are fixed by rule
(text, int64, float64 or bool), never inferred from one batch, so the file is byte-identical
whatever the batch size or worker count.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.dataset import REJECTED, Decisions
from pipeline.records import METRIC_PREFIX

SPLIT_NAMES = np.array(["train", "validation", "rejected"], dtype=object)
TEXT_COLUMNS = ("id", "source", "split", "reason", "stage", "warnings")


def metrics_frame(batch: pd.DataFrame) -> pd.DataFrame:
    """The metrics rows of one batch (every record, kept or rejected)."""
    metric_cols = [c for c in batch.columns if str(c).startswith(METRIC_PREFIX)]
    metrics = batch[["_ord", "_line", "_reason", "_stage", *metric_cols]].copy()
    metrics["_warning_codes"] = [
        ",".join(code for code, _message in ws) if ws else None for ws in batch["_warnings"]
    ]
    return metrics


def write_metrics(
    units: Iterable[tuple[str, list[pd.DataFrame], list[int]]], decisions: Decisions, path: Path
) -> pd.DataFrame:
    """Write the table from `(source, metrics frames, kept ordinals)` per unit, in order; returns
    it as written (column names without the `m_` prefix), for the report and the gate."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    frames = []
    g = 0
    for source, unit_frames, kept_ords in units:
        if not unit_frames:
            continue
        m = pd.concat(unit_frames, ignore_index=True)
        split = np.full(len(m), "rejected", dtype=object)
        reason = m["_reason"].to_numpy(dtype=object).copy()
        stage = m["_stage"].to_numpy(dtype=object).copy()
        warnings = m["_warning_codes"].to_numpy(dtype=object).copy()
        pos = {o: i for i, o in enumerate(m["_ord"].tolist())}
        for ordinal in kept_ords:
            i = pos[ordinal]
            split[i] = SPLIT_NAMES[decisions.dest[g]]
            if decisions.dest[g] == REJECTED:
                stage[i], reason[i], _msg = decisions.reasons[g]
            if g in decisions.warnings:  # warnings a dataset decision attached
                codes = [c for c, _m in decisions.warnings[g]]
                warnings[i] = ",".join([*(warnings[i].split(",") if warnings[i] else ()), *codes])
            g += 1
        m["_warning_codes"] = warnings
        m.insert(0, "id", [f"{source}:{ln}" for ln in m["_line"]])
        m.insert(1, "source", source)
        m["split"], m["reason"], m["stage"] = split, reason, stage
        frames.append(
            m.drop(columns=["_reason", "_stage", "_ord"]).rename(
                columns={"_line": "line", "_warning_codes": "warnings"}
            )
        )
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    columns: dict[str, pa.Array] = {}
    for name in ("id", "source", "line", "split", "reason", "stage", "warnings"):
        values = table[name].tolist() if name in table else []
        columns[name] = pa.array(
            [None if v is None or v != v else v for v in values],
            type=pa.string() if name in TEXT_COLUMNS else pa.int64(),
        )
    metric_names = sorted(c for c in table.columns if str(c).startswith(METRIC_PREFIX))
    for name in metric_names:
        values = [None if v is None or v != v else v for v in table[name].tolist()]
        present = [v for v in values if v is not None]
        if present and all(isinstance(v, bool | np.bool_) for v in present):
            arrow_type = pa.bool_()
        elif all(
            isinstance(v, int | np.integer) or (isinstance(v, float) and v.is_integer())
            for v in present
        ):  # counts stay whole numbers even where a rejected row left a gap (NaN)
            arrow_type = pa.int64()
            values = [None if v is None else int(v) for v in values]
        else:
            arrow_type = pa.float64()
        columns[str(name).removeprefix(METRIC_PREFIX)] = pa.array(values, type=arrow_type)
    written = pa.table(columns)
    pq.write_table(written, path)
    return written.to_pandas()
