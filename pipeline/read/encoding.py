"""Decide a text file's encoding, then open it for strict decoding.

Rules, in order:

1. ``override`` (``input.encoding`` in the config) other than ``"auto"`` skips detection. The
   codec name is checked with `codecs.lookup`; the whole file is still checked to decode
   strictly, so a wrong override fails up front with the byte offset instead of mid-run.
   A BOM of the same encoding is removed (``utf-16``/``utf-32`` take their byte order from it).
2. A byte-order mark decides UTF-8, UTF-16 or UTF-32 (LE/BE) and is removed.
3. Otherwise the whole file is checked as strict UTF-8, streamed in chunks through an
   incremental decoder (a 1 GB file is never held in memory). ASCII-only files are UTF-8.
4. If that fails, chardet looks at a sample that starts near the first byte that is not
   UTF-8 (chardet 7 examines only ``max_bytes`` = 200,000 bytes by default, and the start of
   a file is often plain ASCII that says nothing about the encoding). Its guess, widened to
   a decode-safe superset (GB2312/GBK -> GB18030, ...), must then decode the whole file.
5. If nothing decodes the file, `PipelineError` names the file, the byte offset and the
   ``input.encoding`` setting that fixes it.

`open_text` returns a strict text stream with ``newline=""``: line endings reach the
caller untranslated, as the csv module requires.
"""

from __future__ import annotations

import codecs
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import chardet

from pipeline.errors import PipelineError

CHUNK_SIZE = 1 << 20  # bytes per read while checking a decode
SAMPLE_SIZE = 200_000  # bytes given to chardet (its own default max_bytes)
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


def codec_name(name: str) -> str:
    """The canonical Python codec name for ``name``; `PipelineError` if there is none."""
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise PipelineError(
            f"input.encoding: {name!r} is not a known text encoding. Use a Python codec "
            "name such as utf-8, gbk, gb18030, cp1252 or latin-1, or 'auto' to detect it."
        ) from None


def _bom(head: bytes) -> tuple[str, int] | None:
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


def detect(path: Path, override: str = "auto") -> Detected:
    """Decide how to decode ``path``; `PipelineError` if no encoding decodes all of it."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as e:
        raise PipelineError(f"{path}: cannot open the file: {e.strerror or e}") from None
    bom = _bom(head)

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
        if bad is not None:
            offset, reason = bad
            raise PipelineError(
                f"{path}: input.encoding is {override!r} but the file does not decode with "
                f"it: byte {_byte_at(path, offset)} at byte offset {offset} ({reason}). "
                "Set `input.encoding: auto` to detect the encoding, or name the right one."
            )
        return Detected(encoding, bom_len, bom_len > 0, 1.0)

    if bom is not None:
        encoding, bom_len = bom
        bad = first_bad_byte(path, encoding, bom_len)
        if bad is not None:
            offset, reason = bad
            raise _undecodable(
                path,
                f"it starts with a {encoding} byte-order mark but byte "
                f"{_byte_at(path, offset)} at byte offset {offset} is not {encoding} ({reason})",
            )
        return Detected(encoding, bom_len, True, 1.0)

    bad = first_bad_byte(path, "utf-8")
    if bad is None:
        return Detected("utf-8", 0, False, 1.0)
    utf8_offset, utf8_reason = bad
    not_utf8 = (
        f"it is not UTF-8 (byte {_byte_at(path, utf8_offset)} at byte offset {utf8_offset}: "
        f"{utf8_reason})"
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


def open_text(path: Path, detected: Detected) -> TextIO:
    """Open ``path`` as strict text past its BOM, with line endings left as they are."""
    raw = Path(path).open("rb")  # noqa: SIM115 - handed to the TextIOWrapper, which closes it
    try:
        raw.seek(detected.bom_len)
        return io.TextIOWrapper(raw, encoding=detected.encoding, errors="strict", newline="")
    except BaseException:
        raw.close()
        raise
