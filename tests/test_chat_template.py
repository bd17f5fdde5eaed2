"""chat_template: a model's own chat template, rendered as transformers renders it, and the
counts of `count_tokens` that include its overhead (targets with `chat_template: true`).

Every model file here (tokenizer.json, tokenizer_config.json, chat_template.jinja) is built by
the test itself: nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipeline.chat_template import FIXED_NOW, ChatTemplate, TemplateFailed, load_template
from pipeline.errors import PipelineError
from pipeline.reasons import WARNINGS
from pipeline.targets import load_profiles
from tests.conftest import read_jsonl, run_config, run_two_ways, write_jsonl

# A ChatML template as models ship it in tokenizer_config.json (the shape of Qwen2's and of the
# transformers docs' example): BOS, then <|im_start|>role\ncontent<|im_end|>\n per message.
CHATML = (
    "{{ bos_token }}{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIAL = ["<s>", "</s>", "<|im_start|>", "<|im_end|>"]
WORDS = ["hello", "world", "user", "assistant", "system", "weather", "tool", "get", "city"]

U = {"role": "user", "content": "hello world"}
A = {"role": "assistant", "content": "world hello world"}


def model_dir(path: Path, config: dict[str, Any] | None = None, jinja: str | None = None) -> Path:
    """A tiny model folder: a word-level tokenizer.json with the chat special tokens, and
    optionally tokenizer_config.json and chat_template.jinja. Returns the tokenizer.json."""
    from tokenizers import AddedToken, Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    path.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(WordLevel({"[UNK]": 0, **{w: i + 1 for i, w in enumerate(WORDS)}},
                              unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()  # type: ignore[assignment]
    tok.add_special_tokens([AddedToken(t, special=True) for t in SPECIAL])
    tok.save(str(path / "tokenizer.json"))
    if config is not None:
        (path / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    if jinja is not None:
        (path / "chat_template.jinja").write_text(jinja, encoding="utf-8")
    return path / "tokenizer.json"


def n_tokens(tokenizer: Path, text: str) -> int:
    """What transformers does with a rendered chat: tokenizer(text, add_special_tokens=False)."""
    from tokenizers import Tokenizer

    return len(Tokenizer.from_file(str(tokenizer)).encode(text, add_special_tokens=False).ids)


def chatml_by_hand(messages: list[dict[str, str]], bos: str = "<s>") -> str:
    return bos + "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)


def totals(out: Path) -> list[int]:
    """tokens_total of every record, in input order."""
    metrics = pd.read_parquet(out / "metrics.parquet").sort_values("line")
    return [int(v) for v in metrics["tokens_total"]]


def run(tmp_path: Path, records: list[dict[str, Any]], target: str, **options: Any
        ) -> tuple[dict[str, Any], list[int]]:
    src = write_jsonl(tmp_path / "in.jsonl", records)
    report = run_config(tmp_path, {"input": {"paths": [str(src)]}, "target": target,
                                   "stages": [{"name": "count_tokens", **options}]})
    return report, totals(tmp_path / "out")


# --- counts -----------------------------------------------------------------------------------


def test_chatml_counts_are_the_tokenizer_on_the_rendered_text(tmp_path: Path) -> None:
    tok = model_dir(tmp_path / "m", {"bos_token": {"content": "<s>", "special": True},
                                     "eos_token": "<|im_end|>", "chat_template": CHATML})
    records = [{"messages": [U, A]},
               {"messages": [{"role": "system", "content": "weather"}, U, A, U, A]}]
    report, got = run(tmp_path, records, "together", tokenizer=str(tok))
    want = [n_tokens(tok, chatml_by_hand(r["messages"])) for r in records]
    assert got == want
    # the overhead is counted: BOS + per message <|im_start|> role <|im_end|> = 1 + 3 per message
    content = [sum(n_tokens(tok, m["content"]) for m in r["messages"]) for r in records]
    assert [g - c for g, c in zip(got, content, strict=True)] == [1 + 3 * 2, 1 + 3 * 5]
    tokens = report["tokens"]
    assert tokens["chat_template"] == str(tmp_path / "m" / "tokenizer_config.json")
    assert tokens["approximation"] is None
    assert tokens["encoding"] == f"tokenizer.json:{tok}"


def test_without_a_template_the_formula_stands_in_and_the_report_says_so(tmp_path: Path) -> None:
    tok = model_dir(tmp_path / "m", {"bos_token": "<s>"})  # a config without chat_template
    report, got = run(tmp_path, [{"messages": [U, A]}], "trl:conversational", tokenizer=str(tok))
    formula = sum(3 + n_tokens(tok, m["role"]) + n_tokens(tok, m["content"]) for m in (U, A)) + 3
    assert got == [formula]
    assert report["tokens"]["chat_template"] is None
    note = report["tokens"]["approximation"]
    assert "stand in for its chat template" in note and "none was found" in note


def test_a_target_that_formats_its_own_way_never_renders_the_template(tmp_path: Path) -> None:
    # Fireworks does not document its formatting (chat_template: null): the model's template is
    # used only when the config names one
    tok = model_dir(tmp_path / "m", {"chat_template": CHATML, "bos_token": "<s>"})
    report, got = run(tmp_path, [{"messages": [U, A]}], "fireworks", tokenizer=str(tok))
    assert report["tokens"]["chat_template"] is None
    named = tmp_path / "named.jinja"
    named.write_text(CHATML, encoding="utf-8")
    report2, got2 = run(tmp_path, [{"messages": [U, A]}], "fireworks", tokenizer=str(tok),
                        chat_template=str(named))
    assert got2 == [n_tokens(tok, chatml_by_hand([U, A]))] != got
    assert report2["tokens"]["chat_template"] == str(named)


def test_chat_template_jinja_beside_the_tokenizer_wins(tmp_path: Path) -> None:
    # transformers 4.47+ reads chat_template.jinja before tokenizer_config.json's string
    jinja = "{% for m in messages %}{{ m['content'] }}{{ eos_token }}{% endfor %}"
    tok = model_dir(tmp_path / "m", {"eos_token": "</s>", "chat_template": CHATML}, jinja=jinja)
    report, got = run(tmp_path, [{"messages": [U, A]}], "axolotl:chat_template",
                      tokenizer=str(tok))
    assert got == [n_tokens(tok, "hello world</s>world hello world</s>")]
    assert report["tokens"]["chat_template"] == str(tmp_path / "m" / "chat_template.jinja")


def test_tools_are_passed_as_tools_and_counted(tmp_path: Path) -> None:
    template = (
        "{% if tools %}{{ '<|im_start|>system\\n' }}{% for t in tools %}"
        "{{ t['function']['name'] }} {{ t['function']['parameters'] | tojson }}\n"
        "{% endfor %}{{ '<|im_end|>\\n' }}{% endif %}" + CHATML.replace("{{ bos_token }}", "")
    )
    tok = model_dir(tmp_path / "m", {"chat_template": template})
    tools = [{"type": "function", "function": {"name": "get", "parameters": {"city": "<tool>"}}}]
    _, got = run(tmp_path, [{"messages": [U, A], "tools": tools}, {"messages": [U, A]}],
                      "together", tokenizer=str(tok))
    # tojson is json.dumps: "<" is not escaped to \u003c as jinja's own filter would
    head = '<|im_start|>system\nget {"city": "<tool>"}\n<|im_end|>\n'
    assert got == [n_tokens(tok, head + chatml_by_hand([U, A], "")),
                   n_tokens(tok, chatml_by_hand([U, A], ""))]
    assert got[0] > got[1]


def test_preference_examples_render_the_prompt_and_the_preferred_answer(tmp_path: Path) -> None:
    tok = model_dir(tmp_path / "m", {"bos_token": "<s>", "chat_template": CHATML})
    record = {"prompt": [U], "chosen": [A], "rejected": [{"role": "assistant", "content": "no"}]}
    _, got = run(tmp_path, [record], "trl:preference", tokenizer=str(tok))
    assert got == [n_tokens(tok, chatml_by_hand([U, A]))]


# --- named templates --------------------------------------------------------------------------


def named_templates() -> list[dict[str, str]]:
    return [{"name": "default", "template": CHATML},
            {"name": "tool_use", "template": "{{ bos_token }}tool {% for m in messages %}"
                                             "{{ m['content'] }} {% endfor %}"}]


def test_named_templates_default_or_tool_use_as_transformers_picks(tmp_path: Path) -> None:
    tok = model_dir(tmp_path / "m", {"bos_token": "<s>", "chat_template": named_templates()})
    tools = [{"type": "function", "function": {"name": "get", "parameters": {}}}]
    _, got = run(tmp_path, [{"messages": [U, A]}, {"messages": [U, A], "tools": tools}],
                 "together", tokenizer=str(tok))
    assert got == [n_tokens(tok, chatml_by_hand([U, A])),
                   n_tokens(tok, "<s>tool hello world world hello world ")]
    report, got = run(tmp_path, [{"messages": [U, A]}], "together", tokenizer=str(tok),
                      chat_template_name="tool_use")
    assert got == [n_tokens(tok, "<s>tool hello world world hello world ")]
    assert report["tokens"]["chat_template"].endswith("tokenizer_config.json#tool_use")


def test_an_unknown_template_name_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    tok = model_dir(tmp_path / "m", {"chat_template": named_templates()})
    with pytest.raises(PipelineError, match=r"stages\[0\]\.chat_template_name: 'tool_us' is "
                                            r"not a named template.*did you mean 'tool_use'"):
        run(tmp_path, [{"messages": [U, A]}], "together", tokenizer=str(tok),
            chat_template_name="tool_us")


@pytest.mark.parametrize(
    ("options", "key", "message"),
    [
        ({"chat_template": "{missing}"}, "chat_template", "no file"),
        ({"chat_template_name": "default", "tokenizer": None}, "chat_template_name",
         "needs `tokenizer`"),
        ({"bad_jinja": "{% for m in messages %}"}, "chat_template", "not valid Jinja"),
    ],
)
def test_config_errors_name_the_key(
    tmp_path: Path, options: dict[str, Any], key: str, message: str
) -> None:
    tok = model_dir(tmp_path / "m", {"chat_template": CHATML})
    options = {"tokenizer": str(tok), **options}
    if "bad_jinja" in options:
        bad = tmp_path / "bad.jinja"
        bad.write_text(options.pop("bad_jinja"), encoding="utf-8")
        options["chat_template"] = str(bad)
    if options.get("chat_template") == "{missing}":
        options["chat_template"] = str(tmp_path / "absent.jinja")
    options = {k: v for k, v in options.items() if v is not None}
    with pytest.raises(PipelineError, match=rf"stages\[0\]\.{key}: .*{message}"):
        run(tmp_path, [{"messages": [U, A]}], "together", **options)


def test_a_template_on_an_openai_target_is_a_config_error(tmp_path: Path) -> None:
    tok = model_dir(tmp_path / "m", {"chat_template": CHATML})
    template = tmp_path / "t.jinja"
    template.write_text(CHATML, encoding="utf-8")
    with pytest.raises(PipelineError, match=r"stages\[0\]\.chat_template: .*formats examples "
                                            r"its own way"):
        run(tmp_path, [{"messages": [U, A]}], "openai:gpt-4o-mini-2024-07-18",
            tokenizer=str(tok), chat_template=str(template))


# --- a template that fails for a record -------------------------------------------------------

ALTERNATE = (
    "{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>\\n' }}{% endfor %}"
)


def test_a_record_the_template_refuses_is_kept_with_a_warning(tmp_path: Path) -> None:
    # the shape of Mistral's and Llama 2's templates: raise_exception on roles out of order
    assert "chat_template_failed" in WARNINGS
    tok = model_dir(tmp_path / "m", {"chat_template": ALTERNATE})
    bad = {"messages": [A, U]}
    report, got = run(tmp_path, [{"messages": [U, A]}, bad], "trl:conversational",
                      tokenizer=str(tok))
    formula = sum(3 + n_tokens(tok, m["role"]) + n_tokens(tok, m["content"]) for m in (A, U)) + 3
    assert got == [n_tokens(tok, chatml_by_hand([U, A], "")), formula]
    assert report["totals"]["train"] + report["totals"]["validation"] == 2
    warned = report["warnings"]["chat_template_failed"]
    assert warned["count"] == 1
    kept = read_jsonl(tmp_path / "out" / "train.jsonl")
    assert len(kept) == 2


# --- rendering, the way transformers' environment renders -------------------------------------


def template_of(text: str, **special: Any) -> ChatTemplate:
    return ChatTemplate("test", {"": text}, special)


def test_trim_and_lstrip_blocks_as_transformers_sets_them() -> None:
    # trim_blocks drops the newline after a block tag; lstrip_blocks the indent before one
    text = "{% for m in messages %}\n    {% if m['role'] == 'user' %}\nU:{{ m['content'] }}\n" \
           "    {% endif %}\n{% endfor %}"
    assert template_of(text).render([U, A, U]) == "U:hello world\nU:hello world\n"


def test_tojson_keeps_non_ascii_and_html_and_takes_options() -> None:
    t = template_of("{{ messages[0] | tojson }}|{{ messages[0] | tojson(indent=1) }}")
    got = t.render([{"role": "user", "content": "<b>café</b>"}])
    assert got.split("|")[0] == '{"role": "user", "content": "<b>café</b>"}'
    assert got.split("|")[1] == '{\n "role": "user",\n "content": "<b>café</b>"\n}'


def test_generation_tags_loop_controls_and_the_fixed_date() -> None:
    text = ("{% for m in messages %}{% if loop.index0 > 1 %}{% break %}{% endif %}"
            "{% generation %}{{ m['content'] }};{% endgeneration %}{% endfor %}"
            "{{ strftime_now('%d %b %Y') }}")
    got = template_of(text).render([U, A, U])
    assert got == "hello world;world hello world;" + FIXED_NOW.strftime("%d %b %Y")


def test_no_generation_prompt_and_the_special_tokens_are_passed() -> None:
    t = template_of(CHATML, bos_token="<s>")
    assert t.render([U]) == "<s><|im_start|>user\nhello world<|im_end|>\n"  # no assistant prompt


@pytest.mark.parametrize(
    "text",
    [
        "{{ raise_exception('no') }}",
        "{{ messages[5]['content'] }}",  # an undefined message: an UndefinedError on use
        "{{ messages[0]['content'] + 1 }}",  # a TypeError
        "{{ messages.append(1) }}",  # the immutable sandbox refuses to change the record
    ],
)
def test_render_failures_are_template_failed_never_a_crash(text: str) -> None:
    messages = [dict(U)]
    with pytest.raises(TemplateFailed):
        template_of(text).render(messages)
    assert messages == [U]


def test_templates_are_loaded_once_per_process(tmp_path: Path) -> None:
    tok = model_dir(tmp_path / "m", {"chat_template": CHATML})
    assert load_template(str(tok)) is load_template(str(tok))
    assert load_template(str(model_dir(tmp_path / "bare"))) is None


def test_the_profiles_say_who_formats_with_the_model_template() -> None:
    profiles = load_profiles()
    renders = sorted(name for name, p in profiles.items() if p.chat_template)
    # Together: "automatically formatted into the model's chat template" [T4]; TRL and axolotl
    # apply the tokenizer's chat template to conversational data [O1][O2]
    assert renders == ["axolotl:chat_template", "together", "trl:conversational",
                       "trl:preference", "trl:prompt_completion"]
    assert all(p.chat_template is False for n, p in profiles.items() if n.startswith("openai:"))


def test_report_markdown_shows_the_template(tmp_path: Path) -> None:
    # (report.json is held to report.schema.json by the conftest hook for every run)
    tok = model_dir(tmp_path / "m", {"bos_token": "<s>", "chat_template": CHATML})
    run(tmp_path, [{"messages": [U, A]}], "together", tokenizer=str(tok))
    md = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert f"chat template: `{tmp_path / 'm' / 'tokenizer_config.json'}`" in md


def test_rendered_counts_are_the_same_however_the_run_is_split(tmp_path: Path) -> None:
    tok = model_dir(tmp_path / "m", {"bos_token": "<s>", "chat_template": ALTERNATE})
    rows = [{"messages": [U, A] * (i % 3 + 1)} if i % 5 else {"messages": [A, U]}
            for i in range(40)]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    report = run_two_ways(tmp_path, {"input": {"paths": [str(src)]}, "target": "together",
                                     "stages": [{"name": "count_tokens", "tokenizer": str(tok)}]},
                          (7, 3), (1 << 20, 200))
    assert report["warnings"]["chat_template_failed"]["count"] == 8
