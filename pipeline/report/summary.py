"""The typed summary of a run: what every report (report.json, and the pages beside it) reads.

`Tally` is the one place counts live: rows in and out and reasons per stage (`read` and
`write` are pseudo-stages), what stages changed, the first source lines of each reason and
warning. The runner's stage loop and its dataset-decision step are the only writers
(`Tally.stage`, `Tally.warned`); workers return their tallies and the runner merges them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXAMPLE_LINES = 5  # first source lines kept per reason or warning code and source
EXAMPLE_RECORDS = 3  # first rejected records shown per reason
PREVIEW_CHARS = 500  # of a rejected record's JSON, in the report


def preview(record: Any) -> str | None:
    """A rejected record's JSON (or raw text), cut to PREVIEW_CHARS characters."""
    if record is None:
        return None
    if isinstance(record, str):
        text = record
    else:
        from pipeline.write.jsonl import dumps_lenient

        text = dumps_lenient(record).decode()
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + "…"


@dataclass
class StageCounts:
    rows_in: int = 0
    rows_out: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    changes: Counter[str] = field(default_factory=Counter)

    def add(self, other: StageCounts) -> None:
        self.rows_in += other.rows_in
        self.rows_out += other.rows_out
        self.rejected.update(other.rejected)
        self.changes.update(other.changes)

    def as_dict(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "rejected": dict(sorted(self.rejected.items())),
            "changes": dict(sorted(self.changes.items())),
        }


def _add_lines(
    store: dict[str, dict[str, list[int]]], code: str, source: str, lines: Iterable[int]
) -> None:
    have = store.setdefault(code, {}).setdefault(source, [])
    for line in lines:
        if len(have) >= EXAMPLE_LINES:
            return
        have.append(int(line))


@dataclass
class Tally:
    """Counts per stage, and where each reason and warning was first seen."""

    stages: dict[str, StageCounts] = field(default_factory=dict)
    # reason -> source -> first source lines
    reason_lines: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    warnings: Counter[str] = field(default_factory=Counter)
    warning_lines: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    warning_messages: dict[str, str] = field(default_factory=dict)  # the first, per code
    # reason -> the first rejected records: source, line, stage, message, record preview
    reason_examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def stage(
        self,
        name: str,
        rows_in: int,
        rejected: Iterable[tuple[str, str, int, str, Any]] = (),
        changes: Counter[str] | None = None,
    ) -> None:
        """Count one step of a stage: rows in, and the `(reason, source, line, message, record)`
        of each record it rejected (`record`: the source record or raw text, or None)."""
        c = self.stages.setdefault(name, StageCounts())
        c.rows_in += rows_in
        n = 0
        for reason, source, line, message, record in rejected:
            c.rejected[reason] += 1
            _add_lines(self.reason_lines, reason, source, (line,))
            shown = self.reason_examples.setdefault(reason, [])
            if len(shown) < EXAMPLE_RECORDS:
                shown.append(
                    {
                        "source": source,
                        "line": int(line),
                        "stage": name,
                        "message": message,
                        "record": preview(record),
                    }
                )
            n += 1
        c.rows_out += rows_in - n
        if changes:
            c.changes.update(changes)

    def warned(self, code: str, message: str, source: str, line: int) -> None:
        """Count one warning on a kept record."""
        self.warnings[code] += 1
        self.warning_messages.setdefault(code, message)
        _add_lines(self.warning_lines, code, source, (line,))

    def merge(self, other: Tally) -> None:
        """Add another tally (a later unit's, in source order)."""
        for name, c in other.stages.items():
            self.stages.setdefault(name, StageCounts()).add(c)
        for store, theirs in (
            (self.reason_lines, other.reason_lines),
            (self.warning_lines, other.warning_lines),
        ):
            for code, per_source in theirs.items():
                for source, lines in per_source.items():
                    _add_lines(store, code, source, lines)
        self.warnings.update(other.warnings)
        for reason, examples in other.reason_examples.items():
            shown = self.reason_examples.setdefault(reason, [])
            shown.extend(examples[: max(0, EXAMPLE_RECORDS - len(shown))])
        for code, message in other.warning_messages.items():
            self.warning_messages.setdefault(code, message)

    def rejected(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for c in self.stages.values():
            total.update(c.rejected)
        return total


@dataclass
class InputSummary:
    path: str
    format: str
    rows: int
    stats: dict[str, Any]
    mapping: dict[str, Any]


@dataclass
class RunSummary:
    """Everything a report says about one run."""

    version: str
    config: str
    target: str | None
    inputs: list[InputSummary]
    tally: Tally
    totals: dict[str, int]  # rows_in, train, validation, rejected: as written
    dataset: dict[str, Any]  # per dataset stage: what it decided
    outputs: dict[str, Any]  # training files, bytes, limits
    target_info: dict[str, Any]
    gate: Any  # pipeline.gate.Verdict
    config_sha256: str = ""
    tokens: dict[str, Any] = field(default_factory=dict)  # pipeline.report.stats
    messages: dict[str, Any] = field(default_factory=dict)
    expectations: list[dict[str, Any]] = field(default_factory=list)  # suite results
    out_dir: Path | None = None

    @property
    def identity_holds(self) -> bool:
        t = self.totals
        return t["rows_in"] == t["train"] + t["validation"] + t["rejected"]
