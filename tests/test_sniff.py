"""The format by content (`pipeline.read.sniff`, `pipeline.read.detect_format`): misnamed files
are read as what they are, `.txt` exports are sniffed, and the report says so."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl import Workbook

from pipeline.errors import PipelineError
from pipeline.read import detect_format, read_rows
from pipeline.read.base import ReadOptions, ReadStats
from pipeline.read.sniff import sniff
from tests.conftest import read_jsonl, run_config

ROWS = [
    ("¿Dónde está la estación?", "Al final de la calle, a la derecha."),
    ("Wie heißt du?", "Ich heiße Jürgen."),
    ("你叫什么名字？", "我叫小明。"),
]


def unicode_text(path: Path) -> Path:
    """What Excel's "Unicode Text" export writes: UTF-16 LE with a BOM, tabs, CRLF."""
    lines = ["question\tanswer", *(f"{q}\t{a}" for q, a in ROWS)]
    path.write_bytes(b"\xff\xfe" + "".join(f"{ln}\r\n" for ln in lines).encode("utf-16-le"))
    return path


def test_excel_unicode_text_export_is_sniffed_as_tsv(tmp_path: Path) -> None:
    path = unicode_text(tmp_path / "export.txt")
    fmt, how, warning = detect_format(path, "auto")
    assert (fmt, how) == ("tsv", "content")
    assert warning is not None and "'.txt' names no format" in warning
    stats = ReadStats()
    rows = list(read_rows(path, fmt, ReadOptions(), stats))
    assert stats.encoding == "utf-16-le" and stats.bom_removed and stats.delimiter == "\t"
    assert [r.record for r in rows] == [{"question": q, "answer": a} for q, a in ROWS]


def test_excel_unicode_text_export_runs_and_the_report_says_how(tmp_path: Path) -> None:
    path = unicode_text(tmp_path / "export.txt")
    report = run_config(
        tmp_path,
        {"input": {"paths": [str(path)]}, "stages": [{"name": "split", "validation": 0.0}]},
    )
    inp = report["inputs"][0]
    assert (inp["format"], inp["format_from"], inp["encoding"]) == ("tsv", "content", "utf-16-le")
    assert [w["code"] for w in inp["warnings"]] == ["format_from_content"]
    assert report["totals"]["rows_in"] == len(ROWS) and report["totals"]["rejected"] == 0
    train = read_jsonl(tmp_path / "out" / "train.jsonl")
    assert sorted((r["prompt"], r["completion"]) for r in train) == sorted(ROWS)


def test_a_set_format_is_never_second_guessed(tmp_path: Path) -> None:
    path = unicode_text(tmp_path / "export.txt")
    assert detect_format(path, "csv") == ("csv", "config", None)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        # JSON Lines named .json, pretty JSON named .jsonl
        ("a.json", '{"a": 1}\n{"a": 2}\n', ("jsonl", "content")),
        ("a.jsonl", '{\n  "data": [{"a": 1}]\n}\n', ("json", "content")),
        ("a.jsonl", '[{"a": 1}]\n', ("json", "content")),
        # one single-line object: minified JSON or one JSON line; the extension decides
        ("a.json", '{"data": [{"a": 1}]}', ("json", "extension")),
        ("a.jsonl", '{"a": 1}\n', ("jsonl", "extension")),
        # a broken first line of JSON Lines stays JSON Lines (a rejected record, not a file)
        ("a.jsonl", '{"a": 1\n{"a": 2}\n', ("jsonl", "extension")),
        # delimited text: .txt sniffed, semicolons are CSV (the reader sniffs `;`)
        ("a.txt", "q;a\nx;y\n", ("csv", "content")),
        ("a.txt", "q\ta\nx\ty\n", ("tsv", "content")),
        ("a.dat", '[{"a": 1}]', ("json", "content")),
        # CSV against TSV is the delimiter sniffing's business; text is not JSON by accident
        ("a.csv", "q\ta\nx\ty\n", ("csv", "extension")),
        ("a.csv", '[1, 2],"x"\n', ("csv", "extension")),
        ("a.tsv", "q,a\nx,y\n", ("tsv", "extension")),
    ],
)
def test_text_formats(tmp_path: Path, name: str, content: str, expected: tuple[str, str]) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    assert detect_format(path, "auto")[:2] == expected


def test_binary_formats_win_over_any_extension(tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["prompt", "completion"])
    ws.append(["hola", "adiós"])
    xlsx = tmp_path / "book.csv"
    wb.save(xlsx)
    assert detect_format(xlsx, "auto")[:2] == ("xlsx", "content")
    table = pa.table({"prompt": ["hola"], "completion": ["adiós"]})
    parquet = tmp_path / "data.json"
    pq.write_table(table, parquet)
    assert detect_format(parquet, "auto")[:2] == ("parquet", "content")
    stats = ReadStats()
    rows = list(read_rows(xlsx, "xlsx", ReadOptions(), stats))
    assert [r.record for r in rows] == [{"prompt": "hola", "completion": "adiós"}]
    # text under a binary format's name is read as text
    text = tmp_path / "fake.xlsx"
    text.write_text("prompt,completion\nhola,adiós\n", encoding="utf-8")
    assert detect_format(text, "auto")[:2] == ("csv", "content")


def test_unknown_content_without_a_known_extension_fails_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(bytes(range(256)) * 4)
    assert sniff(path) is None
    with pytest.raises(PipelineError, match=r"blob\.bin: cannot tell the format.*input\.format"):
        detect_format(path, "auto")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(PipelineError, match="cannot tell the format"):
        detect_format(empty, "auto")


def test_utf16_without_bom_is_text(tmp_path: Path) -> None:
    path = tmp_path / "export.txt"
    path.write_bytes("q\ta\r\nx\ty\r\n".encode("utf-16-be"))
    assert sniff(path) == "tsv"


def test_report_md_lists_the_file_level_warnings(tmp_path: Path) -> None:
    path = unicode_text(tmp_path / "export.txt")
    run_config(tmp_path, {"input": {"paths": [str(path)]}, "stages": []})
    md = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    inputs = md[md.index("## Inputs") :]
    assert "`format_from_content`: the extension '.txt' names no format" in inputs
