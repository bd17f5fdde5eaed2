"""Shared fixtures: the corpus location, a network guard, a helper to run a config, and the
check that every report.json the test run builds matches pipeline/report/report.schema.json."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
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


@dataclass
class ReportChecks:
    """What the schema check saw over the whole test run (`report_validation`)."""

    validated: int = 0  # report.json documents built, each validated
    failures: list[str] = field(default_factory=list)  # one text per invalid document

    def take_failures(self, since: int) -> list[str]:
        """Remove and return the failures recorded after the first `since` (for a test that
        builds an invalid report on purpose)."""
        taken = self.failures[since:]
        del self.failures[since:]
        return taken


REPORT_CHECKS = ReportChecks()


def schema_errors(validator: Any, document: Any) -> list[str]:
    """`$.json.path: message` for every way `document` breaks the schema, in document order
    (for a value no alternative of an `anyOf` fits, also the closest alternative's error)."""
    from jsonschema.exceptions import best_match

    out = []
    for e in sorted(validator.iter_errors(document), key=lambda e: [str(p) for p in e.path]):
        text = f"{e.json_path}: {e.message}"
        if e.context:
            closest = best_match(e.context)
            text += f" (closest: {closest.json_path}: {closest.message})"
        out.append(text)
    return out


@pytest.fixture(scope="session", autouse=True)
def report_validation() -> Iterator[ReportChecks]:
    """Validate every report.json document `pipeline.report.json_report.build` returns, in any
    test, against pipeline/report/report.schema.json (Draft 2020-12).

    `build` is replaced for the whole session by a wrapper that validates the document as
    report.json holds it (the JSON of what the original returned) and returns the original
    result unchanged; runs build their report in the calling process (workers run only
    stages), so every in-process run is covered. An invalid document is recorded, and
    `_report_matches_schema` fails the test that built it with the JSON path of each error.
    The run itself goes on as usual, so a caller that swallows exceptions (click's CliRunner)
    cannot hide the failure.
    """
    from jsonschema import Draft202012Validator

    from pipeline.report import json_report
    from pipeline.report.schema_doc import load_schema

    validator = Draft202012Validator(load_schema())
    original = json_report.build

    def build(summary: Any) -> dict[str, Any]:
        report = original(summary)
        document = orjson.loads(orjson.dumps(report))  # as written to report.json
        REPORT_CHECKS.validated += 1
        errors = schema_errors(validator, document)
        if errors:
            REPORT_CHECKS.failures.append(
                f"report.json of {getattr(summary, 'out_dir', None)} does not match "
                "pipeline/report/report.schema.json:\n  " + "\n  ".join(errors)
            )
        return report

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(json_report, "build", build)
        yield REPORT_CHECKS


@pytest.fixture(autouse=True)
def _report_matches_schema(report_validation: ReportChecks) -> Iterator[None]:
    """Fail the test in which a report.json that breaks the schema was built."""
    before = len(report_validation.failures)
    yield
    new = report_validation.failures[before:]
    if new:
        pytest.fail(
            "\n".join(new) + "\n(if the report is right, fix the schema and docs/report.md)",
            pytrace=False,
        )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORT_CHECKS.validated:
        terminalreporter.write_line(
            f"report.json schema: {REPORT_CHECKS.validated} reports validated, "
            f"{len(REPORT_CHECKS.failures)} invalid"
        )


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
