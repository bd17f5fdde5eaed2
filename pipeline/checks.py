"""`ftprep check`: the pre-upload gate. Every problem of every file in one pass.

Each file is checked as it is, for one target, as a training file: nothing is fixed, converted
or written next to it. Four levels:

- **target**: a target that takes no new fine-tuning jobs (`target_retired`, an error unless
  `allow_retired`), named with the date and a replacement (`pipeline.targets.replacement`);
- **file** problems: not JSONL, not UTF-8, a BOM the target does not want, records in a shape
  the target does not take (ShareGPT for OpenAI ...), a file larger than the target takes;
- **line** problems (JSONL): each blank line, each exact duplicate of an earlier line (naming
  that line);
- **record** errors and warnings: `validate_schema`, `count_tokens` and `token_limit` with
  `over_limit: reject` (an example the service would truncate counts as damaged), each with
  its line, JSON path and reason code (docs/reasons.md); too few or too many examples.

A record's every problem is listed: each of `validate_schema`'s problems is its own entry, with
the JSON path of the field. A record rejected by a rule is not looked at by the later ones (an
invalid record is not counted).

Two ways to the same result: a UTF-8 JSONL file is streamed line by line (`_check_stream`:
no batches, no pandas), calling the same per-record rules as the stages
(`validate_schema.findings`, `pipeline.tokens.record_row`, `pipeline.tokens.over_limit_message`);
any other file goes through `pipeline.runner.inspect`, the pipeline's own loop in memory. A test
holds both to the same problems on the same files.

The verdicts are `pipeline.gate.Verdict`s; the exit code (`pipeline.gate.exit_code`): 0 when no
file has an error, 1 when any has (or any warning, with `strict`), 2 when a file cannot be read
at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.gate import Problem, Verdict

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
# Formats whose records have no line of their own: problems name a 1-based record number.
RECORD_NUMBERED = frozenset({"json", "parquet"})
SAMPLE_ROWS = 1000  # records read to recognise a file's shape (as `pipeline.read.plan`)

# code -> (level, meaning and what to change): the codes `ftprep check` gives besides the record
# reason codes (`pipeline.reasons`) and the dataset gate codes (`pipeline.gate.GATE_CODES`).
CHECK_CODES: dict[str, tuple[str, str]] = {
    "file_not_jsonl": (
        "error",
        "The file is not JSONL (CSV, XLSX, a JSON array ...); fine-tuning services take one JSON "
        "example per line: convert it with `ftprep convert` or `ftprep run`.",
    ),
    "file_not_utf8": (
        "error",
        "A JSONL file in another encoding than UTF-8; re-encode it (`ftprep run` writes UTF-8).",
    ),
    "file_bom": (
        "error",
        "The file starts with a byte-order mark the target reads as part of line 1 (invalid "
        "JSON): remove the first 3 bytes.",
    ),
    "file_bom_missing": (
        "warning",
        "The target's documentation asks for UTF-8 with a byte-order mark, and the file has none.",
    ),
    "file_empty": (
        "error",
        "The file holds no records: it is empty, holds only blank lines or an empty array, or "
        "only a header row. Check that it is the file you meant.",
    ),
    "file_shape": (
        "error",
        "The records are in a shape the target does not take (e.g. ShareGPT for OpenAI): convert "
        "them with `ftprep convert`.",
    ),
    "file_blank_lines": (
        "warning",
        "A blank line (JSONL: one entry per line; other formats: the count); some uploaders count "
        "blank lines as invalid examples: remove them.",
    ),
    "duplicate_line": (
        "warning",
        "A JSONL line identical to an earlier one (the message names it): the example is trained "
        "on twice; remove the copy, or dedupe with `ftprep run`.",
    ),
    "file_unreadable": (
        "error",
        "The file cannot be read at all (no encoding decodes it, no shape recognised ...); the "
        "message says what to change. `ftprep check` exits 2.",
    ),
    "target_retired": (
        "error",
        "The target takes no new fine-tuning jobs since its profile's "
        "`shutdown.training_shutdown`; the message names the date and a replacement target. "
        "`ftprep check --allow-retired` (or `gate.allow_retired: true` for `ftprep run`) makes "
        "it a warning.",
    ),
}


def code_table() -> dict[str, tuple[str, str, str]]:
    """Every code ftprep gives, as `code -> (kind, where, meaning)`: record rejects (`reject`,
    the stage), warnings on kept records (`warning`, the stage), gate problems of a run
    (`gate`, `gate` or `dataset_limits`) and the file problems of `ftprep check` (`check`, its
    level). A code listed twice (`target_retired`: the gate and check) is listed once, as gate."""
    from pipeline.gate import GATE_CODES
    from pipeline.reasons import REASONS, WARNINGS

    codes: dict[str, tuple[str, str, str]] = {}
    for kind, table in (("reject", REASONS), ("warning", WARNINGS), ("gate", GATE_CODES)):
        for code, (where, meaning) in table.items():
            codes.setdefault(code, (kind, where, meaning))
    for code, (level, meaning) in CHECK_CODES.items():
        codes.setdefault(code, ("check", level, meaning))
    return codes


def code_doc(code: str) -> str:
    """The documented meaning of any code `ftprep check` gives (record, warning, file, gate)."""
    from pipeline.gate import GATE_CODES
    from pipeline.reasons import REASONS, WARNINGS

    for table in (CHECK_CODES, REASONS, WARNINGS, GATE_CODES):
        if code in table:
            return table[code][1]
    raise AssertionError(f"code {code!r} is documented nowhere")  # a bug


def check_files(
    patterns: list[str],
    target: str,
    workers: int = 1,
    *,
    allow_retired: bool = False,
    today: dt.date | None = None,
    stream: bool = True,
) -> list[Verdict]:
    """Check every file; an unreadable file gets a verdict too (nothing is raised for it).

    `today` judges the target's retirement (default `pipeline.targets.today()`); `stream=False`
    sends JSONL files through the pipeline's loop too (the streaming path's reference).
    """
    from pipeline import targets
    from pipeline.read import expand_paths

    profile = targets.get_target(target)
    retired = targets.retired_message(profile, today or targets.today())
    first: list[Problem] = []
    if retired is not None:
        if allow_retired:
            first.append(Problem("warning", "target_retired", f"{retired} (--allow-retired)"))
        else:
            first.append(
                Problem("error", "target_retired", f"{retired}; or pass --allow-retired")
            )
    verdicts = []
    for path in expand_paths(patterns, "auto"):
        verdict = _check_one(path, profile, workers, stream)
        if verdict.unreadable is None:
            verdict.problems[:0] = first
        verdicts.append(verdict)
    return verdicts


def _check_one(path: Path, profile: Any, workers: int, stream: bool) -> Verdict:
    from pipeline.read import format_of

    try:
        found = None
        if stream and format_of(path, "auto") == "jsonl":
            found = _check_stream(path, profile)
        if found is None:
            found = _check_inspect(path, profile, workers)
    except PipelineError as exc:
        return Verdict(str(path), unreadable=str(exc))
    if found.records == 0:  # no shape to speak of: say what the file holds instead
        from pipeline.read import empty_file

        found.problems = [p for p in found.problems if p.code != "file_shape"]
        found.problems.insert(0, Problem("error", "file_empty", empty_file(path)))
    return found




# --- what both ways share -----------------------------------------------------------------


@dataclass
class _Lines:
    """Blank lines and exact duplicate lines of a JSONL file, as they are met."""

    blank: list[int] = field(default_factory=list)
    duplicates: list[tuple[int, int]] = field(default_factory=list)  # (line, first line)
    seen: dict[bytes, int] = field(default_factory=dict)

    def add(self, lineno: int, line: bytes) -> None:
        import xxhash

        text = line.rstrip(b"\r\n")
        if not text.strip():
            self.blank.append(lineno)
            return
        key = xxhash.xxh3_128_digest(text)
        first = self.seen.setdefault(key, lineno)
        if first != lineno:
            self.duplicates.append((lineno, first))

    def problems(self) -> list[Problem]:
        out = [
            Problem(
                "warning",
                "file_blank_lines",
                "blank line; some uploaders count it as an invalid example: remove it",
                line,
            )
            for line in self.blank
        ]
        out += [
            Problem(
                "warning",
                "duplicate_line",
                f"the same as line {first}: the example would be trained on twice; remove one",
                line,
            )
            for line, first in self.duplicates
        ]
        return out


def _file_problems(
    path: Path, fmt: str, stats: dict[str, Any], shape: str, profile: Any
) -> list[Problem]:
    out = []
    if fmt != "jsonl":
        out.append(
            Problem(
                "error",
                "file_not_jsonl",
                f"a {fmt} file; fine-tuning services take JSONL, one example per line: "
                f"convert it with `ftprep convert {path} --to chat --out DIR` or `ftprep run`",
            )
        )
    encoding = (stats.get("encoding") or "utf-8").lower().replace("_", "-")
    if fmt == "jsonl" and encoding not in ("utf-8", "ascii"):
        out.append(
            Problem(
                "error",
                "file_not_utf8",
                f"encoded as {stats['encoding']}; the service reads UTF-8: re-encode the file "
                "(`ftprep run` writes UTF-8)",
            )
        )
    if stats.get("bom_removed") and not profile.output.bom:
        out.append(
            Problem(
                "error",
                "file_bom",
                f"starts with a byte-order mark; {profile.name} reads line 1 as invalid JSON: "
                "remove the first 3 bytes (`ftprep run` writes no BOM)",
                1 if fmt == "jsonl" else None,
            )
        )
    elif fmt == "jsonl" and profile.output.bom and not stats.get("bom_removed"):
        out.append(
            Problem(
                "warning",
                "file_bom_missing",
                f"{profile.name}'s documentation asks for UTF-8 with a byte-order mark",
            )
        )
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
    size = path.stat().st_size
    if profile.max_file_bytes and size > profile.max_file_bytes:
        out.append(
            Problem(
                "error",
                "file_too_large",
                f"{size} bytes; {profile.name} takes at most {profile.max_file_bytes} per file: "
                "split it (`ftprep run` writes shards)",
            )
        )
    return out


def _dataset_problems(profile: Any, kept: int) -> list[Problem]:
    """The target's example-count limits, over the records no rule rejected."""
    out = []
    least, most = profile.min_examples, profile.max_examples
    if least is not None and kept < least:
        out.append(
            Problem(
                "error",
                "too_few_examples",
                f"{kept} valid examples; target {profile.name} needs at least {least}: add "
                "examples (OpenAI refuses the job with invalid_n_examples)",
            )
        )
    if most is not None and kept > most:
        out.append(
            Problem(
                "error",
                "too_many_examples",
                f"{kept} valid examples; target {profile.name} accepts at most {most}: sample "
                "or split the file",
            )
        )
    return out


def _assemble(
    path: Path,
    profile: Any,
    records: int,
    file_level: list[Problem],
    record_level: list[Problem],
) -> Verdict:
    """One verdict: file problems, then line and record problems by line (errors first on a
    line), then the dataset's."""
    rejected = len({(p.line, p.record) for p in record_level if p.level == "error"})
    ordered = sorted(record_level, key=lambda p: (p.line or p.record or 0, p.level != "error"))
    problems = file_level + ordered + _dataset_problems(profile, records - rejected)
    return Verdict(str(path), records, problems)


# --- the pipeline's loop (any format) -------------------------------------------------------


def _check_inspect(path: Path, profile: Any, workers: int) -> Verdict:
    """One file's verdict from the stage results of `pipeline.runner.inspect` (in memory)."""
    from dataclasses import replace

    from pipeline.config import parse_config
    from pipeline.runner import inspect

    cfg = parse_config(
        {
            "input": {"paths": [str(path)]},
            "target": profile.name,
            "stages": [
                {"name": "validate_schema", "extra_keys": "reject"},
                {"name": "count_tokens"},
                {"name": "token_limit", "over_limit": "reject"},
            ],
            "gate": {"target_limits": False},
            "runner": {"workers": workers},
        },
        "ftprep check",
    )
    found = inspect(cfg)
    inp = found.inputs[0]
    record_level = list(found.problems)
    if inp.format in RECORD_NUMBERED:  # 0-based indexes: 1-based record numbers
        record_level = [
            replace(p, line=None, record=None if p.line is None else p.line + 1)
            for p in record_level
        ]
    file_level = _file_problems(path, inp.format, inp.stats, inp.mapping["shape"], profile)
    if inp.format == "jsonl":
        record_level += _scan_lines(path, inp.stats).problems()
    elif inp.stats.get("blank_lines"):
        n = inp.stats["blank_lines"]
        file_level.append(
            Problem(
                "warning",
                "file_blank_lines",
                f"{n} blank line(s); some uploaders count them as invalid lines",
            )
        )
    return _assemble(path, profile, found.rows_in, file_level, record_level)


def _scan_lines(path: Path, stats: dict[str, Any]) -> _Lines:
    """The blank and duplicate lines of a JSONL file in its detected encoding."""
    lines = _Lines()
    encoding = stats.get("encoding") or "utf-8"
    with open(path, "rb") as raw:
        if stats.get("bom_removed"):
            raw.read(len(_bom_of(path)))
        if encoding.replace("_", "-").lower() in ("utf-8", "ascii"):
            for lineno, line in enumerate(raw, start=1):
                lines.add(lineno, line)
            return lines
        import io

        text = io.TextIOWrapper(raw, encoding=encoding, newline="\n")
        for lineno, s in enumerate(text, start=1):
            lines.add(lineno, s.encode("utf-8"))
    return lines


def _bom_of(path: Path) -> bytes:
    import codecs

    with open(path, "rb") as f:
        head = f.read(4)
    for bom in (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF8):
        if head.startswith(bom):
            return bom
    for bom in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        if head.startswith(bom):
            return bom
    return b""


# --- the streaming path (UTF-8 JSONL) ---------------------------------------------------------


def _check_stream(path: Path, profile: Any) -> Verdict | None:
    """One UTF-8 JSONL file, line by line, through the same rules; None for another encoding."""
    from pipeline.read.encoding import detect
    from pipeline.read.jsonl import parse_line
    from pipeline.read.mapping import ShapeError, resolve
    from pipeline.stages.validate_schema import Validator, findings, rules_for
    from pipeline.tokens import encoding_of, over_limit_message, record_row

    detected = detect(path)
    if detected.encoding.replace("_", "-").lower() not in ("utf-8", "utf8", "utf-8-sig", "ascii"):
        return None
    keys: dict[str, None] = {}
    sample: list[dict[str, Any]] = []  # the records the column suggestion looks at, as run's
    sampled = 0
    for _lineno, line in _lines(path, detected.bom_len):
        row = parse_line(line, 0)
        if row is None:
            continue
        if row.record is not None:
            keys.update(dict.fromkeys(row.record))
            sample.append(row.record)
        sampled += 1
        if sampled >= SAMPLE_ROWS:
            break
    mapping = resolve(None, list(keys), str(path), sample)
    stats = {"encoding": detected.encoding, "bom_removed": detected.bom_removed}
    file_level = _file_problems(path, "jsonl", stats, mapping.shape, profile)

    validator = Validator(rules_for(profile.name), "reject")
    enc = encoding_of(profile.name, None)
    limit = profile.max_tokens_per_example
    source, kind = str(path), mapping.kind
    lines = _Lines()
    out: list[Problem] = []
    records = 0
    for lineno, line in _lines(path, detected.bom_len):
        lines.add(lineno, line)
        row = parse_line(line, lineno)
        if row is None:
            continue
        records += 1
        if row.reason is not None:
            out.append(Problem("error", row.reason, str(row.message), lineno))
            continue
        assert row.record is not None
        record: dict[str, Any] = {"kind": kind, "_record": row.record, "_source": source}
        try:
            record.update(mapping.apply(row.record))
        except ShapeError as exc:
            message = f"does not fit the {mapping.shape} shape: {exc}"
            out.append(Problem("error", "shape_invalid", message, lineno))
            continue
        found = findings(validator, record)
        if found.reason is not None:
            out += [Problem("error", c, m, lineno, p) for c, m, p in found.problems]
            continue
        if limit is not None:
            counted = record_row(enc, record)
            if counted is not None and counted[0] > limit:
                out.append(
                    Problem("error", "too_many_tokens", over_limit_message(counted[0], limit), lineno)
                )
        out += [Problem("warning", c, m, lineno) for c, m in found.warnings]
    return _assemble(path, profile, records, file_level, out + lines.problems())


def _lines(path: Path, skip: int) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes without the `\\n`) of a UTF-8 file after its BOM, split as the JSONL
    reader splits it (`pipeline.read.jsonl.read_range`), so parser messages are the same."""
    with open(path, "rb") as f:
        f.seek(skip)
        for lineno, line in enumerate(f, start=1):
            yield lineno, line[:-1] if line.endswith(b"\n") else line


def all_codes(verdicts: Iterable[Verdict]) -> list[str]:
    """The codes the verdicts name, sorted."""
    return sorted({p.code for v in verdicts for p in v.problems})
