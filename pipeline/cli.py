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
    "--input", "inputs", multiple=True, metavar="PATH",
    help="Input file, glob or directory; repeatable; replaces input.paths.",
)
@click.option("--out", metavar="DIR", help="Output directory; replaces output.dir.")
@click.option("--workers", type=int, metavar="N", help="Worker processes (default: one per core).")
@click.option("--quiet", is_flag=True, help="Print only warnings and errors.")
@_friendly
def run(config: str, inputs: tuple[str, ...], out: str | None, workers: int | None,
        quiet: bool) -> None:
    """Run the pipeline of CONFIG: read, run the stages, write outputs and a report."""
    from pipeline.config import load_config, with_overrides
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
        click.echo(f"outputs in {result.out_dir}/:")
        for path in result.files:
            click.echo(f"  {path}")
