"""JSON arrays are streamed (ijson) and give exactly the rows the whole-file parse gives."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.errors import PipelineError
from pipeline.read import json_array
from pipeline.read.base import ReadOptions, ReadStats
from pipeline.read.encoding import detect


def _rows(path: Path) -> list[Any]:
    return list(json_array.read(path, ReadOptions(), ReadStats()))


def _whole(path: Path) -> list[Any]:
    opts = ReadOptions()
    return list(json_array._whole(path, detect(path, None, "reject"), opts, ReadStats()))


def _elements(n: int, seed: int) -> list[Any]:
    rng = random.Random(seed)
    out: list[Any] = []
    for i in range(n):
        r = rng.random()
        if r < 0.05:
            out.append(rng.choice([1, "text", None, [1, 2], 2.5, True]))
        else:
            out.append(
                {
                    "id": i,
                    "prompt": "".join(
                        rng.choice('ab 数据é\n"\\/') for _ in range(rng.randint(0, 20))
                    ),
                    "score": rng.random() * 10 ** rng.randint(-5, 5),
                    "nested": {"list": [1, {"x": None}], "flag": i % 2 == 0},
                }
            )
    return out


def test_streamed_rows_are_the_whole_parse_rows(tmp_path: Path, monkeypatch: Any) -> None:
    path = tmp_path / "a.json"
    path.write_bytes(orjson.dumps(_elements(3000, 1), option=orjson.OPT_INDENT_2))
    expected = _whole(path)

    def refuse(*_args: Any) -> Any:
        raise AssertionError("parsed whole")

    monkeypatch.setattr(json_array, "_whole", refuse)
    stats = ReadStats()
    got = list(json_array.read(path, ReadOptions(), stats))
    assert got == expected and len(got) == 3000
    assert stats.columns == ["id", "nested", "prompt", "score"]


@pytest.mark.parametrize(
    "wrapper", ['{{"version": 1, "data": {a}, "x": {{"k": []}}}}', '{{"a.b": {a}}}', "\ufeff{a}"]
)
def test_an_object_with_one_array_and_a_bom_are_streamed(
    tmp_path: Path, monkeypatch: Any, wrapper: str
) -> None:
    path = tmp_path / "a.json"
    array = orjson.dumps(_elements(200, 2)).decode()
    path.write_text(wrapper.format(a=array), encoding="utf-8")
    expected = _whole(path)
    monkeypatch.setattr(json_array, "_whole", None)  # any fall-back would fail
    assert _rows(path) == expected and len(expected) == 200


def test_what_the_stream_refuses_is_read_whole_without_repeating_rows(tmp_path: Path) -> None:
    elements = _elements(1500, 3)
    for late in (1200, 1400):  # after the column sample: rows were already handed out
        path = tmp_path / f"big{late}.json"
        items = [orjson.dumps(e).decode() for e in elements]
        items[late] = '{"id": 123456789012345678901234567890}'  # past 64 bits: exact
        path.write_text("[" + ",\n".join(items) + "]", encoding="utf-8")
        rows = _rows(path)
        assert [r.line for r in rows] == list(range(1500))
        assert rows[late].record == {"id": 123456789012345678901234567890}
    path = tmp_path / "pair.json"
    path.write_text('[{"a": 1}, {"e": "\\ud83d\\ude00"}]', encoding="utf-8")
    assert [r.record for r in _rows(path)] == [{"a": 1}, {"e": "😀"}]


def test_invalid_json_late_in_the_file_still_fails_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    items = [orjson.dumps(e).decode() for e in _elements(1500, 4)]
    items[1300] = '{"a" 1}'
    path.write_text("[\n" + ",\n".join(items) + "\n]", encoding="utf-8")
    with pytest.raises(PipelineError, match=r"invalid JSON at line 1302, column"):
        _rows(path)
    lone = tmp_path / "lone.json"
    lone.write_text('[{"a": "\\ud800"}]', encoding="utf-8")
    with pytest.raises(PipelineError, match="invalid JSON"):
        _rows(lone)


def test_several_arrays_are_still_named(tmp_path: Path) -> None:
    path = tmp_path / "two.json"
    path.write_text('{"train": [{"a": 1}], "test": [{"a": 2}]}', encoding="utf-8")
    with pytest.raises(PipelineError, match="several arrays: 'train' \\(1 item\\), 'test' \\(1 item\\)"):
        _rows(path)


@pytest.mark.parametrize(("depth", "fails"), [(1023, False), (1024, True)])
def test_an_element_past_orjson_depth_fails_the_file_as_before(
    tmp_path: Path, depth: int, fails: bool
) -> None:
    path = tmp_path / "deep.json"
    path.write_text('[{"a": 1}, ' + "[" * depth + "]" * depth + "]", encoding="utf-8")
    if fails:
        with pytest.raises(PipelineError, match="depth limit"):
            _rows(path)
    else:
        rows = _rows(path)
        assert [r.reason for r in rows] == [None, "json_too_deep"]
