"""The docs keep up with the code: reason codes, README commands, CLI options."""

from __future__ import annotations

import re
from pathlib import Path

import click

from pipeline.cli import main
from pipeline.reasons import REASONS, reasons_markdown

ROOT = Path(__file__).resolve().parents[1]

# Places in the code where a reason code is written as a literal.
_PATTERNS = [
    re.compile(r"\breason=\s*\"([a-z_]+)\""),
    re.compile(r"_reason=\s*\"([a-z_]+)\""),
    re.compile(r"\"_reason\"\]\s*(?:,\s*row\[\"_stage\"\])?\s*=\s*\"([a-z_]+)\""),
    re.compile(r"drop_where\(\s*[^,()]+,\s*[^()]+?,\s*\"([a-z_]+)\"", re.S),
    re.compile(r"\.reject\(\s*[^,()]+,\s*[^,()]+,\s*\"([a-z_]+)\"", re.S),
    re.compile(r"_read_problem\"\]\s*=\s*\(\s*\"([a-z_]+)\"", re.S),  # read/plan.py
]
_CONSTANT = re.compile(r"^([A-Z_]+)\s*=\s*\"([a-z]+_[a-z_]+)\"", re.M)
_CONSTANT_USE = re.compile(r"\breason=\s*([A-Z_]+)\b")


def codes_in_source() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "pipeline").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for pattern in _PATTERNS:
            found.update(pattern.findall(text))
        constants = dict(_CONSTANT.findall(text))
        found.update(constants[name] for name in _CONSTANT_USE.findall(text) if name in constants)
    return found


def test_every_reason_code_in_the_code_is_documented() -> None:
    found = codes_in_source()
    # the scan sees literals, keyword arguments and constants
    assert {"json_invalid", "record_unserializable", "shape_invalid", "row_malformed"} <= found
    assert found <= set(REASONS), f"undocumented reason codes: {sorted(found - set(REASONS))}"


def test_docs_reasons_md_is_current() -> None:
    assert (ROOT / "docs" / "reasons.md").read_text(encoding="utf-8") == reasons_markdown(), (
        "regenerate with `python -m pipeline.reasons > docs/reasons.md`"
    )


def test_readme_shows_the_two_commands_and_every_output() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_screen = "\n".join(readme.splitlines()[:40])
    assert "make demo" in first_screen and "make test" in first_screen
    for name in ("train.jsonl", "validation.jsonl", "rejected.jsonl", "report.json"):
        assert name in readme


def test_every_command_and_option_is_documented() -> None:
    docs = (ROOT / "README.md").read_text(encoding="utf-8") + (ROOT / "docs" / "cli.md").read_text(
        encoding="utf-8"
    )
    assert isinstance(main, click.Group)
    for name, command in main.commands.items():
        assert f"ftprep {name}" in docs, f"command {name} is not documented"
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("-"):
                    assert opt in docs, f"option {opt} of {name} is not documented"


def test_every_shipped_config_and_suite_is_documented_by_name() -> None:
    from pipeline import shipped

    cli = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    gate = (ROOT / "docs" / "gate.md").read_text(encoding="utf-8")
    config = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    for name in shipped.names("configs"):
        assert f"| `{name}` |" in cli, f"docs/cli.md does not describe the shipped config {name}"
    for name in shipped.names("expectations"):
        assert f"| `{name}` (`expectations/{name}.json`) |" in gate, name
        assert f"`{name}`" in config, f"gate.expectations in docs/config.md omits {name}"


def test_the_readme_examples_run_as_written(tmp_path: Path) -> None:
    """The "Three jobs" commands, from a folder laid out like a fresh clone (sample_data/)."""
    import os
    import shlex
    import subprocess
    import sys

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Three jobs", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    commands = [c for c in commands if c]
    assert [c.split()[1] for c in commands] == ["run", "check", "convert"]
    expected = {"run": 0, "check": 0, "convert": 1}  # as the README's comments say
    (tmp_path / "sample_data").symlink_to(ROOT / "sample_data")
    bin_dir = Path(sys.executable).parent
    for command in commands:
        args = shlex.split(command)
        done = subprocess.run(
            [str(bin_dir / args[0]), *args[1:]], cwd=tmp_path, capture_output=True, text=True,
            env=os.environ | {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}, check=False,
        )
        want = expected[args[1]]
        assert done.returncode == want, f"{command}\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
