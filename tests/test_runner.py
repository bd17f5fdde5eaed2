"""The runner: nothing lost, deterministic, atomic, streamed JSONL byte ranges."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import PipelineError
from pipeline.read.jsonl import plan_ranges, read_range
from pipeline.write.jsonl import dumps_lenient
from tests.conftest import read_jsonl, run_config, run_two_ways

STAGES = [{"name": "normalize_text"}, {"name": "require_fields"}]


def test_bad_line_blank_line_and_no_trailing_newline(tmp_path: Path) -> None:
    src = tmp_path / "data.jsonl"
    src.write_bytes(
        b'{"prompt": "p1", "completion": "c1"}\n'
        b"\n"
        b'{"prompt": "p2", "completion": \n'
        b'{"prompt": "p3", "completion": "c3"}\n'
        b'{"prompt": "p4", "completion": "c4"}'
    )
    report = run_config(tmp_path, {"input": {"paths": [str(src)]}, "stages": STAGES})
    train = read_jsonl(tmp_path / "out" / "train.jsonl")
    rejected = read_jsonl(tmp_path / "out" / "rejected.jsonl")
    assert [r["prompt"] for r in train] == ["p1", "p3", "p4"]
    assert len(rejected) == 1
    bad = rejected[0]
    assert (bad["source"], bad["line"], bad["stage"], bad["reason"]) == (
        str(src), 3, "read", "json_invalid"
    )
    assert bad["record"] == '{"prompt": "p2", "completion": '
    assert "column" in bad["message"]
    assert report["inputs"][0]["blank_lines"] == 1
    assert report["totals"] == {"rows_in": 4, "train": 3, "validation": 0, "rejected": 1}
    assert report["identity"]["holds"] is True


def test_outputs_are_utf8_lf_without_slash_escapes(tmp_path: Path) -> None:
    src = tmp_path / "d.jsonl"
    src.write_text('{"prompt": "a/b 中文", "completion": "é"}\r\n', encoding="utf-8")
    run_config(tmp_path, {"input": {"paths": [str(src)]}})
    raw = (tmp_path / "out" / "train.jsonl").read_bytes()
    assert raw == '{"prompt":"a/b 中文","completion":"é"}\n'.encode()


def test_stage_rejects_keep_source_order_and_original_record(tmp_path: Path) -> None:
    src = tmp_path / "d.jsonl"
    rows = [{"prompt": f"p{i}", "completion": "" if i % 3 == 0 else f"c{i}"} for i in range(10)]
    src.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    run_config(tmp_path, {"input": {"paths": [str(src)]}, "stages": STAGES})
    rejected = read_jsonl(tmp_path / "out" / "rejected.jsonl")
    assert [r["line"] for r in rejected] == [1, 4, 7, 10]
    assert {r["reason"] for r in rejected} == {"field_empty"}
    assert rejected[0]["record"] == rows[0]


def test_a_duplicate_is_rejected_with_its_source_record_however_its_line_was_written(
    tmp_path: Path,
) -> None:
    """The spool keeps a JSON Lines record's own line as its original when orjson parses the
    line to the record, and writes the record again otherwise (an integer past 64 bits, which
    the reader parses exactly): rejected.jsonl is the same either way, and equals the source."""
    src = tmp_path / "d.jsonl"
    lines = [
        b'{"prompt": "p", "completion": "c", "id": 1}',
        b'{ "id" : 2 ,"completion":"c",  "prompt":"p", "s": "\\u00e9\\ud83d\\ude00\\/"}\r',
        b'{"prompt":"p","completion":"c","n":123456789012345678901234567890}',
        b'{"prompt":"p","completion":"c","f":1.0e2,"z":-0.0,"u":"\xc3\xa9"}',
    ]
    src.write_bytes(b"\n".join(lines) + b"\n")
    stages = [{"name": "dedupe"}]
    run_config(tmp_path, {"input": {"paths": [str(src)]}, "stages": stages})
    rejected = (tmp_path / "out" / "rejected.jsonl").read_bytes().splitlines()
    assert len(rejected) == 3
    import json

    for line, got in zip(lines[1:], rejected, strict=True):
        record = json.loads(got)["record"]
        assert record == json.loads(line)  # the big integer exactly too
        if b"1234567890123456789012" not in line:
            assert got.endswith(b',"record":' + dumps_lenient(record) + b"}")


def test_failed_run_keeps_previous_outputs_and_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "d.jsonl"
    src.write_bytes(b'{"prompt": "a", "completion": "b"}\n' * 5)
    run_config(tmp_path, {"input": {"paths": [str(src)]}})
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}

    import pipeline.runner as runner

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("killed in the middle of writing")

    monkeypatch.setattr(runner, "write_metrics", boom)
    src.write_bytes(b'{"prompt": "x", "completion": "y"}\n' * 7)
    with pytest.raises(RuntimeError):
        run_config(tmp_path, {"input": {"paths": [str(src)]}})
    after = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    assert after == before  # old outputs intact, no temporary folder left behind


def test_stale_validation_file_is_removed(tmp_path: Path) -> None:
    src = tmp_path / "d.jsonl"
    src.write_bytes(b'{"prompt": "a", "completion": "b"}\n')
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "validation.jsonl").write_text("old\n")
    run_config(tmp_path, {"input": {"paths": [str(src)]}})
    assert not (tmp_path / "out" / "validation.jsonl").exists()


def test_unmappable_columns_exit_with_a_suggested_block(tmp_path: Path) -> None:
    src = tmp_path / "pairs.csv"
    src.write_text("test_id,question1,question2\n1,a,b\n", encoding="utf-8")
    with pytest.raises(PipelineError) as info:
        run_config(tmp_path, {"input": {"paths": [str(src)]}})
    msg = str(info.value)
    assert str(src) in msg and "'question1'" in msg
    assert "columns:\n    prompt: question1\n    completion: question2" in msg


def test_configured_column_that_does_not_exist(tmp_path: Path) -> None:
    src = tmp_path / "qa.csv"
    src.write_text("ask,answer\nq,a\n", encoding="utf-8")
    with pytest.raises(PipelineError, match=r"input.columns.prompt: no column or key 'question'"):
        run_config(
            tmp_path,
            {"input": {"paths": [str(src)], "columns": {"prompt": "question", "completion": "answer"}}},
        )


def test_missing_input_is_a_pipeline_error(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="no such file"):
        run_config(tmp_path, {"input": {"paths": [str(tmp_path / "nope.jsonl")]}})
    with pytest.raises(PipelineError, match="no file matches"):
        run_config(tmp_path, {"input": {"paths": [str(tmp_path / "*.jsonl")]}})


@pytest.mark.parametrize("chunk", [1, 7, 64, 10_000])
def test_byte_ranges_cover_every_line_once(tmp_path: Path, chunk: int) -> None:
    src = tmp_path / "d.jsonl"
    lines = [orjson.dumps({"i": i, "pad": "x" * (i % 13)}) for i in range(50)]
    src.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines))  # BOM, no trailing newline
    ranges = plan_ranges(src, 3, chunk)
    assert ranges[0][0] == 3 and ranges[-1][1] == src.stat().st_size
    seen = []
    for start, end, first in ranges:
        seen += [(row.line, row.record) for row in read_range(src, start, end, first) if row]
    assert seen == [(i + 1, orjson.loads(line)) for i, line in enumerate(lines)]


TEXT = st.characters(blacklist_categories=("Cs",))  # lone surrogates cannot be UTF-8
record = st.fixed_dictionaries(
    {
        "prompt": st.text(TEXT, min_size=0, max_size=12),
        "completion": st.text(TEXT, min_size=0, max_size=12),
    }
)
line_kind = st.one_of(
    record.map(orjson.dumps),
    st.just(b""),  # blank line
    st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=8).map(
        lambda t: ("{" + t).encode()
    ),  # not JSON
    st.just(b"[1, 2]"),  # JSON, not an object
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    lines=st.lists(line_kind, min_size=0, max_size=40),
    batch_sizes=st.tuples(st.integers(1, 7), st.integers(1, 50)),
    chunks=st.tuples(st.integers(1, 200), st.integers(1, 5000)),
    trailing_newline=st.booleans(),
)
def test_outputs_do_not_depend_on_batches_or_workers(
    tmp_path: Path,
    lines: list[bytes],
    batch_sizes: tuple[int, int],
    chunks: tuple[int, int],
    trailing_newline: bool,
) -> None:
    src = tmp_path / "d.jsonl"
    src.write_bytes(b"\n".join(lines) + (b"\n" if trailing_newline else b""))
    report = run_two_ways(
        tmp_path, {"input": {"paths": [str(src)], "format": "jsonl"}, "stages": STAGES},
        batch_sizes, chunks,
    )
    assert report["totals"]["rows_in"] == sum(1 for line in lines if line.strip())


def test_target_output_bom_and_shutdown_warning(tmp_path: Path) -> None:
    src = tmp_path / "d.jsonl"
    src.write_bytes(orjson.dumps({"messages": [{"role": "user", "content": "q"},
                                               {"role": "assistant", "content": "a"}]}) + b"\n")
    report = run_config(
        tmp_path, {"input": {"paths": [str(src)]}, "target": "azure:gpt-4o-mini-2024-07-18"}
    )
    assert (tmp_path / "out" / "train.jsonl").read_bytes().startswith(b"\xef\xbb\xbf{")
    assert report["target"]["bom"] is True
    report = run_config(
        tmp_path, {"input": {"paths": [str(src)]}, "target": "openai:gpt-3.5-turbo-0125"}, "o2"
    )
    assert not (tmp_path / "o2" / "train.jsonl").read_bytes().startswith(b"\xef\xbb\xbf")
    assert "2026-10-23" in report["target"]["shutdown_warning"]


def test_an_integer_past_64_bits_stays_exact() -> None:
    from pipeline.read.jsonl import parse_line

    row = parse_line(b'{"n": 123456789012345678901234567890}', 1)
    assert row is not None and row.record == {"n": 123456789012345678901234567890}
    row = parse_line(b'{"n": 1234567890123456789}', 1)  # 19 digits: orjson keeps it exact
    assert row is not None and row.record == {"n": 1234567890123456789}
