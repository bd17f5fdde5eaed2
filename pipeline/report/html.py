"""report.html: the report.json document as one self-contained page for people.

`render_html(report)` returns the page: the verdict and key numbers at the top, then where the
records went (rows per step), why records were rejected (with example records), token and
message distributions per split, dedupe and split decisions, limits and cost, and the Great
Expectations results. It loads nothing: CSS is inline, charts are inline SVG, there is no
script, and a Content-Security-Policy forbids loading anything should a value ever get
through. Every value from the data is HTML-escaped by jinja2's autoescape (templates in
`templates/`); a field a report does not have is left out, so older reports still render.

Charts are Vega-Lite specs built with altair and rendered to SVG offline by vl-convert
(docs/decisions.md); both are imported inside `render_html`, so `ftprep check` stays light.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pipeline.report import fmt
from pipeline.report.markdown import input_order, located

if TYPE_CHECKING:
    import jinja2
    from markupsafe import Markup

SPLITS = ("train", "validation")
MAX_REASONS = 50  # reasons shown with their examples; the rest are counted
MAX_ROWS = 100  # rows of any other list before "… and N more"
CHART_REASONS = 15  # bars in the reasons chart; the rest are summed as one bar
OFF_SCALE = 1.5  # a token limit further than this times the longest example is not to scale

# Charts are laid out by vl-convert with the fonts it finds, then drawn by the browser with its
# own: an Arial-metric font on both sides keeps axis labels inside the SVG.
FONT = "'Liberation Sans', Arial, Helvetica, sans-serif"
COLORS = {
    "kept": "#3b82f6",
    "rejected": "#ef4444",
    "train": "#2563eb",
    "validation": "#f59e0b",
    "limit": "#dc2626",
    "other": "#94a3b8",
}
CHART_CONFIG: dict[str, Any] = {
    "font": FONT,
    "background": "#ffffff",
    "padding": {"left": 12, "right": 8, "top": 4, "bottom": 4},
    "view": {"stroke": None},
    "axis": {
        "labelColor": "#475569",
        "titleColor": "#334155",
        "titleFontWeight": "normal",
        "gridColor": "#e2e8f0",
        "domainColor": "#cbd5e1",
        "tickColor": "#cbd5e1",
        "labelFontSize": 11,
        "titleFontSize": 11,
    },
    "title": {"anchor": "start", "fontSize": 12, "fontWeight": 600, "color": "#0f172a"},
    "legend": {"labelColor": "#334155", "titleColor": "#334155", "orient": "top"},
}


# --- formatting (jinja2 filters) -------------------------------------------------------------


def fmt_number(value: Any) -> str:
    shown = fmt.number(value)
    return str(value) if shown is None else shown


fmt_bytes = fmt.size
fmt_usd = fmt.usd


def fmt_pct(part: Any, whole: Any) -> str:
    if not isinstance(part, int | float) or not isinstance(whole, int | float) or not whole:
        return "–"
    share = part / whole
    return f"{share:.1%}" if share >= 0.001 or not part else "<0.1%"


def fmt_json(value: Any) -> str:
    """A value of the data shown compactly (observed values, kwargs, examples)."""
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def breakable(value: Any) -> Markup:
    """An identifier that may wrap after `_` and `/` (escaped, with `<wbr>` break points)."""
    from markupsafe import Markup, escape

    parts = re.split(r"(?<=[_/.:])", str(value))
    return Markup("<wbr>").join(escape(part) for part in parts)


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The jinja2 environment of the templates: autoescape on, undefined names an error."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pipeline.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        n=fmt_number, bytes=fmt_bytes, usd=fmt_usd, pct=fmt_pct, json=fmt_json, breakable=breakable
    )
    return env


# --- the page model: the report, with defaults, in the order the page shows it ---------------


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _facts(section: Mapping[str, Any], skip: Sequence[str] = ()) -> list[tuple[str, Any]]:
    """The scalar fields of a section as (label, value), in the report's order."""
    return [
        (key.replace("_", " "), value)
        for key, value in section.items()
        if key not in skip and (value is None or isinstance(value, str | int | float | bool))
    ]


def _pretty(record: Any) -> str | None:
    """A record preview, indented when it is whole JSON (a cut preview is shown as it is)."""
    if record is None:
        return None
    if not isinstance(record, str):
        return json.dumps(record, ensure_ascii=False, indent=2, default=str)
    try:
        value = json.loads(record)
    except ValueError:
        return record
    if not isinstance(value, dict | list):
        return record
    return json.dumps(value, ensure_ascii=False, indent=2)


def _first_lines(
    lines: Any, records: Any, order: list[str]
) -> list[tuple[str, str, list[Any]]]:
    """`(source, "lines" or "records", numbers)` in input order: records for a JSON array or
    Parquet input."""
    return [
        (source, "records" if by_record else "lines", _list(numbers))
        for source, numbers, by_record in located(_dict(lines), _dict(records), order)
    ]


def _verdict(report: Mapping[str, Any]) -> dict[str, Any]:
    gate = _dict(report.get("gate"))
    failed = bool(gate.get("failed"))
    target = report.get("target")
    info = _dict(target)
    return {
        "failed": failed,
        "exit_code": gate.get("exit_code", 1 if failed else 0),
        "reasons": [_dict(r) for r in _list(gate.get("reasons"))][:MAX_ROWS],
        "more_reasons": max(0, len(_list(gate.get("reasons"))) - MAX_ROWS),
        "warnings": [_dict(w) for w in _list(gate.get("warnings"))][:MAX_ROWS],
        "more_warnings": max(0, len(_list(gate.get("warnings"))) - MAX_ROWS),
        "target": info.get("name") if info else target,
        "target_checked": info.get("checked"),
        "shutdown_warning": info.get("shutdown_warning"),
        "identity": _dict(report.get("identity")),
    }


def _cards(report: Mapping[str, Any], limits: Mapping[str, Any]) -> list[dict[str, Any]]:
    totals = _dict(report.get("totals"))
    rows_in = totals.get("rows_in")
    cards: list[dict[str, Any]] = []
    if totals:
        cards += [
            {"label": "records in", "value": fmt_number(rows_in), "note": "every input row"},
            {
                "label": "train",
                "value": fmt_number(totals.get("train")),
                "note": fmt_pct(totals.get("train"), rows_in) + " of input",
                "kind": "train",
            },
            {
                "label": "validation",
                "value": fmt_number(totals.get("validation")),
                "note": fmt_pct(totals.get("validation"), rows_in) + " of input",
                "kind": "validation",
            },
            {
                "label": "rejected",
                "value": fmt_number(totals.get("rejected")),
                "note": fmt_pct(totals.get("rejected"), rows_in) + " of input",
                "kind": "rejected" if totals.get("rejected") else None,
            },
        ]
    warned = sum(_int(_dict(w).get("count")) for w in _dict(report.get("warnings")).values())
    cards.append(
        {
            "label": "warnings",
            "value": fmt_number(warned),
            "note": _plural(len(_dict(report.get("warnings"))), "code")
            if warned
            else "on kept records",
            "kind": "warning" if warned else None,
        }
    )
    tokens = _dict(limits.get("tokens"))
    if limits.get("billed_training_tokens") is not None:
        cards.append(
            {
                "label": "billed tokens",
                "value": fmt_number(limits.get("billed_training_tokens")),
                "note": f"{fmt_number(limits.get('epochs'))} epochs × "
                f"{fmt_number(limits.get('billed_tokens_per_epoch'))}",
            }
        )
    elif tokens.get("train") is not None:
        cards.append(
            {"label": "train tokens", "value": fmt_number(tokens.get("train")), "note": ""}
        )
    if limits.get("cost_usd") is not None:
        cards.append(
            {
                "label": "estimated cost",
                "value": fmt_usd(limits.get("cost_usd")),
                "note": f"{limits.get('price_date')} prices" if limits.get("price_date") else "",
            }
        )
    return cards


def _steps(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for s in _list(report.get("stages"))[:MAX_ROWS]:
        s = _dict(s)
        rejected = {str(k): _int(v) for k, v in _dict(s.get("rejected")).items()}
        out.append(
            {
                "name": str(s.get("name", "?")),
                "rows_in": _int(s.get("rows_in")),
                "rows_out": _int(s.get("rows_out")),
                "rejected_total": sum(rejected.values()),
                "rejected": sorted(rejected.items(), key=lambda kv: -kv[1]),
                "changes": sorted(
                    ((str(k), _int(v)) for k, v in _dict(s.get("changes")).items()),
                    key=lambda kv: -kv[1],
                ),
            }
        )
    return out


def _reasons(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    stages_of: dict[str, list[str]] = {}
    for s in _list(report.get("stages")):
        for code in _dict(_dict(s).get("rejected")):
            stages_of.setdefault(str(code), []).append(str(_dict(s).get("name")))
    out: list[dict[str, Any]] = []
    for code, info in _dict(report.get("rejected_by_reason")).items():
        info = _dict(info)
        examples = [_dict(e) for e in _list(info.get("examples"))]
        out.append(
            {
                "code": str(code),
                "count": _int(info.get("count")),
                "stages": stages_of.get(str(code), []),
                "first_lines": _first_lines(
                    info.get("first_lines"), info.get("first_records"), input_order(report)
                ),
                "examples": [{**e, "record": _pretty(e.get("record"))} for e in examples],
            }
        )
    out.sort(key=lambda r: -r["count"])
    return out


def _warnings(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    order = input_order(report)
    out: list[dict[str, Any]] = [
        {
            "code": str(code),
            "count": _int(_dict(info).get("count")),
            "message": _dict(info).get("message"),
            "first_lines": _first_lines(
                _dict(info).get("first_lines"), _dict(info).get("first_records"), order
            ),
        }
        for code, info in _dict(report.get("warnings")).items()
    ]
    out.sort(key=lambda w: -w["count"])
    return out


def _tokens(report: Mapping[str, Any], limits: Mapping[str, Any]) -> dict[str, Any]:
    tokens = _dict(report.get("tokens"))
    splits = _dict(tokens.get("splits"))
    histogram = _dict(tokens.get("histogram"))
    edges = [e for e in _list(histogram.get("edges")) if isinstance(e, int | float)]
    counts = {
        s: [_int(c) for c in _list(histogram.get(s))]
        for s in SPLITS
        if len(_list(histogram.get(s))) == len(edges) - 1 and any(_list(histogram.get(s)))
    }
    limit = tokens.get("limit_per_example")
    if limit is None:
        limit = _dict(limits.get("tokens")).get("limit_per_example")
    longest = max((_int(_dict(v).get("max")) for v in splits.values() if v), default=None)
    return {
        "encoding": tokens.get("encoding") or _dict(limits.get("tokens")).get("encoding"),
        "limit": limit,
        "longest": longest,
        "stats": [(s, _dict(v)) for s, v in splits.items() if v],
        "edges": edges,
        "counts": counts,
        "totals": _dict(limits.get("tokens")),
        "image_tokens": tokens.get("image_tokens") or None,
        "lower_bound": bool(tokens.get("lower_bound")),
        "images_at_minimum": tokens.get("images_at_minimum"),
        "chat_template": tokens.get("chat_template"),
        "approximation": tokens.get("approximation"),
    }


def _messages(report: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    splits = _dict(_dict(report.get("messages")).get("splits"))
    return [(s, _dict(v)) for s, v in splits.items() if v]


def _roles(report: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(split, role, {examples, tokens}) rows of the report's `messages.roles`."""
    splits = _dict(_dict(report.get("messages")).get("roles"))
    return [
        (split, role, _dict(v))
        for split, roles in splits.items()
        for role, v in _dict(roles).items()
    ]


def _dataset(report: Mapping[str, Any]) -> dict[str, Any]:
    dataset = _dict(report.get("dataset"))
    totals = _dict(report.get("totals"))
    split = _dict(dataset.get("split"))
    dedupe = _dict(dataset.get("dedupe"))
    conflicts = _dict(dedupe.get("conflicts"))
    legacy = _dict(dataset.get("legacy_format"))
    known = ("split", "dedupe", "legacy_format", "dataset_limits")
    return {
        "totals": totals,
        "split": split,
        "split_facts": _facts(split, skip=("train", "validation", "records")),
        "leakage": _dict(split.get("leakage")),
        "strata": [_dict(c) for c in _list(_dict(split.get("strata")).get("classes"))][:MAX_ROWS],
        "dedupe": dedupe,
        "dedupe_facts": _facts(dedupe),
        "duplicate_classes": [_dict(e) for e in _list(dedupe.get("examples"))][:MAX_ROWS],
        "conflicts": conflicts,
        "conflicts_listed": [_dict(c) for c in _list(conflicts.get("listed"))][:MAX_ROWS],
        "more_conflicts": max(
            0, _int(conflicts.get("count")) - min(MAX_ROWS, len(_list(conflicts.get("listed"))))
        ),
        "classes": sorted(
            (
                (str(k) if str(k).strip() == str(k) else json.dumps(str(k)), _int(v))
                for k, v in _dict(legacy.get("classes")).items()
            ),
            key=lambda kv: -kv[1],
        )[:MAX_ROWS],
        "legacy_facts": _facts(legacy),
        "other": [
            (str(name), _facts(_dict(info)))
            for name, info in dataset.items()
            if name not in known and _facts(_dict(info))
        ],
    }


def _limits(report: Mapping[str, Any], limits: Mapping[str, Any]) -> dict[str, Any]:
    outputs = _dict(report.get("outputs"))
    files = _dict(limits.get("files"))
    most = outputs.get("max_file_bytes", files.get("max_file_bytes"))
    over = {str(n) for n in _list(outputs.get("over_max_file_bytes"))}
    sizes = _dict(outputs.get("bytes"))
    entries = []
    if "epochs" in limits or limits.get("cost_usd") is not None:
        entries.append({**limits, "target": limits.get("target"), "this_run": True})
    entries += [{**_dict(c), "this_run": False} for c in _list(limits.get("compare"))]
    return {
        "examples": _dict(limits.get("examples")),
        "tokens": _dict(limits.get("tokens")),
        "files": [
            {"name": str(name), "bytes": size, "max": most, "over": str(name) in over}
            for name, size in sizes.items()
        ],
        "max_file_bytes": most,
        "sharded": [str(s) for s in _list(files.get("sharded"))],
        "shard_note": files.get("note"),
        "rejected_file": outputs.get("rejected"),
        "metrics_file": outputs.get("metrics"),
        "cost": entries,
        "epochs_rule": limits.get("epochs_rule"),
        "has_notes": any(e.get("note") for e in entries),
    }


def _expectations(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    suites = []
    for suite in _list(_dict(report.get("gate")).get("expectations"))[:MAX_ROWS]:
        suite = _dict(suite)
        results = [_dict(r) for r in _list(suite.get("results"))]
        suites.append(
            {
                "name": suite.get("suite"),
                "path": suite.get("path"),
                "success": bool(suite.get("success")),
                "passed": sum(bool(r.get("success")) for r in results),
                "results": results[:MAX_ROWS],
                "more": max(0, len(results) - MAX_ROWS),
            }
        )
    return suites


def _inputs(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for inp in _list(report.get("inputs"))[:MAX_ROWS]:
        inp = _dict(inp)
        mapping = _dict(inp.get("mapping"))
        out.append(
            {
                **inp,
                "shape": mapping.get("shape"),
                "kind": mapping.get("kind"),
                "columns": [(str(k), str(v)) for k, v in _dict(mapping.get("columns")).items()],
            }
        )
    return out


def page_model(report: Mapping[str, Any]) -> dict[str, Any]:
    """What the template shows: the report's sections with defaults, lists cut."""
    limits = _dict(_dict(report.get("dataset")).get("dataset_limits"))
    reasons = _reasons(report)
    warnings = _warnings(report)
    inputs = _list(report.get("inputs"))
    verdict = _verdict(report)
    return {
        "verdict": verdict,
        "cards": _cards(report, limits),
        "totals": _dict(report.get("totals")),
        "steps": _steps(report),
        "more_steps": max(0, len(_list(report.get("stages"))) - MAX_ROWS),
        "reasons": reasons[:MAX_REASONS],
        "more_reasons": reasons[MAX_REASONS:],
        "warnings": warnings[:MAX_ROWS],
        "more_warnings": max(0, len(warnings) - MAX_ROWS),
        "tokens": _tokens(report, limits),
        "messages": _messages(report),
        "roles": _roles(report),
        "dataset": _dataset(report),
        "limits": _limits(report, limits),
        "expectations": _expectations(report),
        "inputs": _inputs(report),
        "more_inputs": max(0, len(inputs) - MAX_ROWS),
        "about": {
            "config": report.get("config"),
            "config_sha256": report.get("config_sha256"),
            "ftprep_version": report.get("ftprep_version"),
            "report_version": report.get("report_version"),
            "target_checked": verdict["target_checked"],
        },
    }


# --- charts: Vega-Lite (altair) rendered to SVG (vl-convert) ---------------------------------


def _funnel(alt: Any, steps: list[dict[str, Any]]) -> Any:
    order = [s["name"] for s in steps]
    bars = [
        {"step": s["name"], "part": part, "rows": rows, "i": i}
        for s in steps
        for i, (part, rows) in enumerate(
            (("kept", s["rows_out"]), ("rejected", s["rejected_total"]))
        )
        if rows
    ]
    labels = [
        {
            "step": s["name"],
            "end": max(s["rows_in"], s["rows_out"]),
            "label": f"{s['rows_out']:,}"
            + (f"   −{s['rejected_total']:,}" if s["rejected_total"] else ""),
        }
        for s in steps
    ]
    top = max((lab["end"] for lab in labels), default=1) or 1
    y = alt.Y("step:N", sort=order, title=None, axis=alt.Axis(labelLimit=180))
    x_scale = alt.Scale(domain=[0, top * 1.18], nice=False)
    bar = (
        alt.Chart(alt.Data(values=bars))
        .mark_bar(height={"band": 0.7})
        .encode(
            y=y,
            x=alt.X(
                "rows:Q",
                stack="zero",
                title="rows",
                scale=x_scale,
                axis=alt.Axis(tickCount=min(10, top), format=",d"),
            ),
            color=alt.Color(
                "part:N",
                title=None,
                scale=alt.Scale(
                    domain=["kept", "rejected"], range=[COLORS["kept"], COLORS["rejected"]]
                ),
                legend=alt.Legend(orient="top", direction="horizontal"),
            ),
            order=alt.Order("i:Q"),
        )
    )
    text = (
        alt.Chart(alt.Data(values=labels))
        .mark_text(align="left", dx=5, fontSize=11, color="#334155")
        .encode(y=y, x=alt.X("end:Q", scale=x_scale), text="label:N")
    )
    return alt.layer(bar, text).properties(width=820, height=max(60, 24 * len(steps)))


def _bars(
    alt: Any,
    values: list[dict[str, Any]],
    *,
    title: str,
    text_format: str,
    colors: tuple[str, str],
    axis: Any = None,
) -> Any:
    """Horizontal bars of `{label, value, flag}` rows in the given order, each labelled with its
    value; `colors`: the bars whose flag is false, then true."""
    order = [v["label"] for v in values]
    top = max((v["value"] for v in values), default=1) or 1
    y = alt.Y("label:N", sort=order, title=None, axis=alt.Axis(labelLimit=240))
    x = alt.X(
        "value:Q", title=title, scale=alt.Scale(domain=[0, top * 1.15], nice=False), axis=axis
    )
    base = alt.Chart(alt.Data(values=values))
    bar = base.mark_bar(height={"band": 0.7}).encode(
        y=y,
        x=x,
        color=alt.Color(
            "flag:N", legend=None, scale=alt.Scale(domain=[False, True], range=list(colors))
        ),
    )
    text = base.mark_text(align="left", dx=4, fontSize=11, color="#334155").encode(
        y=y, x=x, text=alt.Text("value:Q", format=text_format)
    )
    return alt.layer(bar, text).properties(width=740, height=max(40, 25 * len(values)))


def _reasons_chart(alt: Any, reasons: list[dict[str, Any]]) -> Any:
    """Records per reason; the reasons past CHART_REASONS summed as one grey bar."""
    shown = reasons[:CHART_REASONS]
    values = [{"label": r["code"], "value": r["count"], "flag": False} for r in shown]
    rest = reasons[CHART_REASONS:]
    if rest:
        values.append(
            {
                "label": f"({len(rest)} other reasons)",
                "value": sum(r["count"] for r in rest),
                "flag": True,
            }
        )
    top = max((v["value"] for v in values), default=1) or 1
    axis = alt.Axis(tickCount=min(10, top), format=",d")
    colors = (COLORS["rejected"], COLORS["other"])
    return _bars(alt, values, title="records", text_format=",", colors=colors, axis=axis)


def _histogram(alt: Any, tokens: dict[str, Any], stats: dict[str, dict[str, Any]]) -> Any:
    edges, limit = tokens["edges"], tokens["limit"]
    top = float(edges[-1])
    to_scale = isinstance(limit, int | float) and limit <= top * OFF_SCALE
    domain_top = max(top, float(limit) * 1.04) if to_scale else top
    x_scale = alt.Scale(domain=[float(edges[0]), domain_top], nice=False)
    charts = []
    for split, counts in tokens["counts"].items():
        values = [
            {"start": edges[i], "end": edges[i + 1], "count": c} for i, c in enumerate(counts)
        ]
        s = stats.get(split, {})
        title = f"{split}: {sum(counts):,} examples"
        if s:
            title += f" · median {fmt_number(s.get('p50'))} · p95 {fmt_number(s.get('p95'))}"
            title += f" · max {fmt_number(s.get('max'))} tokens"
        bars = (
            alt.Chart(alt.Data(values=values))
            .mark_bar(color=COLORS.get(split, COLORS["kept"]), stroke="#ffffff", strokeWidth=0.5)
            .encode(
                x=alt.X("start:Q", title="tokens per example", scale=x_scale),
                x2="end:Q",
                y=alt.Y(
                    "count:Q",
                    title="examples",
                    axis=alt.Axis(tickCount=max(1, min(5, max(counts))), format=",d"),
                ),
                y2=alt.datum(0),
            )
        )
        layers = [bars]
        if isinstance(limit, int | float):
            if to_scale:
                mark = {"x": float(limit), "label": f"limit {limit:,} "}
                rule = (
                    alt.Chart(alt.Data(values=[mark]))
                    .mark_rule(color=COLORS["limit"], strokeDash=[5, 3], strokeWidth=2)
                    .encode(x=alt.X("x:Q", scale=x_scale))
                )
                label = (
                    alt.Chart(alt.Data(values=[mark]))
                    .mark_text(
                        align="right",
                        baseline="top",
                        dx=-4,
                        y=2,
                        color=COLORS["limit"],
                        fontSize=11,
                        fontWeight=600,
                    )
                    .encode(x=alt.X("x:Q", scale=x_scale), text="label:N")
                )
                layers += [rule, label]
            else:
                mark = {"x": domain_top, "label": f"limit {limit:,} tokens →"}
                label = (
                    alt.Chart(alt.Data(values=[mark]))
                    .mark_text(
                        align="right",
                        baseline="top",
                        y=2,
                        color=COLORS["limit"],
                        fontSize=11,
                        fontWeight=600,
                    )
                    .encode(x=alt.X("x:Q", scale=x_scale), text="label:N")
                )
                layers.append(label)
        charts.append(alt.layer(*layers).properties(width=820, height=130, title=title))
    return alt.vconcat(*charts, spacing=18)


def _cost_chart(alt: Any, entries: list[dict[str, Any]]) -> Any:
    """Estimated cost per target; this run's target in blue, the compared ones grey."""
    values = [
        {"label": str(e.get("target")), "value": float(e["cost_usd"]), "flag": not e["this_run"]}
        for e in entries
        if isinstance(e.get("cost_usd"), int | float)
    ]
    colors = (COLORS["train"], COLORS["other"])
    return _bars(
        alt, values, title="estimated cost (USD)", text_format="$,.4~f", colors=colors
    )


def _svg(chart: Any) -> str:
    import altair as alt
    import vl_convert

    spec = chart.to_dict()
    spec["config"] = CHART_CONFIG
    version = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    known = vl_convert.get_vegalite_versions()
    svg = vl_convert.vegalite_to_svg(
        spec, vl_version=version if version in known else None, allowed_base_urls=[]
    )
    lowered = svg.lower()
    # The SVG is inserted unescaped: it must be markup vl-convert drew, nothing that runs.
    if not lowered.startswith("<svg") or "<script" in lowered or "foreignobject" in lowered:
        raise RuntimeError("vl-convert returned SVG with a script or foreign object")
    return svg


def charts(page: Mapping[str, Any]) -> dict[str, str]:
    """The page's charts as inline SVG text, by name (a chart without data is left out)."""
    import altair as alt

    out: dict[str, Any] = {}
    if page["steps"]:
        out["funnel"] = _funnel(alt, page["steps"])
    reasons = page["reasons"] + page["more_reasons"]
    if len(reasons) > 1:
        out["reasons"] = _reasons_chart(alt, reasons)
    tokens = page["tokens"]
    if tokens["counts"]:
        out["tokens"] = _histogram(alt, tokens, dict(tokens["stats"]))
    if len([e for e in page["limits"]["cost"] if e.get("cost_usd") is not None]) > 1:
        out["cost"] = _cost_chart(alt, page["limits"]["cost"])
    return {name: _svg(chart) for name, chart in out.items()}


def render_html(report: Mapping[str, Any]) -> str:
    """report.html for a report.json document: one self-contained page."""
    from markupsafe import Markup

    page = page_model(report)
    svgs = {name: Markup(svg) for name, svg in charts(page).items()}
    return environment().get_template("report.html.j2").render(r=page, charts=svgs)
