"""Target profiles: every file loads, matches the sourced references, and docs/targets.md is current."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.errors import PipelineError
from pipeline.targets import (
    FIELD_NAMES,
    TargetProfile,
    get_target,
    load_profiles,
    origins,
    profiles_markdown,
)

ROOT = Path(__file__).parents[1]
REPO_DIR = ROOT / "configs" / "targets"  # the shipped profiles, as people read them
REFERENCE = Path(__file__).parents[1].parent / "shared" / "reference"
CITE = re.compile(r"\[((?:S|A|V|B|F|T|M|O)\d+[a-z0-9]*|PEERS)\]")

# What users write in a config (the brief's list plus every model the references list).
EXPECTED_NAMES = {
    "openai:gpt-4o-mini-2024-07-18",
    "azure:gpt-4o-mini-2024-07-18",
    "together",
    "fireworks",
    "mistral",
    "vertex:gemini",
    "bedrock:conversation",
    "bedrock:prompt-completion",
    "trl:prompt_completion",
    "trl:conversational",
    "trl:preference",
    "axolotl:chat_template",
    "llamafactory:alpaca",
    "llamafactory:sharegpt",
}
# Facts a profile must explain in its notes when it leaves them null.
EXPLAINED_WHEN_NULL = (
    "max_file_bytes",
    "min_examples",
    "max_examples",
    "max_tokens_per_example",
    "over_limit",
    "tokenizer",
    "price_per_1m_training_tokens",
    "epochs_rule",
)


def reference(name: str) -> Any:
    path = REFERENCE / name
    if not path.exists():
        pytest.skip(f"reference file {path} not present (checked out without ../shared)")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def profiles() -> dict[str, TargetProfile]:
    return load_profiles()


def test_every_file_is_one_profile(profiles: dict[str, TargetProfile]) -> None:
    files = sorted(REPO_DIR.glob("*.yaml"))
    assert len(files) == len(profiles)
    assert {f.stem for f in files} == {n.replace(":", "_") for n in profiles}
    assert all(isinstance(p, TargetProfile) for p in profiles.values())


def test_names_users_write_are_present(profiles: dict[str, TargetProfile]) -> None:
    assert set(profiles) >= EXPECTED_NAMES
    for name, p in profiles.items():
        assert p.name == name
        assert name == name.strip() and " " not in name


def test_null_facts_are_explained_and_citations_resolve(
    profiles: dict[str, TargetProfile],
) -> None:
    unexplained = [
        f"{p.name}: {key}"
        for p in profiles.values()
        for key in EXPLAINED_WHEN_NULL
        if getattr(p, key) is None and key not in (p.notes or "")
    ]
    assert unexplained == [], "null facts whose notes do not say why"
    for p in profiles.values():
        tags = {s.split()[0] for s in p.sources}
        assert set(CITE.findall(p.notes or "")) <= tags, p.name


def test_per_example_limits_from_the_references() -> None:
    # openai_rules.md §3.1: gpt-3.5-turbo-0613 4,096 [S8][S9]; gpt-4o-mini 65,536 [S9][S10].
    assert get_target("openai:gpt-3.5-turbo-0613").max_tokens_per_example == 4096
    assert get_target("openai:gpt-4o-mini-2024-07-18").max_tokens_per_example == 65536
    # providers.md §1.2: Azure differs from OpenAI for gpt-4.1-nano.
    assert get_target("azure:gpt-4.1-nano-2025-04-14").max_tokens_per_example == 32768
    assert get_target("openai:gpt-4.1-nano-2025-04-14").max_tokens_per_example == 65536


def test_every_openai_model_in_the_reference_has_a_matching_profile(
    profiles: dict[str, TargetProfile],
) -> None:
    models = reference("openai_models.yaml")["models"]
    shape = {"chat": "chat", "dpo": "preference", "prompt_completion": "prompt_completion"}
    shape["rft"] = "rft"
    for model, facts in models.items():
        name = f"openai:{model}"
        assert name in profiles, f"no profile for {model} (openai_models.yaml)"
        p = profiles[name]
        assert p.tokenizer == facts["encoding"], name
        assert p.max_tokens_per_example == facts["max_tokens_per_example"], name
        assert p.price_per_1m_training_tokens == facts["training_price_per_1m"], name
        assert p.shutdown.training_shutdown == facts["new_training_until"], name
        if "base_shutdown" in facts:
            assert p.shutdown.model_shutdown == facts["base_shutdown"], name
        expected = {shape[f] for f in facts["formats"] if f in shape}
        assert set(p.formats) == expected, name
        assert p.vision.supported == ("vision" in facts["formats"]), name


def test_azure_limits_match_the_reference(profiles: dict[str, TargetProfile]) -> None:
    azure = reference("provider_profiles.yaml")["profiles"]["azure_openai"]
    for model, limit in azure["per_example_limit"]["by_model"].items():
        p = profiles[f"azure:{model}"]
        assert p.max_tokens_per_example == limit, model
        assert p.output.bom is azure["encoding"]["emit_bom"]
        assert p.min_examples == azure["min_examples"]


def test_unknown_target_suggests_close_names() -> None:
    with pytest.raises(PipelineError) as e:
        get_target("openai:gpt-4o-mini")
    assert "openai:gpt-4o-mini-2024-07-18" in str(e.value)
    assert "ftprep targets" in str(e.value)
    with pytest.raises(PipelineError, match="bedrock:conversation, bedrock:prompt-completion"):
        get_target("bedrock")


def test_a_bare_provider_suggests_the_targets_that_still_train_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipeline import targets

    def hint(on: dt.date) -> list[str]:
        monkeypatch.setattr(targets, "today", lambda: on)
        with pytest.raises(PipelineError) as e:
            get_target("openai")
        return str(e.value).split("did you mean ")[1].split("?")[0].split(", ")

    profiles = load_profiles()
    now = hint(dt.date(2026, 12, 6))
    assert len(now) == 5
    # none of them retired on that day, and the latest announced stop comes first
    assert not any(targets.is_retired(profiles[n], dt.date(2026, 12, 6)) for n in now)
    stops = [profiles[n].shutdown.training_shutdown for n in now]
    known = [s for s in stops if s is not None]
    assert known == sorted(known, reverse=True) and known
    assert "openai:ada" not in now
    # on a day when every dated model has stopped, the undated ones come first
    late = hint(dt.date(2030, 1, 1))
    assert profiles[late[0]].shutdown.training_shutdown is None


def test_is_past_shutdown() -> None:
    babbage = get_target("openai:babbage-002")
    warning = babbage.is_past_shutdown(dt.date(2026, 11, 21))
    assert warning is not None
    assert "2024-10-28" in warning and "2026-09-28" in warning
    mini = get_target("openai:gpt-4o-mini-2024-07-18")
    assert mini.is_past_shutdown(dt.date(2027, 1, 5)) is None
    assert "2027-01-06" in (mini.is_past_shutdown(dt.date(2027, 1, 6)) or "")
    assert get_target("trl:conversational").is_past_shutdown(dt.date(2100, 1, 1)) is None


BASE = "openai_gpt-4o-mini-2024-07-18.yaml"


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda d: d.update(max_tokens=1), "'max_tokens'"),
        (lambda d: d.pop("over_limit"), "'over_limit'"),
        (lambda d: d.update(max_file_bytes="512 MB"), "'max_file_bytes'"),
        (lambda d: d.update(min_examples=True), "'min_examples'"),
        (lambda d: d.update(formats=["chat", "jsonl"]), "'formats'"),
        (lambda d: d.update(tokenizer="gpt2"), "'tokenizer'"),
        (lambda d: d["vision"].update(supported="yes"), "'vision.supported'"),
        (lambda d: d["shutdown"].update(model_shutdown="soon"), "'shutdown.model_shutdown'"),
        (lambda d: d["output"].update(charset="utf-8"), "'output.charset'"),
        (lambda d: d.update(name="openai:gpt-4o-mini"), "'name'"),
        (lambda d: d["allowed_message_keys"].pop("tool"), "'allowed_message_keys'"),
    ],
)
def test_bad_profile_names_the_file_and_key(tmp_path: Path, change: Any, key: str) -> None:
    data = yaml.safe_load((REPO_DIR / BASE).read_text(encoding="utf-8"))
    change(data)
    (tmp_path / BASE).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with pytest.raises(PipelineError) as e:
        load_profiles(tmp_path)
    assert BASE in str(e.value)
    assert key in str(e.value)


def test_user_profiles_add_to_and_override_the_shipped_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = load_profiles()
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    mine.mkdir()
    theirs.mkdir()
    data = yaml.safe_load((REPO_DIR / "together.yaml").read_text(encoding="utf-8"))
    data["max_tokens_per_example"] = 1234  # an override of a shipped profile
    (mine / "together.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    data["max_tokens_per_example"] = 99  # the same name further down the list: loses
    (theirs / "together.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    data = yaml.safe_load((REPO_DIR / "mistral.yaml").read_text(encoding="utf-8"))
    data.update(name="mistral:ours", provider="mistral")  # a new profile
    (theirs / "mistral_ours.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    monkeypatch.setenv("FTPREP_TARGETS_DIR", os.pathsep.join([str(mine), str(theirs)]))

    profiles = load_profiles()
    assert set(profiles) == set(shipped) | {"mistral:ours"}
    assert profiles["together"].max_tokens_per_example == 1234
    assert profiles["fireworks"] == shipped["fireworks"]
    assert get_target("mistral:ours").provider == "mistral"
    assert origins() == {"together": str(mine.resolve()), "mistral:ours": str(theirs.resolve())}


def test_a_missing_user_profiles_dir_is_an_error_not_a_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FTPREP_TARGETS_DIR", str(tmp_path / "absent"))
    with pytest.raises(PipelineError, match=r"FTPREP_TARGETS_DIR: .*absent is not a directory"):
        load_profiles()
    monkeypatch.setenv("FTPREP_TARGETS_DIR", str(tmp_path))  # exists, but holds no profile
    with pytest.raises(PipelineError, match=r"no \*\.yaml target profiles"):
        load_profiles()
    monkeypatch.setenv("FTPREP_TARGETS_DIR", "")
    assert "together" in load_profiles()


def test_empty_profiles_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"no \*\.yaml target profiles"):
        load_profiles(tmp_path)


def test_field_names_are_the_documented_schema() -> None:
    assert tuple(TargetProfile.__dataclass_fields__) == FIELD_NAMES


def test_docs_are_generated_from_the_profiles() -> None:
    doc = (ROOT / "docs" / "targets.md").read_text(encoding="utf-8")
    assert doc == profiles_markdown(), (
        "docs/targets.md is stale: python -m pipeline.targets > docs/targets.md"
    )
