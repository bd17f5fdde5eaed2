"""The only loop: read, run the stages over batches on an engine, decide, write, report.

1. `pipeline.read.plan` plans the inputs (a mapping problem stops the run at once, exit 2) and
   cuts them into work units.
2. The engine (`pipeline.engine`) runs `process_unit` on every unit: its canonical batches go
   through the `read` pseudo-stage, the config's batch stages and the `write` pseudo-stage, one
   `_step` each, which is the one place rows in and out, reasons and changes are counted.
   Kept and rejected lines are spooled (`pipeline.write.spool`) and the metrics rows written
   to a parquet part per unit (`pipeline.write.metrics`); the unit returns its counts and the
   dataset stages' key columns, as compact numpy arrays: the parent keeps no per-record Python
   objects, so its memory does not grow with the input beyond those arrays.
3. Dataset stages decide over the key table of all kept records, in config order (`_decide`,
   which counts what each rejected through the same `Tally`).
4. `pipeline.write` streams the spools and metrics parts into the final files, in unit
   order; `pipeline.gate` gives the verdict
   (target limits, `gate:` options, expectation suites); `pipeline.report` writes report.json,
   report.md and report.html from the run summary.

Outputs depend only on the inputs and the config: not on batch size, worker count or engine.
`inspect` runs the same loop without writing anything, for `ftprep check`.
"""

from __future__ import annotations

import errno
import logging
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import Config, StageSpec, config_sha256, template_setting, token_setting
from pipeline.dataset import Decisions, KeyTable
from pipeline.engine import Engine, get_engine
from pipeline.errors import PipelineError
from pipeline.gate import Problem, Verdict, assess_run, batch_problems, check_suites
from pipeline.read.plan import READ_STAGE, InputFile, Unit, UnitReader, iter_units, plan_inputs
from pipeline.read.plan import read_stage as read_pseudo_stage
from pipeline.read.remote import filesystem, is_url, renamed
from pipeline.registry import stages as registered_stages
from pipeline.report.summary import InputSummary, RunSummary, StageCounts, Tally
from pipeline.write.jsonl import OUTPUT_FILES, WRITE_STAGE, AtomicOutputs, encode
from pipeline.write.metrics import metrics_frame, write_metrics, write_part
from pipeline.write.outputs import describe_files, write_splits
from pipeline.write.spool import Spool, Spooled

log = logging.getLogger("ftprep")


@dataclass
class UnitResult:
    index: int
    file_index: int
    source: str
    rows_in: int
    blank_lines: int
    tally: Tally
    spooled: Spooled
    keys: dict[str, np.ndarray] = field(default_factory=dict)  # "i:column" of dataset stage i
    metrics_path: str = ""  # the unit's metrics part ("" when not written)
    metric_types: dict[str, str] = field(default_factory=dict)  # class of each m_* column
    problems: list[Problem] = field(default_factory=list)  # `inspect` only
    images_unsized: int = 0  # `inspect` only: images counted at the documented minimum
    empty_rows: int = 0
    start: int = -1  # a CSV/TSV byte range: its start, and the offset its reading reached
    reached: int = -1


@dataclass(frozen=True)
class RunResult:
    out_dir: Path
    report: dict[str, Any]
    files: list[Path]
    summary: RunSummary

    @property
    def verdict(self) -> Verdict:
        return self.summary.gate  # type: ignore[no-any-return]


# --- the worker side ----------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _setup(scratch: Path, stages: tuple[StageSpec, ...], batch_size: int, inspect: bool) -> None:
    entries = registered_stages()
    _WORKER.update(
        scratch=None if inspect else scratch,
        batch_size=batch_size,
        inspect=inspect,
        steps=[
            (READ_STAGE, read_pseudo_stage, None),
            *((s.name, entries[s.name].fn, s.config) for s in stages if entries[s.name].fn),
            (WRITE_STAGE, encode, None),
        ],
        keyed=[(i, entries[s.name].keys, s.config) for i, s in enumerate(stages)],
    )


def _step(name: str, batch: pd.DataFrame, fn: Any, cfg: Any, tally: Tally) -> pd.DataFrame:
    """Run one stage over the records not yet rejected, and count what it did."""
    alive = batch["_reason"].isna()
    everyone = bool(alive.all())
    part = batch if everyone else batch[alive]
    if part.empty:
        tally.stage(name, 0)
        return batch
    result, changes = fn(part, cfg)
    if not result.index.equals(part.index):
        raise AssertionError(f"stage {name} changed the rows of its batch")  # a bug
    newly = result["_reason"].notna()
    if newly.any():
        result.loc[newly, "_stage"] = name
        tally.stage(name, len(part), _rejects(result.loc[newly]), changes)
    else:
        tally.stage(name, len(part), (), changes)
    if everyone:
        return result  # type: ignore[no-any-return]
    return pd.concat([batch[~alive], result]).sort_index(kind="stable")


def _rejects(rows: pd.DataFrame) -> Iterator[tuple[str, str, int, str, Any]]:
    columns = (rows[c].tolist() for c in ("_reason", "_source", "_line", "_message", "_record"))
    for (reason, source, line, message, record), raw in zip(
        zip(*columns, strict=True), rows["_raw"].tolist(), strict=True
    ):
        yield reason, source, line, message, raw if record is None else record


def process_unit(unit: Unit) -> UnitResult:
    """Read, run the stages over and spool one unit (runs in a worker)."""
    tally = Tally()
    reader = UnitReader(unit, _WORKER["batch_size"])
    result = UnitResult(unit.index, unit.file_index, unit.source, 0, 0, tally, Spooled("", "", ""))
    keys: dict[str, list[np.ndarray]] = {}
    metrics: list[pd.DataFrame] = []
    with Spool(_WORKER["scratch"], unit.index, unit.by_record) as spool:
        for batch in reader:
            result.rows_in += len(batch)
            for name, fn, stage_cfg in _WORKER["steps"]:
                batch = _step(name, batch, fn, stage_cfg, tally)
            spool.write(batch)
            kept = batch[batch["_reason"].isna()]
            warned = kept["_warnings"]
            if warned.notna().any():
                for codes, src, line in zip(warned, kept["_source"], kept["_line"], strict=True):
                    for code, message in codes or ():
                        tally.warned(code, message, src, int(line))
            for i, key_fn, stage_cfg in _WORKER["keyed"]:
                if key_fn is not None and not kept.empty:
                    for col, values in key_fn(kept, stage_cfg).items():
                        keys.setdefault(f"{i}:{col}", []).append(np.asarray(values))
            if _WORKER["inspect"]:
                result.problems.extend(batch_problems(batch))
                if "m_images_unsized" in batch:
                    result.images_unsized += int(batch["m_images_unsized"].fillna(0).sum())
            else:
                metrics.append(metrics_frame(batch))
    result.keys = {k: np.concatenate(v) for k, v in keys.items()}
    if metrics:
        part = Path(_WORKER["scratch"]) / f"unit-{unit.index:07d}.metrics.parquet"
        result.metric_types = write_part(metrics, part)
        result.metrics_path = str(part)
    result.spooled = spool.spooled
    result.blank_lines = reader.blank_lines
    result.empty_rows = reader.empty_rows
    if unit.csv is not None and unit.byte_range is not None:
        result.start, result.reached = unit.byte_range[0], reader.reached.offset
    return result


# --- the parent side ----------------------------------------------------------------------


def _execute(
    cfg: Config,
    inputs: list[InputFile],
    scratch: Path,
    engine: Engine | None,
    inspect: bool,
    progress: bool = False,
) -> tuple[list[UnitResult], Tally]:
    from pipeline.progress import Progress

    engine = engine or get_engine(cfg.runner.workers)
    shown = Progress(inputs, progress)
    results = _covered(
        shown.results(
            engine.map(
                process_unit,
                shown.units(iter_units(inputs, cfg)),
                setup=_setup,
                setup_args=(cfg.stages, cfg.runner.batch_size, inspect),
                scratch=scratch,
            )
        )
    )
    # the report lists the steps in the order they run: dataset stages after `write`
    entries = registered_stages()
    batch = [s.name for s in cfg.stages if entries[s.name].fn is not None]
    dataset = [s.name for s in cfg.stages if entries[s.name].fn is None]
    tally = Tally({name: StageCounts() for name in (READ_STAGE, *batch, WRITE_STAGE, *dataset)})
    for r in results:
        tally.merge(r.tally)
    return results, tally


def _covered(results: Iterable[UnitResult]) -> list[UnitResult]:
    """The results in unit order, less the CSV/TSV ranges that an earlier range's reading
    already covered (a malformed record read on past its range's end: `csv_ranges`)."""
    kept: list[UnitResult] = []
    upto: dict[int, int] = {}
    for r in results:
        if r.reached >= 0:
            if r.start < upto.get(r.file_index, -1):
                continue
            upto[r.file_index] = r.reached
        kept.append(r)
    return kept


def _warn_empty(inputs: list[InputFile], results: list[UnitResult]) -> None:
    """Say so, by name, when an input gave no records at all (a wrong file, most often)."""
    from pipeline.read import empty_file

    read = dict.fromkeys((inp.index for inp in inputs), 0)
    for r in results:
        read[r.file_index] += r.rows_in
    for inp in inputs:
        if read[inp.index] == 0:
            log.warning("warning: %s: %s", inp.source, empty_file(inp.path))


def _decide(
    results: list[UnitResult], cfg: Config, tally: Tally
) -> tuple[Decisions, dict[str, Any]]:
    """Run the dataset stages, in config order, over the key table of all kept records."""
    entries = registered_stages()
    n = sum(r.spooled.kept for r in results)
    decisions = Decisions.all_train(n)
    info: dict[str, Any] = {}
    deciding = [(i, s) for i, s in enumerate(cfg.stages) if entries[s.name].decide is not None]
    if not deciding:
        return decisions, info
    source = RowSources([r.source for r in results], [r.spooled.kept for r in results])
    empty = np.empty(0, np.int64)
    line = np.concatenate([empty, *(r.spooled.kept_lines for r in results)])
    nbytes = np.concatenate([empty, *(r.spooled.kept_bytes for r in results)])
    record_sources = frozenset(r.source for r in results if r.spooled.by_record)
    for i, spec in deciding:
        prefix = f"{i}:"
        gathered: dict[str, list[np.ndarray]] = {}
        for r in results:
            for key in [k for k in r.keys if k.startswith(prefix)]:
                # taken out of the unit: the joined column is the only copy from here on
                gathered.setdefault(key[len(prefix) :], []).append(r.keys.pop(key))
        columns = {k: _joined(v) for k, v in gathered.items()}
        del gathered
        table = KeyTable(source, line, columns, nbytes, record_sources)
        alive = decisions.alive()
        decide = entries[spec.name].decide
        assert decide is not None
        # a stage listed twice (dedupe exact, then near) keeps both reports: name[i] for later
        key = spec.name if spec.name not in info else f"{spec.name}[{i}]"
        info[key] = decide(table, decisions, spec.config)
        newly = np.flatnonzero(alive & ~decisions.alive()).tolist()
        if entries[spec.name].fn is None:  # a batch stage's decision only warns: counted above
            rejected = (
                (decisions.reasons[r][1], source[r], int(line[r]), decisions.reasons[r][2], None)
                for r in newly
            )
            tally.stage(spec.name, int(alive.sum()), rejected)
        elif newly:
            raise AssertionError(f"batch stage {spec.name} rejected in its decision")  # a bug
    for row in sorted(decisions.warnings):
        for code, message in decisions.warnings[row]:
            tally.warned(code, message, source[row], int(line[row]))
    return decisions, info


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    """One key column from its per-unit arrays (what `np.asarray` of all the values gives)."""
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts)


class RowSources(Sequence[str]):
    """The source of each key-table row, from the units' sources and kept counts: a compact
    stand-in for a list of one string per record."""

    def __init__(self, sources: list[str], counts: list[int]) -> None:
        self.sources = sources
        self.ends = np.cumsum(np.asarray(counts, dtype=np.int64))

    def __len__(self) -> int:
        return int(self.ends[-1]) if len(self.ends) else 0

    def __getitem__(self, row: Any) -> Any:
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        row = int(row)
        if row < 0:
            row += len(self)
        if not 0 <= row < len(self):
            raise IndexError(row)
        return self.sources[int(np.searchsorted(self.ends, row, side="right"))]


def _inputs(inputs: list[InputFile], results: list[UnitResult]) -> list[InputSummary]:
    out = []
    for inp in inputs:
        mine = [r for r in results if r.file_index == inp.index]
        inp.stats.blank_lines += sum(r.blank_lines for r in mine)
        inp.stats.empty_rows += sum(r.empty_rows for r in mine)
        rows = sum(r.rows_in for r in mine)
        out.append(
            InputSummary(inp.source, inp.fmt, rows, inp.stats.as_dict(), inp.mapping.describe())
        )
    return out


def run(cfg: Config, *, engine: Engine | None = None, progress: bool = False) -> RunResult:
    """Run a validated config end to end; returns the report. Raises PipelineError.
    `progress` draws a bar per input on stderr (`pipeline.progress`)."""
    check_suites(cfg.gate.expectations)
    target_info: dict[str, Any] = {}
    if cfg.target is not None:
        from pipeline.targets import run_facts

        target_info = run_facts(cfg.target)
        if target_info["shutdown_warning"]:
            log.warning("warning: %s", target_info["shutdown_warning"])
    retired = _retired(cfg)
    # local inputs are planned before the output folder is touched; URL inputs are copied into
    # the run's scratch folder first, so they are planned inside it (`_run_into`)
    urls = [p for p in cfg.input.paths if is_url(p)]
    for url in urls:  # fsspec and the protocol's package are there, before a folder is made
        filesystem(url)
    inputs = None if urls else _plan(cfg, None)
    out_dir = Path(cfg.output.dir)
    try:
        return _run_into(cfg, inputs, out_dir, engine, target_info, retired, progress)
    except OSError as exc:
        raise write_error(out_dir, exc) from None


def write_error(out_dir: Path, exc: OSError) -> PipelineError:
    """One line for an OSError while a run writes: the folder, the cause, and that nothing
    was written (`AtomicOutputs` removed its temporary folder on the way out)."""
    cause = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(exc):
        hint = "free some space or choose another folder with --out"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "choose a folder you can write to with --out"
    else:
        hint = f"the file was {exc.filename}" if exc.filename else "check the folder"
    return PipelineError(
        f"{out_dir}: cannot write the outputs: {cause}; nothing was written and the previous "
        f"outputs are as they were. {hint[0].upper()}{hint[1:]}."
    )


def _plan(cfg: Config, fetch_to: Path | None) -> list[InputFile]:
    inputs = plan_inputs(cfg, fetch_to)
    for inp in inputs:
        log.info("%s: %s, %s shape", inp.source, inp.fmt, inp.mapping.shape)
    return inputs


def _run_into(
    cfg: Config,
    inputs: list[InputFile] | None,
    out_dir: Path,
    engine: Engine | None,
    target_info: dict[str, Any],
    retired: list[Problem],
    progress: bool,
) -> RunResult:
    from pipeline import __version__ as version
    from pipeline.report.files import write_reports
    from pipeline.report.stats import ReportColumns, message_section, token_section

    with AtomicOutputs(out_dir) as outputs:
        scratch = outputs.scratch("")
        if inputs is None:
            inputs = _plan(cfg, scratch / "inputs")
        try:
            results, tally = _execute(
                cfg, inputs, scratch, engine, inspect=False, progress=progress
            )
        except PipelineError as exc:  # a URL's copy is named by its URL
            raise renamed(exc, {str(i.path): i.source for i in inputs if i.url}) from None
        _warn_empty(inputs, results)
        decisions, dataset_info = _decide(results, cfg, tally)
        spools = [(r.source, r.spooled) for r in results]
        written = write_splits(spools, decisions, outputs, bom=bool(target_info.get("bom")))
        metrics = [
            (r.source, r.metrics_path, r.metric_types, r.spooled.kept_ords, r.spooled.by_record)
            for r in results
        ]
        write_metrics(
            metrics, decisions, outputs.path("metrics.parquet"), cfg.runner.batch_size
        )
        rows_in = sum(r.rows_in for r in results)
        input_summaries = _inputs(inputs, results)
        # the key table (per kept record) is read no further: let it go before the report
        del results, spools, metrics, decisions
        columns = ReportColumns.from_parquet(outputs.path("metrics.parquet"))
        totals = {"rows_in": rows_in, **written}
        verdict, expectations = assess_run(
            cfg.gate, str(out_dir), totals, dataset_info, outputs.path("metrics.parquet")
        )
        verdict.problems[:0] = retired
        summary = RunSummary(
            version=version,
            config=cfg.source,
            target=cfg.target,
            inputs=input_summaries,
            tally=tally,
            totals=totals,
            dataset=dataset_info,
            outputs=describe_files(outputs, dataset_info, target_info),
            target_info=target_info,
            gate=verdict,
            config_sha256=config_sha256(cfg),
            tokens=token_section(
                columns, *token_setting(cfg), cfg.target, template_setting(cfg)
            ),
            messages=message_section(columns),
            expectations=expectations,
            out_dir=out_dir,
        )
        del columns
        report = write_reports(summary, outputs.path)
        if not summary.identity_holds:
            t = summary.totals
            raise PipelineError(
                f"records were lost: rows_in {rows_in} != train {t['train']} + validation "
                f"{t['validation']} + rejected {t['rejected']}; outputs not written"
            )
        files = outputs.commit(OUTPUT_FILES)
    for name, c in tally.stages.items():
        log.info("stage %s: %d in, %d out %s", name, c.rows_in, c.rows_out, dict(c.rejected))
    return RunResult(out_dir, report, files, summary)


def _retired(cfg: Config) -> list[Problem]:
    """`target_retired` when the run's target takes no new jobs: an error that fails the gate,
    or a warning with `gate.allow_retired`."""
    if cfg.target is None:
        return []
    from pipeline import targets

    message = targets.retired_message(targets.get_target(cfg.target), targets.today())
    if message is None:
        return []
    if cfg.gate.allow_retired:
        return [Problem("warning", "target_retired", message + " (allowed by gate.allow_retired)")]
    return [Problem("error", "target_retired", message + "; or set gate.allow_retired: true")]


@dataclass(frozen=True)
class Inspection:
    """What `inspect` found: the inputs, every record's problems, the dataset decisions."""

    inputs: list[InputSummary]
    problems: list[Problem]
    dataset: dict[str, Any]
    rows_in: int
    images_at_minimum: int = 0  # over the records counted: their counts are a lower bound


def inspect(
    cfg: Config, *, engine: Engine | None = None, log_warnings: bool = True
) -> Inspection:
    """Run the loop and the dataset decisions in memory: nothing is written. For checks, which
    show the inputs' file-level warnings themselves (`log_warnings=False`)."""
    with tempfile.TemporaryDirectory(prefix="ftprep-") as scratch:
        inputs = plan_inputs(cfg, Path(scratch) / "inputs", log_warnings=log_warnings)
        results, tally = _execute(cfg, inputs, Path(scratch), engine, inspect=True)
    _decisions, dataset_info = _decide(results, cfg, tally)
    problems = [p for r in results for p in r.problems]
    rows_in = sum(r.rows_in for r in results)
    images = sum(r.images_unsized for r in results)
    return Inspection(_inputs(inputs, results), problems, dataset_info, rows_in, images)
