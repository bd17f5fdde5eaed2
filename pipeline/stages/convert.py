"""convert: turn records into the shape the output needs (chat, prompt/completion, a service's).

Legacy prompt/completion -> chat removes the separator at the end of the prompt, the stop
sequence at the end of the completion and the completion's leading space, and can add a system
message. Chat -> the other shapes goes through `pipeline.shapes`; a record that a shape
cannot hold without dropping something is rejected, never cut down silently.

A loss only the user can choose: `preference: chosen` turns a preference pair into a chat
ending on the chosen answer (the rejected answer is left out, counted as the change
`rejected_answer_dropped`); `kto: desirable` turns a desirable KTO example into a chat (its label
left out, counted as `kto_label_dropped`) and rejects an undesirable one (`kto_undesirable`),
which must never become a training target.

Reason codes:
- `conversion_lossy`: the target shape has no place for something the record holds (the
  message names the field);
- `conversion_unsupported`: the target shape cannot express this kind of record;
- `kto_undesirable`: an undesirable KTO example left out by `kto: desirable`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from pipeline.configdoc import doc
from pipeline.records import drop_where
from pipeline.registry import Changes, register
from pipeline.shapes import ConversionError, Shape, to_shape

# Tried longest first when `separator`/`stop` is `auto`; what legacy data most often used.
AUTO_SEPARATORS = ("\n\n###\n\n", "\n\n###\n", "\n###\n", "\n\n###", " ->", "->", "###")
AUTO_STOPS = ("\n\nEND\n\n", "\n\nEND", " END", "\nEND", "END", "###")

# Shapes a prompt/completion record reaches as a chat first (separator and stop removed).
CHAT_SHAPES = ("chat", "vertex", "bedrock", "trl_conversational")


@dataclass(frozen=True)
class ConvertConfig:
    to: Shape = doc(
        "Output shape: chat, prompt_completion, vertex, bedrock, trl_conversational, "
        "trl_prompt_completion, trl_preference or preference (OpenAI DPO).",
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
    preference: Literal["reject", "chosen"] = doc(
        "Preference pairs going to a shape without a rejected answer (chat, vertex ...): "
        "`reject` rejects them (`conversion_lossy`); `chosen` keeps the conversation with the "
        "chosen answer and leaves the rejected answer out (counted: `rejected_answer_dropped`).",
        "reject",
    )
    kto: Literal["reject", "desirable"] = doc(
        "KTO examples (a desirable/undesirable `label`) going to a shape without labels: "
        "`reject` rejects them (`conversion_lossy`); `desirable` keeps the desirable ones as "
        "chat (counted: `kto_label_dropped`) and rejects the undesirable ones "
        "(`kto_undesirable`).",
        "reject",
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


def _chosen_chat(row: Any) -> tuple[list[Any], Any, Any]:
    """A preference pair's conversation ending on the chosen answer, its tools and
    parallel_tool_calls."""
    inp, chosen = row.input, row.preferred_output
    if not isinstance(inp, dict) or not isinstance(inp.get("messages"), list):
        raise ConversionError("conversion_unsupported", "input.messages is not a list")
    if not isinstance(chosen, list):
        raise ConversionError("conversion_unsupported", "preferred_output is not a list")
    lost = sorted(set(inp) - {"messages", "tools", "parallel_tool_calls"})
    if lost:
        raise ConversionError("conversion_lossy", f"input.{lost[0]}: chat has no place for it")
    return [*inp["messages"], *chosen], inp.get("tools"), inp.get("parallel_tool_calls")


@register("convert", ConvertConfig, "Convert records to the output shape (chat, vertex, ...).")
def convert(batch: pd.DataFrame, cfg: ConvertConfig) -> tuple[pd.DataFrame, Changes]:
    out = batch.copy()
    changes: Changes = Counter()
    kinds = out["kind"].tolist()
    messages = out["messages"].tolist()
    tools = out["tools"].tolist()
    ptc = out["parallel_tool_calls"].tolist()
    labels = out["label"].tolist() if "label" in out else [None] * len(out)
    chat_shape = cfg.to not in ("preference", "trl_preference")
    shapes: list[Any] = list(out["_shape"]) if "_shape" in out else [None] * len(out)
    errors: dict[Any, ConversionError] = {}
    for pos, row in enumerate(out.itertuples()):
        chosen_loss = None  # the loss the user chose, counted once the record converts
        try:
            if chat_shape and row.kind == "preference" and cfg.preference == "chosen":
                messages[pos], tools[pos], ptc[pos] = _chosen_chat(row)
                kinds[pos] = "chat"
                chosen_loss = "rejected_answer_dropped"
            elif chat_shape and row.kind == "kto" and cfg.kto == "desirable":
                if labels[pos] is not True:
                    raise ConversionError(
                        "kto_undesirable",
                        "an undesirable KTO example (label false): left out by kto: desirable, "
                        "so that it never becomes a training target",
                    )
                kinds[pos] = "chat"
                chosen_loss = "kto_label_dropped"
            if cfg.to in CHAT_SHAPES and kinds[pos] == "prompt_completion":
                messages[pos] = _legacy_to_chat(row, cfg, changes)
                kinds[pos] = "chat"
                changes["prompt_completion_to_chat"] += 1
            elif cfg.to == "chat" and kinds[pos] == "chat" and cfg.system is not None:
                msgs = messages[pos]
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
                "tools": tools[pos],
                "functions": row.functions,
                "parallel_tool_calls": ptc[pos],
                "input": row.input,
                "preferred_output": row.preferred_output,
                "non_preferred_output": row.non_preferred_output,
                "label": labels[pos],
            }
            to_shape(cfg.to, record)  # raises when the record does not fit
            shapes[pos] = cfg.to
            if chosen_loss:
                changes[chosen_loss] += 1
        except ConversionError as exc:
            errors[out.index[pos]] = exc
    out["kind"] = pd.Series(kinds, index=out.index, dtype=object)
    out["messages"] = pd.Series(messages, index=out.index, dtype=object)
    out["tools"] = pd.Series(tools, index=out.index, dtype=object)
    out["parallel_tool_calls"] = pd.Series(ptc, index=out.index, dtype=object)
    out["_shape"] = pd.Series(shapes, index=out.index, dtype=object)
    for code in ("conversion_lossy", "conversion_unsupported", "kto_undesirable"):
        idx = [i for i, e in errors.items() if e.code == code]
        if idx:
            mask = out.index.isin(idx)
            texts = pd.Series({i: f"cannot become {cfg.to}: {errors[i].message}" for i in idx})
            drop_where(out, pd.Series(mask, index=out.index), code, texts.reindex(out.index))
    return out, changes
