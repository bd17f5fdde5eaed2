"""Config: validated completely before any data is read; errors name file, key path, fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import (
    Config,
    config_reference,
    iter_documented_fields,
    load_config,
    parse_config,
    with_overrides,
)
from pipeline.errors import PipelineError
from pipeline.registry import stages as registered_stages

REGISTRY = registered_stages()

ROOT = Path(__file__).resolve().parents[1]


def error_of(data: object) -> str:
    with pytest.raises(PipelineError) as info:
        parse_config(data, "run.yaml")
    return str(info.value)


def test_defaults() -> None:
    cfg = parse_config({}, "run.yaml")
    assert cfg.input.format == "auto" and cfg.input.encoding == "auto"
    assert cfg.output.dir == "out/" and cfg.runner.batch_size == 10_000
    assert cfg.stages == () and cfg.source == "run.yaml"


def test_full_example_from_the_readme() -> None:
    cfg = parse_config(
        {
            "input": {
                "paths": ["sample_data/faq.csv", "data/*.jsonl"],
                "format": "auto",
                "encoding": "gbk",
                "sheet": None,
                "columns": {"prompt": "question", "completion": "answer"},
            },
            "stages": [{"name": "normalize_text", "strip_trailing": True}, "require_fields"],
            "output": {"dir": "out/"},
        }
    )
    assert cfg.input.paths == ("sample_data/faq.csv", "data/*.jsonl")
    assert cfg.stages[0].name == "normalize_text" and cfg.stages[0].config.strip_trailing
    assert cfg.stages[1].name == "require_fields"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"inputs": {}}, "run.yaml: inputs: unknown key; expected one of:"),
        ({"inputs": {}}, "did you mean 'input'?"),
        ({"input": {"encodng": "gbk"}}, "input.encodng: unknown key"),
        ({"input": {"encodng": "gbk"}}, "did you mean 'encoding'?"),
        ({"input": {"format": "xlsb"}}, "input.format: 'xlsb' is not allowed; expected one of"),
        ({"input": {"paths": 3}}, "input.paths: expected a list of text"),
        ({"input": {"columns": {"promt": "q"}}}, "input.columns.promt: unknown canonical field"),
        (
            {"stages": [{"name": "normalise_text"}]},
            "stages[0].name: unknown stage 'normalise_text'",
        ),
        ({"stages": [{"name": "normalise_text"}]}, "did you mean 'normalize_text'?"),
        (
            {"stages": ["require_fields", {"name": "normalize_text", "form": "NFD"}]},
            "stages[1].form: 'NFD' is not allowed",
        ),
        (
            {"stages": [{"name": "normalize_text", "strip_trailling": True}]},
            "stages[0].strip_trailling: unknown key",
        ),
        ({"stages": [{"strip_trailing": True}]}, "stages[0]: expected a mapping with `name:`"),
        ({"runner": {"workers": 0}}, "runner.workers: 0; expected a whole number >= 1"),
        ({"runner": {"batch_size": "big"}}, "runner.batch_size: expected a whole number"),
        ({"output": ["out"]}, "output: expected a mapping, got a list"),
        ({"gate": {"max_rejected_share": 1.5}}, "gate.max_rejected_share: 1.5; expected a share"),
        ({"gate": {"expectation": ["x.json"]}}, "did you mean 'expectations'"),
    ],
)
def test_errors_name_the_key_path_and_the_fix(data: object, expected: str) -> None:
    assert expected in error_of(data)


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("input:\n  paths: [a.csv\n", encoding="utf-8")
    with pytest.raises(PipelineError, match=r"bad.yaml:\d+:\d+: not valid YAML"):
        load_config(cfg)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    cfg = tmp_path / "list.yaml"
    cfg.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(PipelineError, match="expected a mapping"):
        load_config(cfg)


def test_overrides_replace_paths_out_and_workers() -> None:
    cfg = parse_config({"input": {"paths": ["a.csv"]}, "output": {"dir": "x"}})
    cfg = with_overrides(cfg, ["b.jsonl", "c.jsonl"], "y", 3)
    assert cfg.input.paths == ("b.jsonl", "c.jsonl")
    assert cfg.output.dir == "y" and cfg.runner.workers == 3


def test_config_is_frozen() -> None:
    cfg = parse_config({})
    with pytest.raises(AttributeError):
        cfg.target = "x"  # type: ignore[misc]


def test_every_field_has_a_doc_and_docs_config_md_is_current() -> None:
    for _key, f, _tp in iter_documented_fields(Config):
        assert f.metadata.get("doc"), f"config field {_key} has no doc"
    for name, spec in REGISTRY.items():
        for key, f, _tp in iter_documented_fields(spec.config_cls):
            assert f.metadata.get("doc"), f"stage {name} option {key} has no doc"
    text = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    assert text == config_reference(), (
        "docs/config.md is out of date: regenerate it with "
        "`python -m pipeline.config > docs/config.md`"
    )


def test_shipped_configs_are_valid() -> None:
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        load_config(path)


def test_config_sha256_follows_what_changes_the_outputs_only() -> None:
    from pipeline.config import config_sha256

    base = {"input": {"paths": ["a.jsonl"]}, "stages": ["normalize_text", "split"]}
    same = [
        parse_config(base, "one.yaml"),
        parse_config({**base, "runner": {"workers": 2, "batch_size": 7}}, "two.yaml"),
        parse_config({**base, "output": {"dir": "elsewhere"}}),
        parse_config({**base, "stages": ["normalize_text", {"name": "split"}]}),  # defaults
    ]
    assert len({config_sha256(c) for c in same}) == 1
    different = [
        parse_config({**base, "stages": ["normalize_text", {"name": "split", "seed": 7}]}),
        parse_config({**base, "input": {"paths": ["b.jsonl"]}}),
        parse_config({**base, "gate": {"max_rejected_share": 0.5}}),
    ]
    hashes = {config_sha256(c) for c in different} | {config_sha256(same[0])}
    assert len(hashes) == 4


def test_token_setting_names_the_encoding_and_limit_the_report_shows() -> None:
    from pipeline.config import token_setting

    assert token_setting(parse_config({"stages": ["normalize_text"]})) == (None, None)
    own = {"stages": ["count_tokens", {"name": "token_limit", "max_tokens": 100}]}
    assert token_setting(parse_config(own)) == ("o200k_base", 100)
    mini = parse_config({"target": "openai:gpt-4o-mini-2024-07-18", "stages": ["count_tokens"]})
    assert token_setting(mini) == ("o200k_base", 65536)  # the limit from the implicit limits
    old = parse_config({"stages": [{"name": "count_tokens", "encoding": "cl100k_base"}]})
    assert token_setting(old) == ("cl100k_base", None)
