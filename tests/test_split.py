"""split: exact sizes, seeded content ranks, strata, groups, duplicates and leakage."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import parse_config
from pipeline.dataset import TRAIN, VALIDATION, Decisions, KeyTable
from pipeline.dataset import split as sp
from pipeline.dataset.dedupe import DedupeConfig
from pipeline.dataset.dedupe import decide as dedupe_decide
from pipeline.dataset.split import SplitConfig
from pipeline.errors import PipelineError
from tests.conftest import corpus_file, read_jsonl, run_config, run_two_ways, write_jsonl

# --- the pieces -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "sizes", "want"),
    [
        (3, [5, 5, 5], [1, 1, 1]),
        (2, [5, 5, 5], [1, 1, 0]),  # equal remainders: the smaller key first
        (10, [50, 30, 20], [5, 3, 2]),
        (3, [1, 1, 8], [0, 0, 3]),
        (7, [3, 3, 4], [2, 2, 3]),
        (0, [4, 4], [0, 0]),
    ],
)
def test_largest_remainder(total: int, sizes: list[int], want: list[int]) -> None:
    got = sp.largest_remainder(total, np.array(sizes), np.arange(len(sizes)))
    assert got.tolist() == want and int(got.sum()) == total


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=30), st.integers(0, 60))
def test_pick_units_comes_as_close_as_a_unit_allows(sizes: list[int], target: int) -> None:
    arr = np.array(sizes)
    take = sp.pick_units(arr, target)
    count = int(arr[take].sum())
    if target >= sum(sizes):
        assert take.all()
    else:
        assert abs(count - target) < max(sizes)
    if all(s == 1 for s in sizes):
        assert count == min(target, len(sizes)) and take[:count].all()
    if count < target:  # nothing left that would fit
        assert all(s > target - count for s, t in zip(sizes, take, strict=True) if not t)


def keytable(contents: list[int], **extra: list[Any]) -> KeyTable:
    """Rows with content hash (c, c) and a rank that is a fixed function of c."""
    n = len(contents)
    c = np.array(contents, dtype=np.int64)
    ranks = np.array([(x * 2654435761) % 1000003 for x in contents], dtype=np.int64)
    cols: dict[str, np.ndarray] = {"hi": c, "lo": c, "norm_hi": c, "norm_lo": c, "rank": ranks}
    cols |= {k: np.asarray(v) for k, v in extra.items()}
    return KeyTable(["d.jsonl"] * n, np.arange(1, n + 1, dtype=np.int64), cols)


def test_exact_count_lowest_ranks_and_order_independence() -> None:
    contents = list(range(1, 41))
    d = Decisions.all_train(40)
    report = sp.decide(keytable(contents), d, SplitConfig(validation=0.25))
    assert report["validation"] == report["target"] == 10 and report["exact"]
    ranks = {c: (c * 2654435761) % 1000003 for c in contents}
    chosen = {contents[i] for i in np.flatnonzero(d.dest == VALIDATION)}
    assert chosen == set(sorted(contents, key=ranks.__getitem__)[:10])
    shuffled = contents[:]
    random.Random(3).shuffle(shuffled)
    d2 = Decisions.all_train(40)
    sp.decide(keytable(shuffled), d2, SplitConfig(validation=0.25))
    assert {shuffled[i] for i in np.flatnonzero(d2.dest == VALIDATION)} == chosen
    assert d.write_validation


def test_zero_validation_writes_no_file_and_max_caps() -> None:
    d = Decisions.all_train(10)
    report = sp.decide(keytable(list(range(10))), d, SplitConfig(validation=0.0))
    assert not d.write_validation and (d.dest == TRAIN).all() and report["validation"] == 0
    d = Decisions.all_train(10)
    report = sp.decide(keytable(list(range(10))), d, SplitConfig(validation=0.5, max_validation=2))
    assert report["target"] == report["validation"] == 2


def test_identical_content_stays_together_without_dedupe() -> None:
    contents = [1, 2, 1, 3, 1, 4, 5, 6, 2, 7]
    for seed_shift in range(6):
        t = keytable([c + 100 * seed_shift for c in contents])
        d = Decisions.all_train(len(contents))
        report = sp.decide(t, d, SplitConfig(validation=0.3))
        side: dict[int, set[int]] = defaultdict(set)
        for c, dest in zip(contents, d.dest.tolist(), strict=True):
            side[c].add(dest)
        assert all(len(s) == 1 for s in side.values())
        assert abs(report["validation"] - 3) < 3  # off by less than the largest unit


def test_dedupe_links_keep_kept_duplicates_together_or_are_reported() -> None:
    contents = list(range(1, 21))
    for leakage in ("prevent", "report"):
        t = keytable(contents)
        d = Decisions.all_train(20)
        # dedupe (remove: false) found rows 0..9 to be near duplicates of row 10..19
        d.link(np.array([[i + 10, i] for i in range(10)]))
        report = sp.decide(t, d, SplitConfig(validation=0.5, leakage=leakage))  # type: ignore[arg-type]
        crossing = sum(d.dest[i] != d.dest[i + 10] for i in range(10))
        assert report["leakage"]["linked_pairs"] == 10
        assert report["leakage"]["crossing_pairs"] == crossing
        if leakage == "prevent":
            assert crossing == 0
        else:
            assert report["validation"] == 10


def test_group_and_stratum_from_key_columns() -> None:
    n = 30
    groups = [i // 3 for i in range(n)]  # ten groups of three
    t = keytable(
        list(range(n)),
        group_hi=groups,
        group_lo=groups,
        group_rank=[(g * 7919) % 101 for g in groups],
        group_null=[False] * n,
    )
    d = Decisions.all_train(n)
    report = sp.decide(t, d, SplitConfig(validation=0.2, group="g"))
    for g in range(10):
        assert len(set(d.dest[g * 3 : g * 3 + 3].tolist())) == 1
    assert report["validation"] == 6 and report["groups"] == 10


# --- end to end through the runner ----------------------------------------------------------



def validation_contents(out: Path) -> list[Any]:
    return read_jsonl(out / "validation.jsonl") if (out / "validation.jsonl").exists() else []


def test_choice_depends_on_content_and_seed_not_input_order(tmp_path: Path) -> None:
    rows = [{"prompt": f"q{i}", "completion": f"a{i}"} for i in range(50)]
    src = write_jsonl(tmp_path / "a.jsonl", rows)
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    src2 = write_jsonl(tmp_path / "b.jsonl", shuffled)
    stages = [{"name": "split", "validation": 0.2}]
    run_config(tmp_path, {"input": {"paths": [str(src)]}, "stages": stages}, "o1")
    run_config(tmp_path, {"input": {"paths": [str(src2)]}, "stages": stages}, "o2")
    v1, v2 = validation_contents(tmp_path / "o1"), validation_contents(tmp_path / "o2")
    assert len(v1) == 10
    assert sorted(map(orjson.dumps, v1)) == sorted(map(orjson.dumps, v2))
    assert v1 == [r for r in rows if r in v1]  # source order within the file
    other = run_config(
        tmp_path, {"input": {"paths": [str(src)]}, "stages": [{**stages[0], "seed": 7}]}, "o3"
    )
    assert other["dataset"]["split"]["validation"] == 10
    assert validation_contents(tmp_path / "o3") != v1


def test_validation_zero_writes_no_validation_file(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "a.jsonl", [{"prompt": "p", "completion": "c"}] * 3)
    report = run_config(
        tmp_path, {"input": {"paths": [str(src)]}, "stages": [{"name": "split", "validation": 0}]}
    )
    assert not (tmp_path / "out" / "validation.jsonl").exists()
    assert report["totals"]["train"] == 3 and report["totals"]["validation"] == 0


def test_stratify_on_a_source_column_that_no_record_has(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "a.jsonl", [{"prompt": "p", "completion": "c", "label": 1}])
    with pytest.raises(PipelineError, match=r"split.stratify: 'lable' is neither a canonical"):
        run_config(
            tmp_path,
            {"input": {"paths": [str(src)]}, "stages": [{"name": "split", "stratify": "lable"}]},
        )


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        ({"validation": 1.0}, "stages[0].validation: 1.0; expected a share in [0, 1)"),
        ({"seed": -1}, "stages[0].seed: -1; expected a whole number >= 0"),
        ({"max_validation": -5}, "stages[0].max_validation: -5; expected >= 0"),
        ({"leakage": "ignore"}, "stages[0].leakage: 'ignore' is not allowed"),
    ],
)
def test_config_problems_name_the_key(stage: dict[str, Any], message: str) -> None:
    with pytest.raises(PipelineError) as info:
        parse_config({"stages": [{"name": "split", **stage}]})
    assert message in str(info.value)


def test_near_duplicates_kept_by_dedupe_never_cross(tmp_path: Path) -> None:
    rng = random.Random(5)
    vocab = [f"w{i}" for i in range(500)]
    rows = []
    for _ in range(40):
        text = " ".join(rng.choice(vocab) for _ in range(30))
        rows.append({"prompt": text, "completion": "ok"})
        rows.append({"prompt": text + " again", "completion": "ok"})  # Jaccard 28/29
    src = write_jsonl(tmp_path / "a.jsonl", rows)
    near = {"name": "dedupe", "mode": "near", "remove": False}
    for leakage in ("prevent", "report"):
        report = run_config(
            tmp_path,
            {
                "input": {"paths": [str(src)]},
                "stages": [near, {"name": "split", "validation": 0.3, "leakage": leakage}],
            },
            leakage,
        )
        info = report["dataset"]["split"]["leakage"]
        assert report["dataset"]["dedupe"]["verified_pairs"] >= 40
        assert info["linked_pairs"] == report["dataset"]["dedupe"]["verified_pairs"]
        validation = {orjson.dumps(r) for r in validation_contents(tmp_path / leakage)}
        crossing = sum(
            (orjson.dumps(rows[2 * i]) in validation)
            != (orjson.dumps(rows[2 * i + 1]) in validation)
            for i in range(40)
        )
        if leakage == "prevent":
            assert info["crossing_pairs"] == crossing == 0
        else:
            assert report["dataset"]["split"]["validation"] == 24
            assert info["crossing_pairs"] >= crossing > 0


LABELS = ["pos", "neg", "neutral"]
split_record = st.tuples(st.sampled_from(LABELS), st.integers(0, 5))


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(split_record, min_size=0, max_size=40),
    duplicates=st.lists(st.integers(0, 39), max_size=6),
    ratio=st.sampled_from([0.0, 0.1, 0.2, 0.25, 0.5, 0.9]),
    seed=st.integers(0, 2**32),
    how=st.sampled_from(["plain", "stratify", "group", "no_dedupe"]),
    batch_sizes=st.tuples(st.integers(1, 7), st.integers(1, 50)),
    chunks=st.tuples(st.integers(1, 200), st.integers(1, 5000)),
)
def test_split_invariants_whatever_the_batches_or_workers(
    tmp_path: Path,
    rows: list[tuple[str, int]],
    duplicates: list[int],
    ratio: float,
    seed: int,
    how: str,
    batch_sizes: tuple[int, int],
    chunks: tuple[int, int],
) -> None:
    records = [
        {"prompt": f"question {i}", "completion": label, "team": team}
        for i, (label, team) in enumerate(rows)
    ]
    records += [records[i] for i in duplicates if i < len(records)]  # exact duplicates
    src = write_jsonl(tmp_path / "d.jsonl", records)
    split: dict[str, Any] = {"name": "split", "validation": ratio, "seed": seed}
    if how == "stratify":
        split["stratify"] = "completion"
    if how == "group":
        split["group"] = "team"  # a source column: not mapped, kept in the original record
    stages = [split] if how == "no_dedupe" else [{"name": "dedupe"}, split]
    report = run_two_ways(
        tmp_path, {"input": {"paths": [str(src)]}, "stages": stages}, batch_sizes, chunks
    )

    out = tmp_path / "out0"
    info = report["dataset"]["split"]
    train, validation = read_jsonl(out / "train.jsonl"), validation_contents(out)
    if ratio == 0:
        assert not (out / "validation.jsonl").exists() and validation == []
    n = len(train) + len(validation)
    assert n == info["records"]
    target = round(ratio * n)
    assert info["target"] == target
    if how in ("plain", "stratify"):
        assert len(validation) == target  # every record is unique after dedupe: exact
    canonical = [{"prompt": r["prompt"], "completion": r["completion"]} for r in records]
    seen_val = {orjson.dumps(r) for r in validation}
    seen_train = {orjson.dumps(r) for r in train}
    assert not seen_val & seen_train  # identical content never on both sides
    if how == "stratify":
        per_class = Counter(r["completion"] for r in train + validation)
        val_class = Counter(r["completion"] for r in validation)
        for label, count in per_class.items():
            share = target * count / n
            assert int(share) <= val_class[label] <= int(share) + 1
    if how == "group":
        team_of = {orjson.dumps(c): r["team"] for c, r in zip(canonical, records, strict=True)}
        val_teams = {team_of[orjson.dumps(r)] for r in validation}
        train_teams = {team_of[orjson.dumps(r)] for r in train}
        assert not val_teams & train_teams  # a group never straddles the split
    if how == "no_dedupe" and validation:
        sizes = Counter(orjson.dumps(c) for c in canonical)
        assert abs(len(validation) - target) < max(sizes.values())


# --- a real file ----------------------------------------------------------------------------


@pytest.mark.corpus
def test_stratified_split_of_a_classification_file(tmp_path: Path) -> None:
    """OpenAI's prepare_data split this file's 223 rows 178/45; ours keeps label shares."""
    rel = "messy/aoai_generated_labels_context_switching.xlsx"
    path = corpus_file(rel)
    stages = [
        {"name": "dedupe"},
        {"name": "split", "validation": 0.2, "stratify": "completion"},
    ]
    report = run_config(tmp_path, {"input": {"paths": [str(path)]}, "stages": stages})
    assert report["identity"]["holds"]
    info = report["dataset"]["split"]
    n = info["records"]
    assert info["validation"] == round(0.2 * n) and info["exact"]
    for cls in info["strata"]["classes"]:
        share = info["target"] * cls["records"] / n
        assert int(share) <= cls["validation"] <= int(share) + 1
    assert sum(c["records"] for c in info["strata"]["classes"]) == n


def test_dedupe_then_split_on_hand_made_tables() -> None:
    """The two decide functions chained as the runner chains them."""
    n = 12
    hashes = np.array([i % 8 for i in range(n)], dtype=np.int64)  # rows 8..11 repeat 0..3
    t = KeyTable(
        ["d.jsonl"] * n,
        np.arange(1, n + 1, dtype=np.int64),
        {"hi": hashes, "lo": hashes, "norm_hi": hashes, "norm_lo": hashes, "rank": (hashes * 7919) % 101},
    )
    d = Decisions.all_train(n)
    dedupe_decide(t, d, DedupeConfig())
    report = sp.decide(t, d, SplitConfig(validation=0.25))
    assert report["records"] == 8 and report["validation"] == 2
    assert int((d.dest == VALIDATION).sum()) == 2


def test_normalised_duplicates_never_straddle_even_after_exact_dedupe(tmp_path: Path) -> None:
    # The split promise (docs/dedupe_split.md): no exact or normalised duplicate is split across
    # train and validation. Exact dedupe keeps case/space/punctuation variants, so split itself
    # must hold each normalised class together.
    rows = []
    for i in range(40):
        base = f"What is item number {i}?"
        for variant in (base, base.upper(), base.replace(" ", "  ") + " ", base.rstrip("?") + "!"):
            rows.append({"prompt": variant, "completion": f"It is item {i}."})
    src = write_jsonl(tmp_path / "variants.jsonl", rows)
    stages = [{"name": "dedupe", "mode": "exact"}, {"name": "split", "validation": 0.3}]
    report = run_config(tmp_path, {"input": {"paths": [str(src)]}, "stages": stages})
    assert report["totals"]["rejected"] == 0  # exact dedupe kept every variant
    side: dict[str, set[str]] = defaultdict(set)
    for name in ("train", "validation"):
        for r in read_jsonl(tmp_path / "out" / f"{name}.jsonl"):
            side[r["completion"]].add(name)
    assert len(side) == 40
    assert all(len(s) == 1 for s in side.values()), side
    assert 0 < sum("validation" in s for s in side.values()) < 40
