"""The pre-commit hook and the GitHub Action, run here as they run there.

The hook's entry, args and file pattern come from .pre-commit-hooks.yaml, and the command
pre-commit would run (entry, args, then the staged files that match) runs in a scratch folder.
The action's check step is the `run:` script of action.yml, run with bash and the environment
GitHub gives it (inputs as env, GITHUB_STEP_SUMMARY); the install step is the wheel install
tests/test_packaging.py covers.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # where this environment's `ftprep` script is
TARGET = "openai:gpt-4o-mini-2024-07-18"


def chats(n: int) -> list[dict[str, object]]:
    return [
        {"messages": [{"role": "user", "content": f"Q{i}"}, {"role": "assistant", "content": f"A{i}"}]}
        for i in range(n)
    ]


def write(path: Path, records: list[dict[str, object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def env() -> dict[str, str]:
    return os.environ | {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def test_the_pre_commit_hook_checks_the_staged_jsonl_files(tmp_path: Path) -> None:
    assert shutil.which("ftprep", path=str(BIN)), "the ftprep console script is not installed"
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert hook["id"] == "ftprep-check" and hook["language"] == "python"
    good = write(tmp_path / "data" / "good.jsonl", chats(12))
    bad_records = chats(12)
    bad_records[4] = {"messages": [{"role": "user", "content": "no answer"}]}
    bad = write(tmp_path / "data" / "bad.jsonl", bad_records)
    (tmp_path / "data" / "notes.csv").write_text("a,b\n", encoding="utf-8")
    staged = ["data/good.jsonl", "data/bad.jsonl", "data/notes.csv"]
    matching = [f for f in staged if re.search(hook["files"], f)]
    assert matching == ["data/good.jsonl", "data/bad.jsonl"]

    def run(files: list[str]) -> subprocess.CompletedProcess[str]:
        command = [*shlex.split(hook["entry"]), *hook["args"], *files]
        return subprocess.run(
            command, cwd=tmp_path, env=env(), capture_output=True, text=True, check=False
        )

    assert run([str(good.relative_to(tmp_path))]).returncode == 0
    failed = run(matching)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "data/bad.jsonl:5: error assistant_missing" in failed.stdout
    assert bad.exists()


def test_the_action_annotates_problems_and_writes_the_job_summary(tmp_path: Path) -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    assert action["runs"]["using"] == "composite"
    steps = {s.get("name"): s for s in action["runs"]["steps"]}
    assert '"$GITHUB_ACTION_PATH"' in steps["Install ftprep"]["run"]
    step = steps["ftprep check"]
    assert set(step["env"]) == {"FILES", "TARGET", "ARGS"}
    assert set(action["inputs"]) >= {"files", "target", "args"}

    records = chats(12)
    records[2]["messages"][1]["weight"] = 3  # type: ignore[index]
    write(tmp_path / "data" / "sub" / "train.jsonl", records)
    write(tmp_path / "data" / "valid.jsonl", chats(10))
    summary = tmp_path / "summary.md"

    def run(files: str, args: str = "") -> subprocess.CompletedProcess[str]:
        inputs = {"FILES": files, "TARGET": TARGET, "ARGS": args}
        return subprocess.run(
            ["bash", "-e", "-c", step["run"]],
            cwd=tmp_path,
            env=env() | inputs | {"GITHUB_STEP_SUMMARY": str(summary)},
            capture_output=True,
            text=True,
            check=False,
        )

    done = run("data/**/*.jsonl")  # a glob the action passes to ftprep unexpanded
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        "::error file=data/sub/train.jsonl,line=3,title=weight_invalid::" in done.stdout
    ), done.stdout
    assert "valid.jsonl,line" not in done.stdout
    page = summary.read_text(encoding="utf-8")
    assert page.startswith(f"## ftprep check failed for `{TARGET}` (exit 1)")
    assert "| `data/sub/train.jsonl` | 12 | 1 | 0 | failed |" in page
    assert "| `data/valid.jsonl` | 10 | 0 | 0 | passed |" in page

    clean = run("data/valid.jsonl", "--strict")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert summary.read_text(encoding="utf-8").count("## ftprep check") == 2  # appended
