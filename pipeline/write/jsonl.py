"""Atomic outputs and the JSONL lines ftprep writes.

Every output is written into a temporary folder inside the output dir and renamed into place
only when the whole run succeeded, so a failed or killed run never leaves a partial file at a
final path and keeps the previous outputs. SIGINT and SIGTERM are held back while the files are
renamed into place, so a stopped run leaves either all the old outputs or all the new ones.
Lines are UTF-8 without BOM, LF, no `\\/` escaping.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import orjson

from pipeline.errors import PipelineError

if TYPE_CHECKING:
    import pandas as pd

WRITE_STAGE = "write"
OUTPUT_FILES = (  # every name (or glob) a run may write; stale ones are removed at commit
    "train.jsonl",
    "validation.jsonl",
    "train-*.jsonl",
    "validation-*.jsonl",
    "rejected.jsonl",
    "report.json",
    "report.md",
    "report.html",
    "metrics.parquet",
)
OUT_COLUMN = "_out"  # the encoded output line of a kept record (bytes, no newline)

_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def dumps(value: Any) -> bytes:
    """One JSON value as compact UTF-8 bytes (raises TypeError/JSONEncodeError on odd types)."""
    return orjson.dumps(value, option=_OPTS)


def dumps_lenient(value: Any) -> bytes:
    """Like `dumps`, but anything orjson cannot encode is written as its `str()`, and an
    integer past 64 bits exactly (by the standard library, which has no such limit)."""
    try:
        return orjson.dumps(value, option=_OPTS, default=str)
    except orjson.JSONEncodeError:
        import json

        return json.dumps(value, default=str, ensure_ascii=False).encode()


def output_record(row: dict[str, Any]) -> dict[str, Any]:
    """The JSON object written for a kept record in its canonical shape."""
    if row.get("_shape"):
        from pipeline.shapes import to_shape

        return to_shape(row["_shape"], row)
    kind = row["kind"]
    if kind == "prompt_completion":
        return {"prompt": row["prompt"], "completion": row["completion"]}
    if kind == "chat":
        out: dict[str, Any] = {"messages": row["messages"]}
        for key in ("tools", "functions", "parallel_tool_calls"):
            if row.get(key) is not None:
                out[key] = row[key]
        return out
    if kind == "preference":
        return {
            "input": row["input"],
            "preferred_output": row["preferred_output"],
            "non_preferred_output": row["non_preferred_output"],
        }
    if kind == "kto":  # TRL's unpaired preference, conversational: nothing left out
        msgs = row["messages"]
        out = {"prompt": msgs[:-1], "completion": msgs[-1:], "label": row["label"]}
        if row.get("tools") is not None:
            out["tools"] = row["tools"]
        return out
    raise AssertionError(f"unknown kind {kind!r}")  # a bug


def encode(batch: pd.DataFrame, _cfg: Any = None) -> tuple[pd.DataFrame, Counter[str]]:
    """The `write` pseudo-stage: each record's output line, in column `_out`.

    Reason code: `record_unserializable` (a value JSON cannot hold, e.g. a NaN from a
    spreadsheet cell or a date, in a field that is written).
    """
    import pandas as pd

    from pipeline.records import ALL_FIELDS, drop_where

    out = batch.copy()
    names = [c for c in ("_shape", "kind", *ALL_FIELDS) if c in out.columns]
    lines: list[bytes | None] = []
    failed: dict[Any, str] = {}
    columns = [out[c].tolist() for c in names]
    for idx, values in zip(out.index, zip(*columns, strict=True), strict=True):
        try:
            lines.append(dumps(output_record(dict(zip(names, values, strict=True)))))
        except (TypeError, orjson.JSONEncodeError) as exc:
            lines.append(None)
            failed[idx] = f"cannot be written as JSON: {exc}"
    out[OUT_COLUMN] = pd.Series(lines, index=out.index, dtype=object)
    if failed:
        msg = pd.Series(failed, dtype=object).reindex(out.index)
        failing = msg.notna()
        drop_where(out, failing, "record_unserializable", msg)
    return out, Counter()


def rejected_line(
    source: str,
    line: int,
    stage: str,
    reason: str,
    message: str,
    record: Any,
    by_record: bool = False,
) -> bytes:
    """One line of rejected.jsonl. `line` is the record's 1-based line, or with `by_record`
    (a JSON array or Parquet input) its 1-based record number, written as `record_number`."""
    return dumps_lenient(
        {
            "source": source,
            "record_number" if by_record else "line": line,
            "stage": stage,
            "reason": reason,
            "message": message,
            "record": record,
        }
    )


TMP_PREFIX = ".ftprep-tmp-"  # + the pid of the run that writes it


def _remove_dead(out_dir: Path) -> None:
    """Remove the temporary folders that killed runs (SIGKILL, a power cut) left behind: those
    whose run's process no longer exists. A live run's folder is left alone."""
    for folder in out_dir.glob(f"{TMP_PREFIX}*-*"):
        pid = folder.name[len(TMP_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class AtomicOutputs:
    """A temporary folder in the output dir whose files are renamed into place on `commit`."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PipelineError(f"{out_dir}: cannot create the output directory ({exc})") from None
        _remove_dead(out_dir)
        self.tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", dir=out_dir))
        self.produced: list[str] = []

    def path(self, name: str) -> Path:
        """Where to write output `name` until commit."""
        if name not in self.produced:
            self.produced.append(name)
        return self.tmp / name

    def scratch(self, name: str) -> Path:
        """A scratch file that is never published."""
        return self.tmp / "scratch" / name

    def commit(self, managed: tuple[str, ...] = ()) -> list[Path]:
        """Rename every produced file into place; remove stale `managed` outputs not produced."""
        from pipeline.signals import held

        with held():
            return self._commit(managed)

    def _commit(self, managed: tuple[str, ...]) -> list[Path]:
        finals = []
        for name in self.produced:
            final = self.out_dir / name
            os.replace(self.tmp / name, final)
            finals.append(final)
        for pattern in managed:  # names or globs (train-*.jsonl) of outputs a run may write
            for stale in self.out_dir.glob(pattern):
                if stale.name not in self.produced and stale.is_file():
                    stale.unlink()
        self.cleanup()
        return finals

    def cleanup(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> AtomicOutputs:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()
