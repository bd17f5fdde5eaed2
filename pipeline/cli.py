"""Command line: a thin click layer over the library.

Exit codes: 0 clean, 1 the gate failed, 2 usage, config or unreadable input. A `PipelineError`
is printed as one line naming the file, line or key and what to change; no traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from pipeline.errors import PipelineError
from pipeline.shapes import SHAPES

F = TypeVar("F", bound=Callable[..., Any])


def _friendly(fn: F) -> F:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PipelineError as exc:
            click.echo(f"ftprep: error: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


def _setup_logging(quiet: bool) -> None:
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ftprep")
def main() -> None:
    """ftprep: prepare, convert and gate LLM fine-tuning data."""


@main.command()
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
    """Run the pipeline of CONFIG: read, run the stages, write outputs and a report."""
    from pipeline.config import load_config, with_overrides
    from pipeline.gate import exit_code
    from pipeline.runner import run as run_pipeline

    _setup_logging(quiet)
    cfg = with_overrides(load_config(config), inputs, out, workers)
    result = run_pipeline(cfg)
    t = result.report["totals"]
    if not quiet:
        click.echo(
            f"{t['rows_in']} records in: {t['train']} train, {t['validation']} validation, "
            f"{t['rejected']} rejected"
        )
        limits = result.report.get("dataset", {}).get("dataset_limits")
        if limits and limits.get("cost_usd") is not None:
            click.echo(
                f"estimated training cost: ${limits['cost_usd']:.2f} "
                f"({limits['epochs']} epochs x {limits['billed_tokens_per_epoch']} tokens, "
                f"price of {limits['price_date']})"
            )
        click.echo(f"outputs in {result.out_dir}/:")
        for path in result.files:
            click.echo(f"  {path}")
    verdict = result.verdict
    for problem in verdict.problems:
        if problem.level == "error":
            click.echo(f"ftprep: gate failed: {problem.message}", err=True)
    code = exit_code([verdict])
    if code:
        sys.exit(code)


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

    from pipeline.targets import get_target, load_profiles

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
