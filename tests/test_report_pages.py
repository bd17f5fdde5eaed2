"""report.md and report.html: what they show, and that data cannot break or script them.

The pages are rendered from report.json documents: the golden reports of tests/golden/ (as
they are: older reports must still render), a fixture with every field a report can hold
(`full_report`), and hostile ones whose paths, messages and records carry HTML, Markdown,
template syntax and newlines.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.report.html import fmt_bytes, fmt_number, fmt_usd, render_html
from pipeline.report.markdown import MAX_BYTES, code, render_markdown, text

GOLDEN = sorted((Path(__file__).parent / "golden").glob("*/report.json"))
HOSTILE = "<script>alert(1)</script> </textarea> {{ 7*7 }} a|b\nsecond line"


def golden(name: str = "demo") -> dict[str, Any]:
    return dict(
        orjson.loads((Path(__file__).parent / "golden" / name / "report.json").read_bytes())
    )


def expectation_results() -> list[dict[str, Any]]:
    """`gate.expectations`: one suite with a passed, a failed error and a failed warning."""
    return [
        {
            "suite": "chat",
            "path": "expectations/chat.json",
            "success": False,
            "results": [
                {
                    "type": "expect_column_values_to_be_between",
                    "kwargs": {"column": "tokens_assistant", "min_value": 1},
                    "table": "records",
                    "level": "error",
                    "why": "A chat example with no assistant tokens has nothing to learn from.",
                    "success": True,
                    "observed": None,
                    "unexpected_count": 0,
                    "unexpected_examples": [],
                    "message": None,
                },
                {
                    "type": "expect_column_pair_values_a_to_be_greater_than_b",
                    "kwargs": {"column_A": "train", "column_B": "min_examples", "or_equal": True},
                    "table": "dataset",
                    "level": "error",
                    "why": "The target refuses a job with fewer training examples than its minimum.",
                    "success": False,
                    "observed": {"train": 7, "min_examples": 10},
                    "unexpected_count": 1,
                    "unexpected_examples": [{"train": 7, "min_examples": 10}],
                    "message": "observed train=7, min_examples=10",
                },
                {
                    "type": "expect_column_values_to_be_between",
                    "kwargs": {"column": "tokens_user", "min_value": 1, "mostly": 0.95},
                    "table": "records",
                    "level": "warning",
                    "why": "An example without user text teaches answers without questions.",
                    "success": False,
                    "observed": None,
                    "unexpected_count": 3,
                    "unexpected_examples": ["sample_data/chat.jsonl:4", "sample_data/chat.jsonl:7"],
                    "message": "3 of 41 records unexpected (mostly=0.95 allows 5.0%)",
                },
            ],
        }
    ]


def add_new_fields(report: dict[str, Any], *, limit: int = 80) -> dict[str, Any]:
    """The fields report.json gained (report_version 1) that a report lacks, with plausible
    values: tokens and messages per split, the full gate section, example records."""
    report = copy.deepcopy(report)
    report.setdefault("report_version", 1)
    report.setdefault("config_sha256", "9f2c" * 16)
    if not (report.get("tokens") or {}).get("splits"):
        edges = [i * 4 for i in range(21)]
        train = [0, 1, 2, 4, 6, 5, 4, 3, 2, 2, 1, 1, 0, 1, 0, 0, 1, 0, 0, 0]
        validation = [0, 0, 1, 1, 2, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        report["tokens"] = {
            "encoding": "o200k_base",
            "limit_per_example": limit,
            "splits": {
                "train": {
                    "count": 33,
                    "min": 6,
                    "mean": 28.4,
                    "p5": 9.6,
                    "p50": 24.0,
                    "p95": 55.4,
                    "max": 66,
                },
                "validation": {
                    "count": 8,
                    "min": 10,
                    "mean": 27.1,
                    "p5": 11.4,
                    "p50": 22.5,
                    "p95": 44.6,
                    "max": 47,
                },
            },
            "histogram": {"edges": edges, "train": train, "validation": validation},
        }
    if not (report.get("messages") or {}).get("splits"):
        report["messages"] = {
            "splits": {
                "train": {"count": 33, "min": 2, "mean": 3.12, "max": 5},
                "validation": {"count": 8, "min": 3, "mean": 3.0, "max": 3},
            },
            "roles": {
                "train": {
                    "system": {"examples": 30, "tokens": 390},
                    "user": {"examples": 33, "tokens": 280},
                    "assistant": {"examples": 33, "tokens": 540},
                },
                "validation": {"assistant": {"examples": 8, "tokens": 135}},
            },
        }
    gate = report.setdefault("gate", {})
    gate.setdefault("exit_code", 1 if gate.get("failed") else 0)
    gate.setdefault("warnings", [])
    if not gate.get("expectations"):
        gate["expectations"] = expectation_results()
    for reason, info in report.get("rejected_by_reason", {}).items():
        if "examples" not in info:
            source, lines = next(iter(info["first_lines"].items()))
            info["examples"] = [
                {
                    "source": source,
                    "line": line,
                    "stage": "dedupe" if reason == "duplicate" else "read",
                    "message": f"{reason}: a message that says what to change",
                    "record": orjson.dumps(
                        {"messages": [{"role": "user", "content": f"question {line}"}]}
                    ).decode(),
                }
                for line in lines[:3]
            ]
    return report


def full_report() -> dict[str, Any]:
    """Every section a report can have: a failed gate, warnings, compare targets, conflicts,
    strata and classes, a retired target."""
    report = golden("demo")
    report["gate"] = {
        "failed": True,
        "exit_code": 1,
        "reasons": [
            {"code": "too_few_examples", "message": "7 training examples; target needs at least 10"}
        ],
        "warnings": [{"code": "expectation_failed", "message": "suite 'chat': tokens_user failed"}],
        "expectations": expectation_results(),
    }
    report["warnings"] = {
        "truncated": {
            "count": 2,
            "first_lines": {"sample_data/chat.jsonl": [5, 9]},
            "message": "3936 tokens cut from the end of the last message to fit the limit",
        }
    }
    report["target"]["shutdown_warning"] = "target X: new jobs are not accepted since 2024-10-28"
    limits = report["dataset"]["dataset_limits"]
    limits["compare"] = [
        {
            "target": "openai:gpt-4o-2024-08-06",
            "epochs": 3,
            "billed_tokens_per_epoch": 1748,
            "billed_training_tokens": 5244,
            "price_per_1m_training_tokens": 25.0,
            "price_date": "2026-07-30",
            "cost_usd": 0.1311,
        },
        {
            "target": "together:meta-llama",
            "epochs": 3,
            "billed_tokens_per_epoch": 1748,
            "billed_training_tokens": 5244,
            "price_per_1m_training_tokens": 0.48,
            "price_date": "2026-06",
            "cost_usd": 0.0025,
            "note": "tokens counted with o200k_base; together:meta-llama uses another tokenizer",
        },
    ]
    report["dataset"]["dedupe"]["conflicts"] = {
        "count": 3,
        "action": "reject",
        "listed": [{"first": "sample_data/faq.csv:2", "conflicting": "sample_data/faq.csv:7"}],
    }
    report["dataset"]["split"]["strata"] = {
        "count": 2,
        "classes": [
            {"value": '" 1"', "records": 20, "validation": 4, "train": 16},
            {"value": '" 2"', "records": 21, "validation": 4, "train": 17},
        ],
    }
    report["dataset"]["legacy_format"] = {
        "records": 41,
        "classification": True,
        "classes": {" 1": 20, " 2": 21},
    }
    for crafted in ("tokens", "messages", "config_sha256"):  # the crafted values below
        report.pop(crafted, None)
    return add_new_fields(report)


def hostile_report() -> dict[str, Any]:
    """HOSTILE text wherever data reaches the page: paths, messages, records, codes, config."""
    report = full_report()
    path = f"data/{HOSTILE}.jsonl"
    report["config"] = f"configs/{HOSTILE}.yaml"
    report["inputs"][0]["path"] = path
    report["inputs"][0]["mapping"]["columns"] = {"prompt": HOSTILE}
    report["rejected_by_reason"]["json_invalid"] = {
        "count": 1,
        "first_lines": {path: [9]},
        "examples": [
            {
                "source": path,
                "line": 9,
                "stage": "read",
                "message": f"not JSON: {HOSTILE}",
                "record": f'{{"text": "{HOSTILE}"',  # a cut preview: not whole JSON
            }
        ],
    }
    report["rejected_by_reason"][HOSTILE] = {
        "count": 2,
        "first_lines": {path: [3, 4]},
        "examples": [
            {
                "source": path,
                "line": 3,
                "stage": "read",
                "message": HOSTILE,
                "record": orjson.dumps(
                    {"messages": [{"role": "user", "content": HOSTILE}]}
                ).decode(),
            }
        ],
    }
    report["stages"][0]["rejected"][HOSTILE] = 2
    report["warnings"][HOSTILE] = {"count": 1, "first_lines": {path: [5]}, "message": HOSTILE}
    report["gate"]["reasons"].append({"code": "too_many_rejected", "message": HOSTILE})
    report["gate"]["expectations"][0]["results"][0]["why"] = HOSTILE
    report["dataset"]["dedupe"]["examples"][0]["kept"] = f"{path}:0"
    return report


def test_golden_reports_render() -> None:
    assert GOLDEN, "tests/golden/*/report.json not found"
    for path in GOLDEN:
        report = orjson.loads(path.read_bytes())
        md = render_markdown(report)
        page = render_html(report)
        verdict = "❌ failed" if report["gate"]["failed"] else "✅ passed"
        assert md.startswith(f"# ftprep report: {verdict}"), path
        assert "## Steps" in md and "## Split sizes" in md, path
        assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>"), path
        assert "<svg" in page, path  # at least the rows-per-step chart
        for reason in report["rejected_by_reason"]:
            assert f"`{reason}`" in md and f"<code>{reason}</code>" in page, (path, reason)


def test_full_report_shows_every_section() -> None:
    report = full_report()
    md = render_markdown(report)
    lines = md.splitlines()
    assert lines[0] == "# ftprep report: ❌ failed (exit code 1)"
    # the verdict first: the reasons come before any section
    assert md.index("`too_few_examples`") < md.index("## Inputs")
    for heading in (
        "Inputs",
        "Steps",
        "Rejected by reason",
        "Warnings",
        "Tokens per example",
        "Messages per example",
        "Split sizes",
        "Dedupe",
        "Limits, files and bytes",
        "Epochs and cost",
        "Great Expectations",
    ):
        assert f"\n## {heading}\n" in md, heading
    assert "| `train` | 33 | 6 | 28.4 | 9.6 | 24 | 55.4 | 66 |" in md
    assert "`openai:gpt-4o-2024-08-06`" in md and "$0.1311" in md and "2026-07-30" in md
    assert "config sha256: `9f2c9f2c9f2c`" in md
    assert "### ❌ chat (`expectations/chat.json`)" in md

    page = render_html(report)
    for anchor in (
        "steps",
        "rejected",
        "warnings",
        "tokens",
        "dataset",
        "limits",
        "expectations",
        "inputs",
    ):
        assert f'id="{anchor}"' in page and f'href="#{anchor}"' in page, anchor
    assert "✗ Gate failed" in page and "exit code 1" in page
    assert page.count("<svg") >= 4  # steps, reasons, token histogram, cost per target
    assert "limit 80" in page  # the per-example limit is drawn on the histogram
    example = report["rejected_by_reason"]["field_empty"]["examples"][0]
    assert "Can I schedule boiling?" in example["record"]
    assert "Can I schedule boiling?" in page  # an example record, pretty-printed
    assert example["message"] in page
    assert "Target retired" in page
    assert "openai:gpt-4o-2024-08-06" in page and "$0.1311" in page
    assert "3 of 41 records unexpected" in page
    assert "| `system` | `train` | 30 | 390 |" in md  # roles
    assert "<td>system</td>" in page


def test_a_limit_far_beyond_the_longest_example_is_named_not_drawn_to_scale() -> None:
    page = render_html(add_new_fields(golden("demo"), limit=65536))
    assert "limit 65,536 tokens →" in page
    assert "off this scale" in page


def test_pages_degrade_without_optional_sections() -> None:
    bare = {
        "gate": {"failed": False},
        "totals": {"rows_in": 0, "train": 0, "validation": 0, "rejected": 0},
    }
    assert render_markdown(bare).startswith("# ftprep report: ✅ passed (exit code 0)")
    assert "✓ Gate passed" in render_html(bare)
    assert render_markdown({}).startswith("# ftprep report: ✅ passed")
    assert "<html" in render_html({})


def test_html_is_deterministic() -> None:
    report = full_report()
    assert render_html(report) == render_html(report)


# --- hostile data --------------------------------------------------------------------------


def test_html_escapes_every_value_from_the_data() -> None:
    page = render_html(hostile_report())
    assert "<script" not in page.lower()
    assert "</textarea>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;/textarea&gt;" in page
    assert "{{ 7*7 }}" in page and ">49<" not in page  # template syntax in data is text
    # a record preview shows as text, indented when it is whole JSON
    assert "&#34;content&#34;: &#34;&lt;script&gt;" in page or "&quot;content&quot;" in page
    # the only elements on the page are the template's and vl-convert's
    tags = set(re.findall(r"<([a-zA-Z][a-zA-Z0-9]*)", page))
    assert tags <= {
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "main",
        "header",
        "div",
        "h1",
        "h2",
        "h3",
        "code",
        "ul",
        "li",
        "span",
        "small",
        "b",
        "i",
        "nav",
        "a",
        "section",
        "p",
        "footer",
        "figure",
        "figcaption",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "br",
        "pre",
        "wbr",
        "svg",
        "g",
        "path",
        "rect",
        "text",
        "line",
        "defs",
        "clipPath",
        "tspan",
    }, tags


def _cells(row: str) -> list[str]:
    """The cells of a Markdown table row, split on unescaped pipes."""
    return re.split(r"(?<!\\)\|", row.strip())[1:-1]


def test_markdown_tables_survive_pipes_newlines_and_markup() -> None:
    md = render_markdown(hostile_report())
    # Markup shows as text: inside code spans as it is, elsewhere backslash-escaped.
    outside_code = re.sub(r"(`+)(?!`).*?(?<!`)\1(?!`)", "", md)
    assert "<script>" not in outside_code and "</textarea>" not in outside_code
    assert "\\<script\\>alert(1)\\</script\\>" in md  # in a message
    assert "`data/<script>alert(1)</script>" in md  # in a path, as code
    assert "{{ 7\\*7 }}" in md
    lines = md.splitlines()
    # every row of a table has as many cells as its header
    for i, line in enumerate(lines):
        if line.startswith("|---"):
            width = len(_cells(lines[i - 1]))
            j = i + 1
            while j < len(lines) and lines[j].startswith("| "):
                assert len(_cells(lines[j])) == width, lines[j]
                j += 1
    assert "second line" in md  # a newline in a cell becomes <br> or ⏎, not a new row
    assert not any(line.startswith("second line") for line in lines)


def test_markdown_cells() -> None:
    assert text("a|b\nc") == "a\\|b<br>c"
    assert text("<b>*x*</b>") == "\\<b\\>\\*x\\*\\</b\\>"
    assert code("a|b") == "`a\\|b`"
    assert code("a|b", cell=False) == "`a|b`"
    assert code("x `y` z") == "``x `y` z``"
    assert code("line\nbreak") == "`line ⏎ break`"
    assert text(None) == "–" and code("") == "–"


def test_formatting() -> None:
    assert fmt_number(1234567) == "1,234,567" and fmt_number(28.40) == "28.4"
    assert fmt_number(3.0) == "3" and fmt_number(None) == "–" and fmt_number(True) == "yes"
    assert fmt_bytes(8840) == "8.6 KiB" and fmt_bytes(536870912) == "512.0 MiB"
    assert fmt_usd(0.0157) == "$0.0157" and fmt_usd(3.0) == "$3" and fmt_usd(None) == "–"


# --- size -------------------------------------------------------------------------------------


def test_markdown_stays_under_the_step_summary_limit_with_many_reasons() -> None:
    report = full_report()
    source = "data/" + "x" * 200 + ".jsonl"
    report["rejected_by_reason"] = {
        f"reason_{i:05d}": {
            "count": 10_000 - i,
            "first_lines": {f"{source}{k}": [1, 2, 3, 4, 5] for k in range(10)},
            "examples": [
                {
                    "source": source,
                    "line": 1,
                    "stage": "read",
                    "message": "m" * 1000,
                    "record": "r" * 500,
                }
            ],
        }
        for i in range(10_000)
    }
    report["warnings"] = {
        f"warning_{i:05d}": {"count": 1, "first_lines": {source: [1]}, "message": "w" * 1000}
        for i in range(10_000)
    }
    report["gate"]["reasons"] = [{"code": f"r{i}", "message": "x" * 500} for i in range(10_000)]
    md = render_markdown(report)
    assert len(md.encode()) <= MAX_BYTES < 1024 * 1024
    assert "… and 9,950 more" in md  # reasons and warnings tables: 50 rows shown of 10,000
    assert "- … and 9,950 more" in md  # gate reasons
    assert "`reason_00000`" in md and "`reason_09999`" not in md  # the largest first
    page = render_html(report)
    assert "… and 9,950 more reasons" in page
    assert len(page.encode()) < 5 * 1024 * 1024


# --- the page loads nothing ----------------------------------------------------------------


def test_html_references_nothing_outside_the_file() -> None:
    page = render_html(full_report())
    lowered = page.lower()
    assert "<script" not in lowered
    assert "<link" not in lowered and "<img" not in lowered and "<iframe" not in lowered
    assert "@import" not in lowered
    assert "src=" not in lowered
    assert not re.search(r"url\(\s*['\"]?(?!#)", lowered), "CSS/SVG url() other than #fragment"
    for href in re.findall(r"""href\s*=\s*["']([^"']*)""", lowered):
        assert href.startswith("#"), href
    # what remains of http(s) is SVG's XML namespace, which is a name, not a load
    for url in re.findall(r"https?://[^\s\"'<>)]+", page):
        assert url in ("http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"), url
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.parent.name)
def test_golden_pages_reference_nothing_outside(path: Path) -> None:
    page = render_html(orjson.loads(path.read_bytes())).lower()
    assert "src=" not in page and "<link" not in page and "@import" not in page
    assert not re.search(r"url\(\s*['\"]?https?:", page)


def test_both_pages_say_when_token_counts_are_a_lower_bound_or_an_approximation() -> None:
    report = full_report()
    report["tokens"].update(
        {
            "image_tokens": 2560,
            "images_at_minimum": 10,
            "lower_bound": True,
            "chat_template": "model/chat_template.jinja",
            "approximation": None,
        }
    )
    md, page = render_markdown(report), render_html(report)
    for shown in (md, page):
        assert "2,560" in shown  # the image tokens
        assert "10 image(s) counted at the documented minimum" in shown
        assert "model/chat_template.jinja" in shown
    report["tokens"].update(
        {"image_tokens": 0, "images_at_minimum": 0, "lower_bound": False, "chat_template": None}
    )
    report["tokens"]["approximation"] = "approximated with o200k_base: no tokenizer.json given"
    md, page = render_markdown(report), render_html(report)
    for shown in (md, page):
        assert "approximated with o200k_base: no tokenizer.json given" in shown
        assert "counted at the documented minimum" not in shown
