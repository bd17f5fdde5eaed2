"""convert: turn records into the shape the output needs (chat, prompt/completion, a service's).

Legacy prompt/completion -> chat removes the separator at the end of the prompt, the stop
sequence at the end of the completion and the completion's leading space, and can add a system
message. Chat -> the other shapes goes through `pipeline.shapes`; a record that a shape
cannot hold without dropping something is rejected, never cut down silently.

Reason codes:
- `conversion_lossy`: the target shape has no place for something the record holds;
- `conversion_unsupported`: the target shape cannot express this kind of record.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pipeline.configdoc import doc
from pipeline.records import drop_where
from pipeline.registry import Changes, register
from pipeline.shapes import ConversionError, Shape, to_shape

# Tried longest first when `separator`/`stop` is `auto`; what legacy data most often used.
AUTO_SEPARATORS = ("\n\n###\n\n", "\n\n###\n", "\n###\n", "\n\n###", " ->", "->", "###")
AUTO_STOPS = ("\n\nEND\n\n", "\n\nEND", " END", "\nEND", "END", "###")

@dataclass(frozen=True)
class ConvertConfig:
    to: Shape = doc(
        "Output shape: chat, prompt_completion, vertex, bedrock, trl_conversational, "
        "trl_prompt_completion or trl_preference.",
        "chat",
    )
    system: str | None = doc(
        "System message added to chat records that have none (prompt/completion -> chat, "
        "or any chat record when converting to chat).",
        None,
    )
    separator: str | None = doc(
        "Separator to remove from the end of legacy prompts when converting to chat: `auto` "
        "removes the first of the common ones found (`\\n\\n###\\n\\n`, `\\n\\n###\\n`, ` ->` ...), "
        "null removes nothing.",
        "auto",
    )
    stop: str | None = doc(
        "Stop sequence to remove from the end of legacy completions when converting to chat: "
        "`auto` removes the first common one found (`\\n\\nEND\\n\\n`, ` END` ...), null nothing.",
        "auto",
    )
    leading_space: bool = doc(
        "Remove the one leading space legacy completions start with when converting to chat.",
        True,
    )


def _strip_suffix(text: str, configured: str | None, auto: tuple[str, ...]) -> tuple[str, str]:
    """(text without the suffix, the suffix removed or '')."""
    if configured is None:
        return text, ""
    candidates = auto if configured == "auto" else (configured,)
    for suffix in candidates:
        if suffix and text.endswith(suffix):
            return text[: -len(suffix)], suffix
    return text, ""


def _legacy_to_chat(row: Any, cfg: ConvertConfig, changes: Changes) -> list[dict[str, Any]]:
    prompt, completion = row.prompt, row.completion
    if not isinstance(prompt, str) or not isinstance(completion, str):
        raise ConversionError("conversion_unsupported", "prompt and completion must be text")
    prompt, sep = _strip_suffix(prompt, cfg.separator, AUTO_SEPARATORS)
    completion, stop = _strip_suffix(completion, cfg.stop, AUTO_STOPS)
    if sep:
        changes[f"separator_removed[{sep!r}]"] += 1
    if stop:
        changes[f"stop_removed[{stop!r}]"] += 1
    if cfg.leading_space and completion.startswith(" "):
        completion = completion[1:]
        changes["leading_space_removed"] += 1
    messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
    if cfg.system is not None:
        messages.insert(0, {"role": "system", "content": cfg.system})
    return messages


@register("convert", ConvertConfig, "Convert records to the output shape (chat, vertex, ...).")
def convert(batch: pd.DataFrame, cfg: ConvertConfig) -> tuple[pd.DataFrame, Changes]:
    out = batch.copy()
    changes: Changes = Counter()
    kinds = out["kind"].tolist()
    messages = out["messages"].tolist()
    shapes: list[Any] = list(out["_shape"]) if "_shape" in out else [None] * len(out)
    errors: dict[Any, ConversionError] = {}
    for pos, row in enumerate(out.itertuples()):
        try:
            if cfg.to == "chat" and row.kind == "prompt_completion":
                messages[pos] = _legacy_to_chat(row, cfg, changes)
                kinds[pos] = "chat"
                changes["prompt_completion_to_chat"] += 1
            elif cfg.to == "chat" and row.kind == "chat" and cfg.system is not None:
                msgs = row.messages
                if isinstance(msgs, list) and not any(
                    isinstance(m, dict) and m.get("role") == "system" for m in msgs
                ):
                    messages[pos] = [{"role": "system", "content": cfg.system}, *msgs]
                    changes["system_added"] += 1
            record = {
                "kind": kinds[pos],
                "prompt": row.prompt,
                "completion": row.completion,
                "messages": messages[pos],
                "tools": row.tools,
                "functions": row.functions,
                "parallel_tool_calls": row.parallel_tool_calls,
                "input": row.input,
                "preferred_output": row.preferred_output,
                "non_preferred_output": row.non_preferred_output,
            }
            to_shape(cfg.to, record)  # raises when the record does not fit
            shapes[pos] = cfg.to
        except ConversionError as exc:
            errors[out.index[pos]] = exc
    out["kind"] = pd.Series(kinds, index=out.index, dtype=object)
    out["messages"] = pd.Series(messages, index=out.index, dtype=object)
    out["_shape"] = pd.Series(shapes, index=out.index, dtype=object)
    for code in ("conversion_lossy", "conversion_unsupported"):
        idx = [i for i, e in errors.items() if e.code == code]
        if idx:
            mask = out.index.isin(idx)
            texts = pd.Series({i: f"cannot become {cfg.to}: {errors[i].message}" for i in idx})
            drop_where(out, pd.Series(mask, index=out.index), code, texts.reindex(out.index))
    return out, changes
