"""token_limit: reject, truncate or keep examples over the per-example token limit."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.records import make_batch
from pipeline.stages.count_tokens import CountTokensConfig, count_tokens
from pipeline.stages.token_limit import CUT, TokenLimitConfig, token_limit
from pipeline.tokens import COLUMNS, count_chat, get_encoding
from tests.conftest import corpus_file, read_jsonl, run_config
from tests.test_count_tokens import plain_count

ENC = "o200k_base"
LONG = "The quick brown fox jumps over the lazy dog. " * 20
CHINESE = "数据工程师准备训练集时需要检查编码去重切分以及每个样本的长度限制。" * 10


def batch_of(*rows: dict[str, Any]) -> pd.DataFrame:
    rows = tuple({**r, "_source": "t.jsonl", "_line": i + 1, "_ord": i} for i, r in enumerate(rows))
    return make_batch(list(rows))


def chat(*contents: str) -> dict[str, Any]:
    roles = ["system", "user", "assistant"][-len(contents) :]
    return {
        "kind": "chat",
        "messages": [{"role": r, "content": c} for r, c in zip(roles, contents, strict=True)],
    }


def total(messages: list[dict[str, Any]]) -> int:
    return count_chat(get_encoding(ENC), messages).total


def run(
    batch: pd.DataFrame, counted: bool = True, **kw: Any
) -> tuple[pd.DataFrame, Counter[str]]:
    if counted:
        batch, _ = count_tokens(batch, CountTokensConfig(encoding=ENC))
    return token_limit(batch, TokenLimitConfig(encoding=ENC, **kw))


def warnings_of(out: pd.DataFrame, row: int) -> list[str]:
    return [code for code, _msg in out["_warnings"].iloc[row] or ()]


def test_under_the_limit_nothing_happens() -> None:
    batch = batch_of(chat("Be brief.", "Hi", "Hello"))
    for mode in ("reject", "truncate", "keep"):
        out, changes = run(batch, max_tokens=1000, over_limit=mode)
        assert out["_reason"].isna().all() and out["_warnings"].isna().all()
        assert changes == {}
        assert out["messages"].iloc[0] == batch["messages"].iloc[0]


def test_reject_and_keep() -> None:
    batch = batch_of(chat("Hi", LONG), chat("Hi", "short"))
    out, _ = run(batch, max_tokens=50, over_limit="reject")
    assert out["_reason"].tolist() == ["too_many_tokens", None]
    assert "over the limit of 50" in out["_message"].iloc[0]
    out, _ = run(batch, max_tokens=50, over_limit="keep")
    assert out["_reason"].isna().all()
    assert warnings_of(out, 0) == ["over_token_limit"] and out["_warnings"].iloc[1] is None


@pytest.mark.parametrize("text", [LONG, CHINESE, "🙂👍🏽" * 200])
def test_truncate_cuts_the_last_message_to_fit(text: str) -> None:
    batch = batch_of(chat("Be brief.", "Tell me", text))
    before = batch.copy()
    out, changes = run(batch, max_tokens=60, over_limit="truncate")
    pd.testing.assert_frame_equal(batch, before)  # input untouched
    assert changes == {"truncated": 1}
    messages = out["messages"].iloc[0]
    cut = messages[-1]["content"]
    assert out["_reason"].isna().all()
    assert text.startswith(cut) and 0 < len(cut) < len(text)
    assert "\ufffd" not in cut  # no broken character at the cut
    assert messages[:-1] == batch["messages"].iloc[0][:-1]
    assert total(messages) <= 60
    assert int(out["m_tokens_total"].iloc[0]) == total(messages)
    enc = get_encoding(ENC)
    lost = len(enc.encode_ordinary(text)) - len(enc.encode_ordinary(cut))
    assert int(out[CUT].iloc[0]) == lost
    (code, message), *_ = out["_warnings"].iloc[0]
    assert code == "truncated" and f"{lost} tokens cut" in message


def test_truncate_prompt_completion_never_cuts_the_prompt() -> None:
    enc = get_encoding(ENC)
    batch = batch_of(
        {"kind": "prompt_completion", "prompt": "Q ->", "completion": LONG},
        {"kind": "prompt_completion", "prompt": LONG, "completion": " yes"},
    )
    out, _ = run(batch, max_tokens=40, over_limit="truncate")
    assert out["prompt"].tolist() == ["Q ->", LONG]
    completion = out["completion"].iloc[0]
    assert LONG.startswith(completion)
    assert len(enc.encode_ordinary("Q ->")) + len(enc.encode_ordinary(completion)) <= 40
    assert out["_reason"].tolist() == [None, "too_many_tokens"]
    assert "prompt is never cut" in out["_message"].iloc[1]
    assert out["completion"].iloc[1] == " yes"


def test_truncate_rejects_what_it_cannot_cut() -> None:
    batch = batch_of(
        {
            "kind": "preference",
            "input": {"messages": [{"role": "user", "content": "q"}]},
            "preferred_output": [{"role": "assistant", "content": LONG}],
            "non_preferred_output": [{"role": "assistant", "content": "b"}],
        },
        {
            "kind": "chat",
            "messages": [
                {"role": "user", "content": LONG},
                {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
            ],
        },
        chat(LONG, "short answer"),  # the last message would have to go entirely
    )
    out, _ = run(batch, max_tokens=40, over_limit="truncate")
    assert out["_reason"].tolist() == ["too_many_tokens"] * 3
    messages = out["_message"].tolist()
    assert "preference pairs are not truncated" in messages[0]
    assert "not plain text" in messages[1]
    assert "cut entirely" in messages[2]


def test_counts_itself_without_count_tokens() -> None:
    batch = batch_of(chat("Hi", LONG), chat("Hi", "short"))
    alone, _ = run(batch, counted=False, max_tokens=50, over_limit="truncate")
    after, _ = run(batch, counted=True, max_tokens=50, over_limit="truncate")
    for col in (*COLUMNS, CUT, "messages", "_reason"):
        assert alone[col].tolist() == after[col].tolist(), col


def test_no_limit_changes_nothing() -> None:
    batch = batch_of(chat("Hi", LONG))
    out, changes = token_limit(batch, TokenLimitConfig())
    assert out["messages"].tolist() == batch["messages"].tolist()
    assert out["_reason"].isna().all()
    assert changes == {}


def test_target_gives_the_limit_and_the_default_action() -> None:
    long = "word " * 5000  # about 5,000 tokens: over 4,096, under 65,536
    batch = batch_of(chat("Hi", long))
    old, _ = token_limit(batch, TokenLimitConfig(target="openai:gpt-3.5-turbo-0613"))
    assert warnings_of(old, 0) == ["truncated"]
    assert int(old["m_tokens_total"].iloc[0]) <= 4096
    new, _ = token_limit(batch, TokenLimitConfig(target="openai:gpt-4o-mini-2024-07-18"))
    assert (
        new["_warnings"].iloc[0] is None and new["messages"].tolist() == batch["messages"].tolist()
    )
    reject, _ = token_limit(
        batch, TokenLimitConfig(target="openai:gpt-3.5-turbo-0613", over_limit="reject")
    )
    assert reject["_reason"].tolist() == ["too_many_tokens"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.text(
        st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=400
    ),
    limit=st.integers(min_value=12, max_value=120),
)
def test_property_truncated_examples_fit_and_keep_a_prefix(text: str, limit: int) -> None:
    batch = batch_of(chat("Hi", text))
    out, _ = run(batch, max_tokens=limit, over_limit="truncate")
    if out["_reason"].iloc[0] is None:
        messages = out["messages"].iloc[0]
        assert total(messages) <= limit
        assert int(out["m_tokens_total"].iloc[0]) == total(messages)
        assert text.startswith(messages[-1]["content"])
    else:
        assert out["_reason"].iloc[0] == "too_many_tokens"


# --------------------------------------------------------------------------------------------
# End to end on the corpus: the over-long fifth example of the OpenAI toy file
# --------------------------------------------------------------------------------------------


def _toy(tmp_path: Path, target: str, name: str, **limit: Any) -> dict[str, Any]:
    path = corpus_file("openai_format/toy_chat_fine_tuning.jsonl")
    return run_config(
        tmp_path,
        {
            "input": {"paths": [str(path)]},
            "target": target,
            "stages": [
                {"name": "count_tokens", "target": target},
                {"name": "token_limit", "target": target, **limit},
            ],
        },
        name,
    )


@pytest.mark.corpus
def test_toy_file_fifth_example_over_4096_but_fine_under_65536(tmp_path: Path) -> None:
    report = _toy(tmp_path, "openai:gpt-3.5-turbo-0613", "old")
    assert report["warnings"]["truncated"]["count"] == 1
    assert list(report["warnings"]["truncated"]["first_lines"].values()) == [[5]]
    records = read_jsonl(tmp_path / "old" / "train.jsonl")
    assert len(records) == 5
    fifth = records[4]["messages"]
    assert count_chat(get_encoding("cl100k_base"), fifth).total <= 4096
    table = pd.read_parquet(tmp_path / "old" / "metrics.parquet")
    assert table["tokens_cut"].tolist()[4] > 3000 and table["tokens_total"].max() <= 4096

    report = _toy(tmp_path, "openai:gpt-3.5-turbo-0613", "reject", over_limit="reject")
    assert report["rejected_by_reason"]["too_many_tokens"]["count"] == 1

    report = _toy(tmp_path, "openai:gpt-4o-mini-2024-07-18", "new")
    assert report["warnings"] == {} and report["totals"]["train"] == 5
    table = pd.read_parquet(tmp_path / "new" / "metrics.parquet")
    assert 7000 < table["tokens_total"].max() < 65536

    # per-example counts equal plain tiktoken under both targets' encodings
    source = read_jsonl(corpus_file("openai_format/toy_chat_fine_tuning.jsonl"))
    for out, name in (("reject", "cl100k_base"), ("new", "o200k_base")):
        table = pd.read_parquet(tmp_path / out / "metrics.parquet")
        expected = [plain_count(get_encoding(name), r) for r in source]
        assert table["tokens_total"].tolist() == expected, name
    assert expected[4] == 8031  # the fifth example, about 8k tokens
