"""count_tokens: per-example token metrics, equal to an independent count with plain tiktoken."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
import tiktoken
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import PipelineError
from pipeline.records import make_batch
from pipeline.stages.count_tokens import CountTokensConfig, count_tokens
from pipeline.tokens import (
    _ROLE_SLOT,
    COLUMNS,
    _chars,
    chat_row,
    count_chat,
    get_encoding,
    resolve_encoding,
)
from tests.conftest import CORPUS, corpus_file, read_jsonl, run_config, write_jsonl
from tests.test_tokens import _cookbook_tools

NAMES = ("cl100k_base", "o200k_base")


def batch_of(*rows: dict[str, Any]) -> pd.DataFrame:
    rows = tuple({**r, "_source": "t.jsonl", "_line": i + 1, "_ord": i} for i, r in enumerate(rows))
    return make_batch(list(rows))


def n(enc: tiktoken.Encoding, text: str) -> int:
    return len(enc.encode_ordinary(text))


def metrics(out: pd.DataFrame, row: int = 0) -> dict[str, int]:
    """The text metrics of a row (the image columns have their own tests)."""
    return {c: int(out[c].iloc[row]) for c in COLUMNS if c not in IMAGE_COLUMNS}


IMAGE_COLUMNS = ("m_tokens_image", "m_images_unsized")


@pytest.mark.parametrize("name", NAMES)
def test_chat_metrics_by_hand(name: str) -> None:
    enc = get_encoding(name)
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?", "name": "ann"},
        {"role": "assistant", "content": "Paris.", "weight": 0},
        {"role": "user", "content": [{"type": "text", "text": "And Italy?"}]},
        {"role": "assistant", "content": "Rome."},
    ]
    out, _ = count_tokens(
        batch_of({"kind": "chat", "messages": messages}), CountTokensConfig(encoding=name)
    )
    texts = ["Be brief.", "Capital of France?", "Paris.", "And Italy?", "Rome."]
    roles = ["system", "user", "assistant", "user", "assistant"]
    total = sum(3 + n(enc, r) + n(enc, t) for r, t in zip(roles, texts, strict=True))
    total += n(enc, "ann") + 1 + 3
    assert metrics(out) == {
        "m_tokens_total": total,
        "m_tokens_trained": n(enc, "Rome."),  # weight 0 is not trained
        "m_tokens_system": n(enc, "Be brief."),
        "m_tokens_user": n(enc, "Capital of France?") + n(enc, "And Italy?"),
        "m_tokens_assistant": n(enc, "Paris.") + n(enc, "Rome."),
        "m_tokens_tool": 0,
        "m_messages": 5,
        "m_chars": sum(len(t) for t in texts),
    }


def test_prompt_completion_and_preference() -> None:
    enc = get_encoding("o200k_base")
    out, _ = count_tokens(
        batch_of(
            {"kind": "prompt_completion", "prompt": "2+2 ->", "completion": " 4 END"},
            {
                "kind": "preference",
                "input": {"messages": [{"role": "user", "content": "Hi"}]},
                "preferred_output": [{"role": "assistant", "content": "Hello there!"}],
                "non_preferred_output": [{"role": "assistant", "content": "What."}],
            },
        ),
        CountTokensConfig(),
    )
    p, c = n(enc, "2+2 ->"), n(enc, " 4 END")
    assert metrics(out, 0) == {
        "m_tokens_total": p + c,
        "m_tokens_trained": c,
        "m_tokens_system": 0,
        "m_tokens_user": p,
        "m_tokens_assistant": c,
        "m_tokens_tool": 0,
        "m_messages": 0,
        "m_chars": len("2+2 ->") + len(" 4 END"),
    }
    hello = n(enc, "Hello there!")
    pref = metrics(out, 1)
    assert (
        pref["m_tokens_total"]
        == 3 + n(enc, "user") + n(enc, "Hi") + 3 + n(enc, "assistant") + hello + 3
    )
    assert pref["m_tokens_trained"] == hello
    assert pref["m_messages"] == 2
    assert pref["m_tokens_assistant"] == hello  # the non-preferred output is not counted


def test_roles_tools_and_odd_shapes_never_raise() -> None:
    enc = get_encoding("o200k_base")
    out, _ = count_tokens(
        batch_of(
            {
                "kind": "chat",
                "messages": [
                    {"role": "developer", "content": "d"},
                    {"role": "tool", "content": "21.0", "tool_call_id": "x"},
                    {"role": "function", "name": "f", "content": "ok"},
                ],
            },
            {"kind": "chat", "messages": "not a list"},
            {"kind": "chat", "messages": [None, 3, {"role": 5, "content": {"x": 1}}]},
            {"kind": "prompt_completion", "prompt": None, "completion": 7},
        ),
        CountTokensConfig(),
    )
    first = metrics(out, 0)
    assert first["m_tokens_system"] == n(enc, "d")
    assert first["m_tokens_tool"] == n(enc, "21.0") + n(enc, "ok")
    assert metrics(out, 1)["m_tokens_total"] == 3  # the reply priming only
    assert metrics(out, 2)["m_messages"] == 1
    assert metrics(out, 3)["m_tokens_total"] == 0
    for col in COLUMNS:
        assert out[col].dtype == "int64"


def slow_row(enc: tiktoken.Encoding, messages: list[Any]) -> list[int]:
    """chat_row through count_chat only (no fast path)."""
    c = count_chat(enc, messages)
    row = [c.total, c.trained, 0, 0, 0, 0, c.messages, _chars(messages), c.image_tokens,
           c.images_unsized]
    for role, k in c.by_role.items():
        if role in _ROLE_SLOT:
            row[_ROLE_SLOT[role]] += k
    return row


_message = st.dictionaries(
    st.sampled_from(["role", "content", "weight", "name"]),
    st.one_of(
        st.sampled_from(["system", "user", "assistant", "tool", "developer", "function", "bot"]),
        st.text(max_size=30),
        st.sampled_from([0, 1, 1.0, 0.5, True, False, None, "1"]),
        st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=10)})),
    ),
)


_well_formed = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["system", "user", "assistant", "tool", "developer", "function"]),
        "content": st.text(max_size=40),
    },
    optional={"weight": st.sampled_from([0, 1, 1.0, 0.5, True, np.float64(1.0)])},
)


@settings(max_examples=300, deadline=None)
@given(
    messages=st.one_of(
        st.lists(_well_formed, max_size=5),  # the fast path
        st.lists(st.one_of(_well_formed, _message, st.integers()), max_size=5),
    )
)
def test_fast_path_equals_count_chat(messages: list[Any]) -> None:
    enc = get_encoding("o200k_base")
    assert chat_row(enc, messages, None, None) == slow_row(enc, messages)


def test_input_not_mutated_and_index_kept() -> None:
    batch = batch_of({"kind": "prompt_completion", "prompt": "a", "completion": "b"})
    batch.index = pd.Index([7])
    before = batch.copy()
    out, changes = count_tokens(batch, CountTokensConfig())
    pd.testing.assert_frame_equal(batch, before)
    assert out.index.equals(batch.index)
    assert changes == {}  # the stage only measures


def test_encoding_comes_from_the_target() -> None:
    assert resolve_encoding("openai:gpt-3.5-turbo-0613", None) == "cl100k_base"
    assert resolve_encoding("openai:gpt-4o-mini-2024-07-18", None) == "o200k_base"
    assert resolve_encoding("openai:gpt-4o-mini-2024-07-18", "o200k_base") == "o200k_base"
    assert resolve_encoding(None, None) == "o200k_base"
    assert resolve_encoding(None, "cl100k_base") == "cl100k_base"
    # a target whose tokenizer is not bundled (Hugging Face) falls back to the option
    assert resolve_encoding("trl:conversational", "cl100k_base") == "cl100k_base"
    with pytest.raises(PipelineError, match="remove `encoding:`"):
        resolve_encoding("openai:gpt-3.5-turbo-0613", "o200k_base")
    with pytest.raises(PipelineError, match="unknown target"):
        resolve_encoding("openai:gpt-9", None)


def test_bad_target_or_encoding_fails_when_the_config_is_read() -> None:
    from pipeline.config import parse_config

    stage = {
        "name": "count_tokens",
        "target": "openai:gpt-3.5-turbo-0613",
        "encoding": "o200k_base",
    }
    with pytest.raises(
        PipelineError, match="stage count_tokens: encoding 'o200k_base' contradicts"
    ):
        parse_config({"stages": [stage]})
    with pytest.raises(PipelineError, match="stage token_limit: unknown target"):
        parse_config({"stages": [{"name": "token_limit", "target": "openai:gpt-9"}]})


def test_metrics_reach_metrics_parquet(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(
        b'{"prompt": "Hello", "completion": " world"}\n{"prompt": "", "completion": "x"}\n'
    )
    run_config(
        tmp_path,
        {"input": {"paths": [str(src)]}, "stages": ["count_tokens"]},
    )
    table = pd.read_parquet(tmp_path / "out" / "metrics.parquet")
    for col in COLUMNS:
        assert col.removeprefix("m_") in table.columns
    enc = get_encoding("o200k_base")
    assert table["tokens_total"].tolist() == [n(enc, "Hello") + n(enc, " world"), n(enc, "x")]


# --------------------------------------------------------------------------------------------
# Every corpus file: the stage's totals equal a plain-tiktoken count of the written records
# --------------------------------------------------------------------------------------------

# Files whose columns ftprep cannot guess: the mapping its error message suggests.
COLUMNS_FOR = {
    "english/stanford_alpaca_seed_tasks.jsonl": {"prompt": "instruction", "completion": "name"},
    "messy/aoai_classification_bulk_test.tsv": {
        "prompt": "user_prompt",
        "completion": "classification",
    },
    "messy/aoai_synthetic_data_topic_classifier.csv": {
        "prompt": "customer_question",
        "completion": "agent_reply",
    },
    "messy/awesome_chatgpt_prompts_2025-12-16.csv": {"prompt": "prompt", "completion": "act"},
    "messy/chinese_medical_dialogue_IM_sample_gb18030.csv": {
        "prompt": "ask",
        "completion": "answer",
    },
    "messy/songys_kor_Pair_test_bom.csv": {"prompt": "question1", "completion": "question2"},
}


def _corpus_files() -> list[str]:
    if not CORPUS.is_dir():
        return ["(corpus absent)"]
    return sorted(
        str(p.relative_to(CORPUS))
        for p in CORPUS.rglob("*")
        if p.is_file() and p.suffix in (".json", ".jsonl", ".csv", ".tsv", ".xlsx")
    )


def plain_count(enc: tiktoken.Encoding, record: dict[str, Any]) -> int:
    """The cookbook's num_tokens_from_messages (plus tool calls and definitions), by hand."""
    if "prompt" in record:
        return n(enc, record["prompt"] or "") + n(enc, record["completion"] or "")
    total = 3
    for m in record["messages"]:
        total += 3 + n(enc, m["role"])
        content = m.get("content")
        if isinstance(content, str):
            total += n(enc, content)
        elif isinstance(content, list):
            # text parts; LLaMA-Factory's {"type": "text", "value": ...} counts 0 (docs/tokens.md)
            total += sum(n(enc, p.get("text") or "") for p in content if p.get("type") == "text")
        if isinstance(m.get("name"), str):
            total += n(enc, m["name"]) + 1
        calls = [c["function"] for c in m.get("tool_calls") or []]
        calls += [m["function_call"]] if m.get("function_call") else []
        for call in calls:
            args = call["arguments"]
            args = args if isinstance(args, str) else orjson.dumps(args).decode()
            total += n(enc, call["name"]) + n(enc, args)
    for key in ("tools", "functions"):
        if record.get(key):  # the cookbook's num_tokens_for_tools estimate (docs/tokens.md)
            total += _cookbook_tools(lambda s: n(enc, s), record[key])
    return total


@pytest.mark.corpus
@pytest.mark.parametrize("rel", _corpus_files())
def test_every_corpus_file_matches_plain_tiktoken(rel: str, tmp_path: Path) -> None:
    path = corpus_file(rel)
    input_cfg: dict[str, Any] = {"paths": [str(path)]}
    if rel in COLUMNS_FOR:
        input_cfg["columns"] = COLUMNS_FOR[rel]
    for name in NAMES:
        run_config(
            tmp_path,
            {"input": input_cfg, "stages": [{"name": "count_tokens", "encoding": name}]},
            name,
        )
        records = read_jsonl(tmp_path / name / "train.jsonl")
        table = pd.read_parquet(tmp_path / name / "metrics.parquet")
        got = table.loc[table["split"] == "train", "tokens_total"].tolist()
        enc = get_encoding(name)  # a plain tiktoken.Encoding (tests/test_tokens.py checks it)
        assert records, rel
        assert got == [plain_count(enc, r) for r in records], (rel, name)


def test_report_shows_image_tokens_and_lower_bound(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from pipeline.cli import main
    from tests.test_tokens import png_data_url

    def rec(url: str) -> dict[str, Any]:
        return {"messages": [
            {"role": "user", "content": [{"type": "text", "text": "What?"},
                                         {"type": "image_url", "image_url": {"url": url}}]},
            {"role": "assistant", "content": "A cat."}]}

    src = write_jsonl(tmp_path / "v.jsonl", [rec(png_data_url(1024, 1024)),
                                             rec("https://example.com/a.png"),
                                             rec("https://example.com/b.png")])
    cfg = {"input": {"paths": [str(src)]}, "target": "openai:gpt-4o-2024-08-06",
           "stages": ["count_tokens"], "output": {"dir": str(tmp_path / "out")}}
    report = run_config(tmp_path, cfg)
    assert report["tokens"]["image_tokens"] == 765 + 2 * 255
    assert report["tokens"]["images_at_minimum"] == 2 and report["tokens"]["lower_bound"]
    assert report["tokens"]["approximation"] is None  # o200k_base is gpt-4o's own encoding
    md = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "image tokens: 1,275" in md or "image tokens: 1275" in md
    assert "lower bound: yes" in md
    config = tmp_path / "c.yaml"
    config.write_text(orjson.dumps({**cfg, "output": {"dir": str(tmp_path / "o2")}}).decode())
    res = CliRunner().invoke(main, ["run", str(config)])
    assert res.output.count("lower bound") == 1, res.output  # warned once per run


def test_report_says_when_counts_approximate(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "c.jsonl", [{"messages": [{"role": "user", "content": "Hi"},
                                                           {"role": "assistant", "content": "Yo"}]}])
    report = run_config(tmp_path, {"input": {"paths": [str(src)]}, "target": "together",
                                   "stages": ["count_tokens"]})
    text = report["tokens"]["approximation"]
    assert text and "o200k_base" in text and "together" in text


def tiny_tokenizer_json(path: Path) -> Path:
    """A tiny word-level tokenizer.json, built with `tokenizers` itself (no download)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    vocab = {"[UNK]": 0, "hello": 1, "world": 2, "user": 3, "assistant": 4}
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()  # type: ignore[assignment]
    tok.save(str(path))
    return path


def test_open_model_counts_with_its_own_tokenizer_json(tmp_path: Path) -> None:
    from tokenizers import Tokenizer

    path = tiny_tokenizer_json(tmp_path / "tokenizer.json")
    tok = Tokenizer.from_file(str(path))

    def n(text: str) -> int:
        return len(tok.encode(text, add_special_tokens=False).ids)

    messages = [{"role": "user", "content": "hello world, hello"},
                {"role": "assistant", "content": "world"}]
    src = write_jsonl(tmp_path / "c.jsonl", [{"messages": messages}])
    report = run_config(tmp_path, {
        "input": {"paths": [str(src)]}, "target": "together",
        "stages": [{"name": "count_tokens", "tokenizer": str(path)}]})
    want = sum(3 + n(m["role"]) + n(m["content"]) for m in messages) + 3
    assert n("hello world, hello") == 4  # "," is [UNK]: this tokenizer, not tiktoken
    assert report["tokens"]["splits"]["train"]["max"] == want
    assert "tokenizer.json" in report["tokens"]["encoding"]
    assert "own tokenizer.json" in report["tokens"]["approximation"]


def test_a_missing_tokenizer_json_is_a_config_error(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "c.jsonl", [{"prompt": "a", "completion": "b"}])
    with pytest.raises(PipelineError, match="tokenizer: no file"):
        run_config(tmp_path, {"input": {"paths": [str(src)]},
                              "stages": [{"name": "count_tokens",
                                          "tokenizer": str(tmp_path / "nope.json")}]})


@pytest.mark.parametrize(
    ("target", "line", "per_image"),
    [
        # a Vertex line with a fileData image: 256 at the default HIGH media resolution
        ("vertex:gemini",
         {"contents": [{"role": "user", "parts": [
             {"text": "What?"}, {"fileData": {"mimeType": "image/png",
                                              "fileUri": "gs://b/cat.png"}}]},
             {"role": "model", "parts": [{"text": "A cat."}]}]}, 256),
        # a Bedrock Converse line with an S3 image: Llama 3.2's minimum of 1,601
        ("bedrock:conversation",
         {"schemaVersion": "bedrock-conversation-2024", "messages": [
             {"role": "user", "content": [{"text": "What?"}, {"image": {
                 "format": "png", "source": {"s3Location": {"uri": "s3://b/cat.png"}}}}]},
             {"role": "assistant", "content": [{"text": "A cat."}]}]}, 1601),
    ],
)
def test_vertex_and_bedrock_images_count_their_documented_minimum(
    tmp_path: Path, target: str, line: dict[str, Any], per_image: int
) -> None:
    src = write_jsonl(tmp_path / "v.jsonl", [line, line])
    report = run_config(tmp_path, {"input": {"paths": [str(src)]}, "target": target,
                                   "stages": ["count_tokens"]})
    tokens = report["tokens"]
    assert tokens["image_tokens"] == 2 * per_image
    assert tokens["images_at_minimum"] == 2 and tokens["lower_bound"]
    assert tokens["splits"]["train"]["min"] > per_image


@pytest.mark.parametrize(
    ("resolution", "per_image", "exact"),
    [
        ("MEDIA_RESOLUTION_LOW", 64, True),
        ("LOW", 64, True),
        ("MEDIA_RESOLUTION_MEDIUM", 256, True),
        ("MEDIA_RESOLUTION_HIGH", 256, False),
        (None, 256, False),  # the default is HIGH
    ],
)
def test_a_vertex_lines_media_resolution_picks_its_image_figure(
    tmp_path: Path, resolution: str | None, per_image: int, exact: bool
) -> None:
    # "generationConfig.mediaResolution per line (LOW 64 tokens/image, MEDIUM 256, HIGH 256 +
    # 256 x pan-and-scan; default HIGH)" (Vertex AI image tuning pages, providers.md [V5])
    line: dict[str, Any] = {"contents": [{"role": "user", "parts": [
        {"text": "What?"}, {"fileData": {"mimeType": "image/png", "fileUri": "gs://b/cat.png"}},
        {"fileData": {"mimeType": "image/png", "fileUri": "gs://b/dog.png"}}]},
        {"role": "model", "parts": [{"text": "Two pets."}]}]}
    if resolution is not None:
        line["generationConfig"] = {"mediaResolution": resolution}
    src = write_jsonl(tmp_path / "v.jsonl", [line])
    report = run_config(tmp_path, {"input": {"paths": [str(src)]}, "target": "vertex:gemini",
                                   "stages": ["count_tokens"]})
    tokens = report["tokens"]
    assert tokens["image_tokens"] == 2 * per_image
    assert tokens["images_at_minimum"] == (0 if exact else 2)
    assert bool(tokens["lower_bound"]) is not exact
