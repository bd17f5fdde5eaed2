"""The canonical record and the batch: what readers produce and stages work on.

A batch is a pandas DataFrame, one row per record. Bookkeeping columns start with `_`:

- `_source`, `_line`: where the record came from: its 1-based line, or its 1-based record
  number for a JSON array or Parquet file (`pipeline.read.base`, `pipeline.read.plan.to_record`);
- `_ord`: the record's position in its work unit (source order);
- `_record`: the original source record (dict), or None when it could not be parsed;
- `_raw`: the raw text of a row that could not be parsed;
- `_reason`, `_message`, `_stage`: set when the record is rejected (None while it is kept);
- `_warnings`: a list of warning codes for a kept record;
- `_problems`: every problem a stage found on a rejected record, each `(code, message)` or
  `(code, message, path)` with the JSON path of the field (`ftprep check` lists each);
- `_read_problem`: `(code, message)` when the reader could not make a record of the row (the
  `read` pseudo-stage rejects it).

Canonical fields: `kind` (`prompt_completion`, `chat`, `preference`, `kto`) and the fields of
that kind (`prompt`/`completion`, `messages`/`tools`/`functions`,
`input`/`preferred_output`/`non_preferred_output`; a KTO example is `messages`, ending on the
judged assistant answer, `tools` and `label`: true for desirable, false for undesirable).
Images are `image_url` content parts in the messages. Stages use only canonical names.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from pipeline.reasons import check, check_warning

if TYPE_CHECKING:  # pandas only when a batch is built or marked: `ftprep check` stays light
    import pandas as pd

KINDS = ("prompt_completion", "chat", "preference", "kto")
BOOK_COLUMNS = (
    "_source",
    "_line",
    "_ord",
    "_record",
    "_raw",
    "_reason",
    "_message",
    "_stage",
    "_warnings",
    "_problems",
    "_read_problem",
    "_shape",  # output shape set by the convert stage; None writes the canonical shape
)

METRIC_PREFIX = "m_"  # stages put per-record metrics (numbers, flags) in columns named m_*
FIELDS_BY_KIND: dict[str, tuple[str, ...]] = {
    "prompt_completion": ("prompt", "completion"),
    "chat": ("messages", "tools", "functions", "parallel_tool_calls"),
    "preference": ("input", "preferred_output", "non_preferred_output"),
    "kto": ("messages", "label", "tools"),
}
REQUIRED_BY_KIND: dict[str, tuple[str, ...]] = {
    "prompt_completion": ("prompt", "completion"),
    "chat": ("messages",),
    "preference": ("input", "preferred_output", "non_preferred_output"),
    "kto": ("messages", "label"),
}
ALL_FIELDS = tuple(dict.fromkeys(f for fs in FIELDS_BY_KIND.values() for f in fs))



def where(source: str, number: int, by_record: bool) -> str:
    """A record's location for people: `a.jsonl:12` (a line), `a.json: record 3` (a 1-based
    record number: a JSON array or Parquet file, `pipeline.read.base.RECORD_NUMBERED`)."""
    return f"{source}: record {number}" if by_record else f"{source}:{number}"

def live(batch: pd.DataFrame) -> pd.Series:
    """Mask of the records not rejected so far."""
    return batch["_reason"].isna()


def drop_where(
    batch: pd.DataFrame,
    mask: pd.Series,
    reason: str,
    message: str | pd.Series,
    details: pd.Series | None = None,
) -> pd.DataFrame:
    """Mark the rows in `mask` as rejected with `reason` (rows already rejected keep theirs).

    Returns the same frame (stages call it on their own copy). `message` says what to change,
    either one text for all rows or a Series aligned with the batch. `details`, aligned with the
    batch, holds for a row with several problems each `(code, message)` (`_problems`).
    """
    import pandas as pd

    check(reason)
    mask = mask.fillna(False).astype(bool) & batch["_reason"].isna()
    if not mask.any():
        return batch
    batch.loc[mask, "_reason"] = reason
    if isinstance(message, pd.Series):
        batch.loc[mask, "_message"] = message[mask]
    else:
        batch.loc[mask, "_message"] = message
    if details is not None:
        for d in details[mask]:
            for problem in d if isinstance(d, tuple) else ():
                check(problem[0])
        batch["_problems"] = [
            d if flag and isinstance(d, tuple) else p
            for p, d, flag in zip(batch["_problems"], details, mask, strict=True)
        ]
    return batch


def warn(batch: pd.DataFrame, mask: pd.Series, code: str, message: str | pd.Series) -> None:
    """Attach warning `code` to the kept rows in `mask` (they stay kept; the report lists them).

    `_warnings` holds, per row, a tuple of `(code, message)` pairs.
    """
    import pandas as pd

    check_warning(code)
    mask = mask.fillna(False).astype(bool) & batch["_reason"].isna()
    if not mask.any():
        return
    msgs = message if isinstance(message, pd.Series) else pd.Series(message, index=batch.index)
    current = batch["_warnings"]
    batch["_warnings"] = [
        (*(w or ()), (code, m)) if flag else w
        for w, m, flag in zip(current, msgs, mask, strict=True)
    ]


def count_change(changes: Counter[str], name: str, n: int) -> None:
    """Add `n` to a named change counter (e.g. `zero_width_removed`) a stage returns."""
    if n:
        changes[name] += int(n)


def make_batch(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Build a batch from canonical record dicts (missing columns become None)."""
    import pandas as pd

    columns = [*BOOK_COLUMNS, "kind", *ALL_FIELDS]
    data = {c: [r.get(c) for r in rows] for c in columns}
    frame = pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in data.items()})
    frame["_line"] = frame["_line"].astype("int64")
    frame["_ord"] = frame["_ord"].astype("int64")
    return frame
