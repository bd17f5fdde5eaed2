"""Shared fixtures: the corpus location, a network guard, and a helper to run a config."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite tests/golden/ from this code's outputs (then read the diff)",
    )


@pytest.fixture(autouse=True)
def _block_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any attempt to reach the network fails the test: ftprep must work offline."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise AssertionError(f"network access attempted: {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    yield


def corpus_file(rel: str) -> Path:
    """A file of ../shared/corpus, or skip the test with a clear message when it is absent."""
    path = CORPUS / rel
    if not path.exists():
        pytest.skip(f"corpus file {path} is absent (the ../shared/corpus folder is not beside the repo)")
    return path


def run_config(tmp_path: Path, data: dict[str, Any], name: str = "out") -> dict[str, Any]:
    """Run a config given as a dict into tmp_path/name; returns report.json as a dict."""
    from pipeline.config import parse_config
    from pipeline.runner import run

    data = {**data, "output": {"dir": str(tmp_path / name)}}
    data.setdefault("runner", {"workers": 1})
    run(parse_config(data, "test.yaml"))
    return dict(orjson.loads((tmp_path / name / "report.json").read_bytes()))


def read_jsonl(path: Path) -> list[Any]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def run_two_ways(
    tmp_path: Path, data: dict[str, Any], batch_sizes: tuple[int, int], chunks: tuple[int, int]
) -> dict[str, Any]:
    """Run a config in-process with one batching, then on two workers with another.

    Asserts that every output file is byte-identical and that nothing was lost; returns the
    first run's report (its outputs are in tmp_path/out0).
    """
    from pipeline.config import parse_config
    from pipeline.runner import run

    outputs, reports = [], []
    for i, workers in enumerate((1, 2)):
        out = tmp_path / f"out{i}"
        runner = {"workers": workers, "batch_size": batch_sizes[i], "chunk_bytes": chunks[i]}
        run(parse_config({**data, "output": {"dir": str(out)}, "runner": runner}))
        report = orjson.loads((out / "report.json").read_bytes())
        t = report["totals"]
        assert report["identity"]["holds"]
        assert t["rows_in"] == t["train"] + t["validation"] + t["rejected"]
        reports.append(report)
        outputs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert outputs[0] == outputs[1]
    return dict(reports[0])


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    """Write `rows` as JSONL (creating the folder); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path
