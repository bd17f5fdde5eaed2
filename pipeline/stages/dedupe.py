"""dedupe: registers `pipeline.dataset.dedupe` (a dataset stage) under the name `dedupe`.

Reason codes: `duplicate`, `near_duplicate`, `conflicting_duplicate` (see the module).
"""

from __future__ import annotations

from pipeline.dataset.dedupe import NAME, SUMMARY, DedupeConfig, decide, keys
from pipeline.stages import register_dataset

__all__ = ["DedupeConfig"]

register_dataset(NAME, DedupeConfig, SUMMARY, keys, decide)
