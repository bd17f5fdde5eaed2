"""How work units are run: the engine interface, and the engine a run uses.

An engine is handed a work function, its worker set-up, and the units; it yields the results
in the order of the units, whatever order they finish in. It knows nothing of stages, files or
reports: the runner gives it `work(unit) -> result` and `setup(scratch, *args)`, which every
worker calls once, with a scratch folder of its own, before its first unit.

`local` (the default, `engine/local.py`) runs units in this process (one worker) or in a pool
of processes. `dask` (`engine/dask.py`, the `ftprep[dask]` extra) runs them on a
dask.distributed cluster: a LocalCluster, or the scheduler at an address.
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


ENGINES = ("local", "dask")


def get_engine(workers: int | None, name: str = "local", scheduler: str | None = None) -> Engine:
    """The engine of a run: `local` with `workers` processes (None: one per core), or `dask`
    on the cluster at `scheduler` (None: a LocalCluster of `workers` processes)."""
    if name == "dask":
        from pipeline.engine.dask import DaskEngine

        return DaskEngine(workers, scheduler)
    from pipeline.engine.local import LocalEngine

    return LocalEngine(workers)
