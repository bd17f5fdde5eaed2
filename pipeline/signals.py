"""SIGINT and SIGTERM as an exception (`Interrupted`), and sections they must not cut short.

The CLI installs `on_signal` for both signals: the signal raises `Interrupted` in the main
thread, every `with` block on the way out cleans up (temporary folders, the worker pool), and
the CLI prints one line and exits 128 + the signal number. Inside `held()` (a worker pool being
started, outputs being renamed into place) a signal is noted and raised when the section ends.
Blocking the signal (`pthread_sigmask`) would not do: it is per thread, and the C handler of a
signal delivered to any other thread (pyarrow's, the pool's) still runs the Python handler.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any

from pipeline.errors import Interrupted

_pending: list[int] = []
_depth = [0]


def on_signal(signum: int, _frame: Any) -> None:
    if _depth[0]:
        _pending.append(signum)
        return
    raise Interrupted(signum)


@contextlib.contextmanager
def installed() -> Iterator[None]:
    """`on_signal` for SIGINT and SIGTERM while the block runs (main thread only)."""
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def hold() -> None:
    """From now on, note a signal instead of raising it (until the matching `release`)."""
    _depth[0] += 1


def release() -> None:
    """End a `hold`; raise `Interrupted` for a signal that came meanwhile."""
    _depth[0] -= 1
    if not _depth[0] and _pending:
        signum = _pending[0]
        _pending.clear()
        raise Interrupted(signum)


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Let the block finish before a signal that arrives meanwhile is raised."""
    hold()
    try:
        yield
    finally:
        release()
