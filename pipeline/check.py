"""`ftprep check`: the pre-upload gate. Every problem of every file in one pass.

Each file is checked as it is, for one target, as a training file: nothing is fixed, converted
or written next to it. Three levels:

- **file** problems: not JSONL, not UTF-8, a BOM the target does not want, records in a shape
  the target does not take (ShareGPT for OpenAI ...), blank lines;
- **record** errors and warnings: `validate_schema`, `count_tokens` and `token_limit` with
  `over_limit: reject` (an example the service would truncate counts as damaged), each with
  its line and reason code (docs/reasons.md);
- **dataset** problems: too few or too many examples, a file larger than the target takes.

The verdict: exit 0 when no file has an error, 1 when any has (or any warning, with
`strict`), 2 when a file cannot be read at all.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from pipeline.errors import PipelineError

# Which recognised file shapes each profile format takes as they are.
SHAPES_FOR_FORMAT = {
    "chat": {"chat"},
    "rft": {"chat"},
    "prompt_completion": {"prompt_completion"},
    "preference": {"preference", "trl_preference"},
    "vertex": {"vertex"},
    "bedrock_conversation": {"bedrock"},
    "alpaca": {"alpaca"},
    "sharegpt": {"sharegpt"},
}
CONVERT_TO = {
    "chat": "chat",
    "prompt_completion": "prompt_completion",
    "vertex": "vertex",
    "bedrock_conversation": "bedrock",
}


@dataclass
class Problem:
    level: str  # "error" or "warning"
    code: str
    message: str
    line: int | None = None  # None for a file- or dataset-level problem


@dataclass
class FileVerdict:
    path: str
    records: int = 0
    problems: list[Problem] = field(default_factory=list)
    unreadable: str | None = None

    @property
    def errors(self) -> int:
        return sum(p.level == "error" for p in self.problems) + (self.unreadable is not None)

    @property
    def warnings(self) -> int:
        return sum(p.level == "warning" for p in self.problems)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "records": self.records,
            "errors": self.errors,
            "warnings": self.warnings,
            "unreadable": self.unreadable,
            "problems": [p.__dict__ for p in self.problems],
        }


def check_files(patterns: list[str], target: str, workers: int = 1) -> list[FileVerdict]:
    """Check every file; an unreadable file gets a verdict too (nothing is raised for it)."""
    from pipeline.read import expand_paths
    from pipeline.targets import get_target

    profile = get_target(target)
    return [_check_one(path, profile, workers) for path in expand_paths(patterns, "auto")]


def _check_one(path: Path, profile: Any, workers: int) -> FileVerdict:
    from pipeline.config import parse_config
    from pipeline.runner import run

    verdict = FileVerdict(str(path))
    work = Path(tempfile.mkdtemp(prefix="ftprep-check-"))
    try:
        cfg = parse_config(
            {
                "input": {"paths": [str(path)]},
                "target": profile.name,
                "stages": [
                    {"name": "validate_schema"},
                    {"name": "count_tokens"},
                    {"name": "token_limit", "over_limit": "reject"},
                    {"name": "dataset_limits", "shard": False},
                ],
                "output": {"dir": str(work)},
                "runner": {"workers": workers},
            },
            "ftprep check",
        )
        report = run(cfg).report
    except PipelineError as exc:
        verdict.unreadable = str(exc)
        shutil.rmtree(work, ignore_errors=True)
        return verdict
    try:
        verdict.records = report["totals"]["rows_in"]
        records = [
            Problem("error", r["reason"], r["message"], r["line"])
            for r in map(orjson.loads, (work / "rejected.jsonl").read_bytes().splitlines())
        ]
        records += _warnings(work, report)
        records.sort(key=lambda p: p.line or 0)  # stable: errors before warnings on a line
        verdict.problems = _file_problems(path, report["inputs"][0], profile) + records
        for reason in report.get("gate", {}).get("reasons", []):
            verdict.problems.append(Problem("error", reason["code"], reason["message"]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return verdict


def _file_problems(path: Path, inp: dict[str, Any], profile: Any) -> list[Problem]:
    out = []
    if inp["format"] != "jsonl":
        out.append(
            Problem(
                "error",
                "file_not_jsonl",
                f"a {inp['format']} file; fine-tuning services take JSONL, one example per line: "
                f"convert it with `ftprep convert {path} --to chat --out DIR` or `ftprep run`",
            )
        )
    encoding = (inp.get("encoding") or "utf-8").lower().replace("_", "-")
    if inp["format"] == "jsonl" and encoding not in ("utf-8", "ascii"):
        out.append(
            Problem(
                "error",
                "file_not_utf8",
                f"encoded as {inp['encoding']}; the service reads UTF-8: re-encode the file "
                "(`ftprep run` writes UTF-8)",
            )
        )
    if inp.get("bom_removed") and not profile.output.bom:
        out.append(
            Problem(
                "error",
                "file_bom",
                f"starts with a byte-order mark; {profile.name} reads line 1 as invalid JSON: "
                "remove the first 3 bytes (`ftprep run` writes no BOM)",
            )
        )
    elif inp["format"] == "jsonl" and profile.output.bom and not inp.get("bom_removed"):
        out.append(
            Problem(
                "warning",
                "file_bom_missing",
                f"{profile.name}'s documentation asks for UTF-8 with a byte-order mark",
            )
        )
    shape = inp["mapping"]["shape"]
    accepted = set().union(*(SHAPES_FOR_FORMAT.get(f, set()) for f in profile.formats))
    if accepted and shape not in accepted:
        to = next((CONVERT_TO[f] for f in profile.formats if f in CONVERT_TO), "chat")
        out.append(
            Problem(
                "error",
                "file_shape",
                f"records are in the {shape} shape; {profile.name} takes "
                f"{', '.join(profile.formats)}: convert with `ftprep convert {path} --to {to} "
                "--out DIR`",
            )
        )
    if inp.get("blank_lines"):
        out.append(
            Problem(
                "warning",
                "file_blank_lines",
                f"{inp['blank_lines']} blank line(s); some uploaders count them as invalid lines",
            )
        )
    return out


def _warnings(work: Path, report: dict[str, Any]) -> list[Problem]:
    import pyarrow.parquet as pq

    messages = {code: w.get("message") or code for code, w in report["warnings"].items()}
    table = pq.read_table(work / "metrics.parquet", columns=["line", "warnings"]).to_pydict()
    out = []
    for line, codes in zip(table["line"], table["warnings"], strict=True):
        for code in (codes or "").split(","):
            if code:
                out.append(Problem("warning", code, messages.get(code, code), line))
    return out


def format_text(verdicts: list[FileVerdict], target: str) -> str:
    """Compiler-style lines, `FILE:LINE: level code: message`, and a summary per file."""
    lines = []
    for v in verdicts:
        if v.unreadable:
            lines.append(f"{v.path}: error unreadable: {v.unreadable}")
            continue
        for p in v.problems:
            where = f"{v.path}:{p.line}" if p.line is not None else v.path
            lines.append(f"{where}: {p.level} {p.code}: {p.message}")
        lines.append(
            f"{v.path}: {v.records} records, {v.errors} errors, {v.warnings} warnings for {target}"
        )
    bad = sum(1 for v in verdicts if v.errors)
    lines.append(f"{_n(len(verdicts), 'file')} checked: {bad} with errors")
    return "\n".join(lines)


def _n(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"
