"""Golden end-to-end outputs: the same inputs and config give the same files, release after release.

Each case runs a whole pipeline (the demo on sample_data/, and three corpus files through
legacy_format, tokens, token limits, dedupe, split and dataset limits) and compares every
output with tests/golden/CASE/: train, validation and rejected JSONL, report.json and report.md
byte for byte, metrics.parquet as its schema and rows (its bytes also carry the writing
pyarrow's version, which is not ftprep's output). report.html is rendered from report.json and
its chart SVG lays text out with the fonts the machine has: tests/test_report_pages.py renders
every golden report.json and checks the page instead.

Regenerate after an intended change with `pytest tests/test_golden.py --update-golden`, then
read the diff of tests/golden/ before committing it. Never edit the files by hand.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import CORPUS, ROOT

GOLDEN = Path(__file__).parent / "golden"
PINNED_TODAY = dt.date(2026, 12, 1)  # shutdown warnings are judged against this date

CASES: dict[str, dict[str, Any]] = {
    "demo": {"config": "sample_data/demo.yaml"},
    "legacy_classification": {
        "corpus": "openai_format/aoai_context_switching_prepared_train.jsonl",
        "target": "openai:davinci-002",
        "gate": {"allow_retired": True},  # retired since 2024-10-28: the run warns
        "stages": [
            "normalize_text",
            "require_fields",
            {"name": "legacy_format", "separator": " ->", "stop": None},
            "validate_schema",
            "count_tokens",
            "token_limit",
            "dedupe",
            {"name": "split", "stratify": "completion", "seed": 7},
            "dataset_limits",
        ],
    },
    "chat_truncated": {
        "corpus": "openai_format/toy_chat_fine_tuning.jsonl",
        "target": "openai:gpt-3.5-turbo-0613",
        "stages": [
            "validate_schema",
            "count_tokens",
            "token_limit",  # the service truncates: the 8,032-token example is cut
            {"name": "dedupe", "mode": "near"},
            {"name": "split", "validation": 0.4},
            "dataset_limits",
        ],
    },
    "bom_tsv_to_chat": {
        "corpus": "messy/botbuilder_smartLightFAQ_bom.tsv",
        "target": "openai:gpt-4o-mini-2024-07-18",
        "columns": {"prompt": "Question", "completion": "Answer"},
        "stages": [
            {"name": "normalize_text", "strip_trailing": True},
            "require_fields",
            {"name": "convert", "to": "chat", "system": "You answer questions about smart lights."},
            "validate_schema",
            "count_tokens",
            {
                "name": "dedupe",
                "mode": "normalized",
                "subset": ["completion"],
                "conflicts": "reject",
            },
            {"name": "split", "validation": 0.25},
            "dataset_limits",
        ],
    },
}


def _config(name: str, out: Path) -> Any:
    from pipeline.config import load_config, parse_config, with_overrides

    case = CASES[name]
    if "config" in case:
        return with_overrides(load_config(case["config"]), out=str(out), workers=1)
    rel = CORPUS / case["corpus"]
    if not rel.exists():
        pytest.skip(
            f"corpus file {rel} is absent (the ../shared/corpus folder is not beside the repo)"
        )
    data: dict[str, Any] = {
        "input": {"paths": [f"../shared/corpus/{case['corpus']}"]},
        "target": case["target"],
        "stages": case["stages"],
        "output": {"dir": str(out)},
        "runner": {"workers": 1, "batch_size": 50},
    }
    if "columns" in case:
        data["input"]["columns"] = case["columns"]
    if "gate" in case:
        data["gate"] = case["gate"]
    return parse_config(data, f"golden/{name}.yaml")


def _metrics_as_json(path: Path) -> bytes:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    doc = {
        "schema": [[f.name, str(f.type)] for f in table.schema],
        "rows": table.to_pylist(),
    }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"


def _outputs(out: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for p in sorted(out.iterdir()):
        if p.name == "metrics.parquet":
            files["metrics.json"] = _metrics_as_json(p)
        elif p.name == "report.html":
            continue  # rendered from report.json; its charts' SVG text follows the fonts found
        elif p.is_file():
            files[p.name] = p.read_bytes()
    return files


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    import pipeline.targets
    from pipeline.runner import run

    monkeypatch.chdir(ROOT)  # inputs are named relative to the repo, as in the reports
    monkeypatch.setattr(pipeline.targets, "today", lambda: PINNED_TODAY)
    run(_config(name, tmp_path / "out"))
    got = _outputs(tmp_path / "out")
    golden = GOLDEN / name
    if request.config.getoption("--update-golden"):
        if golden.exists():
            for old in golden.iterdir():
                old.unlink()
        golden.mkdir(parents=True, exist_ok=True)
        for fname, data in got.items():
            (golden / fname).write_bytes(data)
        return
    assert golden.is_dir(), f"no golden outputs for {name}: run pytest --update-golden"
    want = {p.name: p.read_bytes() for p in sorted(golden.iterdir())}
    assert sorted(got) == sorted(want)
    for fname in want:
        assert got[fname] == want[fname], f"{name}/{fname} differs from tests/golden/{name}/{fname}"


def test_golden_cases_cover_the_promised_stages() -> None:
    """The golden runs exercise dedupe, split, legacy_format and tokens on real corpus files."""
    corpus_stages = {
        s if isinstance(s, str) else s["name"]
        for case in CASES.values()
        if "corpus" in case
        for s in case["stages"]
    }
    assert {"dedupe", "split", "legacy_format", "count_tokens", "token_limit"} <= corpus_stages
    assert sum("corpus" in c for c in CASES.values()) >= 3
