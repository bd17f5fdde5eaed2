"""Preference, KTO and multimodal source records as canonical records (nothing left out).

`pipeline.read.mapping.Mapping.apply` calls `apply` for the shapes below (`pipeline.shape_detect`
recognises them before the plain shapes they extend, so their extra fields are never dropped):

| shape | source keys | canonical record |
|---|---|---|
| `preference` / `trl_preference` | OpenAI DPO; TRL `prompt`/`chosen`/`rejected` (text or message lists), or TRL's implicit prompt `chosen`/`rejected` (whole conversations) | preference |
| `chat_preference` | `messages` + `chosen`/`rejected` messages (axolotl `chat_template.default`) | preference |
| `sharegpt_preference` | `conversations` + `chosen`/`rejected` `{from, value}` (LLaMA-Factory) | preference |
| `alpaca_preference` | `instruction` (+ `input`, `system`) + `chosen`/`rejected` text (LLaMA-Factory) | preference |
| `kto` | `messages` + `label`/`kto_tag`; TRL unpaired `prompt`/`completion`/`label` | kto |
| `sharegpt_kto`, `alpaca_kto` | the ShareGPT / alpaca shape + `kto_tag` (or `label`) | kto |
| `multimodal`, `sharegpt_multimodal`, `alpaca_multimodal` | `images` list + one `<image>` placeholder per image in the text | chat with `image_url` parts |

A preference pair's answers are one assistant message each; text prompts become one user
message. An `images` list fills the `<image>` placeholders in order (LLaMA-Factory's rule: as
many placeholders as images); each image must be an http(s), gs:// or base64 data URL: ftprep
works offline and reads no local image file, so a local path is refused with a message saying
so. Any record that does not fit raises `ShapeError` (`shape_invalid`).
"""

from __future__ import annotations

from typing import Any

IMAGE_TAG = "<image>"
_URL_PREFIXES = ("http://", "https://", "gs://", "data:")


def _shape_error(message: str) -> Exception:
    from pipeline.read.mapping import ShapeError

    return ShapeError(message)


def image_url(value: Any, where: str) -> str:
    """The URL of one `images` entry; a local path or anything else is a ShapeError."""
    if isinstance(value, dict):  # {"url": ...} / {"path": ...} as some exports write it
        value = value.get("url", value.get("path"))
    if not isinstance(value, str) or not value.strip():
        raise _shape_error(f"{where} is not an image URL (text)")
    if value.startswith(_URL_PREFIXES):
        return value
    raise _shape_error(
        f"{where} {value!r} is a local file path: ftprep works offline and reads no image "
        "files, and fine-tuning services take URLs or base64 data; upload the image and write "
        "its https:// (or gs://) URL, or embed it as data:image/png;base64,..."
    )


def fill_images(messages: list[Any], images: Any) -> list[Any]:
    """The messages with each `<image>` placeholder replaced by the next image as a part."""
    if images is None:
        return messages
    if not isinstance(images, list):
        raise _shape_error("images must be a list of image URLs")
    urls = [image_url(v, f"images[{i}]") for i, v in enumerate(images)]
    tags = sum(
        m["content"].count(IMAGE_TAG)
        for m in messages
        if isinstance(m, dict) and isinstance(m.get("content"), str)
    )
    if tags != len(urls):
        raise _shape_error(
            f"{len(urls)} images but {tags} {IMAGE_TAG} placeholders in the text: write one "
            f"{IMAGE_TAG} where each image goes, in the order of `images`"
        )
    pending = iter(urls)
    out = []
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else None
        if not isinstance(content, str) or IMAGE_TAG not in content:
            out.append(m)
            continue
        parts: list[dict[str, Any]] = []
        for n, text in enumerate(content.split(IMAGE_TAG)):
            if n:
                parts.append({"type": "image_url", "image_url": {"url": next(pending)}})
            if text:
                parts.append({"type": "text", "text": text})
        out.append({**m, "content": parts})
    return out


def _turn(value: Any, where: str) -> dict[str, Any]:
    """One answer as an assistant message: a message, a ShareGPT turn or text."""
    from pipeline.read.mapping import SHAREGPT_ROLES

    if isinstance(value, str):
        return {"role": "assistant", "content": value}
    if isinstance(value, dict) and "role" in value:
        return value
    if isinstance(value, dict) and "from" in value and "value" in value:
        return {"role": SHAREGPT_ROLES.get(str(value["from"]), str(value["from"])),
                "content": value["value"]}
    if isinstance(value, list) and len(value) == 1:
        return _turn(value[0], where)
    raise _shape_error(f"{where} must be one answer: text or a single message")


def _prompt(value: Any, where: str) -> list[Any]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if isinstance(value, list) and all(isinstance(m, dict) for m in value):
        return value
    raise _shape_error(f"{where} must be text or a list of messages")


def _preference(messages: list[Any], chosen: Any, rejected: Any, tools: Any = None) -> dict[str, Any]:
    inp: dict[str, Any] = {"messages": messages}
    if tools:
        inp["tools"] = tools
    return {
        "kind": "preference",
        "input": inp,
        "preferred_output": [_turn(chosen, "chosen")],
        "non_preferred_output": [_turn(rejected, "rejected")],
    }


def _label(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1) and not isinstance(value, float):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _shape_error(
        f"label is {value!r}; a KTO label is true (desirable) or false (undesirable)"
    )


def _implicit(chosen: Any, rejected: Any) -> tuple[list[Any], Any, Any]:
    """TRL's implicit prompt: the shared start of two conversations, and each last answer."""
    if isinstance(chosen, list) and isinstance(rejected, list) and chosen and rejected:
        if chosen[:-1] == rejected[:-1]:
            return chosen[:-1], chosen[-1], rejected[-1]
        raise _shape_error("chosen and rejected differ before their last message: no common prompt")
    raise _shape_error(
        "chosen/rejected without a prompt must be whole conversations (message lists) sharing "
        "all but the last message; for text, add the prompt column"
    )


def apply(shape: str, get: dict[str, Any]) -> dict[str, Any]:
    """The canonical record of one source record of `shape` (`get`: shape key -> value)."""
    from pipeline.read.mapping import _alpaca, _sharegpt

    images = get.get("images")
    if shape == "trl_preference":
        if get.get("prompt") is None:
            prompt, chosen, rejected = _implicit(get.get("chosen"), get.get("rejected"))
        else:
            prompt, chosen, rejected = (
                _prompt(get["prompt"], "prompt"), get.get("chosen"), get.get("rejected")
            )
        return _preference(prompt, chosen, rejected)
    if shape == "chat_preference":
        msgs = fill_images(_prompt(get.get("messages"), "messages"), images)
        return _preference(msgs, get.get("chosen"), get.get("rejected"), get.get("tools"))
    if shape == "sharegpt_preference":
        chat = _sharegpt({k: get.get(k) for k in ("conversations", "system", "tools")})
        msgs = fill_images(chat["messages"], images)
        return _preference(msgs, get.get("chosen"), get.get("rejected"), chat.get("tools"))
    if shape == "alpaca_preference":
        msgs = _chat_of(_alpaca({**get, "output": ""}))["messages"][:-1]
        return _preference(fill_images(msgs, images), get.get("chosen"), get.get("rejected"))
    if shape in ("kto", "sharegpt_kto", "alpaca_kto"):
        if shape == "sharegpt_kto":
            chat = _sharegpt({k: get.get(k) for k in ("conversations", "system", "tools")})
        elif shape == "alpaca_kto":
            chat = _chat_of(_alpaca(get))
        elif get.get("messages") is not None:
            chat = {"messages": _prompt(get["messages"], "messages"), "tools": get.get("tools")}
        else:  # TRL unpaired preference: prompt / completion (text or message lists)
            completion = get.get("completion")
            answer = completion if isinstance(completion, list) else [_turn(completion, "completion")]
            chat = {"messages": [*_prompt(get.get("prompt"), "prompt"), *answer]}
        out = {"kind": "kto", "messages": fill_images(chat["messages"], images),
               "label": _label(get.get("label"))}
        if chat.get("tools"):
            out["tools"] = chat["tools"]
        return out
    if shape == "multimodal":
        msgs = fill_images(_prompt(get.get("messages"), "messages"), images)
        out = {"kind": "chat", "messages": msgs}
        if get.get("tools"):
            out["tools"] = get["tools"]
        return out
    if shape == "sharegpt_multimodal":
        chat = _sharegpt(get)
        return {**chat, "messages": fill_images(chat["messages"], images)}
    if shape == "alpaca_multimodal":
        chat = _chat_of(_alpaca(get))
        return {"kind": "chat", "messages": fill_images(chat["messages"], images)}
    raise AssertionError(f"unknown shape {shape}")  # a bug


def _chat_of(rec: dict[str, Any]) -> dict[str, Any]:
    """An alpaca record as chat (a prompt/completion one becomes one user and one answer)."""
    if rec["kind"] == "chat":
        return rec
    return {"kind": "chat", "messages": [
        {"role": "user", "content": rec.get("prompt")},
        {"role": "assistant", "content": rec.get("completion")},
    ]}


SHAPES = frozenset({
    "trl_preference", "chat_preference", "sharegpt_preference", "alpaca_preference",
    "kto", "sharegpt_kto", "alpaca_kto", "multimodal", "sharegpt_multimodal", "alpaca_multimodal",
})
