"""dataset_limits: registers `pipeline.dataset.limits` (a dataset stage) as `dataset_limits`.

Reason codes: none (gate reasons are in the report, not on records).
"""

from __future__ import annotations

from pipeline.dataset.limits import NAME, SUMMARY, DatasetLimitsConfig, decide, keys
from pipeline.stages import register_dataset

__all__ = ["DatasetLimitsConfig"]

register_dataset(NAME, DatasetLimitsConfig, SUMMARY, keys, decide)
