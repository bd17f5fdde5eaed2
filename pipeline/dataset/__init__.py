"""Dataset decisions: stages that need the whole dataset (dedupe, split, example counts).

They never see the records. Each batch contributes, per kept record, a row of a compact key
table (hashes, group, stratum, ...) computed in the workers by the stage's `keys` function;
after every batch has run, the stage's `decide` function takes its decision over the whole
table, in source order. Memory stays small and the answer is the same whatever the batch size,
worker count or engine.

A dataset stage module registers itself with `register_dataset(name, Config, summary, keys,
decide)`:

- `keys(batch, cfg) -> dict[str, list | np.ndarray]`: one value per row of `batch` (the kept
  records of one batch), pure, run in the workers;
- `decide(table, decisions, cfg) -> dict`: reads `table.columns[...]`, rejects records with
  `decisions.reject(...)` or assigns them to validation with `decisions.split(...)`, and
  returns what the report should show about it.

Stages decide in config order and see what earlier ones decided: `decisions.alive()`, and
`decisions.linked`, the pairs of rows an earlier stage found to be (near-)duplicates (dedupe
links them; split keeps linked rows on one side or reports the pairs that cross).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipeline.reasons import check, check_warning

TRAIN, VALIDATION, REJECTED = 0, 1, 2

KeysFn = Callable[[pd.DataFrame, Any], dict[str, Any]]


@dataclass
class KeyTable:
    """One row per record kept by the batch stages, in source order."""

    source: Sequence[str]  # the source of each row (list-like)
    line: np.ndarray  # int64: the 1-based line, or record number (`record_sources`)
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    nbytes: np.ndarray | None = None  # int64: bytes of the record's output line, newline included
    # sources whose `line` is a 1-based record number (JSON arrays, Parquet)
    record_sources: frozenset[str] = frozenset()

    def __len__(self) -> int:
        return len(self.line)

    def where(self, row: int) -> str:
        """Row `row`'s location for people: `a.jsonl:12`, or `a.json: record 3`."""
        from pipeline.records import where

        source = self.source[row]
        return where(source, int(self.line[row]), source in self.record_sources)


@dataclass
class Decisions:
    """Where every kept record goes: train, validation, or rejected with a reason."""

    dest: np.ndarray  # int8, TRAIN / VALIDATION / REJECTED per key-table row
    reasons: dict[int, tuple[str, str, str]] = field(
        default_factory=dict
    )  # row -> stage, code, msg
    write_validation: bool = False  # set by a split stage: write validation.jsonl
    # set by dataset_limits: shard an output file larger than this into name-00001.jsonl ...
    shard_bytes: int | None = None
    # row -> ((code, message), ...): warnings a decision attached to kept records
    warnings: dict[int, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    # (k, 2) int64 key-table rows found to be duplicates of each other (set by dedupe)
    linked: np.ndarray = field(default_factory=lambda: np.empty((0, 2), dtype=np.int64))

    @classmethod
    def all_train(cls, n: int) -> Decisions:
        return cls(dest=np.zeros(n, dtype=np.int8))

    def alive(self) -> np.ndarray:
        """Mask of the rows not rejected so far."""
        return self.dest != REJECTED

    def reject(self, stage: str, rows: np.ndarray, reason: str, messages: list[str] | str) -> None:
        """Reject key-table rows (indices) with a reason code and a message each.

        Rows already rejected keep their first reason. The runner counts what each dataset
        stage rejected from `dest` and `reasons`; this only records it.
        """
        check(reason)
        for i, row in enumerate(rows.tolist()):
            if self.dest[row] == REJECTED:
                continue
            self.dest[row] = REJECTED
            msg = messages if isinstance(messages, str) else messages[i]
            self.reasons[row] = (stage, reason, msg)

    def warn(self, rows: list[int], code: str, messages: list[str]) -> None:
        """Attach warning `code` to key-table rows (each with its message); they stay kept."""
        check_warning(code)
        for row, message in zip(rows, messages, strict=True):
            self.warnings[row] = (*self.warnings.get(row, ()), (code, message))

    def split(self, rows: np.ndarray) -> None:
        """Assign key-table rows (indices) to validation; rejected rows stay rejected."""
        rows = np.asarray(rows, dtype=np.int64)
        self.dest[rows[self.dest[rows] != REJECTED]] = VALIDATION

    def link(self, pairs: np.ndarray) -> None:
        """Record pairs of rows ((k, 2) indices) that are duplicates of each other."""
        pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        self.linked = np.concatenate([self.linked, pairs])


DecideFn = Callable[[KeyTable, Decisions, Any], dict[str, Any]]
