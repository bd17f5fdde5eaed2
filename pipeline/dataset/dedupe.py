"""dedupe: reject duplicate records, keeping the first occurrence in source order.

Three modes decide what "the same" means:

- `exact`: the canonical content (the fields trained on, serialised with orjson
  `OPT_SORT_KEYS`) hashes to the same 128-bit xxh3 value;
- `normalized`: the same after NFKC, case folding, punctuation stripping and whitespace
  collapsing of every text;
- `near`: MinHash + LSH over word or character shingles, estimated Jaccard >= `threshold`.

`subset` restricts identity to some fields (`subset: [prompt]`): records with the same prompt
and different content are *conflicting duplicates*, kept and listed (`conflicts: keep`) or
rejected (`conflicts: reject`).

The workers compute only compact keys per record (two int64 for a 128-bit hash; in near mode
the LSH band hashes and an 8-bit-per-permutation MinHash signature); the parent decides over
the whole key table. Every duplicate is linked to the record it duplicates
(`Decisions.link`), so a later `split` keeps them on one side or reports the pairs that cross.

Reason codes:
- `duplicate`: same content as an earlier record (exact or normalised), named in the message;
- `near_duplicate`: in a near-duplicate cluster whose first record (named) is kept;
- `conflicting_duplicate`: same `subset` fields as an earlier record (named) but different
  content; only with `conflicts: reject`.

This module holds the decision (the config, `keys`, `decide`, the report); the parts it is
built from live beside it: `identity` (canonical content, 128-bit hashes, prompt/completion
and subset views, shared with `split`), `textnorm` (the normaliser of `normalized` and `near`
modes) and `minhash` (shingles, MinHash signatures, LSH bands, candidate pairs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import pandas as pd

from pipeline.configdoc import ConfigValueError, doc
from pipeline.dataset import Decisions, KeyTable
from pipeline.dataset import minhash as mh
from pipeline.dataset.identity import (
    Fields,
    check_found,
    connected_components,
    first_of_class,
    found_bits,
    hash128,
    normalized_hash128,
    text_of,
)
from pipeline.dataset.textnorm import TextNormalizer
from pipeline.registry import register_dataset

NAME = "dedupe"
SUMMARY = (
    "Reject exact, normalised or near-duplicate records (keeping the first in source order), "
    "and find conflicting duplicates (same prompt, different completion)."
)
DUPLICATE = "duplicate"
NEAR_DUPLICATE = "near_duplicate"
CONFLICTING_DUPLICATE = "conflicting_duplicate"

EXAMPLES = 5  # duplicate classes / clusters shown in the report
MAX_LISTED = 100  # conflicting pairs listed in the report (the count is always exact)
MINHASH_SEED = 1  # datasketch's default: MinHash(seed=1)


@dataclass(frozen=True)
class DedupeConfig:
    mode: Literal["exact", "normalized", "near"] = doc(
        "`exact`: same canonical content (128-bit xxh3 of the trained-on fields, keys sorted); "
        "`normalized`: the same after NFKC, case folding, punctuation stripping and whitespace "
        "collapsing; `near`: MinHash/LSH estimated Jaccard similarity >= `threshold`.",
        "exact",
    )
    subset: tuple[str, ...] | None = doc(
        "Fields that define identity; null: every field trained on (prompt/completion; "
        "messages, tools, functions; input, preferred_output, non_preferred_output). `prompt` "
        "and `completion` also work for chat records (prompt: every message before the last "
        "assistant message, plus tools/functions; completion: that last assistant message) "
        "and preference records (prompt: input; completion: both outputs). Any other name is "
        "a column of the source record. With a subset, records that agree on it but differ in "
        "content are conflicting duplicates (see `conflicts`).",
        None,
    )
    conflicts: Literal["keep", "reject"] = doc(
        "What to do with a conflicting duplicate (same `subset`, different content; `exact` and "
        "`normalized` modes): `keep` it and list both lines in the report, or `reject` every "
        "one after the first with `conflicting_duplicate`.",
        "keep",
    )
    remove: bool = doc(
        "Reject duplicates. false only counts and lists them in the report and links them, so "
        "that a later `split` keeps each duplicate on the side of the record it duplicates.",
        True,
    )
    casefold: bool | None = doc(
        "Case-fold texts before comparing; null: true in `normalized` and `near` modes (not "
        "allowed in `exact` mode).",
        None,
    )
    collapse_whitespace: bool | None = doc(
        "Collapse runs of whitespace to one space and trim; null: true in `normalized` and "
        "`near` modes.",
        None,
    )
    strip_punctuation: bool | None = doc(
        "Remove Unicode punctuation (categories P*, e.g. `,` `。` `«`); null: true in "
        "`normalized` and `near` modes.",
        None,
    )
    shingle: Literal["auto", "word", "char"] = doc(
        "`near` mode: shingles of words, or of characters; `auto` uses characters for a text "
        "that is mostly CJK (Han, kana, Hangul) and words otherwise.",
        "auto",
    )
    shingle_size: int | None = doc(
        "`near` mode: words or characters per shingle; null: 3 words or 5 characters.", None
    )
    threshold: float = doc(
        "`near` mode: estimated Jaccard similarity of the shingle sets at or above which two "
        "records are near duplicates.",
        0.85,
    )
    num_perm: int = doc("`near` mode: MinHash permutations (signature length).", 128)
    # Derived once when the config is read (and pickled to the workers with it).
    lsh: tuple[int, int] = field(
        default=(0, 0), init=False, repr=False, compare=False, metadata={"internal": True}
    )
    permutations: tuple[tuple[int, ...], tuple[int, ...]] = field(
        default=((), ()), init=False, repr=False, compare=False, metadata={"internal": True}
    )

    def __post_init__(self) -> None:
        if self.subset is not None:
            if not self.subset:
                raise ConfigValueError("subset", "an empty list; leave `subset` out instead")
            for name in self.subset:
                if not name:
                    raise ConfigValueError("subset", "an empty field name")
        if self.mode == "exact":
            for key in ("casefold", "collapse_whitespace", "strip_punctuation"):
                if getattr(self, key) is not None:
                    raise ConfigValueError(
                        key, "applies to `mode: normalized` or `mode: near`; set the mode too"
                    )
        if self.conflicts == "reject" and self.subset is None:
            raise ConfigValueError(
                "conflicts",
                "`reject` needs `subset` (e.g. `subset: [prompt]`): without it records that "
                "collide are identical, so none can conflict",
            )
        if self.conflicts == "reject" and self.mode == "near":
            raise ConfigValueError(
                "conflicts", "applies to `exact` and `normalized` modes, not `near`"
            )
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigValueError("threshold", f"{self.threshold}; expected a number in (0, 1]")
        if not 16 <= self.num_perm <= 1024:
            raise ConfigValueError("num_perm", f"{self.num_perm}; expected 16 to 1024")
        if self.shingle_size is not None and self.shingle_size < 1:
            raise ConfigValueError("shingle_size", f"{self.shingle_size}; expected >= 1")
        if self.mode == "near":
            object.__setattr__(self, "lsh", mh.lsh_params(self.threshold, self.num_perm))
            object.__setattr__(
                self, "permutations", mh.permutations(self.num_perm, seed=MINHASH_SEED)
            )

    def option(self, key: str) -> bool:
        """A normalisation option's value in this mode (null means on, except in exact mode)."""
        value: bool | None = getattr(self, key)
        return self.mode != "exact" if value is None else value


# --- normalised texts, near-mode keys -------------------------------------------------------


@lru_cache(maxsize=8)
def text_normalizer(cfg: DedupeConfig) -> TextNormalizer:
    """The normaliser with the config's options (null means on, except in exact mode)."""
    return TextNormalizer(
        casefold=cfg.option("casefold"),
        strip_punctuation=cfg.option("strip_punctuation"),
        collapse_whitespace=cfg.option("collapse_whitespace"),
    )


def near_texts(fields: Fields, cfg: DedupeConfig) -> list[str]:
    """Per record: the normalised text near mode shingles (the identity's texts, joined)."""
    if cfg.subset is not None:
        raw = [text_of(v) for v in fields.identity(cfg.subset)]
    else:
        raw = []
        prompts, completions = fields.col("prompt"), fields.col("completion")
        content: list[dict[str, Any]] | None = None
        for i, kind in enumerate(fields.kinds):
            p, c = prompts[i], completions[i]
            if kind == "prompt_completion" and isinstance(p, str) and isinstance(c, str):
                raw.append(c + "\n" + p)  # = text_of({"prompt": p, "completion": c})
                continue
            content = content if content is not None else fields.content()
            raw.append(text_of(content[i]))
    return text_normalizer(cfg).many(raw)


def near_signatures(texts: Sequence[str], cfg: DedupeConfig) -> np.ndarray:
    """(n, num_perm) uint32 MinHash signatures of the texts' shingles."""
    return mh.signatures(
        texts,
        cfg.permutations,
        cfg.shingle,
        cfg.shingle_size,
        single_spaced=cfg.option("collapse_whitespace"),
    )


def near_keys(texts: Sequence[str], cfg: DedupeConfig) -> list[bytes]:
    """Per text: its LSH band hashes (uint64 each) then the low 8 bits of every MinHash value."""
    return mh.lsh_keys(near_signatures(texts, cfg), *cfg.lsh)


# --- keys (workers) -------------------------------------------------------------------------


def keys(batch: pd.DataFrame, cfg: DedupeConfig) -> dict[str, Any]:
    """Compact per-record keys: 128-bit hashes (exact/normalized) or LSH bands + signature."""
    fields = Fields.of(batch)
    out: dict[str, Any] = {}
    found = found_bits(fields, cfg.subset or ())
    if found is not None:
        out["found"] = found
    if cfg.mode == "near":
        out["near"] = near_keys(near_texts(fields, cfg), cfg)
        return out
    identity = fields.identity(cfg.subset)
    norm = text_normalizer(cfg) if cfg.mode == "normalized" else None

    def keyed(values: list[Any]) -> np.ndarray:
        return hash128(values) if norm is None else normalized_hash128(values, norm)

    # with no subset and no normalisation the identity is the content, which split hashes too
    h = fields.content_digests()[1] if cfg.subset is None and norm is None else keyed(identity)
    out["hi"], out["lo"] = h[:, 0].tolist(), h[:, 1].tolist()
    if cfg.subset is not None:
        full = keyed(list(fields.content()))
        out["full_hi"], out["full_lo"] = full[:, 0].tolist(), full[:, 1].tolist()
    return out


# --- decide (parent) ------------------------------------------------------------------------


def _where(table: KeyTable, row: int) -> str:
    return table.where(row)


def _classes(table: KeyTable, rows: np.ndarray, kept: np.ndarray) -> list[dict[str, Any]]:
    """The first classes (kept row -> other rows), in source order of the kept row."""
    out: dict[int, list[int]] = {}
    for r, k in zip(rows.tolist(), kept.tolist(), strict=True):
        if k in out or len(out) < EXAMPLES:
            out.setdefault(k, []).append(r)
    return [
        {"kept": _where(table, k), "duplicates": [_where(table, r) for r in rs[:EXAMPLES]]}
        for k, rs in sorted(out.items())
    ]


def decide(table: KeyTable, decisions: Decisions, cfg: DedupeConfig) -> dict[str, Any]:
    """Reject (or, with `remove: false`, only link and list) duplicates over the key table."""
    if cfg.subset is not None:
        check_found(table, cfg.subset, f"{NAME}.subset")
    rows = np.flatnonzero(decisions.alive())
    report: dict[str, Any] = {
        "mode": cfg.mode,
        "subset": list(cfg.subset) if cfg.subset is not None else None,
        "records": len(rows),
        "remove": cfg.remove,
    }
    if cfg.mode == "near":
        return report | _decide_near(table, decisions, cfg, rows)
    return report | _decide_hashes(table, decisions, cfg, rows)


def _decide_hashes(
    table: KeyTable, decisions: Decisions, cfg: DedupeConfig, rows: np.ndarray
) -> dict[str, Any]:
    m = len(rows)
    if m == 0:
        return {"duplicates": 0, "classes": 0, "examples": []}
    cols = table.columns
    first = first_of_class(cols["hi"][rows], cols["lo"][rows])
    local = np.arange(m)
    if cfg.subset is None:
        dup = np.flatnonzero(first != local)
        of = first[dup]
        conflict = np.empty(0, dtype=np.int64)
        conflict_of = conflict
    else:
        same = first_of_class(
            cols["hi"][rows], cols["lo"][rows], cols["full_hi"][rows], cols["full_lo"][rows]
        )
        later = first != local
        if cfg.conflicts == "keep":
            # an exact repeat of any kept record (the first, or a kept conflicting one)
            is_dup = later & (same != local)
            dup, of = np.flatnonzero(is_dup), same[is_dup]
        else:
            # only repeats of the first count as duplicates; everything else conflicts with it
            is_dup = later & (same == first)
            dup, of = np.flatnonzero(is_dup), first[is_dup]
        is_conflict = later & ~is_dup
        conflict, conflict_of = np.flatnonzero(is_conflict), first[is_conflict]
    dup_rows, of_rows = rows[dup], rows[of]
    con_rows, con_of = rows[conflict], rows[conflict_of]
    decisions.link(np.stack([of_rows, dup_rows], axis=1))
    decisions.link(np.stack([con_of, con_rows], axis=1))
    if cfg.remove and len(dup_rows):
        decisions.reject(
            NAME,
            dup_rows,
            DUPLICATE,
            [f"duplicate of {_where(table, r)}" for r in of_rows.tolist()],
        )
    what = "+".join(cfg.subset or ())
    if cfg.remove and cfg.conflicts == "reject" and len(con_rows):
        decisions.reject(
            NAME,
            con_rows,
            CONFLICTING_DUPLICATE,
            [
                f"conflicting duplicate of {_where(table, o)}: same {what}, different content"
                for o in con_of.tolist()
            ],
        )
    report: dict[str, Any] = {
        "duplicates": len(dup_rows),
        "classes": len(np.unique(of_rows)),
        "examples": _classes(table, dup_rows, of_rows),
    }
    if cfg.subset is not None:
        report["conflicts"] = {
            "count": len(con_rows),
            "action": cfg.conflicts if cfg.remove else "keep",
            "listed": [
                {"first": _where(table, o), "conflicting": _where(table, r)}
                for o, r in zip(
                    con_of[:MAX_LISTED].tolist(), con_rows[:MAX_LISTED].tolist(), strict=True
                )
            ],
        }
    return report


def _decide_near(
    table: KeyTable, decisions: Decisions, cfg: DedupeConfig, rows: np.ndarray
) -> dict[str, Any]:
    bands_n, rows_n = cfg.lsh
    info: dict[str, Any] = {
        "threshold": cfg.threshold,
        "num_perm": cfg.num_perm,
        "lsh_bands": bands_n,
        "lsh_rows": rows_n,
        "key_bytes_per_record": mh.key_bytes(bands_n, cfg.num_perm),
    }
    m = len(rows)
    if m == 0:
        return info | {
            "candidate_pairs": 0,
            "verified_pairs": 0,
            "clusters": 0,
            "near_duplicates": 0,
            "largest_cluster": 0,
            "examples": [],
        }
    bands, sig8 = mh.unpack_keys(table.columns["near"], bands_n, cfg.num_perm)
    if m < len(bands):
        bands, sig8 = bands[rows], sig8[rows]
    pairs = mh.candidate_pairs(bands)
    similar = pairs[mh.estimated_jaccard(sig8, pairs) >= cfg.threshold]
    label = connected_components(m, similar)
    members = np.flatnonzero(label != np.arange(m))
    kept = label[members]
    decisions.link(rows[similar])
    if cfg.remove and len(members):
        est = mh.estimated_jaccard(sig8, np.stack([members, kept], axis=1))
        decisions.reject(
            NAME,
            rows[members],
            NEAR_DUPLICATE,
            [
                f"near duplicate of {_where(table, k)} (estimated Jaccard {j:.2f})"
                for k, j in zip(rows[kept].tolist(), est.tolist(), strict=True)
            ],
        )
    sizes = np.bincount(label, minlength=m)
    heads = np.flatnonzero(sizes > 1)
    examples = []
    for h in heads[:EXAMPLES].tolist():
        cluster = np.flatnonzero(label == h)
        examples.append(
            {
                "size": len(cluster),
                "members": [_where(table, r) for r in rows[cluster[:EXAMPLES]].tolist()],
            }
        )
    return info | {
        "candidate_pairs": len(pairs),
        "verified_pairs": len(similar),
        "clusters": len(heads),
        "near_duplicates": len(members),
        "largest_cluster": int(sizes.max()),
        "examples": examples,
    }


register_dataset(NAME, DedupeConfig, SUMMARY, keys, decide)
