"""Locations in `run` and `convert` outputs (docs/decisions.md, Locations): a JSON array's or
Parquet file's records are located by their labelled 1-based record number, never by a 0-based
index where a line goes; line-located formats keep their lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from pipeline.cli import main

TARGET = "openai:gpt-4o-mini-2024-07-18"
GOOD = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
NO_ASSISTANT = {"messages": [{"role": "user", "content": "only a question"}]}
NO_USER = {  # kept with the `user_missing` warning
    "messages": [{"role": "system", "content": "be brief"}, {"role": "assistant", "content": "ok"}]
}
# positions (1-based) of the records below: 2 and 4 rejected, 5 kept with a warning
RECORDS: list[Any] = [GOOD, "not an object", dict(GOOD, id=3), NO_ASSISTANT, NO_USER]


def _run(
    tmp_path: Path, data: Path, extra: str = "", stages: str = "[validate_schema]"
) -> tuple[str, Path]:
    cfg = tmp_path / "run.yaml"  # a few records: no minimum example count
    cfg.write_text(
        f"target: {TARGET}\n{extra}gate:\n  target_limits: false\nstages: {stages}\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["run", str(cfg), "--input", str(data), "--out", str(out), "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    return result.output, out


def _rejected(out: Path) -> list[dict[str, Any]]:
    text = (out / "rejected.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def _metrics(out: Path) -> list[dict[str, Any]]:
    table = pq.read_table(out / "metrics.parquet", columns=["id", "line", "record_number", "split"])
    return table.to_pylist()


def _assert_by_record(output: str, out: Path, source: str, rejected: dict[int, str]) -> None:
    """Records `rejected` (1-based number -> reason) rejected, record 5 warned, all labelled."""
    rows = _rejected(out)
    assert [(r["record_number"], r["reason"]) for r in rows] == sorted(rejected.items())
    assert all("line" not in r for r in rows)

    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["report_version"] == 2
    for number, reason in rejected.items():
        entry = report["rejected_by_reason"][reason]
        assert entry["first_lines"] == {}
        assert entry["first_records"] == {source: [number]}
        (example,) = entry["examples"]
        assert example["record_number"] == number and "line" not in example
    warned = report["warnings"]["user_missing"]
    assert warned["first_lines"] == {} and warned["first_records"] == {source: [5]}

    md = (out / "report.md").read_text(encoding="utf-8")
    for number, reason in rejected.items():
        assert f"| `{reason}` | 1 | `{source}`: record {number} |" in md.replace("\\_", "_")
    assert f"`{source}`: record 5 |" in md.replace("\\_", "_")
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "first records in" in html and "first lines in" not in html

    # the warning lines `ftprep run` prints
    assert f"  user_missing, e.g. {source}: record 5: " in output
    assert f"{source}:4:" not in output and f"{source}:5:" not in output

    metrics = _metrics(out)
    assert [m["record_number"] for m in metrics] == [1, 2, 3, 4, 5]
    assert [m["line"] for m in metrics] == [None] * 5
    assert [m["id"] for m in metrics][4] == f"{source}: record 5"
    assert [m["split"] for m in metrics] == ["train", "rejected", "train", "rejected", "train"]


@pytest.mark.parametrize("whole", [False, True], ids=["streamed", "input.records"])
def test_a_json_array_is_located_by_record_number(tmp_path: Path, whole: bool) -> None:
    data = tmp_path / "data.json"
    # pretty-printed: record N starts far from line N, so a line could not stand in for it
    doc: Any = {"data": RECORDS} if whole else RECORDS
    data.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    output, out = _run(tmp_path, data, "input:\n  records: data\n" if whole else "")
    _assert_by_record(
        output, out, str(data), {2: "record_not_object", 4: "assistant_missing"}
    )
    not_object = _rejected(out)[0]["message"]
    assert not any(ch.isdigit() for ch in not_object), not_object  # no index beside record 2


def test_a_parquet_file_is_located_by_record_number(tmp_path: Path) -> None:
    rows = [GOOD, GOOD, dict(GOOD), NO_ASSISTANT, NO_USER]
    rows[1] = {"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": ""}]}
    data = tmp_path / "data.parquet"
    pq.write_table(pa.Table.from_pylist([{"messages": r["messages"]} for r in rows]), data)
    output, out = _run(tmp_path, data)
    rejected = {r["record_number"]: r["reason"] for r in _rejected(out)}
    assert sorted(rejected) == [2, 4]
    _assert_by_record(output, out, str(data), rejected)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_line_formats_keep_their_lines(tmp_path: Path, fmt: str) -> None:
    """JSONL and CSV keep `line` (the physical line; CSV counts the header as line 1)."""
    if fmt == "jsonl":
        data = tmp_path / "data.jsonl"
        data.write_text(
            "\n".join(json.dumps(r) if isinstance(r, dict) else r for r in RECORDS) + "\n",
            encoding="utf-8",
        )
        expected = {2: "json_invalid", 4: "assistant_missing"}
        warned_line = 5
    else:
        data = tmp_path / "data.csv"
        data.write_text("prompt,completion\na,b\nc,\nd,e\n", encoding="utf-8")
        expected = {3: "field_empty"}
        warned_line = None
    stages = "[validate_schema]" if fmt == "jsonl" else "[require_fields]"
    output, out = _run(tmp_path, data, stages=stages)
    rows = _rejected(out)
    assert [(r["line"], r["reason"]) for r in rows] == sorted(expected.items())
    assert all("record_number" not in r for r in rows)
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    for number, reason in expected.items():
        entry = report["rejected_by_reason"][reason]
        assert entry["first_lines"] == {str(data): [number]} and entry["first_records"] == {}
        assert entry["examples"][0]["line"] == number
    metrics = _metrics(out)
    assert all(m["record_number"] is None for m in metrics)
    assert all(m["id"] == f"{data}:{m['line']}" for m in metrics)
    if warned_line is not None:
        assert f"  user_missing, e.g. {data}:{warned_line}: " in output
        md = (out / "report.md").read_text(encoding="utf-8")
        assert "record " not in md.split("## Rejected by reason")[1].split("##")[0]


def test_convert_writes_record_numbers_for_a_json_array(tmp_path: Path) -> None:
    data = tmp_path / "d.json"
    data.write_text(json.dumps(RECORDS, indent=2), encoding="utf-8")
    result = CliRunner().invoke(
        main, ["convert", str(data), "--to", "chat", "--out", str(tmp_path / "conv")]
    )
    assert result.exit_code == 1, result.output  # records were rejected
    text = (tmp_path / "conv" / "d.rejected.jsonl").read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.splitlines()]
    assert [(r["record_number"], r["reason"]) for r in rows] == [
        (2, "record_not_object"),
        (4, "assistant_missing"),
    ]
    assert all("line" not in r for r in rows)
