"""What a file is, from its first bytes: the format by content, not only by extension.

- ``PK\\x03\\x04`` (a zip archive): an OpenDocument spreadsheet when its ``mimetype`` entry says
  so (``ods``), an Excel workbook when it holds ``xl/workbook.xml`` (``xlsx``);
- ``D0 CF 11 E0 A1 B1 1A E1`` (OLE2, the Office 97-2003 container): ``xls``;
- ``PAR1``: ``parquet``;
- text (decoded past a BOM, UTF-16/32 told by their NUL bytes, else read as UTF-8 leniently:
  only the ASCII structure matters): ``[`` first, or a ``{`` whose first line ends open (``{``, ``[``
  or ``,``: pretty-printed), is ``json``; two or more lines that each hold a whole JSON value
  are ``jsonl``; a single-line object (minified JSON, or JSON Lines of one record) is left to
  the extension; anything else is delimited text, ``tsv`` when every one of
  the first lines holds a tab, else ``csv`` (the CSV reader sniffs ``, ; |`` itself).

`format_from` decides: `input.format` when set; else the content when the extension names no
format (``.txt``, ``.dat``, none) or the content is another *family* than the extension says
(a binary workbook named ``.csv``, an .xls named ``.xlsx``, JSON Lines named ``.json``). CSV
against TSV is left to the delimiter sniffing of the CSV reader, and an ambiguous text file
keeps its extension's format.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import orjson

from pipeline.read.encoding import bom_of

HEAD_BYTES = 64 * 1024
_ZIP = b"PK\x03\x04"
_OLE2 = bytes.fromhex("D0CF11E0A1B11AE1")
_PARQUET = b"PAR1"
WHAT = {
    "xlsx": "an Excel workbook (.xlsx)",
    "xls": "an Excel 97-2003 workbook (.xls, OLE2)",
    "ods": "an OpenDocument spreadsheet (.ods)",
    "parquet": "a Parquet file",
    "json": "a JSON document",
    "jsonl": "JSON Lines (one JSON value per line)",
    "csv": "delimited text (CSV)",
    "tsv": "tab-separated text",
}
_BINARY = {"xlsx", "xls", "ods", "parquet"}


def _zip_kind(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            if "mimetype" in names:
                mime = z.read("mimetype")[:200]
                if b"opendocument.spreadsheet" in mime:
                    return "ods"
            if "xl/workbook.xml" in names or "[Content_Types].xml" in names:
                return "xlsx"
    except (zipfile.BadZipFile, OSError, KeyError, EOFError, ValueError):
        return None
    return None


def _text(head: bytes) -> str | None:
    """The start of a text file, decoded well enough to see its structure; None for binary."""
    bom = bom_of(head)
    if bom is not None:
        return head[bom[1] :].decode(bom[0], errors="replace")
    n = len(head) - len(head) % 4
    if n >= 4 and head.count(0) >= n // 4:
        odd = head[1:n:2].count(0)
        even = head[0:n:2].count(0)
        if odd > 0.6 * n / 2 and even < 0.1 * n / 2:
            return head[:n].decode("utf-16-le", errors="replace")
        if even > 0.6 * n / 2 and odd < 0.1 * n / 2:
            return head[:n].decode("utf-16-be", errors="replace")
        return None  # NUL bytes without the pattern of UTF-16: binary
    if head.count(0):
        return None
    return head.decode("utf-8", errors="replace")


def _whole_line_values(lines: list[str]) -> int:
    """How many of the first non-blank lines each parse as one whole JSON value."""
    n = 0
    for line in lines:
        try:
            orjson.loads(line)
        except orjson.JSONDecodeError:
            return n
        n += 1
    return n


def sniff(path: Path) -> str | None:
    """The format the first bytes of `path` show, or None (empty, unreadable or binary)."""
    try:
        with Path(path).open("rb") as f:
            head = f.read(HEAD_BYTES)
    except OSError:
        return None
    if head.startswith(_ZIP):
        return _zip_kind(Path(path))
    if head.startswith(_OLE2):
        return "xls"
    if head.startswith(_PARQUET):
        return "parquet"
    text = _text(head)
    if text is None:
        return None
    stripped = text.lstrip("\ufeff \t\r\n")
    if not stripped:
        return None
    cut = len(head) == HEAD_BYTES
    if cut:  # leave out a cut-off last line
        end = stripped.rfind("\n")
        if end <= 0:
            return None  # one line longer than the head: nothing to judge by
        stripped = stripped[:end]
    lines = [ln for ln in stripped.splitlines() if ln.strip()][:20]
    if stripped[0] == "[":
        return "json"
    if stripped[0] == "{":
        whole = _whole_line_values(lines)
        if whole >= 2:
            return "jsonl"
        if whole == 0 and lines[0].rstrip().endswith(("{", "[", ",")):
            return "json"  # an object that does not end on its first line: pretty-printed
        # one object on one line (minified JSON, or JSON Lines of one record), or a whole
        # line followed by something else: the extension decides
        return None
    sample = lines[:10]
    if sample and all("\t" in ln for ln in sample):
        return "tsv"
    return "csv"


def format_from(path: Path, configured: str, by_extension: str | None) -> tuple[str | None, str]:
    """`(format, how it was decided)`: `config`, `extension` or `content` (None: no idea)."""
    if configured != "auto":
        return configured, "config"
    found = sniff(path)
    if by_extension is None:
        return found, "content"
    if found is None or found == by_extension:
        return by_extension, "extension"
    if found in _BINARY or by_extension in _BINARY:
        return found, "content"
    if {found, by_extension} == {"json", "jsonl"}:
        return found, "content"
    return by_extension, "extension"  # csv/tsv against each other or against JSON: keep it
