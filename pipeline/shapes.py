"""Output shapes: canonical records written as another service's or trainer's format, and back.

| shape | written as |
|---|---|
| `chat` | OpenAI chat: `{"messages", "tools"?}` |
| `prompt_completion` | `{"prompt", "completion"}` text |
| `vertex` | Vertex AI Gemini: `{"systemInstruction"?, "contents", "tools"?}` |
| `bedrock` | Bedrock Converse: `{"schemaVersion": "bedrock-conversation-2024", "system"?, "messages"}` |
| `trl_conversational` | TRL: `{"messages", "tools"?}` |
| `trl_prompt_completion` | TRL: `{"prompt": [...], "completion": [...]}` (text for prompt/completion records) |
| `trl_preference` | TRL (conversational): `{"prompt", "chosen", "rejected"}` message lists |
| `preference` | OpenAI DPO: `{"input", "preferred_output", "non_preferred_output"}` |

Preference and KTO records go only to the shapes that hold their answers and labels
(`preference`, `trl_preference`); to a chat shape only when the convert stage was told to keep
the chosen answer (`preference: chosen`) or the desirable examples (`kto: desirable`), which
turns them into chat records first. Images (`image_url` parts) go to `chat` as they are and to
`vertex` as `fileData` (http(s) or gs:// URIs); every other shape holds text only.

A conversion that would drop information raises `ConversionError` with a reason code
(`conversion_lossy`: the shape has no place for something the record holds;
`conversion_unsupported`: the shape cannot express this kind of record at all). The `from_*`
functions read a shape back into a canonical record, so round trips can be checked.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import orjson

Shape = Literal[
    "chat",
    "prompt_completion",
    "vertex",
    "bedrock",
    "trl_conversational",
    "trl_prompt_completion",
    "trl_preference",
    "preference",
]
SHAPES: tuple[str, ...] = get_args(Shape)
BEDROCK_SCHEMA = "bedrock-conversation-2024"


class ConversionError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _lossy(message: str) -> ConversionError:
    return ConversionError("conversion_lossy", message)


def _unsupported(message: str) -> ConversionError:
    return ConversionError("conversion_unsupported", message)


def _texts(content: Any, where: str) -> list[str]:
    """The texts of a content that is a string or a list of text parts."""
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        out = []
        for i, part in enumerate(content):
            if isinstance(part, dict) and part.get("type") == "text" and "text" in part:
                out.append(part["text"])
            else:
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise _lossy(f"{where}.content[{i}] is a {kind!r} part; the shape holds only text")
        return out
    raise _lossy(f"{where}.content is neither text nor a list of parts")


def _content_from_texts(texts: list[str]) -> Any:
    if len(texts) == 1:
        return texts[0]
    return [{"type": "text", "text": t} for t in texts]


def _check_plain(m: dict[str, Any], i: int, allowed: set[str]) -> None:
    extra = sorted(set(m) - allowed)
    if extra:
        raise _lossy(f"messages[{i}] has {', '.join(extra)}, which the shape cannot hold")
    if m.get("weight", 1) != 1:
        raise _lossy(f"messages[{i}].weight is {m['weight']!r}; the shape trains on every turn")


def _chat(rec: dict[str, Any], functions_ok: bool = False) -> list[dict[str, Any]]:
    kind = rec.get("kind")
    if kind == "preference":
        raise _lossy(
            "non_preferred_output: a chat shape has no place for the rejected answer; convert "
            "to preference or trl_preference, or keep only the chosen answer with "
            "--preference chosen"
        )
    if kind == "kto":
        raise _lossy(
            "label: a chat shape has no place for the desirable/undesirable label; keep only "
            "the desirable examples with --kto desirable"
        )
    if kind != "chat":
        raise _unsupported(f"a {kind} record is not a chat; convert it to chat first")
    msgs = rec.get("messages")
    if not isinstance(msgs, list) or not all(isinstance(m, dict) for m in msgs):
        raise _unsupported("messages is not a list of objects")
    if rec.get("functions") and not functions_ok:
        raise _lossy("legacy `functions` definitions: only the chat shape holds them")
    return msgs


# --- to a shape ---------------------------------------------------------------------------


def to_shape(shape: str, rec: dict[str, Any]) -> dict[str, Any]:
    """The JSON object for canonical record `rec` in `shape` (raises ConversionError)."""
    kind = rec.get("kind")
    if shape == "chat":
        msgs = _chat(rec, functions_ok=True)
        out: dict[str, Any] = {"messages": msgs}
        for key in ("tools", "functions", "parallel_tool_calls"):
            if rec.get(key) is not None:
                out[key] = rec[key]
        return out
    if shape == "prompt_completion":
        if kind == "prompt_completion":
            return {"prompt": rec["prompt"], "completion": rec["completion"]}
        return _chat_to_prompt_completion(rec)
    if shape == "vertex":
        return _to_vertex(rec)
    if shape == "bedrock":
        return _to_bedrock(rec)
    if shape == "trl_conversational":
        msgs = _chat(rec)
        _text_only(msgs, shape)
        out = {"messages": msgs}
        if rec.get("tools"):
            out["tools"] = rec["tools"]
        return out
    if shape == "trl_prompt_completion":
        if kind == "prompt_completion":
            return {"prompt": rec["prompt"], "completion": rec["completion"]}
        msgs = _chat(rec)
        _text_only(msgs, shape)
        if not msgs or msgs[-1].get("role") != "assistant":
            raise _unsupported("the last message is not the assistant's: there is no completion")
        if rec.get("tools"):
            raise _lossy("tools: TRL prompt-completion data has no tools column here")
        return {"prompt": msgs[:-1], "completion": msgs[-1:]}
    if shape == "preference":
        if kind != "preference":
            raise _unsupported(f"a {kind} record has no chosen/rejected pair")
        return {
            "input": rec.get("input"),
            "preferred_output": rec.get("preferred_output"),
            "non_preferred_output": rec.get("non_preferred_output"),
        }
    if shape == "trl_preference":
        if kind != "preference":
            raise _unsupported(f"a {kind} record has no chosen/rejected pair")
        inp = rec.get("input")
        if not isinstance(inp, dict) or set(inp) - {"messages"}:
            raise _lossy("input holds more than messages (tools?); TRL preference has only prompt")
        for name in ("messages",):
            _text_only(inp.get(name) or [], shape)
        return {
            "prompt": inp.get("messages"),
            "chosen": rec.get("preferred_output"),
            "rejected": rec.get("non_preferred_output"),
        }
    raise AssertionError(f"unknown shape {shape!r}")  # a bug


def _text_only(msgs: Any, shape: str) -> None:
    """Raise `conversion_lossy` naming the first image part: the shape holds text only."""
    for i, m in enumerate(msgs if isinstance(msgs, list) else []):
        content = m.get("content") if isinstance(m, dict) else None
        for j, part in enumerate(content if isinstance(content, list) else []):
            if isinstance(part, dict) and part.get("type") not in ("text", "refusal"):
                raise _lossy(
                    f"messages[{i}].content[{j}] is a {part.get('type')!r} part; {shape} is "
                    "written with text only here (convert to chat to keep the images)"
                )


_IMAGE_MIMES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                ".webp": "image/webp", ".gif": "image/gif"}


def _vertex_file(part: dict[str, Any], where: str) -> dict[str, Any]:
    """An image_url part as Vertex `fileData` (a gs:// or public http(s) URI)."""
    img = part.get("image_url")
    url = img.get("url") if isinstance(img, dict) else img
    if not isinstance(url, str) or not url.startswith(("http://", "https://", "gs://")):
        raise _lossy(
            f"{where}: Vertex tuning takes images as fileData URIs (gs:// or public https), "
            "not inline data: upload the image and use its URI"
        )
    path = url.split("?", 1)[0].lower()
    mime = next((m for ext, m in _IMAGE_MIMES.items() if path.endswith(ext)), None)
    if mime is None:
        raise _lossy(f"{where}: cannot tell the image type of {url!r} (Vertex needs a mimeType)")
    if isinstance(img, dict) and img.get("detail") not in (None, "auto"):
        raise _lossy(f"{where}.image_url.detail: Vertex has no per-image detail")
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def _vertex_parts(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, list):
        parts = []
        for j, part in enumerate(content):
            if isinstance(part, dict) and part.get("type") == "image_url":
                parts.append(_vertex_file(part, f"{where}.content[{j}]"))
            else:
                parts += [{"text": t} for t in _texts([part], f"{where}")]
        return parts
    return [{"text": t} for t in _texts(content, where)]


def _chat_to_prompt_completion(rec: dict[str, Any]) -> dict[str, Any]:
    msgs = _chat(rec)
    roles = [m.get("role") for m in msgs]
    if roles != ["user", "assistant"]:
        raise _lossy(
            f"roles {roles}: prompt/completion holds exactly one user and one assistant message "
            "(use trl_prompt_completion for multi-turn or system messages)"
        )
    if rec.get("tools"):
        raise _lossy("tools: prompt/completion has no place for tool definitions")
    for i, m in enumerate(msgs):
        _check_plain(m, i, {"role", "content", "weight"})
    user, assistant = (
        "".join(_texts(m.get("content"), f"messages[{i}]")) for i, m in enumerate(msgs)
    )
    return {"prompt": user, "completion": assistant}


def _parse_arguments(arguments: Any, where: str) -> Any:
    if isinstance(arguments, str):
        try:
            return orjson.loads(arguments)
        except orjson.JSONDecodeError:
            raise _lossy(
                f"{where}.function.arguments is not JSON; Vertex needs an object"
            ) from None
    return arguments


def _to_vertex(rec: dict[str, Any]) -> dict[str, Any]:
    msgs = _chat(rec)
    out: dict[str, Any] = {}
    contents: list[dict[str, Any]] = []
    call_names: dict[str, Any] = {}
    for i, m in enumerate(msgs):
        role = m.get("role")
        where = f"messages[{i}]"
        if role == "system":
            _check_plain(m, i, {"role", "content"})
            if contents or "systemInstruction" in out:
                raise _lossy(f"{where}: Vertex holds one system instruction, before the turns")
            out["systemInstruction"] = {
                "role": "system",
                "parts": [{"text": t} for t in _texts(m.get("content"), where)],
            }
        elif role == "user":
            _check_plain(m, i, {"role", "content"})
            contents.append({"role": "user", "parts": _vertex_parts(m.get("content"), where)})
        elif role in ("assistant", "model"):  # `model`: Gemini's own name for the assistant
            _check_plain(m, i, {"role", "content", "tool_calls", "weight"})
            parts: list[dict[str, Any]] = [{"text": t} for t in _texts(m.get("content"), where)]
            for j, call in enumerate(m.get("tool_calls") or []):
                fn = call.get("function", {}) if isinstance(call, dict) else {}
                args = _parse_arguments(fn.get("arguments"), f"{where}.tool_calls[{j}]")
                parts.append({"functionCall": {"name": fn.get("name"), "args": args}})
                if isinstance(call, dict) and isinstance(call.get("id"), str):
                    call_names[call["id"]] = fn.get("name")
            contents.append({"role": "model", "parts": parts})
        elif role == "tool":
            _check_plain(m, i, {"role", "content", "tool_call_id"})
            name = call_names.get(m.get("tool_call_id", ""))
            if name is None:
                raise _lossy(f"{where}.tool_call_id answers no earlier tool call")
            text = "".join(_texts(m.get("content"), where))
            try:
                response = orjson.loads(text)
            except orjson.JSONDecodeError:
                response = None
            if not isinstance(response, dict):
                response = {"output": text}
            contents.append({"parts": [{"functionResponse": {"name": name, "response": response}}]})
        else:
            raise _lossy(f"{where}.role {role!r} has no Vertex equivalent")
    out["contents"] = contents
    tools = rec.get("tools")
    if tools:
        decls = []
        for k, t in enumerate(tools):
            if not (isinstance(t, dict) and t.get("type") == "function" and "function" in t):
                raise _lossy(f"tools[{k}] is not a function tool")
            decls.append(t["function"])
        out["tools"] = [{"functionDeclarations": decls}]
    return out


def _bedrock_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    """Content as Bedrock blocks: text, and images as S3 references (the only kind it takes)."""
    if not isinstance(content, list):
        return [{"text": t} for t in _texts(content, where)]
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        if isinstance(part, dict) and part.get("type") == "image_url":
            img = part.get("image_url")
            url = img.get("url") if isinstance(img, dict) else None
            ext = str(url).rsplit(".", 1)[-1].lower() if isinstance(url, str) else ""
            if not isinstance(url, str) or not url.startswith("s3://") or ext not in (
                "png", "jpeg", "jpg", "gif", "webp"
            ):
                raise _lossy(f"{where}.content[{j}]: Bedrock takes images only as S3 "
                             "references to .png/.jpeg/.gif/.webp files")
            source: dict[str, Any] = {"uri": url}
            if isinstance(img, dict) and img.get("bucket_owner"):
                source["bucketOwner"] = img["bucket_owner"]
            fmt = "jpeg" if ext == "jpg" else ext
            blocks.append({"image": {"format": fmt, "source": {"s3Location": source}}})
        else:
            blocks += [{"text": t} for t in _texts([part], where)]
    return blocks


def _from_bedrock_block(block: dict[str, Any]) -> dict[str, Any]:
    if "image" in block:
        loc = block["image"]["source"]["s3Location"]
        img = {"url": loc["uri"]}
        if loc.get("bucketOwner"):
            img["bucket_owner"] = loc["bucketOwner"]
        return {"type": "image_url", "image_url": img}
    if set(block) - {"text"}:
        raise KeyError(f"a {', '.join(sorted(block))} block: ftprep reads text and image blocks")
    return {"type": "text", "text": block.get("text", "")}


def _to_bedrock(rec: dict[str, Any]) -> dict[str, Any]:
    msgs = _chat(rec)
    if rec.get("tools"):
        raise _unsupported("tools: the Bedrock conversation training format holds text turns only")
    out: dict[str, Any] = {"schemaVersion": BEDROCK_SCHEMA}
    messages: list[dict[str, Any]] = []
    for i, m in enumerate(msgs):
        role = m.get("role")
        where = f"messages[{i}]"
        if role == "system":
            _check_plain(m, i, {"role", "content"})
            if messages or "system" in out:
                raise _lossy(f"{where}: Bedrock holds the system prompt once, before the turns")
            out["system"] = [{"text": t} for t in _texts(m.get("content"), where)]
        elif role in ("user", "assistant"):
            _check_plain(m, i, {"role", "content", "weight"})
            messages.append({"role": role, "content": _bedrock_blocks(m.get("content"), where)})
        else:
            raise _unsupported(f"{where}.role {role!r}: Bedrock turns are user or assistant")
    out["messages"] = messages
    return out


# --- back to canonical --------------------------------------------------------------------


def from_shape(shape: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The canonical record of an object written in `shape` (the inverse of `to_shape`)."""
    if shape in ("chat", "trl_conversational"):
        return {"kind": "chat", **obj}
    if shape == "prompt_completion":
        return {"kind": "prompt_completion", **obj}
    if shape == "trl_prompt_completion":
        if isinstance(obj.get("prompt"), list):
            return {"kind": "chat", "messages": [*obj["prompt"], *obj["completion"]]}
        return {"kind": "prompt_completion", **obj}
    if shape == "trl_preference":
        from pipeline.source_shapes import apply

        return apply("trl_preference", obj)
    if shape == "preference":
        return {"kind": "preference", **obj}
    if shape == "vertex":
        return from_vertex(obj)
    if shape == "bedrock":
        return from_bedrock(obj)
    raise AssertionError(f"unknown shape {shape!r}")


def from_vertex(obj: dict[str, Any]) -> dict[str, Any]:
    """A Vertex Gemini line as a canonical chat record (tool call ids are numbered call_N)."""
    msgs: list[dict[str, Any]] = []
    system = obj.get("systemInstruction") or obj.get("system_instruction")
    if system:
        msgs.append(
            {
                "role": "system",
                "content": _content_from_texts(
                    [p.get("text", "") for p in system.get("parts", [])]
                ),
            }
        )
    pending: list[str] = []
    n = 0
    for turn in obj.get("contents", []):
        parts = turn.get("parts", [])
        responses = [p["functionResponse"] for p in parts if "functionResponse" in p]
        if responses:
            for resp in responses:
                call_id = pending.pop(0) if pending else f"call_{n}"
                body = resp.get("response")
                content = (
                    body["output"]
                    if isinstance(body, dict)
                    and set(body) == {"output"}
                    and isinstance(body["output"], str)
                    else orjson.dumps(body).decode()
                )
                msgs.append({"role": "tool", "tool_call_id": call_id, "content": content})
            continue
        texts = [p["text"] for p in parts if "text" in p]
        role = "assistant" if turn.get("role") == "model" else "user"
        m: dict[str, Any] = {"role": role}
        files = [p["fileData"] for p in parts if "fileData" in p]
        if files:  # images (and other files) as parts, in the order of the turn
            m["content"] = [
                {"type": "text", "text": p["text"]}
                if "text" in p
                else {"type": "image_url", "image_url": {"url": p["fileData"].get("fileUri")}}
                for p in parts
                if "text" in p or "fileData" in p
            ]
        elif texts:
            m["content"] = _content_from_texts(texts)
        calls = [p["functionCall"] for p in parts if "functionCall" in p]
        if calls:
            m["tool_calls"] = []
            for call in calls:
                call_id = f"call_{n}"
                n += 1
                pending.append(call_id)
                m["tool_calls"].append(
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {
                            "name": call.get("name"),
                            "arguments": orjson.dumps(call.get("args")).decode(),
                        },
                    }
                )
        msgs.append(m)
    rec: dict[str, Any] = {"kind": "chat", "messages": msgs}
    decls = [d for t in obj.get("tools", []) for d in t.get("functionDeclarations", [])]
    if decls:
        rec["tools"] = [{"type": "function", "function": d} for d in decls]
    return rec


def from_bedrock(obj: dict[str, Any]) -> dict[str, Any]:
    """A Bedrock Converse training line as a canonical chat record."""
    msgs: list[dict[str, Any]] = []
    if obj.get("system"):
        msgs.append(
            {
                "role": "system",
                "content": _content_from_texts([p.get("text", "") for p in obj["system"]]),
            }
        )
    for m in obj.get("messages", []):
        parts = [_from_bedrock_block(p) for p in m.get("content", [])]
        if any(p["type"] != "text" for p in parts):
            content: Any = parts
        else:
            content = _content_from_texts([p["text"] for p in parts])
        msgs.append({"role": m.get("role"), "content": content})
    return {"kind": "chat", "messages": msgs}
