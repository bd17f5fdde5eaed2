"""The local engine (pipeline/engine/local.py): ordered results, per-worker set-up and scratch,
bounded work in flight, errors propagate.

The work and set-up functions are module-level: the pool pickles them by reference
(`tests.test_engine.work`), so its forkserver workers import this module, which they can
because tests/ is a package (checked below).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.engine import get_engine
from pipeline.engine.local import LocalEngine

ROOT = Path(__file__).resolve().parents[1]
WORKERS = (1, 2)

_SCRATCH: Path | None = None  # the folder setup got, in this worker
_TAG: str | None = None


def setup(scratch: Path, tag: str) -> None:
    """Worker set-up: remember the scratch folder and leave a mark in it."""
    global _SCRATCH, _TAG
    _SCRATCH, _TAG = Path(scratch), tag
    with open(Path(scratch) / "setup.log", "a", encoding="utf-8") as f:
        f.write(f"{os.getpid()} {tag}\n")


def work(unit: tuple[int, float]) -> dict[str, Any]:
    """Sleep, then say which unit this was, who ran it, with what set-up, and when it ended."""
    index, delay = unit
    time.sleep(delay)
    return {
        "index": index,
        "pid": os.getpid(),
        "scratch": str(_SCRATCH),
        "tag": _TAG,
        "module": __name__,
        "finished": time.monotonic_ns(),  # CLOCK_MONOTONIC: one clock for every process
    }


def gc_settings(unit: tuple[int, float]) -> tuple[tuple[int, ...], int]:
    """This process's collector thresholds and how many objects it froze."""
    import gc

    return gc.get_threshold(), gc.get_freeze_count()


def failing_work(unit: tuple[int, float]) -> int:
    index, _ = unit
    if index == 2:
        raise ValueError(f"unit {index} is bad")
    return index


def broken_setup(scratch: Path, *args: Any) -> None:
    raise RuntimeError("setup broke")


def run(workers: int, units: Any, scratch: Path, fn: Any = work) -> Iterator[Any]:
    return LocalEngine(workers).map(fn, units, setup=setup, setup_args=("t1",), scratch=scratch)


@pytest.mark.parametrize("workers", WORKERS)
def test_results_come_back_in_unit_order_even_when_later_units_finish_first(
    workers: int, tmp_path: Path
) -> None:
    n = 8
    units = [(i, 0.03 * (n - i)) for i in range(n)]  # early units sleep longest
    results = list(run(workers, iter(units), tmp_path / "scratch"))
    assert [r["index"] for r in results] == list(range(n))
    if workers > 1:
        # the test means something: the pool did finish a later unit first
        finished = [r["finished"] for r in results]
        assert finished != sorted(finished), finished
        assert len({r["pid"] for r in results}) == 2
        assert os.getpid() not in {r["pid"] for r in results}
    else:
        assert {r["pid"] for r in results} == {os.getpid()}  # one worker: this process


def test_pool_workers_collect_garbage_less_often_and_the_caller_is_untouched(
    tmp_path: Path,
) -> None:
    """Pool workers are ftprep's own processes: their collector is tuned (fewer_collections);
    with one worker the units run in the caller's process, whose settings stay its own."""
    import gc

    from pipeline.engine import GC_THRESHOLD

    before = gc.get_threshold()
    got = list(run(2, [(0, 0.0), (1, 0.0)], tmp_path / "two", gc_settings))
    assert [threshold for threshold, _ in got] == [GC_THRESHOLD, GC_THRESHOLD]
    assert all(frozen > 1000 for _, frozen in got)  # the modules the pool preloaded
    one = list(run(1, [(0, 0.0)], tmp_path / "one", gc_settings))
    assert one[0][0] == before == gc.get_threshold() != GC_THRESHOLD


def test_the_ftprep_command_tunes_its_collector_and_main_does_not() -> None:
    code = (
        "import gc, sys\n"
        "from pipeline.cli import {fn}\n"
        "sys.argv = ['ftprep', '--version']\n"
        "try:\n    {fn}()\nexcept SystemExit:\n    pass\n"
        "print(gc.get_threshold(), gc.get_freeze_count() > 1000)\n"
    )
    out = {
        fn: subprocess.run(
            [sys.executable, "-c", code.format(fn=fn)], capture_output=True, text=True, cwd=ROOT
        ).stdout.splitlines()[-1]
        for fn in ("entry", "main")
    }
    assert out["entry"] == "(100000, 5, 10) True"
    assert out["main"] == "(700, 10, 10) False"
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'ftprep = "pipeline.cli:entry"' in pyproject


def test_prestart_starts_the_forkserver_for_a_pool_only() -> None:
    """`ftprep run` starts the pool's forkserver before it imports the pipeline itself, so the
    two import at once; with one worker there is no pool and nothing starts."""
    code = (
        "from multiprocessing import forkserver\n"
        "from pipeline.engine.local import prestart\n"
        "prestart({n})\n"
        "print(forkserver._forkserver._forkserver_pid is not None, "
        "forkserver._forkserver._preload_modules)\n"
    )
    for n, expected in ((1, "False ['__main__']"), (2, "True ['pipeline.engine.worker_signals',")):
        out = subprocess.run(
            [sys.executable, "-c", code.format(n=n)], capture_output=True, text=True, cwd=ROOT
        )
        assert out.stdout.startswith(expected), (n, out.stdout, out.stderr)


def encodings_loaded(unit: tuple[int, float]) -> int:
    """How many encodings this worker had built before it was asked for any."""
    from pipeline import tokens

    return tokens.get_encoding.cache_info().currsize


def test_prestarted_workers_start_with_the_run_s_encoding(tmp_path: Path) -> None:
    """The forkserver loads the encodings `prestart` names, once, and the workers forked from
    it find them in their cache; a name that cannot be loaded is skipped, silently."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from pipeline.engine.local import LocalEngine, prestart\n"
        "from tests.test_engine import setup, encodings_loaded\n"
        "prestart(2, ['o200k_base', 'no_such_encoding'])\n"
        "out = list(LocalEngine(2).map(encodings_loaded, [(0, 0.0), (1, 0.0)], setup=setup,\n"
        "           setup_args=('t',), scratch=Path(sys.argv[1])))\n"
        "print(out)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[1, 1]", out.stderr
    bare = subprocess.run(
        [sys.executable, "-c", code.replace("prestart(2, [", "prestart(2, []) and (["), str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert bare.stdout.strip() == "[0, 0]", bare.stderr


@pytest.mark.parametrize("workers", WORKERS)
def test_setup_runs_once_per_worker_with_its_own_scratch_folder(
    workers: int, tmp_path: Path
) -> None:
    scratch = tmp_path / "scratch"
    results = list(run(workers, [(i, 0.02) for i in range(10)], scratch))
    folders = sorted(p for p in scratch.iterdir() if p.is_dir())
    assert len(folders) == workers, folders  # one folder per worker, inside `scratch`
    for folder in folders:
        lines = (folder / "setup.log").read_text(encoding="utf-8").splitlines()
        assert len(lines) == 1, lines  # set-up ran once in that worker, with its arguments
        _pid, tag = lines[0].split()
        assert tag == "t1"
    for r in results:
        # the work function sees the set-up its own worker did, and a folder of its own
        assert r["tag"] == "t1"
        got = Path(r["scratch"])
        assert got.parent == scratch and got in folders
        log = (got / "setup.log").read_text(encoding="utf-8").split()
        assert int(log[0]) == r["pid"]
    by_pid = {r["pid"]: r["scratch"] for r in results}
    assert len(set(by_pid.values())) == len(by_pid)  # no two workers share a folder


@pytest.mark.parametrize("workers", WORKERS)
def test_at_most_two_units_per_worker_are_in_flight(workers: int, tmp_path: Path) -> None:
    pulled: list[int] = []

    def units(n: int) -> Iterator[tuple[int, float]]:
        for i in range(n):
            pulled.append(i)
            yield (i, 0.005)

    ahead = []
    for k, r in enumerate(run(workers, units(30), tmp_path / "scratch")):
        assert r["index"] == k
        ahead.append(len(pulled) - k)  # units taken from the input whose result is not consumed
        time.sleep(0.002)  # a consumer slower than nothing: the engine must not race ahead
    assert len(pulled) == 30
    assert max(ahead) <= 2 * workers, ahead
    if workers > 1:
        assert max(ahead) > 1, ahead  # it does keep several units going at once


@pytest.mark.parametrize("workers", WORKERS)
def test_an_exception_in_the_work_function_reaches_the_caller(workers: int, tmp_path: Path) -> None:
    results = run(workers, [(i, 0.0) for i in range(6)], tmp_path / "scratch", failing_work)
    assert next(results) == 0
    assert next(results) == 1
    with pytest.raises(ValueError, match="unit 2 is bad"):
        next(results)


BROKEN_SETUP_RUN = """
import sys
from pathlib import Path
from pipeline.engine.local import LocalEngine
from tests.test_engine import broken_setup, work
list(LocalEngine(2).map(work, [(0, 0.0)], setup=broken_setup, setup_args=(), scratch=Path(sys.argv[1])))
"""


def test_an_exception_in_setup_reaches_the_caller(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="setup broke"):  # one worker: this process
        list(
            LocalEngine(1).map(
                work, [(0, 0.0)], setup=broken_setup, setup_args=(), scratch=tmp_path / "s1"
            )
        )
    # two workers: in a child process, so that a hang cannot hang the test run
    err = tmp_path / "stderr.txt"
    with open(err, "wb") as f:
        proc = subprocess.Popen(
            [sys.executable, "-c", BROKEN_SETUP_RUN, str(tmp_path / "s2")],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=f,
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            raised = err.read_bytes().count(b"setup broke")
            pytest.fail(
                "LocalEngine(2).map hangs when setup raises in the workers (still running after "
                f"10 s; the error was raised {raised} times: the pool starts a new worker for "
                "each one that dies in its initializer, forever)"
            )
    assert code != 0
    assert b"RuntimeError: setup broke" in err.read_bytes()


def test_get_engine_gives_the_local_engine() -> None:
    engine = get_engine(2)
    assert isinstance(engine, LocalEngine) and engine.workers == 2
    assert get_engine(None).workers >= 1  # type: ignore[attr-defined]


def test_this_module_is_importable_in_a_worker() -> None:
    """The pool pickles `work` as tests.test_engine.work: a new process must import it."""
    assert (ROOT / "tests" / "__init__.py").is_file()
    assert __name__ == "tests.test_engine", __name__
    assert work.__module__ == setup.__module__ == "tests.test_engine"
    proc = subprocess.run(
        [sys.executable, "-c", "import tests.test_engine as t; print(t.work.__qualname__)"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "work"
