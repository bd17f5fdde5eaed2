"""How the report pages write numbers, sizes and prices (report.md and report.html alike)."""

from __future__ import annotations

from typing import Any

MISSING = "–"


def number(value: Any) -> str | None:
    """`1,234`, `52.97`, `yes`/`no` or `–`; None when `value` is not a number (the caller shows
    it as text, escaped its own way)."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        if value == int(value) and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return None


def size(value: Any) -> str:
    """`812 B`, `67.5 KiB`, `1.2 GiB`; `–` for anything but a whole number."""
    if not isinstance(value, int) or isinstance(value, bool):
        return MISSING
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{value:,} B" if unit == "B" else f"{amount:,.1f} {unit}"
        amount /= 1024
    return f"{value:,} B"  # unreachable


def usd(value: Any) -> str:
    """`$0.1311`, `$0`; `–` for anything but a number."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return MISSING
    return "$" + (f"{value:,.4f}".rstrip("0").rstrip(".") if value else "0")
