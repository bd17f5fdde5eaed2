"""Every corpus file ftprep can map runs end to end; counts verified by reading the files.

The corpus lives in ../shared/corpus (public files nobody here wrote); each test skips with a
message when it is absent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import corpus_file, read_jsonl, run_config

STAGES = [{"name": "normalize_text"}, {"name": "require_fields"}]

# (corpus file, input.columns or None, rows in, rejected by reason, shape recognised)
CASES: list[tuple[str, dict[str, str] | None, int, dict[str, int], str]] = [
    ("openai_format/toy_chat_fine_tuning.jsonl", None, 5, {}, "chat"),
    ("openai_format/aoai_context_switching_prepared_train.jsonl", None, 178, {}, "prompt_completion"),
    ("openai_format/aoai_context_switching_prepared_valid.jsonl", None, 45, {}, "prompt_completion"),
    ("openai_format/nerre_mof_gpt3_fold0_train.jsonl", None, 456, {}, "prompt_completion"),
    ("openai_format/nerre_doping_training_eng.jsonl", None, 413, {}, "prompt_completion"),
    ("openai_format/azureai_stock_train_hallucination_functions.jsonl", None, 96, {}, "chat"),
    ("sharegpt/fastchat_dummy_conversation.json", None, 500, {}, "sharegpt"),
    ("sharegpt/llamafactory_glaive_toolcall_en_demo.json", None, 300, {}, "sharegpt"),
    ("sharegpt/llamafactory_v1_sft_demo_content_parts.jsonl", None, 500, {}, "chat"),
    # 4 rows whose output is empty or whitespace (counted with json + str.strip)
    ("chinese/alpaca_data_0-3252_zh.json", None, 3247, {"field_empty": 4}, "alpaca"),
    ("chinese/alpaca_zh_code_questions_mixed_keys.json", None, 9057, {}, "alpaca"),
    ("chinese/llamafactory_glaive_toolcall_zh_demo.json", None, 300, {}, "sharegpt"),
    ("chinese/selfllm_dolly_huanhuan.jsonl", None, 3729, {}, "dolly"),
    # 4 alpaca rows whose output is empty or whitespace (SOURCES.md)
    ("english/alpaca_data_0-3252_en.json", None, 3252, {"field_empty": 4}, "alpaca"),
    (
        "messy/chinese_medical_dialogue_IM_sample_gb18030.csv",
        {"prompt": "ask", "completion": "answer"},
        7644, {}, "columns",
    ),
    ("messy/doc_chat_on_wechat_qa_zh.xlsx", None, 20, {}, "question_answer"),
    ("messy/aoai_generated_labels_context_switching.xlsx", None, 223, {}, "prompt_completion"),
    (
        "messy/aoai_classification_bulk_test.tsv",
        {"prompt": "user_prompt", "completion": "classification"},
        66, {"row_malformed": 1}, "columns",
    ),
    (
        "messy/aoai_synthetic_data_topic_classifier.csv",
        {"prompt": "customer_question", "completion": "agent_reply"},
        66, {}, "columns",
    ),
    ("messy/botbuilder_smartLightFAQ_bom.tsv", None, 22, {}, "question_answer"),
    # 3 rows with an empty Answer (counted with csv.DictReader + str.strip)
    ("messy/botbuilder_SampleForCQA.tsv", None, 156, {"field_empty": 3}, "question_answer"),
    ("messy/songys_ChatbotData_ko_crlf.csv", None, 11823, {}, "question_answer"),
    (
        "messy/awesome_chatgpt_prompts_2025-12-16.csv",
        {"prompt": "act", "completion": "prompt"},
        376, {}, "columns",
    ),
]


@pytest.mark.parametrize(("rel", "columns", "rows", "rejected", "shape"), CASES, ids=[c[0] for c in CASES])
def test_corpus_file_runs_and_nothing_is_lost(
    tmp_path: Path,
    rel: str,
    columns: dict[str, str] | None,
    rows: int,
    rejected: dict[str, int],
    shape: str,
) -> None:
    path = corpus_file(rel)
    inp: dict[str, Any] = {"paths": [str(path)]}
    if columns:
        inp["columns"] = columns
    report = run_config(tmp_path, {"input": inp, "stages": STAGES})
    t = report["totals"]
    assert t["rows_in"] == rows
    assert report["identity"]["holds"]
    assert {k: v["count"] for k, v in report["rejected_by_reason"].items()} == rejected
    assert report["inputs"][0]["mapping"]["shape"] == shape
    train = read_jsonl(tmp_path / "out" / "train.jsonl")
    assert len(train) == t["train"] == rows - sum(rejected.values())


def test_gbk_csv_comes_out_as_chinese(tmp_path: Path) -> None:
    path = corpus_file("messy/chinese_medical_dialogue_IM_sample_gb18030.csv")
    report = run_config(
        tmp_path,
        {"input": {"paths": [str(path)], "columns": {"prompt": "title", "completion": "answer"}}},
    )
    assert report["inputs"][0]["encoding"] == "gb18030"
    first = read_jsonl(tmp_path / "out" / "train.jsonl")[0]
    assert first["prompt"] == "高血压患者能吃党参吗？"


def test_bom_tsv_gives_clean_column_names(tmp_path: Path) -> None:
    path = corpus_file("messy/botbuilder_smartLightFAQ_bom.tsv")
    report = run_config(tmp_path, {"input": {"paths": [str(path)]}})
    assert report["inputs"][0]["bom_removed"] is True
    assert report["inputs"][0]["mapping"]["columns"] == {"prompt": "Question", "completion": "Answer"}


def test_question_pairs_without_answers_ask_for_a_mapping(tmp_path: Path) -> None:
    from pipeline.errors import PipelineError

    path = corpus_file("messy/songys_kor_Pair_test_bom.csv")
    with pytest.raises(PipelineError, match="no known record shape") as info:
        run_config(tmp_path, {"input": {"paths": [str(path)]}})
    assert "'test_id'" in str(info.value)  # the BOM is gone from the first column name


def test_whole_corpus_in_one_run_with_two_workers(tmp_path: Path) -> None:
    paths = [str(corpus_file(rel)) for rel, columns, *_ in CASES if columns is None]
    report = run_config(
        tmp_path,
        {"input": {"paths": paths}, "stages": STAGES, "runner": {"workers": 2, "batch_size": 997}},
    )
    expected = sum(rows for _rel, columns, rows, *_ in CASES if columns is None)
    assert report["totals"]["rows_in"] == expected
    assert report["identity"]["holds"]
