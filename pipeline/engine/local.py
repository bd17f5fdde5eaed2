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

A worker that dies (SIGKILL, the out-of-memory killer, a crash) stops the run at once with
`WorkerLost` (exit 2, nothing written): the pool is a `concurrent.futures` executor, which
notices a dead worker, where a `multiprocessing.Pool` would wait for its result forever.
Workers import ftprep's own `pipeline` package, never a folder of that name where ftprep runs
(`_own_package_only`).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

from pipeline import signals
from pipeline.engine import fewer_collections
from pipeline.errors import PipelineError

U = TypeVar("U")
R = TypeVar("R")

IN_FLIGHT_PER_WORKER = 2
PRELOAD = [
    "pipeline.engine.worker_signals",
    "pipeline.runner",
    "pipeline.registry",
    "pipeline.engine.worker_tokenizers",
]
START_TIMEOUT = 60.0  # seconds for every worker of a new pool to be set up
PRELOAD_ENCODINGS_ENV = "FTPREP_PRELOAD_ENCODINGS"  # read by `worker_tokenizers`


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
        # A signal waits until every worker is set up: a pool stopped while a worker is
        # still unpickling its start-up state makes that worker print a traceback.
        signals.hold()
        pids: list[int] = []
        finished = False
        try:
            with _main_module_hidden(), _own_package_only():
                _start_forkserver()
                pool = ProcessPoolExecutor(
                    self.workers,
                    mp_context=ctx,
                    initializer=_setup_worker,
                    initargs=(setup, scratch, setup_args),
                )
                try:
                    # One blocking hello per worker: each waits until all have started, so
                    # every submit finds no idle worker and starts a new one.
                    hellos = [
                        pool.submit(_hello, Path(scratch), self.workers)
                        for _ in range(self.workers)
                    ]
                    pids = sorted({_result(hello) for hello in hellos})
                finally:
                    signals.release()
            in_flight: deque[Future[R]] = deque()
            for unit in units:
                in_flight.append(pool.submit(_work, work, unit))
                while len(in_flight) >= IN_FLIGHT_PER_WORKER * self.workers:
                    yield _result(in_flight.popleft())
            while in_flight:
                yield _result(in_flight.popleft())
            finished = True
        finally:
            if "pool" in locals():
                if not finished:  # an error, a signal, or a caller that stopped early
                    _stop(pids)
                pool.shutdown(wait=True, cancel_futures=True)


class WorkerLost(PipelineError):
    """A worker process ended without its result: killed from outside (SIGKILL, the kernel's
    out-of-memory killer) or crashed. The run stops like any failed run: nothing is written."""

    def __init__(self) -> None:
        super().__init__(
            "a worker process ended without returning its result (killed from outside, or by "
            "the out-of-memory killer); nothing was written. Rerun it; if memory is short, use "
            "fewer workers (--workers 1) or smaller units (runner.chunk_bytes, runner.batch_size)"
        )


def _result(future: Future[R]) -> R:
    try:
        return future.result()
    except BrokenProcessPool:
        raise WorkerLost() from None


def _stop(pids: list[int]) -> None:
    """Stop the workers now, whatever they are doing (the executor would wait for them)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def _start_forkserver() -> None:
    """Start the forkserver (if it is not running) with SIGINT blocked. The blocked mask
    crosses fork and exec, so Ctrl-C, which reaches the whole process group, cannot interrupt
    the forkserver while it is still importing (it printed a KeyboardInterrupt traceback);
    `worker_signals`, its first preload, ignores SIGINT and unblocks it. In this process a
    Ctrl-C meanwhile stays pending and is raised when the mask is restored. The resource
    tracker starts first: starting it unblocks SIGINT (it blocks and unblocks it around its
    own start)."""
    from multiprocessing import forkserver, resource_tracker

    resource_tracker.ensure_running()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        forkserver.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def prestart(workers: int | None, encodings: Iterable[str] = ()) -> None:
    """Start the forkserver now when a run will use a pool, so that its imports (the pipeline,
    pandas, pyarrow: about a second) run while this process still loads and plans; the pool
    then finds it running. `encodings`: the tokenizer encodings the run counts with, which
    the forkserver loads once for every worker (`worker_tokenizers`). Nothing happens for one
    worker, or when a forkserver already runs."""
    if LocalEngine(workers).workers < 2:
        return
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    os.environ[PRELOAD_ENCODINGS_ENV] = ",".join(encodings)
    try:
        with _main_module_hidden(), _own_package_only():
            _start_forkserver()
    finally:
        del os.environ[PRELOAD_ENCODINGS_ENV]


def _hello(scratch: Path, workers: int) -> int:
    """Mark this worker as started, then wait until `workers` workers have: while one waits,
    the next hello cannot go to it, so every hello runs in a worker of its own."""
    (scratch / f"hello-{os.getpid()}").touch()
    deadline = time.monotonic() + START_TIMEOUT
    while len(list(scratch.glob("hello-*"))) < workers and time.monotonic() < deadline:
        time.sleep(0.01)
    return os.getpid()


_SETUP_ERROR: list[BaseException] = []


def _own_scratch(scratch: Path) -> Path:
    own = Path(scratch) / f"worker-{os.getpid()}"
    own.mkdir(parents=True, exist_ok=True)
    return own


def _setup_worker(setup: Callable[..., None], scratch: Path, args: tuple[Any, ...]) -> None:
    try:
        setup(_own_scratch(scratch), *args)
    except Exception as exc:  # raised from the first unit: a dying initializer respawns forever
        _SETUP_ERROR.append(exc)
    fewer_collections()


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


@contextlib.contextmanager
def _own_package_only() -> Iterator[None]:
    """Start the forkserver without the current folder on its import path.

    The forkserver starts as `python -c ...`, which puts the current folder first on
    `sys.path`, and it imports the pipeline before it forks any worker: a folder named
    `pipeline` where ftprep runs (a common name in data projects) would be imported in its
    place, and the workers would run that code. PYTHONSAFEPATH keeps the current folder off
    the path of that process alone; this process's environment is restored at once.
    """
    saved = os.environ.get("PYTHONSAFEPATH")
    os.environ["PYTHONSAFEPATH"] = "1"
    try:
        yield
    finally:
        if saved is None:
            del os.environ["PYTHONSAFEPATH"]
        else:
            os.environ["PYTHONSAFEPATH"] = saved
