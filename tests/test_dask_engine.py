"""The Dask engine gives byte for byte the local engine's outputs (LocalCluster, 2 processes)."""

from __future__ import annotations

import csv
import socket
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

pytest.importorskip("distributed", reason="the dask extra (pip install 'ftprep[dask]') is absent")

from pipeline.cli import main
from pipeline.config import parse_config
from pipeline.engine import get_engine
from pipeline.engine.dask import DaskEngine
from pipeline.runner import run
from tests.conftest import write_jsonl

REAL_CONNECT = socket.socket.connect  # taken at import, before the conftest's guard


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A LocalCluster talks to its workers over loopback TCP: allow that, and only that (the
    conftest's guard still fails any other address)."""
    guarded = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and address[0] in ("127.0.0.1", "::1", "localhost"):
            return REAL_CONNECT(self, address)
        return guarded(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


def _chat_rows(n: int) -> list[Any]:
    rows: list[Any] = []
    for i in range(n):
        text = f"question {i % 37} about {'数据' * (i % 5)} topic {i % 11}"
        rows.append(
            {
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": text},
                    {"role": "assistant", "content": f"answer {i % 53} " * (1 + i % 9)},
                ]
            }
        )
    if n > 9:
        rows[5] = rows[3]  # an exact duplicate
        rows[9] = {"messages": "not a list"}
    return rows


def _outputs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def _both(tmp_path: Path, data: dict[str, Any]) -> dict[str, bytes]:
    results = []
    for name, engine in (("local", get_engine(2)), ("dask", DaskEngine(2))):
        out = tmp_path / name
        small = {"workers": 2, "batch_size": 50, "chunk_bytes": 1 << 20}
        cfg = parse_config({**data, "output": {"dir": str(out)}, "runner": small})
        result = run(cfg, engine=engine)
        t = result.report["totals"]
        assert t["rows_in"] == t["train"] + t["validation"] + t["rejected"]
        results.append(_outputs(out))
    assert results[0].keys() == results[1].keys()
    for name in results[0]:
        assert results[0][name] == results[1][name], name
    return results[0]


def test_chat_jsonl_with_every_kind_of_decision(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "chat.jsonl", _chat_rows(700))
    with open(path, "ab") as f:
        f.write(b"{not json\n\n")
    data = {
        "target": "openai:gpt-4o-mini-2024-07-18",
        "input": {"paths": [str(path)]},
        "stages": [
            {"name": "normalize_text"},
            {"name": "count_tokens"},
            {"name": "token_limit", "max_tokens": 45, "over_limit": "reject"},
            {"name": "dedupe"},
            {"name": "split", "validation": 0.1},
        ],
    }
    files = _both(tmp_path, data)
    rejected = [orjson.loads(line) for line in files["rejected.jsonl"].splitlines()]
    reasons = {r["reason"] for r in rejected}
    assert {"json_invalid", "duplicate", "too_many_tokens"} <= reasons
    assert files["validation.jsonl"] and files["train.jsonl"]


def test_csv_rows_read_by_the_parent(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["prompt", "completion"])
        for i in range(400):
            w.writerow([f"prompt {i % 97}\nsecond line", f" completion {i}"])
    data = {
        "input": {"paths": [str(path)]},
        "stages": [{"name": "count_tokens"}, {"name": "dedupe"}, {"name": "split"}],
    }
    files = _both(tmp_path, data)
    kept = files["train.jsonl"].splitlines() + files["validation.jsonl"].splitlines()
    assert len(kept) == 400  # every completion differs: no duplicates
    assert b"\\nsecond line" in kept[0]


def test_scheduler_without_the_dask_engine_is_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("input:\n  paths: [x.jsonl]\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["run", str(config), "--scheduler", "tcp://h:8786"])
    assert result.exit_code == 2
    assert "--scheduler goes with --engine dask" in result.output


def test_an_unreachable_scheduler_is_one_clear_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "chat.jsonl", _chat_rows(3))
    out = tmp_path / "out"
    config = tmp_path / "c.yaml"
    config.write_text(f"input:\n  paths: [{path}]\noutput:\n  dir: {out}\n", encoding="utf-8")
    args = ["run", str(config), "--engine", "dask", "--scheduler", "tcp://127.0.0.1:9"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "cannot reach the Dask scheduler" in result.output
    assert not out.exists() or not any(out.iterdir())  # nothing written
