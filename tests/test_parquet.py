"""Parquet reader: batches, row indexes, value types, damaged files, sample data."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.errors import PipelineError
from pipeline.read import parquet
from pipeline.read.base import RawRow, ReadOptions, ReadStats
from pipeline.read.parquet import read_parquet
from tests.conftest import corpus_file

SAMPLES = Path(__file__).resolve().parents[1] / "sample_data"


def read(path: Path) -> tuple[list[RawRow], ReadStats]:
    stats = ReadStats()
    return list(read_parquet(path, ReadOptions(), stats)), stats


def write_table(tmp_path: Path, table: pa.Table, **kwargs: object) -> Path:
    path = tmp_path / "data.parquet"
    pq.write_table(table, path, **kwargs)  # type: ignore[arg-type]
    return path


def test_simple_table(tmp_path: Path) -> None:
    path = write_table(tmp_path, pa.table({"prompt": ["a", "b"], "completion": ["x", None]}))
    rows, stats = read(path)
    assert rows == [
        RawRow(line=0, record={"prompt": "a", "completion": "x"}),
        RawRow(line=1, record={"prompt": "b", "completion": None}),
    ]
    assert stats.columns == ["prompt", "completion"]
    assert stats.encoding is None and stats.confidence is None and not stats.bom_removed


@pytest.mark.parametrize(("rows_total", "group", "batch"), [(10, 3, 4), (2500, 1000, 1024)])
def test_indexes_run_across_row_groups_and_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows_total: int, group: int, batch: int
) -> None:
    monkeypatch.setattr(parquet, "BATCH_SIZE", batch)
    table = pa.table({"i": list(range(rows_total))})
    path = write_table(tmp_path, table, row_group_size=group)
    assert pq.ParquetFile(path).num_row_groups > 1
    rows, _ = read(path)
    assert [r.line for r in rows] == list(range(rows_total))
    assert [r.record["i"] for r in rows if r.record] == list(range(rows_total))


def test_nested_and_typed_values(tmp_path: Path) -> None:
    when = dt.datetime(2024, 5, 6, 7, 8, 9)
    table = pa.table(
        {
            "messages": pa.array(
                [[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]]
            ),
            "n": pa.array([3], pa.int64()),
            "score": pa.array([0.5]),
            "ok": pa.array([True]),
            "when": pa.array([when], pa.timestamp("s")),
            "blob": pa.array([b"\x00\x01"]),
        }
    )
    rows, stats = read(write_table(tmp_path, table))
    assert rows[0].record == {
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
        "n": 3,
        "score": 0.5,
        "ok": True,
        "when": when,
        "blob": b"\x00\x01",
    }
    assert stats.columns == ["messages", "n", "score", "ok", "when", "blob"]


def test_empty_table_keeps_columns(tmp_path: Path) -> None:
    table = pa.table({"prompt": pa.array([], pa.string()), "completion": pa.array([], pa.string())})
    rows, stats = read(write_table(tmp_path, table))
    assert rows == []
    assert stats.columns == ["prompt", "completion"]


def test_streams_lazily(tmp_path: Path) -> None:
    path = write_table(tmp_path, pa.table({"i": list(range(5000))}), row_group_size=1000)
    it = read_parquet(path, ReadOptions(), ReadStats())
    assert next(it) == RawRow(line=0, record={"i": 0})
    it.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "content",
    [b"", b"prompt,completion\n1,2\n", b"PAR1" + b"\0" * 40 + b"PAR1"],
    ids=["empty", "csv-text", "bad-footer"],
)
def test_not_parquet_is_a_pipeline_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.parquet"
    path.write_bytes(content)
    with pytest.raises(PipelineError, match=r"bad\.parquet"):
        read(path)


def test_truncated_file(tmp_path: Path) -> None:
    path = write_table(tmp_path, pa.table({"i": list(range(1000))}))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(PipelineError, match=r"data\.parquet"):
        read(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"nope\.parquet"):
        read(tmp_path / "nope.parquet")


def test_sample_faq_parquet() -> None:
    rows, stats = read(SAMPLES / "faq.parquet")
    assert stats.columns == ["prompt", "completion"]
    assert len(rows) == 15 and [r.line for r in rows] == list(range(15))
    recs = [r.record for r in rows if r.record]
    assert recs[0] == {
        "prompt": "How do I turn on the Kettlebot?",
        "completion": "Press and hold the power ring for two seconds until it glows blue.",
    }
    pairs = Counter((r["prompt"], r["completion"]) for r in recs)
    assert sorted(pairs.values(), reverse=True)[:3] == [2, 2, 1]
    assert sum(1 for r in recs if r["completion"] == "") == 1
    assert sum(1 for r in recs if "\n" in r["completion"]) == 1


@pytest.mark.corpus
def test_corpus_table_round_trips_through_parquet(tmp_path: Path) -> None:
    """The corpus has no Parquet file: write one from a real CSV and read it back."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.read.delimited import read_csv

    src = corpus_file("messy/songys_ChatbotData_ko_crlf.csv")
    csv_rows = [r.record for r in read_csv(src, ReadOptions(), ReadStats()) if r.record]
    assert len(csv_rows) == 11823
    path = tmp_path / "chatbot.parquet"
    pq.write_table(pa.Table.from_pylist(csv_rows), path, row_group_size=1000)
    rows, stats = read(path)
    assert stats.columns == ["Q", "A", "label"]
    assert [r.line for r in rows] == list(range(11823))
    assert [r.record for r in rows] == csv_rows
