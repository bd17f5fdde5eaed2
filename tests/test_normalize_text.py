"""normalize_text: NFC, zero-width characters, stray BOMs, CRLF; every change counted."""

from __future__ import annotations

from collections import Counter

import pandas as pd

from pipeline.records import make_batch
from pipeline.stages.normalize_text import NormalizeTextConfig, normalize_text


def run(rows: list[dict[str, object]], **opts: object) -> tuple[pd.DataFrame, Counter[str]]:
    for i, r in enumerate(rows):
        r.update(_source="s", _line=i + 1, _ord=i)
    return normalize_text(make_batch(rows), NormalizeTextConfig(**opts))  # type: ignore[arg-type]


def test_prompt_completion_fixes_are_applied_and_counted() -> None:
    out, changes = run(
        [
            {
                "kind": "prompt_completion",
                "prompt": "Cafe\u0301\r\nok",
                "completion": " a\u200bb\ufeff",
            },
            {"kind": "prompt_completion", "prompt": "clean", "completion": " clean"},
        ]
    )
    assert out["prompt"].tolist() == ["Caf\u00e9\nok", "clean"]
    assert out["completion"].tolist() == [" ab", " clean"]  # leading space kept
    assert changes == {
        "nfc_changed": 1,
        "crlf_to_lf": 1,
        "zero_width_removed": 1,
        "bom_removed": 1,
    }


def test_chat_contents_and_parts() -> None:
    out, _ = run(
        [
            {
                "kind": "chat",
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "x\r\ny"}]},
                    {"role": "assistant", "content": "z\u2060", "weight": 1},
                    {"role": "assistant", "tool_calls": [{"id": "1"}]},
                ],
            }
        ]
    )
    msgs = out["messages"].iloc[0]
    assert msgs[0]["content"] == [{"type": "text", "text": "x\ny"}]
    assert msgs[1] == {"role": "assistant", "content": "z", "weight": 1}
    assert msgs[2] == {"role": "assistant", "tool_calls": [{"id": "1"}]}


def test_joiners_kept_by_default_and_trailing_only_when_asked() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    out, _ = run([{"kind": "prompt_completion", "prompt": f"{family}\n\n###\n\n", "completion": "a "}])
    assert out["prompt"].iloc[0] == f"{family}\n\n###\n\n"
    out, changes = run(
        [{"kind": "prompt_completion", "prompt": f"{family}  ", "completion": "a "}],
        strip_trailing=True,
        remove_joiners=True,
    )
    assert out["prompt"].iloc[0] == "\U0001f468\U0001f469\U0001f467"
    assert changes["trailing_stripped"] == 2


def test_nothing_to_do_counts_nothing() -> None:
    _, changes = run([{"kind": "prompt_completion", "prompt": "a", "completion": "b"}], form="none")
    assert changes == {}
