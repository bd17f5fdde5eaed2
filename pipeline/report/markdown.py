"""report.md: the report.json document as Markdown, sized for a GitHub job summary.

`render_markdown(report)` puts the verdict first (passed or failed, the exit code, the
reasons), then a table per section. GitHub shows at most 1 MiB of `$GITHUB_STEP_SUMMARY`, so
every list is cut (`… and N more`) and the whole text stays under `MAX_BYTES`. Every value
taken from the data is escaped: in a table cell `|` and newlines cannot break the row, and
Markdown or HTML in a record, a path or a message shows as text.

Only the standard library: `ftprep check` may import this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pipeline.report import fmt

MAX_BYTES = 512 * 1024  # half of GitHub's 1 MiB step-summary limit: room for other steps
MAX_ROWS = 50  # rows of a table before "… and N more"
MAX_CELL = 300  # characters of a text cell
MAX_SOURCES = 3  # sources listed per reason or warning
SPLITS = ("train", "validation")

# CommonMark lets any ASCII punctuation be backslash-escaped; these would otherwise format
# (emphasis, code, links, HTML, GitHub's `$` math, entities) or end a table cell.
_ACTIVE = re.compile(r"([\\`*_\[\]<>|~&$!#])")


# --- cells -----------------------------------------------------------------------------------


def _cut(text: str, limit: int = MAX_CELL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def text(value: Any, limit: int = MAX_CELL) -> str:
    """Prose from the data (a message, a path) as one table cell, shown as typed."""
    if value is None:
        return "–"
    s = _cut(str(value), limit).replace("\r\n", "\n").replace("\r", "\n")
    s = _ACTIVE.sub(r"\\\1", s)
    return s.replace("\n", "<br>")


def code(value: Any, limit: int = MAX_CELL, *, cell: bool = True) -> str:
    """An identifier from the data (a reason code, a path) as inline code, in a table cell
    (`cell`: `|` escaped, which GitHub needs even inside code there) or in running text."""
    if value is None or value == "":
        return "–"
    s = re.sub(r"\s*[\r\n]+\s*", " ⏎ ", _cut(str(value), limit))
    if cell:
        s = s.replace("|", "\\|")
    fence = "`" * (max((len(m) for m in re.findall(r"`+", s)), default=0) + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def num(value: Any) -> str:
    shown = fmt.number(value)
    return text(value) if shown is None else shown


nbytes = fmt.size
usd = fmt.usd


def numbers_text(numbers: Sequence[Any], by_record: bool) -> str:
    """`2, 5, 9` (lines), or `records 2, 5, 9` (1-based record numbers): the first ten."""
    text = ", ".join(str(int(n)) for n in numbers[:10])
    if not by_record:
        return text
    return f"record{'s' * (len(numbers) != 1)} {text}"


def input_order(report: Mapping[str, Any]) -> list[str]:
    """The input paths of a report, in the order the run read them."""
    inputs = report.get("inputs")
    if not isinstance(inputs, list):
        return []
    return [str(i.get("path")) for i in inputs if isinstance(i, Mapping)]


def located(
    lines: Mapping[str, Sequence[Any]] | None,
    records: Mapping[str, Sequence[Any]] | None,
    order: Sequence[str] = (),
) -> list[tuple[str, Sequence[Any], bool]]:
    """`(source, numbers, by record)` of a reason's or warning's `first_lines` and
    `first_records`, in input order."""
    items = [(str(src), ns, False) for src, ns in (lines or {}).items()]
    items += [(str(src), ns, True) for src, ns in (records or {}).items()]
    rank = {src: i for i, src in enumerate(order)}
    return sorted(items, key=lambda item: rank.get(item[0], len(rank)))


def lines_cell(
    per_source: Mapping[str, Sequence[Any]] | None,
    records: Mapping[str, Sequence[Any]] | None = None,
    order: Sequence[str] = (),
) -> str:
    """`source: 2, 5, 9` per source located by line, `source: records 1, 4` per JSON array or
    Parquet source (the first MAX_SOURCES sources, in input `order`)."""
    items = located(per_source, records, order)
    if not items:
        return "–"
    parts = [
        f"{code(src, 120)}: {numbers_text(numbers, by_record)}"
        for src, numbers, by_record in items[:MAX_SOURCES]
    ]
    if len(items) > MAX_SOURCES:
        parts.append(f"… and {len(items) - MAX_SOURCES} more sources")
    return "<br>".join(parts)


def table(header: Sequence[str], rows: Iterable[Sequence[str]], total: int | None = None) -> str:
    """A Markdown table (cells already escaped), cut after MAX_ROWS rows."""
    rows = list(rows)
    total = len(rows) if total is None else total
    out = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    out += ["| " + " | ".join(r) + " |" for r in rows[:MAX_ROWS]]
    if total > min(len(rows), MAX_ROWS):
        out.append(f"\n… and {total - min(len(rows), MAX_ROWS):,} more")
    return "\n".join(out)


def _facts(pairs: Iterable[tuple[str, Any]]) -> str:
    """`name: value` facts on one line, for scalars that are present."""
    return " · ".join(f"{name}: {value}" for name, value in pairs if value not in (None, "–"))


# --- sections --------------------------------------------------------------------------------


def _verdict(report: Mapping[str, Any]) -> list[str]:
    gate = report.get("gate") or {}
    failed = bool(gate.get("failed"))
    exit_code = gate.get("exit_code", 1 if failed else 0)
    target = report.get("target")
    name = target.get("name") if isinstance(target, dict) else target
    head = "❌ failed" if failed else "✅ passed"
    out = [f"# ftprep report: {head} (exit code {exit_code})", ""]
    reasons = gate.get("reasons") or []
    if reasons:
        out.append("**The gate failed:**")
        out.append("")
        out += [
            f"- {code(r.get('code'), cell=False)}: {text(r.get('message'), 1000)}"
            for r in reasons[:MAX_ROWS]
        ]
        if len(reasons) > MAX_ROWS:
            out.append(f"- … and {len(reasons) - MAX_ROWS:,} more")
        out.append("")
    warnings = gate.get("warnings") or []
    if warnings:
        out.append("**Gate warnings:**")
        out.append("")
        out += [
            f"- {code(w.get('code'), cell=False)}: {text(w.get('message'), 1000)}"
            for w in warnings[:MAX_ROWS]
        ]
        if len(warnings) > MAX_ROWS:
            out.append(f"- … and {len(warnings) - MAX_ROWS:,} more")
        out.append("")
    totals = report.get("totals") or {}
    identity = report.get("identity") or {}
    if totals:
        holds = identity.get("holds")
        check = "" if holds is None else (" ✓ nothing lost" if holds else " ✗ **records lost**")
        out.append(
            f"**{num(totals.get('rows_in'))}** records in → **{num(totals.get('train'))}** train"
            f" + **{num(totals.get('validation'))}** validation"
            f" + **{num(totals.get('rejected'))}** rejected{check}"
        )
        out.append("")
    limits = (report.get("dataset") or {}).get("dataset_limits") or {}
    facts = _facts(
        [
            ("target", code(name, cell=False) if name else None),
            ("config", code(report.get("config"), cell=False) if report.get("config") else None),
            (
                "config sha256",
                code(str(report["config_sha256"])[:12], cell=False)
                if report.get("config_sha256")
                else None,
            ),
            (
                "estimated cost",
                usd(limits.get("cost_usd")) if limits.get("cost_usd") is not None else None,
            ),
            (
                "ftprep",
                text(report.get("ftprep_version")) if report.get("ftprep_version") else None,
            ),
            ("report version", num(report.get("report_version"))),
        ]
    )
    if facts:
        out += [facts, ""]
    if isinstance(target, dict) and target.get("shutdown_warning"):
        out += [f"> ⚠️ {text(target['shutdown_warning'], 1000)}", ""]
    return out


def _inputs(report: Mapping[str, Any]) -> list[str]:
    inputs = report.get("inputs") or []
    if not inputs:
        return []
    rows = []
    for inp in inputs:
        mapping = inp.get("mapping") or {}
        columns = mapping.get("columns") or {}
        rows.append(
            [
                code(inp.get("path")),
                code(inp.get("format")),
                num(inp.get("rows")),
                text(inp.get("encoding")) + (" (BOM removed)" if inp.get("bom_removed") else ""),
                code(mapping.get("shape")),
                "<br>".join(f"{code(k, 60)} ← {code(v, 60)}" for k, v in list(columns.items())[:10])
                or "–",
            ]
        )
    header = ["input", "format", "rows", "encoding", "shape", "columns"]
    notes = [
        f"- {code(inp.get('path'), cell=False)}: {code(w.get('code'), cell=False)}: "
        f"{text(w.get('message'), 1000)}"
        for inp in inputs
        for w in inp.get("warnings") or []
    ]
    return ["## Inputs", "", table(header, rows), "", *([*notes, ""] if notes else [])]


def _steps(report: Mapping[str, Any]) -> list[str]:
    stages = report.get("stages") or []
    if not stages:
        return []
    rows = []
    for s in stages:
        rejected = s.get("rejected") or {}
        changes = s.get("changes") or {}
        rows.append(
            [
                code(s.get("name")),
                num(s.get("rows_in")),
                num(s.get("rows_out")),
                num(sum(rejected.values())) if rejected else "0",
                ", ".join(f"{code(k, 60)} {num(v)}" for k, v in list(rejected.items())[:10]) or "–",
                ", ".join(f"{code(k, 60)} {num(v)}" for k, v in list(changes.items())[:10]) or "–",
            ]
        )
    header = ["step", "rows in", "rows out", "rejected", "reasons", "changes"]
    return ["## Steps", "", table(header, rows), ""]


def _rejected(report: Mapping[str, Any]) -> list[str]:
    by_reason = report.get("rejected_by_reason") or {}
    if not by_reason:
        return []
    items = sorted(by_reason.items(), key=lambda kv: -int((kv[1] or {}).get("count") or 0))
    order = input_order(report)
    rows = []
    for reason, info in items[:MAX_ROWS]:
        info = info or {}
        examples = info.get("examples") or []
        first = examples[0] if examples else {}
        rows.append(
            [
                code(reason),
                num(info.get("count")),
                lines_cell(info.get("first_lines"), info.get("first_records"), order),
                text(first.get("message")) if first else "–",
            ]
        )
    header = ["reason", "records", "first lines", "message (first record)"]
    return ["## Rejected by reason", "", table(header, rows, len(items)), ""]


def _warnings(report: Mapping[str, Any]) -> list[str]:
    warnings = report.get("warnings") or {}
    if not warnings:
        return []
    items = sorted(warnings.items(), key=lambda kv: -int((kv[1] or {}).get("count") or 0))
    order = input_order(report)
    rows = [
        [
            code(code_),
            num((info or {}).get("count")),
            lines_cell(
                (info or {}).get("first_lines"), (info or {}).get("first_records"), order
            ),
            text((info or {}).get("message")),
        ]
        for code_, info in items[:MAX_ROWS]
    ]
    header = ["warning", "records", "first lines", "message (first record)"]
    return ["## Warnings", "", table(header, rows, len(items)), ""]


def _tokens(report: Mapping[str, Any]) -> list[str]:
    tokens = report.get("tokens") or {}
    splits = tokens.get("splits") or {}
    out: list[str] = []
    if any(splits.get(s) for s in splits):
        keys = ("count", "min", "mean", "p5", "p50", "p95", "max")
        rows = [
            [code(split), *(num(stats.get(k)) for k in keys)]
            for split, stats in splits.items()
            if stats
        ]
        facts = _facts(
            [
                (
                    "encoding",
                    code(tokens.get("encoding"), cell=False) if tokens.get("encoding") else None,
                ),
                ("limit per example", num(tokens.get("limit_per_example"))),
                ("image tokens", num(tokens.get("image_tokens")) if tokens.get("image_tokens")
                 else None),
                (
                    "lower bound",
                    f"yes: {num(tokens.get('images_at_minimum'))} image(s) counted at the "
                    "documented minimum (given by URL and not fetched, or a target whose "
                    "figure is a minimum)" if tokens.get("lower_bound") else None,
                ),
                (
                    "chat template",
                    code(tokens["chat_template"], cell=False)
                    if tokens.get("chat_template")
                    else None,
                ),
                ("counts", tokens.get("approximation")),
            ]
        )
        out += ["## Tokens per example", ""]
        if facts:
            out += [facts, ""]
        out += [table(["split", "examples", "min", "mean", "p5", "p50", "p95", "max"], rows), ""]
    messages = (report.get("messages") or {}).get("splits") or {}
    if any(messages.get(s) for s in messages):
        rows = [
            [code(split), *(num(stats.get(k)) for k in ("count", "min", "mean", "max"))]
            for split, stats in messages.items()
            if stats
        ]
        out += [
            "## Messages per example",
            "",
            table(["split", "examples", "min", "mean", "max"], rows),
            "",
        ]
    roles = (report.get("messages") or {}).get("roles") or {}
    rows = [
        [code(role), code(split), num(v.get("examples")), num(v.get("tokens"))]
        for split, per_role in roles.items()
        for role, v in (per_role or {}).items()
    ]
    if rows:
        out += [
            "## Roles",
            "",
            table(["role", "split", "examples with it", "content tokens"], rows),
            "",
        ]
    return out


def _split(dataset: Mapping[str, Any], totals: Mapping[str, Any]) -> list[str]:
    split = dataset.get("split")
    if not isinstance(split, dict) and not totals:
        return []
    out = ["## Split sizes", ""]
    written = sum(int(totals.get(k) or 0) for k in SPLITS)
    rows = [
        [
            code(name),
            num(totals.get(name)),
            f"{int(totals.get(name) or 0) / written:.1%}" if written else "–",
        ]
        for name in SPLITS
        if name in totals
    ]
    out.append(table(["split", "records", "share"], rows))
    out.append("")
    if isinstance(split, dict):
        leakage = split.get("leakage") or {}
        facts = _facts(
            [
                ("validation share", num(split.get("validation_share"))),
                ("seed", num(split.get("seed"))),
                ("exact", num(split.get("exact"))),
                ("units", num(split.get("units"))),
                ("largest unit", num(split.get("largest_unit"))),
                (
                    "leakage policy",
                    code(leakage.get("policy"), cell=False) if leakage.get("policy") else None,
                ),
                ("near-duplicate pairs crossing", num(leakage.get("crossing_pairs"))),
            ]
        )
        if facts:
            out += [facts, ""]
        strata = (split.get("strata") or {}).get("classes") or []
        if strata:
            rows = [
                [
                    code(c.get("value")),
                    num(c.get("records")),
                    num(c.get("train")),
                    num(c.get("validation")),
                ]
                for c in strata
            ]
            out += [table(["stratum", "records", "train", "validation"], rows, len(strata)), ""]
    return out


def _dedupe(dataset: Mapping[str, Any]) -> list[str]:
    dedupe = dataset.get("dedupe")
    if not isinstance(dedupe, dict):
        return []
    out = ["## Dedupe", ""]
    facts = _facts(
        (k.replace("_", " "), code(v, cell=False) if isinstance(v, str) else num(v))
        for k, v in dedupe.items()
        if isinstance(v, str | int | float | bool) or v is None
    )
    if facts:
        out += [facts, ""]
    examples = dedupe.get("examples") or []
    if examples:
        rows = [
            [
                code(e.get("kept")),
                "<br>".join(code(d, 120) for d in (e.get("duplicates") or [])[:5])
                + (
                    f"<br>… and {len(e['duplicates']) - 5} more"
                    if len(e.get("duplicates") or []) > 5
                    else ""
                ),
            ]
            for e in examples
        ]
        out += [table(["kept", "removed as its duplicates"], rows, len(examples)), ""]
    conflicts = dedupe.get("conflicts") or {}
    listed = conflicts.get("listed") or []
    if conflicts:
        out += [
            f"Conflicts (same input, different answer): {num(conflicts.get('count'))}, "
            f"action {code(conflicts.get('action'), cell=False)}",
            "",
        ]
    if listed:
        rows = [[code(c.get("first")), code(c.get("conflicting"))] for c in listed]
        out += [
            table(["first", "conflicting"], rows, int(conflicts.get("count") or len(listed))),
            "",
        ]
    return out


def _limits(report: Mapping[str, Any], limits: Mapping[str, Any]) -> list[str]:
    outputs = report.get("outputs") or {}
    if not limits and not outputs:
        return []
    out = ["## Limits, files and bytes", ""]
    examples = limits.get("examples") or {}
    if examples:
        rows = [[code(s), num(examples.get(s))] for s in SPLITS if s in examples]
        out += [table(["split", "examples"], rows), ""]
        bounds = _facts(
            [
                ("training examples needed: at least", num(examples.get("min_examples"))),
                ("at most", num(examples.get("max_examples"))),
            ]
        )
        if bounds:
            out += [bounds, ""]
    tokens = limits.get("tokens") or {}
    if tokens:
        out += [
            _facts(
                [
                    (
                        "encoding",
                        code(tokens.get("encoding"), cell=False)
                        if tokens.get("encoding")
                        else None,
                    ),
                    ("train tokens", num(tokens.get("train"))),
                    ("validation tokens", num(tokens.get("validation"))),
                    ("longest example", num(tokens.get("max_per_example"))),
                    ("limit per example", num(tokens.get("limit_per_example"))),
                ]
            ),
            "",
        ]
    sizes = outputs.get("bytes") or {}
    if sizes:
        most = outputs.get("max_file_bytes")
        over = set(outputs.get("over_max_file_bytes") or [])
        rows = [
            [code(name), nbytes(size), nbytes(most), "✗ over" if name in over else "✓"]
            for name, size in sizes.items()
        ]
        out += [table(["file", "bytes", "target maximum", "fits"], rows), ""]
    files = limits.get("files") or {}
    if files.get("sharded"):
        out += [
            f"Sharded: {', '.join(code(s, cell=False) for s in files['sharded'])}. {text(files.get('note'))}",
            "",
        ]
    return out


def _cost(limits: Mapping[str, Any]) -> list[str]:
    if "epochs" not in limits and not limits.get("compare"):
        return []
    entries = [{"target": limits.get("target"), **limits}, *(limits.get("compare") or [])]
    notes = any(e.get("note") for e in entries)
    rows = [
        [
            code(e.get("target")) + (" (this run)" if i == 0 else ""),
            num(e.get("epochs")),
            num(e.get("billed_tokens_per_epoch")),
            num(e.get("billed_training_tokens")),
            usd(e.get("price_per_1m_training_tokens")),
            text(e.get("price_date")),
            "**" + usd(e.get("cost_usd")) + "**" if i == 0 else usd(e.get("cost_usd")),
            *([text(e.get("note")) if e.get("note") else ""] if notes else []),
        ]
        for i, e in enumerate(entries)
    ]
    header = [
        "target",
        "epochs",
        "billed tokens / epoch",
        "billed tokens",
        "price / 1M",
        "price date",
        "cost",
    ]
    header += ["note"] if notes else []
    out = ["## Epochs and cost", "", table(header, rows), ""]
    if limits.get("epochs_rule"):
        out += [f"Epochs: {text(limits['epochs_rule'], 500)}", ""]
    return out


def _expectations(report: Mapping[str, Any]) -> list[str]:
    suites = (report.get("gate") or {}).get("expectations") or []
    if not suites:
        return []
    out = ["## Great Expectations", ""]
    for suite in suites[:20]:
        mark = "✅" if suite.get("success") else "❌"
        out += [
            f"### {mark} {text(suite.get('suite'), 200)} ({code(suite.get('path'), 200, cell=False)})",
            "",
        ]
        results = suite.get("results") or []
        rows = []
        for r in results:
            status = "✅" if r.get("success") else ("❌" if r.get("level") == "error" else "⚠️")
            kwargs = r.get("kwargs") or {}
            detail = r.get("message") or r.get("why")
            rows.append(
                [
                    status,
                    code(r.get("type"), 100)
                    + "<br>"
                    + text(", ".join(f"{k}={v}" for k, v in kwargs.items()), 200),
                    text(r.get("table")),
                    text(r.get("level")),
                    text(r.get("observed"), 120),
                    num(r.get("unexpected_count")),
                    text(detail),
                ]
            )
        header = ["", "expectation", "table", "level", "observed", "unexpected", "detail"]
        out += [table(header, rows, len(results)), ""]
    if len(suites) > 20:
        out += [f"… and {len(suites) - 20} more suites", ""]
    return out


def render_markdown(report: Mapping[str, Any]) -> str:
    """report.md for a report.json document: the verdict first, then a table per section."""
    dataset = report.get("dataset") or {}
    limits = dataset.get("dataset_limits") or {}
    sections = [
        _verdict(report),
        _inputs(report),
        _steps(report),
        _rejected(report),
        _warnings(report),
        _tokens(report),
        _split(dataset, report.get("totals") or {}),
        _dedupe(dataset),
        _limits(report, limits),
        _cost(limits),
        _expectations(report),
    ]
    out: list[str] = []
    size = 0
    for i, section in enumerate(sections):
        chunk = "\n".join(section) + "\n" if section else ""
        if size + len(chunk.encode()) > MAX_BYTES - 1024:
            left = sum(1 for s in sections[i:] if s)
            out.append(f"… and {left} more sections: see report.json and report.html\n")
            break
        out.append(chunk)
        size += len(chunk.encode())
    return "".join(out).rstrip() + "\n"
