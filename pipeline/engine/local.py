"""The local engine: an ordered process pool (or this process, for one worker).

Units go to a pool of worker processes started from a forkserver with the pipeline preloaded;
at most two units per worker are in flight, so memory stays flat whatever the input size, and
results are yielded in unit order. With one worker, units run in this process.

The pool works from any caller: a script without an `if __name__ == "__main__":` guard, or a
Jupyter kernel. A new worker process normally re-runs the caller's main module (that is what
the guard is for); the work and set-up functions here always live in importable modules, so
the main module is hidden from the workers while they start (`_main_module_hidden`).

A signal (SIGINT, SIGTERM) stops the parent; leaving the pool terminates the workers. Workers
ignore SIGINT from birth (`worker_signals`, preloaded by the forkserver), so Ctrl-C in a
terminal gives one message, not one per process; signals are held while the pool starts.

An exception in a worker's set-up is raised from that worker's first unit: a pool whose
initializer raises would start a new worker, and another, forever, without telling the caller.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pipeline import signals

U = TypeVar("U")
R = TypeVar("R")

IN_FLIGHT_PER_WORKER = 2
PRELOAD = ["pipeline.engine.worker_signals", "pipeline.runner", "pipeline.registry"]
START_TIMEOUT = 60.0  # seconds for every worker of a new pool to be set up


class LocalEngine:
    """Runs units in this process or in a local pool of `workers` processes."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1

    def map(
        self,
        work: Callable[[U], R],
        units: Iterable[U],
        *,
        setup: Callable[..., None],
        setup_args: tuple[Any, ...],
        scratch: Path,
    ) -> Iterator[R]:
        if self.workers == 1:
            setup(_own_scratch(scratch), *setup_args)
            for unit in units:
                yield work(unit)
            return
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        # A signal waits until every worker is set up: a pool terminated while a worker is
        # still unpickling its start-up state makes that worker print a traceback.
        # It is raised inside `with pool`, which terminates the pool.
        signals.hold()
        try:
            with _main_module_hidden():
                pool = ctx.Pool(
                    self.workers, initializer=_setup_worker, initargs=(setup, scratch, setup_args)
                )
        except BaseException:
            signals.release()
            raise
        with pool:
            try:
                _wait_started(Path(scratch), self.workers)
            finally:
                signals.release()
            in_flight: deque[Any] = deque()
            for unit in units:
                in_flight.append(pool.apply_async(_work, (work, unit)))
                while len(in_flight) >= IN_FLIGHT_PER_WORKER * self.workers:
                    yield in_flight.popleft().get()
            while in_flight:
                yield in_flight.popleft().get()


_SETUP_ERROR: list[BaseException] = []


def _wait_started(scratch: Path, workers: int) -> None:
    """Wait until `workers` workers have made their scratch folders (their set-up began)."""
    deadline = time.monotonic() + START_TIMEOUT
    while len(list(scratch.glob("worker-*"))) < workers and time.monotonic() < deadline:
        time.sleep(0.01)


def _own_scratch(scratch: Path) -> Path:
    own = Path(scratch) / f"worker-{os.getpid()}"
    own.mkdir(parents=True, exist_ok=True)
    return own


def _setup_worker(setup: Callable[..., None], scratch: Path, args: tuple[Any, ...]) -> None:
    try:
        setup(_own_scratch(scratch), *args)
    except Exception as exc:  # raised from the first unit: a dying initializer respawns forever
        _SETUP_ERROR.append(exc)


def _work(work: Callable[[U], R], unit: U) -> R:
    if _SETUP_ERROR:
        raise _SETUP_ERROR[0]
    return work(unit)


@contextlib.contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Start processes without telling them the caller's main module.

    multiprocessing re-imports `__main__` in every new worker (by `__spec__` name, or by its
    `__file__`); for a script without a main guard that starts the pool again from inside a
    worker, and again, in a loop of tracebacks. Nothing the workers run is defined there.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved = {name: getattr(main, name) for name in ("__spec__", "__file__") if hasattr(main, name)}
    try:
        main.__spec__ = None  # type: ignore[assignment]
        if hasattr(main, "__file__"):
            del main.__file__
        yield
    finally:
        for name, value in saved.items():
            setattr(main, name, value)
