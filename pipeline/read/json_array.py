"""JSON files holding an array of records (Alpaca, ShareGPT and similar exports).

- The top level is an array (pretty-printed or on one line), or an object with exactly one
  array value, which is used (``{"data": [...], "version": 1}``), or the array that
  ``input.records`` names (a key, or a dotted path such as ``data.items``). An object with
  several arrays and no ``input.records`` fails, listing them (with their lengths) and
  suggesting the key of the one that holds the most objects.
- A clean UTF-8 file (BOM or not, no invalid bytes) without ``input.records`` is streamed with
  ijson (yajl2): one element at a time, so memory does not grow with the file. Everything else
  is decoded with `pipeline.read.encoding` (GBK, bytes that do not decode ...) and parsed whole
  with orjson, as is a file the streaming parser refuses (invalid JSON, an integer past 64
  bits, a number past the float range, a `\uD800`-`\uDFFF` escape) and a file read through
  ``input.records``: the whole-file parse then gives the error, or the exact values, and the
  rows already read are not read twice. Both give the same rows.
- An element that is not an object becomes ``record_not_object`` with ``raw`` = its JSON.
- Invalid JSON fails as a whole, with orjson's message, line and column.
- ``RawRow.line`` is the 0-based array index (outputs show the 1-based record number, so the
  messages name no index); ``stats.columns`` the sorted union of the keys
  of the objects among the first 1000 array elements.
- Bytes that do not decode (``input.encoding_errors``): inside a string, the element that holds
  them is rejected ``encoding_invalid`` with the byte offset (or kept with U+FFFD, warning
  ``encoding_replaced``); outside a string the file is not JSON and fails as a whole.
- An element nested deeper than ``input.limits.max_json_depth`` is rejected ``json_too_deep``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from pipeline.errors import PipelineError
from pipeline.read.base import RawRow, ReadOptions, ReadStats, depth_over
from pipeline.read.encoding import detect, escaped_bytes, note_confidence, open_text

_ESCAPES = "[\udc00-\udcff]"

NOT_OBJECT = "record_not_object"
COLUMN_SAMPLE = 1000

_JSON_TYPES = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
    dict: "an object",
}


def _kind(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _arrays(data: dict[str, Any], prefix: str = "", depth: int = 2) -> list[tuple[str, int]]:
    """`(dotted path, length)` of the arrays inside an object, two levels deep, in key order."""
    found: list[tuple[str, int]] = []
    for key, value in data.items():
        if isinstance(value, list):
            found.append((f"{prefix}{key}", len(value)))
        elif isinstance(value, dict) and depth > 1:
            found += _arrays(value, f"{prefix}{key}.", depth - 1)
    return found


def _listing(arrays: list[tuple[str, int]]) -> str:
    return ", ".join(f"{k!r} ({n} item{'s' if n != 1 else ''})" for k, n in arrays[:20])


def _at_path(path: Path, data: Any, records: str) -> list[Any]:
    """The array at `input.records` (a key, or a dotted path of keys)."""
    if not isinstance(data, dict):
        raise PipelineError(
            f"{path}: input.records is {records!r} but the top-level JSON value is "
            f"{_kind(data)}, not an object; leave input.records out to read a top-level array."
        )
    value: Any = data
    if records in data:  # a key that itself holds dots
        value = data[records]
    else:
        walked: list[str] = []
        for part in records.split("."):
            if not isinstance(value, dict) or part not in value:
                where = repr(".".join(walked)) if walked else "the top-level object"
                arrays = _arrays(data)
                hint = f"; arrays found: {_listing(arrays)}" if arrays else ""
                raise PipelineError(
                    f"{path}: input.records is {records!r} but {where} has no key {part!r}"
                    f"{hint}."
                )
            value = value[part]
            walked.append(part)
    if not isinstance(value, list):
        raise PipelineError(
            f"{path}: input.records: {records!r} is {_kind(value)}, not an array of records."
        )
    return value


def _records(path: Path, data: Any, records: str | None = None) -> list[Any]:
    """The array to read: `input.records`, the top level, or the one array inside a top-level
    object."""
    if records:
        return _at_path(path, data, records)
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        arrays = [k for k, v in data.items() if isinstance(v, list)]
        if len(arrays) == 1:
            found: list[Any] = data[arrays[0]]
            return found
        if not arrays:
            nested = _arrays(data)
            if nested:
                best = max(nested, key=lambda a: a[1])[0]
                raise PipelineError(
                    f"{path}: the top-level JSON object holds no array of records, but arrays "
                    f"nested in it: {_listing(nested)}. Name the one to read: "
                    f"`input.records: {best}`."
                )
            raise PipelineError(
                f"{path}: the top-level JSON object holds no array of records "
                f"(keys: {', '.join(map(repr, list(data)[:20]))}). Expected a JSON array; "
                "if the file has one JSON object per line, read it as JSON Lines (.jsonl)."
            )
        listed = [(k, len(data[k])) for k in arrays]
        best = max(listed, key=lambda a: (_objects(data[a[0]]), a[1]))[0]
        raise PipelineError(
            f"{path}: the top-level JSON object holds several arrays: {_listing(listed)}. "
            f"Name the array of records to read, for example `input.records: {best}`."
        )
    raise PipelineError(
        f"{path}: the top-level JSON value is {_kind(data)}, not an array of records."
    )


def _objects(items: list[Any]) -> int:
    """How many of the first 100 items are objects (records look like objects)."""
    return sum(isinstance(x, dict) for x in items[:100])


def read(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[RawRow]:
    """Records of a JSON array file, in array order."""
    path = Path(path)
    detected = detect(path, opts.encoding, opts.encoding_errors)
    stats.encoding = detected.encoding
    stats.bom_removed = detected.bom_removed
    stats.confidence = detected.confidence
    note_confidence(path, detected, stats)
    done = 0  # elements already read by the streaming parser
    if (
        detected.invalid is None
        and detected.encoding.replace("_", "-") in _UTF8
        and not opts.records
    ):
        try:
            for row in _streamed(path, detected.bom_len, opts, stats):
                yield row
                done += 1
            return
        except _Refused:
            pass
    for row in _whole(path, detected, opts, stats):
        if row.line >= done:
            yield row


_UTF8 = ("utf-8", "utf-8-sig", "ascii")
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")  # yajl turns a lone one into "?"; orjson refuses it
_READ = 1 << 20
_ORJSON_DEPTH = 1024  # orjson.loads refuses a document nested deeper


class _Refused(Exception):
    """The streaming parser cannot give what the whole-file parse gives: use that instead."""


class _Guarded:
    """A binary file for ijson that refuses (raises `_Refused`) at a surrogate escape."""

    def __init__(self, f: Any) -> None:
        self.f = f
        self.tail = b""

    def read(self, size: int = -1) -> bytes:
        block = self.f.read(_READ if size is None or size < 0 else size)
        if _SURROGATE.search(self.tail + block):
            raise _Refused
        self.tail = block[-5:]
        return block  # type: ignore[no-any-return]


def _streamed(path: Path, bom_len: int, opts: ReadOptions, stats: ReadStats) -> Iterator[RawRow]:
    """The rows of a clean UTF-8 file, element by element (raises `_Refused`)."""
    import ijson

    with open(path, "rb") as f:
        f.seek(bom_len)
        head = f.read(4096).lstrip()
        f.seek(bom_len)
        source = _Guarded(f)
        try:
            if head.startswith(b"["):
                elements = ijson.items(source, "item", use_float=True)
                room = _ORJSON_DEPTH - 1  # the array is a level
            elif head.startswith(b"{"):
                elements = ijson.items(_one_array(ijson.parse(source, use_float=True)), "item")
                room = _ORJSON_DEPTH - 2
            else:
                raise _Refused  # a scalar, or nothing: the whole-file parse says which
            keys: set[str] = set()
            for index, element in enumerate(elements):
                if index < COLUMN_SAMPLE and isinstance(element, dict):
                    keys.update(element)
                    stats.columns = sorted(keys)
                row = _row(index, element, opts)
                if row.reason == "json_too_deep" and depth_over(element, room):
                    raise _Refused  # orjson refuses the whole file: so does the run, as before
                yield row
        except ijson.JSONError:
            raise _Refused from None


def _one_array(events: Iterator[tuple[str, str, Any]]) -> Iterator[tuple[str, str, Any]]:
    """The events of the one array inside a top-level object, as if it were the top level;
    refuses (the whole-file parse then names the keys) unless there is exactly one."""
    chosen: str | None = None
    current = None  # the top-level key whose value the events are in
    arrays = 0
    for prefix, event, value in events:
        if prefix == "":
            if event == "map_key":
                current = value
            continue
        if prefix == current and event == "start_array":
            arrays += 1
            if chosen is None:
                chosen = current
        if current != chosen or chosen is None:
            continue
        yield ("" if prefix == chosen else prefix[len(chosen) + 1 :]), event, value
    if arrays != 1:
        raise _Refused


def _row(index: int, element: Any, opts: ReadOptions, deep: bool | None = None) -> RawRow:
    """The row of one array element (`deep`: whether it is too deep, when already known)."""
    limit = opts.limits.max_json_depth
    if deep is None:
        deep = isinstance(element, dict | list) and depth_over(element, limit)
    if deep:
        return RawRow(
            line=index,
            reason="json_too_deep",
            message=(
                f"the element nests objects and arrays more than {limit} levels "
                "deep (input.limits.max_json_depth); flatten it or raise the limit"
            ),
            raw=_dumps(element),
        )
    if isinstance(element, dict):
        return RawRow(line=index, record=element)
    return RawRow(
        line=index,
        reason=NOT_OBJECT,
        message=f"the element is {_kind(element)}, not an object",
        raw=_dumps(element),
    )


def _whole(
    path: Path, detected: Any, opts: ReadOptions, stats: ReadStats
) -> Iterator[RawRow]:
    """The rows of the file parsed whole with orjson (any encoding, invalid bytes, errors)."""
    with open_text(path, detected) as f:
        text = f.read()
    marker: str | None = None
    offsets: list[tuple[int, int]] = []
    if detected.invalid is not None:
        marker, offsets = _mark_escapes(text, detected.encoding, detected.bom_len)
        text = re.sub(_ESCAPES, marker, text)
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        hint = ""
        if e.msg.startswith("unexpected content after document") and e.lineno > 1:
            hint = " The file looks like JSON Lines (one value per line): read it as .jsonl."
        raise PipelineError(
            f"{path}: invalid JSON at line {e.lineno}, column {e.colno} (character {e.pos}): "
            f"{e.msg}.{hint}"
        ) from None
    if re.search(r"\d{20}", text):  # integers past 64 bits: kept exact, not made floats
        from pipeline.jsonnum import exact

        data = exact(text, data)
    del text
    records = _records(path, data, opts.records)

    keys: set[str] = set()
    for element in records[:COLUMN_SAMPLE]:
        if isinstance(element, dict):
            keys.update(element)
    stats.columns = sorted(keys)

    limit = opts.limits.max_json_depth
    seen = 0  # escaped bytes met so far, in text order
    for index, element in enumerate(records):
        if isinstance(element, dict | list) and depth_over(element, limit):
            yield _row(index, element, opts, deep=True)
            seen += _count_marker(element, marker) if marker is not None else 0
            continue
        if marker is not None and (n := _count_marker(element, marker)):
            first, seen = offsets[seen], seen + n
            if opts.encoding_errors == "reject":
                yield RawRow(
                    line=index,
                    reason="encoding_invalid",
                    message=(
                        f"the element holds bytes that are not valid "
                        f"{detected.encoding}: byte 0x{first[1]:02X} at byte offset {first[0]}; "
                        "fix the source, or set `input.encoding_errors: replace` to keep it "
                        "with U+FFFD in their place"
                    ),
                    raw=_dumps(_replace_marker(element, marker, "\ufffd")),
                )
                continue
            element = _replace_marker(element, marker, "\ufffd")
            if isinstance(element, dict):
                yield RawRow(
                    line=index,
                    record=element,
                    warning=(
                        "encoding_replaced",
                        f"{n} byte(s) that are not valid {detected.encoding} replaced by U+FFFD",
                    ),
                )
                continue
        yield _row(index, element, opts, deep=False)


def _dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:  # nested deeper than orjson writes (255 levels)
        return "(nested too deep to show)"


def _mark_escapes(text: str, encoding: str, start: int) -> tuple[str, list[tuple[int, int]]]:
    """A character absent from `text` (raw or as a JSON escape) to stand for each undecodable
    byte, and each such byte's `(file byte offset, value)` in text order."""
    for code in (0xFFFD, *range(0xFDD0, 0xFDF0)):
        char = chr(code)
        if char not in text and f"\\u{code:04x}" not in text.lower():
            break
    else:
        raise PipelineError("every marker character is in use")  # pragma: no cover
    offsets: list[tuple[int, int]] = []
    pos, done = start, 0
    for m in re.finditer(_ESCAPES, text):
        pos += escaped_bytes(text[done : m.start()], encoding)
        offsets.append((pos, ord(m.group()) - 0xDC00))
        pos += 1
        done = m.end()
    return char, offsets


def _count_marker(value: Any, marker: str) -> int:
    """How many `marker` characters the strings (keys too) of `value` hold."""
    stack, n = [value], 0
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            n += item.count(marker)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return n


def _replace_marker(value: Any, marker: str, by: str) -> Any:
    if isinstance(value, str):
        return value.replace(marker, by)
    if isinstance(value, dict):
        return {
            _replace_marker(k, marker, by): _replace_marker(v, marker, by) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_replace_marker(v, marker, by) for v in value]
    return value


read_json_array = read
