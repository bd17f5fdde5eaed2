"""JSON files holding an array of records (Alpaca, ShareGPT and similar exports).

- The top level is an array (pretty-printed or on one line), or an object with exactly one
  array value, which is used (``{"data": [...], "version": 1}``). An object with several
  arrays fails, naming their keys: the config must say which one (or split the file).
- Text is decoded with `pipeline.read.encoding` (BOM, UTF-8, GBK ...), parsed with orjson.
  The whole file is parsed at once: JSON arrays are not streamed.
- An element that is not an object becomes ``record_not_object`` with ``raw`` = its JSON.
- Invalid JSON fails as a whole, with orjson's message, line and column.
- ``RawRow.line`` is the 0-based array index; ``stats.columns`` the sorted union of the keys
  of the objects among the first 1000 array elements.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from pipeline.errors import PipelineError
from pipeline.read.base import RawRow, ReadOptions, ReadStats
from pipeline.read.encoding import detect, open_text

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


def _records(path: Path, data: Any) -> list[Any]:
    """The array to read: the top level, or the one array inside a top-level object."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        arrays = [k for k, v in data.items() if isinstance(v, list)]
        if len(arrays) == 1:
            found: list[Any] = data[arrays[0]]
            return found
        if not arrays:
            raise PipelineError(
                f"{path}: the top-level JSON object holds no array of records "
                f"(keys: {', '.join(map(repr, list(data)[:20]))}). Expected a JSON array; "
                "if the file has one JSON object per line, read it as JSON Lines (.jsonl)."
            )
        raise PipelineError(
            f"{path}: the top-level JSON object holds several arrays "
            f"({', '.join(map(repr, arrays))}); expected exactly one array of records. "
            "Keep only the array to read, or split the file."
        )
    raise PipelineError(
        f"{path}: the top-level JSON value is {_kind(data)}, not an array of records."
    )


def read(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[RawRow]:
    """Records of a JSON array file, in array order."""
    path = Path(path)
    detected = detect(path, opts.encoding)
    stats.encoding = detected.encoding
    stats.bom_removed = detected.bom_removed
    stats.confidence = detected.confidence
    with open_text(path, detected) as f:
        text = f.read()
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
    del text
    records = _records(path, data)

    keys: set[str] = set()
    for element in records[:COLUMN_SAMPLE]:
        if isinstance(element, dict):
            keys.update(element)
    stats.columns = sorted(keys)

    for index, element in enumerate(records):
        if isinstance(element, dict):
            yield RawRow(line=index, record=element)
        else:
            yield RawRow(
                line=index,
                reason=NOT_OBJECT,
                message=f"array element {index} is {_kind(element)}, not an object",
                raw=orjson.dumps(element).decode(),
            )


read_json_array = read
