"""identity, textnorm, minhash: the helpers shared by dedupe and split, and their boundaries."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref
from pathlib import Path
from typing import Any

import orjson
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.dataset import identity
from pipeline.dataset import textnorm as tn
from pipeline.dataset.identity import (
    Fields,
    canonical_bytes,
    hash128,
    normalized_hash128,
    text_of,
)
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


def test_the_key_functions_of_one_batch_share_its_fields() -> None:
    """dedupe and split run one after the other over a worker's kept rows: the content and its
    digests are computed once, and another batch gets its own."""
    rows = [
        {"kind": "prompt_completion", "prompt": "p", "completion": c, "_line": i, "_ord": i}
        for i, c in enumerate("cdc")
    ]
    batch, other = make_batch(rows), make_batch(rows[:1])
    fields = Fields.of(batch)
    assert Fields.of(batch) is fields and Fields.of(other) is not fields
    assert Fields.of(batch) is fields and Fields.of(batch).batch is batch
    digests, h = Fields.of(batch).content_digests()
    assert h.tolist() == hash128(Fields(batch).content()).tolist()
    assert digests[0] == digests[2] != digests[1] == h[1].tobytes()
    # nothing is kept once the batch goes: not the batch, not its fields and their content
    refs = [weakref.ref(batch), weakref.ref(fields)]
    del batch, other, fields
    gc.collect()
    assert [r() for r in refs] == [None, None] and not identity._SHARED


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
def test_a_batch_s_strings_normalised_in_one_pass_and_refilled_are_map_strings(
    values: list[Any], casefold: bool, strip: bool, collapse: bool
) -> None:
    """What `normalized_hash128` does with a value of no common shape."""
    norm = tn.TextNormalizer(
        casefold=casefold, strip_punctuation=strip, collapse_whitespace=collapse
    )
    strings: list[str] = []
    for v in values:
        tn.strings_of(v, strings)
    done = iter(norm.many(strings))
    assert [tn.refill(v, done) for v in values] == [tn.map_strings(v, norm) for v in values]
    assert next(done, None) is None


# Values that often become equal after normalisation: few letters, case, punctuation, spaces,
# message keys in either order, and shapes next to the common one (a number, a nested list).
_SMALL = st.text(st.sampled_from(list("aA .!\t\n\u00e9\u00c9\uff21\x00")), max_size=4)
_MESSAGE = st.dictionaries(
    st.sampled_from(["role", "content", "name", "Role"]), _SMALL, max_size=3
) | st.dictionaries(st.sampled_from(["role", "content"]), _SMALL | st.integers(0, 1), max_size=2)
_JSON = st.recursive(  # _VALUES within 64-bit integers (canonical_bytes refuses the others)
    _TEXTS | st.integers(-(2**63), 2**64 - 1) | st.none() | st.booleans(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4),
    max_leaves=12,
)
_COMMON = st.dictionaries(
    st.sampled_from(["messages", "prompt", "completion", "tools"]),
    _SMALL | st.lists(_MESSAGE, max_size=3) | st.lists(_SMALL | st.lists(_SMALL), max_size=2),
    max_size=3,
)


def _reordered(value: Any) -> Any:
    """The same value with every dict's keys in reverse order (equal in canonical form)."""
    if isinstance(value, dict):
        return {k: _reordered(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reordered(v) for v in value]
    return value


def _bumped(value: Any) -> Any:
    """The same value with "x" added to its last string (never equal after normalising)."""
    strings: list[str] = []
    tn.strings_of(value, strings)
    if strings:
        strings[-1] += "x"
    return tn.refill(value, iter(strings))


def _classes(keys: Any) -> list[int]:
    """Per row, the first row with the same key."""
    first: dict[Any, int] = {}
    return [first.setdefault(k, i) for i, k in enumerate(keys)]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(_COMMON | _JSON, max_size=10),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_normalized_hash128_has_the_classes_of_the_rebuilt_values(
    values: list[Any], casefold: bool, strip: bool, collapse: bool
) -> None:
    """Two values get equal keys exactly when their normalised rebuilds are equal (the
    canonical bytes of `map_strings`): the fast common shape and the rest alike."""
    norm = tn.TextNormalizer(
        casefold=casefold, strip_punctuation=strip, collapse_whitespace=collapse
    )
    values = values + [_reordered(v) for v in values] + [_bumped(v) for v in values]
    keys = normalized_hash128(values, norm)
    assert keys.shape == (len(values), 2)
    expected = [canonical_bytes(tn.map_strings(v, norm)) for v in values]
    assert _classes(map(bytes, keys)) == _classes(expected)


def test_normalized_hash128_keys_the_common_shape_without_rebuilding_it() -> None:
    """A chat record and a prompt/completion take the fast path (their strings only); equal
    after normalisation means one key, whatever the key order of the messages."""
    norm = tn.TextNormalizer()
    a = {"messages": [{"role": "user", "content": "Hello,  World!"}]}
    b = {"messages": [{"content": "hello world", "role": "USER"}]}
    c = {"messages": [{"role": "user", "content": "hello there"}]}
    strings: list[str] = []
    from pipeline.dataset.identity import _flat

    assert _flat(b, strings) == [("messages", [("content", "role")])]
    assert strings == ["hello world", "USER"]
    assert _flat({"messages": [{"role": "user", "weight": 1}]}, []) is None
    keys = normalized_hash128([a, b, c, {"prompt": "P.", "completion": "c"}], norm)
    assert bytes(keys[0]) == bytes(keys[1]) != bytes(keys[2])
    assert bytes(keys[3]) == bytes(normalized_hash128([{"completion": "C", "prompt": "p"}], norm)[0])


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
