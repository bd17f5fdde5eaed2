"""The Dask engine: the same units, run by the workers of a dask.distributed cluster.

`pip install 'ftprep[dask]'`, then `ftprep run CONFIG --engine dask` (a `LocalCluster` of one
single-threaded worker process per core, or `--workers N`) or `--engine dask --scheduler
tcp://HOST:8786` (an existing cluster; see docs/scaling.md).

Units go to the workers with `client.submit`, at most `IN_FLIGHT_PER_WORKER` per worker
thread at a time, and their results come back in unit order, as from the local engine. A
worker calls the run's set-up once, before its first unit of that run (the tokenizer is built
there, once per worker process); each worker spools its units into a folder of its own inside
the run's scratch folder, which must therefore be on a filesystem every worker sees at the
same path (the output folder: see docs/scaling.md). The parent takes the dataset decisions on
the gathered key table and concatenates the workers' parts in unit order, so the outputs are
byte for byte those of the local engine.

Not Dask DataFrame or Bag: measured on 2 cores (floor.md), DataFrame mangles nested `messages`
columns and is slower; `client.submit` over work units costs about what a process pool does.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pipeline.errors import PipelineError

U = TypeVar("U")
R = TypeVar("R")

IN_FLIGHT_PER_WORKER = 2
CONNECT_TIMEOUT = 10  # seconds to reach a scheduler
INSTALL_HINT = "the dask engine needs dask.distributed: pip install 'ftprep[dask]'"


class DaskEngine:
    """Runs units on a dask.distributed cluster: `scheduler` (an address such as
    tcp://host:8786) or, without one, a LocalCluster of `workers` processes."""

    def __init__(self, workers: int | None = None, scheduler: str | None = None) -> None:
        self.workers = workers
        self.scheduler = scheduler

    def _client(self) -> tuple[Any, Any]:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise PipelineError(INSTALL_HINT) from None
        if self.scheduler is not None:
            try:
                return Client(self.scheduler, timeout=CONNECT_TIMEOUT), None
            except (OSError, TimeoutError) as exc:
                raise PipelineError(
                    f"--scheduler {self.scheduler}: cannot reach the Dask scheduler ({exc}); "
                    "check the address (tcp://HOST:8786) and that the scheduler runs"
                ) from None
        import os

        from pipeline.engine.local import _main_module_hidden

        with _main_module_hidden():
            cluster = LocalCluster(
                n_workers=self.workers or os.cpu_count() or 1,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
        return Client(cluster), cluster

    def map(
        self,
        work: Callable[[U], R],
        units: Iterable[U],
        *,
        setup: Callable[..., None],
        setup_args: tuple[Any, ...],
        scratch: Path,
    ) -> Iterator[R]:
        client, cluster = self._client()
        try:
            threads = sum(client.nthreads().values()) or 1
            token = uuid.uuid4().hex
            in_flight: deque[Any] = deque()
            for unit in units:
                in_flight.append(
                    client.submit(
                        _run, work, unit, token, setup, setup_args, str(scratch), pure=False
                    )
                )
                while len(in_flight) >= IN_FLIGHT_PER_WORKER * threads:
                    yield in_flight.popleft().result()
            while in_flight:
                yield in_flight.popleft().result()
        finally:
            for future in in_flight if "in_flight" in locals() else ():
                future.cancel()
            client.close()
            if cluster is not None:
                cluster.close()


_LOCK = threading.Lock()
_READY: set[str] = set()  # the runs this worker process is set up for


def _run(
    work: Callable[[U], R],
    unit: U,
    token: str,
    setup: Callable[..., None],
    setup_args: tuple[Any, ...],
    scratch: str,
) -> R:
    """A unit in a Dask worker: the run's set-up on the worker's first unit, then the work."""
    from pipeline.engine.local import _own_scratch

    with _LOCK:
        if token not in _READY:
            setup(_own_scratch(Path(scratch)), *setup_args)
            _READY.add(token)
    return work(unit)
