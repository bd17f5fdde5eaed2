"""Column mapping: configured columns and the recognised shapes."""

from __future__ import annotations

import pytest

from pipeline.errors import PipelineError
from pipeline.read.mapping import ShapeError, detect, guess_columns, resolve, suggest


@pytest.mark.parametrize(
    ("keys", "shape", "kind"),
    [
        (["messages"], "chat", "chat"),
        (["messages", "tools", "id"], "chat", "chat"),
        (["input", "preferred_output", "non_preferred_output"], "preference", "preference"),
        (["id", "conversations"], "sharegpt", "chat"),
        (["prompt", "completion"], "prompt_completion", "prompt_completion"),
        (["instruction", "input", "output"], "alpaca", "prompt_completion"),
        (["instruction", "context", "response", "category"], "dolly", "prompt_completion"),
        (["Question", "Answer", "Source"], "question_answer", "prompt_completion"),
        (["Q", "A", "label"], "question_answer", "prompt_completion"),
    ],
)
def test_detect(keys: list[str], shape: str, kind: str) -> None:
    m = detect(keys)
    assert m is not None and (m.shape, m.kind) == (shape, kind)


def test_nothing_maps() -> None:
    assert detect(["department", "title", "ask", "answer"]) is None
    with pytest.raises(PipelineError) as info:
        resolve(None, ["department", "title", "ask", "answer"], "med.csv")
    assert "prompt: ask\n    completion: answer" in str(info.value)


def test_suggest_skips_id_columns() -> None:
    assert "prompt: question1\n    completion: question2" in suggest(
        ["test_id", "question1", "question2", "is_duplicate"]
    )


def test_alpaca_and_dolly_join_with_a_blank_line() -> None:
    alpaca = detect(["instruction", "input", "output"])
    assert alpaca is not None
    assert alpaca.apply({"instruction": "Do", "input": "this", "output": "ok"}) == {
        "kind": "prompt_completion",
        "prompt": "Do\n\nthis",
        "completion": "ok",
    }
    assert alpaca.apply({"instruction": "Do", "input": "", "output": "ok"})["prompt"] == "Do"
    assert alpaca.apply({"instruction": "Do", "output": "ok"})["prompt"] == "Do"
    dolly = detect(["instruction", "context", "response"])
    assert dolly is not None
    assert dolly.apply({"instruction": "Q", "context": "C", "response": "R"})["prompt"] == "Q\n\nC"


def test_alpaca_history_becomes_chat() -> None:
    m = detect(["instruction", "input", "output", "history"])
    assert m is not None
    rec = m.apply({"instruction": "q2", "input": "", "output": "a2", "history": [["q1", "a1"]]})
    assert rec["kind"] == "chat"
    assert [x["content"] for x in rec["messages"]] == ["q1", "a1", "q2", "a2"]
    assert m.apply({"instruction": "q", "output": "a", "history": ""})["kind"] == (
        "prompt_completion"
    )
    with pytest.raises(ShapeError):
        m.apply({"instruction": "q", "output": "a", "history": ["bad"]})


def test_sharegpt_roles_tools_and_function_calls() -> None:
    m = detect(["conversations", "tools", "system"])
    assert m is not None
    rec = m.apply(
        {
            "system": "sys",
            "tools": '[{"name": "get_weather", "parameters": {}}]',
            "conversations": [
                {"from": "human", "value": "weather?"},
                {
                    "from": "function_call",
                    "value": '{"name": "get_weather", "arguments": {"c": "Oslo"}}',
                },
                {"from": "observation", "value": '{"t": 3}'},
                {"from": "gpt", "value": "3 degrees"},
            ],
        }
    )
    msgs = rec["messages"]
    assert [x["role"] for x in msgs] == ["system", "user", "assistant", "tool", "assistant"]
    call = msgs[2]["tool_calls"][0]
    assert call["function"] == {"name": "get_weather", "arguments": '{"c":"Oslo"}'}
    assert msgs[3]["tool_call_id"] == call["id"]
    assert rec["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
    ]
    with pytest.raises(ShapeError):
        m.apply({"conversations": [{"from": "human"}]})
    with pytest.raises(ShapeError):
        m.apply({"conversations": [], "tools": "[not json"})


def test_configured_columns_are_matched_case_insensitively() -> None:
    m = resolve({"prompt": "question", "completion": "ANSWER"}, ["Question", "Answer"], "f.tsv")
    assert m.apply({"Question": "q", "Answer": "a"}) == {
        "kind": "prompt_completion",
        "prompt": "q",
        "completion": "a",
    }


# --- column suggestions by name and content ----------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (["编号", "问题", "答案"], ("问题", "答案")),
        (["用户问题", "标准答案"], ("用户问题", "标准答案")),
        (["質問", "回答"], ("質問", "回答")),
        (["질문", "답변", "분류"], ("질문", "답변")),
        (["Pregunta", "Respuesta"], ("Pregunta", "Respuesta")),
        (["Frage", "Antwort"], ("Frage", "Antwort")),
        (["soru", "cevap"], ("soru", "cevap")),
        (["вопрос", "ответ"], ("вопрос", "ответ")),
        (["instruction_text", "model_response"], ("instruction_text", "model_response")),
    ],
)
def test_suggestions_know_names_in_many_languages(keys: list[str], expected: tuple[str, str]) -> None:
    assert guess_columns(keys) == expected


LONG_Q = "How do I reset the router when the status light keeps blinking orange?"
LONG_A = "Hold the reset button for ten seconds, wait for the light to turn green, then sign in."


def test_suggestions_prefer_long_free_text_over_labels_and_empty_columns() -> None:
    keys = ["topic", "notes", "body", "reply_text", "lang"]
    records = [
        {
            "topic": ["network", "billing"][i % 2],
            "notes": "checked by Ana on Monday morning" if i == 0 else "",
            "body": f"{LONG_Q} ({i})",
            "reply_text": f"{LONG_A} Case {i}.",
            "lang": "en",
        }
        for i in range(20)
    ]
    assert guess_columns(keys, records) == ("body", "reply_text")
    # by the names only, the mostly-empty `notes` would be the prompt
    assert guess_columns(keys) == ("notes", "reply_text")


def test_a_named_column_that_is_mostly_empty_is_never_suggested() -> None:
    keys = ["question", "answer", "details", "expert_answer"]
    records = [
        {
            "question": f"{LONG_Q} {i}",
            "answer": "see above" if i < 3 else "",
            "details": "",
            "expert_answer": f"{LONG_A} {i}",
        }
        for i in range(10)
    ]
    prompt, completion = guess_columns(keys, records)
    assert prompt == "question" and completion == "expert_answer"


def test_the_error_suggests_columns_by_content() -> None:
    keys = ["category", "text_a", "text_b"]
    records = [
        {"category": "x", "text_a": f"{LONG_Q} {i}", "text_b": f"{LONG_A} {i}"} for i in range(5)
    ]
    with pytest.raises(PipelineError, match=r"--columns prompt=text_a,completion=text_b"):
        resolve(None, keys, "f.csv", records)
