"""The command line: exit codes, messages without tracebacks, the run summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
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


def test_a_shipped_config_runs_by_name(tmp_path: Path, monkeypatch: Any) -> None:
    from pipeline import shipped
    from pipeline.config import load_config

    root = Path(__file__).resolve().parents[1]
    assert shipped.names("configs") == sorted(p.stem for p in (root / "configs").glob("*.yaml"))
    monkeypatch.chdir(tmp_path)
    by_name = load_config("openai_chat")
    assert by_name.source == "openai_chat (shipped)"
    assert by_name.stages == load_config(root / "configs" / "openai_chat.yaml").stages
    assert load_config("openai_chat.yaml").source == "openai_chat (shipped)"

    data = tmp_path / "d.csv"
    data.write_text(
        "question,answer\n" + "".join(f"Q{i}?,A{i}.\n" for i in range(12)), encoding="utf-8"
    )
    result = CliRunner().invoke(
        main, ["run", "openai_chat", "--input", str(data), "--out", "o", "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "12 records in:" in result.output
    assert '"config": "openai_chat (shipped)"' in (tmp_path / "o" / "report.json").read_text()

    # a file of that name wins over the shipped config
    (tmp_path / "openai_chat").write_text("stages: [require_fields]\n", encoding="utf-8")
    assert [s.name for s in load_config("openai_chat").stages] == ["require_fields"]


def test_a_missing_config_names_the_shipped_ones(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["run", "configs/openai_chat.yaml"])
    assert result.exit_code == 2
    assert result.output.startswith(
        "ftprep: error: configs/openai_chat.yaml: config file not found; did you mean the "
        "shipped pipeline config `openai_chat` (by name)? shipped: legacy_completions, openai_chat"
    )
    result = CliRunner().invoke(main, ["run", "mine.yaml"])
    assert "the shipped pipeline configs, usable by name: legacy_completions" in result.output


def test_run_help_lists_the_shipped_configs_and_the_cli_import_reads_no_package_data() -> None:
    import subprocess
    import sys

    from pipeline import shipped

    result = CliRunner().invoke(main, ["run", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert f"exists: {', '.join(shipped.names('configs'))}." in result.output
    code = "import sys, pipeline.cli; print('pipeline.shipped' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


# --- init, reasons, targets NAME, help -----------------------------------------------------


def test_init_writes_a_config_that_runs(tmp_path: Path, monkeypatch: Any) -> None:
    import yaml

    monkeypatch.chdir(tmp_path)
    (tmp_path / "faq.csv").write_bytes(
        ("题目,ask,reply\n" + "".join(f"t,问题{i}?,回答{i}.\n" for i in range(12))).encode("gbk")
    )
    result = CliRunner().invoke(main, ["init", "faq.csv", "--out", "faq.yaml"])
    assert result.exit_code == 0, result.output
    assert "check the guessed columns" in result.output
    text = (tmp_path / "faq.yaml").read_text(encoding="utf-8")
    cfg = yaml.safe_load(text)
    assert cfg["input"]["encoding"] == "gb18030"
    assert cfg["input"]["columns"] == {"prompt": "ask", "completion": "reply"}
    assert "GUESSED" in text
    assert {"name": "convert", "to": "chat"} in cfg["stages"]
    ran = CliRunner().invoke(main, ["run", "faq.yaml", "--workers", "1"])
    assert ran.exit_code == 0, ran.output
    assert "12 records in: " in ran.output

    again = CliRunner().invoke(main, ["init", "faq.csv", "--out", "faq.yaml"])
    assert again.exit_code == 2 and "already exists" in again.output


def test_init_keeps_a_recognised_shape_and_refuses_a_retired_target(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    row = '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}'
    (tmp_path / "chat.jsonl").write_text(row + "\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["init", "chat.jsonl", "--out", "-"])
    assert result.exit_code == 0, result.output
    assert "recognised shape: chat" in result.output
    assert "name: convert" not in result.output and "  columns:" not in result.output
    retired = CliRunner().invoke(main, ["init", "chat.jsonl", "--target", "openai:davinci-002"])
    assert retired.exit_code == 2 and "--target openai:davinci-002" in retired.output
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    result = CliRunner().invoke(main, ["init", "empty.jsonl"])
    assert result.exit_code == 2 and "no records found" in result.output


def test_reasons_lists_every_code_and_explains_one() -> None:
    from pipeline.checks import CHECK_CODES
    from pipeline.gate import GATE_CODES
    from pipeline.reasons import REASONS, WARNINGS

    listed = CliRunner().invoke(main, ["reasons"])
    assert listed.exit_code == 0
    names = {line.split()[0] for line in listed.output.splitlines()}
    assert names == set(REASONS) | set(WARNINGS) | set(GATE_CODES) | set(CHECK_CODES)
    one = CliRunner().invoke(main, ["reasons", "duplicate"])
    assert one.output.splitlines()[0] == "duplicate (reject, dedupe)"
    assert REASONS["duplicate"][1] in one.output
    bad = CliRunner().invoke(main, ["reasons", "duplicat"])
    assert bad.exit_code == 2 and "did you mean duplicate" in bad.output


def test_targets_name_reads_as_text_not_python() -> None:
    out = CliRunner().invoke(main, ["targets", "openai:gpt-4o-mini-2024-07-18"]).output
    assert "datetime" not in out and "{" not in out and "None" not in out
    assert "  training_shutdown: 2027-01-06" in out
    assert "max_file_bytes: 536,870,912" in out
    assert '  newline: "\\n"' in out


def test_help_summaries_are_whole_and_every_command_has_an_example() -> None:
    top = CliRunner().invoke(main, ["--help"]).output
    assert "..." not in top.split("Commands:")[1].replace("TRL...", "TRL")
    for name, command in main.commands.items():
        assert command.short_help, name
        helped = CliRunner().invoke(main, [name, "--help"]).output
        assert "Example: ftprep " + name in helped, name


def test_an_empty_input_is_called_empty_by_name(tmp_path: Path, caplog: Any) -> None:
    files = {
        "empty.jsonl": ("", "the file is empty"),
        "blank.jsonl": ("\n  \n\n", "only blank lines or an empty array"),
        "header.csv": ("question,answer\n", "no data rows, a header row at most"),
    }
    good = tmp_path / "good.csv"
    good.write_text("question,answer\n" + "".join(f"q{i},a{i}\n" for i in range(12)))
    for name, (text, held) in files.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        checked = CliRunner().invoke(main, ["check", str(path), "--target", "openai:gpt-4o-mini-2024-07-18"])
        assert checked.exit_code == 1
        assert f"{path}: error file_empty: no records ({held})" in checked.output
        assert "file_shape" not in checked.output and "none shape" not in checked.output

        ran = CliRunner().invoke(
            main, ["run", "openai_chat", "--input", str(path), "--input", str(good),
                   "--out", str(tmp_path / "o"), "--workers", "1"]
        )
        assert ran.exit_code == 0, ran.output
        assert f"warning: {path}: no records ({held})" in caplog.text  # stderr, by logging

        converted = CliRunner().invoke(
            main, ["convert", str(path), "--to", "chat", "--out", str(tmp_path / "c")]
        )
        assert converted.exit_code == 2
        assert f"ftprep: error: {path}: no records ({held})" in converted.output
        assert not (tmp_path / "c" / (path.stem + ".jsonl")).exists()


def test_run_prints_each_warning_code_with_an_example(tmp_path: Path) -> None:
    import json

    rows = [
        {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
        for i in range(12)
    ]
    rows[3] = {"messages": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}]}
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = CliRunner().invoke(
        main, ["run", "openai_chat", "--input", str(data), "--out", str(tmp_path / "o"), "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "warnings on kept records: user_missing 1" in result.output
    assert f"  user_missing, e.g. {data}:4: messages: no user message" in result.output
    lines = result.output.splitlines()
    assert lines[-1] == "gate passed (exit 0)"


def test_init_detects_a_missing_header_and_guesses_columns_by_content(
    tmp_path: Path, monkeypatch: Any
) -> None:
    import yaml

    monkeypatch.chdir(tmp_path)
    rows = [
        (["배송", "결제"][i % 2], f"주문한 상품 {i}번은 언제 도착하나요? 배송 조회가 되지 않습니다.",
         f"상품 {i}번은 내일 오후에 도착할 예정입니다. 문자로 안내드리겠습니다.")
        for i in range(12)
    ]
    (tmp_path / "faq.csv").write_bytes(
        "".join(f"{a},{b},{c}\n" for a, b, c in rows).encode("cp949")
    )
    result = CliRunner().invoke(main, ["init", "faq.csv", "--out", "faq.yaml"])
    assert result.exit_code == 0, result.output
    cfg = yaml.safe_load((tmp_path / "faq.yaml").read_text(encoding="utf-8"))
    assert cfg["input"]["header"] is False
    assert cfg["input"]["columns"] == {"prompt": "column_2", "completion": "column_3"}
    ran = CliRunner().invoke(main, ["run", "faq.yaml", "--workers", "1"])
    assert ran.exit_code == 0, ran.output
    assert "12 records in: " in ran.output  # row 1 is a record too

    (tmp_path / "ko.csv").write_text(
        "분류,질문,메모,답변\n"
        + "".join(f"{a},{b},{'확인' if i == 0 else ''},{c}\n" for i, (a, b, c) in enumerate(rows)),
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["init", "ko.csv", "--out", "-"])
    assert result.exit_code == 0, result.output
    cfg = yaml.safe_load(result.output[result.output.index("input:") :])
    assert cfg["input"]["columns"] == {"prompt": "질문", "completion": "답변"}
    assert "header" not in cfg["input"]


def test_init_marks_an_uncertain_encoding_as_a_guess(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    text = "prompt,completion\n" + "".join(
        f"Où est la gare n°{i} ?,À droite après le café « Chez Zoë » à {i} minutes.\n"
        for i in range(1, 9)
    )
    (tmp_path / "fr.csv").write_bytes(text.encode("latin-1"))
    result = CliRunner().invoke(main, ["init", "fr.csv", "--out", "-"])
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.output.splitlines() if ln.strip().startswith("encoding:"))
    assert "a GUESS, check that the text reads right" in line and "confidence 0." in line


def test_a_run_preloads_the_encoding_its_workers_count_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ftprep run` names to the pool's forkserver the encoding the run counts with (the one
    the report names, `token_setting`); none when no stage counts tokens, or when the count
    uses a tokenizer.json of its own."""
    from pipeline.engine import local

    named: list[list[str]] = []
    monkeypatch.setattr(local, "prestart", lambda workers, encodings=(): named.append(list(encodings)))
    src = tmp_path / "d.jsonl"
    src.write_text('{"prompt": "p", "completion": "c"}\n', encoding="utf-8")
    target = "openai:gpt-4o-mini-2024-07-18"
    for stages in (
        [{"name": "count_tokens", "encoding": "cl100k_base"}, {"name": "token_limit", "target": target}],
        [{"name": "dedupe"}, {"name": "token_limit", "target": target}],
        [{"name": "dedupe"}],
    ):
        cfg = tmp_path / "c.yaml"
        cfg.write_text(json.dumps({"input": {"paths": [str(src)]}, "stages": stages}), encoding="utf-8")
        CliRunner().invoke(main, ["run", str(cfg), "--out", str(tmp_path / "out"), "--workers", "2"])
    assert named == [["cl100k_base"], ["o200k_base"], []]
