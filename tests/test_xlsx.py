"""XLSX reader: cell text, header row, empty and ragged rows, sheets, damaged files, corpus."""

from __future__ import annotations

import datetime as dt
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl import Workbook
from openpyxl.styles import Font

from pipeline.errors import PipelineError
from pipeline.read import xlsx
from pipeline.read.base import RawRow, ReadOptions, ReadStats
from pipeline.read.xlsx import cell_text, read_xlsx
from tests.conftest import corpus_file

SAMPLES = Path(__file__).resolve().parents[1] / "sample_data"



def read(path: Path, sheet: str | None = None) -> tuple[list[RawRow], ReadStats]:
    stats = ReadStats()
    return list(read_xlsx(path, ReadOptions(sheet=sheet), stats)), stats


def make(tmp_path: Path, rows: list[list[Any]], title: str = "Data", **extra: Any) -> Path:
    """A workbook whose first sheet holds ``rows`` from row 1 (``None`` = empty cell)."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = title
    for r, values in enumerate(rows, start=1):
        for c, value in enumerate(values, start=1):
            if value is not None:
                ws.cell(row=r, column=c, value=value)
    for name, sheet_rows in extra.items():
        other = wb.create_sheet(name)
        for values in sheet_rows:
            other.append(values)
    path = tmp_path / "book.xlsx"
    wb.save(path)
    return path


# --- cell text -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        ("", ""),
        ("  as is \n", "  as is \n"),
        ("1", "1"),
        (1, "1"),
        (-42, "-42"),
        (10**20, "100000000000000000000"),
        (1.0, "1"),
        (-3.0, "-3"),
        (0.0, "0"),
        (2.5, "2.5"),
        (0.1, "0.1"),
        (1 / 3, "0.3333333333333333"),
        (1e-07, "1e-07"),
        (True, "TRUE"),
        (False, "FALSE"),
        (dt.datetime(2024, 3, 5), "2024-03-05"),
        (dt.datetime(2024, 3, 5, 14, 30), "2024-03-05T14:30:00"),
        (dt.datetime(2024, 3, 5, 0, 0, 1), "2024-03-05T00:00:01"),
        (dt.date(2024, 3, 5), "2024-03-05"),
        (dt.time(9, 15), "09:15:00"),
        (dt.timedelta(hours=1, minutes=30), "1:30:00"),
    ],
)
def test_cell_text(value: Any, text: str) -> None:
    assert cell_text(value) == text


def test_cells_round_trip_through_a_workbook(tmp_path: Path) -> None:
    path = make(
        tmp_path,
        [
            ["text", "int", "float", "whole", "bool", "when", "day"],
            ["x", 7, 2.25, 3.0, True, dt.datetime(2023, 1, 2, 3, 4, 5), dt.datetime(2023, 1, 2)],
        ],
    )
    rows, stats = read(path)
    assert stats.columns == ["text", "int", "float", "whole", "bool", "when", "day"]
    assert rows == [
        RawRow(
            line=2,
            record={
                "text": "x",
                "int": "7",
                "float": "2.25",
                "whole": "3",
                "bool": "TRUE",
                "when": "2023-01-02T03:04:05",
                "day": "2023-01-02",
            },
        )
    ]
    assert stats.encoding is None and stats.sheet == "Data"


# --- header and rows -------------------------------------------------------------------------


def test_header_is_the_first_non_empty_row_and_lines_are_sheet_rows(tmp_path: Path) -> None:
    path = make(tmp_path, [[], [], [" q ", "a"], ["1", "one"], [], ["2", "two"]])
    rows, stats = read(path)
    assert stats.columns == ["q", "a"]
    assert rows == [
        RawRow(line=4, record={"q": "1", "a": "one"}),
        RawRow(line=6, record={"q": "2", "a": "two"}),
    ]
    assert stats.empty_rows == 3  # two before the header, one between the records


def test_trailing_formatted_empty_rows_are_not_counted(tmp_path: Path) -> None:
    path = make(tmp_path, [["q", "a"], ["1", "x"]])
    wb = openpyxl.load_workbook(path)
    ws = wb.active
    assert ws is not None
    for r in range(5, 40):
        ws.cell(row=r, column=1).font = Font(bold=True)  # style only, no value
    wb.save(path)
    rows, stats = read(path)
    assert [r.line for r in rows] == [2]
    assert stats.empty_rows == 0


def test_header_names_are_cleaned(tmp_path: Path) -> None:
    path = make(tmp_path, [["a", None, "a", 2024], ["1", "2", "3", "4"]])
    rows, stats = read(path)
    assert stats.columns == ["a", "column_2", "a_2", "2024"]
    assert rows[0].record == {"a": "1", "column_2": "2", "a_2": "3", "2024": "4"}


def test_short_rows_are_padded(tmp_path: Path) -> None:
    path = make(tmp_path, [["q", "a", "note"], ["1"], [None, "only a"]])
    rows, _ = read(path)
    assert [r.record for r in rows] == [
        {"q": "1", "a": "", "note": ""},
        {"q": "", "a": "only a", "note": ""},
    ]


def test_values_beyond_the_header_are_malformed(tmp_path: Path) -> None:
    path = make(tmp_path, [["q", "a"], ["1", "x"], ["2", "y", None, "stray"], ["3", "z"]])
    rows, _ = read(path)
    assert rows[0].record == {"q": "1", "a": "x"}
    bad = rows[1]
    assert bad.line == 3 and bad.reason == "row_malformed" and bad.record is None
    assert bad.message is not None and "D3" in bad.message and "2 columns" in bad.message
    assert bad.raw == "2\ty\t\tstray"
    assert rows[2] == RawRow(line=4, record={"q": "3", "a": "z"})


def test_styled_empty_cells_beyond_the_header_are_fine(tmp_path: Path) -> None:
    path = make(tmp_path, [["q", "a"], ["1", "x"]])
    wb = openpyxl.load_workbook(path)
    ws = wb.active
    assert ws is not None
    ws.cell(row=1, column=5).font = Font(bold=True)
    ws.cell(row=2, column=6).font = Font(bold=True)
    wb.save(path)
    rows, stats = read(path)
    assert stats.columns == ["q", "a"]
    assert rows == [RawRow(line=2, record={"q": "1", "a": "x"})]


def test_empty_sheet_has_no_rows(tmp_path: Path) -> None:
    rows, stats = read(make(tmp_path, []))
    assert rows == []
    assert stats.columns == []


# --- sheets ----------------------------------------------------------------------------------


def test_first_sheet_by_default_and_named_sheet(tmp_path: Path) -> None:
    path = make(tmp_path, [["q"], ["first"]], title="One", Two=[["q"], ["second"]])
    rows, stats = read(path)
    assert rows[0].record == {"q": "first"} and stats.sheet == "One"
    rows, stats = read(path, sheet="Two")
    assert rows[0].record == {"q": "second"} and stats.sheet == "Two"


def test_unknown_sheet_lists_the_sheets(tmp_path: Path) -> None:
    path = make(tmp_path, [["q"]], title="One", Two=[["q"]])
    with pytest.raises(PipelineError) as err:
        read(path, sheet="Three")
    message = str(err.value)
    assert "'Three'" in message and "'One'" in message and "'Two'" in message
    assert str(path) in message


# --- damaged files and cleanup ---------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"question,answer\n1,2\n",
        b"PK\x03\x04 truncated zip",
        b"\xd0\xcf\x11\xe0" + b"\0" * 600,
    ],
    ids=["empty", "csv-text", "truncated-zip", "old-xls-header"],
)
def test_not_an_xlsx_is_a_pipeline_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.xlsx"
    path.write_bytes(content)
    with pytest.raises(PipelineError, match=r"bad\.xlsx"):
        read(path)


def test_zip_that_is_not_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "other.xlsx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "not a workbook")
    with pytest.raises(PipelineError, match=r"other\.xlsx"):
        read(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"nope\.xlsx"):
        read(tmp_path / "nope.xlsx")


def test_workbook_is_closed_even_when_reading_stops_early(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[Any] = []
    real = xlsx.load_workbook

    def spy(*args: Any, **kwargs: Any) -> Any:
        wb = real(*args, **kwargs)
        opened.append(wb)
        return wb

    monkeypatch.setattr(xlsx, "load_workbook", spy)
    path = make(tmp_path, [["q"], ["1"], ["2"], ["3"]])
    it = read_xlsx(path, ReadOptions(), ReadStats())
    assert next(it).record == {"q": "1"}
    it.close()  # type: ignore[attr-defined]
    list(read_xlsx(path, ReadOptions(), ReadStats()))
    assert len(opened) == 2
    assert all(wb._archive.fp is None for wb in opened)


def with_cells(tmp_path: Path, cells: list[str]) -> Path:
    """A workbook whose sheet holds `cells` (raw `<c>` XML, `{r}` = the row) in column B of
    rows 2, 3, ..., under the header `k, v`: cached values as a spreadsheet program stores them."""
    path = make(tmp_path, [["k", "v"], ["x", "y"]])
    rows = "".join(
        f'<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>{r}</t></is></c>{c.format(r=r)}</row>'
        for r, c in enumerate(cells, start=2)
    )
    sheet = "xl/worksheets/sheet1.xml"
    with zipfile.ZipFile(path) as z:
        parts = {i.filename: z.read(i) for i in z.infolist()}
    text = parts[sheet].decode()
    start, end = text.index('<row r="2"'), text.index("</sheetData>")
    parts[sheet] = (text[:start] + rows + text[end:]).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    return path


def test_cached_errors_and_long_integers_are_kept_as_written(tmp_path: Path) -> None:
    # the cell text python-calamine would not give (docs/decisions.md: .xlsx stays on
    # openpyxl): an error's text, and an integer past 2**53 digit for digit
    path = with_cells(
        tmp_path,
        [
            '<c r="B{r}" t="e"><f>1/0</f><v>#DIV/0!</v></c>',
            '<c r="B{r}" t="e"><v>#N/A</v></c>',
            '<c r="B{r}"><v>12345678901234567890</v></c>',
            '<c r="B{r}" t="str"><f>"a"&amp;"b"</f><v>ab</v></c>',
            '<c r="B{r}"><v>1E+3</v></c>',
        ],
    )
    rows, _stats = read(path)
    assert [r.record["v"] for r in rows if r.record] == [
        "#DIV/0!",
        "#N/A",
        "12345678901234567890",
        "ab",
        "1000",
    ]


# --- sample data and corpus ------------------------------------------------------------------


def test_sample_faq_xlsx() -> None:
    path = SAMPLES / "faq.xlsx"
    rows, stats = read(path)
    assert stats.sheet == "FAQ" and stats.columns == ["question", "answer"]
    assert len(rows) == 15 and all(r.reason is None for r in rows)
    assert stats.empty_rows == 1
    assert 8 not in [r.line for r in rows]  # the empty sheet row
    recs = {r.line: r.record for r in rows}
    assert recs[7] == {"question": "How many cups does it hold?", "answer": "7"}
    wb = openpyxl.load_workbook(path, read_only=True)
    assert wb["FAQ"]["B7"].value == 7  # really an integer cell
    wb.close()
    answers = [r.record["answer"] for r in rows if r.record]
    assert answers.count("") == 1
    assert sum("\n" in a for a in answers) == 1
    pairs = Counter(tuple(r.record.values()) for r in rows if r.record)
    assert sorted(pairs.values(), reverse=True)[:3] == [2, 2, 1]


@pytest.mark.corpus
def test_corpus_mixed_type_completions_become_strings() -> None:
    rows, stats = read(corpus_file("messy/aoai_generated_labels_context_switching.xlsx"))
    assert stats.sheet == "Sheet1" and stats.columns == ["prompt", "completion"]
    assert len(rows) == 223 and all(r.reason is None for r in rows)
    assert rows[0] == RawRow(
        line=2,
        record={"prompt": "How many Surface Laptops were sold last quarter?", "completion": "1"},
    )
    completions = Counter(r.record["completion"] for r in rows if r.record)
    # 160 string cells ('1', '2', '3') and 63 integer cells (4): all text now.
    assert completions == {"1": 63, "2": 63, "3": 34, "4": 63}
    by_line = {r.line: r.record for r in rows}
    assert by_line[162] is not None and by_line[162]["completion"] == "4"  # an int cell
    assert sum(1 for r in rows if r.record and r.record["prompt"].startswith(" ")) == 54


@pytest.mark.corpus
def test_corpus_chinese_markdown_answers() -> None:
    rows, stats = read(corpus_file("messy/doc_chat_on_wechat_qa_zh.xlsx"))
    assert stats.columns == ["question", "answer"]
    assert len(rows) == 20 and all(r.reason is None for r in rows)
    recs = [r.record for r in rows if r.record]
    assert recs[0]["question"] == "如何提升一个企业的数据中心成熟度水平"
    assert max(len(r["answer"]) for r in recs) == 932
    assert sum("\n" in r["answer"] for r in recs) == 19
    assert Counter(r["question"] for r in recs).most_common(1) == [
        ("事件处置过程中如何做好沟通协调？", 3)
    ]
