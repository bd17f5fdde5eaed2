"""The contract every registered batch stage keeps: same index, input untouched, no row lost.

A stage returns `(batch, changes)`: `changes` is a Counter of named, positive change counts.
"""

from __future__ import annotations

import copy
from collections import Counter

import pandas as pd
import pytest

from pipeline.records import make_batch
from pipeline.registry import stages as registered_stages

REGISTRY = registered_stages()


def sample_batch() -> pd.DataFrame:
    rows = [
        {"kind": "prompt_completion", "prompt": "Hi\r\n\u200b", "completion": " there"},
        {"kind": "prompt_completion", "prompt": "", "completion": None},
        {
            "kind": "chat",
            "messages": [
                {"role": "system", "content": "Be brief.\ufeff"},
                {"role": "user", "content": [{"type": "text", "text": "Cafe\u0301"}]},
                {"role": "assistant", "content": "Yes. "},
            ],
        },
        {"kind": "chat", "messages": "not a list"},
        {
            "kind": "preference",
            "input": {"messages": [{"role": "user", "content": "q"}]},
            "preferred_output": [{"role": "assistant", "content": "a"}],
            "non_preferred_output": [{"role": "assistant", "content": "b"}],
        },
    ]
    for i, r in enumerate(rows):
        r.update(_source="s.jsonl", _line=i + 1, _ord=i, _record=dict(r))
    batch = make_batch(rows)
    batch.index = pd.Index([10, 11, 12, 13, 14])
    return batch


BATCH_STAGES = sorted(name for name, s in REGISTRY.items() if s.kind == "batch")


@pytest.mark.parametrize("name", BATCH_STAGES)
def test_stage_keeps_index_counts_and_does_not_mutate(name: str) -> None:
    spec = REGISTRY[name]
    batch = sample_batch()
    before = copy.deepcopy(batch)
    assert spec.fn is not None
    result = spec.fn(batch, spec.config_cls())
    assert isinstance(result, tuple) and len(result) == 2, "a stage returns (batch, changes)"
    out, changes = result
    assert isinstance(out, pd.DataFrame)
    assert isinstance(changes, Counter)
    for key, value in changes.items():
        assert isinstance(key, str) and key, key
        assert type(value) is int and value > 0, (key, value)
    assert out.index.equals(batch.index)
    assert len(out) == len(batch)
    pd.testing.assert_frame_equal(batch, before)  # input not mutated
    for col in batch.columns:
        for a, b in zip(batch[col], before[col], strict=True):
            assert a == b or (a != a and b != b)  # nested objects untouched too
    rejected = out["_reason"].notna()
    assert out.loc[rejected, "_message"].notna().all(), "every reject has a message"


def test_every_stage_has_a_summary_and_a_config_class() -> None:
    for name, spec in REGISTRY.items():
        assert spec.summary, name
        spec.config_cls()  # every option has a default
