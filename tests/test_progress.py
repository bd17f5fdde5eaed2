"""Progress bars: drawn on a terminal, never on a pipe or with --quiet (pipeline/progress.py)."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def _data(tmp_path: Path) -> Path:
    path = tmp_path / "chat.jsonl"
    rows = (
        {"messages": [{"role": "user", "content": f"Q{i}"}, {"role": "assistant", "content": f"A{i}"}]}
        for i in range(300)
    )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    faq = "question,answer\n" + "".join(f"q{i},a{i}\n" for i in range(50))
    (tmp_path / "faq.csv").write_text(faq, encoding="utf-8")
    # UTF-16 cannot be cut into byte ranges: the parent reads it, counted in records
    (tmp_path / "wide.csv").write_text(faq, encoding="utf-16")
    return path


def _args(tmp_path: Path, *extra: str) -> list[str]:
    return [
        str(BIN / "ftprep"), "run", "openai_chat", "--input", str(tmp_path / "chat.jsonl"),
        "--input", str(tmp_path / "faq.csv"), "--input", str(tmp_path / "wide.csv"),
        "--out", str(tmp_path / "o"), "--workers", "1",
        *extra,
    ]


def _on_a_terminal(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal; stdout on a pipe. (exit code, stdout, terminal)."""
    leader, follower = pty.openpty()
    # a terminal has a size; a fresh pseudo-terminal reports 0 columns until given one
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    seen = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            proc.kill()
            pytest.fail("no output from the run for 60 s")
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process is gone
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    out = proc.stdout.read().decode() if proc.stdout else ""
    return proc.wait(timeout=60), out, seen.decode(errors="replace")


def test_a_bar_per_input_on_a_terminal(tmp_path: Path) -> None:
    _data(tmp_path)
    code, out, terminal = _on_a_terminal(_args(tmp_path), tmp_path)
    assert code == 0, out + terminal
    assert "chat.jsonl: 100%" in terminal  # bytes of a JSONL input, with a total
    assert "faq.csv: 100%" in terminal  # and of a CSV read in byte ranges
    assert "wide.csv: 50 records" in terminal  # records of the others
    assert "records in:" in out and "%|" not in out  # the results stay on stdout


def test_nothing_with_quiet_or_on_a_pipe(tmp_path: Path) -> None:
    _data(tmp_path)
    code, _, terminal = _on_a_terminal(_args(tmp_path, "--quiet"), tmp_path)
    assert code == 0
    assert "%|" not in terminal and "records/s" not in terminal
    piped = subprocess.run(_args(tmp_path), cwd=tmp_path, capture_output=True, text=True, check=False)
    assert piped.returncode == 0, piped.stderr
    assert "%|" not in piped.stderr and "records/s" not in piped.stderr
