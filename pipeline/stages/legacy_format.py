"""legacy_format: the prompt/completion conventions of OpenAI's legacy fine-tuning, applied safely.

Legacy prompt/completion models learn where the prompt ends from a fixed separator at the end of
every prompt, where the answer ends from a fixed stop sequence at the end of every completion, and
tokenise better when a completion starts with a space (OpenAI's legacy fine-tuning guide
and its `prepare_data` tool). This stage works on `prompt_completion` records only; chat and
preference records pass untouched.

1. It measures what the data already does, before changing anything, as counters in the
   report (stage `changes`): `prompt_completion_records`, `prompt_ends_with[S]` for each
   common separator S (`" ->"`, `\\n\\n###\\n\\n`, ...), `completion_starts_with_space`,
   `completion_ends_with[S]` for each common stop (`\\n`, `.`, `" END"`, `\\n\\nEND`, ...).
   Newlines are written `\\n` in the names.
2. It applies the config idempotently: the separator is added to prompts that do not end with it
   (`separator_added`), the stop to completions that do not end with it (`stop_added`), a space
   to completions that do not start with whitespace (`leading_space_added`). Running it twice
   changes nothing the second time. Empty prompts (open-ended generation) get no separator, and
   empty completions get nothing (validate_schema rejects them). Nothing is cut, stripped or
   lower-cased.
3. Classification data (few distinct completions: fewer than a third of the records, and at most
   500 classes, the legacy tool's rule, or `classification: true`) gets warnings: a label that
   is not a single token in the target's tokenizer, and a class with fewer than
   `min_class_examples` records. Classes are counted over the whole dataset, not per batch: the
   stage's `keys` give each kept record's label (its completion without the stop sequence), and
   its dataset decision (`decide`, after every batch has run) counts them, warns, and reports
   `classification` and the `classes` with their counts under `dataset.legacy_format`.

Reason codes:
- `separator_in_prompt`: the separator occurs in the prompt other than at its end (the model
  would see the end of the prompt too early);
- `separator_mismatch`: the prompt already ends with a different common separator (adding ours
  would give two): configure `separator` to the one the data uses;
- `stop_in_completion`: the stop sequence occurs in the completion before its end (generation
  would stop there);
- `stop_mismatch`: the completion already ends with a different stop marker (`END`, `***`, ...):
  configure `stop` to the one the data uses.

Warning codes: `label_not_single_token`, `class_too_small`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from pipeline.configdoc import doc
from pipeline.dataset import Decisions, KeyTable
from pipeline.records import count_change, drop_where
from pipeline.registry import Changes, register
from pipeline.targets import get_target
from pipeline.tokens import KNOWN_ENCODINGS, count_text, get_encoding

# The legacy tool's separator candidates (openai-python `openai tools fine_tunes.prepare_data`), plus variants seen in
# real data (NERRE's "\n\n###\n") and bare markers.
SEPARATORS = (
    " ->",
    "->",
    "\n\n###\n\n",
    "\n\n###\n",
    "###",
    "\n\n===\n\n",
    "\n\n---\n\n",
    "\n\n===>\n\n",
    "\n\n--->\n\n",
    "\n\n### =>\n\n",
)
# The legacy tool's stop candidates (#14) and NERRE's variants; for the counters.
STOPS = (
    "\n",
    ".",
    " END",
    "\n\nEND\n\n",
    "\n\nEND",
    "\nEND",
    "***",
    "+++",
    "&&&",
    "$$$",
    "@@@",
    "%%%",
    " [END]",
)
MAX_CLASSES = 500


def shown(s: str) -> str:
    r"""A separator or stop as it is named in counters and messages: `\n` for a newline."""
    return s.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


@dataclass(frozen=True)
class LegacyFormatConfig:
    separator: str | None = doc(
        "Fixed text every prompt ends with; null adds none (and checks none). Common: "
        '`"\\n\\n###\\n\\n"`, `" ->"`.',
        "\n\n###\n\n",
    )
    stop: str | None = doc(
        "Stop sequence every completion ends with (pass it as `stop` at inference); null adds "
        "none. Null for classification labels.",
        " END",
    )
    leading_space: bool = doc(
        "Start every completion with a space (unless it starts with whitespace already).", True
    )
    classification: bool | None = doc(
        "Treat the data as classification (label warnings); null decides over the whole "
        "dataset: fewer distinct completions than a third of the records, at most 500.",
        None,
    )
    min_class_examples: int = doc(
        "Warn (`class_too_small`) when a class has fewer records than this in the dataset.", 100
    )
    encoding: Literal["cl100k_base", "o200k_base"] | None = doc(
        "Tokenizer for the single-token label check; null uses the target's when ftprep bundles "
        "it, else cl100k_base (babbage-002, davinci-002).",
        None,
    )
    target: str | None = doc(
        "Target profile, for its tokenizer; defaults to the run's `target:`.", None
    )


def encoding_name(cfg: LegacyFormatConfig) -> str:
    if cfg.encoding is not None:
        return cfg.encoding
    if cfg.target is not None:
        tokenizer = get_target(cfg.target).tokenizer
        if tokenizer in KNOWN_ENCODINGS:
            return str(tokenizer)
    return "cl100k_base"


def _ends_once(text: str, marker: str) -> bool:
    """`text` ends with `marker` and holds it nowhere else (overlaps included)."""
    return text.endswith(marker) and text.find(marker) == len(text) - len(marker)


def _other_separator(text: str) -> str | None:
    """The longest common separator `text` ends with (called when it does not end with ours)."""
    for s in sorted(SEPARATORS, key=len, reverse=True):
        if text.endswith(s):
            return s
    return None


def _stop_used(text: str) -> str | None:
    """The longest common stop sequence `text` ends with (called when it does not end with ours).

    A plain `.` or newline ends ordinary text too, so it does not count as a different stop.
    """
    for s in sorted(STOPS, key=len, reverse=True):
        if s not in ("\n", ".") and text.endswith(s):
            return s
    return None


def legacy_format(batch: pd.DataFrame, cfg: LegacyFormatConfig) -> tuple[pd.DataFrame, Changes]:
    out = batch.copy()
    changes: Changes = Counter()
    if "prompt" not in out or "completion" not in out:
        return out, changes
    sel = (out["kind"] == "prompt_completion") & out["_reason"].isna()
    sel &= out["prompt"].map(lambda v: isinstance(v, str)) & out["completion"].map(
        lambda v: isinstance(v, str)
    )
    if not sel.any():
        return out, changes
    prompts = out.loc[sel, "prompt"].astype(str)
    completions = out.loc[sel, "completion"].astype(str)
    _measure(changes, prompts, completions, cfg)

    reasons: dict[str, dict[Any, str]] = {}

    def reject(code: str, idx: Any, message: str) -> None:
        reasons.setdefault(code, {})[idx] = message

    fixed: dict[Any, tuple[str, str, list[str]]] = {}  # idx -> prompt, completion, fixes
    sep, stop = cfg.separator, cfg.stop
    for idx, p, c in zip(prompts.index, prompts, completions, strict=True):
        fixes: list[str] = []
        if sep and p:
            if not p.endswith(sep):
                other = _other_separator(p)
                if other is not None:
                    reject("separator_mismatch", idx,
                           f"prompt ends with '{shown(other)}', not the separator "
                           f"'{shown(sep)}'; adding it would give two separators: set "
                           f'`separator: "{shown(other)}"` if the data uses that one')
                    continue
                p = p + sep
                fixes.append("separator_added")
            if not _ends_once(p, sep):
                reject("separator_in_prompt", idx,
                       f"prompt contains the separator '{shown(sep)}' before its end (at "
                       f"character {p.find(sep)}): choose a separator that occurs in no prompt")
                continue
        if c.strip():
            if cfg.leading_space and not c[0].isspace():
                c = " " + c
                fixes.append("leading_space_added")
            if stop:
                if not c.endswith(stop):
                    used = _stop_used(c)
                    if used is not None:
                        reject("stop_mismatch", idx,
                               f"completion ends with '{shown(used)}', not the stop "
                               f"'{shown(stop)}': set `stop: \"{shown(used)}\"` if the data "
                               "uses that one")
                        continue
                    c = c + stop
                    fixes.append("stop_added")
                if not _ends_once(c, stop):
                    reject("stop_in_completion", idx,
                           f"completion contains the stop '{shown(stop)}' before its end (at "
                           f"character {c.find(stop)}); generation would stop there: choose a "
                           "stop sequence that occurs in no completion")
                    continue
        if fixes:
            fixed[idx] = (p, c, fixes)

    # Fixes are applied, and counted, only on the records that stay.
    applied = Counter[str]()
    if fixed:
        index = list(fixed)
        out.loc[index, "prompt"] = pd.Series([v[0] for v in fixed.values()], index, dtype=object)
        out.loc[index, "completion"] = pd.Series(
            [v[1] for v in fixed.values()], index, dtype=object
        )
        for _p, _c, fixes in fixed.values():
            applied.update(fixes)
    for name, n in sorted(applied.items()):
        count_change(changes, name, n)
    for code, messages in reasons.items():
        msg = pd.Series(messages, dtype=object).reindex(out.index)
        drop_where(out, msg.notna(), code, msg)
    return out, changes


def _measure(
    changes: Changes, prompts: pd.Series, completions: pd.Series, cfg: LegacyFormatConfig
) -> None:
    count_change(changes, "prompt_completion_records", len(prompts))
    seps = SEPARATORS + ((cfg.separator,) if cfg.separator and cfg.separator not in SEPARATORS
                         else ())
    stops = STOPS + ((cfg.stop,) if cfg.stop and cfg.stop not in STOPS else ())
    for s in seps:
        count_change(changes, f"prompt_ends_with[{shown(s)}]", int(prompts.str.endswith(s).sum()))
    count_change(changes, "completion_starts_with_space", int(completions.str.startswith(" ").sum()))
    for s in stops:
        count_change(changes, f"completion_ends_with[{shown(s)}]",
                     int(completions.str.endswith(s).sum()))


def keys(batch: pd.DataFrame, cfg: LegacyFormatConfig) -> dict[str, list[Any]]:
    """Each kept record's class label: its completion without the stop (None if not text)."""
    stop = cfg.stop
    kinds = batch["kind"].tolist()
    completions = batch["completion"].tolist() if "completion" in batch else [None] * len(kinds)
    labels: list[Any] = []
    for kind, c in zip(kinds, completions, strict=True):
        if kind != "prompt_completion" or not isinstance(c, str):
            labels.append(None)
        else:
            labels.append(c[: -len(stop)] if stop and c.endswith(stop) else c)
    return {"label": labels}


def decide(table: KeyTable, decisions: Decisions, cfg: LegacyFormatConfig) -> dict[str, Any]:
    """Count the classes over the whole dataset and warn on their labels and sizes."""
    labels = table.columns.get("label", np.full(len(table), None, dtype=object))
    rows = [r for r in np.flatnonzero(decisions.alive()).tolist() if labels[r] is not None]
    counts = Counter(str(labels[r]) for r in rows)
    classification = bool(rows) and cfg.classification is not False and (
        cfg.classification is True
        or (len(counts) * 3 < len(rows) and len(counts) <= MAX_CLASSES)
    )
    info: dict[str, Any] = {"records": len(rows), "classification": classification}
    if not classification:
        return info
    info["classes"] = {shown(label): n for label, n in counts.most_common()}
    enc_name = encoding_name(cfg)
    enc = get_encoding(enc_name)
    tokens = {label: count_text(enc, label) for label in counts}

    def advice(lb: str) -> str:
        text = f"label '{shown(lb)}' is {tokens[lb]} tokens in {enc_name}: single-token labels "
        text += "let you classify with max_tokens=1 and read logprobs; "
        bare = lb.strip()
        if bare != lb and count_text(enc, bare) == 1:
            return text + f"'{shown(bare)}' is one token (set leading_space: false)"
        return text + "map the classes to single-token labels"

    multi = [r for r in rows if tokens[str(labels[r])] != 1]
    if multi:
        decisions.warn(multi, "label_not_single_token", [advice(str(labels[r])) for r in multi])
    small = [r for r in rows if counts[str(labels[r])] < cfg.min_class_examples]
    if small:
        decisions.warn(
            small,
            "class_too_small",
            [
                f"class '{shown(str(labels[r]))}' has {counts[str(labels[r])]} records (of "
                f"{len(rows)}); aim for at least {cfg.min_class_examples} per class"
                for r in small
            ],
        )
    return info


register(
    "legacy_format",
    LegacyFormatConfig,
    "Measure and apply a prompt separator, completion stop sequence and leading space.",
    keys=keys,
    decide=decide,
)(legacy_format)
