"""Inputs named by fsspec URLs (``s3://``, ``gs://``, ``az://``, ``https://``, ``memory://``,
``file://`` ...): expanded with the filesystem's own glob, then copied into the run's scratch
folder before anything is read.

Copy first, rather than handing the readers file objects: the JSONL workers open their byte
ranges by path (in other processes, or on other machines of a Dask cluster, where an in-process
filesystem such as ``memory://`` does not exist and a remote one would need its credentials
again), the XLSX and Parquet readers seek all over the file, and encoding detection reads the
start twice. A copy in the scratch folder (inside the output folder, so on the filesystem the
workers share) serves all of them, is read at local speed, and goes with the scratch folder at
the end of the run. ``file://`` URLs are read in place. The outputs' ``source`` names the URL.

Needs fsspec (``pip install 'ftprep[remote]'``) and the filesystem's package (s3fs, gcsfs,
adlfs, aiohttp ...); a URL without them is one line naming the package to install (exit 2).
"""

from __future__ import annotations

import glob
import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline.errors import PipelineError

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
# the package that gives fsspec each protocol (fsspec's own message for the others)
PACKAGES = {
    "s3": "s3fs",
    "s3a": "s3fs",
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "az": "adlfs",
    "abfs": "adlfs",
    "abfss": "adlfs",
    "adl": "adlfs",
    "http": "aiohttp",
    "https": "aiohttp",
}
_FAILURES = (OSError, ValueError, TimeoutError)


def is_url(pattern: str) -> bool:
    """Whether an input path is a URL (``scheme://...``) rather than a local path."""
    return _URL.match(pattern) is not None


def protocol_of(url: str) -> str:
    match = _URL.match(url)
    assert match is not None
    return match.group(1).lower()


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem of `url` and the path within it; PipelineError naming the package
    to install when fsspec or the protocol's package is missing."""
    protocol = protocol_of(url)
    try:
        import fsspec
    except ImportError:
        raise PipelineError(
            f"{url}: reading URLs needs fsspec: pip install 'ftprep[remote]' (and "
            f"{PACKAGES.get(protocol, 'the package of the ' + protocol + ':// filesystem')})"
        ) from None
    try:
        fsspec.get_filesystem_class(protocol)
    except ValueError:
        raise PipelineError(
            f"{url}: fsspec knows no {protocol}:// filesystem; check the URL, or copy the file "
            "and give its local path"
        ) from None
    except ImportError as exc:
        package = PACKAGES.get(protocol)
        hint = f"pip install {package}" if package else str(exc)
        raise PipelineError(f"{url}: reading {protocol}:// URLs needs {hint}") from None
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except _FAILURES as exc:
        raise PipelineError(f"{url}: cannot open the URL ({type(exc).__name__}: {exc})") from None
    return fs, path


def expand(pattern: str, known_suffix: Callable[[str], bool]) -> list[str]:
    """The file URLs a URL names: itself, the files its glob matches (sorted), or the files of a
    known format under the folder it names (sorted). `known_suffix(name)` says whether a file
    name in a folder is read."""
    fs, path = filesystem(pattern)
    protocol = protocol_of(pattern)
    try:
        if glob.has_magic(path):
            found = sorted(p for p in fs.glob(path) if fs.isfile(p))
            if not found:
                raise PipelineError(f"{pattern}: no file matches this pattern")
        elif fs.isfile(path):
            return [pattern]
        elif fs.isdir(path):
            found = sorted(p for p in fs.find(path) if known_suffix(PurePosixPath(p).name))
            if not found:
                raise PipelineError(f"{pattern}: folder holds no file of a known format")
        else:
            raise PipelineError(f"{pattern}: no such file or folder")
    except _FAILURES as exc:
        raise PipelineError(
            f"{pattern}: cannot list the URL ({type(exc).__name__}: {exc})"
        ) from None
    return [_url(fs, protocol, p) for p in found]


def _url(fs: Any, protocol: str, path: str) -> str:
    """A path fsspec listed, as a URL of the protocol the user wrote (``gs``, not ``gcs``)."""
    full = fs.unstrip_protocol(path)
    return f"{protocol}://{full.split('://', 1)[1]}" if "://" in full else full


def local_path(url: str) -> Path:
    """The local file a ``file://`` URL names."""
    _fs, path = filesystem(url)
    return Path(path)


def fetch(url: str, folder: Path, index: int) -> Path:
    """Copy the file at `url` into `folder` (its own subfolder `index`, keeping the file name so
    the format is still known by its extension); returns the local copy. ``file://`` URLs are
    not copied."""
    if protocol_of(url) == "file":
        return local_path(url)
    fs, path = filesystem(url)
    name = PurePosixPath(path).name or "input"
    target = folder / f"{index:05d}" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fs.get_file(path, str(target))
    except _FAILURES as exc:
        raise PipelineError(f"{url}: cannot copy the file ({type(exc).__name__}: {exc})") from None
    return target


def renamed(exc: PipelineError, copies: dict[str, str]) -> PipelineError:
    """`exc` with each local copy's path replaced by the URL it was copied from."""
    message = str(exc)
    for local, url in copies.items():
        message = message.replace(local, url)
    return PipelineError(message) if message != str(exc) else exc
