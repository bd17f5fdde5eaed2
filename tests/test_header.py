"""Header detection (`input.header`): row 1 against the rows below, in CSV, TSV and sheets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from pipeline.read import read_rows
from pipeline.read.base import ReadOptions, ReadStats
from pipeline.read.header import guess_header
from tests.conftest import corpus_file, read_jsonl, run_config

QA = [
    ("¿Qué es una función lambda en Python?", "Una función anónima que se escribe en una línea."),
    ("¿Cómo se abre un fichero en modo lectura?", "Con open(nombre, 'r'), mejor dentro de un with."),
    ("¿Qué diferencia hay entre lista y tupla?", "La lista se puede cambiar; la tupla, no."),
    ("¿Para qué sirve el módulo csv?", "Para leer y escribir texto separado por comas."),
    ("¿Qué devuelve len() con un diccionario?", "El número de claves que contiene el diccionario."),
    ("¿Cómo se ordena una lista al revés?", "Con sorted(lista, reverse=True) o lista.sort()."),
]


def read(path: Path, fmt: str = "csv", **opts: Any) -> tuple[list[Any], ReadStats]:
    stats = ReadStats()
    rows = list(read_rows(path, fmt, ReadOptions(**opts), stats))
    return rows, stats


def codes(stats: ReadStats) -> list[str]:
    return [w["code"] for w in stats.warnings]


def message(stats: ReadStats, code: str) -> str:
    return next(w["message"] for w in stats.warnings if w["code"] == code)


# --- the heuristic ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "below", "header", "firm"),
    [
        # names over long text
        (["pregunta", "respuesta"], [list(r) for r in QA], True, True),
        # the same rows without their header
        (list(QA[0]), [list(r) for r in QA[1:]], False, True),
        # a text name over numbers; a number over numbers
        (["id", "score"], [[str(i), f"{i / 3:.2f}"] for i in range(1, 9)], True, True),
        (["7", "0.50"], [[str(i), f"{i / 3:.2f}"] for i in range(1, 9)], False, True),
        # names in other languages, over short text
        (["질문", "답변"], [["안녕", "네"], ["뭐해", "공부"]], True, True),
        (["Frage", "Antwort"], [["Wie?", "So."], ["Wo?", "Hier."]], True, True),
        (["soru", "cevap"], [["Nasıl?", "İyi."], ["Ne?", "Bu."]], True, True),
        # a label repeated below row 1 is data
        (
            ["sports", "Who won the 2022 World Cup final in Qatar?"],
            [["sports", "Which team has the most NBA titles so far?"]] * 3
            + [["music", "Who wrote the opera The Magic Flute in 1791?"]] * 3,
            False,
            True,
        ),
        # nothing below: a header, not firmly
        (["a", "b"], [], True, False),
    ],
)
def test_guess_header(first: list[str], below: list[list[str]], header: bool, firm: bool) -> None:
    guess = guess_header(first, below)
    assert (guess.header, guess.firm) == (header, firm), guess.why


# --- CSV -------------------------------------------------------------------------------------


def test_headerless_csv_in_a_legacy_encoding_keeps_its_first_row(tmp_path: Path) -> None:
    path = tmp_path / "faq.csv"
    path.write_bytes("".join(f'"{q}","{a}"\r\n' for q, a in QA).encode("cp1252"))
    rows, stats = read(path)
    assert stats.encoding in ("cp1252", "latin-1", "iso8859-1", "iso8859-15", "cp1250")
    assert stats.header is False and stats.header_from == "detected"
    assert stats.columns == ["column_1", "column_2"]
    assert [r.record for r in rows] == [{"column_1": q, "column_2": a} for q, a in QA]
    assert [r.line for r in rows] == [1, 2, 3, 4, 5, 6]
    # a short legacy file: its encoding is a guess too, and both are said
    assert codes(stats) == ["encoding_uncertain", "header_guessed"]
    assert "input.header: true" in message(stats, "header_guessed")
    assert "¿Qué es una función lambda" in message(stats, "header_guessed")


def test_headerless_csv_runs_end_to_end_with_every_row_and_the_report_says_so(
    tmp_path: Path,
) -> None:
    path = tmp_path / "faq.csv"
    path.write_bytes("".join(f'"{q}","{a}"\n' for q, a in QA).encode("cp1252"))
    report = run_config(
        tmp_path,
        {
            "input": {
                "paths": [str(path)],
                "columns": {"prompt": "column_1", "completion": "column_2"},
            },
            "stages": [{"name": "split", "validation": 0.0}],
        },
    )
    assert report["totals"]["rows_in"] == len(QA)
    inp = report["inputs"][0]
    assert (inp["header"], inp["header_from"]) == (False, "detected")
    assert "header_guessed" in [w["code"] for w in inp["warnings"]]
    train = read_jsonl(tmp_path / "out" / "train.jsonl")
    assert sorted((r["prompt"], r["completion"]) for r in train) == sorted(QA)


def test_header_true_on_data_warns_and_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "faq.csv"
    path.write_text("".join(f'"{q}","{a}"\n' for q, a in QA), encoding="utf-8")
    rows, stats = read(path, header=True)
    assert len(rows) == len(QA) - 1  # as asked: row 1 is the header ...
    assert stats.header is True and stats.header_from == "config"
    assert codes(stats) == ["header_mismatch"]  # ... but not silently
    assert "input.header: false" in stats.warnings[0]["message"]


def test_header_false_reads_row_1_as_a_record_and_warns_when_it_looks_like_names(
    tmp_path: Path,
) -> None:
    path = tmp_path / "faq.csv"
    path.write_text("question,answer\n" + "".join(f'"{q}","{a}"\n' for q, a in QA), "utf-8")
    rows, stats = read(path, header=False)
    assert rows[0].record == {"column_1": "question", "column_2": "answer"}
    assert len(rows) == len(QA) + 1
    assert codes(stats) == ["header_mismatch"]
    assert "input.header: true" in stats.warnings[0]["message"]
    rows, stats = read(path)  # auto: a header, firmly, no warning
    assert len(rows) == len(QA) and stats.header is True and stats.warnings == []


def test_an_unsure_header_warns(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text("apple,red\nbanana,yellow\nplum,blue\n", encoding="utf-8")
    rows, stats = read(path)
    assert stats.header is True and len(rows) == 2
    assert codes(stats) == ["header_guessed"]
    assert "input.header: false" in stats.warnings[0]["message"]
    assert "apple | red" in stats.warnings[0]["message"]


def test_headerless_tsv_with_a_ragged_row(tmp_path: Path) -> None:
    path = tmp_path / "faq.tsv"
    body = "".join(f"{q}\t{a}\n" for q, a in QA) + "solo una columna\n"
    path.write_text(body, encoding="utf-8")
    rows, stats = read(path, "tsv")
    assert stats.header is False
    assert [r.reason for r in rows] == [None] * len(QA) + ["row_malformed"]


# --- sheets ----------------------------------------------------------------------------------


def test_headerless_xlsx(tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    for i, (q, a) in enumerate(QA, start=1):
        ws.append([q, a, i])
    path = tmp_path / "faq.xlsx"
    wb.save(path)
    rows, stats = read(path, "xlsx")
    assert stats.header is False and codes(stats) == ["header_guessed"]
    assert rows[0].record == {"column_1": QA[0][0], "column_2": QA[0][1], "column_3": "1"}
    assert [r.line for r in rows] == list(range(1, len(QA) + 1))
    rows, stats = read(path, "xlsx", header=True)
    assert len(rows) == len(QA) - 1 and codes(stats) == ["header_mismatch"]


# --- the corpus: no false decision -----------------------------------------------------------


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("rel", "fmt"),
    [
        ("messy/awesome_chatgpt_prompts_2025-12-16.csv", "csv"),
        ("messy/aoai_synthetic_data_topic_classifier.csv", "csv"),
        ("messy/chinese_medical_dialogue_IM_sample_gb18030.csv", "csv"),
        ("messy/songys_ChatbotData_ko_crlf.csv", "csv"),
        ("messy/songys_kor_Pair_test_bom.csv", "csv"),
        ("messy/botbuilder_SampleForCQA.tsv", "tsv"),
        ("messy/botbuilder_smartLightFAQ_bom.tsv", "tsv"),
        ("messy/aoai_classification_bulk_test.tsv", "tsv"),
        ("messy/aoai_generated_labels_context_switching.xlsx", "xlsx"),
        ("messy/doc_chat_on_wechat_qa_zh.xlsx", "xlsx"),
    ],
)
def test_corpus_headers_are_found_and_their_absence_too(rel: str, fmt: str) -> None:
    path = corpus_file(rel)
    rows, stats = read(path, fmt)
    assert stats.header is True and stats.warnings == []
    names = stats.columns
    table = [[str(r.record[n]) for n in names] for r in rows[:60] if r.record is not None]
    with_header = guess_header(names, table[:50])
    without = guess_header(table[0], table[1:51])  # the same file, its header row cut off
    assert with_header.header and with_header.firm, with_header.why
    assert not without.header, without.why
