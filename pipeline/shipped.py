"""The data files ftprep ships: pipeline configs, target profiles and expectation suites.

In the repository they live in the top-level folders people read and edit: ``configs/``
(pipeline configs), ``configs/targets/`` (target profiles) and ``expectations/`` (Great
Expectations suites). There is one copy of each file. The build configuration
(``pyproject.toml``, ``[tool.setuptools.package-dir]``) puts those folders into the wheel as
``pipeline/configs/`` and ``pipeline/expectations/``, so an installed ftprep reads them with
:mod:`importlib.resources` from any folder.

In a checkout (an editable install) ``pipeline/configs`` does not exist: setuptools' editable
finder cannot import a folder without ``__init__.py`` mapped onto another directory, and
putting one into ``configs/`` would make a user-facing folder a Python package. There the
same files are read from the checkout's top-level folders. Nothing else is looked at: a wheel
missing a data file fails loudly rather than finding a stray copy (docs/decisions.md,
"Packaging").

Report templates and the report's JSON Schema are package data of ``pipeline.report`` and
are read there (``pipeline/report/html.py``, ``schema_doc.py``).
"""

from __future__ import annotations

import difflib
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Literal

from pipeline.errors import PipelineError

Kind = Literal["configs", "targets", "expectations"]

# kind -> (folder inside the package and the repository, file suffix)
FOLDERS: dict[Kind, tuple[str, str]] = {
    "configs": ("configs", ".yaml"),
    "targets": ("configs/targets", ".yaml"),
    "expectations": ("expectations", ".json"),
}
WHAT = {
    "configs": "pipeline config",
    "targets": "target profile",
    "expectations": "expectation suite",
}
CHECKOUT = Path(__file__).resolve().parents[1]  # the repository, when this is a checkout


def folder(kind: Kind) -> Traversable:
    """Where the shipped files of `kind` are: package data of an installed wheel, or the
    top-level folder of a checkout."""
    relative, _ = FOLDERS[kind]
    inside: Traversable = resources.files("pipeline")
    for part in relative.split("/"):
        inside = inside / part
    if inside.is_dir():
        return inside
    checkout = CHECKOUT / relative
    if (CHECKOUT / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout
    raise PipelineError(
        f"ftprep's shipped {WHAT[kind]}s are missing (no pipeline/{relative} in the installed "
        "package): reinstall ftprep"
    )


def files(kind: Kind) -> dict[str, Traversable]:
    """The shipped files of `kind` by name (the file name without its suffix), sorted."""
    _, suffix = FOLDERS[kind]
    found = {
        entry.name.removesuffix(suffix): entry
        for entry in folder(kind).iterdir()
        if entry.name.endswith(suffix) and entry.is_file()
    }
    return dict(sorted(found.items()))


def names(kind: Kind) -> list[str]:
    """The names of the shipped files of `kind`."""
    return list(files(kind))


def find(kind: Kind, name: str) -> Traversable | None:
    """The shipped file called `name` (with or without its suffix), or None."""
    _, suffix = FOLDERS[kind]
    if "/" in name or "\\" in name:
        return None
    return files(kind).get(name.removesuffix(suffix))


def hint(kind: Kind, written: str) -> str:
    """For an error about a path that does not exist: the shipped names, closest first."""
    known = names(kind)
    if not known:
        return ""
    stem = Path(written).name.rsplit(".", 1)[0]
    close = difflib.get_close_matches(stem, known, n=1, cutoff=0.6)
    listed = ", ".join(known)
    if close:
        return f"; did you mean the shipped {WHAT[kind]} `{close[0]}` (by name)? shipped: {listed}"
    return f"; the shipped {WHAT[kind]}s, usable by name: {listed}"
