"""`ftprep check`: the pre-upload gate. Every problem of every file in one pass.

Each file is checked as it is, for one target, as a training file: nothing is fixed, converted
or written next to it. Three levels:

- **file** problems: not JSONL, not UTF-8, a BOM the target does not want, records in a shape
  the target does not take (ShareGPT for OpenAI ...), blank lines;
- **record** errors and warnings: `validate_schema`, `count_tokens` and `token_limit` with
  `over_limit: reject` (an example the service would truncate counts as damaged), each with
  its line and reason code (docs/reasons.md);
- **dataset** problems: too few or too many examples, a file larger than the target takes.

Each stage sees every record the earlier ones kept, and a record's every problem is listed:
`validate_schema` gives each of a record's problems its own line. The verdicts are
`pipeline.gate.Verdict`s; the exit code (`pipeline.gate.exit_code`): 0 when no file has an
error, 1 when any has (or any warning, with `strict`), 2 when a file cannot be read at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.gate import Problem, Verdict, dataset_problems

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


def check_files(patterns: list[str], target: str, workers: int = 1) -> list[Verdict]:
    """Check every file; an unreadable file gets a verdict too (nothing is raised for it)."""
    from pipeline.read import expand_paths
    from pipeline.targets import get_target

    profile = get_target(target)
    return [_check_one(path, profile, workers) for path in expand_paths(patterns, "auto")]


def _check_one(path: Path, profile: Any, workers: int) -> Verdict:
    """One file's verdict, from the stage results in memory (nothing is written)."""
    from pipeline.config import parse_config
    from pipeline.runner import inspect

    verdict = Verdict(str(path))
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
                "runner": {"workers": workers},
            },
            "ftprep check",
        )
        found = inspect(cfg)
    except PipelineError as exc:
        verdict.unreadable = str(exc)
        return verdict
    verdict.records = found.rows_in
    inp = found.inputs[0]
    records = sorted(found.problems, key=lambda p: (p.line or 0, p.level != "error"))
    file_level = _file_problems(path, {"format": inp.format, **inp.stats, "mapping": inp.mapping}, profile)
    verdict.problems = file_level + records + dataset_problems(found.dataset)
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


def format_text(verdicts: list[Verdict], target: str) -> str:
    """Compiler-style lines, `FILE:LINE: level code: message`, and a summary per file."""
    lines = []
    for v in verdicts:
        if v.unreadable:
            lines.append(f"{v.subject}: error unreadable: {v.unreadable}")
            continue
        for p in v.problems:
            where = f"{v.subject}:{p.line}" if p.line is not None else v.subject
            lines.append(f"{where}: {p.level} {p.code}: {p.message}")
        lines.append(
            f"{v.subject}: {v.records} records, {v.errors} errors, {v.warnings} warnings for {target}"
        )
    bad = sum(1 for v in verdicts if v.errors)
    lines.append(f"{_n(len(verdicts), 'file')} checked: {bad} with errors")
    return "\n".join(lines)


def _n(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"
