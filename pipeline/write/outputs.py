"""The final files: spools streamed, in source order, into train, validation and rejected.

After the dataset decisions, every kept record of every spool goes to train, validation or
rejected.jsonl (with the dataset stage's reason), and every record rejected earlier goes to
rejected.jsonl in its place in source order. A split larger than the target takes is sharded
into `train-00001.jsonl`, ... Everything is written inside `AtomicOutputs`, renamed into place
only when the run succeeds.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterable
from typing import Any

import numpy as np
import orjson

from pipeline.dataset import TRAIN, VALIDATION, Decisions
from pipeline.jsonnum import exact, has_long_number
from pipeline.write.jsonl import AtomicOutputs, rejected_line
from pipeline.write.spool import Spooled

BOM = b"\xef\xbb\xbf"


def write_splits(
    spools: Iterable[tuple[str, Spooled]],
    decisions: Decisions,
    outputs: AtomicOutputs,
    bom: bool = False,
) -> dict[str, int]:
    """Stream `(source, spooled)` units, in source order, into the final files; return how
    many lines each got. `bom`: start train and validation with a UTF-8 BOM (Azure OpenAI)."""
    spools = list(spools)
    totals = {"train": 0, "validation": 0, "rejected": 0}
    dest = decisions.dest
    all_bytes = np.concatenate([np.empty(0, np.int64), *(s.kept_bytes for _, s in spools)])
    train = SplitWriter(outputs, "train", bom, decisions.shard_bytes, all_bytes[dest == TRAIN])
    validation = (
        SplitWriter(
            outputs, "validation", bom, decisions.shard_bytes, all_bytes[dest == VALIDATION]
        )
        if decisions.write_validation
        else None
    )
    rejected = open(outputs.path("rejected.jsonl"), "wb")  # noqa: SIM115
    g = 0  # key-table row of the next kept record
    try:
        for source, s in spools:
            # a unit at a time, in bulk: its kept lines are read whole (a unit is small) and
            # go to their split in one write; the originals are read only for a dataset reject
            n = len(s.kept_ords)
            d = dest[g : g + n]
            with open(s.kept_path, "rb") as kept:
                lines = kept.read().split(b"\n")[:n]  # each line ends with a newline
            assert len(lines) == n, f"{s.kept_path}: {len(lines)} lines for {n} records"
            for split, writer in ((TRAIN, train), (VALIDATION, validation)):
                rows = np.flatnonzero(d == split).tolist()
                if not rows:
                    continue
                assert writer is not None, "a split stage must set write_validation"
                writer.write_lines([lines[i] for i in rows])
                totals["train" if split == TRAIN else "validation"] += len(rows)
            dataset_rejects: list[tuple[int, bytes]] = []
            dropped = np.flatnonzero((d != TRAIN) & (d != VALIDATION)).tolist()
            if dropped:
                with open(s.orig_path, "rb") as orig:
                    originals = orig.read().split(b"\n")
                ords, line_nos = s.kept_ords.tolist(), s.kept_lines.tolist()
                for i in dropped:
                    stage, reason, message = decisions.reasons[g + i]
                    record = orjson.loads(originals[i])
                    if has_long_number(originals[i]):  # exactly, as the reader read it
                        record = exact(originals[i], record)
                    dataset_rejects.append(
                        (
                            ords[i],
                            rejected_line(
                                source, line_nos[i], stage, reason, message, record, s.by_record
                            ),
                        )
                    )
            g += n
            with open(s.rejected_path, "rb") as rej:
                merged = heapq.merge(
                    zip(s.rejected_ords.tolist(), (ln.rstrip(b"\n") for ln in rej), strict=True),
                    dataset_rejects,
                )
                for _ordinal, line in merged:
                    rejected.write(line + b"\n")
                    totals["rejected"] += 1
            for path in s.paths():
                os.unlink(path)
    finally:
        rejected.close()
        train.close()
        if validation is not None:
            validation.close()
    return totals


class SplitWriter:
    """One split's JSONL: `name.jsonl`, or shards `name-00001.jsonl`... when it would be larger
    than `shard_bytes` (a record larger than that still gets a shard of its own)."""

    def __init__(
        self,
        outputs: AtomicOutputs,
        stem: str,
        bom: bool,
        shard_bytes: int | None,
        line_bytes: np.ndarray,
    ) -> None:
        self.outputs, self.stem = outputs, stem
        self.head = BOM if bom else b""
        total = len(self.head) + int(line_bytes.sum())
        self.limit = shard_bytes if shard_bytes is not None and total > shard_bytes else None
        self.shards = 0
        self.size = 0
        self.f: Any = None
        self._open(f"{stem}.jsonl" if self.limit is None else self._shard_name())

    def _shard_name(self) -> str:
        self.shards += 1
        return f"{self.stem}-{self.shards:05d}.jsonl"

    def _open(self, name: str) -> None:
        if self.f is not None:
            self.f.close()
        self.f = open(self.outputs.path(name), "wb")  # noqa: SIM115
        self.f.write(self.head)
        self.size = len(self.head)

    def write_lines(self, lines: list[bytes]) -> None:
        """Write `lines` (each without its newline) in order, each followed by a newline."""
        if self.limit is None:
            self.f.write(b"\n".join(lines) + b"\n")
            self.size += sum(map(len, lines)) + len(lines)
            return
        for line in lines:
            self.write(line + b"\n")

    def write(self, line: bytes) -> None:
        if (
            self.limit is not None
            and self.size > len(self.head)
            and self.size + len(line) > self.limit
        ):
            self._open(self._shard_name())
        self.f.write(line)
        self.size += len(line)

    def close(self) -> None:
        if self.f is not None:
            self.f.close()
            self.f = None


def describe_files(
    outputs: AtomicOutputs, dataset_info: dict[str, Any], target_info: dict[str, Any]
) -> dict[str, Any]:
    """The training files as written: names, bytes, and the target's file-size limit."""
    limit = (dataset_info.get("dataset_limits") or {}).get("files", {}).get("max_file_bytes")
    if limit is None:
        limit = target_info.get("max_file_bytes")
    names = [n for n in outputs.produced if n.startswith(("train", "validation"))]
    sizes = {n: outputs.path(n).stat().st_size for n in names}
    return {
        "train": [n for n in names if n.startswith("train")],
        "validation": [n for n in names if n.startswith("validation")],
        "bytes": sizes,
        "max_file_bytes": limit,
        "over_max_file_bytes": [n for n, size in sizes.items() if limit and size > limit],
        "rejected": "rejected.jsonl",
        "metrics": "metrics.parquet",
    }
