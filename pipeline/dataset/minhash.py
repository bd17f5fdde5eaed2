"""MinHash and LSH for near-duplicate detection, vectorised with numpy over a batch of texts.

Signatures equal datasketch's `MinHash` (scheme affine32) bit for bit, and the LSH bands and
rows equal `MinHashLSH`'s optimum; both are computed here because importing datasketch (and
scipy) costs about a second per run. Everything takes plain parameters (permutation count,
threshold, seed, shingle kind and size):

- `lsh_params(threshold, num_perm)` and `permutations(num_perm, seed)`: the parameters;
- `signatures(texts, perms, shingle, shingle_size)`: word or character shingles, hashed, then
  MinHash signatures (`word_units`, `char_units`, `shingle_hashes`, `minhash`);
- `lsh_keys` / `unpack_keys`: the compact per-record key (band hashes and an 8-bit signature)
  and back; `candidate_pairs` over the band hashes; `estimated_jaccard` (b-bit MinHash) to
  verify them.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

import numpy as np

from pipeline.dataset.textnorm import mostly_cjk

B_BITS = 8  # bits of each MinHash value kept for verifying candidate pairs
# LSH bands/rows: datasketch's optimum with false negatives weighted 0.9 and false positives
# 0.1, because every candidate pair is verified (a false positive costs one comparison); at the
# default 0.85 / 128 that is 11 bands of 11 rows: a pair at Jaccard 0.85 is a candidate with
# probability 0.87, at 0.9 with 0.98 (equal weights: 8 x 16, 0.46 and 0.81).
LSH_WEIGHTS = (0.1, 0.9)
_U64 = np.uint64
_MASK64 = (1 << 64) - 1
_MUL = 0x9E3779B97F4A7C15  # odd: mixes a unit into a shingle's polynomial hash


@lru_cache(maxsize=8)
def lsh_params(
    threshold: float, num_perm: int, weights: tuple[float, float] = LSH_WEIGHTS
) -> tuple[int, int]:
    """LSH (bands, rows) for the threshold: the same as datasketch's
    `MinHashLSH(threshold, num_perm, weights)`, which the tests check."""
    return optimal_lsh(threshold, num_perm, *weights)


@lru_cache(maxsize=8)
def permutations(num_perm: int, seed: int = 1) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The MinHash permutations (a, b): the same as datasketch's
    `MinHash(num_perm, seed=seed).permutations` (scheme affine32), which the tests check."""
    gen = np.random.RandomState(seed)
    u32 = np.uint32
    a = gen.randint(0, 1 << 31, num_perm, dtype=u32) * u32(2) + u32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=u32)
    return tuple(int(x) for x in a), tuple(int(x) for x in b)


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


# --- shingles and signatures ----------------------------------------------------------------


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


def signatures(
    texts: Sequence[str],
    perms: tuple[Sequence[int], Sequence[int]],
    shingle: Literal["auto", "word", "char"] = "auto",
    shingle_size: int | None = None,
    single_spaced: bool = False,
) -> np.ndarray:
    """(n, num_perm) uint32 MinHash signatures of the texts' shingles.

    `perms`: the (a, b) of `permutations(num_perm, seed)`; `shingle`: words, characters, or
    `auto` (characters for a text that is `mostly_cjk`, else words); `shingle_size`: units per
    shingle (None: 3 words or 5 characters); `single_spaced`: the texts are
    whitespace-collapsed (words separated by one space).
    """
    if shingle == "auto":
        use_char = np.zeros(len(texts), dtype=bool)
        for i, t in enumerate(texts):
            if not t.isascii() and mostly_cjk(t):
                use_char[i] = True
    else:
        use_char = np.full(len(texts), shingle == "char")
    a = np.asarray(perms[0], dtype=np.uint32)
    b = np.asarray(perms[1], dtype=np.uint32)
    sig = np.empty((len(texts), len(a)), dtype=np.uint32)
    for chars, k in ((False, 3), (True, 5)):
        idx = np.flatnonzero(use_char == chars)
        if len(idx):
            part = [texts[i] for i in idx.tolist()]
            units, counts = char_units(part) if chars else word_units(part, single_spaced)
            hashes, per_text = shingle_hashes(units, counts, shingle_size or k)
            sig[idx] = minhash(hashes, per_text, a, b)
    return sig


# --- LSH keys and candidates ----------------------------------------------------------------


def key_bytes(bands: int, num_perm: int) -> int:
    """Bytes of the key per record: LSH band hashes + 8-bit signature."""
    return 8 * bands + num_perm * B_BITS // 8


def lsh_keys(sig: np.ndarray, bands: int, rows: int) -> list[bytes]:
    """Per signature: its LSH band hashes (uint64 each) then the low 8 bits of every value."""
    band = band_hashes(sig, bands, rows).astype("<u8")
    packed = np.concatenate(
        [band.view(np.uint8).reshape(len(sig), -1), (sig & 0xFF).astype(np.uint8)], axis=1
    )
    width = packed.shape[1]
    buf = packed.tobytes()
    return [buf[i : i + width] for i in range(0, len(buf), width)]


def unpack_keys(column: np.ndarray, bands: int, num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """(band hashes (n, bands) uint64, 8-bit signatures (n, num_perm) uint8) of a key column."""
    width = key_bytes(bands, num_perm)
    if len(column) and column.dtype.itemsize != width:
        raise AssertionError(f"near keys of {column.dtype.itemsize} bytes, expected {width}")
    packed = np.ascontiguousarray(column).view(np.uint8).reshape(len(column), width)  # no copy
    hashes = np.ascontiguousarray(packed[:, : 8 * bands]).view("<u8")
    return hashes, packed[:, 8 * bands :]


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
