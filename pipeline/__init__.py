"""ftprep: prepare, convert and gate LLM fine-tuning data; every record accounted for.

The library face (the `ftprep` command is a thin layer over these three; docs/api.md):

    import pipeline

    result = pipeline.run("openai_chat", inputs=["sample_data/faq.csv"], out="out/faq")
    result.report["totals"]          # rows_in, train, validation, rejected
    result.verdict.failed()          # the target's limits, as `ftprep run` exits 1

    for v in pipeline.check("out/faq/train.jsonl", target="openai:gpt-4o-mini-2024-07-18"):
        print(v.subject, v.errors, [p.code for p in v.problems])

    pipeline.convert("sample_data/alpaca.json", to="chat", out="out/converted/")

Heavy modules are imported by these functions, not by `import pipeline`, so the command line
starts fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.config import Config
    from pipeline.conversion import FileSummary
    from pipeline.gate import Verdict
    from pipeline.runner import RunResult

__version__ = "0.1.0"  # the one place: pyproject.toml reads it, `ftprep --version` shows it
__all__ = ["__version__", "check", "convert", "run"]


def run(
    config: Config | str | Path | dict[str, Any],
    *,
    inputs: Sequence[str] = (),
    out: str | None = None,
    workers: int | None = None,
) -> RunResult:
    """Run a pipeline: a config file, a parsed `Config`, or a config as a dict.

    `inputs`, `out` and `workers` replace the config's `input.paths`, `output.dir` and
    `runner.workers`, as `--input`, `--out` and `--workers` do. Returns the outputs, the report
    and the verdict (`result.verdict`); raises `PipelineError` for bad input or config.
    """
    from pipeline.config import Config, load_config, parse_config, with_overrides
    from pipeline.runner import run as run_config

    if isinstance(config, Config):
        cfg = config
    elif isinstance(config, dict):
        cfg = parse_config(config, "<dict>")
    else:
        cfg = load_config(config)
    if isinstance(inputs, str):
        inputs = [inputs]
    return run_config(with_overrides(cfg, inputs, out, workers))


def check(
    files: str | Path | Sequence[str | Path], target: str, *, workers: int | None = None
) -> list[Verdict]:
    """Check files (paths, globs, directories) for `target`: one `Verdict` per file, with every
    problem of every record. `pipeline.gate.exit_code(verdicts, strict)` is what `ftprep check`
    exits with. `workers`: processes per file, by default as `ftprep check` (2 for a UTF-8
    JSONL file of 8 MB or more on 2 cores, else 1)."""
    from pipeline.checks import check_files

    patterns = [str(files)] if isinstance(files, str | Path) else [str(f) for f in files]
    return check_files(patterns, target, workers)


def convert(
    inputs: str | Path | Sequence[str | Path],
    to: str,
    out: str | Path,
    *,
    system: str | None = None,
    separator: str | None = "auto",
    stop: str | None = "auto",
    workers: int = 1,
) -> list[FileSummary]:
    """Convert every input file to shape `to`, one output each under `out`; a summary per file
    (an unreadable file's summary carries its error instead of raising)."""
    from pipeline.conversion import convert_files

    patterns = [str(inputs)] if isinstance(inputs, str | Path) else [str(i) for i in inputs]
    return convert_files(
        patterns, to, Path(out), system=system, separator=separator, stop=stop, workers=workers
    )
