"""Hostile and broken inputs for the battery, each written into a folder at test time.

Every builder takes the folder and returns the input paths (and config keys of `input:` to
set); nothing here is a file in the repository.
"""

from __future__ import annotations

import codecs
import os
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

Built = tuple[list[Path], dict[str, Any]]
MB = 1 << 20


def _jsonl(rows: list[Any]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in rows)


def pc(i: int, text: str = "") -> dict[str, str]:
    return {"prompt": f"question {i} {text}".strip(), "completion": f"answer {i}"}


def write(folder: Path, name: str, data: bytes | str, **input_cfg: Any) -> Built:
    path = folder / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return [path], input_cfg


def good_rows(n: int, text: str = "café") -> bytes:
    return _jsonl([pc(i, text) for i in range(n)])


# --- XLSX -------------------------------------------------------------------------------------


def workbook(folder: Path, name: str, fill: Callable[[Any], None]) -> Path:
    from openpyxl import Workbook

    wb = Workbook()
    fill(wb)
    path = folder / name
    wb.save(path)
    return path


def _deflate_repeated(
    head: bytes, block: bytes, repeats: int, tail: bytes
) -> tuple[bytes, int, int]:
    """Raw deflate of head + block * repeats + tail, built from one compressed block (a full
    flush makes every copy compress to the same bytes), with its CRC and unpacked size."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)
    one = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    last = c.compress(tail) + c.flush()
    crc = zlib.crc32(head)
    for _ in range(repeats):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(tail, crc)
    size = len(head) + len(block) * repeats + len(tail)
    return first + one * repeats + last, crc & 0xFFFFFFFF, size


def _zip(path: Path, members: list[tuple[str, bytes, int, int]]) -> None:
    """Write a zip of already-deflated members `(name, data, crc, size)` (sizes < 4 GiB)."""
    out = bytearray()
    central = bytearray()
    for name, data, crc, size in members:
        n = name.encode()
        offset = len(out)
        out += struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(data), size, len(n), 0
        )
        out += n + data
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            20,
            20,
            0,
            8,
            0,
            0,
            crc,
            len(data),
            size,
            len(n),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        central += n
    end = struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(out), 0
    )
    path.write_bytes(bytes(out + central + end))


def xlsx_with_part(folder: Path, name: str, part: str, deflated: tuple[bytes, int, int]) -> Path:
    """A real small workbook whose `part` is replaced by (or added as) the given member."""
    base = workbook(folder, "base-" + name, lambda wb: wb.active.append(["prompt", "completion"]))
    members = []
    with zipfile.ZipFile(base) as z:
        for info in z.infolist():
            if info.filename == part:
                continue
            raw = z.read(info)
            c = zlib.compressobj(6, zlib.DEFLATED, -15)
            members.append((info.filename, c.compress(raw) + c.flush(), zlib.crc32(raw), len(raw)))
    members.append((part, *deflated))
    base.unlink()
    path = folder / name
    _zip(path, members)
    return path


SHEET_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8"?><worksheet '
    b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
)
SHEET_TAIL = b"</sheetData></worksheet>"


def xlsx_row_bomb(folder: Path) -> Built:
    row = b'<row><c t="inlineStr"><is><t>prompt</t></is></c><c t="inlineStr"><is><t>x</t></is></c></row>'
    block = row * (MB // len(row))
    deflated = _deflate_repeated(SHEET_HEAD, block, 600, SHEET_TAIL)  # 600 MB of rows
    return [xlsx_with_part(folder, "rows_bomb.xlsx", "xl/worksheets/sheet1.xml", deflated)], {}


def xlsx_shared_string_bomb(folder: Path) -> Built:
    head = (
        b'<?xml version="1.0" encoding="UTF-8"?><sst '
        b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" '
        b'uniqueCount="1"><si><t>'
    )
    deflated = _deflate_repeated(head, b"A" * MB, 1100, b"</t></si></sst>")  # one 1.1 GB string
    return [xlsx_with_part(folder, "string_bomb.xlsx", "xl/sharedStrings.xml", deflated)], {}


def xlsx_entity_bomb(folder: Path) -> Built:
    entities = b'<!ENTITY a0 "lollollollollol">' + b"".join(
        b'<!ENTITY a%d "&a%d;&a%d;&a%d;&a%d;&a%d;&a%d;&a%d;&a%d;&a%d;&a%d;">' % (i, *[i - 1] * 10)
        for i in range(1, 10)
    )
    sheet = (
        b'<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE worksheet ['
        + entities
        + b"]>"
        + SHEET_HEAD[SHEET_HEAD.index(b"<worksheet") :]
        + b'<row r="1"><c r="A1" t="inlineStr"><is><t>&a9;</t></is></c></row>'
        + SHEET_TAIL
    )
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    deflated = (c.compress(sheet) + c.flush(), zlib.crc32(sheet), len(sheet))
    return [xlsx_with_part(folder, "entity_bomb.xlsx", "xl/worksheets/sheet1.xml", deflated)], {}


def utf16_no_bom(folder: Path) -> Built:
    return write(folder, "utf16.jsonl", good_rows(20, "数据").decode().encode("utf-16-le"))


def symlink_loop(folder: Path) -> Built:
    d = folder / "in"
    d.mkdir()
    (d / "ok.jsonl").write_bytes(good_rows(3))
    os.symlink(d, d / "loop")  # a folder that contains itself
    os.symlink(d / "b.jsonl", d / "a.jsonl")
    os.symlink(d / "a.jsonl", d / "b.jsonl")  # a file link loop
    return [d], {}


def bom(data: str, codec: str) -> bytes:
    marks = {"utf-8": codecs.BOM_UTF8, "utf-16-le": codecs.BOM_UTF16_LE}
    return marks[codec] + data.encode(codec)
