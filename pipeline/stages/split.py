"""split: registers `pipeline.dataset.split` (a dataset stage) under the name `split`.

Reason codes: none (split assigns records to train or validation, it never rejects).
"""

from __future__ import annotations

from pipeline.dataset.split import NAME, SUMMARY, SplitConfig, decide, keys
from pipeline.stages import register_dataset

__all__ = ["SplitConfig"]

register_dataset(NAME, SplitConfig, SUMMARY, keys, decide)
