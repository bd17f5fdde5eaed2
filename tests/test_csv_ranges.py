"""CSV/TSV read by the workers in byte ranges: the boundary finder, the pyarrow fast path, the
sequential fallback, and the same rows (and outputs) as the sequential reader."""

from __future__ import annotations

import codecs
import csv
import io
import random
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import parse_config
from pipeline.read.base import RawRow, ReadOptions, ReadStats
from pipeline.read.csv_ranges import (
    _TRAIL_ASCII,
    CsvPlan,
    Reached,
    byte_splittable,
    plan_ranges,
    read_range,
)
from pipeline.read.delimited import read_csv, read_tsv
from pipeline.read.plan import iter_units, plan_inputs
from tests.conftest import run_two_ways


def record_starts(data: bytes, encoding: str = "utf-8", delimiter: str = ",") -> list[int]:
    """Byte offsets where the csv module starts each row (blank lines included)."""
    text = data.decode(encoding)
    lines = io.StringIO(text, newline="").readlines()
    starts, pos, i = [], 0, 0
    consumed = iter(lines)

    class Feed:
        def __iter__(self) -> Feed:
            return self

        def __next__(self) -> str:
            nonlocal pos, i
            line = next(consumed)
            pos += len(line.encode(encoding))
            i += 1
            return line

    reader = csv.reader(Feed(), delimiter=delimiter, strict=True)
    while True:
        here = pos
        try:
            next(reader)
        except StopIteration:
            break
        starts.append(here)
    return starts


def physical_line(data: bytes, offset: int) -> int:
    head = data[:offset]
    return 1 + head.count(b"\n") + head.count(b"\r") - head.count(b"\r\n")


def check_ranges(path: Path, start: int, chunk: int, encoding: str = "utf-8") -> int:
    data = path.read_bytes()
    ranges = plan_ranges(path, start, chunk)
    starts = set(record_starts(data[start:], encoding))
    assert ranges[0][0] == start and ranges[-1][1] == len(data)
    for (a, b, line), nxt in zip(ranges, [*ranges[1:], None], strict=True):
        assert a < b
        assert a - start in starts, f"range starts inside a record at {a}"
        assert line == physical_line(data[start:], a - start)
        if nxt is not None:
            assert nxt[0] == b
    return len(ranges)


def tricky_rows(n: int, seed: int = 1) -> list[list[str]]:
    rng = random.Random(seed)
    pieces = ["a", "b,c", 'say "hi"', "x\ny", "p\r\nq", '""', " ", "é", "中文"]
    return [
        ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 6))) for _ in range(3)]
        for _ in range(n)
    ]


def csv_bytes(rows: list[list[str]], eol: str = "\n", encoding: str = "utf-8") -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator=eol).writerows([["prompt", "completion", "d"], *rows])
    return buf.getvalue().encode(encoding)


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_boundaries_fall_on_record_starts(tmp_path: Path, eol: str, chunk: int) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(csv_bytes(tricky_rows(300), eol))
    n = check_ranges(path, 0, chunk)
    assert n > 1


def test_a_range_never_starts_inside_quotes(tmp_path: Path) -> None:
    # every target byte falls inside the long quoted field: the boundary moves past it
    field = "line\n" * 200 + 'with "" escapes,\r\nand a CRLF'
    data = csv_bytes([["a", field, "b"], ["c", "d", "e"]])
    path = tmp_path / "q.csv"
    path.write_bytes(data)
    record3 = data.index(b"c,d,e")
    assert [r[0] for r in plan_ranges(path, 0, 3)] == [0, data.index(b"a,"), record3]
    for chunk in (25, 50, 333):
        ranges = plan_ranges(path, 0, chunk)
        assert [r[0] for r in ranges] == [0, record3]
        assert [r[2] for r in ranges] == [1, 3 + field.count("\n")]  # row 2 spans 202 lines


def test_multibyte_encoding_with_bom(tmp_path: Path) -> None:
    rows = [[f"问题 {i}\n第二行", "回答，好", "表"] for i in range(200)]
    path = tmp_path / "g.csv"
    path.write_bytes(csv_bytes(rows, encoding="gb18030"))
    assert check_ranges(path, 0, 50, "gb18030") > 10
    bom = tmp_path / "bom.csv"
    bom.write_bytes(codecs.BOM_UTF8 + csv_bytes(rows))
    assert check_ranges(bom, 3, 50) > 10


def test_crlf_is_never_split(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(b"p,c\r\n" + b"ab,cd\r\n" * 50)
    for chunk in range(1, 12):
        for a, _b, _line in plan_ranges(path, 0, chunk)[1:]:
            assert path.read_bytes()[a - 1 : a] == b"\n"


@pytest.mark.parametrize(
    ("encoding", "delimiter", "ok"),
    [
        ("utf-8", ",", True),
        ("cp1252", ";", True),
        ("iso8859-1", "\t", True),
        ("gb18030", ",", True),
        ("gb18030", "|", False),
        ("shift_jis", ",", True),
        ("shift_jis", "|", False),
        ("big5", "\t", True),
        ("euc_jp", "|", True),
        ("cp949", "|", True),
        ("utf-16-le", ",", False),
        ("utf-32-be", ",", False),
        ("iso2022_jp", ",", False),
        ("utf-7", ",", False),
        ("utf-8", '"', False),
    ],
)
def test_byte_splittable(encoding: str, delimiter: str, ok: bool) -> None:
    assert byte_splittable(encoding, delimiter) is ok


@pytest.mark.parametrize("encoding", sorted(_TRAIL_ASCII))
def test_trail_byte_tables_hold_for_every_character(encoding: str) -> None:
    """Every ASCII byte found inside a multi-byte character is in the table, and the table
    never holds a newline or a quote byte."""
    found: set[int] = set()
    points = [*range(0x80, 0x10000), *range(0x10000, 0x110000, 97)]
    for cp in points:
        if 0xD800 <= cp <= 0xDFFF:
            continue
        try:
            encoded = chr(cp).encode(encoding)
        except UnicodeEncodeError:
            continue
        if len(encoded) > 1:
            found.update(b for b in encoded if b < 0x80)
    assert found <= _TRAIL_ASCII[encoding]
    assert not {0x0A, 0x0D, 0x22} & _TRAIL_ASCII[encoding]


def ranged(path: Path, chunk: int, **input_cfg: Any) -> tuple[list[RawRow], ReadStats, list[bool]]:
    """The rows of every range in order, as the runner keeps them (a range an earlier one
    read over is dropped), the counts, and which ranges took the fast path."""
    cfg = parse_config(
        {
            "input": {"paths": [str(path)], **input_cfg},
            "stages": [{"name": "split"}],
            "runner": {"workers": 1, "chunk_bytes": chunk},
            "output": {"dir": str(path.parent / "out")},
        }
    )
    [inp] = plan_inputs(cfg)
    rows: list[RawRow] = []
    counts = ReadStats()
    fast: list[bool] = []
    upto = -1
    for unit in iter_units([inp], cfg):
        assert unit.rows is None and unit.byte_range is not None and unit.csv is not None
        reached = Reached()
        mine = ReadStats()
        got = list(read_range(path, unit.byte_range, unit.csv, unit.opts, mine, reached))
        if unit.byte_range[0] < upto:
            continue
        upto = reached.offset
        rows += got
        counts.blank_lines += mine.blank_lines
        counts.empty_rows += mine.empty_rows
        fast.append(reached.fast)
    return rows, counts, fast


def sequential(path: Path, **opts: Any) -> tuple[list[RawRow], ReadStats]:
    stats = ReadStats()
    reader = read_tsv if path.suffix == ".tsv" else read_csv
    return list(reader(path, ReadOptions(**opts), stats)), stats


MALFORMED = [
    '"ab"cd,x,y',  # text after a closing quote
    "one,two",  # too few fields
    "1,2,3,4",  # too many
    'ab"cd,ef,gh',  # a quote inside an unquoted field (literal; the parity is off)
    "",  # blank line
    ",,",  # empty row
    '"never closed,x,y',  # reads on to the end of the file (or the field limit)
]


@pytest.mark.parametrize("bad", MALFORMED)
@pytest.mark.parametrize("chunk", [1, 300, 1 << 30])
def test_ranges_give_the_sequential_rows(tmp_path: Path, bad: str, chunk: int) -> None:
    lines = csv_bytes(tricky_rows(200)).decode().split("\n")
    lines[120] = bad
    path = tmp_path / "m.csv"
    path.write_bytes("\n".join(lines).encode())
    rows, counts, fast = ranged(path, chunk)
    expected, stats = sequential(path)
    assert rows == expected
    assert (counts.blank_lines, counts.empty_rows) == (stats.blank_lines, stats.empty_rows)
    if chunk == 300:
        assert any(fast) and not all(fast)  # clean ranges fast, the malformed one not


def test_a_record_over_a_range_end_is_read_on_and_the_next_range_dropped(
    tmp_path: Path,
) -> None:
    # `x"y` is a literal quote for the csv module, so `"multi` opens a field that goes on to
    # the next line; the quote parity says the first line ends outside quotes: a range starts
    # there, inside the record. The earlier range reads on over it and the runner drops it.
    lines = ["prompt,completion,d", *(f"q{i},a{i},x" for i in range(300))]
    lines[50] = 'x"y,"multi'
    lines[51] = 'line",z'
    path = tmp_path / "u.csv"
    path.write_bytes("\n".join(lines).encode())
    assert path.read_bytes().index(b'line",z') in [r[0] for r in plan_ranges(path, 0, 1)]
    rows, _c, fast = ranged(path, 1)
    expected, _s = sequential(path)
    assert rows == expected
    assert any(r.line == 51 and r.record == {"prompt": 'x"y', "completion": "multi\nline", "d": "z"}
               for r in rows)
    assert len(fast) < len(plan_ranges(path, 0, 1))  # the range inside the record: dropped


@pytest.mark.parametrize(
    ("name", "data", "opts"),
    [
        ("crlf.csv", csv_bytes(tricky_rows(300), "\r\n"), {}),
        ("cr.csv", b"prompt,completion\r" + b"".join(b"q%d,a%d\r" % (i, i) for i in range(300)), {}),
        ("bom.tsv", codecs.BOM_UTF8 + csv_bytes(tricky_rows(300)).replace(b",", b"\t"), {}),
        ("gbk.csv", csv_bytes([[f"问{i}", "答,好", "x"] for i in range(300)], encoding="gbk"), {}),
        (
            "nohead.csv",
            b"".join(b"q%d,a%d\n" % (i, i) for i in range(300)),
            {"header": False, "columns": {"prompt": "column_1", "completion": "column_2"}},
        ),
        ("lead.csv", b"\n\r\n" + csv_bytes(tricky_rows(100)), {}),
        ("last.csv", csv_bytes(tricky_rows(100)).rstrip(b"\n"), {}),
        (
            "bad.csv",
            csv_bytes(tricky_rows(100)).replace(b"prompt,completion,d\n", b"prompt,completion,d\nx\xff,y,z\n"),
            {"encoding_errors": "reject"},
        ),
        (
            "bad2.csv",
            csv_bytes(tricky_rows(100)).replace(b"prompt,completion,d\n", b"prompt,completion,d\nx\xff,y,z\n"),
            {"encoding_errors": "replace"},
        ),
    ],
)
def test_encodings_and_line_ends_give_the_sequential_rows(
    tmp_path: Path, name: str, data: bytes, opts: dict[str, Any]
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    for chunk in (1, 500, 1 << 30):
        rows, counts, _fast = ranged(path, chunk, **opts)
        expected, stats = sequential(path, **{k: v for k, v in opts.items() if k != "columns"})
        assert rows == expected, chunk
        assert (counts.blank_lines, counts.empty_rows) == (stats.blank_lines, stats.empty_rows)


def test_record_limit_falls_back_to_the_sequential_reader(tmp_path: Path) -> None:
    rows = [["short", "x" * 5000, "y"], *tricky_rows(50)]
    path = tmp_path / "big.csv"
    path.write_bytes(csv_bytes(rows))
    limits = {"limits": {"max_record_bytes": 4000}}
    got, _c, fast = ranged(path, 1 << 20, **limits)
    expected, _s = sequential(path, limits=ReadOptions().limits.__class__(max_record_bytes=4000))
    assert got == expected
    assert any(r.reason == "record_too_large" for r in got)
    assert fast == [False]


def test_clean_ranges_take_the_fast_path(tmp_path: Path) -> None:
    path = tmp_path / "clean.csv"
    path.write_bytes(csv_bytes(tricky_rows(400)))
    rows, _c, fast = ranged(path, 500)
    assert rows == sequential(path)[0]
    assert len(fast) > 5 and all(fast)


def test_the_parent_holds_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(csv_bytes(tricky_rows(100)))
    wide = tmp_path / "w.csv"
    wide.write_bytes(csv_bytes(tricky_rows(100), encoding="utf-16"))
    cfg = parse_config(
        {
            "input": {"paths": [str(path), str(wide)]},
            "stages": [{"name": "split"}],
            "runner": {"chunk_bytes": 1000},
            "output": {"dir": str(tmp_path / "out")},
        }
    )
    units = list(iter_units(plan_inputs(cfg), cfg))
    mine = [u for u in units if u.path == str(path)]
    assert len(mine) > 1
    assert all(u.rows is None and u.byte_range is not None for u in mine)
    assert all(isinstance(u.csv, CsvPlan) for u in mine)
    # UTF-16 cannot be cut by bytes: read by the parent, as before
    assert all(u.rows is not None for u in units if u.path == str(wide))


@pytest.mark.parametrize(
    "bad", ['"never closed,x,y', '"ab"cd,x,y', "one,two", "", 'x"y,"multi\nline",z']
)
def test_many_small_units_equal_one_unit(tmp_path: Path, bad: str) -> None:
    lines = csv_bytes(
        [[f"prompt {i} {r[0]}", f"completion {i % 90} {r[1]}", r[2]] for i, r in enumerate(
            tricky_rows(400)
        )]
    ).decode().split("\n")
    lines[0] = "prompt,completion,extra"
    lines[250] = bad
    path = tmp_path / "in.csv"
    path.write_bytes("\n".join(lines).encode())
    data = {
        "input": {"paths": [str(path)]},
        "stages": [{"name": "dedupe"}, {"name": "split"}],
    }
    report = run_two_ways(tmp_path, data, batch_sizes=(1000, 7), chunks=(1 << 30, 97))
    assert report["totals"]["rows_in"] > 300
