"""The stage registry: every stage, batch or dataset, registered by name by its own module.

A batch stage module (`pipeline/stages/NAME.py`) decorates its function with `@register(...)`;
a dataset stage module (`pipeline/dataset/*.py`) calls `register_dataset(...)` (the contract is
in `pipeline.dataset`). The modules are imported on the first look-up, in `MODULES` order, so
that importing this module stays cheap and no stage module imports the config loader.
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pandas is not imported by the registry itself: `ftprep check` stays light
    import pandas as pd

Changes = Counter[str]
"""What a batch stage changed, by name (`zero_width_removed`: 3); the runner adds them up."""

StageFn = Callable[["pd.DataFrame", Any], "tuple[pd.DataFrame, Changes]"]
"""A batch stage: `fn(batch, cfg) -> (batch, changes)`; marks rejects, never removes rows."""

# Modules that register stages. Order does not matter; adding a stage adds its module here.
MODULES = (
    "pipeline.stages.normalize_text",
    "pipeline.stages.require_fields",
    "pipeline.stages.legacy_format",
    "pipeline.stages.convert",
    "pipeline.stages.validate_schema",
    "pipeline.stages.count_tokens",
    "pipeline.stages.token_limit",
    "pipeline.stages.scan_sensitive",
    "pipeline.dataset.dedupe",
    "pipeline.dataset.split",
    "pipeline.dataset.limits",
)


@dataclass(frozen=True)
class StageEntry:
    name: str
    config_cls: type
    fn: StageFn | None
    summary: str
    kind: Literal["batch", "dataset"] = "batch"
    keys: Callable[[pd.DataFrame, Any], dict[str, Any]] | None = None  # dataset stages
    decide: Callable[..., dict[str, Any]] | None = None  # dataset stages


_REGISTRY: dict[str, StageEntry] = {}
_loaded = False


def stages() -> Mapping[str, StageEntry]:
    """Every registered stage by name (imports the stage modules on the first call)."""
    global _loaded
    if not _loaded:
        _loaded = True
        for module in MODULES:
            importlib.import_module(module)
    return _REGISTRY


def register(
    name: str,
    config_cls: type,
    summary: str,
    *,
    keys: Callable[[pd.DataFrame, Any], dict[str, Any]] | None = None,
    decide: Callable[..., dict[str, Any]] | None = None,
) -> Callable[[StageFn], StageFn]:
    """Decorator: register `fn` as batch stage `name` with its config class.

    A batch stage that also needs the whole dataset (legacy_format's class counts) gives
    `keys` and `decide` too: its decision runs with the dataset stages, in config order, and
    may only warn (`Decisions.warn`), never reject.
    """

    def deco(fn: StageFn) -> StageFn:
        _REGISTRY[name] = StageEntry(name, config_cls, fn, summary, "batch", keys, decide)
        return fn

    return deco


def register_dataset(
    name: str,
    config_cls: type,
    summary: str,
    keys: Callable[[pd.DataFrame, Any], dict[str, Any]],
    decide: Callable[..., dict[str, Any]],
) -> None:
    """Register a dataset stage: `keys` runs in the workers, `decide` over the key table."""
    _REGISTRY[name] = StageEntry(name, config_cls, None, summary, "dataset", keys, decide)
