"""The output formats of `ftprep check`: text, json, github, junit, sarif (docs/cli.md).

Every format lists the same problems of the same verdicts. `max_errors` caps how many problems
of each code are listed (per file in the machine formats, over all files in text); counts are
always exact, and what was left out is said ("and N more", `omitted`). The summary (text,
json `summary`, SARIF invocation) states the exit code that the command returns.

JUnit: one `testsuite` per file and one `testcase` per code found in it (a clean file has one
passing testcase `ftprep check`): an error code is a `failure` whose text lists every place, a
warning code passes with the places in `system-out` (or fails, with `strict`); an unreadable
file is one `error`. Test names do not move when a line does, so a CI server tracks each code
from run to run.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import orjson

from pipeline.checks import CHECK_CODES, code_doc
from pipeline.gate import Problem, Verdict, exit_code

FORMATS = ("text", "json", "github", "junit", "sarif")
TEXT_MAX_ERRORS = 20  # problems listed per code in text output unless --max-errors says
JSON_SCHEMA = "ftprep-check/1"
UNREADABLE = "file_unreadable"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFO_URI = "https://github.com/ftprep/ftprep/blob/main/docs/reasons.md"


def where(subject: str, p: Problem) -> str:
    """`FILE:LINE`, `FILE: record N` or `FILE`."""
    if p.line is not None:
        return f"{subject}:{p.line}"
    if p.record is not None:
        return f"{subject}: record {p.record}"
    return subject


def _capped(problems: Sequence[Problem], most: int | None) -> tuple[list[Problem], int]:
    if most is None or most <= 0 or len(problems) <= most:
        return list(problems), 0
    return list(problems[:most]), len(problems) - most


def _by_code(problems: Iterable[Problem]) -> dict[str, list[Problem]]:
    grouped: dict[str, list[Problem]] = defaultdict(list)
    for p in problems:
        grouped[p.code].append(p)
    return grouped


def _summary(verdicts: Sequence[Verdict], strict: bool) -> str:
    code = exit_code(verdicts, strict)
    failed = sum(v.failed(strict) for v in verdicts)
    files = f"{len(verdicts)} file{'s' * (len(verdicts) != 1)} checked"
    text = f"{files}: {failed} failed, {len(verdicts) - failed} passed"
    if strict and any(v.warnings and not v.errors for v in verdicts):
        text += " (--strict: warnings fail)"
    return f"{text} (exit {code})"


# --- text ---------------------------------------------------------------------------------


def format_text(
    verdicts: Sequence[Verdict],
    target: str,
    *,
    strict: bool = False,
    max_errors: int | None = TEXT_MAX_ERRORS,
    color: bool = False,
) -> str:
    """Problems grouped by code (errors first), `FILE:LINE: level code: message` each, then a
    line per file and the summary."""

    def style(text: str, **kw: Any) -> str:
        if not color:
            return text
        import click

        return click.style(text, **kw)

    items: list[tuple[str, Problem]] = [(v.subject, p) for v in verdicts for p in v.problems]
    grouped: dict[str, list[tuple[str, Problem]]] = defaultdict(list)
    for subject, p in items:
        grouped[p.code].append((subject, p))
    order = sorted(grouped, key=lambda c: (grouped[c][0][1].level != "error", c))
    lines = []
    for code in order:
        entries = grouped[code]
        level = entries[0][1].level
        tint = "red" if level == "error" else "yellow"
        n = len(entries)
        lines.append(style(f"{code}: {n} {level}{'s' * (n != 1)}", fg=tint, bold=True))
        shown = entries if not max_errors or n <= max_errors else entries[:max_errors]
        for subject, p in shown:
            at = f" {p.path}:" if p.path and not p.message.startswith(p.path) else ""
            lines.append(f"  {where(subject, p)}: {style(p.level, fg=tint)} {code}:{at} {p.message}")
        if len(shown) < n:
            lines.append(f"  ... and {n - len(shown)} more {code} (--max-errors 0 lists all)")
    for v in verdicts:
        if v.unreadable:
            lines.append(style(f"{v.subject}: error {UNREADABLE}: {v.unreadable}", fg="red"))
            continue
        state = style("failed", fg="red") if v.failed(strict) else style("passed", fg="green")
        lines.append(
            f"{v.subject}: {v.records} records, {v.errors} error{'s' * (v.errors != 1)}, "
            f"{v.warnings} warning{'s' * (v.warnings != 1)} for {target}: {state}"
        )
    lines.append(style(_summary(verdicts, strict), bold=True))
    return "\n".join(lines)


def format_markdown(
    verdicts: Sequence[Verdict],
    target: str,
    *,
    strict: bool = False,
    max_errors: int | None = TEXT_MAX_ERRORS,
) -> str:
    """A Markdown summary for a CI job page (`--summary FILE`, e.g. `$GITHUB_STEP_SUMMARY`):
    the verdict, a row per file, problems per code, and the text listing in a fold."""
    code = exit_code(verdicts, strict)
    state = "passed" if code == 0 else "failed"
    lines = [f"## ftprep check {state} for `{target}` (exit {code})", ""]
    lines += ["| file | records | errors | warnings | verdict |", "|---|---:|---:|---:|---|"]
    for v in verdicts:
        verdict = "unreadable" if v.unreadable else ("failed" if v.failed(strict) else "passed")
        name = v.subject.replace("|", "\\|")
        lines.append(f"| `{name}` | {v.records} | {v.errors} | {v.warnings} | {verdict} |")
    counts = _by_code(p for v in verdicts for p in v.problems)
    if counts:
        lines += ["", "| code | level | count |", "|---|---|---:|"]
        for c in sorted(counts, key=lambda c: (counts[c][0].level != "error", -len(counts[c]), c)):
            lines.append(f"| `{c}` | {counts[c][0].level} | {len(counts[c])} |")
    images = sum(v.images_at_minimum for v in verdicts)
    if images:
        lines += ["", f"{images} image(s) count at the documented minimum: the token counts held "
                  "to the limit are a lower bound."]
    listing = format_text(verdicts, target, strict=strict, max_errors=max_errors)
    lines += ["", "<details><summary>every problem</summary>", "", "```", listing, "```", "",
              "</details>", ""]
    return "\n".join(lines)


# --- json -----------------------------------------------------------------------------------


def as_json(
    verdicts: Sequence[Verdict], target: str, *, strict: bool = False, max_errors: int | None = None
) -> dict[str, Any]:
    """The document `--format json` prints (schema: pipeline/check.schema.json)."""
    files = []
    totals: Counter[str] = Counter()
    levels: dict[str, str] = {}
    for v in verdicts:
        counts = Counter(p.code for p in v.problems)
        totals.update(counts)
        levels.update({p.code: p.level for p in v.problems})
        if v.unreadable:
            totals[UNREADABLE] += 1
            levels[UNREADABLE] = "error"
        listed: list[Problem] = []
        omitted = {}
        for code, group in _by_code(v.problems).items():
            shown, left = _capped(group, max_errors)
            listed += shown
            if left:
                omitted[code] = left
        keep = {id(p) for p in listed}
        files.append(
            {
                "path": v.subject,
                "records": v.records,
                "errors": v.errors,
                "warnings": v.warnings,
                "failed": v.failed(strict),
                "unreadable": v.unreadable,
                "images_at_minimum": v.images_at_minimum,
                "counts": dict(sorted(counts.items())),
                "omitted": omitted,
                "problems": [p.as_dict() for p in v.problems if id(p) in keep],
            }
        )
    status = exit_code(verdicts, strict)
    return {
        "schema": JSON_SCHEMA,
        "target": target,
        "strict": strict,
        "exit_code": status,
        "summary": {
            "files": len(verdicts),
            "failed": sum(v.failed(strict) for v in verdicts),
            "records": sum(v.records for v in verdicts),
            "errors": sum(v.errors for v in verdicts),
            "warnings": sum(v.warnings for v in verdicts),
            "images_at_minimum": sum(v.images_at_minimum for v in verdicts),
            "text": _summary(verdicts, strict),
        },
        "codes": {
            c: {"level": levels[c], "count": n, "meaning": code_doc(c)}
            for c, n in sorted(totals.items())
        },
        "files": files,
    }


def format_json(verdicts: Sequence[Verdict], target: str, **kw: Any) -> str:
    return orjson.dumps(as_json(verdicts, target, **kw), option=orjson.OPT_INDENT_2).decode()


# --- github ----------------------------------------------------------------------------------


def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_property(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


def format_github(
    verdicts: Sequence[Verdict], target: str, *, strict: bool = False, max_errors: int | None = None
) -> str:
    """GitHub Actions workflow commands: `::error file=F,line=L,title=CODE::message` per problem
    (warnings as `::warning`, or `::error` with strict), then the summary as a plain line."""
    lines = []
    for v in verdicts:
        if v.unreadable:
            lines.append(
                f"::error file={_gh_property(v.subject)},title={UNREADABLE}::{_gh_data(v.unreadable)}"
            )
            continue
        for code, group in _by_code(v.problems).items():
            shown, left = _capped(group, max_errors)
            for p in shown:
                kind = "error" if p.level == "error" or strict else "warning"
                props = [f"file={_gh_property(v.subject)}"]
                if p.line is not None:
                    props.append(f"line={p.line}")
                props.append(f"title={_gh_property(p.code)}")
                text = p.message if p.record is None else f"record {p.record}: {p.message}"
                lines.append(f"::{kind} {','.join(props)}::{_gh_data(text)}")
            if left:
                lines.append(
                    f"::notice file={_gh_property(v.subject)},title={_gh_property(code)}::"
                    f"{_gh_data(f'and {left} more {code} (--max-errors)')}"
                )
    lines.append(f"ftprep check for {target}: {_summary(verdicts, strict)}")
    return "\n".join(lines)


# --- junit ------------------------------------------------------------------------------------


def format_junit(
    verdicts: Sequence[Verdict], target: str, *, strict: bool = False, max_errors: int | None = None
) -> str:
    root = ET.Element("testsuites", name=f"ftprep check {target}")
    total = failures = errors = 0
    for v in verdicts:
        suite = ET.SubElement(root, "testsuite", name=v.subject)
        cases = failed = errored = 0
        if v.unreadable:
            case = ET.SubElement(suite, "testcase", name=UNREADABLE, classname=v.subject)
            ET.SubElement(case, "error", type=UNREADABLE, message=v.unreadable).text = v.unreadable
            cases, errored = 1, 1
        for code, group in _by_code(v.problems).items():
            cases += 1
            level = group[0].level
            shown, left = _capped(group, max_errors)
            body = "\n".join(f"{where(v.subject, p)}: {p.message}" for p in shown)
            if left:
                body += f"\n... and {left} more"
            case = ET.SubElement(suite, "testcase", name=code, classname=v.subject)
            n = len(group)
            summary = f"{n} {level}{'s' * (n != 1)}: {code_doc(code)}"
            if level == "error" or strict:
                failed += 1
                ET.SubElement(case, "failure", type=code, message=summary).text = body
            else:
                ET.SubElement(case, "system-out").text = f"{summary}\n{body}"
        if not cases:
            ET.SubElement(suite, "testcase", name="ftprep check", classname=v.subject)
            cases = 1
        suite.set("tests", str(cases))
        suite.set("failures", str(failed))
        suite.set("errors", str(errored))
        suite.set("skipped", "0")
        total, failures, errors = total + cases, failures + failed, errors + errored
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


# --- sarif ------------------------------------------------------------------------------------


def _uri(subject: str) -> str:
    path = Path(subject)
    if path.is_absolute():
        return path.as_uri()
    return path.as_posix()


def as_sarif(
    verdicts: Sequence[Verdict],
    target: str,
    *,
    strict: bool = False,
    max_errors: int | None = None,
    version: str = "",
) -> dict[str, Any]:
    """A SARIF 2.1.0 log: one run, a rule per code (its documented meaning), a result per
    problem with its file and, where it has one, its line."""
    codes: dict[str, str] = {}
    for v in verdicts:
        for p in v.problems:
            codes.setdefault(p.code, p.level)
        if v.unreadable:
            codes.setdefault(UNREADABLE, "error")
    rule_ids = sorted(codes)
    rules = [
        {
            "id": code,
            "name": code,
            "shortDescription": {"text": code.replace("_", " ")},
            "fullDescription": {"text": code_doc(code)},
            "helpUri": f"{INFO_URI}#{code}",
            "defaultConfiguration": {"level": codes[code]},
        }
        for code in rule_ids
    ]
    results = []
    for v in verdicts:
        location = {"physicalLocation": {"artifactLocation": {"uri": _uri(v.subject)}}}
        if v.unreadable:
            results.append(
                {
                    "ruleId": UNREADABLE,
                    "ruleIndex": rule_ids.index(UNREADABLE),
                    "level": "error",
                    "message": {"text": v.unreadable},
                    "locations": [location],
                }
            )
            continue
        for group in _by_code(v.problems).values():
            for p in _capped(group, max_errors)[0]:
                physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(v.subject)}}
                if p.line is not None:
                    physical["region"] = {"startLine": p.line}
                text = p.message if p.record is None else f"record {p.record}: {p.message}"
                result: dict[str, Any] = {
                    "ruleId": p.code,
                    "ruleIndex": rule_ids.index(p.code),
                    "level": "error" if p.level == "error" or strict else "warning",
                    "message": {"text": text},
                    "locations": [{"physicalLocation": physical}],
                }
                if p.path:
                    result["locations"][0]["logicalLocations"] = [
                        {"fullyQualifiedName": p.path, "kind": "member"}
                    ]
                results.append(result)
    code = exit_code(verdicts, strict)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "ftprep",
                        "version": version or "0",
                        "informationUri": INFO_URI,
                        "rules": rules,
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": code != 2,
                        "exitCode": code,
                        "toolExecutionNotifications": [
                            {"message": {"text": _summary(verdicts, strict)}, "level": "note"}
                        ],
                    }
                ],
                "results": results,
            }
        ],
    }


def format_sarif(verdicts: Sequence[Verdict], target: str, **kw: Any) -> str:
    from pipeline import __version__

    log = as_sarif(verdicts, target, version=__version__, **kw)
    return orjson.dumps(log, option=orjson.OPT_INDENT_2).decode()


def render(
    fmt: str,
    verdicts: Sequence[Verdict],
    target: str,
    *,
    strict: bool = False,
    max_errors: int | None = None,
    color: bool = False,
) -> str:
    """The output of `--format fmt`; text caps at TEXT_MAX_ERRORS per code unless told."""
    if fmt == "text":
        most = TEXT_MAX_ERRORS if max_errors is None else max_errors
        return format_text(verdicts, target, strict=strict, max_errors=most, color=color)
    fn = {
        "json": format_json,
        "github": format_github,
        "junit": format_junit,
        "sarif": format_sarif,
    }[fmt]
    return str(fn(verdicts, target, strict=strict, max_errors=max_errors))


def use_color(stream: Any) -> bool:
    """Colour on a terminal, unless NO_COLOR is set (no-color.org) or TERM is dumb."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


__all__ = ["CHECK_CODES", "FORMATS", "render", "use_color"]
