"""The report's statistics streamed from metrics.parquet equal those of a full read.

`ReportColumns.from_parquet` reads the file a batch at a time and keeps running summaries; the
reference here is the computation the report made from the whole table read into pandas (the
kept rows' values of each column, nulls dropped, as int64), written out again below. Checked on
random tables cut into row groups and batches of every size, and on the golden runs' metrics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.report import stats
from pipeline.report.stats import ReportColumns, message_section, token_section

GOLDEN = Path(__file__).parent / "golden"
SPLIT_NAMES = ("train", "validation", "rejected")


def _reference_column(frame: pd.DataFrame, name: str, split: str) -> np.ndarray:
    if name not in frame or "split" not in frame:
        return np.empty(0, dtype=np.int64)
    return frame.loc[frame["split"] == split, name].dropna().to_numpy(dtype=np.int64)


def reference(frame: pd.DataFrame) -> tuple[dict[str, Any], dict[str, Any]]:
    """The tokens and messages sections as computed from the whole table in memory."""
    per_split = {s: _reference_column(frame, "tokens_total", s) for s in stats.SPLITS}
    seen = [v for v in per_split.values() if len(v)]
    histogram = None
    if seen:
        edges = stats._edges(int(max(v.max() for v in seen)) + 1)
        histogram = {"edges": edges}
        for split, values in per_split.items():
            histogram[split] = [int(c) for c in np.histogram(values, bins=edges)[0]]
    unsized = sum(int(_reference_column(frame, "images_unsized", s).sum()) for s in stats.SPLITS)
    tokens = {
        "splits": {s: stats._stats(v, True) for s, v in per_split.items()},
        "histogram": histogram,
        "image_tokens": sum(
            int(_reference_column(frame, "tokens_image", s).sum()) for s in stats.SPLITS
        ),
        "images_at_minimum": unsized,
        "lower_bound": unsized > 0,
    }
    roles: dict[str, Any] = {}
    for split in stats.SPLITS:
        found = {}
        for role in stats.ROLES:
            values = _reference_column(frame, f"tokens_{role}", split)
            if (values > 0).any():
                found[role] = {"examples": int((values > 0).sum()), "tokens": int(values.sum())}
        roles[split] = found or None
    messages = {
        "splits": {
            s: stats._stats(m[m > 0], False)
            for s in stats.SPLITS
            for m in [_reference_column(frame, "messages", s)]
        },
        "roles": roles,
    }
    return tokens, messages


def sections(columns: ReportColumns) -> tuple[dict[str, Any], dict[str, Any]]:
    tokens = token_section(columns, None, None)
    for key in ("encoding", "limit_per_example", "approximation", "chat_template"):
        del tokens[key]
    return tokens, message_section(columns)


def _column(draw: Any, n: int, kind: str) -> pa.Array:
    if kind == "int":
        top = draw(st.sampled_from([3, 1000, 2**31 + 5]))  # past int32: kept as int64
        values = draw(st.lists(st.integers(0, top) | st.none(), min_size=n, max_size=n))
        return pa.array(values, type=pa.int64())
    if kind == "float":  # a float class column: whole and fractional values, nulls
        values = draw(
            st.lists(
                st.floats(0, 5000, allow_nan=False).map(lambda f: round(f, 1)) | st.none(),
                min_size=n,
                max_size=n,
            )
        )
        return pa.array(values, type=pa.float64())
    values = draw(st.lists(st.booleans() | st.none(), min_size=n, max_size=n))
    return pa.array(values, type=pa.bool_())  # not numeric: the report never read these


@st.composite
def tables(draw: Any) -> pa.Table:
    n = draw(st.integers(0, 60))
    split = draw(st.lists(st.sampled_from(SPLIT_NAMES), min_size=n, max_size=n))
    columns: dict[str, pa.Array] = {"id": pa.array([f"r{i}" for i in range(n)])}
    columns["split"] = pa.array(split, type=pa.string())
    names = ["tokens_total", *stats.SUMMED, "chars"]
    for name in draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names))):
        kind = draw(st.sampled_from(["int", "int", "int", "float", "bool"]))
        columns[name] = _column(draw, n, kind)
    return pa.table(columns)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=tables(), row_group=st.integers(1, 9), batch_rows=st.integers(1, 11))
def test_streamed_statistics_equal_a_full_read(
    table: pa.Table, row_group: int, batch_rows: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("m") / "metrics.parquet"
    pq.write_table(table, path, row_group_size=row_group)
    numeric = [
        f.name
        for f in table.schema
        if f.name == "split" or pa.types.is_integer(f.type) or pa.types.is_floating(f.type)
    ]  # what the report read of the table: the split and the numeric columns
    full = pq.read_table(path, columns=numeric).to_pandas()
    want = reference(full)
    assert sections(ReportColumns.from_parquet(path, batch_rows=batch_rows)) == want
    assert sections(ReportColumns.from_frame(full)) == want


def test_token_totals_are_kept_as_int32_while_they_fit(tmp_path: Path) -> None:
    n = 5000
    rng = np.random.default_rng(3)
    totals = rng.integers(0, 70_000, n)
    split = np.array(SPLIT_NAMES)[rng.integers(0, 3, n)]
    table = pa.table({"split": split.tolist(), "tokens_total": totals, "messages": totals % 7})
    path = tmp_path / "metrics.parquet"
    pq.write_table(table, path, row_group_size=777)
    columns = ReportColumns.from_parquet(path, batch_rows=500)
    train = columns.tokens("train")
    assert train.dtype == np.int32 and train.nbytes == 4 * int((split == "train").sum())
    assert train.tolist() == totals[split == "train"].tolist()  # every value, in file order
    assert sections(columns) == reference(table.to_pandas())
    big = tmp_path / "big.parquet"
    pq.write_table(pa.table({"split": ["train", "train"], "tokens_total": [1, 2**40]}), big)
    assert ReportColumns.from_parquet(big).tokens("train").tolist() == [1, 2**40]


def _golden_cases() -> list[str]:
    return sorted(p.parent.name for p in GOLDEN.glob("*/metrics.json"))


@pytest.mark.parametrize("name", _golden_cases())
@pytest.mark.parametrize("batch_rows", [1, 3, 65_536])
def test_golden_metrics_streamed_give_the_golden_report(
    name: str, batch_rows: int, tmp_path: Path
) -> None:
    """The golden runs' metrics, in row groups of 4 rows, streamed in batches of 1, 3 and
    65,536 rows, give their report.json's token and message sections."""
    doc = orjson.loads((GOLDEN / name / "metrics.json").read_bytes())
    schema = pa.schema([(n, pa.type_for_alias(t)) for n, t in doc["schema"]])
    path = tmp_path / "metrics.parquet"
    pq.write_table(pa.Table.from_pylist(doc["rows"], schema=schema), path, row_group_size=4)
    assert pq.read_metadata(path).num_row_groups > 1
    report = orjson.loads((GOLDEN / name / "report.json").read_bytes())
    tokens, messages = sections(ReportColumns.from_parquet(path, batch_rows=batch_rows))
    assert messages == report["messages"]
    assert tokens == {k: v for k, v in report["tokens"].items() if k in tokens}
    assert len(tokens) == 5 and report["tokens"]["splits"]["train"] is not None
