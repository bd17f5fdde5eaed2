"""require_fields: reject records whose mapped fields are missing or empty.

Reason codes:
- `field_missing`: a required field is absent or null;
- `field_empty`: a required field is an empty or whitespace-only text, or an empty list.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pipeline.configdoc import doc
from pipeline.records import REQUIRED_BY_KIND, drop_where
from pipeline.registry import Changes, register


@dataclass(frozen=True)
class RequireFieldsConfig:
    fields: tuple[str, ...] | None = doc(
        "Fields every record must have; null uses the required fields of each record's kind "
        "(prompt_completion: prompt, completion; chat: messages; preference: input, "
        "preferred_output, non_preferred_output).",
        None,
    )


def _state(v: Any) -> str | None:
    """'missing', 'empty' or None (present)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "missing"
    if isinstance(v, str) and not v.strip():
        return "empty"
    if isinstance(v, list | dict) and not v:
        return "empty"
    return None


@register("require_fields", RequireFieldsConfig, "Reject records with missing or empty fields.")
def require_fields(batch: pd.DataFrame, cfg: RequireFieldsConfig) -> tuple[pd.DataFrame, Changes]:
    out = batch.copy()
    changes: Changes = Counter()
    kinds = out["kind"].unique().tolist()
    for kind in kinds:
        names = cfg.fields if cfg.fields is not None else REQUIRED_BY_KIND.get(str(kind), ())
        of_kind = out["kind"] == kind
        for name in names:
            if name not in out:
                states = pd.Series("missing", index=out.index)
            else:
                states = out[name].map(_state)
            for state, code in (("missing", "field_missing"), ("empty", "field_empty")):
                drop_where(
                    out,
                    of_kind & (states == state),
                    code,
                    f"{name} is {state}: fill it in the source, or map another column to it "
                    "(input.columns)",
                )
    return out, changes
