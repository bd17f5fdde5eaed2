"""validate_schema: one defect per record -> its code and JSON path; targets; corpus verdicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import parse_config
from pipeline.errors import PipelineError
from pipeline.reasons import REASONS, WARNINGS
from pipeline.records import make_batch
from pipeline.stages.validate_schema import ValidateSchemaConfig, validate_schema
from tests.conftest import corpus_file, run_config

MINI = "openai:gpt-4o-mini-2024-07-18"
VISION = "openai:gpt-4o-2024-08-06"
OLD = "openai:gpt-3.5-turbo-0613"
DPO = "openai:gpt-4.1-2025-04-14"

U = {"role": "user", "content": "Hi"}
A = {"role": "assistant", "content": "Hello"}
S = {"role": "system", "content": "Be brief."}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
CALL = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}


def batch(records: list[dict[str, Any]], source: str = "s.jsonl") -> pd.DataFrame:
    rows = []
    for i, rec in enumerate(records):
        rec = dict(rec)
        kind = rec.pop("kind", None) or (
            "prompt_completion" if "prompt" in rec else "preference" if "input" in rec else "chat"
        )
        rows.append({**rec, "kind": kind, "_record": dict(rec), "_source": source,
                     "_line": i + 1, "_ord": i})
    return make_batch(rows)


def verdict(
    record: dict[str, Any], target: str | None = None, **kw: Any
) -> tuple[str | None, str | None, dict[str, str]]:
    out, _ = validate_schema(batch([record]), ValidateSchemaConfig(target=target, **kw))
    row = out.iloc[0]
    warnings = dict(row["_warnings"] or ())
    return row["_reason"], row["_message"], warnings


def chat(*messages: Any, **top: Any) -> dict[str, Any]:
    return {"messages": list(messages), **top}


def img(url: str = "https://example.com/a.png") -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


# --- one defect, one code, the path in the message --------------------------------------------

CASES: list[tuple[str, dict[str, Any], str | None, str, str]] = [
    # (id, record, target, code, path in message)
    ("no messages", {"messages": None}, None, "messages_not_list", "messages"),
    ("empty messages", chat(), None, "messages_not_list", "messages"),
    ("messages dict", {"messages": {"role": "user"}}, None, "messages_not_list", "messages"),
    ("message string", chat("hi", A), None, "message_not_object", "messages[0]"),
    ("missing role", chat({"content": "x"}, A), None, "message_missing_key", "messages[0].role"),
    ("missing content", chat({"role": "user"}, A), None, "message_missing_key",
     "messages[0].content"),
    ("unknown key", chat({**U, "comment": "x"}, A), None, "message_unknown_key",
     "messages[0].comment"),
    ("loss_weight", chat(U, {**A, "loss_weight": 1.0}), MINI, "message_unknown_key",
     "messages[1].loss_weight"),
    ("human role", chat({"role": "human", "content": "x"}, A), None, "role_unknown",
     "messages[0].role"),
    ("developer", chat({"role": "developer", "content": "x"}, U, A), MINI, "role_unknown",
     "messages[0].role"),
    ("tool role on gpt-4", chat(U, A, {"role": "tool", "content": "1", "tool_call_id": "c"}),
     "openai:gpt-4-0613", "role_unknown", "messages[2].role"),
    ("null content", chat(U, {"role": "assistant", "content": None}), None, "content_missing",
     "messages[1].content"),
    ("empty content", chat({"role": "user", "content": ""}, A), None, "content_empty",
     "messages[0].content"),
    ("blank content", chat(U, {"role": "assistant", "content": " \n"}), None, "content_empty",
     "messages[1].content"),
    ("int content", chat({"role": "user", "content": 42}, A), None, "content_invalid",
     "messages[0].content"),
    ("empty parts", chat({"role": "user", "content": []}, A), None, "content_invalid",
     "messages[0].content"),
    ("value part", chat({"role": "user", "content": [{"type": "text", "value": "x"}]}, A), None,
     "content_part_invalid", "messages[0].content[0].text"),
    ("part no type", chat({"role": "user", "content": [{"text": "x"}]}, A), None,
     "content_part_invalid", "messages[0].content[0]"),
    ("audio part", chat({"role": "user", "content": [{"type": "input_audio"}]}, A), None,
     "content_type_unsupported", "messages[0].content[0].type"),
    ("refusal on user", chat({"role": "user", "content": [{"type": "refusal", "refusal": "no"}]},
     A), None, "content_type_unsupported", "messages[0].content[0].type"),
    ("no assistant", chat(S, U), None, "assistant_missing", "messages"),
    ("image without vision", chat({"role": "user", "content": [img()]}, A), MINI,
     "image_unsupported", "messages[0].content[0].type"),
    ("image on assistant", chat(U, {"role": "assistant", "content": [img()]}), VISION,
     "image_not_user", "messages[1].content[0].type"),
    ("image on system", chat({"role": "system", "content": [img()]}, U, A), VISION,
     "image_not_user", "messages[0].content[0].type"),
    ("11 images", chat({"role": "user", "content": [img()] * 11}, A), VISION,
     "too_many_images", "messages"),
    ("gif data url", chat({"role": "user", "content": [img("data:image/gif;base64,R0lG")]}, A),
     VISION, "image_invalid", "messages[0].content[0].image_url.url"),
    ("ftp url", chat({"role": "user", "content": [img("ftp://x/a.png")]}, A), VISION,
     "image_invalid", "messages[0].content[0].image_url.url"),
    ("image no url", chat({"role": "user", "content": [{"type": "image_url"}]}, A), VISION,
     "content_part_invalid", "messages[0].content[0].image_url"),
    ("tools not list", chat(U, A, tools={"type": "function"}), MINI, "tools_invalid", "tools"),
    ("tool wrong shape", chat(U, A, tools=[{"name": "f"}]), MINI, "tools_invalid", "tools[0]"),
    ("bad function name", chat(U, A, tools=[{"type": "function", "function": {"name": "get weather"}}]),
     MINI, "function_name_invalid", "tools[0].function.name"),
    ("parallel not bool", chat(U, A, tools=TOOLS, parallel_tool_calls="yes"), MINI,
     "tools_invalid", "parallel_tool_calls"),
    ("call without id", chat(U, {"role": "assistant", "tool_calls": [{**CALL, "id": None}]},
     tools=TOOLS), MINI, "tool_call_invalid", "messages[1].tool_calls[0].id"),
    ("call wrong type", chat(U, {"role": "assistant", "tool_calls": [{**CALL, "type": "fn"}]},
     tools=TOOLS), MINI, "tool_call_invalid", "messages[1].tool_calls[0].type"),
    ("calls not list", chat(U, {"role": "assistant", "tool_calls": CALL}, tools=TOOLS), MINI,
     "tool_call_invalid", "messages[1].tool_calls"),
    ("args object", chat(U, {"role": "assistant", "tool_calls": [
        {**CALL, "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
        tools=TOOLS), MINI, "arguments_invalid", "messages[1].tool_calls[0].function.arguments"),
    ("args object for Mistral", chat(U, {"role": "assistant", "tool_calls": [
        {**CALL, "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
        tools=TOOLS), "mistral", "arguments_invalid",
     "messages[1].tool_calls[0].function.arguments"),
    ("args not json", chat(U, {"role": "assistant", "tool_calls": [
        {**CALL, "function": {"name": "get_weather", "arguments": "{city: Paris"}}]},
        tools=TOOLS), MINI, "arguments_invalid", "messages[1].tool_calls[0].function.arguments"),
    ("args json list", chat(U, {"role": "assistant", "tool_calls": [
        {**CALL, "function": {"name": "get_weather", "arguments": "[1]"}}]},
        tools=TOOLS), MINI, "arguments_invalid", "messages[1].tool_calls[0].function.arguments"),
    ("unknown function", chat(U, {"role": "assistant", "tool_calls": [
        {**CALL, "function": {"name": "get_time", "arguments": "{}"}}]}, tools=TOOLS), MINI,
     "function_unknown", "messages[1].tool_calls[0].function.name"),
    ("orphan tool", chat(U, {"role": "tool", "tool_call_id": "c9", "content": "21"}, A),
     MINI, "tool_response_orphan", "messages[1].tool_call_id"),
    ("tool answered twice", chat(U, {"role": "assistant", "tool_calls": [CALL]},
     {"role": "tool", "tool_call_id": "c1", "content": "1"},
     {"role": "tool", "tool_call_id": "c1", "content": "2"}, A, tools=TOOLS), MINI,
     "tool_response_orphan", "messages[3].tool_call_id"),
    ("tool without id", chat(U, {"role": "assistant", "tool_calls": [CALL]},
     {"role": "tool", "content": "1"}, A, tools=TOOLS), MINI, "message_missing_key",
     "messages[2].tool_call_id"),
    ("duplicate call id", chat(U, {"role": "assistant", "tool_calls": [CALL, CALL]},
     tools=TOOLS), MINI, "tool_call_invalid", "messages[1].tool_calls[1].id"),
    ("function_call not object", chat(U, {"role": "assistant", "function_call": "f"},
     functions=[{"name": "f"}]), OLD, "function_call_invalid", "messages[1].function_call"),
    ("function_call unknown", chat(U, {"role": "assistant", "function_call":
     {"name": "g", "arguments": "{}"}}, functions=[{"name": "f"}]), OLD, "function_unknown",
     "messages[1].function_call.name"),
    ("functions not list", chat(U, A, functions={"name": "f"}), OLD, "functions_invalid",
     "functions"),
    ("function role without name", chat(U, {"role": "function", "content": "1"}, A), OLD,
     "message_missing_key", "messages[1].name"),
    ("tools on gpt-4-0613", chat(U, A, tools=TOOLS), "openai:gpt-4-0613", "top_level_key_unknown",
     "tools"),
    ("weight 2", chat(U, {**A, "weight": 2}), MINI, "weight_invalid", "messages[1].weight"),
    ("weight true", chat(U, {**A, "weight": True}), MINI, "weight_invalid", "messages[1].weight"),
    ("weight on user", chat({**U, "weight": 0}, A), MINI, "message_unknown_key",
     "messages[0].weight"),
    ("top-level weight", chat(U, A, weight=1), MINI, "top_level_key_unknown", "weight"),
    ("name with space", chat({**U, "name": "Jo Smith"}, A), MINI, "name_invalid",
     "messages[0].name"),
    ("chat on prompt target", chat(U, A), "openai:davinci-002", "format_unsupported", ""),
    ("prompt on chat target", {"prompt": "p", "completion": "c"}, MINI, "format_unsupported", ""),
    ("prompt list", {"prompt": ["p"], "completion": "c"}, None, "prompt_invalid", "prompt"),
    ("completion number", {"prompt": "p", "completion": 1}, None, "completion_invalid",
     "completion"),
    ("completion blank", {"prompt": "p", "completion": "  "}, None, "content_empty", "completion"),
    ("input not object", {"input": "q", "preferred_output": [A], "non_preferred_output": [A]},
     DPO, "input_invalid", "input"),
    ("input empty messages", {"input": {"messages": []}, "preferred_output": [A],
     "non_preferred_output": [{**A, "content": "x"}]}, DPO, "input_invalid", "input.messages"),
    ("two preferred", {"input": {"messages": [U]}, "preferred_output": [A, A],
     "non_preferred_output": [{**A, "content": "x"}]}, DPO, "preference_output_invalid",
     "preferred_output"),
    ("preferred user", {"input": {"messages": [U]}, "preferred_output": [U],
     "non_preferred_output": [A]}, DPO, "preference_output_invalid", "preferred_output[0].role"),
    ("dpo image", {"input": {"messages": [{"role": "user", "content": [img()]}]},
     "preferred_output": [A], "non_preferred_output": [{**A, "content": "x"}]}, "openai:gpt-4o-2024-08-06",
     "content_type_unsupported", "input.messages[0].content[0].type"),
    ("dpo tool call output", {"input": {"messages": [U]}, "preferred_output": [
        {"role": "assistant", "tool_calls": [CALL]}], "non_preferred_output": [A]}, DPO,
     "preference_output_invalid", "preferred_output[0].tool_calls"),
]


@pytest.mark.parametrize(("record", "target", "code", "path"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_one_defect_gives_its_code_and_path(
    record: dict[str, Any], target: str | None, code: str, path: str
) -> None:
    assert code in REASONS
    reason, message, _ = verdict(record, target)
    assert reason == code, message
    assert message and message.startswith(f"{path}: " if path else ""), message


VALID: list[tuple[str, dict[str, Any], str | None]] = [
    ("plain", chat(S, U, A), None),
    ("name key", chat({**U, "name": "alice"}, A), MINI),
    ("weights 0 and 1", chat(U, {**A, "weight": 0}, U, {**A, "weight": 1}), MINI),
    ("text parts", chat({"role": "user", "content": [{"type": "text", "text": "Hi"}]}, A), MINI),
    ("refusal part", chat(U, {"role": "assistant", "content": [{"type": "refusal",
                                                                "refusal": "No."}]}), MINI),
    ("tool flow", chat(U, {"role": "assistant", "content": None, "tool_calls": [CALL]},
                       {"role": "tool", "tool_call_id": "c1", "content": "21"}, A,
                       tools=TOOLS, parallel_tool_calls=False), MINI),
    ("ends in a tool call", chat(U, {"role": "assistant", "tool_calls": [CALL]}, tools=TOOLS),
     MINI),
    ("legacy functions", chat(U, {"role": "assistant", "content": None, "function_call":
                                  {"name": "f", "arguments": "{\"a\": 1}"}},
                              {"role": "function", "name": "f", "content": "1"}, A,
                              functions=[{"name": "f", "parameters": {"type": "object"}}]), OLD),
    ("vision", chat({"role": "user", "content": [{"type": "text", "text": "What?"},
                                                 img("data:image/png;base64,iVBORw0KGgo="),
                                                 img()]}, A), VISION),
    ("args object for TRL", chat(U, {"role": "assistant", "tool_calls": [
        {**CALL, "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
        tools=TOOLS), "trl:conversational"),
    ("prompt completion", {"prompt": "", "completion": " open-ended"}, None),
    ("dpo", {"input": {"messages": [U], "tools": []}, "preferred_output": [A],
             "non_preferred_output": [{**A, "content": "Hey"}]}, DPO),
    ("rft needs no assistant", chat({"role": "developer", "content": "x"}, U, answer="42"),
     "openai:o4-mini-2025-04-16"),
]


@pytest.mark.parametrize(("record", "target"), [c[1:] for c in VALID], ids=[c[0] for c in VALID])
def test_valid_records_are_kept(record: dict[str, Any], target: str | None) -> None:
    reason, message, warnings = verdict(record, target)
    assert reason is None, message
    assert warnings == {}


def test_several_problems_reject_with_the_first_and_list_all() -> None:
    rec = chat({"role": "developer", "content": "x"}, {"role": "user", "content": ""},
               {**A, "weight": 5}, weight=1)
    reason, message, _ = verdict(rec, MINI)
    assert reason == "top_level_key_unknown"
    assert message is not None and message.startswith("4 problems: [top_level_key_unknown] weight")
    for part in ("[role_unknown] messages[0].role", "[content_empty] messages[1].content",
                 "[weight_invalid] messages[2].weight"):
        assert part in message


WARNED = [
    ("no user message", chat(S, A), MINI, "user_missing"),
    ("all weights 0", chat(U, {**A, "weight": 0}, U, {**A, "weight": 0}), MINI,
     "weights_all_zero"),
    ("special token", chat(U, {**A, "content": "Done.<|endoftext|>"}), MINI,
     "special_token_in_text"),
    ("special token in a part", chat({"role": "user", "content": [
        {"type": "text", "text": "<|im_start|>user"}]}, A), MINI, "special_token_in_text"),
    ("special token in prompt", {"prompt": "x<|endoftext|>", "completion": " y"}, None,
     "special_token_in_text"),
    ("calls without tools", chat(U, {"role": "assistant", "tool_calls": [CALL]}), MINI,
     "tool_definitions_missing"),
    ("identical pair", {"input": {"messages": [U]}, "preferred_output": [A],
                        "non_preferred_output": [A]}, DPO, "preference_identical"),
]


@pytest.mark.parametrize(("record", "target", "code"), [c[1:] for c in WARNED],
                         ids=[c[0] for c in WARNED])
def test_warnings_keep_the_record(record: dict[str, Any], target: str | None, code: str) -> None:
    assert code in WARNINGS
    reason, message, warnings = verdict(record, target)
    assert reason is None, message
    assert list(warnings) == [code]


def test_extra_top_level_keys_drop_reject_warn_or_ignore() -> None:
    rec = chat(U, A, id="abc", source="faq")
    out, changes = validate_schema(batch([rec]), ValidateSchemaConfig(target=MINI))
    assert out["_reason"].isna().all() and not out["_warnings"].iloc[0]  # the default: drop
    assert changes == {"top_level_key_dropped": 2}
    reason, message, _ = verdict(rec, MINI, extra_keys="reject")
    assert reason == "top_level_key_unknown"
    assert message is not None and "top-level key `id`" in message
    reason, _, warnings = verdict(rec, MINI, extra_keys="warn")
    assert reason is None and list(warnings) == ["top_level_key_ignored"]
    assert verdict(rec, MINI, extra_keys="ignore")[:1] == (None,)
    # a spreadsheet's other columns are never written: not a problem
    out, _ = validate_schema(batch([{"prompt": "p", "completion": " c", "label": "x"}], "d.csv"),
                             ValidateSchemaConfig(target="openai:davinci-002"))
    assert out["_reason"].isna().all()
    # a record in another shape (Bedrock Converse) has its own keys, which the reader maps
    bedrock, _ = validate_schema(
        batch([{"messages": [U, A], "kind": "chat"}]).assign(
            _record=[{"schemaVersion": "bedrock-conversation-2024", "system": [], "messages": []}]
        ),
        ValidateSchemaConfig(target=MINI),
    )
    assert bedrock["_reason"].isna().all()
    # Together takes a top-level weight; OpenAI does not
    assert verdict(chat(U, A, weight=0.5), "together")[0] is None


def test_data_url_size_limit() -> None:
    big = "data:image/jpeg;base64," + "A" * (10 * 1024 * 1024 * 4 // 3 + 8)
    reason, message, _ = verdict(chat({"role": "user", "content": [img(big)]}, A), VISION)
    assert reason == "image_too_large", message
    assert "messages[0].content[0].image_url.url" in str(message)
    # Azure takes 64 images per example, OpenAI 10
    many = chat({"role": "user", "content": [img()] * 20}, A)
    assert verdict(many, VISION)[0] == "too_many_images"
    assert verdict(many, "azure:gpt-4o-2024-08-06")[0] is None


BEDROCK = "bedrock:conversation"


@pytest.mark.parametrize(
    ("messages", "target", "ok"),
    [
        ([S, U, A], BEDROCK, True),  # the leading system prompt becomes `system`
        ([U, A, U, A], BEDROCK, True),
        ([A, U, A], BEDROCK, False),  # user first
        ([U, U, A], BEDROCK, False),  # alternating
        ([U, A, U], BEDROCK, False),  # assistant last
        ([U, S, A], BEDROCK, False),  # system only at the start
        ([S, U, A], "together", True),
        ([A, U, A], "together", False),
        ([U, A, A], "together", False),
        ([U, S, A], "fireworks", False),
        ([U, A, A], "fireworks", True),  # Fireworks has no alternation rule
        ([U, A, A], MINI, True),  # OpenAI has none either
        ([S, U, A, U, A], "llamafactory:sharegpt", True),
        ([U, A, U], "llamafactory:sharegpt", False),
        ([U, U, A], "llamafactory:sharegpt", False),
    ],
)
def test_role_order_rules(messages: list[dict[str, Any]], target: str, ok: bool) -> None:
    top = {"schemaVersion": "bedrock-conversation-2024"} if target == BEDROCK else {}
    reason, message, _ = verdict(chat(*messages, **top), target)
    assert (reason is None) == ok, message
    if not ok:
        assert reason == "role_order"


def test_without_target_the_generic_openai_rules_apply() -> None:
    # like gpt-4o (vision, tools, legacy functions) but no developer role and no extra keys
    assert verdict(chat({"role": "user", "content": [img()]}, A))[0] is None
    assert verdict(chat({"role": "developer", "content": "x"}, U, A))[0] == "role_unknown"
    assert verdict(chat(U, A, id=1), extra_keys="reject")[0] == "top_level_key_unknown"


def test_rejected_rows_keep_their_reason_and_input_is_untouched() -> None:
    b = batch([chat(U, A), chat(U)])
    b.loc[0, "_reason"] = "field_empty"
    b.loc[0, "_message"] = "earlier"
    out, _ = validate_schema(b, ValidateSchemaConfig())
    assert out["_reason"].tolist() == ["field_empty", "assistant_missing"]
    assert b["_reason"].tolist() == ["field_empty", None]


def test_stage_target_defaults_to_the_run_target() -> None:
    cfg = parse_config({"target": MINI, "stages": ["validate_schema",
                                                    {"name": "validate_schema", "target": BEDROCK}]})
    # the target's dataset_limits joins at the end (gate.target_limits), with the run target
    assert [s.config.target for s in cfg.stages] == [MINI, BEDROCK, MINI]
    assert [s.name for s in cfg.stages][-1] == "dataset_limits"
    assert parse_config({"stages": ["validate_schema"]}).stages[0].config.target is None
    with pytest.raises(PipelineError, match=r"x\.yaml: target: unknown target 'openai:gpt-4o-mini'"):
        parse_config({"target": "openai:gpt-4o-mini"}, "x.yaml")
    with pytest.raises(PipelineError, match=r"stages\[0\]\.target: unknown target"):
        parse_config({"stages": [{"name": "validate_schema", "target": "nope"}]}, "x.yaml")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5)
    | st.sampled_from(["user", "assistant", "tool", "function", "system", "text", "image_url"]),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(
        st.sampled_from(["role", "content", "type", "text", "tool_calls", "id", "function",
                         "name", "arguments", "weight", "tool_call_id", "image_url", "url"]),
        children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(messages=_json, tools=_json, target=st.sampled_from([None, MINI, BEDROCK, "together"]))
def test_never_raises_and_gives_documented_codes(messages: Any, tools: Any, target: str | None) -> None:
    out, _ = validate_schema(batch([{"messages": messages, "tools": tools}]),
                             ValidateSchemaConfig(target=target, extra_keys="ignore"))
    reason = out["_reason"].iloc[0]
    assert reason is None or reason in REASONS
    assert reason is None or out["_message"].iloc[0]


# --- the real corpus: every file, verdict counts checked by reading the files -------------------

# (file, target, input.columns, rows, {reason: count}, {warning: count})
CORPUS: list[tuple[str, str | None, dict[str, str] | None, int, dict[str, int], dict[str, int]]] = [
    # Row 4 is system + assistant only: the cookbook reports "missing user message" as a
    # warning, not a format error, and OpenAI's schema does not require a user message.
    ("openai_format/toy_chat_fine_tuning.jsonl", MINI, None, 5, {}, {"user_missing": 1}),
    # 41 rows end in a legacy function_call with no content key; 55 in text: all valid.
    ("openai_format/azureai_stock_train_hallucination_functions.jsonl", MINI, None, 96, {}, {}),
    ("openai_format/azureai_stock_train_hallucination_functions.jsonl", OLD, None, 96, {}, {}),
    ("openai_format/aoai_context_switching_prepared_train.jsonl", "openai:davinci-002", None, 178,
     {}, {}),
    ("openai_format/aoai_context_switching_prepared_valid.jsonl", "openai:davinci-002", None, 45,
     {}, {}),
    ("openai_format/nerre_mof_gpt3_fold0_train.jsonl", "openai:davinci-002", None, 456, {}, {}),
    ("openai_format/nerre_doping_training_eng.jsonl", "openai:davinci-002", None, 413, {}, {}),
    # chat data for a prompt/completion model
    ("openai_format/toy_chat_fine_tuning.jsonl", "openai:davinci-002", None, 5,
     {"format_unsupported": 5}, {}),
    ("sharegpt/fastchat_dummy_conversation.json", MINI, None, 500, {}, {}),
    ("sharegpt/fastchat_dummy_conversation.json", None, None, 500, {}, {}),
    ("sharegpt/llamafactory_glaive_toolcall_en_demo.json", MINI, None, 300, {}, {}),
    # every message has `loss_weight` (the first problem) and parts {type: text, value}
    ("sharegpt/llamafactory_v1_sft_demo_content_parts.jsonl", MINI, None, 500,
     {"message_unknown_key": 500}, {}),
    # records 197 and 293 have an observation right after a plain gpt answer: the tool result
    # answers no call (LLaMA-Factory's odd/even check lets it through; OpenAI's pairing does not)
    ("chinese/llamafactory_glaive_toolcall_zh_demo.json", MINI, None, 300,
     {"tool_response_orphan": 2}, {}),
    ("chinese/llamafactory_glaive_toolcall_zh_demo.json", "llamafactory:sharegpt", None, 300,
     {"tool_response_orphan": 2}, {}),
    # Bedrock takes no tools: the 200 records with tool definitions are rejected
    ("chinese/llamafactory_glaive_toolcall_zh_demo.json", BEDROCK, None, 300,
     {"top_level_key_unknown": 200}, {}),
    # 4 alpaca rows (en; the same 4 in the zh translation) have an empty output
    ("chinese/alpaca_data_0-3252_zh.json", "trl:prompt_completion", None, 3247,
     {"content_empty": 4}, {}),
    ("english/alpaca_data_0-3252_en.json", "trl:prompt_completion", None, 3252,
     {"content_empty": 4}, {}),
    ("chinese/alpaca_zh_code_questions_mixed_keys.json", "trl:prompt_completion", None, 9057, {},
     {}),
    ("chinese/selfllm_dolly_huanhuan.jsonl", "trl:prompt_completion", None, 3729, {}, {}),
    # the seed tasks keep their answers in a list of instances: not text
    ("english/stanford_alpaca_seed_tasks.jsonl", "trl:prompt_completion",
     {"prompt": "instruction", "completion": "instances"}, 175, {"completion_invalid": 175}, {}),
]


@pytest.mark.corpus
@pytest.mark.parametrize(("rel", "target", "columns", "rows", "reasons", "warnings"), CORPUS,
                         ids=[f"{c[0].split('/')[-1]}-{c[1]}" for c in CORPUS])
def test_corpus_verdicts(
    tmp_path: Path,
    rel: str,
    target: str | None,
    columns: dict[str, str] | None,
    rows: int,
    reasons: dict[str, int],
    warnings: dict[str, int],
) -> None:
    path = corpus_file(rel)
    cfg: dict[str, Any] = {"input": {"paths": [str(path)]}, "stages": ["validate_schema"]}
    if columns:
        cfg["input"]["columns"] = columns
    if target:
        cfg["target"] = target
    report = run_config(tmp_path, cfg)
    assert report["totals"]["rows_in"] == rows
    assert {k: v["count"] for k, v in report["rejected_by_reason"].items()} == reasons
    assert {k: v["count"] for k, v in report["warnings"].items()} == warnings


@pytest.mark.corpus
def test_corpus_glaive_zh_orphans_are_the_two_records(tmp_path: Path) -> None:
    path = corpus_file("chinese/llamafactory_glaive_toolcall_zh_demo.json")
    report = run_config(tmp_path, {"target": MINI, "input": {"paths": [str(path)]},
                                   "stages": ["validate_schema"]})
    found = report["rejected_by_reason"]["tool_response_orphan"]
    # a JSON array: 1-based record numbers (data[197] and data[293]), no lines
    assert found["first_lines"] == {}
    assert found["first_records"] == {str(path): [198, 294]}


# --- provider rules, each with the documentation sentence it encodes ---------------------------


def codes(record: dict[str, Any], target: str | None = None) -> list[str]:
    """Every problem code of one record, in order."""
    from pipeline.stages.validate_schema import Validator, findings, rules_for

    found = findings(Validator(rules_for(target), "reject"),
                     {"kind": "chat", **record, "_record": dict(record), "_source": "s.jsonl"})
    return [c for c, _, _ in found.problems]


def test_together_function_calling_sequence_is_one_assistant_turn() -> None:
    # Together (data-formats.md, function calling): assistant `tool_calls` -> one or more
    # `tool` messages with `tool_call_id` -> the assistant's answer.
    call2 = {**CALL, "id": "c2"}
    rec = chat(U, {"role": "assistant", "tool_calls": [CALL, call2]},
               {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
               {"role": "tool", "tool_call_id": "c2", "content": "warm"},
               {"role": "assistant", "content": "Sunny and warm."}, tools=TOOLS)
    assert codes(rec, "together") == []
    assert codes(rec, "mistral") == []  # "must be followed by a tool message, which in turn must
    # be followed by another assistant message" (Mistral fine-tuning docs)
    two = chat(U, A, {"role": "assistant", "content": "again"})
    assert codes(two, "together") == ["role_order"]  # two plain answers still do not alternate


@pytest.mark.parametrize(
    ("target", "url", "ok"),
    [
        # Together: "VLM: base64 data URIs only" (providers.md, Together [T2])
        ("together", "https://example.com/a.png", False),
        ("together", "data:image/png;base64,iVBORw0KGgo=", True),
        # Fireworks vision SFT: "images must be base64 data" (providers.md, Fireworks [F3])
        ("fireworks", "https://example.com/a.png", False),
        # OpenAI: "HTTP URLs or data URLs containing Base64-encoded images" (vision guide [S12])
        (VISION, "https://example.com/a.png", True),
        (VISION, "data:image/png;base64,iVBORw0KGgo=", True),
    ],
)
def test_image_sources_per_provider(target: str, url: str, ok: bool) -> None:
    rec = chat({"role": "user", "content": [{"type": "text", "text": "What?"}, img(url)]}, A)
    assert codes(rec, target) == ([] if ok else ["image_invalid"])


def test_image_detail_is_low_high_or_auto() -> None:
    # OpenAI vision fine-tuning: "detail": "low" | "high" | "auto" [S12]
    for detail, want in (("low", []), ("high", []), ("auto", []), ("medium", ["image_invalid"]),
                         ("LOW", ["image_invalid"])):
        part = {"type": "image_url", "image_url": {"url": "https://x.org/a.png", "detail": detail}}
        assert codes(chat({"role": "user", "content": [part]}, A), VISION) == want, detail


@pytest.mark.parametrize("target", ["openai:gpt-3.5-turbo-0125", "openai:gpt-3.5-turbo-1106",
                                    "openai:gpt-3.5-turbo-0613"])
def test_gpt_35_turbo_takes_tool_calling_data(target: str) -> None:
    # FineTuneChatRequestInput takes `tools`, assistant `tool_calls` and `tool` messages for
    # chat fine-tuning [S1]; the guide's function-calling section covers gpt-3.5-turbo [S9].
    rec = chat(U, {"role": "assistant", "tool_calls": [CALL]},
               {"role": "tool", "tool_call_id": "c1", "content": "sunny"}, A,
               tools=TOOLS, parallel_tool_calls=False)
    assert codes(rec, target) == []


def test_vertex_messages_shape_is_the_wrong_schema_not_a_wrong_role() -> None:
    # Vertex Gemini supervised tuning: each example is `contents` of {role: user|model, parts}
    # (providers.md §2.1 [V3]); the older `messages` shape is not the tuning format.
    rec = {"messages": [U, {"role": "model", "content": "Hello"}]}
    from pipeline.stages.validate_schema import Validator, findings, rules_for

    found = findings(Validator(rules_for("vertex:gemini"), "reject"),
                     {"kind": "chat", **rec, "_record": rec, "_source": "s.jsonl"})
    assert [c for c, _, _ in found.problems] == ["format_unsupported"]
    assert "contents" in str(found.message) and "parts" in str(found.message)
    assert "did you mean" not in str(found.message)


def test_vertex_file_in_messages_shape_gets_a_contents_hint(tmp_path: Path) -> None:
    from pipeline.checks import check_files

    src = tmp_path / "gemini.jsonl"
    src.write_bytes(orjson.dumps({"messages": [U, {"role": "model", "content": "Hi"}]}) + b"\n")
    verdict = check_files([str(src)], "vertex:gemini")[0]
    shape = [p for p in verdict.problems if p.code == "file_shape"]
    assert shape and "contents: [{role: user|model, parts" in shape[0].message
    assert "--to vertex" in shape[0].message
    assert not [p for p in verdict.problems if p.code == "role_unknown"]


BEDROCK_LINE = {"schemaVersion": "bedrock-conversation-2024"}


def test_bedrock_schema_version_and_empty_answer_in_bedrock_terms() -> None:
    # Bedrock: every Converse line is {"schemaVersion": "bedrock-conversation-2024", "system"?,
    # "messages": [{"role", "content": [{"text": ...}]}]} [B1]
    assert codes(chat(U, A), BEDROCK) == ["schema_version_missing"]
    from pipeline.stages.validate_schema import Validator, findings, rules_for

    rec = {**BEDROCK_LINE, "messages": [U, {"role": "assistant", "content": ""}]}
    found = findings(Validator(rules_for(BEDROCK), "reject"),
                     {"kind": "chat", **rec, "_record": rec, "_source": "s.jsonl"})
    assert [c for c, _, _ in found.problems] == ["content_empty"]
    assert 'content: [{"text"' in str(found.message) and "type: text" not in str(found.message)
    empty = {**BEDROCK_LINE, "messages": [U, {"role": "assistant", "content": []}]}
    found = findings(Validator(rules_for(BEDROCK), "reject"),
                     {"kind": "chat", **empty, "_record": empty, "_source": "s.jsonl"})
    assert [c for c, _, _ in found.problems] == ["content_empty"]
    assert "type: text" not in str(found.message)


def test_trl_conversational_preference_roles_are_valid() -> None:
    # TRL dataset formats: conversational preference {"prompt": [{"role": "user", ...}],
    # "chosen": [{"role": "assistant", ...}], "rejected": [...]} [O1]
    from pipeline.stages.validate_schema import Validator, findings, rules_for

    rec = {"kind": "preference", "input": {"messages": [S, U]},
           "preferred_output": [A], "non_preferred_output": [{"role": "assistant", "content": "No"}]}
    found = findings(Validator(rules_for("trl:preference"), "reject"), rec)
    assert found.problems == ()


def test_every_problem_is_listed_even_beside_another() -> None:
    # A missing assistant message is reported beside a role the target does not take.
    rec = chat({"role": "developer", "content": "x"}, U)
    assert codes(rec, MINI) == ["role_unknown", "assistant_missing"]
    # ... but not when the unknown role's own hint already says "did you mean assistant?"
    assert codes(chat(U, {"role": "gpt", "content": "x"}), MINI) == ["role_unknown"]


# --- the common-case shortcut (`Validator.clean`) against the full rules ----------------------

_TEXTS = st.sampled_from(
    ["Hi", "", " ", "\u3000", "\n\t", "a <|endoftext|> b", "<|x", "多谢", "a\n"]
) | st.text(max_size=6)
_VALUES = st.none() | st.booleans() | st.integers(-1, 2) | st.sampled_from([0.0, 1.0, 0.5, "1"])
_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant", "tool", "function", "developer",
                              "human", "model"]) | _VALUES},
    optional={
        "content": _TEXTS | _VALUES | st.just([{"type": "text", "text": "Hi"}]),
        "name": st.sampled_from(["bob", "bad name", "", "a" * 65, "ok\n"]) | _VALUES,
        "weight": _VALUES,
        "refusal": _TEXTS | _VALUES,
        "tool_calls": st.just([CALL]) | _VALUES,
        "tool_call_id": st.just("c1"),
        "loss_weight": st.just(1),
    },
)
_top = st.fixed_dictionaries(
    {},
    optional={
        "tools": st.just(TOOLS) | _VALUES,
        "functions": st.just([]) | _VALUES,
        "parallel_tool_calls": _VALUES,
        "id": st.integers(),
        "weight": st.just(1),
        "source": st.just("x"),
    },
)


def _plain_targets() -> list[str | None]:
    from pipeline.targets import load_profiles

    return [None, *sorted(load_profiles())]


@settings(max_examples=400, deadline=None)
@given(
    messages=st.lists(_message, max_size=5) | _VALUES,
    top=_top,
    pc=st.tuples(_TEXTS | _VALUES, _TEXTS | _VALUES),
    kind=st.sampled_from(["chat", "prompt_completion", "preference", 3]),
    source=st.sampled_from(["s.jsonl", "s.csv"]),
    shape=st.sampled_from([None, "sharegpt"]),
    target=st.sampled_from(_plain_targets()),
    extra_keys=st.sampled_from(["drop", "reject", "warn", "ignore"]),
)
def test_the_shortcut_passes_only_what_the_full_rules_pass(
    messages: Any, top: dict[str, Any], pc: tuple[Any, Any], kind: Any, source: str,
    shape: str | None, target: str | None, extra_keys: str,
) -> None:
    """`clean` (the shortcut `findings` takes first) says True only for a record on which
    every rule finds nothing: no problem, no warning, no dropped key."""
    from pipeline.stages.validate_schema import Validator, rules_for

    if kind == "prompt_completion":
        rec = {"prompt": pc[0], "completion": pc[1], **top}
    else:
        rec = {"messages": messages, **top}
    row = {"_shape": shape, "kind": kind, **rec, "_record": rec, "_source": source}
    validator = Validator(rules_for(target), extra_keys)
    if validator.clean(row):
        ctx = validator.record(row)
        assert (ctx.problems, ctx.warnings, ctx.dropped) == ([], [], [])


@pytest.mark.parametrize("target", [None, MINI, VISION, "together", "mistral"])
def test_the_shortcut_takes_ordinary_records(target: str | None) -> None:
    """The common records do take the shortcut (the property above would hold if it never
    did), and the findings are those of the full rules."""
    from pipeline.stages.validate_schema import Findings, Validator, findings, rules_for

    validator = Validator(rules_for(target), "reject")
    records = [
        {"messages": [S, U, A]},
        {"messages": [U, A, U, A]},
    ]
    if "weight" in validator.r.message_keys["assistant"]:
        records.append({"messages": [U, {**A, "weight": 1}, U, {**A, "weight": 0}]})
    if "name" in validator.r.message_keys["user"]:
        records.append({"messages": [{**U, "name": "bob"}, A]})
    for rec in records:
        row = {"kind": "chat", **rec, "_record": rec, "_source": "s.jsonl"}
        assert validator.clean(row), rec
        ctx = validator.record(row)
        assert (ctx.problems, ctx.warnings, ctx.dropped) == ([], [], [])
        assert findings(validator, row) == Findings(None, None, (), (), ())
    for rec in ({"messages": [U, A], "id": 1}, {"messages": [U, {**A, "weight": 2}]},
                {"messages": [A]}, {"messages": [U, {**A, "content": "<|endoftext|>"}]}):
        row = {"kind": "chat", **rec, "_record": rec, "_source": "s.jsonl"}
        assert not validator.clean(row), rec
        assert findings(validator, row) != Findings(None, None, (), (), ())


def test_images_only_on_the_models_listed_for_vision_fine_tuning() -> None:
    # openai_rules.md §2.2: OpenAI lists gpt-4o-2024-08-06 (the "only model listed") for vision
    # fine-tuning [S12]; Azure also lists gpt-4.1-2025-04-14 [S19]. Every other OpenAI or Azure
    # OpenAI chat model refuses an image with image_unsupported, before any token is counted.
    from pipeline.targets import load_profiles

    vision = {"openai:gpt-4o-2024-08-06", "azure:gpt-4o-2024-08-06", "azure:gpt-4.1-2025-04-14"}
    rec = chat({"role": "user", "content": [{"type": "text", "text": "What?"},
                                            img("data:image/png;base64,iVBORw0KGgo=")]}, A)
    seen = set()
    for name, profile in sorted(load_profiles().items()):
        if profile.provider not in ("openai", "azure") or "chat" not in profile.formats:
            continue
        if profile.tokenizer not in ("cl100k_base", "o200k_base"):
            continue  # Azure's open models (Llama, Qwen ...) are not OpenAI models
        seen.add(name)
        assert profile.vision.supported == (name in vision), name
        found = codes(rec, name)
        assert ("image_unsupported" in found) == (name not in vision), (name, found)
    assert vision <= seen and len(seen) > len(vision)
