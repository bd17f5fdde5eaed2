"""The contract every dataset stage keeps (a registered stage whose `decide` is not None: the
dataset stages, and batch stages with `keys`/`decide` such as `legacy_format`).

- `keys(batch, cfg)` gives one value per row of the batch in every column, and does not touch
  the batch;
- the decision does not depend on the batching: keys computed over the whole batch, or over
  the batch cut into pieces of different sizes (their key columns concatenated, as the runner
  does), give the same `Decisions` (`dest`, `reasons`, warnings, links, ...) and report
  section from `decide`. A batch stage's own function runs on each piece first and `keys`
  sees the piece's kept records, as in the runner;
- end to end, one worker and two workers with other batch sizes and chunks write
  byte-identical outputs (`run_two_ways`).

A stage without an entry in CASES (a new one) is checked with its default config (and the
target filled in when it has a `target` option, as the runner would).
"""

from __future__ import annotations

import copy
import dataclasses
import random
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from pipeline.dataset import Decisions, KeyTable
from pipeline.records import make_batch
from pipeline.registry import StageEntry, stages
from tests.conftest import run_two_ways, write_jsonl

TARGET = "openai:gpt-4o-mini-2024-07-18"
REGISTRY = stages()
DATASET_STAGES = sorted(name for name, s in REGISTRY.items() if s.decide is not None)


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    options: dict[str, Any]  # stage options (tuples for list options)
    before: tuple[str, ...] = ()  # batch stages run first (their default config + target)


CASES: dict[str, list[Case]] = {
    "dedupe": [
        Case("exact", {"mode": "exact"}),
        Case(
            "normalized-subset-reject",
            {"mode": "normalized", "subset": ("prompt",), "conflicts": "reject"},
        ),
        Case("exact-subset-source-column-keep", {"subset": ("topic",), "remove": False}),
        Case("near", {"mode": "near", "threshold": 0.7}),
    ],
    "split": [
        Case("validation-0.3", {"validation": 0.3}),
        Case("stratified-grouped", {"validation": 0.3, "stratify": "topic", "group": "conv"}),
        Case("capped", {"validation": 0.5, "max_validation": 4, "seed": 7}),
    ],
    "legacy_format": [
        Case("default", {}),
        Case(
            "classification",
            {"classification": True, "min_class_examples": 3, "separator": " ->", "stop": None},
        ),
    ],
    "dataset_limits": [
        Case("counted-here", {"target": TARGET}),
        Case(
            "after-count_tokens",
            {"target": TARGET, "compare": ("openai:gpt-4.1-2025-04-14",)},
            before=("count_tokens",),
        ),
        Case("sharded", {"target": TARGET, "max_file_bytes": 900}, before=("count_tokens",)),
    ],
}


def cases_of(name: str) -> list[Case]:
    if name in CASES:
        return CASES[name]
    return [Case("default", {})]


PARAMS = [
    pytest.param(name, case, id=f"{name}-{case.id}")
    for name in DATASET_STAGES
    for case in cases_of(name)
]


def test_the_known_dataset_stages_are_covered() -> None:
    assert {"dedupe", "split", "dataset_limits"} <= set(DATASET_STAGES)
    for name in CASES:
        assert name in DATASET_STAGES, f"CASES names {name}, which is not a dataset stage"


# --- the records -----------------------------------------------------------------------------

LONG = (
    "Explain in plain words how the tide rises and falls along the coast twice a day, why the "
    "moon matters more than the sun, and what a spring tide is compared with a neap tide"
)


def source_records() -> dict[str, list[dict[str, Any]]]:
    """Two files of prompt/completion records: exact, normalised, near and conflicting
    duplicates (within and across the files), a stratum (`topic`) and a group (`conv`)."""
    a: list[dict[str, Any]] = []
    for i in range(24):
        a.append(
            {
                "prompt": f"Question {i}: what is {i} times {i + 3}?",
                "completion": f"It is {i * (i + 3)}.",
                "topic": ["math", "arith", "quiz"][i % 3],
                "conv": f"c{i // 4}",
            }
        )
    a[5] = dict(a[2])  # exact duplicate within the file
    a[9] = {**a[3], "prompt": a[3]["prompt"].upper() + "!!"}  # normalised duplicate
    a[11] = {**a[4], "completion": "Something else."}  # conflicting: same prompt
    a.append({"prompt": LONG, "completion": "The moon pulls the water.", "topic": "sea"})
    b: list[dict[str, Any]] = [
        dict(a[0]),  # exact duplicate across the files
        {
            "prompt": LONG.replace("plain", "simple"),
            "completion": "The moon pulls the water.",
            "topic": "sea",
            "conv": "c0",
        },  # near duplicate
        {
            "prompt": LONG.replace("coast", "shore"),
            "completion": "The moon pulls the water.",
            "topic": "sea",
        },
        dict(a[7]),
        {**a[8], "completion": "Another answer."},  # conflicting across the files
    ]
    for i in range(12):
        b.append(
            {
                "prompt": f"Translate 'word {i}' to French",
                "completion": f"mot {i}",
                "topic": "lang" if i % 4 else "quiz",
                "conv": f"t{i // 3}",
            }
        )
    b.append(dict(b[6]))
    b.append(dict(b[6]))
    return {"a.jsonl": a, "b.jsonl": b}


def whole_batch() -> pd.DataFrame:
    rows = []
    for source, records in source_records().items():
        for i, rec in enumerate(records):
            rows.append(
                {
                    "_source": source,
                    "_line": i + 1,
                    "_ord": i,
                    "_record": dict(rec),
                    "kind": "prompt_completion",
                    "prompt": rec["prompt"],
                    "completion": rec["completion"],
                }
            )
    batch = make_batch(rows)
    batch.index = pd.RangeIndex(100, 100 + len(batch))  # not 0..n-1: labels are not positions
    return batch


def stage_config(entry: StageEntry, options: dict[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(entry.config_cls) if f.init}
    if "target" in names and "target" not in options:
        options = {**options, "target": TARGET}  # the runner fills it in from the run's target
    return entry.config_cls(**options)


def prepared_batch(case: Case) -> pd.DataFrame:
    """The batch after the case's `before` stages (the records they kept)."""
    batch = whole_batch()
    for name in case.before:
        entry = REGISTRY[name]
        assert entry.fn is not None
        batch, _ = entry.fn(batch, stage_config(entry, {}))
    return batch[batch["_reason"].isna()]


def own_step(entry: StageEntry, cfg: Any, batch: pd.DataFrame) -> pd.DataFrame:
    """A batch stage with a decision runs its function first; `keys` sees what it kept."""
    if entry.fn is not None:
        batch, _ = entry.fn(batch, cfg)
    return batch[batch["_reason"].isna()]


def output_bytes(batch: pd.DataFrame) -> np.ndarray:
    """Bytes of each record's output line (what the runner gives the key table as `nbytes`)."""
    return np.array(
        [
            len(orjson.dumps({"prompt": p, "completion": c})) + 1
            for p, c in zip(batch["prompt"], batch["completion"], strict=True)
        ],
        dtype=np.int64,
    )


# --- keys ------------------------------------------------------------------------------------


def assert_same_frame(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b)
    for col in a.columns:
        for x, y in zip(a[col], b[col], strict=True):
            assert x == y or (x != x and y != y), col  # nested objects untouched too


@pytest.mark.parametrize(("name", "case"), PARAMS)
def test_keys_give_one_value_per_row_and_leave_the_batch_alone(name: str, case: Case) -> None:
    entry = REGISTRY[name]
    assert entry.keys is not None and entry.decide is not None
    cfg = stage_config(entry, case.options)
    batch = own_step(entry, cfg, prepared_batch(case))
    before = copy.deepcopy(batch)
    keys = entry.keys(batch, cfg)
    assert_same_frame(batch, before)
    assert isinstance(keys, dict)
    for col, values in keys.items():
        assert len(values) == len(batch), f"{name}.keys column {col!r}: {len(values)} values"
    for size in (1, 3):  # a small piece (a batch with a record or three left kept)
        piece = batch.iloc[7 : 7 + size]
        part_keys = entry.keys(piece, cfg)
        assert set(part_keys) == set(keys)
        assert all(len(v) == size for v in part_keys.values())


# --- the decision does not depend on the batching --------------------------------------------


def pieces(n: int, sizes: list[int]) -> list[tuple[int, int]]:
    out, start, i = [], 0, 0
    while start < n:
        end = min(n, start + sizes[i % len(sizes)])
        out.append((start, end))
        start, i = end, i + 1
    return out


def plain(value: Any) -> Any:
    """A comparable form of a Decisions field or a report section (arrays as lists)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    return orjson.loads(orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY))


def decision(entry: StageEntry, cfg: Any, batch: pd.DataFrame, cuts: list[tuple[int, int]]) -> Any:
    """Keys over the pieces of `batch`, concatenated; then decide on a fresh all-train table."""
    assert entry.keys is not None and entry.decide is not None
    gathered: dict[str, list[Any]] = {}
    columns: set[str] | None = None
    kept = []
    for start, end in cuts:
        piece = own_step(entry, cfg, batch.iloc[start:end])
        kept.append(piece)
        if piece.empty:
            continue  # the runner asks no keys of a batch with no kept record
        part = entry.keys(piece, cfg)
        columns = set(part) if columns is None else columns
        assert set(part) == columns, "every piece gives the same key columns"
        for col, values in part.items():
            gathered.setdefault(col, []).extend(list(values))
    rows = pd.concat(kept)
    table = KeyTable(
        rows["_source"].tolist(),
        rows["_line"].to_numpy(dtype=np.int64),
        {k: np.asarray(v) for k, v in gathered.items()},
        output_bytes(rows),
    )
    decisions = Decisions.all_train(len(table))
    info = entry.decide(table, decisions, cfg)
    out = {f.name: plain(getattr(decisions, f.name)) for f in dataclasses.fields(Decisions)}
    return out | {
        "kept": list(zip(table.source, table.line.tolist(), strict=True)),
        "info": plain(info),
    }


@pytest.mark.parametrize(("name", "case"), PARAMS)
def test_the_decision_is_the_same_for_any_batching(name: str, case: Case) -> None:
    entry = REGISTRY[name]
    cfg = stage_config(entry, case.options)
    batch = prepared_batch(case)
    n = len(batch)
    rng = random.Random(5)
    batchings = {
        "whole": [(0, n)],
        "ones": pieces(n, [1]),
        "1-3-7-2": pieces(n, [1, 3, 7, 2]),
        "halves": pieces(n, [n // 2 + 1]),
        "random": pieces(n, [rng.randint(1, 9) for _ in range(n)]),
    }
    expected = decision(entry, cfg, batch, batchings.pop("whole"))
    for label, cuts in batchings.items():
        got = decision(entry, cfg, batch, cuts)
        assert got.keys() == expected.keys()
        for key in expected:
            assert got[key] == expected[key], f"{name} with batching {label}: {key} differs"


def test_the_cases_exercise_their_stage() -> None:
    """The records and configs above make each known stage actually decide something."""

    def run(name: str, case_id: str) -> Any:
        entry = REGISTRY[name]
        case = next(c for c in CASES[name] if c.id == case_id)
        batch = prepared_batch(case)
        return decision(entry, stage_config(entry, case.options), batch, [(0, len(batch))])

    exact = run("dedupe", "exact")
    assert exact["dest"].count(2) >= 4 and exact["info"]["duplicates"] >= 4
    assert run("dedupe", "normalized-subset-reject")["info"]["conflicts"]["count"] >= 2
    kept = run("dedupe", "exact-subset-source-column-keep")
    assert kept["dest"].count(2) == 0 and kept["linked"]
    near = run("dedupe", "near")
    assert near["info"]["near_duplicates"] >= 2, near["info"]
    split = run("split", "validation-0.3")
    assert split["dest"].count(1) == round(0.3 * len(split["dest"]))
    assert 0 < run("split", "stratified-grouped")["dest"].count(1) < len(split["dest"])
    assert run("split", "capped")["dest"].count(1) == 4
    limits = run("dataset_limits", "after-count_tokens")["info"]
    assert limits["tokens"]["train"] > 0 and limits["compare"]
    assert limits["tokens"] == run("dataset_limits", "counted-here")["info"]["tokens"]
    assert run("dataset_limits", "sharded")["shard_bytes"] == 900
    legacy = run("legacy_format", "classification")
    assert legacy["info"]["classification"] and legacy["warnings"]


# --- end to end: one worker vs two, other batch sizes and chunks -----------------------------


def yaml_options(options: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}


@pytest.mark.parametrize(("name", "case"), PARAMS)
def test_end_to_end_outputs_are_the_same_with_other_batches_and_workers(
    tmp_path: Path, name: str, case: Case
) -> None:
    paths = [str(write_jsonl(tmp_path / "in" / f, rows)) for f, rows in source_records().items()]
    data = {
        "input": {"paths": paths},
        "target": TARGET,
        "stages": [*case.before, {"name": name, **yaml_options(case.options)}],
    }
    report = run_two_ways(tmp_path, data, batch_sizes=(1000, 3), chunks=(1 << 20, 300))
    assert report["totals"]["rows_in"] == sum(len(r) for r in source_records().values())
