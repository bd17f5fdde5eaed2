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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ftprep")
def main() -> None:
    """ftprep: prepare, convert and gate LLM fine-tuning data."""


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


@main.command(cls=_RunCommand)
@click.argument("config", type=click.Path(dir_okay=False))
@click.option(
    "--input",
    "inputs",
    multiple=True,
    metavar="PATH",
    help="Input file, glob or directory; repeatable; replaces input.paths.",
)
@click.option("--out", metavar="DIR", help="Output directory; replaces output.dir.")
@click.option("--workers", type=int, metavar="N", help="Worker processes (default: one per core).")
@click.option("--quiet", is_flag=True, help="Print only warnings and errors.")
@_friendly
def run(
    config: str, inputs: tuple[str, ...], out: str | None, workers: int | None, quiet: bool
) -> None:
    """Run the pipeline of CONFIG (a file, or a shipped config's name): read, run the stages,
    write outputs and a report."""
    from pipeline.config import load_config, with_overrides
    from pipeline.gate import exit_code
    from pipeline.runner import run as run_pipeline

    _setup_logging(quiet)
    cfg = with_overrides(load_config(config), inputs, out, workers)
    started = time.monotonic()
    result = run_pipeline(cfg)
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


@main.command()
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
@click.option("--workers", type=int, default=1, metavar="N", help="Worker processes per file.")
@click.option("--quiet", is_flag=True, help="Print only the summary line and errors.")
@_friendly
def convert(
    inputs: tuple[str, ...],
    to: str,
    out: str,
    system: str | None,
    separator: str,
    stop: str,
    workers: int,
    quiet: bool,
) -> None:
    """Convert INPUT files (paths, globs, directories) to another shape, one output each.

    Exits 1 when any record could not be converted (see the *.rejected.jsonl files), 2 when
    an input could not be read.
    """
    from pathlib import Path

    from pipeline.conversion import convert_files, summary_table

    _setup_logging(True)
    summaries = convert_files(
        list(inputs),
        to,
        Path(out),
        system=system,
        separator=None if separator == "none" else separator,
        stop=None if stop == "none" else stop,
        workers=workers,
    )
    table = summary_table(summaries)
    click.echo(table.splitlines()[-1] if quiet else table)
    if any(s.error for s in summaries):
        for s in summaries:
            if s.error:
                click.echo(f"ftprep: error: {s.error}", err=True)
        sys.exit(2)
    if any(s.rejected for s in summaries):
        sys.exit(1)


@main.command()
@click.argument("name", required=False)
@_friendly
def targets(name: str | None) -> None:
    """List the target profiles, or show one (NAME, e.g. openai:gpt-4o-mini-2024-07-18)."""
    import dataclasses

    from pipeline.targets import ENV_DIR, get_target, load_profiles, origins

    if name:
        profile = get_target(name)
        for f in dataclasses.fields(profile):
            value = getattr(profile, f.name)
            if dataclasses.is_dataclass(value):
                value = dataclasses.asdict(value)  # type: ignore[arg-type]
            elif isinstance(value, tuple):
                value = ", ".join(map(str, value))
            elif hasattr(value, "items"):
                value = {k: list(v) if isinstance(v, tuple) else v for k, v in value.items()}
            click.echo(f"{f.name}: {value}")
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


def _by_origin(found: dict[str, str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, directory in sorted(found.items()):
        grouped.setdefault(directory, []).append(name)
    return grouped


@main.command()
@click.argument("inputs", nargs=-1, required=True, metavar="FILE...")
@click.option("--target", required=True, metavar="T", help="Target profile (ftprep targets).")
@click.option("--strict", is_flag=True, help="Warnings fail the check too.")
@click.option("--json", "as_json", is_flag=True, help="Print the verdicts as JSON.")
@click.option("--workers", type=int, default=1, metavar="N", help="Worker processes per file.")
@_friendly
def check(inputs: tuple[str, ...], target: str, strict: bool, as_json: bool, workers: int) -> None:
    """Gate FILE... (paths, globs, directories) before upload to target T.

    Prints every problem with file, line and code; exits 1 when a file would be refused or
    damaged by the target (or has warnings, with --strict), 2 when one cannot be read.
    """
    import orjson

    from pipeline.checks import check_files, format_text
    from pipeline.gate import exit_code

    _setup_logging(True)
    verdicts = check_files(list(inputs), target, workers)
    if as_json:
        click.echo(orjson.dumps([v.as_dict() for v in verdicts], option=orjson.OPT_INDENT_2))
    else:
        click.echo(format_text(verdicts, target))
    code = exit_code(verdicts, strict)
    if code:
        sys.exit(code)
