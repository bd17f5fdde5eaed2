"""Progress of a run on a terminal: one bar per input, bytes (byte ranges: JSONL, CSV/TSV) or
records, rate and ETA.

Shown only when asked (`ftprep run` asks when stderr is a terminal and `--quiet` is not given);
on a pipe, in CI logs or from the library nothing is drawn. The bars go to stderr: stdout keeps
the results. tqdm draws them (it is already installed: great-expectations depends on it).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any, Protocol, TypeVar


class _Result(Protocol):
    index: int
    file_index: int
    rows_in: int


R = TypeVar("R", bound=_Result)


class Progress:
    """Follows the units a run reads and the results that come back, in order."""

    def __init__(self, inputs: list[Any], enabled: bool) -> None:
        self.inputs = {inp.index: inp for inp in inputs}
        self.enabled = enabled
        self.sizes: dict[int, int] = {}  # unit index -> bytes of its byte range
        self.bar: Any = None
        self.current: int | None = None

    def units(self, units: Iterable[Any]) -> Iterator[Any]:
        """Pass the units through, noting the byte size of each byte range."""
        for unit in units:
            if self.enabled and unit.byte_range is not None:
                start, end = unit.byte_range[0], unit.byte_range[1]
                self.sizes[unit.index] = end - start
            yield unit

    def results(self, results: Iterable[R]) -> Iterator[R]:
        """Pass the results through, advancing the bar of their input."""
        try:
            for result in results:
                if self.enabled:
                    self._advance(result)
                yield result
        finally:
            self._close()

    def _advance(self, result: _Result) -> None:
        if result.file_index != self.current:
            self._close()
            self.current = result.file_index
            self.bar = self._open(self.inputs[result.file_index])
        size = self.sizes.pop(result.index, None)
        self.bar.update(size if size is not None else result.rows_in)

    def _open(self, inp: Any) -> Any:
        from tqdm import tqdm

        name = os.path.basename(inp.source)
        if inp.ranges is not None:
            total = os.path.getsize(inp.path)
            return tqdm(total=total, desc=name, unit="B", unit_scale=True, leave=True)
        return tqdm(desc=name, unit=" records", leave=True)

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
