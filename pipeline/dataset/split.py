"""split: choose the validation records, the same whatever the input order, batches or workers.

`validation: 0.2` sends exactly `round(0.2 * n)` records to validation.jsonl (n: the records
still kept when split decides; Python's `round`, half to even; `max_validation` caps it). They
are the records with the lowest rank, where a record's rank is xxh3_64 of its 128-bit content
hash seeded with `seed`: the choice depends on the content and the seed only. Ties (identical
content) are broken by source order.

Records that must not be separated move as one *unit*, ranked by its lowest member:

- records with identical content, and records whose content is the same once normalised
  (NFKC, case, punctuation and whitespace, as `dedupe`'s `normalized` mode compares it), so no
  exact or normalised duplicate leaks across the split, whatever `dedupe` ran before (none, or
  `exact` mode, which keeps normalised duplicates);
- records of one `group` (e.g. the same conversation or author; a record without the field is
  a unit of its own);
- with `leakage: prevent` (the default), records an earlier `dedupe` linked (duplicates it kept
  with `remove: false`; conflicting duplicates it kept).

When every unit is one record (e.g. after `dedupe`), the count is exact; otherwise units are
taken in rank order while they fit and the count is as close as possible to the target, off by
less than the size of the largest unit. `stratify` keeps each class's share in both files:
the target is divided over the classes by largest remainder, so the total is still exact.

Reason codes: none (split never rejects a record).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import xxhash

from pipeline.configdoc import ConfigValueError, doc
from pipeline.dataset import Decisions, KeyTable
from pipeline.dataset.identity import (
    Fields,
    canonical_bytes,
    check_found,
    connected_components,
    digests128,
    first_of_class,
    found_bits,
    normalized_hash128,
)
from pipeline.dataset.textnorm import TextNormalizer
from pipeline.registry import register_dataset

NAME = "split"
SUMMARY = (
    "Send round(validation * n) records to validation.jsonl, ranked by a seeded content hash; "
    "stratified, grouped, duplicates never across the split."
)
_NORMALIZER = TextNormalizer()  # dedupe's `normalized` comparison: NFKC, case, punctuation, spaces
LABEL_CHARS = 60  # characters of a stratum's value shown in the report
LISTED_STRATA = 50


@dataclass(frozen=True)
class SplitConfig:
    validation: float = doc(
        "Share of the records still kept when split decides that goes to validation.jsonl: "
        "exactly round(validation * n) (Python's round, half to even) when no record has to "
        "stay with another, else as close as possible. 0 writes no validation file.",
        0.2,
    )
    seed: int = doc(
        "Seed of the ranking hash (xxh3_64 of the content hash); another seed, another "
        "validation set.",
        42,
    )
    max_validation: int | None = doc(
        "At most this many validation records (the legacy OpenAI prepare_data tool used "
        "1000); null: no cap.",
        None,
    )
    stratify: str | None = doc(
        "Field whose classes keep their proportions in both files (largest remainder: each "
        "class within one record of its share, the total exact): a canonical field such as "
        "`completion`, or a column of the source record.",
        None,
    )
    group: str | None = doc(
        "Field whose records always land on the same side (a canonical field or a source "
        "column; records without it are groups of their own). Groups are ranked by a seeded "
        "hash of their value and taken while they fit: the validation count is then as close "
        "as possible, not exact.",
        None,
    )
    leakage: Literal["prevent", "report"] = doc(
        "Records an earlier `dedupe` linked as duplicates but kept (`remove: false`, or "
        "`conflicts: keep`): `prevent` keeps each linked set on one side (the count is then as "
        "close as possible); `report` splits them like any record. Both count the linked pairs "
        "that cross the split in the report.",
        "prevent",
    )

    def __post_init__(self) -> None:
        if not 0.0 <= self.validation < 1.0:
            raise ConfigValueError("validation", f"{self.validation}; expected a share in [0, 1)")
        if not 0 <= self.seed < 2**64:
            raise ConfigValueError("seed", f"{self.seed}; expected a whole number >= 0")
        if self.max_validation is not None and self.max_validation < 0:
            raise ConfigValueError("max_validation", f"{self.max_validation}; expected >= 0")
        for key in ("stratify", "group"):
            if getattr(self, key) == "":
                raise ConfigValueError(key, "an empty field name; leave it out instead")


# --- keys (workers) -------------------------------------------------------------------------


def _ranks(digests: list[bytes], seed: int) -> list[int]:
    ranks = np.fromiter(
        (xxhash.xxh3_64_intdigest(d, seed=seed) for d in digests),
        dtype=np.uint64,
        count=len(digests),
    )
    return ranks.view(np.int64).tolist()  # type: ignore[no-any-return]


def keys(batch: pd.DataFrame, cfg: SplitConfig) -> dict[str, Any]:
    """Per record: content hash, seeded rank, and the hashes of its group and stratum."""
    fields = Fields.of(batch)
    digests, h = fields.content_digests()
    out: dict[str, Any] = {"hi": h[:, 0].tolist(), "lo": h[:, 1].tolist()}
    out["rank"] = _ranks(digests, cfg.seed)
    norm = _NORMALIZER
    n = normalized_hash128(fields.content(), norm)
    out["norm_hi"], out["norm_lo"] = n[:, 0].tolist(), n[:, 1].tolist()
    if cfg.group is not None:
        values, _ = fields.values(cfg.group)
        gdigests, g = digests128(values)
        out["group_hi"], out["group_lo"] = g[:, 0].tolist(), g[:, 1].tolist()
        out["group_rank"] = _ranks(gdigests, cfg.seed)
        out["group_null"] = [v is None for v in values]
        found = found_bits(fields, [cfg.group])
        if found is not None:
            out["group_found"] = found
    if cfg.stratify is not None:
        values, _ = fields.values(cfg.stratify)
        _, s = digests128(values)
        out["stratum"] = s[:, 0].tolist()
        out["stratum_label"] = [canonical_bytes(v).decode()[:LABEL_CHARS] for v in values]
        found = found_bits(fields, [cfg.stratify])
        if found is not None:
            out["stratum_found"] = found
    return out


# --- decide (parent) ------------------------------------------------------------------------


def largest_remainder(total: int, sizes: np.ndarray, order_key: np.ndarray) -> np.ndarray:
    """Integer shares of `total` proportional to `sizes`, summing to `total` exactly: each is
    the floor of its exact share, plus one for the largest remainders (ties: `order_key`)."""
    n = int(sizes.sum())
    if n == 0:
        return np.zeros(len(sizes), dtype=np.int64)
    exact = total * sizes.astype(object)  # Python ints: no overflow, no float rounding
    floor = np.array([int(x) // n for x in exact], dtype=np.int64)
    remainder = np.array([int(x) % n for x in exact], dtype=np.int64)
    short = total - int(floor.sum())
    if short:
        floor[np.lexsort((order_key, -remainder))[:short]] += 1
    return floor


def pick_units(sizes: np.ndarray, target: int) -> np.ndarray:
    """Which units (in rank order) to take so the records taken come as close to `target` as
    possible: a prefix, then later units that still fit, then at most one that overshoots by
    less than the count falls short."""
    take = np.zeros(len(sizes), dtype=bool)
    cum = np.cumsum(sizes)
    k = int(np.searchsorted(cum, target, side="right"))
    take[:k] = True
    count = int(cum[k - 1]) if k else 0
    if count < target:
        for i in (k + np.flatnonzero(sizes[k:] <= target - count)).tolist():
            if count + int(sizes[i]) <= target:
                take[i] = True
                count += int(sizes[i])
                if count == target:
                    break
    if count < target:
        rest = np.flatnonzero(~take)
        if len(rest):
            over = count + sizes[rest] - target
            best = int(np.argmin(over))  # the first in rank order among the closest
            if over[best] < target - count:
                take[rest[best]] = True
    return take


def _local_pairs(pairs: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """Linked table-row pairs whose both rows are alive, as local indices."""
    if not len(pairs):
        return np.empty((0, 2), dtype=np.int64)
    pos = np.full(n, -1, dtype=np.int64)
    pos[rows] = np.arange(len(rows))
    local = pos[pairs]
    return local[(local >= 0).all(axis=1)]


def decide(table: KeyTable, decisions: Decisions, cfg: SplitConfig) -> dict[str, Any]:
    """Assign validation records; returns what the report shows about the split."""
    if cfg.stratify is not None:
        check_found(table, [cfg.stratify], f"{NAME}.stratify", "stratum_found")
    if cfg.group is not None:
        check_found(table, [cfg.group], f"{NAME}.group", "group_found")
    rows = np.flatnonzero(decisions.alive())
    m = len(rows)
    target = round(cfg.validation * m)
    if cfg.max_validation is not None:
        target = min(target, cfg.max_validation)
    report: dict[str, Any] = {
        "records": m,
        "validation_share": cfg.validation,
        "seed": cfg.seed,
        "max_validation": cfg.max_validation,
        "target": target,
    }
    linked = _local_pairs(decisions.linked, rows, len(decisions.dest))
    if cfg.validation > 0:
        decisions.write_validation = True
    if m == 0 or cfg.validation == 0:
        return report | {
            "validation": 0,
            "train": m,
            "exact": target == 0,
            "leakage": {"policy": cfg.leakage, "linked_pairs": len(linked), "crossing_pairs": 0},
        }
    cols = table.columns
    local = np.arange(m)
    edges = [
        np.stack([first_of_class(cols["hi"][rows], cols["lo"][rows]), local], axis=1),
        np.stack([first_of_class(cols["norm_hi"][rows], cols["norm_lo"][rows]), local], axis=1),
    ]
    rank = cols["rank"][rows].view(np.uint64).copy()
    groups = 0
    if cfg.group is not None:
        has = np.flatnonzero(~cols["group_null"][rows].astype(bool))
        if len(has):
            head = first_of_class(cols["group_hi"][rows][has], cols["group_lo"][rows][has])
            groups = len(np.unique(head))
            edges.append(np.stack([has[head], has], axis=1))
            rank[has] = cols["group_rank"][rows][has].view(np.uint64)
    if cfg.leakage == "prevent":
        edges.append(linked)
    unit = connected_components(m, np.concatenate(edges))  # the unit's first record
    unit_rank = np.full(m, np.iinfo(np.uint64).max, dtype=np.uint64)
    np.minimum.at(unit_rank, unit, rank)
    size = np.bincount(unit, minlength=m)
    heads = np.flatnonzero(unit == local)  # one per unit, in source order
    if cfg.stratify is not None:
        stratum_of_row = cols["stratum"][rows]
    else:
        stratum_of_row = np.zeros(m, dtype=np.int64)
    strata, unit_stratum = np.unique(stratum_of_row[heads], return_inverse=True)
    per_stratum = np.bincount(unit_stratum, weights=size[heads], minlength=len(strata))
    quotas = largest_remainder(target, per_stratum.astype(np.int64), strata)
    chosen: list[np.ndarray] = []
    for s, quota in enumerate(quotas.tolist()):
        units = heads[unit_stratum == s]
        units = units[np.lexsort((units, unit_rank[units]))]
        if (size[units] == 1).all():
            chosen.append(units[:quota])
        else:
            chosen.append(units[pick_units(size[units], quota)])
    picked_units = np.zeros(m, dtype=bool)
    picked_units[np.concatenate(chosen)] = True
    validation = np.flatnonzero(picked_units[unit])
    decisions.split(rows[validation])
    in_validation = np.zeros(m, dtype=bool)
    in_validation[validation] = True
    crossing = int((in_validation[linked[:, 0]] != in_validation[linked[:, 1]]).sum())
    count = len(validation)
    report |= {
        "validation": count,
        "train": m - count,
        "exact": count == target,
        "units": len(heads),
        "largest_unit": int(size.max()),
        "leakage": {
            "policy": cfg.leakage,
            "linked_pairs": len(linked),
            "crossing_pairs": crossing,
        },
    }
    if cfg.group is not None:
        report["groups"] = groups
    if cfg.stratify is not None:
        report["strata"] = _strata_report(table, rows, stratum_of_row, in_validation)
    return report


def _strata_report(
    table: KeyTable,
    rows: np.ndarray,
    stratum_of_row: np.ndarray,
    in_validation: np.ndarray,
) -> dict[str, Any]:
    """Per class (the most common first): its value, records, and how many went to validation."""
    strata, first, inverse, counts = np.unique(
        stratum_of_row, return_index=True, return_inverse=True, return_counts=True
    )
    val = np.bincount(inverse, weights=in_validation, minlength=len(strata)).astype(np.int64)
    order = np.lexsort((first, -counts))[:LISTED_STRATA]
    labels = table.columns["stratum_label"][rows]
    return {
        "count": len(strata),
        "classes": [
            {
                "value": str(labels[first[i]]),
                "records": int(counts[i]),
                "validation": int(val[i]),
                "train": int(counts[i] - val[i]),
            }
            for i in order.tolist()
        ],
    }


register_dataset(NAME, SplitConfig, SUMMARY, keys, decide)
