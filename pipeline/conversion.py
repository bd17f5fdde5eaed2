"""Batch conversion: many input files, one converted JSONL each, and a summary.

`ftprep convert 'legacy/**/*.jsonl' --to chat --out converted/` runs, for every input file, a
pipeline of `require_fields`, `convert` and `validate_schema` (against `--target` or the output
shape's rules, `VALIDATE_AS`) and writes `converted/<same relative path>.jsonl` (relative to
the folder the inputs have in common), plus `<name>.rejected.jsonl` next to it when records
were rejected. Each file is mapped on its own; one that cannot be read or mapped is named in
its summary and the others still convert. Each output is renamed into place only when its file
is done.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import parse_config
from pipeline.errors import PipelineError
from pipeline.read import expand_paths

# The rules what `convert --to SHAPE` writes is validated against when no target is given: the
# generic OpenAI rules for chat and prompt/completion, else the profile of that shape's consumer.
VALIDATE_AS: dict[str, str | None] = {
    "chat": None,
    "prompt_completion": None,
    "vertex": "vertex:gemini",
    "bedrock": "bedrock:conversation",
    "trl_conversational": "trl:conversational",
    "trl_prompt_completion": "trl:prompt_completion",
    "trl_preference": "trl:preference",
}


@dataclass(frozen=True)
class FileSummary:
    source: str
    output: str | None
    shape: str | None
    rows: int
    converted: int
    rejected: int
    error: str | None = None


def output_paths(files: list[Path], out_dir: Path) -> list[Path]:
    """Where each input's converted file goes: its path relative to the inputs' common folder."""
    parents = [os.path.abspath(f.parent) for f in files]
    base = Path(os.path.commonpath(parents)) if parents else Path(".")
    outs = [
        out_dir / Path(os.path.abspath(f)).relative_to(base).with_suffix(".jsonl") for f in files
    ]
    seen: dict[Path, Path] = {}
    for f, o in zip(files, outs, strict=True):
        if o in seen:
            raise PipelineError(
                f"{seen[o]} and {f} would both be written to {o}; convert them apart"
            )
        seen[o] = f
    return outs


def convert_files(
    patterns: list[str],
    to: str,
    out_dir: Path,
    *,
    system: str | None = None,
    separator: str | None = "auto",
    stop: str | None = "auto",
    columns: dict[str, str] | None = None,
    target: str | None = None,
    workers: int = 1,
) -> list[FileSummary]:
    """Convert every input file; returns one summary per file (errors included, not raised).

    Each file is mapped on its own (`columns`, or its recognised shape). Before conversion,
    records with empty required fields are rejected (`require_fields`); after it, what would be
    written is validated (`validate_schema`) against `target`, or the rules of the output shape
    (`VALIDATE_AS`), so a converted file passes `ftprep check`.
    """
    from pipeline.runner import run
    from pipeline.targets import get_target

    if target is not None:
        get_target(target)  # an unknown name stops here, before any file
    files = expand_paths(patterns, "auto")
    outs = output_paths(files, out_dir)
    stage: dict[str, Any] = {"name": "convert", "to": to, "separator": separator, "stop": stop}
    if system is not None:
        stage["system"] = system
    stages = [
        {"name": "require_fields"},
        stage,
        {"name": "validate_schema", "target": target or VALIDATE_AS[to]},
    ]
    source: dict[str, Any] = {"columns": columns} if columns else {}
    summaries = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for f, out in zip(files, outs, strict=True):
        out.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".ftprep-convert-", dir=out_dir))
        try:
            cfg = parse_config(
                {
                    "input": {"paths": [str(f)], **source},
                    "stages": stages,
                    "output": {"dir": str(work)},
                    "runner": {"workers": workers},
                },
                "ftprep convert",
            )
            result = run(cfg)
        except PipelineError as exc:
            shutil.rmtree(work, ignore_errors=True)
            summaries.append(FileSummary(str(f), None, None, 0, 0, 0, str(exc)))
            continue
        if result.summary.totals["rows_in"] == 0:  # nothing to convert: not an output
            from pipeline.read import empty_file

            shutil.rmtree(work, ignore_errors=True)
            summaries.append(FileSummary(str(f), None, None, 0, 0, 0, f"{f}: {empty_file(f)}"))
            continue
        try:
            t = result.summary.totals
            rejected_out = out.with_name(out.stem + ".rejected.jsonl")
            os.replace(work / "train.jsonl", out)
            if t["rejected"]:
                os.replace(work / "rejected.jsonl", rejected_out)
            elif rejected_out.exists():
                rejected_out.unlink()
            shape = result.summary.inputs[0].mapping["shape"]
            summaries.append(
                FileSummary(str(f), str(out), shape, t["rows_in"], t["train"], t["rejected"])
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return summaries


def summary_table(summaries: list[FileSummary]) -> str:
    """A plain-text table of the conversion, one row per input file."""
    header = ("input", "shape", "rows", "converted", "rejected", "output")
    rows = [
        (
            s.source,
            s.shape or "-",
            str(s.rows),
            str(s.converted),
            str(s.rejected),
            s.output or f"error: {s.error}",
        )
        for s in summaries
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for r in [header, *rows]:
        lines.append(
            "  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
        )
    total = (
        sum(s.rows for s in summaries),
        sum(s.converted for s in summaries),
        sum(s.rejected for s in summaries),
    )
    lines.append(
        f"{len(summaries)} files: {total[0]} records, {total[1]} converted, {total[2]} rejected"
    )
    return "\n".join(lines)
