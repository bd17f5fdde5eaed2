"""The run config: YAML into typed, frozen objects, validated completely before any data is read.

Every field is a dataclass field with a `doc` in its metadata; docs/config.md is generated from
them (`config_reference()`), so a field cannot exist undocumented. Unknown keys, unknown stages
and bad values raise `PipelineError` naming the file, the key path (`stages[2].max_tokens`),
what was expected and the closest known name.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml

from pipeline.configdoc import ConfigValueError, doc
from pipeline.errors import PipelineError
from pipeline.read.base import Limits
from pipeline.registry import stages as registered_stages

FORMATS = ("auto", "csv", "tsv", "xlsx", "xls", "ods", "json", "jsonl", "parquet")
CANONICAL_FIELDS = (
    "prompt",
    "completion",
    "messages",
    "tools",
    "functions",
    "input",
    "preferred_output",
    "non_preferred_output",
)


@dataclass(frozen=True)
class InputConfig:
    paths: tuple[str, ...] = doc(
        "Files, globs or directories to read, relative to the current directory, or fsspec "
        "URLs (`s3://bucket/data/*.jsonl`, `gs://`, `az://`, `https://`, `file://`; with "
        "`pip install 'ftprep[remote]'` and the protocol's package, e.g. s3fs or gcsfs), "
        "which are copied into the run's scratch folder first (docs/inputs.md). "
        "`--input PATH` (repeatable) replaces this list.",
        (),
    )
    format: Literal["auto", "csv", "tsv", "xlsx", "xls", "ods", "json", "jsonl", "parquet"] = doc(
        "Input format; `auto` decides by file extension (.csv .tsv .tab .xlsx .xlsm .xls .ods "
        ".json .jsonl .ndjson .parquet .pq) and by the first bytes: a file whose content is "
        "another format than its extension says (an .xls named .xlsx, JSON Lines named .json), "
        "or whose extension names none (.txt), is read as what it is, with the warning "
        "`format_from_content` (docs/inputs.md).",
        "auto",
    )
    encoding: str = doc(
        "`auto` (BOM, then strict UTF-8, then chardet), or a Python codec name such as `gbk` "
        "that overrides detection.",
        "auto",
    )
    encoding_errors: Literal["reject", "replace", "strict"] = doc(
        "What to do with bytes that do not decode in a file that is otherwise text in its "
        "encoding (e.g. invalid UTF-8 in a UTF-8 file): `reject` the records that hold them "
        "(`encoding_invalid`, with line and byte offset), `replace` them by U+FFFD and keep "
        "the record (warning `encoding_replaced`, counted), or `strict`: refuse the file "
        "(exit 2).",
        "reject",
    )
    limits: Limits = doc(
        "What one input may cost; past a record limit the record is rejected, past a file "
        "limit the file is refused (exit 2) before it is parsed.",
        Limits(),
    )
    sheet: str | None = doc("XLSX/XLS/ODS sheet name; null reads the first sheet.", None)
    header: Literal["auto", True, False] = doc(
        "CSV/TSV/XLSX/XLS/ODS: whether the first row is a header. `auto` compares it with the "
        "rows below (types, lengths, repeated values, usual column names) and warns "
        "(`header_guessed`) when it reads row 1 as data or is not sure; `true` or `false` "
        "decide, with a warning (`header_mismatch`) when row 1 clearly says otherwise. Without "
        "a header the columns are named `column_1`, `column_2`, ... and row 1 is a record. "
        "report.json says which was used (`inputs[].header`).",
        "auto",
    )
    records: str | None = doc(
        "JSON: the key (or dotted path, e.g. `data.examples`) of the array of records inside "
        "a top-level object; null reads a top-level array, or the only array of the object.",
        None,
    )
    delimiter: str | None = doc(
        "CSV/TSV delimiter; null uses `,` for .csv and a tab for .tsv, sniffed when the header "
        "has neither.",
        None,
    )
    columns: dict[str, str] | None = doc(
        "Canonical field -> source column or key, e.g. `{prompt: question, completion: answer}`. "
        "Null recognises the common shapes (prompt/completion, messages, alpaca, ShareGPT, "
        "Dolly, question/answer).",
        None,
    )

    def __post_init__(self) -> None:
        if self.records is not None and not self.records.strip(" ."):
            raise ConfigValueError("records", "an empty key; leave `records` out instead")
        if self.columns is not None:
            for key in self.columns:
                if key not in CANONICAL_FIELDS:
                    raise ConfigValueError(
                        f"columns.{key}",
                        f"unknown canonical field {key!r}; known: {', '.join(CANONICAL_FIELDS)}"
                        + _did_you_mean(key, CANONICAL_FIELDS),
                    )
            if not self.columns:
                raise ConfigValueError("columns", "an empty mapping; leave `columns` out instead")


@dataclass(frozen=True)
class OutputConfig:
    dir: str = doc(
        "Output directory (created if missing); `--out DIR` replaces it. Outputs in it are "
        "replaced atomically at the end of a run.",
        "out/",
    )


@dataclass(frozen=True)
class RunnerConfig:
    workers: int | None = doc(
        "Worker processes; null uses one per core. `--workers N` replaces it. 1 runs in-process.",
        None,
    )
    batch_size: int = doc("Records per batch handed to the stages.", 10_000)
    chunk_bytes: int = doc(
        "Bytes each worker reads itself per work unit (UTF-8 JSONL, and CSV/TSV in an "
        "encoding that can be cut by bytes, are split into byte ranges). A worker's memory "
        "grows with its unit, not with the file: 4 MiB keeps it the same from a 30 MB file "
        "to a 1 GB one.",
        4 * 1024 * 1024,
    )

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ConfigValueError("workers", f"{self.workers}; expected a whole number >= 1")
        if self.batch_size < 1:
            raise ConfigValueError("batch_size", f"{self.batch_size}; expected a whole number >= 1")
        if self.chunk_bytes < 1:
            raise ConfigValueError("chunk_bytes", f"{self.chunk_bytes}; expected >= 1")


@dataclass(frozen=True)
class GateConfig:
    expectations: tuple[str, ...] = doc(
        "Great Expectations suites run over the metrics of the kept records and a one-row "
        "dataset table: paths of JSON files (relative to the working directory), or the name "
        "of a shipped suite (`chat`, `prompt_completion`, `preference`, `classification`) "
        "when no such file exists. A failed error-level expectation fails the gate (exit 1). "
        "docs/gate.md.",
        (),
    )
    max_rejected_share: float | None = doc(
        "Fail the gate (`too_many_rejected`) when more than this share of the input records is "
        "rejected; null: no limit.",
        None,
    )
    target_limits: bool = doc(
        "With a `target:`, check its example-count and file-size limits and estimate the cost "
        "even when `stages:` does not list `dataset_limits` (which is then added, with its "
        "defaults, after the other stages). false turns that off; a listed `dataset_limits` "
        "always runs.",
        True,
    )
    allow_retired: bool = doc(
        "Let the gate pass with a `target:` that no longer accepts fine-tuning jobs (past its "
        "profile's `shutdown.training_shutdown`): the run then warns (`target_retired`) instead "
        "of failing the gate with the date and a replacement target.",
        False,
    )

    def __post_init__(self) -> None:
        share = self.max_rejected_share
        if share is not None and not 0 <= share <= 1:
            raise ConfigValueError("max_rejected_share", f"{share}; expected a share in [0, 1]")


@dataclass(frozen=True)
class StageSpec:
    """One entry of `stages:`: the stage's name and its validated, frozen config."""

    name: str
    config: Any


@dataclass(frozen=True)
class Config:
    input: InputConfig = doc("Where and how to read the data.", InputConfig())
    target: str | None = doc(
        "Target profile, e.g. `openai:gpt-4o-mini-2024-07-18`; `ftprep targets` lists them.",
        None,
    )
    stages: tuple[StageSpec, ...] = doc(
        "Stages, run top to bottom; each entry is `name:` plus that stage's options side by side.",
        (),
    )
    output: OutputConfig = doc("Where to write.", OutputConfig())
    runner: RunnerConfig = doc("How batches are run.", RunnerConfig())
    gate: GateConfig = doc(
        "When the output fails the gate (exit 1), beside the target's limits.", GateConfig()
    )
    source: str = field(default="<config>", metadata={"internal": True})


def _did_you_mean(name: str, known: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(
            str(a).lower() if isinstance(a, bool) else repr(a) for a in get_args(tp)
        )
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if tp is type(None):
        return "null"
    if origin is tuple:
        return f"a list of {_type_name(get_args(tp)[0])}"
    if origin is dict:
        return "a mapping of names to text"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {str: "text", int: "a whole number", float: "a number", bool: "true or false"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


class _Builder:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, problem: str) -> PipelineError:
        where = f"{self.source}: {path}" if path else self.source
        return PipelineError(f"{where}: {problem}")

    def value(self, tp: Any, value: Any, path: str) -> Any:
        origin = get_origin(tp)
        if tp is Any:
            return value
        if origin in (Union, types.UnionType):
            args = get_args(tp)
            if value is None and type(None) in args:
                return None
            last: PipelineError | None = None
            for arg in args:
                if arg is type(None):
                    continue
                try:
                    return self.value(arg, value, path)
                except PipelineError as exc:
                    last = exc
            assert last is not None
            raise last
        if origin is Literal:
            allowed = get_args(tp)
            if value not in allowed:
                raise self.fail(
                    path,
                    f"{value!r} is not allowed; expected one of {', '.join(map(repr, allowed))}"
                    + (_did_you_mean(value, map(str, allowed)) if isinstance(value, str) else ""),
                )
            return value
        if origin is tuple:
            (item_tp, *_rest) = get_args(tp)
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list):
                raise self.fail(path, f"expected {_type_name(tp)}, got {_yaml_type(value)}")
            return tuple(self.value(item_tp, v, f"{path}[{i}]") for i, v in enumerate(value))
        if origin is dict:
            if not isinstance(value, dict):
                raise self.fail(path, f"expected {_type_name(tp)}, got {_yaml_type(value)}")
            key_tp, val_tp = get_args(tp)
            return {
                self.value(key_tp, k, path): self.value(val_tp, v, f"{path}.{k}")
                for k, v in value.items()
            }
        if dataclasses.is_dataclass(tp):
            return self.dataclass(tp, value, path)
        if tp is bool:
            if not isinstance(value, bool):
                raise self.fail(path, f"expected true or false, got {value!r}")
            return value
        if tp is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise self.fail(path, f"expected a whole number, got {value!r}")
            return value
        if tp is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise self.fail(path, f"expected a number, got {value!r}")
            return float(value)
        if tp is str:
            if not isinstance(value, str):
                raise self.fail(path, f"expected text, got {_yaml_type(value)} {value!r}")
            return value
        raise TypeError(f"config type {tp!r} is not supported")  # a bug, not a user mistake

    def dataclass(self, cls: Any, data: Any, path: str, skip: tuple[str, ...] = ()) -> Any:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise self.fail(path, f"expected a mapping, got {_yaml_type(data)}")
        hints = typing.get_type_hints(cls)
        fields = {
            f.name: f
            for f in dataclasses.fields(cls)
            if f.init and not f.metadata.get("internal") and f.name not in skip
        }
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            key_path = f"{path}.{key}" if path else str(key)
            if key in skip:
                continue
            if key not in fields:
                known = sorted(fields)
                raise self.fail(
                    key_path,
                    "unknown key; expected one of: "
                    + (", ".join(known) if known else "(no options)")
                    + _did_you_mean(str(key), known),
                )
            if cls is Config and key == "stages":
                kwargs[key] = self.stages(value, key_path)
            else:
                kwargs[key] = self.value(hints[key], value, key_path)
        try:
            return cls(**kwargs)
        except ConfigValueError as exc:
            key_path = f"{path}.{exc.key}" if path else exc.key
            raise self.fail(key_path, exc.problem) from None

    def stages(self, value: Any, path: str) -> tuple[StageSpec, ...]:
        known = registered_stages()
        if not isinstance(value, list):
            raise self.fail(path, f"expected a list of stages, got {_yaml_type(value)}")
        specs: list[StageSpec] = []
        for i, entry in enumerate(value):
            entry_path = f"{path}[{i}]"
            if isinstance(entry, str):
                entry = {"name": entry}
            if not isinstance(entry, dict) or "name" not in entry:
                raise self.fail(entry_path, "expected a mapping with `name:` (the stage's name)")
            name = entry["name"]
            if name not in known:
                raise self.fail(
                    f"{entry_path}.name",
                    f"unknown stage {name!r}; known stages: {', '.join(sorted(known))}"
                    + _did_you_mean(str(name), known),
                )
            cfg = self.dataclass(known[name].config_cls, entry, entry_path, skip=("name",))
            specs.append(StageSpec(name=name, config=cfg))
        return tuple(specs)


def _yaml_type(value: Any) -> str:
    return {
        dict: "a mapping",
        list: "a list",
        str: "text",
        int: "a number",
        float: "a number",
        bool: "true/false",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def parse_config(data: Any, source: str = "<config>") -> Config:
    """Validate a loaded YAML document into a `Config` (raises PipelineError)."""
    builder = _Builder(source)
    if data is None:
        data = {}
    cfg: Config = builder.dataclass(Config, data, "")
    cfg = _with_stage_targets(cfg, builder)
    return dataclasses.replace(cfg, source=source)


def _with_stage_targets(cfg: Config, builder: _Builder) -> Config:
    """Check every target name, and give stages with a `target` option left null the run's."""
    from pipeline.targets import get_target

    def check(name: str, path: str) -> None:
        try:
            get_target(name)
        except PipelineError as exc:
            raise builder.fail(path, str(exc)) from None

    if cfg.target is not None:
        check(cfg.target, "target")
    stages = []
    for i, spec in enumerate(cfg.stages):
        names = {f.name for f in dataclasses.fields(spec.config)}
        if "target" in names:
            own = spec.config.target
            if own is None and cfg.target is not None:
                try:  # the stage's checks run again, now against the run's target
                    options = dataclasses.replace(spec.config, target=cfg.target)
                except ConfigValueError as exc:
                    raise builder.fail(f"stages[{i}].{exc.key}", exc.problem) from None
                spec = StageSpec(spec.name, options)
            elif own is not None:
                check(own, f"stages[{i}].target")
        stages.append(spec)
    names = {s.name for s in stages}
    if cfg.target is not None and cfg.gate.target_limits and "dataset_limits" not in names:
        limits = registered_stages()["dataset_limits"].config_cls(target=cfg.target)
        stages.append(StageSpec("dataset_limits", limits))
    return dataclasses.replace(cfg, stages=tuple(stages))


def load_config(path: str | Path) -> Config:
    """Read and validate a config file. A name that is not a file but the name of a shipped
    config (`openai_chat`, see `pipeline.shipped`) reads that one."""
    from pipeline import shipped

    p = Path(path)
    source = str(p)
    named = None if p.exists() else shipped.find("configs", str(path))
    try:
        if named is None:
            text = p.read_text(encoding="utf-8")
        else:
            text = named.read_text(encoding="utf-8")
            source = f"{p.stem} (shipped)"
    except FileNotFoundError:
        raise PipelineError(
            f"{p}: config file not found{shipped.hint('configs', str(path))}"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PipelineError(f"{p}: cannot read the config file ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PipelineError(f"{source}{where}: not valid YAML: {problem}") from None
    if data is not None and not isinstance(data, dict):
        raise PipelineError(f"{source}: expected a mapping at the top of the file")
    return parse_config(data, source)


def parse_columns(text: str) -> dict[str, str]:
    """`--columns prompt=question,completion=answer` as `input.columns`."""
    columns: dict[str, str] = {}
    for part in text.split(","):
        field_name, sep, column = part.partition("=")
        field_name, column = field_name.strip(), column.strip()
        if not sep or not field_name or not column:
            raise PipelineError(
                f"--columns {text}: expected FIELD=COLUMN pairs separated by commas, e.g. "
                "--columns prompt=question,completion=answer (a column whose name holds a comma "
                "or `=`: use input.columns in a config)"
            )
        if field_name in columns:
            raise PipelineError(f"--columns {text}: {field_name} is given twice")
        columns[field_name] = column
    return columns


def with_overrides(
    cfg: Config,
    inputs: typing.Sequence[str] = (),
    out: str | None = None,
    workers: int | None = None,
    columns: str | None = None,
) -> Config:
    """Apply the command line's `--input`, `--out`, `--workers` and `--columns` to a config."""
    if inputs:
        cfg = dataclasses.replace(cfg, input=dataclasses.replace(cfg.input, paths=tuple(inputs)))
    if columns is not None:
        try:
            given = dataclasses.replace(cfg.input, columns=parse_columns(columns))
        except ConfigValueError as exc:
            raise PipelineError(f"--columns {columns}: {exc.problem}") from None
        cfg = dataclasses.replace(cfg, input=given)
    if out is not None:
        cfg = dataclasses.replace(cfg, output=dataclasses.replace(cfg.output, dir=out))
    if workers is not None:
        if workers < 1:
            raise PipelineError(f"--workers {workers}: expected a whole number >= 1")
        cfg = dataclasses.replace(cfg, runner=dataclasses.replace(cfg.runner, workers=workers))
    return cfg


def config_sha256(cfg: Config) -> str:
    """A hash of the resolved config: every option that can change the outputs, defaults
    filled in. Left out: the file name, `runner:` (outputs never depend on it) and
    `output.dir` (where, not what)."""
    import hashlib

    import orjson

    data = dataclasses.asdict(cfg)
    for key in ("source", "runner"):
        data.pop(key, None)
    data["output"].pop("dir", None)
    data["stages"] = [{"name": s.name, **dataclasses.asdict(s.config)} for s in cfg.stages]
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _default_text(f: dataclasses.Field[Any]) -> str:
    if f.default is not dataclasses.MISSING:
        d = f.default
        if dataclasses.is_dataclass(d):
            return "(section)"
        if d is None:
            return "`null`"
        if isinstance(d, tuple):
            return "`[]`" if not d else f"`{list(d)}`"
        if isinstance(d, bool):
            return f"`{str(d).lower()}`"
        return f"`{d!r}`" if isinstance(d, str) else f"`{d}`"
    return "(required)"


def iter_documented_fields(cls: Any, prefix: str = "") -> typing.Iterator[tuple[str, Any, Any]]:
    """(key path, field, type) for every user-facing field of a config dataclass, depth first."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal") or not f.init:
            continue
        key = f"{prefix}{f.name}"
        yield key, f, hints[f.name]
        if dataclasses.is_dataclass(hints[f.name]):
            yield from iter_documented_fields(hints[f.name], key + ".")


def config_reference() -> str:
    """docs/config.md, generated from the config classes and the stage registry."""
    known = registered_stages()

    lines = [
        "# Config reference",
        "",
        "<!-- Generated by `python -m pipeline.config > docs/config.md`; do not edit by hand. -->",
        "",
        "A run config is YAML. Every key below is optional unless marked required; unknown keys",
        "are an error that names the key path and the closest known name.",
        "",
        "| key | type | default | meaning |",
        "|---|---|---|---|",
    ]
    for key, f, tp in iter_documented_fields(Config):
        lines.append(f"| `{key}` | {_type_name(tp)} | {_default_text(f)} | {f.metadata['doc']} |")
    lines += ["", "## Stages", ""]
    lines.append(
        "Each entry of `stages:` is `name: STAGE` plus that stage's options side by side, e.g."
    )
    lines += ["", "```yaml", "stages:", "  - name: normalize_text", "    strip_trailing: true", "```"]
    for name in sorted(known):
        spec = known[name]
        lines += ["", f"### `{name}`", "", spec.summary, ""]
        fields = list(iter_documented_fields(spec.config_cls))
        if not fields:
            lines.append("No options.")
            continue
        lines += ["| option | type | default | meaning |", "|---|---|---|---|"]
        for key, f, tp in fields:
            lines.append(
                f"| `{key}` | {_type_name(tp)} | {_default_text(f)} | {f.metadata['doc']} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(config_reference(), end="")


def token_setting(cfg: Config) -> tuple[str | None, int | None]:
    """The encoding the run's token counts use and the per-example limit they are held to
    (from `count_tokens`, `token_limit` and `dataset_limits`), for the report: (None, None)
    when no stage counts tokens."""
    from pipeline.targets import get_target
    from pipeline.tokens import resolve_encoding

    encoding: str | None = None
    limit: int | None = None
    for spec in cfg.stages:
        options = spec.config
        if spec.name not in ("count_tokens", "token_limit", "dataset_limits"):
            continue
        target = getattr(options, "target", None)
        if encoding is None and getattr(options, "tokenizer", None):
            encoding = f"tokenizer.json:{options.tokenizer}"
        if encoding is None and spec.name != "dataset_limits":
            encoding = resolve_encoding(target, getattr(options, "encoding", None))
        if limit is None and spec.name == "token_limit" and options.max_tokens is not None:
            limit = options.max_tokens
        if limit is None and spec.name != "count_tokens" and target is not None:
            limit = get_target(target).max_tokens_per_example
    return encoding, limit


def template_setting(cfg: Config) -> str | None:
    """The chat template the run's `count_tokens` renders each chat example with (its file,
    `#name` for a named one), for the report; None when it renders none."""
    for spec in cfg.stages:
        if spec.name == "count_tokens":
            template = spec.config.template()
            return None if template is None else str(template.source)
    return None
