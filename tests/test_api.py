"""The library face: `pipeline.run`, `pipeline.check`, `pipeline.convert`, from any caller."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest

import pipeline
from pipeline.gate import exit_code
from tests.conftest import ROOT, read_jsonl, write_jsonl

TARGET = "openai:gpt-4o-mini-2024-07-18"


def chat(i: int) -> dict[str, object]:
    return {
        "messages": [
            {"role": "user", "content": f"question {i}"},
            {"role": "assistant", "content": f"answer {i}"},
        ]
    }


def test_run_takes_a_dict_a_file_or_a_config_with_overrides(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [chat(i) for i in range(12)])
    config = {"input": {"paths": ["unused.jsonl"]}, "target": TARGET, "stages": ["dataset_limits"]}
    result = pipeline.run(config, inputs=[str(src)], out=str(tmp_path / "a"), workers=1)
    assert result.report["totals"] == {"rows_in": 12, "train": 12, "validation": 0, "rejected": 0}
    assert not result.verdict.failed() and exit_code([result.verdict]) == 0
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text(f"input: {{paths: [{src}]}}\ntarget: {TARGET}\nstages: [dataset_limits]\n")
    again = pipeline.run(yaml_file, out=str(tmp_path / "b"), workers=1)
    assert (tmp_path / "a" / "train.jsonl").read_bytes() == (tmp_path / "b" / "train.jsonl").read_bytes()
    assert again.summary.totals["train"] == 12


def test_run_verdict_fails_on_the_target_limits(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [chat(i) for i in range(3)])
    result = pipeline.run(
        {"input": {"paths": [str(src)]}, "target": TARGET, "stages": ["dataset_limits"]},
        out=str(tmp_path / "o"),
        workers=1,
    )
    assert result.verdict.failed()
    assert [p.code for p in result.verdict.problems] == ["too_few_examples"]
    assert exit_code([result.verdict]) == 1
    assert result.report["gate"]["failed"] is True


def test_check_lists_every_problem_of_a_record(tmp_path: Path) -> None:
    bad = {
        "messages": [
            {"role": "wizard", "content": "hi"},
            {"role": "user", "content": "", "name": "bad name!"},
            {"role": "assistant", "content": "ok"},
        ]
    }
    src = write_jsonl(tmp_path / "d.jsonl", [chat(i) for i in range(11)] + [bad])
    (verdict,) = pipeline.check(src, TARGET)
    on_line_12 = [(p.level, p.code) for p in verdict.problems if p.line == 12]
    assert on_line_12 == [
        ("error", "role_unknown"),
        ("error", "content_empty"),
        ("error", "name_invalid"),
    ]
    assert verdict.records == 12 and verdict.errors == 3
    assert exit_code([verdict]) == 1


def test_check_cli_prints_the_three_problems(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from pipeline.cli import main

    bad = {
        "messages": [
            {"role": "wizard", "content": "hi"},
            {"role": "user", "content": "   "},
            {"role": "assistant", "content": "ok", "weight": 3},
        ]
    }
    src = write_jsonl(tmp_path / "d.jsonl", [bad])
    out = CliRunner().invoke(main, ["check", str(src), "--target", TARGET])
    assert out.exit_code == 1
    codes = [line.split(" error ")[1].split(":")[0] for line in out.output.splitlines() if ":1: error" in line]
    assert sorted(codes) == ["content_empty", "role_unknown", "weight_invalid"]  # grouped by code


def test_convert(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in" / "legacy.jsonl", [{"prompt": "Q ->", "completion": " A"}])
    (summary,) = pipeline.convert(src, to="chat", out=tmp_path / "out")
    assert summary.converted == 1 and summary.error is None
    assert read_jsonl(Path(summary.output or ""))[0]["messages"][-1] == {
        "role": "assistant",
        "content": "A",
    }


SCRIPT = """
import pipeline
result = pipeline.run(
    {{"input": {{"paths": [{src!r}]}}, "stages": ["normalize_text"],
      "runner": {{"batch_size": 7, "chunk_bytes": 300}}}},
    out={out!r},
    workers=2,
)
print("totals", result.report["totals"]["train"])
"""


@pytest.mark.parametrize("how", ["script file", "python -c"])
def test_run_from_a_script_without_a_main_guard(tmp_path: Path, how: str) -> None:
    """Workers must not re-run the caller's main module (that loops forever, printing tracebacks)."""
    src = write_jsonl(tmp_path / "in.jsonl", [chat(i) for i in range(60)])
    code = textwrap.dedent(SCRIPT.format(src=str(src), out=str(tmp_path / "out")))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if how == "script file":
        script = tmp_path / "prepare.py"
        script.write_text(code)
        argv = [sys.executable, str(script)]
    else:
        argv = [sys.executable, "-c", code]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert done.stdout.count("totals 60") == 1  # the script ran once, not once per worker
    report = orjson.loads((tmp_path / "out" / "report.json").read_bytes())
    assert report["identity"]["holds"]
