"""The stage registry: one module per stage, registered by name.

A stage is a frozen `<Name>Config` dataclass and one pure function `fn(batch, cfg) -> batch`
that marks the rows it rejects with a reason code (`pipeline.records.drop_where`) and never
removes rows, reads or writes files, or prints. The runner gives it only the records not yet
rejected, and counts what went in and out.

Dataset stages (`kind="dataset"`) need the whole dataset (dedupe, split): they are decided by
the runner over the compact key table after every batch stage has run.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

StageFn = Callable[[pd.DataFrame, Any], pd.DataFrame]


@dataclass(frozen=True)
class StageSpecEntry:
    name: str
    config_cls: type
    fn: StageFn | None
    summary: str
    kind: Literal["batch", "dataset"] = "batch"
    keys: Callable[[pd.DataFrame, Any], dict[str, Any]] | None = None  # dataset stages
    decide: Callable[..., dict[str, Any]] | None = None  # dataset stages


REGISTRY: dict[str, StageSpecEntry] = {}

# Stage modules, imported so that they register themselves. Order does not matter.
_MODULES = ("normalize_text", "require_fields", "count_tokens", "token_limit", "dataset_limits", "dedupe", "split", "validate_schema", "legacy_format", "convert")


def register(
    name: str, config_cls: type, summary: str, kind: Literal["batch", "dataset"] = "batch"
) -> Callable[[StageFn], StageFn]:
    """Decorator: register `fn` as stage `name` with its config class."""

    def deco(fn: StageFn) -> StageFn:
        REGISTRY[name] = StageSpecEntry(name, config_cls, fn, summary, kind)
        return fn

    return deco


def register_dataset(
    name: str,
    config_cls: type,
    summary: str,
    keys: Callable[[pd.DataFrame, Any], dict[str, Any]],
    decide: Callable[..., dict[str, Any]],
) -> None:
    """Register a dataset stage: `keys` runs in the workers, `decide` over the key table.

    See `pipeline.dataset` for the contract.
    """
    REGISTRY[name] = StageSpecEntry(name, config_cls, None, summary, "dataset", keys, decide)


for _m in _MODULES:
    importlib.import_module(f"pipeline.stages.{_m}")
