"""Map source columns/keys to canonical fields: the configured `input.columns`, or a known shape.

Recognised shapes (keys matched case-insensitively, by `pipeline.shape_detect`), checked in this
order:

| shape | source keys | canonical record |
|---|---|---|
| `bedrock` | `schemaVersion`, `messages` (+ `system`): Bedrock Converse | chat |
| `chat` | `messages` (+ `tools`, `functions`, `parallel_tool_calls`) | chat |
| `preference` | `input`, `preferred_output`, `non_preferred_output` | preference |
| `trl_preference` | `prompt`, `chosen`, `rejected` (message lists) | preference |
| `vertex` | `contents` (+ `systemInstruction`, `tools`): Vertex AI Gemini | chat |
| `sharegpt` | `conversations` of `{from, value}` (+ `system`, `tools`) | chat |
| `prompt_completion` | `prompt`, `completion` (message lists: TRL, read as chat) | prompt_completion |
| `alpaca` | `instruction`, `output` (+ `input`, `history`) | prompt_completion, or chat with history |
| `dolly` | `instruction`, `response` (+ `context`) | prompt_completion |
| `question_answer` | `question`/`answer` or `q`/`a` | prompt_completion |

Preference, KTO and multimodal shapes (`chat_preference`, `sharegpt_preference`, `kto`,
`sharegpt_multimodal` ...) are recognised before the shapes they extend and mapped by
`pipeline.source_shapes` (its docstring has their table).

Alpaca and Dolly join instruction and input/context with a blank line, as Stanford Alpaca's
own template does. Mapping never drops a record: one it cannot map gets the reason
`shape_invalid`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from pipeline import source_shapes
from pipeline.errors import PipelineError
from pipeline.read.names import COMPLETION_NAMES, NOT_TEXT_NAMES, PROMPT_NAMES, matches, name_words
from pipeline.shape_detect import KIND_OF, detect_shape, lower_index

SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "model": "assistant",
    "system": "system",
    "function_call": "assistant",
    "observation": "tool",
    "tool": "tool",
}



class ShapeError(ValueError):
    """A record that does not fit the file's shape (becomes `shape_invalid`)."""


@dataclass(frozen=True)
class Mapping:
    """How one file's records become canonical records (picklable: sent to workers)."""

    shape: str
    columns: tuple[tuple[str, str], ...]  # (canonical or shape key, source key)

    @property
    def kind(self) -> str:
        if self.shape in KIND_OF:
            return KIND_OF[self.shape]
        if self.shape == "none":
            return "prompt_completion"
        if self.shape == "columns":
            names = {c for c, _ in self.columns}
            if "messages" in names:
                return "chat"
            if names & {"input", "preferred_output", "non_preferred_output"}:
                return "preference"
        return "prompt_completion"

    def describe(self) -> dict[str, Any]:
        return {"shape": self.shape, "kind": self.kind, "columns": dict(self.columns)}

    def apply(self, rec: dict[str, Any]) -> dict[str, Any]:
        """Canonical fields of one source record; raises ShapeError when it does not fit."""
        get: dict[str, Any] = {k: rec.get(src) for k, src in self.columns}
        shape = self.shape
        if shape == "prompt_completion" and isinstance(get.get("prompt"), list):
            # TRL conversational prompt-completion: message lists on both sides
            prompt: list[Any] = get["prompt"]
            completion = get.get("completion")
            if not isinstance(completion, list):
                raise ShapeError("prompt is a list of messages, so completion must be one too")
            return {"kind": "chat", "messages": prompt + completion}
        if shape in ("columns", "prompt_completion", "question_answer", "chat", "preference"):
            return {"kind": self.kind, **get}
        if shape in source_shapes.SHAPES:
            return source_shapes.apply(shape, get)
        if shape in ("bedrock", "vertex"):
            from pipeline.shapes import from_shape

            obj = {k: v for k, v in get.items() if v is not None}
            if shape == "vertex":
                obj = {{"systeminstruction": "systemInstruction"}.get(k, k): v for k, v in obj.items()}
            if shape == "bedrock":
                obj.pop("schemaversion", None)
            try:
                return from_shape(shape, obj)
            except (AttributeError, TypeError, KeyError) as exc:
                raise ShapeError(f"does not read as {shape}: {exc}") from None
        if shape == "alpaca":
            return _alpaca(get)
        if shape == "dolly":
            return {
                "kind": "prompt_completion",
                "prompt": _join(get.get("instruction"), get.get("context")),
                "completion": get.get("response"),
            }
        if shape == "sharegpt":
            return _sharegpt(get)
        if shape == "none":
            raise ShapeError("no record in the first rows of this file to recognise a shape by")
        raise AssertionError(f"unknown shape {shape}")  # a bug


def _join(first: Any, second: Any) -> Any:
    if isinstance(second, str) and second.strip() and isinstance(first, str):
        return f"{first}\n\n{second}"
    return first


def _alpaca(get: dict[str, Any]) -> dict[str, Any]:
    prompt = _join(get.get("instruction"), get.get("input"))
    history = get.get("history")
    system = get.get("system")
    if not history and not (isinstance(system, str) and system):
        return {"kind": "prompt_completion", "prompt": prompt, "completion": get.get("output")}
    messages: list[dict[str, Any]] = []
    if isinstance(system, str) and system:
        messages.append({"role": "system", "content": system})
    if history:
        if not isinstance(history, list) or not all(
            isinstance(h, list | tuple) and len(h) == 2 for h in history
        ):
            raise ShapeError("history must be a list of [instruction, response] pairs")
        for q, a in history:
            messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    messages += [
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": get.get("output")},
    ]
    return {"kind": "chat", "messages": messages}


def _sharegpt(get: dict[str, Any]) -> dict[str, Any]:
    conv = get.get("conversations")
    if not isinstance(conv, list):
        raise ShapeError("conversations must be a list of {from, value} turns")
    messages: list[dict[str, Any]] = []
    system = get.get("system")
    if isinstance(system, str) and system:
        messages.append({"role": "system", "content": system})
    pending: list[str] = []  # tool call ids waiting for their observation
    for i, turn in enumerate(conv):
        if not isinstance(turn, dict) or "from" not in turn or "value" not in turn:
            raise ShapeError(f"conversations[{i}] must be an object with `from` and `value`")
        who, value = turn["from"], turn["value"]
        role = SHAREGPT_ROLES.get(str(who), str(who))
        if who == "function_call":
            call_id = f"call_{i}"
            try:
                call = orjson.loads(value) if isinstance(value, str) else value
                name, args = call["name"], call.get("arguments", {})
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
                raise ShapeError(
                    f"conversations[{i}].value: a function_call must be JSON with `name` "
                    f"and `arguments` ({exc})"
                ) from None
            arguments = args if isinstance(args, str) else orjson.dumps(args).decode()
            messages.append(
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": call_id,
                            "type": "function",
                            "function": {"name": name, "arguments": arguments},
                        }
                    ],
                }
            )
            pending.append(call_id)
        elif who == "observation":
            tool_call_id = pending.pop(0) if pending else f"call_{i}"
            messages.append({"role": "tool", "tool_call_id": tool_call_id, "content": value})
        else:
            messages.append({"role": role, "content": value})
    out: dict[str, Any] = {"kind": "chat", "messages": messages}
    tools = get.get("tools")
    if isinstance(tools, str) and tools.strip():
        try:
            tools = orjson.loads(tools)
        except orjson.JSONDecodeError as exc:
            raise ShapeError(f"tools is a string that is not valid JSON ({exc})") from None
    if tools:
        if not isinstance(tools, list):
            raise ShapeError("tools must be a list of function definitions")
        out["tools"] = [
            t if isinstance(t, dict) and t.get("type") == "function" and "function" in t
            else {"type": "function", "function": t}
            for t in tools
        ]
    return out


def detect(keys: Sequence[str]) -> Mapping | None:
    """The first known shape whose required keys are all present (case-insensitive).

    The detection itself is `pipeline.shape_detect.detect_shape`; this gives its `Mapping`.
    """
    found = detect_shape(keys)
    return None if found is None else Mapping(shape=found.shape, columns=found.columns)


def from_columns(columns: dict[str, str], keys: Sequence[str], source: str) -> Mapping:
    """The configured `input.columns`, checked against the keys the file has."""
    index = lower_index(keys)
    resolved = []
    for canonical, src in columns.items():
        if src in keys:
            resolved.append((canonical, src))
        elif src.strip().lower() in index:
            resolved.append((canonical, index[src.strip().lower()]))
        else:
            raise PipelineError(
                f"{source}: input.columns.{canonical}: no column or key {src!r} in this file; "
                f"it has: {', '.join(map(str, keys)) or '(none)'}"
            )
    return Mapping(shape="columns", columns=tuple(resolved))


def suggest(keys: Sequence[str], records: Sequence[dict[str, Any]] = ()) -> str:
    """A `columns:` block a user can paste, guessed from column names and contents."""
    prompt, completion = guess_columns(keys, records)
    return f"input:\n  columns:\n    prompt: {prompt}\n    completion: {completion}"


MOSTLY_EMPTY = 0.5  # a column empty in more than this share of the sampled records
FREE_TEXT = 20  # median characters of a column of free text


@dataclass(frozen=True)
class ColumnProfile:
    """What the sampled records hold in one column."""

    name: str
    filled: float  # share of records with a non-empty value
    median: float  # median length of the non-empty values, as text
    distinct: float  # share of distinct values among the non-empty ones

    @property
    def text_score(self) -> float:
        """How much the column looks like free text: long, varied values (0 when mostly empty)."""
        if self.filled < 1 - MOSTLY_EMPTY:
            return 0.0
        return self.median * self.distinct * self.filled


def profile(name: str, records: Sequence[dict[str, Any]]) -> ColumnProfile:
    """The `ColumnProfile` of one column over the sampled records."""
    if not records:
        return ColumnProfile(name, 1.0, 0.0, 1.0)
    values = [records_value(r.get(name)) for r in records]
    filled = [v for v in values if v.strip()]
    lengths = sorted(len(v) for v in filled)
    median = float(lengths[len(lengths) // 2]) if lengths else 0.0
    distinct = len(set(filled)) / len(filled) if filled else 0.0
    return ColumnProfile(name, len(filled) / len(values), median, distinct)


def records_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode() if isinstance(value, dict | list) else str(value)


def guess_columns(
    keys: Sequence[str], records: Sequence[dict[str, Any]] = ()
) -> tuple[str, str]:
    """The prompt and completion columns a user most likely means.

    Names first: a usual prompt or completion column name in any language of
    `pipeline.read.names` (question/answer, instruction/response, 问题/答案, 質問/回答, 질문/답변,
    pregunta/respuesta, frage/antwort, soru/cevap ...), if the column is filled in most of the
    sampled `records`. Then content: among the columns left that are not mostly empty and not
    named like an id or label, the ones of longest, most varied text, kept in column order
    (the prompt comes first in a file). A mostly-empty column is never suggested when
    `records` are given.
    """
    names = [str(k) for k in keys if str(k).strip()]
    profiles = {n: profile(n, records) for n in names}
    usable = [n for n in names if profiles[n].filled >= 1 - MOSTLY_EMPTY]

    def pick(hints: tuple[str, ...], taken: set[str]) -> str | None:
        for hint in hints:
            for n in usable:
                if n not in taken and matches(n, hint):
                    return n
        return None

    prompt = pick(PROMPT_NAMES, set())
    completion = pick(COMPLETION_NAMES, {prompt} if prompt else set())
    rest = [
        n
        for n in usable
        if n not in (prompt, completion) and not set(name_words(n)) & NOT_TEXT_NAMES
    ]
    if records:
        texts = [n for n in rest if profiles[n].text_score > 0]
        wanted = 2 - (prompt is not None) - (completion is not None)
        best = sorted(texts, key=lambda n: -profiles[n].text_score)[:wanted]
        rest = [n for n in rest if n in best]  # in column order
    if prompt is None and completion is not None and rest:
        before = [n for n in rest if names.index(n) < names.index(completion)]
        prompt = (before or rest)[0]
        rest.remove(prompt)
    prompt = prompt or (rest.pop(0) if rest else "PROMPT_COLUMN")
    completion = completion or (rest.pop(0) if rest else "COMPLETION_COLUMN")
    return prompt, completion


def columns_option(prompt: str, completion: str) -> str:
    """The `--columns` value for a prompt and a completion column, quoted for a shell."""
    value = f"prompt={prompt},completion={completion}"
    return f"'{value}'" if re.search(r"[\s'\"$`\\]", value) else value


def resolve(
    columns: dict[str, str] | None,
    keys: Sequence[str],
    source: str,
    records: Sequence[dict[str, Any]] = (),
) -> Mapping:
    """The mapping for one file: configured columns, else a recognised shape, else exit 2 with
    a suggestion from the names and the sampled `records` (`guess_columns`)."""
    if not keys:
        # No record to look at (an empty file, or only unreadable lines in the sample): its rows
        # are rejected at reading anyway; any later record gets `shape_invalid`.
        return Mapping(shape="none", columns=tuple((columns or {}).items()))
    if columns:
        return from_columns(columns, keys, source)
    mapping = detect(keys)
    if mapping is None:
        found = ", ".join(repr(str(k)) for k in keys) or "(none)"
        raise PipelineError(
            f"{source}: no known record shape in the columns/keys found: {found}. "
            "Say which column is which, on the command line "
            f"(`--columns {columns_option(*guess_columns(keys, records))}`) or in the config, "
            "for example:\n" + suggest(keys, records)
        )
    return mapping
