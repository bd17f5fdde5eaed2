"""Batch conversion: many input files, one converted JSONL each, and a summary.

`ftprep convert 'legacy/**/*.jsonl' --to chat --out converted/` runs, for every input file, a
pipeline of `require_fields`, `convert` and `validate_schema` (against `--target` or the output
shape's rules, `VALIDATE_AS`) and writes `converted/<same relative path>.jsonl` (relative to
the folder the inputs have in common), plus `<name>.rejected.jsonl` next to it when records
were rejected. Each file is mapped on its own; one that cannot be read or mapped is named in
its summary and the others still convert. Each output is renamed into place only when its file
is done.

Output names come from input paths, so they are checked to stay inside `--out`: a relative
path keeps no `..` (it is taken from the absolute, normalised path), and a folder on the way
that is a symlink leading out of `--out` refuses the file (`inside`).
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
    "preference": None,
}


# What `--preference chosen` / `--kto desirable` leave out, counted per file.
CHOSEN_LOSSES = ("rejected_answer_dropped", "kto_label_dropped")


@dataclass(frozen=True)
class FileSummary:
    source: str
    output: str | None
    shape: str | None
    rows: int
    converted: int
    rejected: int
    error: str | None = None
    chosen: int = 0  # rejected by a loss the user chose (`kto_undesirable`)
    dropped: dict[str, int] | None = None  # the chosen losses counted (`rejected_answer_dropped` ...)


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


def inside(out: Path, out_dir: Path) -> bool:
    """Whether `out`, with every symlink on its way resolved, lies inside `out_dir`."""
    root = out_dir.resolve()
    return out.parent.resolve() == root or root in out.parent.resolve().parents


def convert_files(
    patterns: list[str],
    to: str,
    out_dir: Path,
    *,
    system: str | None = None,
    preference: str = "reject",
    kto: str = "reject",
    separator: str | None = "auto",
    stop: str | None = "auto",
    columns: dict[str, str] | None = None,
    target: str | None = None,
    encoding: str | None = None,
    header: str | bool = "auto",
    workers: int = 1,
) -> list[FileSummary]:
    """Convert every input file; returns one summary per file (errors included, not raised).

    Each file is mapped on its own (`columns`, or its recognised shape) and read with
    `encoding` and `header` (`input.encoding`, `input.header`). Before conversion,
    records with empty required fields are rejected (`require_fields`); after it, what would be
    written is validated (`validate_schema`) against `target`, or the rules of the output shape
    (`VALIDATE_AS`), so a converted file passes `ftprep check`.
    """
    from pipeline.targets import get_target

    if target is not None:
        get_target(target)  # an unknown name stops here, before any file
    files = expand_paths(patterns, "auto")
    outs = output_paths(files, out_dir)
    stage: dict[str, Any] = {
        "name": "convert",
        "to": to,
        "separator": separator,
        "stop": stop,
        "preference": preference,
        "kto": kto,
    }
    if system is not None:
        stage["system"] = system
    stages = [
        {"name": "require_fields"},
        stage,
        {"name": "validate_schema", "target": target or VALIDATE_AS[to]},
    ]
    source: dict[str, Any] = {"columns": columns} if columns else {}
    if encoding is not None:
        source["encoding"] = encoding
    if header != "auto":
        source["header"] = header
    summaries = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for f, out in zip(files, outs, strict=True):
        if not _make_folder_inside(out, out_dir):
            error = f"{out} leads out of {out_dir} through a symlink; not written"
            summaries.append(FileSummary(str(f), None, None, 0, 0, 0, error))
            continue
        work = Path(tempfile.mkdtemp(prefix=".ftprep-convert-", dir=out_dir))
        try:
            summaries.append(_convert_one(f, out, work, stages, source, workers))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return summaries


def _make_folder_inside(out: Path, out_dir: Path) -> bool:
    """Make `out`'s folder if it stays inside `out_dir`: checked before (mkdir would follow a
    link out) and after."""
    if not inside(out, out_dir):
        return False
    out.parent.mkdir(parents=True, exist_ok=True)
    return inside(out, out_dir)


def _convert_one(
    f: Path,
    out: Path,
    work: Path,
    stages: list[dict[str, Any]],
    source: dict[str, Any],
    workers: int,
) -> FileSummary:
    """Convert one file through the folder `work` (removed by the caller, whatever happens)."""
    from pipeline.read import empty_file
    from pipeline.runner import run

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
        return FileSummary(str(f), None, None, 0, 0, 0, str(exc))
    t = result.summary.totals
    if t["rows_in"] == 0:  # nothing to convert: not an output
        return FileSummary(str(f), None, None, 0, 0, 0, f"{f}: {empty_file(f)}")
    rejected_out = out.with_name(out.stem + ".rejected.jsonl")
    os.replace(work / "train.jsonl", out)
    if t["rejected"]:
        os.replace(work / "rejected.jsonl", rejected_out)
    elif rejected_out.exists():
        rejected_out.unlink()
    shape = result.summary.inputs[0].mapping["shape"]
    tally = result.summary.tally
    chosen = tally.rejected().get("kto_undesirable", 0)
    changes = tally.stages["convert"].changes if "convert" in tally.stages else {}
    dropped = {k: int(v) for k, v in sorted(changes.items()) if k in CHOSEN_LOSSES}
    return FileSummary(
        str(f), str(out), shape, t["rows_in"], t["train"], t["rejected"], None, chosen, dropped
    )


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
    files = f"{len(summaries)} file" + ("" if len(summaries) == 1 else "s")
    last = f"{files}: {total[0]} records, {total[1]} converted, {total[2]} rejected"
    chosen: dict[str, int] = {}
    for s in summaries:
        for k, v in (s.dropped or {}).items():
            chosen[k] = chosen.get(k, 0) + v
        if s.chosen:
            chosen["kto_undesirable"] = chosen.get("kto_undesirable", 0) + s.chosen
    if chosen:
        last += " (left out as chosen: " + ", ".join(
            f"{k} {v}" for k, v in sorted(chosen.items())
        ) + ")"
    lines.append(last)
    return "\n".join(lines)
