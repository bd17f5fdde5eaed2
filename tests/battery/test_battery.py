"""A battery of hostile and broken inputs, each run through `ftprep run` in its own process.

Every case states its whole expected outcome: the exit code, the reason codes with counts,
and the rows in train.jsonl and rejected.jsonl (or, for a refused input, a one-line message
and no output at all). Whatever the input, the run must not print a traceback, must end
within `TIME_LIMIT` seconds and must stay under `MEMORY_LIMIT` of resident memory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from tests.battery import inputs as b
from tests.battery.inputs import MB, Built, good_rows, pc, write

ROOT = Path(__file__).resolve().parents[2]
TIME_LIMIT = 60.0  # seconds; a hang fails the case
MEMORY_LIMIT = 1024 * MB  # peak resident memory of the run


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path], Built]
    exit: int = 0
    train: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    warnings: dict[str, int] = field(default_factory=dict)
    error: str = ""  # a part of the one-line message, for exit 2
    stages: tuple[str, ...] = ("require_fields",)
    target: str | None = None
    seconds: float = TIME_LIMIT  # a tighter bound for the cases that are about time


def _csv(name: str, text: str | bytes, **cfg: Any) -> Callable[[Path], Built]:
    return lambda d: write(d, name, text, **cfg)


def _lines(name: str, *lines: bytes, **cfg: Any) -> Callable[[Path], Built]:
    return lambda d: write(d, name, b"\n".join(lines) + b"\n", **cfg)


GOOD = orjson.dumps(pc(1, "é"))
GOOD2 = orjson.dumps(pc(2, "ü"))
BAD_UTF8 = b'{"prompt": "bad \xff\xfe bytes", "completion": "x"}'


def _invalid_utf8_middle(name: str = "mid.jsonl", **cfg: Any) -> Callable[[Path], Built]:
    rows = good_rows(10).splitlines()
    data = b"\n".join([*rows[:5], BAD_UTF8, *rows[5:], b'{"prompt": "\xc3", "completion": "y"}'])
    return lambda d: write(d, name, data + b"\n", **cfg)


def _nest(depth: int) -> bytes:
    return b'{"prompt": "p", "completion": "c", "x": ' + b"[" * depth + b"]" * depth + b"}"


def _big_line(d: Path) -> Built:
    path = d / "big_line.jsonl"
    with path.open("wb") as f:
        f.write(GOOD + b"\n")
        f.write(b'{"prompt": "' + b"x" * (50 * MB) + b'", "completion": "c"}\n')
        f.write(GOOD2 + b"\n")
    return [path], {}


def _big_field_csv(d: Path) -> Built:
    return write(d, "big_field.csv", "prompt,completion\n" + "q," + "y" * (10 * MB) + "\nq2,a2\n")


def _big_field_jsonl(d: Path) -> Built:
    return write(
        d, "big_field.jsonl", orjson.dumps({"prompt": "q", "completion": "y" * (10 * MB)}) + b"\n"
    )


def _xlsx(name: str, fill: Callable[[Any], None], **cfg: Any) -> Callable[[Path], Built]:
    return lambda d: ([b.workbook(d, name, fill)], cfg)


def _merged(wb: Any) -> None:
    ws = wb.active
    ws.append(["prompt", "completion"])
    ws.append(["q1", "shared answer"])
    ws.append(["q2", None])
    ws.merge_cells("B2:B3")  # B3 is empty in the file: the row is rejected, not guessed


def _formulas(wb: Any) -> None:
    ws = wb.active
    ws.append(["prompt", "completion"])
    ws.append(["q1", "=1+1"])  # written without a cached value: read as empty
    ws.append(["q2", "plain"])


def _dates(wb: Any) -> None:
    import datetime as dt

    ws = wb.active
    ws.append(["prompt", "completion"])
    ws.append(["when?", dt.datetime(2024, 2, 29)])
    ws.append(["and then?", dt.datetime(2024, 3, 1, 12, 30)])


def _sheets(wb: Any) -> None:
    wb.active.title = "first"
    wb.active.append(["prompt", "completion"])
    wb.active.append(["q1", "a1"])
    hidden = wb.create_sheet("hidden")
    hidden.sheet_state = "hidden"
    hidden.append(["prompt", "completion"])
    for i in range(3):
        hidden.append([f"h{i}", f"a{i}"])


def _parquet_wrong_types(d: Path) -> Built:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"prompt": [1, 2, 3], "completion": [["a"], ["b"], ["c"]]})
    path = d / "types.parquet"
    pq.write_table(table, path)
    return [path], {}


def _odd_name(d: Path) -> Built:
    return write(d, "données d'été 数据 file.jsonl", good_rows(4))


def _unreadable(d: Path) -> Built:
    paths, cfg = write(d, "locked.jsonl", good_rows(2))
    if os.geteuid() != 0:
        paths[0].chmod(0)
        return paths, cfg
    # root reads any file whatever its mode: a file whose every read fails instead (EIO)
    if not Path("/proc/self/mem").exists():
        pytest.skip("running as root without /proc: no file refuses to be read")
    paths[0].unlink()
    os.symlink("/proc/self/mem", paths[0])
    return paths, cfg


def _dangling(d: Path) -> Built:
    folder = d / "in"
    folder.mkdir()
    os.symlink(folder / "gone.jsonl", folder / "data.jsonl")
    return [folder / "data.jsonl"], {}


CASES = [
    # an input without records is no error: the report says 0 records in
    Case("empty_jsonl", _csv("empty.jsonl", b"")),
    Case("empty_csv", _csv("empty.csv", b"")),
    Case("header_only_csv", _csv("header.csv", "prompt,completion\n")),
    Case("only_blank_lines", _csv("blank.jsonl", "\n\n  \n\r\n")),
    Case(
        "json_truncated",
        _csv("cut.json", '[{"prompt": "a", "completion": "b"}, {"pro'),
        exit=2,
        error="invalid JSON at line 1",
    ),
    Case(
        "jsonl_truncated_last_line",
        _lines("cut.jsonl", GOOD, GOOD2, b'{"prompt": "a", "comp'),
        train=2,
        rejected=1,
        reasons={"json_invalid": 1},
    ),
    Case(
        "nul_bytes_jsonl",
        _lines("nul.jsonl", GOOD, b'{"prompt": "a\x00b", "completion": "c"}', b"\x00\x00\x00"),
        train=1,
        rejected=2,
        reasons={"json_invalid": 2},
    ),
    Case("nul_bytes_csv", _csv("nul.csv", "prompt,completion\na\x00b,c\nd,e\n"), train=2),
    Case(
        "invalid_utf8_middle",
        _invalid_utf8_middle(),
        train=10,
        rejected=2,
        reasons={"encoding_invalid": 2},
    ),
    Case(
        "invalid_utf8_middle_replace",
        _invalid_utf8_middle(encoding_errors="replace"),
        train=12,
        warnings={"encoding_replaced": 2},
    ),
    Case(
        "invalid_utf8_middle_strict",
        _invalid_utf8_middle(encoding_errors="strict"),
        exit=2,
        error="byte offset",
    ),
    Case(
        "invalid_utf8_csv",
        _csv("bad.csv", b"prompt,completion\n" + "qé,ü\n".encode() * 3 + b"bad \xff,x\n"),
        train=3,
        rejected=1,
        reasons={"encoding_invalid": 1},
    ),
    Case(
        "invalid_utf8_json_array",
        _csv("bad.json", b"[" + GOOD + b"," + GOOD2 + b"," + BAD_UTF8 + b"]"),
        train=2,
        rejected=1,
        reasons={"encoding_invalid": 1},
    ),
    Case(
        "invalid_utf16_bom",
        _csv(
            "bad16.jsonl",
            b.bom(GOOD.decode() + "\n", "utf-16-le")
            + b"\x00\xd8"
            + '{"prompt": "x", "completion": "y"}\n'.encode("utf-16-le"),
        ),
        train=1,
        rejected=1,
        reasons={"encoding_invalid": 1},
    ),
    Case("utf16_without_bom", b.utf16_no_bom, train=20),
    Case(
        "mixed_encodings",
        _csv(
            "mixed.csv",
            b"prompt,completion\n" + "问题,答案\n".encode() * 5 + "问题,答案\n".encode("gbk"),
        ),
        train=5,
        rejected=1,
        reasons={"encoding_invalid": 1},
    ),
    Case(
        "line_of_50_mb", _big_line, train=2, rejected=1, reasons={"record_too_large": 1}, seconds=20
    ),
    Case("field_of_10_mb_csv", _big_field_csv, train=2, seconds=20),
    Case("field_of_10_mb_jsonl", _big_field_jsonl, train=1, seconds=20),
    Case(
        "nesting_10000_deep_jsonl",
        _lines("deep.jsonl", GOOD, _nest(10_000)),
        train=1,
        rejected=1,
        reasons={"json_too_deep": 1},
    ),
    Case(
        "nesting_100_deep_jsonl",
        _lines("deep100.jsonl", GOOD, _nest(100)),
        train=1,
        rejected=1,
        reasons={"json_too_deep": 1},
    ),
    Case(
        "nesting_100_deep_json",
        _csv("deep.json", b"[" + GOOD + b"," + _nest(100) + b"]"),
        train=1,
        rejected=1,
        reasons={"json_too_deep": 1},
    ),
    Case(
        "nesting_10000_deep_json",
        _csv("deep10k.json", b"[" + _nest(10_000) + b"]"),
        exit=2,
        error="depth limit",
    ),
    Case(
        "duplicate_keys",
        _lines("dup.jsonl", b'{"prompt": "a", "prompt": "b", "completion": "c"}'),
        train=1,
    ),
    Case(
        "number_too_large_for_float",
        _lines("huge.jsonl", GOOD, b'{"prompt": "a", "completion": "b", "n": 1e400}'),
        train=1,
        rejected=1,
        reasons={"json_invalid": 1},
    ),
    Case(
        "integer_past_64_bits",
        _lines(
            "bigint.jsonl", GOOD, b'{"prompt": "a", "completion": 123456789012345678901234567890}'
        ),
        train=1,
        rejected=1,
        reasons={"record_unserializable": 1},
    ),
    Case(
        "nan_and_infinity",
        _lines(
            "nan.jsonl",
            GOOD,
            b'{"prompt": NaN, "completion": "b"}',
            b'{"prompt": "a", "completion": Infinity}',
        ),
        train=1,
        rejected=2,
        reasons={"json_invalid": 2},
    ),
    Case(
        "json_array_of_non_objects",
        _csv("scalars.json", b"[" + GOOD + b', 1, "two", [3], null]'),
        train=1,
        rejected=4,
        reasons={"record_not_object": 4},
    ),
    Case(
        "jsonl_lines_not_objects",
        _lines("lists.jsonl", GOOD, b"[1, 2]", b'"text"', b"3"),
        train=1,
        rejected=3,
        reasons={"record_not_object": 3},
    ),
    Case(
        "unbalanced_csv_quotes",
        _csv("quotes.csv", 'prompt,completion\na,b\n"open,c\nd,e\n'),
        train=1,
        rejected=1,
        reasons={"row_malformed": 1},
    ),
    Case(
        "formula_cells_csv",
        _csv("formulas.csv", 'prompt,completion\n=1+1,"=HYPERLINK(""http://x"")"\n+cmd,@SUM(A1)\n'),
        train=2,
    ),
    Case(
        "xlsx_merged_cells",
        _xlsx("merged.xlsx", _merged),
        train=1,
        rejected=1,
        reasons={"field_empty": 1},
    ),
    Case(
        "xlsx_formulas",
        _xlsx("formulas.xlsx", _formulas),
        train=1,
        rejected=1,
        reasons={"field_empty": 1},
    ),
    Case("xlsx_dates", _xlsx("dates.xlsx", _dates), train=2),
    Case("xlsx_hidden_sheet", _xlsx("sheets.xlsx", _sheets, sheet="hidden"), train=3),
    Case("xlsx_first_of_several_sheets", _xlsx("sheets1.xlsx", _sheets), train=1),
    Case(
        "xlsx_unknown_sheet",
        _xlsx("sheets2.xlsx", _sheets, sheet="nope"),
        exit=2,
        error="no sheet named 'nope'",
    ),
    Case("xlsx_row_bomb", b.xlsx_row_bomb, exit=2, error="max_xlsx_ratio", seconds=10),
    Case(
        "xlsx_shared_string_bomb",
        b.xlsx_shared_string_bomb,
        exit=2,
        error="max_xlsx_unpacked_bytes",
        seconds=10,
    ),
    Case("xlsx_entity_bomb", b.xlsx_entity_bomb, exit=2, error="not a readable XLSX", seconds=10),
    Case(
        "xlsx_not_a_zip",
        _csv("fake.xlsx", b"PK\x03\x04 this is not a zip"),
        exit=2,
        error="not a readable XLSX",
    ),
    Case(
        "parquet_wrong_column_types",
        _parquet_wrong_types,
        train=0,
        rejected=3,
        reasons={"prompt_invalid": 3},
        stages=("require_fields", "validate_schema"),
        target="bedrock:prompt-completion",
    ),
    Case(
        "parquet_truncated",
        _csv("cut.parquet", b"PAR1\x00\x01"),
        exit=2,
        error="not a readable Parquet",
    ),
    Case("file_name_with_spaces_and_non_ascii", _odd_name, train=4),
    Case("symlink_loop_in_folder", b.symlink_loop, exit=2, error="a.jsonl"),
    Case("dangling_symlink", _dangling, exit=2, error="data.jsonl"),
    Case("unreadable_file", _unreadable, exit=2, error="locked.jsonl"),
    Case(
        "binary_noise_as_jsonl",
        _csv("noise.jsonl", bytes(range(256)) * 40),
        exit=2,
        error="cannot decode",
    ),
    Case(
        "crlf_and_bom_csv",
        _csv("bom.csv", b.bom("prompt,completion\r\nq1,a1\r\nq2,a2,extra\r\n", "utf-8")),
        train=1,
        rejected=1,
        reasons={"row_malformed": 1},
    ),
]


# The child reports its own peak resident memory on the way out (all work is in-process with
# one worker), on a line of its own that the test removes from stderr.
_CHILD = (
    "import atexit, resource, sys\n"
    "atexit.register(lambda: sys.stderr.write("
    "'PEAK_RSS_KB %d\\n' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\n"
    "from pipeline.cli import main\n"
    "main()\n"
)


@dataclass
class Outcome:
    code: int
    stderr: list[str]
    seconds: float
    peak_bytes: int
    out: Path


def run_case(case: Case, tmp_path: Path) -> Outcome:
    paths, input_cfg = case.build(tmp_path)
    out = tmp_path / "out"
    cfg = {
        "input": {"paths": [str(p) for p in paths], **input_cfg},
        "stages": list(case.stages),
        "target": case.target,
        "gate": {"target_limits": False},
        "output": {"dir": str(out)},
        "runner": {"workers": 1},
    }
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, "run", str(config), "--quiet"],
            capture_output=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=tmp_path,
            timeout=TIME_LIMIT,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{case.name}: no result after {TIME_LIMIT} s (a hang)")
    seconds = time.monotonic() - started
    lines = proc.stderr.decode("utf-8", "replace").splitlines()
    peak = [int(line.split()[1]) * 1024 for line in lines if line.startswith("PEAK_RSS_KB ")]
    lines = [line for line in lines if not line.startswith("PEAK_RSS_KB ")]
    return Outcome(proc.returncode, lines, seconds, peak[0] if peak else 0, out)


def _count(path: Path) -> int:
    return len(path.read_bytes().splitlines()) if path.exists() else 0


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_battery(case: Case, tmp_path: Path) -> None:
    result = run_case(case, tmp_path)
    text = "\n".join(result.stderr)
    assert "Traceback" not in text, text
    assert result.seconds < case.seconds, f"took {result.seconds:.1f} s"
    assert 0 < result.peak_bytes < MEMORY_LIMIT, f"peak memory {result.peak_bytes >> 20} MB"
    assert result.code == case.exit, text
    if case.exit == 2:
        assert len(result.stderr) == 1 and result.stderr[0].startswith("ftprep: error: "), text
        assert case.error in result.stderr[0]
        left = sorted(p.name for p in result.out.iterdir()) if result.out.exists() else []
        assert left == [], f"a refused input left files behind: {left}"
        return
    report = orjson.loads((result.out / "report.json").read_bytes())
    totals = report["totals"]
    assert (totals["train"], totals["rejected"]) == (case.train, case.rejected)
    assert totals["rows_in"] == case.train + case.rejected  # nothing lost
    assert _count(result.out / "train.jsonl") == case.train
    assert _count(result.out / "rejected.jsonl") == case.rejected
    reasons = {code: r["count"] for code, r in report["rejected_by_reason"].items()}
    assert reasons == case.reasons
    warnings = {code: w["count"] for code, w in report["warnings"].items()}
    assert warnings == case.warnings
    assert not list(result.out.glob(".ftprep-tmp-*"))


def test_the_battery_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)
