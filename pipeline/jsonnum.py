"""JSON integers past 64 bits: orjson, which parses everything else, turns them into floats
silently; the standard library keeps them exact. Shared by the JSON readers and by the writer
that reads spooled records back (`pipeline.write.outputs`)."""

from __future__ import annotations

from typing import Any

# 2**64 has 20 digits: a longer integer may lose digits. Looked for by mapping every ASCII digit
# to "0" and everything else to " " (`bytes.translate`, C speed), then a plain substring
# search: 15x faster than the regex `\d{20}`, which cost more than parsing the line.
_DIGITS = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
_LONG_RUN = b"0" * 20


def has_long_number(text: bytes) -> bool:
    """Whether `text` holds a run of 20 or more ASCII digits (the regex `rb"\\d{20}"`)."""
    return _LONG_RUN in text.translate(_DIGITS)


def exact(text: bytes | str, value: Any) -> Any:
    """`value` parsed again by the standard library, which keeps integers past 64 bits exact
    (orjson turns them into floats, silently). Only for text with a long run of digits."""
    import json

    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return value
