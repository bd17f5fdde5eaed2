"""Verdicts: whether data is fit to upload, assembled in one place, and the exit code.

A `Verdict` is about one subject (an output folder for `ftprep run`, a file for `ftprep
check`): its problems, each an error or a warning with a reason code, and whether the subject
could be read at all. `run` reads the gate reasons of the dataset decisions (the target's
example-count and file-size limits); `check` adds file-, record- and dataset-level problems.
The exit code of any command that gates comes from `exit_code`:

- 0: no verdict failed;
- 1: a verdict has an error (or, with `strict`, a warning): the gate failed;
- 2: a subject could not be read (bad input; the message says what to change).

Expectation suites (`run_expectations`, docs/gate.md) are JSON files of Great Expectations
checks over the metrics of the kept records and a one-row table of dataset facts. This is the
only module that imports great_expectations, and only inside functions: `import pipeline.gate`
stays light. A failed expectation is a problem `expectation_failed` at its suite's level;
`GATE_CODES` lists every dataset-level code of the gate.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson

from pipeline.errors import PipelineError

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.config import GateConfig

Level = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One problem: its level, reason code and message (what to change), and where it is.

    `line` is the 1-based line of a text file (JSONL, CSV/TSV: where the record starts; XLSX:
    the sheet row); `record` the 1-based record number where a file has no lines of its own
    (a JSON array, Parquet); both None for a file- or dataset-level problem. `path` is the
    JSON path of the field (`messages[3].content`), None for a whole record.
    """

    level: Level
    code: str
    message: str
    line: int | None = None
    path: str | None = None
    record: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "code": self.code,
            "message": self.message,
            "line": self.line,
            "record": self.record,
            "path": self.path,
        }


@dataclass
class Verdict:
    subject: str
    records: int = 0
    problems: list[Problem] = field(default_factory=list)
    unreadable: str | None = None  # why the subject could not be read at all
    # images counted at the documented minimum in the examples held to the token limit: their
    # counts, and so the limit check, are a lower bound (0: exact)
    images_at_minimum: int = 0

    @property
    def errors(self) -> int:
        return sum(p.level == "error" for p in self.problems) + (self.unreadable is not None)

    @property
    def warnings(self) -> int:
        return sum(p.level == "warning" for p in self.problems)

    def failed(self, strict: bool = False) -> bool:
        return bool(self.errors or (strict and self.warnings))

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.subject,
            "records": self.records,
            "errors": self.errors,
            "warnings": self.warnings,
            "unreadable": self.unreadable,
            "problems": [p.as_dict() for p in self.problems],
        }


def dataset_problems(dataset: Mapping[str, Any]) -> list[Problem]:
    """The gate reasons the dataset decisions gave (`gate_failed`, `gate_reasons`), as errors."""
    return [
        Problem("error", reason["code"], reason["message"])
        for info in dataset.values()
        if isinstance(info, dict) and info.get("gate_failed")
        for reason in info.get("gate_reasons", [])
    ]


def assess_run(
    gate: GateConfig,
    subject: str,
    totals: Mapping[str, int],
    dataset: Mapping[str, Any],
    metrics_path: Path,
) -> tuple[Verdict, list[dict[str, Any]]]:
    """The verdict of a run, and the results of its expectation suites.

    It fails on a broken target limit (the dataset decisions' gate reasons), on more rejected
    records than `gate.max_rejected_share`, and on a failed error-level expectation. Suites
    read the kept records' rows of `metrics_path` (metrics.parquet), only the columns they name
    (`record_columns`), and the frame is let go before this returns.
    """
    problems = dataset_problems(dataset)
    rows_in, rejected = totals["rows_in"], totals["rejected"]
    share = rejected / rows_in if rows_in else 0.0
    most = gate.max_rejected_share
    if most is not None and share > most:
        problems.append(
            Problem(
                "error",
                "too_many_rejected",
                f"{rejected} of {rows_in} records rejected ({share:.1%}); the gate allows at most "
                f"{most:.1%} (gate.max_rejected_share): see rejected.jsonl and the report's "
                "reasons",
            )
        )
    results: list[dict[str, Any]] = []
    if gate.expectations:
        from pipeline.write.metrics import read_kept

        suites = [Path(p) for p in gate.expectations]
        kept, names = read_kept(metrics_path, record_columns(suites))
        row = dataset_row(totals, dataset, kept)
        results = run_expectations(suites, kept, row, names)
        del kept
        problems += expectation_problems(results)
    return Verdict(subject, rows_in, problems), results


# records expectations that read nothing of the table but its number of rows
_ROW_COUNT_ONLY = ("expect_table_row_count_to_be_between", "expect_table_row_count_to_equal")


def record_columns(suites: Iterable[Path | str]) -> list[str] | None:
    """The metrics columns the suites' records expectations read, with `id` (which names the
    failing records), `split` and `tokens_total` (for `dataset_row`); None when one may read
    any column: an expectation on the table's columns themselves (its column count or names),
    or one with a `row_condition` (a query over any column)."""
    names = {"id", "split", "tokens_total"}
    for path in suites:
        for spec in load_suite(path).expectations:
            if spec.table != "records":
                continue
            if "row_condition" in spec.kwargs or (
                not spec.columns and spec.type not in _ROW_COUNT_ONLY
            ):
                return None
            names.update(spec.columns)
    return sorted(names)


def dataset_row(
    totals: Mapping[str, int], dataset: Mapping[str, Any], kept: pd.DataFrame
) -> dict[str, Any]:
    """The one-row dataset table the expectation suites see (docs/gate.md)."""
    rows_in = totals["rows_in"]
    limits = dataset.get("dataset_limits") or {}
    examples = limits.get("examples") or {}
    tokens = limits.get("tokens") or {}
    split = dataset.get("split") or {}
    classes = (dataset.get("legacy_format") or {}).get("classes") or {}
    n_classified = sum(classes.values())
    seen = kept["tokens_total"].max() if "tokens_total" in kept and len(kept) else None
    return {
        "rows_in": rows_in,
        "train": totals["train"],
        "validation": totals["validation"],
        "rejected": totals["rejected"],
        "rejected_share": totals["rejected"] / rows_in if rows_in else 0.0,
        "min_examples": examples.get("min_examples"),
        "max_examples": examples.get("max_examples"),
        "max_tokens_per_example": tokens.get("limit_per_example"),
        "max_tokens_seen": None if seen is None or seen != seen else int(seen),
        "linked_pairs_crossing": (split.get("leakage") or {}).get("crossing_pairs"),
        "classes": len(classes) if classes else None,
        "smallest_class_share": min(classes.values()) / n_classified if n_classified else None,
    }


def gate_section(verdict: Verdict, expectations: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    """The report's `gate` section."""
    errors = [p for p in verdict.problems if p.level == "error"]
    warnings = [p for p in verdict.problems if p.level == "warning"]
    return {
        "failed": verdict.failed(),
        "exit_code": exit_code([verdict]),
        "reasons": [{"code": p.code, "message": p.message} for p in errors],
        "warnings": [{"code": p.code, "message": p.message} for p in warnings],
        "expectations": list(expectations),
    }


def exit_code(verdicts: Iterable[Verdict], strict: bool = False) -> int:
    """0 clean, 1 the gate failed, 2 a subject could not be read."""
    verdicts = list(verdicts)
    if any(v.unreadable for v in verdicts):
        return 2
    if any(v.failed(strict) for v in verdicts):
        return 1
    return 0


def batch_problems(batch: pd.DataFrame) -> list[Problem]:
    """Every problem of every record of a batch: each reason of a rejected record (all of
    them, when a stage found several), and each warning."""
    out: list[Problem] = []
    columns = (batch[c].tolist() for c in ("_line", "_reason", "_message", "_problems", "_warnings"))
    for line, reason, message, problems, warnings in zip(*columns, strict=True):
        if isinstance(reason, str):
            if problems:
                out += [
                    Problem("error", p[0], p[1], int(line), p[2] if len(p) > 2 else None)
                    for p in problems
                ]
            else:
                out.append(Problem("error", reason, str(message), int(line)))
        for code, text in warnings or ():
            out.append(Problem("warning", code, text, int(line)))
    return out


# --- expectation suites (docs/gate.md) ------------------------------------------------------

# Codes of the dataset-level problems that fail (or warn at) the gate of `ftprep run`; record
# reason codes live in pipeline.reasons. code -> (who gives it, meaning and what to change).
GATE_CODES: dict[str, tuple[str, str]] = {
    "too_few_examples": (
        "dataset_limits",
        "Fewer training examples than the target's (or the config's) `min_examples`: add examples.",
    ),
    "too_many_examples": (
        "dataset_limits",
        "More training examples than the target's (or the config's) `max_examples`: sample or "
        "split the data.",
    ),
    "file_too_large": (
        "dataset_limits",
        "A train or validation file larger than the target's `max_file_bytes` with `shard: false`.",
    ),
    "too_many_rejected": (
        "gate",
        "More of the input rejected than `gate.max_rejected_share` allows: see rejected.jsonl and "
        "the report's reasons.",
    ),
    "target_retired": (
        "gate",
        "The target takes no new fine-tuning jobs since its profile's "
        "`shutdown.training_shutdown`; the message names the date and a replacement target. "
        "`gate.allow_retired: true` makes it a warning.",
    ),
    "expectation_failed": (
        "gate",
        "An expectation of a `gate.expectations` suite failed; its level (`meta.level`, error by "
        "default) says whether it fails the gate or only warns. The message names the suite, the "
        "expectation and what was observed.",
    ),
}

TABLES = ("records", "dataset")  # what an expectation's `table` may name
KEPT_SPLITS = ("train", "validation")
EXAMPLES = 5  # unexpected values or record ids kept per failed expectation

_SUITE_KEYS = ("name", "description", "expectations")
_EXPECTATION_KEYS = ("type", "kwargs", "table", "meta")
# kwargs GX takes but ftprep sets itself (or that would tie a suite to one GX context)
_RESERVED_KWARGS = (
    "id", "meta", "result_format", "batch_id", "catch_exceptions", "rendered_content"
)
_COLUMN_KWARGS = ("column", "column_A", "column_B", "column_list")
_INDEX = "ftprep_index"  # meta key mapping GX's results (in its own order) back to the suite


@dataclass(frozen=True)
class ExpectationSpec:
    """One expectation of a suite, as checked on load."""

    type: str
    kwargs: dict[str, Any]
    table: Literal["records", "dataset"]
    level: Level
    why: str | None
    columns: tuple[str, ...]  # the columns its domain names (checked to exist before GX runs)


@dataclass(frozen=True)
class Suite:
    name: str
    path: str
    description: str
    expectations: tuple[ExpectationSpec, ...]


def _gx() -> Any:
    """great_expectations, imported on first use, with analytics off (progress bars: `_Validator`)."""
    import os

    # ftprep runs offline: GX must not try to reach anything, whatever the environment says.
    os.environ["GX_ANALYTICS_ENABLED"] = "False"
    import logging

    import great_expectations

    # its set-up chatter (info level: registrations, an unused docs-site path) is not ours
    # (some of its modules set their own logger to info: quiet them all)
    for name in [n for n in logging.root.manager.loggerDict if n.startswith("great_expectations")]:
        logging.getLogger(name).setLevel(logging.WARNING)
    return great_expectations


def expectation_types() -> list[str]:
    """Every expectation type GX knows (what a suite's `type` may name), sorted."""
    _gx()
    from great_expectations.expectations.registry import (
        list_registered_expectation_implementations,
    )

    return sorted(list_registered_expectation_implementations())


def _choices(word: str, known: Iterable[str]) -> str:
    known = sorted(known)
    close = difflib.get_close_matches(word, known, n=3, cutoff=0.6)
    if close:
        return "did you mean " + " or ".join(f"`{c}`" for c in close) + "?"
    return "expected one of: " + ", ".join(f"`{k}`" for k in known)


def load_suite(path: Path | str) -> Suite:
    """Read and check a suite file completely: every key, table, level, expectation type and
    kwargs. A problem raises `PipelineError` naming the file, the expectation and the fix.

    A name that is not a file but the name of a shipped suite (`chat`, see `pipeline.shipped`)
    reads that one; the suite keeps the name as written (report.json `gate.expectations`)."""
    from pipeline import shipped

    where = str(path)
    named = None if Path(path).exists() else shipped.find("expectations", where)
    try:
        raw = Path(path).read_bytes() if named is None else named.read_bytes()
    except FileNotFoundError:
        raise PipelineError(
            f"{where}: expectation suite not found; check the path in gate.expectations"
            f"{shipped.hint('expectations', where)}"
        ) from None
    except OSError as e:
        raise PipelineError(f"{where}: cannot read the expectation suite: {e.strerror}") from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise PipelineError(f"{where}: not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise PipelineError(
            f"{where}: a suite is a JSON object {{name, description, expectations}}, not "
            f"{type(data).__name__}; see docs/gate.md"
        )
    for key in data:
        if key not in _SUITE_KEYS:
            raise PipelineError(f"{where}: unknown key `{key}`; {_choices(key, _SUITE_KEYS)}")
    name, items = data.get("name"), data.get("expectations")
    description = data.get("description", "")
    if not isinstance(name, str) or not name.strip():
        raise PipelineError(f"{where}: `name` must be a non-empty text (the suite's name)")
    if not isinstance(description, str):
        raise PipelineError(f"{where}: `description` must be text")
    if not isinstance(items, list) or not items:
        raise PipelineError(
            f"{where}: `expectations` must be a non-empty list of "
            "{type, kwargs, table, meta: {level, why}}"
        )
    known = set(expectation_types())
    specs = tuple(_parse_expectation(where, i, item, known) for i, item in enumerate(items))
    return Suite(name, where, description, specs)


def check_suites(paths: Iterable[str]) -> None:
    """Load every suite of `gate.expectations` before a run reads any data (bad suite: exit 2)."""
    for path in paths:
        load_suite(path)


def _parse_expectation(where: str, i: int, item: Any, known: set[str]) -> ExpectationSpec:
    at = f"{where}: expectations[{i}]"
    if not isinstance(item, dict):
        raise PipelineError(f"{at}: an expectation is an object {{type, kwargs, table, meta}}")
    type_ = item.get("type")
    if not isinstance(type_, str):
        raise PipelineError(
            f"{at}: `type` is missing or not text, e.g. `expect_column_values_to_be_between`"
        )
    at = f"{at} ({type_})"
    for key in item:
        if key not in _EXPECTATION_KEYS:
            raise PipelineError(f"{at}: unknown key `{key}`; {_choices(key, _EXPECTATION_KEYS)}")
    if type_ not in known:
        # GX itself only logs an unknown type and leaves the expectation out; a gate must not
        # pass because a check silently disappeared.
        raise PipelineError(
            f"{at}: unknown expectation type `{type_}`; {_choices(type_, known)} (the list: "
            "`python -c \"import pipeline.gate as g; print(*g.expectation_types(), sep=chr(10))\"`)"
        )
    kwargs = item.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise PipelineError(f"{at}: `kwargs` must be an object of the expectation's arguments")
    for key in kwargs:
        if key in _RESERVED_KWARGS:
            raise PipelineError(
                f"{at}: kwargs.{key} is set by ftprep; remove it (level and why go in `meta`)"
            )
    table = item.get("table")
    if table not in TABLES:
        raise PipelineError(
            f"{at}: `table` is {table!r}; expected \"records\" (a row per kept example) or "
            "\"dataset\" (one row of dataset facts)"
        )
    meta = item.get("meta", {})
    if not isinstance(meta, dict):
        raise PipelineError(f"{at}: `meta` must be an object {{level, why}}")
    level = meta.get("level", "error")
    if level not in ("error", "warning"):
        raise PipelineError(f"{at}: meta.level is {level!r}; expected \"error\" or \"warning\"")
    why = meta.get("why")
    if why is not None and not isinstance(why, str):
        raise PipelineError(f"{at}: meta.why must be text")
    impl = _build(at, type_, kwargs)
    domain = set(impl.domain_keys)
    columns: list[str] = []
    for key in _COLUMN_KWARGS:
        value = kwargs.get(key)
        if key in domain and value is not None:
            columns += [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return ExpectationSpec(type_, kwargs, table, level, why, tuple(columns))


def _build(at: str, type_: str, kwargs: Mapping[str, Any], index: int | None = None) -> Any:
    """The GX expectation object; bad kwargs raise `PipelineError` (they are the suite's)."""
    gx = _gx()
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    meta = {_INDEX: index} if index is not None else None
    try:
        return ExpectationConfiguration(type=type_, kwargs=dict(kwargs), meta=meta).to_domain_obj()
    except (ValueError, TypeError, gx.exceptions.GreatExpectationsError) as e:
        raise PipelineError(f"{at}: bad kwargs: {_kwargs_problem(e, type_)}") from None


def _kwargs_problem(error: Exception, type_: str) -> str:
    """A pydantic error of an expectation's kwargs as one line: the first problem per key."""
    errors = getattr(error, "errors", None)
    if not callable(errors):
        return str(error)
    from great_expectations.expectations.registry import get_expectation_impl

    fields = [
        f for f in get_expectation_impl(type_).__fields__ if f not in (*_RESERVED_KWARGS, "notes")
    ]
    seen: dict[str, str] = {}
    for err in errors():
        key = ".".join(str(p) for p in err["loc"])
        if key in seen:
            continue
        text = str(err["msg"])
        if err.get("type") == "value_error.extra":
            text = f"not an argument of {type_}; {_choices(key, fields)}"
        seen[key] = text
    return "; ".join(text if key == "__root__" else f"{key}: {text}" for key, text in seen.items())


def run_expectations(
    suites: Sequence[Path | str],
    metrics: pd.DataFrame,
    dataset: Mapping[str, Any],
    columns: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Run expectation suites over the metrics of the kept records and a one-row dataset table.

    `metrics` is the metrics table (rows whose `split` is not train or validation are left
    out), or some of its columns, all of the table's being named by `columns` (what a message
    about a missing column lists); `dataset` the dataset facts (`dataset_row`). Every suite is
    loaded and checked before anything runs (`load_suite`: a bad suite raises `PipelineError`,
    exit 2). Returns, per suite, plain JSON-able results in suite order, the same for the same
    inputs (docs/gate.md).
    An expectation on a column the table lacks fails with a message; it does not raise.
    """
    loaded = [load_suite(p) for p in suites]
    if not loaded:
        return []
    import pandas as pd

    if "split" in metrics.columns:
        metrics = metrics[metrics["split"].isin(KEPT_SPLITS)]
    tables = {"records": metrics.reset_index(drop=True), "dataset": pd.DataFrame([dict(dataset)])}
    validator = _Validator(tables)
    have = {"records": list(columns if columns is not None else metrics.columns)}
    return [_run_suite(suite, tables, validator, have) for suite in loaded]


class _Validator:
    """One ephemeral GX context per `run_expectations` call, a batch per table made on demand."""

    def __init__(self, tables: Mapping[str, pd.DataFrame]) -> None:
        self.tables = tables
        self.batches: dict[str, Any] = {}
        self.context: Any = None

    def batch(self, table: str) -> Any:
        if table not in self.batches:
            if self.context is None:
                gx = _gx()
                from great_expectations.data_context.types.base import ProgressBarsConfig

                self.context = gx.get_context(mode="ephemeral")
                self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
                self.source = self.context.data_sources.add_pandas("ftprep")
            asset = self.source.add_dataframe_asset(table)
            definition = asset.add_batch_definition_whole_dataframe(table)
            self.batches[table] = definition.get_batch(
                batch_parameters={"dataframe": self.tables[table]}
            )
        return self.batches[table]

    def validate(self, name: str, table: str, expectations: list[Any]) -> dict[int, Any]:
        """GX's result per expectation, by its index in the suite."""
        gx = _gx()
        suite = gx.ExpectationSuite(name=f"{name}:{table}", expectations=expectations)
        result_format: dict[str, Any] = {
            "result_format": "SUMMARY",
            "partial_unexpected_count": EXAMPLES,
        }
        if table == "records" and "id" in self.tables[table].columns:
            result_format["unexpected_index_column_names"] = ["id"]
        outcome = self.batch(table).validate(suite, result_format=result_format)
        return {r.expectation_config.meta[_INDEX]: r for r in outcome.results}


def _run_suite(
    suite: Suite,
    tables: Mapping[str, pd.DataFrame],
    validator: _Validator,
    columns: Mapping[str, list[str]],
) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    gx_results: dict[int, Any] = {}
    for table in TABLES:
        runnable = [
            _build(suite.path, spec.type, spec.kwargs, i)
            for i, spec in enumerate(suite.expectations)
            if spec.table == table and not _missing(spec, tables[table])
        ]
        if runnable:
            gx_results |= validator.validate(suite.name, table, runnable)
    for i, spec in enumerate(suite.expectations):
        frame = tables[spec.table]
        entry: dict[str, Any] = {
            "type": spec.type,
            "kwargs": spec.kwargs,
            "table": spec.table,
            "level": spec.level,
            "why": spec.why,
            "success": False,
            "observed": None,
            "unexpected_count": None,
            "unexpected_examples": [],
            "message": None,
        }
        missing = _missing(spec, frame)
        if missing:
            have = columns.get(spec.table, list(frame.columns))
            entry["message"] = _missing_message(spec.table, missing, have)
        else:
            entry.update(_outcome(spec, gx_results[i], frame))
        results.append(entry)
    failed = any(r["level"] == "error" and not r["success"] for r in results)
    return {"suite": suite.name, "path": suite.path, "success": not failed, "results": results}


def _missing(spec: ExpectationSpec, frame: pd.DataFrame) -> list[str]:
    return [c for c in spec.columns if c not in frame.columns]


def _missing_message(table: str, missing: list[str], columns: Sequence[Any]) -> str:
    names = ", ".join(f"`{c}`" for c in missing)
    have = ", ".join(str(c) for c in columns) or "none"
    text = f"the {table} table has no column {names} (its columns: {have})"
    if table == "records" and any(c.startswith(("tokens_", "messages", "chars")) for c in missing):
        text += "; the token and message columns come from the count_tokens stage: add it to stages"
    return text


def _outcome(spec: ExpectationSpec, result: Any, frame: pd.DataFrame) -> dict[str, Any]:
    """The plain fields of one GX result, and a message when it failed."""
    info = result.exception_info or {}
    raised = (
        [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    )
    problems = sorted({str(e["exception_message"]) for e in raised if e.get("raised_exception")})
    body = result.result or {}
    out: dict[str, Any] = {
        "success": bool(result.success) and not problems,
        "observed": _plain(body.get("observed_value")),
        "unexpected_count": _plain(body.get("unexpected_count")),
        "unexpected_examples": [],
    }
    count = out["unexpected_count"] or 0
    if spec.table == "dataset":
        values = {c: _plain(frame[c].iloc[0]) for c in spec.columns if len(frame)}
        if out["observed"] is None and values:
            out["observed"] = values
        if count:
            out["unexpected_examples"] = [values]
    elif count:
        index = body.get("partial_unexpected_index_list") or []
        if index and isinstance(index[0], dict) and "id" in index[0]:
            out["unexpected_examples"] = [_plain(row["id"]) for row in index[:EXAMPLES]]
        else:
            out["unexpected_examples"] = _plain(body.get("partial_unexpected_list", []))[:EXAMPLES]
    if problems:
        out["message"] = "GX could not evaluate it: " + "; ".join(problems)
    elif not out["success"]:
        out["message"] = _failure_message(spec, body, out)
    else:
        out["message"] = None
    return out


def _failure_message(spec: ExpectationSpec, body: Mapping[str, Any], out: Mapping[str, Any]) -> str:
    observed = out["observed"]
    if spec.table == "dataset" and isinstance(observed, dict):
        return "observed " + ", ".join(f"{k}={_show(v)}" for k, v in observed.items())
    count = out["unexpected_count"]
    if count is None:
        return f"observed {_show(observed)}"
    total = _plain(body.get("element_count"))
    text = f"{count} of {total} records fail it"
    if "mostly" in spec.kwargs:
        text += f" (mostly={spec.kwargs['mostly']} allows {1 - float(spec.kwargs['mostly']):.1%})"
    if out["unexpected_examples"]:
        text += ", e.g. " + ", ".join(_show(v) for v in out["unexpected_examples"])
    return text


def _show(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _plain(value: Any) -> Any:
    """A value of a GX result as plain JSON: numpy values as Python, any missing value as null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    import pandas as pd

    if pd.api.types.is_scalar(value) and pd.isna(value):  # None, NaN, pd.NA, NaT
        return None
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return _plain(value.tolist())
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)  # e.g. a timestamp: shown, not lost


def _summary(kwargs: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={_show(v)}" for k, v in kwargs.items())


def expectation_problems(results: Iterable[Mapping[str, Any]]) -> list[Problem]:
    """Every failed expectation of `run_expectations` results as a problem (`expectation_failed`)
    at its level."""
    out: list[Problem] = []
    for suite in results:
        for r in suite["results"]:
            if r["success"]:
                continue
            text = (
                f"suite '{suite['suite']}' ({suite['path']}): {r['type']}({_summary(r['kwargs'])}) "
                f"failed on the {r['table']} table: {r['message']}"
            )
            if r.get("why"):
                text += f". {r['why']}"
            out.append(Problem(r["level"], "expectation_failed", text))
    return out
