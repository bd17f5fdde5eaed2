"""The only loop: read inputs, run the stages over batches in worker processes, decide, write.

1. Plan: every input file is opened, its encoding detected and its columns mapped before any
   batch runs, so a mapping problem stops the run at once (exit 2).
2. Work units: UTF-8 JSONL is cut into byte ranges that each worker reads itself; other formats
   are read by this process and handed out in batches. At most two units per worker are in
   flight, so memory stays flat whatever the input size.
3. A worker maps rows to canonical records, runs the batch stages, and spools kept and rejected
   lines to its unit's files, returning only counts and a compact key table.
4. Dataset stages decide over the key table; the spools are then streamed, in source order,
   into train.jsonl, validation.jsonl and rejected.jsonl, renamed into place at the end.

Outputs depend only on the inputs and the config: not on batch size, worker count or timing.
"""

from __future__ import annotations

import heapq
import logging
import multiprocessing as mp
import os
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from pipeline.config import Config, StageSpec
from pipeline.dataset import REJECTED, TRAIN, VALIDATION, Decisions, KeyTable
from pipeline.errors import PipelineError
from pipeline.read import expand_paths, format_of, read_rows
from pipeline.read.base import RawRow, ReadOptions, ReadStats
from pipeline.read.mapping import Mapping, ShapeError, resolve
from pipeline.records import ALL_FIELDS, BOOK_COLUMNS, METRIC_PREFIX, make_batch
from pipeline.registry import stages as registered_stages
from pipeline.write.jsonl import (
    AtomicOutputs,
    dumps,
    dumps_lenient,
    output_record,
    rejected_line,
)

log = logging.getLogger("ftprep")

SAMPLE_ROWS = 1000
OUTPUT_FILES = (
    "train.jsonl",
    "validation.jsonl",
    "train-*.jsonl",
    "validation-*.jsonl",
    "rejected.jsonl",
    "report.json",
    "metrics.parquet",
)
READ_STAGE = "read"


@dataclass
class InputFile:
    index: int
    path: Path
    fmt: str
    mapping: Mapping
    ranges: list[tuple[int, int, int]] | None = None  # UTF-8 JSONL: read by the workers
    stats: ReadStats = field(default_factory=ReadStats)
    rows: int = 0

    @property
    def source(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class Unit:
    """One piece of work: a byte range of a JSONL file, or rows the parent read."""

    index: int
    file_index: int
    source: str
    mapping: Mapping
    rows: tuple[RawRow, ...] | None = None
    byte_range: tuple[int, int, int] | None = None


@dataclass
class StageCounts:
    rows_in: int = 0
    rows_out: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    changes: Counter[str] = field(default_factory=Counter)

    def add(self, other: StageCounts) -> None:
        self.rows_in += other.rows_in
        self.rows_out += other.rows_out
        self.rejected.update(other.rejected)
        self.changes.update(other.changes)

    def as_dict(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "rejected": dict(sorted(self.rejected.items())),
            "changes": dict(sorted(self.changes.items())),
        }


@dataclass
class UnitResult:
    index: int
    file_index: int
    rows_in: int
    blank_lines: int
    stages: dict[str, StageCounts]
    kept: int
    rejected: int
    kept_path: str
    rejected_path: str
    # first source lines of each reason, for the report
    examples: dict[str, list[int]]
    kept_lines: list[int] = field(default_factory=list)  # source line of each kept record
    kept_bytes: list[int] = field(default_factory=list)  # output line bytes, newline included
    kept_ords: list[int] = field(default_factory=list)  # unit ordinal of each kept record
    rejected_ords: list[int] = field(default_factory=list)
    keys: dict[str, list[Any]] = field(default_factory=dict)  # dataset-stage key columns
    source: str = ""
    warnings: Counter[str] = field(default_factory=Counter)
    warning_examples: dict[str, list[int]] = field(default_factory=dict)
    warning_messages: dict[str, str] = field(default_factory=dict)  # the first, per code
    metrics: list[pd.DataFrame] = field(default_factory=list)  # per batch: _ord, reason, m_*


@dataclass(frozen=True)
class RunResult:
    out_dir: Path
    report: dict[str, Any]
    files: list[Path]


# --- planning -----------------------------------------------------------------------------


def plan_inputs(cfg: Config) -> list[InputFile]:
    """Open every input, detect its encoding and map its columns (PipelineError on problems)."""
    inputs = []
    opts = _read_options(cfg)
    for i, path in enumerate(expand_paths(cfg.input.paths, cfg.input.format)):
        fmt = format_of(path, cfg.input.format)
        if fmt == "jsonl":
            inputs.append(_plan_jsonl(i, path, cfg, opts))
            continue
        stats = ReadStats()
        rows = read_rows(path, fmt, opts, stats)
        try:
            sample = list(islice(rows, SAMPLE_ROWS))
        finally:
            close = getattr(rows, "close", None)
            if close is not None:
                close()
        keys = stats.columns or _keys_of(sample)
        mapping = resolve(cfg.input.columns, keys, str(path))
        inputs.append(InputFile(i, path, fmt, mapping))
    return inputs


def _read_options(cfg: Config) -> ReadOptions:
    return ReadOptions(
        encoding=cfg.input.encoding, sheet=cfg.input.sheet, delimiter=cfg.input.delimiter
    )


def _keys_of(rows: list[RawRow]) -> list[str]:
    keys: dict[str, None] = {}
    for row in rows:
        if row.record is not None:
            keys.update(dict.fromkeys(row.record))
    return list(keys)


def _plan_jsonl(i: int, path: Path, cfg: Config, opts: ReadOptions) -> InputFile:
    from pipeline.read.encoding import detect
    from pipeline.read.jsonl import parse_line, plan_ranges

    detected = detect(path, cfg.input.encoding)
    stats = ReadStats(
        encoding=detected.encoding,
        bom_removed=detected.bom_removed,
        confidence=detected.confidence,
    )
    utf8 = detected.encoding.replace("_", "-").lower() in ("utf-8", "utf8", "utf-8-sig", "ascii")
    sample: list[RawRow] = []
    if utf8:
        with open(path, "rb") as f:
            f.seek(detected.bom_len)
            for lineno, line in enumerate(f, start=1):
                row = parse_line(line, lineno)
                if row is not None:
                    sample.append(row)
                if len(sample) >= SAMPLE_ROWS:
                    break
    else:
        rows = read_rows(path, "jsonl", opts, ReadStats())
        sample = list(islice(rows, SAMPLE_ROWS))
        rows.close()  # type: ignore[attr-defined]
    mapping = resolve(cfg.input.columns, _keys_of(sample), str(path))
    ranges = plan_ranges(path, detected.bom_len, _chunk_bytes(path, cfg)) if utf8 else None
    return InputFile(i, path, "jsonl", mapping, ranges=ranges, stats=stats)


def _chunk_bytes(path: Path, cfg: Config) -> int:
    """Byte-range size: `runner.chunk_bytes`, smaller for a file that would give each worker
    fewer than four ranges (so two workers are not left waiting on one long range)."""
    workers = cfg.runner.workers or os.cpu_count() or 1
    spread = max(1 << 20, os.path.getsize(path) // (4 * workers))
    return min(cfg.runner.chunk_bytes, spread)


def iter_units(inputs: list[InputFile], cfg: Config) -> Iterator[Unit]:
    """Work units in source order; rows of non-JSONL files are read here, lazily."""
    opts = _read_options(cfg)
    n = 0
    for inp in inputs:
        if inp.ranges is not None:
            for r in inp.ranges:
                yield Unit(n, inp.index, inp.source, inp.mapping, byte_range=r)
                n += 1
            continue
        inp.stats = ReadStats()
        rows = read_rows(inp.path, inp.fmt, opts, inp.stats)
        while True:
            chunk = tuple(islice(rows, cfg.runner.batch_size))
            if not chunk:
                break
            yield Unit(n, inp.index, inp.source, inp.mapping, rows=chunk)
            n += 1


# --- the worker side ----------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(
    stages: tuple[StageSpec, ...], batch_size: int, spool: str, paths: list[str]
) -> None:

    _WORKER["stages"] = [(s.name, registered_stages()[s.name], s.config) for s in stages]
    _WORKER["batch_size"] = batch_size
    _WORKER["spool"] = spool
    _WORKER["paths"] = paths


def _unit_rows(unit: Unit, blank: list[int]) -> Iterator[RawRow]:
    if unit.rows is not None:
        yield from unit.rows
        return
    from pipeline.read.jsonl import read_range

    assert unit.byte_range is not None
    start, end, first_line = unit.byte_range
    for row in read_range(Path(_WORKER["paths"][unit.file_index]), start, end, first_line):
        if row is None:
            blank[0] += 1
        else:
            yield row


def _to_record(unit: Unit, row: RawRow, ordinal: int) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "_source": unit.source,
        "_line": row.line,
        "_ord": ordinal,
        "_record": row.record,
        "_raw": row.raw,
        "kind": unit.mapping.kind,
    }
    if row.reason is not None:
        rec.update(_reason=row.reason, _message=row.message, _stage=READ_STAGE)
        return rec
    assert row.record is not None
    try:
        rec.update(unit.mapping.apply(row.record))
    except ShapeError as exc:
        rec.update(
            _reason="shape_invalid",
            _message=f"does not fit the {unit.mapping.shape} shape: {exc}",
            _stage=READ_STAGE,
        )
    return rec


def run_stages(
    batch: pd.DataFrame, stages: list[tuple[str, Any, Any]], counts: dict[str, StageCounts]
) -> pd.DataFrame:
    """Run the batch stages in order over the records not yet rejected; count in and out."""
    for name, entry, stage_cfg in stages:
        if entry.kind != "batch":
            continue
        alive = batch["_reason"].isna()
        part = batch[alive]
        c = counts.setdefault(name, StageCounts())
        c.rows_in += len(part)
        if part.empty:
            continue
        result, changes = entry.fn(part, stage_cfg)
        if not result.index.equals(part.index):
            raise AssertionError(f"stage {name} changed the rows of its batch")  # a bug
        newly = result["_reason"].notna()
        result.loc[newly, "_stage"] = name
        c.rows_out += int((~newly).sum())
        c.rejected.update(result.loc[newly, "_reason"].tolist())
        c.changes.update(changes)
        if bool(alive.all()):
            batch = result
        else:
            batch = pd.concat([batch[~alive], result]).sort_index(kind="stable")
    return batch


def process_unit(unit: Unit) -> UnitResult:
    """Map, run the stages and spool one unit (runs in a worker process)."""
    spool = Path(_WORKER["spool"])
    kept_path = spool / f"unit-{unit.index:07d}.kept"
    rej_path = spool / f"unit-{unit.index:07d}.rej"
    counts: dict[str, StageCounts] = {READ_STAGE: StageCounts()}
    result = UnitResult(
        unit.index,
        unit.file_index,
        0,
        0,
        counts,
        0,
        0,
        str(kept_path),
        str(rej_path),
        {},
        source=unit.source,
    )
    blank = [0]
    rows = _unit_rows(unit, blank)
    ordinal = 0
    with (
        open(kept_path, "wb") as kept_f,
        open(rej_path, "wb") as rej_f,
        open(_orig_path(kept_path), "wb") as orig_f,
    ):
        while True:
            chunk = list(islice(rows, _WORKER["batch_size"]))
            if not chunk:
                break
            records = [_to_record(unit, row, ordinal + i) for i, row in enumerate(chunk)]
            ordinal += len(records)
            result.rows_in += len(records)
            batch = make_batch(records)
            read_rejects = batch["_reason"].notna()
            rc = counts[READ_STAGE]
            rc.rows_in += len(batch)
            rc.rows_out += int((~read_rejects).sum())
            rc.rejected.update(batch.loc[read_rejects, "_reason"].tolist())
            batch = run_stages(batch, _WORKER["stages"], counts)
            _spool(batch, kept_f, rej_f, orig_f, result)
    result.blank_lines = blank[0]
    return result


def _orig_path(kept_path: Path | str) -> Path:
    return Path(str(kept_path) + ".orig")


def _dataset_keys(kept: pd.DataFrame, result: UnitResult) -> None:
    """Key-table columns of the kept records for every dataset stage (namespaced by position)."""
    for i, (_name, entry, stage_cfg) in enumerate(_WORKER["stages"]):
        if entry.kind != "dataset" or kept.empty:
            continue
        for col, values in entry.keys(kept, stage_cfg).items():
            result.keys.setdefault(f"{i}:{col}", []).extend(list(values))


def _spool(batch: pd.DataFrame, kept_f: Any, rej_f: Any, orig_f: Any, result: UnitResult) -> None:
    """Write kept lines (and their original records) and rejected lines of one batch."""
    kept_rows: list[int] = []
    names = [c for c in (*BOOK_COLUMNS, "kind", *ALL_FIELDS) if c in batch.columns]
    columns = [batch[c].tolist() for c in names]  # much cheaper than to_dict("records")
    for pos, values in enumerate(zip(*columns, strict=True)):
        row = dict(zip(names, values, strict=True))
        record = row["_record"] if row["_record"] is not None else row["_raw"]
        if row["_reason"] is None or row["_reason"] != row["_reason"]:
            try:
                line = dumps(output_record(row))
            except (TypeError, orjson.JSONEncodeError) as exc:
                row["_reason"], row["_stage"] = "record_unserializable", "write"
                row["_message"] = f"cannot be written as JSON: {exc}"
                c = result.stages.setdefault("write", StageCounts())
                c.rejected["record_unserializable"] += 1
                batch.loc[batch.index[pos], ["_reason", "_stage"]] = [
                    "record_unserializable",
                    "write",
                ]
            else:
                kept_f.write(line + b"\n")
                orig_f.write(dumps_lenient(record) + b"\n")
                for code, message in row["_warnings"] or ():
                    result.warnings[code] += 1
                    result.warning_messages.setdefault(code, message)
                    wex = result.warning_examples.setdefault(code, [])
                    if len(wex) < 5:
                        wex.append(int(row["_line"]))
                result.kept += 1
                result.kept_lines.append(int(row["_line"]))
                result.kept_bytes.append(len(line) + 1)
                result.kept_ords.append(int(row["_ord"]))
                kept_rows.append(pos)
                continue
        rej_f.write(
            rejected_line(
                row["_source"],
                int(row["_line"]),
                row["_stage"],
                row["_reason"],
                row["_message"],
                record,
            )
            + b"\n"
        )
        result.rejected_ords.append(int(row["_ord"]))
        ex = result.examples.setdefault(row["_reason"], [])
        if len(ex) < 5:
            ex.append(int(row["_line"]))
        result.rejected += 1
    _dataset_keys(batch.iloc[kept_rows], result)
    metric_cols = [c for c in batch.columns if str(c).startswith(METRIC_PREFIX)]
    metrics = batch[["_ord", "_line", "_reason", "_stage", *metric_cols]].copy()
    metrics["_warning_codes"] = [
        ",".join(code for code, _message in ws) if ws else None for ws in batch["_warnings"]
    ]
    result.metrics.append(metrics)


# --- the parent side ----------------------------------------------------------------------


def _execute(units: Iterator[Unit], cfg: Config, spool: Path, paths: list[str]) -> list[UnitResult]:
    workers = cfg.runner.workers or os.cpu_count() or 1
    init_args = (cfg.stages, cfg.runner.batch_size, str(spool), paths)
    results: list[UnitResult] = []
    if workers == 1:
        _init_worker(*init_args)
        return [process_unit(u) for u in units]
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["pipeline.runner", "pipeline.registry"])
    with ctx.Pool(workers, initializer=_init_worker, initargs=init_args) as pool:
        in_flight: deque[Any] = deque()
        for unit in units:
            in_flight.append(pool.apply_async(process_unit, (unit,)))
            while len(in_flight) >= 2 * workers:
                results.append(in_flight.popleft().get())
        while in_flight:
            results.append(in_flight.popleft().get())
    return results


def run(cfg: Config) -> RunResult:
    """Run a validated config end to end; returns the report. Raises PipelineError."""
    target_info = _target_info(cfg)
    inputs = plan_inputs(cfg)
    for inp in inputs:
        log.info("%s: %s, %s shape", inp.source, inp.fmt, inp.mapping.shape)
    out_dir = Path(cfg.output.dir)
    with AtomicOutputs(out_dir) as outputs:
        spool = outputs.scratch("")
        spool.mkdir(parents=True)
        paths = [str(inp.path) for inp in inputs]
        results = _execute(iter_units(inputs, cfg), cfg, spool, paths)
        stage_counts = _merge_counts(results, cfg)
        decisions, dataset_info = _decide(results, inputs, cfg, stage_counts)
        totals = _write_outputs(results, decisions, outputs, bom=bool(target_info.get("bom")))
        _write_metrics(results, decisions, outputs.path("metrics.parquet"))
        rows_in = sum(r.rows_in for r in results)
        for inp in inputs:
            mine = [r for r in results if r.file_index == inp.index]
            inp.rows = sum(r.rows_in for r in mine)
            inp.stats.blank_lines += sum(r.blank_lines for r in mine)
        report = _report(cfg, inputs, stage_counts, results, rows_in, totals, decisions)
        report["dataset"] = dataset_info
        report["outputs"] = _output_files(outputs, dataset_info, target_info) | report["outputs"]
        gate_reasons = [
            reason
            for info in dataset_info.values()
            if isinstance(info, dict) and info.get("gate_failed")
            for reason in info.get("gate_reasons", [])
        ]
        report["gate"] = {"failed": bool(gate_reasons), "reasons": gate_reasons}
        if target_info:
            report["target"] = target_info
        with open(outputs.path("report.json"), "wb") as f:
            f.write(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
        if not report["identity"]["holds"]:
            raise PipelineError(
                f"records were lost: rows_in {rows_in} != train {totals['train']} + validation "
                f"{totals['validation']} + rejected {totals['rejected']}; outputs not written"
            )
        files = outputs.commit(OUTPUT_FILES)
    for name, c in stage_counts.items():
        log.info("stage %s: %d in, %d out %s", name, c.rows_in, c.rows_out, dict(c.rejected))
    return RunResult(out_dir, report, files)


def _output_files(
    outputs: AtomicOutputs, dataset_info: dict[str, Any], target_info: dict[str, Any]
) -> dict[str, Any]:
    """The training files as written: names, bytes, and the target's file-size limit."""
    limit = (dataset_info.get("dataset_limits") or {}).get("files", {}).get("max_file_bytes")
    if limit is None:
        limit = target_info.get("max_file_bytes")
    names = [n for n in outputs.produced if n.startswith(("train", "validation"))]
    sizes = {n: outputs.path(n).stat().st_size for n in names}
    return {
        "train": [n for n in names if n.startswith("train")],
        "validation": [n for n in names if n.startswith("validation")],
        "bytes": sizes,
        "max_file_bytes": limit,
        "over_max_file_bytes": [n for n, size in sizes.items() if limit and size > limit],
    }


def _target_info(cfg: Config) -> dict[str, Any]:
    """What the run's target means for the output, and a warning past its shutdown dates."""
    if cfg.target is None:
        return {}
    from pipeline.targets import get_target, today

    profile = get_target(cfg.target)
    warning = profile.is_past_shutdown(today())
    if warning:
        log.warning("warning: %s", warning)
    return {
        "name": profile.name,
        "bom": profile.output.bom,
        "max_file_bytes": profile.max_file_bytes,
        "checked": profile.checked,
        "shutdown_warning": warning,
    }


def _merge_counts(results: list[UnitResult], cfg: Config) -> dict[str, StageCounts]:
    merged: dict[str, StageCounts] = {READ_STAGE: StageCounts()}
    for s in cfg.stages:
        merged.setdefault(s.name, StageCounts())
    for r in results:
        for name, c in r.stages.items():
            merged.setdefault(name, StageCounts()).add(c)
    return merged


def _decide(
    results: list[UnitResult],
    inputs: list[InputFile],
    cfg: Config,
    counts: dict[str, StageCounts],
) -> tuple[Decisions, dict[str, Any]]:
    """Run the dataset stages, in config order, over the key table of all kept records."""

    n = sum(r.kept for r in results)
    decisions = Decisions.all_train(n)
    info: dict[str, Any] = {}
    dataset_stages = [
        (i, s) for i, s in enumerate(cfg.stages) if registered_stages()[s.name].kind == "dataset"
    ]
    if not dataset_stages:
        return decisions, info
    source = [inputs[r.file_index].source for r in results for _ in range(r.kept)]
    line = np.fromiter((x for r in results for x in r.kept_lines), dtype=np.int64, count=n)
    nbytes = np.fromiter((x for r in results for x in r.kept_bytes), dtype=np.int64, count=n)
    for i, spec in dataset_stages:
        prefix = f"{i}:"
        gathered: dict[str, list[Any]] = {}
        for r in results:
            for key, values in r.keys.items():
                if key.startswith(prefix):
                    gathered.setdefault(key[len(prefix) :], []).extend(values)
        table = KeyTable(source, line, {k: np.asarray(v) for k, v in gathered.items()}, nbytes)
        c = counts.setdefault(spec.name, StageCounts())
        alive_before = int(decisions.alive().sum())
        # decisions.counts is per stage name and cumulative: count only this entry's rejects
        rejected_before = Counter(decisions.counts.get(spec.name, {}))
        entry = registered_stages()[spec.name]
        assert entry.decide is not None
        # a stage listed twice (dedupe exact, then near) keeps both reports: name[i] for later
        key = spec.name if spec.name not in info else f"{spec.name}[{i}]"
        info[key] = entry.decide(table, decisions, spec.config)
        c.rows_in += alive_before
        c.rows_out += int(decisions.alive().sum())
        c.rejected.update(Counter(decisions.counts.get(spec.name, {})) - rejected_before)
    return decisions, info


def _write_outputs(
    results: list[UnitResult], decisions: Decisions, outputs: AtomicOutputs, bom: bool = False
) -> dict[str, int]:
    """Stream the spools, in source order, into the final files.

    `bom`: start train.jsonl and validation.jsonl with a UTF-8 BOM (Azure OpenAI asks for it).
    """
    totals = {"train": 0, "validation": 0, "rejected": 0}
    dest = decisions.dest
    all_bytes = np.fromiter((b for r in results for b in r.kept_bytes), dtype=np.int64)
    train = _SplitWriter(outputs, "train", bom, decisions.shard_bytes, all_bytes[dest == TRAIN])
    validation = (
        _SplitWriter(
            outputs, "validation", bom, decisions.shard_bytes, all_bytes[dest == VALIDATION]
        )
        if decisions.write_validation
        else None
    )
    files = {"rejected.jsonl": open(outputs.path("rejected.jsonl"), "wb")}  # noqa: SIM115
    rejected = files["rejected.jsonl"]
    g = 0  # key-table row of the next kept record
    try:
        for r in results:
            dataset_rejects: list[tuple[int, bytes]] = []
            with open(r.kept_path, "rb") as kept, open(_orig_path(r.kept_path), "rb") as orig:
                for ordinal, line_no, line, orig_line in zip(
                    r.kept_ords, r.kept_lines, kept, orig, strict=True
                ):
                    d = dest[g]
                    if d == TRAIN:
                        train.write(line)
                        totals["train"] += 1
                    elif d == VALIDATION:
                        assert validation is not None, "a split stage must set write_validation"
                        validation.write(line)
                        totals["validation"] += 1
                    else:
                        stage, reason, message = decisions.reasons[g]
                        record = orjson.loads(orig_line)
                        ex = r.examples.setdefault(reason, [])
                        if len(ex) < 5:
                            ex.append(line_no)
                        dataset_rejects.append(
                            (
                                ordinal,
                                rejected_line(r.source, line_no, stage, reason, message, record),
                            )
                        )
                    g += 1
            with open(r.rejected_path, "rb") as rej:
                merged = heapq.merge(
                    zip(r.rejected_ords, (ln.rstrip(b"\n") for ln in rej), strict=True),
                    dataset_rejects,
                )
                for _ordinal, line in merged:
                    rejected.write(line + b"\n")
                    totals["rejected"] += 1
            for path in (r.kept_path, _orig_path(r.kept_path), r.rejected_path):
                os.unlink(path)
    finally:
        for f in files.values():
            f.close()
        train.close()
        if validation is not None:
            validation.close()
    return totals


class _SplitWriter:
    """One split's JSONL: `name.jsonl`, or shards `name-00001.jsonl`... when it would be larger
    than `shard_bytes` (a record larger than that still gets a shard of its own)."""

    def __init__(
        self,
        outputs: AtomicOutputs,
        stem: str,
        bom: bool,
        shard_bytes: int | None,
        line_bytes: np.ndarray,
    ) -> None:
        self.outputs, self.stem = outputs, stem
        self.head = b"\xef\xbb\xbf" if bom else b""
        total = len(self.head) + int(line_bytes.sum())
        self.limit = shard_bytes if shard_bytes is not None and total > shard_bytes else None
        self.shards = 0
        self.size = 0
        self.f: Any = None
        self._open(f"{stem}.jsonl" if self.limit is None else self._shard_name())

    def _shard_name(self) -> str:
        self.shards += 1
        return f"{self.stem}-{self.shards:05d}.jsonl"

    def _open(self, name: str) -> None:
        if self.f is not None:
            self.f.close()
        self.f = open(self.outputs.path(name), "wb")  # noqa: SIM115
        self.f.write(self.head)
        self.size = len(self.head)

    def write(self, line: bytes) -> None:
        if (
            self.limit is not None
            and self.size > len(self.head)
            and self.size + len(line) > self.limit
        ):
            self._open(self._shard_name())
        self.f.write(line)
        self.size += len(line)

    def close(self) -> None:
        if self.f is not None:
            self.f.close()
            self.f = None


def _write_metrics(results: list[UnitResult], decisions: Decisions, path: Path) -> None:
    """metrics.parquet: one row per input record, with where it went and its m_* metrics.

    Column types are fixed by rule (text, int64, float64 or bool), never inferred from one
    batch, so the file is byte-identical whatever the batch size or worker count.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    split_names = np.array(["train", "validation", "rejected"], dtype=object)
    frames = []
    g = 0
    for r in results:
        if not r.metrics:
            continue
        m = pd.concat(r.metrics, ignore_index=True)
        split = np.full(len(m), "rejected", dtype=object)
        reason = m["_reason"].to_numpy(dtype=object).copy()
        stage = m["_stage"].to_numpy(dtype=object).copy()
        pos = {o: i for i, o in enumerate(m["_ord"].tolist())}
        for ordinal in r.kept_ords:
            i = pos[ordinal]
            split[i] = split_names[decisions.dest[g]]
            if decisions.dest[g] == REJECTED:
                stage[i], reason[i], _msg = decisions.reasons[g]
            g += 1
        m.insert(0, "id", [f"{r.source}:{ln}" for ln in m["_line"]])
        m.insert(1, "source", r.source)
        m["split"], m["reason"], m["stage"] = split, reason, stage
        frames.append(
            m.drop(columns=["_reason", "_stage", "_ord"]).rename(
                columns={"_line": "line", "_warning_codes": "warnings"}
            )
        )
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    text = ("id", "source", "split", "reason", "stage", "warnings")
    columns: dict[str, pa.Array] = {}
    for name in ("id", "source", "line", "split", "reason", "stage", "warnings"):
        values = table[name].tolist() if name in table else []
        columns[name] = pa.array(
            [None if v is None or v != v else v for v in values],
            type=pa.string() if name in text else pa.int64(),
        )
    metric_names = sorted(c for c in table.columns if str(c).startswith(METRIC_PREFIX))
    for name in metric_names:
        values = [None if v is None or v != v else v for v in table[name].tolist()]
        present = [v for v in values if v is not None]
        if present and all(isinstance(v, bool | np.bool_) for v in present):
            arrow_type = pa.bool_()
        elif all(
            isinstance(v, int | np.integer) or (isinstance(v, float) and v.is_integer())
            for v in present
        ):  # counts stay whole numbers even where a rejected row left a gap (NaN)
            arrow_type = pa.int64()
            values = [None if v is None else int(v) for v in values]
        else:
            arrow_type = pa.float64()
        columns[str(name).removeprefix(METRIC_PREFIX)] = pa.array(values, type=arrow_type)
    pq.write_table(pa.table(columns), path)


def _report(
    cfg: Config,
    inputs: list[InputFile],
    stage_counts: dict[str, StageCounts],
    results: list[UnitResult],
    rows_in: int,
    totals: dict[str, int],
    decisions: Decisions,
) -> dict[str, Any]:
    from pipeline import __version__

    examples: dict[str, dict[str, list[int]]] = {}
    for r in results:
        src = inputs[r.file_index].source
        for reason, lines in r.examples.items():
            per = examples.setdefault(reason, {})
            have = per.setdefault(src, [])
            have.extend(lines[: max(0, 5 - len(have))])
    reasons: Counter[str] = Counter()
    for c in stage_counts.values():
        reasons.update(c.rejected)
    warnings: Counter[str] = Counter()
    warning_lines: dict[str, dict[str, list[int]]] = {}
    warning_messages: dict[str, str] = {}
    for r in results:
        warnings.update(r.warnings)
        for code, message in r.warning_messages.items():
            warning_messages.setdefault(code, message)
        for code, lines in r.warning_examples.items():
            have = warning_lines.setdefault(code, {}).setdefault(r.source, [])
            have.extend(lines[: max(0, 5 - len(have))])
    holds = rows_in == totals["train"] + totals["validation"] + totals["rejected"]
    return {
        "ftprep_version": __version__,
        "config": cfg.source,
        "target": cfg.target,
        "inputs": [
            {
                "path": inp.source,
                "format": inp.fmt,
                "rows": inp.rows,
                **inp.stats.as_dict(),
                "mapping": inp.mapping.describe(),
            }
            for inp in inputs
        ],
        "stages": [c.as_dict(name) for name, c in stage_counts.items()],
        "rejected_by_reason": {
            reason: {"count": n, "first_lines": examples.get(reason, {})}
            for reason, n in sorted(reasons.items())
        },
        "warnings": {
            code: {
                "count": n,
                "first_lines": warning_lines.get(code, {}),
                "message": warning_messages.get(code),
            }
            for code, n in sorted(warnings.items())
        },
        "totals": {"rows_in": rows_in, **totals},
        "identity": {
            "rows_in": rows_in,
            "train + validation + rejected": totals["train"]
            + totals["validation"]
            + totals["rejected"],
            "holds": holds,
        },
        "outputs": {
            "rejected": "rejected.jsonl",
            "metrics": "metrics.parquet",
        },
    }
