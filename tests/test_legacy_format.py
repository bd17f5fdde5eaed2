"""legacy_format: measure, then apply separator / stop / leading space idempotently; corpus."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.dataset import Decisions, KeyTable
from pipeline.records import make_batch
from pipeline.stages.legacy_format import (
    LegacyFormatConfig,
    decide,
    keys,
    legacy_format,
    shown,
)
from tests.conftest import corpus_file, read_jsonl, run_config, run_two_ways, write_jsonl

SEP = "\n\n###\n\n"


def batch(pairs: list[tuple[Any, Any]]) -> pd.DataFrame:
    rows = [
        {"kind": "prompt_completion", "prompt": p, "completion": c, "_source": "s.jsonl",
         "_line": i + 1, "_ord": i}
        for i, (p, c) in enumerate(pairs)
    ]
    return make_batch(rows)


def apply(pairs: list[tuple[Any, Any]], **kw: Any) -> tuple[pd.DataFrame, Counter[str]]:
    return legacy_format(batch(pairs), LegacyFormatConfig(**kw))


def test_defaults_add_separator_space_and_stop() -> None:
    out, c = apply([("What is 2+2?", "4")])
    assert out["prompt"].tolist() == ["What is 2+2?\n\n###\n\n"]
    assert out["completion"].tolist() == [" 4 END"]
    assert c["separator_added"] == 1 and c["stop_added"] == 1 and c["leading_space_added"] == 1
    assert c["prompt_completion_records"] == 1


def test_measures_before_applying() -> None:
    _, c = apply([("a" + SEP, " x END"), ("b ->", "y\n"), ("c", " z.")], separator=SEP)
    assert c["prompt_ends_with[\\n\\n###\\n\\n]"] == 1
    assert c["prompt_ends_with[ ->]"] == 1
    assert c["completion_starts_with_space"] == 2
    assert c["completion_ends_with[ END]"] == 1
    assert c["completion_ends_with[\\n]"] == 1
    assert c["completion_ends_with[.]"] == 1


def test_idempotent_and_never_doubles() -> None:
    pairs = [("Q1", "A1"), ("Q2" + SEP, " A2 END"), ("", "open text"), ("Q4", " ")]
    once, _ = apply(pairs)
    twice, twice_changes = legacy_format(once, LegacyFormatConfig())
    assert twice["prompt"].tolist() == once["prompt"].tolist()
    assert twice["completion"].tolist() == once["completion"].tolist()
    assert once["prompt"].tolist() == ["Q1" + SEP, "Q2" + SEP, "", "Q4" + SEP]
    # an empty prompt (open-ended generation) gets no separator; a blank completion nothing
    assert once["completion"].tolist() == [" A1 END", " A2 END", " open text END", " "]
    assert not {"separator_added", "stop_added", "leading_space_added"} & set(twice_changes)


def test_null_options_add_nothing() -> None:
    out, c = apply([("Q", "A")], separator=None, stop=None, leading_space=False)
    assert (out["prompt"].iloc[0], out["completion"].iloc[0]) == ("Q", "A")
    assert "separator_added" not in c


@pytest.mark.parametrize(
    ("pair", "kw", "code"),
    [
        (("Q ### more\n\n###\n\nrest", "A"), {}, "separator_in_prompt"),
        (("Q\n\n###\n\nrest" + SEP, "A"), {}, "separator_in_prompt"),
        (("Q ->", "A"), {}, "separator_mismatch"),
        (("Q\n\n###\n", "A"), {}, "separator_mismatch"),
        (("Q", "A END and more"), {}, "stop_in_completion"),
        (("Q", "A END more END"), {}, "stop_in_completion"),
        (("Q", "A\n\nEND"), {}, "stop_mismatch"),
        (("Q", "A ***"), {}, "stop_mismatch"),
        (("Q", "A\n"), {"stop": "\n"}, None),
        (("Q", "line 1\nline 2"), {"stop": "\n"}, "stop_in_completion"),
    ],
)
def test_rejects(pair: tuple[str, str], kw: dict[str, Any], code: str | None) -> None:
    out, c = apply([pair], **kw)
    assert out["_reason"].iloc[0] == code, out["_message"].iloc[0]
    if code:
        assert out["prompt"].iloc[0] == pair[0]  # a rejected record is not changed
        assert out["completion"].iloc[0] == pair[1]
        assert "separator_added" not in c and "stop_added" not in c


def test_mismatch_message_says_what_to_configure() -> None:
    out, _ = apply([("Q\n\n###\n", " A\n\nEND")])
    assert 'separator: "\\n\\n###\\n"' in out["_message"].iloc[0]
    out, _ = apply([("Q\n\n###\n", " A\n\nEND")], separator="\n\n###\n")
    assert 'stop: "\\n\\nEND"' in out["_message"].iloc[0]


def test_other_kinds_and_non_text_pass_untouched() -> None:
    rows = [
        {"kind": "chat", "messages": [{"role": "user", "content": "x"}]},
        {"kind": "prompt_completion", "prompt": "Q", "completion": 7},
    ]
    for i, r in enumerate(rows):
        r.update(_source="s", _line=i + 1, _ord=i)
    out, _ = legacy_format(make_batch(rows), LegacyFormatConfig())
    assert out["completion"].iloc[1] == 7 and out["prompt"].iloc[1] == "Q"
    assert out["_reason"].isna().all()


@settings(max_examples=120, deadline=None)
@given(
    prompt=st.text(alphabet="ab #\n->END.", max_size=12),
    completion=st.text(alphabet="ab #\n->END.", max_size=12),
    sep=st.sampled_from([SEP, " ->", "\n\n###\n", None]),
    stop=st.sampled_from([" END", "\n", "\n\nEND", None]),
    space=st.booleans(),
)
def test_never_cuts_and_is_idempotent(
    prompt: str, completion: str, sep: str | None, stop: str | None, space: bool
) -> None:
    cfg = LegacyFormatConfig(separator=sep, stop=stop, leading_space=space)
    once, _ = legacy_format(batch([(prompt, completion)]), cfg)
    p, c = once["prompt"].iloc[0], once["completion"].iloc[0]
    assert p in (prompt, prompt + (sep or ""))
    assert c in {completion, " " + completion, completion + (stop or ""),
                 " " + completion + (stop or "")}
    if once["_reason"].iloc[0] is None:
        if sep and prompt:
            assert p.find(sep) == len(p) - len(sep)  # at the end, and nowhere else
        if stop and completion.strip():
            assert c.find(stop) == len(c) - len(stop)
        twice, _ = legacy_format(once, cfg)
        assert (twice["prompt"].iloc[0], twice["completion"].iloc[0]) == (p, c)
        assert twice["_reason"].iloc[0] is None


def classify(
    pairs: list[tuple[Any, Any]], batch_size: int | None = None, **kw: Any
) -> tuple[Decisions, dict[str, Any]]:
    """The stage over batches of `batch_size` records, then its decision over the key table."""
    cfg = LegacyFormatConfig(**kw)
    size = batch_size or len(pairs)
    labels: list[Any] = []
    for start in range(0, len(pairs), size):
        out, _ = legacy_format(batch(pairs[start : start + size]), cfg)
        labels += keys(out[out["_reason"].isna()], cfg)["label"]
    table = KeyTable(["s.jsonl"] * len(labels), np.arange(1, len(labels) + 1), {
        "label": np.asarray(labels, dtype=object)})
    decisions = Decisions.all_train(len(labels))
    return decisions, decide(table, decisions, cfg)


def warned(d: Decisions, code: str) -> dict[int, str]:
    return {row: dict(ws)[code] for row, ws in d.warnings.items() if code in dict(ws)}


def test_classification_labels_and_class_sizes() -> None:
    pairs = [(f"review {i}", "positive" if i % 4 else "negative") for i in range(40)]
    d, info = classify(pairs, separator=" ->", stop=None, min_class_examples=15)
    assert info == {"records": 40, "classification": True,
                    "classes": {" positive": 30, " negative": 10}}
    # " positive" / " negative" are one token each in cl100k_base
    assert not warned(d, "label_not_single_token")
    small = warned(d, "class_too_small")
    assert sorted(small) == list(range(0, 40, 4))
    assert small[0] == "class ' negative' has 10 records (of 40); aim for at least 15 per class"


def test_class_counts_do_not_depend_on_the_batch_size() -> None:
    pairs = [(f"review {i}", "positive" if i % 4 else "negative") for i in range(40)]
    whole = classify(pairs, separator=" ->", stop=None, min_class_examples=15)
    for size in (1, 3, 7, 16):
        d, info = classify(pairs, size, separator=" ->", stop=None, min_class_examples=15)
        assert info == whole[1]
        assert d.warnings == whole[0].warnings


def test_digit_labels_with_a_space_are_two_tokens_in_cl100k() -> None:
    pairs = [(f"q{i}", str(i % 2)) for i in range(30)]
    d, _ = classify(pairs, separator=" ->", stop=None, min_class_examples=1)
    labels = warned(d, "label_not_single_token")
    assert sorted(labels) == list(range(30))
    assert "'1' is one token (set leading_space: false)" in labels[1]
    d, _ = classify(pairs, separator=" ->", stop=None, leading_space=False, min_class_examples=1)
    assert d.warnings == {}


def test_not_classification_when_completions_vary() -> None:
    d, info = classify([(f"q{i}", f"answer {i}") for i in range(30)], min_class_examples=100)
    assert d.warnings == {}
    assert info == {"records": 30, "classification": False}


def test_class_warnings_end_to_end_are_the_same_for_any_batching(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "d.jsonl", [
        {"prompt": f"review {i}", "completion": "positive" if i % 4 else "negative"}
        for i in range(40)])
    report = run_two_ways(tmp_path, {
        "input": {"paths": [str(src)]},
        "stages": [{"name": "legacy_format", "separator": " ->", "stop": None,
                    "min_class_examples": 15}],
    }, batch_sizes=(40, 3), chunks=(1 << 20, 200))
    assert report["warnings"]["class_too_small"]["count"] == 10
    assert report["dataset"]["legacy_format"]["classes"] == {" positive": 30, " negative": 10}


# --- the real thing ----------------------------------------------------------------------------


@pytest.mark.corpus
def test_xlsx_gives_exactly_the_legacy_tools_output(tmp_path: Path) -> None:
    """The XLSX is the input behind the legacy tool's _prepared_{train,valid}.jsonl."""
    xlsx = corpus_file("messy/aoai_generated_labels_context_switching.xlsx")
    legacy = [
        *read_jsonl(corpus_file("openai_format/aoai_context_switching_prepared_train.jsonl")),
        *read_jsonl(corpus_file("openai_format/aoai_context_switching_prepared_valid.jsonl")),
    ]
    report = run_config(tmp_path, {
        "target": "openai:davinci-002",
        "input": {"paths": [str(xlsx)]},
        "stages": [{"name": "legacy_format", "separator": " ->", "stop": None}],
    })
    ours = read_jsonl(tmp_path / "out" / "train.jsonl")
    assert len(ours) == len(legacy) == 223
    assert Counter((r["prompt"], r["completion"]) for r in ours) == Counter(
        (r["prompt"], r["completion"]) for r in legacy
    )
    (stage,) = [s for s in report["stages"] if s["name"] == "legacy_format"]
    assert stage["changes"]["separator_added"] == 223
    assert stage["changes"]["leading_space_added"] == 223
    assert report["dataset"]["legacy_format"]["classes"] == {
        " 1": 63, " 2": 63, " 4": 63, " 3": 34}
    # every class is under 100 records, and " 1" is two tokens in davinci-002's cl100k_base
    assert report["warnings"]["class_too_small"]["count"] == 223
    assert report["warnings"]["label_not_single_token"]["count"] == 223


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("rel", "separator", "stop", "rows"),
    [
        ("openai_format/nerre_mof_gpt3_fold0_train.jsonl", "\n\n###\n\n", "\n\nEND\n\n", 456),
        ("openai_format/nerre_doping_training_eng.jsonl", "\n\n###\n", "\n\nEND", 413),
        ("openai_format/aoai_context_switching_prepared_train.jsonl", " ->", None, 178),
        ("openai_format/aoai_context_switching_prepared_valid.jsonl", " ->", None, 45),
    ],
)
def test_legacy_files_are_consistent_with_their_own_conventions(
    tmp_path: Path, rel: str, separator: str, stop: str | None, rows: int
) -> None:
    path = corpus_file(rel)
    report = run_config(tmp_path, {
        "input": {"paths": [str(path)]},
        "stages": [{"name": "legacy_format", "separator": separator, "stop": stop}],
    })
    assert report["totals"]["rejected"] == 0
    (stage,) = [s for s in report["stages"] if s["name"] == "legacy_format"]
    ch = stage["changes"]
    assert ch[f"prompt_ends_with[{shown(separator)}]"] == rows
    assert ch["completion_starts_with_space"] == rows
    if stop:
        assert ch[f"completion_ends_with[{shown(stop)}]"] == rows
    assert not {"separator_added", "stop_added", "leading_space_added"} & set(ch)
    # already in shape: the output is the input, record for record
    assert read_jsonl(tmp_path / "out" / "train.jsonl") == read_jsonl(path)


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("rel", "code", "rows"),
    [
        ("openai_format/nerre_doping_training_eng.jsonl", "separator_mismatch", 413),
        ("openai_format/nerre_mof_gpt3_fold0_train.jsonl", "stop_mismatch", 456),
    ],
)
def test_nerre_with_the_default_conventions_is_refused_not_doubled(
    tmp_path: Path, rel: str, code: str, rows: int
) -> None:
    report = run_config(tmp_path, {"input": {"paths": [str(corpus_file(rel))]},
                                   "stages": ["legacy_format"]})
    assert {k: v["count"] for k, v in report["rejected_by_reason"].items()} == {code: rows}
