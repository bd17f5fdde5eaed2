"""What keeps a run's memory flat and its hot path cheap: compact per-record arrays in the
parent, metrics streamed from per-unit parts in fixed row groups, the long-number check."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from hypothesis import given
from hypothesis import strategies as st

from pipeline.jsonnum import has_long_number
from pipeline.runner import RowSources
from pipeline.write import metrics
from tests.conftest import run_two_ways, write_jsonl

LONG = re.compile(rb"\d{20}")


@given(st.binary(max_size=80) | st.text("0123456789a ,.", max_size=80).map(str.encode))
def test_long_number_check_is_the_regex(text: bytes) -> None:
    assert has_long_number(text) == bool(LONG.search(text))


def test_a_long_integer_is_still_read_exactly(tmp_path: Path) -> None:
    from pipeline.read.base import ReadOptions
    from pipeline.read.jsonl import parse_line

    row = parse_line(b'{"id": 123456789012345678901234, "x": 1}', 1, 0, ReadOptions())
    assert row is not None and row.record == {"id": 123456789012345678901234, "x": 1}


def test_row_sources_is_a_list_of_one_source_per_row() -> None:
    rows = RowSources(["a", "b", "c", "d"], [2, 0, 3, 1])
    assert list(rows) == ["a", "a", "c", "c", "c", "d"]
    assert len(rows) == 6 and rows[-1] == "d" and rows[1:3] == ["a", "c"]
    assert len(RowSources([], [])) == 0


def _rows(n: int) -> list[Any]:
    return [
        {
            "messages": [
                {"role": "user", "content": f"q {i % 40}"},
                {"role": "assistant", "content": f"a {i % 40}" + "!" * (i % 3)},
            ]
        }
        for i in range(n)
    ]


def test_metrics_row_groups_do_not_depend_on_the_units(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(metrics, "ROW_GROUP", 7)
    path = write_jsonl(tmp_path / "in.jsonl", [*_rows(300), "not an object"])
    data = {
        "input": {"paths": [str(path)]},
        "stages": [{"name": "count_tokens"}, {"name": "dedupe"}, {"name": "split"}],
    }
    report = run_two_ways(tmp_path, data, batch_sizes=(1000, 13), chunks=(1 << 20, 2000))
    meta = pq.read_metadata(tmp_path / "out0" / "metrics.parquet")
    assert meta.num_rows == 301 == report["totals"]["rows_in"]
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [7] * 43
    table = pq.read_table(tmp_path / "out0" / "metrics.parquet").to_pandas()
    assert (table["split"] == "rejected").sum() == report["totals"]["rejected"]
    assert table["tokens_total"].dtype == np.float64  # int64 with a gap: the rejected row
    assert table.loc[table["split"] != "rejected", "tokens_total"].min() > 0
    assert not list((tmp_path / "out0").glob("**/*.metrics.parquet"))  # parts removed


def test_units_hand_back_compact_arrays(tmp_path: Path) -> None:
    from pipeline.config import parse_config
    from pipeline.engine.local import LocalEngine
    from pipeline.read.plan import iter_units, plan_inputs
    from pipeline.runner import _setup, process_unit

    path = write_jsonl(tmp_path / "in.jsonl", _rows(50))
    cfg = parse_config(
        {
            "input": {"paths": [str(path)]},
            "stages": [{"name": "count_tokens"}, {"name": "dedupe"}],
            "output": {"dir": str(tmp_path / "out")},
        }
    )
    results = list(
        LocalEngine(1).map(
            process_unit,
            iter_units(plan_inputs(cfg), cfg),
            setup=_setup,
            setup_args=(cfg.stages, 16, False),
            scratch=tmp_path / "scratch",
        )
    )
    for r in results:
        for name in ("kept_lines", "kept_bytes", "kept_ords", "rejected_ords"):
            assert getattr(r.spooled, name).dtype == np.int64
        assert r.keys and all(isinstance(v, np.ndarray) for v in r.keys.values())
        assert {v.dtype for v in r.keys.values()} == {np.dtype(np.int64)}
        assert Path(r.metrics_path).exists() and r.metric_types["m_tokens_total"] == "int"
    assert sum(r.spooled.kept for r in results) == 50


def test_read_kept_is_the_kept_rows_of_a_full_read(tmp_path: Path) -> None:
    """Streamed, filtered and narrowed, each column keeps the pandas type a read of the whole
    file gives it (nulls only in rejected rows still make an integer column float)."""
    import pandas as pd
    import pyarrow as pa

    split = ["train", "rejected", "validation", "train", "rejected", "train", "validation"] * 3
    n = len(split)
    table = pa.table(
        {
            "id": [f"r{i}" for i in range(n)],
            "split": split,
            "tokens_total": [None if s == "rejected" else i for i, s in enumerate(split)],
            "flag": [None if s == "rejected" else i % 2 == 0 for i, s in enumerate(split)],
            "messages": [None if i == 2 else i for i in range(n)],  # a null in a kept row
            "chars": list(range(n)),
            "ratio": [i / 3 for i in range(n)],
        }
    )
    path = tmp_path / "metrics.parquet"
    pq.write_table(table, path, row_group_size=4)
    full = pq.read_table(path).to_pandas()
    want = full[full["split"].isin(["train", "validation"])].reset_index(drop=True)
    frame, names = metrics.read_kept(path, None)
    assert names == table.column_names
    pd.testing.assert_frame_equal(frame, want)
    assert frame["tokens_total"].dtype == np.float64 and frame["flag"].dtype == object
    some, _ = metrics.read_kept(path, ["flag", "id", "split", "tokens_total", "absent"])
    pd.testing.assert_frame_equal(some, want[["id", "split", "tokens_total", "flag"]])
    assert len(some) == split.count("train") + split.count("validation")
