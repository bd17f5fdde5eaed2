"""Crash safety of `ftprep run`: SIGKILL at random moments, SIGINT (Ctrl-C to the whole
process group) and SIGTERM, and a full disk (a 2 MB tmpfs in a private mount namespace).

Each test runs the real command in its own process on an input generated here, and checks
what is left at the final paths: every file complete (the previous run's or the new run's,
never a part), the previous outputs intact when the run stopped early, no temporary folder
left behind by a run that could clean up, and a rerun byte-identical to a clean run.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CLI = "from pipeline.cli import main; main()"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def make_input(path: Path, n: int, seed: int) -> Path:
    rng = random.Random(seed)
    words = ["data", "model", "token", "batch", "train", "split", "record", "value", "数据", "é"]
    with path.open("wb") as f:
        for i in range(n):
            text = " ".join(rng.choice(words) for _ in range(rng.randint(5, 30)))
            f.write(orjson.dumps({"prompt": f"{i}: {text}?", "completion": text}) + b"\n")
    return path


def config(tmp_path: Path, data: Path, out: Path, workers: int = 2) -> Path:
    cfg = {
        "input": {"paths": [str(data)]},
        "stages": ["normalize_text", "require_fields", "dedupe", {"name": "split", "validation": 0.1}],
        "output": {"dir": str(out)},
        "runner": {"workers": workers, "chunk_bytes": 1 << 20},
    }
    path = tmp_path / f"{data.stem}-{out.name}.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def start(cfg: Path, **kw: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", CLI, "run", str(cfg), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
        **kw,  # type: ignore[call-overload]
    )


def run_ok(cfg: Path) -> None:
    proc = start(cfg)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def wait_for_temp(out: Path, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Wait until the run has its temporary folder (it is reading and writing)."""
    deadline = time.monotonic() + timeout
    while not list(out.glob(".ftprep-tmp-*")):
        assert proc.poll() is None, "the run ended before it could be stopped"
        assert time.monotonic() < deadline
        time.sleep(0.02)


def start_over_old_outputs(
    tmp_path: Path, inputs: tuple[Path, Path], out: Path
) -> tuple[dict[str, bytes], subprocess.Popen[bytes]]:
    """Run the small input into `out`, then start the big one there (in a session of its
    own) and wait until it is writing; gives the previous outputs and the running process."""
    old_data, big = inputs
    run_ok(config(tmp_path, old_data, out))
    old = files(out)
    proc = start(config(tmp_path, big, out), start_new_session=True)
    wait_for_temp(out, proc)
    return old, proc


def running_in_group(pgid: int) -> list[int]:
    """Processes of a process group that still run (a zombie has ended: it only waits for a
    parent to collect it, which an init without a reaper in a container may never do)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("crash-inputs")
    return make_input(folder / "old.jsonl", 500, 1), make_input(folder / "big.jsonl", 80_000, 2)


def test_sigkill_at_random_moments_leaves_only_whole_files(
    tmp_path: Path, inputs: tuple[Path, Path]
) -> None:
    old_data, big = inputs
    out = tmp_path / "out"
    cfg = config(tmp_path, big, out)
    started = time.monotonic()
    run_ok(cfg)  # the complete result of the big input, as a clean run gives it
    full = time.monotonic() - started
    new = files(out)
    run_ok(config(tmp_path, old_data, out))  # the previous outputs
    old = files(out)
    assert set(old) == set(new)
    assert old["train.jsonl"] != new["train.jsonl"] and old["report.json"] != new["report.json"]

    rng = random.Random(13)
    for _ in range(3):
        proc = start(cfg, start_new_session=True)
        time.sleep(rng.uniform(0.2, 1.2 * full))
        os.killpg(proc.pid, signal.SIGKILL)  # the run and its workers, without warning
        proc.communicate()
        now = files(out)
        assert set(now) == set(old), sorted(now)
        for name, data in now.items():
            assert data in (old[name], new[name]), f"{name} is neither the old nor the new file"
        if all(now[k] == old[k] for k in now):
            continue
        # killed while renaming into place (or after): the new files are whole
        assert now["report.json"] in (old["report.json"], new["report.json"])

    run_ok(cfg)  # the rerun removes what the killed runs left and gives the full result
    assert files(out) == new
    assert not list(out.glob(".ftprep-tmp-*"))


@pytest.mark.parametrize(
    ("how", "code", "name"),
    [("group", 130, "SIGINT"), ("parent", 143, "SIGTERM")],
    ids=["ctrl-c-to-the-process-group", "sigterm-to-the-run"],
)
def test_a_signal_stops_the_run_cleanly(
    tmp_path: Path, inputs: tuple[Path, Path], how: str, code: int, name: str
) -> None:
    out = tmp_path / "out"
    old, proc = start_over_old_outputs(tmp_path, inputs, out)
    time.sleep(0.3)
    if how == "group":
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    else:
        proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    lines = err.decode().splitlines()
    assert proc.returncode == code, err.decode()
    assert lines == [lines[0]] and lines[0].startswith(f"ftprep: stopped by {name}"), "\n".join(lines)
    assert files(out) == old  # the previous outputs, untouched
    assert not list(out.glob(".ftprep-tmp-*"))  # temporary files removed
    deadline = time.monotonic() + 10
    while running_in_group(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running_in_group(proc.pid) == []  # no worker left running


def forkserver_in_group(pgid: int) -> bool:
    """Whether the run's forkserver process has started (it may still be importing): a child
    of the run (the group's leader) whose command line names it."""
    try:
        children = Path(f"/proc/{pgid}/task/{pgid}/children").read_text().split()
    except OSError:
        return False
    for pid in children:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"multiprocessing.forkserver" in cmdline:
            return True
    return False


def test_ctrl_c_while_the_forkserver_starts_is_one_line(
    tmp_path: Path, inputs: tuple[Path, Path]
) -> None:
    """Ctrl-C reaches every process of the group, the forkserver too, which may still be
    importing: it must not print a KeyboardInterrupt traceback of its own."""
    for attempt, delay in enumerate((0, 0.005, 0.01, 0.02, 0.04, 0.08)):
        out = tmp_path / f"out{attempt}"
        proc = start(config(tmp_path, inputs[1], out), start_new_session=True)
        deadline = time.monotonic() + 60
        while not forkserver_in_group(proc.pid):
            assert proc.poll() is None, proc.communicate()[1].decode()
            assert time.monotonic() < deadline
            time.sleep(0.002)
        time.sleep(delay)  # the forkserver is starting: at once, or a little later
        os.killpg(proc.pid, signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
        lines = err.decode().splitlines()
        assert proc.returncode == 130, err.decode()
        assert lines == [lines[0]] and lines[0].startswith("ftprep: stopped by SIGINT"), (
            f"Ctrl-C {delay} s after the forkserver started:\n" + "\n".join(lines)
        )


def test_a_full_disk_is_one_line_exit_2_and_no_partial_output(
    tmp_path: Path, inputs: tuple[Path, Path]
) -> None:
    """The output folder is a 2 MB tmpfs, mounted in a mount namespace of this test's own;
    the big input's outputs do not fit, so a write fails with ENOSPC for real."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) is not installed: cannot mount a small tmpfs")
    old_data, big = inputs
    disk = tmp_path / "disk"
    disk.mkdir()
    out = disk / "out"
    small_cfg, big_cfg = config(tmp_path, old_data, out, 1), config(tmp_path, big, out, 1)
    cli = f"{sys.executable} -c '{CLI}' run"
    script = f"""
set -u
mount -t tmpfs -o size=2m tmpfs {disk} || exit 97
{cli} {small_cfg} --quiet >/dev/null || exit 98
cp -r {out} {tmp_path}/before
{cli} {big_cfg} --quiet 2>{tmp_path}/stderr >/dev/null
echo $? > {tmp_path}/code
dd if=/dev/zero of={disk}/fill bs=1M count=8 2>{tmp_path}/dd || true
cp -r {out} {tmp_path}/after
"""
    proc = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
        env=ENV,
        capture_output=True,
        timeout=300,
    )
    if proc.returncode == 97 or b"unshare" in proc.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"No space left on device" in (tmp_path / "dd").read_bytes()  # the disk was small
    assert (tmp_path / "code").read_text().strip() == "2"
    lines = (tmp_path / "stderr").read_text().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"ftprep: error: {out}: cannot write the outputs: ")
    assert "No space left on device" in lines[0]
    assert files(tmp_path / "after") == files(tmp_path / "before")  # untouched
    assert not list((tmp_path / "after").glob(".ftprep-tmp-*"))  # nothing partial left


def workers_of(parent: int) -> list[int]:
    """The pool workers of a run: the children of its forkserver."""
    found: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            found[int(stat.parent.name)] = int(fields[1])
    servers = {pid for pid, ppid in found.items() if ppid == parent and b"forkserver" in _cmdline(pid)}
    return sorted(pid for pid, ppid in found.items() if ppid in servers)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_a_killed_worker_stops_the_run_with_one_line_and_no_output(
    tmp_path: Path, inputs: tuple[Path, Path]
) -> None:
    """A worker killed from outside (as the out-of-memory killer does) ends the run at once:
    a process pool that waited for the dead worker's result would hang forever."""
    out = tmp_path / "out"
    old, proc = start_over_old_outputs(tmp_path, inputs, out)
    deadline = time.monotonic() + 30
    while len(workers_of(proc.pid)) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, "no workers seen"
        time.sleep(0.02)
    os.kill(workers_of(proc.pid)[0], signal.SIGKILL)
    try:
        _out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("the run hangs after one of its workers was killed")
    lines = err.decode().splitlines()
    assert proc.returncode == 2, err.decode()
    assert len(lines) == 1 and lines[0].startswith("ftprep: error: a worker process ended"), lines
    assert files(out) == old
    assert not list(out.glob(".ftprep-tmp-*"))
    deadline = time.monotonic() + 10
    while running_in_group(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running_in_group(proc.pid) == []


def test_a_folder_named_pipeline_where_ftprep_runs_is_not_imported(
    tmp_path: Path, inputs: tuple[Path, Path]
) -> None:
    """`pipeline` is a common folder name in data projects. Run from such a folder, as the
    console script runs (its own folder first on the path, not the current one), the workers
    must import ftprep's package, not the user's."""
    old_data, _big = inputs
    work = tmp_path / "project"
    (work / "pipeline").mkdir(parents=True)
    marker = tmp_path / "imported"
    (work / "pipeline" / "__init__.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n", encoding="utf-8"
    )
    launcher = tmp_path / "bin" / "ftprep_launcher.py"
    launcher.parent.mkdir()
    launcher.write_text(CLI + "\n", encoding="utf-8")
    cfg = config(tmp_path, old_data, tmp_path / "out")
    proc = subprocess.run(
        [sys.executable, str(launcher), "run", str(cfg), "--quiet"],
        cwd=work,
        env=ENV,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert not marker.exists(), "a worker imported the `pipeline` folder of the working directory"
    assert files(tmp_path / "out")["train.jsonl"]
