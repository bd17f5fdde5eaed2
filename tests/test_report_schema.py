"""report.json has a versioned JSON Schema (pipeline/report/report.schema.json), documented in
docs/report.md, and every report the test suite builds matches it.

The check of every report is tests/conftest.py's `report_validation` (session-wide, autouse):
it wraps `pipeline.report.json_report.build` and validates what it returns. This module checks
the schema itself, that the wrapper does see runs (even with worker processes), and that the
schema would catch a broken report.
"""

from __future__ import annotations

import copy
import fnmatch
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from pipeline.report import json_report
from pipeline.report.schema_doc import (
    BEGIN,
    COMMAND,
    END,
    SCHEMA_FILE,
    fields,
    load_schema,
    reference,
    update,
)
from tests.conftest import ReportChecks, run_config, schema_errors, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"


def validator() -> Draft202012Validator:
    return Draft202012Validator(load_schema())


def run_demo(out: Path, workers: int) -> dict[str, Any]:
    """sample_data/demo.yaml into `out`; returns report.json as written."""
    from pipeline.config import load_config, with_overrides
    from pipeline.runner import run

    cfg = load_config(ROOT / "sample_data" / "demo.yaml")
    cfg = with_overrides(cfg, inputs=[str(ROOT / "sample_data")], out=str(out), workers=workers)
    run(cfg)
    return dict(orjson.loads((out / "report.json").read_bytes()))


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_demo(tmp_path_factory.mktemp("demo") / "out", workers=1)


# --- the schema itself ----------------------------------------------------------------------


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = load_schema()
    assert schema["$schema"] == DRAFT_2020_12
    assert schema.get("title")
    Draft202012Validator.check_schema(schema)


def test_report_version_is_a_const_equal_to_the_codes() -> None:
    schema = load_schema()
    assert schema["properties"]["report_version"] == {
        "const": json_report.REPORT_VERSION,
        "description": schema["properties"]["report_version"]["description"],
    }
    assert "report_version" in schema["required"]


def _property_schemas(node: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    """Every schema that describes a property (named, by pattern, or any other key), anywhere
    in the schema, with where it is."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        for key in ("properties", "patternProperties"):
            for name, sub in node.get(key, {}).items():
                found.append((f"{where}/{key}/{name}", sub))
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            found.append((f"{where}/additionalProperties", extra))
        for key, value in node.items():
            if key not in ("const", "enum"):
                found += _property_schemas(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _property_schemas(value, f"{where}/{i}")
    return found


def test_every_property_has_a_description() -> None:
    schema = load_schema()
    found = _property_schemas(schema, "#")
    assert len(found) > 150  # nested ones included
    missing = [where for where, sub in found if not str(sub.get("description", "")).strip()]
    assert not missing, f"properties without a description: {missing}"


def test_the_fixed_objects_allow_no_other_keys() -> None:
    schema = load_schema()
    props = schema["properties"]
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == set(props)
    for name in ("totals", "identity", "gate", "tokens", "messages", "outputs"):
        assert props[name]["additionalProperties"] is False, name
        assert set(props[name]["required"]) == set(props[name]["properties"]), name
    for name in ("stages", "inputs"):
        assert props[name]["items"]["additionalProperties"] is False, name
    for name in ("rejected_by_reason", "warnings", "fixes"):
        assert props[name]["additionalProperties"]["additionalProperties"] is False, name
    # the dataset stages' sections are open: a stage may add a field without a new version
    for name in ("dedupe", "split", "legacy_format", "dataset_limits"):
        assert schema["$defs"][name]["additionalProperties"] is True, name


def test_the_schema_is_package_data() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["pipeline.report"]
    assert any(fnmatch.fnmatch(SCHEMA_FILE, p) for p in patterns), patterns
    assert (ROOT / "pipeline" / "report" / SCHEMA_FILE).is_file()
    dev = pyproject["project"]["optional-dependencies"]["dev"]
    assert any(d.startswith("jsonschema") for d in dev), dev


# --- reports against it ---------------------------------------------------------------------


def test_the_demo_report_validates_and_the_run_was_checked(
    tmp_path: Path, report_validation: ReportChecks
) -> None:
    """With two workers: stages run in worker processes, the report is built (and checked) in
    this one."""
    before = report_validation.validated
    report = run_demo(tmp_path / "out", workers=2)
    assert report_validation.validated == before + 1
    assert schema_errors(validator(), report) == []
    assert report["report_version"] == json_report.REPORT_VERSION


def test_a_report_that_breaks_the_schema_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, report_validation: ReportChecks
) -> None:
    """The wrapper records the run's bad report (and this test takes the failure back)."""
    src = write_jsonl(
        tmp_path / "in.jsonl", [{"prompt": f"q{i}", "completion": f"a{i}"} for i in range(4)]
    )
    version = json_report.REPORT_VERSION
    monkeypatch.setattr(json_report, "REPORT_VERSION", version + 1)
    since = len(report_validation.failures)
    run_config(tmp_path, {"input": {"paths": [str(src)]}, "stages": ["require_fields"]})
    caught = report_validation.take_failures(since)
    assert len(caught) == 1
    assert f"$.report_version: {version} was expected" in caught[0]


Mutation = Callable[[dict[str, Any]], None]


def _del(*path: str | int) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        node: Any = doc
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


def _set(value: Any, *path: str | int) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        node: Any = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


BROKEN: dict[str, tuple[Mutation, str]] = {
    # a change -> the JSON path an error must name
    "no totals": (_del("totals"), "$"),
    "no totals.train": (_del("totals", "train"), "$.totals"),
    "rows_in as text": (_set("106", "totals", "rows_in"), "$.totals.rows_in"),
    "an unknown top-level key": (_set(1, "extra"), "$"),
    "an unknown key in identity": (_set(1, "identity", "extra"), "$.identity"),
    "another report_version": (
        _set(json_report.REPORT_VERSION + 1, "report_version"),
        "$.report_version",
    ),
    "gate.failed as text": (_set("no", "gate", "failed"), "$.gate.failed"),
    "gate.exit_code 2": (_set(2, "gate", "exit_code"), "$.gate.exit_code"),
    "a negative count": (_set(-1, "stages", 0, "rejected", "json_invalid"),
                         "$.stages[0].rejected.json_invalid"),
    "no stage name": (_del("stages", 1, "name"), "$.stages[1]"),
    "an unknown mapping kind": (_set("text", "inputs", 0, "mapping", "kind"),
                                "$.inputs[0].mapping.kind"),
    "a target number": (_set(5, "target"), "$.target"),
    "a target without bom": (_del("target", "bom"), "$.target"),
    "an output that is no split file": (_set(1, "outputs", "bytes", "train.json"),
                                        "$.outputs.bytes"),
    "a null median": (_set(None, "tokens", "splits", "train", "p50"),
                      "$.tokens.splits.train"),
    "a reason without examples": (_del("rejected_by_reason", "duplicate", "examples"),
                                  "$.rejected_by_reason.duplicate"),
    "an example line as text": (_set("9", "rejected_by_reason", "json_invalid", "examples", 0,
                                     "line"),
                                "$.rejected_by_reason.json_invalid.examples[0].line"),
    "an unknown dedupe mode": (_set("fuzzy", "dataset", "dedupe", "mode"),
                               "$.dataset.dedupe.mode"),
    "exact dedupe without duplicates": (_del("dataset", "dedupe", "duplicates"),
                                        "$.dataset.dedupe"),
    "split without leakage": (_del("dataset", "split", "leakage"), "$.dataset.split"),
    "a second split without records": (
        lambda doc: doc["dataset"].__setitem__("split[9]", {"seed": 1}),
        "$.dataset['split[9]']",
    ),
    "a cost as text": (_set("0.02", "dataset", "dataset_limits", "cost_usd"),
                       "$.dataset.dataset_limits.cost_usd"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_report_fails_at_its_path(demo_report: dict[str, Any], case: str) -> None:
    mutate, path = BROKEN[case]
    doc = copy.deepcopy(demo_report)
    mutate(doc)
    errors = list(validator().iter_errors(doc))
    assert errors, f"{case}: the schema accepts it"
    paths = [e.json_path for e in errors]
    assert path in paths, f"{case}: errors at {paths}, expected one at {path}"


def test_the_demo_report_validates_and_extra_stage_fields_are_allowed(
    demo_report: dict[str, Any],
) -> None:
    v = validator()
    assert schema_errors(v, demo_report) == []
    doc = copy.deepcopy(demo_report)
    doc["dataset"]["split"]["new_field"] = 1  # open: a stage may add a field
    doc["dataset"]["my_stage"] = {"anything": True}  # a dataset stage the schema does not know
    doc["dataset"]["dedupe[9]"] = doc["dataset"]["dedupe"]  # a dedupe listed again
    assert schema_errors(v, doc) == []


# --- docs/report.md -------------------------------------------------------------------------


def test_docs_report_md_is_current() -> None:
    text = (ROOT / "docs" / "report.md").read_text(encoding="utf-8")
    assert BEGIN in text and END in text
    assert text == update(text), (
        f"docs/report.md is out of date with pipeline/report/{SCHEMA_FILE}: regenerate its field "
        f"reference with `{COMMAND}`"
    )


def test_the_field_reference_names_every_field() -> None:
    schema = load_schema()
    text = reference(schema)
    paths = [path for path, *_ in fields(schema)]
    assert len(paths) == len(set(paths))
    for path in paths:
        assert f"| `{path}` |" in text, path
    for name in schema["properties"]:
        assert f"| `{name}` |" in text, name
    for path in ("rejected_by_reason.<reason>.examples[].record", "dataset.dedupe.examples[].kept",
                 "dataset.split.leakage.crossing_pairs", "gate.expectations[].results[].level"):
        assert path in paths, path
