""".xls and .ods workbooks (python-calamine): made here by xlwt and pandas/odfpy, read with the
cell-text rules of the XLSX reader."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import PipelineError
from pipeline.read import detect_format, read_rows
from pipeline.read.base import Limits, ReadOptions, ReadStats
from tests.conftest import read_jsonl, run_config

xlwt = pytest.importorskip("xlwt", reason="xlwt (a dev dependency) writes the .xls fixtures")


def read(path: Path, fmt: str, **opts: Any) -> tuple[list[Any], ReadStats]:
    stats = ReadStats()
    return list(read_rows(path, fmt, ReadOptions(**opts), stats)), stats


def make_xls(path: Path) -> Path:
    wb = xlwt.Workbook(encoding="utf-8")
    ws = wb.add_sheet("Preguntas")
    other = wb.add_sheet("Otra")
    other.write(0, 0, "nada")
    date = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    stamp = xlwt.easyxf(num_format_str="YYYY-MM-DD HH:MM")
    for c, name in enumerate(["pregunta", "respuesta", "n", "fecha", "hora", "ok"]):
        ws.write(0, c, name)
    ws.write(1, 0, "¿Qué hora es en Tōkyō?")
    ws.write(1, 1, "Son las nueve — 九時です。")
    ws.write(1, 2, 1)
    ws.write(1, 3, dt.datetime(2024, 1, 2), date)
    ws.write(1, 4, dt.datetime(2024, 1, 2, 13, 5), stamp)
    ws.write(1, 5, True)
    ws.write(2, 0, "¿Cuánto es 2,5 × 2?")
    ws.write(2, 1, "Cinco.")
    ws.write(2, 2, 2.5)
    # row 4 empty, then a row with a value beyond the header's columns
    ws.write(4, 0, "fila")
    ws.write(4, 1, "larga")
    ws.write(4, 7, "de más")
    wb.save(str(path))
    return path


def make_ods(path: Path) -> Path:
    import pandas as pd

    frame = pd.DataFrame(
        {
            "frage": ["Wie spät ist es?", "Was ist 2,5 × 2?"],
            "antwort": ["Neun Uhr — 九時です。", "Fünf."],
            "n": [1, 2.5],
            "datum": [dt.datetime(2024, 1, 2), dt.datetime(2024, 1, 2, 13, 5)],
        }
    )
    frame.to_excel(path, engine="odf", index=False, sheet_name="Blatt")
    return path


def test_xls_rows_and_cell_text_are_those_of_the_xlsx_reader(tmp_path: Path) -> None:
    path = make_xls(tmp_path / "faq.xls")
    rows, stats = read(path, "xls")
    assert stats.sheet == "Preguntas" and stats.header is True and stats.encoding is None
    assert rows[0].line == 2 and rows[0].record == {
        "pregunta": "¿Qué hora es en Tōkyō?",
        "respuesta": "Son las nueve — 九時です。",
        "n": "1",
        "fecha": "2024-01-02",
        "hora": "2024-01-02T13:05:00",
        "ok": "TRUE",
    }
    assert rows[1].record is not None and rows[1].record["n"] == "2.5"
    assert rows[1].record["fecha"] == ""
    assert stats.empty_rows == 1
    assert rows[2].line == 5 and rows[2].reason == "row_malformed" and "H5" in str(rows[2].message)
    assert len(rows) == 3


@pytest.mark.parametrize("fmt", ["xls", "ods"])
def test_a_sheet_that_starts_below_and_right_of_a1_keeps_its_row_numbers(
    tmp_path: Path, fmt: str
) -> None:
    # data from C3: the header is sheet row 3, the records rows 4 and 6 (row 5 empty), and
    # the empty columns A and B stay columns, as the XLSX reader gives them
    path = tmp_path / f"offset.{fmt}"
    if fmt == "xls":
        wb = xlwt.Workbook(encoding="utf-8")
        ws = wb.add_sheet("s")
        for r, c, v in [(2, 2, "q"), (2, 3, "a"), (3, 2, "uno"), (3, 3, "one"), (5, 2, "dos")]:
            ws.write(r, c, v)
        wb.save(str(path))
    else:
        import pandas as pd

        frame = pd.DataFrame({"q": ["uno", None, "dos"], "a": ["one", None, None]})
        frame.to_excel(path, engine="odf", index=False, startrow=2, startcol=2)
    rows, stats = read(path, fmt)
    assert [r.line for r in rows] == [4, 6]
    assert stats.columns == ["column_1", "column_2", "q", "a"]
    assert [r.record for r in rows] == [
        {"column_1": "", "column_2": "", "q": "uno", "a": "one"},
        {"column_1": "", "column_2": "", "q": "dos", "a": ""},
    ]
    assert stats.empty_rows == 3  # two above the header, one between the records


def test_xls_sheet_by_name_and_an_unknown_one(tmp_path: Path) -> None:
    path = make_xls(tmp_path / "faq.xls")
    _rows, stats = read(path, "xls", sheet="Otra")
    assert stats.sheet == "Otra" and stats.columns == ["nada"]
    with pytest.raises(PipelineError, match=r"no sheet named 'Nope'.*'Preguntas', 'Otra'"):
        read(path, "xls", sheet="Nope")


def test_ods_rows_and_cell_text(tmp_path: Path) -> None:
    path = make_ods(tmp_path / "faq.ods")
    rows, stats = read(path, "ods")
    assert stats.sheet == "Blatt" and stats.header is True
    assert [r.record for r in rows] == [
        {"frage": "Wie spät ist es?", "antwort": "Neun Uhr — 九時です。", "n": "1",
         "datum": "2024-01-02"},
        {"frage": "Was ist 2,5 × 2?", "antwort": "Fünf.", "n": "2.5",
         "datum": "2024-01-02T13:05:00"},
    ]
    assert [r.line for r in rows] == [2, 3]


def test_ods_gets_the_zip_bomb_checks(tmp_path: Path) -> None:
    path = make_ods(tmp_path / "faq.ods")
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("padding.xml", b" " * (4 << 20), compress_type=zipfile.ZIP_DEFLATED)
    with pytest.raises(PipelineError, match="max_xlsx_ratio"):
        read(path, "ods")
    with pytest.raises(PipelineError, match="max_xlsx_cells"):
        read(make_ods(tmp_path / "small.ods"), "ods", limits=Limits(max_xlsx_cells=5))


def test_a_damaged_xls_is_refused_in_one_line(tmp_path: Path) -> None:
    path = make_xls(tmp_path / "faq.xls")
    data = path.read_bytes()
    path.write_bytes(data[:600])
    with pytest.raises(PipelineError, match=r"faq\.xls: not a readable Excel 97-2003"):
        read(path, "xls")


def test_xls_named_xlsx_and_ods_named_xls_are_read_as_what_they_are(tmp_path: Path) -> None:
    xls = make_xls(tmp_path / "faq.xls")
    misnamed = tmp_path / "faq.xlsx"
    misnamed.write_bytes(xls.read_bytes())
    fmt, how, warning = detect_format(misnamed, "auto")
    assert (fmt, how) == ("xls", "content")
    assert warning is not None and "its extension says xlsx" in warning and "xls" in warning
    ods = make_ods(tmp_path / "faq.ods")
    other = tmp_path / "sheet.xls"
    other.write_bytes(ods.read_bytes())
    assert detect_format(other, "auto")[:2] == ("ods", "content")
    assert detect_format(xls, "auto")[:2] == ("xls", "extension")


def test_xls_and_ods_run_end_to_end(tmp_path: Path) -> None:
    xls = make_xls(tmp_path / "faq.xls")
    misnamed = tmp_path / "old.xlsx"
    misnamed.write_bytes(xls.read_bytes())
    ods = make_ods(tmp_path / "faq.ods")
    reports = [
        run_config(
            tmp_path,
            {
                "input": {"paths": [str(path)], "columns": columns},
                "stages": [{"name": "split", "validation": 0.0}],
            },
            name,
        )
        for path, columns, name in (
            (misnamed, {"prompt": "pregunta", "completion": "respuesta"}, "x"),
            (ods, {"prompt": "frage", "completion": "antwort"}, "o"),
        )
    ]
    first, second = (r["inputs"][0] for r in reports)
    assert (first["format"], first["format_from"]) == ("xls", "content")
    assert [w["code"] for w in first["warnings"]] == ["format_from_content"]
    assert (second["format"], second["format_from"]) == ("ods", "extension")
    assert second["warnings"] == []
    assert first["header"] is True and first["header_from"] == "detected"
    assert first["rows"] == 3 and second["rows"] == 2
    assert [r["totals"]["rejected"] for r in reports] == [1, 0]  # the row too wide
    assert all(r["identity"]["holds"] for r in reports)
    prompts = [{t["prompt"] for t in read_jsonl(tmp_path / n / "train.jsonl")} for n in "xo"]
    assert prompts == [
        {"¿Qué hora es en Tōkyō?", "¿Cuánto es 2,5 × 2?"},
        {"Wie spät ist es?", "Was ist 2,5 × 2?"},
    ]


def test_an_ods_formula_gives_its_stored_value(tmp_path: Path) -> None:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    doc = OpenDocumentSpreadsheet()
    table = Table(name="F")
    for cells in (
        [("string", "question"), ("string", "n"), ("string", "n plus one")],
        [("string", "¿Dos más uno?"), ("float", 2), ("formula", 3)],
    ):
        row = TableRow()
        for kind, value in cells:
            if kind == "formula":
                cell = TableCell(valuetype="float", value=value, formula="of:=[.B2]+1")
            elif kind == "float":
                cell = TableCell(valuetype="float", value=value)
            else:
                cell = TableCell(valuetype="string")
            cell.addElement(P(text=str(value)))
            row.addElement(cell)
        table.addElement(row)
    doc.spreadsheet.addElement(table)
    path = tmp_path / "formula.ods"
    doc.save(str(path))
    rows, _stats = read(path, "ods")
    assert [r.record for r in rows] == [
        {"question": "¿Dos más uno?", "n": "2", "n plus one": "3"}
    ]
