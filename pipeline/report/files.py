"""The report files of a run: report.json, and report.md and report.html built from it.

The two pages are rendered from the report.json document (not from the summary), so they say
exactly what it says and an older report.json can be rendered again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.report import json_report
from pipeline.report.summary import RunSummary

REPORT_FILES = ("report.json", "report.md", "report.html")


def write_reports(summary: RunSummary, path: Callable[[str], Path]) -> dict[str, Any]:
    """Write the three report files at `path(name)`; returns the report.json document."""
    from pipeline.report.html import render_html
    from pipeline.report.markdown import render_markdown

    report = json_report.write(summary, path("report.json"))
    path("report.md").write_text(render_markdown(report), encoding="utf-8")
    path("report.html").write_text(render_html(report), encoding="utf-8")
    return report
