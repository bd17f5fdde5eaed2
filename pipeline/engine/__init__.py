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


# Generation 0 is collected after this many new container objects (CPython's default: 700).
GC_THRESHOLD = (100_000, 5, 10)


def fewer_collections() -> None:
    """Tune the cyclic garbage collector of a process ftprep owns (its CLI, its local workers;
    never a library caller's process or a Dask cluster's workers).

    A worker holds a batch of records (dicts and lists, thousands of containers) while it
    builds the next objects, so with CPython's defaults the collector ran every 700 new
    containers and kept walking the live batch, to find almost no cycles: about 9% of a run's
    CPU (docs/performance.md). What is loaded now (modules, the tokenizer's tables) is frozen
    out of every collection, and a collection runs after 100,000 new containers. Cycles are
    still collected, later: a one-worker run's peak memory stayed within 2%; the parent of a
    pooled run on 300 MB peaked up to about 20 MiB (7%) higher in single runs."""
    import gc

    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


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
