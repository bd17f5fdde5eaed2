"""dedupe: exact, normalised and near duplicates, conflicting duplicates, corpus facts."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import parse_config
from pipeline.dataset import REJECTED, TRAIN, Decisions, KeyTable
from pipeline.dataset import dedupe as dd
from pipeline.dataset import minhash as mh
from pipeline.dataset import textnorm as tn
from pipeline.dataset.dedupe import DedupeConfig
from pipeline.dataset.identity import Fields, connected_components
from pipeline.errors import PipelineError
from pipeline.records import make_batch
from tests.conftest import corpus_file, read_jsonl, run_config, run_two_ways, write_jsonl

# --- decide over hand-made key tables -------------------------------------------------------


def table(hashes: list[int], **extra: list[int]) -> KeyTable:
    """A key table whose rows have 128-bit hashes (h, h) and lines 1..n of `d.jsonl`."""
    n = len(hashes)
    cols = {"hi": np.array(hashes, dtype=np.int64), "lo": np.array(hashes, dtype=np.int64)}
    cols |= {k: np.array(v, dtype=np.int64) for k, v in extra.items()}
    return KeyTable(["d.jsonl"] * n, np.arange(1, n + 1, dtype=np.int64), cols)


def test_exact_keeps_the_first_and_names_it() -> None:
    t = table([5, 7, 5, 5, 9, 7])
    d = Decisions.all_train(len(t))
    report = dd.decide(t, d, DedupeConfig())
    assert d.dest.tolist() == [TRAIN, TRAIN, REJECTED, REJECTED, TRAIN, REJECTED]
    assert d.reasons[2] == ("dedupe", "duplicate", "duplicate of d.jsonl:1")
    assert d.reasons[5] == ("dedupe", "duplicate", "duplicate of d.jsonl:2")
    assert report["duplicates"] == 3 and report["classes"] == 2
    assert report["examples"][0] == {"kept": "d.jsonl:1", "duplicates": ["d.jsonl:3", "d.jsonl:4"]}
    assert sorted(map(tuple, d.linked.tolist())) == [(0, 2), (0, 3), (1, 5)]


def test_rows_rejected_earlier_are_not_considered() -> None:
    t = table([5, 5, 5])
    d = Decisions.all_train(3)
    d.reject("other", np.array([0]), "field_empty", "x")
    dd.decide(t, d, DedupeConfig())
    assert d.dest.tolist() == [REJECTED, TRAIN, REJECTED]
    assert d.reasons[2][2] == "duplicate of d.jsonl:2"
    assert d.reasons[0][:2] == ("other", "field_empty")  # the earlier reason stays
    assert Counter(code for stage, code, _ in d.reasons.values() if stage == "dedupe") == Counter(
        {"duplicate": 1}
    )


def test_remove_false_only_reports_and_links() -> None:
    t = table([1, 1, 2])
    d = Decisions.all_train(3)
    report = dd.decide(t, d, DedupeConfig(remove=False))
    assert (d.dest == TRAIN).all()
    assert report["duplicates"] == 1
    assert d.linked.tolist() == [[0, 1]]


@pytest.mark.parametrize(
    ("conflicts", "dest", "reasons"),
    [
        # rows: A, B (same prompt, other content), C (= B), D (= A), E (other prompt)
        ("keep", [0, 0, 2, 2, 0], {2: "duplicate of d.jsonl:2", 3: "duplicate of d.jsonl:1"}),
        (
            "reject",
            [0, 2, 2, 2, 0],
            {
                1: "conflicting duplicate of d.jsonl:1: same prompt, different content",
                2: "conflicting duplicate of d.jsonl:1: same prompt, different content",
                3: "duplicate of d.jsonl:1",
            },
        ),
    ],
)
def test_conflicting_duplicates(conflicts: str, dest: list[int], reasons: dict[int, str]) -> None:
    t = table([1, 1, 1, 1, 2], full_hi=[10, 11, 11, 10, 12], full_lo=[10, 11, 11, 10, 12])
    d = Decisions.all_train(5)
    report = dd.decide(t, d, DedupeConfig(subset=("prompt",), conflicts=conflicts))  # type: ignore[arg-type]
    assert d.dest.tolist() == dest
    assert {row: msg for row, (_s, _c, msg) in d.reasons.items()} == reasons
    assert report["conflicts"]["action"] == conflicts
    if conflicts == "keep":
        assert report["conflicts"]["count"] == 1
        assert report["conflicts"]["listed"] == [{"first": "d.jsonl:1", "conflicting": "d.jsonl:2"}]
        assert {r for _, (_s, c, _m) in d.reasons.items() for r in [c]} == {"duplicate"}
    else:
        assert report["conflicts"]["count"] == 2


def test_empty_table() -> None:
    for cfg in (DedupeConfig(), DedupeConfig(mode="near")):
        t = KeyTable([], np.zeros(0, dtype=np.int64), {})
        report = dd.decide(t, Decisions.all_train(0), cfg)
        assert report["records"] == 0


def test_near_decide_clusters_and_keeps_the_first() -> None:
    cfg = DedupeConfig(mode="near", threshold=0.5)
    words = [
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "the",
        "lazy",
        "dog",
        "near",
        "the",
        "river",
        "bank",
        "today",
    ]
    texts = [
        " ".join(words),
        "completely different words about cooking pasta with garlic and olive oil",
        " ".join(words[:-1]),  # near duplicate of 0
        " ".join(words[:-2]),  # near duplicate of 0 and 2
        "completely different words about cooking pasta with garlic and olive oil!",
    ]
    keys = dd.near_keys(dd.text_normalizer(cfg).many(texts), cfg)
    t = KeyTable(["d.jsonl"] * 5, np.arange(1, 6, dtype=np.int64), {"near": np.asarray(keys)})
    d = Decisions.all_train(5)
    report = dd.decide(t, d, cfg)
    assert d.dest.tolist() == [TRAIN, TRAIN, REJECTED, REJECTED, REJECTED]
    assert d.reasons[2][1] == "near_duplicate"
    assert d.reasons[2][2].startswith("near duplicate of d.jsonl:1 (estimated Jaccard 0.")
    assert d.reasons[4][2] == "near duplicate of d.jsonl:2 (estimated Jaccard 1.00)"
    assert report["clusters"] == 2 and report["near_duplicates"] == 3
    assert report["largest_cluster"] == 3
    assert report["examples"][0] == {"size": 3, "members": ["d.jsonl:1", "d.jsonl:3", "d.jsonl:4"]}
    assert report["key_bytes_per_record"] == len(keys[0]) == 8 * cfg.lsh[0] + 128


# --- the building blocks --------------------------------------------------------------------


def union_find(n: int, pairs: list[tuple[int, int]]) -> list[int]:
    parent = list(range(n))

    def root(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = root(a), root(b)
        parent[max(ra, rb)] = min(ra, rb)
    return [root(x) for x in range(n)]


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 40).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=60),
        )
    )
)
def test_connected_components_match_a_plain_union_find(
    case: tuple[int, list[tuple[int, int]]],
) -> None:
    n, pairs = case
    got = connected_components(n, np.array(pairs, dtype=np.int64).reshape(-1, 2))
    assert got.tolist() == union_find(n, pairs)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 4), min_size=3, max_size=3), min_size=1, max_size=30))
def test_candidate_pairs_connect_every_bucket(bands: list[list[int]]) -> None:
    arr = np.array(bands, dtype=np.uint64)
    pairs = mh.candidate_pairs(arr)
    assert (pairs[:, 0] < pairs[:, 1]).all()
    everything = [
        (i, j)
        for i in range(len(bands))
        for j in range(i + 1, len(bands))
        if any(bands[i][b] == bands[j][b] for b in range(3))
    ]
    assert set(map(tuple, pairs.tolist())) <= set(everything)
    want = union_find(len(bands), everything)
    assert connected_components(len(bands), pairs).tolist() == want
    assert len(pairs) <= 2 * 3 * len(bands)  # linear, whatever the bucket sizes


@pytest.mark.parametrize("num_perm", [64, 128, 256])
@pytest.mark.parametrize("threshold", [0.5, 0.7, 0.85, 0.95])
def test_lsh_parameters_and_permutations_equal_datasketch(threshold: float, num_perm: int) -> None:
    from datasketch import MinHash
    from datasketch.lsh import _optimal_param

    for weights in [(0.5, 0.5), mh.LSH_WEIGHTS]:
        assert mh.optimal_lsh(threshold, num_perm, *weights) == _optimal_param(
            threshold, num_perm, *weights
        )
    a, b = MinHash(num_perm=num_perm, seed=1).permutations
    cfg = DedupeConfig(mode="near", threshold=threshold, num_perm=num_perm)
    assert cfg.permutations == (tuple(a.tolist()), tuple(b.tolist()))


@pytest.mark.parametrize("shingle", ["word", "char"])
def test_minhash_equals_datasketch(shingle: str) -> None:
    from datasketch import MinHash, MinHashLSH

    cfg = DedupeConfig(mode="near", shingle=shingle)  # type: ignore[arg-type]
    lsh = MinHashLSH(threshold=0.85, num_perm=128, weights=mh.LSH_WEIGHTS)
    assert cfg.lsh == (lsh.b, lsh.r) == (11, 11)
    texts = ["a b c d e f", "one two", "", "今天天气很好我们去公园", "x"]
    sig = dd.near_signatures(texts, cfg)
    k = 3 if shingle == "word" else 5
    for text, row in zip(texts, sig, strict=True):
        if shingle == "word":
            units = [mh.word_hash(w.encode()) for w in text.split()]
        else:
            units = [ord(ch) for ch in text]
        shingles = (
            [tuple(units[i : i + k]) for i in range(max(len(units) - k + 1, 1))] if units else []
        )
        m = MinHash(num_perm=128, seed=1, hashfunc=mh.shingle_hash)
        m.update_batch(shingles)
        assert row.tolist() == m.hashvalues.tolist()


def test_b_bit_estimate_tracks_the_full_signature() -> None:
    cfg = DedupeConfig(mode="near")
    base = [f"w{i}" for i in range(60)]
    texts = [
        " ".join(base),
        " ".join([*base[:54], "x", "y", "z"]),
        " ".join(f"v{i}" for i in range(60)),
    ]
    sig = dd.near_signatures(texts, cfg)
    full = [float((sig[0] == sig[i]).mean()) for i in (1, 2)]
    est = mh.estimated_jaccard((sig & 0xFF).astype(np.uint8), np.array([[0, 1], [0, 2]]))
    assert abs(est[0] - full[0]) < 0.05 and est[1] < 0.05


@settings(max_examples=80, deadline=None)
@given(st.lists(st.text(max_size=20), max_size=8), st.booleans(), st.booleans(), st.booleans())
def test_normalizing_a_batch_equals_each_text(
    texts: list[str], casefold: bool, collapse: bool, strip: bool
) -> None:
    norm = tn.TextNormalizer(
        casefold=casefold, collapse_whitespace=collapse, strip_punctuation=strip
    )
    assert norm.many(texts) == [norm(t) for t in texts]
    longer = [t * 40 for t in texts]  # the code-point mask path
    assert norm.many(longer) == [norm(t) for t in longer]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.text(st.sampled_from(list("aZ .,!'\t\n\r\x0b\x0c\x1c\x1f\x00")), max_size=12)),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_normalizing_an_ascii_batch_equals_each_text(
    texts: list[str], casefold: bool, collapse: bool, strip: bool
) -> None:
    """The bytes path of ASCII batches (one translate, then runs of spaces and trimming)."""
    norm = tn.TextNormalizer(
        casefold=casefold, collapse_whitespace=collapse, strip_punctuation=strip
    )
    assert norm.many(texts) == [norm(t) for t in texts]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text(st.characters(blacklist_characters=" "), min_size=1, max_size=12), max_size=20)
)
def test_token_hashes_equal_word_hash(words: list[str]) -> None:
    encoded = [w.encode("utf-8", "surrogatepass") for w in words]
    got = mh.token_hashes(b" ".join(encoded))
    assert got.tolist() == [mh.word_hash(w) for w in encoded]


def test_ascii_batch_normalisation_matches_str_split() -> None:
    norm = dd.text_normalizer(DedupeConfig(mode="normalized"))
    texts = ["  a\x1fb  ", "x\t\ty\x0b", "", "   ", "P,Q.  r"]
    assert norm.many(texts) == [norm(t) for t in texts] == ["a b", "x y", "", "", "pq r"]
    texts = ["  a  b ", "x\t\ty\x0c", "", "   ", "P,Q.  r"]
    assert norm.many(texts) == [norm(t) for t in texts]


def test_normalized_text() -> None:
    norm = dd.text_normalizer(DedupeConfig(mode="normalized"))
    assert norm("Hello,  World") == norm("hello world") == "hello world"
    assert norm("ＨＥＬＬＯ！\u3000Straße") == "hello strasse"  # NFKC, casefold
    assert norm("你好，世界。") == "你好世界"
    keep_case = dd.text_normalizer(DedupeConfig(mode="normalized", casefold=False))
    assert keep_case("Hello,  World") == "Hello World"


def test_mostly_cjk() -> None:
    assert tn.mostly_cjk("今天天气很好 ok")
    assert tn.mostly_cjk("안녕하세요 여러분")
    assert not tn.mostly_cjk("hello world, 你好")
    assert not tn.mostly_cjk("")


def test_chat_prompt_is_everything_before_the_last_assistant_message() -> None:
    def chat(answer: str) -> dict[str, Any]:
        return {
            "kind": "chat",
            "messages": [
                {"role": "system", "content": "s"},
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": answer},
            ],
            "_record": {},
            "_line": 1,
            "_ord": 0,
        }

    fields = Fields(make_batch([chat("a"), chat("b")]))
    prompts, _ = fields.values("prompt")
    completions, _ = fields.values("completion")
    assert prompts[0] == prompts[1] == {"messages": chat("")["messages"][:2]}
    assert completions == [
        {"role": "assistant", "content": "a"},
        {"role": "assistant", "content": "b"},
    ]


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        ({"casefold": False}, "stages[0].casefold: applies to `mode: normalized`"),
        ({"conflicts": "reject"}, "stages[0].conflicts: `reject` needs `subset`"),
        (
            {"mode": "near", "threshold": 1.5},
            "stages[0].threshold: 1.5; expected a number in (0, 1]",
        ),
        ({"subset": []}, "stages[0].subset: an empty list"),
        ({"mode": "fuzzy"}, "stages[0].mode: 'fuzzy' is not allowed"),
    ],
)
def test_config_problems_name_the_key(stage: dict[str, Any], message: str) -> None:
    with pytest.raises(PipelineError) as info:
        parse_config({"stages": [{"name": "dedupe", **stage}]})
    assert message in str(info.value)


# --- end to end through the runner ----------------------------------------------------------



def test_run_rejects_duplicates_with_their_source_line(tmp_path: Path) -> None:
    src = write_jsonl(
        tmp_path / "data.jsonl",
        [
            {"prompt": "Hello,  World", "completion": "x"},
            {"prompt": "hello world", "completion": "x"},
            {"prompt": "Hello,  World", "completion": "x"},
        ],
    )
    report = run_config(tmp_path, {"input": {"paths": [str(src)]}, "stages": ["dedupe"]})
    rejected = read_jsonl(tmp_path / "out" / "rejected.jsonl")
    assert [(r["line"], r["reason"], r["message"]) for r in rejected] == [
        (3, "duplicate", f"duplicate of {src}:1")
    ]
    assert rejected[0]["record"] == {"prompt": "Hello,  World", "completion": "x"}
    assert report["rejected_by_reason"]["duplicate"]["count"] == 1
    report = run_config(
        tmp_path,
        {"input": {"paths": [str(src)]}, "stages": [{"name": "dedupe", "mode": "normalized"}]},
    )
    assert report["totals"]["train"] == 1 and report["dataset"]["dedupe"]["duplicates"] == 2


def test_a_subset_column_in_no_record_is_a_config_error(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "p", "completion": "c", "topic": "t"}])
    report = run_config(
        tmp_path,
        {"input": {"paths": [str(src)]}, "stages": [{"name": "dedupe", "subset": ["topic"]}]},
    )
    assert report["totals"]["train"] == 1
    with pytest.raises(PipelineError, match=r"dedupe.subset: 'promt' is neither a canonical field"):
        run_config(
            tmp_path,
            {"input": {"paths": [str(src)]}, "stages": [{"name": "dedupe", "subset": ["promt"]}]},
        )


ALPHABET = ["a", "A", "a!", "b", "b b", "B  b", "c"]
record = st.fixed_dictionaries(
    {"prompt": st.sampled_from(ALPHABET), "completion": st.sampled_from(["x", "y", "X"])}
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(record, min_size=0, max_size=30),
    mode=st.sampled_from(["exact", "normalized", "near"]),
    batch_sizes=st.tuples(st.integers(1, 7), st.integers(1, 50)),
    chunks=st.tuples(st.integers(1, 200), st.integers(1, 5000)),
)
def test_one_kept_per_class_whatever_the_batches_or_workers(
    tmp_path: Path,
    rows: list[dict[str, str]],
    mode: str,
    batch_sizes: tuple[int, int],
    chunks: tuple[int, int],
) -> None:
    src = write_jsonl(tmp_path / "d.jsonl", rows)
    norm = dd.text_normalizer(DedupeConfig(mode="normalized"))

    def key(r: dict[str, str]) -> Any:
        if mode == "exact":
            return (r["prompt"], r["completion"])
        return (norm(r["prompt"]), norm(r["completion"]))

    run_two_ways(
        tmp_path,
        {"input": {"paths": [str(src)]}, "stages": [{"name": "dedupe", "mode": mode}]},
        batch_sizes, chunks,
    )
    train = read_jsonl(tmp_path / "out0" / "train.jsonl")
    rejected = read_jsonl(tmp_path / "out0" / "rejected.jsonl")
    first: dict[Any, int] = {}
    for line, r in enumerate(rows, start=1):
        first.setdefault(key(r), line)
    if mode == "near":
        # near duplicates are fuzzy; identical (normalised) texts always collide
        assert len({key(r) for r in train}) == len(train)
        assert {r["reason"] for r in rejected} <= {"near_duplicate"}
    else:
        assert train == [rows[line - 1] for line in sorted(first.values())]
        for r in rejected:
            assert r["reason"] == "duplicate"
            assert r["message"] == f"duplicate of {src}:{first[key(r['record'])]}"
    assert len(train) + len(rejected) == len(rows)


# --- corpus facts (the numbers in docs/dedupe_split.md) --------------------------------------

MEDICAL = "messy/chinese_medical_dialogue_IM_sample_gb18030.csv"


def dedupe_corpus(tmp_path: Path, rel: str, stage: dict[str, Any], **inp: Any) -> dict[str, Any]:
    path = corpus_file(rel)
    report = run_config(tmp_path, {"input": {"paths": [str(path)], **inp}, "stages": [stage]})
    assert report["identity"]["holds"]
    return report


@pytest.mark.corpus
def test_medical_csv_duplicate_rows(tmp_path: Path) -> None:
    path = corpus_file(MEDICAL)
    with open(path, encoding="gbk", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) - len({tuple(r.values()) for r in rows}) == 378
    qa = {"prompt": "ask", "completion": "answer"}
    # over all four source columns: the 378 duplicate rows
    all_columns = {"name": "dedupe", "subset": ["department", "title", "ask", "answer"]}
    report = dedupe_corpus(tmp_path, MEDICAL, all_columns, columns=qa)
    assert report["dataset"]["dedupe"]["duplicates"] == 378
    assert report["dataset"]["dedupe"]["conflicts"]["count"] == 0
    # over the mapped fields (ask -> prompt, answer -> completion): 18 more, whose titles differ
    report = dedupe_corpus(tmp_path, MEDICAL, {"name": "dedupe"}, columns=qa)
    assert report["totals"] == {"rows_in": 7644, "train": 7248, "validation": 0, "rejected": 396}
    assert len(rows) - len({(r["ask"], r["answer"]) for r in rows}) == 396
    # the same question with another answer: 11 conflicting duplicates, kept and listed
    report = dedupe_corpus(tmp_path, MEDICAL, {"name": "dedupe", "subset": ["prompt"]}, columns=qa)
    assert report["dataset"]["dedupe"]["conflicts"]["count"] == 11
    assert report["totals"]["rejected"] == 396


@pytest.mark.corpus
def test_alpaca_zh_code_questions_duplicates(tmp_path: Path) -> None:
    rel = "chinese/alpaca_zh_code_questions_mixed_keys.json"
    raw = json.loads(corpus_file(rel).read_text(encoding="utf-8"))
    assert len(raw) - len({json.dumps(r, sort_keys=True) for r in raw}) == 1150
    source_keys = {"name": "dedupe", "subset": ["instruction", "input", "output", "history"]}
    report = dedupe_corpus(tmp_path, rel, source_keys)
    assert report["dataset"]["dedupe"]["duplicates"] == 1150
    # mapped, {instruction, output} and {instruction, input: "", output, history: ""} are the
    # same prompt/completion: 4 more duplicates
    report = dedupe_corpus(tmp_path, rel, {"name": "dedupe"})
    assert report["totals"]["rejected"] == 1154


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("rel", "duplicates"),
    [
        ("sharegpt/llamafactory_glaive_toolcall_en_demo.json", 35),
        ("chinese/llamafactory_glaive_toolcall_zh_demo.json", 43),
    ],
)
def test_glaive_toolcall_duplicates(tmp_path: Path, rel: str, duplicates: int) -> None:
    raw = json.loads(corpus_file(rel).read_text(encoding="utf-8"))
    assert len(raw) - len({json.dumps(r, sort_keys=True) for r in raw}) == duplicates
    report = dedupe_corpus(tmp_path, rel, {"name": "dedupe"})
    assert report["totals"]["rejected"] == duplicates
    assert report["rejected_by_reason"]["duplicate"]["count"] == duplicates


@pytest.mark.corpus
def test_nerre_conflicting_completions(tmp_path: Path) -> None:
    rel = "openai_format/nerre_mof_gpt3_fold0_train.jsonl"
    path = str(corpus_file(rel))
    stage = {"name": "dedupe", "subset": ["prompt"]}
    report = dedupe_corpus(tmp_path, rel, stage)
    conflicts = report["dataset"]["dedupe"]["conflicts"]
    assert conflicts["count"] == 4 and report["totals"]["rejected"] == 0
    pairs = {(c["first"], c["conflicting"]) for c in conflicts["listed"]}
    assert pairs == {
        (f"{path}:{a}", f"{path}:{b}") for a, b in [(33, 159), (37, 322), (153, 258), (346, 356)]
    }
    report = dedupe_corpus(tmp_path, rel, {**stage, "conflicts": "reject"})
    rejected = read_jsonl(tmp_path / "out" / "rejected.jsonl")
    assert [(r["line"], r["reason"]) for r in rejected] == [
        (159, "conflicting_duplicate"),
        (258, "conflicting_duplicate"),
        (322, "conflicting_duplicate"),
        (356, "conflicting_duplicate"),
    ]
    assert rejected[0]["message"] == (
        f"conflicting duplicate of {path}:33: same prompt, different content"
    )


@pytest.mark.corpus
def test_near_duplicates_in_fastchat_dummy_conversations(tmp_path: Path) -> None:
    rel = "sharegpt/fastchat_dummy_conversation.json"
    exact = dedupe_corpus(tmp_path, rel, {"name": "dedupe"})
    assert exact["totals"]["rejected"] == 0
    near = dedupe_corpus(tmp_path, rel, {"name": "dedupe", "mode": "near"})
    info = near["dataset"]["dedupe"]
    assert info["near_duplicates"] == near["totals"]["rejected"] > 100
    assert info["clusters"] > 10


def test_punctuation_lives_in_the_first_two_planes() -> None:
    import sys
    import unicodedata

    assert not any(
        unicodedata.category(chr(cp))[0] == "P"
        for cp in range(tn._PUNCTUATION_PLANES, sys.maxunicode + 1)
    )


def test_exact_then_near_counts_each_reject_once(tmp_path: Path) -> None:
    """Two dedupe entries: both reports kept, each rejected record counted once."""
    rows = [{"prompt": "a b c d e f g h", "completion": "x"}] * 3
    rows.append({"prompt": "a b c d e f g h i", "completion": "x"})
    src = write_jsonl(tmp_path / "d.jsonl", rows)
    stages = [{"name": "dedupe"}, {"name": "dedupe", "mode": "near", "threshold": 0.5}]
    report = run_config(tmp_path, {"input": {"paths": [str(src)]}, "stages": stages})
    assert report["totals"]["rejected"] == 3
    assert report["rejected_by_reason"]["duplicate"]["count"] == 2
    assert report["rejected_by_reason"]["near_duplicate"]["count"] == 1
    assert report["dataset"]["dedupe"]["duplicates"] == 2
    assert report["dataset"]["dedupe[1]"]["near_duplicates"] == 1
