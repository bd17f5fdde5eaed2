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
