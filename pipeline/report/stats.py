"""Distributions for the report: tokens and messages per example, per split.

Computed once, at the end of a run, from the metrics table (one row per input record; only the
records written to train and validation count). `ReportColumns.from_parquet` streams
metrics.parquet a batch of rows at a time and keeps only what the report needs: every kept
record's `tokens_total` (exact percentiles and the histogram need the values: 4 bytes a record
while they fit in int32, 8 above) and, for the other columns, a sum, and a count, sum, minimum
and maximum of the values above 0, per split; `ReportColumns.from_frame` takes the same from a
metrics DataFrame. Percentiles are numpy's linear interpolation; means are rounded to two
decimals so that reports stay byte-identical across platforms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

SPLITS = ("train", "validation")
HISTOGRAM_BINS = 20
ROLES = ("system", "user", "assistant", "tool")  # the metrics' per-role token columns
VALUES = "tokens_total"  # the one column whose values are kept (percentiles, histogram)
# the other numeric columns the report reads: a running summary of each
SUMMED = ("tokens_image", "images_unsized", "messages", *(f"tokens_{r}" for r in ROLES))
STREAM_ROWS = 65_536  # rows per batch read from metrics.parquet
_INT32 = np.iinfo(np.int32)


@dataclass
class _Summary:
    """A column's values in one split, summarised as they stream past: the sum of all, and the
    count, sum, minimum and maximum of those above 0."""

    total: int = 0
    positive: int = 0
    positive_sum: int = 0
    positive_min: int | None = None
    positive_max: int | None = None

    def add(self, values: np.ndarray) -> None:
        self.total += int(values.sum())
        above = values[values > 0]
        if len(above):
            self.positive += len(above)
            self.positive_sum += int(above.sum())
            low, high = int(above.min()), int(above.max())
            self.positive_min = low if self.positive_min is None else min(self.positive_min, low)
            self.positive_max = high if self.positive_max is None else max(self.positive_max, high)


def _no_values() -> dict[str, list[np.ndarray]]:
    return {s: [] for s in SPLITS}


@dataclass
class ReportColumns:
    """The parts of the metrics table the report's statistics read, per kept split."""

    values: dict[str, list[np.ndarray]] = field(default_factory=_no_values)  # tokens_total
    summaries: dict[tuple[str, str], _Summary] = field(default_factory=dict)  # (column, split)

    def add(self, name: str, split: str, values: np.ndarray) -> None:
        """Take one chunk of a column's present values (int64) in a split."""
        if name == VALUES:
            fits = not len(values) or (values.min() >= _INT32.min and values.max() <= _INT32.max)
            self.values[split].append(values.astype(np.int32) if fits else values)
        else:
            self.summaries.setdefault((name, split), _Summary()).add(values)

    def tokens(self, split: str) -> np.ndarray:
        """Every `tokens_total` of a split, in file order."""
        chunks = self.values[split]
        if not chunks:
            return np.empty(0, dtype=np.int64)
        if len(chunks) > 1:
            self.values[split] = chunks = [np.concatenate(chunks)]
        return chunks[0]

    def summary(self, name: str, split: str) -> _Summary:
        return self.summaries.get((name, split), _Summary())

    @classmethod
    def from_frame(cls, metrics: pd.DataFrame) -> ReportColumns:
        """From a metrics DataFrame (the split and the numeric columns, or the whole table)."""
        out = cls()
        if "split" not in metrics:
            return out
        for name in (VALUES, *SUMMED):
            if name in metrics:
                for split in SPLITS:
                    values = metrics.loc[metrics["split"] == split, name].dropna()
                    out.add(name, split, values.to_numpy(dtype=np.int64))
        return out

    @classmethod
    def from_parquet(cls, path: Path, batch_rows: int = STREAM_ROWS) -> ReportColumns:
        """From metrics.parquet, streamed `batch_rows` rows at a time: only the split and the
        numeric columns the report reads, and of a batch nothing kept but the above."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        out = cls()
        with pq.ParquetFile(path) as file:
            types = {f.name: f.type for f in file.schema_arrow}
            names = [
                n
                for n in (VALUES, *SUMMED)
                if n in types and (pa.types.is_integer(types[n]) or pa.types.is_floating(types[n]))
            ]
            if "split" not in types or not names:
                return out
            for batch in file.iter_batches(batch_size=batch_rows, columns=["split", *names]):
                split = batch.column("split")
                for s in SPLITS:
                    mask = pc.equal(split, s)
                    if not pc.any(mask).as_py():
                        continue
                    for name in names:
                        column = pc.filter(batch.column(name), mask).drop_null()
                        values = column.to_numpy(zero_copy_only=False)
                        out.add(name, s, values.astype(np.int64, copy=False))
        pa.default_memory_pool().release_unused()  # the batches' pages, back to the system
        return out


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


def _positive_stats(s: _Summary) -> dict[str, Any] | None:
    """`_stats` (no percentiles) of a column's values above 0, from its running summary. The
    mean of whole numbers is their exact sum over their count: what numpy's mean gives while
    the sum stays below 2**53."""
    if not s.positive:
        return None
    return {
        "count": s.positive,
        "min": s.positive_min,
        "mean": round(s.positive_sum / s.positive, 2),
        "max": s.positive_max,
    }


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
    columns: ReportColumns,
    encoding: str | None,
    limit: int | None,
    target: str | None = None,
    chat_template: str | None = None,
) -> dict[str, Any]:
    """`tokens`: per-split statistics of `tokens_total` and a histogram of both splits, the
    image tokens included in them and whether they are a lower bound (images counted at the
    documented minimum: given by URL and not fetched, or on a target whose figure is a
    minimum), the chat template the counts rendered, and what the counts approximate."""
    per_split = {s: columns.tokens(s) for s in SPLITS}
    images = sum(columns.summary("tokens_image", s).total for s in SPLITS)
    unsized = sum(columns.summary("images_unsized", s).total for s in SPLITS)
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


def _roles(columns: ReportColumns, split: str) -> dict[str, Any] | None:
    """Per role: examples with content of that role, and its content tokens."""
    out = {}
    for role in ROLES:
        s = columns.summary(f"tokens_{role}", split)
        if s.positive:
            out[role] = {"examples": s.positive, "tokens": s.total}
    return out or None


def message_section(columns: ReportColumns) -> dict[str, Any]:
    """`messages`: per split, messages per example of the chat records (a prompt/completion pair
    or a text record counts 0 and is left out) and what each role holds (`system` counts
    `developer` too; `tool` counts `function`; a prompt is `user`, a completion `assistant`)."""
    return {
        "splits": {s: _positive_stats(columns.summary("messages", s)) for s in SPLITS},
        "roles": {s: _roles(columns, s) for s in SPLITS},
    }
