"""count_tokens: count every example's tokens the way its target bills them, as metrics.

Per record it writes these metric columns (the runner puts them in metrics.parquet, without
the `m_` prefix):

| column | meaning |
|---|---|
| `m_tokens_total` | tokens the target counts for the example (see below) |
| `m_tokens_trained` | tokens the model is trained to produce (assistant output, `weight` respected) |
| `m_tokens_system` | content tokens of `system` and `developer` messages |
| `m_tokens_user` | content tokens of `user` messages (the prompt of a prompt/completion pair) |
| `m_tokens_assistant` | content tokens of `assistant` messages (the completion of a pair) |
| `m_tokens_tool` | content tokens of `tool` and legacy `function` messages |
| `m_messages` | number of messages (0 for a prompt/completion pair) |
| `m_chars` | characters of the texts counted (message contents, prompt, completion) |

What `m_tokens_total` is, per kind:

- chat: `pipeline.tokens.count_chat` (the cookbook formula: 3 per message + role + content
  [+ name + 1] + 3 for the reply priming, plus tool calls and the `tools`/`functions`
  definitions);
- prompt_completion: tokens(prompt) + tokens(completion); trained = the completion;
- preference: `count_chat` over `input.messages` followed by `preferred_output` (with
  `input.tools`), i.e. the example the way supervised training would see it; trained = the
  preferred output. The service's DPO accounting is not documented; the non-preferred output
  is not counted.

The tokenizer is the target's (`tokenizer` of the profile, when it is one of the bundled
encodings cl100k_base / o200k_base); otherwise the `encoding` option, default o200k_base
(an estimate for targets whose tokenizer is not bundled, e.g. Hugging Face tokenizers).
Each worker builds the encoding once (`pipeline.tokens.get_encoding` is cached per process);
only its name travels between processes.

Reason codes: none (this stage only measures).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import tiktoken

from pipeline.configdoc import doc
from pipeline.errors import PipelineError
from pipeline.registry import Changes, register
from pipeline.tokens import KNOWN_ENCODINGS, count_chat, get_encoding

DEFAULT_ENCODING = "o200k_base"

# The metric columns this stage writes, in order.
COLUMNS = (
    "m_tokens_total",
    "m_tokens_trained",
    "m_tokens_system",
    "m_tokens_user",
    "m_tokens_assistant",
    "m_tokens_tool",
    "m_messages",
    "m_chars",
)
TOTAL = "m_tokens_total"

# by_role key -> per-role column index in a measurement row (2 = system ... 5 = tool)
_ROLE_SLOT = {"system": 2, "developer": 2, "user": 3, "assistant": 4, "tool": 5, "function": 5}


@dataclass(frozen=True)
class CountTokensConfig:
    target: str | None = doc(
        "Target profile whose tokenizer counts the tokens; defaults to the run's `target:`.",
        None,
    )
    encoding: Literal["cl100k_base", "o200k_base"] | None = doc(
        "Encoding to use when the target names none of the bundled ones (null: o200k_base). "
        "Setting it to a different encoding than the target's tokenizer is an error.",
        None,
    )

    def __post_init__(self) -> None:
        check_options("count_tokens", self.target, self.encoding)


def check_options(stage: str, target: str | None, encoding: str | None) -> None:
    """Fail at config time (not in the workers) on an unknown target or a contradicting encoding.

    Called by the stage configs' `__post_init__`, which also runs when the run's `target:` is
    filled into a stage config.
    """
    if target is None:
        return
    try:
        resolve_encoding(target, encoding)
    except PipelineError as exc:
        raise PipelineError(f"stage {stage}: {exc}") from None


@functools.cache
def resolve_encoding(target: str | None, encoding: str | None) -> str:
    """The encoding name for a target and an `encoding` option (see the module docstring).

    Raises:
        PipelineError: an unknown target, or an `encoding` that contradicts the target's.
    """
    tokenizer = None
    if target is not None:
        from pipeline.targets import get_target

        tokenizer = get_target(target).tokenizer
    if tokenizer in KNOWN_ENCODINGS:
        if encoding is not None and encoding != tokenizer:
            raise PipelineError(
                f"encoding {encoding!r} contradicts target {target}, which uses {tokenizer}; "
                f"remove `encoding:` from the stage"
            )
        return str(tokenizer)
    return encoding or DEFAULT_ENCODING


def _chars(messages: Iterable[Any]) -> int:
    """Characters of the string contents and text parts of `messages`."""
    n = 0
    for m in messages:
        if not isinstance(m, Mapping):
            continue
        c = m.get("content")
        if isinstance(c, str):
            n += len(c)
        elif isinstance(c, list):
            for p in c:
                if isinstance(p, Mapping) and p.get("type") == "text":
                    t = p.get("text")
                    if isinstance(t, str):
                        n += len(t)
    return n


# Messages with only these keys, a known role and string content take the fast path.
_FAST_KEYS = frozenset({"role", "content", "weight"})
_ROLE_TOKENS: dict[str, dict[str, int]] = {}  # encoding name -> role -> tokens(role)


def _role_tokens(enc: tiktoken.Encoding) -> dict[str, int]:
    table = _ROLE_TOKENS.get(enc.name)
    if table is None:
        table = _ROLE_TOKENS[enc.name] = {r: len(enc.encode_ordinary(r)) for r in _ROLE_SLOT}
    return table


def _fast_chat_row(enc: tiktoken.Encoding, messages: list[Any]) -> list[int] | None:
    """`chat_row` for the common shape in one pass (one encode per message), else None.

    Gives exactly what `count_chat` gives (a property test checks it): 3 per message + role +
    content, + 3; trained = assistant content with weight absent or 1.
    """
    roles = _role_tokens(enc)
    encode = enc.encode_ordinary
    total, trained, chars = 3, 0, 0
    row = [0, 0, 0, 0, 0, 0, len(messages), 0]
    for m in messages:
        # two keys that are a string role and content can only be role and content
        if type(m) is not dict or (len(m) != 2 and not m.keys() <= _FAST_KEYS):
            return None
        role = m.get("role")
        content = m.get("content")
        if type(role) is not str or type(content) is not str:
            return None
        role_tokens = roles.get(role)
        if role_tokens is None:
            return None
        n = len(encode(content)) if content else 0
        total += 3 + role_tokens + n
        chars += len(content)
        row[_ROLE_SLOT[role]] += n
        if role == "assistant":
            if "weight" in m:
                weight = m["weight"]
                if type(weight) is not int and type(weight) is not float:
                    return None  # bools and odd types: count_chat's rules
                if weight != 1:
                    continue
            trained += n
    row[0], row[1], row[7] = total, trained, chars
    return row


def chat_row(enc: tiktoken.Encoding, messages: Any, tools: Any, functions: Any) -> list[int]:
    """The COLUMNS values of one chat example."""
    if not isinstance(messages, list):
        messages = []
    elif not tools and not functions:
        fast = _fast_chat_row(enc, messages)
        if fast is not None:
            return fast
    c = count_chat(enc, messages, tools, functions)
    row = [c.total, c.trained, 0, 0, 0, 0, c.messages, _chars(messages)]
    for role, n in c.by_role.items():
        slot = _ROLE_SLOT.get(role)
        if slot is not None:
            row[slot] += n
    return row


def prompt_completion_row(enc: tiktoken.Encoding, prompt: Any, completion: Any) -> list[int]:
    """The COLUMNS values of one prompt/completion pair (prompt as user, completion as assistant)."""
    p = len(enc.encode_ordinary(prompt)) if isinstance(prompt, str) else 0
    c = len(enc.encode_ordinary(completion)) if isinstance(completion, str) else 0
    chars = (len(prompt) if isinstance(prompt, str) else 0) + (
        len(completion) if isinstance(completion, str) else 0
    )
    return [p + c, c, 0, p, c, 0, 0, chars]


def preference_row(enc: tiktoken.Encoding, inp: Any, preferred: Any) -> list[int]:
    """The COLUMNS values of one preference pair: input messages + preferred output."""
    messages = inp.get("messages") if isinstance(inp, Mapping) else None
    tools = inp.get("tools") if isinstance(inp, Mapping) else None
    prompt = list(messages) if isinstance(messages, list) else []
    output = list(preferred) if isinstance(preferred, list) else []
    row = chat_row(enc, prompt + output, tools, None)
    # trained: the preferred output only (an assistant message in the input is context here)
    row[1] = chat_row(enc, output, None, None)[1]
    return row


def _column(batch: pd.DataFrame, name: str, mask: pd.Series) -> list[Any]:
    if name not in batch:
        return [None] * int(mask.sum())
    return batch.loc[mask, name].tolist()


def measure(batch: pd.DataFrame, enc: tiktoken.Encoding) -> np.ndarray:
    """(len(batch), 8) int64 array of the COLUMNS for every row of `batch`, in row order.

    Never raises on bad shapes: anything unrecognised counts 0 (validation is another stage's).
    """
    out = np.zeros((len(batch), len(COLUMNS)), dtype=np.int64)
    kinds = batch["kind"].to_numpy(dtype=object)
    for kind in pd.unique(kinds):
        mask = pd.Series(kinds == kind, index=batch.index)
        if kind == "chat":
            rows = [
                chat_row(enc, m, t, f)
                for m, t, f in zip(
                    _column(batch, "messages", mask),
                    _column(batch, "tools", mask),
                    _column(batch, "functions", mask),
                    strict=True,
                )
            ]
        elif kind == "prompt_completion":
            rows = [
                prompt_completion_row(enc, p, c)
                for p, c in zip(
                    _column(batch, "prompt", mask), _column(batch, "completion", mask), strict=True
                )
            ]
        elif kind == "preference":
            rows = [
                preference_row(enc, i, p)
                for i, p in zip(
                    _column(batch, "input", mask),
                    _column(batch, "preferred_output", mask),
                    strict=True,
                )
            ]
        else:
            continue
        if rows:
            out[mask.to_numpy()] = np.asarray(rows, dtype=np.int64)
    return out


def set_metrics(batch: pd.DataFrame, values: np.ndarray, rows: np.ndarray | None = None) -> None:
    """Write `values` (from `measure`) into the metric columns of `batch` (all rows or `rows`)."""
    for j, col in enumerate(COLUMNS):
        if rows is None:
            batch[col] = values[:, j]
        else:
            if col not in batch:
                batch[col] = np.zeros(len(batch), dtype=np.int64)
            column = batch[col].to_numpy(dtype=np.int64, copy=True)
            column[rows] = values[:, j]
            batch[col] = column


def encoding_of(target: str | None, encoding: str | None) -> tiktoken.Encoding:
    """The (per-process cached) encoding for a stage config's `target` and `encoding`."""
    return get_encoding(resolve_encoding(target, encoding))


@register("count_tokens", CountTokensConfig, "Count tokens per example as the target bills them.")
def count_tokens(batch: pd.DataFrame, cfg: CountTokensConfig) -> tuple[pd.DataFrame, Changes]:
    out = batch.copy()
    changes: Changes = Counter()
    set_metrics(out, measure(out, encoding_of(cfg.target, cfg.encoding)))
    return out, changes
