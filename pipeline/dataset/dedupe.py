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
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import orjson
import pandas as pd
import xxhash

from pipeline.configdoc import ConfigValueError, doc
from pipeline.dataset import Decisions, KeyTable
from pipeline.errors import PipelineError
from pipeline.records import ALL_FIELDS
from pipeline.registry import register_dataset

NAME = "dedupe"
SUMMARY = (
    "Reject exact, normalised or near-duplicate records (keeping the first in source order), "
    "and find conflicting duplicates (same prompt, different completion)."
)
DUPLICATE = "duplicate"
NEAR_DUPLICATE = "near_duplicate"
CONFLICTING_DUPLICATE = "conflicting_duplicate"

# The fields a record of each kind is trained on: its identity unless `subset` says otherwise.
TRAINED_FIELDS: dict[str, tuple[str, ...]] = {
    "prompt_completion": ("prompt", "completion"),
    "chat": ("messages", "tools", "functions"),
    "preference": ("input", "preferred_output", "non_preferred_output"),
}
CANONICAL_NAMES = frozenset((*ALL_FIELDS, "prompt", "completion"))
EXAMPLES = 5  # duplicate classes / clusters shown in the report
MAX_LISTED = 100  # conflicting pairs listed in the report (the count is always exact)
B_BITS = 8  # bits of each MinHash value kept for verifying candidate pairs
# LSH bands/rows: datasketch's optimum with false negatives weighted 0.9 and false positives
# 0.1, because every candidate pair is verified (a false positive costs one comparison); at the
# default 0.85 / 128 that is 11 bands of 11 rows: a pair at Jaccard 0.85 is a candidate with
# probability 0.87, at 0.9 with 0.98 (equal weights: 8 x 16, 0.46 and 0.81).
LSH_WEIGHTS = (0.1, 0.9)
_SORTED = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
_U64 = np.uint64
_MASK64 = (1 << 64) - 1
_MUL = 0x9E3779B97F4A7C15  # odd: mixes a unit into a shingle's polynomial hash


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
            bands, rows, perm = _lsh_setup(self.threshold, self.num_perm)
            object.__setattr__(self, "lsh", (bands, rows))
            object.__setattr__(self, "permutations", perm)

    def option(self, key: str) -> bool:
        """A normalisation option's value in this mode (null means on, except in exact mode)."""
        value: bool | None = getattr(self, key)
        return self.mode != "exact" if value is None else value


@lru_cache(maxsize=8)
def _lsh_setup(
    threshold: float, num_perm: int
) -> tuple[int, int, tuple[tuple[int, ...], tuple[int, ...]]]:
    """LSH bands/rows for the threshold, and the MinHash permutations (seed 1).

    The same values as datasketch's `MinHashLSH(threshold, num_perm, weights=LSH_WEIGHTS)`
    and `MinHash(num_perm, seed=1).permutations` (scheme affine32), which the tests check;
    computed here because importing datasketch (and scipy) costs about a second per run.
    """
    bands, rows = optimal_lsh(threshold, num_perm, *LSH_WEIGHTS)
    gen = np.random.RandomState(1)
    u32 = np.uint32
    a = gen.randint(0, 1 << 31, num_perm, dtype=u32) * u32(2) + u32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=u32)
    return bands, rows, (tuple(int(x) for x in a), tuple(int(x) for x in b))


def optimal_lsh(
    threshold: float, num_perm: int, fp_weight: float, fn_weight: float
) -> tuple[int, int]:
    """datasketch's `_optimal_param`: the (bands, rows) with bands * rows <= num_perm that
    minimise fp_weight * P(false positive) + fn_weight * P(false negative), integrated over
    the Jaccard similarity below and above the threshold.

    The candidate probability 1 - (1 - s^r)^b is a polynomial of degree r * b <= num_perm, so
    Gauss-Legendre quadrature with num_perm / 2 + 1 nodes integrates it exactly.
    """
    nodes, weights = np.polynomial.legendre.leggauss(num_perm // 2 + 1)
    below = threshold / 2 * nodes + threshold / 2  # nodes on [0, threshold]
    above = (1 - threshold) / 2 * nodes + (1 + threshold) / 2  # and on [threshold, 1]
    best, opt = float("inf"), (0, 0)
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            # P(not a candidate) at similarity s is (1 - s^r)^b
            fp = threshold / 2 * float((weights * (1 - (1 - below**r) ** b)).sum())
            fn = (1 - threshold) / 2 * float((weights * (1 - above**r) ** b).sum())
            error = fp * fp_weight + fn * fn_weight
            if error < best:
                best, opt = error, (b, r)
    return opt


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


class Fields:
    """The values of canonical fields and source columns for the rows of one batch."""

    def __init__(self, batch: pd.DataFrame) -> None:
        self.batch = batch
        self.kinds: list[str] = batch["kind"].tolist()
        self._cols: dict[str, list[Any]] = {}

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
        if kind == "chat":
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
        """Per row: the fields its kind trains on (nulls left out)."""
        out = []
        for i, kind in enumerate(self.kinds):
            names = TRAINED_FIELDS.get(kind, ())
            out.append({f: v for f in names if (v := self.col(f)[i]) is not None})
        return out

    def identity(self, subset: Sequence[str] | None) -> list[Any]:
        """Per row: what defines it, its content or the values of the subset's fields."""
        if subset is None:
            return list(self.content())
        columns = [self.values(name)[0] for name in subset]
        return [dict(zip(subset, vals, strict=True)) for vals in zip(*columns, strict=True)]


def canonical_bytes(value: Any) -> bytes:
    """The canonical serialisation: orjson with sorted keys (anything odd as its str())."""
    return orjson.dumps(value, option=_SORTED, default=str)


def hash128(values: Sequence[Any]) -> np.ndarray:
    """(n, 2) int64: the xxh3_128 digest of each value's canonical bytes."""
    digests = b"".join(xxhash.xxh3_128_digest(canonical_bytes(v)) for v in values)
    return np.frombuffer(digests, dtype="<i8").reshape(-1, 2)


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


# --- normalisation --------------------------------------------------------------------------


_PUNCTUATION_PLANES = 0x20000  # planes 2-16 (ideographs, tags, private use) have none


@lru_cache(maxsize=1)
def _punctuation() -> tuple[dict[int, None], bytes, np.ndarray]:
    """Unicode punctuation (categories P*): a str.translate table, the ASCII ones as bytes, and
    a mask over all code points (built once per process)."""
    table = {
        cp: None for cp in range(_PUNCTUATION_PLANES) if unicodedata.category(chr(cp))[0] == "P"
    }
    mask = np.zeros(sys.maxunicode + 1, dtype=bool)
    mask[list(table)] = True
    return table, bytes(cp for cp in table if cp < 128), mask


class TextNormalizer:
    """NFKC, then the configured case folding, punctuation stripping and whitespace collapsing.

    `many` gives the same result as calling it on each text, with one pass over the batch.
    """

    def __init__(self, cfg: DedupeConfig) -> None:
        self.casefold = cfg.option("casefold")
        self.strip = cfg.option("strip_punctuation")
        self.collapse = cfg.option("collapse_whitespace")
        self.table: dict[int, None] = {}
        self.ascii_punct = b""
        self.mask = np.zeros(0, dtype=bool)
        if self.strip:
            self.table, self.ascii_punct, self.mask = _punctuation()

    def _fold(self, s: str, long: bool = False) -> str:
        ascii_only = s.isascii()
        if not ascii_only:
            s = unicodedata.normalize("NFKC", s)
        if self.casefold:
            s = s.casefold()
        if self.strip:
            if ascii_only:
                s = s.encode().translate(None, self.ascii_punct).decode()
            elif long:  # a code-point mask beats str.translate on long texts
                cps = np.frombuffer(s.encode("utf-32-le", "surrogatepass"), dtype="<u4")
                s = cps[~self.mask[cps]].tobytes().decode("utf-32-le", "surrogatepass")
            else:
                s = s.translate(self.table)
        return s

    def __call__(self, s: str) -> str:
        s = self._fold(s)
        return " ".join(s.split()) if self.collapse else s

    def many(self, texts: Sequence[str]) -> list[str]:
        if len(texts) < 2:
            return [self(t) for t in texts]
        out = [""] * len(texts)
        ascii_rows: list[int] = []
        other_rows: list[int] = []
        for i, t in enumerate(texts):
            (ascii_rows if t.isascii() else other_rows).append(i)
        for rows, fn in ((ascii_rows, self._many_ascii), (other_rows, self._many_unicode)):
            if rows:
                for i, text in zip(rows, fn([texts[i] for i in rows]), strict=True):
                    out[i] = text
        return out

    def _many_unicode(self, texts: list[str]) -> list[str]:
        big = "\x00".join(texts)  # NUL: unchanged by every step, and never composes
        if len(texts) < 2 or big.count("\x00") != len(texts) - 1:
            return [self(t) for t in texts]
        parts = self._fold(big, long=True).split("\x00")
        return [" ".join(p.split()) for p in parts] if self.collapse else parts

    def _many_ascii(self, texts: list[str]) -> list[str]:
        """ASCII texts: NFKC is the identity and case folding is lower(), all on bytes."""
        big = "\x00".join(texts).encode()
        if len(texts) < 2 or big.count(b"\x00") != len(texts) - 1:
            return [self(t) for t in texts]
        if self.casefold:
            big = big.lower()
        if self.strip:
            big = big.translate(None, self.ascii_punct)
        if not self.collapse:
            return big.decode().split("\x00")
        if any(c in big for c in _STR_ONLY_SPACES):
            return [" ".join(p.split()) for p in big.decode().split("\x00")]
        # every other ASCII whitespace to a space, then runs of spaces to one, then trim
        big = big.translate(_ASCII_SPACES)
        while b"  " in big:
            big = big.replace(b"  ", b" ")
        big = big.replace(b" \x00", b"\x00").replace(b"\x00 ", b"\x00").strip(b" ")
        return big.decode().split("\x00")


_STR_ONLY_SPACES = (b"\x1c", b"\x1d", b"\x1e", b"\x1f")  # str.split() splits on them
_ASCII_SPACES = bytes.maketrans(b"\t\n\r\x0b\x0c", b"     ")


@lru_cache(maxsize=8)
def text_normalizer(cfg: DedupeConfig) -> TextNormalizer:
    return TextNormalizer(cfg)


def _map_strings(value: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list | tuple):
        return [_map_strings(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: _map_strings(v, fn) for k, v in value.items()}
    return value


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


# --- near duplicates: shingles, MinHash, LSH bands ------------------------------------------

_CJK = re.compile(
    "[\u1100-\u11ff\u2e80-\u2fdf\u3040-\u30ff\u3100-\u318f\u31f0-\u31ff\u3400-\u4dbf"
    "\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f]"
)


def mostly_cjk(text: str) -> bool:
    """More than half of the non-space characters are Han, kana or Hangul."""
    if text.isascii():
        return False
    letters = len(text) - sum(map(text.count, (" ", "\n", "\t")))
    return letters > 0 and 2 * len(_CJK.findall(text)) > letters


def _fmix64(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> _U64(33))
    h = h * _U64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> _U64(33))
    h = h * _U64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> _U64(33))


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, as datasketch's affine32 scheme pre-mixes inputs."""
    u32 = np.uint32
    h = h ^ (h >> u32(16))
    h = h * u32(0x85EBCA6B)
    h = h ^ (h >> u32(13))
    h = h * u32(0xC2B2AE35)
    return h ^ (h >> u32(16))


def shingle_hash(units: Sequence[int]) -> int:
    """The 32-bit hash of one shingle (its word hashes or code points), in plain Python.

    The vectorised `shingle_hashes` computes exactly this; tests use it as datasketch's
    `hashfunc` to check that `minhash` equals datasketch's MinHash.
    """
    h = 0
    for u in units:
        h = (h * _MUL + u) & _MASK64
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _MASK64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & _MASK64
    h ^= h >> 33
    return h >> 32


_BASE = 0x100000001B3  # odd (the FNV prime): invertible modulo 2^64
_BASE_INV = pow(_BASE, -1, 1 << 64)
_POWERS: list[np.ndarray] = []  # [BASE^k, BASE^-k] for k < len, grown on demand


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    if not _POWERS or len(_POWERS[0]) < n:
        size = max(n, 1 << 20)
        with np.errstate(over="ignore"):
            up = np.cumprod(np.full(size, _BASE, dtype=np.uint64))
            down = np.cumprod(np.full(size, _BASE_INV, dtype=np.uint64))
        one = np.ones(1, dtype=np.uint64)
        _POWERS[:] = [np.concatenate([one, up[:-1]]), np.concatenate([one, down[:-1]])]
    return _POWERS[0], _POWERS[1]


def word_hash(word: bytes) -> int:
    """The 64-bit hash of one word (its UTF-8 bytes), in plain Python: a polynomial over the
    bytes, mixed with MurmurHash3's finalizer. `token_hashes` computes it for a whole batch."""
    h = 0
    for c in word:
        h = (h * _BASE + c) & _MASK64
    return _fmix64_int(h)


def _fmix64_int(h: int) -> int:
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _MASK64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & _MASK64
    return h ^ (h >> 33)


def token_hashes(buf: bytes) -> np.ndarray:
    """`word_hash` of every word of `buf` (words separated by single spaces, none empty),
    vectorised: prefix sums of byte * BASE^-i give each word's polynomial in O(bytes)."""
    if not buf:
        return np.empty(0, dtype=np.uint64)
    b = np.frombuffer(buf, dtype=np.uint8).astype(np.uint64)
    n = len(b)
    up, down = _powers(n + 1)
    spaces = np.flatnonzero(b == 32)
    starts = np.concatenate([[0], spaces + 1])
    ends = np.concatenate([spaces, [n]])
    prefix = np.zeros(n + 1, dtype=np.uint64)
    np.cumsum(b * down[:n], out=prefix[1:])
    h = (prefix[ends] - prefix[starts]) * up[ends - 1]
    return _fmix64(h)


def word_units(texts: Sequence[str], single_spaced: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """`word_hash` of every word of every text, and the number of words per text.

    `single_spaced`: the texts are whitespace-collapsed (words separated by one space).
    """
    if single_spaced:
        counts = np.fromiter(
            (t.count(" ") + 1 if t else 0 for t in texts), dtype=np.int64, count=len(texts)
        )
        buf = " ".join(t for t in texts if t).encode("utf-8", "surrogatepass")
    else:
        words: list[str] = []
        counts = np.empty(len(texts), dtype=np.int64)
        for i, t in enumerate(texts):
            w = t.split()
            counts[i] = len(w)
            words += w
        buf = " ".join(words).encode("utf-8", "surrogatepass")
    return token_hashes(buf), counts


def char_units(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The code points of every text, and the number of code points per text."""
    joined = "".join(texts).encode("utf-32-le", "surrogatepass")
    units = np.frombuffer(joined, dtype="<u4").astype(np.uint64)
    return units, np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))


def shingle_hashes(units: np.ndarray, counts: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """32-bit hashes of every k-unit shingle of every text, and the shingles per text.

    A text shorter than k units is one shingle of all its units; an empty text has none.
    """
    n = len(counts)
    per_text = np.where(counts > 0, np.maximum(counts - k + 1, 1), 0)
    total = int(per_text.sum())
    if total == 0:
        return np.empty(0, dtype=np.uint32), per_text
    text_of = np.repeat(np.arange(n), per_text)
    first_shingle = np.cumsum(per_text) - per_text
    first_unit = np.cumsum(counts) - counts
    pos = first_unit[text_of] + (np.arange(total) - first_shingle[text_of])
    length = np.minimum(counts[text_of], k)
    last = len(units) - 1
    h = units[pos].copy()
    for j in range(1, k):
        step = h * _U64(_MUL) + units[np.minimum(pos + j, last)]
        h = np.where(j < length, step, h)
    return (_fmix64(h) >> _U64(32)).astype(np.uint32), per_text


def minhash(
    hashes: np.ndarray, per_text: np.ndarray, a: np.ndarray, b: np.ndarray, chunk: int = 4096
) -> np.ndarray:
    """(n, num_perm) uint32 MinHash signatures, equal to datasketch's MinHash (scheme affine32)
    updated with the same 32-bit hashes; a text without shingles keeps the all-max signature."""
    n, perms = len(per_text), len(a)
    sig = np.full((n, perms), np.iinfo(np.uint32).max, dtype=np.uint32)
    nonempty = np.flatnonzero(per_text)
    if not len(nonempty):
        return sig
    hv = _fmix32(hashes.astype(np.uint32))
    starts = (np.cumsum(per_text) - per_text)[nonempty]
    ends = starts + per_text[nonempty]
    bb = b[:, None]
    buf = np.empty((perms, max(chunk, int(per_text.max()))), dtype=np.uint32)
    i = 0
    while i < len(nonempty):
        # records i..j-1, at most `chunk` shingles: the (perms, shingles) block stays in cache
        j = max(int(np.searchsorted(ends, starts[i] + chunk, side="right")), i + 1)
        s0, s1 = int(starts[i]), int(ends[j - 1])
        phv = buf[:, : s1 - s0]
        np.multiply.outer(a, hv[s0:s1], out=phv)
        phv += bb
        sig[nonempty[i:j]] = np.minimum.reduceat(phv, starts[i:j] - s0, axis=1).T
        i = j
    return sig


def band_hashes(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) uint64: one hash per LSH band of `rows` signature values."""
    x = sig[:, : bands * rows].reshape(len(sig), bands, rows).astype(np.uint64)
    h = np.zeros((len(sig), bands), dtype=np.uint64)
    for j in range(rows):
        h = h * _U64(_MUL) + x[:, :, j]
    return _fmix64(h)


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
    if cfg.shingle == "auto":
        use_char = np.zeros(len(texts), dtype=bool)
        for i, t in enumerate(texts):
            if not t.isascii() and mostly_cjk(t):
                use_char[i] = True
    else:
        use_char = np.full(len(texts), cfg.shingle == "char")
    a = np.asarray(cfg.permutations[0], dtype=np.uint32)
    b = np.asarray(cfg.permutations[1], dtype=np.uint32)
    sig = np.empty((len(texts), cfg.num_perm), dtype=np.uint32)
    single_spaced = cfg.option("collapse_whitespace")
    for chars, k in ((False, 3), (True, 5)):
        idx = np.flatnonzero(use_char == chars)
        if len(idx):
            part = [texts[i] for i in idx.tolist()]
            units, counts = char_units(part) if chars else word_units(part, single_spaced)
            hashes, per_text = shingle_hashes(units, counts, cfg.shingle_size or k)
            sig[idx] = minhash(hashes, per_text, a, b)
    return sig


def near_key_bytes(cfg: DedupeConfig) -> int:
    """Bytes of the near-mode key per record: LSH band hashes + 8-bit signature."""
    return 8 * cfg.lsh[0] + cfg.num_perm * B_BITS // 8


def near_keys(texts: Sequence[str], cfg: DedupeConfig) -> list[bytes]:
    """Per text: its LSH band hashes (uint64 each) then the low 8 bits of every MinHash value."""
    sig = near_signatures(texts, cfg)
    bands = band_hashes(sig, *cfg.lsh).astype("<u8")
    packed = np.concatenate(
        [bands.view(np.uint8).reshape(len(sig), -1), (sig & 0xFF).astype(np.uint8)], axis=1
    )
    width = packed.shape[1]
    buf = packed.tobytes()
    return [buf[i : i + width] for i in range(0, len(buf), width)]


def unpack_near(column: np.ndarray, cfg: DedupeConfig) -> tuple[np.ndarray, np.ndarray]:
    """(band hashes (n, bands) uint64, 8-bit signatures (n, num_perm) uint8) of a key column."""
    width = near_key_bytes(cfg)
    if len(column) and column.dtype.itemsize != width:
        raise AssertionError(f"near keys of {column.dtype.itemsize} bytes, expected {width}")
    packed = np.ascontiguousarray(column).view(np.uint8).reshape(len(column), width)  # no copy
    nb = cfg.lsh[0]
    bands = np.ascontiguousarray(packed[:, : 8 * nb]).view("<u8")
    return bands, packed[:, 8 * nb :]


def estimated_jaccard(sig8: np.ndarray, pairs: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """b-bit MinHash estimate (Li & Koenig) of the Jaccard similarity of each pair of rows.

    Two b-bit values agree with probability J + (1 - J) / 2^b, so J = (agree - 2^-b) / (1 - 2^-b).
    """
    out = np.empty(len(pairs), dtype=np.float64)
    perms = sig8.shape[1]
    for s in range(0, len(pairs), chunk):
        p = pairs[s : s + chunk]
        out[s : s + chunk] = (sig8[p[:, 0]] == sig8[p[:, 1]]).sum(axis=1) / perms
    c = 2.0**-B_BITS
    return np.clip((out - c) / (1 - c), 0.0, 1.0)


def candidate_pairs(bands: np.ndarray) -> np.ndarray:
    """(k, 2) unique pairs (i < j) of rows sharing an LSH band bucket.

    In each bucket, a row is paired with the bucket's first row and with the row before it:
    linear work however big a bucket gets, and a cluster is still found when its members
    chain through verified pairs.
    """
    n, nb = bands.shape
    found = []
    positions = np.arange(n)
    for j in range(nb):
        order = np.argsort(bands[:, j])
        v = bands[order, j]
        same = v[1:] == v[:-1]
        if not same.any():
            continue
        # put each bucket in source order (a stable sort of the whole column costs twice as much)
        shared = np.zeros(n, dtype=bool)
        shared[1:] |= same
        shared[:-1] |= same
        idx = np.flatnonzero(shared)
        order[idx] = order[idx][np.lexsort((order[idx], v[idx]))]
        starts = np.ones(n, dtype=bool)
        starts[1:] = ~same
        first = order[np.maximum.accumulate(np.where(starts, positions, 0))]
        cur, prev, head = order[1:][same], order[:-1][same], first[1:][same]
        found.append(np.stack([prev, cur], axis=1))
        other = head != prev
        found.append(np.stack([head[other], cur[other]], axis=1))
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.concatenate(found).astype(np.int64)
    codes = np.unique(pairs[:, 0] * n + pairs[:, 1])
    return np.stack([codes // n, codes % n], axis=1)


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


# --- keys (workers) -------------------------------------------------------------------------


def keys(batch: pd.DataFrame, cfg: DedupeConfig) -> dict[str, Any]:
    """Compact per-record keys: 128-bit hashes (exact/normalized) or LSH bands + signature."""
    fields = Fields(batch)
    out: dict[str, Any] = {}
    found = found_bits(fields, cfg.subset or ())
    if found is not None:
        out["found"] = found
    if cfg.mode == "near":
        out["near"] = near_keys(near_texts(fields, cfg), cfg)
        return out
    identity = fields.identity(cfg.subset)
    norm = text_normalizer(cfg) if cfg.mode == "normalized" else None

    def prepared(values: list[Any]) -> list[Any]:
        return values if norm is None else [_map_strings(v, norm) for v in values]

    h = hash128(prepared(identity))
    out["hi"], out["lo"] = h[:, 0].tolist(), h[:, 1].tolist()
    if cfg.subset is not None:
        full = hash128(prepared(list(fields.content())))
        out["full_hi"], out["full_lo"] = full[:, 0].tolist(), full[:, 1].tolist()
    return out


# --- decide (parent) ------------------------------------------------------------------------


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


def _where(table: KeyTable, row: int) -> str:
    return f"{table.source[row]}:{int(table.line[row])}"


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
        "key_bytes_per_record": near_key_bytes(cfg),
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
    bands, sig8 = unpack_near(table.columns["near"], cfg)
    if m < len(bands):
        bands, sig8 = bands[rows], sig8[rows]
    pairs = candidate_pairs(bands)
    similar = pairs[estimated_jaccard(sig8, pairs) >= cfg.threshold]
    label = connected_components(m, similar)
    members = np.flatnonzero(label != np.arange(m))
    kept = label[members]
    decisions.link(rows[similar])
    if cfg.remove and len(members):
        est = estimated_jaccard(sig8, np.stack([members, kept], axis=1))
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
