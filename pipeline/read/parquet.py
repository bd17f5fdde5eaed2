"""Parquet files: streamed in record batches with pyarrow, one record per row.

Values are the Python objects pyarrow gives (`RecordBatch.to_pylist`): str, int, float, bool,
None, lists, dicts for structs, datetime for timestamps, bytes for binary. ``RawRow.line`` is
the 0-based row index (``table.slice(i, 1)``). ``stats.columns`` is the schema's field names;
``stats.encoding`` is None (a binary format).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import PipelineError
from pipeline.read.base import RawRow, ReadOptions, ReadStats

BATCH_SIZE = 1024


def read(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[RawRow]:
    """Rows of a Parquet file, in file order."""
    path = Path(path)
    stats.encoding = None
    stats.bom_removed = False
    stats.confidence = None
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError, ValueError) as e:  # ArrowInvalid is a ValueError
        raise PipelineError(
            f"{path}: not a readable Parquet file ({e}). Check that the file is Parquet and "
            "complete, or convert it to JSONL or CSV."
        ) from None
    with pf:
        stats.columns = list(pf.schema_arrow.names)
        index = 0
        try:
            for batch in pf.iter_batches(batch_size=BATCH_SIZE):
                for record in batch.to_pylist():
                    yield RawRow(line=index, record=record)
                    index += 1
        except (pa.ArrowException, OSError, ValueError) as e:
            raise PipelineError(
                f"{path}: the Parquet file is damaged: cannot read past row {index} ({e})."
            ) from None


read_parquet = read
