"""Content identity: what a record is, for the dataset stages that compare records.

Shared by `dedupe` (which records are the same) and `split` (which records must stay on one
side, and the seeded content rank):

- `Fields`: the canonical fields and source columns of a batch's rows, and the views of a
  record that identity can be restricted to: its trained-on content, a `subset` of fields,
  and the `prompt` / `completion` parts of chat and preference records;
- `canonical_bytes` / `hash128`: the canonical serialisation (orjson, sorted keys) and its
  128-bit xxh3 hash, as two int64 per record; `normalized_hash128`: a 128-bit key per record
  that is equal for two records exactly when they are equal after text normalisation;
- `found_bits` / `check_found`: which source columns a record has, and the error when a field
  named in the config is in no record at all;
- `text_of`: the texts of a value in canonical order (what near-duplicate detection shingles);
- `first_of_class` / `connected_components`: classes of equal keys and of linked records over
  the parent's key table.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

import numpy as np
import orjson
import pandas as pd
import xxhash

from pipeline.dataset import KeyTable
from pipeline.dataset.textnorm import TextNormalizer, refill, strings_of
from pipeline.errors import PipelineError
from pipeline.records import ALL_FIELDS

# The fields a record of each kind is trained on: its identity unless `subset` says otherwise.
TRAINED_FIELDS: dict[str, tuple[str, ...]] = {
    "prompt_completion": ("prompt", "completion"),
    "chat": ("messages", "tools", "functions"),
    "preference": ("input", "preferred_output", "non_preferred_output"),
    "kto": ("messages", "tools", "label"),  # the same answer judged both ways is no duplicate
}
CANONICAL_NAMES = frozenset((*ALL_FIELDS, "prompt", "completion"))
_SORTED = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


# --- canonical content ----------------------------------------------------------------------


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def _chat_parts(messages: Any) -> tuple[list[Any], Any]:
    """(messages before the last assistant message, that message or None)."""
    if not isinstance(messages, list):
        return [], None
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if isinstance(m, dict) and m.get("role") == "assistant":
            return messages[:i], m
    return list(messages), None


_SHARED: dict[int, Fields] = {}  # id of a live batch -> its shared Fields (`Fields.of`)


class Fields:
    """The values of canonical fields and source columns for the rows of one batch."""

    def __init__(self, batch: pd.DataFrame) -> None:
        self._batch: pd.DataFrame | None = batch
        self._ref: weakref.ref[pd.DataFrame] | None = None
        self.kinds: list[str] = batch["kind"].tolist()
        self._cols: dict[str, list[Any]] = {}
        self._content: list[dict[str, Any]] | None = None
        self._digests: tuple[list[bytes], np.ndarray] | None = None

    @property
    def batch(self) -> pd.DataFrame:
        if self._batch is not None:
            return self._batch
        assert self._ref is not None
        batch = self._ref()
        assert batch is not None, "the batch of shared Fields is gone"
        return batch

    @classmethod
    def of(cls, batch: pd.DataFrame) -> Fields:
        """The `Fields` of `batch`, shared by the key functions that run one after the other
        over the same batch (`dedupe` and `split` hash the same content once). It lives as
        long as the batch (it holds the batch weakly, and goes when the batch does), which
        must not change in between: a worker's kept rows do not."""
        fields = _SHARED.get(id(batch))
        if fields is not None and fields._ref is not None and fields._ref() is batch:
            return fields
        fields = cls(batch)
        fields._batch, fields._ref = None, weakref.ref(batch)
        _SHARED[id(batch)] = fields
        weakref.finalize(batch, _SHARED.pop, id(batch), None)
        return fields

    def col(self, name: str) -> list[Any]:
        if name not in self._cols:
            if name in self.batch.columns:
                self._cols[name] = [None if _missing(v) else v for v in self.batch[name].tolist()]
            else:
                self._cols[name] = [None] * len(self.kinds)
        return self._cols[name]

    def values(self, name: str) -> tuple[list[Any], list[bool]]:
        """Per row: the value of `name` and whether the record has it (source columns)."""
        n = len(self.kinds)
        if name in ("prompt", "completion"):
            return [self._role_part(name, i) for i in range(n)], [True] * n
        if name in CANONICAL_NAMES:
            return list(self.col(name)), [True] * n
        out: list[Any] = []
        found: list[bool] = []
        for rec in self.col("_record"):
            has = isinstance(rec, dict) and name in rec
            found.append(has)
            out.append(rec[name] if has else None)  # type: ignore[index]
        return out, found

    def _role_part(self, name: str, i: int) -> Any:
        kind = self.kinds[i]
        if kind in ("chat", "kto"):
            before, last = _chat_parts(self.col("messages")[i])
            if name == "completion":
                return last
            prompt: dict[str, Any] = {"messages": before}
            for extra in ("tools", "functions"):
                if self.col(extra)[i] is not None:
                    prompt[extra] = self.col(extra)[i]
            return prompt
        if kind == "preference":
            if name == "prompt":
                return self.col("input")[i]
            return [self.col("preferred_output")[i], self.col("non_preferred_output")[i]]
        return self.col(name)[i]

    def content(self) -> list[dict[str, Any]]:
        """Per row: the fields its kind trains on (nulls left out). Computed once; do not
        change the dicts."""
        if self._content is None:
            out = []
            for i, kind in enumerate(self.kinds):
                names = TRAINED_FIELDS.get(kind, ())
                out.append({f: v for f in names if (v := self.col(f)[i]) is not None})
            self._content = out
        return self._content

    def content_digests(self) -> tuple[list[bytes], np.ndarray]:
        """Per row: the xxh3_128 digest of its content's canonical bytes, and the same as
        `hash128` gives (n, 2). Computed once."""
        if self._digests is None:
            self._digests = digests128(self.content())
        return self._digests

    def identity(self, subset: Sequence[str] | None) -> list[Any]:
        """Per row: what defines it, its content or the values of the subset's fields."""
        if subset is None:
            return list(self.content())
        columns = [self.values(name)[0] for name in subset]
        return [dict(zip(subset, vals, strict=True)) for vals in zip(*columns, strict=True)]


def canonical_bytes(value: Any) -> bytes:
    """The canonical serialisation: orjson with sorted keys (anything odd as its str())."""
    return orjson.dumps(value, option=_SORTED, default=str)


def digests128(values: Sequence[Any]) -> tuple[list[bytes], np.ndarray]:
    """The xxh3_128 digest of each value's canonical bytes, and them as (n, 2) int64."""
    digests = [xxhash.xxh3_128_digest(canonical_bytes(v)) for v in values]
    return digests, np.frombuffer(b"".join(digests), dtype="<i8").reshape(-1, 2)


def hash128(values: Sequence[Any]) -> np.ndarray:
    """(n, 2) int64: the xxh3_128 digest of each value's canonical bytes."""
    return digests128(values)[1]


def _flat(value: Any, strings: list[str]) -> Any:
    """The common shape: a dict of strings and of lists of dicts of strings (a chat record's
    messages, a prompt/completion). Its signature (the keys, sorted, with each list's sorted
    message keys), its strings appended to `strings` in that order; None for any other value
    (nothing appended)."""
    if type(value) is not dict:
        return None
    mark = len(strings)
    sig: list[Any] = []
    try:
        top = sorted(value)
    except TypeError:  # keys of mixed types
        return None
    for k in top:
        v = value[k]
        if type(k) is not str:
            break
        if type(v) is str:
            sig.append(k)
            strings.append(v)
            continue
        if type(v) is not list:
            break
        shapes: list[tuple[str, ...]] = []
        for m in v:
            if type(m) is not dict:
                break
            known = _MESSAGE_KEYS.get(tuple(m))
            if known is None:
                if not all(type(x) is str for x in m):
                    break
                known = _message_keys(m)
                if len(_MESSAGE_KEYS) < _MESSAGE_KEYS_KEPT:  # odd inputs: no unbounded cache
                    _MESSAGE_KEYS[tuple(m)] = known
            ks, get = known
            texts = get(m)
            for t in texts:
                if type(t) is not str:
                    break
            else:
                strings.extend(texts)
                shapes.append(ks)
                continue
            break
        else:
            sig.append((k, shapes))
            continue
        break
    else:
        return sig
    del strings[mark:]
    return None


# a message's keys, in its order -> the keys sorted, and a getter of its values in that order
_MESSAGE_KEYS: dict[tuple[str, ...], tuple[tuple[str, ...], Callable[[Any], Any]]] = {}
_MESSAGE_KEYS_KEPT = 256


def _message_keys(message: dict[str, Any]) -> tuple[tuple[str, ...], Callable[[Any], Any]]:
    ks = tuple(sorted(message))
    if len(ks) > 1:
        return ks, itemgetter(*ks)
    return ks, lambda m: tuple(m[k] for k in ks)


def normalized_hash128(values: Sequence[Any], normalizer: TextNormalizer) -> np.ndarray:
    """(n, 2) int64 keys, equal for two values exactly when `map_strings(value, normalizer)`
    of both are (bar 128-bit hash collisions), as the `hash128` of those values is; not the
    same numbers: only the classes count (`dedupe` normalized mode and `split`'s
    normalised-content key compare them, never order them).

    A value of the common shape (`_flat`) is keyed by its signature and its normalised strings,
    without rebuilding it; normalisation keeps that shape, so such a value never equals one
    of another shape, and the two kinds of key cannot meet (a leading NUL byte, which no JSON
    text starts with). The others are rebuilt (`refill`) and serialised. Every
    string of the batch goes through one `TextNormalizer.many` pass."""
    strings: list[str] = []
    plan: list[tuple[Any, int, int]] = []  # (signature or None, first string, end)
    for v in values:
        start = len(strings)
        sig = _flat(v, strings)
        if sig is None:
            strings_of(v, strings)
        plan.append((sig, start, len(strings)))
    done = normalizer.many(strings)
    digest = xxhash.xxh3_128_digest
    out: list[bytes] = []
    for v, (sig, start, end) in zip(values, plan, strict=True):
        if sig is not None:
            out.append(digest(b"\x00" + orjson.dumps([sig, done[start:end]])))
        else:
            out.append(digest(canonical_bytes(refill(v, iter(done[start:end])))))
    return np.frombuffer(b"".join(out), dtype="<i8").reshape(-1, 2)


def found_bits(fields: Fields, names: Sequence[str]) -> list[int] | None:
    """Per row, a bit mask of the source columns among `names` that the record has (bit i:
    the i-th name that is not a canonical field); None when every name is canonical."""
    sources = [name for name in names if name not in CANONICAL_NAMES]
    if not sources:
        return None
    bits = [0] * len(fields.kinds)
    for bit, name in enumerate(sources):
        for r, has in enumerate(fields.values(name)[1]):
            if has:
                bits[r] |= 1 << bit
    return bits


def check_found(table: KeyTable, names: Sequence[str], where: str, column: str = "found") -> None:
    """PipelineError when a source column named at `where` is in no record at all."""
    sources = [n for n in names if n not in CANONICAL_NAMES]
    if not sources or len(table) == 0 or column not in table.columns:
        return
    seen = int(np.bitwise_or.reduce(table.columns[column].astype(np.int64)))
    for bit, name in enumerate(sources):
        if not seen & (1 << bit):
            raise PipelineError(
                f"{where}: {name!r} is neither a canonical field "
                f"({', '.join(sorted(CANONICAL_NAMES))}) nor a column of any input record; "
                "check the spelling, or map the column in input.columns"
            )


def _collect(value: Any, out: list[str]) -> None:
    """Append the texts of a value in canonical (sorted-key) order; role names are left out."""
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for k in sorted(value, key=str):
            if k != "role":
                _collect(value[k], out)
    elif isinstance(value, list | tuple):
        for v in value:
            _collect(v, out)


def text_of(value: Any) -> str:
    """The texts of a record's identity, joined by newlines (what near mode shingles)."""
    out: list[str] = []
    _collect(value, out)
    return "\n".join(out)


# --- classes of records ---------------------------------------------------------------------


def first_of_class(*columns: np.ndarray) -> np.ndarray:
    """Per row: the first row (in order) with the same values in every column."""
    m = len(columns[0])
    order = np.lexsort((np.arange(m), *reversed(columns)))
    new = np.zeros(m, dtype=bool)
    new[:1] = True
    for c in columns:
        sc = c[order]
        new[1:] |= sc[1:] != sc[:-1]
    head = order[np.maximum.accumulate(np.where(new, np.arange(m), 0))]
    first = np.empty(m, dtype=np.int64)
    first[order] = head
    return first


def connected_components(n: int, pairs: np.ndarray) -> np.ndarray:
    """Per node 0..n-1, the smallest node of its component (union-find over `pairs`)."""
    labels = np.arange(n, dtype=np.int64)
    if not len(pairs):
        return labels
    a, b = pairs[:, 0], pairs[:, 1]
    while True:
        la, lb = labels[a], labels[b]
        if np.array_equal(la, lb):
            return labels
        low = np.minimum(la, lb)
        np.minimum.at(labels, la, low)  # hook each root under the smaller one
        np.minimum.at(labels, lb, low)
        while True:  # then compress every path to its root
            up = labels[labels]
            if np.array_equal(up, labels):
                break
            labels = up
