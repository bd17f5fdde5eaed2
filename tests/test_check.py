"""`ftprep check`: file, record and dataset problems in one pass, and the exit codes."""

from __future__ import annotations

from pathlib import Path

import orjson
from click.testing import CliRunner

from pipeline.checks import check_files
from pipeline.cli import main
from tests.conftest import corpus_file

MINI = "openai:gpt-4o-mini-2024-07-18"


def chat(i: int) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}


def write(path: Path, rows: list[dict[str, object]], head: bytes = b"") -> Path:
    path.write_bytes(head + b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def test_clean_file_passes(tmp_path: Path) -> None:
    f = write(tmp_path / "ok.jsonl", [chat(i) for i in range(12)])
    result = CliRunner().invoke(main, ["check", str(f), "--target", MINI])
    assert result.exit_code == 0, result.output
    assert f"{f}: 12 records, 0 errors, 0 warnings for {MINI}" in result.output


def test_every_problem_in_one_pass(tmp_path: Path) -> None:
    rows = [chat(i) for i in range(12)]
    rows[3] = {"messages": [{"role": "user", "content": "q"}]}  # no assistant
    rows[7] = {"messages": [{"role": "developer", "content": "x"}, *chat(7)["messages"]]}
    f = write(tmp_path / "bad.jsonl", rows, head=b"\xef\xbb\xbf")
    (v,) = check_files([str(f)], MINI)
    found = [(p.level, p.code, p.line) for p in v.problems]
    assert ("error", "file_bom", 1) in found
    assert ("error", "assistant_missing", 4) in found
    assert ("error", "role_unknown", 8) in found
    result = CliRunner().invoke(main, ["check", str(f), "--target", MINI])
    assert result.exit_code == 1
    assert f"{f}:4: error assistant_missing: messages:" in result.output


def test_toy_file_over_the_old_models_limit(tmp_path: Path) -> None:
    path = corpus_file("openai_format/toy_chat_fine_tuning.jsonl")
    (v,) = check_files([str(path)], "openai:gpt-3.5-turbo-0613")
    codes = {(p.code, p.line) for p in v.problems}
    assert ("too_many_tokens", 5) in codes  # 8,032 tokens against 4,096
    assert ("user_missing", 4) in codes
    assert ("too_few_examples", None) in codes
    (v,) = check_files([str(path)], MINI)
    assert ("too_many_tokens", 5) not in {(p.code, p.line) for p in v.problems}


def test_sharegpt_json_is_not_an_upload_file(tmp_path: Path) -> None:
    path = corpus_file("sharegpt/fastchat_dummy_conversation.json")
    (v,) = check_files([str(path)], MINI)
    assert {p.code for p in v.problems if p.line is None} >= {"file_not_jsonl", "file_shape"}
    assert "ftprep convert" in next(p.message for p in v.problems if p.code == "file_shape")


def test_warnings_fail_only_with_strict_and_json_output(tmp_path: Path) -> None:
    rows = [chat(i) for i in range(12)]
    rows[0] = {"messages": [{"role": "assistant", "content": "no question"}]}
    f = write(tmp_path / "w.jsonl", rows)
    assert CliRunner().invoke(main, ["check", str(f), "--target", MINI]).exit_code == 0
    result = CliRunner().invoke(main, ["check", str(f), "--target", MINI, "--strict", "--json"])
    assert result.exit_code == 1
    (verdict,) = orjson.loads(result.output)["files"]
    assert verdict["warnings"] == 1 and verdict["problems"][0]["code"] == "user_missing"


def test_unreadable_file_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "x.csv"
    bad.write_text("id,a1,a2\n1,x,y\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["check", str(bad), "--target", MINI])
    assert result.exit_code == 2 and "error file_unreadable" in result.output


def test_unknown_target_exits_2(tmp_path: Path) -> None:
    f = write(tmp_path / "ok.jsonl", [chat(0)])
    result = CliRunner().invoke(main, ["check", str(f), "--target", "openai:gpt-4o-mini"])
    assert result.exit_code == 2 and "did you mean" in result.output


VISION = "openai:gpt-4o-2024-08-06"


def vision(url: str, detail: str = "high") -> dict[str, object]:
    image = {"type": "image_url", "image_url": {"url": url, "detail": detail}}
    return {"messages": [{"role": "user", "content": [{"type": "text", "text": "What?"}, image]},
                         {"role": "assistant", "content": "A cat."}]}


def test_check_warns_once_when_images_count_at_the_minimum(tmp_path: Path) -> None:
    from tests.test_tokens import png_data_url

    url = "https://example.com/cat.png"  # not fetched: high detail counts base + one tile
    a = write(tmp_path / "a.jsonl", [vision(url), vision(url, "low"), vision(png_data_url(64, 64))]
              + [chat(i) for i in range(10)])
    b = write(tmp_path / "b.jsonl", [vision(url), vision(url)] + [chat(i) for i in range(10)])
    result = CliRunner().invoke(main, ["check", str(a), str(b), "--target", VISION, "--json"])
    assert result.exit_code == 0, result.output
    doc = orjson.loads(result.stdout)
    # low detail is exact (85 "regardless of its size"), a data URL's size is read: only the
    # high-detail URLs are at the minimum
    assert [f["images_at_minimum"] for f in doc["files"]] == [1, 2]
    assert doc["summary"]["images_at_minimum"] == 3
    assert result.stderr.count("warning:") == 1, result.stderr  # once, not per file
    assert "3 image(s) count at the documented minimum" in result.stderr
    assert "lower bound" in result.stderr
    summary = tmp_path / "summary.md"
    CliRunner().invoke(main, ["check", str(a), str(b), "--target", VISION, "--summary",
                              str(summary)])
    assert "3 image(s) count at the documented minimum" in summary.read_text(encoding="utf-8")
    # the pipeline's own loop (any format) finds the same
    for streamed, looped in zip(check_files([str(a), str(b)], VISION),
                                check_files([str(a), str(b)], VISION, stream=False), strict=True):
        assert streamed.images_at_minimum == looped.images_at_minimum


def test_check_says_nothing_of_images_when_counts_are_exact(tmp_path: Path) -> None:
    from tests.test_tokens import png_data_url

    f = write(tmp_path / "a.jsonl", [vision(png_data_url(512, 512))] + [chat(i) for i in range(10)])
    result = CliRunner().invoke(main, ["check", str(f), "--target", VISION])
    assert result.exit_code == 0 and "warning:" not in result.stderr, result.output
    # a target without a per-example limit holds no count to one: nothing to warn about
    result = CliRunner().invoke(main, ["check", str(f), "--target", "together", "--json"])
    assert orjson.loads(result.stdout)["summary"]["images_at_minimum"] == 0
    assert "warning:" not in result.stderr
