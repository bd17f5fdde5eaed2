"""Distributions for the report: tokens and messages per example, per split.

Computed once, at the end of a run, from the metrics table (one row per input record; only the
records written to train and validation count). Percentiles are numpy's linear interpolation;
means are rounded to two decimals so that reports stay byte-identical across platforms.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

SPLITS = ("train", "validation")
HISTOGRAM_BINS = 20


def _stats(values: np.ndarray, percentiles: bool) -> dict[str, Any] | None:
    if len(values) == 0:
        return None
    out: dict[str, Any] = {
        "count": len(values),
        "min": int(values.min()),
        "mean": round(float(values.mean()), 2),
    }
    if percentiles:
        p5, p50, p95 = np.percentile(values, [5, 50, 95])
        out.update(p5=round(float(p5), 2), p50=round(float(p50), 2), p95=round(float(p95), 2))
    out["max"] = int(values.max())
    return out


def _column(metrics: pd.DataFrame, name: str, split: str) -> np.ndarray:
    if name not in metrics or "split" not in metrics:
        return np.empty(0, dtype=np.int64)
    values = metrics.loc[metrics["split"] == split, name].dropna()
    return values.to_numpy(dtype=np.int64)


def _edges(top: int) -> list[int]:
    """HISTOGRAM_BINS equal bins of whole tokens from 0 to at least `top`."""
    width = max(1, -(-top // HISTOGRAM_BINS))
    return [i * width for i in range(HISTOGRAM_BINS + 1)]


def approximation(
    encoding: str | None, target: str | None, chat_template: str | None = None
) -> str | None:
    """What the counts approximate, or None when they use the target's own encoding (and,
    for a target that formats examples with the model's chat template, that template)."""
    if encoding is None:
        return None
    profile = None
    if target is not None:
        from pipeline.targets import get_target

        profile = get_target(target)
    tokenizer = profile.tokenizer if profile is not None else None
    if encoding.startswith("tokenizer.json:"):
        if chat_template is not None:
            return None
        text = (
            f"counted with the model's own {encoding}; the chat formula's per-message figures "
            "stand in for its chat template's tokens"
        )
        if profile is not None and profile.chat_template:
            text += (
                f" ({target} formats examples with the model's chat template, but none was "
                "found beside the tokenizer.json: chat_template.jinja, or chat_template in "
                "tokenizer_config.json; set count_tokens.chat_template)"
            )
        return text
    if tokenizer == encoding or (target is None and encoding == "o200k_base"):
        return None
    own = f"its {tokenizer} tokenizer" if tokenizer else "a tokenizer that is not public"
    return (
        f"an approximation: counted with {encoding}; {target} counts with {own}, so the "
        "service's counts differ"
    )


def token_section(
    metrics: pd.DataFrame,
    encoding: str | None,
    limit: int | None,
    target: str | None = None,
    chat_template: str | None = None,
) -> dict[str, Any]:
    """`tokens`: per-split statistics of `tokens_total` and a histogram of both splits, the
    image tokens included in them and whether they are a lower bound (images counted at the
    documented minimum: given by URL and not fetched, or on a target whose figure is a
    minimum), the chat template the counts rendered, and what the counts approximate."""
    per_split = {s: _column(metrics, "tokens_total", s) for s in SPLITS}
    images = sum(int(_column(metrics, "tokens_image", s).sum()) for s in SPLITS)
    unsized = sum(int(_column(metrics, "images_unsized", s).sum()) for s in SPLITS)
    seen = [v for v in per_split.values() if len(v)]
    histogram = None
    if seen:
        top = int(max(v.max() for v in seen)) + 1
        edges = _edges(top)
        histogram = {"edges": edges}
        for split, values in per_split.items():
            counts, _ = np.histogram(values, bins=edges)
            histogram[split] = [int(c) for c in counts]
    return {
        "encoding": encoding,
        "limit_per_example": limit,
        "splits": {s: _stats(v, True) for s, v in per_split.items()},
        "histogram": histogram,
        "image_tokens": images,
        "images_at_minimum": unsized,
        "lower_bound": unsized > 0,
        "chat_template": chat_template,
        "approximation": approximation(encoding, target, chat_template),
    }


ROLES = ("system", "user", "assistant", "tool")  # the metrics' per-role token columns


def _roles(metrics: pd.DataFrame, split: str) -> dict[str, Any] | None:
    """Per role: examples with content of that role, and its content tokens."""
    out = {}
    for role in ROLES:
        values = _column(metrics, f"tokens_{role}", split)
        if (values > 0).any():
            out[role] = {"examples": int((values > 0).sum()), "tokens": int(values.sum())}
    return out or None


def _chat(messages: np.ndarray) -> np.ndarray:
    return messages[messages > 0]  # a prompt/completion pair or a text record counts 0


def message_section(metrics: pd.DataFrame) -> dict[str, Any]:
    """`messages`: per split, messages per example (chat records) and what each role holds
    (`system` counts `developer` too; `tool` counts `function`; a prompt is `user`, a completion
    `assistant`)."""
    return {
        "splits": {s: _stats(_chat(_column(metrics, "messages", s)), False) for s in SPLITS},
        "roles": {s: _roles(metrics, s) for s in SPLITS},
    }
