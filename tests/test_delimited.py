"""CSV/TSV reader: headers, delimiters, line endings, ragged rows, locations, corpus files."""

from __future__ import annotations

import csv
import random
from collections import Counter
from pathlib import Path

import pytest

from pipeline.errors import PipelineError
from pipeline.read.base import Limits, RawRow, Reader, ReadOptions, ReadStats
from pipeline.read.delimited import choose_delimiter, clean_header, read_csv, read_tsv
from tests.conftest import corpus_file

SAMPLES = Path(__file__).resolve().parents[1] / "sample_data"



def read(
    path: Path, reader: Reader = read_csv, **opts: str | None
) -> tuple[list[RawRow], ReadStats]:
    stats = ReadStats()
    return list(reader(path, ReadOptions(**opts), stats)), stats  # type: ignore[arg-type]


def write(tmp_path: Path, text: str | bytes, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def records(rows: list[RawRow]) -> list[dict[str, object] | None]:
    return [r.record for r in rows]


# --- header names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["a", "b"], ["a", "b"]),
        ([" a ", "\tb"], ["a", "b"]),
        (["\ufeffid", "x"], ["id", "x"]),
        (["a", ""], ["a", "column_2"]),
        (["", "", "c"], ["column_1", "column_2", "c"]),
        (["a", "  "], ["a", "column_2"]),
        (["a", "a", "a"], ["a", "a_2", "a_3"]),
        (["a", "a", "a_2"], ["a", "a_3", "a_2"]),
        (["column_2", ""], ["column_2", "column_2_2"]),
    ],
)
def test_clean_header(names: list[str], expected: list[str]) -> None:
    assert clean_header(names) == expected


# --- line endings and quoted newlines --------------------------------------------------------


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
@pytest.mark.parametrize("final", [True, False], ids=["final-eol", "no-final-eol"])
def test_line_endings(tmp_path: Path, eol: str, final: bool) -> None:
    text = eol.join(["q,a", "1,one", "2,two"]) + (eol if final else "")
    rows, stats = read(write(tmp_path, text))
    assert records(rows) == [{"q": "1", "a": "one"}, {"q": "2", "a": "two"}]
    assert [r.line for r in rows] == [2, 3]
    assert stats.columns == ["q", "a"]


@pytest.mark.parametrize(
    ("inner", "eol"), [("\n", "\n"), ("\r\n", "\r\n"), ("\n", "\r\n"), ("\r\n", "\n")]
)
def test_quoted_newline_kept_as_in_file(tmp_path: Path, inner: str, eol: str) -> None:
    text = f'q,a{eol}1,"first{inner}second"{eol}2,plain{eol}'
    rows, _ = read(write(tmp_path, text))
    assert rows[0].record == {"q": "1", "a": f"first{inner}second"}
    assert [r.line for r in rows] == [2, 4]


def test_line_numbers_track_multiline_records_and_blank_lines(tmp_path: Path) -> None:
    text = 'q,a\n1,"x\ny\nz"\n\n2,b\n\n\n3,"c\r\nd"\n4,e'
    rows, stats = read(write(tmp_path, text))
    assert [r.line for r in rows] == [2, 6, 9, 11]
    assert [r.record["q"] for r in rows if r.record] == ["1", "2", "3", "4"]
    assert stats.blank_lines == 3


# --- values ----------------------------------------------------------------------------------


def test_values_are_strings_and_empty_cells_are_empty(tmp_path: Path) -> None:
    rows, _ = read(write(tmp_path, 'a,b,c\n1,,"x, y"\n,2.50,"say ""hi"""\n'))
    assert records(rows) == [
        {"a": "1", "b": "", "c": "x, y"},
        {"a": "", "b": "2.50", "c": 'say "hi"'},
    ]


def test_whitespace_in_values_is_kept(tmp_path: Path) -> None:
    rows, _ = read(write(tmp_path, "a,b\n  padded , x\t\n"))
    assert rows[0].record == {"a": "  padded ", "b": " x\t"}


def test_blank_and_empty_rows_are_skipped_and_counted(tmp_path: Path) -> None:
    text = 'a,b,c\n\n1,2,3\n,,\n""\n\n4,5,6\n,,\n'
    rows, stats = read(write(tmp_path, text))
    assert [r.line for r in rows] == [3, 7]
    assert stats.blank_lines == 2
    assert stats.empty_rows == 3  # ",," twice and '""' (one empty field: still all empty)
    assert all(r.reason is None for r in rows)


def test_single_quoted_empty_field_row_is_an_empty_row(tmp_path: Path) -> None:
    rows, stats = read(write(tmp_path, 'a\n""\nx\n'))
    assert records(rows) == [{"a": "x"}]
    assert stats.empty_rows == 1


def test_leading_blank_lines_before_header(tmp_path: Path) -> None:
    rows, stats = read(write(tmp_path, "\n\nq,a\n1,2\n"))
    assert stats.columns == ["q", "a"]
    assert rows == [RawRow(line=4, record={"q": "1", "a": "2"})]
    assert stats.blank_lines == 2


@pytest.mark.parametrize("text", ["", "\n\n"])
def test_empty_file_has_no_rows(tmp_path: Path, text: str) -> None:
    rows, stats = read(write(tmp_path, text))
    assert rows == []
    assert stats.columns == []


def test_header_only(tmp_path: Path) -> None:
    rows, stats = read(write(tmp_path, "q,a\n"))
    assert rows == []
    assert stats.columns == ["q", "a"]


# --- ragged rows -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "got"),
    [("1", 1), ("1,2,3", 3), ("1,2,", 3), ("1,2,,", 4), ("1", 1)],
)
def test_ragged_rows_are_malformed_never_shifted(tmp_path: Path, line: str, got: int) -> None:
    rows, _ = read(write(tmp_path, f"q,a\nx,y\n{line}\nz,w\n"))
    assert records(rows)[0] == {"q": "x", "a": "y"}
    assert records(rows)[2] == {"q": "z", "a": "w"}
    bad = rows[1]
    assert bad.line == 3
    assert bad.record is None
    assert bad.reason == "row_malformed"
    assert bad.raw == line
    assert bad.message is not None
    assert "expected 2" in bad.message and f"got {got}" in bad.message


def test_malformed_raw_uses_the_delimiter(tmp_path: Path) -> None:
    rows, _ = read(write(tmp_path, "q\ta\nx\ty\tz\n", "in.tsv"), read_tsv)
    assert rows[0].raw == "x\ty\tz"


def test_header_ending_with_delimiter_has_a_real_last_column(tmp_path: Path) -> None:
    rows, stats = read(write(tmp_path, "id,q,a,\r\n1,x,y,\r\n2,z,w\r\n"))
    assert stats.columns == ["id", "q", "a", "column_4"]
    assert rows[0].record == {"id": "1", "q": "x", "a": "y", "column_4": ""}
    assert rows[1].reason == "row_malformed"


def test_unclosed_quote_is_one_malformed_row_not_a_record(tmp_path: Path) -> None:
    rows, _ = read(write(tmp_path, 'q,a\n1,ok\n2,"open\n3,x\n4,y\n'))
    assert rows[0].record == {"q": "1", "a": "ok"}
    assert len(rows) == 2
    bad = rows[1]
    assert bad.line == 3
    assert bad.reason == "row_malformed"
    assert bad.raw == '2,"open\n3,x\n4,y'
    assert bad.message is not None
    assert "lines 3-5" in bad.message and "never closed" in bad.message


def test_multiline_ragged_row_hints_at_quotes(tmp_path: Path) -> None:
    rows, _ = read(write(tmp_path, 'q,a\n1,"x\ny",extra\n2,ok\n'))
    assert rows[0].reason == "row_malformed"
    assert rows[0].message is not None and "lines 2-3" in rows[0].message
    assert rows[1] == RawRow(line=4, record={"q": "2", "a": "ok"})


@pytest.mark.parametrize("bad", ['1,"ab"cd', '1,"ab" '])
def test_text_after_closing_quote_is_malformed_and_reading_goes_on(
    tmp_path: Path, bad: str
) -> None:
    rows, _ = read(write(tmp_path, f"q,a\n{bad}\n2,ok\n"))
    assert rows[0].reason == "row_malformed"
    assert rows[0].line == 2
    assert rows[0].raw == bad
    assert rows[1] == RawRow(line=3, record={"q": "2", "a": "ok"})


def test_quote_inside_unquoted_field_is_literal(tmp_path: Path) -> None:
    rows, _ = read(write(tmp_path, 'q\ta\n1\tsay "hi" now\n', "in.tsv"), read_tsv)
    assert rows[0].record == {"q": "1", "a": 'say "hi" now'}


def test_unparseable_header_is_a_pipeline_error(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="header"):
        read(write(tmp_path, '"q"x,a\n1,2\n'))


def _limited(path: Path, limit: int) -> list[RawRow]:
    stats = ReadStats()
    return list(read_csv(path, ReadOptions(limits=Limits(max_record_bytes=limit)), stats))


def test_a_line_past_the_record_limit_is_too_large_and_reading_goes_on(tmp_path: Path) -> None:
    rows = _limited(write(tmp_path, "q,a\n1,short\n2,this line is too long\n3,ok\n"), 20)
    assert rows[0].record == {"q": "1", "a": "short"}
    assert rows[1].reason == "record_too_large" and rows[1].line == 3
    assert rows[1].raw is None  # read through, never held
    assert rows[1].message is not None and "max_record_bytes (20)" in rows[1].message
    assert rows[2] == RawRow(line=4, record={"q": "3", "a": "ok"})


def test_a_field_past_the_record_limit_is_too_large_and_reading_goes_on(tmp_path: Path) -> None:
    text = 'q,a\n1,short\n2,"aaaaaaaaaa\nbbbbbbbbbb\ncccc"\n3,ok\n'
    rows = _limited(write(tmp_path, text), 15)
    assert rows[1].reason == "record_too_large" and rows[1].line == 3
    # the parser gives up as soon as the field passes the limit; the rest of it is a row of its own
    assert rows[1].message is not None and "lines 3-4" in rows[1].message
    assert rows[2].reason == "row_malformed" and rows[2].line == 5
    assert rows[3] == RawRow(line=6, record={"q": "3", "a": "ok"})
    assert csv.field_size_limit() == 15  # the limit is in force, not csv's default


def test_invalid_bytes_reject_only_their_row_with_line_and_offset(tmp_path: Path) -> None:
    data = "q,a\n1,café\n".encode() + b"2,bad \xff\n" + "3,ok é\n".encode()
    rows, stats = read(write(tmp_path, data))
    assert stats.encoding == "utf-8"
    assert [r.reason for r in rows] == [None, "encoding_invalid", None]
    assert rows[1].line == 3
    offset = data.index(b"\xff")
    assert f"byte offset {offset}" in (rows[1].message or "")
    assert rows[1].raw == "2,bad \ufffd"
    assert rows[2].record == {"q": "3", "a": "ok é"}


def test_invalid_bytes_replaced_keep_the_row_with_a_warning(tmp_path: Path) -> None:
    data = "q,a\n1,café crème\n".encode() + b"2,bad \xff\xfe\n"
    rows, _ = read(write(tmp_path, data), encoding_errors="replace")
    assert rows[1].record == {"q": "2", "a": "bad \ufffd\ufffd"}
    assert rows[1].warning is not None and rows[1].warning[0] == "encoding_replaced"
    assert "2 byte(s)" in rows[1].warning[1]


def test_invalid_bytes_strict_fail_the_file(tmp_path: Path) -> None:
    data = "q,a\n1,café\n".encode() + b"2,bad \xff\n"
    with pytest.raises(PipelineError, match=r"byte offset 18\b"):
        read(write(tmp_path, data), encoding_errors="strict")


def test_long_fields_are_allowed(tmp_path: Path) -> None:
    long = "x" * 300_000  # more than csv's default limit of 131,072 characters
    rows, _ = read(write(tmp_path, f'q,a\n1,"{long}"\n'))
    assert rows[0].record == {"q": "1", "a": long}


# --- delimiters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reader", "expected"),
    [
        ("q,a\n1,2\n", read_csv, ","),
        ("q;a\n1;2\n", read_csv, ";"),
        ("q|a\n1|2\n", read_csv, "|"),
        ("q\ta\n1\t2\n", read_csv, "\t"),
        ("q\ta\n1\t2\n", read_tsv, "\t"),
        ("q,a\n1,2\n", read_tsv, ","),
        ("q;a\n1;2\n", read_tsv, ";"),
    ],
)
def test_delimiter_default_or_sniffed(
    tmp_path: Path, text: str, reader: Reader, expected: str
) -> None:
    rows, stats = read(write(tmp_path, text), reader)
    assert stats.delimiter == expected
    assert records(rows) == [{"q": "1", "a": "2"}]


def test_sniffing_ignores_commas_inside_values(tmp_path: Path) -> None:
    text = "q;a\n1;hello, world\n2;a, b, c\n"
    rows, stats = read(write(tmp_path, text))
    assert stats.delimiter == ";"
    assert records(rows)[1] == {"q": "2", "a": "a, b, c"}


def test_default_kept_when_the_header_has_it_even_if_rows_differ(tmp_path: Path) -> None:
    rows, stats = read(write(tmp_path, "q,a\n1;2\n"))
    assert stats.delimiter == ","
    assert rows[0].reason == "row_malformed"


def test_one_column_file_keeps_the_default(tmp_path: Path) -> None:
    rows, stats = read(write(tmp_path, "text\nhello, world\nbye\n"))
    assert stats.delimiter == ","
    assert rows[0].reason == "row_malformed"  # "hello, world" has 2 fields
    assert rows[1].record == {"text": "bye"}


def test_one_column_tsv(tmp_path: Path) -> None:
    rows, stats = read(write(tmp_path, "text\nhello, world\nbye\n", "in.tsv"), read_tsv)
    assert stats.delimiter == "\t"
    assert records(rows) == [{"text": "hello, world"}, {"text": "bye"}]


def test_explicit_delimiter_is_never_second_guessed(tmp_path: Path) -> None:
    rows, stats = read(write(tmp_path, "q;a\n1;2\n"), read_csv, delimiter=",")
    assert stats.delimiter == ","
    assert stats.columns == ["q;a"]
    assert records(rows) == [{"q;a": "1;2"}]


def test_explicit_delimiter_used(tmp_path: Path) -> None:
    rows, stats = read(write(tmp_path, "q~a\n1~2\n"), read_csv, delimiter="~")
    assert stats.delimiter == "~"
    assert records(rows) == [{"q": "1", "a": "2"}]


def test_multi_character_delimiter_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="one character"):
        read(write(tmp_path, "q::a\n"), read_csv, delimiter="::")


@pytest.mark.parametrize(
    ("sample", "default", "expected"),
    [
        ("a,b\n1,2\n", ",", ","),
        ("a;b;c\n1;2;3\n4;5;6\n", ",", ";"),
        ("\n\na|b\n1|2\n", ",", "|"),
        ("abc\n", "\t", "\t"),
        ("a;b|c\n", ",", ";"),
    ],
)
def test_choose_delimiter(sample: str, default: str, expected: str) -> None:
    assert choose_delimiter(sample, default) == expected


# --- encodings and stats ---------------------------------------------------------------------


def test_bom_is_removed_from_the_first_header(tmp_path: Path) -> None:
    rows, stats = read(write(tmp_path, b"\xef\xbb\xbfid,q\r\n1,x\r\n"))
    assert stats.columns == ["id", "q"]
    assert stats.bom_removed is True
    assert stats.encoding == "utf-8"
    assert rows[0].record == {"id": "1", "q": "x"}


def test_gbk_csv_auto_and_override(tmp_path: Path) -> None:
    text = "问题,答案\n" + "".join(f"{i},今天天气很好，我们去公园散步吧。\n" for i in range(30))
    path = write(tmp_path, text.encode("gbk"))
    auto_rows, auto_stats = read(path)
    forced_rows, forced_stats = read(path, read_csv, encoding="gbk")
    assert auto_stats.encoding == "gb18030"
    assert forced_stats.encoding == "gbk" and forced_stats.confidence == 1.0
    assert records(auto_rows) == records(forced_rows)
    assert auto_rows[0].record == {"问题": "0", "答案": "今天天气很好，我们去公园散步吧。"}


def test_utf16_tsv_with_bom(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeffQ\tA\r\n你好\t世界\r\n".encode("utf-16-le"), "in.tsv")
    rows, stats = read(path, read_tsv)
    assert stats.encoding == "utf-16-le" and stats.bom_removed
    assert records(rows) == [{"Q": "你好", "A": "世界"}]


def test_undecodable_file_raises_before_any_row(tmp_path: Path) -> None:
    path = write(tmp_path, random.Random(7).randbytes(20_000))
    with pytest.raises(PipelineError, match=r"input\.encoding"):
        read(path)


def test_reader_is_lazy_and_streams(tmp_path: Path) -> None:
    path = write(tmp_path, "q,a\n" + "".join(f"{i},x\n" for i in range(1000)))
    stats = ReadStats()
    it = read_csv(path, ReadOptions(), stats)
    first = next(it)
    assert first == RawRow(line=2, record={"q": "0", "a": "x"})
    assert stats.columns == ["q", "a"]
    it.close()  # type: ignore[attr-defined]


# --- sample data -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reader", "q", "a", "encoding", "bom", "newline"),
    [
        ("faq.csv", read_csv, "question", "answer", "utf-8", False, "\n"),
        ("faq_gbk.csv", read_csv, "question", "answer", "gb18030", False, "\n"),
        ("faq_bom.tsv", read_tsv, "Question", "Answer", "utf-8", True, "\r\n"),
    ],
)
def test_sample_files(
    name: str, reader: Reader, q: str, a: str, encoding: str, bom: bool, newline: str
) -> None:
    rows, stats = read(SAMPLES / name, reader)
    assert stats.columns == [q, a]
    assert stats.encoding == encoding and stats.bom_removed is bom
    assert len(rows) == 15 and all(r.reason is None for r in rows)
    assert [r.line for r in rows[:5]] == [2, 3, 4, 5, 7]  # row 4 spans two lines
    recs = [r.record for r in rows if r.record]
    pairs = Counter((rec[q], rec[a]) for rec in recs)
    assert sorted(pairs.values(), reverse=True)[:3] == [2, 2, 1]  # two exact duplicates
    assert sum(1 for rec in recs if rec[a] == "") == 1
    multiline = [rec[a] for rec in recs if "\n" in rec[a]]
    assert len(multiline) == 1 and newline in multiline[0]


# --- corpus ----------------------------------------------------------------------------------


@pytest.mark.corpus
def test_corpus_gb18030_medical_csv() -> None:
    rows, stats = read(corpus_file("messy/chinese_medical_dialogue_IM_sample_gb18030.csv"))
    assert stats.encoding == "gb18030"
    assert stats.columns == ["department", "title", "ask", "answer"]
    assert len(rows) == 7644
    assert all(r.reason is None for r in rows)
    first = rows[0].record
    assert first is not None
    assert first["department"] == "心血管科"
    assert first["title"] == "高血压患者能吃党参吗？"
    assert first["answer"].startswith("高血压病人可以口服党参的。")
    assert sum(1 for r in rows for v in (r.record or {}).values() if "\n" in v) == 7
    last = rows[-1].record
    assert last is not None and last["title"] == "胆汁反流性胃炎吃药不见好转怎么办？"


@pytest.mark.corpus
def test_corpus_bom_tsv_first_column_is_clean() -> None:
    rows, stats = read(corpus_file("messy/botbuilder_smartLightFAQ_bom.tsv"), read_tsv)
    assert stats.bom_removed is True
    assert stats.columns[0] == "Question"
    assert len(stats.columns) == 8
    assert len(rows) == 22 and all(r.reason is None for r in rows)
    first = rows[0].record
    assert first is not None
    assert first["Question"] == "My Contoso smart light won't turn on."
    assert "\\n2." in first["Answer"]  # a literal backslash-n, not a newline


@pytest.mark.corpus
def test_corpus_bom_csv_with_empty_last_header() -> None:
    rows, stats = read(corpus_file("messy/songys_kor_Pair_test_bom.csv"))
    assert stats.bom_removed is True
    assert stats.columns == ["test_id", "question1", "question2", "is_duplicate", "column_5"]
    assert len(rows) == 688 and all(r.reason is None for r in rows)
    assert rows[0].record == {
        "test_id": "1",
        "question1": "21살의 사랑에 대해",
        "question2": "사랑을 노력한다는게 말이 되나요?",
        "is_duplicate": "1",
        "column_5": "",
    }


@pytest.mark.corpus
def test_corpus_tsv_with_malformed_line_53() -> None:
    rows, stats = read(corpus_file("messy/aoai_classification_bulk_test.tsv"), read_tsv)
    assert stats.delimiter == "\t"
    assert stats.columns == ["user_prompt", "classification"]
    assert len(rows) == 66
    bad = [r for r in rows if r.reason]
    assert len(bad) == 1
    assert bad[0].line == 53 and bad[0].reason == "row_malformed"
    assert bad[0].raw == "How about the month before that? 4"
    assert sum(1 for r in rows if r.record) == 65


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("rel", "reader", "count", "columns"),
    [
        ("messy/songys_ChatbotData_ko_crlf.csv", read_csv, 11823, ["Q", "A", "label"]),
        (
            "messy/awesome_chatgpt_prompts_2025-12-16.csv",
            read_csv,
            376,
            ["act", "prompt", "for_devs", "type", "contributor"],
        ),
        (
            "messy/aoai_synthetic_data_topic_classifier.csv",
            read_csv,
            66,
            ["QnA", "topic", "customer_question", "agent_reply"],
        ),
        ("messy/botbuilder_SampleForCQA.tsv", read_tsv, 156, None),
    ],
)
def test_corpus_row_counts(rel: str, reader: Reader, count: int, columns: list[str] | None) -> None:
    rows, stats = read(corpus_file(rel), reader)
    assert len(rows) == count
    assert all(r.reason is None for r in rows)
    if columns is not None:
        assert stats.columns == columns


@pytest.mark.corpus
def test_corpus_crlf_inside_quoted_fields_is_kept() -> None:
    rows, _ = read(corpus_file("messy/aoai_synthetic_data_topic_classifier.csv"))
    first = rows[0].record
    assert first is not None
    assert first["QnA"].startswith("How are auto insurance premiums calculated?\r\nAuto")
    assert all("\r\n" in (r.record or {})["QnA"] for r in rows)


@pytest.mark.corpus
def test_corpus_mixed_line_endings() -> None:
    rows, _ = read(corpus_file("messy/awesome_chatgpt_prompts_2025-12-16.csv"))
    values = [v for r in rows for v in (r.record or {}).values()]
    assert sum(1 for v in values if "\n" in v) == 82
    assert not any("\r" in v for v in values)  # the multi-line fields use bare LF
    assert rows[0].record is not None and rows[0].record["act"] == "Ethereum Developer"


@pytest.mark.corpus
def test_corpus_cqa_tsv_empty_answers() -> None:
    rows, _ = read(corpus_file("messy/botbuilder_SampleForCQA.tsv"), read_tsv)
    assert sum(1 for r in rows if r.record and r.record["Answer"] == "") > 0
