"""A model's own chat template, rendered the way Hugging Face transformers renders it.

Open-model services and trainers (Together, TRL, axolotl: the profiles with
`chat_template: true`) format every chat example with the base model's chat template before
tokenising it, so the template's text (role headers, turn separators, BOS/EOS, a tool
preamble ...) is billed and counts toward the per-example limit. `count_tokens` renders each
example with the template and counts the rendered text with the model's own tokenizer.json.

Where the template comes from (`find_template`), as transformers loads a model's files:

1. `count_tokens.chat_template`: a file holding a Jinja template;
2. otherwise `chat_template.jinja` beside the tokenizer.json (transformers 4.47 and later
   prefer that file to the string in tokenizer_config.json);
3. otherwise the `chat_template` of `tokenizer_config.json` beside the tokenizer.json: a
   string, or a list of named templates (`[{"name": ..., "template": ...}]`), from which
   `count_tokens.chat_template_name` picks one, else `tool_use` for an example with tools
   when there is one, else `default` (transformers' `get_chat_template` rule).

Rendering (`ChatTemplate.render`) follows transformers' `_compile_jinja_template` and
`render_jinja_template`: a jinja2 `ImmutableSandboxedEnvironment(trim_blocks=True,
lstrip_blocks=True)` with the `loopcontrols` extension and the `{% generation %}` tag (its
body rendered as is), a `tojson` filter that is `json.dumps` (no HTML escaping, options
`ensure_ascii`, `indent`, `separators`, `sort_keys`), the globals `raise_exception` (raises a
`TemplateError`) and `strftime_now`, and the variables `messages`, `tools` (null when the
example has none), `documents` (null), `add_generation_prompt=False` and the special tokens of
tokenizer_config.json (`bos_token`, `eos_token`, `unk_token`, `sep_token`, `pad_token`,
`cls_token`, `mask_token`, `additional_special_tokens`). One difference, on purpose:
`strftime_now` formats a fixed day (`FIXED_NOW`), not today, so that counts, and therefore
outputs, are the same on every run (some templates print the date into the system turn).

transformers tokenises the rendered text with `add_special_tokens=False` (the template already
wrote BOS and the like); `pipeline.tokens.LocalTokenizer.encode_ordinary` does the same.

jinja2 is imported only when a template is loaded.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError

__all__ = ["FIXED_NOW", "ChatTemplate", "TemplateError", "TemplateFailed", "load_template"]

#: What `strftime_now` formats: a fixed day, so that a rendered example is the same every run.
FIXED_NOW = dt.datetime(2026, 1, 1)

JINJA_FILE = "chat_template.jinja"
CONFIG_FILE = "tokenizer_config.json"
# tokenizer_config.json keys passed to the template (transformers' SPECIAL_TOKENS_ATTRIBUTES)
SPECIAL_TOKENS = (
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
    "additional_special_tokens",
)


class TemplateFailed(Exception):
    """The template did not render for one example (its message says why)."""


class TemplateError(PipelineError):
    """The model's template files are not usable: `key` is the config key it is about
    (`tokenizer`, `chat_template`, `chat_template_name`), `problem` what to change."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


def _token_text(value: Any) -> Any:
    """A special token as tokenizer_config.json writes it: a string, or an AddedToken dict."""
    if isinstance(value, Mapping):
        return value.get("content")
    if isinstance(value, list):
        return [_token_text(v) for v in value]
    return value


@dataclass(frozen=True, eq=False)
class ChatTemplate:
    """The template(s) of one model and the special tokens they are rendered with.

    `templates`: name -> Jinja source (`""` is the name of a single unnamed template);
    `source`: what the report shows (the file, with `#name` for a named template);
    `name`: the named template to use always (`chat_template_name`), else None.
    """

    source: str
    templates: Mapping[str, str]
    special: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None

    def pick(self, has_tools: bool) -> str:
        """The name of the template for an example (transformers' `get_chat_template`)."""
        if self.name is not None:
            return self.name
        if "" in self.templates:
            return ""
        if has_tools and "tool_use" in self.templates:
            return "tool_use"
        return "default"

    def render(self, messages: Any, tools: Any = None) -> str:
        """The text of one example as the template writes it (no generation prompt).

        Raises:
            TemplateFailed: the template raised (`raise_exception`, an undefined attribute, a
                type error ...) for this example.
        """
        template = _compiled(self.templates[self.pick(bool(tools))])
        try:
            return str(
                template.render(
                    messages=messages,
                    tools=tools or None,
                    documents=None,
                    add_generation_prompt=False,
                    **self.special,
                )
            )
        # The template is the model's code, run on this example's data: whatever it raises
        # (TemplateError from raise_exception, TypeError, KeyError ...) is about this example.
        except Exception as exc:
            raise TemplateFailed(f"{type(exc).__name__}: {exc}") from None


@functools.lru_cache(maxsize=16)
def _compiled(source: str) -> Any:
    """The compiled jinja2 template of `source`, in transformers' environment."""
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Generation(jinja2.ext.Extension):
        """`{% generation %}...{% endgeneration %}` marks the trained text for transformers'
        assistant masks; for counting its body renders as is."""

        tags = {"generation"}  # noqa: RUF012 - jinja2 reads it as a class attribute

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(
                lineno
            )

        def _body(self, caller: Any) -> str:
            return str(caller())

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(
        x: Any,
        ensure_ascii: bool = False,
        indent: Any = None,
        separators: Any = None,
        sort_keys: bool = False,
    ) -> str:
        return json.dumps(
            x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
        )

    def strftime_now(fmt: str) -> str:
        return FIXED_NOW.strftime(fmt)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[Generation, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env.from_string(source)


def _read_json(path: Path, key: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise TemplateError(key, f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise TemplateError(key, f"{path} is not a JSON object")
    return data


def _named(value: Any, path: Path) -> dict[str, str]:
    """tokenizer_config.json's `chat_template` as name -> source (`""`: a single template)."""
    if isinstance(value, str):
        return {"": value}
    if isinstance(value, list):
        out: dict[str, str] = {}
        for item in value:
            if not (
                isinstance(item, Mapping)
                and isinstance(item.get("name"), str)
                and isinstance(item.get("template"), str)
            ):
                raise TemplateError(
                    "tokenizer",
                    f"{path}: chat_template is a list whose entries are not "
                    '{"name": ..., "template": ...}',
                )
            out[item["name"]] = item["template"]
        return out
    if isinstance(value, Mapping) and all(isinstance(v, str) for v in value.values()):
        return {str(k): v for k, v in value.items()}
    raise TemplateError(
        "tokenizer", f"{path}: chat_template is neither a string nor a list of named templates"
    )


@functools.lru_cache(maxsize=8)
def load_template(
    tokenizer: str, chat_template: str | None = None, name: str | None = None
) -> ChatTemplate | None:
    """The chat template of the model whose tokenizer.json is `tokenizer` (see the module
    docstring for where it is looked for), or None when the model's files have none. Cached
    per process: each worker loads a model's template once.

    Raises:
        TemplateError: an unreadable file, a template that is not valid Jinja, or a `name`
            that is not one of the named templates (the message lists them), with the config
            key it is about.
    """
    folder = Path(tokenizer).parent
    config_path = folder / CONFIG_FILE
    config = _read_json(config_path, "tokenizer") if config_path.is_file() else {}
    special = {k: _token_text(config[k]) for k in SPECIAL_TOKENS if config.get(k) is not None}
    templates: dict[str, str]
    if chat_template is not None:
        path = Path(chat_template)
        try:
            templates = {"": path.read_text(encoding="utf-8")}
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateError("chat_template", f"cannot read {path}: {exc}") from None
        source = str(path)
    elif (folder / JINJA_FILE).is_file():
        path = folder / JINJA_FILE
        try:
            templates = {"": path.read_text(encoding="utf-8")}
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateError("tokenizer", f"cannot read {path}: {exc}") from None
        source = str(path)
    elif config.get("chat_template") is not None:
        templates = _named(config["chat_template"], config_path)
        source = str(config_path)
    else:
        if name is not None:
            raise TemplateError(
                "chat_template_name",
                f"{name!r}, but {folder} has no chat template "
                f"({JINJA_FILE}, or chat_template in {CONFIG_FILE})",
            )
        return None
    if name is not None:
        if name not in templates or name == "":
            known = sorted(k for k in templates if k)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TemplateError(
                "chat_template_name",
                f"{name!r} is not a named template of {source} (named: "
                f"{', '.join(known) if known else 'none, it holds a single template'}){hint}",
            )
        source = f"{source}#{name}"
    elif "" not in templates and "default" not in templates:
        raise TemplateError(
            "chat_template_name",
            f"{source} holds several chat templates and none is named "
            f"default ({', '.join(sorted(templates))}); set chat_template_name to one of them",
        )
    import jinja2

    for key, text in templates.items():
        try:
            _compiled(text)
        except jinja2.TemplateSyntaxError as exc:
            which = f" {key!r}" if key else ""
            raise TemplateError(
                "chat_template",
                f"the template{which} of {source} is not valid Jinja "
                f"(line {exc.lineno}: {exc.message})",
            ) from None
    return ChatTemplate(source, templates, special, name)
