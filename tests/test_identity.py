"""identity, textnorm, minhash: the helpers shared by dedupe and split, and their boundaries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.dataset import textnorm as tn
from pipeline.dataset.identity import Fields, canonical_bytes, hash128, text_of
from pipeline.records import make_batch


def test_hash128_is_xxh3_128_of_the_sorted_key_serialisation() -> None:
    a, b = {"prompt": "p", "completion": "c"}, {"completion": "c", "prompt": "p"}
    assert canonical_bytes(a) == canonical_bytes(b) == orjson.dumps(a, option=orjson.OPT_SORT_KEYS)
    h = hash128([a, b, "other"])
    assert h.shape == (3, 2) and h[0].tolist() == h[1].tolist() != h[2].tolist()
    assert h[0].tobytes() == xxhash.xxh3_128_digest(canonical_bytes(a))


def test_content_and_subset_views() -> None:
    rows = [
        {"kind": "prompt_completion", "prompt": "p", "completion": "c", "_record": {"id": 1}},
        {"kind": "prompt_completion", "prompt": "p", "completion": "d", "_record": {}},
    ]
    fields = Fields(make_batch([r | {"_line": i + 1, "_ord": i} for i, r in enumerate(rows)]))
    assert fields.content() == [
        {"prompt": "p", "completion": "c"},
        {"prompt": "p", "completion": "d"},
    ]
    assert fields.identity(["prompt"]) == [{"prompt": "p"}, {"prompt": "p"}]
    assert fields.values("id") == ([1, None], [True, False])
    assert text_of({"prompt": "p", "completion": "c"}) == "c\np"  # sorted keys


def test_map_strings_touches_only_strings() -> None:
    value = {"Key": ["A", ("B", 1)], "n": None}
    assert tn.map_strings(value, str.lower) == {"Key": ["a", ["b", 1]], "n": None}


_TEXTS = st.text(
    st.characters(blacklist_categories=("Cs",)) | st.sampled_from(list(" \t\n.,!?ÉéＡ「」ǅ\x00")),
    max_size=12,
)
_VALUES = st.recursive(
    _TEXTS | st.integers() | st.none() | st.booleans(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_VALUES, max_size=8),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_normalize_values_is_map_strings_over_the_batch(
    values: list[Any], casefold: bool, strip: bool, collapse: bool
) -> None:
    norm = tn.TextNormalizer(
        casefold=casefold, strip_punctuation=strip, collapse_whitespace=collapse
    )
    assert tn.normalize_values(values, norm) == [tn.map_strings(v, norm) for v in values]


def test_the_shared_modules_import_no_stage_machinery() -> None:
    code = (
        "import sys\n"
        "import pipeline.dataset.identity, pipeline.dataset.textnorm, pipeline.dataset.minhash\n"
        "bad = ('pipeline.read', 'pipeline.write', 'pipeline.engine', 'pipeline.runner',\n"
        "       'pipeline.stages', 'pipeline.config', 'pipeline.dataset.dedupe')\n"
        "print(sorted(m for m in sys.modules if m in bad or m.startswith(tuple(b + '.' for b in bad))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert out.stdout.strip() == "[]"
