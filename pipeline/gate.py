"""Verdicts: whether data is fit to upload, assembled in one place, and the exit code.

A `Verdict` is about one subject (an output folder for `ftprep run`, a file for `ftprep
check`): its problems, each an error or a warning with a reason code, and whether the subject
could be read at all. `run` reads the gate reasons of the dataset decisions (the target's
example-count and file-size limits); `check` adds file-, record- and dataset-level problems.
The exit code of any command that gates comes from `exit_code`:

- 0: no verdict failed;
- 1: a verdict has an error (or, with `strict`, a warning): the gate failed;
- 2: a subject could not be read (bad input; the message says what to change).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd

Level = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    level: Level
    code: str
    message: str
    line: int | None = None  # None for a file- or dataset-level problem

    def as_dict(self) -> dict[str, Any]:
        return {"level": self.level, "code": self.code, "message": self.message, "line": self.line}


@dataclass
class Verdict:
    subject: str
    records: int = 0
    problems: list[Problem] = field(default_factory=list)
    unreadable: str | None = None  # why the subject could not be read at all

    @property
    def errors(self) -> int:
        return sum(p.level == "error" for p in self.problems) + (self.unreadable is not None)

    @property
    def warnings(self) -> int:
        return sum(p.level == "warning" for p in self.problems)

    def failed(self, strict: bool = False) -> bool:
        return bool(self.errors or (strict and self.warnings))

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.subject,
            "records": self.records,
            "errors": self.errors,
            "warnings": self.warnings,
            "unreadable": self.unreadable,
            "problems": [p.as_dict() for p in self.problems],
        }


def dataset_problems(dataset: Mapping[str, Any]) -> list[Problem]:
    """The gate reasons the dataset decisions gave (`gate_failed`, `gate_reasons`), as errors."""
    return [
        Problem("error", reason["code"], reason["message"])
        for info in dataset.values()
        if isinstance(info, dict) and info.get("gate_failed")
        for reason in info.get("gate_reasons", [])
    ]


def run_verdict(subject: str, records: int, dataset: Mapping[str, Any]) -> Verdict:
    """The verdict of a `run`: its output fails the gate when a target limit is broken."""
    return Verdict(subject, records, dataset_problems(dataset))


def gate_section(verdict: Verdict) -> dict[str, Any]:
    """The report's `gate` section."""
    errors = [p for p in verdict.problems if p.level == "error"]
    return {
        "failed": verdict.failed(),
        "reasons": [{"code": p.code, "message": p.message} for p in errors],
    }


def exit_code(verdicts: Iterable[Verdict], strict: bool = False) -> int:
    """0 clean, 1 the gate failed, 2 a subject could not be read."""
    verdicts = list(verdicts)
    if any(v.unreadable for v in verdicts):
        return 2
    if any(v.failed(strict) for v in verdicts):
        return 1
    return 0


def batch_problems(batch: pd.DataFrame) -> list[Problem]:
    """Every problem of every record of a batch: each reason of a rejected record (all of
    them, when a stage found several), and each warning."""
    out: list[Problem] = []
    columns = (batch[c].tolist() for c in ("_line", "_reason", "_message", "_problems", "_warnings"))
    for line, reason, message, problems, warnings in zip(*columns, strict=True):
        if isinstance(reason, str):
            if problems:
                out += [Problem("error", code, text, int(line)) for code, text in problems]
            else:
                out.append(Problem("error", reason, str(message), int(line)))
        for code, text in warnings or ():
            out.append(Problem("warning", code, text, int(line)))
    return out
