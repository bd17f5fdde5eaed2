"""report.json: the run summary as one JSON document (no timestamps: byte-identical reruns)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from pipeline.gate import gate_section
from pipeline.read.base import RECORD_NUMBERED
from pipeline.report.summary import RunSummary

# raised when a field changes meaning or goes away (docs/report.md); 2: JSON array and Parquet
# inputs are located by 1-based record number (`first_records`, `record_number`), not `line`
REPORT_VERSION = 2


def build(summary: RunSummary) -> dict[str, Any]:
    """The report.json document of a run."""
    tally, totals = summary.tally, summary.totals
    written = totals["train"] + totals["validation"] + totals["rejected"]
    numbered = {inp.path for inp in summary.inputs if inp.format in RECORD_NUMBERED}
    report: dict[str, Any] = {
        "ftprep_version": summary.version,
        "report_version": REPORT_VERSION,
        "config": summary.config,
        "config_sha256": summary.config_sha256,
        "target": summary.target_info or summary.target,
        "inputs": [
            {
                "path": inp.path,
                "format": inp.format,
                "rows": inp.rows,
                **inp.stats,
                "mapping": inp.mapping,
            }
            for inp in summary.inputs
        ],
        "stages": [c.as_dict(name) for name, c in tally.stages.items()],
        "fixes": _fixes(summary),
        "rejected_by_reason": {
            reason: {
                "count": n,
                **_first(tally.reason_lines.get(reason, {}), numbered),
                "examples": [_located(e, numbered) for e in tally.reason_examples.get(reason, [])],
            }
            for reason, n in sorted(tally.rejected().items())
        },
        "warnings": {
            code: {
                "count": n,
                **_first(tally.warning_lines.get(code, {}), numbered),
                "message": tally.warning_messages.get(code),
            }
            for code, n in sorted(tally.warnings.items())
        },
        "totals": dict(totals),
        "identity": {
            "rows_in": totals["rows_in"],
            "train + validation + rejected": written,
            "holds": summary.identity_holds,
        },
        "tokens": summary.tokens,
        "messages": summary.messages,
        "outputs": summary.outputs,
        "dataset": summary.dataset,
        "gate": gate_section(summary.gate, summary.expectations),
    }
    return report


def _first(per_source: dict[str, list[int]], numbered: set[str]) -> dict[str, Any]:
    """`first_lines` of the inputs located by line, `first_records` (1-based record numbers)
    of the JSON arrays and Parquet files."""
    return {
        "first_lines": {s: v for s, v in per_source.items() if s not in numbered},
        "first_records": {s: v for s, v in per_source.items() if s in numbered},
    }


def _located(example: dict[str, Any], numbered: set[str]) -> dict[str, Any]:
    """A rejected-record example with its location labelled: `line`, or `record_number`."""
    if example["source"] not in numbered:
        return example
    return {("record_number" if k == "line" else k): v for k, v in example.items()}


def _fixes(summary: RunSummary) -> dict[str, Any]:
    """Every change a stage made to kept records, by code: the count and the stages."""
    fixes: dict[str, Any] = {}
    for name, c in summary.tally.stages.items():
        for code, n in c.changes.items():
            entry = fixes.setdefault(code, {"count": 0, "stages": []})
            entry["count"] += n
            entry["stages"].append(name)
    return dict(sorted(fixes.items()))


def write(summary: RunSummary, path: Path) -> dict[str, Any]:
    """Write report.json; returns the document."""
    report = build(summary)
    with open(path, "wb") as f:
        f.write(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    return report
