"""Whether the first row of a CSV/TSV file or a sheet is a header: compare it with the rows below.

`input.header: auto` (the default) decides with `guess_header`; `true`/`false` decide, and a first
row that clearly says otherwise gives a warning naming the key. Each piece of evidence is one
vote, for a header or for data, column by column (`csv.Sniffer.has_header`'s two tests, type and
fixed length, are the first two):

- type: the cells below are numbers (or dates, or booleans) and row 1's cell is text: header;
  row 1's cell is of the same type: data;
- fixed length: every cell below has the same length and row 1's has another: header;
- length: the cells below are long free text (median 20 characters or more) and row 1's cell is
  a short name (a quarter of that at most): header; row 1's cell is itself long (40 characters
  or more) or within the range of the lengths below: data;
- sentences: most cells below end a sentence (``. ? ! 。 ？ ！ ؟ ।``) and row 1's cell does too:
  data; it does not: header;
- repetition: row 1's cell appears again below it (a label, a category): data; a column of few
  distinct values whose row 1 cell is none of them: header;
- names: a known prompt/completion column name in any of the languages of `pipeline.read.names`
  (question, 问题, 質問, 질문, pregunta, frage, soru ...) as a short cell (under 40 characters,
  4 words at most): two votes for a header;
- uniqueness: row 1 repeats a cell, or leaves cells empty that the rows below fill: data.

More header votes than data votes, or a tie, is a header (ftprep's behaviour before the key
existed); the decision is *firm* when one side leads by two votes or more. With no rows below to
compare with, row 1 is a header, not firmly.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.read.base import ReadStats
from pipeline.read.names import known_name

SAMPLE_ROWS = 50  # rows below row 1 compared with it
LONG_TEXT = 20  # median characters of a column of free text
LONG_CELL = 40  # a row-1 cell this long is data, not a name
FIRM = 2  # votes one side must lead by for a firm decision

_NUMBER = re.compile(r"[-+]?(\d[\d,. _']*)?\d(\.\d+)?([eE][-+]?\d+)?%?")
_DATE = re.compile(
    r"\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?|\d{1,2}[/.]\d{1,2}[/.]\d{2,4}"
)
_BOOL = {"true", "false", "yes", "no"}
_SENTENCE_END = (".", "?", "!", "…", "。", "？", "！", "؟", "।")


@dataclass(frozen=True)
class HeaderGuess:
    header: bool
    firm: bool
    why: str  # the strongest evidence, in words


def kind(value: str) -> str:
    """`empty`, `number`, `date`, `bool` or `text`."""
    v = value.strip()
    if not v:
        return "empty"
    if _NUMBER.fullmatch(v):
        return "number"
    if _DATE.fullmatch(v):
        return "date"
    if v.lower() in _BOOL:
        return "bool"
    return "text"


def _majority(values: Sequence[str]) -> str | None:
    kinds = [kind(v) for v in values]
    for k in ("number", "date", "bool", "text"):
        if kinds.count(k) >= 0.8 * len(kinds):
            return k
    return None


def guess_header(first: Sequence[str], below: Sequence[Sequence[str]]) -> HeaderGuess:
    """Whether `first` (row 1) is a header of the rows `below` it (the next rows, non-empty)."""
    rows = [r for r in below if any(str(v).strip() for v in r)][:SAMPLE_ROWS]
    first = [str(v) for v in first]
    named = [h for h in first if h.strip()]
    if not named:
        return HeaderGuess(False, True, "row 1 has no text")
    if not rows:
        return HeaderGuess(True, False, "no rows below row 1 to compare it with")
    header: list[str] = []  # one entry per vote, saying why
    data: list[str] = []
    known = [h for h in named if len(h) < LONG_CELL and len(h.split()) <= 4 and known_name(h)]
    if known:
        header += [f"{known[0]!r} is a usual column name"] * 2
    if len({h.strip() for h in named}) < len(named):
        data.append("row 1 repeats a value")
    for j, h in enumerate(first):
        column = [str(r[j]) for r in rows if j < len(r)]
        filled = [v for v in column if v.strip()]
        if not filled:
            continue
        if not h.strip():
            if len(filled) >= 0.8 * len(column):
                data.append(f"row 1 leaves column {j + 1} empty, the rows below fill it")
            continue
        _vote(h.strip(), filled, header, data)
    score = len(header) - len(data)
    is_header = score >= 0
    firm = abs(score) >= FIRM
    why = (header if is_header else data) or ["nothing tells row 1 from the rows below"]
    return HeaderGuess(is_header, firm, why[0])


def _vote(h: str, filled: list[str], header: list[str], data: list[str]) -> None:
    """The votes of one column: its row-1 cell `h` against the filled cells below it."""
    below_kind = _majority(filled)
    h_kind = kind(h)
    shown = _show(h)
    if below_kind in ("number", "date", "bool"):
        if h_kind == "text":
            header.append(f"{shown} is text above a column of {below_kind}s")
        elif h_kind == below_kind:
            data.append(f"{shown} is a {h_kind} like the cells below it")
        return
    if h_kind != "text":
        if below_kind == "text":
            data.append(f"{shown} is a {h_kind}, not a name")
        return
    lengths = [len(v) for v in filled]
    if len(filled) >= 3 and len(set(lengths)) == 1 and len(h) != lengths[0]:
        header.append(f"{shown} differs in length from the fixed-length cells below it")
        return
    median = statistics.median(lengths)
    if len(h) >= LONG_CELL:
        data.append(f"{shown} is {len(h)} characters long, more than a column name")
    elif median >= LONG_TEXT and len(h) <= median / 4:
        header.append(f"{shown} is a short name above long text (median {median:.0f} characters)")
    elif median >= LONG_TEXT and min(lengths) <= len(h):
        data.append(f"{shown} is as long as the text below it")
    ending = sum(v.rstrip().endswith(_SENTENCE_END) for v in filled)
    if ending >= len(filled) / 2:
        if h.endswith(_SENTENCE_END):
            data.append(f"{shown} ends a sentence, like most cells below it")
        else:
            header.append(f"{shown} ends no sentence, unlike most cells below it")
    if h in filled:
        data.append(f"{shown} appears again below row 1")
    elif len(filled) >= 6 and len(set(filled)) <= len(filled) / 3:
        header.append(f"{shown} is none of the few values of the column below it")


def _show(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "…")


def preview(row: Sequence[str], width: int = 80) -> str:
    """Row 1 as a short text for a message."""
    text = " | ".join(str(v) for v in row)
    return text if len(text) <= width else text[:width] + "…"


def decide(
    setting: str | bool, first: Sequence[str], below: Sequence[Sequence[str]], stats: ReadStats
) -> bool:
    """Whether row 1 is read as the header, by `input.header` (`setting`); records the choice in
    `stats` and warns (`header_guessed`, `header_mismatch`) where a row could be misread."""
    guess = guess_header(first, below)
    row = preview(first)
    if setting == "auto":
        stats.header_from = "detected"
        use = guess.header
        if not use:
            stats.warn(
                "header_guessed",
                f"row 1 looks like data, not a header ({guess.why}): it is read as a record and "
                "the columns are named column_1, column_2, ...; set `input.header: true` "
                f"(`--header true` in ftprep convert) if it is the header (row 1: {row})",
            )
        elif not guess.firm:
            stats.warn(
                "header_guessed",
                f"row 1 is taken as the header, but the rows below do not confirm it "
                f"({guess.why}); set `input.header: false` (`--header false` in ftprep "
                f"convert) if it is data, or it is not read as a record (row 1: {row})",
            )
    else:
        stats.header_from = "config"
        use = bool(setting)
        if use and not guess.header and guess.firm:
            stats.warn(
                "header_mismatch",
                f"input.header is true but row 1 looks like data ({guess.why}): it is not read "
                f"as a record; set `input.header: false` (or auto) if it is data (row 1: {row})",
            )
        elif not use and guess.header and guess.firm:
            stats.warn(
                "header_mismatch",
                f"input.header is false but row 1 looks like a header ({guess.why}): it is read "
                f"as a record; set `input.header: true` (or auto) if it is the header "
                f"(row 1: {row})",
            )
    stats.header = use
    return use


def numbered(width: int) -> list[str]:
    """Column names of a header-less table: column_1, column_2, ... (1-based, as in a sheet)."""
    return [f"column_{i}" for i in range(1, width + 1)]
