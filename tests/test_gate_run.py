"""The gate of `ftprep run`, end to end through the command line: the target's limits always
gate, `gate.max_rejected_share`, expectation suites (pass 0, fail 1, bad suite 2), what the
command prints last, and the report files a run writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
from click.testing import CliRunner

from pipeline.cli import main
from tests.conftest import write_jsonl

TARGET = "openai:gpt-4o-mini-2024-07-18"  # at least 10 training examples


def chat(i: int, answer: str | None = None) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user", "content": f"question {i}"},
            {"role": "assistant", "content": answer if answer is not None else f"answer {i}"},
        ]
    }


def invoke(tmp_path: Path, config: str, rows: list[dict[str, Any]]) -> tuple[Any, Path]:
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(config, encoding="utf-8")
    out = tmp_path / "o"
    result = CliRunner().invoke(
        main, ["run", str(cfg), "--input", str(data), "--out", str(out), "--workers", "1"]
    )
    return result, out


def suite(tmp_path: Path, expectations: list[dict[str, Any]], name: str = "s.json") -> Path:
    path = tmp_path / name
    path.write_bytes(orjson.dumps({"name": "crafted", "expectations": expectations}))
    return path


def test_the_targets_example_count_gates_without_dataset_limits_in_the_stages(
    tmp_path: Path,
) -> None:
    result, out = invoke(tmp_path, f"target: {TARGET}\nstages: [validate_schema]\n", [chat(i) for i in range(5)])
    assert result.exit_code == 1, result.output
    report = json.loads((out / "report.json").read_text())
    assert [r["code"] for r in report["gate"]["reasons"]] == ["too_few_examples"]
    assert report["gate"]["exit_code"] == 1
    assert [s["name"] for s in report["stages"]][-1] == "dataset_limits"
    assert report["dataset"]["dataset_limits"]["cost_usd"] is not None  # the estimate too
    # the verdict and its reasons come last
    assert result.output.rstrip().splitlines()[-1].startswith("  too_few_examples: 5 training")


def test_target_limits_false_turns_the_implicit_check_off(tmp_path: Path) -> None:
    config = f"target: {TARGET}\nstages: [validate_schema]\ngate:\n  target_limits: false\n"
    result, out = invoke(tmp_path, config, [chat(i) for i in range(5)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert "dataset_limits" not in report["dataset"]
    assert result.output.rstrip().splitlines()[-1] == "gate passed (exit 0)"


def test_a_listed_dataset_limits_runs_even_with_target_limits_false(tmp_path: Path) -> None:
    config = f"target: {TARGET}\nstages: [dataset_limits]\ngate: {{target_limits: false}}\n"
    result, _out = invoke(tmp_path, config, [chat(i) for i in range(5)])
    assert result.exit_code == 1 and "too_few_examples" in result.output


def test_max_rejected_share(tmp_path: Path) -> None:
    rows = [chat(i) for i in range(6)] + [chat(i, answer="") for i in range(6, 10)]  # 40% bad
    config = "stages: [validate_schema]\ngate:\n  max_rejected_share: {}\n"
    failed, _ = invoke(tmp_path / "a", config.format(0.3), rows)
    assert failed.exit_code == 1, failed.output
    assert "too_many_rejected: 4 of 10 records rejected (40.0%)" in failed.output
    passed, _ = invoke(tmp_path / "b", config.format(0.5), rows)
    assert passed.exit_code == 0, passed.output


def test_a_suite_passes_and_fails_on_crafted_data(tmp_path: Path) -> None:
    expectations = [
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "tokens_assistant", "min_value": 2},
            "table": "records",
        },
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "train", "min_value": 3},
            "table": "dataset",
        },
    ]
    path = suite(tmp_path, expectations)
    config = f"stages: [count_tokens]\ngate:\n  expectations: [{path}]\n"
    long_answers = [chat(i, answer=f"a longer answer number {i}") for i in range(4)]
    result, out = invoke(tmp_path / "pass", config, long_answers)
    assert result.exit_code == 0, result.output
    gate = json.loads((out / "report.json").read_text())["gate"]
    assert [e["success"] for e in gate["expectations"][0]["results"]] == [True, True]

    one_token = [chat(i, answer="ok") for i in range(4)]  # "ok": 1 assistant token each
    result, out = invoke(tmp_path / "fail", config, one_token)
    assert result.exit_code == 1, result.output
    gate = json.loads((out / "report.json").read_text())["gate"]
    assert [e["success"] for e in gate["expectations"][0]["results"]] == [False, True]
    assert [r["code"] for r in gate["reasons"]] == ["expectation_failed"]
    assert "tokens_assistant" in result.output.splitlines()[-1]
    assert (out / "train.jsonl").exists()  # a failed gate still writes the outputs


def test_a_warning_level_expectation_warns_and_passes(tmp_path: Path) -> None:
    path = suite(
        tmp_path,
        [
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "tokens_assistant", "min_value": 5},
                "table": "records",
                "meta": {"level": "warning", "why": "short answers"},
            }
        ],
    )
    config = f"stages: [count_tokens]\ngate:\n  expectations: {path}\n"  # one path, not a list
    result, out = invoke(tmp_path, config, [chat(i, answer="ok") for i in range(3)])
    assert result.exit_code == 0, result.output
    assert "gate passed with 1 gate warning (exit 0)" in result.output
    assert json.loads((out / "report.json").read_text())["gate"]["warnings"]


def test_an_unknown_expectation_type_exits_2_before_reading_the_data(tmp_path: Path) -> None:
    path = suite(
        tmp_path,
        [{"type": "expect_column_values_to_be_betwen", "kwargs": {"column": "x"}}],
    )
    out_exists_before = (tmp_path / "o").exists()
    result, out = invoke(
        tmp_path, f"stages: [count_tokens]\ngate:\n  expectations: [{path}]\n", [chat(0)]
    )
    assert result.exit_code == 2, result.output
    assert "expect_column_values_to_be_betwen" in result.output
    assert "expect_column_values_to_be_between" in result.output  # the closest name
    assert "Traceback" not in result.output
    assert not out_exists_before and not out.exists()


def test_a_missing_suite_exits_2(tmp_path: Path) -> None:
    result, _ = invoke(
        tmp_path, f"gate:\n  expectations: [{tmp_path / 'nope.json'}]\n", [chat(0)]
    )
    assert result.exit_code == 2 and "nope.json: expectation suite not found" in result.output


def test_warnings_are_printed_by_code_with_counts(tmp_path: Path) -> None:
    rows = [chat(i) for i in range(3)]
    rows[1]["messages"][0]["content"] = "question\r\n1"  # normalize_text fixes; a change
    rows[2]["messages"].insert(0, {"role": "system", "content": "x"})
    rows.append({"messages": [{"role": "assistant", "content": "alone"}]})  # user_missing
    result, out = invoke(tmp_path, "stages: [normalize_text, validate_schema]\n", rows)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["warnings"], report
    for code, w in report["warnings"].items():
        assert f"{code} {w['count']}" in result.output


def test_a_run_writes_three_report_files_and_prints_the_time_not_in_the_report(
    tmp_path: Path,
) -> None:
    result, out = invoke(tmp_path, "stages: [count_tokens]\n", [chat(i) for i in range(3)])
    assert result.exit_code == 0, result.output
    for name in ("report.json", "report.md", "report.html"):
        assert (out / name).stat().st_size > 0
    assert f"report: {out / 'report.html'}" in result.output
    assert "took " in result.output
    text = (out / "report.json").read_text()
    assert "took" not in text and "seconds" not in text and "time" not in json.loads(text)


def test_hostile_record_text_is_shown_as_text_in_the_pages(tmp_path: Path) -> None:
    hostile = "<script>alert(1)</script></textarea>{{ 7*7 }}{% raw %}"
    rows = [chat(0), {"messages": [{"role": "wizard", "content": hostile}]}]
    result, out = invoke(tmp_path, "stages: [validate_schema]\n", rows)
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text()
    assert "<script>" not in html and "</textarea>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;/textarea&gt;" in html
    assert "{{ 7*7 }}" in html and "49" not in html.split("{{ 7*7 }}")[0][-20:]
    md = (out / "report.md").read_text()
    assert "<script>" not in md


def test_the_command_line_shows_none_of_great_expectations_set_up_logs(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    data = write_jsonl(tmp_path / "d.jsonl", [chat(i) for i in range(3)])
    cfg = tmp_path / "run.yaml"
    suite_path = ROOT / "expectations" / "chat.json"
    cfg.write_text(
        f"input: {{paths: [{data}]}}\nstages: [count_tokens]\n"
        f"gate: {{expectations: [{suite_path}]}}\noutput: {{dir: {tmp_path / 'o'}}}\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", "from pipeline.cli import main; main()", "run", str(cfg)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "stage count_tokens: 3 in, 3 out" in done.stderr  # ftprep's own lines stay
    for noise in ("Skipping registering", "ephemeral docs site", "Loading 'datasources'"):
        assert noise not in done.stderr


def test_a_run_without_suites_and_check_never_import_great_expectations(tmp_path: Path) -> None:
    import subprocess
    import sys

    data = write_jsonl(tmp_path / "d.jsonl", [chat(i) for i in range(12)])
    code = f"""
import sys
import pipeline
result = pipeline.run({{"input": {{"paths": ["{data}"]}}, "target": "{TARGET}",
                       "stages": ["count_tokens"]}}, out="{tmp_path / 'o'}", workers=1)
assert not result.verdict.failed(), result.verdict
pipeline.check("{tmp_path / 'o' / 'train.jsonl'}", target="{TARGET}")
print(sorted(m for m in sys.modules if m.split(".")[0] == "great_expectations"))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_suites_read_only_the_columns_they_name_with_the_same_results(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """A run reads for its suites only the kept rows of the columns they name (`read_kept`);
    the gate section is the one a read of every column gives, a missing column's message
    included (it lists all the table's columns)."""
    import pipeline.gate
    import pipeline.write.metrics

    expectations = [
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "tokens_assistant", "min_value": 2, "mostly": 0.5},
            "table": "records",
        },
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "no_such"}, "table": "records"},
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "tokens_nope", "min_value": 1},
            "table": "records",
        },
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 3}, "table": "records"},
    ]
    path = suite(tmp_path, expectations)
    assert pipeline.gate.record_columns([path]) == [
        "id", "no_such", "split", "tokens_assistant", "tokens_nope", "tokens_total"
    ]
    config = f"stages: [validate_schema, count_tokens, dedupe]\ngate:\n  expectations: [{path}]\n"
    rows = [chat(i, answer="ok" if i % 3 else f"longer answer {i}") for i in range(9)]
    rows += [chat(0, answer="longer answer 0"), {"messages": "not a list"}]  # rejected rows
    seen: list[tuple[list[str] | None, list[str]]] = []
    read_kept = pipeline.write.metrics.read_kept

    def spy(p: Path, columns: list[str] | None) -> Any:
        frame, names = read_kept(p, columns)
        seen.append((columns, list(frame.columns)))
        assert set(frame["split"]) <= {"train", "validation"}
        return frame, names

    monkeypatch.setattr(pipeline.write.metrics, "read_kept", spy)
    result, out = invoke(tmp_path / "run", config, rows)  # the same input twice: the same ids
    narrow = json.loads((out / "report.json").read_text())
    assert seen[-1][1] == ["id", "split", "tokens_assistant", "tokens_total"]
    monkeypatch.setattr(pipeline.gate, "record_columns", lambda suites: None)
    result_all, out_all = invoke(tmp_path / "run", config, rows)
    every = json.loads((out_all / "report.json").read_text())
    assert seen[-1][0] is None and len(seen[-1][1]) > 10
    assert narrow["gate"] == every["gate"] and result.exit_code == result_all.exit_code == 1
    assert narrow["totals"]["rejected"] == 2
    results = narrow["gate"]["expectations"][0]["results"]
    assert [r["success"] for r in results] == [False, False, False, True]
    assert "(its columns: id, source, line, record_number, split," in results[2]["message"]


def test_a_suite_on_the_tables_columns_or_with_a_row_condition_reads_every_column(
    tmp_path: Path,
) -> None:
    from pipeline.gate import record_columns

    columns = suite(
        tmp_path,
        [{"type": "expect_table_column_count_to_be_between", "kwargs": {"min_value": 1}, "table": "records"}],
        "columns.json",
    )
    condition = suite(
        tmp_path,
        [
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {
                    "column": "tokens_total",
                    "min_value": 1,
                    "row_condition": 'split=="train"',
                    "condition_parser": "pandas",
                },
                "table": "records",
            }
        ],
        "condition.json",
    )
    dataset_only = suite(
        tmp_path,
        [{"type": "expect_column_values_to_be_between", "kwargs": {"column": "train", "min_value": 1}, "table": "dataset"}],
        "dataset.json",
    )
    exists = suite(
        tmp_path,
        [{"type": "expect_column_to_exist", "kwargs": {"column": "tokens_total"}, "table": "records"}],
        "exists.json",
    )
    assert record_columns([columns]) is None
    assert record_columns([exists]) is None  # a table-level expectation: the table's columns
    assert record_columns([dataset_only, condition]) is None
    assert record_columns([dataset_only]) == ["id", "split", "tokens_total"]
