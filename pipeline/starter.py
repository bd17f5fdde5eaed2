"""`ftprep init SAMPLE`: a starter config written from a look at one sample file.

The sample is read as `ftprep run` reads it (format, encoding, delimiter, sheet, the shape of
its records, whether row 1 is a header); when no shape fits, the prompt and completion columns
are guessed from the column names and contents (`pipeline.read.mapping.guess_columns`: usual
names in many languages, long free text, never a mostly-empty column) and the config says they
are a guess. The stages are the usual preparation for
the target: `convert` to chat joins when the target does not take the sample's kind of record
as it is. The text is checked with the config loader, and its inputs are mapped once more, before
it is returned: a starter config always loads.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from pipeline.config import Config, parse_config
from pipeline.errors import PipelineError

DEFAULT_TARGET = "openai:gpt-4o-mini-2024-07-18"
UTF8 = ("utf-8", "utf8", "ascii", "utf-8-sig")


def _scalar(value: str) -> str:
    """A YAML scalar for a string (quoted when plain YAML would read it otherwise)."""
    text: str = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True)
    return text.strip().removesuffix("...").strip()


def starter_config(sample: str, target: str = DEFAULT_TARGET) -> str:
    """The YAML text of a starter config for `sample` and `target` (PipelineError on problems)."""
    from pipeline.read import detect_format, expand_paths
    from pipeline.read.base import ReadOptions
    from pipeline.read.mapping import guess_columns, resolve
    from pipeline.read.plan import sample_file
    from pipeline.targets import get_target, is_retired, retired_message, today

    profile = get_target(target)
    if is_retired(profile, today()):
        raise PipelineError(f"--target {target}: {retired_message(profile, today())}")
    (path,) = expand_paths([sample], "auto") if Path(sample).is_file() else (None,)
    if path is None:
        raise PipelineError(f"{sample}: not a file; give one sample file of your data")
    fmt, how, format_warning = detect_format(path, "auto")
    keys, stats, rows = sample_file(path, fmt, ReadOptions(), how, format_warning)
    if not keys:
        raise PipelineError(f"{sample}: no records found to look at (is the file empty?)")
    records = [r.record for r in rows if r.record is not None]
    try:
        mapping = resolve(None, keys, str(path))
        columns = None
    except PipelineError:
        prompt, completion = guess_columns(keys, records)
        columns = {"prompt": prompt, "completion": completion}
        mapping = resolve(columns, keys, str(path))

    lines = [
        f"# A starter config for {path.name}, written by `ftprep init`.",
        "# Every key and stage option, with its default: docs/config.md.",
        "# Run it: ftprep run THIS_FILE   (or ftprep run THIS_FILE --input OTHER --out DIR)",
        "input:",
        f"  paths: [{_scalar(str(path))}]",
        f"  format: {fmt}   # {'from the file name' if how == 'extension' else 'from its content'}",
    ]
    encoding = (stats.encoding or "utf-8").lower()
    if encoding not in UTF8:
        confidence = f", confidence {stats.confidence:.2f}" if stats.confidence is not None else ""
        unsure = any(w["code"] == "encoding_uncertain" for w in stats.warnings)
        note = ": a GUESS, check that the text reads right" if unsure else ""
        lines.append(f"  encoding: {_scalar(encoding)}   # detected{confidence}{note}")
    if stats.delimiter and fmt in ("csv", "tsv"):
        lines.append(f"  delimiter: {_scalar(stats.delimiter)}   # detected")
    if stats.header is False:
        lines.append("  header: false   # detected: row 1 is data, columns column_1, column_2 ...")
    elif stats.header_from == "detected" and any(
        w["code"] == "header_guessed" for w in stats.warnings
    ):
        lines.append("  header: true   # row 1 taken as the header: set false if it is data")
    if stats.sheet:
        lines.append(f"  sheet: {_scalar(stats.sheet)}   # the first sheet; name another to read it")
    if columns:
        lines.append(
            "  columns:   # GUESSED from the column names and contents: check them before you run"
        )
        lines += [f"    {k}: {_scalar(v)}" for k, v in columns.items()]
        lines.append(f"  # columns found: {', '.join(str(k) for k in keys)}")
    else:
        lines.append(f"  # recognised shape: {mapping.shape} (no `columns:` needed)")
    lines.append(f"target: {target}")
    kind = mapping.kind
    stages = ["  - name: normalize_text", "  - name: require_fields"]
    if kind not in profile.formats:
        if "chat" in profile.formats and kind != "preference":
            stages.append(f"  - name: convert                # {kind} -> chat, which {target} takes")
            stages.append("    to: chat")
            if kind == "kto":  # the only way to chat; the choice stays visible in the config
                stages.append(
                    "    kto: desirable       # keep the desirable examples; undesirable ones "
                    "are rejected (kto_undesirable)"
                )
        else:
            lines.append(
                f"# {target} takes {', '.join(profile.formats)}, not {kind} records: choose "
                "a target that does (ftprep targets)"
            )
    stages += [
        "  - name: validate_schema",
        "  - name: count_tokens",
        "  - name: token_limit",
        "    over_limit: reject             # never let the service cut an example silently",
        "  - name: dedupe",
        "  - name: split                    # 80/20 train/validation, seeded",
        "  - name: dataset_limits           # the target's example counts, file size and cost",
    ]
    lines += ["stages:", *stages]
    lines += ["output:", f"  dir: {_scalar('out/' + path.stem)}"]
    text = "\n".join(lines) + "\n"
    cfg = parse_config(yaml.safe_load(text), "ftprep init")
    _check_inputs(cfg)
    return text


def _check_inputs(cfg: Config) -> None:
    """Map the inputs as a run would: the starter config must get past reading."""
    from pipeline.read.plan import plan_inputs

    plan_inputs(cfg)
