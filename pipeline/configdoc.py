"""What a config dataclass needs to be documented and checked: `doc()` and `ConfigValueError`.

Stage and section configs import only this module, never `pipeline.config`, so the config
loader can import the stage registry without an import cycle.
"""

from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Any


def doc(text: str, default: Any = dataclasses.MISSING, **kw: Any) -> Any:
    """A dataclass field with its documentation attached (shown in docs/config.md)."""
    if default is dataclasses.MISSING:
        return field(metadata={"doc": text}, **kw)
    return field(default=default, metadata={"doc": text}, **kw)


class ConfigValueError(ValueError):
    """Raised by a config's `__post_init__`: a key (relative to its section) and what is wrong.

    The config loader turns it into a `PipelineError` naming the file and the full key path
    (`stages[2].threshold: 1.5; expected a number in (0, 1]`).
    """

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(problem)
        self.key = key
        self.problem = problem
