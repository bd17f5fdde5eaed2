"""Output shapes: each conversion, its refusals, and lossless round trips on the corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.shapes import SHAPES, ConversionError, from_shape, to_shape
from tests.conftest import corpus_file, read_jsonl, run_config

CHAT: dict[str, Any] = {
    "kind": "chat",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Oslo?"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "c1", "type": "function",
                 "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"t": 3}'},
        {"role": "assistant", "content": "3 degrees."},
    ],
    "tools": [{"type": "function", "function": {"name": "weather", "parameters": {}}}],
}


def test_vertex_shape() -> None:
    out = to_shape("vertex", CHAT)
    assert out["systemInstruction"] == {"role": "system", "parts": [{"text": "Be brief."}]}
    assert out["contents"][1] == {
        "role": "model", "parts": [{"functionCall": {"name": "weather", "args": {"city": "Oslo"}}}]
    }
    assert out["contents"][2] == {
        "parts": [{"functionResponse": {"name": "weather", "response": {"t": 3}}}]
    }
    assert out["tools"] == [{"functionDeclarations": [{"name": "weather", "parameters": {}}]}]


def test_bedrock_shape_and_its_refusals() -> None:
    simple = {"kind": "chat", "messages": [*CHAT["messages"][:2], {"role": "assistant", "content": "ok"}]}
    assert to_shape("bedrock", simple) == {
        "schemaVersion": "bedrock-conversation-2024",
        "system": [{"text": "Be brief."}],
        "messages": [
            {"role": "user", "content": [{"text": "Weather in Oslo?"}]},
            {"role": "assistant", "content": [{"text": "ok"}]},
        ],
    }
    with pytest.raises(ConversionError) as info:
        to_shape("bedrock", CHAT)
    assert info.value.code == "conversion_unsupported"


@pytest.mark.parametrize(
    ("shape", "record", "code"),
    [
        ("prompt_completion", CHAT, "conversion_lossy"),
        ("trl_preference", CHAT, "conversion_unsupported"),
        ("vertex", {"kind": "chat", "messages": [
            {"role": "user", "content": "a"}, {"role": "system", "content": "late"}]},
         "conversion_lossy"),
        ("vertex", {"kind": "chat", "messages": [
            {"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "weight": 0}]},
         "conversion_lossy"),
        ("vertex", {"kind": "chat", "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
         "conversion_lossy"),
        ("trl_prompt_completion", {"kind": "chat", "messages": [{"role": "user", "content": "a"}]},
         "conversion_unsupported"),
    ],
)
def test_refusals_name_what_would_be_lost(shape: str, record: dict[str, Any], code: str) -> None:
    with pytest.raises(ConversionError) as info:
        to_shape(shape, record)
    assert info.value.code == code and info.value.message


def test_trl_shapes() -> None:
    assert to_shape("trl_prompt_completion", CHAT | {"tools": None})["completion"] == [
        {"role": "assistant", "content": "3 degrees."}
    ]
    pref = {
        "kind": "preference",
        "input": {"messages": [{"role": "user", "content": "q"}]},
        "preferred_output": [{"role": "assistant", "content": "good"}],
        "non_preferred_output": [{"role": "assistant", "content": "bad"}],
    }
    out = to_shape("trl_preference", pref)
    assert out == {"prompt": [{"role": "user", "content": "q"}],
                   "chosen": [{"role": "assistant", "content": "good"}],
                   "rejected": [{"role": "assistant", "content": "bad"}]}
    assert from_shape("trl_preference", out) == pref


def normalized(rec: dict[str, Any]) -> dict[str, Any]:
    """What must survive a round trip: ids renumbered, JSON text compared as values."""
    ids: dict[str, str] = {}

    def content(c: Any) -> Any:
        if isinstance(c, list) and len(c) == 1 and isinstance(c[0], dict) and "text" in c[0]:
            return c[0]["text"]
        return c

    def json_value(text: Any) -> Any:
        try:
            return orjson.loads(text)
        except (orjson.JSONDecodeError, TypeError):
            return text

    msgs = []
    for m in rec.get("messages") or []:
        m = dict(m)
        if "content" in m:
            m["content"] = content(m["content"])
        if m.get("weight") == 1:
            del m["weight"]
        if m.get("tool_calls"):
            calls = []
            for call in m["tool_calls"]:
                ids[call["id"]] = f"id{len(ids)}"
                fn = call["function"]
                calls.append({"id": ids[call["id"]], "name": fn["name"], "args": json_value(fn["arguments"])})
            m["tool_calls"] = calls
        if m.get("role") == "tool":
            m["tool_call_id"] = ids.get(m["tool_call_id"], m["tool_call_id"])
            m["content"] = json_value(m["content"])
            if isinstance(m["content"], dict) and set(m["content"]) == {"output"}:
                m["content"] = m["content"]["output"]
        msgs.append(m)
    out = {k: v for k, v in rec.items() if k != "messages" and v is not None}
    out["messages"] = msgs
    return out


CHAT_FILES = [
    "openai_format/toy_chat_fine_tuning.jsonl",
    "openai_format/azureai_stock_train_hallucination_functions.jsonl",
    "sharegpt/fastchat_dummy_conversation.json",
    "sharegpt/llamafactory_glaive_toolcall_en_demo.json",
    "chinese/llamafactory_glaive_toolcall_zh_demo.json",
    "sharegpt/llamafactory_v1_sft_demo_content_parts.jsonl",
]


@pytest.mark.parametrize("rel", CHAT_FILES)
def test_round_trips_lose_nothing_on_the_corpus(tmp_path: Path, rel: str) -> None:
    path = corpus_file(rel)
    run_config(tmp_path, {"input": {"paths": [str(path)]}})
    records = [{"kind": "chat", **r} for r in read_jsonl(tmp_path / "out" / "train.jsonl")]
    converted = {shape: 0 for shape in SHAPES}
    for rec in records:
        for shape in SHAPES:
            try:
                obj = to_shape(shape, rec)
            except ConversionError as exc:
                assert exc.code in ("conversion_lossy", "conversion_unsupported") and exc.message
                continue
            back = from_shape(shape, orjson.loads(orjson.dumps(obj)))
            if shape == "prompt_completion":  # as `convert --to chat` reads it back
                back = {"kind": "chat", "messages": [
                    {"role": "user", "content": back["prompt"]},
                    {"role": "assistant", "content": back["completion"]},
                ]}
            assert normalized(back) == normalized(rec), (shape, rec)
            converted[shape] += 1
    assert converted["chat"] == len(records)
    if not any(r.get("functions") for r in records):  # legacy functions: only chat holds them
        assert converted["trl_conversational"] == len(records)
        assert converted["trl_prompt_completion"] > 0
    if "glaive" in rel:  # tool calls become Vertex functionCall parts and back
        assert converted["vertex"] > 0
