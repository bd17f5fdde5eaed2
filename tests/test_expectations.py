"""Expectation suites in pipeline/gate.py: the shipped suites, the suite format, the results.

Great Expectations is slow to import (a few seconds, once per process); each
`run_expectations` call builds one ephemeral context (about 0.1 s a suite), so the tests make
few calls and check several things per call.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from pipeline.errors import PipelineError
from pipeline.gate import (
    GATE_CODES,
    expectation_problems,
    expectation_types,
    load_suite,
    run_expectations,
)

ROOT = Path(__file__).resolve().parents[1]
SUITES = ROOT / "expectations"
SHIPPED = ("chat", "prompt_completion", "preference", "classification")
TOKENS = ("tokens_total", "tokens_trained", "tokens_system", "tokens_user", "tokens_assistant")


def records(n: int = 100, **columns: list[Any]) -> pd.DataFrame:
    """`n` kept records (train and validation) with healthy metrics, then two rejected records
    whose metrics would fail every suite (they must be left out). `columns` replaces values of
    the kept records from the first row on."""
    kept = {
        "id": [f"data.jsonl:{i + 1}" for i in range(n)],
        "source": ["data.jsonl"] * n,
        "line": list(range(1, n + 1)),
        "split": ["train" if i % 10 else "validation" for i in range(n)],
        "reason": [None] * n,
        "stage": [None] * n,
        "warnings": [None] * n,
        "chars": [200] * n,
        "messages": [3] * n,
        "tokens_total": [120] * n,
        "tokens_trained": [40] * n,
        "tokens_system": [10] * n,
        "tokens_user": [30] * n,
        "tokens_assistant": [40] * n,
        "tokens_tool": [0] * n,
        "tokens_cut": [0] * n,
    }
    for name, values in columns.items():
        kept[name] = values + kept[name][len(values) :]
    frame = pd.DataFrame(kept)
    rejected = frame.head(2).assign(
        id=["data.jsonl:901", "data.jsonl:902"],
        split="rejected",
        reason="json_invalid",
        **{c: 0 for c in TOKENS},
    )
    return pd.concat([frame, rejected], ignore_index=True)


GOOD_DATASET: dict[str, Any] = {
    "rows_in": 102,
    "train": 90,
    "validation": 10,
    "rejected": 2,
    "rejected_share": 2 / 102,
    "min_examples": 10,
    "max_examples": 50_000,
    "max_tokens_per_example": 65_536,
    "max_tokens_seen": 120,
    "linked_pairs_crossing": 0,
    "classes": 3,
    "smallest_class_share": 0.2,
}
NO_LIMITS = {
    **GOOD_DATASET,
    "min_examples": None,
    "max_examples": None,
    "max_tokens_per_example": None,
    "max_tokens_seen": None,
    "linked_pairs_crossing": None,
}
BAD_DATASET = {
    **GOOD_DATASET,
    "train": 5,
    "rejected_share": 0.5,
    "max_tokens_seen": 70_000,
    "linked_pairs_crossing": 2,
    "classes": 1,
    "smallest_class_share": 0.01,
}
DATASET_FAILURES = {
    ("train>=min_examples", "error"),
    ("max_tokens_per_example>=max_tokens_seen", "error"),
    ("rejected_share", "warning"),
    ("linked_pairs_crossing", "error"),
}


def key(result: dict[str, Any]) -> str:
    kw = result["kwargs"]
    return f"{kw['column_A']}>={kw['column_B']}" if "column_A" in kw else str(kw["column"])


def failures(suite: dict[str, Any]) -> set[tuple[str, str]]:
    return {(key(r), r["level"]) for r in suite["results"] if not r["success"]}


def write_suite(tmp_path: Path, expectations: Any, **extra: Any) -> Path:
    path = tmp_path / "suite.json"
    path.write_text(json.dumps({"name": "mine", "expectations": expectations, **extra}))
    return path


def between(column: str, table: str = "records", **kwargs: Any) -> dict[str, Any]:
    return {
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": column, "min_value": 1, **kwargs},
        "table": table,
    }


# --- the shipped suites -----------------------------------------------------------------------


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_suite_loads_and_explains_every_expectation(name: str) -> None:
    suite = load_suite(SUITES / f"{name}.json")
    assert suite.name == name and suite.description
    assert {e.table for e in suite.expectations} == {"records", "dataset"}
    for e in suite.expectations:
        assert e.why and e.level in ("error", "warning"), e
    # only keys the runner puts in the dataset table (docs/gate.md)
    dataset_columns = {c for e in suite.expectations if e.table == "dataset" for c in e.columns}
    assert dataset_columns <= set(GOOD_DATASET)


def test_shipped_suites_pass_on_good_data_and_with_no_limits() -> None:
    paths = [SUITES / f"{n}.json" for n in SHIPPED]
    for dataset in (GOOD_DATASET, NO_LIMITS):
        results = run_expectations(paths, records(), dataset)
        assert [r["suite"] for r in results] == list(SHIPPED)
        for suite in results:
            assert suite["success"] and not failures(suite), (suite["suite"], failures(suite))
        assert expectation_problems(results) == []


@pytest.mark.parametrize(
    ("name", "bad_records", "expected"),
    [
        (
            "chat",
            # one example without assistant tokens, two training on nothing, 10% without user text
            {"tokens_assistant": [0], "tokens_trained": [0, 0], "tokens_user": [0] * 10},
            {
                ("tokens_assistant", "error"),
                ("tokens_trained", "warning"),
                ("tokens_user", "warning"),
            },
        ),
        (
            "prompt_completion",
            {"tokens_trained": [0], "tokens_user": [0] * 2},
            {("tokens_trained", "error"), ("tokens_user", "warning")},
        ),
        (
            "preference",
            {"tokens_trained": [0, 0], "tokens_user": [0] * 2},
            {("tokens_trained", "error"), ("tokens_user", "warning")},
        ),
        (
            "classification",
            {"tokens_trained": [0]},
            {
                ("tokens_trained", "error"),
                ("classes", "error"),
                ("smallest_class_share", "warning"),
            },
        ),
    ],
)
def test_shipped_suite_fails_on_bad_data(
    name: str, bad_records: dict[str, list[Any]], expected: set[tuple[str, str]]
) -> None:
    [suite] = run_expectations([SUITES / f"{name}.json"], records(**bad_records), BAD_DATASET)
    assert failures(suite) == expected | DATASET_FAILURES
    assert suite["success"] is False
    first = next(r for r in suite["results"] if r["table"] == "records")
    assert first["unexpected_count"] >= 1
    assert first["unexpected_examples"][0] == "data.jsonl:1"  # record ids, in source order


def test_within_mostly_passes_and_rejected_records_are_left_out() -> None:
    # 1 of 100 examples without user text is within mostly=0.95; the two rejected rows have
    # zero tokens everywhere and are not in the records table
    [suite] = run_expectations([SUITES / "chat.json"], records(tokens_user=[0]), GOOD_DATASET)
    assert suite["success"] and not failures(suite)
    user = next(r for r in suite["results"] if r["kwargs"].get("column") == "tokens_user")
    assert user["unexpected_count"] == 1


def test_classification_without_class_counts_fails_clearly() -> None:
    dataset = {**GOOD_DATASET, "classes": None, "smallest_class_share": None}
    [suite] = run_expectations([SUITES / "classification.json"], records(), dataset)
    assert failures(suite) == {("classes", "error")}
    [problem] = expectation_problems([suite])
    assert "legacy_format" in problem.message and "classes=null" in problem.message


# --- results --------------------------------------------------------------------------------


def test_a_missing_column_is_a_failed_expectation_not_a_crash() -> None:
    untokenised = records().drop(columns=[*TOKENS, "tokens_tool", "tokens_cut", "messages"])
    [suite] = run_expectations([SUITES / "chat.json"], untokenised, GOOD_DATASET)
    assert failures(suite) == {
        ("tokens_assistant", "error"),
        ("tokens_trained", "warning"),
        ("tokens_user", "warning"),
    }
    missing = suite["results"][0]
    assert missing["observed"] is None and missing["unexpected_count"] is None
    assert "no column `tokens_assistant`" in missing["message"]
    assert "count_tokens" in missing["message"]
    # a key missing from the dataset table, too
    [suite] = run_expectations(
        [SUITES / "chat.json"], records(), {k: v for k, v in GOOD_DATASET.items() if k != "train"}
    )
    assert failures(suite) == {("train>=min_examples", "error"), ("max_examples>=train", "error")}


def test_results_are_deterministic_and_json_serialisable() -> None:
    paths = [SUITES / "chat.json", SUITES / "classification.json"]
    bad = records(tokens_assistant=[0, 0, 0], tokens_user=[0] * 20)
    first = run_expectations(paths, bad, BAD_DATASET)
    second = run_expectations(paths, bad.copy(), dict(BAD_DATASET))
    assert first == second
    assert orjson.dumps(first) == orjson.dumps(second)
    assert json.loads(orjson.dumps(first)) == first  # plain JSON all through (no numpy values)
    fields = {
        "type",
        "kwargs",
        "table",
        "level",
        "why",
        "success",
        "observed",
        "unexpected_count",
        "unexpected_examples",
        "message",
    }
    assert all(set(r) == fields for s in first for r in s["results"])
    assert first[0]["results"][0]["unexpected_examples"] == [
        "data.jsonl:1",
        "data.jsonl:2",
        "data.jsonl:3",
    ]


def test_expectation_problems_carry_level_code_and_what_was_observed() -> None:
    results = run_expectations([SUITES / "chat.json"], records(tokens_user=[0] * 10), BAD_DATASET)
    problems = expectation_problems(results)
    assert {p.code for p in problems} == {"expectation_failed"}
    assert all(p.line is None for p in problems)
    levels = {p.level for p in problems}
    assert levels == {"error", "warning"}
    user = next(p for p in problems if "column=tokens_user" in p.message)
    assert user.level == "warning"
    assert user.message.startswith(
        "suite 'chat' (" + str(SUITES / "chat.json") + "): expect_column_values_to_be_between("
        "column=tokens_user, min_value=1, mostly=0.95) failed on the records table: 10 of 100 "
        "records fail it (mostly=0.95 allows 5.0%)"
    )
    minimum = next(p for p in problems if "column_B=min_examples" in p.message)
    assert minimum.level == "error" and "observed train=5, min_examples=10" in minimum.message


def test_a_custom_suite_with_table_level_and_aggregate_expectations(tmp_path: Path) -> None:
    path = write_suite(
        tmp_path,
        [
            {
                "type": "expect_table_row_count_to_be_between",
                "kwargs": {"min_value": 200},
                "table": "records",
                "meta": {"level": "warning", "why": "small"},
            },
            {
                "type": "expect_column_max_to_be_between",
                "kwargs": {"column": "tokens_total", "max_value": 100},
                "table": "records",
            },
            between("rows_in", table="dataset"),
        ],
    )
    [suite] = run_expectations([path], records(), GOOD_DATASET)
    rows, longest, rows_in = suite["results"]
    assert (rows["success"], rows["level"], rows["observed"]) == (False, "warning", 100)
    assert (longest["success"], longest["level"], longest["observed"]) == (False, "error", 120)
    assert longest["message"] == "observed 120"
    assert rows_in["success"] is True and rows_in["observed"] == {"rows_in": 102}
    assert suite["success"] is False  # an error-level expectation failed
    assert run_expectations([], records(), GOOD_DATASET) == []


# --- bad suites are exit 2 --------------------------------------------------------------------


def test_an_unknown_expectation_type_names_the_file_the_expectation_and_the_closest(
    tmp_path: Path,
) -> None:
    path = write_suite(
        tmp_path,
        [
            between("tokens_user"),
            {**between("tokens_user"), "type": "expect_column_values_to_be_betwen"},
        ],
    )
    with pytest.raises(PipelineError) as err:
        run_expectations([path], records(), GOOD_DATASET)
    message = str(err.value)
    assert message.startswith(f"{path}: expectations[1] (expect_column_values_to_be_betwen): ")
    assert "unknown expectation type" in message
    assert "did you mean `expect_column_values_to_be_between`" in message
    assert err.value.exit_code == 2


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "a suite is a JSON object"),
        (
            {"name": "x", "expectation": []},
            "unknown key `expectation`; did you mean `expectations`?",
        ),
        ({"name": "", "expectations": [between("chars")]}, "`name` must be a non-empty text"),
        ({"name": "x", "expectations": []}, "`expectations` must be a non-empty list"),
        ({"name": "x", "expectations": ["chars"]}, "expectations[0]: an expectation is an object"),
        ({"name": "x", "expectations": [{"kwargs": {}}]}, "expectations[0]: `type` is missing"),
        (
            {"name": "x", "expectations": [{**between("chars"), "tabel": "records"}]},
            "expectations[0] (expect_column_values_to_be_between): unknown key `tabel`; did you "
            "mean `table`?",
        ),
        (
            {"name": "x", "expectations": [{**between("chars"), "table": "metrics"}]},
            "`table` is 'metrics'; expected \"records\"",
        ),
        (
            {"name": "x", "expectations": [{**between("chars"), "meta": {"level": "fatal"}}]},
            'meta.level is \'fatal\'; expected "error" or "warning"',
        ),
        (
            {
                "name": "x",
                "expectations": [
                    {**between("chars"), "kwargs": {"colum": "chars", "min_value": 1}}
                ],
            },
            "bad kwargs: column: field required; colum: not an argument of "
            "expect_column_values_to_be_between; did you mean `column`?",
        ),
        (
            {"name": "x", "expectations": [between("chars", mostly=1.5)]},
            "bad kwargs: mostly: ensure this value is less than or equal to 1.0",
        ),
        (
            {"name": "x", "expectations": [between("chars", result_format="COMPLETE")]},
            "kwargs.result_format is set by ftprep",
        ),
    ],
)
def test_a_malformed_suite_names_the_file_and_the_fix(
    tmp_path: Path, content: Any, fragment: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(PipelineError) as err:
        load_suite(path)
    assert str(err.value).startswith(str(path) + ": ")
    assert fragment in str(err.value)


def test_a_missing_suite_file_names_it_and_the_shipped_suites(tmp_path: Path) -> None:
    with pytest.raises(PipelineError) as err:
        run_expectations([SUITES / "chat.json", tmp_path / "nope.json"], records(), GOOD_DATASET)
    assert str(err.value).startswith(f"{tmp_path / 'nope.json'}: expectation suite not found")
    assert "usable by name: chat, classification, preference, prompt_completion" in str(err.value)
    with pytest.raises(PipelineError) as err:
        load_suite("expectations/chats.json")
    assert "did you mean the shipped expectation suite `chat` (by name)?" in str(err.value)


def test_a_shipped_suite_by_name_and_a_file_of_that_name_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_name = load_suite("chat")
    assert by_name.path == "chat"  # as written: report.json names what the config says
    assert by_name.expectations == load_suite(SUITES / "chat.json").expectations
    assert load_suite("chat.json").name == by_name.name
    monkeypatch.chdir(tmp_path)
    (tmp_path / "chat").write_text(
        '{"name": "mine", "expectations": [{"type": "expect_table_row_count_to_be_between",'
        ' "kwargs": {"min_value": 1}, "table": "records"}]}',
        encoding="utf-8",
    )
    assert load_suite("chat").name == "mine"
    assert load_suite("prompt_completion").name != "mine"


# --- light import, documentation ------------------------------------------------------------


def test_importing_the_gate_does_not_import_great_expectations() -> None:
    code = (
        "import sys, pipeline.gate\n"
        "print(sorted(m for m in sys.modules if m.startswith('great_expectations')))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert proc.stdout.strip() == "[]", proc.stdout


def test_the_expectation_types_are_gxs() -> None:
    types = expectation_types()
    assert "expect_column_values_to_be_between" in types
    assert "expect_column_pair_values_a_to_be_greater_than_b" in types
    assert types == sorted(types)


def test_every_gate_code_is_documented_and_every_code_given_is_in_the_table() -> None:
    docs = (ROOT / "docs" / "gate.md").read_text(encoding="utf-8")
    for code in GATE_CODES:
        assert f"`{code}`" in docs, code
    given = set(
        re.findall(r'"code": "([a-z_]+)"', (ROOT / "pipeline/dataset/limits.py").read_text())
    )
    given |= set(
        re.findall(
            r'Problem\(\s*"(?:error|warning)",\s*"([a-z_]+)"',
            (ROOT / "pipeline/gate.py").read_text(),
        )
    )
    given |= set(
        re.findall(
            r'Problem\(\s*r\["level"\],\s*"([a-z_]+)"', (ROOT / "pipeline/gate.py").read_text()
        )
    )
    assert {"too_few_examples", "too_many_rejected", "expectation_failed"} <= given
    assert given <= set(GATE_CODES), given - set(GATE_CODES)


def test_the_docs_show_every_shipped_suite_and_a_suite_that_loads(tmp_path: Path) -> None:
    docs = (ROOT / "docs" / "gate.md").read_text(encoding="utf-8")
    for name in SHIPPED:
        assert f"expectations/{name}.json" in docs
    example = re.search(r"```json\n(.*?)```", docs, re.S)
    assert example, "docs/gate.md has no ```json suite example"
    path = tmp_path / "example.json"
    path.write_text(example.group(1))
    assert load_suite(path).expectations
    for key in GOOD_DATASET:
        assert f"`{key}`" in docs, key
