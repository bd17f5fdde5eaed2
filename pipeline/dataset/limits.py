"""dataset_limits: the target's example-count limits, and the training cost and epochs estimate.

A dataset stage (registered as `dataset_limits` by this module; see `pipeline.dataset`). Its
`keys` give the key table each kept record's `m_tokens_total` (from `count_tokens`; counted
here with the same rules, `pipeline.tokens.measure`, when that stage did not run). Its
`decide` rejects nothing; it returns, for the report (`report.json` ->
`dataset.dataset_limits`):

- `examples`: training and validation counts against the target's `min_examples` /
  `max_examples` (or the options). A training set below the minimum or above the maximum
  fails the gate: `gate_failed: true` and `gate_reasons` (`too_few_examples`,
  `too_many_examples`), each with a message. OpenAI refuses a job with fewer than 10 examples
  (`invalid_n_examples`).
- `epochs`: the `epochs` option, else the target's `epochs_rule`: a fixed number, or
  `openai_default`, the OpenAI cookbook's estimate of `n_epochs="auto"`: 3 epochs, raised to
  `min(25, 100 // n)` when `3 * n < 100`, lowered to `max(1, 25000 // n)` when
  `3 * n > 25000` (n = training examples). A target without a rule gets the cookbook's rule.
- `tokens` and `cost`: billed training tokens = the sum over training records of
  `m_tokens_total`, each capped at the target's `max_tokens_per_example` (the service
  truncates longer ones, as the cookbook's estimate assumes), times the epochs; cost = billed /
  1M x `price_per_1m_training_tokens`, with the profile's `price_date`. Validation tokens are
  shown separately: OpenAI does not bill them.
- `compare`: the same estimate for each target named in `compare` (with the tokens as counted
  for this run's tokenizer; the entry says when that target uses another one).

Which records are validation is known only after a split stage: list `dataset_limits` after
`split` in the config, or every kept record counts as training.

Reason codes: none (gate reasons are in the report, not on records).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from pipeline.configdoc import doc
from pipeline.dataset import TRAIN, VALIDATION, Decisions, KeyTable
from pipeline.errors import PipelineError
from pipeline.registry import register_dataset

NAME = "dataset_limits"
SUMMARY = (
    "Example-count limits of the target (gate), training tokens, epochs and cost estimate; "
    "list it after `split` to see the validation set."
)

# OpenAI cookbook (Chat_finetuning_data_prep.ipynb) constants for n_epochs="auto".
TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25


@dataclass(frozen=True)
class DatasetLimitsConfig:
    target: str | None = doc(
        "Target profile whose example limits, token limit, price and epochs rule apply; "
        "defaults to the run's `target:`.",
        None,
    )
    min_examples: int | None = doc(
        "Fewest training examples; null uses the target's `min_examples`.", None
    )
    max_examples: int | None = doc(
        "Most training examples; null uses the target's `max_examples`.", None
    )
    epochs: int | None = doc(
        "Epochs for the cost estimate; null uses the target's `epochs_rule` (OpenAI: 3, "
        "clamped so that examples x epochs stays within [100, 25000], epochs within [1, 25]).",
        None,
    )
    compare: tuple[str, ...] = doc(
        "Other target profiles to estimate the training cost for, side by side.", ()
    )
    max_file_bytes: int | None = doc(
        "Largest output file the target takes; null uses the target's `max_file_bytes`.", None
    )
    shard: bool = doc(
        "Write a train or validation file larger than `max_file_bytes` as shards "
        "(`train-00001.jsonl`, ...); false fails the gate instead (`file_too_large`).",
        True,
    )
    encoding: Literal["cl100k_base", "o200k_base"] | None = doc(
        "Encoding used when no `count_tokens` stage ran and the target names none of the "
        "bundled ones (null: o200k_base).",
        None,
    )

    def __post_init__(self) -> None:
        from pipeline.configdoc import ConfigValueError

        if self.max_file_bytes is not None and self.max_file_bytes < 1:
            raise ConfigValueError("max_file_bytes", f"{self.max_file_bytes}; expected >= 1")
        for key in ("min_examples", "max_examples"):
            value = getattr(self, key)
            if value is not None and value < 0:
                raise ConfigValueError(key, f"{value}; expected a whole number >= 0")
        if self.epochs is not None and self.epochs < 1:
            raise ConfigValueError("epochs", f"{self.epochs}; expected a whole number >= 1")
        from pipeline.tokens import check_options

        check_options(NAME, self.target, self.encoding)
        for name in self.compare:
            _target(name, "compare")


def default_epochs(n: int) -> int:
    """The cookbook's estimate of OpenAI's `n_epochs="auto"` for `n` training examples."""
    if n <= 0:
        return TARGET_EPOCHS
    if n * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n)
    if n * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n)
    return TARGET_EPOCHS


def keys(batch: pd.DataFrame, cfg: DatasetLimitsConfig) -> dict[str, Any]:
    """Per kept record: its `m_tokens_total` (counted here if `count_tokens` did not run)."""
    from pipeline.tokens import TOTAL, encoding_of, measure, model_costs

    if TOTAL in batch and not batch[TOTAL].isna().any():
        return {"tokens": batch[TOTAL].to_numpy(dtype=np.int64)}
    values = measure(batch, encoding_of(cfg.target, cfg.encoding), model_costs(cfg.target))
    return {"tokens": values[:, 0]}


def _epochs(profile: Any, n: int, override: int | None) -> tuple[int, str]:
    if override is not None:
        return override, "the `epochs` option"
    rule = profile.epochs_rule if profile is not None else None
    if isinstance(rule, int):
        return rule, f"the target's fixed number of epochs ({rule})"
    source = (
        "openai_default" if rule == "openai_default" else "openai_default (the target has none)"
    )
    return default_epochs(n), (
        f"{source}: {TARGET_EPOCHS} epochs, clamped to [{MIN_DEFAULT_EPOCHS}, "
        f"{MAX_DEFAULT_EPOCHS}] so that examples x epochs stays within "
        f"[{MIN_TARGET_EXAMPLES}, {MAX_TARGET_EXAMPLES}]"
    )


def _estimate(profile: Any, train_tokens: np.ndarray, epochs_option: int | None) -> dict[str, Any]:
    """Epochs, billed tokens and cost of training on `train_tokens` under `profile`."""
    n = len(train_tokens)
    epochs, rule = _epochs(profile, n, epochs_option)
    cap = profile.max_tokens_per_example if profile is not None else None
    billed_tokens = np.minimum(train_tokens, cap) if cap is not None else train_tokens
    per_epoch = int(billed_tokens.sum())
    billed = per_epoch * epochs
    price = profile.price_per_1m_training_tokens if profile is not None else None
    return {
        "epochs": epochs,
        "epochs_rule": rule,
        "billed_tokens_per_epoch": per_epoch,
        "billed_training_tokens": billed,
        "price_per_1m_training_tokens": price,
        "price_date": profile.price_date if profile is not None else None,
        "cost_usd": None if price is None else round(billed / 1_000_000 * price, 4),
    }


def _target(name: str | None, option: str = "target") -> Any:
    if name is None:
        return None
    from pipeline.targets import get_target

    try:
        return get_target(name)
    except PipelineError as exc:
        raise PipelineError(f"stage {NAME}, option {option}: {exc}") from None


def _file_sizes(
    table: KeyTable,
    decisions: Decisions,
    cfg: DatasetLimitsConfig,
    profile: Any,
    reasons: list[dict[str, str]],
) -> dict[str, Any]:
    """Bytes train.jsonl and validation.jsonl will have, against the file-size limit.

    Over the limit, the files are sharded (`decisions.shard_bytes`) or the gate fails.
    """
    limit = cfg.max_file_bytes
    if limit is None and profile is not None:
        limit = profile.max_file_bytes
    nbytes = table.nbytes if table.nbytes is not None else np.zeros(len(table), dtype=np.int64)
    bom = 3 if profile is not None and profile.output.bom else 0
    sizes = {
        "train": bom + int(nbytes[decisions.dest == TRAIN].sum()),
        "validation": bom + int(nbytes[decisions.dest == VALIDATION].sum())
        if decisions.write_validation
        else None,
    }
    over = [name for name, size in sizes.items() if size is not None and limit and size > limit]
    out: dict[str, Any] = {"max_file_bytes": limit, "bytes": sizes, "sharded": []}
    if not over or limit is None:
        return out
    if cfg.shard:
        decisions.shard_bytes = limit
        out["sharded"] = over
        out["note"] = (
            f"{', '.join(f'{n}.jsonl' for n in over)} would be larger than {limit} bytes: "
            f"written as shards ({over[0]}-00001.jsonl, ...) of at most {limit} bytes each"
        )
    else:
        for name in over:
            reasons.append(
                {
                    "code": "file_too_large",
                    "message": f"{name}.jsonl would be {sizes[name]} bytes; the limit is {limit}: "
                    "set `shard: true`, or split the data",
                }
            )
    return out


def decide(table: KeyTable, decisions: Decisions, cfg: DatasetLimitsConfig) -> dict[str, Any]:
    """The report section (see the module docstring); rejects nothing."""
    profile = _target(cfg.target)
    others = [_target(name, "compare") for name in cfg.compare]
    tokens = table.columns.get("tokens")
    if tokens is None:
        tokens = np.zeros(len(table), dtype=np.int64)
    tokens = np.asarray(tokens, dtype=np.int64)
    train = decisions.dest == TRAIN
    validation = decisions.dest == VALIDATION
    train_tokens = tokens[train]
    n_train, n_validation = int(train.sum()), int(validation.sum())

    least = (
        cfg.min_examples if cfg.min_examples is not None else getattr(profile, "min_examples", None)
    )
    most = (
        cfg.max_examples if cfg.max_examples is not None else getattr(profile, "max_examples", None)
    )
    who = f"target {profile.name}" if profile is not None else "the config"
    reasons: list[dict[str, str]] = []
    if least is not None and n_train < least:
        reasons.append(
            {
                "code": "too_few_examples",
                "message": f"{n_train} training examples; {who} needs at least {least}: add "
                "examples (OpenAI refuses the job with invalid_n_examples)",
            }
        )
    if most is not None and n_train > most:
        reasons.append(
            {
                "code": "too_many_examples",
                "message": f"{n_train} training examples; {who} accepts at most {most}: "
                "sample or split the file",
            }
        )
    files = _file_sizes(table, decisions, cfg, profile, reasons)
    encoding = None
    if profile is not None:
        from pipeline.tokens import resolve_encoding

        encoding = resolve_encoding(cfg.target, cfg.encoding)
    compare = []
    for other in others:
        entry = {"target": other.name, **_estimate(other, train_tokens, cfg.epochs)}
        if encoding is not None and other.tokenizer != encoding:
            entry["note"] = (
                f"tokens counted with {encoding}; {other.name} uses {other.tokenizer}, so this "
                "is an approximation"
            )
        compare.append(entry)
    return {
        "target": profile.name if profile is not None else None,
        "examples": {
            "train": n_train,
            "validation": n_validation,
            "min_examples": least,
            "max_examples": most,
        },
        "tokens": {
            "encoding": encoding,
            "train": int(train_tokens.sum()),
            "validation": int(tokens[validation].sum()),
            "validation_billed": False,
            "max_per_example": int(tokens[train | validation].max())
            if n_train + n_validation
            else 0,
            "limit_per_example": getattr(profile, "max_tokens_per_example", None),
        },
        **_estimate(profile, train_tokens, cfg.epochs),
        "compare": compare,
        "files": files,
        "gate_failed": bool(reasons),
        "gate_reasons": reasons,
    }


register_dataset(NAME, DatasetLimitsConfig, SUMMARY, keys, decide)
