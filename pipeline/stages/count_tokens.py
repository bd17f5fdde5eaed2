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
Each worker builds the encoding once (`pipeline.tokens.get_encoding` is cached per process);
only its name travels between processes. The measuring itself (`measure`, the per-kind rows,
the metric column names `COLUMNS`/`TOTAL` and the encoding choice `resolve_encoding`) lives in
`pipeline.tokens`, shared with `token_limit` and `dataset_limits`.

Reason codes: none (this stage only measures).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from pipeline.configdoc import doc
from pipeline.registry import Changes, register
from pipeline.tokens import (
    check_options,
    encoding_of,
    local_tokenizer,
    measure,
    model_costs,
    set_metrics,
)


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
        "(Together, Fireworks, Mistral, TRL, axolotl, LLaMA-Factory). The chat formula's "
        "per-message figures still apply (no chat template is rendered). Null: tiktoken, and "
        "the report says the count is an approximation.",
        None,
    )

    def __post_init__(self) -> None:
        check_options("count_tokens", self.target, self.encoding)
        if self.tokenizer is not None:
            from pathlib import Path

            from pipeline.errors import PipelineError

            if self.encoding is not None:
                raise PipelineError(
                    "stage count_tokens: set `tokenizer` or `encoding`, not both"
                )
            if not Path(self.tokenizer).is_file():
                raise PipelineError(
                    f"stage count_tokens: tokenizer: no file {self.tokenizer!r}; give the path "
                    "of the model's tokenizer.json"
                )


@register("count_tokens", CountTokensConfig, "Count tokens per example as the target bills them.")
def count_tokens(batch: pd.DataFrame, cfg: CountTokensConfig) -> tuple[pd.DataFrame, Changes]:
    out = batch.copy()
    changes: Changes = Counter()
    enc = (
        local_tokenizer(cfg.tokenizer)
        if cfg.tokenizer is not None
        else encoding_of(cfg.target, cfg.encoding)
    )
    set_metrics(out, measure(out, enc, model_costs(cfg.target)))
    return out, changes
