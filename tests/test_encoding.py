"""Encoding detection: BOMs, streamed strict UTF-8, chardet fallback, overrides, failures."""

from __future__ import annotations

import codecs
import random
from pathlib import Path

import pytest

from pipeline.errors import PipelineError
from pipeline.read import encoding
from pipeline.read.encoding import Detected, detect, first_bad_byte, open_text
from tests.conftest import corpus_file

SAMPLES = Path(__file__).resolve().parents[1] / "sample_data"

ZH = "你好，今天天气很好。周末你打算做什么？我要和朋友一起去看电影。这是一个测试文件。\n"



def write(tmp_path: Path, data: bytes, name: str = "f.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def read_back(path: Path, det: Detected) -> str:
    with open_text(path, det) as f:
        return f.read()


# --- BOMs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bom", "codec", "expected"),
    [
        (codecs.BOM_UTF8, "utf-8", "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be", "utf-16-be"),
        (codecs.BOM_UTF32_LE, "utf-32-le", "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be", "utf-32-be"),
    ],
)
def test_bom_decides_and_is_removed(tmp_path: Path, bom: bytes, codec: str, expected: str) -> None:
    text = "question,answer\r\n你好,héllo\r\n"
    path = write(tmp_path, bom + text.encode(codec))
    det = detect(path)
    assert det == Detected(expected, len(bom), True, 1.0)
    assert read_back(path, det) == text


def test_bom_only_file_is_empty_text(tmp_path: Path) -> None:
    path = write(tmp_path, codecs.BOM_UTF8)
    det = detect(path)
    assert det.bom_removed and det.encoding == "utf-8"
    assert read_back(path, det) == ""


def test_utf8_bom_with_invalid_body_fails(tmp_path: Path) -> None:
    path = write(tmp_path, codecs.BOM_UTF8 + b"ok\n\xff\n")
    with pytest.raises(PipelineError, match=r"byte offset 6") as err:
        detect(path)
    assert "input.encoding" in str(err.value)


# --- UTF-8 and ASCII --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", b"plain ascii\n", b"a,b\r\n1,2\r\n", "naïve café ✓ 😀 你好\n".encode()],
    ids=["empty", "ascii", "ascii-crlf", "multibyte"],
)
def test_valid_utf8_and_ascii_are_utf8(tmp_path: Path, data: bytes) -> None:
    det = detect(write(tmp_path, data))
    assert det == Detected("utf-8", 0, False, 1.0)


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 64])
def test_utf8_check_streams_across_chunk_boundaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(encoding, "CHUNK_SIZE", chunk)
    text = "€uro 你好 😀 done\n" * 3
    path = write(tmp_path, text.encode())
    det = detect(path)
    assert det.encoding == "utf-8"
    assert read_back(path, det) == text


@pytest.mark.parametrize("chunk", [1, 2, 3, 4, 1 << 20])
@pytest.mark.parametrize(
    ("data", "offset"),
    [
        (b"abc\xffdef", 3),
        (b"\xff", 0),
        ("中".encode() + b"\xe4x", 3),  # lead byte followed by a non-continuation byte
        (b"ab" + "中".encode()[:2], 2),  # truncated at end of file
        ("ü".encode() * 10 + b"\x80", 20),
    ],
)
def test_first_bad_byte_offset_is_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int, data: bytes, offset: int
) -> None:
    monkeypatch.setattr(encoding, "CHUNK_SIZE", chunk)
    bad = first_bad_byte(write(tmp_path, data), "utf-8")
    assert bad is not None
    assert bad[0] == offset


def test_first_bad_byte_none_when_valid(tmp_path: Path) -> None:
    assert first_bad_byte(write(tmp_path, ZH.encode("gbk")), "gb18030") is None


def test_first_bad_byte_respects_start(tmp_path: Path) -> None:
    path = write(tmp_path, codecs.BOM_UTF16_LE + "ab".encode("utf-16-le") + b"\x00\xd8")
    assert first_bad_byte(path, "utf-16-le", 2) == (6, "unexpected end of data")


# --- chardet fallback ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codec", "text"),
    [
        ("gbk", ZH * 5),
        ("gb18030", ZH * 5),
        ("big5", "你好，今天天氣很好。週末你打算做什麼？我要和朋友一起去看電影。\n" * 5),
        ("shift_jis", "こんにちは。今日はとても良い天気ですね。週末は何をする予定ですか？\n" * 5),
        ("euc-kr", "안녕하세요. 오늘 날씨가 정말 좋네요. 주말에 무엇을 하실 건가요?\n" * 5),
        ("cp1251", "Привет, как дела? Сегодня хорошая погода. Что вы будете делать?\n" * 5),
        ("cp1252", "Le café était fermé, alors nous sommes allés à la crêperie près d'ici.\n" * 5),
    ],
)
def test_legacy_encodings_decode_to_the_original_text(
    tmp_path: Path, codec: str, text: str
) -> None:
    path = write(tmp_path, text.encode(codec))
    det = detect(path)
    assert det.bom_len == 0 and not det.bom_removed
    assert 0.0 < det.confidence <= 1.0
    assert read_back(path, det) == text


@pytest.mark.parametrize("codec", ["gbk", "gb2312", "gb18030"])
def test_chinese_gb_family_reported_as_gb18030(tmp_path: Path, codec: str) -> None:
    det = detect(write(tmp_path, (ZH * 20).encode(codec)))
    assert det.encoding == "gb18030"


def test_chardet_samples_near_the_first_bad_byte_not_the_file_start(tmp_path: Path) -> None:
    # 300 KB of ASCII first: chardet's default window (200,000 bytes) would see only ASCII.
    text = "id,text\n" + "1,plain ascii line for padding\n" * 10_000 + "2," + ZH * 40
    data = text.encode("gbk")
    assert data.index(ZH.encode("gbk")[:2]) > 300_000
    path = write(tmp_path, data)
    det = detect(path)
    assert det.encoding == "gb18030"
    assert read_back(path, det) == text


def test_gb18030_four_byte_sequences_decode(tmp_path: Path) -> None:
    text = ZH * 10 + "€ 𠀀 ㄅ\n"  # euro sign and an ideograph outside the BMP: 4-byte in GB18030
    path = write(tmp_path, text.encode("gb18030"))
    det = detect(path)
    assert det.encoding == "gb18030"
    assert read_back(path, det) == text


# --- overrides -------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "canonical"), [("gbk", "gbk"), ("GBK", "gbk"), ("cp936", "gbk")])
def test_override_skips_detection(tmp_path: Path, name: str, canonical: str) -> None:
    path = write(tmp_path, ZH.encode("gbk"))
    det = detect(path, name)
    assert det == Detected(canonical, 0, False, 1.0)
    assert read_back(path, det) == ZH


def test_override_latin1_decodes_anything(tmp_path: Path) -> None:
    data = bytes(range(256))
    det = detect(write(tmp_path, data), "latin-1")
    assert det.encoding == "iso8859-1"
    assert det.confidence == 1.0


@pytest.mark.parametrize("override", ["auto", "AUTO"])
def test_auto_override_detects(tmp_path: Path, override: str) -> None:
    assert detect(write(tmp_path, b"abc"), override).encoding == "utf-8"


def test_unknown_override_names_the_bad_name(tmp_path: Path) -> None:
    path = write(tmp_path, b"abc")
    with pytest.raises(PipelineError, match="no-such-codec") as err:
        detect(path, "no-such-codec")
    assert "input.encoding" in str(err.value)


def test_wrong_override_fails_with_offset(tmp_path: Path) -> None:
    path = write(tmp_path, b"ascii first\n" + ZH.encode("gbk"))
    with pytest.raises(PipelineError, match=r"byte offset 12\b"):
        detect(path, "utf-8")


@pytest.mark.parametrize("override", ["utf-8", "utf8", "utf-8-sig"])
def test_utf8_override_still_removes_a_utf8_bom(tmp_path: Path, override: str) -> None:
    path = write(tmp_path, codecs.BOM_UTF8 + b"Question\tAnswer\n")
    det = detect(path, override)
    assert det.encoding == "utf-8" and det.bom_len == 3 and det.bom_removed
    assert read_back(path, det) == "Question\tAnswer\n"


@pytest.mark.parametrize(
    ("bom", "codec", "override", "expected"),
    [
        (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16", "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be", "utf-16", "utf-16-be"),
        (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16-le", "utf-16-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be", "utf-32", "utf-32-be"),
    ],
)
def test_utf16_32_override_takes_byte_order_from_the_bom(
    tmp_path: Path, bom: bytes, codec: str, override: str, expected: str
) -> None:
    path = write(tmp_path, bom + "q\ta\n问\t答\n".encode(codec))
    det = detect(path, override)
    assert det == Detected(expected, len(bom), True, 1.0)
    assert read_back(path, det) == "q\ta\n问\t答\n"


def test_override_without_matching_bom_keeps_the_bytes(tmp_path: Path) -> None:
    path = write(tmp_path, codecs.BOM_UTF8 + b"abc")
    det = detect(path, "latin-1")
    assert det.bom_len == 0 and not det.bom_removed
    assert read_back(path, det) == "\xef\xbb\xbfabc"


# --- undecodable files -------------------------------------------------------------------------


def test_random_bytes_fail_with_offset_and_hint(tmp_path: Path) -> None:
    data = random.Random(1234).randbytes(50_000)
    path = write(tmp_path, data, "noise.csv")
    try:
        data.decode("utf-8")
        first = -1
    except UnicodeDecodeError as e:
        first = e.start
    with pytest.raises(PipelineError) as err:
        detect(path)
    message = str(err.value)
    assert str(path) in message
    assert f"byte offset {first}" in message
    assert "input.encoding" in message


def test_detected_encoding_that_fails_later_is_reported(tmp_path: Path) -> None:
    # GBK text, then bytes no GB encoding allows, beyond chardet's 200,000-byte sample.
    good = (ZH * 3500).encode("gbk")
    assert len(good) > 250_000
    path = write(tmp_path, good + b"\xff\xff\n", "late.csv")
    with pytest.raises(PipelineError) as err:
        detect(path)
    message = str(err.value)
    assert "gb18030" in message
    assert f"byte offset {len(good)}" in message
    assert "input.encoding" in message


def test_missing_file_is_a_pipeline_error(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"missing\.csv"):
        detect(tmp_path / "missing.csv")


# --- open_text -------------------------------------------------------------------------------


def test_open_text_keeps_line_endings(tmp_path: Path) -> None:
    path = write(tmp_path, b"a\r\nb\rc\n")
    with open_text(path, detect(path)) as f:
        assert f.read() == "a\r\nb\rc\n"


def test_open_text_is_strict(tmp_path: Path) -> None:
    path = write(tmp_path, b"ok \xff")
    with open_text(path, Detected("utf-8")) as f, pytest.raises(UnicodeDecodeError):
        f.read()


# --- sample data and corpus --------------------------------------------------------------------


def test_sample_gbk_csv_is_detected() -> None:
    det = detect(SAMPLES / "faq_gbk.csv")
    assert det.encoding == "gb18030"
    assert "如何除水垢" in read_back(SAMPLES / "faq_gbk.csv", det)


def test_sample_bom_tsv_is_detected() -> None:
    det = detect(SAMPLES / "faq_bom.tsv")
    assert det == Detected("utf-8", 3, True, 1.0)


@pytest.mark.corpus
def test_corpus_gbk_medical_csv_is_gb18030() -> None:
    path = corpus_file("messy/chinese_medical_dialogue_IM_sample_gb18030.csv")
    assert first_bad_byte(path, "utf-8") == (28, "invalid continuation byte")
    det = detect(path)
    assert det.encoding == "gb18030"
    assert det.confidence >= 0.9
    assert not det.bom_removed
    with open_text(path, det) as f:
        head = f.read(200)
    assert head.startswith("department,title,ask,answer\n心血管科,高血压患者能吃党参吗？,")


@pytest.mark.corpus
@pytest.mark.parametrize(
    "rel", ["messy/botbuilder_smartLightFAQ_bom.tsv", "messy/songys_kor_Pair_test_bom.csv"]
)
def test_corpus_bom_files(rel: str) -> None:
    assert detect(corpus_file(rel)) == Detected("utf-8", 3, True, 1.0)


@pytest.mark.corpus
@pytest.mark.parametrize(
    "rel",
    [
        "messy/aoai_classification_bulk_test.tsv",
        "messy/aoai_synthetic_data_topic_classifier.csv",
        "messy/awesome_chatgpt_prompts_2025-12-16.csv",
        "messy/botbuilder_SampleForCQA.tsv",
        "messy/songys_ChatbotData_ko_crlf.csv",
        "chinese/alpaca_zh_code_questions_mixed_keys.json",
        "english/alpaca_data_0-3252_en.json",
    ],
)
def test_corpus_utf8_files(rel: str) -> None:
    assert detect(corpus_file(rel)) == Detected("utf-8", 0, False, 1.0)


# --- low confidence ----------------------------------------------------------------------------

LATIN1 = "prompt,completion\n" + "".join(
    f"Où est la gare n°{i} ?,À droite après le café « Chez Zoë » à {i} minutes à pied.\n"
    for i in range(1, 9)
)


class Warned:
    def __init__(self) -> None:
        self.warnings: list[tuple[str, str]] = []

    def warn(self, code: str, message: str) -> None:
        self.warnings.append((code, message))


def test_a_low_confidence_guess_warns_with_the_guess_a_sample_and_the_setting(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, LATIN1.encode("latin-1"), "fr.csv")
    det = detect(path)
    assert det.confidence < encoding.LOW_CONFIDENCE  # a short file: chardet is unsure
    seen = Warned()
    encoding.note_confidence(path, det, seen)
    ((code, message),) = seen.warnings
    assert code == "encoding_uncertain"
    assert f"guessed as {det.encoding} with confidence {det.confidence:.2f}" in message
    # the sample is the first line with non-ASCII text, as the guess decodes it: a person
    # sees at once whether it reads right
    line = LATIN1.splitlines()[1].encode("latin-1").decode(det.encoding)
    assert f"check this decoded sample: {line!r}" in message
    assert "`input.encoding: <name>`" in message and f"`input.encoding: {det.encoding}`" in message
    # the setting it names decodes the text right, with no warning
    fixed = detect(path, "latin-1")
    assert read_back(path, fixed) == LATIN1
    quiet = Warned()
    encoding.note_confidence(path, fixed, quiet)
    assert quiet.warnings == []


def test_no_warning_for_a_bom_utf8_or_an_override(tmp_path: Path) -> None:
    seen = Warned()
    for data, override in (
        (LATIN1.encode("utf-8"), "auto"),
        (codecs.BOM_UTF16_LE + LATIN1.encode("utf-16-le"), "auto"),
        (LATIN1.encode("latin-1"), "latin-1"),
    ):
        path = write(tmp_path, data, "x.csv")
        encoding.note_confidence(path, detect(path, override), seen)
    assert seen.warnings == []


def test_a_low_confidence_file_runs_with_the_warning_in_the_report(tmp_path: Path) -> None:
    from tests.conftest import read_jsonl, run_config

    path = write(tmp_path, LATIN1.encode("latin-1"), "fr.csv")
    split = [{"name": "split", "validation": 0.0}]
    report = run_config(tmp_path, {"input": {"paths": [str(path)]}, "stages": split})
    inp = report["inputs"][0]
    assert inp["confidence"] < encoding.LOW_CONFIDENCE
    (warning,) = inp["warnings"]
    assert warning["code"] == "encoding_uncertain"
    assert f"guessed as {inp['encoding']} with confidence {inp['confidence']:.2f}" in warning[
        "message"
    ]
    assert report["totals"]["rows_in"] == 8
    report = run_config(
        tmp_path, {"input": {"paths": [str(path)], "encoding": "latin-1"}, "stages": split}, "o2"
    )
    assert report["inputs"][0]["warnings"] == [] and report["totals"]["rows_in"] == 8
    train = read_jsonl(tmp_path / "o2" / "train.jsonl")
    assert "Où est la gare n°1 ?" in {r["prompt"] for r in train}


@pytest.mark.corpus
def test_corpus_legacy_file_is_confident() -> None:
    path = corpus_file("messy/chinese_medical_dialogue_IM_sample_gb18030.csv")
    assert detect(path).confidence >= encoding.LOW_CONFIDENCE


def test_check_puts_a_file_level_warning_in_its_verdict_not_on_stderr(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from pipeline.cli import main

    path = write(tmp_path, LATIN1.encode("latin-1"), "fr.csv")
    target = "openai:gpt-4o-mini-2024-07-18"
    result = CliRunner().invoke(main, ["check", str(path), "--target", target, "--format", "json"])
    assert result.exit_code == 1  # a CSV is not an upload file: file_not_jsonl
    verdict = json.loads(result.stdout)
    assert verdict["codes"]["encoding_uncertain"]["level"] == "warning"
    (problem,) = [p for p in verdict["files"][0]["problems"] if p["code"] == "encoding_uncertain"]
    assert "`ftprep convert --encoding <name>`" in problem["message"]
    assert "encoding_uncertain" not in result.stderr  # said once, in the verdict


def test_convert_encoding_and_header_options_read_a_headerless_legacy_file(
    tmp_path: Path,
) -> None:
    from click.testing import CliRunner

    from pipeline.cli import main
    from tests.conftest import read_jsonl

    rows = LATIN1.splitlines()[1:]  # no header row
    path = write(tmp_path, ("\n".join(rows) + "\n").encode("cp1252"), "fr.csv")
    out = tmp_path / "out"
    args = ["convert", str(path), "--to", "chat", "--out", str(out)]
    args += ["--columns", "prompt=column_1,completion=column_2"]
    result = CliRunner().invoke(main, [*args, "--encoding", "cp1252", "--header", "false"])
    assert result.exit_code == 0, result.output
    written = read_jsonl(out / "fr.jsonl")
    assert len(written) == len(rows)  # row 1 is a record, not a header
    first_q, first_a = rows[0].split(",")
    assert [m["content"] for m in written[0]["messages"]] == [first_q, first_a]
    bad = CliRunner().invoke(main, [*args, "--encoding", "nosuch"])
    assert bad.exit_code == 2
    assert "--encoding" in bad.output and "'nosuch' is not a known text encoding" in bad.output
    assert "Traceback" not in bad.output
