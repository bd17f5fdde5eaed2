"""count_tokens: count every example's tokens the way its target bills them, as metrics.

Per record it writes these metric columns (the runner puts them in metrics.parquet, without
the `m_` prefix):

| column | meaning |
|---|---|
| `m_tokens_total` | tokens the target counts for the example (see below) |
| `m_tokens_trained` | tokens the model is trained to produce (assistant output, `weight` respected) |
| `m_tokens_system` | content tokens of `system` and `developer` messages |
| `m_tokens_user` | content tokens of `user` messages (the prompt of a prompt/completion pair) |
| `m_tokens_assistant` | content tokens of `assistant` messages (the completion of a pair) |
| `m_tokens_tool` | content tokens of `tool` and legacy `function` messages |
| `m_messages` | number of messages (0 for a prompt/completion pair) |
| `m_chars` | characters of the texts counted (message contents, prompt, completion) |
| `m_tokens_image` | tokens of the image parts (the vision formula of the target's model; in the total) |
| `m_images_unsized` | images counted at their minimum (a URL, not fetched): the total is a lower bound |

What `m_tokens_total` is, per kind:

- chat: `pipeline.tokens.count_chat` (the cookbook formula: 3 per message + role + content
  [+ name + 1] + 3 for the reply priming, plus tool calls, the `tools`/`functions`
  definitions by the cookbook's `num_tokens_for_tools` estimate, and image parts by the vision
  formula, `pipeline.tokens.model_costs`);
- prompt_completion: tokens(prompt) + tokens(completion); trained = the completion;
- preference: `count_chat` over `input.messages` followed by `preferred_output` (with
  `input.tools`), i.e. the example the way supervised training would see it; trained = the
  preferred output. The service's DPO accounting is not documented; the non-preferred output
  is not counted.

The tokenizer is the target's (`tokenizer` of the profile, when it is one of the bundled
encodings cl100k_base / o200k_base); otherwise the model's own `tokenizer.json` when the
`tokenizer` option points to one (the `tokenizers` library, offline); otherwise the `encoding`
option, default o200k_base (an estimate for targets whose tokenizer is not bundled; the report's
`tokens.approximation` says so).

With a `tokenizer.json`, on a target whose profile formats examples with the model's chat
template (`chat_template: true`: Together, TRL, axolotl), or with `chat_template` /
`chat_template_name` set, `m_tokens_total` of a chat, KTO or preference example is the tokens
of the example rendered by that template (`pipeline.chat_template`, as transformers'
`apply_chat_template` renders it, without a generation prompt; tools passed as `tools`) plus
its image tokens; the other columns keep the formula's per-role content counts. Without a
template the chat formula's per-message figures stand in for it.
Each worker builds the encoding once (`pipeline.tokens.get_encoding` is cached per process);
only its name travels between processes. Under `ftprep run` the local pool's forkserver
builds it before it forks the workers, which then share it (`engine.worker_tokenizers`). The measuring itself (`measure`, the per-kind rows,
the metric column names `COLUMNS`/`TOTAL` and the encoding choice `resolve_encoding`) lives in
`pipeline.tokens`, shared with `token_limit` and `dataset_limits`.

Reason codes: none (this stage only measures). Warning codes: `chat_template_failed` (the
template raised for the example: it is counted by the formula instead).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from pipeline.chat_template import ChatTemplate, TemplateError, TemplateFailed, load_template
from pipeline.configdoc import ConfigValueError, doc
from pipeline.records import warn
from pipeline.registry import Changes, register
from pipeline.targets import get_target
from pipeline.tokens import (
    COLUMNS,
    TOTAL,
    check_options,
    encoding_of,
    local_tokenizer,
    measure,
    model_costs,
    set_metrics,
)

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class CountTokensConfig:
    target: str | None = doc(
        "Target profile whose tokenizer counts the tokens; defaults to the run's `target:`.",
        None,
    )
    encoding: Literal["cl100k_base", "o200k_base"] | None = doc(
        "Encoding to use when the target names none of the bundled ones (null: o200k_base). "
        "Setting it to a different encoding than the target's tokenizer is an error.",
        None,
    )

    tokenizer: str | None = doc(
        "Path to the model's own tokenizer.json (Hugging Face `tokenizers` format, read "
        "offline) to count with instead of a tiktoken encoding: for open-model targets "
        "(Together, Fireworks, Mistral, TRL, axolotl, LLaMA-Factory). When the target's "
        "profile says it formats examples with the model's chat template (`chat_template: "
        "true`), each chat example is rendered with the template found beside this file "
        "(`chat_template.jinja`, else `chat_template` in `tokenizer_config.json`) and the "
        "rendered text is counted; otherwise the chat formula's per-message figures stand in "
        "for the template. Null: tiktoken, and the report says the count is an approximation.",
        None,
    )
    chat_template: str | None = doc(
        "Path to a file holding the model's Jinja chat template, used instead of the one "
        "beside `tokenizer` (needs `tokenizer`). Also for a target whose profile does not "
        "document its formatting (`chat_template: null`); an error for one that formats "
        "examples its own way (OpenAI).",
        None,
    )
    chat_template_name: str | None = doc(
        "Which of the named chat templates of `tokenizer_config.json` to use (e.g. "
        "`tool_use`); null: `tool_use` for an example with tools when there is one, else "
        "`default`, as transformers picks (needs `tokenizer`).",
        None,
    )

    def __post_init__(self) -> None:
        check_options("count_tokens", self.target, self.encoding)
        if self.tokenizer is None:
            for key in ("chat_template", "chat_template_name"):
                if getattr(self, key) is not None:
                    raise ConfigValueError(
                        key, "needs `tokenizer`: the path of the model's tokenizer.json"
                    )
            return
        if self.encoding is not None:
            raise ConfigValueError("tokenizer", "set `tokenizer` or `encoding`, not both")
        if not Path(self.tokenizer).is_file():
            raise ConfigValueError(
                "tokenizer",
                f"no file {self.tokenizer!r}; give the path of the model's tokenizer.json",
            )
        if self.chat_template is not None and not Path(self.chat_template).is_file():
            raise ConfigValueError(
                "chat_template",
                f"no file {self.chat_template!r}; give the path of a Jinja chat template "
                "(e.g. the model's chat_template.jinja)",
            )
        explicit = self.chat_template is not None or self.chat_template_name is not None
        if explicit and self.target is not None and get_target(self.target).chat_template is False:
            key = "chat_template" if self.chat_template is not None else "chat_template_name"
            raise ConfigValueError(
                key,
                f"target {self.target} formats examples its own way, not with a model's chat "
                "template (chat_template: false in its profile); remove it",
            )
        try:
            self.template()
        except TemplateError as exc:
            raise ConfigValueError(exc.key, exc.problem) from None

    def template(self) -> ChatTemplate | None:
        """The chat template the counts render each chat example with, or None: the model's
        own (needs `tokenizer`) when the target's profile formats with it (`chat_template:
        true`) or the config names one, and the model's files hold one."""
        if self.tokenizer is None:
            return None
        named = self.chat_template is not None or self.chat_template_name is not None
        formats = None if self.target is None else get_target(self.target).chat_template
        if formats is False or (formats is None and not named):
            return None
        return load_template(self.tokenizer, self.chat_template, self.chat_template_name)


@register("count_tokens", CountTokensConfig, "Count tokens per example as the target bills them.")
def count_tokens(batch: pd.DataFrame, cfg: CountTokensConfig) -> tuple[pd.DataFrame, Changes]:
    out = batch.copy()
    changes: Changes = Counter()
    enc = (
        local_tokenizer(cfg.tokenizer)
        if cfg.tokenizer is not None
        else encoding_of(cfg.target, cfg.encoding)
    )
    values = measure(out, enc, model_costs(cfg.target))
    template = cfg.template()
    failed: dict[int, str] = {}
    if template is not None:
        failed = _rendered_totals(out, values, enc, template)
    set_metrics(out, values)
    if failed:
        rows = pd.Series([pos in failed for pos in range(len(out))], index=out.index)
        messages = pd.Series([failed.get(pos, "") for pos in range(len(out))], index=out.index)
        warn(out, rows, "chat_template_failed", messages)
    return out, changes


def _conversation(row: Mapping[Any, Any]) -> tuple[list[Any], Any] | None:
    """The messages and tools the template renders for one record, None for a kind it does
    not format (a prompt/completion pair)."""
    kind = row.get("kind")
    if kind in ("chat", "kto"):
        messages = row.get("messages")
        return (messages if isinstance(messages, list) else []), row.get("tools")
    if kind == "preference":
        inp = row.get("input")
        inp = inp if isinstance(inp, Mapping) else {}
        prompt = inp.get("messages")
        output = row.get("preferred_output")
        return [
            *(prompt if isinstance(prompt, list) else []),
            *(output if isinstance(output, list) else []),
        ], inp.get("tools")
    return None


def _rendered_totals(
    batch: pd.DataFrame, values: np.ndarray, enc: Any, template: ChatTemplate
) -> dict[int, str]:
    """Replace the total of every chat, KTO and preference row of `values` by the tokens of
    its rendered text plus its image tokens (a template writes an image as a placeholder at
    most). A row the template does not render for keeps the formula's total; its position ->
    the warning message is returned."""
    failed: dict[int, str] = {}
    columns = [c for c in ("kind", "messages", "tools", "input", "preferred_output") if c in batch]
    total, image = COLUMNS.index(TOTAL), COLUMNS.index("m_tokens_image")
    for pos, record in enumerate(batch[columns].to_dict("records")):
        found = _conversation(record)
        if found is None:
            continue
        messages, tools = found
        try:
            text = template.render(messages, tools if isinstance(tools, list) else None)
        except TemplateFailed as exc:
            failed[pos] = (
                f"the chat template {template.source} does not render this example ({exc}); "
                "its tokens are counted by the chat formula instead"
            )
            continue
        values[pos, total] = len(enc.encode_ordinary(text)) + values[pos, image]
    return failed
