"""validate_schema: check every record against what the target accepts, one pass, every problem.

The target is the stage's `target` (default: the run's `target:`); without one the records are
checked against the generic OpenAI chat rules (OpenAI's fine-tuning input schema:
roles system/user/assistant/tool/function, OpenAI message keys, text/image_url/refusal parts,
images up to 10 per example and 10 MB, tool-call `arguments` as a JSON string). docs/validation.md
lists the checks per target.

A record can have several problems. It is rejected with the code of the FIRST problem (top-level
keys, then tools/functions, then the messages in order, then cross-message checks); the message
lists every problem as `[code] path: what is wrong and what to change`, where the path is the
JSON path of the field (`messages[3].tool_calls[0].function.arguments`).

Reason codes (rejected):
- `format_unsupported`: the record's kind (chat, prompt_completion, preference, kto) is not a
  format the target takes, or a line in another schema of the same service (a Vertex target
  given the older `messages` shape);
- `schema_version_missing`: a Bedrock conversation line without `schemaVersion`;
- `top_level_key_unknown`: a top-level key the target does not take (e.g. a top-level `weight`
  for OpenAI; `tools` for a target without tools);
- `tools_invalid`, `functions_invalid`: `tools` / `functions` / `parallel_tool_calls` malformed;
- `function_name_invalid`: a tool or function name outside `^[a-zA-Z0-9_-]{1,64}$`;
- `messages_not_list`: `messages` missing, null, empty or not a list;
- `message_not_object`: a message is not an object;
- `message_missing_key`: `role`, or a key the role needs (`content`; `tool_call_id` on tool;
  `name` on function), is absent;
- `message_unknown_key`: a message key the target does not take for that role;
- `role_unknown`: a role the target does not take (e.g. `developer` for OpenAI SFT);
- `role_order`: the target's role-order rule is broken (Bedrock: user first, alternating,
  assistant last; Together, Fireworks, ShareGPT, Vertex rules; a system message after the start
  where the system prompt lives outside the messages);
- `content_missing`: content null or absent where it is needed (an assistant message with no
  content, tool call or function call);
- `content_empty`: an empty or whitespace-only text (message content, completion);
- `content_invalid`: content is neither text nor a non-empty list of parts;
- `content_part_invalid`: a content part is not `{type, ...}` with the fields its type needs;
- `content_type_unsupported`: a part type the target or the role does not take;
- `image_unsupported`, `image_not_user`, `too_many_images`, `image_too_large`, `image_invalid`:
  images on a target without vision, on a non-user message, more than the target allows per
  example, a data URL past the size limit, or not an http(s)/data URL of JPEG/PNG/WEBP;
- `name_invalid`: a message `name` that is not `^[a-zA-Z0-9_-]{1,64}$`;
- `tool_call_invalid`: `tool_calls` not a list of `{id, type: function, function: {name,
  arguments}}`, or a repeated id;
- `function_call_invalid`: a legacy `function_call` that is not `{name, arguments}`;
- `arguments_invalid`: tool/function-call `arguments` not a JSON string of an object (an object is
  an error for OpenAI, Azure, Fireworks, Together and Mistral, which take a JSON-encoded string);
- `function_unknown`: a call names a function that `tools` / `functions` does not define;
- `tool_response_orphan`: a `tool` message whose `tool_call_id` answers no earlier tool call;
- `weight_invalid`: an assistant `weight` other than 0 or 1;
- `assistant_missing`: a chat record without an assistant message (nothing to train on);
- `prompt_invalid`, `completion_invalid`: prompt / completion is not text;
- `input_invalid`: a preference `input` that is not `{messages: [...], tools?,
  parallel_tool_calls?}`;
- `preference_output_invalid`: `preferred_output` / `non_preferred_output` not a list of exactly
  one assistant message with text content.

Warning codes (kept): `user_missing` (a chat with no user message, as the cookbook reports it),
`weights_all_zero` (every assistant message has weight 0: the example trains on nothing),
`special_token_in_text` (`<|endoftext|>` and other `<|...|>` strings inside text),
`tool_definitions_missing` (tool or function calls without any `tools`/`functions` to check them
against), `preference_identical` (preferred and non-preferred outputs are the same),
`top_level_key_ignored` (with `extra_keys: warn`).

Change counted (the report's fixes): `top_level_key_dropped`, one per extra top-level key of a
kept record that the output leaves out (`extra_keys: drop`, the default).
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import orjson

from pipeline.configdoc import doc
from pipeline.records import FIELDS_BY_KIND, count_change, drop_where, warn
from pipeline.registry import Changes, register
from pipeline.shape_detect import detect_shape
from pipeline.targets import TargetProfile, get_target

if TYPE_CHECKING:  # pandas only in the stage: `ftprep check` calls `findings` on plain dicts
    import pandas as pd

FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
SPECIAL_TOKEN = re.compile(r"<\|[A-Za-z0-9_]{1,40}\|>")
_DATA_URL = re.compile(r"^data:([^;,]*)(;base64)?,", re.S)
_IMAGE_MIMES = frozenset({"image/jpeg", "image/jpg", "image/png", "image/webp"})
_SPREADSHEETS = frozenset({".csv", ".tsv", ".xlsx"})
_MAX_LISTED = 20

# The generic OpenAI chat fine-tuning rules (OpenAI's chat and preference fine-tuning schemas), used without a target and
# for the per-message keys of targets whose records are not OpenAI-shaped (Vertex, Bedrock, ShareGPT).
_GENERIC_MESSAGE_KEYS: dict[str, frozenset[str]] = {
    "system": frozenset({"role", "content", "name"}),
    "user": frozenset({"role", "content", "name"}),
    "assistant": frozenset(
        {"role", "content", "name", "refusal", "weight", "audio", "tool_calls", "function_call"}
    ),
    "tool": frozenset({"role", "content", "tool_call_id"}),
    "function": frozenset({"role", "content", "name"}),
}
_GENERIC_TOP_LEVEL: dict[str, frozenset[str]] = {
    "chat": frozenset({"messages", "tools", "parallel_tool_calls", "functions"}),
    "prompt_completion": frozenset({"prompt", "completion"}),
    "preference": frozenset({"input", "preferred_output", "non_preferred_output"}),
}
# Target formats a canonical record of each kind can be written as.
_FORMATS_FOR_KIND: dict[str, tuple[str, ...]] = {
    "chat": ("chat", "rft", "bedrock_conversation", "vertex", "sharegpt"),
    "prompt_completion": ("prompt_completion", "alpaca"),
    "preference": ("preference",),
}
# Target vocabularies -> canonical (OpenAI) names.
_ROLE_ALIASES = {
    "human": "user",
    "gpt": "assistant",
    "model": "assistant",
    "observation": "tool",
    "function_call": "assistant",
}
_PART_ALIASES = {"image": "image_url", "fileData": "image_url"}
# Providers whose tool-call `arguments` are a JSON-encoded string (each provider's fine-tuning data docs); Vertex
# (`args`) and the open-source trainers' templates take an object.
_STRING_ARGUMENTS = frozenset({"openai", "azure", "fireworks", "together", "mistral"})
# Where each provider's images may come from (docs/validation.md cites each): OpenAI and Azure
# take "HTTP URLs or data URLs containing Base64-encoded images"; Together and Fireworks take
# "base64 data URIs only"; Vertex takes fileData with "a gs:// or public http(s) URI"; Bedrock
# takes images "only as S3 references".
_IMAGE_SCHEMES: dict[str, tuple[str, ...]] = {
    "together": ("data:",),
    "fireworks": ("data:",),
    "vertex": ("http://", "https://", "gs://"),
    "bedrock": ("s3://",),
}
_DEFAULT_IMAGE_SCHEMES = ("http://", "https://", "data:")
_SCHEME_WORDS = {
    "data:": "base64 data URLs (data:image/png;base64,...)",
    "http://": "http(s) URLs",
    "https://": "",
    "gs://": "gs:// URIs",
    "s3://": "S3 URIs (s3://bucket/key)",
}
_DETAILS = ("low", "high", "auto")  # "detail": "low"|"high"|"auto" (vision fine-tuning guide)
# Roles of a trainer profile that lists none: the chat-template roles (TRL's conversational
# datasets use system, user and assistant; tool results with a tool role).
_TEMPLATE_ROLES = frozenset({"system", "user", "assistant", "tool"})
# How each service's own format writes a text, for advice in its terms.
_TEXT_ADVICE = {
    "bedrock_conversation": "write the answer as content: [{\"text\": \"...\"}]",
    "vertex": "write the text as parts: [{\"text\": \"...\"}]",
}
_INPUT_KEYS = frozenset({"messages", "tools", "parallel_tool_calls"})
_KEY_HINTS = {
    "loss_weight": "OpenAI calls it `weight` (0 or 1)",
    "from": "a ShareGPT turn: map it with the sharegpt shape (`conversations`)",
    "value": "a ShareGPT turn: map it with the sharegpt shape (`conversations`)",
}


@dataclass(frozen=True)
class ValidateSchemaConfig:
    target: str | None = doc(
        "Target profile to validate against; defaults to the run's `target:`. Without either, "
        "the generic OpenAI chat fine-tuning rules apply (docs/validation.md).",
        None,
    )
    extra_keys: Literal["drop", "reject", "warn", "ignore"] = doc(
        "What to do with top-level keys of a JSON/JSONL source record that the target does not "
        "take (an `id`, a `source`, ...). ftprep writes only the canonical fields, so the output "
        "never carries them: `drop` keeps the record and counts each key in the report's "
        "changes (`top_level_key_dropped`), except a top-level `weight`, which belongs on "
        "assistant messages and is rejected; `warn` keeps it with a warning "
        "(`top_level_key_ignored`); `reject` rejects it (`top_level_key_unknown`), as the "
        "service would refuse the file as it is (`ftprep check` always reports them); "
        "`ignore` says nothing.",
        "drop",
    )


@dataclass(frozen=True)
class Rules:
    """A target profile turned into the checks, in canonical (OpenAI) vocabulary."""

    name: str
    formats: tuple[str, ...]
    format_for_kind: dict[str, str]
    roles: frozenset[str]
    message_keys: dict[str, frozenset[str]]
    role_order: str | None
    system_outside: bool  # the system prompt is a separate field (Bedrock, Vertex)
    part_types: frozenset[str]
    vision: bool
    max_images: int | None
    max_image_bytes: int | None
    top_level: dict[str, frozenset[str] | None]  # format -> keys (None: any)
    arguments_as_string: bool  # OpenAI/Azure: tool-call arguments must be a JSON string
    needs_assistant: bool
    image_schemes: tuple[str, ...] = _DEFAULT_IMAGE_SCHEMES
    chat_format: str | None = "chat"


def generic_rules() -> Rules:
    return Rules(
        name="generic OpenAI chat rules",
        formats=("chat", "prompt_completion", "preference"),
        format_for_kind={"chat": "chat", "prompt_completion": "prompt_completion",
                         "preference": "preference"},
        roles=frozenset(_GENERIC_MESSAGE_KEYS),
        message_keys=dict(_GENERIC_MESSAGE_KEYS),
        role_order=None,
        system_outside=False,
        part_types=frozenset({"text", "image_url", "refusal"}),
        vision=True,
        max_images=10,
        max_image_bytes=10 * 1024 * 1024,
        top_level=dict(_GENERIC_TOP_LEVEL),
        arguments_as_string=True,
        needs_assistant=True,
    )


def rules_for_profile(p: TargetProfile) -> Rules:
    format_for_kind = {}
    for kind, fmts in _FORMATS_FOR_KIND.items():
        for f in fmts:
            if f in p.formats:
                format_for_kind[kind] = f
                break
    if p.provider == "trl" and "prompt_completion" in p.formats:
        # TRL's conversational prompt-completion ({prompt: [messages], completion: [messages]})
        # is read as a chat: "prompt-completion ... (standard or conversational lists)"
        format_for_kind.setdefault("chat", "prompt_completion")
    chat_fmt = format_for_kind.get("chat")
    system_outside = chat_fmt in ("bedrock_conversation", "vertex")
    roles = {_ROLE_ALIASES.get(r, r) for r in (p.roles or ())} if p.roles else set(_TEMPLATE_ROLES)
    content_types = set(p.content_types or ("text",))
    if system_outside:
        roles.add("system")
    if chat_fmt == "vertex" and "functionResponse" in content_types:
        roles.add("tool")
    if chat_fmt in ("chat", "rft") and p.allowed_message_keys is not None:
        message_keys = {r: frozenset(k) for r, k in p.allowed_message_keys.items()}
    else:
        message_keys = {r: _GENERIC_MESSAGE_KEYS.get(r, frozenset({"role", "content"}))
                        for r in roles}
    top_level: dict[str, frozenset[str] | None] = {f: p.top_level_keys(f) for f in p.formats}
    return Rules(
        name=p.name,
        formats=p.formats,
        format_for_kind=format_for_kind,
        roles=frozenset(roles),
        message_keys=message_keys,
        role_order=p.role_order,
        system_outside=system_outside,
        part_types=frozenset(_PART_ALIASES.get(t, t) for t in content_types),
        vision=p.vision.supported,
        max_images=p.vision.max_images_per_example,
        max_image_bytes=p.vision.max_image_bytes,
        top_level=top_level,
        arguments_as_string=p.provider in _STRING_ARGUMENTS,
        needs_assistant=chat_fmt != "rft",
        image_schemes=_IMAGE_SCHEMES.get(p.provider, _DEFAULT_IMAGE_SCHEMES),
        chat_format=chat_fmt,
    )


@functools.lru_cache(maxsize=32)
def rules_for(target: str | None) -> Rules:
    return generic_rules() if target is None else rules_for_profile(get_target(target))


@functools.lru_cache(maxsize=256)
def _spreadsheet(source: str) -> bool:
    return PurePath(source).suffix.lower() in _SPREADSHEETS


@functools.lru_cache(maxsize=1024)
def _shape_of(keys: tuple[str, ...]) -> Any:
    """`detect_shape` of a record's keys (records of a file share a few key sets)."""
    return detect_shape(list(keys))


def _tname(v: Any) -> str:
    if v is None:
        return "null"
    return {str: "text", bool: "true/false", int: "a number", float: "a number",
            list: "a list", dict: "an object"}.get(type(v), type(v).__name__)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


@dataclass
class _Ctx:
    """What one record's checks collect."""

    problems: list[tuple[str, str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str, str]] = field(default_factory=list)
    tool_names: frozenset[str] | None = None
    function_names: frozenset[str] | None = None
    call_ids: set[str] = field(default_factory=set)
    answered: set[str] = field(default_factory=set)
    images: int = 0
    text_only: bool = False  # preference (DPO): text only
    undefined_call: bool = False
    dropped: list[str] = field(default_factory=list)  # extra top-level keys, `extra_keys: drop`

    def bad(self, code: str, path: str, text: str) -> None:
        self.problems.append((code, path, text))

    def note(self, code: str, path: str, text: str) -> None:
        self.warnings.append((code, path, text))


# The message keys `Validator.clean` proves clean without the full rules, per role: text
# content, a name and (assistant) a weight. Anything else (calls, parts, tool messages) takes
# the full rules.
_PLAIN_KEYS = {
    "system": frozenset({"role", "content", "name"}),
    "user": frozenset({"role", "content", "name"}),
    "assistant": frozenset({"role", "content", "name", "weight"}),
}


def _plain_tables(
    r: Rules,
) -> dict[str, tuple[frozenset[str] | None, dict[str, frozenset[str]]]]:
    """Per record kind `Validator.clean` can prove clean: the top-level keys of a source record
    that raise nothing (None: not looked at) and, per role, the message keys it handles (those
    the target takes and `_PLAIN_KEYS` lists). A kind, format or role left out takes the full
    rules every time."""
    out: dict[str, tuple[frozenset[str] | None, dict[str, frozenset[str]]]] = {}
    for kind in ("chat", "prompt_completion"):
        fmt = r.format_for_kind.get(kind)
        if fmt is None or fmt in ("vertex", "bedrock_conversation"):  # `_wrong_schema`'s formats
            continue
        allowed = r.top_level.get(fmt)
        canonical = FIELDS_BY_KIND[kind]
        extra: frozenset[str] | None = None
        if allowed is not None and canonical[0] in allowed:
            if kind == "prompt_completion" and canonical[1] not in allowed:
                continue
            extra = allowed | frozenset(canonical)
        roles = {
            role: r.message_keys.get(role, frozenset({"role", "content"})) & keys
            for role, keys in _PLAIN_KEYS.items()
            if role in r.roles
        }
        out[kind] = (extra, roles)
    return out


class Validator:
    """The checks for one target; `record()` returns a record's problems and warnings."""

    def __init__(self, rules: Rules, extra_keys: str = "reject") -> None:
        self.r = rules
        self.extra_keys = extra_keys
        self._plain = _plain_tables(rules)

    # --- the common case, without building anything -------------------------------------------

    def clean(self, row: dict[str, Any]) -> bool:
        """True when `record(row)` would find no problem, no warning and no dropped key, proved
        by the cheap tests of the common case (text messages of system, user and assistant; a
        text prompt and completion), without paths or messages. False means "not proved":
        `record` then runs every rule. It never says True where `record` would say anything."""
        kind = row.get("kind")
        plain = self._plain.get(kind) if type(kind) is str else None
        if plain is None:
            return False
        extra, role_keys = plain
        rec = row.get("_record")
        if extra is not None and isinstance(rec, dict) and not extra.issuperset(rec):
            return False  # a key the target does not take: said, dropped or warned about
        if kind == "prompt_completion":
            prompt, completion = row.get("prompt"), row.get("completion")
            return (
                type(prompt) is str and "<|" not in prompt
                and type(completion) is str and "<|" not in completion
                and completion != "" and not completion.isspace()
            )
        for key in ("tools", "functions", "parallel_tool_calls"):
            if not _missing(row.get(key)):
                return False
        msgs = row.get("messages")
        if type(msgs) is not list or not msgs:
            return False
        roles: list[str] = []
        user = assistant = trains = False
        for m in msgs:
            if type(m) is not dict:
                return False
            role = m.get("role")
            keys = role_keys.get(role) if type(role) is str else None
            if keys is None or not keys.issuperset(m):
                return False
            content = m.get("content")
            if type(content) is not str or content == "" or content.isspace() or "<|" in content:
                return False
            if "name" in m:
                name = m["name"]
                if not isinstance(name, str) or not FUNCTION_NAME.match(name):
                    return False
            if role == "assistant":
                assistant = True
                w = m.get("weight")
                if "weight" in m and (isinstance(w, bool) or w not in (0, 1)):
                    return False
                trains = trains or not (w == 0 and not isinstance(w, bool))
            elif role == "user":
                user = True
            roles.append(m["role"])  # a str: `role_keys` has only str keys
        if not (assistant and user and trains):
            return False  # assistant_missing, user_missing, weights_all_zero: said by `record`
        if self.r.role_order is not None or self.r.system_outside:
            ctx = _Ctx()
            self._role_order(roles, "messages", ctx)
            if ctx.problems:
                return False
        return True

    # --- records ------------------------------------------------------------------------------

    def record(self, row: dict[str, Any]) -> _Ctx:
        ctx = _Ctx()
        kind = str(row.get("kind"))
        fmt = self.r.format_for_kind.get(kind)
        if fmt is None:
            how = {
                "kto": "; `--to chat --kto desirable` keeps only the desirable examples",
                "preference": "; `--to chat --preference chosen` keeps the chosen answers",
            }.get(kind, "") if "chat" in self.r.format_for_kind else ""
            ctx.bad(
                "format_unsupported",
                "",
                f"a {kind} record, but target {self.r.name} takes {', '.join(self.r.formats)}: "
                f"choose a target that takes it, or convert the data with ftprep convert{how}",
            )
            return ctx
        if self._wrong_schema(row, fmt, ctx):
            return ctx
        self._top_level(row, kind, fmt, ctx)
        if kind == "chat":
            self._chat(row, fmt, ctx)
        elif kind == "prompt_completion":
            self._prompt_completion(row, ctx)
        else:
            self._preference(row, ctx)
        if self.r.max_images is not None and ctx.images > self.r.max_images:
            ctx.bad(
                "too_many_images",
                "messages",
                f"{ctx.images} images; target {self.r.name} takes at most {self.r.max_images} "
                "per example: split the example or drop images",
            )
        return ctx

    def _wrong_schema(self, row: dict[str, Any], fmt: str, ctx: _Ctx) -> bool:
        """A source line in another service's schema, said once in the target's own terms
        (only for a record as read; a converted one is written in the target's shape)."""
        rec = row.get("_record")
        if row.get("_shape") or not isinstance(rec, dict):
            return False
        keys = {str(k).lower() for k in rec}
        if fmt == "vertex" and "messages" in keys and "contents" not in keys:
            # "each conversation example is a contents list of {role: user|model, parts}"
            ctx.bad("format_unsupported", "messages",
                    f"the older `messages` shape; target {self.r.name} takes "
                    "{contents: [{role: user|model, parts: [{text: ...}]}], systemInstruction?}: "
                    "convert it with `ftprep convert FILE --to vertex --out DIR`")
            return True
        if fmt == "bedrock_conversation" and "messages" in keys and "schemaversion" not in keys:
            # "schemaVersion": "bedrock-conversation-2024" opens every Converse training line
            ctx.bad("schema_version_missing", "schemaVersion",
                    f"missing; every line of target {self.r.name} starts with "
                    '"schemaVersion": "bedrock-conversation-2024": add it, or convert the file '
                    "(`ftprep convert FILE --to bedrock --out DIR`)")
        return False

    def _top_level(self, row: dict[str, Any], kind: str, fmt: str, ctx: _Ctx) -> None:
        allowed = self.r.top_level.get(fmt)
        if allowed is None:
            return
        canonical = FIELDS_BY_KIND[kind]
        main = canonical[0]
        if main not in allowed:  # the target's shape has other names: a converter writes it
            return
        for key in canonical[1:]:
            if not _missing(row.get(key)) and key not in allowed:
                ctx.bad(
                    "top_level_key_unknown",
                    key,
                    f"target {self.r.name} takes no `{key}` (it takes {', '.join(sorted(allowed))})"
                    f": remove it, or choose a target that takes it",
                )
        rec = row.get("_record")
        source = str(row.get("_source") or "")
        if (
            self.extra_keys == "ignore"
            or not isinstance(rec, dict)
            or main not in rec
            or _spreadsheet(source)
        ):
            return
        shape = _shape_of(tuple(str(k) for k in rec))
        if shape is None or shape.shape != kind:  # e.g. Bedrock's schemaVersion + messages
            return
        for key in rec:
            if key in allowed or key in canonical:
                continue
            hint = (
                "a per-message `weight` goes on assistant messages"
                if key == "weight"
                else "`ftprep run` leaves it out of its output"
            )
            text = (
                f"top-level key `{key}` is not taken by target {self.r.name} "
                f"(it takes {', '.join(sorted(allowed))}); remove it ({hint})"
            )
            if self.extra_keys == "reject":
                ctx.bad("top_level_key_unknown", str(key), text)
            elif self.extra_keys == "drop" and key != "weight":  # a misplaced weight: say so
                ctx.dropped.append(str(key))
            elif self.extra_keys == "drop":
                ctx.bad("top_level_key_unknown", str(key), text)
            else:
                ctx.note("top_level_key_ignored", str(key), text)

    # --- chat ---------------------------------------------------------------------------------

    def _chat(self, row: dict[str, Any], fmt: str, ctx: _Ctx) -> None:
        ctx.tool_names = self._tools(row.get("tools"), "tools", ctx)
        ctx.function_names = self._functions(row.get("functions"), "functions", ctx)
        ptc = row.get("parallel_tool_calls")
        if not _missing(ptc) and not isinstance(ptc, bool):
            ctx.bad("tools_invalid", "parallel_tool_calls",
                    f"is {_tname(ptc)}; write true or false")
        msgs = row.get("messages")
        if not isinstance(msgs, list) or not msgs:
            what = "missing" if _missing(msgs) else ("an empty list" if msgs == [] else _tname(msgs))
            ctx.bad("messages_not_list", "messages",
                    f"is {what}; write a non-empty list of {{role, content}} messages")
            return
        roles = self._messages(msgs, "messages", ctx)
        self._after_messages(msgs, roles, "messages", ctx, fmt)

    def _after_messages(
        self, msgs: list[Any], roles: list[str | None], path: str, ctx: _Ctx, fmt: str
    ) -> None:
        known = [r for r in roles if r is not None]
        meant_assistant = any(  # an unknown role whose hint already says "assistant"
            isinstance(m, dict) and _ROLE_ALIASES.get(str(m.get("role"))) == "assistant"
            for m in msgs
        )
        if self.r.needs_assistant and "assistant" not in known and not meant_assistant:
            ctx.bad("assistant_missing", path,
                    "no assistant message: add the assistant's answer (the part that is trained)")
        if known and "user" not in known and len(known) == len(roles):
            ctx.note("user_missing", path,
                     "no user message (the cookbook reports this; the model learns answers "
                     "without questions)")
        weights = [
            m.get("weight")
            for m in msgs
            if isinstance(m, dict) and m.get("role") == "assistant"
        ]
        if weights and all(w == 0 and not isinstance(w, bool) for w in weights):
            ctx.note("weights_all_zero", path,
                     "every assistant message has weight 0: this example trains on nothing")
        if ctx.undefined_call:
            ctx.note("tool_definitions_missing", path,
                     "tool or function calls without `tools`/`functions` to define them: add the "
                     "definitions you will use at inference")
        if len(known) == len(roles):
            self._role_order(known, path, ctx)

    def _role_order(self, roles: list[str], path: str, ctx: _Ctx) -> None:
        rule = self.r.role_order
        start = 0
        while start < len(roles) and roles[start] == "system":
            start += 1
        if self.r.system_outside or rule == "system_first_if_present":
            for i in range(start, len(roles)):
                if roles[i] == "system":
                    ctx.bad("role_order", f"{path}[{i}].role",
                            f"a system message after the start; target {self.r.name} takes the "
                            "system prompt only as the first message: move or merge it")
                    return
        if rule in (None, "system_first_if_present"):
            return
        body = [(i, r) for i, r in enumerate(roles) if i >= start and r != "system"]
        if rule == "sharegpt_human_odd_gpt_even":
            for n, (i, r) in enumerate(body):
                want = ("user", "tool") if n % 2 == 0 else ("assistant",)
                if r not in want:
                    ctx.bad("role_order", f"{path}[{i}].role",
                            f"{r} at turn {n + 1}; ShareGPT wants human/observation at odd turns "
                            "and gpt/function_call at even turns: merge or remove turns")
                    return
            if len(body) % 2:
                ctx.bad("role_order", path,
                        "an odd number of turns; ShareGPT ends with a gpt turn: add the answer")
            return
        # The alternating rules: user and assistant alternate; tool results belong to the
        # assistant's turn (they answer its call), and so does the assistant message that reads
        # them: "assistant with tool_calls -> tool -> assistant" is one turn (Together's and
        # Mistral's function-calling examples).
        turns = []
        after_tool = False
        for i, r in body:
            if r == "tool":
                after_tool = True
                continue
            if not (r == "assistant" and after_tool):
                turns.append((i, r))
            after_tool = False
        if rule == "system_or_user_first_alternating" and roles and roles[0] not in (
            "system", "user"
        ):
            ctx.bad("role_order", f"{path}[0].role",
                    f"starts with {roles[0]}; target {self.r.name} wants system or user first")
            return
        if turns and turns[0][1] != "user":
            i, r = turns[0]
            ctx.bad("role_order", f"{path}[{i}].role",
                    f"the first turn is {r}; target {self.r.name} wants user first")
            return
        for (_, prev), (i, r) in itertools.pairwise(turns):
            if r == prev:
                ctx.bad("role_order", f"{path}[{i}].role",
                        f"two {r} turns in a row; target {self.r.name} wants user and assistant "
                        "to alternate: merge them")
                return
        if rule == "user_first_alternating_assistant_last" and (
            not turns or turns[-1][1] != "assistant"
        ):
            ctx.bad("role_order", path,
                    f"the last turn is not assistant; target {self.r.name} wants the assistant "
                    "last: drop the trailing turn or add the answer")

    def _tools(self, tools: Any, path: str, ctx: _Ctx) -> frozenset[str] | None:
        if _missing(tools):
            return None
        if not isinstance(tools, list):
            ctx.bad("tools_invalid", path,
                    f"is {_tname(tools)}; write a list of {{type: function, function: {{...}}}}")
            return frozenset()
        names = set()
        for i, t in enumerate(tools):
            p = f"{path}[{i}]"
            if not isinstance(t, dict) or t.get("type") != "function" or not isinstance(
                t.get("function"), dict
            ):
                ctx.bad("tools_invalid", p,
                        "write {type: function, function: {name, description, parameters}}")
                continue
            names |= self._function_def(t["function"], f"{p}.function", "tools_invalid", ctx)
        return frozenset(names)

    def _functions(self, fns: Any, path: str, ctx: _Ctx) -> frozenset[str] | None:
        if _missing(fns):
            return None
        if not isinstance(fns, list):
            ctx.bad("functions_invalid", path,
                    f"is {_tname(fns)}; write a list of {{name, description, parameters}}")
            return frozenset()
        names = set()
        for i, f in enumerate(fns):
            p = f"{path}[{i}]"
            if not isinstance(f, dict):
                ctx.bad("functions_invalid", p,
                        f"is {_tname(f)}; write {{name, description, parameters}}")
                continue
            names |= self._function_def(f, p, "functions_invalid", ctx)
        return frozenset(names)

    def _function_def(self, f: dict[str, Any], path: str, code: str, ctx: _Ctx) -> set[str]:
        name = f.get("name")
        if not isinstance(name, str):
            ctx.bad(code, f"{path}.name", f"is {_tname(name)}; every function needs a name")
            return set()
        if not FUNCTION_NAME.match(name):
            ctx.bad("function_name_invalid", f"{path}.name",
                    f"{name!r}: use only a-z, A-Z, 0-9, _ and -, at most 64 characters")
        params = f.get("parameters")
        if not _missing(params) and not isinstance(params, dict):
            ctx.bad(code, f"{path}.parameters",
                    f"is {_tname(params)}; write a JSON Schema object")
        desc = f.get("description")
        if not _missing(desc) and not isinstance(desc, str):
            ctx.bad(code, f"{path}.description", f"is {_tname(desc)}; write text")
        return {name}

    def _messages(self, msgs: list[Any], path: str, ctx: _Ctx) -> list[str | None]:
        return [self._message(m, f"{path}[{i}]", ctx) for i, m in enumerate(msgs)]

    def _message(self, m: Any, path: str, ctx: _Ctx) -> str | None:
        """Check one message; returns its role when the role is valid."""
        if not isinstance(m, dict):
            ctx.bad("message_not_object", path,
                    f"is {_tname(m)}; a message is an object {{role, content}}")
            return None
        if "role" not in m:
            ctx.bad("message_missing_key", f"{path}.role",
                    "missing; add role (" + ", ".join(sorted(self.r.roles)) + ")")
            return None
        role = m["role"]
        if not isinstance(role, str) or role not in self.r.roles:
            hint = "; OpenAI SFT has no developer role: use system" if role == "developer" else ""
            if isinstance(role, str) and role in _ROLE_ALIASES:
                hint = f"; did you mean {_ROLE_ALIASES[role]}?"
            ctx.bad("role_unknown", f"{path}.role",
                    f"{role!r} is not a role target {self.r.name} takes "
                    f"({', '.join(sorted(self.r.roles))}){hint}")
            return None
        allowed = self.r.message_keys.get(role, frozenset({"role", "content"}))
        for key in m:
            if key not in allowed:
                hint = _KEY_HINTS.get(str(key), "remove it")
                ctx.bad("message_unknown_key", f"{path}.{key}",
                        f"`{role}` messages of target {self.r.name} take only "
                        f"{', '.join(sorted(allowed))}: {hint}")
        has_call = role == "assistant" and (
            not _missing(m.get("tool_calls")) or not _missing(m.get("function_call"))
        )
        if role != "assistant" and "content" not in m:
            ctx.bad("message_missing_key", f"{path}.content", f"missing; a {role} message needs content")
        else:
            self._content(m.get("content"), f"{path}.content", role, has_call, ctx)
        if role == "tool":
            self._tool_response(m, path, ctx)
        if role == "function" and "name" not in m:
            ctx.bad("message_missing_key", f"{path}.name",
                    "missing; a function message names the function it answers")
        name = m.get("name")
        if "name" in m and (not isinstance(name, str) or not FUNCTION_NAME.match(name)):
            ctx.bad("name_invalid", f"{path}.name",
                    f"{name!r}: use only a-z, A-Z, 0-9, _ and -, at most 64 characters")
        if role == "assistant":
            self._assistant(m, path, ctx)
        return role

    def _assistant(self, m: dict[str, Any], path: str, ctx: _Ctx) -> None:
        if "weight" in m:
            w = m["weight"]
            if isinstance(w, bool) or w not in (0, 1):
                ctx.bad("weight_invalid", f"{path}.weight",
                        f"is {w!r}; weight is 0 (do not train on this message) or 1")
        if "tool_calls" in m and "tool_calls" in self.r.message_keys.get("assistant", ()):
            self._tool_calls(m["tool_calls"], f"{path}.tool_calls", ctx)
        if "function_call" in m and "function_call" in self.r.message_keys.get("assistant", ()):
            self._function_call(m["function_call"], f"{path}.function_call", ctx)
        if "refusal" in m and not _missing(m["refusal"]) and not isinstance(m["refusal"], str):
            ctx.bad("content_invalid", f"{path}.refusal", f"is {_tname(m['refusal'])}; write text")

    def _tool_calls(self, calls: Any, path: str, ctx: _Ctx) -> None:
        if _missing(calls):
            return
        if not isinstance(calls, list) or not calls:
            ctx.bad("tool_call_invalid", path,
                    f"is {_tname(calls) if calls != [] else 'an empty list'}; write a list of "
                    "{id, type: function, function: {name, arguments}}")
            return
        for i, c in enumerate(calls):
            p = f"{path}[{i}]"
            if not isinstance(c, dict):
                ctx.bad("tool_call_invalid", p,
                        f"is {_tname(c)}; write {{id, type: function, function: {{name, arguments}}}}")
                continue
            cid = c.get("id")
            if not isinstance(cid, str) or not cid:
                ctx.bad("tool_call_invalid", f"{p}.id",
                        f"is {_tname(cid) if cid != '' else 'empty'}; every tool call needs an id "
                        "that its tool message repeats as tool_call_id")
            elif cid in ctx.call_ids:
                ctx.bad("tool_call_invalid", f"{p}.id", f"{cid!r} is used twice; ids must be unique")
            else:
                ctx.call_ids.add(cid)
            if c.get("type") != "function":
                ctx.bad("tool_call_invalid", f"{p}.type", f"is {c.get('type')!r}; write \"function\"")
            fn = c.get("function")
            if not isinstance(fn, dict):
                ctx.bad("tool_call_invalid", f"{p}.function",
                        f"is {_tname(fn)}; write {{name, arguments}}")
                continue
            self._call(fn, f"{p}.function", ctx.tool_names, "tools", ctx, "tool_call_invalid")

    def _function_call(self, fc: Any, path: str, ctx: _Ctx) -> None:
        if _missing(fc):
            return
        if not isinstance(fc, dict):
            ctx.bad("function_call_invalid", path, f"is {_tname(fc)}; write {{name, arguments}}")
            return
        self._call(fc, path, ctx.function_names, "functions", ctx, "function_call_invalid")

    def _call(
        self,
        fn: dict[str, Any],
        path: str,
        defined: frozenset[str] | None,
        where: str,
        ctx: _Ctx,
        code: str,
    ) -> None:
        name = fn.get("name")
        if not isinstance(name, str):
            ctx.bad(code, f"{path}.name", f"is {_tname(name)}; name the function called")
        elif not FUNCTION_NAME.match(name):
            ctx.bad("function_name_invalid", f"{path}.name",
                    f"{name!r}: use only a-z, A-Z, 0-9, _ and -, at most 64 characters")
        elif defined is None or not defined:
            ctx.undefined_call = True
        elif name not in defined:
            ctx.bad("function_unknown", f"{path}.name",
                    f"{name!r} is not defined in `{where}` ({', '.join(sorted(defined))}): "
                    "add its definition or fix the name")
        if "arguments" not in fn:
            ctx.bad(code, f"{path}.arguments", "missing; write the arguments as a JSON string")
            return
        args = fn["arguments"]
        if isinstance(args, dict):
            if self.r.arguments_as_string:
                ctx.bad("arguments_invalid", f"{path}.arguments",
                        f"is an object; target {self.r.name} takes a JSON-encoded string: "
                        "write json.dumps(arguments)")
            return
        if not isinstance(args, str):
            ctx.bad("arguments_invalid", f"{path}.arguments",
                    f"is {_tname(args)}; write a JSON string of an object, e.g. \"{{}}\"")
            return
        try:
            parsed = orjson.loads(args)
        except orjson.JSONDecodeError as exc:
            ctx.bad("arguments_invalid", f"{path}.arguments",
                    f"is not valid JSON ({exc}); write a JSON string of an object")
            return
        if not isinstance(parsed, dict):
            ctx.bad("arguments_invalid", f"{path}.arguments",
                    f"is JSON {_tname(parsed)}; arguments are a JSON object, e.g. \"{{}}\"")

    def _tool_response(self, m: dict[str, Any], path: str, ctx: _Ctx) -> None:
        if "tool_call_id" not in m:
            ctx.bad("message_missing_key", f"{path}.tool_call_id",
                    "missing; a tool message repeats the id of the tool call it answers")
            return
        tid = m["tool_call_id"]
        if not isinstance(tid, str) or tid not in ctx.call_ids or tid in ctx.answered:
            ctx.bad("tool_response_orphan", f"{path}.tool_call_id",
                    f"{tid!r} answers no earlier tool call"
                    + (" (it is answered twice)" if tid in ctx.answered else "")
                    + ": a tool message must follow the assistant message whose tool_calls "
                    "hold this id; fix the id or the order of the messages")
            return
        ctx.answered.add(tid)

    # --- content ------------------------------------------------------------------------------

    def _text(self, s: str, path: str, ctx: _Ctx) -> None:
        found = SPECIAL_TOKEN.search(s)
        if found:
            ctx.note("special_token_in_text", path,
                     f"contains the special-token string {found.group(0)!r}: tokenizers may "
                     "treat it as a control token; remove it unless you mean it")

    def _content(self, content: Any, path: str, role: str, has_call: bool, ctx: _Ctx) -> None:
        if _missing(content):
            if has_call or role == "function":
                return
            ctx.bad("content_missing", path,
                    f"is null; a {role} message needs text"
                    + (" (or tool_calls / function_call)" if role == "assistant" else ""))
            return
        advice = _TEXT_ADVICE.get(str(self.r.chat_format))
        if isinstance(content, str):
            if not content.strip() and not has_call:
                what = f"an empty {role} message" if advice else (
                    f"is {'empty' if not content else 'only whitespace'}")
                ctx.bad("content_empty", path,
                        f"{what}: {advice or 'write the text'}, or remove the message")
            self._text(content, path, ctx)
            return
        if advice and content == []:
            ctx.bad("content_empty", path, f"an empty {role} message: {advice}")
            return
        if not isinstance(content, list) or not content:
            ctx.bad("content_invalid", path,
                    f"is {_tname(content) if content != [] else 'an empty list'}; write text or "
                    "a list of parts [{type: text, text: ...}]")
            return
        if role == "function":
            ctx.bad("content_invalid", path, "a function message's content is text, not parts")
            return
        blank = True
        for i, part in enumerate(content):
            blank = self._part(part, f"{path}[{i}]", role, ctx) and blank
        if blank and not has_call:
            ctx.bad("content_empty", path, "every text part is empty: write the text")

    def _part(self, part: Any, path: str, role: str, ctx: _Ctx) -> bool:
        """Check a content part; returns True when it is a blank text part."""
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            ctx.bad("content_part_invalid", path,
                    f"is {_tname(part)}{' without a type' if isinstance(part, dict) else ''}; "
                    "write {type: text, text: ...}")
            return False
        ptype = part["type"]
        if ptype == "text":
            text = part.get("text")
            if not isinstance(text, str):
                hint = " (it has `value`: rename it to `text`)" if "value" in part else ""
                ctx.bad("content_part_invalid", f"{path}.text",
                        f"is {_tname(text)}; a text part is {{type: text, text: ...}}{hint}")
                return False
            self._text(text, f"{path}.text", ctx)
            return not text.strip()
        if ptype == "image_url":
            self._image(part, path, role, ctx)
            return False
        if ptype not in self.r.part_types or ctx.text_only:
            ctx.bad("content_type_unsupported", f"{path}.type",
                    f"{ptype!r} parts are not taken by target {self.r.name}"
                    + (" in preference data (text only)" if ctx.text_only else "")
                    + f" (it takes {', '.join(sorted(self.r.part_types))}): remove the part")
            return False
        if ptype == "refusal":
            if role != "assistant":
                ctx.bad("content_type_unsupported", f"{path}.type",
                        f"a refusal part in a {role} message; only assistant messages refuse")
            elif not isinstance(part.get("refusal"), str):
                ctx.bad("content_part_invalid", f"{path}.refusal",
                        "a refusal part is {type: refusal, refusal: ...}")
        return False

    def _image(self, part: dict[str, Any], path: str, role: str, ctx: _Ctx) -> None:
        ctx.images += 1
        if ctx.text_only:
            ctx.bad("content_type_unsupported", f"{path}.type",
                    "an image in preference data: DPO takes text only; remove it")
            return
        if not self.r.vision or "image_url" not in self.r.part_types:
            ctx.bad("image_unsupported", f"{path}.type",
                    f"an image, but target {self.r.name} has no vision fine-tuning: remove it or "
                    "choose a vision target (e.g. openai:gpt-4o-2024-08-06)")
            return
        if role != "user":
            ctx.bad("image_not_user", f"{path}.type",
                    f"an image in a {role} message; images go only in user messages")
            return
        img = part.get("image_url")
        url = img.get("url") if isinstance(img, dict) else None
        if not isinstance(url, str):
            ctx.bad("content_part_invalid", f"{path}.image_url",
                    "an image part is {type: image_url, image_url: {url: ...}}")
            return
        detail = img.get("detail") if isinstance(img, dict) else None
        if detail is not None and detail not in _DETAILS:
            # "detail": "low" | "high" | "auto" (OpenAI vision fine-tuning guide)
            ctx.bad("image_invalid", f"{path}.image_url.detail",
                    f"is {detail!r}; detail is low, high or auto")
        schemes = self.r.image_schemes
        if not url.startswith(schemes):
            takes = ", ".join(w for w in (_SCHEME_WORDS.get(x, x) for x in schemes) if w)
            ctx.bad("image_invalid", f"{path}.image_url.url",
                    f"{url[:40]!r}: target {self.r.name} takes images only as {takes}"
                    + (": embed the image as base64" if schemes == ("data:",) else ""))
            return
        if not url.startswith("data:"):
            return
        match = _DATA_URL.match(url)
        if match is None or not match.group(2):
            ctx.bad("image_invalid", f"{path}.image_url.url",
                    "is neither an http(s) URL nor a base64 data URL (data:image/png;base64,...)")
            return
        mime = match.group(1).lower()
        if mime not in _IMAGE_MIMES:
            ctx.bad("image_invalid", f"{path}.image_url.url",
                    f"{mime or 'no type'}: images are JPEG, PNG or WEBP")
        payload = url[match.end():].rstrip()
        size = len(payload) * 3 // 4 - payload[-2:].count("=")
        if self.r.max_image_bytes is not None and size > self.r.max_image_bytes:
            ctx.bad("image_too_large", f"{path}.image_url.url",
                    f"about {size:,} bytes; target {self.r.name} takes at most "
                    f"{self.r.max_image_bytes:,} per image: resize or recompress it")

    # --- prompt/completion and preference -------------------------------------------------------

    def _prompt_completion(self, row: dict[str, Any], ctx: _Ctx) -> None:
        prompt, completion = row.get("prompt"), row.get("completion")
        if not isinstance(prompt, str):
            ctx.bad("prompt_invalid", "prompt",
                    f"is {_tname(prompt)}; write text (an empty prompt is allowed)")
        else:
            self._text(prompt, "prompt", ctx)
        if not isinstance(completion, str):
            ctx.bad("completion_invalid", "completion", f"is {_tname(completion)}; write text")
        elif not completion.strip():
            ctx.bad("content_empty", "completion",
                    f"is {'empty' if not completion else 'only whitespace'}: nothing to train on")
        else:
            self._text(completion, "completion", ctx)

    def _preference(self, row: dict[str, Any], ctx: _Ctx) -> None:
        ctx.text_only = True
        inp = row.get("input")
        if not isinstance(inp, dict):
            ctx.bad("input_invalid", "input",
                    f"is {_tname(inp)}; write {{messages: [...], tools?, parallel_tool_calls?}}")
        else:
            for key in inp:
                if key not in _INPUT_KEYS:
                    ctx.bad("input_invalid", f"input.{key}",
                            "unknown key; input takes messages, tools, parallel_tool_calls")
            ctx.tool_names = self._tools(inp.get("tools"), "input.tools", ctx)
            msgs = inp.get("messages")
            if not isinstance(msgs, list) or not msgs:
                ctx.bad("input_invalid", "input.messages",
                        f"is {_tname(msgs) if msgs != [] else 'an empty list'}; write the "
                        "conversation before the answer as a non-empty list of messages")
            else:
                self._messages(msgs, "input.messages", ctx)
        outputs = []
        for name in ("preferred_output", "non_preferred_output"):
            out = row.get(name)
            if not isinstance(out, list) or len(out) != 1:
                n = f"{len(out)} messages" if isinstance(out, list) else _tname(out)
                ctx.bad("preference_output_invalid", name,
                        f"is {n}; write a list of exactly one assistant message")
                continue
            m = out[0]
            path = f"{name}[0]"
            if not isinstance(m, dict) or m.get("role") != "assistant":
                ctx.bad("preference_output_invalid", f"{path}.role",
                        "the output is one message with role assistant")
                continue
            for key in ("tool_calls", "function_call"):
                if not _missing(m.get(key)):
                    ctx.bad("preference_output_invalid", f"{path}.{key}",
                            "preference outputs are text only: remove the call")
            self._message(m, path, ctx)
            outputs.append(m.get("content"))
        if len(outputs) == 2 and outputs[0] == outputs[1]:
            ctx.note("preference_identical", "non_preferred_output",
                     "the same as preferred_output: the pair teaches nothing")
        if ctx.undefined_call:
            ctx.note("tool_definitions_missing", "input",
                     "tool calls without `input.tools` to define them")


def describe(problems: list[tuple[str, str, str]]) -> str:
    """One message listing every problem as `[code] path: text`."""
    def one(code: str, path: str, text: str) -> str:
        return f"{path}: {text}" if path else text

    if len(problems) == 1:
        return one(*problems[0])
    listed = [f"[{c}] {one(c, p, t)}" for c, p, t in problems[:_MAX_LISTED]]
    more = len(problems) - _MAX_LISTED
    tail = f"; ... and {more} more" if more > 0 else ""
    return f"{len(problems)} problems: " + "; ".join(listed) + tail


COLUMNS = (
    "_shape",
    "kind",
    "messages",
    "tools",
    "functions",
    "parallel_tool_calls",
    "prompt",
    "completion",
    "input",
    "preferred_output",
    "non_preferred_output",
    "_record",
    "_source",
)


class Findings(NamedTuple):
    """What the checks found on one record, as the stage marks it.

    `reason`/`message`: the code of the first problem and one message listing them all (None
    when the record is kept); `problems`: every problem as `(code, message, path)`; `warnings`:
    per warning code, `(code, message)` (the record's warnings of a code in one message), only
    for a kept record; `dropped`: the extra top-level keys `extra_keys: drop` leaves out of the
    output, for a kept record.
    """

    reason: str | None
    message: str | None
    problems: tuple[tuple[str, str, str], ...]
    warnings: tuple[tuple[str, str], ...]
    dropped: tuple[str, ...] = ()


_CLEAN = Findings(None, None, (), (), ())


def findings(validator: Validator, row: dict[str, Any]) -> Findings:
    """Check one canonical record (a plain dict of `COLUMNS`; absent keys count as null).

    The one per-record rule of this stage: the stage calls it for every row of a batch, and
    `ftprep check` calls it for every line of a JSONL file without building a batch.
    """
    if validator.clean(row):
        return _CLEAN
    ctx = validator.record(row)
    if ctx.problems:
        return Findings(
            ctx.problems[0][0],
            describe(ctx.problems),
            tuple((c, describe([(c, p, t)]), p) for c, p, t in ctx.problems),
            (),
        )
    by_code: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for w in ctx.warnings:
        by_code[w[0]].append(w)
    return Findings(
        None,
        None,
        (),
        tuple((code, describe(ws)) for code, ws in by_code.items()),
        tuple(ctx.dropped),
    )


@register(
    "validate_schema",
    ValidateSchemaConfig,
    "Check every record against the target's format: roles, keys, content, tools, images.",
)
def validate_schema(batch: pd.DataFrame, cfg: ValidateSchemaConfig) -> tuple[pd.DataFrame, Changes]:
    import pandas as pd

    out = batch.copy()
    changes: Changes = Counter()
    validator = Validator(rules_for(cfg.target), cfg.extra_keys)
    live = out["_reason"].isna()
    todo = out.loc[live]
    columns = [todo[c].tolist() if c in todo else [None] * len(todo) for c in COLUMNS]
    reasons: dict[str, dict[Any, str]] = defaultdict(dict)
    details: dict[Any, tuple[tuple[str, str, str], ...]] = {}  # every problem, with its path
    warnings: dict[str, dict[Any, str]] = defaultdict(dict)
    for idx, values in zip(todo.index, zip(*columns, strict=True), strict=True):
        found = findings(validator, dict(zip(COLUMNS, values, strict=True)))
        if found.reason is not None:
            reasons[found.reason][idx] = str(found.message)
            details[idx] = found.problems
            continue
        for code, message in found.warnings:
            warnings[code][idx] = message
        count_change(changes, "top_level_key_dropped", len(found.dropped))
    for code, messages in reasons.items():
        msg = pd.Series(messages, dtype=object).reindex(out.index)
        several = pd.Series(details, dtype=object).reindex(out.index)
        drop_where(out, msg.notna() & live, code, msg, several)
    for code, messages in warnings.items():
        msg = pd.Series(messages, dtype=object).reindex(out.index)
        warn(out, msg.notna(), code, msg)
    return out, changes
