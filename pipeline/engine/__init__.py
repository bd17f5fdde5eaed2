"""How work units are run: the engine interface, and the engine a run uses.

An engine is handed a work function, its worker set-up, and the units; it yields the results
in the order of the units, whatever order they finish in. It knows nothing of stages, files or
reports: the runner gives it `work(unit) -> result` and `setup(scratch, *args)`, which every
worker calls once, with a scratch folder of its own, before its first unit.

`local` (the default, `engine/local.py`) runs units in this process (one worker) or in a pool
of processes. Another engine (a cluster) implements the same `Engine` protocol beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

U = TypeVar("U")
R = TypeVar("R")


class Engine(Protocol):
    """Runs `work` over `units` and yields the results in unit order."""

    def map(
        self,
        work: Callable[[U], R],
        units: Iterable[U],
        *,
        setup: Callable[..., None],
        setup_args: tuple[Any, ...],
        scratch: Path,
    ) -> Iterator[R]:
        """Call `setup(worker_scratch, *setup_args)` once per worker, then `work(unit)` for every
        unit; results come back in unit order. `worker_scratch` is a folder of that worker's own
        inside `scratch`, for files its results name."""
        ...


def get_engine(workers: int | None) -> Engine:
    """The engine of a run: the local one, with `workers` processes (None: one per core)."""
    from pipeline.engine.local import LocalEngine

    return LocalEngine(workers)
