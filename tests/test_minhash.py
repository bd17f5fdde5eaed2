"""minhash: signatures, LSH parameters and keys from plain parameters (no stage config)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.dataset import minhash as mh
from pipeline.dataset.textnorm import mostly_cjk


@pytest.mark.parametrize(("num_perm", "seed"), [(64, 1), (96, 7), (128, 2024)])
def test_permutations_equal_datasketch_for_any_seed(num_perm: int, seed: int) -> None:
    from datasketch import MinHash

    a, b = MinHash(num_perm=num_perm, seed=seed).permutations
    assert mh.permutations(num_perm, seed) == (tuple(a.tolist()), tuple(b.tolist()))


@pytest.mark.parametrize(("threshold", "num_perm"), [(0.5, 64), (0.85, 128), (0.9, 256)])
def test_lsh_params_equal_datasketch(threshold: float, num_perm: int) -> None:
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=mh.LSH_WEIGHTS)
    assert mh.lsh_params(threshold, num_perm) == (lsh.b, lsh.r)


@pytest.mark.parametrize(("shingle", "size"), [("word", 2), ("char", 4), ("auto", None)])
def test_signatures_equal_datasketch_with_plain_parameters(shingle: str, size: int | None) -> None:
    from datasketch import MinHash

    texts = [
        "a b  c d\te f",
        "one two",
        "",
        "今天天气很好我们去公园",
        "x",
        "the cat sat on the mat",
    ]
    perms = mh.permutations(64, seed=3)
    sig = mh.signatures(texts, perms, shingle, size)  # type: ignore[arg-type]
    assert sig.shape == (len(texts), 64) and sig.dtype == np.uint32
    for text, row in zip(texts, sig, strict=True):
        chars = shingle == "char" or (shingle == "auto" and mostly_cjk(text))
        k = size or (5 if chars else 3)
        if chars:
            units = [ord(ch) for ch in text]
        else:
            units = [mh.word_hash(w.encode()) for w in text.split()]
        shingles = (
            [tuple(units[i : i + k]) for i in range(max(len(units) - k + 1, 1))] if units else []
        )
        m = MinHash(num_perm=64, seed=3, hashfunc=mh.shingle_hash)
        m.update_batch(shingles)
        assert row.tolist() == m.hashvalues.tolist()


def test_single_spaced_texts_give_the_same_signatures() -> None:
    texts = ["a b c d e", "x y", "", "one"]
    perms = mh.permutations(32)
    assert np.array_equal(
        mh.signatures(texts, perms, "word", single_spaced=True),
        mh.signatures(texts, perms, "word", single_spaced=False),
    )


def test_keys_pack_and_unpack() -> None:
    bands, rows = 4, 8
    perms = mh.permutations(32)
    sig = mh.signatures(["a b c d", "a b c e", "p q r s"], perms, "word")
    keys = mh.lsh_keys(sig, bands, rows)
    assert {len(k) for k in keys} == {mh.key_bytes(bands, 32)} == {8 * 4 + 32}
    hashes, sig8 = mh.unpack_keys(np.asarray(keys), bands, 32)
    assert np.array_equal(hashes, mh.band_hashes(sig, bands, rows))
    assert np.array_equal(sig8, (sig & 0xFF).astype(np.uint8))
    with pytest.raises(AssertionError):
        mh.unpack_keys(np.asarray(keys), bands + 1, 32)
