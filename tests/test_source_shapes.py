"""Preference, KTO and multimodal shapes: recognised, mapped whole, and never lost in conversion.

The matrix test converts crafted records of every recognised source shape (each carrying every
optional field its shape has) to every output shape, and asserts for each record: either it is
written and reading the output back gives the same canonical record (nothing lost), or it is
rejected with a reason code and counted. Every file `convert --to X` writes passes `ftprep check`
for a target of shape X.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from pipeline.checks import check_files
from pipeline.cli import main
from pipeline.conversion import convert_files
from pipeline.read.mapping import ShapeError, detect
from pipeline.shapes import SHAPES
from tests.conftest import read_jsonl, write_jsonl

PNG = "https://example.com/cat.png"
DATA = "data:image/png;base64,iVBORw0KGgo="
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather", "parameters": {"type": "object"}}}]
CALL = {"id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
U = {"role": "user", "content": "Hi"}
A = {"role": "assistant", "content": "Hello"}
S = {"role": "system", "content": "Be brief."}

# source shape -> records: a plain one, and one with every optional field of the shape
SOURCES: dict[str, list[dict[str, Any]]] = {
    "chat": [
        {"messages": [U, A]},
        {"messages": [S, {**U, "name": "ann"}, {"role": "assistant", "tool_calls": [CALL]},
                      {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
                      {**A, "weight": 0}, U, A],
         "tools": TOOLS, "parallel_tool_calls": False},
    ],
    "multimodal": [
        {"messages": [{"role": "user", "content": "<image>What is it?"},
                      {"role": "assistant", "content": "A cat."}], "images": [PNG]},
        {"messages": [S, {"role": "user", "content": "Compare <image> and <image>"},
                      {"role": "assistant", "content": "Same."}], "images": [PNG, DATA],
         "tools": TOOLS},
    ],
    "sharegpt": [
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]},
        {"conversations": [
            {"from": "human", "value": "Weather?"},
            {"from": "function_call", "value": '{"name": "get_weather", "arguments": {"city": "Paris"}}'},
            {"from": "observation", "value": "sunny"},
            {"from": "gpt", "value": "Sunny."}],
         "system": "Be brief.", "tools": orjson.dumps([TOOLS[0]["function"]]).decode()},
    ],
    "sharegpt_multimodal": [
        {"conversations": [{"from": "human", "value": "<image>What?"},
                           {"from": "gpt", "value": "A cat."}], "images": [PNG]},
        {"conversations": [{"from": "human", "value": "<image>What?"},
                           {"from": "gpt", "value": "A cat."}], "images": [DATA],
         "system": "Be brief."},
    ],
    "alpaca": [
        {"instruction": "Add", "output": "4"},
        {"instruction": "Add", "input": "2+2", "output": "4", "system": "Be brief.",
         "history": [["1+1", "2"]]},
    ],
    "alpaca_multimodal": [
        {"instruction": "<image>Describe", "output": "A cat.", "images": [PNG]},
        {"instruction": "<image>Describe", "input": "briefly", "output": "A cat.",
         "images": [PNG], "system": "Be brief.", "history": [["Hi", "Hello"]]},
    ],
    "prompt_completion": [{"prompt": "Q", "completion": "A"}],
    "dolly": [{"instruction": "Q", "response": "A"},
              {"instruction": "Q", "context": "C", "response": "A"}],
    "question_answer": [{"question": "Q", "answer": "A"}],
    "vertex": [
        {"contents": [{"role": "user", "parts": [{"text": "Hi"}]},
                      {"role": "model", "parts": [{"text": "Hello"}]}]},
        {"systemInstruction": {"role": "system", "parts": [{"text": "Be brief."}]},
         "contents": [
             {"role": "user", "parts": [{"fileData": {"mimeType": "image/png", "fileUri": PNG}},
                                        {"text": "Weather?"}]},
             {"role": "model", "parts": [{"functionCall": {"name": "get_weather",
                                                           "args": {"city": "Paris"}}}]},
             {"parts": [{"functionResponse": {"name": "get_weather",
                                              "response": {"output": "sunny"}}}]},
             {"role": "model", "parts": [{"text": "Sunny."}]}],
         "tools": [{"functionDeclarations": [TOOLS[0]["function"]]}]},
    ],
    "bedrock": [
        {"schemaVersion": "bedrock-conversation-2024",
         "messages": [{"role": "user", "content": [{"text": "Hi"}]},
                      {"role": "assistant", "content": [{"text": "Hello"}]}]},
        {"schemaVersion": "bedrock-conversation-2024", "system": [{"text": "Be brief."}],
         "messages": [{"role": "user", "content": [
             {"image": {"format": "png", "source": {"s3Location": {
                 "uri": "s3://bucket/cat.png", "bucketOwner": "123456789012"}}}},
             {"text": "What?"}]},
             {"role": "assistant", "content": [{"text": "A cat."}]}]},
    ],
    "preference": [
        {"input": {"messages": [U]}, "preferred_output": [A],
         "non_preferred_output": [{"role": "assistant", "content": "Go away"}]},
        {"input": {"messages": [S, U], "tools": TOOLS, "parallel_tool_calls": True},
         "preferred_output": [A], "non_preferred_output": [{"role": "assistant", "content": "No"}]},
    ],
    "trl_preference": [
        {"prompt": "The sky is", "chosen": " blue.", "rejected": " green."},
        {"prompt": [S, U], "chosen": [A], "rejected": [{"role": "assistant", "content": "No"}]},
    ],
    "trl_preference_implicit": [
        {"chosen": [U, A], "rejected": [U, {"role": "assistant", "content": "No"}]},
    ],
    "chat_preference": [
        {"messages": [U], "chosen": A, "rejected": {"role": "assistant", "content": "No"}},
        {"messages": [S, {"role": "user", "content": "<image>What?"}], "chosen": A,
         "rejected": {"role": "assistant", "content": "No"}, "images": [PNG], "tools": TOOLS},
    ],
    "sharegpt_preference": [
        {"conversations": [{"from": "human", "value": "Hi"}],
         "chosen": {"from": "gpt", "value": "Hello"}, "rejected": {"from": "gpt", "value": "No"}},
        {"conversations": [{"from": "human", "value": "<image>What?"}], "system": "Be brief.",
         "chosen": {"from": "gpt", "value": "A cat."}, "rejected": {"from": "gpt", "value": "No"},
         "images": [PNG]},
    ],
    "alpaca_preference": [
        {"instruction": "Add", "chosen": "4", "rejected": "5"},
        {"instruction": "Add", "input": "2+2", "system": "Be brief.", "chosen": "4",
         "rejected": "5"},
    ],
    "kto": [
        {"messages": [U, A], "label": True},
        {"messages": [S, U, A], "label": False, "tools": TOOLS},
    ],
    "trl_kto": [
        {"prompt": "The sky is", "completion": " blue.", "label": True},
        {"prompt": [U], "completion": [A], "label": False},
    ],
    "sharegpt_kto": [
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}],
         "kto_tag": True},
        {"conversations": [{"from": "human", "value": "<image>Hi"},
                           {"from": "gpt", "value": "Hello"}],
         "kto_tag": False, "system": "Be brief.", "images": [PNG]},
    ],
    "alpaca_kto": [
        {"instruction": "Add", "output": "4", "kto_tag": True},
        {"instruction": "Add", "input": "2+2", "output": "5", "kto_tag": False,
         "system": "Be brief."},
    ],
}
DETECTED = {"trl_preference_implicit": "trl_preference", "trl_kto": "kto"}
# A target of each output shape: what `check` holds the written file to.
CHECK_TARGET = {
    "chat": "openai:gpt-4o-2024-08-06",
    "prompt_completion": "openai:davinci-002",
    "vertex": "vertex:gemini",
    "bedrock": "bedrock:conversation",
    "trl_conversational": "trl:conversational",
    "trl_prompt_completion": "trl:prompt_completion",
    "trl_preference": "trl:preference",
    "preference": "openai:gpt-4.1-2025-04-14",
}
DATASET_CODES = {"too_few_examples", "target_retired"}


def canonical(rec: dict[str, Any]) -> dict[str, Any]:
    mapping = detect(list(rec))
    assert mapping is not None, rec
    return mapping.apply(rec)


def _content(c: Any) -> Any:
    if isinstance(c, list) and all(isinstance(p, dict) and p.get("type", "text") == "text"
                                   and "text" in p for p in c):
        return "".join(p["text"] for p in c)
    return c


def _json(text: Any) -> Any:
    try:
        return orjson.loads(text)
    except (orjson.JSONDecodeError, TypeError):
        return text


def _messages(msgs: Any, ids: dict[str, str]) -> list[Any]:
    out = []
    for m in msgs or []:
        m = dict(m)
        if "content" in m:
            m["content"] = _content(m["content"])
        if m.get("weight") == 1:
            del m["weight"]
        if m.get("tool_calls"):
            calls = []
            for call in m["tool_calls"]:
                ids.setdefault(call["id"], f"id{len(ids)}")
                fn = call["function"]
                calls.append((ids[call["id"]], fn["name"], _json(fn["arguments"])))
            m["tool_calls"] = calls
        if m.get("role") == "tool":
            m["tool_call_id"] = ids.get(m["tool_call_id"], m["tool_call_id"])
            body = _json(m["content"])
            m["content"] = body["output"] if isinstance(body, dict) and set(body) == {
                "output"} else body
        out.append(m)
    return out


def normalized(rec: dict[str, Any]) -> dict[str, Any]:
    """What must survive: the same conversation, answers, tools and labels (tool call ids
    renumbered, text as one string, prompt/completion as a user and an assistant message)."""
    ids: dict[str, str] = {}
    if rec.get("kind") == "prompt_completion":
        rec = {"kind": "chat", "messages": [{"role": "user", "content": rec["prompt"]},
                                           {"role": "assistant", "content": rec["completion"]}]}
    out: dict[str, Any] = {k: v for k, v in rec.items() if v is not None}
    if "messages" in out:
        out["messages"] = _messages(out["messages"], ids)
    if "input" in out:
        out["input"] = {**out["input"], "messages": _messages(out["input"].get("messages"), ids)}
        out["input"] = {k: v for k, v in out["input"].items() if v is not None}
    for key in ("preferred_output", "non_preferred_output"):
        if key in out:
            out[key] = _messages(out[key], ids)
    return out


def test_every_source_shape_is_recognised() -> None:
    for name, records in SOURCES.items():
        for rec in records:
            mapping = detect(list(rec))
            assert mapping is not None and mapping.shape == DETECTED.get(name, name), (name, rec)


def test_images_fill_their_placeholders_in_order() -> None:
    rec = canonical({"messages": [{"role": "user", "content": "a <image> b <image>"}, A],
                     "images": [PNG, DATA]})
    assert rec["messages"][0]["content"] == [
        {"type": "text", "text": "a "},
        {"type": "image_url", "image_url": {"url": PNG}},
        {"type": "text", "text": " b "},
        {"type": "image_url", "image_url": {"url": DATA}},
    ]


@pytest.mark.parametrize(
    ("record", "words"),
    [
        # LLaMA-Factory: "The number of images does not match the number of <image> tokens"
        ({"messages": [{"role": "user", "content": "<image>"}, A], "images": [PNG, PNG]},
         "2 images but 1 <image>"),
        ({"messages": [{"role": "user", "content": "<image>"}, A], "images": ["img/cat.png"]},
         "local file path"),
        ({"conversations": [{"from": "human", "value": "<image>"}], "images": ["/data/a.jpg"]},
         "local file path"),
        ({"messages": [U, A], "label": "maybe"}, r"true \(desirable\) or false"),
        ({"chosen": [U, A], "rejected": [{"role": "user", "content": "other"}, A]},
         "no common prompt"),
    ],
)
def test_records_that_do_not_fit_say_why(record: dict[str, Any], words: str) -> None:
    with pytest.raises(ShapeError, match=words):
        canonical(record)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sources")
    for name, records in SOURCES.items():
        write_jsonl(folder / f"{name}.jsonl", records)
    return folder


@pytest.mark.parametrize("to", SHAPES)
def test_conversion_matrix_loses_nothing(sources: Path, tmp_path: Path, to: str) -> None:
    summaries = {Path(s.source).stem: s for s in convert_files([str(sources)], to, tmp_path)}
    survived = 0
    for name, records in SOURCES.items():
        s = summaries[name]
        assert s.error is None, s.error
        written = read_jsonl(Path(str(s.output)))
        rejected_path = tmp_path / f"{name}.rejected.jsonl"
        rejected = read_jsonl(rejected_path) if rejected_path.exists() else []
        assert s.rows == len(records) == len(written) + len(rejected)  # every record counted
        assert s.rejected == len(rejected)
        lines = {r["line"]: r for r in rejected}
        back = iter(written)
        for line, rec in enumerate(records, start=1):
            if line in lines:
                assert lines[line]["reason"] and lines[line]["message"], lines[line]
                continue
            out = next(back)
            again = canonical(out)  # the output as ftprep reads it back
            assert normalized(again) == normalized(canonical(rec)), (name, to, rec, out)
            survived += 1
        if written:  # what convert writes passes check for a target of that shape
            verdict = check_files([str(s.output)], CHECK_TARGET[to], allow_retired=True)[0]
            errors = [p for p in verdict.problems
                      if p.level == "error" and p.code not in DATASET_CODES]
            assert errors == [], (name, to, errors)
    for name in PLAIN_SURVIVES[to]:
        assert summaries[name].converted >= 1, (name, to)
    assert survived > 0


_CHATS = ("chat", "multimodal", "sharegpt", "sharegpt_multimodal", "alpaca", "alpaca_multimodal",
          "prompt_completion", "dolly", "question_answer", "vertex", "bedrock")
_TEXT_CHATS = tuple(n for n in _CHATS if "multimodal" not in n)
_PREFS = ("preference", "trl_preference", "trl_preference_implicit", "chat_preference",
          "sharegpt_preference", "alpaca_preference")
# The sources whose plain (first) record each output shape must hold whole.
PLAIN_SURVIVES = {
    "chat": _CHATS,
    "prompt_completion": _TEXT_CHATS,
    "vertex": _CHATS,
    "bedrock": _TEXT_CHATS,
    "trl_conversational": _TEXT_CHATS,
    "trl_prompt_completion": _TEXT_CHATS,
    "trl_preference": _PREFS,
    "preference": _PREFS,
}


def test_no_kto_label_or_rejected_answer_survives_into_chat_by_default(sources: Path,
                                                                      tmp_path: Path) -> None:
    summaries = {Path(s.source).stem: s for s in convert_files([str(sources)], "chat", tmp_path)}
    for name in ("kto", "trl_kto", "sharegpt_kto", "alpaca_kto", "preference", "trl_preference",
                 "chat_preference", "sharegpt_preference", "alpaca_preference"):
        assert summaries[name].converted == 0, name
        rejected = read_jsonl(tmp_path / f"{name}.rejected.jsonl")
        field = "label" if "kto" in name else "non_preferred_output"
        assert all(r["reason"] == "conversion_lossy" and field in r["message"]
                   for r in rejected), rejected


def test_chosen_losses_are_counted_and_exit_0(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in" / "kto.jsonl", SOURCES["kto"])
    pref = write_jsonl(tmp_path / "in" / "pref.jsonl", SOURCES["sharegpt_preference"][:1])
    runner = CliRunner()
    res = runner.invoke(main, ["convert", str(src), str(pref), "--to", "chat", "--kto",
                               "desirable", "--preference", "chosen", "--out",
                               str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "kto_label_dropped 1" in res.output and "kto_undesirable 1" in res.output
    assert "rejected_answer_dropped 1" in res.output
    kept = read_jsonl(tmp_path / "out" / "kto.jsonl")
    assert [m["content"] for m in kept[0]["messages"]] == ["Hi", "Hello"] and len(kept) == 1
    assert read_jsonl(tmp_path / "out" / "pref.jsonl") == [{"messages": [
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}]
    undesirable = read_jsonl(tmp_path / "out" / "kto.rejected.jsonl")
    assert [r["reason"] for r in undesirable] == ["kto_undesirable"]
    # without the options the same conversion drops nothing silently: exit 1
    res = runner.invoke(main, ["convert", str(src), "--to", "chat", "--out",
                               str(tmp_path / "out2")])
    assert res.exit_code == 1


# (source shape, target) pairs whose check suggests a conversion; the suggestion must work
SUGGESTED = [
    ("sharegpt_preference", "openai:gpt-4.1-2025-04-14"),
    ("sharegpt_preference", "openai:gpt-4o-mini-2024-07-18"),
    ("sharegpt_preference", "trl:preference"),
    ("preference", "trl:preference"),
    ("preference", "openai:gpt-4o-mini-2024-07-18"),
    ("trl_preference", "together"),
    ("kto", "openai:gpt-4o-mini-2024-07-18"),
    ("sharegpt_kto", "together"),
    ("multimodal", "openai:gpt-4o-2024-08-06"),
    ("sharegpt", "vertex:gemini"),
    ("chat", "bedrock:conversation"),
    ("prompt_completion", "vertex:gemini"),
    ("alpaca", "trl:conversational"),
    ("chat", "trl:prompt_completion"),
]


@pytest.mark.parametrize(("name", "target"), SUGGESTED)
def test_check_suggests_only_commands_that_work(tmp_path: Path, name: str, target: str) -> None:
    records = SOURCES[name][:1]  # the plain record (a desirable one for KTO)
    src = write_jsonl(tmp_path / f"{name}.jsonl", records * 10)
    verdict = check_files([str(src)], target, allow_retired=True)[0]
    shape = [p for p in verdict.problems if p.code == "file_shape"]
    assert len(shape) == 1, verdict.problems
    command = shape[0].message.split("`")[1]
    assert command.startswith("ftprep convert ") and "--out DIR" in command
    args = command.split()[1:]
    args[args.index("DIR")] = str(tmp_path / "out")
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, (command, res.output)
    out = tmp_path / "out" / f"{name}.jsonl"
    again = check_files([str(out)], target, allow_retired=True)[0]
    assert [p for p in again.problems if p.level == "error"] == [], (command, again.problems)


def test_kto_examples_are_counted_and_not_duplicates_of_each_other(tmp_path: Path) -> None:
    from tests.conftest import run_config

    src = write_jsonl(tmp_path / "kto.jsonl", [
        {"messages": [U, A], "label": True},
        {"messages": [U, {"role": "assistant", "content": "Go away"}], "label": False},
        {"messages": [U, A], "label": False},  # the same answer judged the other way
    ])
    report = run_config(tmp_path, {"input": {"paths": [str(src)]},
                                   "stages": ["count_tokens", "dedupe"]})
    assert report["totals"]["rejected"] == 0
    written = read_jsonl(tmp_path / "out" / "train.jsonl")
    assert [r["label"] for r in written] == [True, False, False]  # TRL's unpaired shape
    assert report["tokens"]["splits"]["train"]["min"] > 0


def test_init_for_kto_data_writes_a_config_that_keeps_the_desirable_examples(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "kto.jsonl", SOURCES["kto"][:1] * 3 + SOURCES["kto"][1:] * 2)
    runner = CliRunner()
    res = runner.invoke(main, ["init", "kto.jsonl", "--target", "together", "--out", "k.yaml"])
    assert res.exit_code == 0, res.output
    assert "kto: desirable" in (tmp_path / "k.yaml").read_text(encoding="utf-8")
    res = runner.invoke(main, ["run", "k.yaml"])
    assert "kto_undesirable 2" in res.output, res.output
    report = orjson.loads((tmp_path / "out" / "kto" / "report.json").read_bytes())
    assert report["rejected_by_reason"]["kto_undesirable"]["count"] == 2
    assert report["totals"]["train"] + report["totals"]["validation"] >= 1
