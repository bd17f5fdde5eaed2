"""require_fields: field_missing and field_empty per kind, or for configured fields."""

from __future__ import annotations

from pipeline.records import make_batch
from pipeline.stages.require_fields import RequireFieldsConfig, require_fields


def batch(rows: list[dict[str, object]]):  # type: ignore[no-untyped-def]
    for i, r in enumerate(rows):
        r.update(_source="s", _line=i + 1, _ord=i)
    return make_batch(rows)


def test_reasons_per_kind() -> None:
    out, _ = require_fields(
        batch(
            [
                {"kind": "prompt_completion", "prompt": "p", "completion": "c"},
                {"kind": "prompt_completion", "prompt": "p", "completion": None},
                {"kind": "prompt_completion", "prompt": " \n", "completion": "c"},
                {"kind": "chat", "messages": []},
                {"kind": "chat", "messages": [{"role": "user", "content": "x"}]},
                {"kind": "preference", "input": {"messages": []}, "preferred_output": [{}]},
            ]
        ),
        RequireFieldsConfig(),
    )
    assert out["_reason"].tolist() == [
        None,
        "field_missing",
        "field_empty",
        "field_empty",
        None,
        "field_missing",
    ]
    assert "completion is missing" in out["_message"].iloc[1]


def test_configured_fields() -> None:
    out, _ = require_fields(
        batch([{"kind": "prompt_completion", "prompt": "p", "completion": ""}]),
        RequireFieldsConfig(fields=("prompt",)),
    )
    assert out["_reason"].tolist() == [None]
