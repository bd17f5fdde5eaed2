"""Spools: where a worker leaves one unit's records until the dataset decisions are taken.

For each unit a worker writes three files in its scratch folder: the kept records' output lines
(`.kept`), their original source records (`.orig`, for rejected.jsonl should a dataset stage
reject them), and the rejected lines (`.rej`). It returns only a `Spooled`: the paths and,
per kept record, its source line, output bytes and position in the unit, as compact int64
arrays once the unit is done (`Spool.__exit__`): 8 bytes a number, not a Python int in a list,
so what the parent holds per record stays small. The parent streams the spools into the final
files (`pipeline.write.outputs`), so outputs do not depend on how the work was cut or which
worker did it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from pipeline.write.jsonl import OUT_COLUMN, dumps_lenient, rejected_line

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Spooled:
    """What one unit left in its spool files."""

    kept_path: str
    orig_path: str
    rejected_path: str
    # lists while the unit is spooled, int64 arrays after (`freeze`)
    kept_lines: Any = field(default_factory=list)  # source line of each kept record
    kept_bytes: Any = field(default_factory=list)  # output line bytes, newline included
    kept_ords: Any = field(default_factory=list)  # position in the unit of each kept one
    rejected_ords: Any = field(default_factory=list)
    by_record: bool = False  # its lines are 1-based record numbers (a JSON array, Parquet)

    def freeze(self) -> None:
        """Turn the per-record lists into int64 arrays (done when the unit's spool closes)."""
        for name in ("kept_lines", "kept_bytes", "kept_ords", "rejected_ords"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.int64))

    @property
    def kept(self) -> int:
        return len(self.kept_ords)

    @property
    def rejected(self) -> int:
        return len(self.rejected_ords)

    def paths(self) -> tuple[str, str, str]:
        return self.kept_path, self.orig_path, self.rejected_path


class Spool:
    """The spool files of one unit, written batch by batch (a context manager).

    With no folder nothing is written: only the kept records' lines, bytes and positions are
    noted (`ftprep check` decides over them without writing anything).
    """

    def __init__(self, folder: Path | None, unit_index: int, by_record: bool = False) -> None:
        if folder is None:
            self.spooled = Spooled("", "", "", by_record=by_record)
        else:
            stem = folder / f"unit-{unit_index:07d}"
            self.spooled = Spooled(
                f"{stem}.kept", f"{stem}.kept.orig", f"{stem}.rej", by_record=by_record
            )
        self._files: list[IO[bytes]] = []

    def __enter__(self) -> Spool:
        if self.spooled.kept_path:
            self._files = [open(p, "wb") for p in self.spooled.paths()]  # noqa: SIM115
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for f in self._files:
            f.close()
        self.spooled.freeze()

    def write(self, batch: pd.DataFrame) -> None:
        """Spool one batch: kept rows (encoded by the `write` pseudo-stage) and rejected rows."""
        s = self.spooled
        if not self._files:
            # no `_out` column when the `write` step had no kept record to encode
            outs = batch[OUT_COLUMN] if OUT_COLUMN in batch else [None] * len(batch)
            for reason, line, out, ordinal in zip(
                batch["_reason"], batch["_line"], outs, batch["_ord"], strict=True
            ):
                if reason is None or reason != reason:
                    s.kept_lines.append(int(line))
                    s.kept_bytes.append(len(out) + 1)
                    s.kept_ords.append(int(ordinal))
                else:
                    s.rejected_ords.append(int(ordinal))
            return
        kept_f, orig_f, rej_f = self._files
        n = len(batch)
        encoded: list[Any] = batch[OUT_COLUMN].tolist() if OUT_COLUMN in batch else [None] * n
        reasons = batch["_reason"].tolist()
        records, raws = batch["_record"].tolist(), batch["_raw"].tolist()
        lines, ords = batch["_line"].tolist(), batch["_ord"].tolist()
        kept = [i for i, r in enumerate(reasons) if r is None or r != r]
        if kept:  # the common case, in bulk: one write per file per batch
            out = [encoded[i] for i in kept]
            kept_f.write(b"\n".join(out) + b"\n")
            # a JSON Lines record's own line when the reader says it parses to the record
            # (`RawRow.raw`), else the record written again
            orig_f.write(
                b"\n".join(
                    [
                        raw
                        if type(raw := raws[i]) is bytes and records[i] is not None
                        else dumps_lenient(raw if records[i] is None else records[i])
                        for i in kept
                    ]
                )
                + b"\n"
            )
            s.kept_lines.extend([lines[i] for i in kept])
            s.kept_bytes.extend([len(line) + 1 for line in out])
            s.kept_ords.extend([ords[i] for i in kept])
        if len(kept) == n:
            return
        sources, stages = batch["_source"].tolist(), batch["_stage"].tolist()
        messages = batch["_message"].tolist()
        for i, reason in enumerate(reasons):
            if reason is None or reason != reason:
                continue
            record = records[i] if records[i] is not None else raws[i]
            rej_f.write(
                rejected_line(
                    sources[i], int(lines[i]), stages[i], reason, messages[i], record, s.by_record
                )
                + b"\n"
            )
            s.rejected_ords.append(int(ords[i]))
