"""JSON array reader: array shapes, non-object elements, invalid JSON, encodings, corpus."""

from __future__ import annotations

import codecs
import importlib.util
import json
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.errors import PipelineError
from pipeline.read.base import RawRow, ReadOptions, ReadStats
from pipeline.read.json_array import read_json_array
from tests.conftest import corpus_file

SAMPLES = Path(__file__).resolve().parents[1] / "sample_data"



def read(path: Path, encoding: str = "auto") -> tuple[list[RawRow], ReadStats]:
    stats = ReadStats()
    return list(read_json_array(path, ReadOptions(encoding=encoding), stats)), stats


def write(tmp_path: Path, content: str | bytes, name: str = "data.json") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


RECORDS = [{"instruction": "a", "output": "b"}, {"instruction": "c", "input": "d", "output": "e"}]


# --- shapes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("indent", [None, 2, 4], ids=["one-line", "indent-2", "indent-4"])
def test_top_level_array(tmp_path: Path, indent: int | None) -> None:
    rows, stats = read(write(tmp_path, json.dumps(RECORDS, indent=indent)))
    assert rows == [RawRow(line=0, record=RECORDS[0]), RawRow(line=1, record=RECORDS[1])]
    assert stats.columns == ["input", "instruction", "output"]
    assert stats.encoding == "utf-8" and stats.confidence == 1.0


def test_one_line_without_newline(tmp_path: Path) -> None:
    rows, _ = read(write(tmp_path, json.dumps(RECORDS, separators=(",", ":"))))
    assert [r.record for r in rows] == RECORDS


@pytest.mark.parametrize(
    "wrapper",
    [
        {"data": RECORDS},
        {"version": 2, "name": "x", "data": RECORDS, "meta": {"n": 2}},
    ],
)
def test_object_with_exactly_one_array(tmp_path: Path, wrapper: dict[str, Any]) -> None:
    rows, _ = read(write(tmp_path, json.dumps(wrapper)))
    assert [r.record for r in rows] == RECORDS


def test_object_with_several_arrays_names_the_keys(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps({"train": RECORDS, "test": RECORDS, "n": 1}))
    with pytest.raises(PipelineError) as err:
        read(path)
    message = str(err.value)
    assert "'train'" in message and "'test'" in message and str(path) in message


def test_object_without_an_array(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="no array"):
        read(write(tmp_path, json.dumps({"instruction": "a", "output": "b"})))


@pytest.mark.parametrize("value", ['"text"', "42", "null", "true"])
def test_scalar_top_level(tmp_path: Path, value: str) -> None:
    with pytest.raises(PipelineError, match="not an array"):
        read(write(tmp_path, value))


def test_empty_array(tmp_path: Path) -> None:
    rows, stats = read(write(tmp_path, "[]"))
    assert rows == [] and stats.columns == []


# --- elements ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("element", "raw", "kind"),
    [
        (1, "1", "a number"),
        (2.5, "2.5", "a number"),
        ("text", '"text"', "a string"),
        (None, "null", "null"),
        (True, "true", "a boolean"),
        ([1, {"a": "é"}], '[1,{"a":"é"}]', "an array"),
    ],
)
def test_non_object_elements_are_rejected(
    tmp_path: Path, element: Any, raw: str, kind: str
) -> None:
    data = [RECORDS[0], element, RECORDS[1]]
    rows, _ = read(write(tmp_path, json.dumps(data, ensure_ascii=False)))
    assert rows[0] == RawRow(line=0, record=RECORDS[0])
    assert rows[2] == RawRow(line=2, record=RECORDS[1])
    bad = rows[1]
    assert bad.line == 1 and bad.record is None
    assert bad.reason == "record_not_object"
    assert bad.raw == raw
    assert bad.message == f"the element is {kind}, not an object"  # located by its row


def test_values_keep_their_json_types(tmp_path: Path) -> None:
    record = {"s": "x", "n": 3, "f": 1.5, "b": False, "z": None, "l": [1], "o": {"k": "v"}}
    rows, _ = read(write(tmp_path, json.dumps([record])))
    assert rows[0].record == record


def test_columns_are_the_keys_of_the_first_1000_records(tmp_path: Path) -> None:
    # Elements 0-999 are sampled (a non-object element among them counts); 1000 is not.
    data: list[Any] = [{"a": i} for i in range(998)] + ["skip", {"b": 1}, {"late": 1}]
    rows, stats = read(write(tmp_path, json.dumps(data)))
    assert stats.columns == ["a", "b"]
    assert len(rows) == 1001
    assert rows[-1] == RawRow(line=1000, record={"late": 1})


# --- invalid JSON ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "line", "column"),
    [
        ('[\n  {"a": 1},\n  {"a": }\n]', 3, 9),
        ('[{"a": 1},]', 1, 10),
        ('[{"a": "unterminated}]', 1, 8),
        ("", 1, 1),
    ],
)
def test_invalid_json_names_line_and_column(
    tmp_path: Path, content: str, line: int, column: int
) -> None:
    path = write(tmp_path, content)
    with pytest.raises(PipelineError) as err:
        read(path)
    message = str(err.value)
    assert str(path) in message
    assert f"line {line}, column" in message
    assert "invalid JSON" in message


def test_json_lines_get_a_hint(tmp_path: Path) -> None:
    path = write(tmp_path, '{"a": 1}\n{"a": 2}\n')
    with pytest.raises(PipelineError, match=r"line 2, column 1.*JSON Lines"):
        read(path)


# --- encodings ---------------------------------------------------------------------------------


def test_gbk_json_is_decoded(tmp_path: Path) -> None:
    data = [
        {"instruction": "你好，今天天气很好。", "output": "我们去公园散步吧，顺便喝杯茶。"}
    ] * 20
    rows, stats = read(write(tmp_path, json.dumps(data, ensure_ascii=False).encode("gbk")))
    assert stats.encoding == "gb18030"
    assert rows[0].record == data[0]


def test_gbk_json_with_override(tmp_path: Path) -> None:
    data = [{"q": "问题"}]
    rows, stats = read(write(tmp_path, json.dumps(data, ensure_ascii=False).encode("gbk")), "gbk")
    assert stats.encoding == "gbk" and rows[0].record == data[0]


@pytest.mark.parametrize(
    ("bom", "codec"),
    [(codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le")],
)
def test_bom_json(tmp_path: Path, bom: bytes, codec: str) -> None:
    text = json.dumps(RECORDS, ensure_ascii=False)
    rows, stats = read(write(tmp_path, bom + text.encode(codec)))
    assert stats.bom_removed and stats.encoding == codec
    assert [r.record for r in rows] == RECORDS


# --- sample data and corpus ----------------------------------------------------------------------


def test_sample_alpaca_json() -> None:
    rows, stats = read(SAMPLES / "alpaca.json")
    assert stats.columns == ["input", "instruction", "output"]
    assert len(rows) == 15 and all(r.reason is None for r in rows)
    assert [r.line for r in rows] == list(range(15))
    recs = [r.record for r in rows if r.record]
    dupes = Counter(json.dumps(r, sort_keys=True) for r in recs)
    assert sorted(dupes.values(), reverse=True)[:3] == [2, 2, 1]
    assert sum(1 for r in recs if r["output"] == "") == 1
    assert sum(1 for r in recs if "\n" in r["output"]) == 1
    assert sum(1 for r in recs if r["input"]) == 5


def test_sample_chat_jsonl_layout() -> None:
    data = (SAMPLES / "chat.jsonl").read_bytes()
    assert not data.endswith(b"\n")
    lines = data.decode("utf-8").split("\n")
    assert len(lines) == 17
    assert lines[7] == ""  # line 8 is blank
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(lines[8])  # line 9 is invalid JSON
    records = [orjson.loads(line) for i, line in enumerate(lines) if i not in (7, 8)]
    assert len(records) == 15
    assert all(
        [m["role"] for m in r["messages"]] == ["system", "user", "assistant"] for r in records
    )


def test_sample_files_are_what_the_generator_writes(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_samples", SAMPLES / "make_samples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path)
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == [
        "alpaca.json",
        "chat.jsonl",
        "faq.csv",
        "faq.parquet",
        "faq.xlsx",
        "faq_bom.tsv",
        "faq_gbk.csv",
    ]
    for name in written:
        fresh = (tmp_path / name).read_bytes()
        assert fresh == (SAMPLES / name).read_bytes(), f"sample_data/{name} is stale: re-run"
        assert len(fresh) < 20_000


@pytest.mark.corpus
def test_corpus_one_line_array_with_mixed_keys() -> None:
    path = corpus_file("chinese/alpaca_zh_code_questions_mixed_keys.json")
    assert b"\n" not in path.read_bytes()
    rows, stats = read(path)
    assert len(rows) == 9057
    assert all(r.reason is None for r in rows)
    assert stats.columns == ["history", "input", "instruction", "output"]
    shapes = Counter(tuple(sorted(r.record)) for r in rows if r.record)
    assert shapes == {
        ("instruction", "output"): 8084,
        ("history", "input", "instruction", "output"): 973,
    }
    assert rows[0].record == {
        "input": "",
        "history": "",
        "instruction": "Scratch 3.0中的默认编辑模式是什么？",
        "output": "默认编辑模式是矢量图。",
    }
    assert rows[-1].line == 9056


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("rel", "count", "columns"),
    [
        ("english/alpaca_data_0-3252_en.json", 3252, ["input", "instruction", "output"]),
        ("chinese/alpaca_data_0-3252_zh.json", 3247, ["input", "instruction", "output"]),
        ("sharegpt/fastchat_dummy_conversation.json", 500, ["conversations", "id"]),
        ("sharegpt/llamafactory_glaive_toolcall_en_demo.json", 300, ["conversations", "tools"]),
        ("chinese/llamafactory_glaive_toolcall_zh_demo.json", 300, ["conversations", "tools"]),
    ],
)
def test_corpus_arrays(rel: str, count: int, columns: list[str]) -> None:
    rows, stats = read(corpus_file(rel))
    assert len(rows) == count
    assert all(r.reason is None for r in rows)
    assert stats.columns == columns
    assert stats.encoding == "utf-8"


@pytest.mark.corpus
def test_corpus_glaive_tools_is_a_string() -> None:
    rows, _ = read(corpus_file("sharegpt/llamafactory_glaive_toolcall_en_demo.json"))
    assert all(isinstance(r.record["tools"], str) for r in rows if r.record)


@pytest.mark.corpus
def test_corpus_jsonl_is_not_a_json_array() -> None:
    path = corpus_file("english/stanford_alpaca_seed_tasks.jsonl")
    with pytest.raises(PipelineError, match="JSON Lines"):
        read(path)


# --- input.records -------------------------------------------------------------------------

TASK = {
    "name": "Übersetzung ins Türkische",
    "keywords": ["dil", "çeviri", "almanca"],
    "metrics": [{"name": "bleu"}, {"name": "chrf"}],
    "examples": [
        {"question": "Wie geht's?", "answer": "Nasılsın?"},
        {"question": "Guten Morgen!", "answer": "Günaydın!"},
        {"question": "Danke schön.", "answer": "Çok teşekkürler."},
    ],
}


def read_with(path: Path, records: str | None) -> tuple[list[RawRow], ReadStats]:
    stats = ReadStats()
    return list(read_json_array(path, ReadOptions(records=records), stats)), stats


def test_three_arrays_fail_listing_them_and_suggesting_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps(TASK, ensure_ascii=False), "task.json")
    with pytest.raises(PipelineError) as info:
        read_with(path, None)
    message = str(info.value)
    assert "'keywords' (3 items), 'metrics' (2 items), 'examples' (3 items)" in message
    assert "`input.records: examples`" in message  # the array of the most objects


def test_records_names_the_array(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps(TASK, ensure_ascii=False).encode("utf-16"), "task.json")
    rows, stats = read_with(path, "examples")
    assert [r.record for r in rows] == TASK["examples"]
    assert [r.line for r in rows] == [0, 1, 2]
    assert stats.encoding == "utf-16-le" and stats.columns == ["answer", "question"]


def test_records_takes_a_dotted_path_and_a_key_with_dots(tmp_path: Path) -> None:
    nested = {"data": {"train": [{"q": "a"}], "info": {}}, "v.2": [{"q": "b"}]}
    path = write(tmp_path, json.dumps(nested))
    assert [r.record for r in read_with(path, "data.train")[0]] == [{"q": "a"}]
    assert [r.record for r in read_with(path, "v.2")[0]] == [{"q": "b"}]
    with pytest.raises(PipelineError, match=r"'data' has no key 'test'; arrays found: 'data\.train'"):
        read_with(path, "data.test")
    with pytest.raises(PipelineError, match=r"input\.records: 'data\.info' is an object, not an"):
        read_with(path, "data.info")


def test_records_on_a_top_level_array_fails(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps(RECORDS))
    with pytest.raises(PipelineError, match="top-level JSON value is an array, not an object"):
        read_with(path, "data")


def test_nested_arrays_only_are_suggested_by_path(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps({"data": {"rows": RECORDS, "tags": ["x"]}}))
    with pytest.raises(PipelineError, match=r"'data\.rows' \(2 items\).*`input\.records: data\.rows`"):
        read_with(path, None)


def test_records_in_a_run_reads_every_example(tmp_path: Path) -> None:
    from tests.conftest import read_jsonl, run_config

    path = write(tmp_path, json.dumps(TASK, ensure_ascii=False), "task.json")
    report = run_config(
        tmp_path,
        {
            "input": {"paths": [str(path)], "records": "examples"},
            "stages": [{"name": "split", "validation": 0.0}],
        },
    )
    assert report["totals"]["rows_in"] == 3 and report["inputs"][0]["mapping"]["shape"] == (
        "question_answer"
    )
    train = read_jsonl(tmp_path / "out" / "train.jsonl")
    assert sorted(r["completion"] for r in train) == ["Günaydın!", "Nasılsın?", "Çok teşekkürler."]
