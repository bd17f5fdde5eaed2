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
holds both to the same problems on the same files, in every output format.

The streaming path tokenises only what the token limit needs: a token is at least one byte, so
a record whose count with every text taken as its UTF-8 byte length (`_Utf8Bound`) is within
the limit is within it by the real count; only the others are counted, and a record over the
limit is reported with its real count (check reports no token totals, only, in the verdict's
`images_at_minimum`, how many images of those examples count at their documented minimum: their
counts are then a lower bound, and `ftprep check` warns once). A large file is cut
into byte ranges at line starts and checked by forked processes (`auto_workers`), merged in
file order (docs/performance.md).

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
# The output shape `ftprep convert --to` writes for each profile format (TRL's own names for
# a TRL profile); formats without one (alpaca, sharegpt, rft) get no suggestion.
CONVERT_TO = {
    "chat": "chat",
    "prompt_completion": "prompt_completion",
    "vertex": "vertex",
    "bedrock_conversation": "bedrock",
    "preference": "preference",
}
_TRL_CONVERT_TO = {
    "chat": "trl_conversational",
    "prompt_completion": "trl_prompt_completion",
    "preference": "trl_preference",
}
# The record kinds each output shape takes as they are (`pipeline.shapes.to_shape`).
_SHAPE_KINDS = {
    "chat": ("chat", "prompt_completion"),
    "vertex": ("chat", "prompt_completion"),
    "bedrock": ("chat", "prompt_completion"),
    "trl_conversational": ("chat", "prompt_completion"),
    "prompt_completion": ("prompt_completion", "chat"),
    "trl_prompt_completion": ("prompt_completion", "chat"),
    "preference": ("preference",),
    "trl_preference": ("preference",),
}
# A loss the user can choose, per record kind: the option that turns it into chat.
_CHOSEN_LOSS = {"preference": "--preference chosen", "kto": "--kto desirable"}
_FORMAT_HINT = {
    "vertex": " (a Vertex Gemini line is {contents: [{role: user|model, parts: [{text: ...}]}], "
    "systemInstruction?})",
    "bedrock_conversation": ' (a Bedrock line is {schemaVersion: "bedrock-conversation-2024", '
    "system?: [{text}], messages: [{role, content: [{text}]}]})",
}


def accepted_shapes(profile: Any) -> set[str]:
    """The recognised file shapes the profile takes as they are."""
    out: set[str] = set()
    for f in profile.formats:
        if f == "preference":  # TRL names its columns prompt/chosen/rejected, OpenAI input/...
            trl = "prompt" in (profile.top_level_keys(f) or ())
            out.add("trl_preference" if trl else "preference")
        else:
            out |= SHAPES_FOR_FORMAT.get(f, set())
    return out


def conversion_for(shape: str, profile: Any) -> str | None:
    """The `ftprep convert` options (`--to X ...`) that turn records of `shape` into what the
    profile takes, or None when no conversion does."""
    from pipeline.shape_detect import KIND_OF

    kind = KIND_OF.get(shape, "prompt_completion")
    table = _TRL_CONVERT_TO if profile.provider == "trl" else {}
    outs = [o for o in (table.get(f, CONVERT_TO.get(f)) for f in profile.formats) if o]
    for to in outs:  # a shape that holds the records whole
        if kind in _SHAPE_KINDS[to]:
            return f"--to {to}"
    if kind in _CHOSEN_LOSS:  # a chat shape, losing what the user chooses to lose
        for to in outs:
            if "chat" in _SHAPE_KINDS[to] and to not in ("prompt_completion", "trl_prompt_completion"):
                return f"--to {to} {_CHOSEN_LOSS[kind]}"
    return None
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
    workers: int | None = None,
    *,
    allow_retired: bool = False,
    today: dt.date | None = None,
    stream: bool = True,
) -> list[Verdict]:
    """Check every file; an unreadable file gets a verdict too (nothing is raised for it).

    `workers`: processes per file; None (the default) takes 2 for a UTF-8 JSONL file of
    `PARALLEL_MIN_BYTES` or more on a machine with 2 cores (`auto_workers`), else 1. `today`
    judges the target's retirement (default `pipeline.targets.today()`); `stream=False` sends
    JSONL files through the pipeline's loop too (the streaming path's reference).
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


def _check_one(path: Path, profile: Any, workers: int | None, stream: bool) -> Verdict:
    from pipeline.read import format_of

    try:
        found = None
        if stream and format_of(path, "auto") == "jsonl":
            found = _check_stream(path, profile, workers)
        if found is None:
            found = _check_inspect(path, profile, 1 if workers is None else workers)
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
    accepted = accepted_shapes(profile)
    if accepted and shape not in accepted:
        how = conversion_for(shape, profile)
        hint = next((_FORMAT_HINT[f] for f in profile.formats if f in _FORMAT_HINT), "")
        fix = (
            f"convert with `ftprep convert {path} {how} --target {profile.name} --out DIR`"
            if how
            else "ftprep has no conversion to it: choose a target that takes this shape"
        )
        out.append(
            Problem(
                "error",
                "file_shape",
                f"records are in the {shape} shape; {profile.name} takes "
                f"{', '.join(profile.formats)}{hint}: {fix}",
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
    from pipeline.read.base import RECORD_NUMBERED
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
    found = inspect(cfg, log_warnings=False)
    inp = found.inputs[0]
    record_level = list(found.problems)
    if inp.format in RECORD_NUMBERED:  # the run's 1-based record numbers, labelled so
        record_level = [replace(p, line=None, record=p.line) for p in record_level]
    file_level = _file_problems(path, inp.format, inp.stats, inp.mapping["shape"], profile)
    # the reader's file-level warnings (format_from_content, header_guessed, header_mismatch,
    # encoding_uncertain) are part of the verdict, as they are of a run's report
    file_level += [Problem("warning", w["code"], w["message"]) for w in inp.stats["warnings"]]
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
    verdict = _assemble(path, profile, found.rows_in, file_level, record_level)
    if profile.max_tokens_per_example is not None:  # as the streaming path: the limit's counts
        verdict.images_at_minimum = found.images_at_minimum
    return verdict


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

PARALLEL_MIN_BYTES = 8_000_000  # a JSONL file at least this large is checked by 2 processes
_START_METHOD = "fork"  # the children inherit the loaded rules; nothing is imported again


def auto_workers(path: Path) -> int:
    """Processes for streaming `path` when `--workers` is not given: 2 for a file of
    `PARALLEL_MIN_BYTES` or more on Linux with 2 cores or more, else 1."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if (cores or 1) < 2 or not _can_fork():
        return 1
    return 2 if path.stat().st_size >= PARALLEL_MIN_BYTES else 1


def _can_fork() -> bool:
    """`fork` where it is safe: Linux (macOS offers it, but system libraries may break in the
    child; Windows has none). Elsewhere a file is checked in one process."""
    import multiprocessing as mp
    import sys

    return sys.platform.startswith("linux") and _START_METHOD in mp.get_all_start_methods()


class _Utf8Bound:
    """Stands in for a tiktoken encoding in `pipeline.tokens.record_row`: each text "encodes"
    to one token per UTF-8 byte. A token is never shorter than one byte, so the total this
    gives is never below the real count: a record within the limit by this bound is within it
    by the real count, and only the others are tokenised. A lone surrogate counts 3 bytes, as
    the U+FFFD tiktoken encodes instead."""

    name = "utf-8 bytes (an upper bound)"

    @staticmethod
    def encode_ordinary(text: str) -> range:
        if text.isascii():  # O(1) in CPython
            return range(len(text))
        return range(len(text.encode("utf-8", "surrogatepass")))


_UTF8_BOUND: Any = _Utf8Bound()


@dataclass(frozen=True)
class _Job:
    """What a process needs to check one byte range of a file (inherited by `fork`)."""

    path: Path
    skip: int  # the BOM's length
    target: str
    mapping: Any  # pipeline.read.mapping.Mapping
    limit: int | None  # the target's tokens per example


@dataclass
class _Part:
    """The findings of one byte range, merged in file order by `_merged`."""

    records: int
    problems: list[Problem]
    lines: _Lines
    images: int = 0  # images counted at the documented minimum (`m_images_unsized`)


def _check_stream(path: Path, profile: Any, workers: int | None = None) -> Verdict | None:
    """One UTF-8 JSONL file, line by line, through the same rules; None for another encoding.

    With more than one worker the file is cut into byte ranges at line starts, one per process
    (this one takes the first); the findings are merged in file order, so the verdict is the
    one a single process gives.
    """
    from pipeline.read.encoding import detect
    from pipeline.read.jsonl import parse_line
    from pipeline.read.mapping import resolve
    from pipeline.tokens import resolve_encoding

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
    resolve_encoding(profile.name, None)  # a target without an encoding fails here, as before
    job = _Job(path, detected.bom_len, profile.name, mapping, profile.max_tokens_per_example)
    n = auto_workers(path) if workers is None else max(1, workers) if _can_fork() else 1
    parts = _in_processes(job, _ranges(path, detected.bom_len, n))
    records, problems, lines = _merged(parts)
    verdict = _assemble(path, profile, records, file_level, problems + lines.problems())
    verdict.images_at_minimum = sum(part.images for part in parts)
    return verdict


def _check_range(job: _Job, start: int, stop: int) -> _Part:
    """The line and record problems of the lines in bytes [start, stop) of `job.path`."""
    from pipeline.read.jsonl import parse_line
    from pipeline.read.mapping import ShapeError
    from pipeline.stages.validate_schema import Validator, findings, rules_for
    from pipeline.tokens import COLUMNS, encoding_of, model_costs, over_limit_message, record_row

    validator = Validator(rules_for(job.target), "reject")
    limit, mapping = job.limit, job.mapping
    costs = model_costs(job.target)
    unsized = COLUMNS.index("m_images_unsized")  # the same in any encoding
    source, kind = str(job.path), mapping.kind
    lines = _Lines()
    out: list[Problem] = []
    records = images = 0
    first = _line_at(job.path, job.skip, start)
    for lineno, line in _lines(job.path, start, stop, first):
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
            bound = record_row(_UTF8_BOUND, record, costs)
            images += 0 if bound is None else bound[unsized]
            if bound is not None and bound[0] > limit:  # may be over: count the real tokens
                counted = record_row(encoding_of(job.target, None), record, costs)
                if counted is not None and counted[0] > limit:
                    message = over_limit_message(counted[0], limit)
                    out.append(Problem("error", "too_many_tokens", message, lineno))
        out += [Problem("warning", c, m, lineno) for c, m in found.warnings]
    return _Part(records, out, lines, images)


def _ranges(path: Path, skip: int, parts: int) -> list[tuple[int, int]]:
    """`parts` byte ranges (fewer for a short file) covering the file after its BOM, each
    starting at the start of a line."""
    size = path.stat().st_size
    bounds = [skip]
    with open(path, "rb") as f:
        for k in range(1, parts):
            at = skip + (size - skip) * k // parts
            if at <= bounds[-1]:
                continue
            f.seek(at - 1)
            f.readline()  # to the end of the line that holds byte at - 1
            if f.tell() >= size:
                break
            if f.tell() > bounds[-1]:
                bounds.append(f.tell())
    bounds.append(size)
    from itertools import pairwise

    return list(pairwise(bounds))


def _line_at(path: Path, skip: int, offset: int) -> int:
    """The line number of the line starting at byte `offset` (after a BOM of `skip` bytes)."""
    newlines = 0
    with open(path, "rb") as f:
        f.seek(skip)
        left = offset - skip
        while left > 0:
            block = f.read(min(left, 1 << 24))
            if not block:
                break
            newlines += block.count(b"\n")
            left -= len(block)
    return newlines + 1


def _in_processes(job: _Job, ranges: list[tuple[int, int]]) -> list[_Part]:
    """`_check_range` of each range, in order: the first here, each other in a forked child
    (started with signals held, so a Ctrl-C stops this process alone and the children with it)."""
    if len(ranges) <= 1:
        return [_check_range(job, *r) for r in ranges] or [_Part(0, [], _Lines())]
    import multiprocessing as mp

    from pipeline import signals

    ctx: Any = mp.get_context(_START_METHOD)  # a ForkContext, which has Process
    children = []
    try:
        for start, stop in ranges[1:]:
            receive, send = ctx.Pipe(duplex=False)
            child = ctx.Process(target=_child, args=(job, start, stop, send), daemon=True)
            with signals.held():
                child.start()
            send.close()
            children.append((child, receive))
        parts = [_check_range(job, *ranges[0])]
        for child, receive in children:
            try:
                status, value = receive.recv()
            except EOFError:
                child.join()
                raise RuntimeError(
                    f"a process checking {job.path} ended without a result (exit code "
                    f"{child.exitcode})"
                ) from None
            if status == "error":
                raise value
            parts.append(value)
        return parts
    finally:
        for child, receive in children:
            receive.close()
            if child.is_alive():
                child.terminate()
            child.join()


def _child(job: _Job, start: int, stop: int, send: Any) -> None:
    """A child's work: one range's findings, or its exception, sent back through `send`."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops for Ctrl-C, and ends us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        result: tuple[str, Any] = ("ok", _check_range(job, start, stop))
    except Exception as exc:  # raised again in the parent
        result = ("error", exc)
    send.send(result)
    send.close()


def _merged(parts: list[_Part]) -> tuple[int, list[Problem], _Lines]:
    """The parts of one file as one: a line equal to a line of an earlier part is that
    line's duplicate, as a single pass over the file would find."""
    lines = _Lines()
    problems: list[Problem] = []
    records = 0
    for part in parts:
        records += part.records
        problems += part.problems
        lines.blank += part.lines.blank
        earlier: dict[int, int] = {}  # first line in this part -> first line in the file
        for key, first in part.lines.seen.items():
            was = lines.seen.setdefault(key, first)
            if was != first:
                earlier[first] = was
                lines.duplicates.append((first, was))
        lines.duplicates += [(n, earlier.get(f, f)) for n, f in part.lines.duplicates]
    lines.duplicates.sort()
    return records, problems, lines


def _lines(
    path: Path, start: int, stop: int | None = None, first: int = 1
) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes without the `\\n`) of the lines in bytes [start, stop) of a UTF-8
    file, split as the JSONL reader splits them (`pipeline.read.jsonl.read_range`), so parser
    messages are the same. `start` is past the BOM, at a line start; `first` its line number."""
    with open(path, "rb") as f:
        f.seek(start)
        left = -1 if stop is None else stop - start
        for lineno, line in enumerate(f, start=first):
            if left == 0:
                return
            left -= len(line)
            yield lineno, line[:-1] if line.endswith(b"\n") else line


def all_codes(verdicts: Iterable[Verdict]) -> list[str]:
    """The codes the verdicts name, sorted."""
    return sorted({p.code for v in verdicts for p in v.problems})
