"""Decide a text file's encoding, then open it for strict decoding.

Rules, in order:

1. ``override`` (``input.encoding`` in the config) other than ``"auto"`` skips detection. The
   codec name is checked with `codecs.lookup`; the whole file is still checked to decode
   strictly, so a wrong override fails up front with the byte offset instead of mid-run.
   A BOM of the same encoding is removed (``utf-16``/``utf-32`` take their byte order from it).
2. A byte-order mark decides UTF-8, UTF-16 or UTF-32 (LE/BE) and is removed. Without one,
   UTF-16/32 is told by its NUL bytes (one in every code unit of ASCII/BMP text, at the same
   position), which no other text has.
3. Otherwise the whole file is checked as strict UTF-8, streamed in chunks through an
   incremental decoder (a 1 GB file is never held in memory). ASCII-only files are UTF-8.
4. If that fails, chardet looks at a sample that starts near the first byte that is not
   UTF-8 (chardet 7 examines only ``max_bytes`` = 200,000 bytes by default, and the start of
   a file is often plain ASCII that says nothing about the encoding). Its guess, widened to
   a decode-safe superset (GB2312/GBK -> GB18030, ...), must then decode the whole file.
   A guess with a confidence below ``LOW_CONFIDENCE`` (0.5) is used, with a warning
   (`note_confidence`: ``encoding_uncertain``, the guess, the confidence, a decoded sample and
   the ``input.encoding`` setting).
5. If nothing decodes the file, `PipelineError` names the file, the byte offset and the
   ``input.encoding`` setting that fixes it.

Invalid bytes in a file that is otherwise text (``input.encoding_errors``): a file that is not
strict UTF-8 but holds at least as many valid multi-byte UTF-8 characters as bytes that do not
decode is UTF-8 with invalid bytes, not some legacy encoding (decoding it as cp1252 would
change every accented letter silently). With ``errors="strict"`` such a file, or a BOM/override
encoding with bytes that do not decode, fails with the offset. Otherwise `detect` returns
``invalid`` (the first bad offset) and the readers decode with the ``ftprep-escape`` handler:
each byte that does not decode becomes one lone surrogate U+DC00+byte (no codec ever decodes
to one), so a reader finds the records that hold them (`first_escape`) and rejects them
(``encoding_invalid``) or replaces them with U+FFFD (`replace_escapes`).

`open_text` returns a text stream (strict, or escaping when the file has invalid bytes) with
``newline=""``: line endings reach the caller untranslated, as the csv module requires.
"""

from __future__ import annotations

import codecs
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TextIO

import chardet

from pipeline.errors import PipelineError

CHUNK_SIZE = 1 << 20  # bytes per read while checking a decode
SAMPLE_SIZE = 200_000  # bytes given to chardet (its own default max_bytes)
LOW_CONFIDENCE = 0.5  # below it a guessed encoding gives the `encoding_uncertain` warning
_SAMPLE_LEAD = 2048  # bytes before the first bad byte that the sample may start with

# Longest first: the UTF-32-LE BOM starts with the UTF-16-LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# chardet answers (normalised codec names) replaced by a superset that decodes more.
_SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "ascii": "utf-8",
}


@dataclass(frozen=True)
class Detected:
    """How to decode one file."""

    encoding: str  # Python codec name, as `codecs.lookup(...).name` spells it
    bom_len: int = 0  # bytes to skip at the start of the file
    bom_removed: bool = False
    confidence: float = 1.0  # 1.0 for a BOM, valid UTF-8 or an override; else chardet's
    invalid: int | None = None  # byte offset of the first byte that does not decode, if any

    @property
    def errors(self) -> str:
        """The codec error handler to read with: strict, or the escape handler."""
        return "strict" if self.invalid is None else ESCAPE


ENCODING_ERRORS = ("reject", "replace", "strict")
ESCAPE = "ftprep-escape"
_ESCAPED = re.compile("[\udc00-\udcff]")


def _escape(exc: UnicodeError) -> tuple[str | bytes, int]:
    """Decode: each undecodable byte -> U+DC00+byte. Encode: the reverse (exact round trip)."""
    if isinstance(exc, UnicodeDecodeError):
        bad = exc.object[exc.start : exc.end]
        return "".join(chr(0xDC00 + b) for b in bad), exc.end
    if isinstance(exc, UnicodeEncodeError):
        chars = exc.object[exc.start : exc.end]
        if all(0xDC00 <= ord(c) <= 0xDCFF for c in chars):
            return bytes(ord(c) - 0xDC00 for c in chars), exc.end
    raise exc


codecs.register_error(ESCAPE, _escape)


def first_escape(text: str) -> int | None:
    """Index of the first escaped (undecodable) byte in decoded ``text``, or None."""
    m = _ESCAPED.search(text)
    return None if m is None else m.start()


def replace_escapes(text: str) -> tuple[str, int]:
    """``text`` with each escaped byte replaced by U+FFFD, and how many were replaced."""
    return _ESCAPED.subn("\ufffd", text)


def escaped_bytes(text: str, encoding: str) -> int:
    """How many bytes ``text`` (decoded with the escape handler) took in the file: one per
    escaped byte, the rest encoded again (UTF-16/32 encoders take no byte-wise handler)."""
    clean, escaped = _ESCAPED.subn("", text)
    return len(clean.encode(encoding)) + escaped


def escape_at(text: str, encoding: str) -> tuple[int, str] | None:
    """``(byte offset within text, "0xNN")`` of its first undecodable byte, or None."""
    i = first_escape(text)
    if i is None:
        return None
    return escaped_bytes(text[:i], encoding), f"0x{ord(text[i]) - 0xDC00:02X}"


def invalid_message(encoding: str, line: int, offset: int, byte: str, what: str = "line") -> str:
    """The reject message of a record holding bytes that do not decode."""
    return (
        f"{what} {line} holds bytes that are not valid {encoding}: byte {byte} at byte offset "
        f"{offset}; fix the source, or set `input.encoding_errors: replace` to keep the record "
        "with U+FFFD in their place"
    )


def codec_name(name: str) -> str:
    """The canonical Python codec name for ``name``; `PipelineError` if there is none."""
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise PipelineError(
            f"input.encoding: {name!r} is not a known text encoding. Use a Python codec "
            "name such as utf-8, gbk, gb18030, cp1252 or latin-1, or 'auto' to detect it."
        ) from None


def bom_of(head: bytes) -> tuple[str, int] | None:
    for mark, encoding in _BOMS:
        if head.startswith(mark):
            return encoding, len(mark)
    return None


def first_bad_byte(path: Path, encoding: str, start: int = 0) -> tuple[int, str] | None:
    """Stream ``path`` from byte ``start`` through a strict decoder.

    Returns ``(absolute byte offset, reason)`` of the first byte that does not decode, or None
    when the whole file decodes.
    """
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    pos = start  # absolute offset of the next byte to read
    with path.open("rb") as f:
        f.seek(start)
        while True:
            chunk = f.read(CHUNK_SIZE)
            final = not chunk
            # The decoder keeps an incomplete sequence from the last chunk; error offsets
            # are relative to (pending + chunk).
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk, final=final)
            except UnicodeDecodeError as e:
                return pos - pending + e.start, e.reason
            if final:
                return None
            pos += len(chunk)


def utf8_counts(path: Path) -> tuple[int, int]:
    """``(bytes that are not UTF-8, valid non-ASCII characters)`` of the whole file, streamed."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors=ESCAPE)
    bad = good = 0
    with path.open("rb") as f:
        while True:
            chunk = f.read(CHUNK_SIZE)
            text = decoder.decode(chunk, final=not chunk)
            if text and not text.isascii():
                escaped = len(_ESCAPED.findall(text))
                bad += escaped
                good += len(text) - len(text.encode("ascii", "ignore")) - escaped
            if not chunk:
                return bad, good


def _wide_without_bom(path: Path) -> str | None:
    """UTF-16/32 without a BOM, told by where its NUL bytes fall in the first 64 KiB: text in
    them is mostly ASCII or BMP, so one byte of every code unit is NUL. Other text holds
    almost no NUL bytes (and would be valid, NUL-ridden UTF-8)."""
    with path.open("rb") as f:
        head = f.read(1 << 16)
    n = len(head) - len(head) % 4
    if n < 4 or head.count(0) < n // 4:
        return None
    units = [head[i:n:4].count(0) for i in range(4)]  # NULs at each position mod 4
    quarter = n // 4
    if units[1] + units[2] + units[3] > 0.9 * 3 * quarter and units[0] < 0.1 * quarter:
        return "utf-32-le"
    if units[0] + units[1] + units[2] > 0.9 * 3 * quarter and units[3] < 0.1 * quarter:
        return "utf-32-be"
    odd, even = units[1] + units[3], units[0] + units[2]
    if odd > 0.6 * 2 * quarter and even < 0.1 * 2 * quarter:
        return "utf-16-le"
    if even > 0.6 * 2 * quarter and odd < 0.1 * 2 * quarter:
        return "utf-16-be"
    return None


def _byte_at(path: Path, offset: int) -> str:
    with path.open("rb") as f:
        f.seek(offset)
        b = f.read(1)
    return f"0x{b[0]:02X}" if b else "end of file"


def _sample(path: Path, offset: int) -> bytes:
    """About SAMPLE_SIZE bytes starting at a line start just before ``offset``."""
    start = max(0, offset - _SAMPLE_LEAD)
    with path.open("rb") as f:
        f.seek(start)
        data = f.read(SAMPLE_SIZE + (offset - start))
    # Begin on a line boundary so chardet does not see half a multi-byte character.
    nl = data.rfind(b"\n", 0, offset - start)
    if nl >= 0:
        data = data[nl + 1 :]
    return data[:SAMPLE_SIZE]


def _chardet_guess(sample: bytes) -> tuple[str | None, float]:
    """chardet 7's guess as a canonical Python codec name (None when it found no text)."""
    result = chardet.detect(
        sample,
        max_bytes=len(sample),
        prefer_superset=True,  # decode-safe supersets: the sample is not the whole file
        compat_names=False,  # Python codec names, not chardet 5 display names
    )
    name = result.get("encoding")
    confidence = float(result.get("confidence") or 0.0)
    if not name:
        return None, confidence
    try:
        canonical = codecs.lookup(name).name
    except LookupError:
        return None, confidence
    return _SUPERSETS.get(canonical, canonical), confidence


def _undecodable(path: Path, what: str) -> PipelineError:
    return PipelineError(
        f"{path}: cannot decode the file as text: {what}. If you know its encoding, set "
        "`input.encoding: <name>` in the config (for example `input.encoding: gbk`, "
        "`cp1252` or `latin-1`)."
    )


def detect(path: Path, override: str = "auto", errors: str = "strict") -> Detected:
    """Decide how to decode ``path``.

    With ``errors="strict"``, `PipelineError` if the encoding does not decode all of it. With
    ``"reject"`` or ``"replace"`` a file in a known encoding (a BOM, the override, or UTF-8
    with valid multi-byte characters) that holds bytes that do not decode is returned with
    ``invalid`` set: its readers deal with the records that hold them.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as e:
        raise PipelineError(f"{path}: cannot open the file: {e.strerror or e}") from None
    bom = bom_of(head)

    if override and override.lower() != "auto":
        encoding = codec_name(override)
        bom_len = 0
        if encoding == "utf-8-sig":
            encoding = "utf-8"
            bom_len = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
        elif bom is not None and (bom[0] == encoding or bom[0].startswith(encoding + "-")):
            # The BOM of the named encoding ("utf-16" also takes its -le/-be form from it).
            encoding, bom_len = bom
        bad = first_bad_byte(path, encoding, bom_len)
        if bad is not None and errors != "strict":
            return Detected(encoding, bom_len, bom_len > 0, 1.0, invalid=bad[0])
        if bad is not None:
            offset, reason = bad
            raise PipelineError(
                f"{path}: input.encoding is {override!r} but the file does not decode with "
                f"it: byte {_byte_at(path, offset)} at byte offset {offset} ({reason}). "
                "Set `input.encoding: auto` to detect the encoding, or name the right one; "
                "`input.encoding_errors: reject` rejects only the records that hold such bytes."
            )
        return Detected(encoding, bom_len, bom_len > 0, 1.0)

    if bom is not None:
        encoding, bom_len = bom
        bad = first_bad_byte(path, encoding, bom_len)
        if bad is not None and errors != "strict":
            return Detected(encoding, bom_len, True, 1.0, invalid=bad[0])
        if bad is not None:
            offset, reason = bad
            raise _undecodable(
                path,
                f"it starts with a {encoding} byte-order mark but byte "
                f"{_byte_at(path, offset)} at byte offset {offset} is not {encoding} ({reason})",
            )
        return Detected(encoding, bom_len, True, 1.0)

    wide = _wide_without_bom(path)
    if wide is not None:
        bad = first_bad_byte(path, wide)
        if bad is None:
            return Detected(wide, 0, False, 1.0)
        if errors != "strict":
            return Detected(wide, 0, False, 1.0, invalid=bad[0])
        raise _undecodable(path, f"it looks like {wide} but byte offset {bad[0]} is not ({bad[1]})")

    bad = first_bad_byte(path, "utf-8")
    if bad is None:
        return Detected("utf-8", 0, False, 1.0)
    utf8_offset, utf8_reason = bad
    not_utf8 = (
        f"it is not UTF-8 (byte {_byte_at(path, utf8_offset)} at byte offset {utf8_offset}: "
        f"{utf8_reason})"
    )

    n_bad, n_good = utf8_counts(path)
    if n_good >= n_bad:  # UTF-8 text with some bytes that are not: no legacy encoding
        if errors != "strict":
            return Detected("utf-8", 0, False, 1.0, invalid=utf8_offset)
        raise PipelineError(
            f"{path}: the file is UTF-8 ({n_good} multi-byte characters) but {n_bad} bytes "
            f"are not, the first {_byte_at(path, utf8_offset)} at byte offset {utf8_offset} "
            f"({utf8_reason}). Fix them, or set `input.encoding_errors: reject` (reject the "
            "records that hold them) or `replace` (keep them with U+FFFD)."
        )

    guess, confidence = _chardet_guess(_sample(path, utf8_offset))
    if guess is None or guess == "utf-8":
        raise _undecodable(path, f"{not_utf8} and no other text encoding fits (binary data?)")
    bad = first_bad_byte(path, guess)
    if bad is not None:
        offset, reason = bad
        raise _undecodable(
            path,
            f"{not_utf8}, and the detected encoding {guess} fails at byte offset {offset} "
            f"(byte {_byte_at(path, offset)}: {reason})",
        )
    return Detected(guess, 0, False, confidence)


def decoded_sample(path: Path, detected: Detected, width: int = 100) -> str:
    """The text around the first byte that is not ASCII, decoded as `detected` says: what a
    person reads to judge a guessed encoding."""
    with Path(path).open("rb") as f:
        f.seek(detected.bom_len)
        head = f.read(CHUNK_SIZE)
    m = re.search(rb"[\x80-\xff]", head)
    at = m.start() if m else 0
    start = max(head.rfind(b"\n", 0, at) + 1, at - width // 2)
    chunk = head[start : start + 4 * width]
    text = chunk.decode(detected.encoding, errors="replace")
    if start > 0 and "\ufffd" in text[:4]:  # cut inside a character: drop its tail
        text = text.lstrip("\ufffd")
    line = text.splitlines()[0] if text.strip() else text
    return line[:width]


class _Warns(Protocol):
    def warn(self, code: str, message: str) -> None: ...


def note_confidence(path: Path, detected: Detected, stats: _Warns) -> None:
    """Warn `encoding_uncertain` when the encoding was guessed with a confidence below
    `LOW_CONFIDENCE`: the guess, the confidence, a decoded sample and the setting to fix it."""
    if detected.confidence >= LOW_CONFIDENCE:
        return
    stats.warn(
        "encoding_uncertain",
        f"the text encoding was guessed as {detected.encoding} with confidence "
        f"{detected.confidence:.2f} (below {LOW_CONFIDENCE}); check this decoded sample: "
        f"{decoded_sample(path, detected)!r}. If it reads wrong, set `input.encoding: <name>` "
        "(for example cp1252, latin-1, gbk, big5, shift_jis; `ftprep convert --encoding "
        "<name>`); if it reads right, set "
        f"`input.encoding: {detected.encoding}` to silence this warning.",
    )


def open_text(path: Path, detected: Detected) -> TextIO:
    """Open ``path`` as strict text past its BOM, with line endings left as they are."""
    raw = Path(path).open("rb")  # noqa: SIM115 - handed to the TextIOWrapper, which closes it
    try:
        raw.seek(detected.bom_len)
        return io.TextIOWrapper(
            raw, encoding=detected.encoding, errors=detected.errors, newline=""
        )
    except BaseException:
        raw.close()
        raise
