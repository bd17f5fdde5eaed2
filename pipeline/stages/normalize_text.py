"""normalize_text: Unicode NFC, zero-width characters and stray BOMs, CRLF -> LF.

Works on every text a record trains on: prompt and completion, message contents (strings and
text parts) of chat and preference records. Every change is counted (report: stage `changes`).
Nothing is cut, lower-cased or stripped unless configured (`strip_trailing`).

Reason codes: none (this stage only fixes).
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from pipeline.configdoc import doc
from pipeline.records import count_change
from pipeline.registry import Changes, register

# Removed always: they have no visible effect and break string matching. ZWJ (U+200D) and
# ZWNJ (U+200C) are kept unless `remove_joiners`: emoji sequences and Persian/Indic scripts need them.
_ZERO_WIDTH = {"\u200b": None, "\u2060": None, "\u180e": None}
_JOINERS = {"\u200c": None, "\u200d": None}
_BOM = "\ufeff"


@dataclass(frozen=True)
class NormalizeTextConfig:
    form: Literal["NFC", "NFKC", "none"] = doc(
        "Unicode normal form applied to every text; `none` leaves it.", "NFC"
    )
    zero_width: bool = doc(
        "Remove zero-width space U+200B, word joiner U+2060, U+180E and stray BOMs U+FEFF.",
        True,
    )
    remove_joiners: bool = doc(
        "Also remove ZWJ U+200D and ZWNJ U+200C (they are meaningful in emoji and some scripts).",
        False,
    )
    newlines: bool = doc("Turn CRLF and lone CR inside text into LF.", True)
    strip_trailing: bool = doc(
        "Strip trailing whitespace from every text. Off by default: legacy separators such as "
        "`\\n\\n###\\n\\n` end in whitespace.",
        False,
    )


class _Fixer:
    def __init__(self, cfg: NormalizeTextConfig) -> None:
        self.cfg = cfg
        table = dict(_ZERO_WIDTH) if cfg.zero_width else {}
        if cfg.remove_joiners:
            table.update(_JOINERS)
        self.table = str.maketrans(table) if table else None
        self.removed = tuple(table)
        self.counts: Counter[str] = Counter()

    def text(self, s: str) -> str:
        cfg = self.cfg
        if cfg.zero_width and _BOM in s:
            self.counts["bom_removed"] += s.count(_BOM)
            s = s.replace(_BOM, "")
        if self.table is not None and any(ch in s for ch in self.removed):
            # `in` is a fast scan; translate with a table is slow, so only when needed
            t = s.translate(self.table)
            self.counts["zero_width_removed"] += len(s) - len(t)
            s = t
        if cfg.newlines and "\r" in s:
            self.counts["crlf_to_lf"] += 1
            s = s.replace("\r\n", "\n").replace("\r", "\n")
        if cfg.form != "none" and not unicodedata.is_normalized(cfg.form, s):
            self.counts[f"{cfg.form.lower()}_changed"] += 1
            s = unicodedata.normalize(cfg.form, s)
        if cfg.strip_trailing:
            t = s.rstrip()
            if len(t) != len(s):
                self.counts["trailing_stripped"] += 1
                s = t
        return s

    def value(self, v: Any) -> Any:
        if isinstance(v, str):
            return self.text(v)
        return v

    def content(self, content: Any) -> Any:
        if isinstance(content, str):
            return self.text(content)
        if isinstance(content, list):
            return [self.part(p) for p in content]
        return content

    def part(self, p: Any) -> Any:
        if isinstance(p, dict) and isinstance(p.get("text"), str):
            return {**p, "text": self.text(p["text"])}
        if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("value"), str):
            return {**p, "value": self.text(p["value"])}
        return p

    def messages(self, msgs: Any) -> Any:
        if not isinstance(msgs, list):
            return msgs
        out = []
        for m in msgs:
            if isinstance(m, dict) and "content" in m:
                m = {**m, "content": self.content(m["content"])}
            out.append(m)
        return out

    def preference_input(self, inp: Any) -> Any:
        if isinstance(inp, dict) and "messages" in inp:
            return {**inp, "messages": self.messages(inp["messages"])}
        return inp


@register("normalize_text", NormalizeTextConfig, "Unicode NFC, zero-width characters, CRLF.")
def normalize_text(batch: pd.DataFrame, cfg: NormalizeTextConfig) -> tuple[pd.DataFrame, Changes]:
    out = batch.copy()
    changes: Changes = Counter()
    fix = _Fixer(cfg)
    for col in ("prompt", "completion"):
        if col in out:
            out[col] = out[col].map(fix.value).astype(object)
    for col in ("messages", "preferred_output", "non_preferred_output"):
        if col in out:
            out[col] = out[col].map(fix.messages).astype(object)
    if "input" in out:
        out["input"] = out["input"].map(fix.preference_input).astype(object)
    for name, n in sorted(fix.counts.items()):
        count_change(changes, name, n)
    return out, changes
