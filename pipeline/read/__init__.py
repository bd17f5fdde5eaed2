"""Readers, one module per input format, and how a path becomes a list of input files."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.read.base import RawRow, ReadOptions, ReadStats
from pipeline.read.remote import is_url

FORMATS = ("csv", "tsv", "xlsx", "xls", "ods", "json", "jsonl", "parquet")
EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".xls": "xls",
    ".ods": "ods",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def format_of(path: Path, configured: str) -> str:
    """The format of one file: the configured one, else by content and extension
    (`detect_format`)."""
    return detect_format(path, configured)[0]


def detect_format(path: Path, configured: str) -> tuple[str, str, str | None]:
    """`(format, how it was decided, warning)`: `input.format` when set (`config`); else the
    extension's format, unless the first bytes show another (`pipeline.read.sniff`), or the
    extension names none (`content`, with a warning message saying what was found)."""
    from pipeline.read.sniff import WHAT, format_from

    by_extension = EXTENSIONS.get(path.suffix.lower())
    fmt, how = format_from(path, configured, by_extension)
    if fmt is None:
        raise PipelineError(
            f"{path}: cannot tell the format from the extension {path.suffix!r} or from the "
            f"content; set input.format to one of {', '.join(FORMATS)}"
        )
    warning = None
    if how == "content":
        named = (
            f"its extension says {by_extension}"
            if by_extension
            else f"the extension {path.suffix or '(none)'!r} names no format"
        )
        warning = (
            f"{named}, but its first bytes show {WHAT[fmt]}: read as {fmt}; rename the file "
            f"or set `input.format: {fmt}` to silence this warning"
        )
    return fmt, how, warning


def expand_paths(patterns: Sequence[str], configured_format: str) -> list[Path]:
    """Files named by paths, globs and directories, in the order given (each glob sorted).
    Local only: a URL is refused (`expand_inputs` reads them for `ftprep run`)."""
    return [path for path, _source in expand_inputs(patterns, configured_format)]


def expand_inputs(
    patterns: Sequence[str], configured_format: str, fetch_to: Path | None = None
) -> list[tuple[Path, str]]:
    """`(local file, source name)` of every file named by paths, globs, directories and, when
    `fetch_to` is given, fsspec URLs (`pipeline.read.remote`: copied into `fetch_to`, the
    source being the URL), in the order given, each glob sorted, each file once."""
    if not patterns:
        raise PipelineError("no input: set input.paths in the config or pass --input PATH")
    named: dict[str, Path | None] = {}  # key -> local file (None: a URL, copied below)
    for pattern in patterns:
        if is_url(pattern):
            if fetch_to is None:
                raise PipelineError(
                    f"{pattern}: URLs are read by `ftprep run` (input.paths) only; copy the "
                    "file and give its local path"
                )
            from pipeline.read import remote

            def known(name: str) -> bool:
                return configured_format != "auto" or Path(name).suffix.lower() in EXTENSIONS

            for url in remote.expand(pattern, known):
                named.setdefault(url, None)
        else:
            for f in _expand_local(pattern, configured_format):
                named.setdefault(os.path.realpath(f), f)
    files = []
    for index, (key, path) in enumerate(named.items()):
        if path is None:
            from pipeline.read import remote

            assert fetch_to is not None
            files.append((remote.fetch(key, fetch_to, index), key))
        else:
            files.append((path, str(path)))
    return files


def _expand_local(pattern: str, configured_format: str) -> list[Path]:
    p = Path(pattern)
    if p.is_dir():
        found = sorted(
            Path(root) / name
            for root, _dirs, names in os.walk(p)
            for name in names
            if configured_format != "auto" or Path(name).suffix.lower() in EXTENSIONS
        )
        if not found:
            raise PipelineError(f"{pattern}: directory holds no file of a known format")
        return found
    if p.is_file():
        return [p]
    if glob.has_magic(pattern):
        found = sorted(Path(m) for m in glob.glob(pattern, recursive=True) if Path(m).is_file())
        if not found:
            raise PipelineError(f"{pattern}: no file matches this pattern")
        return found
    raise PipelineError(f"{pattern}: no such file or directory")


def empty_file(path: Path) -> str:
    """For a file that gave no records: what it holds and what to do (check, run, convert)."""
    if path.stat().st_size == 0:
        held = "the file is empty"
    elif format_of(path, "auto") in ("jsonl", "json"):
        held = "only blank lines or an empty array"
    else:
        held = "no data rows, a header row at most"
    return f"no records ({held}); check that it is the file you meant"


def reader_for(fmt: str) -> Any:
    """The read function of one format (imported on demand: `ftprep check` stays light)."""
    if fmt in ("csv", "tsv"):
        from pipeline.read import delimited

        return delimited.read_csv if fmt == "csv" else delimited.read_tsv
    if fmt == "xlsx":
        from pipeline.read import xlsx

        return xlsx.read
    if fmt in ("xls", "ods"):
        from pipeline.read import calamine

        return calamine.read_xls if fmt == "xls" else calamine.read_ods
    if fmt == "json":
        from pipeline.read import json_array

        return json_array.read
    if fmt == "jsonl":
        from pipeline.read import jsonl

        return jsonl.read
    if fmt == "parquet":
        from pipeline.read import parquet

        return parquet.read
    raise PipelineError(f"unknown format {fmt!r}")


def read_rows(path: Path, fmt: str, opts: ReadOptions, stats: ReadStats) -> Iterator[RawRow]:
    """All rows of one file, in source order."""
    reader = reader_for(fmt)
    rows: Iterator[RawRow] = reader(path, opts, stats)
    return rows
