"""Command line: a thin click layer over the library.

Exit codes: 0 clean, 1 the gate failed, 2 usage, config or unreadable input (or outputs that
could not be written), 130 stopped by SIGINT (Ctrl-C), 143 stopped by SIGTERM. A
`PipelineError` or a signal is printed as one line naming the file, line or key and what to
change; no traceback.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from pipeline.errors import Interrupted, PipelineError
from pipeline.shapes import SHAPES

F = TypeVar("F", bound=Callable[..., Any])


def _friendly(fn: F) -> F:
    """One line and an exit code for a user mistake or a signal, never a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pipeline.signals import installed

        try:
            with installed():
                return fn(*args, **kwargs)
        except PipelineError as exc:
            click.echo(f"ftprep: error: {' '.join(str(exc).split())}", err=True)  # one line
            sys.exit(exc.exit_code)
        except KeyboardInterrupt as exc:
            signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
            name = signal.Signals(signum).name
            click.echo(
                f"ftprep: stopped by {name}: temporary files removed, no partial output "
                "written (the folder holds the previous outputs, or this run's if they were "
                "already being put in place)",
                err=True,
            )
            sys.exit(128 + signum)

    return wrapper  # type: ignore[return-value]


def _setup_logging(quiet: bool) -> None:
    """ftprep's own progress lines on stderr; libraries' logs only from warnings up (Great
    Expectations logs its set-up at info level)."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("ftprep").setLevel(logging.WARNING if quiet else logging.INFO)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="ftprep")
def main() -> None:
    """ftprep: prepare, convert and gate LLM fine-tuning data."""


def entry() -> None:
    """The `ftprep` command: `main` in a process of ftprep's own, whose garbage collector it
    tunes (`fewer_collections`; `main` called from Python leaves the caller's alone)."""
    from pipeline.engine import fewer_collections

    fewer_collections()
    main()


def _shipped_configs() -> str:
    """The `run --help` epilog: the shipped configs, by name."""
    from pipeline import shipped

    try:
        names = shipped.names("configs")
    except PipelineError as exc:  # a broken install: say so where the names would be
        return str(exc)
    example = "openai_chat" if "openai_chat" in names else (names or ["NAME"])[0]
    return (
        "CONFIG is a config file, or the name of a shipped config when no file of that name "
        f"exists: {', '.join(names)}. Example: ftprep run {example} "
        "--input data.csv --out out/"
    )


class _RunCommand(click.Command):
    """`run`, whose help ends with the shipped configs (listed when help is asked for, so
    that importing the CLI reads no package data)."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.epilog = _shipped_configs()
        super().format_epilog(ctx, formatter)


@main.command(cls=_RunCommand, short_help="Prepare training files: read, run a config's stages, write, report.")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option(
    "--input",
    "inputs",
    multiple=True,
    metavar="PATH",
    help="Input file, glob or directory; repeatable; replaces input.paths.",
)
@click.option("--out", metavar="DIR", help="Output directory; replaces output.dir.")
@click.option(
    "--columns",
    metavar="FIELD=COLUMN,...",
    help="Which column is which, e.g. prompt=question,completion=answer; replaces "
    "input.columns.",
)
@click.option("--workers", type=int, metavar="N", help="Worker processes (default: one per core).")
@click.option(
    "--engine",
    type=click.Choice(["local", "dask"]),
    default="local",
    show_default=True,
    help="Where units run: local processes, or a Dask cluster (pip install 'ftprep[dask]').",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="With --engine dask: the scheduler, e.g. tcp://HOST:8786 (default: a LocalCluster).",
)
@click.option("--quiet", is_flag=True, help="Print only warnings and errors.")
@_friendly
def run(
    config: str,
    inputs: tuple[str, ...],
    out: str | None,
    columns: str | None,
    workers: int | None,
    engine: str,
    scheduler: str | None,
    quiet: bool,
) -> None:
    """Run the pipeline of CONFIG (a file, or a shipped config's name): read, run the stages,
    write outputs and a report.

    \b
    Example: ftprep run openai_chat --input data/faq.csv --out out/faq
    """
    from pipeline.config import load_config, token_setting, with_overrides
    from pipeline.engine import get_engine

    _setup_logging(quiet)
    if scheduler is not None and engine != "dask":
        raise click.UsageError("--scheduler goes with --engine dask")
    cfg = with_overrides(load_config(config), inputs, out, workers, columns)
    chosen = get_engine(cfg.runner.workers, engine, scheduler) if engine == "dask" else None
    if chosen is None:  # the pool's forkserver imports while this process does (below)
        from pipeline.engine.local import prestart
        from pipeline.tokens import KNOWN_ENCODINGS

        encoding, _ = token_setting(cfg)  # what the report will say the counts use
        prestart(cfg.runner.workers, [encoding] if encoding in KNOWN_ENCODINGS else [])
    from pipeline.gate import exit_code
    from pipeline.runner import run as run_pipeline

    started = time.monotonic()
    result = run_pipeline(cfg, engine=chosen, progress=not quiet and sys.stderr.isatty())
    seconds = time.monotonic() - started
    if not quiet:
        _print_run(result.report, result.files, seconds)
    code = exit_code([result.verdict])
    _print_verdict(result.report["gate"], code)
    if code:
        sys.exit(code)


def _counts(counts: dict[str, int], most: int = 8) -> str:
    """`code N, code N, ... and K more codes`, largest first."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    text = ", ".join(f"{code} {n}" for code, n in ranked[:most])
    if len(ranked) > most:
        text += f" and {len(ranked) - most} more codes"
    return text


def _print_run(report: dict[str, Any], files: list[Any], seconds: float) -> None:
    """What a run did, for people: totals, reasons and warnings by code, cost, files, time.
    The run time is printed, never written to report.json (byte-identical reruns)."""
    t = report["totals"]
    click.echo(
        f"{t['rows_in']} records in: {t['train']} train, {t['validation']} validation, "
        f"{t['rejected']} rejected"
    )
    rejected = {code: r["count"] for code, r in report["rejected_by_reason"].items()}
    if rejected:
        click.echo(f"rejected by reason: {_counts(rejected)}")
    warnings = {code: w["count"] for code, w in report["warnings"].items()}
    if warnings:
        click.echo(
            f"warnings on kept records: {_counts(warnings)} (report.md lists where; the records "
            "are in the output)"
        )
        from pipeline.report.markdown import input_order

        order = input_order(report)
        for code in sorted(warnings, key=lambda c: (-warnings[c], c))[:8]:
            click.echo(f"  {code}, e.g. {_example(report['warnings'][code], order)}")
    tokens = report.get("tokens") or {}
    if tokens.get("lower_bound"):  # said once per run, not per record
        click.echo(lower_bound_warning(tokens["images_at_minimum"], "token totals and cost"))
    limits = report.get("dataset", {}).get("dataset_limits")
    if limits and limits.get("cost_usd") is not None:
        click.echo(
            f"estimated training cost: ${limits['cost_usd']:.2f} "
            f"({limits['epochs']} epochs x {limits['billed_tokens_per_epoch']} tokens, "
            f"price of {limits['price_date']})"
        )
    out_dir = files[0].parent if files else None
    click.echo(f"outputs in {out_dir}/:" if out_dir else "outputs:")
    for path in files:
        click.echo(f"  {path}")
    click.echo(f"took {seconds:.1f} s")
    html = [p for p in files if p.name == "report.html"]
    if html:
        click.echo(f"report: {html[0]}")


def lower_bound_warning(images: int, what: str) -> str:
    """The one warning of a run or a check whose token counts are a lower bound."""
    return (
        f"warning: {images} image(s) count at the documented minimum (given by URL and not "
        f"fetched, or on a target whose per-image figure is a minimum): {what} are a lower "
        "bound (docs/tokens.md)"
    )


def _example(entry: dict[str, Any], order: list[str]) -> str:
    """`SOURCE:LINE: message` (`SOURCE: record N: message` for a JSON array or Parquet input)
    of a code's first record in a report (the message cut short)."""
    from pipeline.records import where as location
    from pipeline.report.markdown import located

    where = ""
    for source, numbers, by_record in located(
        entry.get("first_lines"), entry.get("first_records"), order
    ):
        if numbers:
            where = f"{location(source, numbers[0], by_record)}: "
            break
    message = str(entry.get("message") or "")
    return where + (message if len(message) <= 160 else message[:157] + "...")


def _print_verdict(gate: dict[str, Any], code: int) -> None:
    """The verdict and its reasons, last: on stdout when it passes, on stderr when it fails."""
    sys.stdout.flush()
    warned = len(gate.get("warnings") or ())
    if not code:
        note = f" with {warned} gate warning{'s' * (warned != 1)}" if warned else ""
        for w in gate.get("warnings") or ():
            click.echo(f"gate warning: {w['code']}: {w['message']}", err=True)
        click.echo(f"gate passed{note} (exit 0)")
        return
    for w in gate.get("warnings") or ():
        click.echo(f"gate warning: {w['code']}: {w['message']}", err=True)
    click.echo(f"ftprep: gate failed (exit {code}):", err=True)
    for reason in gate.get("reasons") or ():
        click.echo(f"  {reason['code']}: {reason['message']}", err=True)


@main.command(short_help="Convert files to another shape (chat, Vertex, Bedrock, TRL...).")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option(
    "--to",
    "to",
    required=True,
    type=click.Choice(SHAPES),
    help="Output shape.",
)
@click.option("--out", required=True, metavar="DIR", help="Output directory.")
@click.option("--system", metavar="TEXT", help="System message for chat records that have none.")
@click.option(
    "--preference",
    type=click.Choice(["reject", "chosen"]),
    default="reject",
    show_default=True,
    help="Preference pairs to a shape without a rejected answer: reject them, or keep the "
    "chosen answer (the rejected one is left out and counted).",
)
@click.option(
    "--kto",
    type=click.Choice(["reject", "desirable"]),
    default="reject",
    show_default=True,
    help="KTO examples to a shape without labels: reject them, or keep only the desirable "
    "ones (undesirable ones are left out and counted).",
)
@click.option(
    "--separator",
    default="auto",
    metavar="TEXT",
    help="Legacy prompt separator to remove (default: auto; 'none' removes nothing).",
)
@click.option(
    "--stop",
    default="auto",
    metavar="TEXT",
    help="Legacy completion stop sequence to remove (default: auto; 'none' removes nothing).",
)
@click.option(
    "--columns",
    metavar="FIELD=COLUMN,...",
    help="Which column is which in every input, e.g. prompt=question,completion=answer "
    "(default: each file's shape is recognised on its own).",
)
@click.option(
    "--target",
    metavar="T",
    help="Validate what is written against target T (default: the rules of the output shape).",
)
@click.option(
    "--encoding",
    metavar="NAME",
    help="Text encoding of every input, e.g. cp1252 or gbk (default: detected per file).",
)
@click.option(
    "--header",
    type=click.Choice(["auto", "true", "false"]),
    default="auto",
    show_default=True,
    help="Whether row 1 of a CSV/TSV/spreadsheet input is its header (auto: detected).",
)
@click.option("--workers", type=int, default=1, metavar="N", help="Worker processes per file.")
@click.option("--quiet", is_flag=True, help="Print only the summary line and errors.")
@_friendly
def convert(
    inputs: tuple[str, ...],
    to: str,
    out: str,
    system: str | None,
    preference: str,
    kto: str,
    separator: str,
    stop: str,
    columns: str | None,
    target: str | None,
    encoding: str | None,
    header: str,
    workers: int,
    quiet: bool,
) -> None:
    """Convert INPUT files (paths, globs, directories) to another shape, one output each.

    Records with empty required fields, and records the output shape's rules refuse, are
    rejected with their reasons, so what is written passes `ftprep check`. Nothing is dropped
    silently: a record the output shape cannot hold whole is rejected (`conversion_lossy`,
    naming the field) unless --preference chosen or --kto desirable chose the loss (counted in
    the summary). Exits 0 only when nothing was dropped but what those options chose, 1 when
    any record was rejected (see the *.rejected.jsonl files), 2 when an input could not be read
    or mapped (the others are still converted).

    \b
    Example: ftprep convert 'legacy/**/*.jsonl' --to chat --out converted/
    """
    from pathlib import Path

    from pipeline.config import parse_columns
    from pipeline.conversion import convert_files, summary_table

    _setup_logging(True)
    if encoding is not None:
        import codecs

        try:
            codecs.lookup(encoding)
        except LookupError:
            raise click.BadParameter(
                f"{encoding!r} is not a known text encoding; use a Python codec name such as "
                "utf-8, gbk, gb18030, cp1252 or latin-1",
                param_hint="--encoding",
            ) from None
    summaries = convert_files(
        list(inputs),
        to,
        Path(out),
        system=system,
        preference=preference,
        kto=kto,
        separator=None if separator == "none" else separator,
        stop=None if stop == "none" else stop,
        columns=parse_columns(columns) if columns is not None else None,
        target=target,
        encoding=encoding,
        header="auto" if header == "auto" else header == "true",
        workers=workers,
    )
    table = summary_table(summaries)
    click.echo(table.splitlines()[-1] if quiet else table)
    if any(s.error for s in summaries):
        for s in summaries:
            if s.error:
                click.echo(f"ftprep: error: {s.error}", err=True)
        sys.exit(2)
    if any(s.rejected > s.chosen for s in summaries):
        sys.exit(1)


@main.command(short_help="List the target profiles, or show one.")
@click.argument("name", required=False)
@_friendly
def targets(name: str | None) -> None:
    """List the target profiles, or show one (NAME, e.g. openai:gpt-4o-mini-2024-07-18).

    \b
    Example: ftprep targets vertex:gemini
    """
    import dataclasses

    from pipeline.targets import ENV_DIR, get_target, load_profiles, origins

    if name:
        profile = get_target(name)
        for f in dataclasses.fields(profile):
            for line in _readable(f.name, getattr(profile, f.name)):
                click.echo(line)
        return
    profiles = load_profiles()
    rows = [("name", "formats", "max tokens", "over limit", "tokenizer", "training stops")]
    for p in sorted(profiles.values(), key=lambda p: p.name):
        stop = p.shutdown.training_shutdown
        rows.append(
            (
                p.name,
                ",".join(p.formats),
                str(p.max_tokens_per_example or "-"),
                p.over_limit or "-",
                p.tokenizer or "-",
                stop.isoformat() if stop else "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    for directory, names in _by_origin(origins()).items():
        click.echo(f"from {ENV_DIR} ({directory}): {', '.join(names)}")


def _readable(key: str, value: Any, indent: str = "") -> list[str]:
    """`key: value` as a person reads it: dates as dates, lists joined, mappings indented,
    null as `-`, long texts on their own lines."""
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if hasattr(value, "items"):
        lines = [f"{indent}{key}:"]
        for k, v in value.items():
            lines += _readable(str(k), v, indent + "  ")
        return lines if len(lines) > 1 else [f"{indent}{key}: -"]
    if isinstance(value, tuple | list):
        items = [_scalar_text(v) for v in value]
        if sum(len(s) for s in items) > 80:
            return [f"{indent}{key}:", *(f"{indent}  - {s}" for s in items)]
        return [f"{indent}{key}: {', '.join(items) or '-'}"]
    if isinstance(value, str) and len(value) > 80:
        import textwrap

        wrapped = textwrap.wrap(value, 96 - len(indent))
        return [f"{indent}{key}:", *(f"{indent}  {w}" for w in wrapped)]
    return [f"{indent}{key}: {_scalar_text(value)}"]


def _scalar_text(value: Any) -> str:
    import datetime as dt

    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, str) and not value.isprintable():  # a newline, a tab: show it escaped
        import json

        return json.dumps(value)
    return str(value)


def _by_origin(found: dict[str, str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, directory in sorted(found.items()):
        grouped.setdefault(directory, []).append(name)
    return grouped


@main.command(short_help="Gate files before upload (text, JSON, GitHub, JUnit, SARIF).")
@click.argument("inputs", nargs=-1, required=True, metavar="FILE...")
@click.option("--target", required=True, metavar="T", help="Target profile (ftprep targets).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "github", "junit", "sarif"]),
    default=None,
    help="Output format (default: text): json (pipeline/check.schema.json), github (workflow "
    "annotations), junit (XML test results), sarif (SARIF 2.1.0 for code scanning).",
)
@click.option("--json", "as_json", is_flag=True, help="The same as --format json.")
@click.option(
    "--max-errors",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="List at most N problems per code (counts stay exact); 0 lists all. Default: 20 in "
    "text, all in the other formats.",
)
@click.option("--strict", is_flag=True, help="Warnings fail the check too.")
@click.option(
    "--allow-retired",
    is_flag=True,
    help="Let a target that takes no new fine-tuning jobs pass with a warning.",
)
@click.option(
    "--summary",
    metavar="FILE",
    help="Also append a Markdown summary to FILE (e.g. $GITHUB_STEP_SUMMARY).",
)
@click.option(
    "--workers",
    type=int,
    default=None,
    metavar="N",
    help="Processes per file. Default: 2 for a UTF-8 JSONL file of 8 MB or more on a machine "
    "with 2 or more cores, else 1.",
)
@_friendly
def check(
    inputs: tuple[str, ...],
    target: str,
    fmt: str | None,
    as_json: bool,
    max_errors: int | None,
    strict: bool,
    allow_retired: bool,
    summary: str | None,
    workers: int | None,
) -> None:
    """Gate FILE... (paths, globs, directories) before upload to target T.

    Prints every problem with file, line, JSON path and code; exits 0 when no file has an
    error (warnings allowed unless --strict), 1 when one would be refused or damaged by the
    target, 2 on a usage error or a file that cannot be read.

    Example: ftprep check data/*.jsonl --target openai:gpt-4o-mini-2024-07-18 --format github
    """
    from pipeline.check_output import render, use_color
    from pipeline.checks import check_files
    from pipeline.gate import exit_code

    if as_json and fmt not in (None, "json"):
        raise click.UsageError(f"--json and --format {fmt} contradict each other; use one")
    fmt = "json" if as_json else fmt or "text"
    _setup_logging(True)
    verdicts = check_files(list(inputs), target, workers, allow_retired=allow_retired)
    images = sum(v.images_at_minimum for v in verdicts)
    if images:  # said once per check, not per file or record
        click.echo(lower_bound_warning(images, "the token counts held to the limit"), err=True)
    color = fmt == "text" and use_color(sys.stdout)
    click.echo(
        render(fmt, verdicts, target, strict=strict, max_errors=max_errors, color=color),
        color=color,
    )
    if summary:
        from pipeline.check_output import format_markdown

        most = 20 if max_errors is None else max_errors
        try:
            with open(summary, "a", encoding="utf-8") as f:
                f.write(format_markdown(verdicts, target, strict=strict, max_errors=most))
        except OSError as exc:
            raise PipelineError(f"--summary {summary}: cannot write ({exc.strerror})") from None
    code = exit_code(verdicts, strict)
    if code:
        sys.exit(code)


@main.command(short_help="Write a starter config for a sample of your data.")
@click.argument("sample", type=click.Path(dir_okay=False))
@click.option(
    "--target",
    default="openai:gpt-4o-mini-2024-07-18",
    show_default=True,
    metavar="T",
    help="Target profile (ftprep targets).",
)
@click.option(
    "--out",
    "out",
    default="ftprep.yaml",
    show_default=True,
    metavar="FILE",
    help="Where to write the config; - prints it.",
)
@click.option("--force", is_flag=True, help="Replace FILE when it exists.")
@_friendly
def init(sample: str, target: str, out: str, force: bool) -> None:
    """Write a starter config for SAMPLE: its format, encoding, column mapping and the usual
    stages for target T, with comments. The config is loaded and the sample mapped with it
    before it is written.

    \b
    Example: ftprep init data/faq.csv --target together --out faq.yaml
    """
    from pathlib import Path

    from pipeline.starter import starter_config

    text = starter_config(sample, target)
    if out == "-":
        click.echo(text, nl=False)
        return
    path = Path(out)
    if path.exists() and not force:
        raise PipelineError(f"{out}: already exists; choose another --out or add --force")
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise PipelineError(f"{out}: cannot write the config ({exc.strerror})") from None
    guessed = "GUESSED" in text
    click.echo(f"wrote {out}" + (": check the guessed columns in it" if guessed else ""))
    click.echo(f"next: ftprep run {out}")


@main.command(short_help="List every reason, warning and gate code, or explain one.")
@click.argument("code", required=False)
@_friendly
def reasons(code: str | None) -> None:
    """List every code ftprep gives (rejects, warnings, check and gate problems) with its
    meaning, or explain one CODE.

    \b
    Example: ftprep reasons top_level_key_unknown
    """
    import difflib

    from pipeline.checks import code_table

    codes = code_table()
    if code:
        if code not in codes:
            close = difflib.get_close_matches(code, list(codes), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise PipelineError(f"unknown code '{code}'{hint} (ftprep reasons lists them all)")
        kind, where, meaning = codes[code]
        click.echo(f"{code} ({kind}, {where})")
        click.echo(meaning)
        return
    width = max(len(c) for c in codes)
    for name, (kind, where, meaning) in codes.items():
        first = meaning.split(". ")[0].rstrip(".")
        click.echo(f"{name.ljust(width)}  {kind:<7}  {where:<16}  {first}")
