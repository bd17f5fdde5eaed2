"""The convert stage and `ftprep convert`: legacy data to chat, chat to other shapes."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from pipeline.cli import main
from tests.conftest import corpus_file, read_jsonl, run_config, write_jsonl


def test_legacy_to_chat_removes_separator_stop_and_space(tmp_path: Path) -> None:
    src = write_jsonl(
        tmp_path / "legacy.jsonl",
        [
            {"prompt": "Q1\n\n###\n\n", "completion": " A1 END"},
            {"prompt": "Q2 ->", "completion": " 2"},
            {"prompt": "Q3", "completion": "A3"},
        ],
    )
    report = run_config(
        tmp_path,
        {"input": {"paths": [str(src)]}, "stages": [{"name": "convert", "to": "chat", "system": "S"}]},
    )
    rows = read_jsonl(tmp_path / "out" / "train.jsonl")
    assert [[m["content"] for m in r["messages"]] for r in rows] == [
        ["S", "Q1", "A1"], ["S", "Q2", "2"], ["S", "Q3", "A3"]
    ]
    changes = report["stages"][1]["changes"]
    assert changes["prompt_completion_to_chat"] == 3
    assert changes["leading_space_removed"] == 2
    assert changes["separator_removed['\\n\\n###\\n\\n']"] == 1
    assert changes["stop_removed[' END']"] == 1


def test_explicit_separator_and_none(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "l.jsonl", [{"prompt": "Q ->", "completion": " A END"}])
    run_config(
        tmp_path,
        {
            "input": {"paths": [str(src)]},
            "stages": [{"name": "convert", "separator": " ->", "stop": None, "leading_space": False}],
        },
    )
    msgs = read_jsonl(tmp_path / "out" / "train.jsonl")[0]["messages"]
    assert [m["content"] for m in msgs] == ["Q", " A END"]


def test_nerre_legacy_files_convert_cleanly(tmp_path: Path) -> None:
    path = corpus_file("openai_format/nerre_mof_gpt3_fold0_train.jsonl")
    report = run_config(tmp_path, {"input": {"paths": [str(path)]}, "stages": [{"name": "convert"}]})
    assert report["totals"]["train"] == 456
    changes = report["stages"][1]["changes"]
    assert changes["separator_removed['\\n\\n###\\n\\n']"] == 456
    assert changes["stop_removed['\\n\\nEND\\n\\n']"] == 456
    first = read_jsonl(tmp_path / "out" / "train.jsonl")[0]["messages"]
    assert not first[0]["content"].endswith("#") and not first[1]["content"].endswith("END")
    assert not first[1]["content"].startswith(" ")


def test_chat_to_prompt_completion_rejects_multi_turn(tmp_path: Path) -> None:
    src = write_jsonl(
        tmp_path / "c.jsonl",
        [
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
            {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"},
                          {"role": "assistant", "content": "a"}]},
        ],
    )
    report = run_config(
        tmp_path, {"input": {"paths": [str(src)]}, "stages": [{"name": "convert", "to": "prompt_completion"}]}
    )
    assert read_jsonl(tmp_path / "out" / "train.jsonl") == [{"prompt": "q", "completion": "a"}]
    rejected = read_jsonl(tmp_path / "out" / "rejected.jsonl")
    assert [(r["line"], r["reason"]) for r in rejected] == [(2, "conversion_lossy")]
    assert "roles ['system', 'user', 'assistant']" in rejected[0]["message"]
    assert report["identity"]["holds"]


def test_glaive_sharegpt_to_vertex(tmp_path: Path) -> None:
    path = corpus_file("sharegpt/llamafactory_glaive_toolcall_en_demo.json")
    report = run_config(tmp_path, {"input": {"paths": [str(path)]}, "stages": [{"name": "convert", "to": "vertex"}]})
    train = read_jsonl(tmp_path / "out" / "train.jsonl")
    assert train and all("contents" in r for r in train)
    assert report["totals"]["train"] + report["totals"]["rejected"] == 300


def test_cli_convert_keeps_relative_paths_and_exits_1_on_rejects(tmp_path: Path) -> None:
    src = tmp_path / "legacy"
    write_jsonl(src / "a.jsonl", [{"prompt": "Q\n\n###\n\n", "completion": " A END"}])
    write_jsonl(src / "sub" / "b.jsonl", [{"prompt": "Q2", "completion": " A2"}])
    out = tmp_path / "converted"
    result = CliRunner().invoke(main, ["convert", str(src), "--to", "chat", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "a.jsonl").exists() and (out / "sub" / "b.jsonl").exists()
    assert "2 files: 2 records, 2 converted, 0 rejected" in result.output
    assert not list(out.glob(".ftprep-*"))

    write_jsonl(src / "sub" / "c.jsonl", [{"messages": [{"role": "user", "content": "x"}]}])
    result = CliRunner().invoke(main, ["convert", str(src), "--to", "bedrock", "--out", str(out)])
    assert result.exit_code == 1
    assert (out / "sub" / "c.jsonl").exists()
    assert "3 files: 3 records" in result.output


def test_cli_convert_unreadable_input_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "pairs.csv"
    bad.write_text("id,x1,x2\n1,a,b\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["convert", str(bad), "--to", "chat", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "no known record shape" in result.output


def test_cli_targets_lists_and_shows() -> None:
    result = CliRunner().invoke(main, ["targets"])
    assert result.exit_code == 0 and "openai:gpt-4o-mini-2024-07-18" in result.output
    result = CliRunner().invoke(main, ["targets", "openai:gpt-3.5-turbo-0613"])
    assert result.exit_code == 0 and "max_tokens_per_example: 4,096" in result.output
    result = CliRunner().invoke(main, ["targets", "openai:gpt-4o-mini"])
    assert result.exit_code == 2
    assert "did you mean openai:gpt-4o-mini-2024-07-18" in result.output


# --- what convert writes passes check; columns per file or from the command line -------------


def test_every_output_shape_has_validation_rules() -> None:
    from pipeline.conversion import VALIDATE_AS
    from pipeline.shapes import SHAPES
    from pipeline.targets import get_target

    assert set(VALIDATE_AS) == set(SHAPES)
    for target in filter(None, VALIDATE_AS.values()):
        get_target(target)


def test_convert_rejects_what_check_would_refuse_and_its_output_passes_check(
    tmp_path: Path,
) -> None:
    src = tmp_path / "in"
    alpaca = [{"instruction": f"Q{i}", "input": "", "output": f"A{i}"} for i in range(11)]
    alpaca[3]["output"] = ""  # an empty answer: nothing to train on
    write_jsonl(src / "alpaca.jsonl", alpaca)
    parts = [
        {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
        for i in range(11)
    ]
    # content parts in LLaMA-Factory's {type, value} form: not OpenAI's {type, text}
    parts[5]["messages"][1]["content"] = [{"type": "text", "value": "a5"}]
    write_jsonl(src / "parts.jsonl", parts)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["convert", str(src), "--to", "chat", "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "2 files: 22 records, 20 converted, 2 rejected" in result.output
    rejected = read_jsonl(out / "alpaca.rejected.jsonl") + read_jsonl(out / "parts.rejected.jsonl")
    assert sorted(r["line"] for r in rejected) == [4, 6]
    assert {r["stage"] for r in rejected} == {"require_fields", "validate_schema"}
    checked = CliRunner().invoke(
        main,
        ["check", str(out / "alpaca.jsonl"), str(out / "parts.jsonl"),
         "--target", "openai:gpt-4o-mini-2024-07-18"],
    )
    assert checked.exit_code == 0, checked.output


def test_convert_maps_each_file_on_its_own_and_names_those_it_cannot(tmp_path: Path) -> None:
    src = tmp_path / "in"
    write_jsonl(src / "a.jsonl", [{"prompt": "Q", "completion": "A"}])
    write_jsonl(src / "b.jsonl", [{"instruction": "Q", "output": "A"}])
    (src / "c.csv").write_text("topic,ask,reply\nt,Q?,A.\n", encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["convert", str(src), "--to", "chat", "--out", str(out)])
    assert result.exit_code == 2
    assert (out / "a.jsonl").exists() and (out / "b.jsonl").exists()
    assert not (out / "c.jsonl").exists()
    assert "c.csv: no known record shape" in result.output
    assert "--columns prompt=ask,completion=reply" in result.output

    result = CliRunner().invoke(
        main,
        ["convert", str(src / "c.csv"), "--to", "chat", "--out", str(out),
         "--columns", "prompt=ask,completion=reply"],
    )
    assert result.exit_code == 0, result.output
    (row,) = read_jsonl(out / "c.jsonl")
    assert [m["content"] for m in row["messages"]] == ["Q?", "A."]


def test_columns_option_errors_name_the_option(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "a.jsonl", [{"prompt": "Q", "completion": "A"}])
    for value, words in [
        ("prompt", "expected FIELD=COLUMN pairs"),
        ("prompt=a,prompt=b", "prompt is given twice"),
        ("promt=a", "unknown canonical field 'promt'"),
    ]:
        result = CliRunner().invoke(
            main, ["run", "openai_chat", "--input", str(src), "--columns", value, "--out", str(tmp_path / "o")]
        )
        assert result.exit_code == 2, result.output
        assert f"--columns {value}: " in result.output and words in result.output
        assert "Traceback" not in result.output


def test_run_columns_from_the_command_line(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("topic,ask,reply\n" + "".join(f"t,Q{i}?,A{i}.\n" for i in range(12)), encoding="utf-8")
    result = CliRunner().invoke(
        main,
        ["run", "openai_chat", "--input", str(data), "--out", str(tmp_path / "o"),
         "--columns", "prompt=ask,completion=reply", "--workers", "1"],
    )
    assert result.exit_code == 0, result.output
    assert "12 records in: " in result.output


def test_outputs_never_leave_the_output_folder(tmp_path: Path) -> None:
    import os

    from pipeline.conversion import convert_files, output_paths

    src = tmp_path / "in"
    row = [{"prompt": "Q", "completion": " A"}]
    write_jsonl(src / "sub" / "a.jsonl", row)
    write_jsonl(src / "b.jsonl", row)
    out = tmp_path / "out"
    # `..` and absolute paths: outputs are relative to the inputs' common folder
    dotted = src / "sub" / ".." / "sub" / "a.jsonl"
    paths = output_paths([dotted, (src / "b.jsonl").resolve()], out)
    assert paths == [out / "sub" / "a.jsonl", out / "b.jsonl"]
    # a folder inside --out that is a symlink to somewhere else is refused, nothing written there
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    out.mkdir()
    os.symlink(outside, out / "sub")
    summaries = convert_files([str(src)], "chat", out)
    by_source = {Path(s.source).name: s for s in summaries}
    assert by_source["a.jsonl"].error is not None and "leads out of" in by_source["a.jsonl"].error
    assert by_source["b.jsonl"].error is None and (out / "b.jsonl").exists()
    assert list(outside.iterdir()) == []
