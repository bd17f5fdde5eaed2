"""The command line: exit codes, messages without tracebacks, the run summary."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from pipeline.cli import main


def write(tmp_path: Path, text: str) -> Path:
    cfg = tmp_path / "run.yaml"
    cfg.write_text(text, encoding="utf-8")
    return cfg


def test_run_prints_counts_and_outputs(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "", "completion": "b"}\n')
    cfg = write(tmp_path, "stages: [require_fields]\n")
    result = CliRunner().invoke(
        main,
        ["run", str(cfg), "--input", str(data), "--out", str(tmp_path / "o"), "--workers", "1"],
    )
    assert result.exit_code == 0, result.output
    assert "2 records in: 1 train, 0 validation, 1 rejected" in result.output
    assert str(tmp_path / "o" / "train.jsonl") in result.output


def test_config_error_exits_2_without_traceback(tmp_path: Path) -> None:
    cfg = write(tmp_path, "stages:\n  - name: normalise_text\n")
    result = CliRunner().invoke(main, ["run", str(cfg)])
    assert result.exit_code == 2
    assert "stages[0].name: unknown stage 'normalise_text'" in result.output
    assert "Traceback" not in result.output


def test_unreadable_input_exits_2(tmp_path: Path) -> None:
    cfg = write(tmp_path, f"input:\n  paths: [{tmp_path / 'missing.csv'}]\n")
    result = CliRunner().invoke(main, ["run", str(cfg)])
    assert result.exit_code == 2
    assert "missing.csv: no such file or directory" in result.output


def test_bad_workers_exits_2(tmp_path: Path) -> None:
    cfg = write(tmp_path, "{}\n")
    result = CliRunner().invoke(main, ["run", str(cfg), "--workers", "0"])
    assert result.exit_code == 2 and "--workers 0" in result.output


def test_gate_failure_exits_1_after_writing_outputs(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text(
        '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n'
    )
    cfg = write(tmp_path, "target: openai:gpt-4o-mini-2024-07-18\nstages: [dataset_limits]\n")
    out = tmp_path / "o"
    result = CliRunner().invoke(
        main, ["run", str(cfg), "--input", str(data), "--out", str(out), "--workers", "1"]
    )
    assert result.exit_code == 1, result.output
    assert "gate failed" in result.output and "10" in result.output
    assert (out / "train.jsonl").exists() and (out / "report.json").exists()


def test_the_version_lives_in_one_place_and_version_shows_it() -> None:
    import importlib.metadata
    import tomllib

    import pipeline

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert importlib.metadata.version("ftprep") == pipeline.__version__
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and result.output.strip().endswith(pipeline.__version__)
