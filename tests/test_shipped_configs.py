"""The shipped configs on the repository's own data: nothing rejected that the run itself fixes.

A record's extra top-level keys (an `id`, as bench/make_chat_jsonl.py writes) never reach the
output, so `run` keeps the record and counts the dropped key; `ftprep check` of the same file
still reports each one, because the service refuses the file as it is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

import pipeline
from pipeline.cli import main

ROOT = Path(__file__).resolve().parents[1]
TARGET = "openai:gpt-4o-mini-2024-07-18"


def bench_chat(tmp_path: Path, mb: float = 0.2) -> Path:
    out = tmp_path / "bench.jsonl"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "make_chat_jsonl.py"), str(out), str(mb)],
        check=True,
        capture_output=True,
    )
    return out


def test_openai_chat_keeps_records_with_extra_keys_and_check_reports_them(tmp_path: Path) -> None:
    data = bench_chat(tmp_path)
    lines = data.read_text(encoding="utf-8").splitlines()
    assert all('"id":' in line for line in lines)

    result = pipeline.run("openai_chat", inputs=[str(data)], out=str(tmp_path / "o"), workers=1)
    report = result.report
    assert set(report["rejected_by_reason"]) <= {"duplicate"}, report["rejected_by_reason"]
    kept = report["totals"]["train"] + report["totals"]["validation"]
    assert kept + report["totals"]["rejected"] == len(lines)
    # counted where validate_schema passes a record: before dedupe rejects the repeats
    assert report["fixes"]["top_level_key_dropped"]["count"] == len(lines)
    for split in ("train", "validation"):
        for line in (tmp_path / "o" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines():
            assert list(json.loads(line)) == ["messages"]

    checked = CliRunner().invoke(
        main, ["check", str(data), "--target", TARGET, "--format", "json", "--max-errors", "0"]
    )
    assert checked.exit_code == 1
    doc = json.loads(checked.output)
    unknown = [
        p for f in doc["files"] for p in f["problems"] if p["code"] == "top_level_key_unknown"
    ]
    assert len(unknown) == len(lines)


def test_openai_chat_on_the_sample_data_rejects_no_extra_key(tmp_path: Path) -> None:
    result = pipeline.run(
        "openai_chat", inputs=[str(ROOT / "sample_data")], out=str(tmp_path / "o"), workers=1
    )
    assert "top_level_key_unknown" not in result.report["rejected_by_reason"]
    assert not result.verdict.failed(), result.verdict
