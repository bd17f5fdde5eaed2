"""Text normalisation for comparing texts: what `dedupe` `normalized` and `near` modes compare.

`TextNormalizer` applies NFKC, then (each optional) case folding, Unicode punctuation
stripping and whitespace collapsing; `many` normalises a whole batch in one pass (ASCII texts
as bytes) with the same result as one call per text. `map_strings` applies it to every string
of a JSON-like value; `strings_of` and `refill` take a value's strings out and put them back,
so that a batch's strings go through one `many` pass (`identity.normalized_hash128`).
`mostly_cjk` tells whether a text is mostly Han, kana or Hangul (near mode shingles such a
text by characters rather than words).
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

_PUNCTUATION_PLANES = 0x20000  # planes 2-16 (ideographs, tags, private use) have none


@lru_cache(maxsize=1)
def _punctuation() -> tuple[dict[int, None], bytes, np.ndarray]:
    """Unicode punctuation (categories P*): a str.translate table, the ASCII ones as bytes, and
    a mask over all code points (built once per process)."""
    table = {
        cp: None for cp in range(_PUNCTUATION_PLANES) if unicodedata.category(chr(cp))[0] == "P"
    }
    mask = np.zeros(sys.maxunicode + 1, dtype=bool)
    mask[list(table)] = True
    return table, bytes(cp for cp in table if cp < 128), mask


class TextNormalizer:
    """NFKC, then the configured case folding, punctuation stripping and whitespace collapsing.

    `many` gives the same result as calling it on each text, with one pass over the batch.
    """

    def __init__(
        self,
        *,
        casefold: bool = True,
        strip_punctuation: bool = True,
        collapse_whitespace: bool = True,
    ) -> None:
        self.casefold = casefold
        self.strip = strip_punctuation
        self.collapse = collapse_whitespace
        self.table: dict[int, None] = {}
        self.ascii_punct = b""
        self.mask = np.zeros(0, dtype=bool)
        if self.strip:
            self.table, self.ascii_punct, self.mask = _punctuation()

    def _fold(self, s: str, long: bool = False) -> str:
        ascii_only = s.isascii()
        if not ascii_only:
            s = unicodedata.normalize("NFKC", s)
        if self.casefold:
            s = s.casefold()
        if self.strip:
            if ascii_only:
                s = s.encode().translate(None, self.ascii_punct).decode()
            elif long:  # a code-point mask beats str.translate on long texts
                cps = np.frombuffer(s.encode("utf-32-le", "surrogatepass"), dtype="<u4")
                s = cps[~self.mask[cps]].tobytes().decode("utf-32-le", "surrogatepass")
            else:
                s = s.translate(self.table)
        return s

    def __call__(self, s: str) -> str:
        s = self._fold(s)
        return " ".join(s.split()) if self.collapse else s

    def many(self, texts: Sequence[str]) -> list[str]:
        if len(texts) < 2:
            return [self(t) for t in texts]
        out = [""] * len(texts)
        ascii_rows: list[int] = []
        other_rows: list[int] = []
        for i, t in enumerate(texts):
            (ascii_rows if t.isascii() else other_rows).append(i)
        for rows, fn in ((ascii_rows, self._many_ascii), (other_rows, self._many_unicode)):
            if rows:
                for i, text in zip(rows, fn([texts[i] for i in rows]), strict=True):
                    out[i] = text
        return out

    def _many_unicode(self, texts: list[str]) -> list[str]:
        big = "\x00".join(texts)  # NUL: unchanged by every step, and never composes
        if len(texts) < 2 or big.count("\x00") != len(texts) - 1:
            return [self(t) for t in texts]
        parts = self._fold(big, long=True).split("\x00")
        return [" ".join(p.split()) for p in parts] if self.collapse else parts

    def _many_ascii(self, texts: list[str]) -> list[str]:
        """ASCII texts: NFKC is the identity and case folding is lower(), all on bytes."""
        big = "\x00".join(texts).encode()
        if len(texts) < 2 or big.count(b"\x00") != len(texts) - 1:
            return [self(t) for t in texts]
        if not self.collapse:
            return big.translate(self._ascii_table(), self.ascii_punct).decode().split("\x00")
        if any(c in big for c in _STR_ONLY_SPACES):
            big = big.translate(self._ascii_table(), self.ascii_punct)
            return [" ".join(p.split()) for p in big.decode().split("\x00")]
        # one pass: lower case, punctuation out, every other ASCII whitespace to a space; then
        # runs of spaces to one, and each text trimmed
        big = big.translate(self._ascii_table(spaces=True), self.ascii_punct)
        while b"  " in big:
            big = big.replace(b"  ", b" ")
        return [p.strip(" ") for p in big.decode().split("\x00")]

    def _ascii_table(self, spaces: bool = False) -> bytes:
        """The byte table of the ASCII steps: case folding (lower()) and, with `spaces`, ASCII
        whitespace to a space (deleting punctuation is translate's second argument)."""
        key = (self.casefold, spaces)
        table = _ASCII_TABLES.get(key)
        if table is None:
            out = bytearray(range(256))
            if self.casefold:
                out[65:91] = bytes(range(97, 123))
            if spaces:
                for c in b"\t\n\r\x0b\x0c":
                    out[c] = 32
            table = _ASCII_TABLES.setdefault(key, bytes(out))
        return table


_STR_ONLY_SPACES = (b"\x1c", b"\x1d", b"\x1e", b"\x1f")  # str.split() splits on them
_ASCII_TABLES: dict[tuple[bool, bool], bytes] = {}


def map_strings(value: Any, fn: Callable[[str], str]) -> Any:
    """`value` with `fn` applied to every string in it (tuples become lists, keys untouched)."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list | tuple):
        return [map_strings(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: map_strings(v, fn) for k, v in value.items()}
    return value


def strings_of(value: Any, out: list[str]) -> None:
    """Append every string of a JSON-like value to `out`, in `map_strings`' order."""
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, list | tuple):
        for v in value:
            strings_of(v, out)
    elif isinstance(value, dict):
        for v in value.values():
            strings_of(v, out)


def refill(value: Any, it: Iterator[str]) -> Any:
    """`value` with its strings taken, in order, from `it` (the inverse walk of `strings_of`)."""
    if isinstance(value, str):
        return next(it)
    if isinstance(value, list | tuple):
        return [refill(v, it) for v in value]
    if isinstance(value, dict):
        return {k: refill(v, it) for k, v in value.items()}
    return value


_CJK = re.compile(
    "[\u1100-\u11ff\u2e80-\u2fdf\u3040-\u30ff\u3100-\u318f\u31f0-\u31ff\u3400-\u4dbf"
    "\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f]"
)


def mostly_cjk(text: str) -> bool:
    """More than half of the non-space characters are Han, kana or Hangul."""
    if text.isascii():
        return False
    letters = len(text) - sum(map(text.count, (" ", "\n", "\t")))
    return letters > 0 and 2 * len(_CJK.findall(text)) > letters
