"""Recognise a record's source shape by its keys: pure, no reading, no pandas.

`detect_shape` gives the first known shape whose required keys are all present (matched
case-insensitively) and which source key each shape key is. `pipeline.read.mapping` turns that
into the `Mapping` that converts records (its docstring lists what each shape becomes); the
`validate_schema` stage uses it to tell a record's own shape keys from extra keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

KNOWN_SHAPES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    # (shape, required keys, optional keys), checked in this order: the more specific first, so
    # a preference, KTO or multimodal file is never read as the plain shape it extends
    ("bedrock", ("schemaversion", "messages"), ("system",)),
    ("chat_preference", ("messages", "chosen", "rejected"), ("tools", "images")),
    ("kto", ("messages", "kto_tag"), ("tools", "images")),
    ("kto", ("messages", "label"), ("tools", "images")),
    ("multimodal", ("messages", "images"), ("tools",)),
    ("chat", ("messages",), ("tools", "functions", "parallel_tool_calls")),
    ("preference", ("input", "preferred_output", "non_preferred_output"), ()),
    ("kto", ("prompt", "completion", "label"), ()),
    ("trl_preference", ("prompt", "chosen", "rejected"), ()),
    ("vertex", ("contents",), ("systeminstruction", "system_instruction", "tools")),
    ("sharegpt_preference", ("conversations", "chosen", "rejected"), ("system", "tools", "images")),
    ("sharegpt_kto", ("conversations", "kto_tag"), ("system", "tools", "images")),
    ("sharegpt_kto", ("conversations", "label"), ("system", "tools", "images")),
    ("sharegpt_multimodal", ("conversations", "images"), ("system", "tools")),
    ("sharegpt", ("conversations",), ("system", "tools")),
    ("prompt_completion", ("prompt", "completion"), ()),
    ("alpaca_preference", ("instruction", "chosen", "rejected"), ("input", "system", "images")),
    ("alpaca_kto", ("instruction", "output", "kto_tag"), ("input", "history", "system", "images")),
    ("alpaca_multimodal", ("instruction", "output", "images"), ("input", "history", "system")),
    ("alpaca", ("instruction", "output"), ("input", "history", "system")),
    ("dolly", ("instruction", "response"), ("context",)),
    ("question_answer", ("question", "answer"), ()),
    ("question_answer", ("q", "a"), ()),
    ("trl_preference", ("chosen", "rejected"), ()),  # TRL's implicit prompt: whole conversations
)
# The canonical kind each shape's records become (`pipeline.records.KINDS`).
KIND_OF: dict[str, str] = {
    "bedrock": "chat",
    "chat": "chat",
    "vertex": "chat",
    "sharegpt": "chat",
    "multimodal": "chat",
    "sharegpt_multimodal": "chat",
    "preference": "preference",
    "trl_preference": "preference",
    "chat_preference": "preference",
    "sharegpt_preference": "preference",
    "alpaca_preference": "preference",
    "kto": "kto",
    "sharegpt_kto": "kto",
    "alpaca_kto": "kto",
}
_RENAMED = {"kto_tag": "label"}  # LLaMA-Factory's KTO column, canonical `label`


class DetectedShape(NamedTuple):
    shape: str
    columns: tuple[tuple[str, str], ...]  # (canonical or shape key, source key)


def lower_index(keys: Iterable[str]) -> dict[str, str]:
    """Stripped, lower-cased key -> the first source key that gives it."""
    index: dict[str, str] = {}
    for k in keys:
        index.setdefault(str(k).strip().lower(), k)
    return index


def detect_shape(keys: Sequence[str]) -> DetectedShape | None:
    """The first known shape whose required keys are all present (case-insensitive)."""
    index = lower_index(keys)
    for shape, required, optional in KNOWN_SHAPES:
        if all(r in index for r in required):
            cols = [(r, index[r]) for r in required]
            cols += [(o, index[o]) for o in optional if o in index]
            if shape == "question_answer":  # canonical names: question -> prompt, answer -> ...
                cols = [("prompt", cols[0][1]), ("completion", cols[1][1])]
            cols = [(_RENAMED.get(k, k), src) for k, src in cols]
            return DetectedShape(shape=shape, columns=tuple(cols))
    return None
