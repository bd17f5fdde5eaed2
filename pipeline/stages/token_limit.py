"""token_limit: enforce the target's per-example token limit (reject, truncate, or keep and warn).

The limit is `max_tokens` when set, else the target's `max_tokens_per_example`; with neither,
the stage changes nothing. An example is over the limit when `m_tokens_total` (written by
`count_tokens`, which should run first; if it has not, this stage counts with the same rules,
`pipeline.tokens.measure`) is greater than the limit. What happens then is `over_limit`, by default the target's
(OpenAI: `truncate`, which is what the service itself does: "removes tokens from the end of
the training example"); `keep` when the target does not say.

- `reject`: the record is rejected with `too_many_tokens`.
- `keep`: the record is kept with the warning `over_token_limit`.
- `truncate`: the content of the last message (the completion of a prompt/completion pair) is
  cut at a token boundary so the example fits: its tokens are encoded, a prefix is decoded
  (an incomplete UTF-8 character at the cut is dropped) and the example is counted again until
  it fits. The record is kept with the warning `truncated`, whose message says how many tokens
  were cut; `m_tokens_cut` holds the number, the other token metrics are updated, and the
  stage's `changes` in the report count `truncated`. Never cut: the prompt of a
  prompt/completion pair, a preference pair (cutting one side of a pair biases it), a last
  message whose content is not plain text, or a last message that would have to go entirely.
  Those are rejected with `too_many_tokens` instead.

Metrics: `m_tokens_cut` (tokens removed by truncation; 0 otherwise), and the `count_tokens`
columns when this stage had to count.

Reason codes: `too_many_tokens`. Warning codes: `over_token_limit`, `truncated`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import tiktoken

from pipeline.configdoc import doc
from pipeline.records import count_change, drop_where, warn
from pipeline.registry import Changes, register
from pipeline.tokens import (
    COLUMNS,
    TOTAL,
    ModelCosts,
    chat_row,
    check_options,
    encoding_of,
    measure,
    model_costs,
    over_limit_message,
    prompt_completion_row,
    set_metrics,
)

CUT = "m_tokens_cut"
_MAX_ROUNDS = 8  # re-encoding a cut text can merge differently; a few rounds always suffice


@dataclass(frozen=True)
class TokenLimitConfig:
    target: str | None = doc(
        "Target profile whose `max_tokens_per_example` and `over_limit` apply; defaults to the "
        "run's `target:`.",
        None,
    )
    max_tokens: int | None = doc(
        "Per-example token limit; null uses the target's `max_tokens_per_example`.", None
    )
    over_limit: Literal["reject", "truncate", "keep"] | None = doc(
        "What to do with an example over the limit: `reject` (reason `too_many_tokens`), "
        "`truncate` (cut the end of the last message; warning `truncated`) or `keep` (warning "
        "`over_token_limit`). Null uses the target's `over_limit` (OpenAI: truncate), else keep.",
        None,
    )
    encoding: Literal["cl100k_base", "o200k_base"] | None = doc(
        "Encoding used when this stage has to count (no `count_tokens` before it) and the "
        "target names none of the bundled ones (null: o200k_base).",
        None,
    )

    def __post_init__(self) -> None:
        if self.max_tokens is not None and self.max_tokens < 1:
            from pipeline.configdoc import ConfigValueError

            raise ConfigValueError("max_tokens", f"{self.max_tokens}; expected a whole number >= 1")
        check_options("token_limit", self.target, self.encoding)


def _settings(cfg: TokenLimitConfig) -> tuple[int | None, str]:
    limit: int | None = cfg.max_tokens
    mode: str | None = cfg.over_limit
    if cfg.target is not None and (limit is None or mode is None):
        from pipeline.targets import get_target

        profile = get_target(cfg.target)
        limit = limit if limit is not None else profile.max_tokens_per_example
        mode = mode if mode is not None else profile.over_limit
    return limit, mode or "keep"


def _cut_text(enc: tiktoken.Encoding, text: str, keep: int) -> str:
    """The text of the first `keep` tokens of `text`, without a broken character at the end."""
    tokens = enc.encode_ordinary(text)
    return enc.decode_bytes(tokens[: max(keep, 0)]).decode("utf-8", errors="ignore")


def _truncate_chat(
    enc: tiktoken.Encoding,
    messages: Any,
    tools: Any,
    functions: Any,
    limit: int,
    total: int,
    costs: ModelCosts,
) -> tuple[list[Any], list[int], int] | str:
    """(new messages, new metrics row, tokens cut), or why the example cannot be truncated."""
    if not isinstance(messages, list) or not messages or not isinstance(messages[-1], Mapping):
        return "it has no last message to cut"
    last = messages[-1]
    content = last.get("content")
    if not isinstance(content, str):
        return "the content of its last message is not plain text"
    before = len(enc.encode_ordinary(content))
    keep = before - (total - limit)
    for _ in range(_MAX_ROUNDS):
        if keep <= 0:
            break
        text = _cut_text(enc, content, keep)
        if not text:
            break
        new = [*messages[:-1], {**last, "content": text}]
        row = chat_row(enc, new, tools, functions, costs)
        if row[0] <= limit:
            return new, row, before - len(enc.encode_ordinary(text))
        keep -= row[0] - limit
    return "its last message would have to be cut entirely"


def _truncate_completion(
    enc: tiktoken.Encoding, prompt: Any, completion: Any, limit: int, total: int
) -> tuple[str, list[int], int] | str:
    if not isinstance(completion, str):
        return "its completion is not text"
    before = len(enc.encode_ordinary(completion))
    keep = before - (total - limit)
    for _ in range(_MAX_ROUNDS):
        if keep <= 0:
            break
        text = _cut_text(enc, completion, keep)
        if not text:
            break
        row = prompt_completion_row(enc, prompt, text)
        if row[0] <= limit:
            return text, row, before - len(enc.encode_ordinary(text))
        keep -= row[0] - limit
    return "the prompt alone is at or over the limit, and the prompt is never cut"


def _column(out: pd.DataFrame, name: str) -> list[Any]:
    return out[name].tolist() if name in out else [None] * len(out)


def _truncate(
    out: pd.DataFrame, over: np.ndarray, enc: tiktoken.Encoding, limit: int, costs: ModelCosts
) -> tuple[np.ndarray, list[str], np.ndarray, list[str]]:
    """Truncate the over-limit rows in place; (cut rows, their messages, failed rows, why)."""
    kinds = out["kind"].tolist()
    totals = out[TOTAL].to_numpy(dtype=np.int64)
    messages, tools, functions = (_column(out, c) for c in ("messages", "tools", "functions"))
    prompts, completions = _column(out, "prompt"), _column(out, "completion")
    cut_rows: list[int] = []
    cut_msgs: list[str] = []
    new_rows: list[list[int]] = []
    failed: list[int] = []
    why: list[str] = []
    cuts = np.zeros(len(out), dtype=np.int64)
    changed: dict[str, dict[int, Any]] = {"messages": {}, "completion": {}}
    for i in np.flatnonzero(over).tolist():
        total, kind = int(totals[i]), kinds[i]
        result: Any
        if kind == "chat":
            result = _truncate_chat(
                enc, messages[i], tools[i], functions[i], limit, total, costs
            )
            field, what = "messages", "the last message"
        elif kind == "prompt_completion":
            result = _truncate_completion(enc, prompts[i], completions[i], limit, total)
            field, what = "completion", "the completion"
        else:
            result = "preference pairs are not truncated"
        if isinstance(result, str):
            failed.append(i)
            why.append(
                f"{total} tokens, over the limit of {limit}, and cannot be truncated: {result}; "
                "shorten it or split it into several examples"
            )
            continue
        value, row, cut = result
        changed[field][i] = value
        cut_rows.append(i)
        new_rows.append(row)
        cuts[i] = cut
        cut_msgs.append(
            f"{cut} tokens cut from the end of {what} to fit the limit of {limit} "
            f"({total} -> {row[0]} tokens)"
        )
    for field, values in changed.items():
        if values:
            column = _column(out, field)
            for i, v in values.items():
                column[i] = v
            out[field] = pd.Series(column, index=out.index, dtype=object)
    if cut_rows:
        rows = np.asarray(cut_rows, dtype=np.int64)
        set_metrics(out, np.asarray(new_rows, dtype=np.int64).reshape(-1, len(COLUMNS)), rows)
    out[CUT] = cuts
    return np.asarray(cut_rows, dtype=np.int64), cut_msgs, np.asarray(failed, np.int64), why


def _messages(out: pd.DataFrame, rows: np.ndarray, texts: list[str]) -> pd.Series:
    series = pd.Series(None, index=out.index, dtype=object)
    series.iloc[rows] = texts
    return series


def _mask(out: pd.DataFrame, rows: np.ndarray) -> pd.Series:
    mask = np.zeros(len(out), dtype=bool)
    mask[rows] = True
    return pd.Series(mask, index=out.index)


@register("token_limit", TokenLimitConfig, "Enforce the per-example token limit.")
def token_limit(batch: pd.DataFrame, cfg: TokenLimitConfig) -> tuple[pd.DataFrame, Changes]:
    out = batch.copy()
    changes: Changes = Counter()
    limit, mode = _settings(cfg)
    if limit is None:
        return out, changes
    enc = None
    if TOTAL not in out or out[TOTAL].isna().any():
        enc = encoding_of(cfg.target, cfg.encoding)
        set_metrics(out, measure(out, enc, model_costs(cfg.target)))
    totals = out[TOTAL].to_numpy(dtype=np.int64)
    over = totals > limit
    if mode == "truncate":
        out[CUT] = np.zeros(len(out), dtype=np.int64)
    if not over.any():
        return out, changes
    rows = np.flatnonzero(over)
    if mode == "reject":
        texts = [over_limit_message(int(totals[i]), limit) for i in rows.tolist()]
        drop_where(out, _mask(out, rows), "too_many_tokens", _messages(out, rows, texts))
    elif mode == "keep":
        texts = [
            f"{totals[i]} tokens, over the limit of {limit} per example; the service will "
            "truncate or refuse it"
            for i in rows.tolist()
        ]
        warn(out, _mask(out, rows), "over_token_limit", _messages(out, rows, texts))
    else:
        enc = enc or encoding_of(cfg.target, cfg.encoding)
        cut, cut_texts, failed, why = _truncate(out, over, enc, limit, model_costs(cfg.target))
        if len(cut):
            warn(out, _mask(out, cut), "truncated", _messages(out, cut, cut_texts))
            count_change(changes, "truncated", len(cut))
        if len(failed):
            drop_where(out, _mask(out, failed), "too_many_tokens", _messages(out, failed, why))
    return out, changes
