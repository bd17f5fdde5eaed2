"""dataset_limits: example-count gate, epochs rule, billed tokens and cost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from pipeline.dataset import VALIDATION, Decisions, KeyTable
from pipeline.dataset.limits import DatasetLimitsConfig, decide, default_epochs, keys
from pipeline.errors import PipelineError
from pipeline.records import make_batch
from pipeline.stages.count_tokens import CountTokensConfig, count_tokens
from pipeline.tokens import TOTAL
from tests.conftest import corpus_file, run_config

MINI = "openai:gpt-4o-mini-2024-07-18"  # $3.00 per 1M training tokens, 65,536 per example


@pytest.mark.parametrize(
    ("n", "epochs"),
    [
        (1, 25),
        (4, 25),
        (5, 20),
        (10, 10),
        (30, 3),
        (34, 3),
        (8_333, 3),
        (9_000, 2),
        (12_501, 1),
        (100_000, 1),
    ],
)
def test_cookbook_epochs_rule(n: int, epochs: int) -> None:
    assert default_epochs(n) == epochs


def table_of(tokens: list[int]) -> KeyTable:
    n = len(tokens)
    return KeyTable(["s"] * n, np.arange(1, n + 1), {"tokens": np.asarray(tokens, dtype=np.int64)})


def test_too_few_examples_fails_the_gate() -> None:
    info = decide(table_of([100] * 9), Decisions.all_train(9), DatasetLimitsConfig(target=MINI))
    assert info["gate_failed"] is True
    assert [r["code"] for r in info["gate_reasons"]] == ["too_few_examples"]
    assert "at least 10" in info["gate_reasons"][0]["message"]
    info = decide(table_of([100] * 10), Decisions.all_train(10), DatasetLimitsConfig(target=MINI))
    assert info["gate_failed"] is False and info["gate_reasons"] == []


def test_options_override_the_target_limits() -> None:
    cfg = DatasetLimitsConfig(target=MINI, min_examples=2, max_examples=3)
    info = decide(table_of([1] * 4), Decisions.all_train(4), cfg)
    assert [r["code"] for r in info["gate_reasons"]] == ["too_many_examples"]
    assert info["examples"]["min_examples"] == 2 and info["examples"]["max_examples"] == 3


def test_cost_epochs_validation_and_cap() -> None:
    tokens = [1000] * 40 + [70_000]  # the last one is over the 65,536 per-example limit
    decisions = Decisions.all_train(len(tokens) + 2)
    decisions.split(np.array([41, 42]))
    info = decide(table_of([*tokens, 500, 700]), decisions, DatasetLimitsConfig(target=MINI))
    assert info["examples"] == {
        "train": 41,
        "validation": 2,
        "min_examples": 10,
        "max_examples": None,
    }
    assert info["epochs"] == 3  # 41 * 3 = 123 is within [100, 25000]
    assert info["tokens"]["train"] == 110_000 and info["tokens"]["validation"] == 1200
    assert info["billed_tokens_per_epoch"] == 40_000 + 65_536  # capped at the limit
    assert info["billed_training_tokens"] == 3 * 105_536
    assert info["price_per_1m_training_tokens"] == 3.0 and info["price_date"]
    assert info["cost_usd"] == pytest.approx(3 * 105_536 / 1e6 * 3.0, abs=1e-4)
    assert decisions.dest[41] == VALIDATION  # nothing rejected or moved


def test_epochs_option_and_compare() -> None:
    cfg = DatasetLimitsConfig(
        target=MINI, epochs=2, compare=("openai:gpt-3.5-turbo-0125", "openai:gpt-4.1-2025-04-14")
    )
    info = decide(table_of([1_000_000] * 10), Decisions.all_train(10), cfg)
    assert info["epochs"] == 2 and info["billed_training_tokens"] == 2 * 10 * 65_536
    old, big = info["compare"]
    assert old["target"] == "openai:gpt-3.5-turbo-0125" and "approximation" in old["note"]
    assert old["billed_tokens_per_epoch"] == 10 * 16_385  # capped at its own limit
    assert big["cost_usd"] == pytest.approx(
        2 * 10 * 65_536 / 1e6 * big["price_per_1m_training_tokens"]
    )
    assert "note" not in big  # same tokenizer (o200k_base)
    with pytest.raises(PipelineError, match="option compare: unknown target"):
        DatasetLimitsConfig(compare=("nope:x",))


def test_no_target_no_gate_and_no_price() -> None:
    info = decide(table_of([5, 6]), Decisions.all_train(2), DatasetLimitsConfig())
    assert info["gate_failed"] is False and info["cost_usd"] is None
    assert info["epochs"] == 25 and info["billed_training_tokens"] == 25 * 11


def test_keys_use_count_tokens_or_count_themselves() -> None:
    rows = [
        {"kind": "prompt_completion", "prompt": "a b", "completion": " c", "_line": 1, "_ord": 0},
        {"kind": "prompt_completion", "prompt": "x", "completion": " y z", "_line": 2, "_ord": 1},
    ]
    batch = make_batch(rows)
    counted, _ = count_tokens(batch, CountTokensConfig())
    expected = counted[TOTAL].tolist()
    assert keys(counted, DatasetLimitsConfig())["tokens"].tolist() == expected
    assert keys(batch, DatasetLimitsConfig())["tokens"].tolist() == expected
    assert isinstance(keys(pd.DataFrame(batch), DatasetLimitsConfig())["tokens"], np.ndarray)


def _run(tmp_path: Path, stages: list[Any], name: str) -> dict[str, Any]:
    path = corpus_file("openai_format/toy_chat_fine_tuning.jsonl")
    return run_config(
        tmp_path,
        {"input": {"paths": [str(path)]}, "target": MINI, "stages": stages},
        name,
    )


@pytest.mark.corpus
def test_end_to_end_toy_file_fails_the_minimum(tmp_path: Path) -> None:
    report = _run(
        tmp_path,
        [{"name": "count_tokens", "target": MINI}, {"name": "dataset_limits", "target": MINI}],
        "plain",
    )
    info = report["dataset"]["dataset_limits"]
    assert info["gate_failed"] is True and info["gate_reasons"][0]["code"] == "too_few_examples"
    assert info["examples"]["train"] == 5 and info["epochs"] == 20
    assert info["tokens"]["train"] == 43 + 106 + 26 + 27 + 8031
    assert info["billed_training_tokens"] == 20 * info["tokens"]["train"]


@pytest.mark.corpus
def test_end_to_end_after_split_shows_validation(tmp_path: Path) -> None:
    report = _run(
        tmp_path,
        [
            {"name": "count_tokens", "target": MINI},
            {"name": "split", "validation": 0.4, "seed": 1},
            {"name": "dataset_limits", "target": MINI},
        ],
        "split",
    )
    info = report["dataset"]["dataset_limits"]
    assert info["examples"]["train"] == 3 and info["examples"]["validation"] == 2
    assert info["tokens"]["train"] + info["tokens"]["validation"] == 43 + 106 + 26 + 27 + 8031


@pytest.mark.corpus
def test_same_answer_with_two_workers(tmp_path: Path) -> None:
    """Workers get only the encoding's name and build it themselves; the result is the same."""
    path = corpus_file("openai_format/azureai_stock_train_hallucination_functions.jsonl")
    reports, tables = [], []
    for workers in (1, 2):
        data = {
            "input": {"paths": [str(path)]},
            "target": MINI,
            "stages": [
                {"name": "count_tokens", "target": MINI},
                {"name": "dataset_limits", "target": MINI},
            ],
            "runner": {"workers": workers, "chunk_bytes": 20_000},
        }
        reports.append(run_config(tmp_path, data, f"w{workers}"))
        tables.append(pd.read_parquet(tmp_path / f"w{workers}" / "metrics.parquet"))
    assert reports[0]["dataset"] == reports[1]["dataset"]
    pd.testing.assert_frame_equal(tables[0], tables[1])
    assert reports[0]["dataset"]["dataset_limits"]["gate_failed"] is False


def _chat_lines(n: int) -> bytes:
    return b"".join(
        orjson.dumps({"messages": [{"role": "user", "content": f"question {i}"},
                                   {"role": "assistant", "content": f"answer {i}"}]}) + b"\n"
        for i in range(n)
    )


def test_large_files_are_sharded_and_join_back(tmp_path: Path) -> None:
    src = tmp_path / "d.jsonl"
    src.write_bytes(_chat_lines(30))
    base = {"input": {"paths": [str(src)]}}
    run_config(tmp_path, base, "whole")
    whole = (tmp_path / "whole" / "train.jsonl").read_bytes()
    report = run_config(
        tmp_path, {**base, "stages": [{"name": "dataset_limits", "max_file_bytes": 500}]}, "out"
    )
    shards = sorted((tmp_path / "out").glob("train-*.jsonl"))
    assert len(shards) > 1 and not (tmp_path / "out" / "train.jsonl").exists()
    assert all(p.stat().st_size <= 500 for p in shards)
    assert b"".join(p.read_bytes() for p in shards) == whole
    assert report["outputs"]["train"] == [p.name for p in shards]
    assert report["dataset"]["dataset_limits"]["files"]["sharded"] == ["train"]
    assert report["gate"]["failed"] is False
    # the next run, not sharded, removes the old shards
    run_config(tmp_path, base, "out")
    assert not list((tmp_path / "out").glob("train-*.jsonl"))
    assert (tmp_path / "out" / "train.jsonl").read_bytes() == whole


def test_file_too_large_fails_the_gate_without_sharding(tmp_path: Path) -> None:
    src = tmp_path / "d.jsonl"
    src.write_bytes(_chat_lines(30))
    report = run_config(
        tmp_path,
        {
            "input": {"paths": [str(src)]},
            "stages": [{"name": "dataset_limits", "max_file_bytes": 500, "shard": False}],
        },
    )
    assert report["gate"]["failed"] is True
    assert [r["code"] for r in report["gate"]["reasons"]] == ["file_too_large"]
    assert report["outputs"]["over_max_file_bytes"] == ["train.jsonl"]
